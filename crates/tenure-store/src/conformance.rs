//! The conformance suite: what every backend must do, written against the capability traits
//! alone. A backend's tests run each of [`CHECKS`] on a fresh, empty store of its own (this
//! crate's own tests run them on [`crate::SqliteStore`]; enable the `conformance` feature to run
//! them from another crate):
//!
//! ```ignore
//! for (name, check) in tenure_store::conformance::CHECKS {
//!     let store = open_an_empty_store();
//!     eprintln!("conformance: {name}");
//!     check(&store);
//! }
//! ```
//!
//! A check panics (with what differed) when the backend does not conform.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::*;
use std::collections::BTreeMap;
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::JobsRetried;
use tenure_model::{
    AccountState, CredentialKind, GrantState, IdentityKind, IdentityRef, LifecycleState, RequestKind, RequestState,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A check: panics, saying what differed, when the store does not conform.
pub type Check = fn(&dyn Store);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("a transaction dropped without commit leaves nothing", transactions_roll_back_on_drop),
    ("one pending job per (kind, identity, system)", one_pending_job_per_key),
    ("drift jobs: per account, perhaps nobody's, payload replaced", drift_jobs_per_account),
    ("notify jobs: one per channel and notice, the first payload kept", notify_jobs_per_notice),
    ("posture snapshots: newest first, as written", posture_snapshots),
    ("leases expire, attempts are fenced", leases_expire_and_attempts_are_fenced),
    ("a renewed lease holds; dead jobs can be retried", renewed_leases_hold_and_dead_jobs_retry),
    ("the ledger appends in order, chained to its head", ledger_appends_in_order_from_its_head),
    ("grants and accounts change only at the rev read", optimistic_rev_checks),
    ("an identity's rev changes with it and with each of its grants", identity_revs),
    ("findings with and without an identity", findings_with_and_without_an_identity),
    ("observations refresh, resolve when unseen; runs sum changes", observations_and_runs),
    ("identities: look-alikes, owners, expiry, events", identities_look_alikes_owners_and_events),
    ("requests end once; one answer per approver", requests_end_once_and_answers_are_unique),
    ("credentials and tokens revoke once", credentials_and_tokens_revoke_once),
    ("policies and checkpoints", policies_and_checkpoints),
    ("SCIM resources: one userName per source, any case", scim_resources),
    ("list pages: requests, credentials, tokens, jobs", list_pages),
    ("reviews: items by reviewer and stage, one decision per stage", reviews),
];

const T0: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);
const LEASE: Duration = Duration::seconds(30);

fn person(tx: &mut dyn WriteTx, reference: &str) -> i64 {
    let r: IdentityRef = reference.parse().unwrap();
    let attributes = BTreeMap::from([("department".to_owned(), "sales".to_owned())]);
    tx.insert_identity(&NewIdentity {
        reference: &r,
        kind: IdentityKind::Human,
        name: "Ada",
        attributes: &attributes,
        owner: None,
        purpose: None,
        expires_at: None,
        state: LifecycleState::Pending,
        policy_version: "v1",
        at: T0,
    })
    .unwrap()
}

/// A desired birthright grant of `ldap/vpn`, without an expiry.
fn vpn(identity_id: i64) -> NewGrant<'static> {
    NewGrant {
        identity_id,
        entitlement: "ldap/vpn",
        system: "ldap",
        state: GrantState::Desired,
        origin: "birthright",
        policy_version: "v1",
        at: T0,
        expires_at: None,
        request_id: None,
    }
}

fn job<'a>(identity_id: i64, system: &'a str) -> NewJob<'a> {
    NewJob { kind: JobKind::Sync, identity_id, system, run_at: T0, request_id: None }
}

fn entry(tx: &mut dyn WriteTx, subject: &str, n: i64) -> i64 {
    let event = LedgerEvent::JobsRetried(JobsRetried { jobs: vec![n] });
    tx.append_entry(&NewEntry {
        at: T0,
        actor: "conformance",
        subject,
        policy_version: "v1",
        event: &event,
        request_id: None,
    })
    .unwrap()
}

pub fn transactions_roll_back_on_drop(s: &dyn Store) {
    let r: IdentityRef = "hr:E1".parse().unwrap();
    {
        let mut tx = s.write().unwrap();
        let id = person(tx.as_mut(), "hr:E1");
        tx.enqueue(&job(id, "ldap")).unwrap();
        entry(tx.as_mut(), "hr:E1", 1);
    }
    let tx = s.read().unwrap();
    assert!(tx.identity(&r).unwrap().is_none(), "an uncommitted identity is visible");
    assert!(tx.jobs(None).unwrap().is_empty(), "an uncommitted job is visible");
    assert_eq!(tx.ledger_count().unwrap(), 0, "an uncommitted ledger entry is visible");
    drop(tx);
    let mut tx = s.write().unwrap();
    person(tx.as_mut(), "hr:E1");
    tx.commit().unwrap();
    let got = s.read().unwrap().identity(&r).unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.created_at, got.state), ("Ada", T0, LifecycleState::Pending));
    assert_eq!(got.attributes["department"], "sales");
}

pub fn one_pending_job_per_key(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    for _ in 0..3 {
        tx.enqueue(&job(id, "ldap")).unwrap();
    }
    assert_eq!(tx.jobs(None).unwrap().len(), 1, "three enqueues of one work item made several jobs");
    let first = tx.claim_job(T0, LEASE).unwrap().unwrap();
    assert_eq!((first.system.as_str(), first.attempts, first.state), ("ldap", 1, JobState::Running));
    // Running: a new change enqueues a second job, which waits while the first is leased.
    tx.enqueue(&job(id, "ldap")).unwrap();
    assert!(tx.claim_job(T0, LEASE).unwrap().is_none(), "two live attempts of one work item");
    // Other work is not held up.
    tx.enqueue(&job(id, "pg")).unwrap();
    assert_eq!(tx.claim_job(T0, LEASE).unwrap().unwrap().system, "pg");
    assert_eq!(tx.job_counts().unwrap(), BTreeMap::from([("pending".into(), 1), ("running".into(), 2)]));
    assert_eq!(tx.unfinished_jobs(id).unwrap(), 3);
    assert!(tx.finish_job(&first, T0).unwrap());
    assert_eq!(tx.unfinished_jobs(id).unwrap(), 2);
    assert_eq!(tx.unfinished_jobs(id + 1).unwrap(), 0);
    tx.commit().unwrap();
}

