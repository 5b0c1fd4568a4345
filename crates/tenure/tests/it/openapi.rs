//! The OpenAPI document against the live server: schemathesis (PyPI) generates requests from
//! `/openapi.json` for every operation, valid and invalid, and checks each answer: no 5xx, only
//! documented statuses, content types, headers and bodies matching their schemas, routes that
//! need a token refusing a request without one, and input the schemas rule out refused.

use crate::support::{OPERATOR, Server, World, repo};
use serde_json::Value;

#[test]
fn schemathesis_finds_nothing_against_a_live_server() {
    let w = World::new();
    // The checks send requests without a token on purpose: do not slow their source down for it.
    let s = Server::start(&w, &["--auth-failures-per-minute", "1000000"]);
    let (status, body) = s.get_as(None, "/openapi.json");
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|i| i.as_object().unwrap().len()).sum();
    assert!(operations >= 46, "{operations} operations");
    // One token with every role and one source, and one for SCIM (which takes exactly one source).
    let token = w.token(OPERATOR, &["admin", "auditor", "approver", "requester", "authorizer", "source:hr"]);
    let scim = w.token(OPERATOR, &["source:okta"]);
    let config = w.file(
        "schemathesis.toml",
        &format!(
            r#"
headers = {{ Authorization = "Bearer {token}" }}

[[operations]]
include-path-regex = "^/scim/"
headers = {{ Authorization = "Bearer {scim}" }}
"#
        ),
    );
    let st = repo().join("target/pyenv/bin/schemathesis");
    let seed = std::env::var("TENURE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261201".into());
    let examples = std::env::var("TENURE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let har = w.tmp.path().join("schemathesis.har");
    // One worker: with two, hypothesis describes lambdas from two threads at once and CPython
    // 3.11's AST validator, whose recursion counter is not per thread, fails with "AST constructor
    // recursion depth mismatch" (CPython gh-106905), a runtime error in the tool, not tenure.
    // Revoking a token goes last, on its own: schemathesis learns token ids from the listing and
    // would otherwise revoke its own tokens halfway through (and test the rest against 401s).
    for filter in ["--exclude-operation-id", "--include-operation-id"] {
        let out = std::process::Command::new(&st)
            .current_dir(w.tmp.path())
            .arg("--config-file")
            .arg(&config)
            .args(["--no-color", "run", &format!("{}/openapi.json", s.base), filter, "RevokeToken"])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,ignored_auth"])
            .args(["--checks", "response_headers_conformance,response_schema_conformance,negative_data_rejection"])
            .args(["--phases", "examples,coverage,fuzzing", "--max-examples", &examples, "--seed", &seed])
            .args(["--workers", "1", "--request-timeout", "30", "--suppress-health-check", "all"])
            .args(["--report", "har", "--output-sanitize", "false", "--report-har-path"])
            .arg(&har)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-deps installs schemathesis)", st.display()));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "schemathesis {filter} RevokeToken (seed {seed}):\n{text}");
        eprintln!(
            "{}",
            text.lines().filter(|l| l.contains("generated") || l.contains("Tested")).collect::<Vec<_>>().join("\n")
        );
        if filter == "--include-operation-id" {
            break;
        }
        // Every operation that takes a token was reached with a valid one: an answer that is not
        // 401 to a request carrying one of the two tokens.
        let har: Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
        let mut reached = std::collections::BTreeSet::new();
        for e in har["log"]["entries"].as_array().unwrap() {
            let carries = e["request"]["headers"].as_array().unwrap().iter().any(|h| {
                h["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
                    && [&token, &scim].iter().any(|t| h["value"] == format!("Bearer {t}"))
            });
            if carries && e["response"]["status"] != 401 {
                let url = e["request"]["url"].as_str().unwrap().split('?').next().unwrap().to_owned();
                reached.insert((e["request"]["method"].as_str().unwrap().to_owned(), url));
            }
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op["security"] == serde_json::json!([]) || op["operationId"] == "RevokeToken" {
                    continue;
                }
                let pattern = format!("{}{}", s.base, path);
                let matches = |url: &str| {
                    let (a, b): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), url.split('/').collect());
                    a.len() == b.len() && a.iter().zip(&b).all(|(p, u)| p.starts_with('{') || p == u)
                };
                assert!(
                    reached.iter().any(|(m, u)| m.eq_ignore_ascii_case(method) && matches(u)),
                    "{method} {path} was never answered other than 401 with a valid token"
                );
            }
        }
    }
}
