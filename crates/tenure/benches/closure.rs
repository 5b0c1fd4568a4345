//! Verified closure of 100 concurrent leavers across LDAP, PostgreSQL and a SCIM app (throwaway
//! servers on loopback), in one run:
//! - tenure: the leaver batch is accepted (one transaction), workers disable, revoke, read back
//!   and probe in all three systems; per leaver, the time from its event's acceptance to its
//!   `identity.closed` entry, and the time to assemble and sign its certificate;
//! - cut-off: the time from submitting a leaver event to runtime authorization denying it;
//! - baseline: the same disable-and-revoke operations sent directly to the same servers through
//!   the same client libraries, with the same concurrency, without tenure (no store, no jobs, no
//!   read-back, no probe, no ledger).
//!
//! `cargo bench -p tenure --bench closure` (needs `scripts/install-deps`; TENURE_BENCH_LEAVERS).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_connectors::Connector;
use tenure_connectors::ldap::LdapConnector;
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_engine::worker::{WorkerConfig, Workers};
use tenure_engine::{Engine, ingest, parse};
use tenure_model::SystemClock;
use tenure_policy::Bundle;
use tenure_store::SqliteStore;
use tenure_testkit::quickstart::{Quickstart, env_of};

#[path = "../src/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

fn person(prefix: &str, i: usize, kind: &str) -> String {
    serde_json::json!({ "source": "hr", "id": format!("{prefix}-{kind}-{i}"), "type": kind, "at": "2026-11-01T09:00:00Z",
        "identity": { "external_id": format!("{prefix}{i:04}"), "kind": "human", "name": format!("Person {i}"),
            "attributes": { "department": "sales", "employment": "employee" } } })
    .to_string()
}