pub fn drift_jobs_per_account(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    let p1 = serde_json::json!({ "disable": true });
    let p2 = serde_json::json!({ "disable": true, "revoke": ["vpn"] });
    let drift =
        |identity_id, account, payload| NewDriftJob { identity_id, system: "ldap", account, payload, run_at: T0 };
    tx.enqueue_drift(&drift(None, "ghost", &p1)).unwrap();
    tx.enqueue_drift(&drift(None, "ghost", &p2)).unwrap();
    tx.enqueue_drift(&drift(None, "other", &p1)).unwrap();
    tx.enqueue_drift(&drift(Some(id), "E1-old", &p1)).unwrap();
    // A sync job of the same identity and system is other work.
    tx.enqueue(&job(id, "ldap")).unwrap();
    let all = tx.jobs(None).unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    let ghost = all.iter().find(|j| j.account == "ghost").unwrap();
    assert_eq!((ghost.kind, ghost.identity_id, ghost.payload.as_ref()), (JobKind::Drift, None, Some(&p2)));
    let mut claimed = Vec::new();
    while let Some(j) = tx.claim_job(T0, LEASE).unwrap() {
        claimed.push((j.kind, j.account.clone()));
    }
    assert_eq!(claimed.len(), 4, "every one is claimable at once: {claimed:?}");
    // While `ghost` runs, a new reaction for it waits; when it fails, the newer one supersedes it.
    tx.enqueue_drift(&drift(None, "ghost", &p1)).unwrap();
    assert!(tx.claim_job(T0, LEASE).unwrap().is_none(), "two live attempts on one account");
    let running = tx.jobs(Some(JobState::Running)).unwrap().into_iter().find(|j| j.account == "ghost").unwrap();
    assert!(tx.fail_job(&running, "unreachable", Some(T0), T0).unwrap());
    let pending: Vec<JobRow> = tx.jobs(Some(JobState::Pending)).unwrap();
    assert_eq!(pending.iter().map(|j| j.account.as_str()).collect::<Vec<_>>(), ["ghost"]);
    tx.commit().unwrap();
}

pub fn notify_jobs_per_notice(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    let p1 = serde_json::json!({ "type": "review.assigned", "items": 1 });
    let p2 = serde_json::json!({ "type": "review.assigned", "items": 2 });
    let notice = |identity_id, channel, key, payload| NewNoticeJob { identity_id, channel, key, payload, run_at: T0 };
    tx.enqueue_notice(&notice(Some(id), "hook", "review:1:0:hr:E1", &p1)).unwrap();
    tx.enqueue_notice(&notice(Some(id), "hook", "review:1:0:hr:E1", &p2)).unwrap();
    tx.enqueue_notice(&notice(Some(id), "mail", "review:1:0:hr:E1", &p1)).unwrap();
    tx.enqueue_notice(&notice(None, "hook", "request:9", &p1)).unwrap();
    let all = tx.jobs(None).unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let hook = all.iter().find(|j| j.system == "hook" && j.identity_id == Some(id)).unwrap();
    assert_eq!(
        (hook.kind, hook.account.as_str(), hook.payload.as_ref()),
        (JobKind::Notify, "review:1:0:hr:E1", Some(&p1))
    );
    let mut claimed = 0;
    while let Some(j) = tx.claim_job(T0, LEASE).unwrap() {
        assert!(tx.finish_job(&j, T0).unwrap());
        claimed += 1;
    }
    assert_eq!(claimed, 3);
    // A notice for someone is no work on them: it neither holds a closure nor hides a stall.
    tx.enqueue_notice(&notice(Some(id), "hook", "later", &p1)).unwrap();
    assert_eq!(tx.unfinished_jobs(id).unwrap(), 0);
    tx.commit().unwrap();
}

pub fn posture_snapshots(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    assert!(tx.posture_snapshots(5).unwrap().is_empty());
    for n in 0..3 {
        tx.put_posture_snapshot(T0 + Duration::days(n), &serde_json::json!({ "n": n })).unwrap();
    }
    tx.commit().unwrap();
    let got = s.read().unwrap().posture_snapshots(2).unwrap();
    assert_eq!(
        got,
        [
            (T0 + Duration::days(2), serde_json::json!({ "n": 2 })),
            (T0 + Duration::days(1), serde_json::json!({ "n": 1 }))
        ]
    );
}

pub fn leases_expire_and_attempts_are_fenced(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    tx.enqueue(&job(id, "exec")).unwrap();
    let first = tx.claim_job(T0, LEASE).unwrap().unwrap();
    // The first worker went quiet: its lease runs out and the job is claimed again.
    let second = tx.claim_job(T0 + Duration::seconds(31), LEASE).unwrap().unwrap();
    assert_eq!((second.id, second.attempts), (first.id, 2));
    // The stale attempt is fenced off: neither its failure nor its success counts.
    assert!(!tx.fail_job(&first, "timed out", Some(T0 + Duration::seconds(32)), T0).unwrap());
    assert!(!tx.finish_job(&first, T0).unwrap());
    assert!(!tx.renew_lease(&first, T0 + Duration::seconds(90)).unwrap());
    assert_eq!(tx.jobs(Some(JobState::Running)).unwrap().len(), 1);
    // The holder fails: the job goes back to pending, with the error, not done.
    assert!(tx.fail_job(&second, "timed out", Some(T0 + Duration::seconds(40)), T0).unwrap());
    let jobs = tx.jobs(None).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].state, jobs[0].last_error.as_deref()), (JobState::Pending, Some("timed out")));
    // Not due before its retry time; due after.
    assert!(tx.claim_job(T0 + Duration::seconds(39), LEASE).unwrap().is_none());
    let third = tx.claim_job(T0 + Duration::seconds(40), LEASE).unwrap().unwrap();
    assert!(tx.finish_job(&third, T0).unwrap());
    assert_eq!(tx.jobs(Some(JobState::Done)).unwrap().len(), 1);
    tx.commit().unwrap();
}

pub fn renewed_leases_hold_and_dead_jobs_retry(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    tx.enqueue(&job(id, "exec")).unwrap();
    let held = tx.claim_job(T0, LEASE).unwrap().unwrap();
    assert!(tx.renew_lease(&held, T0 + Duration::seconds(60)).unwrap());
    assert!(tx.claim_job(T0 + Duration::seconds(45), LEASE).unwrap().is_none(), "claimed under a renewed lease");
    assert!(tx.fail_job(&held, "boom", None, T0).unwrap());
    assert_eq!(tx.jobs(Some(JobState::Dead)).unwrap().len(), 1);
    assert_eq!(tx.job(held.id).unwrap().unwrap().state, JobState::Dead);
    assert!(tx.job(held.id + 1000).unwrap().is_none());
    assert_eq!(tx.retry_dead_jobs(DeadJobs::OfIdentity(id + 1), T0).unwrap(), Vec::<i64>::new());
    assert_eq!(tx.retry_dead_jobs(DeadJobs::One(held.id + 1), T0).unwrap(), Vec::<i64>::new());
    assert_eq!(tx.retry_dead_jobs(DeadJobs::One(held.id), T0).unwrap(), vec![held.id]);
    assert_eq!(tx.retry_dead_jobs(DeadJobs::All, T0).unwrap(), Vec::<i64>::new(), "only dead jobs are retried");
    let again = tx.claim_job(T0, LEASE).unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (held.id, 1), "a retried job starts with a fresh attempt count");
    tx.commit().unwrap();
}

