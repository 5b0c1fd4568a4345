//! The HTTP API: batches all or nothing with per-record errors, identity views, stable error
//! codes.

use crate::support::*;

#[test]
fn events_identities_and_errors_over_http() {
    let w = World::new();
    let s = Server::start(&w, &[]);
    let good = [
        event("hr", "e1", "joined", human("E1", "Ada Lovelace", "engineering")),
        event("service-registry", "s1", "joined", nhi("svc-a", "agent", Some("hr:E1"), "2027-06-01T00:00:00Z")),
    ];
    let bad = format!(
        "[{},{},{}]",
        good[0],
        good[1],
        event("service-registry", "s2", "joined", nhi("svc-b", "agent", None, "2027-06-01T00:00:00Z"))
    );
    let (status, body) = s.post("/v1/events", &bad).unwrap();
    assert_eq!(status, 422, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "EN0001");
    assert_eq!(
        body["errors"],
        serde_json::json!([{ "record": 2, "field": "identity.owner", "message": "a agent identity needs an owner (`source:external_id` of a human)" }])
    );
    let ids: serde_json::Value = serde_json::from_str(&s.get("/v1/identities").1).unwrap();
    assert_eq!(ids.as_array().unwrap().len(), 1, "only the operator: {ids}");

    let (status, body) = s.post("/v1/events", &format!("[{}]", good.join(","))).unwrap();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["accepted"], 2);
    let (status, body) = s.post("/v1/events", &format!("[{}]", good.join(","))).unwrap();
    assert_eq!(
        (status, serde_json::from_str::<serde_json::Value>(&body).unwrap()["duplicates"].clone()),
        (200, 2.into())
    );

    // Workers provision in the background; wait for the joiner to become active.
    let mut detail = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = s.get("/v1/identities/hr:E1");
        assert_eq!(status, 200);
        detail = serde_json::from_str(&body).unwrap();
        if detail["state"] == "active" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(detail["state"], "active", "{detail}");
    assert_eq!(
        detail["accounts"][0],
        serde_json::json!({ "system": "corp-directory", "account": "E1", "state": "verified" })
    );
    let actions: Vec<&str> =
        detail["timeline"].as_array().unwrap().iter().map(|t| t["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["identity.joined", "system.synced", "identity.activated"]);
    let agent: serde_json::Value = serde_json::from_str(&s.get("/v1/identities/service-registry:svc-a").1).unwrap();
    assert_eq!(agent["owner"], "hr:E1");
    assert_eq!(agent["purpose"], "runs things");

    let (status, body) = s.get("/v1/identities/hr:nobody");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"], "EN0004");
    let (status, body) = s.post("/v1/events", "{not json").unwrap();
    assert_eq!(status, 422);
    assert!(body.contains("expected a JSON array of events"), "{body}");
    let (status, body) = s.get("/healthz");
    assert_eq!(status, 200);
    assert!(body.contains("policy_version"), "{body}");
}

#[test]
fn the_cli_imports_safely_while_a_server_runs_on_the_same_data_dir() {
    let w = World::new();
    let s = Server::start(&w, &[]);
    let lines: Vec<String> = (0..200)
        .map(|i| event("hr", &format!("c{i}"), "joined", human(&format!("C{i}"), "Someone", "sales")))
        .collect();
    let f = w.file("cli.jsonl", &lines.join("\n"));
    // The server keeps taking events over HTTP while the CLI writes.
    let (base, token) = (s.base.clone(), s.token.clone());
    let http = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        (0..20)
            .map(|i| {
                let body = format!(
                    "[{}]",
                    event("hr", &format!("h{i}"), "joined", human(&format!("H{i}"), "Other", "finance"))
                );
                agent
                    .post(&format!("{base}/v1/events"))
                    .header("authorization", &format!("Bearer {token}"))
                    .send(&body)
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
            .collect::<Vec<_>>()
    });
    let out = w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    assert!(out.contains("200 accepted"), "{out}");
    let statuses = http.join().unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The server's workers provision what the CLI enqueued.
    let mut active = 0;
    for _ in 0..200 {
        let ids: serde_json::Value = serde_json::from_str(&s.get("/v1/identities").1).unwrap();
        active = ids.as_array().unwrap().iter().filter(|i| i["state"] == "active").count();
        if active == 221 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(active, 221, "220 imported and the operator");
}

/// Send `request` on a fresh connection and read what comes back until the server closes it
/// (or 10 s pass).
fn raw(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    c.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn idle_and_slow_clients_are_cut_off_durations_are_bounded_and_failed_logins_are_counted() {
    use std::io::Read;
    let w = World::new();
    let s = Server::start(&w, &["--max-connections", "6", "--header-timeout-secs", "1", "--body-timeout-secs", "1"]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    // An idle connection and one with half-sent headers are closed by the server.
    for request in [&b""[..], b"GET /healthz HTTP/1.1\r\nHost: x\r\n"] {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut c, request).unwrap();
        let mut buf = Vec::new();
        let r = c.read_to_end(&mut buf);
        assert!(r.is_ok(), "the server kept a connection open: {r:?}");
    }
    // A stalled body gets 408, not a connection held for ever.
    let stalled = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[",
        s.token
    );
    let answer = raw(&s.base, stalled.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Without a token nothing is read or buffered: the guard answers first.
    let anonymous =
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n\r\n[";
    let answer = raw(&s.base, anonymous.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // At most N connections: one more is closed at once while N sit idle (a server of its own,
    // whose idle timeout is long enough not to free a slot during the check on a busy machine).
    {
        let capped = Server::start(&w, &["--max-connections", "3", "--header-timeout-secs", "60"]);
        let caddr = capped.base.trim_start_matches("http://").to_owned();
        // (The readiness check's kept-alive connection may hold a slot too: the cap is then
        // reached one connection sooner, which changes nothing below.)
        let idle: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&caddr).unwrap()).collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let refused = raw(&capped.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(refused.is_empty(), "served past the cap: {refused}");
        drop(idle);
        let mut served = String::new();
        for _ in 0..50 {
            served = raw(&capped.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            if served.starts_with("HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(served.starts_with("HTTP/1.1 200"), "slots were not freed: {served}");
    }

    // Durations that would overflow are 422s naming the field, and the server lives on.
    for (path, body, field) in [
        (
            "/v1/requests",
            r#"{"entitlement": "corp-directory/vpn", "intent": "x", "kind": "jit", "duration_minutes": 9223372036854775807}"#,
            "duration_minutes",
        ),
        ("/v1/tokens", r#"{"identity": "hr:OPS", "roles": ["auditor"], "ttl_days": 9223372036854775807}"#, "ttl_days"),
        ("/v1/credentials", r#"{"identity": "hr:OPS", "kind": "api-key", "ttl": "9223372036854775807d"}"#, "ttl"),
    ] {
        let (status, text) = s.post(path, body).unwrap();
        assert_eq!(status, 422, "{path}: {text}");
        assert!(text.contains(field), "{path}: {text}");
    }
    assert_eq!(s.get("/healthz").0, 200);

    // Secrets are never cached on the way back.
    let issue = r#"{"identity": "hr:OPS", "roles": ["auditor"], "ttl_days": 1}"#;
    let answer = raw(
        &s.base,
        format!(
            "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{issue}",
            s.token,
            issue.len()
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("cache-control: no-store"), "{answer}");

    // Wrong secrets are logged (without the secret) and counted.
    for i in 0..7 {
        assert_eq!(s.get_as(Some(&format!("tnr_nobody_wrong-secret-{i}")), "/v1/identities").0, 401);
    }
    let metrics = s.get("/metrics").1;
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tenure_auth_failures_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(failures >= 7, "{metrics}");
    assert!(metrics.contains("\ntenure_group_commit_batches_total "), "{metrics}");
    assert!(metrics.contains("\ntenure_group_commit_units_total "), "{metrics}");
    let log = std::fs::read_to_string(w.tmp.path().join("server.log")).unwrap();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(!log.contains("wrong-secret"), "a secret reached the log");
}
