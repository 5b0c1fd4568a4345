//! Mapped attributes against the real servers: created with the account, changed and removed
//! with one write, compared on read-back the system's way (an LDAP manager as a DN), and seen
//! by a client tenure did not write (`ldapsearch`, an HTTP GET, `psql`).

use std::collections::BTreeMap;
use tenure_connectors::ldap::LdapConnector;
use tenure_connectors::{AccountSpec, Connector};
use tenure_testkit::slapd::LocalSlapd;

fn values(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
}

fn spec(name: &str, attributes: BTreeMap<String, Vec<String>>) -> AccountSpec {
    AccountSpec { attributes, ..crate::spec(name) }
}

#[tokio::test]
async fn ldap_entries_carry_mapped_attributes_and_the_manager_as_a_dn() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let c = LdapConnector::new("dir", slapd.settings());
    c.create_account(&crate::spec("boss")).await.unwrap();
    let boss = c.account_reference("boss").await.unwrap().unwrap();
    assert_eq!(boss, c.account_dn("boss"));
    let targets: Vec<String> =
        ["givenName", "sn", "mail", "title", "manager", "telephoneNumber"].map(String::from).into();
    let first = values(&[
        ("givenName", &["Grace"]),
        ("sn", &["Hopper"]),
        ("mail", &["grace.hopper@example.com"]),
        ("title", &["Rear Admiral"]),
        ("manager", &[&boss]),
        ("telephoneNumber", &["+1 555 0100", "+1 555 0101"]),
    ]);
    c.create_account(&spec("grace", first.clone())).await.unwrap();
    let read = c.read_attributes("grace", &targets).await.unwrap().unwrap();
    for (t, v) in &first {
        assert!(c.same_values(t, v, &read[t]), "{t}: {:?}", read[t]);
    }
    // A DN compares as a DN, whatever its case and spacing.
    assert!(c.same_values("manager", &[boss.to_uppercase().replace(',', ", ")], &read["manager"]));
    assert!(!c.same_values("title", &["rear admiral".into()], &read["title"]));

    // A mover: a new title, the second phone gone, no manager any more.
    c.set_attributes(
        "grace",
        &values(&[("title", &["Commodore"]), ("telephoneNumber", &["+1 555 0100"]), ("manager", &[])]),
    )
    .await
    .unwrap();
    let out = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password])
        .args([
            "-b",
            &c.account_dn("grace"),
            "-s",
            "base",
            "(objectClass=*)",
            "title",
            "telephoneNumber",
            "manager",
            "mail",
        ])
        .output()
        .expect("ldapsearch (apt-get install ldap-utils)");
    let ldif = String::from_utf8_lossy(&out.stdout);
    assert!(ldif.contains("title: Commodore\n") && !ldif.contains("Rear Admiral"), "{ldif}");
    assert!(ldif.contains("telephoneNumber: +1 555 0100\n") && !ldif.contains("0101"), "{ldif}");
    assert!(!ldif.contains("manager:"), "{ldif}");
    assert!(ldif.contains("mail: grace.hopper@example.com\n"), "{ldif}");
    // Removing what is absent is no error; an account that is not there reads as none.
    c.set_attributes("grace", &values(&[("manager", &[])])).await.unwrap();
    assert_eq!(c.read_attributes("nobody", &targets).await.unwrap(), None);
    // Without mapped `sn`/`cn` (both mandatory) the display name fills them.
    c.create_account(&spec("plain", values(&[("mail", &["p@example.com"])]))).await.unwrap();
    let plain = c.read_attributes("plain", &["cn".into(), "sn".into()]).await.unwrap().unwrap();
    assert_eq!(plain["sn"], ["Name of plain"]);
}

#[tokio::test]
async fn scim_users_carry_name_emails_title_and_the_enterprise_manager() {
    use tenure_testkit::scim::LocalScim;
    let s = LocalScim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let c = crate::scim::connector(&s);
    c.create_account(&crate::spec("boss")).await.unwrap();
    let boss = c.account_reference("boss").await.unwrap().expect("the boss's id");
    assert_eq!(c.account_reference("nobody").await.unwrap(), None);
    let first = values(&[
        ("name.givenName", &["Grace"]),
        ("name.familyName", &["Hopper"]),
        ("emails", &["grace@example.com", "gh@example.org"]),
        ("title", &["Rear Admiral"]),
        ("enterprise.department", &["engineering"]),
        ("enterprise.manager", &[&boss]),
    ]);
    let targets: Vec<String> = first.keys().cloned().collect();
    c.create_account(&spec("grace", first.clone())).await.unwrap();
    let read = c.read_attributes("grace", &targets).await.unwrap().unwrap();
    assert_eq!(read, first);

    c.set_attributes(
        "grace",
        &values(&[("title", &["Commodore"]), ("enterprise.department", &[]), ("emails", &["grace@example.com"])]),
    )
    .await
    .unwrap();
    let read = c.read_attributes("grace", &targets).await.unwrap().unwrap();
    assert_eq!(read["title"], ["Commodore"]);
    assert_eq!(read["enterprise.department"], Vec::<String>::new());
    assert_eq!(read["emails"], ["grace@example.com"]);
    assert_eq!(read["enterprise.manager"], std::slice::from_ref(&boss));
    // As any client sees it.
    let list = crate::scim::get(&s, "/Users", Some(r#"userName eq "grace""#));
    let u = &list["Resources"][0];
    assert_eq!(u["title"], "Commodore", "{u}");
    assert_eq!(u["name"]["givenName"], "Grace", "{u}");
    assert_eq!(u["emails"][0]["value"], "grace@example.com", "{u}");
    assert_eq!(u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"], boss, "{u}");
}

#[tokio::test]
async fn a_postgres_role_comment_is_mapped_after_the_marker() {
    use tenure_testkit::postgres::LocalPostgres;
    let dir = tempfile::tempdir().unwrap();
    let pg = LocalPostgres::start(&dir.path().join("pg")).await.unwrap_or_else(|e| panic!("{e}"));
    let c = crate::postgres::connector(&pg);
    c.create_account(&spec("grace", values(&[("comment", &["human, Grace Hopper"])]))).await.unwrap();
    let comment = || {
        crate::postgres::psql(&pg, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'grace'")
    };
    assert_eq!(comment(), "tenure: hr:grace (human, Grace Hopper)");
    let targets = ["comment".to_owned()];
    assert_eq!(c.read_attributes("grace", &targets).await.unwrap().unwrap()["comment"], ["human, Grace Hopper"]);
    c.set_attributes("grace", &values(&[("comment", &["human, Grace Brewster Hopper (it's she)"])])).await.unwrap();
    assert_eq!(comment(), "tenure: hr:grace (human, Grace Brewster Hopper (it's she))");
    assert_eq!(
        c.read_attributes("grace", &targets).await.unwrap().unwrap()["comment"],
        ["human, Grace Brewster Hopper (it's she)"]
    );
    // The marker is kept: the role is still tenure's for the same identity.
    assert_eq!(c.read_account("grace").await.unwrap().unwrap().managed_by.as_deref(), Some("hr:grace"));
}
