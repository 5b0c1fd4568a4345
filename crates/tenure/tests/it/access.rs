//! Policy as code end to end: who may call the API, requests with separation of duties, JIT and
//! exceptions ended by the clock, runtime authorization cut off by a leaver, and the policy
//! tooling (`tenure policy test|diff|deploy`). Directory state is checked with `ldapsearch`.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use tenure_engine::access::AccessRequest;
use tenure_model::Principal;
use tenure_model::RequestKind;

/// Members of a group, per `ldapsearch`.
fn members(w: &World, group: &str) -> BTreeSet<String> {
    w.ldapsearch(&format!("(&(objectClass=groupOfNames)(cn={group}))"), &["member"])
        .lines()
        .filter_map(|l| l.strip_prefix("member: uid="))
        .map(|l| l.split(',').next().unwrap_or("").to_owned())
        .collect()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Who may call what, written independently of the server's own table.
fn expected() -> BTreeMap<(&'static str, &'static str), &'static [&'static str]> {
    let mut m: BTreeMap<(&str, &str), &[&str]> = BTreeMap::new();
    m.insert(("GET", "/healthz"), &["*"]);
    m.insert(("GET", "/livez"), &["*"]);
    m.insert(("GET", "/readyz"), &["*"]);
    m.insert(("GET", "/openapi.json"), &["*"]);
    m.insert(("POST", "/v1/events"), &["source:hr"]);
    m.insert(("GET", "/v1/identities"), &["admin", "auditor"]);
    m.insert(("GET", "/v1/identities/{reference}"), &["admin", "auditor"]);
    m.insert(("GET", "/v1/jobs"), &["admin", "auditor"]);
    m.insert(("POST", "/v1/requests"), &["admin", "requester"]);
    m.insert(("GET", "/v1/requests"), &["admin", "approver", "auditor"]);
    m.insert(("GET", "/v1/requests/{id}"), &["admin", "approver", "auditor", "requester"]);
    m.insert(("POST", "/v1/requests/{id}/approve"), &["approver"]);
    m.insert(("POST", "/v1/requests/{id}/deny"), &["approver"]);
    m.insert(("POST", "/v1/authorize"), &["admin", "authorizer"]);
    m.insert(("POST", "/v1/tokens"), &["admin"]);
    m.insert(("GET", "/v1/tokens"), &["admin", "auditor"]);
    m.insert(("POST", "/v1/tokens/{id}/revoke"), &["admin"]);
    m.insert(("GET", "/v1/findings"), &["admin", "auditor"]);
    m.insert(("GET", "/metrics"), &["admin", "auditor"]);
    m.insert(("POST", "/v1/reconcile"), &["admin"]);
    m.insert(("GET", "/v1/reconcile/runs"), &["admin", "auditor"]);
    m.insert(("GET", "/v1/reconcile/runs/{id}"), &["admin", "auditor"]);
    m.insert(("GET", "/v1/systems"), &["admin", "auditor"]);
    m.insert(("POST", "/v1/reviews"), &["admin"]);
    m.insert(("GET", "/v1/reviews"), &["admin", "auditor", "approver"]);
    m.insert(("GET", "/v1/reviews/{id}"), &["admin", "auditor", "approver"]);
    m.insert(("POST", "/v1/reviews/{id}/items/{item}/decide"), &["approver"]);
    m.insert(("POST", "/v1/reviews/{id}/release"), &["admin"]);
    m.insert(("GET", "/v1/posture"), &["admin", "auditor"]);
    // The broker: public documents for relying parties; issuing, rotating and revoking for any
    // authenticated caller (the engine then requires the NHI itself or its owner).
    const ANY: &[&str] = &["admin", "approver", "auditor", "requester", "authorizer", "source:hr"];
    m.insert(("GET", "/.well-known/openid-configuration"), &["*"]);
    m.insert(("GET", "/.well-known/jwks.json"), &["*"]);
    m.insert(("GET", "/v1/trust-bundle"), &["*"]);
    m.insert(("GET", "/v1/crl"), &["*"]);
    m.insert(("POST", "/v1/credentials"), ANY);
    m.insert(("GET", "/v1/credentials"), &["admin", "auditor"]);
    m.insert(("POST", "/v1/credentials/{id}/rotate"), ANY);
    m.insert(("POST", "/v1/credentials/{id}/revoke"), ANY);
    m.insert(("POST", "/v1/oauth/introspect"), &["admin", "authorizer"]);
    m.insert(("POST", "/v1/oauth/revoke"), ANY);
    // The engine decides who may renew what: the owner, a person's manager, an admin.
    m.insert(("POST", "/v1/identities/{reference}/renew"), ANY);
    m.insert(("POST", "/v1/identities/{reference}/attest"), ANY);
    // SCIM: a source's token (docs/sources.md).
    for (method, path) in [
        ("GET", "/scim/v2/ServiceProviderConfig"),
        ("GET", "/scim/v2/ResourceTypes"),
        ("GET", "/scim/v2/ResourceTypes/{id}"),
        ("GET", "/scim/v2/Schemas"),
        ("GET", "/scim/v2/Schemas/{id}"),
        ("GET", "/scim/v2/Users"),
        ("POST", "/scim/v2/Users"),
        ("POST", "/scim/v2/Users/.search"),
        ("POST", "/scim/v2/.search"),
        ("GET", "/scim/v2/Users/{id}"),
        ("PUT", "/scim/v2/Users/{id}"),
        ("PATCH", "/scim/v2/Users/{id}"),
        ("DELETE", "/scim/v2/Users/{id}"),
    ] {
        m.insert((method, path), &["source:hr"]);
    }
    m
}

