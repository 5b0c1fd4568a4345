//! SCIM ingest throughput, in one run against one `tenure serve`: 16 clients creating users
//! one per request through `POST /scim/v2/Users` (each call a joiner through the source's
//! mapping, its resource stored with it), against the same identities posted as tenure events,
//! `POST /v1/events` one per request (the baseline) and in batches of 100.
//!
//! `cargo bench -p tenure --bench scim` (TENURE_BENCH_USERS per measurement, default 3200).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::time::Instant;

#[allow(dead_code, reason = "each bench uses part of what they share")]
mod support;
use support::{Serve, quickstart_engine};

const CLIENTS: usize = 16;

fn users() -> usize {
    std::env::var("TENURE_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3200)
}

fn person(prefix: &str, n: usize) -> (String, serde_json::Value) {
    let name = format!("{prefix}{n}@example.com");
    (
        name.clone(),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": name,
            "name": { "givenName": "Bench", "familyName": format!("User {n}") },
            "title": "Engineer",
            "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Engineering" },
        }),
    )
}

/// The same identity as a tenure event (what the okta mapping makes of the resource).
fn event(prefix: &str, n: usize) -> serde_json::Value {
    serde_json::json!({
        "source": "okta", "id": format!("{prefix}-{n}"), "type": "joined", "at": "2026-11-01T09:00:00Z",
        "identity": { "external_id": format!("{prefix}{n}@example.com"), "kind": "human", "name": format!("Bench User {n}"),
            "attributes": { "department": "engineering", "title": "Engineer", "employment": "employee" } },
    })
}

/// `CLIENTS` threads posting `bodies` (split between them) to `path`; requests per second.
fn post_all(base: &str, token: &str, path: &str, bodies: Vec<String>, want: u16) -> f64 {
    let chunks: Vec<Vec<String>> = {
        let mut c = vec![Vec::new(); CLIENTS];
        for (i, b) in bodies.into_iter().enumerate() {
            c[i % CLIENTS].push(b);
        }
        c
    };
    let n: usize = chunks.iter().map(Vec::len).sum();
    let t = Instant::now();
    std::thread::scope(|s| {
        for chunk in &chunks {
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                for b in chunk {
                    let mut r = agent
                        .post(&format!("{base}{path}"))
                        .header("authorization", &format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .send(b)
                        .unwrap();
                    let status = r.status().as_u16();
                    assert_eq!(status, want, "{}", r.body_mut().read_to_string().unwrap_or_default());
                }
            });
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let operator = tenure_model::Principal::operator("bench");
    let token = engine.issue_token("hr:E1000", &["source:okta".to_owned()], None, "bench", &operator).unwrap().secret;
    // `tenure serve` starts once someone can administer it.
    engine.issue_token("hr:E1000", &["admin".to_owned()], Some(1), "bench", &operator).unwrap();
    drop(engine);
    let server = Serve::start(&data);
    let n = users();

    let events: Vec<String> = (0..n).map(|i| serde_json::Value::Array(vec![event("ev", i)]).to_string()).collect();
    let per_event = post_all(&server.base, &token, "/v1/events", events, 200);
    let batches: Vec<String> = (0..n)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|c| serde_json::Value::Array(c.iter().map(|i| event("batch", *i)).collect()).to_string())
        .collect();
    let batch_requests = batches.len();
    let per_batch = post_all(&server.base, &token, "/v1/events", batches, 200) * (n as f64 / batch_requests as f64);
    let resources: Vec<String> = (0..n).map(|i| person("scim", i).1.to_string()).collect();
    let scim = post_all(&server.base, &token, "/scim/v2/Users", resources, 201);

    println!("{n} users per measurement, {CLIENTS} clients, one tenure serve (SQLite)\n");
    println!("{:<60} {:>12} {:>10}", "", "users/s", "vs events");
    let line = |name: &str, v: f64| println!("{name:<60} {v:>12.0} {:>9.2}×", v / per_event);
    line("POST /v1/events, one event per request (baseline)", per_event);
    line("POST /v1/events, 100 events per request", per_batch);
    line("POST /scim/v2/Users, one user per request", scim);
    println!("\nvs events = this row's users/s ÷ the baseline's");
}
