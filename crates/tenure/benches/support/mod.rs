//! What the benchmarks share: the quickstart loaded and active without its systems, the
//! measurement time, `tenure serve` on a data dir, and an HTTP load of 16 clients with latency
//! percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_engine::{Engine, ingest, parse};
use tenure_model::{LifecycleState, SystemClock};
use tenure_policy::Bundle;
use tenure_store::SqliteStore;

#[path = "../../src/quickstart.rs"]
#[allow(dead_code)]
pub mod quickstart;

/// An engine on `data` with the quickstart policy and feeds, every identity active as
/// provisioning would leave it (no directory here), and no jobs.
pub fn quickstart_engine(data: &std::path::Path) -> Arc<Engine> {
    let engine = Arc::new(Engine::new(Arc::new(SqliteStore::open(data).unwrap()), Arc::new(SystemClock)));
    engine.set_key_dir(&data.join("keys"));
    let bundle = Bundle::load(quickstart::policy_files()).unwrap();
    engine.deploy(&bundle, &tenure_model::Principal::operator("bench")).unwrap();
    for (source, name, content) in quickstart::FEEDS {
        let text = std::str::from_utf8(content).unwrap();
        let records = if name.ends_with(".csv") { parse::csv(text) } else { parse::json_lines(text) }.unwrap();
        engine.ingest(&ingest::events_from_wire(records).unwrap(), &tenure_model::Principal::operator(source)).unwrap();
    }
    let mut tx = engine.store().write().unwrap();
    for i in tx.identities().unwrap() {
        tx.set_identity_state(i.id, LifecycleState::Active, engine.clock().now()).unwrap();
    }
    tx.commit().unwrap();
    rusqlite::Connection::open(data.join("tenure.db")).unwrap().execute("DELETE FROM jobs", []).unwrap();
    engine
}

/// `n` active people `bulk:P0000000`… (`Person Number {i}`), inserted in one transaction,
/// each with the attributes `attributes(i)` gives.
#[allow(dead_code)]
pub fn insert_people(
    engine: &Engine,
    n: usize,
    attributes: impl Fn(usize) -> std::collections::BTreeMap<String, String>,
) {
    let version = engine.current_policy().unwrap().version.to_string();
    let mut tx = engine.store().write().unwrap();
    for i in 0..n {
        let r: tenure_model::IdentityRef = format!("bulk:P{i:07}").parse().unwrap();
        tx.insert_identity(&tenure_store::NewIdentity {
            reference: &r,
            kind: tenure_model::IdentityKind::Human,
            name: &format!("Person Number {i}"),
            attributes: &attributes(i),
            owner: None,
            purpose: None,
            expires_at: None,
            state: LifecycleState::Active,
            policy_version: &version,
            at: engine.clock().now(),
        })
        .unwrap();
    }
    tx.commit().unwrap();
}

/// How long each measurement runs (TENURE_BENCH_SECS, default 3).
pub fn secs() -> Duration {
    Duration::from_secs(std::env::var("TENURE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3))
}

/// `tenure serve` on a loopback port over `data`, killed when dropped.
pub struct Serve {
    child: std::process::Child,
    pub base: String,
}

impl Serve {
    pub fn start(data: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // TENURE_BENCH_SERVE_WRAP runs the server under another command (a profiler).
        let wrap = std::env::var("TENURE_BENCH_SERVE_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(w) => {
                let mut c = std::process::Command::new(w);
                c.args(words).arg(env!("CARGO_BIN_EXE_tenure"));
                c
            }
            None => std::process::Command::new(env!("CARGO_BIN_EXE_tenure")),
        };
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("TENURE_DATA_DIR", data)
            .env_remove("TENURE_POLICY")
            .env("TENURE_LOG", "error")
            .stderr(if wrap.is_empty() { std::process::Stdio::null() } else { std::process::Stdio::inherit() })
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        for _ in 0..1200 {
            if agent.get(&format!("{base}/healthz")).call().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }
}

impl Serve {
    /// Its peak resident memory so far, bytes (`VmHWM`).
    #[allow(dead_code)]
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for Serve {
    /// Asked to stop (SIGTERM, so a profiler around it writes its data), killed if it has not
    /// within a minute.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..600 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a load measured.
pub struct Load {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// 16 clients POSTing `body` to `path` for the measurement time, each answer `want`.
pub fn load(base: &str, path: &str, token: &str, content_type: &str, body: &str, want: u16) -> Load {
    let d = secs();
    let t = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut lat = Vec::new();
                    while t.elapsed() < d {
                        let start = Instant::now();
                        let mut r = agent
                            .post(&format!("{base}{path}"))
                            .header("authorization", &format!("Bearer {token}"))
                            .header("content-type", content_type)
                            .send(body)
                            .unwrap();
                        assert_eq!(r.status().as_u16(), want);
                        // Read to the end, as a client does: only then does the connection go
                        // back to the agent's pool and carry the next request (kept alive).
                        r.body_mut().read_to_vec().unwrap();
                        lat.push(start.elapsed());
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Load { per_sec: latencies.len() as f64 / elapsed.as_secs_f64(), p50: pct(0.5), p99: pct(0.99) }
}
