//! What only SQLite can show: the file's modes, the append-only trigger, timestamp order.
//! Behaviour every backend shares is in [`crate::conformance`].

use super::SqliteStore;
use super::conv::{parse_ts, ts};
use crate::*;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use tenure_model::{IdentityKind, IdentityRef, LifecycleState};
use time::macros::datetime;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn new_identity<'a>(r: &'a IdentityRef, attrs: &'a BTreeMap<String, String>) -> NewIdentity<'a> {
    NewIdentity {
        reference: r,
        kind: IdentityKind::Human,
        name: "Ada",
        attributes: attrs,
        owner: None,
        purpose: None,
        expires_at: None,
        state: LifecycleState::Pending,
        policy_version: "v1",
        at: datetime!(2026-11-01 09:00 UTC),
    }
}

#[test]
fn the_ledger_is_append_only() {
    let (_d, s) = store();
    let mut tx = s.write().unwrap();
    tx.append_entry(&NewEntry {
        at: datetime!(2026-11-01 09:00 UTC),
        actor: "test",
        subject: "hr:E1",
        policy_version: "v1",
        event: &tenure_ledger::LedgerEvent::JobsRetried(tenure_ledger::event::JobsRetried { jobs: vec![1] }),
        request_id: None,
    })
    .unwrap();
    tx.commit().unwrap();
    let conn = Connection::open(s.path()).unwrap();
    assert!(conn.execute("UPDATE ledger SET action = 'y'", []).is_err());
    assert!(conn.execute("DELETE FROM ledger", []).is_err());
}

#[test]
#[cfg(unix)]
fn the_data_dir_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let s = SqliteStore::open(&dir).unwrap();
    let mut tx = s.write().unwrap();
    let r: IdentityRef = "hr:E1".parse().unwrap();
    let attrs = BTreeMap::new();
    tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
    tx.commit().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in ["tenure.db", "tenure.db-wal", "tenure.db-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(s);
    // An existing world-readable database is tightened on open.
    std::fs::set_permissions(dir.join("tenure.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _s = SqliteStore::open(&dir).unwrap();
    assert_eq!(mode(&dir.join("tenure.db")), 0o600);
}

#[test]
fn timestamps_sort_as_text() {
    let a = ts(datetime!(2026-11-01 09:00:00.5 UTC));
    let b = ts(datetime!(2026-11-01 09:00:01 UTC));
    assert!(a < b);
    assert_eq!(parse_ts(&a).unwrap(), datetime!(2026-11-01 09:00:00.5 UTC));
}

/// Commits are copied into the database file by the store's checkpointer, not by the commit
/// that crosses SQLite's threshold: far fewer log pages than the writer's own threshold still
/// reach the main file, shortly after they commit.
#[test]
fn the_checkpointer_copies_commits_into_the_database_file() {
    let (_d, s) = store();
    let size = || std::fs::metadata(s.path()).unwrap().len();
    let before = size();
    for batch in 0..20 {
        let mut tx = s.write().unwrap();
        for i in 0..50 {
            tx.append_entry(&NewEntry {
                at: datetime!(2026-11-01 09:00 UTC),
                actor: "test",
                subject: &format!("hr:E{batch}-{i}"),
                policy_version: "v1",
                event: &tenure_ledger::LedgerEvent::JobsRetried(tenure_ledger::event::JobsRetried {
                    jobs: (0..40).collect(),
                }),
                request_id: None,
            })
            .unwrap();
        }
        tx.commit().unwrap();
    }
    // A liveness bound, not a timing: the checkpointer waits a second, then copies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size() <= before {
        assert!(std::time::Instant::now() < deadline, "nothing reached the database file in 30 s");
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.read().unwrap().ledger_count().unwrap(), 1000);
}
