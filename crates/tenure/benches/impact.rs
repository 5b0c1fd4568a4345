//! Policy impact at 100,000 identities: `tenure policy diff` (the CLI as a user runs it, and
//! `Engine::impact` in process) and `policy deploy` of the same change, against raw SQLite
//! reading the rows any impact computation must read (every identity and every grant) in the
//! same process.
//!
//! The population: people in six departments (one the policy has no template for), employees
//! and contractors, each with a unique name, email and manager; their grants as the current
//! policy gives them. The change: one template more and one grant dropped from another.
//!
//! `cargo bench -p tenure --bench impact` (TENURE_BENCH_IDENTITIES to change the 100,000;
//! TENURE_BENCH_KEEP=DIR keeps the data directory and the bundles there, for a profiler).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;
use support::{insert_people, quickstart, quickstart_engine};
use tenure_policy::Bundle;

const DEPARTMENTS: [&str; 6] = ["engineering", "finance", "sales", "people", "marketing", "engineering"];

/// The quickstart bundle with `extra` appended to its department templates (a new version).
fn bundle_with(extra: &str, replace: Option<(&str, &str)>) -> tenure_policy::BundleFiles {
    let mut files = quickstart::policy_files();
    let key = files.keys().find(|k| k.ends_with("departments.toml")).unwrap().clone();
    let mut text = String::from_utf8(files[&key].clone()).unwrap();
    if let Some((from, to)) = replace {
        assert!(text.contains(from));
        text = text.replace(from, to);
    }
    text.push_str(extra);
    files.insert(key, text.into_bytes());
    files
}

fn write_dir(dir: &std::path::Path, files: &tenure_policy::BundleFiles) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_IDENTITIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let operator = tenure_model::Principal::operator("bench");
    insert_people(&engine, n, |i| {
        BTreeMap::from([
            ("department".to_owned(), DEPARTMENTS[i % DEPARTMENTS.len()].to_owned()),
            ("employment".to_owned(), if i % 7 == 0 { "contractor" } else { "employee" }.to_owned()),
            ("email".to_owned(), format!("person{i}@example.com")),
            ("manager".to_owned(), format!("bulk:P{:07}", i / 10)),
        ])
    });
    // Their grants, as deploying a bundle gives them (it recomputes everyone).
    let current = Bundle::load(bundle_with("\n# grants for the bulk population\n", None)).unwrap();
    let t = Instant::now();
    engine.deploy(&current, &operator).unwrap();
    let first_deploy = t.elapsed();
    let total = n + 56;

    // Baseline: raw SQLite, every identity row and every grant row read.
    let db = rusqlite::Connection::open(data.join("tenure.db")).unwrap();
    let t = Instant::now();
    let mut st = db.prepare("SELECT id, ref, kind, name, attributes, owner, state FROM identities").unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(4)?)))
        .unwrap()
        .count();
    drop(st);
    let mut st = db.prepare("SELECT identity_id, entitlement, state, origin, expires_at FROM grants").unwrap();
    let grants = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .count();
    let raw = t.elapsed();
    assert_eq!(rows, total);
    drop(st);
    drop(db);

    let next_files = bundle_with(
        "\n[[template]]\nname = \"marketing\"\nwhen = { kind = \"human\", attributes = { department = \"marketing\" } }\n\
         grant = [\"corp-directory/sales\", \"analytics-db/reporting\"]\n",
        Some((
            "grant = [\"corp-directory/engineering\", \"corp-directory/source-code\"]",
            "grant = [\"corp-directory/engineering\"]",
        )),
    );
    let next = Bundle::load(next_files.clone()).unwrap();

    let t = Instant::now();
    let impact = engine.impact(&next).unwrap();
    let in_process = t.elapsed();
    let marketing = (0..n).filter(|i| DEPARTMENTS[i % DEPARTMENTS.len()] == "marketing").count();
    let engineering = (0..n).filter(|i| DEPARTMENTS[i % DEPARTMENTS.len()] == "engineering").count();
    assert_eq!(impact.grants_gained, 2 * marketing, "marketing gains two grants each");
    assert!(impact.grants_lost >= engineering, "engineering loses source-code");

    let policy = dir.path().join("next");
    write_dir(&policy, &next_files);
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["policy", "diff"])
        .arg(&policy)
        .args(["--output", "json"])
        .env("TENURE_DATA_DIR", &data)
        .env_remove("TENURE_POLICY")
        .output()
        .unwrap();
    let cli = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The change drops a grant a bundle test case expects: deployed with a reason.
    let t = Instant::now();
    let deployed = engine.deploy_tested(&next, &operator, Some("benchmark"), None).unwrap();
    let in_process_deploy = t.elapsed();
    assert!(
        matches!(deployed, tenure_engine::Deployed::Changed { affected, .. } if affected == impact.identities.len()),
        "{deployed:?}"
    );
    drop(engine);

    // And back, as a user deploys: the CLI shows the diff, runs the cases, deploys.
    let back = dir.path().join("back");
    write_dir(&back, &current.files);
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["policy", "deploy"])
        .arg(&back)
        .env("TENURE_DATA_DIR", &data)
        .env_remove("TENURE_POLICY")
        .output()
        .unwrap();
    let deploy = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    if let Ok(keep) = std::env::var("TENURE_BENCH_KEEP") {
        // For a profiler: the data directory and both bundles, kept.
        std::fs::rename(dir.path(), &keep).unwrap();
        println!("kept in {keep}");
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let x = |d: std::time::Duration| d.as_secs_f64() / raw.as_secs_f64();
    println!("identities: {total}, grants: {grants}; the change affects {} identities", impact.identities.len());
    println!("raw SQLite, every identity and grant read: {:>8.1} ms", ms(raw));
    println!("Engine::impact (in process):               {:>8.1} ms ({:.1}x raw)", ms(in_process), x(in_process));
    println!("tenure policy diff --output json:          {:>8.1} ms ({:.1}x raw)", ms(cli), x(cli));
    println!(
        "Engine::deploy_tested (in process):        {:>8.1} ms ({:.1}x raw)",
        ms(in_process_deploy),
        x(in_process_deploy)
    );
    println!("tenure policy deploy (the change undone):  {:>8.1} ms ({:.1}x raw)", ms(deploy), x(deploy));
    println!("  (the first deployment, granting everyone: {:.1} ms)", ms(first_deploy));
}
