//! Reconciliation against real servers on loopback, each against a baseline in the same run:
//! - LDAP: 100,000 accounts with 300,000 memberships in slapd; tenure's read (paged results,
//!   500 a page) and classification against `ldapsearch -E pr=500/noprompt` reading the same
//!   entries and attributes;
//! - PostgreSQL: 10,000 LOGIN roles with 3 group roles each; tenure's keyset pages against the
//!   same catalog query in one statement, through the same driver;
//! - SCIM: 10,000 users in scim2-server; tenure's read (users, then groups) against raw paged
//!   GETs of the users alone.
//!
//! Every account is one tenure holds (the worst case: all compared); timings are the median of
//! three alternating runs. `cargo bench -p tenure --bench reconcile` (needs
//! `scripts/install-deps`; TENURE_BENCH_LDAP, TENURE_BENCH_PG, TENURE_BENCH_SCIM set counts).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;
use tenure_connectors::Connector;
use tenure_engine::reconcile::diff::{Classifier, Expected};
use tenure_model::{AccountState, GrantState, LifecycleState};
use tenure_policy::reconcile::ReconcileRules;

const GROUPS_PER_ACCOUNT: usize = 3;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What tenure holds: `n` people, each account marked for them, `GROUPS_PER_ACCOUNT` grants.
fn expected(n: usize, name: impl Fn(usize) -> String, group: impl Fn(usize, usize) -> String) -> Expected {
    let mut e = Expected::new(&ReconcileRules::default());
    for i in 0..n {
        let r = format!("hr:E{i}");
        e.identity(&r, LifecycleState::Active, &Default::default());
        e.account(&r, &name(i), AccountState::Verified);
        for k in 0..GROUPS_PER_ACCOUNT {
            e.grant(&name(i), &group(i, k), GrantState::Verified);
        }
    }
    e
}

/// Build the expected state, scan, classify; seconds and what it found.
async fn tenure_run(c: &dyn Connector, e: Expected) -> (f64, u64, u64, usize) {
    let t = Instant::now();
    let mut classifier = Classifier::new(e);
    let request = tenure_connectors::ScanRequest { page_size: 500, attributes: vec![] };
    c.scan(&request, &mut |p| {
        classifier.page(p);
        Ok(())
    })
    .await
    .unwrap();
    let plan = classifier.finish();
    (t.elapsed().as_secs_f64(), plan.accounts_read, plan.memberships_read, plan.items.len())
}

fn report(what: &str, n: usize, tenure: f64, baseline: f64, baseline_name: &str) {
    println!(
        "  {what}: tenure {tenure:.2} s ({:.0} accounts/s), {baseline_name} {baseline:.2} s; ratio {:.2}x",
        n as f64 / tenure,
        tenure / baseline
    );
}

async fn ldap(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let slapd = tenure_testkit::slapd::LocalSlapd::start(dir.path()).await.unwrap();
    let base = slapd.base_dn.clone();
    let groups = (n * GROUPS_PER_ACCOUNT / 10_000 + 1).max(GROUPS_PER_ACCOUNT);
    let group = move |i: usize, k: usize| format!("g{:03}", (i * GROUPS_PER_ACCOUNT + k) % groups);
    let name = |i: usize| format!("u{i:06}");
    let ldif = dir.path().join("load.ldif");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&ldif).unwrap());
        for i in 0..n {
            writeln!(
                f,
                "dn: uid={0},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: {0}\ncn: Person {i}\nsn: {i}\n\
                 mail: {0}@example.com\ndescription: managed by tenure: hr:E{i}\n",
                name(i)
            )
            .unwrap();
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for i in 0..n {
            for k in 0..GROUPS_PER_ACCOUNT {
                members[(i * GROUPS_PER_ACCOUNT + k) % groups].push(i);
            }
        }
        for (g, m) in members.iter().enumerate() {
            writeln!(f, "dn: cn=g{g:03},ou=groups,{base}\nobjectClass: groupOfNames\ncn: g{g:03}").unwrap();
            for i in m {
                writeln!(f, "member: uid={},ou=people,{base}", name(*i)).unwrap();
            }
            writeln!(f).unwrap();
        }
    }
    let t = Instant::now();
    let out = Command::new("ldapadd")
        .args(["-x", "-c", "-H", &slapd.url(), "-D", &slapd.bind_dn, "-w", &slapd.password, "-f"])
        .arg(&ldif)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "ldapadd: {}", String::from_utf8_lossy(&out.stderr));
    println!(
        "LDAP: {n} accounts, {} memberships in {groups} groups (loaded in {:.1} s)",
        n * GROUPS_PER_ACCOUNT,
        t.elapsed().as_secs_f64()
    );
    let c = tenure_connectors::ldap::LdapConnector::new("dir", slapd.settings());
    let search = |base_dn: &str, filter: &str, attrs: &[&str]| {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-E",
                "pr=500/noprompt",
                "-H",
                &slapd.url(),
                "-D",
                &slapd.bind_dn,
                "-w",
                &slapd.password,
            ])
            .args(["-b", base_dn, filter])
            .args(attrs)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (secs, accounts, memberships, items) = tenure_run(&c, expected(n, name, group)).await;
        assert_eq!((accounts as usize, memberships as usize, items), (n, n * GROUPS_PER_ACCOUNT, 0));
        ours.push(secs);
        let t = Instant::now();
        let people = format!("ou=people,{base}");
        search(&people, "(uid=*)", &["uid", "pwdAccountLockedTime", "description", "mail", "cn", "employeeNumber"]);
        search(&base, "(objectClass=groupOfNames)", &["cn", "member"]);
        theirs.push(t.elapsed().as_secs_f64());
    }
    let (tenure, baseline) = (median(ours), median(theirs));
    report("LDAP", n, tenure, baseline, "ldapsearch (paged)");
    println!(
        "  Entra ID provisioning's documented ~350 accounts/min is {:.1} accounts/s: tenure reads and classifies {:.0}x faster",
        350.0 / 60.0,
        (n as f64 / tenure) / (350.0 / 60.0)
    );
}

