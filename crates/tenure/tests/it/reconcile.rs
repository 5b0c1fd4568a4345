//! Reconciliation against the real servers: accounts and memberships made with `ldapadd`,
//! `ldapmodify`, `CREATE ROLE`/`GRANT` and SCIM POSTs are found with the right situation; a
//! leaver's account re-enabled in LDAP is disabled again and checked with `ldapsearch`; a run
//! over its threshold applies nothing until released, in part; a connection cut mid-read
//! concludes nothing; a drift report verifies offline and a flipped byte does not.

use crate::support::*;
use serde_json::Value;

fn person_ldif(base: &str, uid: &str, employee: Option<&str>) -> String {
    let escaped = uid.replace('\\', "\\\\").replace(',', "\\,").replace('+', "\\+");
    let mut l = format!(
        "dn: uid={escaped},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: made by hand\n"
    );
    if let Some(e) = employee {
        l.push_str(&format!("employeeNumber: {e}\n"));
    }
    l.push('\n');
    l
}

/// `tenure …` with the world's environment and `policy` (the quickstart's when `None`).
fn tenure(w: &World, policy: Option<&std::path::Path>, args: &[&str]) -> std::process::Output {
    let mut c = w.tenure();
    if let Some(p) = policy {
        c.env("TENURE_POLICY", p);
    }
    c.args(args).output().unwrap()
}

fn ok(w: &World, policy: Option<&std::path::Path>, args: &[&str]) -> String {
    let out = tenure(w, policy, args);
    assert!(out.status.success(), "tenure {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// `tenure reconcile …`, its exit code and the runs it printed as JSON.
fn reconcile_with(w: &World, policy: Option<&std::path::Path>, args: &[&str]) -> (i32, Vec<Value>) {
    let mut all = vec!["reconcile", "--output", "json"];
    all.extend(args);
    let out = tenure(w, policy, &all);
    let runs = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap_or(-1), runs)
}

fn reconcile(w: &World, args: &[&str]) -> (i32, Vec<Value>) {
    reconcile_with(w, None, args)
}

/// A run with its items (`tenure reconcile show RUN`).
fn show(w: &World, run: &Value) -> Value {
    serde_json::from_str(&w.ok(&["reconcile", "show", &run["id"].to_string()])).unwrap()
}

/// The items of a run as (situation, account, target, identity, reaction).
fn items(run: &Value) -> Vec<(String, String, String, String, String)> {
    let s = |i: &Value, k: &str| i[k].as_str().unwrap_or("").to_owned();
    run["items"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|i| (s(i, "situation"), s(i, "account"), s(i, "target"), s(i, "identity"), s(i, "reaction")))
        .collect()
}

fn has(items: &[(String, String, String, String, String)], want: (&str, &str, &str, &str, &str)) -> bool {
    items.iter().any(|i| (i.0.as_str(), i.1.as_str(), i.2.as_str(), i.3.as_str(), i.4.as_str()) == want)
}

fn findings(w: &World) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(&w.ok(&["findings", "--output", "json"])).unwrap()
}

