//! The LDAP connector against a real slapd: idempotent operations, read-back, hostile names.

use crate::spec;
use tenure_connectors::Connector;
use tenure_connectors::ldap::LdapConnector;
use tenure_testkit::slapd::LocalSlapd;

#[tokio::test]
async fn accounts_and_memberships_round_trip_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let c = LdapConnector::new("dir", slapd.settings());

    assert_eq!(c.read_account("ada").await.unwrap(), None);
    for _ in 0..2 {
        c.create_account(&spec("ada")).await.unwrap();
        c.grant("ada", "engineering").await.unwrap();
        c.grant("ada", "vpn").await.unwrap();
    }
    let a = c.read_account("ada").await.unwrap().unwrap();
    assert!(a.enabled);
    assert_eq!(a.memberships.iter().map(String::as_str).collect::<Vec<_>>(), ["engineering", "vpn"]);

    for _ in 0..2 {
        c.disable_account("ada").await.unwrap();
        c.revoke("ada", "engineering").await.unwrap();
        c.revoke("ada", "vpn").await.unwrap();
    }
    let a = c.read_account("ada").await.unwrap().unwrap();
    assert!(!a.enabled);
    assert!(a.memberships.is_empty());
    // Groups survive losing their last member.
    let mut groups = c.list_entitlements().await.unwrap();
    groups.sort();
    assert_eq!(groups, ["engineering", "vpn"]);

    c.enable_account("ada").await.unwrap();
    c.enable_account("ada").await.unwrap();
    assert!(c.read_account("ada").await.unwrap().unwrap().enabled);
    c.delete_account("ada").await.unwrap();
    c.delete_account("ada").await.unwrap();
    assert_eq!(c.read_account("ada").await.unwrap(), None);
}

#[tokio::test]
async fn hostile_names_are_just_names() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let c = LdapConnector::new("dir", slapd.settings());
    let hostile = ["*)(uid=*", "cn=x,dc=evil", " lead#and trail ", "back\\slash", "a+b;c<d>\"e\""];
    c.create_account(&spec("plain")).await.unwrap();
    c.grant("plain", "staff").await.unwrap();
    for h in hostile {
        c.create_account(&spec(h)).await.unwrap();
        c.grant(h, "staff").await.unwrap();
        c.grant(h, "*)(cn=*").await.unwrap();
        let a = c.read_account(h).await.unwrap().unwrap();
        assert_eq!(a.name, h);
        assert_eq!(a.memberships.len(), 2, "{h}: {a:?}");
    }
    // The filter-injection name matched only itself, not every account.
    c.disable_account("*)(uid=*").await.unwrap();
    assert!(c.read_account("plain").await.unwrap().unwrap().enabled);
    let all = c.list_accounts().await.unwrap();
    assert_eq!(all.len(), hostile.len() + 1);
    assert_eq!(all.iter().filter(|a| !a.enabled).count(), 1);
    // Nothing was created outside the people and groups containers.
    let out = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password, "-b", &slapd.base_dn])
        .args(["(|(dc=evil)(cn=x))", "dn"])
        .output()
        .expect("ldapsearch (apt-get install ldap-utils)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
}

#[tokio::test]
async fn an_unreachable_directory_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let c = LdapConnector::new("dir", slapd.settings());
    c.create_account(&spec("ada")).await.unwrap();
    slapd.stop();
    let err = c.read_account("ada").await.unwrap_err();
    assert!(err.to_string().starts_with("CN0001 system `dir` is unreachable"), "{err}");
}

