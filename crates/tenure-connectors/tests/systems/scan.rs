//! Whole-system reads (`Connector::scan`) against the real servers: pages of the asked size,
//! every account and membership exactly once, and a connection cut in the middle of a read is an
//! incomplete read naming its page — never a shorter list.

use crate::spec;
use std::collections::BTreeSet;
use tenure_connectors::{Connector, ConnectorError, Page, ScanRequest, ScanTotals};
use tenure_testkit::proxy::CutProxy;

/// Scan with pages of `size`; the pages, and the result.
async fn scan(c: &dyn Connector, size: usize) -> (Vec<Page>, Result<ScanTotals, ConnectorError>) {
    let mut pages = Vec::new();
    let r = c
        .scan(&ScanRequest { page_size: size, attributes: vec![] }, &mut |p| {
            pages.push(p);
            Ok(())
        })
        .await;
    (pages, r)
}

/// Every account and `(account, target)` the pages carried; each page at most `size` items.
fn contents(pages: &[Page], size: usize) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut accounts = BTreeSet::new();
    let mut memberships = BTreeSet::new();
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p.number, i as u64 + 1);
        assert!(p.accounts.len() + p.memberships.len() <= size, "page {} is larger than {size}", p.number);
        for a in &p.accounts {
            assert!(accounts.insert(a.name.clone()), "{} read twice", a.name);
            memberships.extend(a.memberships.iter().map(|m| (a.name.clone(), m.clone())));
        }
        memberships.extend(p.memberships.iter().cloned());
    }
    (accounts, memberships)
}

fn incomplete(r: Result<ScanTotals, ConnectorError>, system: &str) -> u64 {
    match r {
        Err(ConnectorError::Incomplete { system: s, page, message }) => {
            assert_eq!(s, system, "{message}");
            page
        }
        other => panic!("expected an incomplete read, got {other:?}"),
    }
}

#[tokio::test]
async fn ldap_reads_in_pages_and_a_cut_connection_is_an_incomplete_read() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = tenure_testkit::slapd::LocalSlapd::start(dir.path()).await.unwrap();
    let c = tenure_connectors::ldap::LdapConnector::new("dir", slapd.settings());
    let names: Vec<String> = (0..40).map(|i| format!("u{i:02}")).chain(["a,b+c".to_owned()]).collect();
    for n in &names {
        c.create_account(&spec(n)).await.unwrap();
    }
    for n in names.iter().step_by(4) {
        c.grant(n, "staff").await.unwrap();
    }
    let (pages, r) = scan(&c, 7).await;
    let totals = r.unwrap();
    let (accounts, memberships) = contents(&pages, 7);
    assert_eq!(accounts, names.iter().cloned().collect());
    assert_eq!(memberships.len(), 11);
    assert!(memberships.contains(&("u04".to_owned(), "staff".to_owned())));
    assert_eq!((totals.accounts, totals.memberships, totals.pages), (41, 11, pages.len() as u64));
    assert!(pages.len() >= 7);

    let proxy = CutProxy::start(slapd.port).unwrap();
    let mut settings = slapd.settings();
    settings.url = format!("ldap://127.0.0.1:{}", proxy.port);
    let c = tenure_connectors::ldap::LdapConnector::new("dir", settings);
    assert_eq!(scan(&c, 7).await.1.unwrap().accounts, 41, "through the relay, untouched");
    proxy.cut_after(1500);
    let (pages, r) = scan(&c, 7).await;
    let page = incomplete(r, "dir");
    assert_eq!(page, pages.len() as u64 + 1, "the error names the page that was being read");
    assert!(contents(&pages, 7).0.len() < 41);
}

