//! Helpers: a data dir, the `tenure` binary, a throwaway slapd, and independent LDAP checks
//! with `ldapsearch` (a client tenure did not write).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tenure_testkit::postgres::LocalPostgres;
use tenure_testkit::quickstart::{Quickstart, env_of};
use tenure_testkit::scim::LocalScim;
use tenure_testkit::slapd::LocalSlapd;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn quickstart_policy() -> PathBuf {
    repo().join("examples/quickstart/policy")
}

/// Copy a directory tree (a policy bundle, to edit a copy).
/// Import the quickstart's feeds of `sources` (`examples/quickstart/feeds/SOURCE.jsonl`) and
/// run the jobs they make.
pub fn quickstart_feeds(w: &World, sources: &[&str]) {
    for source in sources {
        let feed = repo().join(format!("examples/quickstart/feeds/{source}.jsonl"));
        w.ok(&["import", "--source", source, feed.to_str().unwrap()]);
    }
    w.ok(&["jobs", "run"]);
}

/// The quickstart's HR feed, imported and provisioned.
pub fn hr(w: &World) {
    quickstart_feeds(w, &["hr"]);
}

/// The quickstart's people and workloads imported and provisioned (`wl-deployer` may deploy).
pub fn workloads(w: &World) {
    let registry = repo().join("examples/quickstart/feeds/service-registry.jsonl");
    hr(w);
    w.ok(&["import", "--source", "service-registry", registry.to_str().unwrap()]);
    w.ok(&["jobs", "run"]);
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A data dir, the quickstart's three downstream systems (a slapd, a PostgreSQL cluster, a
/// SCIM service), and the environment the quickstart policy reads.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub slapd: LocalSlapd,
    pub pg: LocalPostgres,
    pub scim: LocalScim,
}

impl World {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // Fails loudly, with the install command, where a server is missing.
        let Quickstart { slapd, pg, scim } =
            rt.block_on(Quickstart::start(tmp.path())).unwrap_or_else(|e| panic!("{e}"));
        // The data dir exists, as `tenure init` or a service manager leaves it.
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        Self { tmp, slapd, pg, scim }
    }

    /// The variables the quickstart's systems name.
    pub fn env(&self) -> std::collections::BTreeMap<String, String> {
        env_of(&self.slapd, &self.pg, &self.scim).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `tenure` with this world's data dir, the quickstart policy and LDAP settings.
    pub fn tenure(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tenure"));
        c.env("TENURE_DATA_DIR", self.data_dir())
            .env("TENURE_POLICY", quickstart_policy())
            .envs(self.env())
            // Verbose logs, so the secrets test sees everything tenure would ever log.
            .env("TENURE_LOG", "debug");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.tenure().args(args).output().unwrap()
    }

    /// Run and require success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "tenure {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    /// Run and require exit status 1 (the work ran and some of it failed); stdout and stderr.
    pub fn fails(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "tenure {args:?}:\n{}{}", stdout(&out), stderr(&out));
        (stdout(&out), stderr(&out))
    }

    /// The ledger's entries, read the way an auditor would: `tenure ledger export`.
    pub fn ledger(&self) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        self.ok(&["ledger", "export", out.to_str().unwrap()]);
        let text = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The ledger's entries of one action.
    pub fn ledger_of(&self, action: &str) -> Vec<serde_json::Value> {
        self.ledger().into_iter().filter(|e| e["action"] == action).collect()
    }

    /// Job counts by state (`tenure jobs status --output json`).
    pub fn job_counts(&self) -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&self.ok(&["jobs", "status", "--output", "json"])).unwrap();
        status["counts"].clone()
    }

    /// `tenure jobs status --output json`, with the jobs in `state`.
    pub fn jobs(&self, state: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["jobs", "status", "--state", state, "--output", "json"])).unwrap()
    }

    pub fn identities(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["identities", "list", "--output", "json"])).unwrap()
    }

    /// `ldapsearch` as the directory admin; returns LDIF.
    pub fn ldapsearch(&self, filter: &str, attrs: &[&str]) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.slapd.url(),
                "-D",
                &self.slapd.bind_dn,
                "-w",
                &self.slapd.password,
            ])
            .args(["-b", &self.slapd.base_dn, filter])
            .args(attrs)
            .output()
            .expect("ldapsearch not found: apt-get install ldap-utils");
        assert!(out.status.success(), "ldapsearch failed: {}", stderr(&out));
        stdout(&out)
    }
}

