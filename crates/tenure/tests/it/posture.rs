//! The posture report as an auditor runs it: `tenure posture` over the quickstart's people and
//! machine identities. A leaver whose NHI nobody succeeds fails OWASP NHI1 with the NHI, its
//! ledger entry (whose inclusion proof `tenure ledger prove` gives) and the open finding; a
//! year-long API token fails NHI4 until it is revoked; `--check` gates on it; `--save` gives each
//! check a trend; `--html` writes one escaped, script-free page; `GET /v1/posture` is the same
//! report, for admins and auditors only.

use crate::support::*;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report}"))
}

fn leave(w: &World, ext: &str) {
    let f = w.file(
        &format!("left-{ext}.jsonl"),
        &event("hr", &format!("left-{ext}"), "left", serde_json::json!({ "external_id": ext, "kind": "human" })),
    );
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
}

#[test]
fn the_posture_report_fails_on_evidence_and_every_item_leads_to_its_proof() {
    let w = World::new();
    workloads(&w);
    let report = |args: &[&str]| {
        let mut a = vec!["--output", "json", "posture"];
        a.extend_from_slice(args);
        json(&w.ok(&a))
    };

    let r = report(&[]);
    let ids: Vec<&str> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in ["NHI1", "NHI4", "NHI5", "NHI7", "NHI10", "PR.AA-01", "PR.AA-05", "GOVERN", "MANAGE"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let total: u64 = r["summary"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total as usize, ids.len(), "the summary counts every check once: {}", r["summary"]);
    // What tenure cannot see is n/a with a reason, never a pass.
    let nhi2 = check(&r, "NHI2");
    assert_eq!(nhi2["status"], "n/a");
    assert!(nhi2["why"].as_str().unwrap().contains("secret scanner"), "{nhi2}");
    // Everyone is in place: offboarding passes and measures.
    assert_eq!(check(&r, "NHI1")["status"], "pass", "{}", check(&r, "NHI1"));
    assert_eq!(check(&r, "NHI1")["measures"]["leaving_now"], 0);
    assert_eq!(check(&r, "NHI4")["status"], "pass", "{}", check(&r, "NHI4"));

    // Grace (E1001) leaves, then John (E1012), her report: nobody succeeds John as owner of
    // wl-deployer, which stays active waiting for a new owner.
    leave(&w, "E1001");
    leave(&w, "E1012");
    let r = report(&[]);
    let nhi1 = check(&r, "NHI1");
    assert_eq!(nhi1["status"], "fail", "{nhi1}");
    let evidence = nhi1["evidence"].as_array().unwrap();
    assert_eq!(nhi1["failing"].as_u64().unwrap() as usize, evidence.len(), "{nhi1}");
    let about = evidence
        .iter()
        .find(|e| e["identity"] == "service-registry:wl-deployer" && e["finding"].is_null())
        .unwrap_or_else(|| panic!("wl-deployer is not in NHI1's evidence: {nhi1}"));
    assert!(about["what"].as_str().unwrap().contains("owner hr:E1012 is not an active person"), "{about}");
    let finding = evidence
        .iter()
        .find(|e| e["identity"] == "service-registry:wl-deployer" && e["finding"].is_u64())
        .unwrap_or_else(|| panic!("the owner_needed finding is not in NHI1's evidence: {nhi1}"));
    let findings = json(&w.ok(&["--output", "json", "findings"]));
    let f = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == finding["finding"])
        .unwrap_or_else(|| panic!("finding {} is not open: {findings}", finding["finding"]));
    assert_eq!(f["kind"], "owner_needed", "{f}");
    // The identity's item points at its latest ledger entry, and that entry is provable.
    let seq = about["ledger_seq"].as_i64().unwrap_or_else(|| panic!("no ledger entry: {about}"));
    let entries = w.ledger();
    let last = entries.iter().rfind(|e| e["subject"] == "service-registry:wl-deployer").unwrap();
    assert_eq!(last["seq"].as_i64(), Some(seq), "{last}");
    w.ok(&["ledger", "checkpoint"]);
    let proof = json(&w.ok(&["ledger", "prove", &seq.to_string()]));
    assert_eq!(proof["entry"]["seq"], seq);
    // Two leavers, both closed: their closure time is measured.
    assert_eq!(nhi1["measures"]["leavers_closed_measured"], 2, "{nhi1}");
    assert!(nhi1["measures"]["leaver_to_closed_p95_seconds"].is_i64(), "{nhi1}");

    // A pipeline's gate: --check exits 1 while a check fails.
    let out = w.run(&["posture", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let table = stdout(&out);
    assert!(table.contains("NHI1 fails:"), "{table}");
    assert!(table.contains("[tenure ledger prove "), "{table}");

    // A year-long API token for a service is a static secret that outlives NHI4's 90 days.
    let token_id = {
        w.ok(&[
            "tokens",
            "issue",
            "--identity",
            "service-registry:svc-search",
            "--role",
            "requester",
            "--ttl-days",
            "365",
        ]);
        let tokens = json(&w.ok(&["--output", "json", "tokens", "list", "--identity", "service-registry:svc-search"]));
        tokens.as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned()
    };
    let saved = report(&["--save"]);
    let nhi4 = check(&saved, "NHI4");
    assert_eq!(nhi4["status"], "fail", "{nhi4}");
    assert!(nhi4["evidence"][0]["what"].as_str().unwrap().contains(&token_id), "{nhi4}");
    assert!(nhi4["evidence"][0]["what"].as_str().unwrap().contains("lives 365 days"), "{nhi4}");
    w.ok(&["tokens", "revoke", &token_id]);
    let r = report(&[]);
    let nhi4 = check(&r, "NHI4");
    assert_eq!(nhi4["status"], "pass", "{nhi4}");
    // The saved snapshot is the trend's last point: NHI4 failed then, with one item (the one
    // before is the clock's daily snapshot, taken by the first `jobs run`).
    let trend = nhi4["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2, "{nhi4}");
    assert_eq!(trend[0]["status"], "pass", "{nhi4}");
    assert_eq!(trend[1], serde_json::json!({ "at": saved["at"], "status": "fail", "failing": 1 }), "{nhi4}");

    // One page for auditors: no script, every value escaped.
    let page = w.tmp.path().join("posture.html");
    w.ok(&["posture", "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..80.min(html.len())]);
    assert!(!html.to_lowercase().contains("<script"), "the page carries no script");
    assert!(html.contains("service-registry:wl-deployer"), "the evidence is on the page");
    assert!(html.contains("OWASP Non-Human Identities Top 10 (2025)"));

    // Over HTTP, the same report, for admins and auditors.
    let s = Server::start(&w, &[]);
    let (status, body) = s.get("/v1/posture");
    assert_eq!(status, 200, "{body}");
    let api = json(&body);
    // (The server's scheduled reconciliation may already have added its own findings of the
    // ownerless NHIs: the report only grows.)
    let api_nhi1 = check(&api, "NHI1");
    assert!(api_nhi1["failing"].as_u64() >= check(&r, "NHI1")["failing"].as_u64(), "{api_nhi1}");
    assert!(api_nhi1["evidence"].as_array().unwrap().iter().any(|e| e["identity"] == "service-registry:wl-deployer"));
    // A finding's link is a query the API answers.
    let (status, body) = s.get(finding["link"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("owner_needed"), "{body}");
    let requester = w.token("hr:E1005", &["requester"]);
    assert_eq!(s.get_as(Some(&requester), "/v1/posture").0, 403);
}
