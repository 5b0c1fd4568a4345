//! Access reviews on a real store: who each item goes to, what a reviewer may decide, stages,
//! the no-answer default and its threshold, reminders, and closing on verified revocations.

use crate::reviews::Verdict;
use crate::{Engine, EngineError, ingest, parse};
use std::sync::Arc;
use tenure_model::{Clock, FixedClock, GrantState, IdentityRef, LifecycleState, Principal};
use tenure_policy::{Bundle, BundleFiles};
use tenure_store::{NewGrant, SqliteStore};
use time::Duration;
use time::macros::datetime;

const MANIFEST: &str = r#"
[bundle]
name = "reviews"
[lifecycle]
max_nhi_lifetime_days = 90
leaver_grace_days = 30
[sources.hr]
kinds = ["human"]
[sources.registry]
kinds = ["service"]
[attestation]
every_days = { service = 30 }
privileged_every_days = 7
remind_days_before = 5
[systems.dir]
type = "ldap"
owner = "hr:E9"
[entitlements."dir/plain"]
[entitlements."dir/admin"]
privileged = true
[entitlements."dir/staff"]
[entitlements."dir/g0"]
[entitlements."dir/g1"]
[entitlements."dir/g2"]
[entitlements."dir/g3"]
[entitlements."dir/g4"]
[entitlements."dir/g5"]
[entitlements."dir/g6"]
[entitlements."dir/g7"]
[entitlements."dir/g8"]
[entitlements."dir/g9"]
[approvers]
security = ["hr:E7"]

[reviews.priv]
scope = { privileged = true }
duration_days = 10
remind_days_before = [5, 1]
no_answer = "revoke"
max_no_answer_revokes = 1
[[reviews.priv.stage]]
reviewers = ["manager"]
fallback = ["hr:E9"]
[[reviews.priv.stage]]
reviewers = ["security"]

[reviews.mover]
trigger = "mover"
duration_days = 7
[[reviews.mover.stage]]
reviewers = ["manager"]
fallback = ["hr:E9"]

[reviews.all]
scope = { origins = ["request", "birthright"] }
no_answer = "keep"
[[reviews.all.stage]]
reviewers = ["hr:E1", "hr:E2"]
"#;

const TEMPLATES: &str = r#"
[[template]]
name = "staff"
when = { kind = "human" }
grant = ["dir/staff"]
"#;

