//! `tenure systems check`: every system of the quickstart passes as it is; each failure class
//! (unreachable, bad TLS, bad credentials, missing base) is named with a remedy, exit 1.

use crate::support::*;

/// `systems check` with some variables changed: exit status and the JSON reports.
fn check(w: &World, env: &[(&str, &str)], args: &[&str]) -> (i32, serde_json::Value) {
    let out = w
        .tenure()
        .envs(env.iter().copied())
        .args(["systems", "check"])
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let text = stdout(&out);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}{}", stderr(&out)));
    (out.status.code().unwrap(), json)
}

/// The outcome of `check` of `system` in `reports`, and its remedy.
fn outcome(reports: &serde_json::Value, system: &str, check: &str) -> (String, String) {
    let r = reports.as_array().unwrap().iter().find(|r| r["system"] == system).unwrap_or_else(|| panic!("{reports}"));
    let c =
        r["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).unwrap_or_else(|| panic!("{check}: {r}"));
    (c["outcome"].as_str().unwrap().to_owned(), c["remedy"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn systems_check_passes_the_quickstart_and_names_each_failure_with_a_remedy() {
    let w = World::new();
    let (code, all) = check(&w, &[], &[]);
    assert_eq!(code, 0, "{all}");
    for system in ["corp-directory", "analytics-db", "helpdesk"] {
        for c in ["settings", "reach", "credentials", "base", "read groups"] {
            assert_eq!(outcome(&all, system, c).0, "ok", "{system} {c}: {all}");
        }
        let write = if system == "helpdesk" { "not_checked" } else { "ok" };
        assert_eq!(outcome(&all, system, "write").0, write, "{system}: {all}");
        assert_eq!(outcome(&all, system, "tls").0, "not_checked", "plain text is said, not passed");
        assert_eq!(outcome(&all, system, "certificate").0, "not_checked", "no TLS, no certificate");
    }
    let table = w.ok(&["systems", "check", "helpdesk"]);
    assert!(table.lines().all(|l| l.starts_with("helpdesk")), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tenure_testkit::ca::loopback(dir.path(), "ca", "server").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tls =
        rt.block_on(tenure_testkit::slapd::LocalSlapd::start_tls(&dir.path().join("slapd"), &cert, &key)).unwrap();
    let ldaps = tls.ldaps_url().unwrap();
    let password = w.slapd.password.clone();
    for (env, class) in [
        (vec![("TENURE_LDAP_URL", "ldap://127.0.0.1:1")], "reach"),
        (vec![("TENURE_LDAP_PASSWORD", "not-the-password")], "credentials"),
        (vec![("TENURE_LDAP_BASE_DN", "dc=nowhere,dc=com")], "base"),
        // A directory whose certificate no CA the platform has signed.
        (vec![("TENURE_LDAP_URL", ldaps.as_str()), ("TENURE_LDAP_PASSWORD", tls.password.as_str())], "tls"),
    ] {
        let (code, reports) = check(&w, &env, &["corp-directory"]);
        assert_eq!(code, 1, "{env:?}: {reports}");
        let (result, remedy) = outcome(&reports, "corp-directory", class);
        assert_eq!(result, "failed", "{env:?}: {reports}");
        assert!(!remedy.is_empty(), "{env:?}: {reports}");
    }
    // The trial objects left nothing behind.
    assert_eq!(w.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'tenure_systems_check'"), "0");
    assert_eq!(w.ldapsearch("(uid=tenure-systems-check)", &["dn"]).trim(), "");

    // Connections that may read but not write: only the write check fails, with a remedy.
    w.psql("CREATE ROLE reader LOGIN");
    let reader_pg = format!("postgres://reader@127.0.0.1:{}/postgres", w.pg.port);
    w.ldap_admin(
        "ldapadd",
        &format!(
            "dn: cn=reader,{base}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
             userPassword: reader-password\n",
            base = w.slapd.base_dn
        ),
    );
    let reader_dn = format!("cn=reader,{}", w.slapd.base_dn);
    for (env, system) in [
        (vec![("TENURE_PG_URL", reader_pg.as_str())], "analytics-db"),
        (
            vec![("TENURE_LDAP_BIND_DN", reader_dn.as_str()), ("TENURE_LDAP_PASSWORD", "reader-password")],
            "corp-directory",
        ),
    ] {
        let (code, reports) = check(&w, &env, &[system]);
        assert_eq!(code, 1, "{system}: {reports}");
        for c in ["reach", "credentials", "base", "read groups"] {
            assert_eq!(outcome(&reports, system, c).0, "ok", "{system} {c}: {reports}");
        }
        let (result, remedy) = outcome(&reports, system, "write");
        assert_eq!(result, "failed", "{system}: {reports}");
        assert!(remedy.contains("create, change and delete accounts"), "{remedy}");
    }

    // Trusted (the platform's roots are the test's CA), but the test's certificates live a
    // day: within the 14 days' notice, the certificate check fails, saying when it ends.
    let ca = dir.path().join("ca.pem");
    let env = [
        ("TENURE_LDAP_URL", ldaps.as_str()),
        ("TENURE_LDAP_PASSWORD", tls.password.as_str()),
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
    ];
    let (code, reports) = check(&w, &env, &["corp-directory"]);
    assert_eq!(code, 1, "{reports}");
    for c in ["tls", "reach", "credentials", "base"] {
        assert_eq!(outcome(&reports, "corp-directory", c).0, "ok", "{c}: {reports}");
    }
    let (result, remedy) = outcome(&reports, "corp-directory", "certificate");
    assert_eq!((result.as_str(), remedy.as_str()), ("failed", "renew the server's certificate before it ends"));
    let detail = reports[0]["checks"].as_array().unwrap().iter().find(|c| c["check"] == "certificate").unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("(in 0 days)"), "{detail}");
    drop(password);
    let out = w.run(&["systems", "check", "nowhere"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn get_v1_systems_answers_the_same_reports_over_http() {
    let w = World::new();
    let s = Server::start(&w, &[]);
    let auditor = w.token(OPERATOR, &["auditor"]);
    let (status, body) = s.get_as(Some(&auditor), "/v1/systems");
    assert_eq!(status, 200, "{body}");
    let reports: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = reports.as_array().unwrap().iter().map(|r| r["system"].as_str().unwrap()).collect();
    assert_eq!(names, ["analytics-db", "corp-directory", "helpdesk"], "{body}");
    for system in names {
        assert_eq!(outcome(&reports, system, "credentials").0, "ok", "{body}");
    }
    let (status, body) = s.get_as(Some(&auditor), "/v1/systems?system=helpdesk");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().len(), 1);
    let (status, body) = s.get_as(Some(&auditor), "/v1/systems?system=nowhere");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("system `nowhere` is not in policy"), "{body}");
    let (status, body) = s.get_as(Some(&auditor), "/v1/systems?sytem=helpdesk");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("sytem"), "{body}");
}
