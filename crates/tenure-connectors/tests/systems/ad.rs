//! The LDAP connector's Active Directory flavour against a real Samba AD domain controller
//! (provisioned by the test, LDAP over TLS with a CA the test made): a `user` with
//! `sAMAccountName` and `userPrincipalName`, created enabled, grouped, disabled by
//! `userAccountControl` (read back, and with `ldapsearch`), removed from its groups, deleted;
//! mapped attributes with the manager's DN; an entry made by hand is never taken over; the
//! domain's built-in accounts are never managed.

use std::collections::BTreeMap;
use tenure_connectors::ldap::LdapConnector;
use tenure_connectors::{AccountSpec, Connector, ConnectorError, ScanRequest};
use tenure_testkit::samba::LocalSambaDc;

/// A connector over containers of the test's own (`OU=NAME-people`, `OU=NAME-groups`).
fn connector(name: &str) -> (&'static LocalSambaDc, LdapConnector) {
    let dc = LocalSambaDc::shared().unwrap_or_else(|e| panic!("{e}"));
    let people = dc.organizational_unit(&format!("{name}-people")).unwrap();
    let groups = dc.organizational_unit(&format!("{name}-groups")).unwrap();
    (dc, LdapConnector::new("ad", dc.settings(&people, &groups).unwrap()))
}

fn search(dc: &LocalSambaDc, base: &str, attrs: &[&str]) -> String {
    let mut args = vec!["-b", base, "-s", "base", "(objectClass=*)"];
    args.extend(attrs);
    dc.ldap("ldapsearch", &args, "").unwrap()
}

fn attr(ldif: &str, name: &str) -> Vec<String> {
    ldif.lines().filter_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_owned).collect()
}

#[tokio::test]
async fn an_ad_user_is_created_grouped_disabled_by_user_account_control_and_removed_from_groups() {
    let (dc, c) = connector("life");
    let mut spec = crate::spec("life-grace");
    spec.attributes =
        [("displayName", "Grace Hopper"), ("givenName", "Grace"), ("sn", "Hopper"), ("title", "Engineer")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
            .collect();
    for _ in 0..2 {
        c.create_account(&spec).await.unwrap();
        c.grant("life-grace", "engineering").await.unwrap();
        c.grant("life-grace", "vpn").await.unwrap();
    }
    let dn = c.account_dn("life-grace");
    let ldif = search(dc, &dn, &["sAMAccountName", "userPrincipalName", "userAccountControl", "objectClass", "title"]);
    assert_eq!(attr(&ldif, "sAMAccountName"), ["life-grace"], "{ldif}");
    assert_eq!(attr(&ldif, "userPrincipalName"), ["life-grace@tenure.test"], "{ldif}");
    assert!(attr(&ldif, "objectClass").contains(&"user".to_owned()), "{ldif}");
    assert_eq!(attr(&ldif, "title"), ["Engineer"], "{ldif}");
    let uac: u32 = attr(&ldif, "userAccountControl")[0].parse().unwrap();
    assert_eq!(uac & 0x2, 0, "created enabled: {uac:#x}");
    let a = c.read_account("life-grace").await.unwrap().unwrap();
    assert!(a.enabled);
    assert_eq!(a.managed_by.as_deref(), Some("hr:life-grace"));
    assert_eq!(a.memberships.iter().map(String::as_str).collect::<Vec<_>>(), ["engineering", "vpn"]);
    // The groups are AD groups, and AD itself lists them on the user.
    let group = search(dc, &c.group_dn("vpn"), &["objectClass", "sAMAccountName", "member"]);
    assert!(attr(&group, "objectClass").contains(&"group".to_owned()), "{group}");
    assert_eq!(attr(&group, "member"), std::slice::from_ref(&dn), "{group}");
    let scanned = c.list_accounts().await.unwrap();
    assert_eq!(scanned.len(), 1, "{scanned:?}");
    assert_eq!(scanned[0].memberships, a.memberships, "memberOf read with the account");

    // A leaver: disabled (the ACCOUNTDISABLE bit, the other bits kept), out of every group.
    for _ in 0..2 {
        c.disable_account("life-grace").await.unwrap();
        c.revoke("life-grace", "engineering").await.unwrap();
        c.revoke("life-grace", "vpn").await.unwrap();
    }
    let a = c.read_account("life-grace").await.unwrap().unwrap();
    assert!(!a.enabled);
    assert!(a.memberships.is_empty(), "{a:?}");
    let after: u32 = attr(&search(dc, &dn, &["userAccountControl"]), "userAccountControl")[0].parse().unwrap();
    assert_eq!(after, uac | 0x2, "only ACCOUNTDISABLE changed: {uac:#x} → {after:#x}");
    assert_eq!(attr(&search(dc, &c.group_dn("vpn"), &["member"]), "member"), Vec::<String>::new());
    c.enable_account("life-grace").await.unwrap();
    assert!(c.read_account("life-grace").await.unwrap().unwrap().enabled);
    c.delete_account("life-grace").await.unwrap();
    c.delete_account("life-grace").await.unwrap();
    assert_eq!(c.read_account("life-grace").await.unwrap(), None);
}

#[tokio::test]
async fn ad_mapped_attributes_carry_the_managers_dn_and_change_with_a_mover() {
    let (dc, c) = connector("map");
    c.create_account(&crate::spec("map-boss")).await.unwrap();
    let boss = c.account_reference("map-boss").await.unwrap().unwrap();
    let values = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), if v.is_empty() { vec![] } else { vec![(*v).to_owned()] }))
            .collect()
    };
    let spec = AccountSpec {
        attributes: values(&[("mail", "grace@tenure.test"), ("manager", &boss)]),
        ..crate::spec("map-grace")
    };
    c.create_account(&spec).await.unwrap();
    let targets = ["mail".to_owned(), "manager".to_owned(), "department".to_owned()];
    let read = c.read_attributes("map-grace", &targets).await.unwrap().unwrap();
    assert!(c.same_values("manager", std::slice::from_ref(&boss), &read["manager"]), "{read:?}");
    c.set_attributes("map-grace", &values(&[("department", "engineering"), ("manager", "")])).await.unwrap();
    let ldif = search(dc, &c.account_dn("map-grace"), &["department", "manager", "mail"]);
    assert_eq!(attr(&ldif, "department"), ["engineering"], "{ldif}");
    assert!(attr(&ldif, "manager").is_empty(), "{ldif}");
    assert_eq!(attr(&ldif, "mail"), ["grace@tenure.test"], "{ldif}");
}