pub fn ledger_appends_in_order_from_its_head(s: &dyn Store) {
    assert!(s.read().unwrap().ledger_head().unwrap().is_none());
    let mut tx = s.write().unwrap();
    for n in 0..3 {
        assert_eq!(entry(tx.as_mut(), if n == 1 { "hr:E2" } else { "hr:E1" }, n), n);
    }
    tx.commit().unwrap();
    // An append rolled back leaves no gap.
    {
        let mut tx = s.write().unwrap();
        entry(tx.as_mut(), "hr:E1", 99);
    }
    let mut tx = s.write().unwrap();
    assert_eq!(entry(tx.as_mut(), "hr:E1", 3), 3);
    tx.commit().unwrap();

    let tx = s.read().unwrap();
    assert_eq!(tx.ledger_count().unwrap(), 4);
    let entries = tx.ledger_entries(0, 10).unwrap();
    assert_eq!(entries.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let mut prev = tenure_ledger::entry::ZERO.to_owned();
    for (seq, bytes) in &entries {
        let e = tenure_ledger::Entry::parse(bytes).unwrap();
        assert_eq!((e.seq, &e.prev), (u64::try_from(*seq).unwrap(), &prev), "entry {seq} does not chain");
        assert_eq!(e.to_bytes(), *bytes, "entry {seq} is not stored as hashed");
        prev = hex::encode(tenure_ledger::merkle::leaf_hash(bytes));
    }
    let leaves = tx.ledger_leaves(0, 4).unwrap();
    assert_eq!(leaves.last().map(hex::encode), Some(prev));
    let head = tx.ledger_head().unwrap().unwrap();
    assert_eq!((head.seq, Some(head.leaf)), (3, leaves.last().copied()));
    assert_eq!(tx.ledger_entries(2, 1).unwrap().len(), 1);
    let mine = tx.ledger_for("hr:E1").unwrap();
    assert_eq!(mine.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 2, 3]);
    assert_eq!(mine[2].event, LedgerEvent::JobsRetried(JobsRetried { jobs: vec![3] }));
    assert_eq!((mine[0].actor.as_str(), mine[0].at), ("conformance", T0));
    let last = tx.ledger_last("hr:E1", "jobs.retried").unwrap().unwrap();
    assert_eq!(last.seq, 3);
    assert_eq!(tx.ledger_last("hr:E1", "review.closed").unwrap(), None);
    assert_eq!(tx.ledger_last("hr:E404", "jobs.retried").unwrap(), None);
}

pub fn optimistic_rev_checks(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    let grant = NewGrant { expires_at: Some(T0 + Duration::hours(1)), ..vpn(id) };
    tx.put_grant(&grant).unwrap();
    let g = tx.grants(id).unwrap().pop().unwrap();
    assert_eq!((g.rev, g.state, g.expires_at), (1, GrantState::Desired, Some(T0 + Duration::hours(1))));
    assert!(tx.set_grant_state(g.id, g.rev, GrantState::Provisioned, T0).unwrap());
    assert!(!tx.set_grant_state(g.id, g.rev, GrantState::Verified, T0).unwrap(), "a stale rev won");
    assert_eq!(tx.grants(id).unwrap()[0].state, GrantState::Provisioned);
    // Put again: back to the state asked for, rev bumped.
    tx.put_grant(&NewGrant { state: GrantState::Revoking, ..grant }).unwrap();
    assert_eq!((tx.grants(id).unwrap()[0].rev, tx.grants(id).unwrap()[0].state), (3, GrantState::Revoking));
    assert_eq!(tx.all_grants().unwrap()[&id].len(), 1);
    assert!(tx.grants_expiring(T0 + Duration::hours(2)).unwrap().is_empty(), "a revoking grant is not wanted");

    tx.put_account(id, "ldap", "E1", AccountState::Desired, T0).unwrap();
    let a = tx.account_by_name("ldap", "E1").unwrap().unwrap();
    assert_eq!((a.identity_id, a.rev), (id, 1));
    assert!(tx.set_account_state(id, "ldap", a.rev, AccountState::Verified, T0).unwrap());
    assert!(!tx.set_account_state(id, "ldap", a.rev, AccountState::Disabling, T0).unwrap(), "a stale rev won");
    assert_eq!(tx.accounts(id).unwrap()[0].state, AccountState::Verified);
    let by_system = tx.system_accounts("ldap").unwrap();
    assert_eq!(by_system.iter().map(|a| (a.identity_id, a.name.as_str())).collect::<Vec<_>>(), [(id, a.name.as_str())]);
    assert!(tx.system_accounts("nowhere").unwrap().is_empty());
    // A last login is an observation: kept when later, the rev untouched.
    assert_eq!(tx.accounts(id).unwrap()[0].last_login, None);
    assert!(tx.set_account_last_login("ldap", "E1", T0 + Duration::hours(1)).unwrap());
    assert!(!tx.set_account_last_login("ldap", "E1", T0).unwrap(), "an earlier login replaced a later one");
    assert!(!tx.set_account_last_login("ldap", "nobody", T0).unwrap());
    let a2 = tx.account_by_name("ldap", "E1").unwrap().unwrap();
    assert_eq!((a2.last_login, a2.rev), (Some(T0 + Duration::hours(1)), a.rev + 1));
    assert!(tx.system_grants("nowhere").unwrap().is_empty());
    assert_eq!(
        tx.system_grants("ldap").unwrap().iter().map(|g| g.entitlement.as_str()).collect::<Vec<_>>(),
        ["ldap/vpn"]
    );
    tx.commit().unwrap();
}

pub fn identity_revs(s: &dyn Store) {
    let r: IdentityRef = "hr:E1".parse().unwrap();
    let rev = |s: &dyn Store| {
        let tx = s.read().unwrap();
        let (id, rev) = tx.identity_rev(&r).unwrap().unwrap();
        assert_eq!(tx.identity(&r).unwrap().unwrap().rev, rev, "the row carries the same rev");
        (id, rev)
    };
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    tx.commit().unwrap();
    assert!(s.read().unwrap().identity_rev(&"hr:E2".parse().unwrap()).unwrap().is_none());
    let (got, mut last) = rev(s);
    assert_eq!(got, id);
    let mut changed = |what: &str, f: &dyn Fn(&mut dyn WriteTx)| {
        let mut tx = s.write().unwrap();
        f(tx.as_mut());
        tx.commit().unwrap();
        let (_, now) = rev(s);
        assert!(now > last, "{what}: rev {last} -> {now}");
        last = now;
    };
    changed("an update", &|tx| {
        let mut row = tx.identity_by_id(id).unwrap().unwrap();
        row.attributes.insert("title".into(), "Engineer".into());
        tx.update_identity(&row).unwrap();
    });
    changed("a state change", &|tx| tx.set_identity_state(id, LifecycleState::Active, T0).unwrap());
    let grant = vpn(id);
    changed("a new grant", &|tx| tx.put_grant(&grant).unwrap());
    changed("a grant put again", &|tx| tx.put_grant(&NewGrant { state: GrantState::Revoking, ..grant }).unwrap());
    changed("a grant's state", &|tx| {
        let g = tx.grants(id).unwrap().pop().unwrap();
        assert!(tx.set_grant_state(g.id, g.rev, GrantState::Revoked, T0).unwrap());
    });
    // A rolled-back change changes nothing.
    let mut tx = s.write().unwrap();
    tx.set_identity_state(id, LifecycleState::Leaving, T0).unwrap();
    drop(tx);
    assert_eq!(rev(s).1, last);
}

