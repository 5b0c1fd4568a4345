//! Provisioning over TLS against plain, in the same run and against the same servers: per
//! connector (LDAP over ldaps, PostgreSQL with `sslmode=verify-full`, SCIM over https through
//! a TLS relay, against a plain relay), N accounts each created, granted a group and read back,
//! one connection each, plain and TLS taking turns account by account. The ratio is what TLS costs a provisioning job.
//!
//! `cargo bench -p tenure-connectors --bench tls` (TENURE_BENCH_ACCOUNTS to change the 300).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Instant;
use tenure_connectors::ldap::{LdapConnector, LdapSettings};
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_connectors::{AccountSpec, Connector};

fn spec(name: &str) -> AccountSpec {
    AccountSpec {
        name: name.into(),
        display_name: format!("Name of {name}"),
        kind: "human".into(),
        reference: format!("hr:{name}"),
        expires_at: None,
        attributes: Default::default(),
    }
}

/// One account, created, granted and read back; how long it took.
async fn provision(c: &dyn Connector, name: &str) -> std::time::Duration {
    let started = Instant::now();
    c.create_account(&spec(name)).await.unwrap();
    c.grant(name, "staff").await.unwrap();
    assert!(c.read_account(name).await.unwrap().is_some());
    started.elapsed()
}

/// Plain and TLS take turns account by account, so both meet the server in the same state
/// (a service whose cost grows with its users would otherwise favour whichever went first).
async fn compare(system: &str, plain: &dyn Connector, tls: &dyn Connector, n: usize) {
    let (mut p, mut t) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for i in 0..n {
        p += provision(plain, &format!("p{i:05}")).await;
        t += provision(tls, &format!("t{i:05}")).await;
    }
    let (p, t) = (n as f64 / p.as_secs_f64(), n as f64 / t.as_secs_f64());
    println!("{system:<10} plain {p:>8.1} accounts/s   TLS {t:>8.1} accounts/s   TLS/plain {:.2}", t / p);
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("TENURE_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tenure_testkit::ca::loopback(dir.path(), "ca", "server").unwrap();
    let ca = dir.path().join("ca.pem").display().to_string();
    println!("{n} accounts each way (create, grant, read back), plain and TLS taking turns");

    let slapd = tenure_testkit::slapd::LocalSlapd::start_tls(&dir.path().join("slapd"), &cert, &key).await.unwrap();
    let ldap = |url: String| {
        let mut m = BTreeMap::from([
            ("url".to_owned(), url),
            ("base_dn".to_owned(), slapd.base_dn.clone()),
            ("bind_dn".to_owned(), slapd.bind_dn.clone()),
            ("bind_password".to_owned(), slapd.password.clone()),
        ]);
        if m["url"].starts_with("ldaps") {
            m.insert("tls_ca_file".into(), ca.clone());
        }
        LdapConnector::new("dir", LdapSettings::from_map("dir", &m).unwrap())
    };
    compare("ldap", &ldap(slapd.url()), &ldap(slapd.ldaps_url().unwrap()), n).await;

    let mut pg = tenure_testkit::postgres::LocalPostgres::start(&dir.path().join("pg")).await.unwrap();
    pg.enable_tls(&cert, &key).await.unwrap();
    let db = |url: String, tls: bool| {
        let mut m = BTreeMap::from([("url".to_owned(), url)]);
        if tls {
            m.insert("tls_ca_file".into(), ca.clone());
        }
        PostgresConnector::new("db", PostgresSettings::from_map("db", &m).unwrap()).unwrap()
    };
    compare("postgres", &db(pg.url(), false), &db(format!("{}?sslmode=verify-full", pg.url()), true), n).await;

    let app = tenure_testkit::scim::LocalScim::start().await.unwrap();
    // Both ways through a relay on loopback (plain TCP, or TLS in and plain out), so the
    // ratio is the TLS alone and not the extra hop.
    let plain_relay = tenure_testkit::proxy::CutProxy::start(app.port).unwrap();
    let relay = tenure_testkit::tls_proxy::TlsProxy::start(app.port, &cert, &key, None).unwrap();
    let scim = |url: String, tls: bool| {
        let mut m = BTreeMap::from([("url".to_owned(), url), ("token".to_owned(), app.token.clone())]);
        if tls {
            m.insert("tls_ca_file".into(), ca.clone());
        }
        ScimConnector::new("app", ScimSettings::from_map("app", &m).unwrap())
    };
    let plain = format!("http://127.0.0.1:{}", plain_relay.port);
    compare("scim", &scim(plain, false), &scim(relay.url(), true), n).await;
}
