//! Operating tenure as a platform team does: request ids through to the ledger, access logs
//! in JSON, metrics, liveness and readiness, JSON errors for unknown routes; and a CLI that is
//! honest about its data dir, its version, closed pipes and its exit codes.

use crate::support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `method path` with a bearer token and headers: status, headers, body.
fn call(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, ureq::http::HeaderMap, String) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", s.base))
        .header("authorization", format!("Bearer {}", s.token))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = agent().run(req.body(body.to_owned()).unwrap()).unwrap();
    let headers = r.headers().clone();
    (r.status().as_u16(), headers, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn every_request_gets_an_id_a_json_access_log_line_and_a_metric_and_the_id_reaches_the_ledger() {
    let w = World::new();
    hr(&w);
    let mport = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = Server::start(&w, &["--log-format", "json", "--metrics-listen", &format!("127.0.0.1:{mport}")]);

    // --metrics-listen serves /metrics there without a token, and nothing else; the API's
    // /metrics still needs one.
    let agent = agent();
    let mut r = agent.get(&format!("http://127.0.0.1:{mport}/metrics")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("tenure_build_info"));
    let r = agent.get(&format!("http://127.0.0.1:{mport}/v1/identities")).call().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(s.get_as(None, "/metrics").0, 401);

    // Scripts get what the CLI made as JSON: a token issued (its secret once) and revoked.
    let t = json(&w.ok(&["tokens", "issue", "--identity", "hr:E1000", "--role", "auditor", "--output", "json"]));
    assert!(t["secret"].as_str().unwrap().starts_with("tnr_"), "{t}");
    let r = json(&w.ok(&["tokens", "revoke", t["id"].as_str().unwrap(), "--output", "json"]));
    assert!(r["revoked_at"].is_string() && r.get("secret").is_none(), "{r}");

    // Unknown routes and methods answer in the JSON error shape.
    let (status, _, body) = call(&s, "GET", "/v1/nowhere", &[], "");
    assert_eq!(status, 404);
    assert_eq!(json(&body)["code"], "SV0003", "{body}");
    let (status, _, body) = call(&s, "DELETE", "/v1/identities", &[], "");
    assert_eq!(status, 405);
    assert_eq!(json(&body)["code"], "SV0004", "{body}");

    // A client's request id is echoed and stamped on every entry the request causes, including
    // those its jobs write later; without one, the server makes one.
    let leave = event("hr", "left-E1010", "left", serde_json::json!({ "external_id": "E1010", "kind": "human" }));
    let (status, headers, body) =
        call(&s, "POST", "/v1/events", &[("x-request-id", "chg-4711.leaver")], &format!("[{leave}]"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-request-id"], "chg-4711.leaver");
    let (_, headers, _) = call(&s, "GET", "/v1/identities/hr:E1010", &[("x-request-id", "bad id\twith tab")], "");
    let made = headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 32, "a generated id replaces an unusable one: {made}");
    let mut closed = false;
    for _ in 0..300 {
        let (_, _, body) = call(&s, "GET", "/v1/identities/hr:E1010", &[], "");
        if json(&body)["state"] == "closed" {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(closed, "the leaver did not close");
    let of_request: Vec<String> = w
        .ledger()
        .into_iter()
        .filter(|e| e["request_id"] == "chg-4711.leaver")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(of_request.contains(&"identity.left".to_owned()), "{of_request:?}");
    assert!(of_request.contains(&"system.synced".to_owned()), "the jobs' entries carry it: {of_request:?}");
    assert!(of_request.contains(&"identity.closed".to_owned()), "{of_request:?}");
    // Entries no request caused carry none.
    assert!(w.ledger_of("identity.joined").iter().all(|e| e.get("request_id").is_none()));

    // One JSON access log line per request, without terminal colours.
    let (status, _, metrics) = call(&s, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let log = std::fs::read_to_string(w.tmp.path().join("server.log")).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file");
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "tenure::access")
        .collect();
    let line = access
        .iter()
        .find(|l| l["fields"]["request_id"] == "chg-4711.leaver")
        .unwrap_or_else(|| panic!("no access line for the request: {log}"));
    assert_eq!(line["fields"]["method"], "POST");
    assert_eq!(line["fields"]["route"], "/v1/events");
    assert_eq!(line["fields"]["status"], 200);
    assert_eq!(line["fields"]["caller"], "api:hr:OPS");
    assert!(line["fields"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(access.iter().any(|l| l["fields"]["route"] == "unmatched" && l["fields"]["status"] == 404));

    // Metrics: requests per route pattern (never a raw path), job attempts, connector errors,
    // the build, the process.
    for want in [
        "tenure_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/events\",status=\"200\"} 1",
        "tenure_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/identities/{reference}\",status=\"200\",le=\"+Inf\"}",
        "tenure_job_duration_seconds_count{system=\"corp-directory\",kind=\"sync\",outcome=\"done\"}",
        "tenure_build_info{version=\"0.1.0\",commit=\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
    assert!(!metrics.contains("hr:E1010"), "a raw path in the metrics");

    // Live and ready; not ready while the data dir is gone (a volume unmounted), ready again
    // once it is back.
    let (status, _, body) = call(&s, "GET", "/livez", &[], "");
    assert_eq!((status, json(&body)["status"].as_str()), (200, Some("ok")));
    let (status, _, body) = call(&s, "GET", "/readyz", &[], "");
    assert_eq!(status, 200, "{body}");
    let checks = json(&body)["checks"].clone();
    for part in ["database", "data_dir", "policy", "workers"] {
        assert_eq!(checks[part], "ok", "{body}");
    }
    let away = w.tmp.path().join("data-away");
    std::fs::rename(w.data_dir(), &away).unwrap();
    let (status, _, body) = call(&s, "GET", "/readyz", &[], "");
    std::fs::rename(&away, w.data_dir()).unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["status"], "not ready");
    assert_eq!(json(&body)["checks"]["data_dir"], "failing", "{body}");
    assert!(!body.contains(w.tmp.path().to_str().unwrap()), "a path told to anyone: {body}");
    let (status, _, body) = call(&s, "GET", "/readyz", &[], "");
    assert_eq!(status, 200, "{body}");
    // SIGHUP (systemctl reload) without TLS: nothing to reread, and the server stays up.
    assert!(std::process::Command::new("kill").args(["-HUP", &s.child.id().to_string()]).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(call(&s, "GET", "/livez", &[], "").0, 200);
}

#[test]
fn the_cli_refuses_a_missing_data_dir_until_init_and_says_its_version_and_completions() {
    let w = World::new();
    let nowhere = w.tmp.path().join("typo-data");
    let n = nowhere.to_str().unwrap();
    let out = w.run(&["--data-dir", n, "identities", "list"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("tenure init"), "{}", stderr(&out));
    assert!(!nowhere.exists(), "a mistyped data dir was created");
    let feed = repo().join("examples/quickstart/feeds/hr.jsonl");
    let out = w.run(&["--data-dir", n, "import", "--source", "hr", feed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(!nowhere.exists());

    // init makes it private, with a starter bundle that passes its own tests.
    let starter = w.tmp.path().join("starter");
    let out = w.ok(&["--policy", starter.to_str().unwrap(), "init", n]);
    assert!(out.contains("wrote a starter policy bundle"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nowhere), 0o700);
    assert_eq!(mode(&nowhere.join("tenure.db")), 0o600);
    assert_eq!(mode(&nowhere.join("ledger.key")), 0o600);
    assert!(w.ok(&["policy", "test", starter.to_str().unwrap()]).contains("0 failed"));
    // Run again, it changes nothing and says so.
    let again = w.ok(&["--policy", starter.to_str().unwrap(), "init", n]);
    assert!(again.contains("is there already"), "{again}");
    let listed = w.ok(&["--data-dir", n, "identities", "list", "--output", "json"]);
    assert_eq!(json(&listed), serde_json::json!([]));

    let version = w.ok(&["--version"]);
    assert!(version.starts_with("tenure 0.1.0 (commit "), "{version}");
    let bash = w.ok(&["completions", "bash"]);
    assert!(bash.contains("_tenure") && bash.contains("identities"), "not a bash completion script");
    assert!(w.ok(&["completions", "zsh"]).contains("#compdef tenure"));
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly_and_json_logs_have_no_colour() {
    let mut w = World::new();
    hr(&w);
    w.operator_token();
    let tokens = json(&w.ok(&["tokens", "list", "--output", "json"]));
    assert!(tokens.as_array().unwrap().iter().any(|t| t["identity"] == "hr:OPS"), "{tokens}");
    // `tenure identities list | head -0`: the reader is gone before anything is written.
    let mut child = w
        .tenure()
        .args(["identities", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    let f = w.file("j.jsonl", &event("hr", "j-new", "joined", human("E77", "New Person", "engineering")));
    w.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
    // With the directory down, the failure is logged (and the run says it failed).
    w.slapd.stop();
    // One attempt allowed: dead at once, and said so.
    let out = w.run(&["--log-format", "json", "--job-max-attempts", "1", "jobs", "run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("0 failed and will be retried, 1 dead"), "{}", stdout(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().collect();
    let logged: Vec<serde_json::Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(logged.iter().any(|l| l["level"] == "ERROR" || l["level"] == "WARN"), "{lines:?}");
    let out = w.run(&["identities", "show", "hr:E1000"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'), "colour off a terminal");

    // `jobs retry` says which: one job, an identity's, or --dead; one that is not dead is refused.
    assert_eq!(w.run(&["jobs", "retry"]).status.code(), Some(2), "retry what?");
    assert_eq!(w.run(&["jobs", "retry", "999999"]).status.code(), Some(4));
    let dead = w.jobs("dead");
    let id = dead["jobs"][0]["id"].as_i64().unwrap_or_else(|| panic!("a dead job: {dead}"));
    assert_eq!(
        json(&w.ok(&["jobs", "retry", &id.to_string(), "--output", "json"]))["requeued"],
        serde_json::json!([id])
    );
    let again = w.run(&["jobs", "retry", &id.to_string()]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(5), "{err}");
    assert!(err.contains("not dead"), "{err}");
    // jobs run --output json: the counts and each failure, as one object; still exit 1.
    let out = w.run(&["--job-max-attempts", "1", "jobs", "run", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let ran = json(&stdout(&out));
    assert_eq!((ran["dead"].as_u64(), ran["failures"][0]["id"].as_i64()), (Some(1), Some(id)), "{ran}");
    // Under --output json, errors are JSON too (standard error, the API's shape and the exit).
    let out = w.run(&["identities", "show", "hr:NOBODY", "--output", "json"]);
    assert_eq!(out.status.code(), Some(4));
    let e: serde_json::Value =
        serde_json::from_str(stderr(&out).trim()).unwrap_or_else(|x| panic!("{x}: {}", stderr(&out)));
    assert_eq!((e["code"].as_str(), e["exit"].as_u64()), (Some("EN0004"), Some(4)), "{e}");
    assert_eq!(e["message"], "no identity `hr:NOBODY`", "{e}");
    assert!(stdout(&out).is_empty());
    let out = w.run(&["identities", "list", "--state", "bogus", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(e["code"], "CL0001", "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("--state: expected one of"), "{e}");
    let out = w.run(&["identities", "show", "hr:NOBODY"]);
    assert!(stderr(&out).starts_with("error: EN0004 no identity `hr:NOBODY`"), "{}", stderr(&out));
    let retried = w.ledger_of("jobs.retried");
    assert_eq!(retried.last().unwrap()["detail"]["jobs"], serde_json::json!([id]), "{retried:?}");
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let unit = std::fs::read_to_string(repo().join("deploy/tenure.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = dir.path().join("tenure.service");
        // verify wants the binary the unit starts to exist: the one under test.
        std::fs::write(&path, text.replace("/usr/local/bin/tenure", env!("CARGO_BIN_EXE_tenure"))).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap_or_else(|e| panic!("systemd-analyze (apt-get install systemd): {e}"));
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, complaints) = check(&unit);
    assert!(ok && complaints.trim().is_empty(), "{complaints}");
    let path = dir.path().join("tenure.service");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for tenure.service: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {text}"));
    assert!(level <= 2.0, "the unit exposes too much ({level}):\n{text}");
    // verify exits 0 on a value it ignores: a complaint on stderr is what fails.
    let (_, complaints) = check(&unit.replace("ProtectHome=yes", "ProtectHome=bogus"));
    assert!(complaints.contains("protect home"), "{complaints}");
}

#[test]
fn identities_page_by_keyset_with_filters_over_the_api_and_the_cli() {
    let w = World::new();
    hr(&w);
    let vendors = repo().join("examples/quickstart/feeds/vendors.csv");
    w.ok(&["import", "--source", "vendors", vendors.to_str().unwrap()]);
    let s = Server::start(&w, &[]);
    let (status, _, body) = call(&s, "GET", "/v1/identities?limit=5000", &[], "");
    assert_eq!(status, 200, "{body}");
    let all: Vec<String> =
        json(&body).as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap().to_owned()).collect();
    assert!(all.len() > 20, "{}", all.len());
    assert!(all.windows(2).all(|p| p[0] < p[1]), "in reference order");
    // Follow the Link headers seven at a time: every identity once, in order.
    let mut seen = Vec::new();
    let mut next = Some("/v1/identities?limit=7&kind=human".to_owned());
    let mut pages = 0;
    while let Some(url) = next.take() {
        let (status, headers, body) = call(&s, "GET", &url, &[], "");
        assert_eq!(status, 200, "{url}: {body}");
        let page = json(&body);
        assert!(page.as_array().unwrap().len() <= 7);
        seen.extend(page.as_array().unwrap().iter().map(|i| {
            assert_eq!(i["kind"], "human");
            i["ref"].as_str().unwrap().to_owned()
        }));
        next = headers.get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l.trim_start_matches('<').split('>').next().unwrap().to_owned()
        });
        pages += 1;
    }
    let humans: Vec<String> = {
        let (_, _, body) = call(&s, "GET", "/v1/identities?limit=5000&kind=human", &[], "");
        json(&body).as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(seen, humans);
    assert_eq!(pages, humans.len().div_ceil(7));
    let (_, _, body) = call(&s, "GET", "/v1/identities?source=vendors&state=active", &[], "");
    let vendors = json(&body);
    assert!(!vendors.as_array().unwrap().is_empty());
    assert!(
        vendors
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["ref"].as_str().unwrap().starts_with("vendors:") && i["state"] == "active")
    );
    // Bad paging is bad input, naming the parameter.
    for (url, field) in [
        ("/v1/identities?limit=0", "limit"),
        ("/v1/identities?limit=5001", "limit"),
        ("/v1/identities?state=gone", "state"),
        ("/v1/identities?page=2", "query"),
    ] {
        let (status, _, body) = call(&s, "GET", url, &[], "");
        assert_eq!(status, 422, "{url}: {body}");
        assert!(json(&body)["message"].as_str().unwrap().starts_with(field), "{url}: {body}");
    }
    // The CLI streams the same, with the same filters.
    let listed = json(&w.ok(&["identities", "list", "--output", "json", "--kind", "human"]));
    let listed: Vec<String> =
        listed.as_array().unwrap().iter().map(|i| i["ref"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, humans);
    let table = w.ok(&["identities", "list", "--source", "vendors"]);
    assert!(table.starts_with("REF"), "{table}");
    assert_eq!(table.lines().count(), vendors.as_array().unwrap().len() + 1, "{table}");
    let none = json(&w.ok(&["identities", "list", "--output", "json", "--source", "nobody"]));
    assert_eq!(none, serde_json::json!([]));
    let out = w.run(&["identities", "list", "--state", "gone"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_config_file_sits_under_the_environment_and_the_flags_and_config_show_says_which_won() {
    let w = World::new();
    hr(&w);
    w.operator_token();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = w.file(
        "tenure.toml",
        &format!(
            "data_dir = \"/nowhere/the/environment/wins\"\njob_max_attempts = 3\nlog_format = \"json\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\nworkers = 2\n"
        ),
    );
    let c = config.to_str().unwrap();
    let out = w
        .tenure()
        .args(["--config", c, "--job-backoff-secs", "2", "config", "show"])
        .env("TENURE_WORKERS", "3")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |key: &str| -> (String, String) {
        let line =
            text.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("{key}: {text}"));
        let mut parts = line.split_whitespace().skip(1);
        (parts.next().unwrap().to_owned(), parts.next().unwrap_or("").to_owned())
    };
    assert_eq!(row("data_dir"), ("environment".into(), w.data_dir().display().to_string()));
    assert_eq!(row("job_max_attempts"), ("file".into(), "3".into()));
    assert_eq!(row("job_backoff_secs"), ("flag".into(), "2".into()));
    assert_eq!(row("job_backoff_max_secs"), ("default".into(), "300".into()));
    assert_eq!(row("serve.listen"), ("file".into(), format!("127.0.0.1:{port}")));
    assert_eq!(row("serve.workers"), ("environment".into(), "3".into()));
    // The systems' secrets the bundle reads are listed, never shown.
    assert_eq!(row("TENURE_LDAP_PASSWORD").0, "(redacted)");
    assert!(!text.contains(&w.slapd.password), "a secret in config show");
    assert!(text.contains(&w.slapd.url()), "non-secret bundle variables are shown");

    // serve takes its listen address (a serve-only setting) and log format from the file.
    let log = std::fs::File::create(w.tmp.path().join("configured.log")).unwrap();
    let mut child = w.tenure().args(["--config", c, "serve"]).stderr(log).spawn().unwrap();
    let agent = agent();
    let mut up = false;
    for _ in 0..200 {
        if agent.get(&format!("http://127.0.0.1:{port}/livez")).call().is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "serve did not listen where the file said");
    let logged = std::fs::read_to_string(w.tmp.path().join("configured.log")).unwrap();
    assert!(logged.lines().any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{logged}");

    // A key it does not know is an error naming it, before anything runs.
    let bad = w.file("bad.toml", "[serve]\nlisten_on = \"x\"\n");
    let out = w.run(&["--config", bad.to_str().unwrap(), "identities", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown key `serve.listen_on`"), "{}", stderr(&out));
}

/// A throwaway CA and a certificate for 127.0.0.1 signed by it, named `cn`, in `dir`.
fn certificate(dir: &std::path::Path, ca: &str, cn: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    tenure_testkit::ca::certificate(dir, ca, cn, "IP:127.0.0.1", false).unwrap_or_else(|e| panic!("{e}"))
}

/// `curl` over TLS trusting `ca`: (exit status, body).
fn curl(ca: &std::path::Path, url: &str) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert", ca.to_str().unwrap(), url])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `url` answers over TLS trusting `ca` within ten seconds (the server is starting).
fn tls_up(ca: &std::path::Path, url: &str) -> bool {
    (0..200).any(|_| {
        let up = curl(ca, url).0 == 0;
        if !up {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        up
    })
}

/// The subject of the certificate the server presents now.
fn presented(port: u16) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_api_serves_tls_refuses_a_wrong_ca_and_takes_a_new_certificate_on_sighup() {
    let w = World::new();
    hr(&w);
    w.operator_token();
    let certs = w.tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (cert, key) = certificate(&certs, "test-ca", "first");
    certificate(&certs, "other-ca", "unrelated");
    let live = w.tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(&cert, live.join("tls.pem")).unwrap();
    std::fs::copy(&key, live.join("tls.key")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(w.tmp.path().join("tls.log")).unwrap();
    let mut child = w
        .tenure()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--tls-cert",
            live.join("tls.pem").to_str().unwrap(),
            "--tls-key",
            live.join("tls.key").to_str().unwrap(),
        ])
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/livez");
    let ca = certs.join("test-ca.pem");
    let up = tls_up(&ca, &url);
    let result = std::panic::catch_unwind(|| {
        assert!(up, "no TLS answer: {}", std::fs::read_to_string(w.tmp.path().join("tls.log")).unwrap_or_default());
        assert_eq!(json(&curl(&ca, &url).1)["status"], "ok");
        // The discovery document names https.
        let (_, body) = curl(&ca, &format!("https://127.0.0.1:{port}/.well-known/openid-configuration"));
        assert!(body.contains(&format!("https://127.0.0.1:{port}")), "{body}");
        // Another CA's trust is refused; plain HTTP gets no answer.
        assert_ne!(curl(&certs.join("other-ca.pem"), &url).0, 0, "a certificate the client's CA did not sign");
        let plain = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "3", &format!("http://127.0.0.1:{port}/livez")])
            .output()
            .unwrap();
        assert!(!plain.status.success(), "plain HTTP answered");
        assert!(presented(port).contains("CN = first"), "{}", presented(port));
        // A renewed certificate in the same files, then SIGHUP: new connections get it.
        let (cert2, key2) = certificate(&certs, "test-ca", "second");
        std::fs::copy(&cert2, live.join("tls.pem")).unwrap();
        std::fs::copy(&key2, live.join("tls.key")).unwrap();
        let hup = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
        assert!(hup.success());
        let mut renewed = false;
        for _ in 0..100 {
            if presented(port).contains("CN = second") {
                renewed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(renewed, "still {}", presented(port));
        assert_eq!(curl(&ca, &url).0, 0, "the server keeps running after the reload");
        // A broken file on reload keeps the current certificate.
        std::fs::write(live.join("tls.pem"), "not a certificate").unwrap();
        let _ = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(presented(port).contains("CN = second"));
        assert_eq!(curl(&ca, &url).0, 0);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // A certificate that does not load stops the start, naming the file.
    let out =
        w.run(&["serve", "--tls-cert", live.join("tls.pem").to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("TLS certificate"), "{}", stderr(&out));
}

/// `curl` over TLS trusting `ca`, presenting a client certificate when given one: (exit
/// status, HTTP status, body).
fn mtls(
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
    url: &str,
    body: &str,
) -> (i32, u16, String) {
    let mut c = std::process::Command::new("curl");
    c.args(["-sS", "--max-time", "5", "--cacert", ca.to_str().unwrap(), "-w", "\n%{http_code}"]);
    c.args(["-H", "content-type: application/json", "-d", body, url]);
    if let Some((cert, key)) = client {
        c.args(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (out.status.code().unwrap_or(-1), status.parse().unwrap_or(0), body.to_owned())
}

#[test]
fn a_workload_calls_with_its_x509_svid_as_tls_client_certificate_until_it_is_revoked() {
    let w = World::new();
    hr(&w);
    w.operator_token();
    let feed = repo().join("examples/quickstart/feeds/service-registry.jsonl");
    w.ok(&["import", feed.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
    let certs = w.tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (cert, key) = certificate(&certs, "test-ca", "server");
    // A client certificate from another CA, and the workload's own X.509-SVID from tenure's.
    let (stranger, stranger_key) =
        tenure_testkit::ca::certificate(&certs, "other-ca", "stranger", "DNS:stranger", true).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-subj", "/CN=svc-billing", "-keyout", "svid.key", "-out", "svid.csr"])
        .current_dir(&certs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svid = certs.join("svid.pem");
    let issued = json(&w.ok(&[
        "creds",
        "issue",
        "--identity",
        "service-registry:svc-billing",
        "--kind",
        "x509-svid",
        "--csr",
        certs.join("svid.csr").to_str().unwrap(),
        "--out",
        svid.to_str().unwrap(),
        "--output",
        "json",
    ]));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(w.tmp.path().join("mtls.log")).unwrap();
    let mut child = w
        .tenure()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--tls-client-certs"])
        .args(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .stderr(log)
        .spawn()
        .unwrap();
    let ca = certs.join("test-ca.pem");
    let base = format!("https://127.0.0.1:{port}");
    let up = tls_up(&ca, &format!("{base}/livez"));
    let result = std::panic::catch_unwind(|| {
        assert!(up, "no TLS answer: {}", std::fs::read_to_string(w.tmp.path().join("mtls.log")).unwrap_or_default());
        let ask = r#"{"kind": "jwt-svid", "audience": ["payments"], "ttl": "5m"}"#;
        let url = format!("{base}/v1/credentials");
        // The SVID as client certificate: the workload itself, asking for a JWT-SVID of its own.
        let (_, status, body) = mtls(&ca, Some((&svid, &certs.join("svid.key"))), &url, ask);
        assert_eq!(status, 201, "{body}");
        assert_eq!(json(&body)["identity"], "service-registry:svc-billing", "{body}");
        // No certificate and no token: 401; a certificate tenure's CA did not sign: no handshake.
        let (_, status, _) = mtls(&ca, None, &url, ask);
        assert_eq!(status, 401);
        let (exit, _, _) = mtls(&ca, Some((&stranger, &stranger_key)), &url, ask);
        assert_ne!(exit, 0, "a client certificate from another CA was taken");
        // Revoked, the SVID still chains to the CA, and is refused at once.
        let id = issued["id"].as_str().unwrap();
        w.ok(&["creds", "revoke", id, "--reason", "key leaked"]);
        let (_, status, body) = mtls(&ca, Some((&svid, &certs.join("svid.key"))), &url, ask);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("EN0012"), "{body}");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