pub fn findings_with_and_without_an_identity(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    let detail = serde_json::json!({ "account": "uid=ghost" });
    let orphan = NewFinding {
        identity_id: None,
        kind: "orphan_account",
        entitlement: "ldap uid=ghost",
        detail: &detail,
        policy_version: "v1",
        at: T0,
    };
    assert!(tx.open_finding(&orphan).unwrap());
    assert!(!tx.open_finding(&orphan).unwrap(), "the same open finding twice");
    assert!(tx.open_finding(&NewFinding { identity_id: Some(id), ..orphan.clone() }).unwrap());
    let open = tx.findings(true).unwrap();
    assert_eq!(open.iter().map(|f| f.identity_id).collect::<Vec<_>>(), vec![None, Some(id)]);
    assert_eq!(open[0].detail, detail);
    assert_eq!(tx.open_findings(id).unwrap().len(), 1);
    assert!(tx.resolve_finding(None, "orphan_account", "ldap uid=ghost", T0).unwrap());
    assert!(!tx.resolve_finding(None, "orphan_account", "ldap uid=ghost", T0).unwrap());
    assert_eq!(tx.open_findings(id).unwrap().len(), 1, "resolving the orphan resolved the identity's");
    // Resolved, it may be opened again.
    assert!(tx.open_finding(&orphan).unwrap());
    assert_eq!(tx.findings(false).unwrap().len(), 3);
    // Keyset pages, in id order, with the filters applied before the limit.
    let ids = |q: FindingQuery<'_>, after: Option<i64>, limit: usize| -> Vec<i64> {
        tx.findings_page(&q, after, limit).unwrap().iter().map(|f| f.id).collect()
    };
    let all: Vec<i64> = tx.findings(false).unwrap().iter().map(|f| f.id).collect();
    let every = FindingQuery::default();
    assert_eq!(ids(every, None, 2), all[..2].to_vec());
    assert_eq!(ids(every, Some(all[1]), 2), all[2..].to_vec());
    assert_eq!(ids(every, Some(all[2]), 2), Vec::<i64>::new());
    assert_eq!(ids(FindingQuery { open_only: true, ..every }, None, 10), all[1..].to_vec());
    assert_eq!(ids(FindingQuery { resolved_only: true, ..every }, None, 10), all[..1].to_vec());
    assert_eq!(ids(FindingQuery { kind: Some("orphan_account"), ..every }, None, 10), all);
    assert_eq!(ids(FindingQuery { kind: Some("unmatched"), ..every }, None, 10), Vec::<i64>::new());
    assert_eq!(ids(FindingQuery { system: Some("nowhere"), ..every }, None, 10), Vec::<i64>::new());
    tx.commit().unwrap();
}

pub fn observations_and_runs(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E7");
    let d1 = serde_json::json!({ "n": 1 });
    let seen = |identity_id, account, target, at, detail| Observation {
        identity_id,
        kind: "reconcile.unmatched",
        system: "dir",
        account,
        target,
        detail,
        policy_version: "v1",
        at,
    };
    let a = tx.observe(&seen(None, "ghost", "", T0, &d1)).unwrap();
    let d2 = serde_json::json!({ "n": 2 });
    let later = T0 + time::Duration::minutes(5);
    assert_eq!(tx.observe(&seen(None, "ghost", "", later, &d2)).unwrap(), a, "seen again: the same finding");
    let b = tx.observe(&seen(Some(id), "ada", "vpn", T0, &d1)).unwrap();
    assert_ne!(a, b);
    // A plain finding with the same kind is another finding.
    let plain = NewFinding {
        identity_id: None,
        kind: "reconcile.unmatched",
        entitlement: "",
        detail: &d1,
        policy_version: "v1",
        at: T0,
    };
    assert!(tx.open_finding(&plain).unwrap());
    let open = tx.findings(true).unwrap();
    let ghost = open.iter().find(|f| f.id == a).unwrap();
    assert_eq!((ghost.system.as_str(), ghost.account.as_str(), &ghost.detail), ("dir", "ghost", &d2));
    assert_eq!((ghost.opened_at, ghost.last_seen_at), (T0, Some(later)));
    // A run at `later` saw the ghost but not ada's membership: that one resolves, alone.
    assert_eq!(tx.resolve_unseen("dir", later, later).unwrap(), 1);
    let open: Vec<i64> = tx.findings(true).unwrap().iter().map(|f| f.id).collect();
    assert!(open.contains(&a) && !open.contains(&b) && open.len() == 2, "{open:?}");
    assert_eq!(tx.resolve_unseen("other", later + time::Duration::hours(1), later).unwrap(), 0);

    let summary = serde_json::json!({ "counts": { "unmatched": 1 } });
    let plan = serde_json::json!([{ "account": "ghost" }]);
    let run = |state, started_at, changes| NewRun {
        system: "dir",
        state,
        started_at,
        finished_at: started_at,
        changes,
        summary: &summary,
        plan: &plan,
        digest: "ab",
        policy_version: "v1",
    };
    let r1 = tx.put_run(&run("applied", T0, 3)).unwrap();
    let r2 = tx.put_run(&run("quarantined", later, 0)).unwrap();
    tx.set_run_entry(r1, 42).unwrap();
    assert_eq!(tx.changes_since("dir", T0).unwrap(), 3);
    assert!(tx.update_run(r2, "released", 4, &summary).unwrap());
    assert_eq!(tx.changes_since("dir", T0).unwrap(), 7);
    assert_eq!(tx.changes_since("dir", later).unwrap(), 4);
    assert_eq!(tx.changes_since("db", T0).unwrap(), 0);
    let got = tx.run(r1).unwrap().unwrap();
    assert_eq!((got.ledger_seq, got.plan, got.state.as_str()), (Some(42), plan.clone(), "applied"));
    assert_eq!(tx.runs(Some("dir"), None, 10).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [r2, r1]);
    assert_eq!(tx.runs(None, None, 1).unwrap().len(), 1);
    assert_eq!(tx.runs(Some("dir"), Some(r2), 10).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [r1]);
    assert!(tx.runs(Some("dir"), Some(r1), 10).unwrap().is_empty());
    assert!(tx.run(r2 + 100).unwrap().is_none());
    tx.commit().unwrap();
}

