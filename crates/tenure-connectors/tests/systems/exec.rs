//! The exec connector against a program tenure did not write in Rust (a Python "backup
//! console" keeping its users in a JSON file): round-trip, probe, timeouts, and hostile names that
//! would be commands if anything built a command line.

use tenure_connectors::exec::{ExecConnector, ExecSettings};
use tenure_connectors::{AccountSpec, Connector, Probe};

fn console(dir: &std::path::Path, timeout: &str) -> ExecConnector {
    // A wrapper pins the state file (the connector clears the environment).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shadow/backup-console.py");
    let wrapper = dir.join("console.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nBACKUP_CONSOLE_STATE='{}' exec python3 '{}' \"$@\"\n",
            dir.join("state.json").display(),
            script.canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut m = std::collections::BTreeMap::new();
    m.insert("command".to_owned(), wrapper.display().to_string());
    m.insert("timeout_secs".to_owned(), timeout.to_owned());
    ExecConnector::new("backups", ExecSettings::from_map("backups", &m).unwrap())
}

/// A person's account whose display name is a shell command substitution.
fn spec(name: &str) -> AccountSpec {
    AccountSpec { display_name: "$(id)".into(), ..crate::spec(name) }
}

#[tokio::test]
async fn accounts_round_trip_through_a_program_and_hostile_names_stay_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path(), "10");
    let canary = dir.path().join("pwned");
    let evil = format!("$(touch {0}); `touch {0}`; rm -rf {0}.dir; echo", canary.display());
    for name in ["alice", evil.as_str()] {
        c.create_account(&spec(name)).await.unwrap();
        c.create_account(&spec(name)).await.unwrap();
        c.grant(name, "restore-operators").await.unwrap();
        c.grant(name, "restore-operators").await.unwrap();
        let r = c.read_account(name).await.unwrap().unwrap();
        assert!(r.enabled && r.memberships.contains("restore-operators"));
        assert_eq!(c.probe(name).await.unwrap(), Probe::Allowed);
        c.disable_account(name).await.unwrap();
        c.revoke(name, "restore-operators").await.unwrap();
        let r = c.read_account(name).await.unwrap().unwrap();
        assert!(!r.enabled && r.memberships.is_empty());
        assert!(matches!(c.probe(name).await.unwrap(), Probe::Refused(_)));
    }
    assert!(!canary.exists(), "a name ran as a command");
    // The program's own state holds the name verbatim.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap()).unwrap();
    assert!(state["users"].get(evil.as_str()).is_some());
    c.delete_account(&evil).await.unwrap();
    assert_eq!(c.read_account(&evil).await.unwrap(), None);
    assert_eq!(c.list_accounts().await.unwrap().len(), 1);
    // A failing operation is an error with the program's reason.
    let err = c.grant("nobody", "x").await.unwrap_err().to_string();
    assert!(err.contains("CN0002") && err.contains("no such user"), "{err}");
}

#[tokio::test]
async fn a_program_that_hangs_is_cut_off_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hang = dir.path().join("hang.sh");
    std::fs::write(&hang, "#!/bin/sh\nsleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut m = std::collections::BTreeMap::new();
    m.insert("command".to_owned(), hang.display().to_string());
    m.insert("timeout_secs".to_owned(), "1".to_owned());
    let c = ExecConnector::new("stuck", ExecSettings::from_map("stuck", &m).unwrap());
    let t = std::time::Instant::now();
    let err = c.read_account("alice").await.unwrap_err().to_string();
    assert!(err.contains("CN0001") && err.contains("did not answer"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
