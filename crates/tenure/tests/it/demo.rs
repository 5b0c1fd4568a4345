//! `tenure demo` as the README runs it.

use crate::support::*;

#[test]
fn the_demo_runs_and_its_checks_pass() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure")).arg("demo").output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("56 of 56 identities active"), "{text}");
    assert!(text.contains("uid=E1010 enabled=no groups=[]"), "{text}");
    assert!(text.contains("checks passed"), "{text}");
    assert!(text.contains("closure certificate of service-registry:svc-search: 4 credentials"), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}