pub fn identities_look_alikes_owners_and_events(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let ada = person(tx.as_mut(), "hr:E1000");
    // A Cyrillic Е: the same UTS #39 skeleton.
    let like: IdentityRef = "hr:\u{415}1000".parse().unwrap();
    assert_eq!(tx.identity_like(&like).unwrap().map(|i| i.id), Some(ada));
    let me: IdentityRef = "hr:E1000".parse().unwrap();
    assert!(tx.identity_like(&me).unwrap().is_none(), "an identity looks like itself");
    let svc: IdentityRef = "reg:svc".parse().unwrap();
    let attributes = BTreeMap::new();
    let id = tx
        .insert_identity(&NewIdentity {
            reference: &svc,
            kind: IdentityKind::Service,
            name: "svc",
            attributes: &attributes,
            owner: Some(&me),
            purpose: Some("search"),
            expires_at: Some(T0 + Duration::days(90)),
            state: LifecycleState::Active,
            policy_version: "v1",
            at: T0,
        })
        .unwrap();
    assert_eq!(tx.identities_owned_by(&me).unwrap().iter().map(|i| i.id).collect::<Vec<_>>(), vec![id]);
    let mut row = tx.identity_by_id(id).unwrap().unwrap();
    row.owner_deadline = Some(T0 + Duration::days(7));
    tx.update_identity(&row).unwrap();
    assert_eq!(tx.owners_overdue(T0 + Duration::days(8)).unwrap().len(), 1);
    assert!(tx.owners_overdue(T0 + Duration::days(6)).unwrap().is_empty());
    // Expiring: the service (90 days), not the person (no expiry); not once it is leaving.
    assert!(tx.identities_expiring(T0 + Duration::days(89)).unwrap().is_empty());
    assert_eq!(tx.identities_expiring(T0 + Duration::days(90)).unwrap().iter().map(|i| i.id).collect::<Vec<_>>(), [id]);
    tx.set_identity_state(id, LifecycleState::Suspended, T0).unwrap();
    assert_eq!(tx.identities_expiring(T0 + Duration::days(91)).unwrap().len(), 1, "a suspended identity still expires");
    let mut held = tx.identity_by_id(id).unwrap().unwrap();
    held.suspended_by = Some(tenure_model::SuspendedBy::Expiry);
    tx.update_identity(&held).unwrap();
    assert!(tx.identities_expiring(T0 + Duration::days(91)).unwrap().is_empty(), "its expiry was acted on");
    assert_eq!(tx.identity_by_id(id).unwrap().unwrap().suspended_by, Some(tenure_model::SuspendedBy::Expiry));
    tx.set_identity_state(id, LifecycleState::Leaving, T0).unwrap();
    assert!(tx.identities_expiring(T0 + Duration::days(91)).unwrap().is_empty(), "a leaver is not expiring");
    tx.set_identity_state(id, LifecycleState::Active, T0).unwrap();
    tx.set_identity_state(ada, LifecycleState::Leaving, T0).unwrap();
    assert_eq!(tx.leavers_stalled(T0 + Duration::minutes(15)).unwrap().len(), 1, "a leaver with no job");
    tx.enqueue(&job(ada, "ldap")).unwrap();
    assert!(tx.leavers_stalled(T0 + Duration::minutes(15)).unwrap().is_empty(), "a leaver with a job");
    tx.insert_event(&NewEvent {
        source: "hr",
        event_id: "e1",
        kind: "joined",
        identity: "hr:E1000",
        at: T0,
        received_at: T0,
        digest: "d1",
        payload: "{}",
    })
    .unwrap();
    assert_eq!(tx.event_digest("hr", "e1").unwrap().as_deref(), Some("d1"));
    assert_eq!(tx.event_count().unwrap(), 1);
    assert_eq!(tx.identities().unwrap().len(), 2);
    // Keyset pages: in reference order, after the cursor, filtered; a source is its prefix
    // only (`hr:` is not `hrx:`).
    person(tx.as_mut(), "hrx:E1");
    person(tx.as_mut(), "hr:E2000");
    let all = IdentityFilter::default();
    let refs = |rows: Vec<IdentityRow>| rows.into_iter().map(|r| r.reference.to_string()).collect::<Vec<_>>();
    assert_eq!(refs(tx.identities_page(&all, None, 2).unwrap()), ["hr:E1000", "hr:E2000"]);
    assert_eq!(refs(tx.identities_page(&all, Some("hr:E2000"), 2).unwrap()), ["hrx:E1", "reg:svc"]);
    assert!(tx.identities_page(&all, Some("reg:svc"), 2).unwrap().is_empty());
    let hr = IdentityFilter { source: Some("hr".into()), ..IdentityFilter::default() };
    assert_eq!(refs(tx.identities_page(&hr, None, 10).unwrap()), ["hr:E1000", "hr:E2000"]);
    let leaving = IdentityFilter { state: Some(LifecycleState::Leaving), ..IdentityFilter::default() };
    assert_eq!(refs(tx.identities_page(&leaving, None, 10).unwrap()), ["hr:E1000"]);
    let services = IdentityFilter { kind: Some(IdentityKind::Service), ..IdentityFilter::default() };
    assert_eq!(refs(tx.identities_page(&services, None, 10).unwrap()), ["reg:svc"]);
    tx.commit().unwrap();
}

pub fn requests_end_once_and_answers_are_unique(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let (me, boss) = (person(tx.as_mut(), "hr:E1"), person(tx.as_mut(), "hr:E2"));
    let decision = serde_json::json!({ "decision": "needs_approval" });
    let id = tx
        .insert_request(&NewRequest {
            kind: RequestKind::Jit,
            requester_id: me,
            beneficiary_id: me,
            entitlement: "pg/admin",
            intent: "incident 7",
            duration: Some(Duration::minutes(30)),
            state: RequestState::Pending,
            decision: &decision,
            waives: &[],
            policy_version: "v1",
            at: T0,
            decide_by: T0 + Duration::days(1),
        })
        .unwrap();
    assert_eq!(tx.pending_requests_of(me).unwrap().len(), 1);
    assert!(tx.requests_overdue(T0).unwrap().is_empty());
    assert_eq!(tx.requests_overdue(T0 + Duration::days(2)).unwrap().len(), 1);
    let answer = ApprovalRow { request_id: id, approver_id: boss, approve: true, reason: "ok".into(), at: T0 };
    assert!(tx.insert_approval(&answer).unwrap());
    assert!(!tx.insert_approval(&answer).unwrap(), "one approver answered twice");
    assert_eq!(tx.approvals(id).unwrap().len(), 1);
    assert!(tx.finish_request(id, RequestState::Approved, T0).unwrap());
    assert!(!tx.finish_request(id, RequestState::Denied, T0).unwrap(), "a request ended twice");
    let r = tx.request(id).unwrap().unwrap();
    assert_eq!((r.state, r.duration, r.decision), (RequestState::Approved, Some(Duration::minutes(30)), decision));
    assert_eq!(tx.requests(Some(RequestState::Pending)).unwrap().len(), 0);
    tx.commit().unwrap();
}

