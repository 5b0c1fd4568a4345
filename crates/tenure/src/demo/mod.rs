//! `tenure demo`: the quickstart end to end on a throwaway data dir and a throwaway slapd.
//! Joiners, then a mover, an ownership transfer, a renewal and leavers; after each step it
//! prints what the directory holds, read back from LDAP (not from tenure's tables), and checks
//! it. Then policy: a guardrail, a privileged request with two approvers, a JIT elevation and
//! runtime authorization; an access review of privileged access. Then the credential broker: a service's credentials, and their end
//! when it leaves. Then reconciliation ([`reconcile`]): access made behind tenure's back, found,
//! acted on and proved. Exits non-zero if any check failed.

mod reconcile;

use crate::{cli, quickstart, table};
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tenure_connectors::Connector;
use tenure_connectors::ldap::LdapConnector;
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_engine::access::AccessRequest;
use tenure_engine::authz::{Question, ResourceSpec};
use tenure_engine::systems::Lookup;
use tenure_engine::worker::{WorkerConfig, Workers};
use tenure_engine::{Engine, Format, ingest, parse};
use tenure_model::Principal;
use tenure_model::RequestKind;
use tenure_policy::Bundle;
use tenure_testkit::quickstart::{Quickstart, env_of};

const SYSTEM: &str = "corp-directory";

struct Checks {
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.passed += 1;
        } else {
            let what = what.into();
            println!("  CHECK FAILED: {what}");
            self.failed.push(what);
        }
    }
}

/// `tenure demo --systems`: the quickstart's three systems (a slapd, a PostgreSQL cluster, a
/// SCIM service), throwaway, on loopback, kept running until SIGINT or SIGTERM; the variables
/// the quickstart policy reads are printed as shell `export` lines, then `# ready` (under
/// `--output json`, one line: `{"environment": {…}, "ready": true}`).
pub async fn systems(json: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let systems = Quickstart::start(tmp.path()).await?;
    if json {
        let env: serde_json::Map<String, serde_json::Value> =
            systems.env().into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        println!("{}", serde_json::json!({ "environment": env, "ready": true }));
    } else {
        println!("# the quickstart's systems, throwaway, until this process is stopped");
        for (k, v) in systems.env() {
            println!("export {k}='{}'", v.replace('\'', r"'\''"));
        }
        println!("# ready");
    }
    std::io::stdout().flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    // Dropping them stops the servers and removes their directories.
    drop((systems, tmp));
    Ok(ExitCode::SUCCESS)
}

