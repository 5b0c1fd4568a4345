//! Expiry by the clock: notices before, and at `expires_at` a contractor leaves (to a
//! certificate) while a service is suspended until renewed, as the quickstart policy says.

use crate::support::*;

fn contractor(ext: &str, expires: &str) -> serde_json::Value {
    serde_json::json!({ "external_id": ext, "kind": "human", "name": ext, "expires_at": expires,
        "attributes": { "department": "engineering", "employment": "contractor", "manager": "hr:E1001" } })
}

#[test]
fn expiry_notices_then_a_contractor_leaves_and_a_service_is_suspended_until_renewed() {
    let w = World::new();
    w.ok(&["import", "--source", "hr", repo().join("examples/quickstart/feeds/hr.jsonl").to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let c = Clocked::new(&w); // 2026-11-20 09:00
    let (clock, engine) = (&c.clock, &c.engine);
    let show = |r: &str| engine.identity_detail(r).unwrap().identity;
    let notices = |r: &str| {
        engine
            .list_findings(false)
            .unwrap()
            .into_iter()
            .filter(|f| f.identity == r && f.kind == "expiry_notice")
            .count()
    };
    let svc = "service-registry:svc-exp";
    c.ingest(
        &[
            event("vendors", "c1", "joined", contractor("C3001", "2026-12-15T09:00:00Z")),
            event("vendors", "c2", "joined", contractor("C3002", "2026-12-15T09:00:00Z")),
            event(
                "service-registry",
                "s1",
                "joined",
                nhi("svc-exp", "service", Some("hr:E1003"), "2026-12-10T09:00:00Z"),
            ),
        ]
        .join("\n"),
    );
    c.run();
    assert!(w.ldapsearch("(uid=C3002)", &["uid"]).contains("uid: C3002"));

    // More than 14 days out: nothing. Within 14 days: one notice each, raised once.
    assert!(engine.tick().unwrap().expiring.is_empty());
    clock.advance(time::Duration::days(7)); // 11-27: the service has 13 days left
    assert_eq!(engine.tick().unwrap().expiring, [svc]);
    // (The clock looks for notices at most once a minute.)
    clock.advance(time::Duration::minutes(2));
    assert!(engine.tick().unwrap().expiring.is_empty(), "a notice is raised once");
    assert_eq!(notices(svc), 1);
    clock.set(time::macros::datetime!(2026-12-07 09:00 UTC)); // 3 days for the service, 8 for the contractors
    let tick = engine.tick().unwrap();
    assert_eq!(tick.expiring, [svc, "vendors:C3001", "vendors:C3002"]);
    assert_eq!(notices(svc), 1, "the nearer notice replaces the earlier one");

    // The vendor extends C3001 before the end; its notice is resolved.
    c.ingest(&event("vendors", "c1-renew", "renewed", contractor("C3001", "2027-03-31T09:00:00Z")));
    assert_eq!(notices("vendors:C3001"), 0);

    // At the service's expiry, before the clock acts: runtime authorization already denies it.
    let q = tenure_engine::authz::Question {
        principal: svc.into(),
        action: "deploy".into(),
        resource: tenure_engine::authz::ResourceSpec::resource("payments-api"),
        context: serde_json::json!({ "intent": "release", "environment": "prod" }),
    };
    clock.set(time::macros::datetime!(2026-12-10 09:00 UTC)); // the instant it expires
    assert_eq!(engine.decide(&q).unwrap().policies, ["tenure:expired"]);
    let tick = engine.tick().unwrap();
    assert_eq!(tick.expired, [svc]);
    c.run();
    assert_eq!(show(svc).state, "suspended");
    let entry = w.ldapsearch("(uid=svc-exp)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    assert!(engine.tick().unwrap().expired.is_empty(), "a suspended identity is not suspended again");

    // Renewal by hand: not by someone else, not past the policy's maximum, with a reason.
    let owner = tenure_model::Principal::local("hr:E1003".parse().unwrap(), []);
    let other = tenure_model::Principal::local("hr:E1004".parse().unwrap(), []);
    let until = time::macros::datetime!(2027-03-01 00:00 UTC);
    let e = engine.renew(&other, svc, until, "mine now").unwrap_err();
    assert!(e.to_string().contains("only `service-registry:svc-exp`'s owner or an administrator"), "{e}");
    let e = engine.renew(&owner, svc, until + time::Duration::days(400), "a long time").unwrap_err();
    assert!(e.to_string().contains("lifecycle.max_nhi_lifetime_days"), "{e}");
    assert!(engine.renew(&owner, svc, until, " ").is_err(), "a renewal says why");
    let renewed = engine.renew(&owner, svc, until, "still needed for the Q1 migration").unwrap();
    assert_eq!((renewed.state.as_str(), renewed.expires_at.as_deref()), ("active", Some("2027-03-01T00:00:00Z")));
    c.run();
    assert!(!w.ldapsearch("(uid=svc-exp)", &["pwdAccountLockedTime"]).contains("pwdAccountLockedTime"));
    assert!(!engine.decide(&q).unwrap().policies.contains(&"tenure:expired".to_owned()));
    let timeline = engine.identity_detail(svc).unwrap().timeline;
    let by = timeline.iter().find(|e| e.action == "identity.renewed_by").unwrap();
    assert_eq!(by.detail["by"], "api:hr:E1003");
    assert_eq!(by.detail["reason"], "still needed for the Q1 migration");
    assert_eq!(by.detail["state"]["to"], "active");

    // 12-15 09:00: C3002 is cut off at that instant and closed with a certificate; C3001,
    // renewed, stays.
    clock.set(time::macros::datetime!(2026-12-15 09:00 UTC));
    assert_eq!(engine.tick().unwrap().expired, ["vendors:C3002"]);
    assert_eq!(show("vendors:C3002").state, "leaving");
    c.run();
    assert_eq!(show("vendors:C3002").state, "closed");
    assert_eq!(show("vendors:C3001").state, "active");
    let entry = w.ldapsearch("(uid=C3002)", &["pwdAccountLockedTime", "memberOf"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    let signer = tenure_ledger::Signer::from_seed("test/ledger", &[1; 32]);
    let cert = engine.closure_certificate("vendors:C3002", &signer).unwrap();
    let verified = tenure_ledger::closure::verify(&cert, &signer.verifier()).unwrap();
    assert_eq!(verified.systems, ["corp-directory C3002"]);
    assert_eq!(cert["certificate"]["left_at"], "2026-12-15T09:00:00Z");
    // Everything the clock did is in the ledger: replay agrees with the database.
    assert_eq!(engine.replay().unwrap(), vec![]);
}

#[test]
fn renewal_over_http_is_for_the_owner_and_admins_only() {
    let w = World::new();
    w.ok(&["import", "--source", "hr", repo().join("examples/quickstart/feeds/hr.jsonl").to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let c = Clocked::new(&w);
    c.ingest(&event(
        "service-registry",
        "s1",
        "joined",
        nhi("svc-exp", "service", Some("hr:E1003"), "2026-12-10T09:00:00Z"),
    ));
    let base = c.serve(&w);
    let token = |who: &str| {
        c.engine
            .issue_token(who, &["requester".to_owned()], None, "test", &tenure_model::Principal::operator("test"))
            .unwrap()
            .secret
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let renew = |token: &str, body: serde_json::Value| {
        agent
            .post(&format!("{base}/v1/identities/service-registry:svc-exp/renew"))
            .header("authorization", &format!("Bearer {token}"))
            .send(&body.to_string())
            .unwrap()
    };
    let body = serde_json::json!({ "expires_at": "2027-01-31T00:00:00Z", "reason": "extended" });
    let mut r = renew(&token("hr:E1004"), body.clone());
    assert_eq!(r.status(), 403, "{}", r.body_mut().read_to_string().unwrap());
    let mut r = renew(&token("hr:E1003"), serde_json::json!({ "expires_at": "soon", "reason": "x" }));
    assert_eq!(r.status(), 422);
    assert!(r.body_mut().read_to_string().unwrap().contains("expires_at"));
    let mut r = renew(&token("hr:E1003"), body);
    assert_eq!(r.status(), 200);
    let view: serde_json::Value = r.body_mut().read_json().unwrap();
    assert_eq!(view["expires_at"], "2027-01-31T00:00:00Z");
    // The operator, from the CLI: a reason is required, the maximum holds.
    let out = w.run(&["identities", "renew", "service-registry:svc-exp", "--until", "2027-02-28T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    let out = w.run(&["identities", "renew", "service-registry:svc-exp", "--days", "999", "--reason", "long"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("max_nhi_lifetime_days"), "{}", stderr(&out));
    let out = w.ok(&[
        "identities",
        "renew",
        "service-registry:svc-exp",
        "--until",
        "2027-02-28T00:00:00Z",
        "--reason",
        "extended again",
    ]);
    assert!(out.contains("renewed service-registry:svc-exp until 2027-02-28T00:00:00Z"), "{out}");
}
