//! An access review at scale: 100,000 people each holding privileged access by request, the
//! quickstart's `privileged-access` campaign started over them (100,000 items snapshotted with
//! recommendations and assigned to managers), then 100,000 decisions recorded, each reviewer's
//! in one call (`decide_reviews`). The baseline, in the same process: raw SQLite inserting the
//! same rows in the same transactions (the items and their reviewers; per decision, its row,
//! the item moved to the next stage, the next stage's reviewers and a ledger row of the same
//! size).
//!
//! Then the posture report over the result, against raw SQLite reading the same tables.
//!
//! `cargo bench -p tenure --bench reviews` (TENURE_BENCH_IDENTITIES to change the 100,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;
use support::{insert_people, quickstart_engine};
use tenure_engine::reviews::Verdict;
use tenure_model::Principal;

/// People per manager.
const TEAM: usize = 20;

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_IDENTITIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let departments = ["engineering", "finance", "sales", "people", "support", "legal"];
    insert_people(&engine, n, |i| {
        BTreeMap::from([
            ("department".to_owned(), departments[i % departments.len()].to_owned()),
            ("employment".to_owned(), "employee".to_owned()),
            ("manager".to_owned(), format!("bulk:P{:07}", i - i % TEAM)),
        ])
    });
    let (people, security) = {
        let all = engine.store().read().unwrap().identities().unwrap();
        let people: Vec<i64> = all.iter().filter(|i| i.reference.source() == "bulk").map(|i| i.id).collect();
        let id_of = |r: &str| all.iter().find(|i| i.reference.to_string() == r).unwrap().id;
        (people, [id_of("hr:E1011"), id_of("hr:E1025")])
    };
    {
        let version = engine.current_policy().unwrap().version.to_string();
        let now = engine.clock().now();
        let mut tx = engine.store().write().unwrap();
        for &id in &people {
            tx.put_grant(&tenure_store::NewGrant {
                identity_id: id,
                entitlement: "corp-directory/prod-admin",
                system: "corp-directory",
                state: tenure_model::GrantState::Verified,
                origin: "request",
                policy_version: &version,
                at: now,
                expires_at: None,
                request_id: None,
            })
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let operator = Principal::operator("bench");
    // The baseline's database: this one as it is before the campaign (same rows, same schema,
    // foreign keys and all).
    let base_dir = tempfile::tempdir().unwrap();
    let base_db = base_dir.path().join("tenure.db");
    rusqlite::Connection::open(data.join("tenure.db"))
        .unwrap()
        .execute("VACUUM INTO ?1", [base_db.to_str().unwrap()])
        .unwrap();

    let t = Instant::now();
    let campaign = engine.start_review(&operator, "privileged-access").unwrap();
    let start = t.elapsed();
    let items = campaign.items["undecided"] as usize;
    assert_eq!(items, n);

    // Each manager's items, in one call per manager: the team leader's own item goes to the
    // fallback (security), decided by them in one call at the end.
    let mut by_reviewer: BTreeMap<String, Vec<(i64, Verdict, String)>> = BTreeMap::new();
    let mut after = None;
    loop {
        let (_, page) = engine.review(&operator, campaign.id, true, after, 5000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for i in page {
            by_reviewer.entry(i.reviewers[0].clone()).or_default().push((i.id, Verdict::Keep, "still on call".into()));
        }
    }
    let batches: Vec<usize> = by_reviewer.values().map(Vec::len).collect();
    let t = Instant::now();
    let mut decided = 0;
    for (reviewer, decisions) in &by_reviewer {
        decided += engine.decide_reviews(&reviewer.parse().unwrap(), campaign.id, decisions).unwrap().len();
    }
    let decide = t.elapsed();
    assert_eq!(decided, n);
    let evidence = {
        let (_, page) = engine.review(&operator, campaign.id, false, None, 1).unwrap();
        page[0].evidence.to_string()
    };
    let entry_len = {
        let db = rusqlite::Connection::open(data.join("tenure.db")).unwrap();
        db.query_row("SELECT avg(length(entry)) FROM ledger WHERE action = 'review.decided'", [], |r| {
            r.get::<_, f64>(0)
        })
        .unwrap() as usize
    };
    let posture = posture(&engine, &data);
    drop(engine);

    // Baseline: the same rows, raw, in the same transactions, in a database of the same schema.
    let mut db = rusqlite::Connection::open(&base_db).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.pragma_update(None, "synchronous", "FULL").unwrap();
    db.pragma_update(None, "foreign_keys", "ON").unwrap();
    db.execute_batch("CREATE TABLE raw_ledger (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, leaf BLOB NOT NULL)")
        .unwrap();
    let t = Instant::now();
    {
        let tx = db.transaction().unwrap();
        tx.execute(
            "INSERT INTO review_campaigns (id, name, state, policy_version, stages, started_at, deadline, started_by)
             VALUES (1, 'privileged-access', 'open', 'v', 2, 'now', 'later', 'bench')",
            [],
        )
        .unwrap();
        let mut item = tx
            .prepare(
                "INSERT INTO review_items (id, campaign_id, identity_id, grant_id, entitlement, system, origin, privileged,
                                           granted_at, recommendation, evidence)
                 VALUES (?1, 1, ?2, ?1, 'corp-directory/prod-admin', 'corp-directory', 'request', 1, NULL, 'keep', ?3)",
            )
            .unwrap();
        let mut reviewer =
            tx.prepare("INSERT INTO review_reviewers (item_id, stage, identity_id) VALUES (?1, 0, ?2)").unwrap();
        for (i, who) in people.iter().enumerate() {
            let item_id = i as i64 + 1;
            item.execute(rusqlite::params![item_id, who, evidence]).unwrap();
            reviewer.execute(rusqlite::params![item_id, people[i - i % TEAM]]).unwrap();
        }
        drop((item, reviewer));
        tx.commit().unwrap();
    }
    let raw_start = t.elapsed();
    let entry = vec![b'x'; entry_len];
    let t = Instant::now();
    let (mut next, mut seq) = (1i64, 0i64);
    for batch in &batches {
        let tx = db.transaction().unwrap();
        {
            let mut decision = tx
                .prepare_cached(
                    "INSERT INTO review_decisions (item_id, stage, decision, reason, decided_by, at, seq)
                     VALUES (?1, 0, 'keep', 'still on call', ?3, 'now', ?2)",
                )
                .unwrap();
            let mut settle = tx.prepare_cached("UPDATE review_items SET stage = stage + 1 WHERE id = ?1").unwrap();
            let mut reviewer = tx
                .prepare_cached("INSERT INTO review_reviewers (item_id, stage, identity_id) VALUES (?1, 1, ?2)")
                .unwrap();
            let mut ledger =
                tx.prepare_cached("INSERT INTO raw_ledger (seq, entry, leaf) VALUES (?1, ?2, ?3)").unwrap();
            for _ in 0..*batch {
                seq += 1;
                ledger.execute(rusqlite::params![seq, entry, [0u8; 32]]).unwrap();
                decision.execute(rusqlite::params![next, seq, security[0]]).unwrap();
                settle.execute([next]).unwrap();
                for r in security {
                    reviewer.execute(rusqlite::params![next, r]).unwrap();
                }
                next += 1;
            }
        }
        tx.commit().unwrap();
    }
    let raw_decide = t.elapsed();

    let per_sec = |k: usize, d: std::time::Duration| k as f64 / d.as_secs_f64();
    println!(
        "review start over {n} grants: tenure {:.0} items/s ({:.2} s), raw SQLite same rows {:.0} rows/s ({:.2} s): {:.2}x",
        per_sec(n, start),
        start.as_secs_f64(),
        per_sec(n, raw_start),
        raw_start.as_secs_f64(),
        start.as_secs_f64() / raw_start.as_secs_f64()
    );
    println!(
        "{n} decisions in {} reviewer batches: tenure {:.0} decisions/s ({:.2} s), raw SQLite same rows {:.0}/s ({:.2} s): {:.2}x",
        batches.len(),
        per_sec(n, decide),
        decide.as_secs_f64(),
        per_sec(n, raw_decide),
        raw_decide.as_secs_f64(),
        decide.as_secs_f64() / raw_decide.as_secs_f64()
    );
    println!("{posture}");
}

/// The posture report over what the review left (100,000 people with privileged access, every
/// item decided), against raw SQLite reading every row of the tables the report reads.
fn posture(engine: &tenure_engine::Engine, data: &std::path::Path) -> String {
    let runs = 3;
    let t = Instant::now();
    let mut failing = 0;
    for _ in 0..runs {
        let r = engine.posture().unwrap();
        failing = r.summary.get("fail").copied().unwrap_or(0);
    }
    let tenure = t.elapsed() / runs;
    let db = rusqlite::Connection::open(data.join("tenure.db")).unwrap();
    let t = Instant::now();
    let mut rows = 0usize;
    for _ in 0..runs {
        rows = 0;
        for table in [
            "identities",
            "grants",
            "credentials",
            "api_tokens",
            "findings WHERE resolved_at IS NULL",
            "review_items",
            "review_decisions",
        ] {
            let mut st = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let cols = st.column_count();
            let mut q = st.query([]).unwrap();
            while let Some(row) = q.next().unwrap() {
                for c in 0..cols {
                    let v: rusqlite::types::Value = row.get(c).unwrap();
                    std::hint::black_box(v);
                }
                rows += 1;
            }
        }
    }
    let raw = t.elapsed() / runs;
    format!(
        "posture report ({failing} checks failing): tenure {:.0} ms, raw SQLite reading the same {rows} rows {:.0} ms: {:.2}x",
        tenure.as_secs_f64() * 1000.0,
        raw.as_secs_f64() * 1000.0,
        tenure.as_secs_f64() / raw.as_secs_f64()
    )
}
