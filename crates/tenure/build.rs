//! Stamps the binary with the commit it was built from: `tenure --version` and the
//! `tenure_build_info` metric say which code runs. `TENURE_COMMIT` overrides it (a build from a
//! source archive, without git); otherwise `git rev-parse`, or `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TENURE_COMMIT");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = root.join(".git");
    // A new commit moves HEAD or the branch it names.
    println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed={}", git.join(r).display());
    }
    let commit = std::env::var("TENURE_COMMIT").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    println!("cargo:rustc-env=TENURE_COMMIT={commit}");
    println!("cargo:rustc-env=TENURE_VERSION={} (commit {commit})", env!("CARGO_PKG_VERSION"));
}
