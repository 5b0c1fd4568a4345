//! `tenure import` and `tenure identities`: all-or-nothing batches, errors that name line and
//! field, idempotent re-imports, policy rules on NHIs and authority.

use crate::support::*;

fn good_lines() -> Vec<String> {
    vec![
        event("hr", "e1", "joined", human("E1", "Ada Lovelace", "engineering")),
        event("hr", "e2", "joined", human("E2", "Grace Hopper", "finance")),
        event("service-registry", "s1", "joined", nhi("svc-a", "service", Some("hr:E1"), "2027-06-01T00:00:00Z")),
    ]
}

#[test]
fn a_bad_record_rejects_the_whole_file_and_a_reimport_changes_nothing() {
    let w = World::new();
    let good = w.file("good.jsonl", &good_lines()[..2].join("\n"));
    w.ok(&["import", "--source", "hr", good.to_str().unwrap()]);
    let before = w.identities();
    assert_eq!(before.as_array().unwrap().len(), 2);

    // One bad record (line 3: unknown kind) among good ones.
    let mut lines = vec![
        event("hr", "e3", "joined", human("E3", "Alan Turing", "engineering")),
        event("hr", "e4", "joined", human("E4", "Edsger Dijkstra", "engineering")),
    ];
    let mut bad = human("E5", "Robot", "engineering");
    bad["kind"] = "robot".into();
    lines.push(event("hr", "e5", "joined", bad));
    lines.push(event("hr", "e6", "joined", human("E6", "Barbara Liskov", "sales")));
    let file = w.file("mixed.jsonl", &lines.join("\n"));
    let out = w.run(&["import", "--source", "hr", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: field identity.kind: expected one of human, service, workload, agent, found `robot`"),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(w.identities(), before);

    // A semantic error later in the file also rejects everything before it.
    let lines = [
        event("hr", "e7", "joined", human("E7", "Ken Thompson", "engineering")),
        event("hr", "e8", "changed", human("E404", "Nobody", "engineering")),
    ];
    let file = w.file("semantic.jsonl", &lines.join("\n"));
    let out = w.run(&["import", "--source", "hr", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2: field identity.external_id: no identity `hr:E404`; it must join first"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.identities(), before);

    // Importing the same good file again changes nothing, not even the ledger.
    let audit = |w: &World| w.ledger().len();
    let audit_before = audit(&w);
    let out = w.ok(&["import", "--source", "hr", good.to_str().unwrap()]);
    assert!(out.contains("0 accepted, 2 already imported"), "{out}");
    assert_eq!(w.identities(), before);
    assert_eq!(audit(&w), audit_before);

    // The same event id with different content is not a replay.
    let changed = w.file("reuse.jsonl", &event("hr", "e1", "joined", human("E1", "Ada King", "engineering")));
    let out = w.run(&["import", "--source", "hr", changed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("line 1: field id: event id `e1` of source `hr` was already accepted with different content")
    );
}

#[test]
fn nhi_rules_and_source_authority_are_enforced() {
    let w = World::new();
    let people = w.file("people.jsonl", &good_lines()[..2].join("\n"));
    w.ok(&["import", "--source", "hr", people.to_str().unwrap()]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "service-registry",
            event("service-registry", "s1", "joined", nhi("svc-x", "service", None, "2027-06-01T00:00:00Z")),
            "line 1: field identity.owner: a service identity needs an owner",
        ),
        (
            "service-registry",
            // The quickstart allows 365 days.
            event("service-registry", "s2", "joined", nhi("svc-y", "agent", Some("hr:E1"), "2028-01-01T00:00:00Z")),
            "line 1: field identity.expires_at: `2028-01-01T00:00:00Z` is more than 365 days after the event (policy `max_nhi_lifetime_days`)",
        ),
        (
            "service-registry",
            event(
                "service-registry",
                "s3",
                "joined",
                nhi("svc-z", "workload", Some("service-registry:svc-z"), "2027-01-01T00:00:00Z"),
            ),
            "line 1: field identity.owner: an identity cannot own itself",
        ),
        (
            "service-registry",
            event(
                "service-registry",
                "s4",
                "joined",
                nhi("svc-w", "workload", Some("hr:E404"), "2027-01-01T00:00:00Z"),
            ),
            "line 1: field identity.owner: no identity `hr:E404`; the owner must be an active human",
        ),
        (
            "hr",
            event("hr", "h1", "joined", nhi("svc-from-hr", "service", Some("hr:E1"), "2027-01-01T00:00:00Z")),
            "line 1: field source: source `hr` is not authoritative for `service` identities",
        ),
        (
            "payroll",
            event("payroll", "p1", "joined", human("P1", "Someone", "finance")),
            "line 1: field source: unknown source `payroll`; the policy knows bamboohr, hr, okta, service-registry, vendors",
        ),
        (
            "vendors",
            event(
                "vendors",
                "v1",
                "joined",
                serde_json::json!({"external_id": "C1", "kind": "human", "name": "Contractor",
                "attributes": {"employment": "contractor"}}),
            ),
            "line 1: field identity.expires_at: a contractor (`employment = contractor`) needs an expiry",
        ),
    ];
    for (source, line, want) in cases {
        let f = w.file("case.jsonl", &line);
        let out = w.run(&["import", "--source", source, f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{want}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "expected `{want}` in:\n{}", stderr(&out));
    }
    // An NHI owned by a machine is refused too.
    let ok = w.file("ok.jsonl", &good_lines()[2]);
    w.ok(&["import", "--source", "service-registry", ok.to_str().unwrap()]);
    let f = w.file(
        "case.jsonl",
        &event(
            "service-registry",
            "s9",
            "joined",
            nhi("svc-b", "service", Some("service-registry:svc-a"), "2027-01-01T00:00:00Z"),
        ),
    );
    let out = w.run(&["import", "--source", "service-registry", f.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("`service-registry:svc-a` is a service identity; the owner must be a human"),
        "{}",
        stderr(&out)
    );
    // The import's --source must match every record.
    let out = w.run(&["import", "--source", "vendors", ok.to_str().unwrap()]);
    assert!(
        stderr(&out).contains(
            "line 1: field source: expected `vendors` (the --source of this import), found `service-registry`"
        )
    );
    assert_eq!(w.identities().as_array().unwrap().len(), 3);
}

#[test]
fn csv_imports_like_jsonl_and_lists_as_json() {
    let w = World::new();
    let csv = w.file(
        "people.csv",
        "source,id,type,at,external_id,kind,name,owner,purpose,expires_at,attr.department,attr.employment\n\
         vendors,v1,joined,2026-11-01T09:00:00Z,C1,human,Priya Raman,,,2027-06-01T00:00:00Z,engineering,contractor\n\
         vendors,v2,joined,2026-11-01T09:00:00Z,C2,human,Mei Chen,,,2027-06-01T00:00:00Z,finance,contractor\n",
    );
    let out = w.ok(&["import", "--source", "vendors", csv.to_str().unwrap()]);
    assert!(out.contains("2 accepted"), "{out}");
    let ids = w.identities();
    let c1 = ids.as_array().unwrap().iter().find(|i| i["ref"] == "vendors:C1").unwrap();
    assert_eq!(c1["kind"], "human");
    assert_eq!(c1["state"], "pending");
    assert_eq!(c1["owner"], serde_json::Value::Null);
    let grants: Vec<&str> =
        c1["grants"].as_array().unwrap().iter().map(|g| g["entitlement"].as_str().unwrap()).collect();
    assert_eq!(
        grants,
        [
            "corp-directory/all-staff",
            "corp-directory/contractors",
            "corp-directory/engineering",
            "corp-directory/source-code"
        ]
    );
    // `jobs run` provisions them (no server needed).
    w.ok(&["jobs", "run"]);
    let ids = w.identities();
    assert!(ids.as_array().unwrap().iter().all(|i| i["state"] == "active"), "{ids}");
    let shown = w.ok(&["identities", "show", "vendors:C1"]);
    assert!(shown.contains("identity.activated"), "{shown}");
    assert!(shown.contains("corp-directory/source-code  verified"), "{shown}");
    let out = w.run(&["identities", "show", "vendors:nobody"]);
    assert_eq!(out.status.code(), Some(4), "not found");
    assert!(stderr(&out).contains("no identity `vendors:nobody`"), "{}", stderr(&out));
}

#[test]
fn symlinks_in_a_policy_bundle_are_followed_inside_it_and_refused_otherwise() {
    // No downstream system needed: `policy check` reads the bundle only.
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("policy");
    copy_dir(&quickstart_policy(), &bundle);
    let check = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["--data-dir", tmp.path().join("data").to_str().unwrap(), "policy", "check", dir.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let count = |o: &std::process::Output| stdout(o).split(", ").last().unwrap_or_default().to_owned();
    let before = check(&bundle);
    assert!(before.status.success(), "{}", stderr(&before));
    // The guardrails moved to a shared file, linked into the bundle: they still count.
    let guardrails = bundle.join("policies/guardrails.cedar");
    std::fs::rename(&guardrails, bundle.join("shared-guardrails.cedar.txt")).unwrap();
    std::os::unix::fs::symlink("../shared-guardrails.cedar.txt", &guardrails).unwrap();
    let linked = check(&bundle);
    assert!(linked.status.success(), "{}", stderr(&linked));
    assert_eq!(count(&linked), count(&before), "a linked guardrail dropped out");
    // A link out of the bundle, or one that leads nowhere, fails loudly.
    let outside = tmp.path().join("outside.cedar");
    std::fs::rename(bundle.join("shared-guardrails.cedar.txt"), &outside).unwrap();
    std::fs::remove_file(&guardrails).unwrap();
    std::os::unix::fs::symlink(&outside, &guardrails).unwrap();
    let out = check(&bundle);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("links outside the bundle"), "{}", stderr(&out));
    std::fs::remove_file(&outside).unwrap();
    let out = check(&bundle);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("leads nowhere"), "{}", stderr(&out));
}

#[test]
fn a_feed_mixing_sources_imports_from_standard_input_all_or_nothing() {
    let w = World::new();
    let feeds = repo().join("examples/quickstart/feeds");
    let pipe = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = w
            .tenure()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // Three sources in one stream, each record naming its own: accepted together.
    let mut all = String::new();
    for f in ["hr.jsonl", "service-registry.jsonl"] {
        all.push_str(&std::fs::read_to_string(feeds.join(f)).unwrap());
    }
    let out = pipe(&["import", "-"], &all);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("46 accepted"), "{}", stdout(&out));
    w.ok(&["import", feeds.join("vendors.csv").to_str().unwrap()]);
    let day_two = std::fs::read_to_string(feeds.join("day-two.jsonl")).unwrap();
    // With --source, a feed must be that source's alone.
    let out = pipe(&["import", "--source", "hr", "-"], &day_two);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("line 2: field source: expected `hr` (the --source of this import), found `service-registry`"),
        "{}",
        stderr(&out)
    );
    let out = pipe(&["import", "-"], &day_two);
    assert!(out.status.success(), "{}", stderr(&out));
    // A record of a source the policy does not know rejects the whole stream.
    let unknown = event("nope", "x1", "joined", human("Z1", "Nobody", "sales"));
    let out =
        pipe(&["import", "-"], &format!("{}\n{unknown}", event("hr", "z0", "joined", human("Z0", "Zed", "sales"))));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2: field source: unknown source `nope`"), "{}", stderr(&out));
    assert!(!w.identities().as_array().unwrap().iter().any(|i| i["ref"] == "hr:Z0"), "nothing of it applied");
    // CSV on standard input says so.
    let csv = std::fs::read_to_string(feeds.join("vendors.csv")).unwrap();
    let out = pipe(&["import", "--format", "csv", "-"], &csv);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("already imported"), "{}", stdout(&out));
}
