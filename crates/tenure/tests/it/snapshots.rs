//! What people read, pinned as snapshots (expect-test; `UPDATE_EXPECT=1` rewrites them after a
//! deliberate change): an identity as `identities show` prints it, findings, a rejected batch's
//! errors on the CLI and over HTTP, a runtime authorization decision, and a closure
//! certificate, summarised and as the document itself. Timestamps, policy versions, ids, hashes,
//! signatures and proofs are redacted so only meaningful changes show.

use crate::support::*;
use expect_test::expect;

/// Volatile parts replaced by placeholders (RFC 3339 times, hex hashes and policy versions), and
/// runs of spaces folded (placeholders change column widths).
fn redact(text: &str) -> String {
    redact_words(text)
        .lines()
        .map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Timeline rows with their sequence number redacted too: concurrent workers append the syncs
/// of different systems in any order, and those rows read the same.
fn redact_timeline(text: &str) -> String {
    let mut in_timeline = false;
    let mut out = Vec::new();
    for line in redact(text).lines() {
        if line == "timeline:" {
            in_timeline = true;
        } else if in_timeline && line.split(' ').next().is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())) {
            out.push(line.split_once(' ').map_or(line.to_owned(), |(_, rest)| format!("<n> {rest}")));
            continue;
        }
        out.push(line.to_owned());
    }
    out.join("\n") + "\n"
}

/// A JSON document with its volatile values replaced: a signature, a signed note, each ledger
/// entry's bytes and proof, and (through [`redact_words`]) times and hashes.
fn redact_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("signature" | "signer" | "checkpoint", _) => Value::String(format!("<{k}>")),
                        ("entry", Value::String(_)) => Value::String("<entry>".into()),
                        ("proof", Value::Array(a)) if !a.is_empty() => Value::String("<proof>".into()),
                        ("seq" | "evidence" | "tree_size", Value::Number(_)) => Value::String("<n>".into()),
                        _ => redact_json(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_json).collect()),
        Value::String(s) => Value::String(redact_words(s)),
        other => other.clone(),
    }
}

fn redact_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in text.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == ',') {
        let (word, tail) =
            token.split_at(token.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == ',').len());
        let is_time =
            word.len() >= 20 && word.as_bytes().get(4) == Some(&b'-') && word.contains('T') && word.ends_with('Z');
        let is_hex = word.len() >= 12 && word.chars().all(|c| c.is_ascii_hexdigit());
        out.push_str(if is_time {
            "<time>"
        } else if is_hex {
            "<hex>"
        } else {
            word
        });
        out.push_str(tail);
    }
    out
}

