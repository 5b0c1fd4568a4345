//! tenure as a SCIM 2.0 service provider (`/scim/v2`): the third-party conformance tools
//! (scim2-tester, scim-sanity in strict mode), the steps of Okta's SCIM 2.0 spec test, and a
//! user created, patched and deactivated over SCIM reaching the directory as a joiner, a mover
//! and a leaver.

use crate::support::*;
use serde_json::{Value, json};

/// A running server and a token pushing for `okta`.
fn scim_server(w: &World) -> (Server, String) {
    let s = Server::start(w, &[]);
    let token = w.token(OPERATOR, &["source:okta"]);
    (s, token)
}

struct Scim<'a> {
    base: &'a str,
    token: &'a str,
    agent: ureq::Agent,
}

impl<'a> Scim<'a> {
    fn new(s: &'a Server, token: &'a str) -> Self {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Self { base: &s.base, token, agent }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, ureq::http::HeaderMap) {
        let url = format!("{}/scim/v2{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let mut req = ureq::http::Request::builder().method(method).uri(&url).header("authorization", &auth);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match body {
            Some(b) => self.agent.run(req.header("content-type", "application/scim+json").body(b.to_string()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }
}

fn user(name: &str, given: &str, title: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": name,
        "name": { "givenName": given, "familyName": "Okta" },
        "emails": [{ "primary": true, "value": name, "type": "work" }],
        "title": title,
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Engineering" },
    })
}

fn is_error(body: &Value, status: u16) {
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{body}");
    assert_eq!(body["status"], status.to_string(), "{body}");
}

#[test]
fn scim2_tester_and_scim_sanity_pass_every_check() {
    let w = World::new();
    let (s, token) = scim_server(&w);
    let base = format!("{}/scim/v2", s.base);
    let py = repo().join("target/pyenv/bin/python");
    let out = std::process::Command::new(&py)
        .arg(repo().join("scripts/scim2-tester-check.py"))
        .args([&base, &token])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-deps installs scim2-tester)", py.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scim2-tester:\n{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    eprintln!("{}", text.lines().last().unwrap_or_default());

    let sanity = repo().join("target/pyenv/bin/scim-sanity");
    let out = std::process::Command::new(&sanity)
        .args(["probe", &base, "--token", &token, "--strict", "--i-accept-side-effects", "--json-output"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-deps installs scim-sanity)", sanity.display()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "scim-sanity:\n{report:#}");
    let failures: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !matches!(r["status"].as_str(), Some("pass" | "skip")))
        .collect();
    assert!(failures.is_empty(), "scim-sanity: {failures:#?}");
    let summary = &report["summary"];
    eprintln!("scim-sanity (strict): {summary}");
    assert!(summary["passed"].as_u64().unwrap() > 0, "{report:#}");
    for k in ["failed", "warnings", "errors"] {
        assert_eq!(summary[k], 0, "{k}: {report:#}");
    }
    // Skipped: Groups, Agents and AgenticApplications, which tenure does not advertise.
    for r in report["results"].as_array().unwrap().iter().filter(|r| r["status"] == "skip") {
        let m = r["message"].as_str().unwrap_or_default();
        assert!(m.contains("not in scope") || m.contains("not supported"), "{r}");
    }
}

#[test]
fn okta_spec_test_steps() {
    let w = World::new();
    let (s, token) = scim_server(&w);
    let c = Scim::new(&s, &token);
    // Okta first makes one user to find.
    let (status, first, headers) =
        c.call("POST", "/Users", Some(user("first.user@example.com", "First", "Engineer")), &[]);
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"].to_str().unwrap(), format!("{}/scim/v2/Users/{id}", s.base));
    assert_eq!(headers["content-type"], "application/scim+json");
    assert_eq!(first["meta"]["resourceType"], "User");
    // 1. List with count=1.
    let (status, page, _) = c.call("GET", "/Users?count=1&startIndex=1", None, &[]);
    assert_eq!(status, 200);
    assert_eq!(page["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    assert_eq!(
        (page["totalResults"].clone(), page["itemsPerPage"].clone(), page["startIndex"].clone()),
        (json!(1), json!(1), json!(1))
    );
    // 2. Get by id.
    let (status, got, headers) = c.call("GET", &format!("/Users/{id}"), None, &[]);
    assert_eq!((status, got["userName"].clone()), (200, json!("first.user@example.com")));
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "W/\"1\"");
    // 3. A userName nobody has: no results.
    let (status, none, _) = c.call("GET", "/Users?filter=userName%20eq%20%22nobody-3f9a%40example.com%22", None, &[]);
    assert_eq!((status, none["totalResults"].clone()), (200, json!(0)));
    assert_eq!(none["Resources"], json!([]));
    // 4. An unknown id: 404 in the error schema.
    let (status, missing, _) = c.call("GET", "/Users/00000000-0000-0000-0000-000000000000", None, &[]);
    assert_eq!(status, 404);
    is_error(&missing, 404);
    // 5. Create: 201, as sent.
    let (status, made, _) = c.call("POST", "/Users", Some(user("Second.User@Example.com", "Second", "Analyst")), &[]);
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["name"]["givenName"].clone(), made["active"].clone()), (json!("Second"), json!(true)));
    // 6. The same userName again (in another case): 409.
    let (status, dup, _) = c.call("POST", "/Users", Some(user("second.user@example.com", "Again", "Analyst")), &[]);
    assert_eq!(status, 409);
    is_error(&dup, 409);
    assert_eq!(dup["scimType"], "uniqueness");
    // 7. userName filters ignore case.
    let (_, found, _) = c.call("GET", "/Users?filter=userName%20eq%20%22SECOND.USER%40EXAMPLE.COM%22", None, &[]);
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], made["id"]);
    // 8. A bad token: 401 in the error schema.
    let bad = Scim {
        base: &s.base,
        token: "tnr_nope_nope",
        agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
    };
    let (status, refused, headers) = bad.call("GET", "/Users", None, &[]);
    assert_eq!(status, 401);
    is_error(&refused, 401);
    assert!(headers.get("www-authenticate").is_some());
    // ETags: a stale If-Match is refused with 412 and changes nothing.
    let replace = user("first.user@example.com", "First", "Principal Engineer");
    let (status, e, _) = c.call("PUT", &format!("/Users/{id}"), Some(replace.clone()), &[("if-match", "W/\"7\"")]);
    assert_eq!(status, 412, "{e}");
    is_error(&e, 412);
    let (status, replaced, headers) = c.call("PUT", &format!("/Users/{id}"), Some(replace), &[("if-match", &etag)]);
    assert_eq!((status, replaced["title"].clone()), (200, json!("Principal Engineer")));
    assert_eq!(headers["etag"], "W/\"2\"");
    // A filter that does not parse: 400 invalidFilter.
    let (status, e, _) = c.call("GET", "/Users?filter=userName%20xx%20%22a%22", None, &[]);
    assert_eq!((status, e["scimType"].clone()), (400, json!("invalidFilter")));
    // A token of another source sees none of okta's users.
    let hr = w.token(OPERATOR, &["source:hr"]);
    let other = Scim::new(&s, &hr);
    assert_eq!(other.call("GET", "/Users", None, &[]).1["totalResults"], 0);
}

