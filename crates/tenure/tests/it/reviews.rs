//! Access reviews end to end, against slapd and PostgreSQL: the quickstart's campaign over
//! privileged access assigns each item to the right reviewer, refuses a self-review, carries
//! out what was revoked (checked with `ldapsearch` and `psql`), closes on the read-back, and its
//! signed report verifies offline (and a tampered one does not).

use crate::support::*;
use tenure_engine::access::AccessRequest;
use tenure_engine::reviews::Verdict;
use tenure_model::{Principal, RequestKind};

fn members(w: &World, group: &str) -> Vec<String> {
    w.ldapsearch(&format!("(&(objectClass=groupOfNames)(cn={group}))"), &["member"])
        .lines()
        .filter_map(|l| l.strip_prefix("member: uid="))
        .map(|l| l.split(',').next().unwrap_or("").to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Whether PostgreSQL role `member` is in group role `group`.
fn pg_member(w: &World, member: &str, group: &str) -> bool {
    w.psql(&format!(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
         WHERE g.rolname = '{group}' AND r.rolname = '{member}'"
    )) == "1"
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn a_privileged_access_review_revokes_what_reviewers_deny_and_proves_it() {
    let w = World::new();
    hr(&w);
    // Now, not a fixed date: the CLI below decides on the wall clock, and the campaign's
    // deadline (two weeks from its start) must still be ahead of it.
    let c = Clocked::at(&w, time::OffsetDateTime::now_utc());
    let e = &c.engine;
    let grant = |who: &str, entitlement: &str, approvers: [&str; 2]| {
        let r = e
            .request(
                &Principal::local(who.parse().unwrap(), []),
                &AccessRequest {
                    beneficiary: who.into(),
                    entitlement: entitlement.into(),
                    kind: RequestKind::Access,
                    intent: "on-call rota".into(),
                    duration: None,
                },
            )
            .unwrap();
        for a in approvers {
            e.answer(&a.parse().unwrap(), r.id, true, "checked").unwrap();
        }
    };
    // Barbara (manager Alan) and Margaret (security herself, manager Edsger) hold production
    // admin; Dennis (manager Grace) may change the reporting schema.
    grant("hr:E1005", "corp-directory/prod-admin", ["hr:E1001", "hr:E1011"]);
    grant("hr:E1011", "corp-directory/prod-admin", ["hr:E1001", "hr:E1025"]);
    grant("hr:E1016", "analytics-db/reporting-admin", ["hr:E1002", "hr:E1025"]);
    c.run();
    assert_eq!(members(&w, "prod-admin"), ["E1005", "E1011"]);
    assert!(pg_member(&w, "E1016", "reporting-admin"));

    // Barbara signs in to the directory (the `lastbind` overlay records it), and the next
    // reconciliation reads it back.
    let base = &w.slapd.base_dn;
    w.ldap_admin(
        "ldapmodify",
        &format!("dn: uid=E1005,ou=people,{base}\nchangetype: modify\nreplace: userPassword\nuserPassword: s3cret\n"),
    );
    let bind = std::process::Command::new("ldapwhoami")
        .args(["-x", "-H", &w.slapd.url(), "-D", &format!("uid=E1005,ou=people,{base}"), "-w", "s3cret"])
        .output()
        .unwrap();
    assert!(bind.status.success(), "{}", stderr(&bind));
    w.ok(&["reconcile", "--system", "corp-directory"]);
    // Barbara asks to deploy (the runtime authorization is her last use tenure sees).
    let asked = e
        .authorize(
            &tenure_engine::authz::Question {
                principal: "hr:E1005".into(),
                action: "deploy".into(),
                resource: tenure_engine::authz::ResourceSpec::resource("payments-api"),
                context: serde_json::json!({ "intent": "hotfix", "environment": "prod" }),
            },
            &Principal::operator("test"),
        )
        .unwrap();

    let started = e.start_review(&Principal::operator("test"), "privileged-access").unwrap();
    assert_eq!(started.items.get("undecided"), Some(&3), "{started:?}");
    let id = started.id;
    let show = json(&w.ok(&["--output", "json", "reviews", "show", &id.to_string()]));
    let items = show["items"].as_array().unwrap();
    let item = |who: &str| items.iter().find(|i| i["identity"] == who).unwrap_or_else(|| panic!("{who}: {show}"));
    let (barbara, margaret, dennis) = (item("hr:E1005"), item("hr:E1011"), item("hr:E1016"));
    assert_eq!(barbara["reviewers"], serde_json::json!(["hr:E1002"]));
    assert_eq!(margaret["reviewers"], serde_json::json!(["hr:E1004"]));
    assert_eq!(dennis["reviewers"], serde_json::json!(["hr:E1001"]));
    assert_eq!(dennis["privileged"], true);
    assert_eq!(barbara["evidence"]["origin"], "request");
    let used = &barbara["evidence"]["last_authorized"];
    assert_eq!(used["action"], "deploy", "{barbara}");
    assert_eq!(used["decision"], asked.decision.as_str(), "{barbara}");
    let entry = w.ledger().into_iter().find(|e| e["seq"] == used["ledger_seq"]).unwrap();
    assert_eq!((entry["action"].as_str(), entry["subject"].as_str()), (Some("authz.decided"), Some("hr:E1005")));
    assert_eq!(dennis["evidence"]["last_authorized"], serde_json::Value::Null, "{dennis}");
    let login = &barbara["evidence"]["last_login"];
    assert_eq!(login["system"], "corp-directory", "{barbara}");
    let at = time::OffsetDateTime::parse(login["at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!((time::OffsetDateTime::now_utc() - at).abs() < time::Duration::minutes(10), "{barbara}");
    // Dennis's grant is in PostgreSQL, which records no last login.
    assert_eq!(dennis["evidence"]["last_login"], serde_json::Value::Null, "{dennis}");
    let item_id = |v: &serde_json::Value| v["id"].as_i64().unwrap();
    let (barbara, margaret, dennis) = (item_id(barbara), item_id(margaret), item_id(dennis));

    // Nobody reviews their own access, whatever the route.
    let out = w.run(&[
        "reviews",
        "decide",
        &id.to_string(),
        &barbara.to_string(),
        "keep",
        "--as",
        "hr:E1005",
        "--reason",
        "mine",
    ]);
    assert_eq!(out.status.code(), Some(5), "refused (docs/cli.md)");
    assert!(stderr(&out).contains("nobody reviews their own access"), "{}", stderr(&out));
    // A reviewer sees only its own items.
    let alan = json(&w.ok(&["--output", "json", "reviews", "show", &id.to_string(), "--reviewer", "hr:E1002"]));
    assert_eq!(alan["items"].as_array().unwrap().len(), 1, "{alan}");

    // Stage 1, the managers: each keeps, saying why.
    let decide = |who: &str, item: i64, v: Verdict, why: &str| e.decide_review(&who.parse().unwrap(), id, item, v, why);
    decide("hr:E1002", barbara, Verdict::Keep, "on call this quarter").unwrap();
    decide("hr:E1004", margaret, Verdict::Keep, "runs the incident rota").unwrap();
    decide("hr:E1001", dennis, Verdict::Keep, "owns the finance schema").unwrap();
    // Stage 2, security: Margaret's own item goes to Shafi alone.
    let m = e.review(&Principal::operator("test"), id, true, None, 10).unwrap().1;
    let m = m.iter().find(|i| i.id == margaret).unwrap();
    assert_eq!(m.reviewers, ["hr:E1025"]);
    let own = decide("hr:E1011", margaret, Verdict::Keep, "needed").unwrap_err();
    assert!(own.to_string().contains("nobody reviews their own access"), "{own}");
    decide("hr:E1011", barbara, Verdict::Keep, "on the rota").unwrap();
    let gone = decide("hr:E1025", margaret, Verdict::Revoke, "security staff hold no standing admin").unwrap();
    assert_eq!(gone.status, "revoking");
    decide("hr:E1025", dennis, Verdict::Revoke, "schema changes go through the DBA team").unwrap();

    // Carried out through the normal path and read back.
    c.run();
    assert_eq!(members(&w, "prod-admin"), ["E1005"]);
    assert!(!pg_member(&w, "E1016", "reporting-admin"));
    assert!(
        w.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'E1016' AND rolcanlogin").eq("1"),
        "only the grant goes"
    );
    assert_eq!(c.engine.tick().unwrap().reviews, [format!("review {id} closed")]);
    let shown = json(&w.ok(&["--output", "json", "reviews", "show", &id.to_string()]));
    assert_eq!(shown["campaign"]["state"], "closed");
    let statuses: Vec<&str> =
        shown["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "revoked (verified)").count(), 2, "{statuses:?}");

    // The report verifies offline; altered, it does not.
    let report = w.data_dir().join("review.json");
    w.ok(&["reviews", "report", &id.to_string(), "--out", report.to_str().unwrap()]);
    let key = w.file("ledger.pub", &w.ok(&["ledger", "key"]));
    let out = w.ok(&["reviews", "verify", report.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert!(out.contains("3 items: 1 kept, 2 revoked (0 by the no-answer default)"), "{out}");
    assert!(out.contains("hr:E1016 analytics-db/reporting-admin: revoked, verified by read-back"), "{out}");
    let mut doc = json(&std::fs::read_to_string(&report).unwrap());
    let decisions =
        doc["report"]["items"].as_array_mut().unwrap().iter_mut().find(|i| i["identity"] == "hr:E1011").unwrap();
    decisions["decisions"][1]["reason"] = "anything".into();
    let forged = w.file("forged.json", &doc.to_string());
    let out = w.run(&["reviews", "verify", forged.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("INVALID: signature"), "{}", stdout(&out));

    // Re-signed with the ledger's own key (a report builder gone wrong), claims its entries do
    // not support are still refused, each named.
    let text = std::fs::read_to_string(w.data_dir().join("ledger.key")).unwrap();
    let mut lines = text.lines();
    let origin = lines.next().unwrap();
    let seed: [u8; 32] = hex::decode(lines.next().unwrap()).unwrap().try_into().unwrap();
    let signer = tenure_ledger::Signer::from_seed(origin, &seed);
    let original = json(&std::fs::read_to_string(&report).unwrap());
    let resigned = |edit: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut doc = original.clone();
        edit(&mut doc["report"]);
        let body = tenure_ledger::entry::canonical_json(&doc["report"]);
        doc["signature"] = signer.sign_message(tenure_ledger::review::CONTEXT, &body).into();
        let path = w.file("resigned.json", &doc.to_string());
        let out = w.run(&["reviews", "verify", path.to_str().unwrap(), "--key", key.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        stdout(&out)
    };
    let of = |r: &mut serde_json::Value, who: &str| -> usize {
        r["items"].as_array().unwrap().iter().position(|i| i["identity"] == who).unwrap()
    };
    let out = resigned(&|r| {
        let i = of(r, "hr:E1011");
        r["items"][i]["decisions"][1]["by"] = "hr:E1011".into();
    });
    assert!(out.contains("by: differs from ledger entry"), "{out}");
    let out = resigned(&|r| {
        let b = of(r, "hr:E1005");
        r["items"][b]["outcome"] = "revoke".into();
        r["items"][b]["decisions"][1]["decision"] = "revoke".into();
    });
    assert!(out.contains("differs from ledger entry"), "{out}");
    let out = resigned(&|r| {
        let (i, m) = (of(r, "hr:E1016"), of(r, "hr:E1011"));
        let other = r["items"][m]["verification"].clone();
        r["items"][i]["verification"] = other;
    });
    assert!(out.contains("does not verify `analytics-db/reporting-admin` of `hr:E1016` revoked"), "{out}");
    let out = resigned(&|r| {
        let i = of(r, "hr:E1005");
        r["items"].as_array_mut().unwrap().remove(i);
    });
    assert!(out.contains("the `review.closed` entry says 3"), "{out}");

    let replay = w.ok(&["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
}

#[test]
fn an_nhi_its_owner_does_not_attest_is_suspended_by_the_clock_authorize_denies_it_and_attesting_resumes_it() {
    use tenure_engine::authz::{Question, ResourceSpec};
    let w = World::new();
    workloads(&w);
    let next = w.tmp.path().join("attested-policy");
    copy_dir(&quickstart_policy(), &next);
    let manifest = next.join("tenure.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text + "\n[attestation]\nevery_days = { service = 90, workload = 30, agent = 30 }\nremind_days_before = 7\n",
    )
    .unwrap();
    w.ok(&["policy", "deploy", next.to_str().unwrap()]);
    // A month on, by a clock the test holds: nobody attested.
    let c = Clocked::at(&w, time::OffsetDateTime::now_utc() + time::Duration::days(31));
    let deploy = |e: &tenure_engine::Engine| {
        e.authorize(
            &Question {
                principal: "service-registry:wl-deployer".into(),
                action: "deploy".into(),
                resource: ResourceSpec::resource("payments-api"),
                context: serde_json::json!({ "intent": "release 2026.12", "environment": "prod" }),
            },
            &Principal::operator("test"),
        )
        .unwrap()
        .is_allow()
    };
    assert!(deploy(&c.engine), "allowed before the clock ticks");
    let tick = c.engine.tick().unwrap();
    assert!(
        tick.attestations.iter().any(|t| t.starts_with("service-registry:wl-deployer: suspended, not attested by")),
        "{tick:?}"
    );
    assert!(!tick.attestations.iter().any(|t| t.contains("svc-billing")), "services have 90 days: {tick:?}");
    assert!(!deploy(&c.engine), "a suspended workload is denied at once");
    c.run();
    let shown = json(&w.ok(&["--output", "json", "identities", "show", "service-registry:wl-deployer"]));
    assert_eq!(shown["state"], "suspended");
    // Its owner attests; it resumes, and authorization follows.
    let owner = shown["owner"].as_str().unwrap().to_owned();
    let out = w.run(&["identities", "attest", "service-registry:wl-deployer", "--as", "hr:E1003", "--reason", "x"]);
    assert_ne!(out.status.code(), Some(0), "only its owner ({owner}) attests");
    c.engine
        .attest(&Principal::local(owner.parse().unwrap(), []), "service-registry:wl-deployer", "deploys every release")
        .unwrap();
    assert!(deploy(&c.engine), "attested: allowed again");
    c.run();
    let replay = w.ok(&["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
}
