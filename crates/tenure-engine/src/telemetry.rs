//! What a running tenure has done since it started, for `/metrics`: HTTP requests and their
//! latency per route, job attempts and their duration per system, kind and outcome, connector
//! errors by class, reconciliation runs and their duration, leaver closures and theirs, build
//! and process facts. In memory, per process (a restart starts at zero,
//! as Prometheus counters expect); the gauges read from the store live in `views.rs`.
//!
//! Also the request id a unit of work runs under ([`with_request_id`]): the server sets it
//! around the engine call a request makes, the workers around the job the request caused, and
//! the ledger stamps it on every entry written meanwhile.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds, seconds: from a cached authorization to a slow directory.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Bounds for work that takes seconds to hours (a reconciliation run over a large directory).
const LONG_BUCKETS: [f64; 14] =
    [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0];

#[derive(Clone)]
struct Histogram {
    bounds: &'static [f64; 14],
    /// Observations at or under each bound (not cumulative; summed when written).
    counts: [u64; 14],
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { bounds: &BUCKETS, counts: [0; 14], count: 0, sum: 0.0 }
    }
}

impl Histogram {
    fn long() -> Self {
        Self { bounds: &LONG_BUCKETS, ..Self::default() }
    }

    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| s <= *b)
            && let Some(c) = self.counts.get_mut(i)
        {
            *c += 1;
        }
        self.count += 1;
        self.sum += s;
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name` with `labels` (already escaped).
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (method, route pattern, status) → latency.
    http: BTreeMap<(String, String, u16), Histogram>,
    /// (system, job kind, outcome) → duration.
    jobs: BTreeMap<(String, String, &'static str), Histogram>,
    /// (system, error code) → count.
    connector_errors: BTreeMap<(String, String), u64>,
    /// (system, how the run ended) → duration.
    reconcile: BTreeMap<(String, String), Histogram>,
    /// Identity kind → leaver event to verified close.
    closures: BTreeMap<&'static str, Histogram>,
}

/// The in-memory metrics of one process.
pub struct Telemetry {
    inner: Mutex<Inner>,
    started: time::OffsetDateTime,
    build: Mutex<(String, String)>,
}

impl Telemetry {
    /// Metrics of a process that started at `started`.
    pub fn new(started: time::OffsetDateTime) -> Self {
        Self {
            inner: Mutex::default(),
            started,
            build: Mutex::new((env!("CARGO_PKG_VERSION").to_owned(), "unknown".to_owned())),
        }
    }
}

/// A label value as the text format wants it.
pub(crate) fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Telemetry {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version and commit `tenure_build_info` reports (the binary knows its commit).
    pub fn set_build(&self, version: &str, commit: &str) {
        *self.build.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (version.to_owned(), commit.to_owned());
    }

    /// One HTTP request answered: `route` is the route's pattern (`/v1/identities/{reference}`),
    /// never the raw path, so the label set stays bounded.
    pub fn http(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.inner().http.entry((method.to_owned(), route.to_owned(), status)).or_default().observe(took);
    }

    /// One job attempt: `outcome` is `done`, `retry` or `dead`; a failure's error code (the
    /// `CN…` of a connector error) counts toward the connector errors of its system.
    pub fn job(&self, system: &str, kind: &str, outcome: &'static str, took: Duration, error: Option<&str>) {
        let mut inner = self.inner();
        inner.jobs.entry((system.to_owned(), kind.to_owned(), outcome)).or_default().observe(took);
        if let Some(e) = error {
            let code = e.split_whitespace().next().filter(|c| is_code(c)).unwrap_or("other");
            *inner.connector_errors.entry((system.to_owned(), code.to_owned())).or_default() += 1;
        }
    }

    /// One reconciliation run of `system`, ended `state` (`dry_run`, `applied`, `quarantined`,
    /// `failed`), from its first read to its record.
    pub fn reconcile(&self, system: &str, state: &str, took: Duration) {
        self.inner()
            .reconcile
            .entry((system.to_owned(), state.to_owned()))
            .or_insert_with(Histogram::long)
            .observe(took);
    }

    /// A leaver of `kind` closed (once its transaction committed), `took` after its leaver
    /// event.
    pub(crate) fn closure(&self, kind: &'static str, took: Duration) {
        self.inner().closures.entry(kind).or_insert_with(Histogram::long).observe(took);
    }

    /// The process's own metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let (version, commit) = self.build.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let _ = writeln!(
            out,
            "# HELP tenure_build_info The running build.\n# TYPE tenure_build_info gauge\ntenure_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            label(&version),
            label(&commit)
        );
        let inner = self.inner();
        out.push_str("# HELP tenure_http_request_duration_seconds HTTP requests answered, by route and status.\n# TYPE tenure_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in &inner.http {
            let labels = format!("method=\"{}\",route=\"{}\",status=\"{status}\"", label(method), label(route));
            h.write(out, "tenure_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP tenure_job_duration_seconds Job attempts, by system, kind and outcome (done, retry, dead).\n# TYPE tenure_job_duration_seconds histogram\n");
        for ((system, kind, outcome), h) in &inner.jobs {
            let labels = format!("system=\"{}\",kind=\"{}\",outcome=\"{outcome}\"", label(system), label(kind));
            h.write(out, "tenure_job_duration_seconds", &labels);
        }
        out.push_str("# HELP tenure_connector_errors_total Failed job attempts by system and error code (CN0001 unreachable, …).\n# TYPE tenure_connector_errors_total counter\n");
        for ((system, code), n) in &inner.connector_errors {
            let _ = writeln!(
                out,
                "tenure_connector_errors_total{{system=\"{}\",code=\"{}\"}} {n}",
                label(system),
                label(code)
            );
        }
        out.push_str("# HELP tenure_reconcile_duration_seconds Reconciliation runs, by system and how they ended.\n# TYPE tenure_reconcile_duration_seconds histogram\n");
        for ((system, state), h) in &inner.reconcile {
            let labels = format!("system=\"{}\",state=\"{}\"", label(system), label(state));
            h.write(out, "tenure_reconcile_duration_seconds", &labels);
        }
        out.push_str("# HELP tenure_closure_duration_seconds Leavers closed, by identity kind: from the leaver event to every account and credential verified off.\n# TYPE tenure_closure_duration_seconds histogram\n");
        for (kind, h) in &inner.closures {
            h.write(out, "tenure_closure_duration_seconds", &format!("kind=\"{kind}\""));
        }
        drop(inner);
        process(out, self.started);
    }
}

/// `CN0001`, `EN0012`: two capitals and four digits.
fn is_code(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 6 && b.iter().take(2).all(u8::is_ascii_uppercase) && b.iter().skip(2).all(u8::is_ascii_digit)
}

/// The standard `process_*` metrics, from `/proc/self` (Linux; elsewhere only the start time).
fn process(out: &mut String, started: time::OffsetDateTime) {
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
        started.unix_timestamp()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            kb * 1024
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}",
            fds.count()
        );
    }
    // Fields 14 and 15 (utime, stime) of /proc/self/stat, in USER_HZ, which Linux fixes at 100
    // for what it shows user space. The command name (field 2) may hold spaces: skip past it.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // After ")": field 3 is index 0, so utime (14) is 11 and stime (15) is 12.
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time spent.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
            (ticks(11) + ticks(12)) as f64 / 100.0
        );
    }
}

thread_local! {
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f` with `id` as the current request id: the ledger entries it writes and the jobs it
/// enqueues carry it. Restores the previous one after (nested calls, reused threads).
pub fn with_request_id<T>(id: Option<&str>, f: impl FnOnce() -> T) -> T {
    let before = REQUEST_ID.with(|r| r.replace(id.map(str::to_owned)));
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            REQUEST_ID.with(|r| *r.borrow_mut() = before);
        }
    }
    let _restore = Restore(before);
    f()
}

