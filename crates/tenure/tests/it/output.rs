//! `--output json` on every command: each command `tenure --help` lists (walked from the top,
//! so a new command cannot be missed) is run once with it, on a world where it has something
//! to say, and must print one JSON document on standard output, or, when it refuses or
//! fails, one JSON error object on standard error.

use crate::support::*;

/// Every command path that runs something itself (`tenure reconcile` does, and has
/// subcommands; `tenure ledger` only has subcommands), from the help text.
fn commands(path: &mut Vec<String>, out: &mut Vec<String>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tenure")).args(&args).output().unwrap();
    let help = stdout(&o);
    let runs = help
        .lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .take_while(|l| !l.is_empty())
        .any(|l| !l.trim_end().ends_with("<COMMAND>"));
    if runs && !path.is_empty() {
        out.push(path.join(" "));
    }
    let subs: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    for s in subs {
        path.push(s);
        commands(path, out);
        path.pop();
    }
}

/// What a command must print under `--output json`.
enum Expect {
    /// One JSON document on standard output, and this exit status.
    Doc(i32),
    /// One JSON error object on standard error with this exit status (and its `exit` field).
    Error(i32),
    /// Not run here, and why.
    Elsewhere(&'static str),
}

fn parse(text: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}):\n{text}"))
}

#[test]
fn every_command_prints_json_under_output_json_and_its_errors_too() {
    let w = World::new();
    quickstart_feeds(&w, &["hr", "service-registry"]);
    // A leaver with a certificate, a run with a drift report, an export, a request, tokens,
    // credentials: something for every command to show.
    let left = event("hr", "left-E1010", "left", serde_json::json!({ "external_id": "E1010", "kind": "human" }));
    let left = w.file("left.jsonl", &left);
    w.ok(&["import", "--source", "hr", left.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let key = w.file("ledger.pub", &w.ok(&["ledger", "key"]));
    let cert = w.tmp.path().join("E1010.closure.json");
    w.ok(&["closure", "show", "hr:E1010", "--out", cert.to_str().unwrap()]);
    w.ok(&["reconcile", "--system", "corp-directory"]);
    let runs = parse(&w.ok(&["reconcile", "runs", "--output", "json"]), "reconcile runs");
    let run = runs[0]["id"].as_i64().unwrap().to_string();
    let drift = w.tmp.path().join("drift.json");
    w.ok(&["reconcile", "show", &run, "--out", drift.to_str().unwrap()]);
    let export = w.tmp.path().join("export");
    w.ok(&["ledger", "export", export.to_str().unwrap()]);
    let size = |w: &World| parse(&w.ok(&["ledger", "checkpoint", "-o", "json"]), "checkpoint")["size"].to_string();
    let old = size(&w);
    let requester = w.token("hr:E1005", &["requester"]);
    let spare = parse(&w.ok(&["tokens", "issue", "--identity", "hr:E1005", "--role", "auditor", "-o", "json"]), "t");
    let spare = spare["id"].as_str().unwrap().to_owned();
    let s = Server::start(&w, &[]);
    let ask = serde_json::json!({ "entitlement": "corp-directory/prod-admin", "intent": "on-call" }).to_string();
    let (status, body) = s.post_as(Some(&requester), "/v1/requests", &ask).unwrap();
    assert_eq!(status, 201, "{body}");
    let request = parse(&body, "request")["id"].as_i64().unwrap().to_string();
    drop(s);
    let issued =
        w.ok(&["creds", "issue", "--identity", "service-registry:svc-billing", "--kind", "api-key", "-o", "json"]);
    let cred = parse(&issued, "creds issue")["id"].as_str().unwrap().to_owned();
    let new = size(&w);
    let fresh = w.tmp.path().join("fresh");
    let feed = w.file("one.jsonl", &event("hr", "j-9", "joined", human("E9001", "Nina New", "sales")));

    let mut found = Vec::new();
    commands(&mut Vec::new(), &mut found);
    let (p, k, d, c, e, f) = (
        quickstart_policy().to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
        drift.to_string_lossy().into_owned(),
        cert.to_string_lossy().into_owned(),
        export.to_string_lossy().into_owned(),
        fresh.to_string_lossy().into_owned(),
    );
    let fresh_data = fresh.join("data").to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<&str>, Expect)> = vec![
        ("serve", vec![], Expect::Elsewhere("runs until stopped; prints nothing but logs (--log-format)")),
        ("import", vec!["import", "--source", "hr", feed.to_str().unwrap()], Expect::Doc(0)),
        ("identities list", vec!["identities", "list", "--kind", "service"], Expect::Doc(0)),
        ("identities show", vec!["identities", "show", "hr:E1010"], Expect::Doc(0)),
        (
            "identities renew",
            vec!["identities", "renew", "service-registry:svc-billing", "--days", "30", "--reason", "still billing"],
            Expect::Doc(0),
        ),
        (
            "identities attest",
            vec![
                "identities",
                "attest",
                "service-registry:svc-billing",
                "--as",
                "hr:E1002",
                "--reason",
                "still billing",
            ],
            Expect::Doc(0),
        ),
        ("jobs status", vec!["jobs", "status", "--state", "done", "--system", "corp-directory"], Expect::Doc(0)),
        ("jobs run", vec!["jobs", "run"], Expect::Doc(0)),
        ("jobs retry", vec!["jobs", "retry", "999999"], Expect::Error(4)),
        ("policy check", vec!["policy", "check", &p], Expect::Doc(0)),
        ("policy test", vec!["policy", "test", &p], Expect::Doc(0)),
        ("policy diff", vec!["policy", "diff", &p], Expect::Doc(0)),
        ("policy deploy", vec!["policy", "deploy", &p], Expect::Doc(0)),
        ("ledger checkpoint", vec!["ledger", "checkpoint"], Expect::Doc(0)),
        ("ledger key", vec!["ledger", "key"], Expect::Doc(0)),
        ("ledger prove", vec!["ledger", "prove", "0"], Expect::Doc(0)),
        ("ledger consistency", vec!["ledger", "consistency", &old, &new], Expect::Doc(0)),
        ("ledger export", vec!["ledger", "export", &f], Expect::Doc(0)),
        ("ledger verify", vec!["ledger", "verify", &e, "--key", &k], Expect::Doc(0)),
        ("ledger replay", vec!["ledger", "replay"], Expect::Doc(0)),
        ("tokens issue", vec!["tokens", "issue", "--identity", "hr:E1001", "--role", "auditor"], Expect::Doc(0)),
        ("tokens list", vec!["tokens", "list", "--identity", "hr:E1005"], Expect::Doc(0)),
        ("tokens revoke", vec!["tokens", "revoke", &spare], Expect::Doc(0)),
        (
            "creds issue",
            vec!["creds", "issue", "--identity", "service-registry:svc-search", "--kind", "api-key"],
            Expect::Doc(0),
        ),
        ("creds list", vec!["creds", "list", "--kind", "api-key", "--state", "active"], Expect::Doc(0)),
        ("creds revoke", vec!["creds", "revoke", &cred], Expect::Doc(0)),
        ("creds rotate", vec!["creds", "rotate", "nope"], Expect::Error(4)),
        ("creds rotate-key", vec!["creds", "rotate-key"], Expect::Doc(0)),
        ("creds introspect", vec!["creds", "introspect"], Expect::Doc(0)),
        ("requests list", vec!["requests", "list", "--state", "pending"], Expect::Doc(0)),
        ("requests show", vec!["requests", "show", &request], Expect::Doc(0)),
        (
            "requests approve",
            vec!["requests", "approve", &request, "--as", "hr:E1005", "--reason", "mine"],
            Expect::Error(5),
        ),
        ("requests deny", vec!["requests", "deny", &request, "--as", "hr:E1001", "--reason", "no"], Expect::Doc(0)),
        ("closure show", vec!["closure", "show", "hr:E1010"], Expect::Doc(0)),
        ("closure verify", vec!["closure", "verify", &c, "--key", &k], Expect::Doc(0)),
        ("reviews start", vec!["reviews", "start", "privileged-access"], Expect::Doc(0)),
        ("reviews list", vec!["reviews", "list"], Expect::Doc(0)),
        ("reviews show", vec!["reviews", "show", "1"], Expect::Doc(0)),
        ("reviews decide", vec!["reviews", "decide", "999999", "1", "keep", "--as", "hr:E1002"], Expect::Error(4)),
        ("reviews release", vec!["reviews", "release", "1", "--apply", "keep", "--reason", "x"], Expect::Error(5)),
        ("reviews report", vec!["reviews", "report", "999999"], Expect::Error(4)),
        // A drift report is not a review report: the answer says so, exit 1.
        ("reviews verify", vec!["reviews", "verify", &d, "--key", &k], Expect::Doc(1)),
        ("posture", vec!["posture", "--save"], Expect::Doc(0)),
        ("reconcile", vec!["reconcile", "--system", "corp-directory", "--dry-run"], Expect::Doc(0)),
        ("reconcile runs", vec!["reconcile", "runs"], Expect::Doc(0)),
        ("reconcile show", vec!["reconcile", "show", &run], Expect::Doc(0)),
        ("reconcile verify", vec!["reconcile", "verify", &d, "--key", &k], Expect::Doc(0)),
        ("reconcile release", vec!["reconcile", "release", &run], Expect::Error(5)),
        ("systems check", vec!["systems", "check"], Expect::Doc(0)),
        ("findings", vec!["findings", "--all"], Expect::Doc(0)),
        ("init", vec!["init", &fresh_data], Expect::Doc(0)),
        ("config show", vec!["config", "show"], Expect::Doc(0)),
        ("completions", vec!["completions", "bash"], Expect::Error(2)),
        ("demo", vec!["demo"], Expect::Error(2)),
    ];
    let listed: Vec<&str> = cases.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(listed, found, "the cases here and the commands `tenure --help` lists differ");
    for (name, args, expect) in &cases {
        let mut args = args.clone();
        args.extend(["--output", "json"]);
        let out = match *name {
            "creds introspect" => {
                use std::io::Write;
                let mut child = w
                    .tenure()
                    .args(&args)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(b"not-a-token\n").unwrap();
                child.wait_with_output().unwrap()
            }
            _ => w.run(&args),
        };
        let (o, e) = (stdout(&out), stderr(&out));
        match expect {
            Expect::Doc(code) => {
                assert_eq!(out.status.code(), Some(*code), "tenure {args:?}:\n{o}{e}");
                parse(&o, name);
            }
            Expect::Error(code) => {
                assert_eq!(out.status.code(), Some(*code), "tenure {args:?}:\n{o}{e}");
                // Log lines may come first; the error is the last line, one object.
                let err = parse(e.lines().last().unwrap_or_default(), name);
                assert_eq!(err["exit"], *code, "{name}: {err}");
                assert!(err["code"].as_str().is_some_and(|c| c.len() == 6), "{name}: {err}");
                assert!(!err["message"].as_str().unwrap_or_default().is_empty(), "{name}: {err}");
            }
            Expect::Elsewhere(why) => eprintln!("{name}: not run here: {why}"),
        }
    }
}