/// E1 (manager E2) and E2 (manager E2: themselves) and E3 (no manager) hold `dir/admin` by
/// request; E1 also `dir/plain`.
fn setup() -> (tempfile::TempDir, Engine, Arc<FixedClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-20 12:00 UTC)));
    let e = Engine::new(store, clock.clone());
    let mut f = BundleFiles::new();
    f.insert("tenure.toml".into(), MANIFEST.as_bytes().to_vec());
    f.insert("templates/t.toml".into(), TEMPLATES.as_bytes().to_vec());
    e.deploy(&Bundle::load(f).unwrap(), &Principal::operator("test")).unwrap();
    let mut lines = Vec::new();
    for (n, manager) in [(1, "hr:E2"), (2, "hr:E2"), (3, ""), (7, ""), (9, "")] {
        let manager = if manager.is_empty() { String::new() } else { format!(r#","manager":"{manager}""#) };
        lines.push(format!(
            r#"{{"source":"hr","id":"h{n}","type":"joined","at":"2026-11-01T09:00:00Z","identity":{{"external_id":"E{n}","kind":"human","attributes":{{"department":"x"{manager}}}}}}}"#
        ));
    }
    lines.push(r#"{"source":"registry","id":"s1","type":"joined","at":"2026-11-01T09:00:00Z","identity":{"external_id":"svc","kind":"service","owner":"hr:E2","purpose":"billing","expires_at":"2027-01-15T00:00:00Z"}}"#.into());
    let events = ingest::events_from_wire(parse::json_lines(&lines.join("\n")).unwrap()).unwrap();
    e.ingest(&events, &Principal::operator("test")).unwrap();
    let now = clock.now();
    let mut tx = e.store().write().unwrap();
    for i in tx.identities().unwrap() {
        tx.set_identity_state(i.id, LifecycleState::Active, now).unwrap();
        let ext = i.reference.external_id().to_owned();
        if ["E1", "E2", "E3"].contains(&ext.as_str()) {
            give(tx.as_mut(), i.id, "dir/admin", now);
        }
        if ext == "E1" {
            give(tx.as_mut(), i.id, "dir/plain", now);
        }
    }
    tx.commit().unwrap();
    (dir, e, clock)
}

/// A verified grant of `entitlement` (in `dir`) by request, as an approval and its read-back
/// would leave it.
fn give(tx: &mut dyn tenure_store::WriteTx, identity_id: i64, entitlement: &str, at: time::OffsetDateTime) {
    tx.put_grant(&NewGrant {
        identity_id,
        entitlement,
        system: "dir",
        state: GrantState::Verified,
        origin: "request",
        policy_version: "v",
        at,
        expires_at: None,
        request_id: None,
    })
    .unwrap();
}

fn r(s: &str) -> IdentityRef {
    s.parse().unwrap()
}

/// Item id per holder of `entitlement` in a campaign.
fn items(e: &Engine, campaign: i64) -> Vec<tenure_proto::ReviewItemView> {
    e.review(&Principal::operator("test"), campaign, false, None, 100).unwrap().1
}

fn item_of(e: &Engine, campaign: i64, identity: &str, entitlement: &str) -> tenure_proto::ReviewItemView {
    items(e, campaign).into_iter().find(|i| i.identity == identity && i.entitlement == entitlement).unwrap()
}

#[test]
fn items_go_to_the_manager_never_to_the_holder_and_otherwise_to_the_fallback() {
    let (_d, e, _c) = setup();
    let c = e.start_review(&Principal::operator("test"), "priv").unwrap();
    assert_eq!(c.items.get("undecided"), Some(&3), "{c:?}");
    assert_eq!(item_of(&e, c.id, "hr:E1", "dir/admin").reviewers, ["hr:E2"]);
    // E2's manager is E2: nobody reviews their own access, so the fallback does.
    assert_eq!(item_of(&e, c.id, "hr:E2", "dir/admin").reviewers, ["hr:E9"]);
    assert_eq!(item_of(&e, c.id, "hr:E3", "dir/admin").reviewers, ["hr:E9"]);
    // One at a time.
    let again = e.start_review(&Principal::operator("test"), "priv").unwrap_err();
    assert!(matches!(again, EngineError::Conflict(_)), "{again}");
    let unknown = e.start_review(&Principal::operator("test"), "nope").unwrap_err();
    assert!(unknown.to_string().contains("no campaign `nope`"), "{unknown}");
    // A reviewer sees only their own items.
    let mine = e.review(&Principal::local(r("hr:E9"), []), c.id, false, None, 100).unwrap().1;
    let mut who: Vec<&str> = mine.iter().map(|i| i.identity.as_str()).collect();
    who.sort_unstable();
    assert_eq!(who, ["hr:E2", "hr:E3"]);
    assert!(e.review(&Principal::local(r("hr:E3"), []), c.id, false, None, 100).is_err());
}

#[test]
fn a_reviewer_decides_only_assigned_items_with_reasons_and_revokes_through_the_normal_path() {
    let (_d, e, _c) = setup();
    let c = e.start_review(&Principal::operator("test"), "priv").unwrap();
    let e1 = item_of(&e, c.id, "hr:E1", "dir/admin").id;
    let e2 = item_of(&e, c.id, "hr:E2", "dir/admin").id;

    let own = e.decide_review(&r("hr:E2"), c.id, e2, Verdict::Keep, "mine").unwrap_err();
    assert!(own.to_string().contains("nobody reviews their own access"), "{own}");
    let stranger = e.decide_review(&r("hr:E3"), c.id, e1, Verdict::Keep, "ok").unwrap_err();
    assert!(stranger.to_string().contains("not a reviewer of item"), "{stranger}");
    let hidden = e.decide_review(&r("hr:E2"), c.id, e1, Verdict::Keep, "ok\u{202e}evil").unwrap_err();
    assert!(matches!(hidden, EngineError::Invalid { ref field, .. } if field == "reason"), "{hidden}");
    let bare = e.decide_review(&r("hr:E2"), c.id, e1, Verdict::Keep, " ").unwrap_err();
    assert!(bare.to_string().contains("keeping privileged access needs a reason"), "{bare}");

    // A keep at stage 1 goes to stage 2 (security), not to a final outcome.
    let kept = e.decide_review(&r("hr:E2"), c.id, e1, Verdict::Keep, "on call this quarter").unwrap();
    assert_eq!((kept.stage, kept.status.as_str(), kept.reviewers.clone()), (1, "pending", vec!["hr:E7".to_owned()]));
    let twice = e.decide_review(&r("hr:E2"), c.id, e1, Verdict::Keep, "again").unwrap_err();
    assert!(twice.to_string().contains("not a reviewer of item"), "{twice}");

    // A revoke at stage 2 takes the grant away: revoking, a sync job, not yet verified.
    let revoked = e.decide_review(&r("hr:E7"), c.id, e1, Verdict::Revoke, "no longer on call").unwrap();
    assert_eq!(revoked.status, "revoking");
    assert_eq!(revoked.decisions.len(), 2);
    let tx = e.store().read().unwrap();
    let id = tx.identity(&r("hr:E1")).unwrap().unwrap().id;
    let g = tx.grants(id).unwrap().into_iter().find(|g| g.entitlement == "dir/admin").unwrap();
    assert_eq!(g.state, GrantState::Revoking);
    assert!(tx.jobs(None).unwrap().iter().any(|j| j.identity_id == Some(id) && j.system == "dir"));
    let decided = tx
        .ledger_for("hr:E1")
        .unwrap()
        .into_iter()
        .filter(|a| matches!(a.event, tenure_ledger::LedgerEvent::ReviewDecided(_)))
        .count();
    assert_eq!(decided, 2);
    drop(tx);
    let none = e.decide_review(&r("hr:E7"), c.id, e1, Verdict::Keep, "x").unwrap_err();
    assert!(none.to_string().contains("decided already"), "{none}");
}

#[test]
fn birthright_is_not_revoked_by_a_reviewer() {
    let (_d, e, _c) = setup();
    let c = e.start_review(&Principal::operator("test"), "all").unwrap();
    let staff = item_of(&e, c.id, "hr:E3", "dir/staff").id;
    let err = e.decide_review(&r("hr:E1"), c.id, staff, Verdict::Revoke, "why not").unwrap_err();
    assert!(err.to_string().contains("is birthright"), "{err}");
    let plain = item_of(&e, c.id, "hr:E1", "dir/plain");
    assert_eq!(plain.reviewers, ["hr:E2"], "E1 is named, but never for their own access");
    let bare = e.decide_review(&r("hr:E2"), c.id, plain.id, Verdict::Revoke, "").unwrap_err();
    assert!(bare.to_string().contains("a revoke needs a reason"), "{bare}");
}

#[test]
fn the_deadline_pauses_a_campaign_whose_default_would_revoke_past_its_threshold() {
    let (_d, e, clock) = setup();
    let c = e.start_review(&Principal::operator("test"), "priv").unwrap();
    // Reminders: once per offset, only to reviewers with items left.
    clock.advance(Duration::days(6));
    assert_eq!(e.tick().unwrap().reviews, [format!("review {} reminded", c.id)]);
    assert!(e.tick().unwrap().reviews.is_empty(), "a reminder goes out once");
    let e1 = item_of(&e, c.id, "hr:E1", "dir/admin").id;
    e.decide_review(&r("hr:E2"), c.id, e1, Verdict::Keep, "needed").unwrap();
    e.decide_review(&r("hr:E7"), c.id, e1, Verdict::Keep, "needed").unwrap();
    clock.advance(Duration::days(3));
    e.tick().unwrap();
    let tx = e.store().read().unwrap();
    let reminded: Vec<_> = tx
        .ledger_for(&format!("review:{}", c.id))
        .unwrap()
        .into_iter()
        .filter_map(|a| match a.event {
            tenure_ledger::LedgerEvent::ReviewReminded(r) => Some(r.reviewers.into_keys().collect::<Vec<_>>()),
            _ => None,
        })
        .collect();
    drop(tx);
    assert_eq!(reminded, [vec!["hr:E2".to_owned(), "hr:E9".to_owned()], vec!["hr:E9".to_owned()]]);

    // Two undecided items, default revoke, threshold 1: paused, nothing revoked.
    clock.advance(Duration::days(2));
    let t = e.tick().unwrap();
    assert!(t.reviews[0].contains("paused"), "{t:?}");
    let paused = e.reviews(&Principal::operator("test")).unwrap().remove(0);
    assert_eq!(paused.state, "paused");
    assert_eq!(item_of(&e, c.id, "hr:E2", "dir/admin").status, "pending");
    let late = e.decide_review(&r("hr:E9"), c.id, item_of(&e, c.id, "hr:E3", "dir/admin").id, Verdict::Keep, "x");
    assert!(late.is_err());

    // An admin lets the default apply: both revoked (the normal path), the campaign completing.
    let released = e.release_review(&Principal::operator("test"), c.id, true, "confirmed with owners").unwrap();
    assert_eq!(released.state, "completing");
    assert_eq!(released.items.get("revoke"), Some(&2));
    assert_eq!(item_of(&e, c.id, "hr:E3", "dir/admin").status, "revoking");
    assert!(e.tick().unwrap().reviews.is_empty(), "not closed before the revocations are verified");

    // The read-back verifies them (here set as a worker would): the campaign closes.
    let now = clock.now();
    let mut tx = e.store().write().unwrap();
    for who in ["hr:E2", "hr:E3"] {
        let id = tx.identity(&r(who)).unwrap().unwrap().id;
        let g = tx.grants(id).unwrap().into_iter().find(|g| g.entitlement == "dir/admin").unwrap();
        assert!(tx.set_grant_state(g.id, g.rev, GrantState::RevocationVerified, now).unwrap());
    }
    tx.commit().unwrap();
    assert_eq!(item_of(&e, c.id, "hr:E3", "dir/admin").status, "revoked (verified)");
    assert_eq!(e.tick().unwrap().reviews, [format!("review {} closed", c.id)]);
}

#[test]
fn below_the_threshold_the_default_applies_at_the_deadline() {
    let (_d, e, clock) = setup();
    let c = e.start_review(&Principal::operator("test"), "all").unwrap();
    clock.advance(Duration::days(15));
    let t = e.tick().unwrap();
    assert!(t.reviews.iter().any(|s| s.contains("decided by default")), "{t:?}");
    let all = items(&e, c.id);
    assert!(all.iter().all(|i| i.status == "kept" && i.decisions[0].by.is_none()), "{all:?}");
    assert!(t.reviews.iter().any(|s| s.contains("closed")), "nothing to verify: closed at once: {t:?}");
    let c = e.reviews(&Principal::operator("test")).unwrap().remove(0);
    assert!(c.rubber_stamping.is_empty(), "the default is not a reviewer: {c:?}");
}

#[test]
fn a_mover_opens_a_micro_review_for_the_new_manager_in_the_same_transaction() {
    let (_d, e, _c) = setup();
    let moved = |id: &str, manager: &str| {
        let line = format!(
            r#"{{"source":"hr","id":"{id}","type":"changed","at":"2026-11-10T09:00:00Z","identity":{{"external_id":"E1","kind":"human","attributes":{{"department":"x","manager":"{manager}"}}}}}}"#
        );
        e.ingest(&ingest::events_from_wire(parse::json_lines(&line).unwrap()).unwrap(), &Principal::operator("test"))
            .unwrap();
    };
    moved("m1", "hr:E3");
    let all = e.reviews(&Principal::operator("test")).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].name.as_str(), all[0].items.get("undecided")), ("mover", Some(&2)));
    let items = items(&e, all[0].id);
    assert!(items.iter().all(|i| i.identity == "hr:E1" && i.reviewers == ["hr:E3"]), "{items:?}");
    let mut ents: Vec<&str> = items.iter().map(|i| i.entitlement.as_str()).collect();
    ents.sort_unstable();
    assert_eq!(ents, ["dir/admin", "dir/plain"], "birthright (dir/staff) is the template's to decide");
    let tx = e.store().read().unwrap();
    let started = tx.ledger_for(&format!("review:{}", all[0].id)).unwrap();
    assert!(
        matches!(&started[0].event, tenure_ledger::LedgerEvent::ReviewStarted(s) if s.identity.as_deref() == Some("hr:E1"))
    );
    drop(tx);
    // The same manager again is no move.
    moved("m2", "hr:E3");
    assert_eq!(e.reviews(&Principal::operator("test")).unwrap().len(), 1);
    let by_hand = e.start_review(&Principal::operator("test"), "mover").unwrap_err();
    assert!(by_hand.to_string().contains("started by its trigger"), "{by_hand}");
}