/// The request id the current unit of work runs under, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.with(|r| r.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_are_escaped() {
        let t = Telemetry::new(time::macros::datetime!(2026-12-01 09:00 UTC));
        t.http("GET", "/v1/identities/{reference}", 200, Duration::from_millis(3));
        t.http("GET", "/v1/identities/{reference}", 200, Duration::from_millis(30));
        t.job("corp\"dir", "sync", "retry", Duration::from_millis(2), Some("CN0001 system unreachable"));
        t.job("corp\"dir", "sync", "dead", Duration::from_millis(2), Some("no code here"));
        let mut out = String::new();
        t.render(&mut out);
        let route = "method=\"GET\",route=\"/v1/identities/{reference}\",status=\"200\"";
        assert!(
            out.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"0.0025\"}} 0")),
            "{out}"
        );
        assert!(
            out.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}} 1")),
            "{out}"
        );
        assert!(
            out.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} 2")),
            "{out}"
        );
        assert!(out.contains(&format!("tenure_http_request_duration_seconds_count{{{route}}} 2")), "{out}");
        assert!(out.contains("tenure_connector_errors_total{system=\"corp\\\"dir\",code=\"CN0001\"} 1"), "{out}");
        assert!(out.contains("tenure_connector_errors_total{system=\"corp\\\"dir\",code=\"other\"} 1"), "{out}");
        assert!(out.contains("tenure_build_info{version="), "{out}");
        assert!(out.contains("process_resident_memory_bytes "), "{out}");
    }

    #[test]
    fn a_request_id_holds_for_its_call_and_is_restored_after() {
        assert_eq!(request_id(), None);
        with_request_id(Some("outer"), || {
            with_request_id(Some("inner"), || assert_eq!(request_id().as_deref(), Some("inner")));
            assert_eq!(request_id().as_deref(), Some("outer"));
        });
        assert_eq!(request_id(), None);
    }
}
