//! Each connector over TLS against its real server, with a CA the test made: an account is
//! provisioned (created, granted) and closed (disabled, revoked), read back over the same
//! verified connection; a CA the server's certificate does not chain to is refused with an
//! error naming the certificate problem; verification is off only when asked, by name.

use crate::spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tenure_connectors::ldap::{LdapConnector, LdapSettings};
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_connectors::tls::{Preamble, Tls};
use tenure_connectors::{Connector, ConnectorError};
use tenure_testkit::ca;

/// A CA (`ca.pem`) with a loopback server certificate, and an unrelated CA (`other.pem`).
fn cas(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (cert, key) = ca::loopback(dir, "ca", "server").unwrap();
    ca::loopback(dir, "other", "unrelated").unwrap();
    (dir.join("ca.pem"), dir.join("other.pem"), cert, key)
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Provision and close `name`, each step read back.
async fn provision_and_close(c: &dyn Connector, name: &str) {
    c.create_account(&spec(name)).await.unwrap();
    c.grant(name, "staff").await.unwrap();
    let a = c.read_account(name).await.unwrap().unwrap();
    assert!(a.enabled && a.memberships.contains("staff"), "{a:?}");
    c.disable_account(name).await.unwrap();
    c.revoke(name, "staff").await.unwrap();
    let a = c.read_account(name).await.unwrap().unwrap();
    assert!(!a.enabled && a.memberships.is_empty(), "{a:?}");
}

/// The error of a connection that must fail on its certificate.
fn certificate_refused(e: ConnectorError) {
    let text = e.to_string();
    assert!(matches!(e, ConnectorError::Unreachable { .. }), "{text}");
    assert!(text.contains("not signed by a CA tenure trusts"), "{text}");
}

/// When the server certificate at loopback `port` ends, trusting `ca`.
async fn expiry(ca: &Path, port: u16, preamble: Preamble) -> Result<time::OffsetDateTime, String> {
    let tls = Tls::from_map("dir", &BTreeMap::from([("tls_ca_file".into(), path(ca))])).unwrap();
    tls.certificate_expiry("127.0.0.1", port, preamble, std::time::Duration::from_secs(10)).await
}

/// A certificate file's end, as openssl reads it.
fn enddate(cert: &Path) -> time::OffsetDateTime {
    let out = std::process::Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(cert).output();
    let said = String::from_utf8(out.unwrap().stdout).unwrap();
    let format = time::macros::format_description!(
        "notAfter=[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    time::PrimitiveDateTime::parse(said.trim(), &format).unwrap_or_else(|e| panic!("{said}: {e}")).assume_utc()
}

fn ldap(slapd: &tenure_testkit::slapd::LocalSlapd, url: String, extra: &[(&str, String)]) -> LdapConnector {
    let mut m: BTreeMap<String, String> = BTreeMap::from([
        ("url".into(), url),
        ("base_dn".into(), slapd.base_dn.clone()),
        ("bind_dn".into(), slapd.bind_dn.clone()),
        ("bind_password".into(), slapd.password.clone()),
    ]);
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    LdapConnector::new("dir", LdapSettings::from_map("dir", &m).unwrap())
}

#[tokio::test]
async fn ldap_over_ldaps_and_starttls_verifies_the_directory_and_refuses_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (good, other, cert, key) = cas(dir.path());
    let slapd = tenure_testkit::slapd::LocalSlapd::start_tls(&dir.path().join("slapd"), &cert, &key).await;
    let slapd = slapd.unwrap_or_else(|e| panic!("{e}"));
    let ldaps = slapd.ldaps_url().unwrap();

    let c = ldap(&slapd, ldaps.clone(), &[("tls_ca_file", path(&good))]);
    provision_and_close(&c, "ada").await;
    let c = ldap(&slapd, slapd.url(), &[("starttls", "true".into()), ("tls_ca_file", path(&good))]);
    provision_and_close(&c, "grace").await;

    for c in [
        ldap(&slapd, ldaps.clone(), &[("tls_ca_file", path(&other))]),
        ldap(&slapd, slapd.url(), &[("starttls", "true".into()), ("tls_ca_file", path(&other))]),
        // The platform's roots do not know a test's CA either.
        ldap(&slapd, ldaps.clone(), &[]),
    ] {
        certificate_refused(c.read_account("ada").await.unwrap_err());
    }
    // The certificate's end, from a handshake of its own (over ldaps, and after StartTLS), is
    // what openssl reads in the file; the wrong CA is refused there too.
    let ldap_port: u16 = slapd.url().rsplit(':').next().unwrap().parse().unwrap();
    let port: u16 = ldaps.rsplit(':').next().unwrap().parse().unwrap();
    for (port, preamble) in [(port, Preamble::None), (ldap_port, Preamble::LdapStartTls)] {
        assert_eq!(expiry(&good, port, preamble).await.unwrap(), enddate(&cert), "{preamble:?}");
        let e = expiry(&other, port, preamble).await.unwrap_err();
        assert!(e.contains("not signed by a CA tenure trusts"), "{preamble:?}: {e}");
    }
    // StartTLS asked of a server that speaks TLS from the start gets no LDAP answer.
    assert!(expiry(&good, port, Preamble::LdapStartTls).await.is_err());

    // Off only by name: then the wrong CA does not matter.
    let c = ldap(&slapd, ldaps.clone(), &[("tls_ca_file", path(&other)), ("tls_verify", "false".into())]);
    assert!(!c.read_account("ada").await.unwrap().unwrap().enabled);

    // Settings that cannot mean what they say are refused when read.
    for (url, extra, says) in [
        (slapd.url(), vec![("tls_ca_file", path(&good))], "needs TLS"),
        (ldaps.clone(), vec![("starttls", "true".into())], "TLS from the start"),
        (ldaps.clone(), vec![("tls_verify", "maybe".into())], "expected true or false"),
        (ldaps.clone(), vec![("tls_ca_file", "/nonexistent.pem".into())], "/nonexistent.pem"),
        ("ftp://127.0.0.1".into(), vec![], "expected ldap://… or ldaps://…"),
    ] {
        let mut m = BTreeMap::from([
            ("url".to_owned(), url),
            ("base_dn".to_owned(), "dc=x".to_owned()),
            ("bind_dn".to_owned(), "cn=x".to_owned()),
            ("bind_password".to_owned(), "x".to_owned()),
        ]);
        m.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let e = LdapSettings::from_map("dir", &m).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
}

fn pg(url: &str, extra: &[(&str, String)]) -> Result<PostgresConnector, ConnectorError> {
    let mut m = BTreeMap::from([("url".to_owned(), url.to_owned())]);
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    PostgresConnector::new("db", PostgresSettings::from_map("db", &m)?)
}

#[tokio::test]
async fn postgres_sslmode_verifies_the_server_chain_and_name_as_named() {
    let dir = tempfile::tempdir().unwrap();
    let (good, other, cert, key) = cas(dir.path());
    // A certificate for another name, from the good CA: verify-ca takes it, verify-full not.
    let (elsewhere, elsewhere_key) =
        ca::certificate(dir.path(), "ca", "elsewhere", "DNS:db.example.com", false).unwrap();
    let mut server = tenure_testkit::postgres::LocalPostgres::start(&dir.path().join("pg")).await.unwrap();
    server.enable_tls(&cert, &key).await.unwrap();
    let url = server.url();
    let with = |mode: &str| format!("{url}?sslmode={mode}");

    for mode in ["verify-full", "require", "verify-ca"] {
        let c = pg(&with(mode), &[("tls_ca_file", path(&good))]).unwrap();
        provision_and_close(&c, &format!("user_{}", mode.replace('-', "_"))).await;
    }
    certificate_refused(
        pg(&with("verify-full"), &[("tls_ca_file", path(&other))]).unwrap().list_entitlements().await.unwrap_err(),
    );
    certificate_refused(
        pg(&with("verify-ca"), &[("tls_ca_file", path(&other))]).unwrap().list_entitlements().await.unwrap_err(),
    );
    certificate_refused(pg(&with("verify-full"), &[]).unwrap().list_entitlements().await.unwrap_err());
    // Its end, after PostgreSQL's SSL request, is what openssl reads in the file.
    let port: u16 = url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    assert_eq!(expiry(&good, port, Preamble::PostgresSslRequest).await.unwrap(), enddate(&cert));
    let e = expiry(&other, port, Preamble::PostgresSslRequest).await.unwrap_err();
    assert!(e.contains("not signed by a CA tenure trusts"), "{e}");

    server.enable_tls(&elsewhere, &elsewhere_key).await.unwrap();
    let e = pg(&with("verify-full"), &[("tls_ca_file", path(&good))]).unwrap().list_entitlements().await.unwrap_err();
    assert!(e.to_string().contains("not for this host name"), "{e}");
    pg(&with("verify-ca"), &[("tls_ca_file", path(&good))]).unwrap().list_entitlements().await.unwrap();

    // No plain-text fallback, and nothing that would have one.
    for (url, says) in [
        (with("prefer"), "never falls back to plain text"),
        (with("allow"), "never falls back to plain text"),
        (url.clone(), "needs TLS"),
    ] {
        let e = match pg(&url, &[("tls_ca_file", path(&good))]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{url} was taken"),
        };
        assert!(e.contains(says), "{url}: {e}");
    }
}

fn scim(url: String, token: &str, extra: &[(&str, String)]) -> ScimConnector {
    let mut m = BTreeMap::from([("url".to_owned(), url), ("token".to_owned(), token.to_owned())]);
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    ScimConnector::new("app", ScimSettings::from_map("app", &m).unwrap())
}

#[tokio::test]
async fn scim_over_https_verifies_the_service_presents_a_client_certificate_and_refuses_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (good, other, cert, key) = cas(dir.path());
    let (client, client_key) = ca::certificate(dir.path(), "ca", "tenure-client", "DNS:tenure", true).unwrap();
    let app = tenure_testkit::scim::LocalScim::start().await.unwrap_or_else(|e| panic!("{e}"));
    let proxy = tenure_testkit::tls_proxy::TlsProxy::start(app.port, &cert, &key, None).unwrap();
    let c = scim(proxy.url(), &app.token, &[("tls_ca_file", path(&good))]);
    provision_and_close(&c, "ada").await;
    certificate_refused(
        scim(proxy.url(), &app.token, &[("tls_ca_file", path(&other))]).read_account("ada").await.unwrap_err(),
    );
    certificate_refused(scim(proxy.url(), &app.token, &[]).read_account("ada").await.unwrap_err());

    // A service that wants a client certificate: without one, no answer; with one, served.
    let mtls = tenure_testkit::tls_proxy::TlsProxy::start(app.port, &cert, &key, Some(&good)).unwrap();
    let e = scim(mtls.url(), &app.token, &[("tls_ca_file", path(&good))]).read_account("ada").await.unwrap_err();
    assert!(matches!(e, ConnectorError::Unreachable { .. }), "{e}");
    let c = scim(
        mtls.url(),
        &app.token,
        &[("tls_ca_file", path(&good)), ("tls_client_cert", path(&client)), ("tls_client_key", path(&client_key))],
    );
    assert!(!c.read_account("ada").await.unwrap().unwrap().enabled);
    provision_and_close(&c, "grace").await;

    let mut m = BTreeMap::from([("url".to_owned(), app.url()), ("tls_ca_file".to_owned(), path(&good))]);
    assert!(ScimSettings::from_map("app", &m).unwrap_err().to_string().contains("needs TLS"));
    m.insert("url".into(), proxy.url());
    m.insert("tls_client_cert".into(), path(&client));
    assert!(ScimSettings::from_map("app", &m).unwrap_err().to_string().contains("go together"));
}
