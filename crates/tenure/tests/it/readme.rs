//! The README's Use section, run as it stands: every line of its `sh` block in one bash, with
//! `set -e` (a failing line fails the test), in an empty directory beside the repository's
//! `examples/`, with the binary under test first on `PATH`. The only change is the port: 8080
//! becomes a free one, so the test cannot collide with anything else listening.

use crate::support::repo;

#[test]
fn the_readme_use_section_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let use_section = readme.split("\n## Use\n").nth(1).expect("a Use section");
    let block = use_section.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next()).expect("an sh block");
    assert!(block.lines().count() > 20, "{block}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = block.replace("8080", &port.to_string());
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tenure")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let scim2 = std::env::var("TENURE_SCIM2_SERVER")
        .unwrap_or_else(|_| repo().join("target/pyenv/bin/scim2-server").display().to_string());
    // Whatever the block left running is stopped when it ends, however it ends.
    let wrapped = format!("set -e -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\nset -x\n{script}\n");
    let mut child = std::process::Command::new("bash")
        .args(["-c", &wrapped])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("TENURE_SCIM2_SERVER", scim2)
        .env_remove("TENURE_DATA_DIR")
        .env_remove("TENURE_POLICY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let mut log = String::new();
    std::io::Read::read_to_string(&mut err, &mut log).unwrap();
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    assert!(status.success(), "the README's Use section failed ({status}):\n{log}\n--- stdout ---\n{stdout}");
    // What it left behind is what it says it makes.
    let cert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cert.json")).unwrap()).unwrap();
    assert!(cert.to_string().contains("hr:E1010"), "{cert}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("openapi.json")).unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(dir.path().join("drift.json").is_file() && dir.path().join("evidence/entries.jsonl").is_file());
    assert!(stdout.contains("\"kind\":\"agent\""), "the API listed the agents:\n{stdout}");
}
