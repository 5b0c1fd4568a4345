//! Step 5 of the demo, reconciliation: access made behind tenure's back in each system (an LDAP
//! entry put in the privileged group, a PostgreSQL login role, a SCIM user, a closed leaver's
//! entry unlocked), found by a run, the leaver disabled again, and the run's signed drift report
//! checked offline — and checked to fail once a byte of it is changed.

use super::{Checks, SYSTEM, yes_no};
use anyhow::Context;
use std::collections::HashSet;
use tenure_connectors::Connector;
use tenure_connectors::ldap::LdapConnector;
use tenure_engine::Engine;
use tenure_engine::worker::Workers;
use tenure_testkit::postgres::LocalPostgres;
use tenure_testkit::scim::LocalScim;
use tenure_testkit::slapd::LocalSlapd;

/// The servers, changed directly with their own protocols, as an administrator would.
pub(super) struct OutOfBand<'a> {
    pub slapd: &'a LocalSlapd,
    pub pg: &'a LocalPostgres,
    pub scim: &'a LocalScim,
}

impl OutOfBand<'_> {
    async fn ldap(&self) -> anyhow::Result<()> {
        let (conn, mut l) = ldap3::LdapConnAsync::new(&self.slapd.url()).await?;
        ldap3::drive!(conn);
        l.simple_bind(&self.slapd.bind_dn, &self.slapd.password).await?.success()?;
        let base = &self.slapd.base_dn;
        let dn = format!("uid=shadow-admin,ou=people,{base}");
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<HashSet<String>>();
        l.add(
            &dn,
            vec![
                ("objectClass".to_owned(), set(&["inetOrgPerson"])),
                ("uid".to_owned(), set(&["shadow-admin"])),
                ("cn".to_owned(), set(&["Shadow Admin"])),
                ("sn".to_owned(), set(&["made by hand"])),
            ],
        )
        .await?
        .success()?;
        l.modify(&format!("cn=prod-admin,ou=groups,{base}"), vec![ldap3::Mod::Add("member".to_owned(), set(&[&dn]))])
            .await?
            .success()?;
        // The closed leaver's entry, unlocked.
        l.modify(
            &format!("uid=E1010,ou=people,{base}"),
            vec![ldap3::Mod::Delete("pwdAccountLockedTime".to_owned(), HashSet::new())],
        )
        .await?
        .success()?;
        l.unbind().await?;
        Ok(())
    }

    async fn postgres(&self) -> anyhow::Result<()> {
        let (client, conn) = tokio_postgres::connect(&self.pg.url(), tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute("CREATE ROLE etl_tmp LOGIN").await?;
        Ok(())
    }

    fn scim(&self) -> anyhow::Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let user = serde_json::json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "contractor-tmp", "active": true });
        let r = agent
            .post(&format!("{}/Users", self.scim.url()))
            .header("authorization", &format!("Bearer {}", self.scim.token))
            .header("content-type", "application/scim+json")
            .send(user.to_string().as_bytes())?;
        anyhow::ensure!(r.status().as_u16() == 201, "the SCIM service answered {}", r.status());
        Ok(())
    }
}

pub(super) async fn run(
    engine: &Engine,
    workers: &Workers,
    ldap: &LdapConnector,
    oob: OutOfBand<'_>,
    signer: &tenure_ledger::Signer,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    println!("\n== 5. reconciliation: access made outside tenure, found, acted on, proved ==");
    oob.ldap().await.context("changing the directory directly")?;
    oob.postgres().await.context("creating a role directly")?;
    oob.scim().context("creating a SCIM user directly")?;
    println!("  behind tenure's back: uid=shadow-admin put in prod-admin, role etl_tmp, SCIM user contractor-tmp,");
    println!("  and the closed leaver hr:E1010's directory entry unlocked");
    let mut runs = Vec::new();
    for system in [SYSTEM, "analytics-db", "helpdesk"] {
        let run = workers.reconcile(system, false, tenure_model::Principal::operator("demo"), &mut |_| {}).await?;
        let counts: Vec<String> = run.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "  run {} of {system}: {} accounts read, {}; {}",
            run.id,
            run.accounts_read,
            counts.join(", "),
            run.state
        );
        for i in &run.items {
            let f = |k: &str| i.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let target = if f("target").is_empty() { String::new() } else { format!(" in {}", f("target")) };
            println!("    {:<22} {}{target} → {}", f("situation"), f("account"), f("reaction"));
        }
        runs.push(run);
    }
    let has = |system: &str, situation: &str, account: &str| {
        runs.iter().filter(|r| r.system == system).flat_map(|r| &r.items).any(|i| {
            i.get("situation").and_then(|v| v.as_str()) == Some(situation)
                && i.get("account").and_then(|v| v.as_str()) == Some(account)
        })
    };
    checks.check(has(SYSTEM, "unmatched", "shadow-admin"), "the hand-made directory entry is an orphan");
    checks.check(
        has(SYSTEM, "privileged_membership", "shadow-admin"),
        "its prod-admin membership is privileged and out of band",
    );
    checks.check(has(SYSTEM, "surviving_leaver", "E1010"), "the unlocked leaver is access surviving a leaver");
    checks.check(has("analytics-db", "unmatched", "etl_tmp"), "the hand-made role is an orphan");
    checks.check(has("helpdesk", "unmatched", "contractor-tmp"), "the SCIM user made in the app is an orphan");

    workers.run_until_idle().await?;
    let leaver = ldap.read_account("E1010").await?;
    let locked = leaver.as_ref().is_some_and(|a| !a.enabled);
    println!("  after the jobs: hr:E1010's entry is locked again (read back from LDAP): {}", yes_no(locked));
    checks.check(locked, "the surviving leaver is disabled again and verified");
    let open = engine.find_findings(&tenure_engine::views::FindingFilter::default())?;
    let drift = open.iter().filter(|f| f.kind.starts_with("reconcile.")).count();
    println!("  open reconciliation findings: {drift} (`tenure findings`)");

    let dir = runs.iter().find(|r| r.system == SYSTEM).map_or(0, |r| r.id);
    let report = engine.drift_report(dir, signer)?;
    let verified = tenure_ledger::drift::verify(&report, &signer.verifier());
    println!(
        "  drift report of run {dir} (`tenure reconcile show {dir} --out report.json`): {}",
        verified.as_ref().map_or_else(|e| format!("INVALID: {e}"), |v| format!("verified ({} items)", v.items))
    );
    checks.check(verified.is_ok(), "the drift report verifies offline");
    let text = serde_json::to_string(&report)?.replacen("shadow-admin", "shadow-admiN", 1);
    let tampered: serde_json::Value = serde_json::from_str(&text)?;
    let refused = tenure_ledger::drift::verify(&tampered, &signer.verifier());
    println!(
        "  the same report with one byte changed: {}",
        refused.as_ref().map_or_else(|e| format!("refused: {e}"), |_| "VERIFIED (wrong)".to_owned())
    );
    checks.check(refused.is_err(), "a drift report with a byte changed does not verify");
    Ok(())
}
