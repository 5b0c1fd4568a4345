//! The SCIM connector against `scim2-server` (PyPI), a SCIM service tenure did not write:
//! users and group memberships round-trip, disabling is `active: false` with no membership,
//! deletion, hostile names. Checked with plain HTTP GETs.

use crate::spec;
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_connectors::{Connector, Probe};
use tenure_testkit::scim::LocalScim;

pub(crate) fn connector(s: &LocalScim) -> ScimConnector {
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), s.url());
    m.insert("token".to_owned(), s.token.clone());
    ScimConnector::new("app", ScimSettings::from_map("app", &m).unwrap())
}

/// GET with the token, as any HTTP client would.
pub(crate) fn get(s: &LocalScim, path: &str, filter: Option<&str>) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(&format!("{}{path}", s.url())).header("authorization", &format!("Bearer {}", s.token));
    if let Some(f) = filter {
        r = r.query("filter", f);
    }
    serde_json::from_str(&r.call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
}

#[tokio::test]
async fn users_and_groups_round_trip_and_disable_leaves_no_membership() {
    let s = LocalScim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let c = connector(&s);
    for name in ["alice", r#"x" or userName pr or "1"#] {
        c.create_account(&spec(name)).await.unwrap();
        c.create_account(&spec(name)).await.unwrap();
        c.grant(name, "engineering").await.unwrap();
        c.grant(name, "engineering").await.unwrap();
        c.grant(name, "on-call").await.unwrap();
        let r = c.read_account(name).await.unwrap().unwrap();
        assert!(r.enabled);
        assert_eq!(r.memberships.iter().map(String::as_str).collect::<Vec<_>>(), ["engineering", "on-call"]);
    }
    // The hostile filter value matched exactly one user, not all of them.
    let users = get(&s, "/Users", None);
    assert_eq!(users["totalResults"], 2);
    let alice = get(&s, "/Users", Some(r#"userName eq "alice""#));
    let id = alice["Resources"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice["Resources"][0]["externalId"], "hr:alice");

    c.revoke("alice", "on-call").await.unwrap();
    c.disable_account("alice").await.unwrap();
    c.revoke("alice", "engineering").await.unwrap();
    c.revoke("alice", "engineering").await.unwrap();
    let r = c.read_account("alice").await.unwrap().unwrap();
    assert!(!r.enabled && r.memberships.is_empty());
    assert_eq!(get(&s, &format!("/Users/{id}"), None)["active"], false);
    let groups = get(&s, "/Groups", Some(&format!(r#"members.value eq "{id}""#)));
    assert_eq!(groups["totalResults"], 0, "{groups}");
    assert!(matches!(c.probe("alice").await.unwrap(), Probe::Unsupported(_)));

    c.delete_account("alice").await.unwrap();
    c.delete_account("alice").await.unwrap();
    assert_eq!(c.read_account("alice").await.unwrap(), None);
    assert_eq!(get(&s, &format!("/Users/{id}"), None)["status"], "404");
    // The other user is untouched.
    assert!(c.read_account(r#"x" or userName pr or "1"#).await.unwrap().unwrap().enabled);
}

#[tokio::test]
async fn a_wrong_token_is_a_configuration_error() {
    let s = LocalScim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), s.url());
    m.insert("token".to_owned(), "wrong".to_owned());
    let c = ScimConnector::new("app", ScimSettings::from_map("app", &m).unwrap());
    let err = c.read_account("alice").await.unwrap_err().to_string();
    assert!(err.contains("CN0003") && err.contains("401"), "{err}");
}