pub fn credentials_and_tokens_revoke_once(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let id = person(tx.as_mut(), "hr:E1");
    let c = CredentialRow {
        id: "crd_1".into(),
        identity_id: id,
        kind: CredentialKind::ApiKey,
        fingerprint: "ff".into(),
        spiffe_id: None,
        audience: vec!["tenure".into()],
        system: None,
        name: None,
        purpose: "ci".into(),
        owner: None,
        issued_by: "test".into(),
        issued_at: T0,
        expires_at: T0 + Duration::hours(1),
        revoked_at: None,
        revoke_reason: None,
        verified_at: None,
        evidence: None,
        replaces: None,
    };
    tx.insert_credential(&c).unwrap();
    assert_eq!(tx.credential_by_fingerprint("ff").unwrap().map(|c| c.id), Some("crd_1".into()));
    assert_eq!(tx.credentials_live(id, T0).unwrap().len(), 1);
    assert!(tx.credentials_live(id, T0 + Duration::hours(2)).unwrap().is_empty(), "an expired key is live");
    assert!(tx.revoke_credential("crd_1", T0, "leaver").unwrap());
    assert!(!tx.revoke_credential("crd_1", T0, "again").unwrap(), "revoked twice");
    assert_eq!(tx.credentials_to_verify(id).unwrap().len(), 1);
    let evidence = serde_json::json!({ "method": "introspection" });
    tx.set_credential_verified("crd_1", T0, &evidence).unwrap();
    let got = tx.credential("crd_1").unwrap().unwrap();
    assert_eq!((got.revoke_reason.as_deref(), got.evidence), (Some("leaver"), Some(evidence)));
    assert!(tx.credentials_to_verify(id).unwrap().is_empty());
    assert_eq!(tx.credential_counts(T0).unwrap(), BTreeMap::from([("revocation-verified".into(), 1)]));

    let key = SigningKeyRow {
        kid: "k1".into(),
        usage: "jwt".into(),
        public: "{}".into(),
        created_at: T0,
        retired_at: None,
        removed_at: None,
    };
    tx.insert_signing_key(&key).unwrap();
    assert!(tx.retire_signing_key("k1", T0).unwrap());
    assert!(!tx.retire_signing_key("k1", T0).unwrap());
    assert!(tx.remove_signing_key("k1", T0).unwrap());
    assert!(!tx.remove_signing_key("k1", T0).unwrap());
    assert_eq!(tx.signing_keys().unwrap().len(), 1);

    let t = TokenRow {
        id: "t1".into(),
        identity_id: id,
        roles: vec!["admin".into()],
        hash: vec![1, 2, 3],
        description: String::new(),
        created_at: T0,
        expires_at: T0 + Duration::days(90),
        revoked_at: None,
    };
    tx.insert_token(&t).unwrap();
    assert!(tx.revoke_token("t1", T0).unwrap());
    assert!(!tx.revoke_token("t1", T0).unwrap(), "revoked twice");
    assert!(!tx.revoke_token("nope", T0).unwrap());
    assert_eq!(tx.token("t1").unwrap().unwrap().revoked_at, Some(T0));
    assert_eq!(tx.tokens().unwrap().len(), 1);
    tx.commit().unwrap();
}

pub fn policies_and_checkpoints(s: &dyn Store) {
    assert!(s.read().unwrap().current_policy().unwrap().is_none());
    let mut tx = s.write().unwrap();
    for v in ["v1", "v2"] {
        let files = BTreeMap::from([("tenure.toml".to_owned(), v.as_bytes().to_vec())]);
        tx.deploy_policy(&StoredPolicy { version: v.into(), files }, T0).unwrap();
    }
    entry(tx.as_mut(), "policy", 0);
    let cp = CheckpointRow { size: 1, root: vec![7; 32], frontier: vec![], note: "note".into(), created_at: T0 };
    tx.add_checkpoint(&cp).unwrap();
    tx.commit().unwrap();
    let tx = s.read().unwrap();
    let p = tx.current_policy().unwrap().unwrap();
    assert_eq!((p.version.as_str(), p.files["tenure.toml"].as_slice()), ("v2", &b"v2"[..]));
    assert_eq!(tx.current_policy_version().unwrap().as_deref(), Some("v2"));
    assert_eq!(tx.latest_checkpoint().unwrap(), Some(cp.clone()));
    assert_eq!(tx.checkpoints().unwrap(), vec![cp]);
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #[test]
    fn sqlite_conforms() {
        for (name, check) in super::CHECKS {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::SqliteStore::open(dir.path()).unwrap();
            eprintln!("conformance: {name}");
            check(&store);
        }
    }
}

pub fn scim_resources(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let ada = person(tx.as_mut(), "okta:ada");
    let row = |id: &str, name: &str, version: i64| ScimRow {
        source: "okta".into(),
        id: id.into(),
        identity_id: ada,
        user_name: name.into(),
        version,
        resource: serde_json::json!({ "userName": name }),
        created_at: T0,
        updated_at: T0,
    };
    tx.put_scim_user(&row("u1", "Ada@Example.com", 1)).unwrap();
    assert!(tx.put_scim_user(&row("u2", "ada@example.COM", 1)).is_err(), "a userName in another case is taken");
    tx.put_scim_user(&row("u1", "ada@example.com", 2)).unwrap();
    let got = tx.scim_user_named("okta", "ADA@EXAMPLE.COM").unwrap().unwrap();
    assert_eq!((got.id.as_str(), got.version, got.user_name.as_str()), ("u1", 2, "ada@example.com"));
    assert!(tx.scim_user_named("other", "ada@example.com").unwrap().is_none());
    assert_eq!(tx.scim_user_of(ada).unwrap().map(|r| r.id), Some("u1".into()));
    assert_eq!(tx.scim_users("okta").unwrap().len(), 1);
    assert!(tx.delete_scim_user("okta", "u1").unwrap());
    assert!(!tx.delete_scim_user("okta", "u1").unwrap());
    assert!(tx.scim_user("okta", "u1").unwrap().is_none());
    tx.commit().unwrap();
}

