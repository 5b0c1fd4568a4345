//! The PostgreSQL connector against a throwaway cluster: idempotent operations, read-back,
//! disabling that ends sessions, a probe that logs in, deletion, and hostile names. Checked with
//! `psql`, a client tenure did not write.

use std::process::Command;
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::{AccountSpec, Connector, Probe};
use tenure_testkit::postgres::LocalPostgres;

/// A person's role, ending by date.
fn spec(name: &str) -> AccountSpec {
    AccountSpec { expires_at: Some("2027-06-30T00:00:00Z".into()), ..crate::spec(name) }
}

/// `psql` as the cluster's admin; one value per line.
pub(crate) fn psql(pg: &LocalPostgres, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-d", "postgres", "-At", "-c", sql])
        .output()
        .expect("psql not found: apt-get install postgresql-client");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Can `role` log in (psql, no password, trusted loopback)?
fn login(pg: &LocalPostgres, role: &str) -> bool {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", role, "-d", "postgres", "-c", "SELECT 1"])
        .output()
        .unwrap()
        .status
        .success()
}

pub(crate) fn connector(pg: &LocalPostgres) -> PostgresConnector {
    let mut s = std::collections::BTreeMap::new();
    s.insert("url".to_owned(), pg.url());
    PostgresConnector::new("db", PostgresSettings::from_map("db", &s).unwrap()).unwrap()
}

#[tokio::test]
async fn roles_round_trip_disable_ends_sessions_and_the_probe_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pg = LocalPostgres::start(&dir.path().join("pg")).await.unwrap_or_else(|e| panic!("{e}"));
    let c = connector(&pg);

    c.create_account(&spec("alice")).await.unwrap();
    c.create_account(&spec("alice")).await.unwrap(); // idempotent
    c.grant("alice", "analysts").await.unwrap();
    c.grant("alice", "analysts").await.unwrap();
    let r = c.read_account("alice").await.unwrap().unwrap();
    assert!(r.enabled);
    assert_eq!(r.memberships.into_iter().collect::<Vec<_>>(), ["analysts"]);
    assert_eq!(psql(&pg, "SELECT rolcanlogin, rolvaliduntil IS NOT NULL FROM pg_roles WHERE rolname = 'alice'"), "t|t");
    assert!(
        psql(&pg, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'alice'")
            .contains("hr:alice")
    );
    assert_eq!(c.probe("alice").await.unwrap(), Probe::Allowed);
    assert!(login(&pg, "alice"));

    // A session opened before disabling does not survive it.
    let mut cfg: tokio_postgres::Config = pg.url().parse().unwrap();
    cfg.user("alice");
    let (session, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    session.simple_query("SELECT 1").await.unwrap();
    c.disable_account("alice").await.unwrap();
    c.revoke("alice", "analysts").await.unwrap();
    c.revoke("alice", "analysts").await.unwrap();
    assert!(session.simple_query("SELECT 1").await.is_err(), "the session survived NOLOGIN");
    let r = c.read_account("alice").await.unwrap().unwrap();
    assert!(!r.enabled && r.memberships.is_empty());
    assert!(matches!(c.probe("alice").await.unwrap(), Probe::Refused(m) if m.contains("not permitted to log in")));
    assert!(!login(&pg, "alice"));
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'alice'"
        ),
        "0"
    );

    // Deletion hands over what the role owned.
    psql(&pg, "GRANT CREATE ON SCHEMA public TO alice; SET ROLE alice; CREATE TABLE alice_notes (x int); RESET ROLE");
    c.delete_account("alice").await.unwrap();
    c.delete_account("alice").await.unwrap();
    assert_eq!(c.read_account("alice").await.unwrap(), None);
    assert_eq!(psql(&pg, "SELECT tableowner FROM pg_tables WHERE tablename = 'alice_notes'"), "postgres");
    assert!(matches!(c.probe("alice").await.unwrap(), Probe::Refused(m) if m.contains("does not exist")));
}

#[tokio::test]
async fn hostile_names_are_just_names() {
    let dir = tempfile::tempdir().unwrap();
    let pg = LocalPostgres::start(&dir.path().join("pg")).await.unwrap_or_else(|e| panic!("{e}"));
    let c = connector(&pg);
    psql(&pg, "CREATE ROLE admin LOGIN SUPERUSER");
    let evil = r#"x"; DROP ROLE admin; --"#;
    let quote = "o'brien\\'; DROP ROLE admin; --";
    for name in [evil, quote] {
        c.create_account(&AccountSpec { display_name: "'); DROP ROLE admin; --".into(), ..spec(name) }).await.unwrap();
        c.grant(name, r#"g"; DROP ROLE admin; --"#).await.unwrap();
        let r = c.read_account(name).await.unwrap().unwrap();
        assert!(r.enabled);
        assert!(r.memberships.contains(r#"g"; DROP ROLE admin; --"#));
        c.disable_account(name).await.unwrap();
        c.delete_account(name).await.unwrap();
        assert_eq!(c.read_account(name).await.unwrap(), None);
    }
    assert_eq!(psql(&pg, "SELECT count(*) FROM pg_roles WHERE rolname = 'admin'"), "1", "admin survived");
    // Names PostgreSQL would silently truncate are refused, not mangled.
    let long = "n".repeat(64);
    assert!(c.create_account(&spec(&long)).await.unwrap_err().to_string().contains("not a usable role name"));
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_a_restarted_one_is_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = LocalPostgres::start(&dir.path().join("pg")).await.unwrap_or_else(|e| panic!("{e}"));
    let c = connector(&pg);
    c.create_account(&spec("bob")).await.unwrap();
    pg.stop();
    let err = c.disable_account("bob").await.unwrap_err().to_string();
    assert!(err.contains("CN0001"), "{err}");
    pg.start_again().await.unwrap();
    c.disable_account("bob").await.unwrap();
    assert!(!c.read_account("bob").await.unwrap().unwrap().enabled);
}