pub async fn run(keep: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let Quickstart { slapd, pg, scim } = Quickstart::start(tmp.path()).await?;
    let data = match keep {
        Some(dir) if dir.exists() => anyhow::bail!("--keep {}: the directory exists; name a new one", dir.display()),
        Some(dir) => dir.to_owned(),
        None => tmp.path().join("data"),
    };
    // The demo makes its own data dir (as `tenure init` does).
    tenure_store::SqliteStore::open(&data)?;
    let engine = cli::open(&data)?;
    let bundle = Bundle::load(quickstart::policy_files()).map_err(|e| anyhow::anyhow!("{e}"))?;
    engine.deploy(&bundle, &tenure_model::Principal::operator("demo"))?;

    let env: BTreeMap<String, String> =
        env_of(&slapd, &pg, &scim).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let lookup: Lookup = Arc::new(move |k: &str| env.get(k).cloned());
    let workers = Workers::new(engine.clone(), lookup.clone(), WorkerConfig::default());
    // Independent readers of the three systems, for what we print and check.
    let ldap = LdapConnector::new(SYSTEM, slapd.settings());
    let db = PostgresConnector::new(
        "analytics-db",
        PostgresSettings {
            url: pg.url(),
            account_name: "{external_id}".into(),
            reassign_to: None,
            login_group: None,
            tls: None,
        },
    )?;
    let helpdesk = ScimConnector::new(
        "helpdesk",
        ScimSettings {
            url: scim.url(),
            token: Some(scim.token.clone()),
            account_name: "{external_id}".into(),
            tls: None,
        },
    );
    let mut checks = Checks { failed: vec![], passed: 0 };

    println!(
        "tenure demo: quickstart policy {} on throwaway systems: slapd at {}, PostgreSQL at 127.0.0.1:{}, SCIM (scim2-server) at {}",
        bundle.version.short(),
        slapd.url(),
        pg.port,
        scim.url()
    );
    println!("data dir {}\n", data.display());

    // 0. Can tenure work with the systems at all? (`tenure systems check`)
    println!("== 0. systems check: settings, TLS, reach, credentials, base, groups ==");
    let deployed = engine.current_policy()?;
    for r in tenure_engine::check::check_systems(&deployed, &lookup, None).await.unwrap_or_default() {
        let failing: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.outcome == tenure_engine::check::Outcome::Failed)
            .map(|c| c.check.as_str())
            .collect();
        println!("  {}: {}", r.system, if failing.is_empty() { "ok".to_owned() } else { failing.join(", ") });
        checks.check(failing.is_empty(), format!("systems check of {}: {failing:?}", r.system));
    }
    println!();

    // 1. Joiners.
    println!("== 1. joiners: HR employees, vendor contractors, machine identities ==");
    let started = Instant::now();
    for (source, name, content) in quickstart::FEEDS {
        let n = feed(&engine, source, name, content)?;
        println!("  {name}: {n} events accepted");
    }
    let jobs = workers.run_until_idle().await?;
    println!("  {jobs} provisioning jobs run, each verified by read-back, in {:.0?}", started.elapsed());
    let all = engine.list_identities()?;
    let active = all.iter().filter(|i| i.state == "active").count();
    println!("  tenure: {active} of {} identities active", all.len());
    checks.check(all.len() >= 50, format!("at least 50 identities (got {})", all.len()));
    checks.check(active == all.len(), "every joiner is active");
    checks.check(all.iter().all(|i| i.grants.iter().all(|g| g.state == "verified")), "every grant verified");
    let accounts = ldap.list_accounts().await?;
    println!("\n  LDAP now holds (read back from ou=people and ou=groups):");
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| vec![a.name.clone(), yes_no(a.enabled), a.memberships.iter().cloned().collect::<Vec<_>>().join(", ")])
        .collect();
    print!("{}", indent(&table::render(&["UID", "ENABLED", "GROUPS"], &rows)));
    checks.check(
        accounts.len() == all.len(),
        format!("LDAP has one account per identity ({} vs {})", accounts.len(), all.len()),
    );
    let (roles, users) = (db.list_accounts().await?, helpdesk.list_accounts().await?);
    for i in &all {
        let in_system = |system: &str| -> Vec<String> {
            i.grants
                .iter()
                .filter(|g| g.system == system)
                .map(|g| g.entitlement.trim_start_matches(&format!("{system}/")).to_owned())
                .collect()
        };
        let ext = i.reference.split_once(':').map_or("", |(_, e)| e);
        for (system, held) in [(SYSTEM, &accounts), ("analytics-db", &roles), ("helpdesk", &users)] {
            let want = in_system(system);
            let have = held.iter().find(|a| a.name == ext);
            checks.check(
                if want.is_empty() {
                    have.is_none()
                } else {
                    have.is_some_and(|a| a.enabled && a.memberships.iter().cloned().collect::<Vec<_>>() == want)
                },
                format!("{} holds exactly its birthright groups in {system}", i.reference),
            );
        }
    }
    println!(
        "  PostgreSQL now holds {} login roles ({} in `reporting`); the helpdesk (SCIM) {} users",
        roles.len(),
        roles.iter().filter(|r| r.memberships.contains("reporting")).count(),
        users.len()
    );

    // 2. Day two.
    println!("\n== 2. day two: a mover, an ownership transfer, a renewal, two leavers ==");
    let started = Instant::now();
    let n = feed(&engine, "", quickstart::DAY_TWO.0, quickstart::DAY_TWO.1)?;
    let after_accept = engine.list_identities()?;
    let cut_off = ["hr:E1010", "vendors:C2004"]
        .iter()
        .all(|r| after_accept.iter().any(|i| &i.reference == r && i.state == "leaving"));
    println!(
        "  {}: {n} events accepted; leavers are `leaving` (cut off) as soon as accepted: {}",
        quickstart::DAY_TWO.0,
        yes_no(cut_off)
    );
    checks.check(cut_off, "leavers are cut off the moment the event is accepted");
    let jobs = workers.run_until_idle().await?;
    println!("  {jobs} jobs run in {:.0?}\n", started.elapsed());

    let show = |r: &str| -> anyhow::Result<tenure_proto::IdentityDetail> { Ok(engine.identity_detail(r)?) };
    let mover = show("hr:E1006")?;
    let mover_ldap = ldap.read_account("E1006").await?;
    println!("  mover hr:E1006 ({}) moved sales → finance; LDAP read-back:", mover.identity.name);
    print_entry(&mover_ldap);
    let groups = mover_ldap.as_ref().map(|a| a.memberships.clone()).unwrap_or_default();
    checks.check(groups.contains("finance") && groups.contains("ledger-readers"), "mover gained finance groups");
    checks.check(!groups.contains("sales"), "mover lost the sales group");
    checks.check(
        mover.identity.grants.iter().all(|g| g.state == "verified" || g.state == "revocation_verified"),
        "mover's grants all verified",
    );

    let nhi = show("service-registry:svc-crm-sync")?;
    println!("  service-registry:svc-crm-sync is now owned by {}", nhi.identity.owner.as_deref().unwrap_or("nobody"));
    checks.check(nhi.identity.owner.as_deref() == Some("hr:E1003"), "NHI ownership transferred before its owner left");

    for (r, uid) in [("hr:E1010", "E1010"), ("vendors:C2004", "C2004")] {
        let d = show(r)?;
        let entry = ldap.read_account(uid).await?;
        println!("  leaver {r} ({}) is `{}` in tenure; LDAP read-back:", d.identity.name, d.identity.state);
        print_entry(&entry);
        checks.check(d.identity.state == "closed", format!("{r} closed"));
        checks.check(
            entry.as_ref().is_some_and(|a| !a.enabled && a.memberships.is_empty()),
            format!("{r} disabled and in no group in LDAP"),
        );
        for (system, c) in [("PostgreSQL", &db as &dyn Connector), ("helpdesk (SCIM)", &helpdesk as &dyn Connector)] {
            if let Some(a) = c.read_account(uid).await? {
                println!(
                    "    {system}: enabled={} groups=[{}]",
                    yes_no(a.enabled),
                    a.memberships.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                checks
                    .check(!a.enabled && a.memberships.is_empty(), format!("{r} disabled and in no group in {system}"));
            }
        }
    }
    // The leaver's closure certificate, signed and anchored in the ledger, checked as a
    // stranger would (with the public key only).
    let signer = crate::keys::ledger_signer(&data)?;
    let cert = engine.closure_certificate("hr:E1010", &signer)?;
    println!("\n  closure certificate of hr:E1010 (`tenure closure show hr:E1010`):");
    for s in cert.pointer("/certificate/systems").and_then(|v| v.as_array()).into_iter().flatten() {
        let at = |p: &str| s.pointer(p).cloned().unwrap_or_default();
        println!(
            "    {} {}: disabled={} revoked={} read-back={} probe={} (ledger entry {})",
            at("/system"),
            at("/account"),
            at("/done/disabled"),
            at("/done/revoked"),
            at("/read_back"),
            at("/probe/result"),
            at("/evidence")
        );
    }
    let verified = tenure_ledger::closure::verify(&cert, &signer.verifier());
    println!(
        "    signature, checkpoint and {} inclusion proofs: {}",
        cert.pointer("/certificate/evidence").and_then(|v| v.as_array()).map_or(0, Vec::len),
        verified
            .as_ref()
            .map_or_else(|e| format!("INVALID: {e}"), |v| format!("verified ({} systems)", v.systems.len()))
    );
    checks.check(
        verified.is_ok_and(|v| v.systems.len() == 3),
        "the leaver's closure certificate verifies for all three systems",
    );

    policy(&engine, &bundle, &workers, &ldap, &mut checks).await?;
    review(&engine, &workers, &ldap, &signer, &mut checks).await?;
    credentials(&engine, &workers, &db, &signer, &mut checks).await?;
    let oob = reconcile::OutOfBand { slapd: &slapd, pg: &pg, scim: &scim };
    reconcile::run(&engine, &workers, &ldap, oob, &signer, &mut checks).await?;
    posture(&engine, &mut checks)?;

    let total = checks.passed + checks.failed.len();
    if checks.failed.is_empty() {
        println!("\nall {total} checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\n{} of {total} checks FAILED", checks.failed.len());
        Ok(ExitCode::FAILURE)
    }
}