async fn postgres(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let pg = tenure_testkit::postgres::LocalPostgres::start(&dir.path().join("pg")).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let t = Instant::now();
    client
        .batch_execute(&format!(
            "CREATE ROLE g0 NOLOGIN; CREATE ROLE g1 NOLOGIN; CREATE ROLE g2 NOLOGIN;
             DO $$ BEGIN FOR i IN 0..{} LOOP
               EXECUTE format('CREATE ROLE %I LOGIN IN ROLE g0, g1, g2', 'r' || i);
               EXECUTE format('COMMENT ON ROLE %I IS %L', 'r' || i, 'tenure: hr:E' || i || ' (human, Person)');
             END LOOP; END $$;",
            n - 1
        ))
        .await
        .unwrap();
    println!("PostgreSQL: {n} LOGIN roles in 3 group roles each (made in {:.1} s)", t.elapsed().as_secs_f64());
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), pg.url());
    let c = tenure_connectors::postgres::PostgresConnector::new(
        "db",
        tenure_connectors::postgres::PostgresSettings::from_map("db", &m).unwrap(),
    )
    .unwrap();
    let name = |i: usize| format!("r{i}");
    let group = |_: usize, k: usize| format!("g{k}");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (secs, accounts, memberships, _) = tenure_run(&c, expected(n, name, group)).await;
        assert_eq!((accounts as usize, memberships as usize), (n + 1, n * GROUPS_PER_ACCOUNT));
        ours.push(secs);
        let t = Instant::now();
        let rows = client
            .query(
                "SELECT r.rolname, r.rolcanlogin, coalesce(array_agg(g.rolname::text) FILTER (WHERE g.rolname IS NOT NULL), '{}'),
                        shobj_description(r.oid, 'pg_authid')
                 FROM pg_roles r LEFT JOIN pg_auth_members a ON a.member = r.oid LEFT JOIN pg_roles g ON g.oid = a.roleid
                 WHERE r.rolcanlogin GROUP BY r.oid, r.rolname, r.rolcanlogin ORDER BY r.rolname",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), n + 1);
        theirs.push(t.elapsed().as_secs_f64());
    }
    report("PostgreSQL", n, median(ours), median(theirs), "one catalog query");
}

async fn scim(n: usize) {
    let s = tenure_testkit::scim::LocalScim::start().await.unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let t = Instant::now();
    let url = s.url();
    std::thread::scope(|scope| {
        for part in 0..4 {
            let (agent, url, token) = (agent.clone(), url.clone(), s.token.clone());
            scope.spawn(move || {
                for i in (part..n).step_by(4) {
                    let user = serde_json::json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("s{i:05}"), "externalId": format!("hr:E{i}"), "active": true });
                    let r = agent
                        .post(&format!("{url}/Users"))
                        .header("authorization", &format!("Bearer {token}"))
                        .header("content-type", "application/scim+json")
                        .send(user.to_string().as_bytes())
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                }
            });
        }
    });
    println!("SCIM: {n} users (made in {:.1} s)", t.elapsed().as_secs_f64());
    let mut m = std::collections::BTreeMap::new();
    m.insert("url".to_owned(), url.clone());
    m.insert("token".to_owned(), s.token.clone());
    let c = tenure_connectors::scim::ScimConnector::new(
        "app",
        tenure_connectors::scim::ScimSettings::from_map("app", &m).unwrap(),
    );
    let e = || {
        let mut e = Expected::new(&ReconcileRules::default());
        for i in 0..n {
            let r = format!("hr:E{i}");
            e.identity(&r, LifecycleState::Active, &Default::default());
            e.account(&r, &format!("s{i:05}"), AccountState::Verified);
        }
        e
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (secs, accounts, _, items) = tenure_run(&c, e()).await;
        assert_eq!((accounts as usize, items), (n, 0));
        ours.push(secs);
        let t = Instant::now();
        let mut start = 1;
        let mut read = 0;
        loop {
            let mut r = agent
                .get(&format!("{url}/Users"))
                .query("startIndex", start.to_string())
                .query("count", "500")
                .header("authorization", &format!("Bearer {}", s.token))
                .call()
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            let got = body["Resources"].as_array().map_or(0, Vec::len);
            read += got;
            if got == 0 || read >= body["totalResults"].as_u64().unwrap() as usize {
                break;
            }
            start += got;
        }
        assert_eq!(read, n);
        theirs.push(t.elapsed().as_secs_f64());
    }
    report("SCIM", n, median(ours), median(theirs), "raw paged GETs of /Users");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        ldap(count("TENURE_BENCH_LDAP", 100_000)).await;
        postgres(count("TENURE_BENCH_PG", 10_000)).await;
        scim(count("TENURE_BENCH_SCIM", 10_000)).await;
    });
}
