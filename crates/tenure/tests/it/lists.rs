//! Keyset pages on the list routes beyond identities (requests, tokens, credentials, jobs,
//! findings): followed by their `Link` headers they list every item once, in order; filters
//! hold on every page; bad parameters are 422 naming them; the CLI lists the same.

use crate::support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every item of a list route, `limit` at a time, following `Link: <…>; rel="next"`; also
/// how many pages that took.
fn follow(
    s: &Server,
    first: &str,
    key: impl Fn(&serde_json::Value) -> serde_json::Value,
) -> (Vec<serde_json::Value>, usize) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(url) = next.take() {
        let mut r = agent
            .get(&format!("{}{url}", s.base))
            .header("authorization", &format!("Bearer {}", s.token))
            .call()
            .unwrap();
        let link = r.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
        let body = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}: {body}");
        let page = json(&body);
        // A jobs page is an object: the counts, and the list under `jobs`.
        let list = if page.is_array() { page } else { page["jobs"].clone() };
        items.extend(list.as_array().unwrap().iter().map(&key));
        next = link.map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l.trim_start_matches('<').split('>').next().unwrap().to_owned()
        });
        pages += 1;
    }
    (items, pages)
}

#[test]
fn requests_tokens_credentials_and_jobs_page_by_keyset_with_filters_over_the_api_and_the_cli() {
    let w = World::new();
    quickstart_feeds(&w, &["hr", "service-registry"]);
    let people = ["hr:E1002", "hr:E1003", "hr:E1005", "hr:E1006", "hr:E1007"];
    let tokens: Vec<String> = people.iter().map(|p| w.token(p, &["requester"])).collect();
    for nhi in ["svc-billing", "svc-search", "svc-payroll"] {
        for _ in 0..2 {
            w.ok(&["creds", "issue", "--identity", &format!("service-registry:{nhi}"), "--kind", "api-key"]);
        }
    }
    let s = Server::start(&w, &[]);
    let ask = serde_json::json!({ "entitlement": "corp-directory/prod-admin", "intent": "on-call" }).to_string();
    let mut made = Vec::new();
    for t in &tokens {
        let (status, body) = s.post_as(Some(t), "/v1/requests", &ask).unwrap();
        assert_eq!(status, 201, "{body}");
        made.push(json(&body)["id"].clone());
    }
    w.ok(&["requests", "deny", &made[1].to_string(), "--as", "hr:E1001", "--reason", "not on call"]);

    // Requests: newest first, two a page.
    let (ids, pages) = follow(&s, "/v1/requests?limit=2", |r| r["id"].clone());
    assert_eq!(ids, made.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(pages, 3);
    let (pending, _) = follow(&s, "/v1/requests?limit=2&state=pending", |r| r["state"].clone());
    assert_eq!(pending, vec![serde_json::json!("pending"); 4]);
    let (mine, _) = follow(&s, "/v1/requests?identity=hr:E1005", |r| r["beneficiary"].clone());
    assert_eq!(mine, [serde_json::json!("hr:E1005")]);

    // Tokens: oldest first; filtered by identity and state.
    let (all, _) = follow(&s, "/v1/tokens?limit=5000", |t| t["id"].clone());
    let (paged, pages) = follow(&s, "/v1/tokens?limit=2", |t| t["id"].clone());
    assert_eq!(paged, all);
    assert_eq!(pages, all.len().div_ceil(2));
    assert!(all.len() > people.len(), "{all:?}");
    let (of, _) = follow(&s, "/v1/tokens?identity=hr:E1006&state=active", |t| t["identity"].clone());
    assert_eq!(of, [serde_json::json!("hr:E1006")]);
    w.ok(&["tokens", "revoke", all[1].as_str().unwrap()]);
    let (revoked, _) = follow(&s, "/v1/tokens?state=revoked", |t| t["id"].clone());
    assert_eq!(revoked, [all[1].clone()]);

    // Credentials: newest first, filtered by identity, kind, state.
    let (creds, pages) = follow(&s, "/v1/credentials?limit=4&kind=api-key", |c| c["id"].clone());
    assert_eq!((creds.len(), pages), (6, 2));
    let (everything, _) = follow(&s, "/v1/credentials?limit=5000", |c| c["issued_at"].clone());
    assert!(everything.windows(2).all(|p| p[0].as_str() >= p[1].as_str()), "not newest first: {everything:?}");
    w.ok(&["creds", "revoke", creds[0].as_str().unwrap()]);
    let (active, _) =
        follow(&s, "/v1/credentials?state=active&identity=service-registry:svc-search", |c| c["state"].clone());
    assert_eq!(active.len(), 2, "{active:?}");
    let (gone, _) = follow(&s, "/v1/credentials?state=revocation-verified&kind=api-key", |c| c["id"].clone());
    assert_eq!(gone, [creds[0].clone()]);

    // Jobs: the provisioning of the HR feed, in id order, three a page, one system.
    let (done, _) = follow(&s, "/v1/jobs?state=done&system=corp-directory&limit=3", |j| j.clone());
    assert!(done.len() > 10, "{}", done.len());
    assert!(done.iter().all(|j| j["state"] == "done" && j["system"] == "corp-directory"));
    assert!(done.windows(2).all(|p| p[0]["id"].as_i64() < p[1]["id"].as_i64()));
    let (of, _) = follow(&s, "/v1/jobs?state=done&identity=hr:E1005", |j| j["identity"].clone());
    assert!(!of.is_empty() && of.iter().all(|i| i == "hr:E1005"), "{of:?}");

    // Bad parameters are bad input naming them; a filter naming nobody is not found.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |url: &str| {
        let mut r = agent
            .get(&format!("{}{url}", s.base))
            .header("authorization", &format!("Bearer {}", s.token))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    for (url, field) in [
        ("/v1/requests?limit=0", "limit"),
        ("/v1/requests?after=x", "after"),
        ("/v1/requests?kind=loan", "kind"),
        ("/v1/tokens?state=old", "state"),
        ("/v1/tokens?after=tok_nobody", "after"),
        ("/v1/credentials?kind=password", "kind"),
        ("/v1/credentials?after=crd_nobody", "after"),
        ("/v1/jobs?state=gone", "state"),
        ("/v1/jobs?page=2", "query"),
    ] {
        let (status, body) = get(url);
        assert_eq!(status, 422, "{url}: {body}");
        assert!(json(&body)["message"].as_str().unwrap().starts_with(field), "{url}: {body}");
    }
    for url in ["/v1/requests?identity=hr:E0000", "/v1/tokens?identity=hr:E0000", "/v1/jobs?identity=hr:E0000"] {
        assert_eq!(get(url).0, 404, "{url}");
    }

    // The CLI lists the same, a page at a time, with the same filters.
    let listed = json(&w.ok(&["requests", "list", "--state", "pending", "--output", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 4);
    let table = w.ok(&["requests", "list", "--identity", "hr:E1003"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.lines().nth(1).unwrap().contains("denied"), "{table}");
    let listed = json(&w.ok(&["creds", "list", "--kind", "api-key", "--output", "json"]));
    assert_eq!(listed.as_array().unwrap().iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), creds);
    let listed = json(&w.ok(&["tokens", "list", "--state", "revoked", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let status = json(&w.ok(&["jobs", "status", "--state", "done", "--system", "corp-directory", "-o", "json"]));
    assert_eq!(status["jobs"].as_array().unwrap().len(), done.len());
    assert!(status["counts"]["done"].as_i64().unwrap() >= i64::try_from(done.len()).unwrap());
    let out = w.run(&["jobs", "status", "--identity", "hr:E0000", "-o", "json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = w.run(&["creds", "list", "--state", "old"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let findings = json(&w.ok(&["findings", "--all", "--system", "nowhere", "-o", "json"]));
    assert_eq!(findings, serde_json::json!([]));
}