pub fn list_pages(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let (me, you) = (person(tx.as_mut(), "hr:E1"), person(tx.as_mut(), "hr:E2"));
    let decision = serde_json::json!({ "decision": "needs_approval" });
    let mut requests = Vec::new();
    for (n, (kind, who)) in
        [(RequestKind::Access, me), (RequestKind::Jit, you), (RequestKind::Access, you), (RequestKind::Exception, me)]
            .into_iter()
            .enumerate()
    {
        let id = tx
            .insert_request(&NewRequest {
                kind,
                requester_id: who,
                beneficiary_id: who,
                entitlement: "pg/admin",
                intent: "work",
                duration: None,
                state: RequestState::Pending,
                decision: &decision,
                waives: &[],
                policy_version: "v1",
                at: T0 + Duration::minutes(i64::try_from(n).unwrap()),
                decide_by: T0 + Duration::days(1),
            })
            .unwrap();
        requests.push(id);
    }
    tx.finish_request(requests[0], RequestState::Denied, T0).unwrap();
    let ids = |rows: Vec<RequestRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let every = RequestQuery::default();
    let newest: Vec<i64> = requests.iter().rev().copied().collect();
    assert_eq!(ids(tx.requests_page(&every, None, 3).unwrap()), newest[..3].to_vec(), "not newest first");
    assert_eq!(ids(tx.requests_page(&every, Some(newest[2]), 3).unwrap()), newest[3..].to_vec());
    assert_eq!(ids(tx.requests_page(&every, Some(newest[3]), 3).unwrap()), Vec::<i64>::new());
    let pending = RequestQuery { state: Some(RequestState::Pending), ..every };
    assert_eq!(ids(tx.requests_page(&pending, None, 9).unwrap()), newest[..3].to_vec());
    let access = RequestQuery { kind: Some(RequestKind::Access), ..every };
    assert_eq!(ids(tx.requests_page(&access, None, 9).unwrap()), vec![requests[2], requests[0]]);
    let yours = RequestQuery { beneficiary_id: Some(you), ..every };
    assert_eq!(ids(tx.requests_page(&yours, None, 9).unwrap()), vec![requests[2], requests[1]]);

    // Credentials: newest first; two issued at the same instant are ordered by id.
    let at = [T0, T0 + Duration::hours(1), T0 + Duration::hours(1), T0 + Duration::hours(2)];
    for (n, issued_at) in at.into_iter().enumerate() {
        let login = n == 1;
        tx.insert_credential(&CredentialRow {
            id: format!("crd_{n}"),
            identity_id: if n == 3 { you } else { me },
            kind: if login { CredentialKind::PostgresLogin } else { CredentialKind::ApiKey },
            fingerprint: format!("f{n}"),
            spiffe_id: None,
            audience: vec![],
            system: login.then(|| "pg".to_owned()),
            name: None,
            purpose: "ci".into(),
            owner: None,
            issued_by: "test".into(),
            issued_at,
            expires_at: issued_at + Duration::hours(3),
            revoked_at: None,
            revoke_reason: None,
            verified_at: None,
            evidence: None,
            replaces: None,
        })
        .unwrap();
    }
    tx.revoke_credential("crd_2", T0, "gone").unwrap();
    let now = T0 + Duration::minutes(200);
    let cids = |rows: Vec<CredentialRow>| rows.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let every = CredentialQuery::default();
    assert_eq!(cids(tx.credentials_page(&every, now, None, 2).unwrap()), ["crd_3", "crd_1"]);
    assert_eq!(cids(tx.credentials_page(&every, now, Some("crd_1"), 2).unwrap()), ["crd_2", "crd_0"]);
    assert!(tx.credentials_page(&every, now, Some("crd_0"), 2).unwrap().is_empty());
    assert!(tx.credentials_page(&every, now, Some("nope"), 2).unwrap().is_empty(), "an unknown cursor listed");
    let mine = CredentialQuery { identity_id: Some(me), ..every };
    assert_eq!(cids(tx.credentials_page(&mine, now, None, 9).unwrap()), ["crd_1", "crd_2", "crd_0"]);
    let on_pg = CredentialQuery { system: Some("pg"), ..every };
    assert_eq!(cids(tx.credentials_page(&on_pg, now, None, 9).unwrap()), ["crd_1"]);
    let keys = CredentialQuery { kind: Some(CredentialKind::ApiKey), ..every };
    assert_eq!(cids(tx.credentials_page(&keys, now, None, 9).unwrap()), ["crd_3", "crd_2", "crd_0"]);
    let state = |st| cids(tx.credentials_page(&CredentialQuery { state: Some(st), ..every }, now, None, 9).unwrap());
    assert_eq!(state(CredentialStatus::Active), ["crd_3", "crd_1"]);
    assert_eq!(state(CredentialStatus::Expired), ["crd_0"]);
    assert_eq!(state(CredentialStatus::Revoked), ["crd_2"]);
    assert!(state(CredentialStatus::RevocationVerified).is_empty());

    // Tokens: oldest first.
    for (n, who) in [me, you, me].into_iter().enumerate() {
        let created_at = T0 + Duration::days(i64::try_from(n).unwrap());
        tx.insert_token(&TokenRow {
            id: format!("t{n}"),
            identity_id: who,
            roles: vec!["auditor".into()],
            hash: vec![u8::try_from(n).unwrap()],
            description: String::new(),
            created_at,
            expires_at: created_at + Duration::days(10),
            revoked_at: None,
        })
        .unwrap();
    }
    tx.revoke_token("t1", T0).unwrap();
    let tids = |rows: Vec<TokenRow>| rows.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let every = TokenQuery::default();
    let now = T0 + Duration::days(11);
    assert_eq!(tids(tx.tokens_page(&every, now, None, 2).unwrap()), ["t0", "t1"]);
    assert_eq!(tids(tx.tokens_page(&every, now, Some("t1"), 2).unwrap()), ["t2"]);
    assert!(tx.tokens_page(&every, now, Some("nope"), 2).unwrap().is_empty(), "an unknown cursor listed");
    let state = |st| tids(tx.tokens_page(&TokenQuery { state: Some(st), ..every }, now, None, 9).unwrap());
    assert_eq!(state(TokenStatus::Active), ["t2"]);
    assert_eq!(state(TokenStatus::Expired), ["t0"]);
    assert_eq!(state(TokenStatus::Revoked), ["t1"]);
    let mine = TokenQuery { identity_id: Some(me), ..every };
    assert_eq!(tids(tx.tokens_page(&mine, now, None, 9).unwrap()), ["t0", "t2"]);

    // Jobs: in id order; "failing" is dead or pending after a failed attempt.
    for (who, system) in [(me, "ldap"), (me, "pg"), (you, "ldap")] {
        tx.enqueue(&job(who, system)).unwrap();
    }
    let first = tx.claim_job(T0, LEASE).unwrap().unwrap();
    tx.fail_job(&first, "boom", None, T0).unwrap();
    let jobs: Vec<i64> = tx.jobs(None).unwrap().into_iter().map(|j| j.id).collect();
    let jids = |rows: Vec<JobRow>| rows.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let every = JobQuery::default();
    assert_eq!(jids(tx.jobs_page(&every, None, 2).unwrap()), jobs[..2].to_vec());
    assert_eq!(jids(tx.jobs_page(&every, Some(jobs[1]), 2).unwrap()), jobs[2..].to_vec());
    assert_eq!(jids(tx.jobs_page(&JobQuery { failing: true, ..every }, None, 9).unwrap()), vec![first.id]);
    assert_eq!(
        jids(tx.jobs_page(&JobQuery { system: Some("ldap"), ..every }, None, 9).unwrap()),
        vec![jobs[0], jobs[2]]
    );
    assert_eq!(jids(tx.jobs_page(&JobQuery { identity_id: Some(you), ..every }, None, 9).unwrap()), vec![jobs[2]]);
    let dead = JobQuery { state: Some(JobState::Dead), ..every };
    assert_eq!(jids(tx.jobs_page(&dead, None, 9).unwrap()), vec![first.id]);
    assert!(tx.jobs_page(&JobQuery { kind: Some(JobKind::Drift), ..every }, None, 9).unwrap().is_empty());
    tx.commit().unwrap();
}