#[tokio::test]
async fn memberships_are_read_across_the_whole_base_and_a_group_elsewhere_can_be_left() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let c = LdapConnector::new("dir", slapd.settings());
    c.create_account(&spec("ada")).await.unwrap();
    c.grant("ada", "vpn").await.unwrap();
    // Someone made a group outside the groups container, with Ada in it.
    let member = c.account_dn("ada");
    let ldif = format!(
        "dn: cn=shadow-admins,ou=people,{base}\nobjectClass: groupOfNames\ncn: shadow-admins\nmember: {member}\n",
        base = slapd.base_dn
    );
    let mut add = std::process::Command::new("ldapadd")
        .args(["-x", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ldapadd not found: apt-get install ldap-utils");
    add.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
    let elsewhere = format!("dn:cn=shadow-admins,ou=people,{}", slapd.base_dn);
    let a = c.read_account("ada").await.unwrap().unwrap();
    assert_eq!(a.memberships.iter().cloned().collect::<Vec<_>>(), [elsewhere.clone(), "vpn".to_owned()]);
    let listed = c.list_accounts().await.unwrap();
    assert!(listed.iter().any(|r| r.name == "ada" && r.memberships.contains(&elsewhere)), "{listed:?}");
    // A leaver's strip removes it like any other.
    c.revoke("ada", &elsewhere).await.unwrap();
    c.revoke("ada", "vpn").await.unwrap();
    assert!(c.read_account("ada").await.unwrap().unwrap().memberships.is_empty());
    // A DN outside the base is no target, and `dn:` targets are never granted.
    assert!(c.revoke("ada", "dn:cn=x,dc=elsewhere").await.is_err());
    assert!(c.grant("ada", &elsewhere).await.is_err());
}

#[tokio::test]
async fn an_account_under_a_missing_container_is_not_absent() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let mut settings = slapd.settings();
    settings.people = "ou=nobody-made-this".into();
    let c = LdapConnector::new("dir", settings);
    // The directory cannot say whether the account is there: that is an error, never "gone".
    let e = c.read_account("ada").await.unwrap_err();
    assert!(e.to_string().contains("noSuchObject"), "{e}");
    let c = LdapConnector::new("dir", slapd.settings());
    assert_eq!(c.read_account("ada").await.unwrap(), None);
}