#[test]
fn out_of_band_access_is_found_a_leaver_is_disabled_again_and_the_report_verifies() {
    let w = World::new();
    hr(&w);
    let base = w.slapd.base_dn.clone();
    let (code, runs) = reconcile(&w, &[]);
    assert_eq!(code, 0, "{runs:?}");
    for r in &runs {
        let items = items(&show(&w, r));
        assert!(items.is_empty(), "a directory tenure alone provisioned has no drift: {} {items:?}", r["system"]);
        assert!(r["counts"]["linked"].as_u64().unwrap() > 5, "{r}");
    }

    // Out of band, in each system.
    let hostile = "x*)(uid=*,ou=evil";
    let mut ldif = person_ldif(&base, "ghost", None);
    ldif += &person_ldif(&base, hostile, None);
    ldif += &person_ldif(&base, "ada-admin", Some("E1000"));
    ldif += &format!(
        "dn: cn=printers,ou=groups,{base}\nobjectClass: groupOfNames\ncn: printers\nmember: uid=E1000,ou=people,{base}\n\n"
    );
    // Nobody holds the privileged prod-admin: its group is made by hand, with a member.
    ldif += &format!(
        "dn: cn=prod-admin,ou=groups,{base}\nobjectClass: groupOfNames\ncn: prod-admin\nmember: uid=E1002,ou=people,{base}\n\n"
    );
    w.ldap_admin("ldapadd", &ldif);
    w.ldap_admin(
        "ldapmodify",
        &format!(
            "dn: cn=engineering,ou=groups,{base}\nchangetype: modify\ndelete: member\nmember: uid=E1001,ou=people,{base}\n"
        ),
    );
    w.ldap_admin("ldapdelete", &format!("uid=E1005,ou=people,{base}\n"));
    w.psql("CREATE ROLE dba_made LOGIN");
    w.psql("CREATE ROLE \"E1000\" LOGIN");
    w.psql("CREATE ROLE side_door NOLOGIN");
    w.psql("GRANT side_door TO \"E1002\"");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let user = serde_json::json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "temp-agent", "active": true });
    let resp = agent
        .post(&format!("{}/Users", w.scim.url()))
        .header("authorization", &format!("Bearer {}", w.scim.token))
        .header("content-type", "application/scim+json")
        .send(user.to_string().as_bytes())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let (code, runs) = reconcile(&w, &[]);
    assert_eq!(code, 0, "{runs:?}");
    let by_system = |s: &str| show(&w, runs.iter().find(|r| r["system"] == s).unwrap());
    let dir = items(&by_system("corp-directory"));
    for want in [
        ("unmatched", "ghost", "", "", "report"),
        ("unmatched", hostile, "", "", "report"),
        ("unlinked", "ada-admin", "", "hr:E1000", "report"),
        ("unmanaged_membership", "E1000", "printers", "hr:E1000", "report"),
        ("privileged_membership", "E1002", "prod-admin", "hr:E1002", "report"),
        ("missing_membership", "E1001", "engineering", "hr:E1001", "report"),
        ("missing", "E1005", "", "hr:E1005", "report"),
    ] {
        assert!(has(&dir, want), "{want:?} not in {dir:#?}");
    }
    assert_eq!(dir.len(), 7, "{dir:#?}");
    let db = items(&by_system("analytics-db"));
    assert!(has(&db, ("unmatched", "dba_made", "", "", "report")), "{db:#?}");
    assert!(has(&db, ("unlinked", "E1000", "", "hr:E1000", "report")), "{db:#?}");
    assert!(has(&db, ("unmanaged_membership", "E1002", "side_door", "hr:E1002", "report")), "{db:#?}");
    let app = items(&by_system("helpdesk"));
    assert_eq!(app, [("unmatched".into(), "temp-agent".into(), String::new(), String::new(), "report".into())]);
    // Each is a finding with its system and account, the hostile name verbatim.
    let open = findings(&w);
    assert!(
        open.iter()
            .any(|f| f["kind"] == "reconcile.unmatched" && f["system"] == "corp-directory" && f["account"] == hostile),
        "{open:#?}"
    );
    assert!(open.iter().any(|f| f["kind"] == "reconcile.missing" && f["identity"] == "hr:E1005"), "{open:#?}");

    // Put right by hand: the next complete run no longer sees it, and the finding resolves.
    w.ldap_admin("ldapdelete", &format!("uid=ghost,ou=people,{base}\n"));
    reconcile(&w, &["--system", "corp-directory"]);
    let f: Vec<Value> = serde_json::from_str(&w.ok(&["findings", "--all", "--output", "json"])).unwrap();
    let ghost = f.iter().find(|f| f["account"] == "ghost").unwrap();
    assert!(ghost["resolved_at"].is_string(), "{ghost}");
    assert!(f.iter().any(|f| f["account"] == hostile && f["resolved_at"].is_null()));

    // An old entry of Linus's that tenure never made (his HR id as employeeNumber), in a group.
    w.ldap_admin("ldapadd", &person_ldif(&base, "linus-old", Some("E1010")));
    w.ldap_admin(
        "ldapmodify",
        &format!("dn: cn=printers,ou=groups,{base}\nchangetype: modify\nadd: member\nmember: uid=linus-old,ou=people,{base}\n"),
    );
    // A leaver closes: the closure sweeps every system with correlation rules for such accounts.
    let left = event("hr", "e1010-left", "left", serde_json::json!({ "external_id": "E1010", "kind": "human" }));
    w.ok(&["import", "--source", "hr", w.file("left.jsonl", &left).to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let shown: Value = serde_json::from_str(&w.ok(&["identities", "show", "hr:E1010", "--output", "json"])).unwrap();
    assert_eq!(shown["state"], "closed");
    let old = w.ldapsearch("(uid=linus-old)", &["pwdAccountLockedTime"]);
    assert!(old.contains("pwdAccountLockedTime: 000001010000Z"), "the sweep disabled it: {old}");
    assert!(!w.ldapsearch("(cn=printers)", &["member"]).contains("linus-old"));
    let cert_path = w.tmp.path().join("linus.json");
    w.ok(&["closure", "show", "hr:E1010", "--out", cert_path.to_str().unwrap()]);
    let cert: Value = serde_json::from_str(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    let claims = cert["certificate"]["systems"].as_array().unwrap();
    let dir_claim = claims.iter().find(|c| c["system"] == "corp-directory").unwrap();
    assert_eq!(dir_claim["sweep"]["rules"], serde_json::json!(["employeenumber=external_id"]), "{dir_claim}");
    let swept = &dir_claim["sweep"]["accounts"][0];
    assert_eq!(
        (swept["account"].as_str(), swept["disabled"].as_bool()),
        (Some("linus-old"), Some(true)),
        "{dir_claim}"
    );
    assert_eq!(swept["revoked"], serde_json::json!(["printers"]));
    // The helpdesk is swept too (its rule: userName is the HR id); nothing else was there.
    let app = claims.iter().find(|c| c["system"] == "helpdesk").unwrap();
    assert_eq!(app["sweep"]["accounts"], serde_json::json!([]), "{app}");
    let key_path = w.tmp.path().join("ledger.pub");
    std::fs::write(&key_path, w.ok(&["ledger", "key"])).unwrap();
    w.ok(&["closure", "verify", cert_path.to_str().unwrap(), "--key", key_path.to_str().unwrap()]);
    let dn = format!("uid=E1010,ou=people,{base}");
    w.ldap_admin(
        "ldapmodify",
        &format!(
            "dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n\n\
             dn: cn=vpn,ou=groups,{base}\nchangetype: modify\nadd: member\nmember: {dn}\n"
        ),
    );
    assert!(!w.ldapsearch("(uid=E1010)", &["pwdAccountLockedTime"]).contains("pwdAccountLockedTime"));
    let (code, runs) = reconcile(&w, &["--system", "corp-directory"]);
    assert_eq!(code, 0);
    let run = show(&w, &runs[0]);
    let found = items(&run);
    assert!(has(&found, ("surviving_leaver", "E1010", "", "hr:E1010", "disable")), "{found:#?}");
    assert!(has(&found, ("surviving_leaver", "E1010", "vpn", "hr:E1010", "disable")), "{found:#?}");
    assert_eq!(run["state"], "applied");
    w.ok(&["jobs", "run"]);
    let entry = w.ldapsearch("(uid=E1010)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "disabled again: {entry}");
    assert_eq!(w.ldapsearch(&format!("(member={dn})"), &["dn"]).trim(), "", "in no group again");
    let synced: Vec<Value> = w
        .ledger_of("system.synced")
        .into_iter()
        .filter(|e| e["subject"] == "hr:E1010" && e["detail"]["system"] == "corp-directory")
        .collect();
    let last = synced.last().unwrap();
    assert!(last["detail"]["disabled"] == true && last["detail"]["revoked"] == serde_json::json!(["vpn"]), "{last}");
    let runs_in_ledger = w.ledger_of("reconcile.run");
    assert!(runs_in_ledger.iter().any(|e| e["detail"]["run"] == run["id"] && e["subject"] == "system:corp-directory"));

    // The run's signed drift report verifies offline; a byte flipped in it does not.
    let report = w.tmp.path().join("report.json");
    w.ok(&["reconcile", "show", &run["id"].to_string(), "--out", report.to_str().unwrap()]);
    let key = key_path;
    let ok = w.ok(&["reconcile", "verify", report.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert!(ok.contains("verified drift report"), "{ok}");
    let text = std::fs::read_to_string(&report).unwrap();
    let tampered = text.replacen("\"surviving_leaver\"", "\"surviving_leaveR\"", 1);
    assert_ne!(tampered, text);
    let replay = w.ok(&["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
    let bad = w.file("tampered.json", &tampered);
    let out = w.run(&["reconcile", "verify", bad.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
}

/// A copy of the quickstart bundle with `edit` applied to its manifest.
fn bundle(w: &World, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let dir = w.tmp.path().join("policy");
    copy_dir(&quickstart_policy(), &dir);
    let manifest = dir.join("tenure.toml");
    std::fs::write(&manifest, edit(std::fs::read_to_string(&manifest).unwrap())).unwrap();
    // Only `policy deploy` changes policy.
    w.ok(&["policy", "deploy", dir.to_str().unwrap()]);
    dir
}

#[test]
fn a_run_over_its_threshold_applies_nothing_until_released_and_a_cut_read_concludes_nothing() {
    let w = World::new();
    hr(&w);
    let base = w.slapd.base_dn.clone();
    let policy = bundle(&w, |m| {
        m.replace(
            "[systems.corp-directory.reconcile]\n",
            "[systems.corp-directory.reconcile]\npage_size = 4\nreactions = { unmatched = \"disable\" }\n",
        )
        .replace("max_changes = 10", "max_changes = 3")
    });
    let p = Some(policy.as_path());
    let ghosts: Vec<String> = (1..=5).map(|i| format!("ghost{i}")).collect();
    let ldif: String = ghosts.iter().map(|g| person_ldif(&base, g, None)).collect();
    w.ldap_admin("ldapadd", &ldif);

    // The dry run shows the plan and changes nothing, not even findings.
    let (code, runs) = reconcile_with(&w, p, &["--system", "corp-directory", "--dry-run"]);
    assert_eq!((code, runs[0]["state"].as_str()), (0, Some("dry_run")));
    assert_eq!(runs[0]["planned_changes"], 5);
    assert!(findings(&w).is_empty());

    let (code, runs) = reconcile_with(&w, p, &["--system", "corp-directory"]);
    assert_eq!(code, 3, "a quarantined run exits 3: {runs:?}");
    let run = show(&w, &runs[0]);
    assert_eq!(run["state"], "quarantined");
    assert!(run["reasons"][0].as_str().unwrap().starts_with("RC0001"), "{run}");
    assert_eq!(run["applied_changes"], 0);
    let counts = w.job_counts();
    assert!(counts.get("pending").is_none(), "nothing handed to a job: {counts}");
    let open = findings(&w);
    assert!(open.iter().any(|f| f["kind"] == "reconcile.quarantined"), "{open:#?}");
    assert_eq!(open.iter().filter(|f| f["kind"] == "reconcile.unmatched").count(), 5);
    let locked = |g: &str| w.ldapsearch(&format!("(uid={g})"), &["pwdAccountLockedTime"]).contains("000001010000Z");
    assert!(ghosts.iter().all(|g| !locked(g)));

    // Release two accounts: only they are disabled.
    let id = run["id"].to_string();
    let out = ok(&w, p, &["reconcile", "release", &id, "--accounts", "ghost1,ghost2"]);
    assert!(out.contains("2 of 5"), "{out}");
    ok(&w, p, &["jobs", "run"]);
    assert!(locked("ghost1") && locked("ghost2"));
    assert!(!locked("ghost3") && !locked("ghost4") && !locked("ghost5"));
    let corrected = w.ledger_of("reconcile.corrected");
    assert_eq!(corrected.len(), 2, "{corrected:#?}");
    assert!(
        corrected
            .iter()
            .all(|e| e["detail"]["read_back"]["enabled"] == false && e["detail"]["problems"] == serde_json::json!([]))
    );
    let run = show(&w, &run);
    assert_eq!((run["state"].as_str(), run["applied_changes"].as_i64()), (Some("quarantined"), Some(2)));
    // Then the rest, by class.
    ok(&w, p, &["reconcile", "release", &id, "--only", "unmatched"]);
    ok(&w, p, &["jobs", "run"]);
    assert!(ghosts.iter().all(|g| locked(g)));
    assert_eq!(show(&w, &run)["state"], "released");
    assert!(!findings(&w).iter().any(|f| f["kind"] == "reconcile.quarantined"));
    let bad = tenure(&w, p, &["reconcile", "release", &id]);
    assert_eq!(bad.status.code(), Some(5), "released already: {}", stderr(&bad));

    // The same directory behind a relay that cuts the connection part way through the read.
    let proxy = tenure_testkit::proxy::CutProxy::start(w.slapd.port).unwrap();
    let mut extra = (1..=40).map(|i| person_ldif(&base, &format!("bulk{i:02}"), None)).collect::<String>();
    extra.push('\n');
    w.ldap_admin("ldapadd", &extra);
    proxy.cut_after(4000);
    let before = w.ledger_of("reconcile.run").len();
    let out = w
        .tenure()
        .env("TENURE_POLICY", &policy)
        .env("TENURE_LDAP_URL", format!("ldap://127.0.0.1:{}", proxy.port))
        .args(["reconcile", "--system", "corp-directory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("CN0005") && stderr(&out).contains("applied nothing"), "{}", stderr(&out));
    assert_eq!(w.ledger_of("reconcile.run").len(), before, "no run was concluded");
    let failed = w.ledger_of("reconcile.failed");
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["detail"]["error"].as_str().unwrap().contains("stopped at page"), "{}", failed[0]);
    let open = findings(&w);
    assert!(!open.iter().any(|f| f["kind"] == "reconcile.missing"), "an incomplete read is never `missing`: {open:#?}");
    assert!(!open.iter().any(|f| f["account"].as_str().is_some_and(|a| a.starts_with("bulk"))), "{open:#?}");
}

#[test]
fn serve_reconciles_on_its_schedule_and_over_http_with_findings_filtered() {
    let w = World::new();
    hr(&w);
    let base = w.slapd.base_dn.clone();
    w.ldap_admin("ldapadd", &person_ldif(&base, "ghost", None));
    // Machine identities; then Alan (svc-billing's owner) leaves after his manager Ada did, so
    // nobody takes svc-billing over: tenure's own checks report it.
    let registry = repo().join("examples/quickstart/feeds/service-registry.jsonl");
    w.ok(&["import", "--source", "service-registry", registry.to_str().unwrap()]);
    let leavers = ["E1000", "E1002"]
        .iter()
        .map(|e| event("hr", &format!("{e}-left"), "left", serde_json::json!({ "external_id": e, "kind": "human" })))
        .collect::<Vec<_>>()
        .join("\n");
    w.ok(&["import", "--source", "hr", w.file("leavers.jsonl", &leavers).to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    // A password set by hand on a role tenure made: a login the broker did not issue.
    w.psql("ALTER ROLE \"E1006\" PASSWORD 'set-by-hand'");
    let s = Server::start(&w, &[]);
    // The quickstart reconciles the directory every hour: the first run starts with the server.
    let mut scheduled: Vec<Value> = Vec::new();
    for _ in 0..100 {
        let (status, body) = s.get("/v1/reconcile/runs?system=corp-directory");
        assert_eq!(status, 200, "{body}");
        scheduled = serde_json::from_str(&body).unwrap();
        if !scheduled.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(scheduled.len(), 1, "the scheduled run: {scheduled:?}");
    assert_eq!(scheduled[0]["state"], "applied");
    let (status, body) = s.post("/v1/reconcile", r#"{"system": "analytics-db", "dry_run": true}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    let runs: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!((runs.len(), runs[0]["state"].as_str()), (1, Some("dry_run")));
    let (status, body) = s.get(&format!("/v1/reconcile/runs/{}", scheduled[0]["id"]));
    assert_eq!(status, 200);
    let run: Value = serde_json::from_str(&body).unwrap();
    assert!(items(&run).iter().any(|i| i.0 == "unmatched" && i.1 == "ghost"), "{run}");
    let (status, body) = s.post("/v1/reconcile", r#"{"system": "tenure"}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    let own: Vec<Value> = serde_json::from_str(&body).unwrap();
    let own = items(&own[0]);
    assert!(
        has(&own, ("nhi_ownerless", "service-registry:svc-billing", "", "service-registry:svc-billing", "report")),
        "{own:#?}"
    );
    let (_, body) = s.post("/v1/reconcile", r#"{"system": "analytics-db"}"#).unwrap();
    let db: Vec<Value> = serde_json::from_str(&body).unwrap();
    let db = items(&db[0]);
    assert!(has(&db, ("unissued_login", "E1006", "", "hr:E1006", "report")), "{db:#?}");
    let (status, body) = s.post("/v1/reconcile", r#"{"system": "nowhere"}"#).unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = s.post("/v1/reconcile", r#"{"sytem": "corp-directory"}"#).unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("sytem"), "{body}");

    let (_, body) = s.get("/v1/findings?system=corp-directory&class=unmatched");
    let found: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!((found[0]["account"].as_str(), found[0]["kind"].as_str()), (Some("ghost"), Some("reconcile.unmatched")));
    let (_, body) = s.get("/v1/findings?system=helpdesk");
    assert_eq!(body, "[]");
    let (_, body) = s.get("/v1/findings?state=resolved");
    assert_eq!(body, "[]");
    let (status, body) = s.get("/v1/findings?state=closed");
    assert_eq!(status, 422, "{body}");
    // Keyset pages of one finding each add up to the whole list.
    let (_, body) = s.get("/v1/findings?state=all");
    let whole: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(whole.len() >= 2, "{body}");
    let mut paged: Vec<Value> = Vec::new();
    loop {
        let after = paged.last().map(|f| format!("&after={}", f["id"])).unwrap_or_default();
        let (status, body) = s.get(&format!("/v1/findings?state=all&limit=1{after}"));
        assert_eq!(status, 200, "{body}");
        let page: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert!(page.len() <= 1);
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, whole);
    assert_eq!(s.get("/v1/findings?limit=0").0, 422);
    assert_eq!(s.get("/v1/findings?after=x").0, 422);
    let (_, metrics) = s.get("/metrics");
    assert!(metrics.contains("tenure_drift_open{system=\"corp-directory\",situation=\"unmatched\"} 1"), "{metrics}");
    // Each run over HTTP was timed, by system and how it ended.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tenure_reconcile_duration_seconds_count{system=\"corp-directory\",state=\"")),
        "{metrics}"
    );
}

#[test]
fn an_unlinked_role_is_adopted_and_an_orphan_disabled_then_deleted_after_its_grace() {
    let w = World::new();
    hr(&w);
    let policy = bundle(&w, |m| {
        m.replace(
            "[[systems.analytics-db.correlate]]",
            "[systems.analytics-db.reconcile]\ndelete_after = \"1s\"\nreactions = { unlinked = \"adopt\", unmatched = \"delete\" }\n\n[[systems.analytics-db.correlate]]",
        )
    });
    let p = Some(policy.as_path());
    // Ada (people) has no database account from tenure; a DBA made one named after her HR id.
    w.psql("CREATE ROLE \"E1000\" LOGIN");
    w.psql("CREATE ROLE orphan_x LOGIN");
    let (code, runs) = reconcile_with(&w, p, &["--system", "analytics-db"]);
    assert_eq!(code, 0, "{runs:?}");
    let found = items(&show(&w, &runs[0]));
    assert!(has(&found, ("unlinked", "E1000", "", "hr:E1000", "adopt")), "{found:#?}");
    assert!(has(&found, ("unmatched", "orphan_x", "", "", "delete")), "{found:#?}");
    ok(&w, p, &["jobs", "run"]);
    assert_eq!(
        w.psql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'E1000'"),
        "tenure: hr:E1000 (adopted)"
    );
    assert_eq!(w.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orphan_x'"), "f", "disabled during its grace");
    let ada: Value = serde_json::from_str(&w.ok(&["identities", "show", "hr:E1000", "--output", "json"])).unwrap();
    assert!(
        ada["accounts"].as_array().unwrap().iter().any(|a| a["system"] == "analytics-db" && a["account"] == "E1000"),
        "{ada}"
    );
    // Adopted, it follows policy: Ada holds nothing in the database, so her role is disabled.
    assert_eq!(w.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'E1000'"), "f");
    let corrected = w.ledger_of("reconcile.corrected");
    assert!(corrected.iter().any(|e| e["detail"]["adopted"] == "hr:E1000"), "{corrected:#?}");
    assert!(corrected.iter().any(|e| e["detail"]["account"] == "orphan_x" && e["detail"]["delete_at"].is_string()));
    std::thread::sleep(std::time::Duration::from_millis(1200));
    ok(&w, p, &["jobs", "run"]);
    assert_eq!(w.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'orphan_x'"), "0", "deleted after its grace");
    assert!(
        w.ledger_of("reconcile.corrected")
            .iter()
            .any(|e| e["detail"]["account"] == "orphan_x" && e["detail"]["deleted"] == true)
    );
    let (_, runs) = reconcile_with(&w, p, &["--system", "analytics-db"]);
    assert_eq!(items(&show(&w, &runs[0])), [], "nothing left to reconcile");
    // The ledger alone still rebuilds the state, reconciliation's changes included.
    let replay = ok(&w, p, &["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");
}

const UNLINKED_REVIEW: &str = r#"
[reviews.unlinked-accounts]
description = "An account tenure did not make, confirmed by the system's owner"
trigger = "unlinked"
duration_days = 7
[[reviews.unlinked-accounts.stage]]
reviewers = ["system-owner"]
fallback = ["hr:E1011"]
"#;

#[test]
fn an_unlinked_account_goes_to_review_keep_adopts_it_revoke_disables_it_verified_and_reported() {
    let w = World::new();
    hr(&w);
    let policy = bundle(&w, |m| {
        m.replace(
            "[[systems.analytics-db.correlate]]",
            "[systems.analytics-db.reconcile]\nreactions = { unlinked = \"review\" }\n\n[[systems.analytics-db.correlate]]",
        ) + UNLINKED_REVIEW
    });
    let p = Some(policy.as_path());
    // A DBA made logins named after Ada's and Edsger's HR ids; tenure made neither.
    w.psql("CREATE ROLE \"E1000\" LOGIN");
    w.psql("CREATE ROLE \"E1004\" LOGIN");
    let (code, runs) = reconcile_with(&w, p, &["--system", "analytics-db"]);
    assert_eq!(code, 0, "{runs:?}");
    let run = show(&w, &runs[0]);
    let found = items(&run);
    assert!(has(&found, ("unlinked", "E1000", "", "hr:E1000", "review")), "{found:#?}");
    assert!(has(&found, ("unlinked", "E1004", "", "hr:E1004", "review")), "{found:#?}");
    assert_eq!(run["planned_changes"], 0, "a review changes nothing by itself: {run}");
    let opened = run["reviews_opened"].as_array().unwrap_or_else(|| panic!("{run}")).clone();
    assert_eq!(opened.len(), 2, "{run}");
    // Nothing was touched: both still log in.
    assert_eq!(w.psql("SELECT count(*) FROM pg_roles WHERE rolname IN ('E1000', 'E1004') AND rolcanlogin"), "2");

    // Each is a micro-review of one account, for the database's owner (Alan).
    let review = |id: &Value| -> Value {
        serde_json::from_str(&ok(&w, p, &["--output", "json", "reviews", "show", &id.to_string()])).unwrap()
    };
    let item_of = |id: &Value| review(id)["items"][0].clone();
    let (ada, edsger) = {
        let a = item_of(&opened[0]);
        if a["entitlement"] == "E1000" {
            (opened[0].clone(), opened[1].clone())
        } else {
            (opened[1].clone(), opened[0].clone())
        }
    };
    let ada_item = item_of(&ada);
    assert_eq!(
        (ada_item["identity"].as_str(), ada_item["entitlement"].as_str(), ada_item["system"].as_str()),
        (Some("hr:E1000"), Some("E1000"), Some("analytics-db")),
        "{ada_item}"
    );
    assert_eq!(ada_item["origin"], "unlinked");
    assert_eq!(ada_item["reviewers"], serde_json::json!(["hr:E1002"]), "{ada_item}");
    assert_eq!(ada_item["recommendation"], "keep", "{ada_item}");
    assert_eq!(ada_item["evidence"]["run"], runs[0]["id"], "{ada_item}");
    let edsger_item = item_of(&edsger);
    // Nobody else decides it, and a revoke says why.
    let decide = |campaign: &Value, item: &Value, verdict: &str, who: &str, why: &str| {
        tenure(
            &w,
            p,
            &[
                "reviews",
                "decide",
                &campaign.to_string(),
                &item["id"].to_string(),
                verdict,
                "--as",
                who,
                "--reason",
                why,
            ],
        )
    };
    let out = decide(&edsger, &edsger_item, "revoke", "hr:E1005", "not hers");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = decide(&edsger, &edsger_item, "revoke", "hr:E1002", "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(decide(&ada, &ada_item, "keep", "hr:E1002", "her reporting login").status.success());
    let out = decide(&edsger, &edsger_item, "revoke", "hr:E1002", "people has no database access");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(item_of(&edsger)["status"], "revoking");

    // The drift jobs carry the decisions out and read them back.
    ok(&w, p, &["jobs", "run"]);
    assert_eq!(w.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'E1004'"), "f", "revoked: disabled");
    assert_eq!(
        w.psql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'E1000'"),
        "tenure: hr:E1000 (adopted)",
        "kept: adopted as Ada's"
    );
    assert_eq!(item_of(&edsger)["status"], "revoked (verified)");
    // The clock closes both; Edsger's report verifies offline, its revoke resting on the
    // drift job's read-back.
    ok(&w, p, &["jobs", "run"]);
    assert_eq!(review(&edsger)["campaign"]["state"], "closed", "{}", review(&edsger));
    assert_eq!(review(&ada)["campaign"]["state"], "closed", "{}", review(&ada));
    let report = w.tmp.path().join("edsger.json");
    ok(&w, p, &["reviews", "report", &edsger.to_string(), "--out", report.to_str().unwrap()]);
    let key = w.file("ledger.pub", &w.ok(&["ledger", "key"]));
    let verified: Value = serde_json::from_str(&ok(
        &w,
        p,
        &["--output", "json", "reviews", "verify", report.to_str().unwrap(), "--key", key.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["revoked"], serde_json::json!(["hr:E1004 analytics-db:E1004"]), "{verified}");
    // A report changed after signing does not verify.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let v = doc["report"]["items"][0]["verification"].as_i64().unwrap();
    doc["report"]["items"][0]["verification"] = (v - 1).into();
    let forged = w.file("forged.json", &doc.to_string());
    let out = tenure(&w, p, &["reviews", "verify", forged.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // Reviewed once: the next run opens no second review of either.
    let (_, again) = reconcile_with(&w, p, &["--system", "analytics-db"]);
    let again = show(&w, &again[0]);
    assert_eq!(again["reviews_opened"], serde_json::json!([]), "{again}");
    assert!(!has(&items(&again), ("unlinked", "E1000", "", "hr:E1000", "review")), "adopted, Ada's is linked now");
}
