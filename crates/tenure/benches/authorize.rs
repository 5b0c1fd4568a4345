//! Runtime authorization throughput, in one run:
//! 1. Cedar's `is_authorized` called directly on the exact request, entities and policies tenure
//!    evaluates (the baseline);
//! 2. `Engine::decide`: tenure's path without logging (identity and grants read from SQLite,
//!    entities built, Cedar evaluated);
//! 3. `Engine::authorize`: the same, plus the decision durably in the ledger, from 1 and from 16
//!    threads (decisions are group-committed);
//! 4. `POST /v1/authorize` on loopback against `tenure serve` (bearer token checked, decision
//!    logged), from 16 client threads: decisions/s and p50/p99 latency.
//!
//! `cargo bench -p tenure --bench authorize` (TENURE_BENCH_SECS per measurement, default 3).
//! With `TENURE_BENCH_PROFILE=raw|decide|authorize` it makes 2,000 calls of that one path and
//! stops: the run to give `valgrind --tool=callgrind`; with `authorizeN` it runs N logging
//! threads for the measurement time, for a sampling profiler (`perf record -e cpu-clock`:
//! callgrind runs one thread at a time and counts no waiting). With
//! `TENURE_BENCH_PROFILE=http` it makes 2,000 requests from one client to a server started
//! under `TENURE_BENCH_SERVE_WRAP` (for example `valgrind --tool=callgrind`).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::time::Instant;
use tenure_engine::authz::{Question, ResourceSpec};
use tenure_policy::{AuthzFacts, Subject};

mod support;
use support::{Serve, load, quickstart_engine, secs};

/// Run `f` repeatedly for the measurement time; calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let d = secs();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Logged authorization from `threads` threads for the measurement time.
struct Logged {
    per_sec: f64,
    /// Mean decisions per group-commit transaction.
    batch: f64,
    p50: std::time::Duration,
    p99: std::time::Duration,
}