#[tokio::test]
async fn postgres_reads_keyset_pages_with_disabled_and_superuser_roles_and_a_cut_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let pg = tenure_testkit::postgres::LocalPostgres::start(&dir.path().join("pg")).await.unwrap();
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), pg.url());
    let c = tenure_connectors::postgres::PostgresConnector::new(
        "db",
        tenure_connectors::postgres::PostgresSettings::from_map("db", &m).unwrap(),
    )
    .unwrap();
    let names: Vec<String> =
        (0..12).map(|i| format!("r{i:02}")).chain([r#"x"; DROP ROLE r00; --"#.to_owned()]).collect();
    for n in &names {
        c.create_account(&spec(n)).await.unwrap();
        c.grant(n, "analysts").await.unwrap();
    }
    // A disabled role is still an account (NOLOGIN, marked); the group role is not one.
    c.disable_account("r03").await.unwrap();
    let (pages, r) = scan(&c, 5).await;
    let totals = r.unwrap();
    let (accounts, memberships) = contents(&pages, 5);
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert("postgres".to_owned());
    assert_eq!(accounts, want);
    assert_eq!(memberships.len(), 13, "{memberships:?}");
    assert_eq!(totals.accounts, 14);
    let all: Vec<_> = pages.iter().flat_map(|p| p.accounts.iter()).collect();
    let admin = all.iter().find(|a| a.name == "postgres").unwrap();
    assert!(admin.reserved && admin.privileges.contains("SUPERUSER"));
    assert!(!all.iter().find(|a| a.name == "r03").unwrap().enabled);

    let proxy = CutProxy::start(pg.port).unwrap();
    m.insert("url".to_owned(), pg.url().replace(&format!(":{}/", pg.port), &format!(":{}/", proxy.port)));
    let c = tenure_connectors::postgres::PostgresConnector::new(
        "db",
        tenure_connectors::postgres::PostgresSettings::from_map("db", &m).unwrap(),
    )
    .unwrap();
    assert_eq!(scan(&c, 5).await.1.unwrap().accounts, 14);
    proxy.cut_after(700);
    let (pages, r) = scan(&c, 5).await;
    incomplete(r, "db");
    assert!(contents(&pages, 5).0.len() < 14);
}

#[tokio::test]
async fn scim_reads_start_index_pages_and_a_cut_is_incomplete() {
    let s = tenure_testkit::scim::LocalScim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), s.url());
    m.insert("token".to_owned(), s.token.clone());
    let c = tenure_connectors::scim::ScimConnector::new(
        "app",
        tenure_connectors::scim::ScimSettings::from_map("app", &m).unwrap(),
    );
    for i in 0..8 {
        let n = format!("s{i}");
        c.create_account(&spec(&n)).await.unwrap();
        if i % 2 == 0 {
            c.grant(&n, "agents").await.unwrap();
        }
    }
    let (pages, r) = scan(&c, 3).await;
    r.unwrap();
    let (accounts, memberships) = contents(&pages, 3);
    assert_eq!(accounts.len(), 8);
    assert_eq!(memberships.len(), 4);

    let proxy = CutProxy::start(s.port).unwrap();
    m.insert("url".to_owned(), s.url().replace(&format!(":{}", s.port), &format!(":{}", proxy.port)));
    let c = tenure_connectors::scim::ScimConnector::new(
        "app",
        tenure_connectors::scim::ScimSettings::from_map("app", &m).unwrap(),
    );
    proxy.cut_after(2500);
    let (pages, r) = scan(&c, 3).await;
    incomplete(r, "app");
    assert!(contents(&pages, 3).0.len() < 8);
}

#[tokio::test]
async fn exec_streams_lines_and_garbage_or_a_failed_exit_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let program = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut m = std::collections::BTreeMap::new();
        m.insert("command".to_owned(), p.display().to_string());
        m.insert("timeout_secs".to_owned(), "5".to_owned());
        tenure_connectors::exec::ExecConnector::new(
            "shadow",
            tenure_connectors::exec::ExecSettings::from_map("shadow", &m).unwrap(),
        )
    };
    let line = |n: &str| {
        format!(
            r#"echo '{{"name": "{n}", "enabled": true, "memberships": ["ops"], "attributes": {{"email": "{n}@x.test"}}}}'"#
        )
    };
    let good = program("good.sh", &format!("{}\n{}\n{}", line("a"), line("b"), line("c")));
    let (pages, r) = scan(&good, 2).await;
    assert_eq!(r.unwrap().accounts, 3);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].accounts[0].attributes["email"], "a@x.test");

    let garbage = program("garbage.sh", &format!("{}\necho 'Traceback (most recent call last):'", line("a")));
    let err = scan(&garbage, 2).await.1.unwrap_err().to_string();
    assert!(err.starts_with("CN0005") && err.contains("line 2 is not an account"), "{err}");
    let failed = program("failed.sh", &format!("{}\nexit 3", line("a")));
    let err = scan(&failed, 2).await.1.unwrap_err().to_string();
    assert!(err.starts_with("CN0005") && err.contains("exit status: 3"), "{err}");
}