#[tokio::test]
async fn a_directory_without_ppolicy_disables_by_a_constant_attribute_value_read_back() {
    use tenure_connectors::ldap::{Disable, LdapSettings};
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let mut m = std::collections::BTreeMap::new();
    for (k, v) in [("url", slapd.url()), ("base_dn", slapd.base_dn.clone()), ("bind_dn", slapd.bind_dn.clone())] {
        m.insert(k.to_owned(), v);
    }
    m.insert("bind_password".into(), slapd.password.clone());
    m.insert("disable".into(), "attribute".into());
    let err = LdapSettings::from_map("dir", &m).unwrap_err().to_string();
    assert!(err.contains("`disable_attribute` is missing"), "{err}");
    m.insert("disable_attribute".into(), "employeeType".into());
    m.insert("disable_value".into(), "disabled".into());
    let settings = LdapSettings::from_map("dir", &m).unwrap();
    assert_eq!(settings.disable, Disable::Attribute { name: "employeeType".into(), value: "disabled".into() });
    let c = LdapConnector::new("dir", settings);
    c.create_account(&spec("ada")).await.unwrap();
    assert!(c.read_account("ada").await.unwrap().unwrap().enabled);
    for _ in 0..2 {
        c.disable_account("ada").await.unwrap();
    }
    assert!(!c.read_account("ada").await.unwrap().unwrap().enabled);
    let entry = |filter: &str| {
        let out = std::process::Command::new("ldapsearch")
            .args(["-x", "-LLL", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password, "-b", &slapd.base_dn])
            .args([filter, "employeeType", "pwdAccountLockedTime"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ldif = entry("(uid=ada)");
    assert!(ldif.contains("employeeType: disabled") && !ldif.contains("pwdAccountLockedTime"), "{ldif}");
    assert!(!c.list_accounts().await.unwrap()[0].enabled, "a scan reads the same state");
    for _ in 0..2 {
        c.enable_account("ada").await.unwrap();
    }
    assert!(c.read_account("ada").await.unwrap().unwrap().enabled);
    assert!(!entry("(uid=ada)").contains("employeeType: disabled"));

    for (disable, want) in [("user_account_control", "needs `flavor = \"ad\"`"), ("lock", "expected ppolicy")] {
        m.insert("disable".into(), disable.into());
        let err = LdapSettings::from_map("dir", &m).unwrap_err().to_string();
        assert!(err.contains(want), "{disable}: {err}");
    }
    m.insert("disable".into(), "nsaccountlock".into());
    assert_eq!(
        LdapSettings::from_map("dir", &m).unwrap().disable,
        Disable::Attribute { name: "nsAccountLock".into(), value: "TRUE".into() }
    );
}

#[tokio::test]
async fn a_directory_that_disables_by_moving_to_a_container_moves_there_and_back_with_its_groups() {
    use tenure_connectors::ldap::{Disable, LdapSettings};
    let dir = tempfile::tempdir().unwrap();
    let slapd = LocalSlapd::start(dir.path()).await.unwrap();
    let mut m = std::collections::BTreeMap::new();
    for (k, v) in [("url", slapd.url()), ("base_dn", slapd.base_dn.clone()), ("bind_dn", slapd.bind_dn.clone())] {
        m.insert(k.to_owned(), v);
    }
    m.insert("bind_password".into(), slapd.password.clone());
    m.insert("disable".into(), "move".into());
    let err = LdapSettings::from_map("dir", &m).unwrap_err().to_string();
    assert!(err.contains("`disabled_container` is missing"), "{err}");
    m.insert("disabled_container".into(), "ou=People".into());
    let err = LdapSettings::from_map("dir", &m).unwrap_err().to_string();
    assert!(err.contains("`ou=People` is the people container"), "{err}");
    m.insert("disabled_container".into(), "ou=disabled".into());
    let settings = LdapSettings::from_map("dir", &m).unwrap();
    assert_eq!(settings.disable, Disable::Move { container: "ou=disabled".into() });
    let c = LdapConnector::new("dir", settings);
    let ldap = |tool: &str, args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(tool)
            .args(["-x", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = slapd.base_dn.clone();
    let (people_dn, disabled_dn) = (format!("uid=ada,ou=people,{base}"), format!("uid=ada,ou=disabled,{base}"));
    let members = |group: &str| -> Vec<String> {
        ldap("ldapsearch", &["-LLL", "-b", &format!("cn={group},ou=groups,{base}"), "-s", "base", "member"], "")
            .lines()
            .filter_map(|l| l.strip_prefix("member: ").map(str::to_owned))
            .collect()
    };
    let at = |dn: &str| {
        let out = std::process::Command::new("ldapsearch")
            .args(["-x", "-LLL", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password])
            .args(["-b", dn, "-s", "base", "1.1"])
            .output()
            .unwrap();
        out.status.success()
    };

    // Until the container of disabled accounts exists, nobody is known to be absent.
    let e = c.read_account("ada").await.unwrap_err();
    assert!(e.to_string().contains("noSuchObject"), "{e}");
    ldap("ldapadd", &[], &format!("dn: ou=disabled,{base}\nobjectClass: organizationalUnit\nou: disabled\n"));
    assert_eq!(c.read_account("ada").await.unwrap(), None);

    c.create_account(&spec("ada")).await.unwrap();
    c.grant("ada", "engineering").await.unwrap();
    c.grant("ada", "vpn").await.unwrap();
    assert!(c.read_account("ada").await.unwrap().unwrap().enabled);

    // Disabled: moved, its groups following it, read back as disabled in both reads.
    for _ in 0..2 {
        c.disable_account("ada").await.unwrap();
    }
    assert!(at(&disabled_dn) && !at(&people_dn));
    assert_eq!(members("engineering").iter().filter(|m| !m.is_empty()).collect::<Vec<_>>(), [&disabled_dn]);
    let a = c.read_account("ada").await.unwrap().unwrap();
    assert!(!a.enabled);
    assert_eq!(a.memberships.iter().map(String::as_str).collect::<Vec<_>>(), ["engineering", "vpn"]);
    let scanned = c.list_accounts().await.unwrap();
    assert_eq!(scanned.len(), 1);
    assert!(!scanned[0].enabled && scanned[0].memberships.len() == 2, "{scanned:?}");
    assert_eq!(c.find("name", "ada").await.unwrap().len(), 1, "correlation looks in both containers");

    // Enabled: back, and so are its groups.
    for _ in 0..2 {
        c.enable_account("ada").await.unwrap();
    }
    assert!(at(&people_dn) && !at(&disabled_dn));
    assert_eq!(members("vpn").iter().filter(|m| !m.is_empty()).collect::<Vec<_>>(), [&people_dn]);
    assert!(c.read_account("ada").await.unwrap().unwrap().enabled);

    // A move someone else made (or one interrupted before its groups followed): the groups
    // still name the old DN, the read says so, and disabling completes it.
    ldap("ldapmodrdn", &["-r", "-s", &format!("ou=disabled,{base}")], &format!("{people_dn}\nuid=ada\n"));
    let a = c.read_account("ada").await.unwrap().unwrap();
    assert!(!a.enabled && a.memberships.len() == 2, "{a:?}");
    c.disable_account("ada").await.unwrap();
    assert_eq!(members("engineering").iter().filter(|m| !m.is_empty()).collect::<Vec<_>>(), [&disabled_dn]);

    // A leaver: no group lists either DN, and the entry goes from where it is.
    c.revoke("ada", "engineering").await.unwrap();
    c.revoke("ada", "vpn").await.unwrap();
    assert!(c.read_account("ada").await.unwrap().unwrap().memberships.is_empty());
    assert!(members("engineering").iter().chain(&members("vpn")).all(String::is_empty));
    c.delete_account("ada").await.unwrap();
    assert!(!at(&disabled_dn));
    assert_eq!(c.read_account("ada").await.unwrap(), None);
}