#[test]
fn a_reviewer_deciding_many_items_in_seconds_is_flagged() {
    let (_d, e, clock) = setup();
    let now = clock.now();
    let mut tx = e.store().write().unwrap();
    let e3 = tx.identity(&r("hr:E3")).unwrap().unwrap().id;
    for n in 0..10 {
        give(tx.as_mut(), e3, &format!("dir/g{n}"), now);
    }
    tx.commit().unwrap();
    let c = e.start_review(&Principal::operator("test"), "all").unwrap();
    let mine: Vec<i64> = items(&e, c.id).into_iter().filter(|i| i.identity == "hr:E3").map(|i| i.id).collect();
    assert_eq!(mine.len(), 12, "g0…g9, dir/admin and the birthright dir/staff");
    for (n, id) in mine.iter().enumerate() {
        if n == 5 {
            let view = e.reviews(&Principal::operator("test")).unwrap().remove(0);
            assert!(view.rubber_stamping.is_empty(), "5 decisions are not many: {view:?}");
        }
        clock.advance(Duration::seconds(2));
        e.decide_review(&r("hr:E2"), c.id, *id, Verdict::Keep, "fine").unwrap();
    }
    let view = e.reviews(&Principal::operator("test")).unwrap().remove(0);
    assert_eq!(view.rubber_stamping, ["hr:E2 decided 12 items in 22 s"]);
}