/// Step 3, policy: the bundle's own tests, a guardrail, a privileged request and its two
/// approvers, a JIT elevation and runtime authorization.
async fn policy(
    engine: &Engine,
    bundle: &Bundle,
    workers: &Workers,
    ldap: &LdapConnector,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    println!("\n== 3. policy: guardrails, approvals with separation of duties, JIT, runtime authorization ==");
    let cases = tenure_policy::cases::run(bundle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let passed = cases.iter().filter(|c| c.passed()).count();
    println!("  the bundle's own test cases: {passed} of {} pass", cases.len());
    checks.check(passed == cases.len(), "the bundle's test cases pass");

    let actor = |r: &str| -> anyhow::Result<Principal> { Ok(Principal::local(r.parse()?, [])) };
    let ask = |kind, ent: &str, intent: &str, minutes: Option<i64>| AccessRequest {
        beneficiary: String::new(),
        entitlement: ent.to_owned(),
        kind,
        intent: intent.to_owned(),
        duration: minutes.map(time::Duration::minutes),
    };
    let sod = engine.request(
        &actor("hr:E1002")?,
        &AccessRequest {
            beneficiary: "hr:E1002".into(),
            ..ask(RequestKind::Access, "corp-directory/payments-approve", "cover the controller", None)
        },
    )?;
    println!(
        "  hr:E1002 (creates payments) asks to approve payments: {} by {} ({})",
        sod.state,
        serde_json::json!(sod.decision.policies),
        sod.decision.reasons.first().map_or("", String::as_str)
    );
    checks.check(sod.state == "denied", "a toxic combination is denied whoever would approve it");

    let req = engine.request(
        &actor("hr:E1005")?,
        &AccessRequest {
            beneficiary: "hr:E1005".into(),
            ..ask(RequestKind::Access, "corp-directory/prod-admin", "on-call rota", None)
        },
    )?;
    println!(
        "  hr:E1005 asks for standing prod-admin: {}, needs {}",
        req.state,
        json_at(&serde_json::to_value(&req.decision)?, "/approval")
    );
    let own = engine.answer(&"hr:E1005".parse()?, req.id, true, "me");
    println!("    hr:E1005 approves it: {}", own.as_ref().map_or_else(ToString::to_string, |r| r.state.clone()));
    checks.check(own.is_err(), "nobody approves their own request");
    let one = engine.answer(&"hr:E1001".parse()?, req.id, true, "rota confirmed")?;
    println!("    hr:E1001 (system owner) approves: {}", one.state);
    let two = engine.answer(&"hr:E1011".parse()?, req.id, true, "security ok")?;
    println!("    hr:E1011 (security) approves: {}", two.state);
    checks.check(one.state == "pending" && two.state == "approved", "two distinct approvers grant it");

    let jit = engine.request(
        &actor("hr:E1001")?,
        &AccessRequest {
            beneficiary: "hr:E1001".into(),
            ..ask(RequestKind::Jit, "corp-directory/prod-admin", "incident 4711", Some(30))
        },
    )?;
    println!(
        "  hr:E1001 elevates to prod-admin for 30 minutes (JIT): {} by {}",
        jit.state,
        json_at(&serde_json::to_value(&jit.decision)?, "/policies")
    );
    checks.check(jit.state == "approved", "a short JIT elevation with an intent is allowed by policy");
    workers.run_until_idle().await?;
    let holders = ldap.read_account("E1005").await?.zip(ldap.read_account("E1001").await?);
    let both =
        holders.is_some_and(|(a, b)| a.memberships.contains("prod-admin") && b.memberships.contains("prod-admin"));
    println!("  LDAP: E1005 and E1001 are in prod-admin: {} (the JIT grant is revoked by the clock)", yes_no(both));
    checks.check(both, "approved and JIT grants are provisioned and verified in LDAP");

    for (who, ctx) in [("service-registry:wl-deployer", "release 2026.11"), ("hr:E1010", "after leaving")] {
        let d = engine.authorize(
            &Question {
                principal: who.into(),
                action: "deploy".into(),
                resource: ResourceSpec::resource("payments-api"),
                context: serde_json::json!({ "intent": ctx, "environment": "prod" }),
            },
            &tenure_model::Principal::operator("demo"),
        )?;
        println!("  authorize {who} deploy payments-api (prod): {} by {:?}", d.decision.as_str(), d.policies);
        checks.check(d.is_allow() == (who != "hr:E1010"), format!("authorize {who}"));
    }
    Ok(())
}

/// Step 3b, an access review: the quickstart's `privileged-access` campaign over who holds
/// production admin now; a self-review refused, a revoke carried out and read back in LDAP,
/// the campaign closed and its signed report verified.
async fn review(
    engine: &Engine,
    workers: &Workers,
    ldap: &LdapConnector,
    signer: &tenure_ledger::Signer,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    use tenure_engine::reviews::Verdict;
    println!("\n3b. An access review of privileged access (docs/reviews.md)");
    let demo = Principal::operator("demo");
    let c = engine.start_review(&demo, "privileged-access")?;
    let items = engine.review(&demo, c.id, false, None, 100)?.1;
    for i in &items {
        println!(
            "  item {}: {} {} ({}), reviewed by {}",
            i.id,
            i.identity,
            i.entitlement,
            i.origin,
            i.reviewers.join(", ")
        );
    }
    let of = |who: &str| items.iter().find(|i| i.identity == who && i.entitlement == "corp-directory/prod-admin");
    let (Some(barbara), Some(grace)) = (of("hr:E1005"), of("hr:E1001")) else {
        checks.check(false, "the campaign covers E1005's and E1001's production admin");
        return Ok(());
    };
    checks.check(barbara.reviewers == ["hr:E1002"], "E1005's item goes to her manager, E1002");
    let own = engine.decide_review(&"hr:E1005".parse()?, c.id, barbara.id, Verdict::Keep, "mine");
    println!(
        "  hr:E1005 keeps her own access: {}",
        own.as_ref().map_or_else(ToString::to_string, |i| i.status.clone())
    );
    checks.check(own.is_err(), "nobody reviews their own access");
    let kept = engine.decide_review(&"hr:E1002".parse()?, c.id, barbara.id, Verdict::Keep, "on call this quarter")?;
    println!("  hr:E1002 keeps it (stage 1): now with {}", kept.reviewers.join(", "));
    engine.decide_review(&"hr:E1011".parse()?, c.id, barbara.id, Verdict::Keep, "on the rota")?;
    let manager = grace.reviewers.first().cloned().unwrap_or_default();
    let revoked = engine.decide_review(&manager.parse()?, c.id, grace.id, Verdict::Revoke, "the incident is closed")?;
    println!("  {manager} revokes E1001's elevation: {}", revoked.status);
    // Anything else in scope is kept by its reviewers, stage by stage.
    for _ in 0..3 {
        for i in engine.review(&demo, c.id, true, None, 100)?.1 {
            if let Some(r) = i.reviewers.first() {
                engine.decide_review(&r.parse()?, c.id, i.id, Verdict::Keep, "still needed")?;
            }
        }
    }
    workers.run_until_idle().await?;
    let still = ldap.read_account("E1001").await?.is_some_and(|a| a.memberships.contains("prod-admin"));
    let kept = ldap.read_account("E1005").await?.is_some_and(|a| a.memberships.contains("prod-admin"));
    println!("  LDAP: E1001 in prod-admin: {}; E1005: {}", yes_no(still), yes_no(kept));
    checks.check(!still && kept, "the revoke is carried out in LDAP and the keep left alone");
    let tick = engine.tick()?;
    checks
        .check(tick.reviews.iter().any(|r| r.ends_with("closed")), "the campaign closes once the revoke is read back");
    let report = engine.review_report(c.id, signer)?;
    let verified = tenure_ledger::review::verify(&report, &signer.verifier());
    println!(
        "  its signed report: {}",
        verified.as_ref().map_or_else(
            |e| format!("INVALID: {e}"),
            |v| format!("verified ({} items, {} kept, {} revoked)", v.items, v.kept, v.revoked.len())
        )
    );
    checks.check(verified.is_ok_and(|v| v.revoked.len() == 1), "the review report verifies offline");
    Ok(())
}

/// Step 6, the posture report over everything above: every row of each framework, and each
/// failing one with the evidence behind it.
fn posture(engine: &Engine, checks: &mut Checks) -> anyhow::Result<()> {
    println!("\n== 6. posture: OWASP NHI Top 10, NIST CSF 2.0 PR.AA, NIST AI RMF (docs/posture.md) ==");
    let r = engine.save_posture()?;
    let count = |s: &str| r.summary.get(s).copied().unwrap_or(0);
    println!(
        "  `tenure posture`: {} pass, {} fail, {} n/a, over a ledger of {} entries",
        count("pass"),
        count("fail"),
        count("n/a"),
        r.ledger_size
    );
    let ids: Vec<&str> = r.sections.iter().flat_map(|s| &s.checks).map(|c| c.id.as_str()).collect();
    for s in &r.sections {
        let row: Vec<String> = s.checks.iter().map(|c| format!("{} {}", c.id, c.status)).collect();
        println!("  {}: {}", s.framework, row.join(", "));
        for c in s.checks.iter().filter(|c| c.status == "fail") {
            if let Some(e) = c.evidence.first() {
                let proof = e.ledger_seq.map(|q| format!(" [ledger entry {q}]")).unwrap_or_default();
                let finding = e.finding.map(|f| format!(" [finding {f}]")).unwrap_or_default();
                let more = c.failing.saturating_sub(1);
                let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
                println!("    {} fails: {}{proof}{finding}{more}", c.id, e.what);
            }
        }
    }
    let all_rows = (1..=10).all(|n| ids.contains(&format!("NHI{n}").as_str()))
        && (1..=6).all(|n| ids.contains(&format!("PR.AA-0{n}").as_str()))
        && ["GOVERN", "MAP", "MEASURE", "MANAGE"].iter().all(|f| ids.contains(f));
    checks.check(all_rows, "the posture report has every OWASP NHI and PR.AA row and the AI RMF section");
    let evidenced = r.sections.iter().flat_map(|s| &s.checks).filter(|c| c.status == "fail").all(|c| {
        usize::try_from(c.failing)
            .is_ok_and(|n| n == c.evidence.len() || c.evidence.len() == tenure_engine::posture::EVIDENCE_CAP)
    });
    checks.check(evidenced, "each failing posture check lists the evidence that makes it fail");
    Ok(())
}

/// Step 4, the credential broker: a JWT-SVID checked against the JWKS, an X.509-SVID from a
/// CSR, an API key and a PostgreSQL dynamic login for a service; it leaves, and every one of
/// them is dead at once, the login dropped, and its closure certificate lists each.
async fn credentials(
    engine: &Engine,
    workers: &Workers,
    db: &PostgresConnector,
    signer: &tenure_ledger::Signer,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    use tenure_engine::creds::CredentialRequest;
    use tenure_model::CredentialKind;
    println!("\n== 4. credentials: short-lived, verifiable, revoked with their identity ==");
    let nhi = "service-registry:svc-search";
    let by = || tenure_model::Principal::operator("demo");
    let ask = |kind, audience: &[&str], csr: Option<String>, system: Option<&str>| CredentialRequest {
        identity: nhi.into(),
        kind,
        ttl: None,
        audience: audience.iter().map(|a| (*a).to_owned()).collect(),
        csr,
        system: system.map(str::to_owned),
        purpose: None,
        replaces: None,
    };
    let jwt = workers.issue_credential(ask(CredentialKind::JwtSvid, &["search-index"], None, None), by()).await?;
    let jwks = engine.jwks()?;
    let keys = jwks.values();
    let now = engine.clock().now().unix_timestamp();
    let claims = tenure_svid::jwt::verify(&jwt.secret, &keys, now, Some("search-index"));
    println!(
        "  JWT-SVID {} for {}, until {}: verifies against the JWKS: {}",
        jwt.credential.id,
        jwt.credential.spiffe_id.as_deref().unwrap_or("-"),
        jwt.credential.expires_at,
        yes_no(claims.is_ok())
    );
    checks.check(claims.is_ok(), "the JWT-SVID verifies against the published JWKS");
    let key = tenure_svid::generate_key();
    let csr = tenure_svid::x509::request(&key)?;
    let svid = workers.issue_credential(ask(CredentialKind::X509Svid, &[], Some(csr), None), by()).await?;
    let der = tenure_svid::x509::der_of_pem(&svid.secret)?;
    let sans = tenure_svid::x509::uri_sans(&der)?;
    let chained = tenure_svid::x509::signed_by_bundle(&der, &engine.trust_bundle()?)?;
    println!(
        "  X.509-SVID {} from a CSR, URI SANs {sans:?}, signed by the trust bundle's CA: {}",
        svid.credential.id,
        yes_no(chained)
    );
    checks.check(chained, "the X.509-SVID is signed by the served trust bundle");
    checks.check(
        sans.len() == 1 && sans.first() == svid.credential.spiffe_id.as_ref(),
        "exactly one URI SAN, the SPIFFE ID",
    );
    let api_key = workers.issue_credential(ask(CredentialKind::ApiKey, &[], None, None), by()).await?;
    let login =
        workers.issue_credential(ask(CredentialKind::PostgresLogin, &[], None, Some("analytics-db")), by()).await?;
    let user = login.username.clone().unwrap_or_default();
    let role = db.read_account(&user).await?;
    println!(
        "  API key {}; dynamic login `{user}` in analytics-db until {}",
        api_key.credential.id, login.credential.expires_at
    );
    checks.check(role.is_some_and(|r| r.enabled), "the dynamic login exists and may log in");
    let secrets = [&jwt.secret, &svid.secret, &api_key.secret, &login.secret];
    let active = |engine: &Engine| -> anyhow::Result<Vec<bool>> {
        secrets.iter().map(|s| Ok(engine.introspect(s)?.active)).collect()
    };
    checks.check(active(engine)?.iter().all(|a| *a), "introspection: all four active");

    let left = r#"{"source": "service-registry", "id": "demo-left", "type": "left", "at": "2026-11-20T09:00:00Z", "identity": {"external_id": "svc-search", "kind": "service"}}"#;
    feed(engine, "service-registry", "left.jsonl", left.as_bytes())?;
    let after = active(engine)?;
    println!("  svc-search leaves; introspection right after the event commits: {after:?}");
    checks.check(after.iter().all(|a| !a), "every credential is inactive the moment the leaver is accepted");
    workers.run_until_idle().await?;
    let gone = db.read_account(&user).await?.is_none();
    println!("  after the jobs: login `{user}` dropped: {}", yes_no(gone));
    checks.check(gone, "the dynamic login is dropped");
    let cert = engine.closure_certificate(nhi, signer)?;
    let verified = tenure_ledger::closure::verify(&cert, &signer.verifier());
    let listed = json_at(&cert, "/certificate/credentials").as_array().map_or(0, Vec::len);
    println!(
        "  closure certificate of {nhi}: {listed} credentials, each verified revoked; {}",
        verified
            .as_ref()
            .map_or_else(|e| format!("INVALID: {e}"), |v| format!("verified ({} credentials)", v.credentials.len()))
    );
    checks.check(
        verified.is_ok_and(|v| v.credentials.len() == 4),
        "the certificate lists all four credentials, verified",
    );
    Ok(())
}

fn json_at<'a>(v: &'a serde_json::Value, pointer: &str) -> &'a serde_json::Value {
    v.pointer(pointer).unwrap_or(&serde_json::Value::Null)
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn print_entry(a: &Option<tenure_connectors::AccountRecord>) {
    match a {
        Some(a) => println!(
            "    uid={} enabled={} groups=[{}]",
            a.name,
            yes_no(a.enabled),
            a.memberships.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => println!("    (no entry)"),
    }
}

/// Parse and ingest one embedded feed; `source` empty means records may come from any source.
fn feed(engine: &Engine, source: &str, name: &str, content: &[u8]) -> anyhow::Result<usize> {
    let text = std::str::from_utf8(content)?;
    let parsed = match Format::from_path(std::path::Path::new(name)) {
        Some(Format::Csv) => parse::csv(text),
        _ => parse::json_lines(text),
    };
    let records = parsed.map_err(|e| anyhow::anyhow!("{name}: {}", join(&e)))?;
    if let Some((pos, _)) = records.iter().find(|(_, e)| !source.is_empty() && e.source != source) {
        anyhow::bail!("{name}: {pos}: not from `{source}`");
    }
    let events = ingest::events_from_wire(records).map_err(|e| anyhow::anyhow!("{name}: {}", join(&e)))?;
    let report =
        engine.ingest(&events, &tenure_model::Principal::operator(&format!("demo:{name}"))).map_err(|e| match e {
            tenure_engine::EngineError::Rejected(errs) => anyhow::anyhow!("{name}: {}", join(&errs)),
            other => other.into(),
        })?;
    Ok(report.accepted)
}

fn join(errors: &[tenure_engine::RecordError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