impl World {
    /// An LDAP tool (`ldapadd`, `ldapmodify`, `ldapdelete`) as the directory admin, LDIF on
    /// stdin: a change made outside tenure.
    pub fn ldap_admin(&self, tool: &str, stdin: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.slapd.url(), "-D", &self.slapd.bind_dn, "-w", &self.slapd.password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install ldap-utils)"));
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "{tool} failed on:\n{stdin}");
    }

    /// `psql` as the cluster's superuser; the answer, one value per line.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.pg.port.to_string(), "-U", "postgres", "-d", "postgres", "-tAc", sql])
            .output()
            .expect("psql not found: apt-get install postgresql-client");
        assert!(out.status.success(), "psql {sql}: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One JSON event line.
pub fn event(source: &str, id: &str, kind: &str, identity: serde_json::Value) -> String {
    serde_json::json!({ "source": source, "id": id, "type": kind, "at": "2026-11-01T09:00:00Z", "identity": identity })
        .to_string()
}

pub fn human(ext: &str, name: &str, dept: &str) -> serde_json::Value {
    serde_json::json!({ "external_id": ext, "kind": "human", "name": name,
        "attributes": { "department": dept, "employment": "employee" } })
}

pub fn nhi(ext: &str, kind: &str, owner: Option<&str>, expires: &str) -> serde_json::Value {
    serde_json::json!({ "external_id": ext, "kind": kind, "name": ext, "attributes": {},
        "owner": owner, "purpose": "runs things", "expires_at": expires })
}

/// The operator the servers of these tests are administered by: `hr:OPS`, a person in a
/// department no template knows (so it only gets the staff groups).
pub const OPERATOR: &str = "hr:OPS";

impl World {
    /// A token for `identity` with `roles`, issued by the CLI.
    pub fn token(&self, identity: &str, roles: &[&str]) -> String {
        let mut args = vec!["tokens", "issue", "--identity", identity];
        for r in roles {
            args.extend(["--role", r]);
        }
        self.ok(&args).trim().to_owned()
    }

    /// The operator (imported on first use) and its token with every role.
    pub fn operator_token(&self) -> String {
        let path = self.tmp.path().join("operator.token");
        if let Ok(t) = std::fs::read_to_string(&path) {
            return t;
        }
        let ops = serde_json::json!({ "external_id": "OPS", "kind": "human", "name": "Operator",
            "attributes": { "department": "operations", "employment": "employee" } });
        let f = self.file("operator.jsonl", &event("hr", "ops-1", "joined", ops));
        self.ok(&["import", "--source", "hr", f.to_str().unwrap()]);
        // Tokens go to active identities: provision the operator first.
        self.ok(&["jobs", "run"]);
        let t = self.token(
            OPERATOR,
            &["admin", "auditor", "requester", "authorizer", "source:hr", "source:vendors", "source:service-registry"],
        );
        std::fs::write(&path, &t).unwrap();
        t
    }
}

/// A `tenure serve` child process, killed when dropped. Calls carry the operator's token.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub token: String,
    agent: ureq::Agent,
}

impl Server {
    pub fn start(w: &World, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(w, port, extra)
    }