#[test]
fn an_nhi_its_owner_does_not_attest_is_suspended_by_the_clock_until_the_owner_does() {
    let (_d, e, clock) = setup();
    let state = |e: &Engine| e.identity_detail("registry:svc").unwrap().identity.state;
    assert_eq!(state(&e), "active");
    // Day 26: a notice for the owner, once.
    clock.advance(Duration::days(26));
    assert_eq!(e.tick().unwrap().attestations, ["registry:svc: attestation due by 2026-12-20T12:00:00Z"]);
    assert!(e.tick().unwrap().attestations.is_empty());
    // Day 30: suspended, and the notice resolved.
    clock.advance(Duration::days(4));
    let t = e.tick().unwrap();
    assert_eq!(t.attestations, ["registry:svc: suspended, not attested by 2026-12-20T12:00:00Z"]);
    assert_eq!(state(&e), "suspended");
    let open: Vec<String> = e.store().read().unwrap().findings(true).unwrap().into_iter().map(|f| f.kind).collect();
    assert!(!open.contains(&"attestation_due".to_owned()), "{open:?}");
    // Only the owner attests, with a reason.
    let other = e.attest(&Principal::local(r("hr:E1"), []), "registry:svc", "mine now").unwrap_err();
    assert!(matches!(other, EngineError::Forbidden(_)), "{other}");
    let admin = e.attest(&Principal::operator("test"), "registry:svc", "ok").unwrap_err();
    assert!(matches!(admin, EngineError::Forbidden(_)), "not even an operator: {admin}");
    let bare = e.attest(&Principal::local(r("hr:E2"), []), "registry:svc", " ").unwrap_err();
    assert!(bare.to_string().contains("says why"), "{bare}");
    let view = e.attest(&Principal::local(r("hr:E2"), []), "registry:svc", "billing still runs on it").unwrap();
    assert_eq!(view.state, "active");
    assert!(e.tick().unwrap().attestations.is_empty());
    let tx = e.store().read().unwrap();
    let last = tx.ledger_for("registry:svc").unwrap().pop().unwrap();
    match last.event {
        tenure_ledger::LedgerEvent::Attested(a) => {
            assert_eq!(a.by, "hr:E2");
            assert_eq!(a.next_due.as_deref(), Some("2027-01-19T12:00:00Z"));
            assert!(a.state.is_some(), "it resumed");
        }
        other => panic!("{other:?}"),
    }
    drop(tx);
    // Holding privileged access, the cadence is the privileged one.
    let now = clock.now();
    let mut tx = e.store().write().unwrap();
    let id = tx.identity(&r("registry:svc")).unwrap().unwrap().id;
    give(tx.as_mut(), id, "dir/admin", now);
    tx.commit().unwrap();
    clock.advance(Duration::days(7));
    assert_eq!(e.tick().unwrap().attestations.len(), 1);
    assert_eq!(state(&e), "suspended");
}