fn logged(engine: &std::sync::Arc<tenure_engine::Engine>, q: &Question, threads: usize) -> Logged {
    let (batches0, units0) = engine.group_commit_totals();
    let d = secs();
    let t = Instant::now();
    let mut latencies: Vec<std::time::Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let by = tenure_model::Principal::operator("bench");
                    let mut took = Vec::new();
                    while t.elapsed() < d {
                        let one = Instant::now();
                        engine.authorize(q, &by).unwrap();
                        took.push(one.elapsed());
                    }
                    took
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let per_sec = latencies.len() as f64 / t.elapsed().as_secs_f64();
    let (batches, units) = engine.group_commit_totals();
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Logged {
        per_sec,
        batch: (units - units0) as f64 / (batches - batches0).max(1) as f64,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn question() -> Question {
    Question {
        principal: "service-registry:wl-deployer".into(),
        action: "deploy".into(),
        resource: ResourceSpec::resource("payments-api"),
        context: serde_json::json!({ "intent": "release", "environment": "prod" }),
    }
}

/// `tenure serve` on `data` (the engine closed first), an admin and authorizer token, and the
/// question as the API's JSON body.
fn serve(
    engine: std::sync::Arc<tenure_engine::Engine>,
    data: &std::path::Path,
    q: &Question,
) -> (Serve, String, String) {
    let token = engine
        .issue_token(
            "hr:E1000",
            &["admin".into(), "authorizer".into()],
            Some(1),
            "bench",
            &tenure_model::Principal::operator("bench"),
        )
        .unwrap()
        .secret;
    drop(engine);
    let body = serde_json::json!({
        "principal": q.principal, "action": q.action, "resource": { "id": "payments-api" }, "context": q.context,
    })
    .to_string();
    (Serve::start(data), token, body)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let bundle = engine.current_policy().unwrap();
    let q = question();
    let d = engine.decide(&q).unwrap();
    assert!(d.is_allow(), "{d:?}");

    // 1. Raw Cedar on exactly what tenure evaluates.
    let tx = engine.store().read().unwrap();
    let row = tx.identity(&q.principal.parse().unwrap()).unwrap().unwrap();
    let holding =
        tx.grants(row.id).unwrap().into_iter().filter(|g| g.state.is_wanted()).map(|g| g.entitlement).collect();
    let owner = row.owner.as_ref().map(ToString::to_string);
    let reference = row.reference.to_string();
    drop(tx);
    let subject = Subject {
        reference: &reference,
        kind: row.kind,
        source: row.reference.source(),
        state: row.state,
        name: &row.name,
        attributes: &row.attributes,
        owner: owner.as_deref(),
        purpose: row.purpose.as_deref(),
        holding: &holding,
    };
    let facts = AuthzFacts {
        principal: subject,
        related: vec![],
        action: &q.action,
        resource: &q.resource,
        context: &q.context,
        revision: None,
    };
    let (request, entities) = bundle.rules.authorize_inputs(&facts, "manager").unwrap();
    let authorizer = cedar_policy::Authorizer::new();
    let policies = bundle.rules.policy_set();
    assert_eq!(authorizer.is_authorized(&request, policies, &entities).decision(), cedar_policy::Decision::Allow);
    let profile = std::env::var("TENURE_BENCH_PROFILE").ok();
    let raw = if profile.is_some() {
        0.0
    } else {
        rate(|| {
            std::hint::black_box(authorizer.is_authorized(&request, policies, &entities));
        })
    };

    // Under a profiler: a fixed number of calls of one path (callgrind), or one path under
    // load for the measurement time (a sampling profiler).
    if let Some(what) = profile {
        if what == "http" {
            // One client, 2,000 requests on one kept-alive connection, to a server run under
            // TENURE_BENCH_SERVE_WRAP (the profiler).
            let (server, token, body) = serve(engine, &data, &q);
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            for _ in 0..2_000 {
                let mut r = agent
                    .post(&format!("{}/v1/authorize", server.base))
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .send(&body)
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r.body_mut().read_to_vec().unwrap();
            }
            return;
        }
        if what == "http16" {
            // 16 clients for the measurement time against the server (for `perf record -a`).
            let (server, token, body) = serve(engine, &data, &q);
            let m = load(&server.base, "/v1/authorize", &token, "application/json", &body, 200);
            println!("{:.0} decisions/s, p50 {:?}, p99 {:?}", m.per_sec, m.p50, m.p99);
            return;
        }
        if let Some(threads) = what.strip_prefix("authorize").and_then(|n| n.parse().ok()) {
            // `threads` logging threads for the measurement time (for a sampling profiler).
            let m = logged(&engine, &q, threads);
            println!("{:.0} decisions/s, batch {:.1}, p50 {:?}, p99 {:?}", m.per_sec, m.batch, m.p50, m.p99);
            return;
        }
        let by = tenure_model::Principal::operator("bench");
        for _ in 0..2_000 {
            match what.as_str() {
                "raw" => drop(std::hint::black_box(authorizer.is_authorized(&request, policies, &entities))),
                "decide" => drop(std::hint::black_box(engine.decide(&q).unwrap())),
                _ => drop(std::hint::black_box(engine.authorize(&q, &by).unwrap())),
            }
        }
        return;
    }

    // 2. and 3. Tenure in-process.
    let decide = rate(|| {
        std::hint::black_box(engine.decide(&q).unwrap());
    });
    let logged_1 = rate(|| {
        std::hint::black_box(engine.authorize(&q, &tenure_model::Principal::operator("bench")).unwrap());
    });
    let threads = 16;
    let logged_n = logged(&engine, &q, threads).per_sec;
    // The group commit's batch-size/latency curve: how long a writer waits for a fuller batch.
    let mut curve = Vec::new();
    for (units, wait_us) in [(1, 0), (8, 50), (16, 100), (16, 250), (32, 250), (64, 1000)] {
        engine.set_gather(tenure_engine::Gather { units, wait: std::time::Duration::from_micros(wait_us) });
        for n in [16, 64] {
            curve.push((units, wait_us, n, logged(&engine, &q, n)));
        }
    }
    engine.set_gather(tenure_engine::Gather::default());

    println!("authorize benchmark: quickstart policy ({} Cedar policies), 56 identities", policies.policies().count());
    println!("{:<58} {:>12} {:>9}", "", "decisions/s", "vs raw");
    let line = |what: &str, r: f64| println!("{what:<58} {r:>12.0} {:>8.1}x", raw / r);
    line("Cedar is_authorized, direct (baseline)", raw);
    line("tenure decide (store read + entities + Cedar), no log", decide);
    line("tenure authorize, logged durably, 1 thread", logged_1);
    line(&format!("tenure authorize, logged durably, {threads} threads"), logged_n);
    println!("\ngroup commit: a writer waits up to `wait` for `units` queued decisions");
    println!(
        "{:>6} {:>8} {:>8} {:>12} {:>8} {:>10} {:>10}",
        "units", "wait µs", "threads", "decisions/s", "batch", "p50 ms", "p99 ms"
    );
    for (units, wait_us, n, m) in &curve {
        println!(
            "{units:>6} {wait_us:>8} {n:>8} {:>12.0} {:>8.1} {:>10.3} {:>10.3}",
            m.per_sec,
            m.batch,
            m.p50.as_secs_f64() * 1e3,
            m.p99.as_secs_f64() * 1e3
        );
    }
    println!();

    // 4. HTTP on loopback.
    let (server, token, body) = serve(engine, &data, &q);
    let http = load(&server.base, "/v1/authorize", &token, "application/json", &body, 200);
    println!(
        "{:<58} {:>12.0} {:>8.1}x   p50 {:.2} ms, p99 {:.2} ms",
        format!("POST /v1/authorize over loopback HTTP, {threads} clients, logged"),
        http.per_sec,
        raw / http.per_sec,
        http.p50.as_secs_f64() * 1e3,
        http.p99.as_secs_f64() * 1e3
    );
    println!("\nvs raw = Cedar's direct decisions/s ÷ this row's decisions/s");
}
