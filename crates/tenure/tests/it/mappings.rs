//! Attribute mappings end to end: a joiner's directory entry carries the mapped `mail`,
//! `givenName`, `sn`, `title`, `departmentNumber` and a `manager` DN that resolves; a mover's
//! new title is written, read back and recorded; a bundle with a bad mapping is refused at load
//! naming the field. The directory is read with `ldapsearch`.

use crate::support::*;
use serde_json::Value;

/// An entry's attribute `name`, every value.
fn values(ldif: &str, name: &str) -> Vec<String> {
    ldif.lines().filter_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_owned).collect()
}

#[test]
fn a_joiner_carries_mapped_attributes_and_a_movers_new_title_is_written_and_verified() {
    let w = World::new();
    hr(&w);
    let attrs = ["givenName", "sn", "cn", "mail", "title", "departmentNumber", "manager", "employeeType"];
    let grace = w.ldapsearch("(uid=E1001)", &attrs);
    assert_eq!(values(&grace, "givenName"), ["Grace"], "{grace}");
    assert_eq!(values(&grace, "sn"), ["Hopper"], "{grace}");
    assert_eq!(values(&grace, "cn"), ["Grace Hopper"], "{grace}");
    assert_eq!(values(&grace, "mail"), ["grace.hopper@example.com"], "{grace}");
    assert_eq!(values(&grace, "title"), ["Engineer"], "{grace}");
    assert_eq!(values(&grace, "departmentNumber"), ["engineering"], "{grace}");
    assert_eq!(values(&grace, "employeeType"), ["human"], "{grace}");
    // The manager is a DN, and it resolves: to Ada's entry.
    let manager = values(&grace, "manager");
    assert_eq!(manager, [format!("uid=E1000,ou=people,{}", w.slapd.base_dn)], "{grace}");
    let out = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", &w.slapd.url(), "-D", &w.slapd.bind_dn, "-w", &w.slapd.password])
        .args(["-b", &manager[0], "-s", "base", "(objectClass=inetOrgPerson)", "cn"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("cn: Ada Lovelace"), "{}", stdout(&out));
    // Ada has no manager: no `manager` at all, never an empty or made-up one.
    assert!(values(&w.ldapsearch("(uid=E1000)", &["manager"]), "manager").is_empty());

    // A mover: a new title and a new manager. Nothing else changes for her, yet the directory
    // follows and the job reads it back.
    let mover = serde_json::json!({ "external_id": "E1001", "kind": "human", "name": "Grace Hopper",
        "attributes": { "department": "engineering", "employment": "employee", "title": "Principal Engineer",
                        "manager": "hr:E1002" } });
    let f = w.file("mover.jsonl", &event("hr", "m-1", "changed", mover));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    let pending: Value = w.jobs("pending");
    assert!(
        pending["jobs"].as_array().unwrap().iter().any(|j| j["system"] == "corp-directory"),
        "the title change made a sync job: {pending}"
    );
    w.ok(&["jobs", "run"]);
    let grace = w.ldapsearch("(uid=E1001)", &attrs);
    assert_eq!(values(&grace, "title"), ["Principal Engineer"], "{grace}");
    assert_eq!(values(&grace, "manager"), [format!("uid=E1002,ou=people,{}", w.slapd.base_dn)], "{grace}");
    assert_eq!(values(&grace, "mail"), ["grace.hopper@example.com"], "unchanged: {grace}");
    let synced: Vec<Value> = w
        .ledger_of("system.synced")
        .into_iter()
        .filter(|e| e["subject"] == "hr:E1001" && e["detail"]["system"] == "corp-directory")
        .collect();
    let last = &synced.last().unwrap()["detail"];
    assert_eq!(last["problems"], serde_json::json!([]), "{last}");
    let written: Vec<&str> = last["attributes"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(written, ["manager", "title"], "only what changed is written: {last}");
    assert_eq!(last["attributes"]["title"], serde_json::json!(["Principal Engineer"]));
    let d: Value = serde_json::from_str(&w.ok(&["identities", "show", "hr:E1001", "--output", "json"])).unwrap();
    let account = d["accounts"].as_array().unwrap().iter().find(|a| a["system"] == "corp-directory").unwrap();
    assert_eq!(account["state"], "verified", "{d}");

    // A change no mapping reads (the quickstart makes mail from the name) makes no job.
    let unmapped = serde_json::json!({ "external_id": "E1001", "kind": "human", "name": "Grace Hopper",
        "attributes": { "department": "engineering", "employment": "employee", "title": "Principal Engineer",
                        "manager": "hr:E1002", "mail": "grace@navy.example" } });
    let f = w.file("unmapped.jsonl", &event("hr", "m-2", "changed", unmapped));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    assert_eq!(w.jobs("pending")["jobs"], serde_json::json!([]));
}

#[test]
fn a_bad_mapping_is_refused_when_the_bundle_loads_naming_the_field() {
    let w = World::new();
    let dir = w.tmp.path().join("bad-policy");
    copy_dir(&quickstart_policy(), &dir);
    let manifest = dir.join("tenure.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "mail = \"{name|first|ascii|lower}.{name|last|ascii|lower}@example.com\"",
        "mail = \"{name|shout}@example.com\"\ndescription = \"mine\"\ndisplayName = [\"{name}\", \"{title}\"]",
    );
    std::fs::write(&manifest, text).unwrap();
    let out = w.run(&["policy", "check", dir.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    for want in [
        "systems.corp-directory.attributes.mail: unknown filter `shout`",
        "systems.corp-directory.attributes.description: `description` is tenure's to set",
        "systems.corp-directory.attributes.displayName: `displayName` takes one value, found 2",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn a_changed_mapping_previews_waits_past_the_threshold_and_then_rewrites_every_account() {
    let w = World::new();
    hr(&w);
    let before = w.ldapsearch("(uid=E1001)", &["mail"]);
    assert_eq!(values(&before, "mail"), ["grace.hopper@example.com"], "{before}");
    // The people's mail moves to a new domain (the bundle's own case follows it).
    let dir = w.tmp.path().join("new-domain");
    copy_dir(&quickstart_policy(), &dir);
    let edit = |file: &str, from: &str, to: &str| {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit("tenure.toml", "{name|last|ascii|lower}@example.com\"", "{name|last|ascii|lower}@corp.example.org\"");
    edit("tests/quickstart.toml", "mail = \"grace.hopper@example.com\"", "mail = \"grace.hopper@corp.example.org\"");
    let path = dir.to_str().unwrap();

    // The preview names every account it rewrites (humans only: services keep their rule).
    let diff: Value = serde_json::from_str(&w.ok(&["policy", "diff", path, "--output", "json"])).unwrap();
    let remapped = diff["remapped"]["corp-directory"].as_array().unwrap_or_else(|| panic!("{diff}"));
    let identities = w.identities();
    let humans: Vec<&Value> =
        identities.as_array().unwrap().iter().filter(|i| i["kind"] == "human" && i["state"] == "active").collect();
    assert!(remapped.len() > 10, "more than the quickstart's max_changes = 10: {diff}");
    assert!(remapped.iter().any(|a| a["ref"] == "hr:E1001" && a["account"] == "E1001"), "{diff}");
    assert!(remapped.len() <= humans.len(), "{} of {} humans", remapped.len(), humans.len());
    assert_eq!(diff["remapped"].as_object().unwrap().len(), 1, "no other system maps mail: {diff}");
    let n = remapped.len();
    let text = w.ok(&["policy", "diff", path]);
    assert!(text.contains(&format!("mapped attributes rewritten in `corp-directory`: {n} account(s)")), "{text}");
    assert!(text.contains(&format!("deploying needs --accept-remap {n}")), "{text}");

    // Past the threshold nothing is deployed without a person's say-so, for exactly that many.
    let deployed_before = w.ledger_of("policy.deployed").len();
    for args in [vec![], vec!["--accept-remap".to_owned(), (n - 1).to_string()]] {
        let mut cmd = vec!["policy", "deploy", path];
        cmd.extend(args.iter().map(String::as_str));
        let out = w.run(&cmd);
        assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("{n} accounts in `corp-directory` (max_changes = 10)")), "{err}");
        assert!(err.contains(&format!("--accept-remap {n}")), "{err}");
    }
    assert_eq!(w.ledger_of("policy.deployed").len(), deployed_before);
    assert_eq!(w.jobs("pending")["jobs"], serde_json::json!([]));
    assert_eq!(values(&w.ldapsearch("(uid=E1001)", &["mail"]), "mail"), ["grace.hopper@example.com"]);

    // Accepted: a sync job per account, in the deployment's own transaction, and each one
    // writes the new value and reads it back.
    let out = w.ok(&["policy", "deploy", path, "--accept-remap", &n.to_string()]);
    assert!(out.contains(&format!("{n} accounts remapped")), "{out}");
    let deployed = w.ledger_of("policy.deployed");
    let last = &deployed.last().unwrap()["detail"];
    assert_eq!(last["remapped"], serde_json::json!({ "corp-directory": n }), "{last}");
    assert_eq!(last["remap_accepted"], serde_json::json!(n), "{last}");
    let pending = w.jobs("pending");
    let syncs = pending["jobs"].as_array().unwrap().iter().filter(|j| j["system"] == "corp-directory").count();
    assert_eq!(syncs, n, "{pending}");
    w.ok(&["jobs", "run"]);
    assert_eq!(values(&w.ldapsearch("(uid=E1001)", &["mail"]), "mail"), ["grace.hopper@corp.example.org"]);
    for a in remapped {
        let uid = a["account"].as_str().unwrap();
        let mail = values(&w.ldapsearch(&format!("(uid={uid})"), &["mail"]), "mail");
        assert!(mail.len() == 1 && mail[0].ends_with("@corp.example.org"), "{uid}: {mail:?}");
    }
    let d: Value = serde_json::from_str(&w.ok(&["identities", "show", "hr:E1001", "--output", "json"])).unwrap();
    let account = d["accounts"].as_array().unwrap().iter().find(|a| a["system"] == "corp-directory").unwrap();
    assert_eq!(account["state"], "verified", "{d}");
    // Deploying it again changes nothing and rewrites nothing.
    assert!(w.ok(&["policy", "diff", path, "--output", "json"]).contains("\"remapped\": {}"));
}
