//! Crash safety: SIGKILL the server in the middle of a 10k-event import while its workers are
//! provisioning; after a restart and the client's retry, every event is applied exactly once
//! and the directory holds exactly one correct entry per identity. (Plus the operator, `hr:OPS`,
//! whose token the test client uses: one more identity, event and staff entry.) And SIGKILL
//! under authorize load: every decision a client was answered is in the ledger after restart.

use crate::support::*;

const EVENTS: usize = 10_000;
const BATCH: usize = 250;

#[test]
fn sigkill_during_a_10k_import_loses_and_duplicates_nothing() {
    let w = World::new();
    // Departments whose grants are all in the directory (this test is about LDAP and the store).
    let depts = ["engineering", "marketing", "research", "people"];
    let batches: Vec<String> = (0..EVENTS)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|chunk| {
            let lines: Vec<String> = chunk
                .iter()
                .map(|i| {
                    event(
                        "hr",
                        &format!("evt-{i}"),
                        "joined",
                        human(&format!("E{i:05}"), &format!("Person {i}"), depts[i % 4]),
                    )
                })
                .collect();
            format!("[{}]", lines.join(","))
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let lease = ["--job-lease-secs", "2"];
    let mut server = Server::start_on(&w, port, &lease);

    // Post a third of the batches, then kill the server while the next one is in flight.
    let kill_at = batches.len() / 3;
    for b in &batches[..kill_at] {
        assert_eq!(server.post("/v1/events", b).unwrap().0, 200);
    }
    let (base, token) = (server.base.clone(), server.token.clone());
    let in_flight = batches[kill_at].clone();
    let poster = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        agent
            .post(&format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .header("authorization", &format!("Bearer {token}"))
            .send(&in_flight)
            .is_ok()
    });
    std::thread::sleep(std::time::Duration::from_millis(15));
    server.kill9();
    let _ = poster.join();

    // Whatever was in flight committed whole or not at all.
    // Read through the CLI, as an operator would: the ledger export and the job queue.
    let joined = |w: &World| w.ledger_of("identity.joined");
    let jobs_in = |state: &str| w.job_counts()[state].as_i64().unwrap_or(0);
    let after_crash = joined(&w).iter().filter(|e| e["detail"]["event"]["id"] != "ops-1").count();
    assert_eq!(after_crash % BATCH, 0, "a batch was applied in part: {after_crash} events");
    assert!(after_crash >= kill_at * BATCH);
    let provisioned_at_crash = jobs_in("done") as usize;
    assert!(provisioned_at_crash < after_crash, "the kill should land while jobs are outstanding");

    // Restart; the client retries everything (it cannot know what landed).
    let server = Server::start_on(&w, port, &lease);
    for b in &batches {
        let (status, body) = server.post("/v1/events", b).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // Wait for provisioning to finish.
    let mut outstanding = i64::MAX;
    for _ in 0..1200 {
        let counts = w.job_counts();
        outstanding = ["pending", "running"].iter().map(|s| counts[*s].as_i64().unwrap_or(0)).sum();
        if outstanding == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(outstanding, 0, "jobs still outstanding");
    drop(server);

    let all = EVENTS + 1;
    let identities = w.identities();
    let identities = identities.as_array().unwrap();
    assert_eq!(identities.len(), all);
    assert_eq!(identities.iter().filter(|i| i["state"] == "active").count(), all);
    let unverified: Vec<_> =
        identities.iter().flat_map(|i| i["grants"].as_array().unwrap()).filter(|g| g["state"] != "verified").collect();
    assert!(unverified.is_empty(), "{unverified:?}");
    assert_eq!(jobs_in("dead"), 0);
    // Each event's ledger entry exactly once (one entry per accepted event, in its transaction).
    let ledger = w.ledger();
    let joined: Vec<_> = ledger.iter().filter(|e| e["action"] == "identity.joined").collect();
    assert_eq!(joined.len(), all);
    let ids: std::collections::BTreeSet<_> = joined.iter().map(|e| e["detail"]["event"]["id"].to_string()).collect();
    assert_eq!(ids.len(), all);
    assert_eq!(ledger.iter().filter(|e| e["action"] == "identity.activated").count(), all);
    // The ledger is one unbroken chain, and replaying it gives the database's state.
    assert!(ledger.iter().enumerate().all(|(i, e)| e["seq"] == i));
    let replay = w.ok(&["ledger", "replay"]);
    assert!(replay.contains("the database matches the ledger"), "{replay}");

    // The directory, read by ldapsearch: one entry per identity, each in exactly its groups.
    let people = w.ldapsearch("(objectClass=inetOrgPerson)", &["uid"]);
    assert_eq!(people.matches("dn: ").count(), EVENTS + 1);
    let groups = w.ldapsearch("(objectClass=groupOfNames)", &["cn", "member"]);
    let mut members: std::collections::BTreeMap<String, usize> = Default::default();
    let mut current = String::new();
    for line in groups.lines() {
        if let Some(cn) = line.strip_prefix("cn: ") {
            current = cn.to_owned();
        } else if line.starts_with("member: uid=") {
            *members.entry(current.clone()).or_default() += 1;
        }
    }
    let per_dept = EVENTS / 4;
    assert_eq!(members["all-staff"], EVENTS + 1);
    assert_eq!(members["employees"], EVENTS + 1);
    assert_eq!(members["vpn"], EVENTS + 1);
    assert_eq!(members["engineering"], per_dept);
    assert_eq!(members["source-code"], per_dept);
    assert_eq!(members["people-ops"], per_dept);
}

#[test]
fn sigkill_under_authorize_load_loses_no_answered_decision() {
    let w = World::new();
    workloads(&w);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Server::start_on(&w, port, &[]);
    let (base, token) = (server.base.clone(), server.token.clone());
    let answers = std::sync::atomic::AtomicUsize::new(0);
    // Each client's answered decisions, by the unique intent its question carried.
    let answered: Vec<Vec<String>> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (base, token, answers) = (&base, &token, &answers);
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut got = Vec::new();
                    for n in 0.. {
                        let intent = format!("client {c} question {n}");
                        let ask = serde_json::json!({
                            "principal": "service-registry:wl-deployer",
                            "action": "deploy",
                            "resource": { "id": "payments-api" },
                            "context": { "intent": intent, "environment": "prod" },
                        });
                        let sent = agent
                            .post(&format!("{base}/v1/authorize"))
                            .header("content-type", "application/json")
                            .header("authorization", &format!("Bearer {token}"))
                            .send(ask.to_string());
                        // The server is gone: what was answered so far is what counts.
                        let Ok(mut resp) = sent else { break };
                        let Ok(body) = resp.body_mut().read_to_string() else { break };
                        assert_eq!(resp.status(), 200, "{body}");
                        let d: serde_json::Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(d["decision"], "allow", "{d}");
                        got.push(intent);
                        answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    got
                })
            })
            .collect();
        // Kill while every client has questions in flight.
        let start = std::time::Instant::now();
        while answers.load(std::sync::atomic::Ordering::SeqCst) < 400 && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        server.kill9();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let answered: Vec<String> = answered.into_iter().flatten().collect();
    assert!(answered.len() >= 400, "only {} decisions answered before the kill", answered.len());

    // Restart (the store recovers its log), stop, and read the ledger as an operator would.
    drop(Server::start_on(&w, port, &[]));
    let logged: std::collections::HashSet<String> = w
        .ledger_of("authz.decided")
        .iter()
        .filter_map(|e| e["detail"]["context"]["intent"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = answered.iter().filter(|i| !logged.contains(*i)).collect();
    assert!(
        lost.is_empty(),
        "{} answered decisions are not in the ledger: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let exp = w.tmp.path().join("after-kill");
    w.ok(&["ledger", "export", exp.to_str().unwrap()]);
    w.ok(&["ledger", "verify", exp.to_str().unwrap()]);
}
