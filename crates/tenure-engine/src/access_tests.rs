//! Separation of duties, property-tested on a real store: whatever sequence of answers,
//! departures and clock moves happens to a request, nobody approves their own request or one for
//! themselves, no non-human approves, the same person never counts twice, a departed approver
//! stops counting, nothing is answered after the deadline, and nothing is granted before the last
//! required approval.

use crate::access::AccessRequest;
use crate::{Engine, EngineError, ingest, parse};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use tenure_model::Principal;
use tenure_model::{FixedClock, IdentityRef, LifecycleState, RequestKind, RequestState};
use tenure_policy::{Bundle, BundleFiles};
use tenure_store::SqliteStore;
use time::macros::datetime;

const MANIFEST: &str = r#"
[bundle]
name = "sod"
[lifecycle]
max_nhi_lifetime_days = 90
leaver_grace_days = 30
[sources.hr]
kinds = ["human"]
[sources.registry]
kinds = ["service"]
[systems.dir]
type = "ldap"
owner = "hr:E9"
[entitlements."dir/plain"]
[entitlements."dir/admin"]
privileged = true
[requests]
decide_within_hours = 48
[approvers]
security = ["hr:E7", "hr:E8"]
"#;

const RULES: &str = r#"
@id("plain") @approve("manager")
permit (principal, action == Tenure::Action::"request", resource) when { !resource.privileged };
@id("privileged") @approve("system-owner, security") @approvals("2")
permit (principal, action == Tenure::Action::"request", resource) when { resource.privileged };
"#;

fn setup() -> (tempfile::TempDir, Engine, Arc<FixedClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-20 12:00 UTC)));
    let e = Engine::new(store, clock.clone());
    let mut f = BundleFiles::new();
    f.insert("tenure.toml".into(), MANIFEST.as_bytes().to_vec());
    f.insert("policies/r.cedar".into(), RULES.as_bytes().to_vec());
    e.deploy(&Bundle::load(f).unwrap(), &tenure_model::Principal::operator("test")).unwrap();
    let mut lines = Vec::new();
    for n in [1, 2, 3, 7, 8, 9] {
        let manager = if n == 1 { r#","manager":"hr:E2""# } else { "" };
        lines.push(format!(
            r#"{{"source":"hr","id":"h{n}","type":"joined","at":"2026-11-01T09:00:00Z","identity":{{"external_id":"E{n}","kind":"human","attributes":{{"department":"x"{manager}}}}}}}"#
        ));
    }
    lines.push(r#"{"source":"registry","id":"s1","type":"joined","at":"2026-11-01T09:00:00Z","identity":{"external_id":"svc","kind":"service","owner":"hr:E2","purpose":"p","expires_at":"2027-01-01T00:00:00Z"}}"#.into());
    let events = ingest::events_from_wire(parse::json_lines(&lines.join("\n")).unwrap()).unwrap();
    e.ingest(&events, &tenure_model::Principal::operator("test")).unwrap();
    // No downstream system here: mark everyone active as provisioning would.
    let mut tx = e.store().write().unwrap();
    for i in tx.identities().unwrap() {
        tx.set_identity_state(i.id, LifecycleState::Active, clock.now_utc()).unwrap();
    }
    tx.commit().unwrap();
    (dir, e, clock)
}

trait Now {
    fn now_utc(&self) -> time::OffsetDateTime;
}
impl Now for FixedClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        tenure_model::Clock::now(self)
    }
}

fn r(s: &str) -> IdentityRef {
    s.parse().unwrap()
}

const PEOPLE: [&str; 7] = ["hr:E1", "hr:E2", "hr:E3", "hr:E7", "hr:E8", "hr:E9", "registry:svc"];

#[derive(Debug, Clone)]
enum Step {
    Answer { who: usize, approve: bool },
    Leave(usize),
    Wait(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..PEOPLE.len(), prop::bool::weighted(0.85)).prop_map(|(who, approve)| Step::Answer { who, approve }),
        1 => (1..PEOPLE.len() - 1).prop_map(Step::Leave),
        1 => (1i64..30).prop_map(Step::Wait),
    ]
}

