//! Verified closure across LDAP, PostgreSQL and a SCIM application, and the closure
//! certificate: every claim checked here with clients tenure did not write (`ldapsearch`, a
//! `psql` login, a SCIM GET over plain HTTP); an unreachable system holds the certificate back
//! until it returns, with nobody acting.

use crate::support::*;

fn leave_line(ext: &str) -> String {
    event("hr", &format!("left-{ext}"), "left", serde_json::json!({ "external_id": ext, "kind": "human" }))
}

/// `psql` login as `role` (no password; the cluster trusts loopback, so only NOLOGIN refuses).
fn psql_login(w: &World, role: &str) -> (bool, String) {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &w.pg.port.to_string(), "-U", role, "-d", "postgres", "-c", "SELECT 1"])
        .output()
        .unwrap();
    (out.status.success(), stderr(&out))
}

fn scim_get(w: &World, path: &str, filter: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent
        .get(&format!("{}{path}", w.scim.url()))
        .header("authorization", &format!("Bearer {}", w.scim.token))
        .query("filter", filter)
        .call()
        .unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// The quickstart bundle (copied into the world) plus a system `NAME` reached through the exec
/// connector running `command` (a script made executable here), with `settings` (TOML lines)
/// and one entitlement `NAME/ROLE` granted to humans matching `when`.
fn quickstart_with_exec(
    w: &World,
    name: &str,
    command: &std::path::Path,
    settings: &str,
    role: &str,
    when: &str,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(command, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bundle = w.tmp.path().join("policy");
    copy_dir(&quickstart_policy(), &bundle);
    let manifest = bundle.join("tenure.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(&format!(
        "\n[systems.{name}]\ntype = \"exec\"\ncommand = {:?}\n{settings}\n[entitlements.\"{name}/{role}\"]\n",
        command.display().to_string()
    ));
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(
        bundle.join(format!("templates/{name}.toml")),
        format!("[[template]]\nname = \"{name}\"\nwhen = {when}\ngrant = [\"{name}/{role}\"]\n"),
    )
    .unwrap();
    // The quickstart's cases list exactly the quickstart's grants; this bundle grants more.
    std::fs::remove_dir_all(bundle.join("tests")).unwrap();
    w.ok(&["policy", "deploy", bundle.to_str().unwrap()]);
    bundle
}

fn key_file(w: &World) -> std::path::PathBuf {
    let key = w.ok(&["ledger", "key"]);
    w.file("ledger.pub", &key)
}

#[test]
fn a_leaver_closes_in_ldap_postgres_and_scim_and_every_claim_of_the_certificate_holds() {
    let w = World::new();
    hr(&w);
    // Before: Linus (sales) is in all three systems.
    assert!(psql_login(&w, "E1010").0);
    let user = scim_get(&w, "/Users", r#"userName eq "E1010""#);
    assert_eq!(user["Resources"][0]["active"], true);

    let f = w.file("left.jsonl", &leave_line("E1010"));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let cert_path = w.tmp.path().join("E1010.closure.json");
    w.ok(&["closure", "show", "hr:E1010", "--out", cert_path.to_str().unwrap()]);
    let out = w.ok(&["closure", "verify", cert_path.to_str().unwrap(), "--key", key_file(&w).to_str().unwrap()]);
    assert!(out.contains("closure of hr:E1010"), "{out}");
    let cert: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    let systems: std::collections::BTreeMap<String, serde_json::Value> = cert["certificate"]["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["system"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    assert_eq!(systems.keys().map(String::as_str).collect::<Vec<_>>(), ["analytics-db", "corp-directory", "helpdesk"]);

    // Each claim, checked independently.
    let ldap = &systems["corp-directory"];
    assert_eq!(ldap["done"]["disabled"], true);
    assert_eq!(ldap["read_back"]["enabled"], false);
    let entry = w.ldapsearch("(uid=E1010)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    assert_eq!(w.ldapsearch("(member=uid=E1010,ou=people,dc=example,dc=com)", &["cn"]), "");

    let pg = &systems["analytics-db"];
    assert_eq!(pg["done"]["revoked"], serde_json::json!(["reporting"]));
    assert_eq!(pg["probe"]["result"], "refused");
    let (ok, err) = psql_login(&w, "E1010");
    assert!(!ok && err.contains("not permitted to log in"), "{err}");

    let app = &systems["helpdesk"];
    assert_eq!(app["read_back"]["enabled"], false);
    let user = scim_get(&w, "/Users", r#"userName eq "E1010""#);
    assert_eq!(user["Resources"][0]["active"], false);
    let id = user["Resources"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(scim_get(&w, "/Groups", &format!(r#"members.value eq "{id}""#))["totalResults"], 0);

    // An altered certificate does not verify, and says why.
    let forged = serde_json::to_string(&cert).unwrap().replace(r#""enabled":false"#, r#""enabled":true"#);
    let forged_path = w.file("forged.json", &forged);
    let out = w.run(&["closure", "verify", forged_path.to_str().unwrap(), "--key", key_file(&w).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("INVALID: signature"), "{}", stdout(&out));
}

#[test]
fn with_postgres_down_no_certificate_is_issued_and_closure_completes_when_it_returns() {
    let mut w = World::new();
    hr(&w);
    let s = Server::start(&w, &["--job-lease-secs", "2"]);
    w.pg.stop();
    assert_eq!(s.post("/v1/events", &format!("[{}]", leave_line("E1010"))).unwrap().0, 200);
    // LDAP and the helpdesk close; PostgreSQL cannot: the identity stays leaving, the pending
    // step is visible, and there is no certificate.
    let mut pending = String::new();
    for _ in 0..200 {
        let out = w.run(&["closure", "show", "hr:E1010"]);
        assert_eq!(out.status.code(), Some(5), "a certificate was issued while PostgreSQL was down");
        pending = stderr(&out);
        if pending.contains("CN0001") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(pending.contains("is leaving, not closed"), "{pending}");
    assert!(pending.contains("sync analytics-db") && pending.contains("CN0001"), "{pending}");
    let jobs = serde_json::from_str::<serde_json::Value>(&s.get("/v1/jobs").1).unwrap();
    assert!(jobs["counts"]["pending"].as_i64().unwrap() >= 1, "{jobs}");
    let (status, metrics) = s.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("tenure_identities{state=\"leaving\"} 1"), "{metrics}");
    let identity = serde_json::from_str::<serde_json::Value>(&s.get("/v1/identities/hr:E1010").1).unwrap();
    assert_eq!(identity["state"], "leaving");

    // PostgreSQL returns; nobody does anything; the retry closes it.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(w.pg.start_again()).unwrap();
    let mut state = String::new();
    for _ in 0..900 {
        let identity = serde_json::from_str::<serde_json::Value>(&s.get("/v1/identities/hr:E1010").1).unwrap();
        state = identity["state"].as_str().unwrap().to_owned();
        if state == "closed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state, "closed");
    drop(s);
    let cert = w.tmp.path().join("cert.json");
    w.ok(&["closure", "show", "hr:E1010", "--out", cert.to_str().unwrap()]);
    let out = w.ok(&["closure", "verify", cert.to_str().unwrap(), "--key", key_file(&w).to_str().unwrap()]);
    assert!(out.contains("analytics-db E1010"), "{out}");
    assert!(!psql_login(&w, "E1010").0);
}

#[test]
fn a_leavers_nhis_go_to_the_successor_or_are_suspended_at_the_deadline() {
    let w = World::new();
    hr(&w);
    let registry = repo().join("examples/quickstart/feeds/service-registry.jsonl");
    w.ok(&["import", "--source", "service-registry", registry.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let c = Clocked::new(&w);
    let (clock, engine) = (&c.clock, &c.engine);
    let run = || c.run();
    let leave = |ext: &str| c.ingest(&leave_line(ext));
    let show = |r: &str| engine.identity_detail(r).unwrap().identity;

    // Alan (E1002) owns svc-billing; his manager Ada (E1000) is active: she takes it at once.
    leave("E1002");
    assert_eq!(show("service-registry:svc-billing").owner.as_deref(), Some("hr:E1000"));
    assert_eq!(show("service-registry:svc-billing").state, "active");
    // John (E1012) owns wl-deployer and agent-triage; his manager Grace (E1001) left first:
    // nobody succeeds, so both wait for a new owner until the deadline.
    leave("E1001");
    let key = tenure_engine::creds::CredentialRequest {
        identity: "service-registry:wl-deployer".into(),
        kind: tenure_model::CredentialKind::JwtSvid,
        ttl: Some(time::Duration::minutes(5)),
        audience: vec!["deploys".into()],
        csr: None,
        system: None,
        purpose: None,
        replaces: None,
    };
    let operator = tenure_model::Principal::operator("test");
    let (issued, _) = engine.issue_credential(&key, &operator).unwrap();
    leave("E1012");
    // The departed owner may have seen its secrets: revoked at once, not at the deadline, and
    // nothing new is issued until a new owner takes it.
    let filter = tenure_engine::lists::CredentialFilter {
        identity: Some("service-registry:wl-deployer".into()),
        ..Default::default()
    };
    let (listed, _) = engine.credentials_page(&filter, None, 100).unwrap();
    let old = listed.iter().find(|c| c.id == issued.credential.id).unwrap();
    assert_eq!((old.state.as_str(), old.revoke_reason.as_deref()), ("revoked", Some("owner-transfer")), "{old:?}");
    assert!(engine.issue_credential(&key, &operator).is_err(), "issued to an NHI that waits for an owner");
    let deployer = show("service-registry:wl-deployer");
    assert_eq!(deployer.owner_deadline.as_deref(), Some("2026-12-04T09:00:00Z"));
    let findings = engine.list_findings(false).unwrap();
    assert!(findings.iter().any(|f| f.identity == "service-registry:wl-deployer" && f.kind == "owner_needed"));

    // A day before the deadline nothing happens; after it, both are suspended by the clock,
    // their directory accounts locked, and runtime authorization denies them.
    clock.advance(time::Duration::days(13));
    assert!(engine.tick().unwrap().suspended.is_empty());
    clock.advance(time::Duration::days(2));
    let expired = engine.tick().unwrap();
    assert_eq!(expired.suspended, ["service-registry:wl-deployer", "service-registry:agent-triage"]);
    run();
    assert_eq!(show("service-registry:wl-deployer").state, "suspended");
    // A clock-driven suspension is in the ledger: replay agrees with the database.
    assert_eq!(engine.replay().unwrap(), vec![]);
    let entry = w.ldapsearch("(uid=wl-deployer)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    let q = tenure_engine::authz::Question {
        principal: "service-registry:wl-deployer".into(),
        action: "deploy".into(),
        resource: tenure_engine::authz::ResourceSpec::resource("payments-api"),
        context: serde_json::json!({ "intent": "release", "environment": "prod" }),
    };
    assert_eq!(engine.decide(&q).unwrap().policies, ["tenure:lifecycle"]);

    // Someone takes it over: it resumes, and its account is enabled again.
    let take = event(
        "service-registry",
        "sr-take",
        "owner_changed",
        nhi("wl-deployer", "workload", Some("hr:E1005"), "2027-09-30T00:00:00Z"),
    );
    c.ingest(&take);
    run();
    let d = show("service-registry:wl-deployer");
    assert_eq!((d.state.as_str(), d.owner.as_deref(), d.owner_deadline.as_deref()), ("active", Some("hr:E1005"), None));
    let open = engine.list_findings(false).unwrap();
    assert!(!open.iter().any(|f| f.identity == "service-registry:wl-deployer"), "the owner_needed finding is resolved");
    assert!(open.iter().any(|f| f.identity == "service-registry:agent-triage" && f.kind == "owner_needed"));
    assert!(!w.ldapsearch("(uid=wl-deployer)", &["pwdAccountLockedTime"]).contains("pwdAccountLockedTime"));
    assert!(engine.decide(&q).unwrap().is_allow());
    assert_eq!(engine.replay().unwrap(), vec![]);
    // The same owner named again is a no-op, not a rejected batch.
    let again = event(
        "service-registry",
        "sr-take-again",
        "owner_changed",
        nhi("wl-deployer", "workload", Some("hr:E1005"), "2027-09-30T00:00:00Z"),
    );
    c.ingest(&again);
    assert_eq!(show("service-registry:wl-deployer").owner.as_deref(), Some("hr:E1005"));
    assert!(engine.issue_credential(&key, &operator).is_ok(), "the new owner's NHI gets fresh credentials");
}

#[test]
fn after_the_grace_period_a_leavers_accounts_are_deleted_and_verified_gone() {
    let w = World::new();
    hr(&w);
    let c = Clocked::new(&w);
    let (clock, engine) = (&c.clock, &c.engine);
    let run = || c.run();
    c.ingest(&leave_line("E1010"));
    run();
    assert_eq!(engine.identity_detail("hr:E1010").unwrap().identity.state, "closed");
    // Disabled, still there, through the grace period (30 days in the quickstart).
    clock.advance(time::Duration::days(29));
    assert!(engine.tick().unwrap().deleting.is_empty());
    assert!(w.ldapsearch("(uid=E1010)", &["uid"]).contains("uid: E1010"));
    clock.advance(time::Duration::days(2));
    assert_eq!(engine.tick().unwrap().deleting, ["hr:E1010"]);
    run();
    let d = engine.identity_detail("hr:E1010").unwrap();
    assert!(d.accounts.iter().all(|a| a.state == "delete_verified"), "{:?}", d.accounts);
    assert_eq!(d.accounts.len(), 3);
    assert_eq!(w.ldapsearch("(uid=E1010)", &["uid"]), "");
    let (ok, err) = psql_login(&w, "E1010");
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert_eq!(scim_get(&w, "/Users", r#"userName eq "E1010""#)["totalResults"], 0);
    // Nothing more is due, and the certificate still stands.
    assert!(engine.tick().unwrap().deleting.is_empty());
    let signer = tenure_ledger::Signer::from_seed("test/ledger", &[1; 32]);
    let cert = engine.closure_certificate("hr:E1010", &signer).unwrap();
    assert!(tenure_ledger::closure::verify(&cert, &signer.verifier()).is_ok());
}

#[test]
fn a_systems_concurrency_limit_holds_and_a_shadow_path_is_provisioned_through_exec() {
    let w = World::new();
    // The quickstart plus a backup console reached through the exec connector, at most two jobs
    // at a time; a wrapper records how many of its invocations overlap.
    let console = repo().join("examples/shadow/backup-console.py").canonicalize().unwrap();
    let state = w.tmp.path().join("console.json");
    let counter = w.tmp.path().join("overlap");
    let wrapper = w.file(
        "console-wrapper.py",
        &format!(
            r#"#!/usr/bin/env python3
import fcntl, os, subprocess, sys, time
counter = {counter:?}
def bump(delta):
    with open(counter + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            now, peak = map(int, open(counter).read().split())
        except Exception:
            now, peak = 0, 0
        now += delta
        open(counter, "w").write(f"{{now}} {{max(peak, now)}}")
bump(1)
time.sleep(0.05)
env = dict(os.environ, BACKUP_CONSOLE_STATE={state:?})
r = subprocess.run([sys.executable, {console:?}] + sys.argv[1:], stdin=sys.stdin, env=env)
bump(-1)
sys.exit(r.returncode)
"#,
            counter = counter.display().to_string(),
            state = state.display().to_string(),
            console = console.display().to_string()
        ),
    );
    let bundle = quickstart_with_exec(
        &w,
        "backup-console",
        &wrapper,
        "max_concurrency = 2",
        "restore-operators",
        r#"{ kind = "human", attributes = { department = "engineering" } }"#,
    );
    let lines: Vec<String> = (0..12)
        .map(|i| event("hr", &format!("b{i}"), "joined", human(&format!("B{i}"), "Someone", "engineering")))
        .collect();
    let f = w.file("engineers.jsonl", &lines.join("\n"));
    let policy = bundle.to_str().unwrap();
    w.ok(&["--policy", policy, "import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["--policy", policy, "jobs", "run"]);
    // Every engineer is in the console (its own state file says so), and never more than two
    // of tenure's jobs were in it at once.
    let console_state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(console_state["users"].as_object().unwrap().len(), 12);
    assert!(console_state["users"]["B3"]["roles"].as_array().unwrap().contains(&"restore-operators".into()));
    let peak: i64 = std::fs::read_to_string(&counter).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(peak <= 2, "{peak} jobs in the console at once");
    assert_eq!(peak, 2, "the limit should still allow two at once");
    let ids = w.identities();
    assert_eq!(ids.as_array().unwrap().iter().filter(|i| i["state"] == "active").count(), 12);
}

#[test]
fn a_leaver_whose_account_still_lets_them_in_is_never_closed() {
    let w = World::new();
    // A shadow system that reports every account disabled but still lets its holder log in.
    let console = repo().join("examples/shadow/backup-console.py").canonicalize().unwrap();
    let state = w.tmp.path().join("console.json");
    let liar = w.file(
        "liar.py",
        &format!(
            r#"#!/usr/bin/env python3
import json, os, subprocess, sys
if sys.argv[1] == "probe":
    sys.stdin.read()
    print(json.dumps({{"ok": True, "probe": "allowed", "detail": "the session cookie still works"}}))
    sys.exit(0)
env = dict(os.environ, BACKUP_CONSOLE_STATE={state:?})
sys.exit(subprocess.run([sys.executable, {console:?}] + sys.argv[1:], stdin=sys.stdin, env=env).returncode)
"#,
            state = state.display().to_string(),
            console = console.display().to_string()
        ),
    );
    let bundle = quickstart_with_exec(&w, "console", &liar, "", "operators", r#"{ kind = "human" }"#);
    let policy = bundle.to_str().unwrap();
    let f = w.file("one.jsonl", &event("hr", "j1", "joined", human("E9", "Eve", "engineering")));
    w.ok(&["--policy", policy, "import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["--policy", policy, "jobs", "run"]);
    let f = w.file("left.jsonl", &leave_line("E9"));
    w.ok(&["--policy", policy, "import", "--source", "hr", f.to_str().unwrap()]);
    let (out, _) = w.fails(&["--policy", policy, "jobs", "run"]);
    assert!(out.contains("failed and will be retried"), "{out}");
    let d: serde_json::Value =
        serde_json::from_str(&w.ok(&["identities", "show", "hr:E9", "--output", "json"])).unwrap();
    assert_eq!(d["state"], "leaving", "closed although the probe still gets in");
    let console_account = d["accounts"].as_array().unwrap().iter().find(|a| a["system"] == "console").unwrap();
    assert_eq!(console_account["state"], "disabling");
    let out = w.run(&["--policy", policy, "closure", "show", "hr:E9"]);
    assert_eq!(out.status.code(), Some(5), "no certificate while an account is open");
    assert!(stderr(&out).contains("probe: `E9` can still be used"), "{}", stderr(&out));
}

#[test]
fn a_leaver_whose_system_hangs_past_the_job_lease_and_fails_closes_once_it_recovers() {
    // An exec system whose `disable_account` hangs two and a half times the job lease and
    // then fails, while a flag file exists. Before the fix a second worker claimed the job when
    // the lease ran out, both attempts failed, and the second failure found the row the first
    // had put back to pending and marked the job done: the leaver stayed `leaving` for ever.
    let w = World::new();
    w.operator_token();
    let console = repo().join("examples/shadow/backup-console.py").canonicalize().unwrap();
    let state = w.tmp.path().join("console.json");
    let broken = w.tmp.path().join("broken");
    let attempts = w.tmp.path().join("attempts.log");
    let flaky = w.file(
        "flaky.py",
        &format!(
            r#"#!/usr/bin/env python3
import json, os, subprocess, sys, time
if sys.argv[1] == "disable_account" and os.path.exists({broken:?}):
    sys.stdin.read()
    with open({attempts:?}, "a") as f:
        f.write("start %f\n" % time.time())
    time.sleep(5)
    with open({attempts:?}, "a") as f:
        f.write("end %f\n" % time.time())
    print(json.dumps({{"ok": False, "error": "console is down"}}))
    sys.exit(1)
env = dict(os.environ, BACKUP_CONSOLE_STATE={state:?})
sys.exit(subprocess.run([sys.executable, {console:?}] + sys.argv[1:], stdin=sys.stdin, env=env).returncode)
"#,
            broken = broken.display().to_string(),
            attempts = attempts.display().to_string(),
            state = state.display().to_string(),
            console = console.display().to_string()
        ),
    );
    let bundle = quickstart_with_exec(&w, "console", &flaky, "timeout_secs = 20", "operators", r#"{ kind = "human" }"#);
    let policy = bundle.to_str().unwrap();
    let f = w.file("one.jsonl", &event("hr", "j1", "joined", human("E9", "Eve", "engineering")));
    w.ok(&["--policy", policy, "import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["--policy", policy, "jobs", "run"]);
    std::fs::write(&broken, "").unwrap();
    let _server = Server::start(&w, &["--policy", policy, "--job-lease-secs", "2", "--workers", "4"]);
    let f = w.file("left.jsonl", &leave_line("E9"));
    w.ok(&["--policy", policy, "import", "--source", "hr", f.to_str().unwrap()]);
    let state_of = || -> String {
        let d: serde_json::Value =
            serde_json::from_str(&w.ok(&["identities", "show", "hr:E9", "--output", "json"])).unwrap();
        d["state"].as_str().unwrap().to_owned()
    };
    // Two failed attempts while the console is down; the leaver stays `leaving`.
    let started = |log: &str| log.lines().filter(|l| l.starts_with("start")).count();
    for _ in 0..300 {
        if started(&std::fs::read_to_string(&attempts).unwrap_or_default()) >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&attempts).unwrap_or_default();
    assert!(started(&log) >= 2, "the console was not retried: {log}");
    assert_eq!(state_of(), "leaving");
    // The lease was held while each attempt ran: no two attempts overlapped.
    let times: Vec<f64> = log.lines().map(|l| l.split(' ').nth(1).unwrap().parse().unwrap()).collect();
    let kinds: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for (i, k) in kinds.iter().enumerate() {
        let expected = if i % 2 == 0 { "start" } else { "end" };
        assert_eq!(*k, expected, "attempts overlapped (a second worker took a leased job):\n{log}");
        if i > 0 {
            assert!(times[i] >= times[i - 1]);
        }
    }
    // The console comes back: the leaver closes with nobody acting.
    std::fs::remove_file(&broken).unwrap();
    let mut closed = false;
    for _ in 0..600 {
        if state_of() == "closed" {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(closed, "the leaver did not close after the console recovered: {}", w.ok(&["jobs", "status"]));
    let status = w.ok(&["jobs", "status"]);
    assert!(!status.contains("dead"), "{status}");
}

#[test]
fn joiners_named_like_the_connection_role_or_an_unmarked_account_take_nothing_over() {
    let w = World::new();
    // Accounts tenure did not make: a PostgreSQL login role and a directory entry.
    w.psql("CREATE ROLE legacy LOGIN");
    let ldif = format!(
        "dn: uid=legacy,ou=people,{base}\nobjectClass: inetOrgPerson\nuid: legacy\ncn: Legacy\nsn: Legacy\n",
        base = w.slapd.base_dn
    );
    w.ldap_admin("ldapadd", &ldif);
    let f = w.file(
        "joiners.jsonl",
        &[
            event("hr", "j1", "joined", human("postgres", "Not The Superuser", "sales")),
            event("hr", "j2", "joined", human("legacy", "Someone Else", "sales")),
            event("hr", "j3", "joined", human("E5", "Plain", "sales")),
        ]
        .join("\n"),
    );
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    let (_, err) = w.fails(&["jobs", "run"]);
    assert!(
        err.contains("dead job") && err.contains("account `postgres`") && err.contains("account `legacy`"),
        "{err}"
    );
    let state = |r: &str| -> String {
        let d: serde_json::Value = serde_json::from_str(&w.ok(&["identities", "show", r, "--output", "json"])).unwrap();
        d["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state("hr:E5"), "active");
    assert_eq!(state("hr:postgres"), "pending");
    assert_eq!(state("hr:legacy"), "pending");
    // Each refusal is a finding a person can act on, and the job is not retried in a loop.
    let findings: serde_json::Value = serde_json::from_str(&w.ok(&["findings", "--output", "json"])).unwrap();
    let refused: Vec<(String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "account_not_managed")
        .map(|f| (f["identity"].as_str().unwrap().to_owned(), f["entitlement"].as_str().unwrap().to_owned()))
        .collect();
    assert!(refused.contains(&("hr:postgres".into(), "analytics-db".into())), "{findings}");
    assert!(refused.contains(&("hr:legacy".into(), "analytics-db".into())), "{findings}");
    assert!(refused.contains(&("hr:legacy".into(), "corp-directory".into())), "{findings}");
    // Untouched: no membership, no comment, still able to log in.
    let memberships = "SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname IN ('postgres', 'legacy')";
    assert_eq!(w.psql(memberships), "0");
    assert_eq!(
        w.psql("SELECT shobj_description(oid, 'pg_authid') IS NULL FROM pg_roles WHERE rolname = 'legacy'"),
        "t"
    );
    assert_eq!(w.ldapsearch(&format!("(member=uid=legacy,ou=people,{})", w.slapd.base_dn), &["cn"]).trim(), "");
    // They leave: nothing of theirs is disabled, the superuser least of all.
    let left = [leave_line("postgres"), leave_line("legacy")].join("\n");
    let f = w.file("left.jsonl", &left);
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    // Still refused, and said so: the run fails rather than reporting work done.
    w.fails(&["jobs", "run"]);
    assert_eq!(w.psql("SELECT rolcanlogin AND rolsuper FROM pg_roles WHERE rolname = 'postgres'"), "t");
    assert!(psql_login(&w, "legacy").0, "an account tenure did not make was disabled");
    assert_eq!(w.ldapsearch("(&(uid=legacy)(pwdAccountLockedTime=*))", &["uid"]).trim(), "");
    // tenure's own connection still works: the plain joiner's work goes on.
    w.psql("ALTER ROLE \"E5\" SUPERUSER CREATEDB");
    let f = w.file("left5.jsonl", &leave_line("E5"));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    assert_eq!(state("hr:E5"), "closed");
    // Disabling strips what was added by hand (item 13), and says so in the ledger.
    assert_eq!(w.psql("SELECT rolcanlogin OR rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = 'E5'"), "f");
    let d: serde_json::Value =
        serde_json::from_str(&w.ok(&["identities", "show", "hr:E5", "--output", "json"])).unwrap();
    assert!(d["timeline"].as_array().unwrap().iter().any(|t| t["action"] == "system.synced"), "{d}");
}

#[test]
fn the_time_from_a_leaver_event_to_its_verified_close_is_a_metric() {
    let w = World::new();
    hr(&w);
    let c = Clocked::new(&w);
    c.ingest(&leave_line("E1010"));
    // The systems answer ninety seconds after the leaver event (the clock is the test's).
    c.clock.advance(time::Duration::seconds(90));
    c.run();
    assert_eq!(c.engine.identity_detail("hr:E1010").unwrap().identity.state, "closed");
    let mut metrics = String::new();
    c.engine.telemetry().render(&mut metrics);
    for line in [
        "tenure_closure_duration_seconds_bucket{kind=\"human\",le=\"60\"} 0",
        "tenure_closure_duration_seconds_bucket{kind=\"human\",le=\"120\"} 1",
        "tenure_closure_duration_seconds_sum{kind=\"human\"} 90",
        "tenure_closure_duration_seconds_count{kind=\"human\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
}
