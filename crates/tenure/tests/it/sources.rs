//! Sources as they are: an HR export with its own column names, through the source's mapping,
//! and full snapshots that make joiners, movers and leavers, held back past their threshold.

use crate::support::*;

fn export() -> String {
    std::fs::read_to_string(repo().join("examples/quickstart/feeds/bamboohr.csv")).unwrap()
}

/// The export without the rows of these employee numbers.
fn without(ids: &[&str]) -> String {
    export().lines().filter(|l| !ids.iter().any(|id| l.starts_with(&format!("{id},")))).collect::<Vec<_>>().join("\n")
}

fn state(w: &World, reference: &str) -> String {
    let out = w.ok(&["identities", "show", reference, "--output", "json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["state"].as_str().unwrap().to_owned()
}

#[test]
fn a_bamboohr_export_imports_through_its_mapping_and_snapshots_make_joiners_movers_and_leavers() {
    let w = World::new();
    let file = repo().join("examples/quickstart/feeds/bamboohr.csv");
    // As it is: its own columns, dates and status values.
    let out = w.ok(&["import", "--source", "bamboohr", file.to_str().unwrap()]);
    assert!(out.contains("applied 10 joiner(s), 0 mover(s), 0 leaver(s); 0 unchanged, 1 ignored"), "{out}");
    w.ok(&["jobs", "run"]);
    let entry = w.ldapsearch("(uid=B101)", &["cn", "memberOf"]);
    assert!(entry.contains("cn: Dorothy Vaughan"), "{entry}");
    assert_eq!(state(&w, "bamboohr:B101"), "active");
    let shown = w.ok(&["identities", "show", "bamboohr:B107", "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["expires_at"], "2027-06-30T00:00:00Z");
    assert_eq!(shown["attributes"]["manager"], "bamboohr:B103");
    // On leave: suspended, accounts locked; back: resumed.
    let on_leave = w.file("leave.csv", &export().replace("Part-Time,B100,,Active", "Part-Time,B100,,On Leave"));
    let out = w.ok(&["import", "--source", "bamboohr", on_leave.to_str().unwrap()]);
    assert!(out.contains("9 unchanged"), "{out}");
    w.ok(&["jobs", "run"]);
    assert_eq!(state(&w, "bamboohr:B102"), "suspended");
    let entry = w.ldapsearch("(uid=B102)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    w.ok(&["import", "--source", "bamboohr", file.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    assert_eq!(state(&w, "bamboohr:B102"), "active");
    assert!(!w.ldapsearch("(uid=B102)", &["pwdAccountLockedTime"]).contains("pwdAccountLockedTime"));
    // Again: nothing changed, nothing applied.
    let out = w.ok(&["import", "--source", "bamboohr", file.to_str().unwrap()]);
    assert!(out.contains("applied 0 joiner(s), 0 mover(s), 0 leaver(s); 10 unchanged"), "{out}");

    // A bad row names its line and column, and nothing of the file is applied.
    let bad = w.file("bad.csv", &export().replace("Full-Time,B100,,Active\nB110", "Intern,B100,,Active\nB110"));
    let out = w.run(&["import", "--source", "bamboohr", "--snapshot", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("line 11: field Employment Status: `Intern` is not one of"), "{}", stderr(&out));

    // A truncated export (6 of 10 people missing) is quarantined: nothing applied.
    let truncated = w.file("truncated.csv", &without(&["B104", "B105", "B106", "B107", "B108", "B109"]));
    let out = w.run(&["import", "--source", "bamboohr", "--snapshot", truncated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("6 leaver(s)"), "{}", stdout(&out));
    assert!(stderr(&out).contains("--accept-leavers 6"), "{}", stderr(&out));
    assert_eq!(state(&w, "bamboohr:B105"), "active");
    let dir = w.tmp.path().join("export");
    w.ok(&["ledger", "export", dir.to_str().unwrap()]);
    let entries: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(entries.contains("source.snapshot_quarantined"), "the quarantine is in the ledger");
    // Accepting a different number than it makes applies nothing either.
    let out =
        w.run(&["import", "--source", "bamboohr", "--snapshot", "--accept-leavers", "5", truncated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "a conflict with what the snapshot makes");
    assert!(stderr(&out).contains("makes 6 leavers, not the 5 accepted"), "{}", stderr(&out));
    assert_eq!(state(&w, "bamboohr:B105"), "active");

    // A snapshot missing one person, with one mover: previewed, then one leaver and one mover.
    let one = without(&["B104"]).replace("B101,Dorothy,Vaughan,Engineering", "B101,Dorothy,Vaughan,Finance");
    let one_file = w.file("one.csv", &one);
    let out = w.ok(&["import", "--source", "bamboohr", "--snapshot", "--dry-run", one_file.to_str().unwrap()]);
    assert!(out.contains("changed bamboohr:B101  (department)"), "{out}");
    assert!(out.contains("left    bamboohr:B104  (missing from the snapshot)"), "{out}");
    assert_eq!(state(&w, "bamboohr:B104"), "active", "a dry run applies nothing");
    let out = w.ok(&["import", "--source", "bamboohr", "--snapshot", one_file.to_str().unwrap()]);
    assert!(out.contains("applied 0 joiner(s), 1 mover(s), 1 leaver(s); 8 unchanged"), "{out}");
    w.ok(&["jobs", "run"]);
    assert_eq!(state(&w, "bamboohr:B104"), "closed");
    let entry = w.ldapsearch("(uid=B104)", &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
    let members = w.ldapsearch("(&(objectClass=groupOfNames)(cn=finance))", &["member"]);
    assert!(members.contains("uid=B101,"), "the mover is in finance: {members}");
    // The same snapshot again changes nothing.
    let out = w.ok(&["import", "--source", "bamboohr", "--snapshot", one_file.to_str().unwrap()]);
    assert!(out.contains("applied 0 joiner(s), 0 mover(s), 0 leaver(s); 9 unchanged"), "{out}");

    // Accepting the count the preview showed applies a large snapshot (B104 has left since: 5
    // leavers now, and B101 back to engineering).
    let out =
        w.ok(&["import", "--source", "bamboohr", "--snapshot", "--accept-leavers", "5", truncated.to_str().unwrap()]);
    assert!(out.contains("applied 0 joiner(s), 1 mover(s), 5 leaver(s)"), "{out}");
    assert_ne!(state(&w, "bamboohr:B105"), "active");

    // A source without a mapping takes tenure events only.
    let out = w.run(&["import", "--source", "hr", "--snapshot", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`hr` has none ([sources.hr.mapping])"), "{}", stderr(&out));
}
