//! The ledger through the CLI: export and offline verification (by tenure and by an independent
//! Python verifier written from the format document), tampering, forks, proofs, replay catching
//! a direct database edit, and no secret anywhere.

use crate::support::*;
use std::process::Command;
use tenure_ledger::{Verifier, merkle};

fn python() -> String {
    std::env::var("TENURE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn populated() -> World {
    let w = World::new();
    let lines: Vec<String> =
        (0..20).map(|i| event("hr", &format!("e{i}"), "joined", human(&format!("E{i}"), "P", "sales"))).collect();
    let f = w.file("people.jsonl", &lines.join("\n"));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let f = w.file("leave.jsonl", &event("hr", "l1", "left", human("E3", "P", "sales")));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    w
}

#[test]
fn exports_verify_offline_and_tampering_is_named() {
    let w = populated();
    let kept = w.ok(&["ledger", "checkpoint"]);
    let exp = w.tmp.path().join("export");
    w.ok(&["ledger", "export", exp.to_str().unwrap()]);
    let verified = w.ok(&["ledger", "verify", exp.to_str().unwrap()]);
    // 1 deployment, 20 joiners in sales (joined, synced in the directory, the reporting database
    // and the helpdesk, activated), 1 leaver (left, three syncs, closed).
    assert!(verified.lines().nth(1).unwrap().starts_with("verified: 106 entries"), "{verified}");
    assert!(verified.starts_with("key: `tenure/"), "{verified}");
    // A history rewritten and re-signed with a fresh key (here: another ledger's export) does not
    // verify: the key comes from outside the export, never from its own ledger.pub.
    let other = w.tmp.path().join("other-data");
    let other = other.to_str().unwrap();
    w.ok(&["init", other]);
    let f = w.file("forged.jsonl", &event("hr", "f1", "joined", human("F1", "P", "sales")));
    w.ok(&["--data-dir", other, "import", "--source", "hr", f.to_str().unwrap()]);
    let forged = w.tmp.path().join("forged-export");
    w.ok(&["--data-dir", other, "audit", "export", forged.to_str().unwrap()]);
    let out = w.run(&["ledger", "verify", forged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("the export's ledger.pub is not the trusted key"), "{}", stdout(&out));
    let key = w.file("trusted.pub", &w.ok(&["ledger", "key"]));
    std::fs::copy(&key, forged.join("ledger.pub")).unwrap();
    let out = w.run(&["ledger", "verify", forged.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // No key from outside at all: refused, not trusted.
    let nowhere = w.tmp.path().join("no-data");
    let out = w.run(&["--data-dir", nowhere.to_str().unwrap(), "audit", "verify", exp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("pass `--key FILE`"), "{}", stderr(&out));
    let out = w.ok(&[
        "--data-dir",
        nowhere.to_str().unwrap(),
        "audit",
        "verify",
        exp.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(out.contains("verified: 106 entries"), "{out}");
    // An independent verifier, written from docs/ledger-export.md alone.
    let py = Command::new(python()).arg(repo().join("docs/verify_ledger_export.py")).arg(&exp).output().unwrap();
    assert!(py.status.success(), "python verifier: {}{}", stdout(&py), stderr(&py));
    assert_eq!(stdout(&py).trim(), "ok 106 entries");

    let entries = exp.join("entries.jsonl");
    let original = std::fs::read(&entries).unwrap();
    let line_of = |needle: &[u8]| -> (usize, usize) {
        let at = original.windows(needle.len()).position(|w| w == needle).unwrap();
        (at, original[..at].iter().filter(|b| **b == b'\n').count())
    };
    // Change one byte inside the leaver's entry.
    let (at, line) = line_of(b"\"identity.left\"");
    let mut bad = original.clone();
    bad[at + 10] ^= 0x01;
    std::fs::write(&entries, &bad).unwrap();
    let out = w.run(&["ledger", "verify", exp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("LG0101 entry {line}: this entry is not what the log recorded")),
        "{}",
        stdout(&out)
    );
    let py = Command::new(python()).arg(repo().join("docs/verify_ledger_export.py")).arg(&exp).output().unwrap();
    assert!(!py.status.success());

    // Remove an entry.
    let mut lines: Vec<&[u8]> = original.split_inclusive(|b| *b == b'\n').collect();
    lines.remove(5);
    std::fs::write(&entries, lines.concat()).unwrap();
    let out = w.run(&["ledger", "verify", exp.to_str().unwrap()]);
    assert!(stdout(&out).contains("LG0101 entry 5: line 6 holds entry 6"), "{}", stdout(&out));

    // Truncate, and drop the checkpoints that cover the cut part: a checkpoint kept from
    // before still exposes it.
    std::fs::write(&entries, original.split_inclusive(|b| *b == b'\n').take(30).collect::<Vec<_>>().concat()).unwrap();
    for f in std::fs::read_dir(exp.join("checkpoints")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let kept_file = w.file("kept.note", &kept);
    let out = w.run(&["ledger", "verify", exp.to_str().unwrap(), "--checkpoint", kept_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("LG0104 the log was truncated: it has 30 entries but checkpoint `kept.note` covers 106"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn proofs_verify_against_signed_checkpoints() {
    let w = populated();
    let key = Verifier::parse(&w.ok(&["ledger", "key"])).unwrap();
    let first = key.open(&w.ok(&["ledger", "checkpoint"])).unwrap();
    let proof: serde_json::Value = serde_json::from_str(&w.ok(&["ledger", "prove", "7"])).unwrap();
    let cp = key.open(proof["checkpoint"].as_str().unwrap()).unwrap();
    let hashes = |v: &serde_json::Value| -> Vec<merkle::Hash> {
        v.as_array().unwrap().iter().map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap()).collect()
    };
    let leaf = merkle::leaf_hash(proof["entry_bytes"].as_str().unwrap().as_bytes());
    assert_eq!(hex::encode(leaf), proof["leaf_hash"].as_str().unwrap());
    assert!(merkle::verify_inclusion(7, cp.size, &leaf, &hashes(&proof["proof"]), &cp.root));
    assert!(!merkle::verify_inclusion(8, cp.size, &leaf, &hashes(&proof["proof"]), &cp.root));
    assert_eq!(proof["entry"]["seq"], 7);

    // The log grows; the new checkpoint is consistent with the old one.
    let f = w.file("more.jsonl", &event("hr", "m1", "joined", human("M1", "P", "finance")));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    let second = key.open(&w.ok(&["ledger", "checkpoint"])).unwrap();
    assert!(second.size > first.size);
    let c: serde_json::Value =
        serde_json::from_str(&w.ok(&["ledger", "consistency", &first.size.to_string(), &second.size.to_string()]))
            .unwrap();
    assert!(merkle::verify_consistency(first.size, second.size, &first.root, &second.root, &hashes(&c["proof"])));
    let missing = second.size + 1000;
    let out = w.run(&["ledger", "consistency", &first.size.to_string(), &missing.to_string()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("no checkpoint of size {missing}")), "{}", stderr(&out));
    let out = w.run(&["ledger", "prove", "100000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("EN0007 no ledger entry 100000"), "{}", stderr(&out));
}

#[test]
fn replay_catches_a_grant_edited_directly_in_the_database() {
    let w = populated();
    assert_eq!(w.ok(&["ledger", "replay"]).trim(), "replay: the database matches the ledger");
    let db = rusqlite::Connection::open(w.data_dir().join("tenure.db")).unwrap();
    // Quietly give the leaver back the VPN, and quietly re-activate someone.
    db.execute(
        "UPDATE grants SET state = 'verified' WHERE entitlement = 'corp-directory/vpn'
         AND identity_id = (SELECT id FROM identities WHERE ref = 'hr:E3')",
        [],
    )
    .unwrap();
    db.execute("UPDATE identities SET state = 'active' WHERE ref = 'hr:E3'", []).unwrap();
    // Rewriting the ledger itself is refused by the database.
    assert!(db.execute("UPDATE audit SET entry = x'00' WHERE seq = 1", []).is_err());
    let out = w.run(&["ledger", "replay"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("hr:E3: state: the ledger says closed, the database holds active"), "{text}");
    assert!(
        text.contains(
            "hr:E3: grant `corp-directory/vpn`: the ledger says revocation_verified, the database holds verified"
        ),
        "{text}"
    );
    assert!(text.contains("2 difference(s)"), "{text}");
}

#[test]
fn no_secret_reaches_the_database_the_ledger_or_the_logs() {
    let w = World::new();
    // A server with verbose logs provisions into LDAP with the bind password from the environment.
    let s = Server::start(&w, &["--checkpoint-secs", "1"]);
    let body = format!("[{}]", event("hr", "e1", "joined", human("E1", "Ada", "sales")));
    assert_eq!(s.post("/v1/events", &body).unwrap().0, 200);
    for _ in 0..100 {
        if s.get("/v1/identities/hr:E1").1.contains("\"state\":\"active\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let issue = serde_json::json!({ "identity": "hr:E1", "roles": ["auditor"], "description": "scan me" }).to_string();
    let issued = s.post("/v1/tokens", &issue).unwrap();
    let s_issue = |_: &World| issued.clone();
    // Broker credentials of a service the operator owns: a JWT-SVID, an API key and a dynamic
    // PostgreSQL login (whose password must not reach PostgreSQL's log either).
    let svc = nhi("svc-scan", "service", Some(OPERATOR), "2027-06-01T00:00:00Z");
    let body = format!("[{}]", event("service-registry", "s1", "joined", svc));
    assert_eq!(s.post("/v1/events", &body).unwrap().0, 200);
    for _ in 0..100 {
        if s.get("/v1/identities/service-registry:svc-scan").1.contains("\"state\":\"active\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut credentials = Vec::new();
    for body in [
        serde_json::json!({ "identity": "service-registry:svc-scan", "kind": "jwt-svid", "audience": ["scan"] }),
        serde_json::json!({ "identity": "service-registry:svc-scan", "kind": "api-key", "ttl": "1d" }),
        serde_json::json!({ "identity": "service-registry:svc-scan", "kind": "postgres-login", "system": "analytics-db" }),
    ] {
        let (status, text) = s.post("/v1/credentials", &body.to_string()).unwrap();
        assert_eq!(status, 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        credentials.push(v["secret"].as_str().unwrap().to_owned());
    }
    // Revoke them all (the job drops the login), so revocation is in the logs and ledger too.
    let left = format!(
        "[{}]",
        event("service-registry", "s2", "left", serde_json::json!({ "external_id": "svc-scan", "kind": "service" }))
    );
    assert_eq!(s.post("/v1/events", &left).unwrap().0, 200);
    for _ in 0..200 {
        if s.get("/v1/identities/service-registry:svc-scan").1.contains("\"state\":\"closed\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(s.get("/v1/identities/service-registry:svc-scan").1.contains("\"state\":\"closed\""));
    drop(s);
    let exp = w.tmp.path().join("export");
    w.ok(&["ledger", "export", exp.to_str().unwrap()]);
    let seed = std::fs::read_to_string(w.data_dir().join("ledger.key")).unwrap();
    let seed = seed.lines().nth(1).unwrap().to_owned();
    // The operator's API token (issued through the CLI) and one issued over the API.
    let (status, body) = s_issue(&w);
    assert_eq!(status, 201, "{body}");
    let issued: serde_json::Value = serde_json::from_str(&body).unwrap();
    let api_secret = issued["secret"].as_str().unwrap().to_owned();
    let op_secret = w.operator_token();
    // The broker's private keys: the body of each PEM file in DATA_DIR/keys.
    let mut keys = Vec::new();
    for f in std::fs::read_dir(w.data_dir().join("keys")).unwrap() {
        let pem = std::fs::read_to_string(f.unwrap().path()).unwrap();
        keys.push(pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>());
    }
    assert!(!keys.is_empty(), "the JWT signing key");
    let secrets = [w.slapd.password.clone(), w.scim.token.clone(), seed, op_secret.clone(), api_secret.clone()];
    let secrets: Vec<String> = secrets.into_iter().chain(credentials).chain(keys).collect();
    // The secret part too (`tnr_<id>_<secret>`; the id is public; the secret is base64url and may
    // itself contain `_`).
    let secrets: Vec<String> = secrets
        .iter()
        .cloned()
        .chain([op_secret, api_secret].iter().map(|t| t.trim().splitn(3, '_').nth(2).unwrap().to_owned()))
        .collect();
    assert!(secrets.iter().all(|s| s.len() >= 24), "every secret scanned for is long enough not to occur by chance");
    let mut scanned = 0;
    let mut scan = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        for s in &secrets {
            assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "a secret is in {}", path.display());
        }
        scanned += 1;
    };
    for dir in [w.data_dir(), exp.clone(), exp.join("checkpoints")] {
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.is_file() && p.file_name().unwrap() != "ledger.key" {
                scan(&p);
            }
        }
    }
    scan(&w.tmp.path().join("server.log"));
    scan(&w.tmp.path().join("pg/pgdata/postgres.log"));
    // tenure.db, entries.jsonl, ledger.pub, at least one checkpoint, server.log.
    assert!(scanned >= 5, "scanned {scanned} files");
    // The key file is private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(w.data_dir().join("ledger.key")).unwrap().permissions().mode() & 0o777, 0o600);
}

/// Data written by the tenure before typed ledger events (see the fixture's README): its export
/// and certificates verify with this binary, its data dir migrates and replays clean, and a
/// certificate issued from it now verifies.
#[test]
fn an_export_and_certificates_made_before_typed_events_verify_and_replay() {
    let fixture = repo().join("crates/tenure-ledger/tests/fixtures/before-typed-events");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture.join("data"), &data);
    // Git keeps no file modes: the keys come back 0600, as from a backup restored with care.
    {
        use std::os::unix::fs::PermissionsExt;
        let private =
            |p: &std::path::Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        private(&data.join("ledger.key"));
        for k in std::fs::read_dir(data.join("keys")).unwrap() {
            private(&k.unwrap().path());
        }
    }
    let tenure = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
            .env("TENURE_DATA_DIR", &data)
            .env_remove("TENURE_POLICY")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tenure {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let key = fixture.join("export/ledger.pub");
    let key = key.to_str().unwrap();
    let out = tenure(&["ledger", "verify", fixture.join("export").to_str().unwrap(), "--key", key]);
    assert!(out.contains("verified: 251 entries, 4 checkpoints"), "{out}");
    for cert in ["closure-hr-E1010.json", "closure-svc-search.json"] {
        tenure(&["closure", "verify", fixture.join(cert).to_str().unwrap(), "--key", key]);
    }
    assert!(tenure(&["ledger", "replay"]).contains("the database matches the ledger"));
    let cert = tmp.path().join("again.json");
    tenure(&["closure", "show", "hr:E1010", "--out", cert.to_str().unwrap()]);
    let out = tenure(&["closure", "verify", cert.to_str().unwrap(), "--key", key]);
    assert!(out.contains("helpdesk E1010: disabled, in no group, verified"), "{out}");
}
