//! Ingest throughput: 100k joiner events through `Engine::ingest` (validation against policy
//! and state, identity + grants + account + outbox job + audit entry + event row, one durable
//! transaction per batch) against raw SQLite inserting the same event rows in the same batch
//! sizes with the same durability (WAL, `synchronous=FULL`), in one run.
//!
//! `cargo bench -p tenure --bench ingest` (TENURE_BENCH_EVENTS to change the count).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_engine::{Engine, ingest, parse};
use tenure_model::SystemClock;
use tenure_policy::Bundle;
use tenure_store::SqliteStore;

#[path = "../src/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let depts = ["engineering", "finance", "sales", "people"];
    let lines: String = (0..n)
        .map(|i| {
            serde_json::json!({"source": "hr", "id": format!("evt-{i}"), "type": "joined", "at": "2026-11-01T09:00:00Z",
                "identity": {"external_id": format!("E{i:06}"), "kind": "human", "name": format!("Person {i}"),
                    "attributes": {"department": depts[i % 4], "employment": "employee", "manager": "hr:E000000"}}})
            .to_string()
                + "\n"
        })
        .collect();
    let t = Instant::now();
    let events = ingest::events_from_wire(parse::json_lines(&lines).unwrap()).unwrap();
    let parse_time = t.elapsed();

    println!("ingest benchmark: {n} joiner events (quickstart policy: 5 birthright grants each)");
    println!("parse + structural checks: {:.0} events/s\n", n as f64 / parse_time.as_secs_f64());
    println!("{:>6}  {:>16}  {:>16}  {:>7}", "batch", "tenure events/s", "raw rows/s", "ratio");
    for batch in [1_000, 100] {
        let tenure = run_tenure(&events, batch);
        let raw = run_raw(&events, batch);
        let (te, re) = (n as f64 / tenure.as_secs_f64(), n as f64 / raw.as_secs_f64());
        println!("{batch:>6}  {te:>16.0}  {re:>16.0}  {:>6.2}x", re / te);
    }
    println!(
        "\nratio = raw SQLite rows/s ÷ tenure events/s (how many times slower than bare inserts of the event rows)"
    );
}

fn run_tenure(events: &[tenure_engine::Event], batch: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(Arc::new(SqliteStore::open(dir.path()).unwrap()), Arc::new(SystemClock));
    engine
        .deploy(&Bundle::load(quickstart::policy_files()).unwrap(), &tenure_model::Principal::operator("bench"))
        .unwrap();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let r = engine.ingest(chunk, &tenure_model::Principal::operator("bench")).unwrap();
        assert_eq!(r.accepted, chunk.len());
    }
    let elapsed = t.elapsed();
    let tx = engine.store().read().unwrap();
    assert_eq!(tx.event_count().unwrap(), events.len() as i64);
    elapsed
}

fn run_raw(events: &[tenure_engine::Event], batch: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut c = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE events (source TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, identity TEXT NOT NULL,
           at TEXT NOT NULL, received_at TEXT NOT NULL, digest TEXT NOT NULL, payload TEXT NOT NULL,
           PRIMARY KEY (source, event_id)) WITHOUT ROWID",
    )
    .unwrap();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)").unwrap();
            for e in chunk {
                st.execute(rusqlite::params![
                    e.source,
                    e.id,
                    "joined",
                    e.reference.to_string(),
                    "2026-11-01T09:00:00Z",
                    "2026-11-01T09:00:00Z",
                    e.digest,
                    e.payload
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    t.elapsed()
}
