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
    // (`jobs status` lists the jobs of the state asked for under `dead`, its first use.)
    let pending: Value = w.jobs("pending");
    assert!(
        pending["dead"].as_array().unwrap().iter().any(|j| j["system"] == "corp-directory"),
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
    assert_eq!(w.jobs("pending")["dead"], serde_json::json!([]));
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
