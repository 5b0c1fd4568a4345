//! Engine tests on a real SQLite store, without a downstream system: ingest rules, batch
//! atomicity (property-tested), deployment recompute.

use crate::{Deployed, Engine, EngineError, Event, ingest, parse};
use proptest::prelude::*;
use std::sync::Arc;
use tenure_model::{Clock, FixedClock};
use tenure_policy::{Bundle, BundleFiles};
use tenure_store::SqliteStore;
use time::macros::datetime;

const MANIFEST: &str = r#"
[bundle]
name = "t"
[lifecycle]
max_nhi_lifetime_days = 90
leaver_grace_days = 30
[sources.hr]
kinds = ["human"]
[sources.registry]
kinds = ["service", "workload", "agent"]
[systems.dir]
type = "ldap"
[entitlements."dir/staff"]
[entitlements."dir/eng"]
[entitlements."dir/fin"]
"#;

fn bundle(templates: &str) -> Bundle {
    let mut f = BundleFiles::new();
    f.insert("tenure.toml".into(), MANIFEST.as_bytes().to_vec());
    f.insert("templates/t.toml".into(), templates.as_bytes().to_vec());
    Bundle::load(f).unwrap()
}

const TEMPLATES: &str = r#"
[[template]]
name = "staff"
when = { kind = "human" }
grant = ["dir/staff"]
[[template]]
name = "eng"
when.attributes = { department = "engineering" }
grant = ["dir/eng"]
"#;

fn engine() -> (tempfile::TempDir, Engine) {
    let (dir, e, _) = clocked();
    (dir, e)
}

fn clocked() -> (tempfile::TempDir, Engine, Arc<FixedClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-20 12:00 UTC)));
    let e = Engine::new(store, clock.clone());
    e.deploy(&bundle(TEMPLATES), &tenure_model::Principal::operator("test")).unwrap();
    (dir, e, clock)
}

fn events(lines: &[String]) -> Vec<Event> {
    ingest::events_from_wire(parse::json_lines(&lines.join("\n")).unwrap()).unwrap()
}

fn human(n: usize, dept: &str) -> String {
    format!(
        r#"{{"source":"hr","id":"h{n}","type":"joined","at":"2026-11-01T09:00:00Z","identity":{{"external_id":"E{n}","kind":"human","attributes":{{"department":"{dept}"}}}}}}"#
    )
}

fn service(n: usize, owner: &str) -> String {
    format!(
        r#"{{"source":"registry","id":"s{n}","type":"joined","at":"2026-11-01T09:00:00Z","identity":{{"external_id":"svc{n}","kind":"service","owner":"{owner}","purpose":"p","expires_at":"2027-01-01T00:00:00Z"}}}}"#
    )
}

fn snapshot(e: &Engine) -> (i64, i64, String) {
    let tx = e.store().read().unwrap();
    (tx.event_count().unwrap(), tx.ledger_count().unwrap(), format!("{:?}", e.list_identities().unwrap()))
}

#[test]
fn an_nhi_may_be_owned_by_a_person_who_joined_earlier_in_the_same_batch() {
    let (_d, e) = engine();
    let r = e
        .ingest(&events(&[human(1, "engineering"), service(1, "hr:E1")]), &tenure_model::Principal::operator("t"))
        .unwrap();
    assert_eq!(r.accepted, 2);
    let ids = e.list_identities().unwrap();
    assert_eq!(ids[0].reference, "hr:E1");
    assert_eq!(ids[0].grants.iter().map(|g| g.entitlement.as_str()).collect::<Vec<_>>(), ["dir/eng", "dir/staff"]);
    // The service has no birthright in this policy: nothing to provision, active at once.
    assert_eq!(ids[1].state, "active");
}

