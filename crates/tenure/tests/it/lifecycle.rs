//! Joiner, mover and leaver against a real directory, checked with clients tenure did not write
//! (`ldapsearch`, `ldapwhoami`, `ldapmodify`).

use crate::support::*;
use std::process::Command;

fn import(w: &World, source: &str, lines: &[String]) {
    let f = w.file("batch.jsonl", &lines.join("\n"));
    w.ok(&["import", "--source", source, f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
}

fn state(w: &World, r: &str) -> String {
    let ids = w.identities();
    ids.as_array().unwrap().iter().find(|i| i["ref"] == r).unwrap()["state"].as_str().unwrap().to_owned()
}

fn bind(w: &World, dn: &str, password: &str) -> bool {
    Command::new("ldapwhoami")
        .args(["-x", "-H", &w.slapd.url(), "-D", dn, "-w", password])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_leaver_is_disabled_in_no_group_and_cannot_bind() {
    let w = World::new();
    import(
        &w,
        "hr",
        &[
            event("hr", "e1", "joined", human("E1", "Ada Lovelace", "engineering")),
            event("hr", "e2", "joined", human("E2", "Grace Hopper", "engineering")),
        ],
    );
    assert_eq!(state(&w, "hr:E1"), "active");
    let dn = format!("uid=E1,ou=people,{}", w.slapd.base_dn);
    // Out of band: Ada set a password, and an admin put her in a group tenure does not manage.
    w.ldap_admin("ldapmodify", &format!("dn: {dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: s3cret\n"));
    w.ldap_admin(
        "ldapadd",
        &format!(
            "dn: cn=legacy-admins,ou=groups,{b}\nobjectClass: groupOfNames\ncn: legacy-admins\nmember: {dn}\n",
            b = w.slapd.base_dn
        ),
    );
    assert!(bind(&w, &dn, "s3cret"));
    let groups = w.ldapsearch(&format!("(member={dn})"), &["cn"]);
    assert_eq!(groups.matches("cn: ").count(), 6, "{groups}");

    import(&w, "hr", &[event("hr", "e3", "left", human("E1", "Ada Lovelace", "engineering"))]);
    assert_eq!(state(&w, "hr:E1"), "closed");
    let entry = w.ldapsearch("(uid=E1)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    assert_eq!(w.ldapsearch(&format!("(member={dn})"), &["dn"]).trim(), "", "the leaver is in no group");
    assert!(!bind(&w, &dn, "s3cret"), "a leaver's bind must fail");
    // Grace keeps her groups.
    let grace = w.ldapsearch(&format!("(member=uid=E2,ou=people,{})", w.slapd.base_dn), &["cn"]);
    assert_eq!(grace.matches("cn: ").count(), 5, "{grace}");
    let shown = w.ok(&["identities", "show", "hr:E1"]);
    assert!(shown.contains("identity.left") && shown.contains("identity.closed"), "{shown}");
    assert!(shown.contains("corp-directory/vpn          revocation_verified"), "{shown}");

    // A leaver is final: another event for her is refused.
    let f = w.file("again.jsonl", &event("hr", "e4", "changed", human("E1", "Ada Lovelace", "finance")));
    let out = w.run(&["import", "--source", "hr", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`hr:E1` is closed; no further `changed` applies"), "{}", stderr(&out));
}

#[test]
fn a_mover_gains_new_groups_and_loses_old_ones() {
    let w = World::new();
    import(&w, "hr", &[event("hr", "e1", "joined", human("E1", "Ada Lovelace", "sales"))]);
    let dn = format!("uid=E1,ou=people,{}", w.slapd.base_dn);
    let groups = |w: &World| {
        let mut g: Vec<String> = w
            .ldapsearch(&format!("(member={dn})"), &["cn"])
            .lines()
            .filter_map(|l| l.strip_prefix("cn: "))
            .map(str::to_owned)
            .collect();
        g.sort();
        g
    };
    assert_eq!(groups(&w), ["all-staff", "employees", "sales", "vpn"]);
    import(&w, "hr", &[event("hr", "e2", "changed", human("E1", "Ada Lovelace", "engineering"))]);
    assert_eq!(groups(&w), ["all-staff", "employees", "engineering", "source-code", "vpn"]);
    let d: serde_json::Value =
        serde_json::from_str(&w.ok(&["identities", "show", "hr:E1", "--output", "json"])).unwrap();
    let sales = d["grants"].as_array().unwrap().iter().find(|g| g["entitlement"] == "corp-directory/sales").unwrap();
    assert_eq!(sales["state"], "revocation_verified");
    assert_eq!(d["state"], "active");
}

#[test]
fn hostile_names_are_just_names_end_to_end() {
    let w = World::new();
    let lines = vec![
        event("hr", "e1", "joined", human("*)(uid=*", "cn=x,dc=evil", "engineering")),
        event("hr", "e2", "joined", human("cn=x,dc=evil", "*)(uid=*", "sales")),
        event("hr", "e3", "joined", human("E3", "Plain Person", "sales")),
    ];
    import(&w, "hr", &lines);
    assert!(w.identities().as_array().unwrap().iter().all(|i| i["state"] == "active"));
    let people = w.ldapsearch("(objectClass=inetOrgPerson)", &["uid", "cn"]);
    assert_eq!(people.matches("dn: ").count(), 3, "{people}");
    assert!(people.contains("uid: *)(uid=*"), "{people}");
    assert!(people.contains("uid: cn=x,dc=evil"), "{people}");
    assert!(people.contains("dn: uid=cn\\3Dx\\2Cdc\\3Devil,ou=people,dc=example,dc=com"), "{people}");
    assert_eq!(w.ldapsearch("(dc=evil)", &["dn"]).trim(), "");
    // The injection-shaped leaver disables only itself.
    import(&w, "hr", &[event("hr", "e4", "left", human("*)(uid=*", "cn=x,dc=evil", "engineering"))]);
    let locked = w.ldapsearch("(pwdAccountLockedTime=*)", &["uid"]);
    assert_eq!(locked.matches("dn: ").count(), 1, "{locked}");
    assert!(locked.contains("uid: *)(uid=*"), "{locked}");
}

#[test]
fn an_unreachable_directory_leaves_the_joiner_pending_with_the_error_visible() {
    let mut w = World::new();
    // Engineering: every grant is in the directory.
    let f = w.file("batch.jsonl", &event("hr", "e1", "joined", human("E1", "Ada Lovelace", "engineering")));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.slapd.stop();
    let (out, err) = w.fails(&["jobs", "run"]);
    assert!(out.contains("1 failed and will be retried, 0 dead"), "{out}");
    assert!(err.contains("failed job") && err.contains("corp-directory"), "{err}");
    let status = w.ok(&["jobs", "status"]);
    assert!(status.contains("pending  1"), "{status}");
    // The waiting job is listed with what went wrong, not only counted.
    assert!(status.contains("of hr:E1 after 1 attempts: CN0001"), "{status}");
    let d: serde_json::Value =
        serde_json::from_str(&w.ok(&["identities", "show", "hr:E1", "--output", "json"])).unwrap();
    assert_eq!(d["state"], "pending");
    assert!(d["grants"].as_array().unwrap().iter().all(|g| g["state"] == "desired"));
    let jobs = w.jobs("pending");
    let err = jobs["jobs"][0]["error"].as_str().unwrap();
    assert!(err.starts_with("CN0001 system `corp-directory` is unreachable"), "{err}");
}