#[test]
fn a_scim_user_created_patched_and_deactivated_is_a_joiner_a_mover_and_a_leaver_in_the_directory() {
    let w = World::new();
    let (s, token) = scim_server(&w);
    let c = Scim::new(&s, &token);
    let (status, made, _) = c.call("POST", "/Users", Some(user("grace.h@example.com", "Grace", "Engineer")), &[]);
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let identity = "okta:grace.h@example.com";
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        for _ in 0..200 {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}; server log:\n{}",
            std::fs::read_to_string(w.tmp.path().join("server.log")).unwrap_or_default()
        );
    };
    let state =
        || json_of(&s.get(&format!("/v1/identities/{identity}")).1)["state"].as_str().unwrap_or_default().to_owned();
    let in_group = |g: &str| {
        w.ldapsearch(&format!("(&(objectClass=groupOfNames)(cn={g}))"), &["member"])
            .contains("uid=grace.h@example.com,")
    };
    // Joiner: her entry and her department's group.
    wait("the joiner", &|| state() == "active");
    assert!(w.ldapsearch("(uid=grace.h@example.com)", &["cn"]).contains("cn: Grace Okta"));
    assert!(in_group("engineering"));
    // Mover: a new title and department, by PATCH.
    let ops = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        { "op": "replace", "path": "title", "value": "Controller" },
        { "op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Finance" },
    ]});
    let (status, patched, _) = c.call("PATCH", &format!("/Users/{id}"), Some(ops), &[]);
    assert_eq!((status, patched["title"].clone()), (200, json!("Controller")), "{patched}");
    wait("the mover", &|| in_group("finance") && !in_group("engineering"));
    let detail = json_of(&s.get(&format!("/v1/identities/{identity}")).1);
    assert_eq!(detail["attributes"]["title"], "Controller");
    let timeline: Vec<&str> =
        detail["timeline"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(timeline.contains(&"identity.changed"), "{timeline:?}");
    // Leaver: deactivated (the quickstart's okta mapping makes active=false a leaver).
    let ops = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{ "op": "replace", "value": { "active": false } }]});
    let (status, _, _) = c.call("PATCH", &format!("/Users/{id}"), Some(ops), &[]);
    assert_eq!(status, 200);
    wait("the leaver", &|| state() == "closed");
    let entry = w.ldapsearch("(uid=grace.h@example.com)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    assert!(!in_group("finance"));
    // Reactivating a leaver is refused; the resource stays as it was.
    let ops = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{ "op": "replace", "path": "active", "value": true }]});
    let (status, e, _) = c.call("PATCH", &format!("/Users/{id}"), Some(ops), &[]);
    assert_eq!(status, 409, "{e}");
    assert_eq!(c.call("GET", &format!("/Users/{id}"), None, &[]).1["active"], false);
    // DELETE: the resource is gone; the identity's closure stands.
    assert_eq!(c.call("DELETE", &format!("/Users/{id}"), None, &[]).0, 204);
    assert_eq!(c.call("GET", &format!("/Users/{id}"), None, &[]).0, 404);
    assert_eq!(state(), "closed");
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}