fn ingest_lines(engine: &Engine, lines: &[String]) {
    let events = ingest::events_from_wire(parse::json_lines(&lines.join("\n")).unwrap()).unwrap();
    engine.ingest(&events, &tenure_model::Principal::operator("bench")).unwrap();
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("TENURE_BENCH_LEAVERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let tmp = tempfile::tempdir().unwrap();
    let Quickstart { slapd, pg, scim } = Quickstart::start(tmp.path()).await.unwrap_or_else(|e| panic!("{e}"));
    let env: BTreeMap<String, String> =
        env_of(&slapd, &pg, &scim).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();

    let engine =
        Arc::new(Engine::new(Arc::new(SqliteStore::open(&tmp.path().join("data")).unwrap()), Arc::new(SystemClock)));
    engine
        .deploy(&Bundle::load(quickstart::policy_files()).unwrap(), &tenure_model::Principal::operator("bench"))
        .unwrap();
    let signer = tenure_ledger::Signer::from_seed("bench/ledger", &[3; 32]);
    let workers =
        Arc::new(Workers::new(engine.clone(), Arc::new(move |k: &str| env.get(k).cloned()), WorkerConfig::default()));

    // Joiners for tenure (T…) and for the direct baseline (D…), provisioned by tenure.
    let joiners: Vec<String> = (0..n).flat_map(|i| [person("T", i, "joined"), person("D", i, "joined")]).collect();
    ingest_lines(&engine, &joiners);
    workers.run_until_idle().await.unwrap();
    let active = engine.list_identities().unwrap().iter().filter(|i| i.state == "active").count();
    assert_eq!(active, 2 * n, "every joiner provisioned in all three systems");

    // Cut-off: one leaver event submitted, then authorize asked at once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(workers.clone().run(stopped));
    let question = |who: &str| tenure_engine::authz::Question {
        principal: format!("hr:{who}"),
        action: "deploy".into(),
        resource: tenure_engine::authz::ResourceSpec::resource("x"),
        context: serde_json::json!({ "intent": "x", "environment": "prod" }),
    };
    let mut cutoffs = Vec::new();
    for i in 0..20 {
        let who = format!("T{i:04}");
        let t = Instant::now();
        let e = engine.clone();
        let line = person("T", i, "left");
        let q = question(&who);
        let denied = tokio::task::spawn_blocking(move || {
            ingest_lines(&e, &[line]);
            e.decide(&q).unwrap()
        })
        .await
        .unwrap();
        cutoffs.push(t.elapsed());
        assert_eq!(denied.policies, ["tenure:lifecycle"]);
    }
    cutoffs.sort();

    // The batch of concurrent leavers.
    let leavers: Vec<String> = (20..n).map(|i| person("T", i, "left")).collect();
    let e = engine.clone();
    let t_batch = Instant::now();
    tokio::task::spawn_blocking(move || ingest_lines(&e, &leavers)).await.unwrap();
    let accepted = t_batch.elapsed();
    workers.notify();
    let refs: Vec<String> = (0..n).map(|i| format!("hr:T{i:04}")).collect();
    loop {
        let all = engine.list_identities().unwrap();
        if refs.iter().all(|r| all.iter().any(|i| &i.reference == r && i.state == "closed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = t_batch.elapsed();
    let _ = stop.send(true);
    let _ = runner.await;
    // Per leaver: accepted (identity.left) to closed (identity.closed), from the ledger's times.
    let mut closure = Vec::new();
    let mut certs = Vec::new();
    for r in &refs {
        let d = engine.identity_detail(r).unwrap();
        let at = |action: &str| {
            let t = &d.timeline.iter().rev().find(|t| t.action == action).unwrap().at;
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        };
        closure.push(Duration::try_from(at("identity.closed") - at("identity.left")).unwrap_or_default());
        let t = Instant::now();
        let cert = engine.closure_certificate(r, &signer).unwrap();
        certs.push(t.elapsed());
        assert!(tenure_ledger::closure::verify(&cert, &signer.verifier()).is_ok());
    }
    closure.sort();
    certs.sort();

    // Baseline: the same operations straight to the servers, 4 at a time (tenure's workers).
    let ldap = Arc::new(LdapConnector::new("corp-directory", slapd.settings()));
    let db = Arc::new(
        PostgresConnector::new(
            "analytics-db",
            PostgresSettings {
                url: pg.url(),
                account_name: "{external_id}".into(),
                reassign_to: None,
                login_group: None,
                tls: None,
            },
        )
        .unwrap(),
    );
    let app = Arc::new(ScimConnector::new(
        "helpdesk",
        ScimSettings {
            url: scim.url(),
            token: Some(scim.token.clone()),
            account_name: "{external_id}".into(),
            tls: None,
        },
    ));
    let t_direct = Instant::now();
    let mut direct = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(4) {
        let mut tasks = Vec::new();
        for i in chunk {
            let name = format!("D{i:04}");
            let (ldap, db, app) = (ldap.clone(), db.clone(), app.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                ldap.disable_account(&name).await.unwrap();
                for g in ["all-staff", "employees", "vpn", "sales"] {
                    ldap.revoke(&name, g).await.unwrap();
                }
                db.disable_account(&name).await.unwrap();
                db.revoke(&name, "reporting").await.unwrap();
                app.disable_account(&name).await.unwrap();
                app.revoke(&name, "agents").await.unwrap();
                t.elapsed()
            }));
        }
        for t in tasks {
            direct.push(t.await.unwrap());
        }
    }
    let direct_wall = t_direct.elapsed();
    direct.sort();

    println!(
        "closure benchmark: {n} leavers, each with accounts in LDAP (4 groups), PostgreSQL (1 role) and SCIM (1 group)"
    );
    println!(
        "  cut-off (leaver event submitted -> authorize denies), 20 leavers one by one: p50 {:.1} ms, p99 {:.1} ms",
        ms(pct(&cutoffs, 0.5)),
        ms(pct(&cutoffs, 0.99))
    );
    println!(
        "  batch of {} leavers accepted in one transaction in {:.1} ms (all cut off from that commit)",
        n - 20,
        ms(accepted)
    );
    println!(
        "  tenure, accepted -> closed (disabled, revoked, read back, probed, in all three): p50 {:.0} ms, p99 {:.0} ms; all {n} closed {:.2} s after the batch",
        ms(pct(&closure, 0.5)),
        ms(pct(&closure, 0.99)),
        wall.as_secs_f64()
    );
    println!(
        "  certificate (evidence, inclusion proofs, signature): p50 {:.1} ms, p99 {:.1} ms",
        ms(pct(&certs, 0.5)),
        ms(pct(&certs, 0.99))
    );
    println!(
        "  direct, same operations without tenure (4 at a time): p50 {:.0} ms per leaver, all {n} in {:.2} s",
        ms(pct(&direct, 0.5)),
        direct_wall.as_secs_f64()
    );
    println!(
        "  ratio, tenure's wall time for all leavers / direct: {:.1}x",
        wall.as_secs_f64() / direct_wall.as_secs_f64()
    );
}