#[test]
fn every_route_refuses_missing_wrong_role_expired_and_revoked_tokens() {
    let w = World::new();
    // 105 refusals on purpose: not slowed down as a guessing client would be.
    let s = Server::start(&w, &["--auth-failures-per-minute", "1000"]);
    let roles = ["admin", "approver", "auditor", "requester", "authorizer", "source:hr"];
    let tokens: BTreeMap<&str, String> = roles.iter().map(|r| (*r, w.token(OPERATOR, &[r]))).collect();
    let revoked = w.token(OPERATOR, &["admin"]);
    let id = |t: &str| t.trim_start_matches("tnr_").split('_').next().unwrap().to_owned();
    w.ok(&["tokens", "revoke", &id(&revoked)]);
    // A token issued by an engine whose clock reads 2001: it expired long ago.
    let expired = Clocked::at(&w, time::macros::datetime!(2001-01-01 00:00 UTC))
        .engine
        .issue_token(OPERATOR, &["admin".to_owned()], Some(1), "", &tenure_model::Principal::operator("test"))
        .unwrap()
        .secret;
    let bad = [
        (None, "missing"),
        (Some("tnr_0000_nope".to_owned()), "unknown"),
        (Some(format!("{}x", tokens["admin"])), "wrong secret"),
        (Some(expired.clone()), "expired"),
        (Some(revoked.clone()), "revoked"),
    ];
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let call = |method: &str, path: &str, token: Option<&str>| -> (u16, String) {
        let path = path.replace("{reference}", OPERATOR).replace("{id}", "1").replace("{item}", "1");
        match method {
            "GET" => s.get_as(token, &path),
            "POST" => s.post_as(token, &path, "{}").unwrap(),
            _ => {
                let mut req = ureq::http::Request::builder().method(method).uri(format!("{}{path}", s.base));
                if let Some(t) = token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let mut r =
                    agent.run(req.header("content-type", "application/json").body("{}".to_owned()).unwrap()).unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
            }
        }
    };
    // A refusal's body: tenure's error code, or under /scim the SCIM error schema.
    let refused = |path: &str, body: &str, status: u16, code: &str| {
        let b = json(body);
        if path.starts_with("/scim/") {
            assert_eq!(b["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{body}");
            assert_eq!(b["status"], status.to_string(), "{body}");
        } else {
            assert_eq!(b["code"], code, "{body}");
        }
    };

    let want = expected();
    let have: BTreeSet<(&str, &str)> = tenure_server::ROUTES.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(have, want.keys().copied().collect(), "the test's table and the server's routes differ");
    let mut checked = 0;
    for ((method, path), allowed) in &want {
        if allowed == &["*"] {
            assert_eq!(call(method, path, None).0, 200, "{method} {path} is public");
            continue;
        }
        for (token, what) in &bad {
            let (status, body) = call(method, path, token.as_deref());
            assert_eq!(status, 401, "{method} {path} with a {what} token: {body}");
            refused(path, &body, 401, "EN0012");
            checked += 1;
        }
        for role in roles {
            let (status, body) = call(method, path, Some(&tokens[role]));
            if allowed.contains(&role) {
                assert!(status != 401 && status != 403, "{method} {path} as {role}: {status} {body}");
            } else {
                assert_eq!(status, 403, "{method} {path} as {role}: {body}");
                refused(path, &body, 403, "EN0013");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 46 * (5 + 6));

    // A refusal is sent before the body is read, so the server closes the connection and says
    // so: a pooling client would otherwise write its next request onto a closed socket (CI saw
    // "Peer disconnected" here when the body arrived after the refusal).
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    conn.write_all(
        b"POST /v1/events HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let _ = conn.write_all(b"[]");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{answer}");

    // A source token posts for its source only.
    let vendor = event("vendors", "v1", "joined", human("V1", "Vic", "sales"));
    let (status, body) = s.post_as(Some(&tokens["source:hr"]), "/v1/events", &format!("[{vendor}]")).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("record 0: this token may post events for hr only, not `vendors`"), "{body}");
    // A leaver's tokens stop at once.
    let leaver = event("hr", "ops-left", "left", serde_json::json!({ "external_id": "OPS", "kind": "human" }));
    let f = w.file("ops-left.jsonl", &leaver);
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    let (status, body) = s.get_as(Some(&tokens["admin"]), "/v1/identities");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not active"), "{body}");
}

#[test]
fn a_privileged_request_is_provisioned_only_after_two_distinct_human_approvals() {
    let w = World::new();
    hr(&w);
    let s = Server::start(&w, &[]);
    // Barbara (E1005, engineering) asks for standing production admin.
    let barbara = w.token("hr:E1005", &["requester", "approver"]);
    let grace = w.token("hr:E1001", &["approver"]); // owns the directory: system-owner
    let margaret = w.token("hr:E1011", &["approver"]); // security
    let ken = w.token("hr:E1008", &["approver"]); // nobody in particular
    // A machine cannot even hold the approver role.
    let out = w.run(&["tokens", "issue", "--identity", "service-registry:svc-billing", "--role", "approver"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let ask = serde_json::json!({ "entitlement": "corp-directory/prod-admin", "intent": "on-call rota" }).to_string();
    let (status, body) = s.post_as(Some(&barbara), "/v1/requests", &ask).unwrap();
    assert_eq!(status, 201, "{body}");
    let req = json(&body);
    assert_eq!(req["state"], "pending");
    assert_eq!(req["decision"]["approval"], serde_json::json!({ "roles": ["system-owner", "security"], "count": 2 }));
    assert_eq!(req["decision"]["policies"], serde_json::json!(["privileged-access"]));
    let id = req["id"].as_i64().unwrap();
    let answer = |token: &str, verb: &str| {
        s.post_as(Some(token), &format!("/v1/requests/{id}/{verb}"), r#"{"reason":"checked the rota"}"#).unwrap()
    };

    let (status, body) = answer(&barbara, "approve");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("nobody approves their own request"), "{body}");
    let (status, body) = answer(&ken, "approve");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("needs system-owner, security"), "{body}");
    let (status, body) = answer(&grace, "approve");
    assert_eq!((status, json(&body)["state"].clone()), (200, "pending".into()), "{body}");
    let (status, body) = answer(&grace, "approve");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("`hr:E1001` already answered"), "{body}");
    // One approval in: nothing is provisioned.
    w.ok(&["jobs", "run"]);
    assert!(!members(&w, "prod-admin").contains("E1005"));
    let (status, body) = answer(&margaret, "approve");
    assert_eq!((status, json(&body)["state"].clone()), (200, "approved".into()), "{body}");
    let mut held = false;
    for _ in 0..100 {
        held = members(&w, "prod-admin").contains("E1005");
        if held {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(held, "E1005 is not in prod-admin after the second approval");
    // Once the read-back is committed, the ledger alone rebuilds the database's state.
    for _ in 0..100 {
        let i = json(&s.get("/v1/identities/hr:E1005").1);
        if i["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["entitlement"] == "corp-directory/prod-admin" && g["state"] == "verified")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let replay = w.ok(&["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
    let timeline: Vec<String> = json(&s.get("/v1/identities/hr:E1005").1)["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} {}", t["actor"].as_str().unwrap(), t["action"].as_str().unwrap()))
        .collect();
    for want in [
        "hr:E1005 request.created",
        "hr:E1001 request.approved_by",
        "hr:E1011 request.approved_by",
        "tenure request.granted",
    ] {
        assert!(timeline.iter().any(|t| t == want), "{want} not in {timeline:?}");
    }
}

#[test]
fn jit_grants_and_exceptions_leave_ldap_when_they_expire() {
    let w = World::new();
    hr(&w);
    // The engine in-process on the same data dir, with a clock the test drives.
    let c = Clocked::new(&w);
    let (clock, engine) = (&c.clock, &c.engine);
    let run = || c.run();
    let actor = |r: &str| Principal::local(r.parse().unwrap(), []);

    // Grace (engineering) elevates to prod-admin for 30 minutes: auto-approved by policy.
    let jit = engine
        .request(
            &actor("hr:E1001"),
            &AccessRequest {
                beneficiary: "hr:E1001".into(),
                entitlement: "corp-directory/prod-admin".into(),
                kind: RequestKind::Jit,
                intent: "incident 4711".into(),
                duration: Some(time::Duration::minutes(30)),
            },
        )
        .unwrap();
    assert_eq!(jit.state, "approved", "{jit:?}");
    // Alan (finance) creates payments; approving them too is against a guardrail, so he needs an
    // exception, approved by security, for two days.
    let too_long = engine.request(
        &actor("hr:E1002"),
        &AccessRequest {
            beneficiary: "hr:E1002".into(),
            entitlement: "corp-directory/payments-approve".into(),
            kind: RequestKind::Exception,
            intent: "quarter close while the controller is away".into(),
            duration: Some(time::Duration::days(31)),
        },
    );
    assert!(
        too_long.unwrap_err().to_string().contains("longer than the exception maximum of 43200 minutes"),
        "an exception is no longer than policy's maximum"
    );
    let exc = engine
        .request(
            &actor("hr:E1002"),
            &AccessRequest {
                beneficiary: "hr:E1002".into(),
                entitlement: "corp-directory/payments-approve".into(),
                kind: RequestKind::Exception,
                intent: "quarter close while the controller is away".into(),
                duration: Some(time::Duration::days(2)),
            },
        )
        .unwrap();
    assert_eq!(exc.state, "pending");
    assert_eq!(exc.waives, ["sod-payments"]);
    let exc = engine.answer(&"hr:E1011".parse().unwrap(), exc.id, true, "approved for the close").unwrap();
    assert_eq!(exc.state, "approved");
    run();
    assert!(members(&w, "prod-admin").contains("E1001"));
    assert!(members(&w, "payments-approve").contains("E1002"));
    assert!(members(&w, "payments-create").contains("E1002"), "the exception waives the guardrail");

    clock.advance(time::Duration::minutes(31));
    let expired = engine.tick().unwrap();
    assert_eq!(expired.grants, ["hr:E1001 corp-directory/prod-admin"]);
    run();
    assert!(!members(&w, "prod-admin").contains("E1001"), "the JIT grant outlived its expiry");
    assert!(members(&w, "payments-approve").contains("E1002"));

    clock.advance(time::Duration::days(2));
    assert_eq!(engine.tick().unwrap().grants, ["hr:E1002 corp-directory/payments-approve"]);
    run();
    assert!(!members(&w, "payments-approve").contains("E1002"), "the exception outlived its expiry");
    assert!(members(&w, "payments-create").contains("E1002"));
    // Both ends are in the ledger.
    let detail = engine.identity_detail("hr:E1002").unwrap();
    assert!(detail.timeline.iter().any(|t| t.action == "grant.expired"));
    assert!(engine.identity_detail("hr:E1001").unwrap().identity.state == "active");
    // The ledger alone rebuilds the grants requests gave and the clock took.
    assert_eq!(engine.replay().unwrap(), vec![]);
}

#[test]
fn authorize_answers_with_reasons_and_cuts_off_a_leaver_at_once() {
    let w = World::new();
    workloads(&w);
    let s = Server::start(&w, &[]);
    let ask = serde_json::json!({
        "principal": "service-registry:wl-deployer",
        "action": "deploy",
        "resource": { "id": "payments-api" },
        "context": { "intent": "release 2026.11", "environment": "prod" },
    })
    .to_string();
    let (status, body) = s.post("/v1/authorize", &ask).unwrap();
    assert_eq!(status, 200, "{body}");
    let d = json(&body);
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["policies"], serde_json::json!(["deploy-production"]));
    assert_eq!(d["policy_version"].as_str().unwrap().len(), 64);
    // A context that does not fit the schema is bad input, named.
    let wrong = ask.replace("\"environment\":\"prod\"", "\"environment\":7");
    let (status, body) = s.post("/v1/authorize", &wrong).unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("context"), "{body}");

    let left = event(
        "service-registry",
        "sr-left",
        "left",
        nhi("wl-deployer", "workload", Some("hr:E1012"), "2027-09-30T00:00:00Z"),
    );
    assert_eq!(s.post("/v1/events", &format!("[{left}]")).unwrap().0, 200);
    // No wait: the leaver is denied from the commit of its event on.
    let d = json(&s.post("/v1/authorize", &ask).unwrap().1);
    assert_eq!(d["decision"], "deny", "{d}");
    assert_eq!(d["policies"], serde_json::json!(["tenure:lifecycle"]));
    assert!(d["reasons"][0].as_str().unwrap().contains("is leaving"), "{d}");
    drop(s);
    // Every decision is in the ledger.
    assert_eq!(w.ledger_of("authz.decided").len(), 2);
}

#[test]
fn policy_test_passes_on_the_quickstart_and_names_a_broken_case() {
    let w = World::new();
    let out = w.ok(&["policy", "test", quickstart_policy().to_str().unwrap()]);
    assert!(out.contains("29 case(s): 29 passed, 0 failed"), "{out}");
    let broken = w.tmp.path().join("broken");
    copy_dir(&quickstart_policy(), &broken);
    let rules = broken.join("policies/requests.cedar");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, text.replace("@approve(\"manager\")\npermit (principal, action == Tenure::Action::\"request\", resource)\nwhen { principal.human && !resource.privileged", "@approve(\"owner\")\npermit (principal, action == Tenure::Action::\"request\", resource)\nwhen { principal.human && !resource.privileged")).unwrap();
    // And a correlation rule that compares the wrong identity attribute.
    let manifest = broken.join("tenure.toml");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        m.replacen(
            "account = \"employeeNumber\"\nidentity = \"external_id\"",
            "account = \"employeeNumber\"\nidentity = \"email\"",
            1,
        ),
    )
    .unwrap();
    let out = w.run(&["policy", "test", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("correlation: expected ada; the rules of `corp-directory` match nobody"), "{text}");
    assert!(
        text.contains("FAILED tests/quickstart.toml: an engineer asking for the ledger needs their manager"),
        "{text}"
    );
    assert!(text.contains("approvers: expected manager; policy asks owner"), "{text}");
    assert!(text.contains("2 failed"), "{text}");

    // Deploying it is refused, first deploy or not, and nothing changes.
    let feed = repo().join("examples/quickstart/feeds/hr.jsonl");
    let b = broken.to_str().unwrap();
    let out = w.run(&["--policy", b, "import", "--source", "hr", feed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 of the bundle's 29 test case(s) fail"), "{}", stderr(&out));
    assert!(w.ledger().is_empty(), "a refused first deploy left entries");
    hr(&w);
    let out = w.run(&["policy", "deploy", b]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stdout(&out).contains("policy ") && stdout(&out).contains("identities change"), "no impact shown");
    assert!(stdout(&out).contains("tests: 29 case(s), 27 passed, 2 failed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("nothing was deployed"), "{}", stderr(&out));
    assert_eq!(w.ledger_of("policy.deployed").len(), 1);
    // --force needs a reason; with one, the entry names the failing cases and the reason.
    let out = w.run(&["policy", "deploy", b, "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = w.ok(&["policy", "deploy", b, "--force", "--reason", "correlation fixed in CHG-12"]);
    assert!(out.contains("forced past failing tests"), "{out}");
    let detail = w.ledger_of("policy.deployed").pop().unwrap()["detail"].clone();
    assert_eq!(detail["forced"]["reason"], "correlation fixed in CHG-12");
    assert_eq!(detail["forced"]["failed_cases"].as_array().unwrap().len(), 2, "{detail}");
    // Any other command's --policy reads: the quickstart (TENURE_POLICY) is not deployed back.
    let out = w.run(&["--policy", quickstart_policy().to_str().unwrap(), "jobs", "run"]);
    assert!(stderr(&out).contains("is not deployed; the deployed policy"), "{}", stderr(&out));
    assert_eq!(w.ledger_of("policy.deployed").len(), 2);
}

#[test]
fn policy_diff_shows_exactly_what_moving_a_department_template_changes() {
    let w = World::new();
    hr(&w);
    // Move the ledger from finance to sales.
    let next = w.tmp.path().join("next");
    copy_dir(&quickstart_policy(), &next);
    let t = next.join("templates/departments.toml");
    let text = std::fs::read_to_string(&t).unwrap();
    let text = text
        .replace(
            r#"grant = ["corp-directory/finance", "corp-directory/ledger-readers", "corp-directory/payments-create"]"#,
            r#"grant = ["corp-directory/finance", "corp-directory/payments-create"]"#,
        )
        .replace(
            r#"grant = ["corp-directory/sales"]"#,
            r#"grant = ["corp-directory/sales", "corp-directory/ledger-readers"]"#,
        );
    std::fs::write(&t, text).unwrap();

    // What should change, read from the feed rather than from tenure.
    let feed = std::fs::read_to_string(repo().join("examples/quickstart/feeds/hr.jsonl")).unwrap();
    let mut want: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for line in feed.lines() {
        let e = json(line);
        let i = &e["identity"];
        let r = format!("hr:{}", i["external_id"].as_str().unwrap());
        match i["attributes"]["department"].as_str().unwrap() {
            "finance" => want.insert(r, (vec![], vec!["corp-directory/ledger-readers".into()])),
            "sales" => want.insert(r, (vec!["corp-directory/ledger-readers".into()], vec![])),
            _ => None,
        };
    }
    let out = w.ok(&["policy", "diff", next.to_str().unwrap(), "--output", "json"]);
    let impact = json(&out);
    let got: BTreeMap<String, (Vec<String>, Vec<String>)> = impact["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let list = |k: &str| i[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
            (i["ref"].as_str().unwrap().to_owned(), (list("gains"), list("losses")))
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(impact["grants_gained"].as_u64().unwrap() as usize, want.values().filter(|v| !v.0.is_empty()).count());
    let text = w.ok(&["policy", "diff", next.to_str().unwrap()]);
    assert!(text.contains(&format!("{} identities change", want.len())), "{text}");
    // Nothing changed by diffing; deploying records both versions.
    assert!(w.ok(&["policy", "diff", quickstart_policy().to_str().unwrap()]).contains("0 identities change"));
    // The bundle's own cases still expect the ledger in finance: forced, with why.
    let deployed = w.ok(&["policy", "deploy", next.to_str().unwrap(), "--force", "--reason", "ledger moves to sales"]);
    assert!(deployed.contains(&format!("{} identities recomputed", want.len())), "{deployed}");
    // The impact was shown before deploying.
    assert!(deployed.contains(&format!("{} identities change", want.len())), "{deployed}");
    let detail = w.ledger_of("policy.deployed").pop().unwrap()["detail"].clone();
    assert_eq!(detail["from"], impact["from"]);
    assert_eq!(detail["to"], impact["to"]);
}

#[test]
fn a_birthright_grant_a_guardrail_blocks_is_a_finding() {
    let w = World::new();
    hr(&w);
    let next = w.tmp.path().join("next");
    copy_dir(&quickstart_policy(), &next);
    // A careless template gives finance approval rights on top of creating payments.
    std::fs::write(
        next.join("templates/careless.toml"),
        "[[template]]\nname = \"finance-approvers\"\nwhen = { kind = \"human\", attributes = { department = \"finance\" } }\ngrant = [\"corp-directory/payments-approve\"]\n",
    )
    .unwrap();
    let impact = json(&w.ok(&["policy", "diff", next.to_str().unwrap(), "--output", "json"]));
    let finance = impact["identities"].as_array().unwrap().len();
    assert!(finance > 0);
    assert_eq!(impact["guardrails_blocking"]["sod-payments"].as_u64().unwrap() as usize, 2 * finance);
    // Its own tests say finance must not approve payments: deployed only by force, with why.
    let out = w.run(&["policy", "deploy", next.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    w.ok(&["policy", "deploy", next.to_str().unwrap(), "--force", "--reason", "show the guardrail at work"]);
    // The test environment names the quickstart as TENURE_POLICY: read, never deployed again.
    let out = w.run(&["jobs", "run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not deployed; the deployed policy"), "{}", stderr(&out));
    let findings = json(&w.ok(&["findings", "--output", "json"]));
    let blocked: BTreeSet<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["identity"].as_str().unwrap(),
                f["entitlement"].as_str().unwrap(),
                f["detail"]["policies"][0]
            )
        })
        .collect();
    assert_eq!(blocked.len(), 2 * finance, "{blocked:?}");
    assert!(blocked.contains("hr:E1002 corp-directory/payments-approve \"sod-payments\""), "{blocked:?}");
    // Blocked means not held: neither side of the toxic pair is in the directory.
    assert!(!members(&w, "payments-approve").contains("E1002"));
    assert!(!members(&w, "payments-create").contains("E1002"));
    let replay = w.ok(&["audit", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
}

#[test]
fn serve_refuses_to_start_until_someone_can_administer_it() {
    let w = World::new();
    hr(&w);
    let out = w.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no admin can call this server"), "{err}");
    assert!(err.contains("--bootstrap-admin"), "{err}");
    // A machine cannot be the first admin either.
    let out = w.run(&["serve", "--listen", "127.0.0.1:0", "--bootstrap-admin", "service-registry:nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // With a person named, the server issues a one-day admin token to a private file.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = w
        .tenure()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--bootstrap-admin", "hr:E1000"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let path = w.data_dir().join("bootstrap-admin.token");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut status = 0;
    for _ in 0..200 {
        if let Ok(token) = std::fs::read_to_string(&path) {
            status = agent
                .get(&format!("http://127.0.0.1:{port}/v1/identities"))
                .header("authorization", &format!("Bearer {}", token.trim()))
                .call()
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if status == 200 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let tokens = w.ok(&["tokens", "list"]);
    assert!(tokens.contains("hr:E1000") && tokens.contains("bootstrap admin"), "{tokens}");
}

#[test]
fn requests_are_approved_and_denied_from_the_cli_by_the_same_rules() {
    let w = World::new();
    hr(&w);
    let s = Server::start(&w, &[]);
    // Barbara (E1005, engineering; manager Alan, E1002) asks for the ledger.
    let barbara = w.token("hr:E1005", &["requester"]);
    let ask =
        serde_json::json!({ "entitlement": "corp-directory/ledger-readers", "intent": "quarterly audit" }).to_string();
    let (status, body) = s.post_as(Some(&barbara), "/v1/requests", &ask).unwrap();
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["id"].as_i64().unwrap().to_string();
    let out = w.run(&["requests", "approve", &id, "--as", "hr:E1005", "--reason", "mine"]);
    assert_eq!(out.status.code(), Some(5), "refused");
    assert!(stderr(&out).contains("nobody approves their own request"), "{}", stderr(&out));
    let out = w.run(&["requests", "approve", &id, "--as", "hr:E1008", "--reason", "why not"]);
    assert_eq!(out.status.code(), Some(5), "not an eligible approver");
    let out = w.run(&["requests", "approve", &id, "--as", "hr:E1002"]);
    assert_eq!(out.status.code(), Some(2), "a reason is required");
    let out = w.ok(&["requests", "approve", &id, "--as", "hr:E1002", "--reason", "audit season"]);
    assert!(out.contains(&format!("request {id} approved by hr:E1002: now approved")), "{out}");
    let out = w.run(&["requests", "deny", &id, "--as", "hr:E1002", "--reason", "changed my mind"]);
    assert_eq!(out.status.code(), Some(5), "a conflict");
    assert!(stderr(&out).contains("not pending"), "{}", stderr(&out));
    let out = w.run(&["requests", "deny", "4242", "--as", "hr:E1002", "--reason", "no such"]);
    assert_eq!(out.status.code(), Some(4), "not found: {}", stderr(&out));
    assert!(stderr(&out).contains("no request 4242"), "{}", stderr(&out));
}

#[test]
fn sixteen_threads_authorizing_while_a_leaver_commits_see_no_allow_after_the_commit() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tenure_engine::authz::{Question, ResourceSpec};
    let w = World::new();
    workloads(&w);
    let c = Clocked::new(&w);
    let q = Question {
        principal: "service-registry:wl-deployer".into(),
        action: "deploy".into(),
        resource: ResourceSpec::resource("payments-api"),
        context: serde_json::json!({ "intent": "release", "environment": "prod" }),
    };
    let by = Principal::operator("test");
    // Set once the leaver's ingest has returned (its transaction committed).
    let committed = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let allows = AtomicU32::new(0);
    // Per thread: allows before the commit was seen, denies after it, allows after it, all.
    let counts: Vec<(u32, u32, u32, u32)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let (engine, q, by, committed, stop, allows) = (&c.engine, &q, &by, &committed, &stop, &allows);
                s.spawn(move || {
                    let (mut before, mut denied, mut allowed_after, mut all) = (0, 0, 0, 0);
                    while denied + allowed_after < 40 && !stop.load(Ordering::SeqCst) {
                        let seen = committed.load(Ordering::SeqCst);
                        let allow = engine.authorize(q, by).unwrap().is_allow();
                        all += 1;
                        match (seen, allow) {
                            (false, true) => {
                                before += 1;
                                allows.fetch_add(1, Ordering::SeqCst);
                            }
                            (true, true) => allowed_after += 1,
                            (true, false) => denied += 1,
                            (false, false) => {}
                        }
                    }
                    (before, denied, allowed_after, all)
                })
            })
            .collect();
        // Every thread busy (and the entity cache warm) before the leaver.
        let start = std::time::Instant::now();
        while allows.load(Ordering::SeqCst) < 320 && start.elapsed() < std::time::Duration::from_secs(60) {
            std::thread::yield_now();
        }
        if allows.load(Ordering::SeqCst) >= 320 {
            let left = event(
                "service-registry",
                "sr-left",
                "left",
                nhi("wl-deployer", "workload", Some("hr:E1012"), "2027-09-30T00:00:00Z"),
            );
            c.ingest(&left);
            committed.store(true, Ordering::SeqCst);
        } else {
            stop.store(true, Ordering::SeqCst);
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!stop.load(Ordering::SeqCst), "the workload was not allowed 320 times in a minute: {counts:?}");
    assert!(counts.iter().all(|c| c.2 == 0), "an allow after the leaver's commit was visible: {counts:?}");
    assert!(counts.iter().all(|c| c.1 == 40), "{counts:?}");
    // Every decision answered is in the ledger.
    let answered: u32 = counts.iter().map(|c| c.3).sum();
    assert_eq!(w.ledger_of("authz.decided").len(), answered as usize);
}