#[test]
fn a_leaver_left_with_no_job_is_requeued_by_the_clock_with_an_alert_and_dead_jobs_can_be_retried() {
    use tenure_store::JobState;
    let (_d, e, clock) = clocked();
    e.ingest(&events(&[human(1, "engineering")]), &tenure_model::Principal::operator("t")).unwrap();
    let left = r#"{"source":"hr","id":"l1","type":"left","at":"2026-11-02T09:00:00Z","identity":{"external_id":"E1","kind":"human"}}"#;
    e.ingest(&events(&[left.to_owned()]), &tenure_model::Principal::operator("t")).unwrap();
    // The directory's job dies (its last attempt failed): nothing carries the leaver forward.
    {
        let mut tx = e.store().write().unwrap();
        let job = tx.claim_job(clock.now(), time::Duration::seconds(30)).unwrap().unwrap();
        assert!(tx.fail_job(&job, "directory unreachable", None, clock.now()).unwrap());
        tx.commit().unwrap();
    }
    // Before the policy's 15 minutes nothing happens; after, the work is back in the queue.
    clock.advance(time::Duration::minutes(14));
    assert!(e.tick().unwrap().stalled.is_empty());
    clock.advance(time::Duration::minutes(2));
    assert_eq!(e.tick().unwrap().stalled, ["hr:E1"]);
    let tx = e.store().read().unwrap();
    assert_eq!(tx.jobs(Some(JobState::Pending)).unwrap().len(), 1);
    assert!(tx.jobs(Some(JobState::Dead)).unwrap().is_empty());
    drop(tx);
    // The alert: an open finding and a ledger entry; and it is raised once, not every tick.
    let findings = e.list_findings(false).unwrap();
    assert_eq!(findings.iter().filter(|f| f.kind == "leaver_stalled").count(), 1, "{findings:?}");
    assert!(e.identity_detail("hr:E1").unwrap().timeline.iter().any(|t| t.action == "leaver.stalled"));
    assert!(e.tick().unwrap().stalled.is_empty());
    assert_eq!(e.identity_detail("hr:E1").unwrap().identity.state, "leaving");
    // The re-queued job dies at once again: the clock waits a whole period before the next try.
    {
        let mut tx = e.store().write().unwrap();
        let job = tx.claim_job(clock.now(), time::Duration::seconds(30)).unwrap().unwrap();
        assert!(tx.fail_job(&job, "still unreachable", None, clock.now()).unwrap());
        tx.commit().unwrap();
    }
    assert!(e.tick().unwrap().stalled.is_empty(), "re-queued again at once");
    clock.advance(time::Duration::minutes(16));
    assert_eq!(e.tick().unwrap().stalled, ["hr:E1"]);
    // `tenure jobs retry`: a dead job goes back with a fresh attempt count.
    {
        let mut tx = e.store().write().unwrap();
        let job = tx.claim_job(clock.now(), time::Duration::seconds(30)).unwrap().unwrap();
        assert!(tx.fail_job(&job, "directory unreachable", None, clock.now()).unwrap());
        tx.commit().unwrap();
    }
    assert!(matches!(
        e.retry_dead_jobs(crate::worker::RetryJobs::OfIdentity("hr:nobody"), &tenure_model::Principal::operator("t")),
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(
        e.retry_dead_jobs(crate::worker::RetryJobs::OfIdentity("hr:E1"), &tenure_model::Principal::operator("t"))
            .unwrap()
            .len(),
        1
    );
    let job = e.store().write().unwrap().claim_job(clock.now(), time::Duration::seconds(30)).unwrap().unwrap();
    assert_eq!(job.attempts, 1);
}

#[test]
fn oversized_invisible_and_confusable_ids_are_refused_naming_the_field() {
    let (_d, e) = engine();
    e.ingest(&events(&[human(1000, "sales")]), &tenure_model::Principal::operator("t")).unwrap();
    let joiner = |ext: &str| {
        format!(
            r#"{{"source":"hr","id":"x-{}","type":"joined","at":"2026-11-01T09:00:00Z","identity":{{"external_id":{},"kind":"human"}}}}"#,
            ext.len(),
            serde_json::Value::String(ext.to_owned())
        )
    };
    let refused = |ext: &str| -> String {
        let records = parse::json_lines(&joiner(ext)).unwrap();
        match ingest::events_from_wire(records) {
            Err(errs) => errs[0].to_string(),
            Ok(evs) => match e.ingest(&evs, &tenure_model::Principal::operator("t")) {
                Err(EngineError::Rejected(errs)) => errs[0].to_string(),
                other => panic!("`{ext}` accepted: {other:?}"),
            },
        }
    };
    let long = "E".repeat(1_000_000);
    assert!(refused(&long).contains("identity.external_id: external_id longer than 256 bytes"), "{}", refused(&long));
    assert!(refused("E1000\u{200B}").contains("invisible"), "{}", refused("E1000\u{200B}"));
    assert!(refused("E\u{202E}0001").contains("bidirectional"));
    let cyrillic = refused("\u{0415}1000");
    assert!(cyrillic.contains("is confusable with the existing `hr:E1000`"), "{cyrillic}");
    assert_eq!(e.list_identities().unwrap().len(), 1);
}

#[test]
fn a_leaver_with_nothing_provisioned_closes_at_once_and_nothing_applies_after() {
    let (_d, e) = engine();
    e.ingest(
        &events(&[service(1, "hr:E1").replace("hr:E1", "hr:E0"), human(0, "x")]),
        &tenure_model::Principal::operator("t"),
    )
    .unwrap_err();
    e.ingest(&events(&[human(0, "x"), service(1, "hr:E0")]), &tenure_model::Principal::operator("t")).unwrap();
    let left = r#"{"source":"registry","id":"s9","type":"left","at":"2026-11-02T09:00:00Z","identity":{"external_id":"svc1","kind":"service"}}"#;
    e.ingest(&events(&[left.to_owned()]), &tenure_model::Principal::operator("t")).unwrap();
    let d = e.identity_detail("registry:svc1").unwrap();
    assert_eq!(d.identity.state, "closed");
    let again = left.replace("s9", "s10");
    let Err(EngineError::Rejected(errs)) = e.ingest(&events(&[again]), &tenure_model::Principal::operator("t")) else {
        panic!("accepted")
    };
    assert_eq!(errs[0].to_string(), "line 1: field type: `registry:svc1` is closed; no further `left` applies");
}

#[test]
fn deploying_a_new_bundle_recomputes_current_identities_in_the_same_transaction() {
    let (_d, e) = engine();
    e.ingest(&events(&[human(1, "engineering"), human(2, "finance")]), &tenure_model::Principal::operator("t"))
        .unwrap();
    let moved = TEMPLATES.replace(r#"department = "engineering""#, r#"department = "finance""#);
    let Deployed::Changed { affected, from, .. } =
        e.deploy(&bundle(&moved), &tenure_model::Principal::operator("test")).unwrap()
    else {
        panic!()
    };
    assert!(from.is_some());
    assert_eq!(affected, 2);
    let ids = e.list_identities().unwrap();
    let states = |i: usize| -> Vec<(String, String)> {
        ids[i].grants.iter().map(|g| (g.entitlement.clone(), g.state.clone())).collect()
    };
    assert_eq!(states(0), [("dir/eng".into(), "revoking".into()), ("dir/staff".into(), "desired".into())]);
    assert_eq!(states(1), [("dir/eng".into(), "desired".into()), ("dir/staff".into(), "desired".into())]);
    assert_eq!(e.deploy(&bundle(&moved), &tenure_model::Principal::operator("test")).unwrap(), Deployed::Unchanged);
    let d = e.identity_detail("hr:E1").unwrap();
    assert!(d.timeline.iter().any(|t| t.action == "identity.recomputed"), "{:?}", d.timeline);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// A batch with one bad record anywhere applies nothing, and the error names that record.
    #[test]
    fn one_bad_record_anywhere_applies_nothing(n in 1usize..12, bad_at in 0usize..12, kind in 0usize..4) {
        let (_d, e) = engine();
        e.ingest(&events(&[human(100, "engineering")]), &tenure_model::Principal::operator("t")).unwrap();
        let before = snapshot(&e);
        let bad_at = bad_at % (n + 1);
        let mut lines: Vec<String> = (0..n).map(|i| if i % 2 == 0 { human(i, "engineering") } else { service(i, "hr:E100") }).collect();
        let bad = match kind {
            0 => service(99, "hr:E404"),                                  // unknown owner
            1 => human(99, "x").replace(r#""source":"hr""#, r#""source":"registry""#), // not authoritative
            2 => service(99, "hr:E100").replace("2027-01-01", "2028-01-01"), // expiry past the maximum
            _ => human(100, "sales").replace("h100", "h-again"),           // joined twice
        };
        lines.insert(bad_at, bad);
        let Err(EngineError::Rejected(errs)) = e.ingest(&events(&lines), &tenure_model::Principal::operator("t")) else { panic!("accepted a bad batch") };
        prop_assert_eq!(errs.len(), 1);
        prop_assert_eq!(errs[0].position, parse::Position::Line(bad_at + 1));
        prop_assert_eq!(snapshot(&e), before);
    }
}

#[test]
fn every_error_displays_its_own_code_first() {
    let all = [
        EngineError::Rejected(vec![]),
        EngineError::NoPolicy,
        EngineError::NotFound("hr:x".into()),
        EngineError::Join("t".into()),
        EngineError::Encode("e".into()),
        EngineError::NoKeyStore,
        EngineError::GroupCommit("g".into()),
        EngineError::NoEntry(1),
        EngineError::Ledger("l".into()),
        EngineError::Invalid { field: "f".into(), message: "m".into() },
        EngineError::Refused("r".into()),
        EngineError::Conflict("c".into()),
        EngineError::Unauthenticated("u".into()),
        EngineError::Forbidden("f".into()),
        EngineError::NoCheckpoint(2),
    ];
    let mut codes = std::collections::BTreeSet::new();
    for e in &all {
        assert!(e.to_string().starts_with(&format!("{} ", e.code())), "{e}");
        assert!(codes.insert(e.code()), "code {} used twice", e.code());
    }
}

#[test]
fn what_tenure_made_while_a_reconciliation_read_ran_is_not_drift() {
    use crate::reconcile::diff::Classifier;
    use tenure_connectors::{AccountRecord, Page};
    let (_dir, e) = engine();
    // The run's view of the store is taken first; then a joiner is provisioned, and the read
    // finds the new account (as a read that started earlier would).
    let (expected, _, started) = e.reconcile_expected("dir").unwrap();
    e.ingest(&events(&[human(1, "engineering")]), &tenure_model::Principal::operator("hr")).unwrap();
    let mut c = Classifier::new(expected);
    let account = |name: &str| AccountRecord {
        name: name.into(),
        enabled: true,
        memberships: Default::default(),
        managed_by: Some(format!("hr:{name}")),
        reserved: false,
        privileges: Default::default(),
        attributes: Default::default(),
        last_login: None,
    };
    c.page(Page { number: 1, accounts: vec![account("E1"), account("E2")], memberships: vec![] });
    let plan = c.finish();
    assert_eq!(plan.items.len(), 2, "both look unmatched to the earlier view: {:?}", plan.items);
    let run = e.record_run("dir", plan, started, true, &tenure_model::Principal::operator("test")).unwrap();
    let accounts: Vec<&str> = run.items.iter().filter_map(|i| i["account"].as_str()).collect();
    assert_eq!(accounts, ["E2"], "E1 is tenure's now: {:?}", run.items);
    assert_eq!((run.counts.get("unmatched"), run.counts.get("linked")), (Some(&1), Some(&1)), "{:?}", run.counts);
}