#[tokio::test]
async fn an_ad_entry_made_by_hand_is_not_taken_over_and_built_in_accounts_are_reserved() {
    let (dc, c) = connector("hand");
    let dn = c.account_dn("hand-grace");
    let ldif = format!(
        "dn: {dn}\nobjectClass: user\nsAMAccountName: hand-grace\ndescription: made by the helpdesk\ntitle: Admiral\n"
    );
    dc.ldap("ldapadd", &[], &ldif).unwrap();
    let err = c.create_account(&crate::spec("hand-grace")).await.unwrap_err();
    assert!(matches!(err, ConnectorError::NotManaged { .. }), "{err}");
    assert!(err.to_string().contains("carries no tenure marker"), "{err}");
    let after = search(dc, &dn, &["title", "description"]);
    assert_eq!(attr(&after, "title"), ["Admiral"], "unchanged: {after}");
    assert_eq!(attr(&after, "description"), ["made by the helpdesk"], "unchanged: {after}");
    // The same name in another container: AD's sAMAccountName is unique in the domain.
    let (_, other) = connector("hand2");
    let err = other.create_account(&crate::spec("hand-grace")).await.unwrap_err();
    assert!(matches!(err, ConnectorError::NotManaged { .. }), "{err}");
    assert!(err.to_string().contains(&format!("the name is taken by `{dn}`")), "{err}");

    // The domain's own accounts (CN=Users) are listed but never managed.
    let builtin = LdapConnector::new("ad", dc.settings("CN=Users", "CN=Users").unwrap());
    let mut all = Vec::new();
    builtin
        .scan(&ScanRequest::default(), &mut |p| {
            all.extend(p.accounts);
            Ok(())
        })
        .await
        .unwrap();
    let admin = all.iter().find(|a| a.name == "Administrator").unwrap_or_else(|| panic!("{all:?}"));
    assert!(admin.reserved, "{admin:?}");
    assert!(all.iter().any(|a| a.name == "krbtgt" && a.reserved && !a.enabled), "{all:?}");
}

#[tokio::test]
async fn the_write_check_adds_a_trial_user_reads_it_back_and_deletes_it() {
    let (dc, c) = connector("check");
    let tried = c.check_write().await.unwrap().expect("a directory takes a trial entry");
    assert!(tried.contains("tenure-systems-check"), "{tried}");
    assert!(c.read_account("tenure-systems-check").await.unwrap().is_none(), "nothing is left behind");
    let left = dc.ldap("ldapsearch", &["-b", &c.account_dn("tenure-systems-check"), "-s", "base"], "");
    assert!(left.as_ref().is_err_and(|e| e.contains("No such object")), "{left:?}");
}