fn leave(e: &Engine, who: &str, n: usize) {
    let ext = who.trim_start_matches("hr:");
    let line = format!(
        r#"{{"source":"hr","id":"left-{n}-{ext}","type":"left","at":"2026-11-02T09:00:00Z","identity":{{"external_id":"{ext}","kind":"human","attributes":{{"department":"x"}}}}}}"#
    );
    let events = ingest::events_from_wire(parse::json_lines(&line).unwrap()).unwrap();
    // Leaving twice is refused by the lifecycle; that is fine here.
    if e.ingest(&events, &tenure_model::Principal::operator("test")).is_err() {
        assert!(e.identity_detail(who).unwrap().identity.state != "active", "{who} could not leave");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn separation_of_duties_holds_whatever_happens(
        privileged in any::<bool>(),
        requester in 0usize..2,
        steps in prop::collection::vec(step(), 1..14),
    ) {
        let (_dir, e, clock) = setup();
        let entitlement = if privileged { "dir/admin" } else { "dir/plain" };
        let requester_ref = PEOPLE[requester];
        let made = e.request(
            &Principal::local(r(requester_ref), []),
            &AccessRequest {
                beneficiary: "hr:E1".into(),
                entitlement: entitlement.into(),
                kind: RequestKind::Access,
                intent: "work".into(),
                duration: None,
            },
        ).unwrap();
        prop_assert_eq!(&made.state, "pending");
        let deadline = made.decide_by.clone();
        let mut answered: BTreeSet<&str> = BTreeSet::new();
        let mut left: BTreeSet<&str> = BTreeSet::new();
        for (n, s) in steps.iter().enumerate() {
            match s {
                Step::Wait(h) => clock.advance(time::Duration::hours(*h)),
                Step::Leave(i) => {
                    leave(&e, PEOPLE[*i], n);
                    left.insert(PEOPLE[*i]);
                }
                Step::Answer { who, approve } => {
                    let who = PEOPLE[*who];
                    let before = e.request_detail(made.id).unwrap();
                    let now = tenure_model::rfc3339(clock.now_utc());
                    let result = e.answer(&r(who), made.id, *approve, "because");
                    match &result {
                        Ok(_) => {
                            // Whoever was heard is an active person, neither party, answering in time, once.
                            prop_assert!(who.starts_with("hr:"), "a non-human answered");
                            prop_assert!(who != "hr:E1" && who != requester_ref, "{} answered its own request", who);
                            prop_assert!(!left.contains(who), "{} answered after leaving", who);
                            prop_assert!(answered.insert(who), "{} answered twice", who);
                            prop_assert!(now < deadline, "answered after the deadline");
                            prop_assert_eq!(&before.state, "pending");
                        }
                        Err(EngineError::Refused(_) | EngineError::Conflict(_)) => {}
                        Err(other) => prop_assert!(false, "unexpected error {}", other),
                    }
                }
            }
            // Granted if and only if approved; approved only with what the requirement asks.
            let view = e.request_detail(made.id).unwrap();
            let beneficiary = e.identity_detail("hr:E1").unwrap();
            let granted = beneficiary.identity.grants.iter().any(|g| g.entitlement == entitlement);
            if view.state == "approved" {
                let approvers: BTreeSet<&str> =
                    view.approvals.iter().filter(|a| a.approve).map(|a| a.approver.as_str()).collect();
                prop_assert!(!approvers.contains("hr:E1") && !approvers.contains(requester_ref));
                prop_assert!(approvers.iter().all(|a| a.starts_with("hr:")));
                if privileged {
                    prop_assert!(approvers.len() >= 2, "privileged with {:?}", approvers);
                    prop_assert!(approvers.contains("hr:E9"), "no system owner in {:?}", approvers);
                    prop_assert!(approvers.contains("hr:E7") || approvers.contains("hr:E8"), "no security in {:?}", approvers);
                } else {
                    prop_assert!(approvers.contains("hr:E2"), "no manager in {:?}", approvers);
                }
                prop_assert!(granted || beneficiary.identity.state != "active", "approved but not granted");
            } else {
                prop_assert!(!granted, "granted while {}", view.state);
            }
        }
    }
}

#[test]
fn refusals_are_clear() {
    let (_dir, e, clock) = setup();
    let req = |who: &str| {
        e.request(
            &Principal::local(r(who), []),
            &AccessRequest {
                beneficiary: "hr:E1".into(),
                entitlement: "dir/admin".into(),
                kind: RequestKind::Access,
                intent: "on call".into(),
                duration: None,
            },
        )
        .unwrap()
    };
    let made = req("hr:E2");
    let msg = |who: &str| match e.answer(&r(who), made.id, true, "ok") {
        Err(err) => err.to_string(),
        Ok(v) => format!("accepted: {}", v.state),
    };
    assert!(msg("hr:E2").contains("nobody approves their own request"), "{}", msg("hr:E2"));
    assert!(msg("hr:E1").contains("nobody approves a request for themselves"), "{}", msg("hr:E1"));
    assert!(msg("registry:svc").contains("a non-human never approves"), "{}", msg("registry:svc"));
    assert!(msg("hr:E3").contains("is not an approver of request 1: it needs system-owner, security"));
    assert_eq!(msg("hr:E9"), "accepted: pending");
    assert!(msg("hr:E9").contains("`hr:E9` already answered request 1"));
    // The system owner alone is one person: a privileged grant needs a second.
    assert!(e.identity_detail("hr:E1").unwrap().identity.grants.iter().all(|g| g.entitlement != "dir/admin"));
    assert_eq!(msg("hr:E7"), "accepted: approved");
    assert!(e.identity_detail("hr:E1").unwrap().identity.grants.iter().any(|g| g.entitlement == "dir/admin"));

    // Undecided requests expire by the clock, and nothing is answered after.
    let f = |ent: &str| {
        e.request(
            &Principal::local(r("hr:E1"), []),
            &AccessRequest {
                beneficiary: "hr:E1".into(),
                entitlement: ent.into(),
                kind: RequestKind::Access,
                intent: "x".into(),
                duration: None,
            },
        )
        .unwrap()
    };
    let late = f("dir/plain");
    clock.advance(time::Duration::hours(49));
    assert_eq!(e.tick().unwrap().requests, vec![late.id]);
    assert_eq!(e.request_detail(late.id).unwrap().state, RequestState::Expired.as_str());
    let err = e.answer(&r("hr:E2"), late.id, true, "ok").unwrap_err().to_string();
    assert!(err.contains("is expired, not pending"), "{err}");
}