#[test]
fn a_machine_identity_tenure_saw_no_use_of_for_90_days_is_recommended_for_revocation() {
    let (_d, e, clock) = setup();
    {
        let mut tx = e.store().write().unwrap();
        let svc = tx.identity(&r("registry:svc")).unwrap().unwrap().id;
        give(tx.as_mut(), svc, "dir/plain", clock.now());
        give(tx.as_mut(), svc, "dir/admin", clock.now());
        tx.commit().unwrap();
    }
    // At first it is new: nothing argues against it.
    let c = e.start_review(&Principal::operator("test"), "priv").unwrap();
    let fresh = item_of(&e, c.id, "registry:svc", "dir/admin");
    assert_eq!(fresh.recommendation, "keep", "{:?}", fresh.evidence);
    assert_eq!(fresh.evidence["last_authorized"], serde_json::Value::Null);
    assert_eq!(fresh.evidence["last_credential_issued"], serde_json::Value::Null);
    // 95 days on, with no credential issued and no authorization asked, it is.
    clock.advance(Duration::days(95));
    let c = e.start_review(&Principal::operator("test"), "all").unwrap();
    let idle = item_of(&e, c.id, "registry:svc", "dir/plain");
    assert_eq!(idle.recommendation, "revoke", "{:?}", idle.evidence);
    let why = idle.evidence["why"].to_string();
    assert!(
        why.contains("no credential issued, no authorization asked and no sign-in since it joined 95 days ago"),
        "{why}"
    );
    // People are not judged by what tenure cannot see them use.
    let person = item_of(&e, c.id, "hr:E1", "dir/plain");
    assert!(!person.evidence["why"].to_string().contains("no credential issued"), "{:?}", person.evidence);
    assert!(person.evidence.get("last_credential_issued").is_none(), "{:?}", person.evidence);
}

