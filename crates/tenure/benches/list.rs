//! Listing 100,000 identities: the API's keyset pages and the CLI's streamed list, against
//! raw SQLite reading the same rows in the same process; with the server's and the CLI's peak
//! memory, which a page (not the population) should bound.
//!
//! `cargo bench -p tenure --bench list` (TENURE_BENCH_IDENTITIES to change the 100,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;
use support::{Serve, insert_people, quickstart_engine};

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_IDENTITIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let attributes = BTreeMap::from([
        ("department".to_owned(), "engineering".to_owned()),
        ("employment".to_owned(), "employee".to_owned()),
        ("email".to_owned(), "someone@example.com".to_owned()),
    ]);
    insert_people(&engine, n, |_| attributes.clone());
    let operator = tenure_model::Principal::operator("bench");
    let token = engine.issue_token("hr:E1000", &["admin".to_owned()], Some(1), "bench", &operator).unwrap().secret;
    drop(engine);
    let total = n + 56;

    // Baseline: raw SQLite, every identity row read in reference order.
    let db = rusqlite::Connection::open(data.join("tenure.db")).unwrap();
    let t = Instant::now();
    let mut st =
        db.prepare("SELECT id, ref, kind, name, attributes, owner, state FROM identities ORDER BY ref").unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(4)?)))
        .unwrap()
        .count();
    let raw = t.elapsed();
    assert_eq!(rows, total);
    drop(st);
    drop(db);

    let server = Serve::start(&data);
    // Let its first clock tick and reconciliation check (they read the population) pass, so
    // the paging's own memory is what the difference shows.
    std::thread::sleep(std::time::Duration::from_secs(12));
    let idle = server.peak_rss();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let t = Instant::now();
    let (mut next, mut seen, mut bytes, mut pages) = (Some("/v1/identities?limit=1000".to_owned()), 0, 0, 0);
    while let Some(url) = next.take() {
        let mut r = agent
            .get(&format!("{}{url}", server.base))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        next = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_owned());
        let body = r.body_mut().read_to_string().unwrap();
        bytes += body.len();
        seen += serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().len();
        pages += 1;
    }
    let api = t.elapsed();
    assert_eq!(seen, total);
    let peak = server.peak_rss();
    drop(server);

    // The CLI, streaming JSON to a pipe; its peak memory from `/usr/bin/time`.
    let t = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_tenure"))
        .args(["identities", "list", "--output", "json"])
        .env("TENURE_DATA_DIR", &data)
        .env_remove("TENURE_POLICY")
        .output()
        .unwrap();
    let cli = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len();
    assert_eq!(listed, total);
    let cli_kb: u64 = String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap().trim().parse().unwrap();

    let mb = |b: f64| b / 1024.0 / 1024.0;
    println!("identities: {total}");
    println!("raw SQLite, all rows in order:        {:>8.1} ms", raw.as_secs_f64() * 1e3);
    println!(
        "GET /v1/identities, {pages} pages of 1000: {:>8.1} ms ({:.1}x raw), {:.1} MB of JSON",
        api.as_secs_f64() * 1e3,
        api.as_secs_f64() / raw.as_secs_f64(),
        mb(bytes as f64)
    );
    println!(
        "  server peak RSS: {:.1} MB started and idle, {:.1} MB after paging everything (+{:.1} MB)",
        mb(idle as f64),
        mb(peak as f64),
        mb(peak.saturating_sub(idle) as f64)
    );
    println!(
        "tenure identities list --output json:  {:>8.1} ms ({:.1}x raw), peak RSS {:.1} MB for {:.1} MB written",
        cli.as_secs_f64() * 1e3,
        cli.as_secs_f64() / raw.as_secs_f64(),
        cli_kb as f64 / 1024.0,
        mb(out.stdout.len() as f64)
    );
}