#[test]
fn what_people_read_stays_as_it_was_meant() {
    let w = World::new();
    let f = w.file(
        "one.jsonl",
        &[
            event("hr", "j1", "joined", human("E9", "Eve Example", "sales")),
            event("hr", "j2", "joined", human("E10", "Finn Example", "engineering")),
        ]
        .join("\n"),
    );
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    expect![[r#"
        hr:E9 (human) — Eve Example
        state: active
        department: sales
        employment: employee
        grants:
        ENTITLEMENT STATE ORIGIN
        analytics-db/reporting verified birthright
        corp-directory/all-staff verified birthright
        corp-directory/employees verified birthright
        corp-directory/sales verified birthright
        corp-directory/vpn verified birthright
        helpdesk/agents verified birthright
        accounts:
        SYSTEM ACCOUNT STATE
        analytics-db E9 verified
        corp-directory E9 verified
        helpdesk E9 verified
        timeline:
        SEQ AT ACTOR ACTION POLICY
        <n> <time> import:hr identity.joined <hex>
        <n> <time> tenure system.synced <hex>
        <n> <time> tenure system.synced <hex>
        <n> <time> tenure system.synced <hex>
        <n> <time> tenure identity.activated <hex>
    "#]]
    .assert_eq(&redact_timeline(&w.ok(&["identities", "show", "hr:E9"])));

    // A rejected file: every bad record named, nothing applied.
    let bad = w.file(
        "bad.jsonl",
        &[
            event("hr", "b1", "joined", human("E11", "Gus", "sales")),
            event("hr", "b2", "joined", serde_json::json!({ "external_id": "E12", "kind": "robot" })),
            event("hr", "b3", "joined", serde_json::json!({ "external_id": "E9\u{200b}", "kind": "human" })),
        ]
        .join("\n"),
    );
    let out = w.run(&["import", "--source", "hr", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    expect![[r#"
        bad.jsonl: line 2: field identity.kind: expected one of human, service, workload, agent, found `robot`
        bad.jsonl: line 3: field identity.external_id: external_id must not contain bidirectional or invisible formatting characters (U+200B)
        bad.jsonl: rejected: 2 bad record(s); nothing was applied
    "#]]
    .assert_eq(&stderr(&out).replace(&format!("{}/", w.tmp.path().display()), ""));

    // The same over HTTP: the error body.
    let s = Server::start(&w, &[]);
    let body =
        format!("[{}]", event("hr", "h1", "joined", serde_json::json!({ "external_id": "E13", "kind": "robot" })));
    let (status, text) = s.post("/v1/events", &body).unwrap();
    assert_eq!(status, 422);
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap();
    expect![[r#"
        {
          "code": "EN0001",
          "message": "batch rejected: 1 bad record(s); nothing was applied",
          "errors": [
            {
              "record": 0,
              "field": "identity.kind",
              "message": "expected one of human, service, workload, agent, found `robot`"
            }
          ]
        }"#]]
    .assert_eq(&pretty);

    // A runtime authorization decision over HTTP, and the one for a question that does not fit.
    let ask = serde_json::json!({
        "principal": "hr:E10",
        "action": "deploy",
        "resource": { "id": "payments-api" },
        "context": { "intent": "release 2026.11", "environment": "prod" },
    });
    let (status, text) = s.post("/v1/authorize", &ask.to_string()).unwrap();
    assert_eq!(status, 200, "{text}");
    let decision = redact_json(&serde_json::from_str(&text).unwrap());
    expect![[r#"
        {
          "decision": "deny",
          "policies": [],
          "reasons": [],
          "errors": [],
          "policy_version": "<hex>"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&decision).unwrap());
    let wrong =
        serde_json::json!({ "principal": "hr:E10", "action": "deploy", "resource": { "id": "x", "colour": "red" } });
    let (status, text) = s.post("/v1/authorize", &wrong.to_string()).unwrap();
    assert_eq!(status, 422, "{text}");
    expect![[r#"{"code":"EN0009","message":"resource.colour: unknown field `colour`, expected one of `type`, `id`, `attributes`, `tags` at line 1 column 69"}"#]]
    .assert_eq(&text);
    drop(s);

    // A leaver's closure certificate, as `closure show` summarises it.
    let f =
        w.file("left.jsonl", &event("hr", "l1", "left", serde_json::json!({ "external_id": "E9", "kind": "human" })));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let cert = w.tmp.path().join("cert.json");
    let out = w.run(&["closure", "show", "hr:E9", "--out", cert.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = format!("{}{}", stdout(&out), stderr(&out)).replace(&format!("{}/", w.tmp.path().display()), "");
    // Which entry each claim rests on depends on the order the systems finished in.
    let summary: String = summary
        .split_inclusive("(ledger entry ")
        .map(|part| match part.split_once(')') {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => format!("<n>){rest}"),
            _ => part.to_owned(),
        })
        .collect();
    expect![[r#"
        closure certificate of hr:E9 ("Eve Example"), closed at "<time>"
        "analytics-db" account "E9": disabled=true revoked=["reporting"] read-back={"enabled":false,"memberships":[],"present":true} probe={"detail":"role \"E9\" is not permitted to log in","result":"refused"} (ledger entry <n>)
        "corp-directory" account "E9": disabled=true revoked=["all-staff","employees","sales","vpn"] read-back={"enabled":false,"memberships":[],"present":true} probe={"detail":"tenure holds no password to bind with","result":"unsupported"} (ledger entry <n>)
        "helpdesk" account "E9": disabled=true revoked=["agents"] read-back={"enabled":false,"memberships":[],"present":true} probe={"detail":"SCIM has no login to try; verified by read-back","result":"unsupported"} (ledger entry <n>)
        written to cert.json
    "#]].assert_eq(&redact(&summary));
    // The certificate itself: what an auditor keeps and checks offline.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cert).unwrap()).unwrap();
    let mut doc = redact_json(&doc);
    // Evidence entries come in seq order, which depends on the order the systems finished in.
    if let Some(ev) = doc.pointer_mut("/certificate/evidence").and_then(|e| e.as_array_mut()) {
        ev.sort_by_key(|e| e.to_string());
    }
    expect![[r#"
        {
          "certificate": {
            "checkpoint": "<checkpoint>",
            "closed_at": "<time>",
            "credentials": [],
            "evidence": [
              {
                "entry": "<entry>",
                "proof": "<proof>",
                "seq": "<n>"
              },
              {
                "entry": "<entry>",
                "proof": "<proof>",
                "seq": "<n>"
              },
              {
                "entry": "<entry>",
                "proof": "<proof>",
                "seq": "<n>"
              },
              {
                "entry": "<entry>",
                "proof": "<proof>",
                "seq": "<n>"
              },
              {
                "entry": "<entry>",
                "proof": "<proof>",
                "seq": "<n>"
              }
            ],
            "identity": "hr:E9",
            "kind": "human",
            "left_at": "<time>",
            "name": "Eve Example",
            "policy_version": "<hex>",
            "systems": [
              {
                "account": "E9",
                "done": {
                  "disabled": true,
                  "revoked": [
                    "reporting"
                  ]
                },
                "evidence": "<n>",
                "probe": {
                  "detail": "role \"E9\" is not permitted to log in",
                  "result": "refused"
                },
                "read_back": {
                  "enabled": false,
                  "memberships": [],
                  "present": true
                },
                "result": "verified",
                "sweep": {
                  "accounts": [],
                  "rules": [
                    "name=external_id"
                  ]
                },
                "system": "analytics-db",
                "verified_at": "<time>"
              },
              {
                "account": "E9",
                "done": {
                  "disabled": true,
                  "revoked": [
                    "all-staff",
                    "employees",
                    "sales",
                    "vpn"
                  ]
                },
                "evidence": "<n>",
                "probe": {
                  "detail": "tenure holds no password to bind with",
                  "result": "unsupported"
                },
                "read_back": {
                  "enabled": false,
                  "memberships": [],
                  "present": true
                },
                "result": "verified",
                "sweep": {
                  "accounts": [],
                  "rules": [
                    "employeenumber=external_id"
                  ]
                },
                "system": "corp-directory",
                "verified_at": "<time>"
              },
              {
                "account": "E9",
                "done": {
                  "disabled": true,
                  "revoked": [
                    "agents"
                  ]
                },
                "evidence": "<n>",
                "probe": {
                  "detail": "SCIM has no login to try; verified by read-back",
                  "result": "unsupported"
                },
                "read_back": {
                  "enabled": false,
                  "memberships": [],
                  "present": true
                },
                "result": "verified",
                "sweep": {
                  "accounts": [],
                  "rules": [
                    "name=external_id"
                  ]
                },
                "system": "helpdesk",
                "verified_at": "<time>"
              }
            ],
            "tree_size": "<n>",
            "version": "tenure-closure/1"
          },
          "signature": "<signature>",
          "signer": "<signer>"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&doc).unwrap());

    // Findings: an account tenure did not make, refused.
    let psql = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &w.pg.port.to_string(), "-U", "postgres", "-d", "postgres", "-c"])
        .arg("CREATE ROLE \"E20\" LOGIN")
        .output()
        .unwrap();
    assert!(psql.status.success(), "{}", stderr(&psql));
    let f = w.file("e20.jsonl", &event("hr", "j20", "joined", human("E20", "Someone Else", "sales")));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    let (out, err) = w.fails(&["jobs", "run"]);
    assert!(out.contains("1 dead"), "{out}");
    assert!(err.contains("dead job") && err.contains("sync analytics-db") && err.contains("CN0004"), "{err}");
    expect![[r#"
        ID KIND IDENTITY SUBJECT BY STATE
        1 account_not_managed hr:E20 analytics-db open
    "#]]
    .assert_eq(&redact(&w.ok(&["findings"])));
}