#[test]
fn an_unlinked_account_kept_is_adopted_unless_its_identity_holds_one_there_and_is_reviewed_once() {
    let (_d, e, clock) = setup();
    let mut f = tenure_policy::BundleFiles::new();
    let manifest = format!(
        "{MANIFEST}\n[reviews.unlinked]\ntrigger = \"unlinked\"\nno_answer = \"keep\"\n[[reviews.unlinked.stage]]\nreviewers = [\"system-owner\"]\n"
    );
    f.insert("tenure.toml".into(), manifest.into_bytes());
    f.insert("templates/t.toml".into(), TEMPLATES.as_bytes().to_vec());
    let policy = Bundle::load(f).unwrap();
    e.deploy(&policy, &Principal::operator("test")).unwrap();
    let now = clock.now();
    let mut tx = e.store().write().unwrap();
    // E1 holds tenure's account in `dir` already (its staff birthright); the service none.
    let e1 = tx.identity(&r("hr:E1")).unwrap().unwrap();
    let svc = tx.identity(&r("registry:svc")).unwrap().unwrap();
    assert!(tx.accounts(e1.id).unwrap().iter().any(|a| a.system == "dir"));
    assert!(tx.accounts(svc.id).unwrap().is_empty());
    let policy = e.current_policy().unwrap();
    let c1 = super::on_unlinked(tx.as_mut(), &policy, ("dir", 7), "e1-old", &e1, now).unwrap().unwrap();
    let csvc = super::on_unlinked(tx.as_mut(), &policy, ("dir", 7), "svc-old", &svc, now).unwrap().unwrap();
    assert_eq!(
        super::on_unlinked(tx.as_mut(), &policy, ("dir", 8), "svc-old", &svc, now).unwrap(),
        None,
        "reviewed once"
    );
    tx.commit().unwrap();
    let (i1, isvc) = (items(&e, c1).remove(0), items(&e, csvc).remove(0));
    assert_eq!(
        (i1.entitlement.as_str(), i1.origin.as_str(), i1.recommendation.as_str()),
        ("e1-old", "unlinked", "revoke")
    );
    assert_eq!(isvc.recommendation, "keep", "{:?}", isvc.evidence);
    assert_eq!(isvc.reviewers, ["hr:E9"], "the system's owner");
    let drift = |e: &Engine| {
        e.store()
            .read()
            .unwrap()
            .jobs(None)
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == tenure_store::JobKind::Drift)
            .map(|j| (j.account, j.payload.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let alan = r("hr:E9");
    e.decide_review(&alan, c1, i1.id, Verdict::Keep, "an old login of theirs").unwrap();
    assert!(drift(&e).is_empty(), "E1 holds an account there: kept as it is, not adopted");
    e.decide_review(&alan, csvc, isvc.id, Verdict::Keep, "the service's").unwrap();
    let jobs = drift(&e);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].0.as_str(), jobs[0].1["adopt"].as_str()), ("svc-old", Some("registry:svc")));
    assert_eq!(jobs[0].1["review_item"], isvc.id);
    // Nothing is verified until a drift job's read-back says so.
    let c1_view = e.review(&Principal::operator("test"), c1, false, None, 10).unwrap().1.remove(0);
    assert_eq!(c1_view.status, "kept");
}