pub fn reviews(s: &dyn Store) {
    let mut tx = s.write().unwrap();
    let ada = person(tx.as_mut(), "hr:ada");
    let bob = person(tx.as_mut(), "hr:bob");
    let eve = person(tx.as_mut(), "hr:eve");
    tx.put_grant(&vpn(ada)).unwrap();
    let grant = tx.grants(ada).unwrap()[0].id;
    let c = tx
        .insert_campaign(&NewCampaign {
            name: "priv",
            policy_version: "v1",
            stages: 2,
            started_at: T0,
            deadline: T0 + Duration::days(14),
            started_by: "operator:cli",
        })
        .unwrap();
    let evidence = serde_json::json!({ "peers": 0 });
    let item = |tx: &mut dyn WriteTx| {
        tx.insert_review_item(&NewReviewItem {
            campaign_id: c,
            identity_id: ada,
            grant_id: grant,
            entitlement: "dir/vpn",
            system: "dir",
            origin: "request",
            privileged: true,
            granted_at: Some(T0),
            recommendation: "keep",
            evidence: &evidence,
        })
        .unwrap()
    };
    let (one, two) = (item(tx.as_mut()), item(tx.as_mut()));
    tx.assign_reviewers(one, 0, &[bob, eve]).unwrap();
    tx.assign_reviewers(one, 0, &[bob]).unwrap();
    tx.assign_reviewers(two, 0, &[eve]).unwrap();
    tx.commit().unwrap();

    let r = s.read().unwrap();
    assert_eq!(r.campaign(c).unwrap().unwrap().state, "open");
    assert_eq!(r.last_campaign("priv").unwrap().unwrap().id, c);
    assert!(r.last_campaign("other").unwrap().is_none());
    assert_eq!(r.item_reviewers(one, 0).unwrap(), [bob, eve]);
    let bobs = ReviewItemQuery { reviewer: Some(bob), undecided: true };
    let ids = |q: &ReviewItemQuery| r.review_items(c, q, None, 10).unwrap().iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(&bobs), [one]);
    assert_eq!(ids(&ReviewItemQuery::default()), [one, two]);
    assert_eq!(r.review_items(c, &ReviewItemQuery::default(), Some(one), 10).unwrap()[0].id, two);
    assert_eq!(r.reviewers_pending(c).unwrap(), [(bob, 1), (eve, 2)]);
    assert_eq!(r.review_item(one).unwrap().unwrap().evidence, evidence);
    drop(r);

    // Stage 0 decided once: a second decision at the same stage loses.
    let mut tx = s.write().unwrap();
    let keep = ReviewDecisionRow {
        item_id: one,
        stage: 0,
        decision: "keep".into(),
        reason: "needed".into(),
        decided_by: Some(bob),
        at: T0,
        seq: 7,
    };
    assert!(tx.insert_review_decision(&keep).unwrap());
    assert!(!tx.insert_review_decision(&ReviewDecisionRow { decided_by: Some(eve), ..keep.clone() }).unwrap());
    assert!(tx.settle_review_item(one, None, T0).unwrap());
    // At stage 1 nobody is assigned yet: bob no longer sees it.
    assert!(tx.review_items(c, &bobs, None, 10).unwrap().is_empty());
    tx.assign_reviewers(one, 1, &[eve]).unwrap();
    let revoke = ReviewDecisionRow { stage: 1, decision: "revoke".into(), decided_by: None, seq: 8, ..keep.clone() };
    assert!(tx.insert_review_decision(&revoke).unwrap());
    assert!(tx.settle_review_item(one, Some("revoke"), T0).unwrap());
    assert!(tx.revocations_unverified(c).unwrap(), "the grant is still verified, not revoked");
    assert!(!tx.settle_review_item(one, Some("keep"), T0).unwrap(), "a final outcome stays");
    assert!(
        !tx.insert_review_decision(&ReviewDecisionRow { stage: 2, ..revoke.clone() }).unwrap(),
        "decided items take no more"
    );
    assert_eq!(tx.item_decisions(one).unwrap(), [keep.clone(), revoke.clone()]);
    assert!(tx.item_decisions(two).unwrap().is_empty());
    assert_eq!(tx.review_decisions(c).unwrap(), [keep, revoke]);
    assert_eq!(tx.review_counts(c).unwrap(), BTreeMap::from([("revoke".into(), 1), ("undecided".into(), 1)]));
    assert!(tx.any_undecided(c).unwrap());
    assert_eq!(tx.reviewer_pace(c).unwrap(), [(bob, 1, T0, T0)], "the default's decisions are nobody's");
    assert!(tx.settle_review_item(two, Some("keep"), T0).unwrap());
    assert!(!tx.any_undecided(c).unwrap());
    let g = tx.grants(ada).unwrap().remove(0);
    assert!(tx.set_grant_state(g.id, g.rev, GrantState::RevocationVerified, T0).unwrap());
    assert!(!tx.revocations_unverified(c).unwrap());
    assert!(tx.set_campaign_state(c, "open", "closed", T0).unwrap());
    assert!(!tx.set_campaign_state(c, "open", "paused", T0).unwrap());
    tx.set_campaign_reminded(c, 2).unwrap();
    tx.commit().unwrap();
    let done = s.read().unwrap().campaign(c).unwrap().unwrap();
    assert_eq!((done.state.as_str(), done.reminded, done.closed_at), ("closed", 2, Some(T0)));
    assert_eq!(s.read().unwrap().campaigns(Some("closed")).unwrap().len(), 1);

    // An account under review (origin `unlinked`, no grant): its revoke is verified by the
    // entry recorded on the item, and it is found by its account.
    let mut tx = s.write().unwrap();
    let c2 = tx
        .insert_campaign(&NewCampaign {
            name: "unlinked",
            policy_version: "v1",
            stages: 1,
            started_at: T0,
            deadline: T0 + Duration::days(7),
            started_by: "tenure",
        })
        .unwrap();
    let account = tx
        .insert_review_item(&NewReviewItem {
            campaign_id: c2,
            identity_id: ada,
            grant_id: 0,
            entitlement: "ada2",
            system: "dir",
            origin: "unlinked",
            privileged: false,
            granted_at: None,
            recommendation: "revoke",
            evidence: &evidence,
        })
        .unwrap();
    assert_eq!(tx.account_review("dir", "ada2").unwrap(), Some(account));
    assert_eq!(tx.account_review("dir", "ada3").unwrap(), None);
    assert_eq!(tx.account_review("other", "ada2").unwrap(), None);
    assert!(tx.settle_review_item(account, Some("revoke"), T0).unwrap());
    assert!(tx.revocations_unverified(c2).unwrap(), "the account is not verified disabled yet");
    assert!(tx.set_review_item_verified(account, 42).unwrap());
    assert!(!tx.set_review_item_verified(account, 43).unwrap(), "verified once");
    assert_eq!(tx.review_item(account).unwrap().unwrap().verified_seq, Some(42));
    assert!(!tx.revocations_unverified(c2).unwrap());
    assert!(tx.set_campaign_state(c2, "open", "closed", T0).unwrap());
    assert_eq!(tx.account_review("dir", "ada2").unwrap(), Some(account), "closed, it is still found");
    tx.commit().unwrap();

    // Attestation: due when the last one (or, never attested, the creation) is older than the
    // cut-off; only active identities of the kind.
    let mut tx = s.write().unwrap();
    tx.set_identity_state(ada, LifecycleState::Active, T0).unwrap();
    tx.set_identity_state(bob, LifecycleState::Active, T0).unwrap();
    let due = |tx: &dyn ReadTx, before| {
        tx.attestations_due(IdentityKind::Human, before).unwrap().iter().map(|i| i.id).collect::<Vec<_>>()
    };
    assert_eq!(due(&*tx, T0 + Duration::days(1)), [ada, bob], "eve is pending");
    assert!(due(&*tx, T0).is_empty());
    assert!(tx.attestations_due(IdentityKind::Service, T0 + Duration::days(1)).unwrap().is_empty());
    assert_eq!(tx.last_attested(ada).unwrap(), None);
    tx.put_attestation(ada, bob, "still needed", T0 + Duration::days(2)).unwrap();
    tx.put_attestation(ada, bob, "still needed", T0 + Duration::days(3)).unwrap();
    assert_eq!(tx.last_attested(ada).unwrap(), Some(T0 + Duration::days(3)));
    assert_eq!(due(&*tx, T0 + Duration::days(3)), [bob]);
    assert_eq!(due(&*tx, T0 + Duration::days(4)), [ada, bob]);
    tx.commit().unwrap();
    assert_eq!(s.read().unwrap().review_counts(c).unwrap(), BTreeMap::from([("keep".into(), 1), ("revoke".into(), 1)]));
}