    pub fn start_on(w: &World, port: u16, extra: &[&str]) -> Self {
        let token = w.operator_token();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(w.tmp.path().join("server.log")).unwrap();
        let child = w
            .tenure()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .into();
        let s = Self { child, base: format!("http://127.0.0.1:{port}"), token, agent };
        for _ in 0..200 {
            if s.get("/healthz").0 == 200 {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "tenure serve did not come up; log:\n{}",
            std::fs::read_to_string(w.tmp.path().join("server.log")).unwrap_or_default()
        );
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_as(Some(&self.token), path)
    }

    /// GET with this token (or none).
    pub fn get_as(&self, token: Option<&str>, path: &str) -> (u16, String) {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        match req.call() {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// POST; `Err` when the connection failed (the server is gone).
    pub fn post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        self.post_as(Some(&self.token), path, body)
    }

    /// POST with this token (or none).
    pub fn post_as(&self, token: Option<&str>, path: &str, body: &str) -> Result<(u16, String), String> {
        let mut req = self.agent.post(&format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        req.send(body)
            .map(|mut r| (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()))
            .map_err(|e| e.to_string())
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill9(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The engine in-process on a world's data dir, with a clock the test drives, and its workers.
pub struct Clocked {
    pub clock: std::sync::Arc<tenure_model::FixedClock>,
    pub engine: std::sync::Arc<tenure_engine::Engine>,
    workers: tenure_engine::worker::Workers,
    rt: tokio::runtime::Runtime,
}

impl Clocked {
    /// Starting at 2026-11-20 09:00 UTC.
    pub fn new(w: &World) -> Self {
        Self::at(w, time::macros::datetime!(2026-11-20 09:00 UTC))
    }

    /// Starting at `start`.
    pub fn at(w: &World, start: time::OffsetDateTime) -> Self {
        Self::with(w, start, [], tenure_engine::worker::WorkerConfig::default())
    }

    /// Starting at `start`, its jobs seeing `extra` variables besides the world's, its workers
    /// configured so.
    pub fn with<'a>(
        w: &World,
        start: time::OffsetDateTime,
        extra: impl IntoIterator<Item = (&'a str, String)>,
        config: tenure_engine::worker::WorkerConfig,
    ) -> Self {
        use std::sync::Arc;
        let clock = Arc::new(tenure_model::FixedClock::new(start));
        let engine = Arc::new(tenure_engine::Engine::new(
            Arc::new(tenure_store::SqliteStore::open(&w.data_dir()).unwrap()),
            clock.clone(),
        ));
        let mut env = w.env();
        env.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let workers =
            tenure_engine::worker::Workers::new(engine.clone(), Arc::new(move |k: &str| env.get(k).cloned()), config);
        engine.set_key_dir(&w.data_dir().join("keys"));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { clock, engine, workers, rt }
    }

    /// The HTTP API over this engine and clock, on a loopback port, in a thread of its own; its
    /// jobs run only when the test calls [`Clocked::run`]. Returns the base URL.
    pub fn serve(&self, w: &World) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        self.engine.set_public_url(&base);
        listener.set_nonblocking(true).unwrap();
        let env = w.env();
        let state = tenure_server::AppState {
            engine: self.engine.clone(),
            workers: std::sync::Arc::new(tenure_engine::worker::Workers::new(
                self.engine.clone(),
                std::sync::Arc::new(move |k: &str| env.get(k).cloned()),
                tenure_engine::worker::WorkerConfig::default(),
            )),
            body_timeout: std::time::Duration::from_secs(30),
            data_dir: Some(w.data_dir()),
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, tenure_server::router(state)).await.unwrap();
            });
        });
        base
    }

    /// Run due jobs until none is due.
    pub fn run(&self) {
        self.rt.block_on(self.workers.run_until_idle()).unwrap();
    }

    /// Ingest JSON-lines events.
    pub fn ingest(&self, lines: &str) {
        let events = tenure_engine::ingest::events_from_wire(tenure_engine::parse::json_lines(lines).unwrap()).unwrap();
        self.engine.ingest(&events, &tenure_model::Principal::operator("test")).unwrap();
    }
}
