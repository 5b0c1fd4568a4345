//! Command-line interface. Commands work directly on the data directory (no server needed) and
//! are safe while a server runs on it: SQLite serialises writers across processes.

use crate::listing::{self, Frame};
use crate::{demo, table};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tenure_engine::systems::process_env;
use tenure_engine::worker::{WorkerConfig, Workers};
use tenure_engine::{Deployed, Engine, EngineError, Format, RecordError, ingest, parse};
use tenure_model::GrantState;
use tenure_model::SystemClock;
use tenure_policy::{Bundle, BundleFiles, short_version};
use tenure_store::SqliteStore;

/// Exit code for bad input: a usage error, a rejected batch, an invalid bundle (docs/cli.md
/// lists them all). 0 is success, 1 a failure (work that ran and failed, an internal error).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for what waits for a human: a quarantined snapshot or reconciliation run.
pub const EXIT_HELD: u8 = 3;
/// Exit code for what does not exist: an identity, a request, a job, a run.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code for what the rules refuse or the current state conflicts with: separation of
/// duties, a request already answered, a bundle whose tests fail.
pub const EXIT_REFUSED: u8 = 5;

/// The exit code for an engine error's class.
pub fn exit_code(e: &EngineError) -> u8 {
    match e {
        EngineError::Rejected(_) | EngineError::Invalid { .. } | EngineError::NoPolicy => EXIT_BAD_INPUT,
        EngineError::NotFound(_) | EngineError::NoEntry(_) | EngineError::NoCheckpoint(_) => EXIT_NOT_FOUND,
        EngineError::Refused(_)
        | EngineError::Conflict(_)
        | EngineError::Forbidden(_)
        | EngineError::Unauthenticated(_)
        | EngineError::Transition(_) => EXIT_REFUSED,
        _ => 1,
    }
}

/// Say what the engine refused, and exit with its class's code.
pub fn engine_exit(e: EngineError) -> ExitCode {
    let exit = exit_code(&e);
    report(e.code(), &e.to_string(), exit);
    ExitCode::from(exit)
}

/// An option's value is malformed (a bad `--state`, `--until`, …): exit 2.
pub const CL_BAD_OPTION: &str = "CL0001";
/// The command failed for a reason with no code of its own (IO, a system, the data dir).
pub const CL_FAILED: &str = "CL0002";
/// A file given does not load: a policy bundle, a verifier key, a document to verify.
pub const CL_BAD_INPUT: &str = "CL0003";

/// Whether errors are written as JSON: the failing command was asked for `--output json`.
pub static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Write an error on standard error: `error: MESSAGE`, or under `--output json` one object
/// `{"code", "message", "exit"}` (the API's error shape, with the exit status).
pub fn report(code: &str, message: &str, exit: u8) {
    if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
        // An engine error's text starts with its code, which has a field of its own here.
        let message = message.strip_prefix(code).map_or(message, str::trim_start);
        eprintln!("{}", serde_json::json!({ "code": code, "message": message, "exit": exit }));
    } else {
        eprintln!("error: {message}");
    }
}

/// A filter option's value (`--state`, `--kind`): malformed, it is a bad option (exit 2).
pub fn option<T: std::str::FromStr<Err = String>>(flag: &str, value: Option<&str>) -> Result<Option<T>, ExitCode> {
    value.map(|v| v.parse::<T>().map_err(|e| bad_option(format!("{flag}: {e}")))).transpose()
}

/// A malformed option value: say so and exit 2.
pub fn bad_option(message: impl std::fmt::Display) -> ExitCode {
    report(CL_BAD_OPTION, &message.to_string(), EXIT_BAD_INPUT);
    ExitCode::from(EXIT_BAD_INPUT)
}

#[derive(Parser)]
#[command(
    name = "tenure",
    version = env!("TENURE_VERSION"),
    about = "Identity lifecycle governance for people, services, workloads and AI agents"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Where tenure keeps its state (SQLite database).
    #[arg(long, global = true, env = "TENURE_DATA_DIR", default_value = "./tenure-data")]
    pub data_dir: PathBuf,
    /// Policy bundle deployed when none is yet (its tests must pass); afterwards only
    /// `tenure policy deploy` changes policy, and this is only compared with the deployed one.
    /// Default: ./policy.
    #[arg(long, global = true, env = "TENURE_POLICY")]
    pub policy: Option<PathBuf>,
    /// How log lines (standard error) are written: text (coloured only on a terminal, never
    /// with NO_COLOR) or json (one object per line).
    #[arg(long, global = true, env = "TENURE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What commands print on standard output: table (for people) or json (one document, for
    /// programs); under json, errors on standard error are JSON objects too.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// A TOML file of settings, under the environment and the flags (docs/deployment.md).
    #[arg(long, global = true, env = "TENURE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Attempts before a job is dead-lettered (wherever jobs run: serve, jobs run, creds, reconcile).
    #[arg(long, global = true, env = "TENURE_JOB_MAX_ATTEMPTS", default_value_t = 10, help_heading = "Jobs")]
    pub job_max_attempts: i64,
    /// Seconds before a failed job's first retry; doubled per attempt (with ±50 % jitter).
    #[arg(long, global = true, env = "TENURE_JOB_BACKOFF_SECS", default_value_t = 1, help_heading = "Jobs")]
    pub job_backoff_secs: i64,
    /// The longest wait between retries, seconds.
    #[arg(long, global = true, env = "TENURE_JOB_BACKOFF_MAX_SECS", default_value_t = 300, help_heading = "Jobs")]
    pub job_backoff_max_secs: i64,
}

/// How jobs run, as the flags and environment say.
pub fn worker_config(g: &Global) -> WorkerConfig {
    WorkerConfig {
        max_attempts: g.job_max_attempts.max(1),
        backoff_base: time::Duration::seconds(g.job_backoff_secs.max(0)),
        backoff_max: time::Duration::seconds(g.job_backoff_max_secs.max(g.job_backoff_secs).max(0)),
        ..WorkerConfig::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API and the job workers.
    Serve {
        #[arg(long, env = "TENURE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Jobs run at once.
        #[arg(long, env = "TENURE_WORKERS", default_value_t = 4)]
        workers: usize,
        /// Seconds a claimed job stays reserved; after a crash its job is retried after this.
        #[arg(long, env = "TENURE_JOB_LEASE_SECS", default_value_t = 30)]
        job_lease_secs: i64,
        /// Connections open at once; more are closed as they arrive.
        #[arg(long, env = "TENURE_MAX_CONNECTIONS", default_value_t = 1024)]
        max_connections: usize,
        /// Seconds a client has to send a request's headers; also the longest a kept-alive
        /// connection may sit idle (longer than clients keep idle connections, so a client does
        /// not send on one the server is just closing).
        #[arg(long, env = "TENURE_HEADER_TIMEOUT_SECS", default_value_t = 30)]
        header_timeout_secs: u64,
        /// Authentication failures a client address may make in a minute before each further
        /// answer is delayed (100 ms more per failure, at most 5 s).
        #[arg(long, env = "TENURE_AUTH_FAILURES_PER_MINUTE", default_value_t = tenure_engine::tokens::FREE_FAILURES)]
        auth_failures_per_minute: u32,
        /// Seconds a client has to send a request's body.
        #[arg(long, env = "TENURE_BODY_TIMEOUT_SECS", default_value_t = 30)]
        body_timeout_secs: u64,
        /// Where clients reach this server (behind a proxy: its URL); the discovery document's
        /// endpoints hang off it. Default: `http://` and the listen address.
        #[arg(long, env = "TENURE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Seconds between signed ledger checkpoints (when the ledger grew).
        #[arg(long, env = "TENURE_CHECKPOINT_SECS", default_value_t = 60)]
        checkpoint_secs: u64,
        /// When no admin token exists yet: issue one to this person (`source:external_id`,
        /// active) and write it to DATA_DIR/bootstrap-admin.token (mode 0600).
        #[arg(long, env = "TENURE_BOOTSTRAP_ADMIN")]
        bootstrap_admin: Option<String>,
        /// Serve over TLS with this certificate chain (PEM); reread on SIGHUP.
        #[arg(long, env = "TENURE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM, PKCS#8, PKCS#1 or SEC1).
        #[arg(long, env = "TENURE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Let workloads authenticate with the X.509-SVID tenure issued them, as their TLS client
        /// certificate (verified against tenure's trust bundle; a bearer token still works).
        #[arg(long, env = "TENURE_TLS_CLIENT_CERTS", requires = "tls_cert")]
        tls_client_certs: bool,
        /// Also serve `GET /metrics` here, plain HTTP and without a token (an address only the
        /// monitoring network reaches); on the API it still needs admin or auditor.
        #[arg(long, env = "TENURE_METRICS_LISTEN")]
        metrics_listen: Option<String>,
    },
    /// Import lifecycle events from a `.jsonl` or `.csv` file (or `-`, standard input); all or
    /// nothing. Records name their own sources: a file may mix them. A source with a mapping
    /// (`[sources.NAME.mapping]`) is read in its own format instead: each record is compared
    /// with what tenure holds, and becomes the joiner, mover or leaver it means.
    Import {
        /// The source every record must come from (a feed of one source checked as such); for
        /// a source with a mapping, the source whose export this is.
        #[arg(long)]
        source: Option<String>,
        /// How standard input is written (a file's extension says it otherwise).
        #[arg(long, value_enum)]
        format: Option<FeedFormat>,
        /// The file is the source's full export: who it no longer lists leaves (past the
        /// mapping's threshold, nothing is applied until --accept-leavers).
        #[arg(long, requires = "source")]
        snapshot: bool,
        /// Show what a mapped import or snapshot would do; apply nothing.
        #[arg(long, requires = "source")]
        dry_run: bool,
        /// Apply a snapshot past its threshold: the number of leavers it makes, as its preview
        /// showed.
        #[arg(long, requires = "snapshot")]
        accept_leavers: Option<usize>,
        /// The file, or `-` for standard input.
        file: PathBuf,
    },
    /// Show identities.
    #[command(subcommand)]
    Identities(IdentitiesCommand),
    /// Inspect and run provisioning jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Check policy bundles.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The ledger: checkpoints, proofs, export, offline verification, replay (`tenure audit …`
    /// still works).
    #[command(subcommand, visible_alias = "audit")]
    Ledger(crate::ledger::LedgerCommand),
    /// API tokens: issue, list, revoke.
    #[command(subcommand)]
    Tokens(crate::govern::TokensCommand),
    /// Short-lived credentials for NHIs: issue, list, revoke, rotate, introspect.
    #[command(subcommand)]
    Creds(crate::creds::CredsCommand),
    /// Access, JIT and exception requests.
    #[command(subcommand)]
    Requests(crate::govern::RequestsCommand),
    /// Closure certificates of leavers: show, verify offline.
    #[command(subcommand)]
    Closure(crate::govern::ClosureCommand),
    /// Access review campaigns: start, list, show, decide, release, report, verify offline.
    #[command(subcommand)]
    Reviews(crate::reviews::ReviewsCommand),
    /// The posture report: OWASP Non-Human Identities Top 10, NIST CSF 2.0 `PR.AA` and the
    /// NIST AI RMF, each check with its evidence (identities, ledger entries, findings).
    Posture(crate::posture::PostureArgs),
    /// Read systems whole: accounts and memberships made outside tenure, access surviving a
    /// leaver; act within policy, prove each run (`reconcile runs|show|verify|release`).
    Reconcile(crate::reconcile::ReconcileArgs),
    /// The downstream systems of the policy: can tenure reach and use each (`systems check`).
    #[command(subcommand)]
    Systems(crate::systems::SystemsCommand),
    /// What people must look at: grants guardrails blocked, drift, accounts nobody governs,
    /// expiry notices; oldest first.
    Findings {
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
        /// Only resolved ones.
        #[arg(long, conflicts_with = "all")]
        resolved: bool,
        /// Only those about this system.
        #[arg(long)]
        system: Option<String>,
        /// Only this kind, or this reconciliation class (`unmatched`, `orphan`, …).
        #[arg(long)]
        class: Option<String>,
    },
    /// Make a data dir (DIR, else --data-dir) and, unless one is there, a starter policy bundle
    /// at --policy (default ./policy). Other commands refuse a data dir that does not exist.
    Init { dir: Option<PathBuf> },
    /// The configuration in force: each setting, its value and where it came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script: `tenure completions bash > /etc/bash_completion.d/tenure`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run the quickstart end to end on a throwaway data dir and slapd; print what LDAP holds.
    Demo {
        /// Keep tenure's data dir here (a new directory) to explore afterwards: the ledger, its
        /// export, the closure certificates. The directory servers are still thrown away.
        #[arg(long, value_name = "DIR", conflicts_with = "systems")]
        keep: Option<PathBuf>,
        /// Only start the quickstart's systems (slapd, PostgreSQL, a SCIM app) and print the
        /// variables its policy reads as `export` lines; keep them running until stopped.
        #[arg(long)]
        systems: bool,
    },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Every setting's effective value and origin (flag, environment, file, default), and the
    /// TENURE_* variables a policy bundle may read; secrets redacted.
    Show,
}

#[derive(Subcommand)]
pub enum IdentitiesCommand {
    /// Identities in reference order, streamed a page at a time (any number of them).
    List {
        /// Only in this lifecycle state (pending, active, suspended, leaving, closed, deleting, deleted).
        #[arg(long)]
        state: Option<String>,
        /// Only of this kind (human, service, workload, agent).
        #[arg(long)]
        kind: Option<String>,
        /// Only from this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// One identity (`source:external_id`) with grants, accounts and timeline.
    Show { reference: String },
    /// Extend an NHI's or a contractor's expiry (within the policy's maximum lifetime),
    /// recorded with who and why; an identity its expiry suspended resumes.
    Renew {
        reference: String,
        /// The new expiry (RFC 3339).
        #[arg(long, conflicts_with = "days", required_unless_present = "days")]
        until: Option<String>,
        /// The new expiry, this many days from now.
        #[arg(long)]
        days: Option<u32>,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
    },
    /// Reconfirm an NHI as its owner (ownership attestation, docs/reviews.md): the next
    /// deadline starts now, and one a missed attestation suspended resumes.
    Attest {
        reference: String,
        /// The owner (`source:external_id`) attesting.
        #[arg(long = "as")]
        owner: String,
        /// Why it is still needed (recorded in the ledger).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Job counts by state, and the jobs that failed (dead-lettered, or waiting for a retry),
    /// each with its attempts and last error (or the jobs in `--state`).
    Status {
        /// List the jobs in this state instead: pending, running, done, dead.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind: sync, credentials, drift, notify.
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs for this system.
        #[arg(long)]
        system: Option<String>,
        /// Only this identity's jobs (`source:external_id`).
        #[arg(long)]
        identity: Option<String>,
    },
    /// Run due jobs until none is due (what `serve` does continuously).
    Run,
    /// Put dead-lettered jobs back in the queue (one, one identity's, or all), to run again
    /// with a fresh attempt count; recorded in the ledger.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "dead", "identity"])))]
    Retry {
        /// This job (its id in `jobs status`); it must be dead.
        id: Option<i64>,
        /// Every dead job.
        #[arg(long)]
        dead: bool,
        /// This identity's dead jobs (`source:external_id`).
        #[arg(long)]
        identity: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a bundle (manifest, templates, Cedar schema and rules) and print its version.
    Check { dir: PathBuf },
    /// Run the bundle's own test cases (tests/*.toml); exits non-zero if any fails.
    Test { dir: PathBuf },
    /// What deploying DIR would change for the current population.
    Diff { dir: PathBuf },
    /// Make DIR the current policy: shows what changes, runs the bundle's own tests and refuses
    /// when one fails (unless --force); recorded in the ledger with both versions.
    Deploy {
        dir: PathBuf,
        /// Deploy although test cases fail; the ledger entry names them, with --reason.
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the failing cases do not matter (required with --force).
        #[arg(long, requires = "force")]
        reason: Option<String>,
        /// Accept a changed attribute mapping rewriting this many accounts past a system's
        /// threshold (`max_changes`; the number `tenure policy diff` shows, which must match).
        #[arg(long, value_name = "N")]
        accept_remap: Option<usize>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    let output = g.output;
    match cli.command {
        Command::Serve {
            listen,
            workers,
            job_lease_secs,
            max_connections,
            header_timeout_secs,
            body_timeout_secs,
            auth_failures_per_minute,
            public_url,
            checkpoint_secs,
            bootstrap_admin,
            tls_cert,
            tls_key,
            tls_client_certs,
            metrics_listen,
        } => {
            let limits = tenure_server::listen::Limits {
                max_connections,
                header_timeout: std::time::Duration::from_secs(header_timeout_secs.max(1)),
            };
            let body_timeout = std::time::Duration::from_secs(body_timeout_secs.max(1));
            let opts = ServeOptions {
                listen,
                workers,
                lease_secs: job_lease_secs,
                limits,
                body_timeout,
                auth_failures_per_minute,
                public_url,
                checkpoint_secs,
                bootstrap_admin,
                tls: tls_cert.zip(tls_key),
                tls_client_certs,
                metrics_listen,
            };
            serve(&g, opts).await
        }
        Command::Import { source, format, snapshot, dry_run, accept_leavers, file } => {
            let mode = tenure_engine::import::ImportMode { snapshot, dry_run, accept_leavers };
            import(&g, source.as_deref(), format, mode, &file)
        }
        Command::Identities(IdentitiesCommand::List { state, kind, source }) => {
            let filter = tenure_engine::IdentityFilter {
                state: match crate::cli::option("--state", state.as_deref()) {
                    Ok(s) => s,
                    Err(code) => return Ok(code),
                },
                kind: match crate::cli::option("--kind", kind.as_deref()) {
                    Ok(k) => k,
                    Err(code) => return Ok(code),
                },
                source,
            };
            let engine = open(&g.data_dir)?;
            let header = ["REF", "KIND", "STATE", "OWNER", "GRANTS", "NAME"];
            let row = |i: &tenure_proto::IdentityView| -> Vec<String> {
                vec![
                    i.reference.clone(),
                    i.kind.clone(),
                    i.state.clone(),
                    i.owner.clone().unwrap_or_default(),
                    i.grants
                        .iter()
                        .filter(|g| g.state.parse::<GrantState>().is_ok_and(GrantState::is_wanted))
                        .count()
                        .to_string(),
                    i.name.clone(),
                ]
            };
            listing::stream(output, Frame::array(), &header, row, |after: Option<String>| {
                engine.identities_page(&filter, after.as_deref(), listing::PAGE)
            })
        }
        Command::Identities(IdentitiesCommand::Show { reference }) => {
            let engine = open(&g.data_dir)?;
            let d = match engine.identity_detail(&reference) {
                Ok(d) => d,
                Err(e) => return Ok(engine_exit(e)),
            };
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&d)?),
                Output::Table => print!("{}", show_text(&d)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Identities(IdentitiesCommand::Renew { reference, until, days, reason }) => {
            let engine = open(&g.data_dir)?;
            let until = match (until, days) {
                (Some(u), _) => match time::OffsetDateTime::parse(&u, &time::format_description::well_known::Rfc3339) {
                    Ok(t) => t,
                    Err(e) => {
                        return Ok(bad_option(format!("--until: expected an RFC 3339 time, found `{u}` ({e})")));
                    }
                },
                (None, Some(d)) => {
                    let t = engine.clock().now() + time::Duration::days(i64::from(d));
                    t.replace_nanosecond(0).unwrap_or(t)
                }
                (None, None) => unreachable!("clap requires --until or --days"),
            };
            match engine.renew(&operator(), &reference, until, &reason) {
                Ok(i) => {
                    match output {
                        Output::Json => println!("{}", serde_json::to_string_pretty(&i)?),
                        Output::Table => println!(
                            "renewed {} until {} ({})",
                            i.reference,
                            i.expires_at.as_deref().unwrap_or("-"),
                            i.state
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            }
        }
        Command::Identities(IdentitiesCommand::Attest { reference, owner, reason }) => {
            let engine = open(&g.data_dir)?;
            let who: tenure_model::IdentityRef = match owner.parse() {
                Ok(r) => r,
                Err(e) => return Ok(bad_option(format!("--as: {e}"))),
            };
            match engine.attest(&tenure_model::Principal::local(who, []), &reference, &reason) {
                Ok(i) => {
                    match output {
                        Output::Json => println!("{}", serde_json::to_string_pretty(&i)?),
                        Output::Table => println!("attested {} by {owner} ({})", i.reference, i.state),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            }
        }
        Command::Jobs(JobsCommand::Status { state, kind, system, identity }) => {
            let filter = tenure_engine::lists::JobFilter {
                state: match crate::cli::option("--state", state.as_deref()) {
                    Ok(s) => s,
                    Err(code) => return Ok(code),
                },
                kind: match crate::cli::option("--kind", kind.as_deref()) {
                    Ok(k) => k,
                    Err(code) => return Ok(code),
                },
                system,
                identity,
            };
            let engine = open(&g.data_dir)?;
            // The counts come first: in JSON beside the list, in a table above it.
            let counts = match engine.jobs_page(&filter, None, 1) {
                Ok((view, _)) => view.counts,
                Err(e) => return Ok(engine_exit(e)),
            };
            let frame = match output {
                Output::Json => Frame {
                    open: format!("{{\"counts\": {},\n\"jobs\": [", serde_json::to_string(&counts)?),
                    close: "]}",
                },
                Output::Table => {
                    for (state, n) in &counts {
                        println!("{state:<8} {n}");
                    }
                    Frame::array()
                }
            };
            let row = |j: &tenure_proto::JobView| {
                vec![format!(
                    "{} job {}: {} {} of {} after {} attempts{}",
                    j.state,
                    j.id,
                    j.kind,
                    j.system,
                    if j.identity.is_empty() { &j.account } else { &j.identity },
                    j.attempts,
                    j.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                )]
            };
            listing::stream(output, frame, &[], row, |after| {
                engine.jobs_page(&filter, after, listing::PAGE).map(|(v, next)| (v.jobs, next))
            })
        }
        Command::Jobs(JobsCommand::Retry { id, dead: _, identity }) => {
            use tenure_engine::worker::RetryJobs;
            let engine = open(&g.data_dir)?;
            let which = match (id, identity.as_deref()) {
                (Some(id), _) => RetryJobs::One(id),
                (None, Some(r)) => RetryJobs::OfIdentity(r),
                (None, None) => RetryJobs::Dead,
            };
            match engine.retry_dead_jobs(which, &operator()) {
                Ok(ids) => {
                    match output {
                        Output::Json => println!("{}", serde_json::json!({ "requeued": ids })),
                        Output::Table => println!(
                            "re-queued {} dead job(s){}",
                            ids.len(),
                            if ids.is_empty() { String::new() } else { format!(": {ids:?}") }
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(engine_exit(e)),
            }
        }
        Command::Jobs(JobsCommand::Run) => {
            let engine = open(&g.data_dir)?;
            ensure_policy(&engine, g.policy.as_deref())?;
            let expired = engine.tick()?;
            let workers = Workers::new(engine, process_env(), worker_config(&g));
            let report = workers.run_until_idle_report().await?;
            let dead = report.failed.iter().filter(|f| f.2).count();
            if output == Output::Json {
                let failures: Vec<serde_json::Value> = report
                    .failed
                    .iter()
                    .map(|(job, error, dead)| {
                        serde_json::json!({ "id": job.id, "kind": job.kind.as_str(), "system": job.system,
                            "account": job.account, "error": error, "dead": dead })
                    })
                    .collect();
                let out = serde_json::json!({
                    "ran": report.ran,
                    "done": report.verified,
                    "retry": report.failed.len() - dead,
                    "dead": dead,
                    "failures": failures,
                    "clock": {
                        "grants_expired": expired.grants,
                        "requests_expired": expired.requests,
                        "suspended": expired.suspended,
                        "expiring": expired.expiring,
                        "expired": expired.expired,
                        "deleting": expired.deleting,
                        "stalled": expired.stalled,
                        "posture": expired.posture,
                    },
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for g in &expired.grants {
                    println!("expired: {g}");
                }
                for r in &expired.requests {
                    println!("expired: request {r} (undecided)");
                }
                for n in &expired.suspended {
                    println!("suspended: {n} (nobody took it over by its deadline)");
                }
                for n in &expired.expiring {
                    println!("expiring: {n} (a notice; see `tenure findings`)");
                }
                for n in &expired.expired {
                    println!("expired: {n}");
                }
                for n in &expired.deleting {
                    println!("deleting: the accounts of {n} (its grace period ended)");
                }
                for n in &expired.stalled {
                    println!("stalled: {n} was leaving with no job carrying its closure; re-queued");
                }
                if let Some(p) = &expired.posture {
                    println!("posture: {p}");
                }
                println!(
                    "ran {} job(s): {} done, {} failed and will be retried, {dead} dead",
                    report.ran,
                    report.verified,
                    report.failed.len() - dead
                );
                for (job, error, dead) in &report.failed {
                    eprintln!(
                        "{} job {}: {} {}{}: {error}",
                        if *dead { "dead" } else { "failed" },
                        job.id,
                        job.kind.as_str(),
                        job.system,
                        if job.account.is_empty() { String::new() } else { format!(" ({})", job.account) }
                    );
                }
            }
            // Failed work is a failure, even when it will be retried.
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Policy(PolicyCommand::Check { dir }) => crate::govern::policy_check(&dir, output),
        Command::Policy(PolicyCommand::Test { dir }) => crate::govern::policy_test(&dir, output),
        Command::Policy(PolicyCommand::Diff { dir }) => crate::govern::policy_diff(&g, &dir, output),
        Command::Policy(PolicyCommand::Deploy { dir, force: _, reason, accept_remap }) => {
            crate::govern::policy_deploy(&g, &dir, reason.as_deref(), accept_remap)
        }
        Command::Ledger(cmd) => crate::ledger::run(&g, cmd),
        Command::Systems(cmd) => crate::systems::run(&g, cmd).await,
        Command::Tokens(cmd) => crate::govern::tokens(&g, cmd),
        Command::Creds(cmd) => crate::creds::run(&g, cmd).await,
        Command::Requests(cmd) => crate::govern::requests(&g, cmd),
        Command::Closure(cmd) => crate::govern::closure(&g, cmd),
        Command::Reviews(cmd) => crate::reviews::reviews(&g, cmd),
        Command::Posture(args) => crate::posture::run(&g, args),
        Command::Findings { all, resolved, system, class } => crate::govern::findings(
            &g,
            tenure_engine::views::FindingFilter { all: all || resolved, resolved_only: resolved, system, kind: class },
        ),
        Command::Reconcile(args) => crate::reconcile::run(&g, args).await,
        Command::Demo { systems: true, .. } => demo::systems(output == Output::Json).await,
        Command::Demo { .. } if output == Output::Json => Ok(bad_option(
            "the demo is a walk-through for people; --output json does not apply (`demo --systems` has it)",
        )),
        Command::Demo { keep, .. } => demo::run(keep.as_deref()).await,
        Command::Init { dir } => init(&g, dir.as_deref(), g.policy.as_deref().unwrap_or(Path::new("policy"))),
        Command::Config(ConfigCommand::Show) => {
            if let Some((matches, file)) = crate::config::LAYERED.get() {
                crate::config::show(matches, file, g.config.as_deref(), output)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        // A shell script is the only thing completions can print.
        Command::Completions { .. } if output == Output::Json => {
            Ok(bad_option("completions prints a shell script; --output json does not apply"))
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tenure", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The operator at the command line: trusted like the database; the ledger names it `cli`.
pub fn operator() -> tenure_model::Principal {
    tenure_model::Principal::operator("cli")
}

/// Standard output's reader went away (`tenure … | head`): end quietly, exit 141.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// A listing as pretty JSON, or as a table of `row`s under `headers`.
pub fn print_list<T: serde::Serialize>(
    output: Output,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Output::Table => {
            let rows: Vec<Vec<String>> = items.iter().map(row).collect();
            print!("{}", table::render(headers, &rows));
        }
    }
    Ok(())
}

fn show_text(d: &tenure_proto::IdentityDetail) -> String {
    let i = &d.identity;
    let mut out = format!("{} ({}) — {}\n  state: {}\n", i.reference, i.kind, i.name, i.state);
    if let Some(o) = &i.owner {
        out.push_str(&format!("  owner: {o}\n"));
    }
    if let Some(p) = &i.purpose {
        out.push_str(&format!("  purpose: {p}\n"));
    }
    if let Some(x) = &i.expires_at {
        out.push_str(&format!("  expires: {x}\n"));
    }
    for (k, v) in &i.attributes {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out.push_str("grants:\n");
    let rows: Vec<Vec<String>> =
        i.grants.iter().map(|g| vec![g.entitlement.clone(), g.state.clone(), g.origin.clone()]).collect();
    out.push_str(&indent(&table::render(&["ENTITLEMENT", "STATE", "ORIGIN"], &rows)));
    out.push_str("accounts:\n");
    let rows: Vec<Vec<String>> =
        d.accounts.iter().map(|a| vec![a.system.clone(), a.account.clone(), a.state.clone()]).collect();
    out.push_str(&indent(&table::render(&["SYSTEM", "ACCOUNT", "STATE"], &rows)));
    out.push_str("timeline:\n");
    let rows: Vec<Vec<String>> = d
        .timeline
        .iter()
        .map(|t| {
            vec![
                t.seq.to_string(),
                t.at.clone(),
                t.actor.clone(),
                t.action.clone(),
                short_version(&t.policy_version).to_owned(),
            ]
        })
        .collect();
    out.push_str(&indent(&table::render(&["SEQ", "AT", "ACTOR", "ACTION", "POLICY"], &rows)));
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// Open the engine on a data directory.
pub fn open(data_dir: &Path) -> anyhow::Result<Arc<Engine>> {
    require_data_dir(data_dir)?;
    let store = SqliteStore::open(data_dir).with_context(|| format!("opening data dir `{}`", data_dir.display()))?;
    let engine = Engine::new(Arc::new(store), Arc::new(SystemClock));
    // The credential broker's private keys, beside the database (never in it).
    engine.set_key_dir(&data_dir.join("keys"));
    Ok(Arc::new(engine))
}

/// A data dir must exist (`tenure init` makes one; an empty directory, such as one a service
/// manager created, is fine): a mistyped `--data-dir` is an error, not a new empty database.
pub fn require_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.is_dir() {
        return Ok(());
    }
    Err(EngineError::NotFound(format!(
        "data dir `{}` (make one with `tenure init {}`, or pass the right --data-dir)",
        data_dir.display(),
        data_dir.display()
    ))
    .into())
}

/// `tenure init`: a data dir (mode 0700, its database and ledger key made) and, where there is
/// none yet, a starter policy bundle (the quickstart's) to edit.
fn init(g: &Global, dir: Option<&Path>, policy: &Path) -> anyhow::Result<ExitCode> {
    let data_dir = dir.unwrap_or(&g.data_dir);
    let existed = data_dir.exists();
    let store = SqliteStore::open(data_dir).with_context(|| format!("making data dir `{}`", data_dir.display()))?;
    drop(store);
    crate::keys::ledger_signer(data_dir)?;
    let wrote_policy = !policy.join("tenure.toml").exists();
    if wrote_policy {
        for (path, bytes) in crate::quickstart::policy_files() {
            let to = policy.join(&path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating `{}`", parent.display()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            use std::io::Write;
            options
                .open(&to)
                .and_then(|mut f| f.write_all(&bytes))
                .with_context(|| format!("writing `{}`", to.display()))?;
        }
    }
    if g.output == Output::Json {
        let doc = serde_json::json!({
            "data_dir": data_dir, "made": !existed, "policy": policy, "wrote_policy": wrote_policy,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} data dir `{}`", if existed { "ready:" } else { "made" }, data_dir.display());
    if wrote_policy {
        println!(
            "wrote a starter policy bundle to `{}` (the quickstart's; edit it, then `tenure policy test`)",
            policy.display()
        );
    } else {
        println!("policy `{}` is there already; left as it is", policy.display());
    }
    println!(
        "next: point the bundle's [systems] at yours, then `tenure --data-dir {} --policy {} import --source hr FEED`",
        data_dir.display(),
        policy.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Read a bundle directory: every regular, non-hidden file, by path relative to the root. A
/// symbolic link to a file inside the bundle is read as that file; any other link (to a
/// directory, outside the bundle, dangling) is an error, never skipped in silence.
pub fn read_bundle_dir(dir: &Path) -> anyhow::Result<BundleFiles> {
    /// `real_root` is `root` resolved, against which a link's target is judged.
    fn walk(root: &Path, real_root: &Path, dir: &Path, out: &mut BundleFiles) -> anyhow::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading policy directory `{}`", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = e.path();
            let mut ft = e.file_type()?;
            if ft.is_symlink() {
                let target = path.canonicalize().map_err(|err| {
                    anyhow::anyhow!("policy bundle: `{}` is a symbolic link that leads nowhere ({err})", path.display())
                })?;
                if !target.starts_with(real_root) {
                    bail!("policy bundle: `{}` links outside the bundle (to `{}`)", path.display(), target.display());
                }
                ft = std::fs::metadata(&target)?.file_type();
                if !ft.is_file() {
                    bail!("policy bundle: `{}` links to a directory; link files only", path.display());
                }
            }
            if ft.is_dir() {
                walk(root, real_root, &path, out)?;
            } else if ft.is_file() {
                let rel = path
                    .strip_prefix(root)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?);
            } else {
                bail!("policy bundle: `{}` is not a regular file", path.display());
            }
        }
        Ok(())
    }
    let real_root = dir.canonicalize().with_context(|| format!("reading policy directory `{}`", dir.display()))?;
    let mut files = BundleFiles::new();
    walk(dir, &real_root, dir, &mut files)?;
    Ok(files)
}

fn load_bundle_dir(dir: &Path) -> anyhow::Result<Result<Bundle, tenure_policy::BundleError>> {
    Ok(Bundle::load(read_bundle_dir(dir)?))
}

/// Make sure a policy is deployed. Only when none is yet does this deploy (`--policy DIR`, else
/// `./policy`), and only once the bundle's own tests pass; afterwards `--policy` is read, never
/// deployed: a bundle that differs from the deployed one is named in a warning, and the
/// deployed one stays in force until `tenure policy deploy`.
pub fn ensure_policy(engine: &Engine, policy: Option<&Path>) -> anyhow::Result<()> {
    if engine.has_policy()? {
        if let Some(dir) = policy {
            let current = engine.current_policy()?;
            match load_bundle_dir(dir) {
                Ok(Ok(b)) if b.version == current.version => {}
                Ok(Ok(b)) => eprintln!(
                    "warning: policy `{}` ({}) is not deployed; the deployed policy {} stays in force \
                     (deploy it with `tenure policy deploy {}`)",
                    dir.display(),
                    b.version.short(),
                    current.version.short(),
                    dir.display()
                ),
                Ok(Err(e)) => eprintln!("warning: policy `{}` (not deployed): {e}", dir.display()),
                Err(e) => eprintln!("warning: policy `{}` (not deployed): {e:#}", dir.display()),
            }
        }
        return Ok(());
    }
    let dir = match policy {
        Some(d) => d.to_owned(),
        None if Path::new("policy/tenure.toml").exists() => PathBuf::from("policy"),
        None => return Err(EngineError::NoPolicy.into()),
    };
    let bundle = match load_bundle_dir(&dir)? {
        Ok(b) => b,
        Err(e) => bail!("policy `{}`: {e}", dir.display()),
    };
    if let Deployed::Changed { from, to, affected, remapped } =
        engine.deploy_tested(&bundle, &operator(), None, None).with_context(|| format!("policy `{}`", dir.display()))?
    {
        eprintln!(
            "deployed policy `{}` {} (was {}); {affected} identities recomputed, {remapped} accounts remapped",
            bundle.name,
            short_version(&to),
            from.as_deref().map_or("none", short_version)
        );
    }
    Ok(())
}

/// A rejected batch: each bad record on its line, or under `--output json` one error object
/// with the records listed as the API lists them (`record`, `field`, `message`).
fn print_record_errors(file: &Path, errors: &[RecordError]) {
    let message = format!("{}: rejected: {} bad record(s); nothing was applied", file.display(), errors.len());
    if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
        let records: Vec<serde_json::Value> = errors
            .iter()
            .map(|e| serde_json::json!({ "record": e.position.number(), "field": e.field, "message": e.message }))
            .collect();
        let code = EngineError::Rejected(Vec::new()).code();
        eprintln!(
            "{}",
            serde_json::json!({ "code": code, "message": message, "exit": EXIT_BAD_INPUT, "errors": records })
        );
        return;
    }
    for e in errors {
        eprintln!("{}: {e}", file.display());
    }
    eprintln!("{message}");
}

/// How a feed on standard input is written.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeedFormat {
    Jsonl,
    Csv,
}

fn import(
    g: &Global,
    source: Option<&str>,
    format: Option<FeedFormat>,
    mode: tenure_engine::import::ImportMode,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let bad = ExitCode::from(EXIT_BAD_INPUT);
    let stdin = file == Path::new("-");
    let format = match (format, Format::from_path(file)) {
        (Some(FeedFormat::Jsonl), _) => Format::JsonLines,
        (Some(FeedFormat::Csv), _) => Format::Csv,
        (None, Some(f)) => f,
        (None, None) if stdin => Format::JsonLines,
        (None, None) => {
            return Ok(bad_option(format!(
                "{}: expected a .jsonl, .ndjson or .csv file (or --format)",
                file.display()
            )));
        }
    };
    let text = if stdin {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).context("reading standard input")?;
        t
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading `{}`", file.display()))?
    };
    let engine = open(&g.data_dir)?;
    ensure_policy(&engine, g.policy.as_deref())?;
    let mapped = source
        .is_some_and(|s| engine.current_policy().is_ok_and(|p| p.sources.get(s).is_some_and(|d| d.mapping.is_some())));
    if let Some(source) = source.filter(|_| mapped) {
        return import_mapped(&engine, source, format, mode, file, &text, g.output);
    }
    if mode.snapshot || mode.dry_run {
        return Ok(bad_option(format!(
            "--snapshot and --dry-run read a source's own export, through its mapping; `{}` has none \
             ([sources.{}.mapping])",
            source.unwrap_or_default(),
            source.unwrap_or_default()
        )));
    }
    let parsed = match format {
        Format::JsonLines => parse::json_lines(&text),
        Format::Csv => parse::csv(&text),
    };
    let records = match parsed {
        Ok(r) => r,
        Err(errors) => {
            print_record_errors(file, &errors);
            return Ok(bad);
        }
    };
    let wrong_source: Vec<RecordError> = records
        .iter()
        .filter(|(_, e)| source.is_some_and(|s| e.source != s))
        .map(|(pos, e)| {
            let source = source.unwrap_or_default();
            RecordError::new(
                *pos,
                "source",
                format!("expected `{source}` (the --source of this import), found `{}`", e.source),
            )
        })
        .collect();
    if !wrong_source.is_empty() {
        print_record_errors(file, &wrong_source);
        return Ok(bad);
    }
    let events = match ingest::events_from_wire(records) {
        Ok(e) => e,
        Err(errors) => {
            print_record_errors(file, &errors);
            return Ok(bad);
        }
    };
    // No progress bar between a program and its JSON (it draws only on a terminal anyway).
    let target = if g.output == Output::Json { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(events.len() as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("checking and applying");
    let result = engine.ingest_with_progress(
        &events,
        &tenure_model::Principal::operator(&source.map_or_else(|| "import".to_owned(), |s| format!("import:{s}"))),
        &mut |n| bar.set_position(n as u64),
    );
    bar.finish_and_clear();
    match result {
        Ok(r) if g.output == Output::Json => {
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            println!(
                "{}: {} accepted, {} already imported (policy {})",
                file.display(),
                r.accepted,
                r.duplicates,
                short_version(&r.policy_version)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(EngineError::Rejected(errors)) => {
            print_record_errors(file, &errors);
            Ok(bad)
        }
        Err(e) => Err(e.into()),
    }
}

/// `tenure import --source S` for a source with a mapping: its own records, compared with
/// what tenure holds (see `tenure_engine::import`).
fn import_mapped(
    engine: &tenure_engine::Engine,
    source: &str,
    format: Format,
    mode: tenure_engine::import::ImportMode,
    file: &Path,
    text: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    use tenure_engine::import::ImportOutcome;
    use tenure_proto::EventType;
    let bad = ExitCode::from(EXIT_BAD_INPUT);
    let parsed = match format {
        Format::JsonLines => parse::json_records(text),
        Format::Csv => parse::csv_records(text),
    };
    let records = match parsed {
        Ok(r) => r,
        Err(errors) => {
            print_record_errors(file, &errors);
            return Ok(bad);
        }
    };
    let by = tenure_model::Principal::operator(&format!("import:{source}"));
    let outcome = match engine.import_mapped(source, &records, mode, &by) {
        Ok(o) => o,
        Err(EngineError::Rejected(errors)) => {
            print_record_errors(file, &errors);
            return Ok(bad);
        }
        Err(e) => return Ok(engine_exit(e)),
    };
    let plan = match &outcome {
        ImportOutcome::Applied(p, _) | ImportOutcome::Preview(p) | ImportOutcome::Quarantined(p, _) => p,
    };
    let summary = |verb: &str| {
        let count = |k: EventType| plan.changes.iter().filter(|c| c.kind == k).count();
        format!(
            "{}: {verb} {} joiner(s), {} mover(s), {} leaver(s); {} unchanged, {} ignored ({} current in `{source}`)",
            file.display(),
            count(EventType::Joined),
            count(EventType::Changed),
            plan.leavers,
            plan.unchanged,
            plan.ignored,
            plan.current
        )
    };
    if output == Output::Json {
        let count = |k: EventType| plan.changes.iter().filter(|c| c.kind == k).count();
        let (state, code, reason, policy) = match &outcome {
            ImportOutcome::Applied(_, r) => ("applied", ExitCode::SUCCESS, None, Some(r.policy_version.clone())),
            ImportOutcome::Preview(_) => ("preview", ExitCode::SUCCESS, None, None),
            ImportOutcome::Quarantined(_, why) => {
                ("quarantined", ExitCode::from(crate::reconcile::EXIT_QUARANTINED), Some(why.clone()), None)
            }
        };
        let doc = serde_json::json!({
            "source": source,
            "outcome": state,
            "reason": reason,
            "policy_version": policy,
            "joiners": count(EventType::Joined),
            "movers": count(EventType::Changed),
            "leavers": plan.leavers,
            "unchanged": plan.unchanged,
            "ignored": plan.ignored,
            "current": plan.current,
            "threshold": plan.threshold.map(|(max, percent)| serde_json::json!({ "leavers": max, "percent": percent })),
            "changes": plan.changes.iter().map(|c| serde_json::json!({
                "kind": c.kind.as_str(), "identity": c.identity, "why": c.why,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(code);
    }
    let list = || {
        for c in &plan.changes {
            println!("  {:<7} {}  ({})", c.kind.as_str(), c.identity, c.why);
        }
    };
    match &outcome {
        ImportOutcome::Applied(_, r) => {
            println!("{} (policy {})", summary("applied"), short_version(&r.policy_version));
            Ok(ExitCode::SUCCESS)
        }
        ImportOutcome::Preview(_) => {
            println!("{}", summary("would apply"));
            list();
            if let Some((max, percent)) = plan.threshold
                && tenure_engine::import::over_threshold(plan.leavers, plan.current, max, percent)
            {
                println!(
                    "past the threshold ({max} leavers, or {percent}%): applying it needs --accept-leavers {}",
                    plan.leavers
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportOutcome::Quarantined(_, reason) => {
            println!("{}", summary("quarantined: would apply"));
            list();
            eprintln!("quarantined: {reason}");
            Ok(ExitCode::from(crate::reconcile::EXIT_QUARANTINED))
        }
    }
}

/// How `tenure serve` was asked to run.
struct ServeOptions {
    listen: String,
    workers: usize,
    lease_secs: i64,
    limits: tenure_server::listen::Limits,
    body_timeout: std::time::Duration,
    auth_failures_per_minute: u32,
    public_url: Option<String>,
    checkpoint_secs: u64,
    bootstrap_admin: Option<String>,
    /// Certificate and key files.
    tls: Option<(PathBuf, PathBuf)>,
    /// Accept X.509-SVIDs as client certificates.
    tls_client_certs: bool,
    /// A second address serving only `/metrics`, without a token.
    metrics_listen: Option<String>,
}

async fn serve(g: &Global, opts: ServeOptions) -> anyhow::Result<ExitCode> {
    let ServeOptions {
        listen,
        workers,
        lease_secs,
        limits,
        body_timeout,
        auth_failures_per_minute,
        public_url,
        checkpoint_secs,
        bootstrap_admin,
        tls,
        tls_client_certs,
        metrics_listen,
    } = opts;
    // A certificate that does not load stops the start, before anything else happens.
    let opts_tls = tls;
    let mut tls = match &opts_tls {
        Some((cert, key)) => {
            Some(Arc::new(tenure_server::listen::Tls::load(cert, key, None).map_err(anyhow::Error::msg)?))
        }
        None => None,
    };
    let (listen, bootstrap_admin) = (listen.as_str(), bootstrap_admin.as_deref());
    let engine = open(&g.data_dir)?;
    engine.set_auth_failures_per_minute(auth_failures_per_minute);
    ensure_policy(&engine, g.policy.as_deref())?;
    if let (true, Some((cert, key))) = (tls_client_certs, &opts_tls) {
        // Client certificates chain to tenure's own CA: the trust bundle, read again on SIGHUP.
        let ca_engine = engine.clone();
        let ca: tenure_server::listen::ClientCa = Arc::new(move || ca_engine.trust_bundle().map_err(|e| e.to_string()));
        tls = Some(Arc::new(tenure_server::listen::Tls::load(cert, key, Some(ca)).map_err(anyhow::Error::msg)?));
    }
    if !engine.has_admin()? {
        let Some(admin) = bootstrap_admin else {
            bail!(
                "no admin can call this server: nobody holds a valid admin token. Issue one with \
                 `tenure tokens issue --identity SOURCE:ID --role admin`, or start with \
                 `--bootstrap-admin SOURCE:ID` (see docs/api-access.md)"
            );
        };
        let path = g.data_dir.join("bootstrap-admin.token");
        let issued = engine
            .issue_token(
                admin,
                &["admin".to_owned()],
                Some(1),
                "bootstrap admin",
                &tenure_model::Principal::operator("bootstrap"),
            )
            .with_context(|| format!("bootstrapping the first admin `{admin}`"))?;
        crate::govern::write_secret(&path, &issued.secret)?;
        eprintln!("bootstrap: admin token {} for {admin} (valid 1 day) written to {}", issued.token.id, path.display());
    }
    let signer = Arc::new(crate::keys::ledger_signer(&g.data_dir)?);
    let config =
        WorkerConfig { concurrency: workers, lease: time::Duration::seconds(lease_secs.max(1)), ..worker_config(g) };
    let workers = Arc::new(Workers::new(engine.clone(), process_env(), config));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker_task = tokio::spawn(workers.clone().run(stopped.clone()));
    let checkpoints = tokio::spawn(checkpoint_loop(engine.clone(), signer.clone(), checkpoint_secs, stopped.clone()));
    let expiry = tokio::spawn(expiry_loop(engine.clone(), workers.clone(), stopped.clone()));
    let reconciler = tokio::spawn(reconcile_loop(workers.clone(), stopped));
    engine.telemetry().set_build(env!("CARGO_PKG_VERSION"), env!("TENURE_COMMIT"));
    let state =
        tenure_server::AppState { engine: engine.clone(), workers, body_timeout, data_dir: Some(g.data_dir.clone()) };
    let metrics = match metrics_listen {
        Some(at) => {
            let l =
                tokio::net::TcpListener::bind(&at).await.with_context(|| format!("listening on `{at}` for metrics"))?;
            eprintln!("tenure metrics on http://{}/metrics (no token)", l.local_addr()?);
            let app = tenure_server::metrics_router(state.clone());
            Some(tokio::spawn(tenure_server::listen::serve(l, app, limits, None, shutdown_signal())))
        }
        None => None,
    };
    let app = tenure_server::router(state);
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on `{listen}`"))?;
    let addr = listener.local_addr()?;
    // The broker's discovery document and the URLs in what it issues hang off the public URL;
    // never a request's Host header, and beyond loopback never a guess from the bind address.
    if public_url.is_none() && !addr.ip().is_loopback() {
        bail!(
            "listening on {addr}, beyond loopback, needs the URL clients reach this server at: \
             `--public-url https://tenure.example.com` (TENURE_PUBLIC_URL); the credential \
             broker's discovery document and issued credentials name it"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    engine.set_public_url(public_url.as_deref().unwrap_or(&format!("{scheme}://{addr}")));
    let version = engine.current_policy()?.version.to_string();
    eprintln!(
        "tenure listening on {scheme}://{addr} (data dir {}, policy {})",
        g.data_dir.display(),
        short_version(&version)
    );
    let reloader = tokio::spawn(reload_on_hangup(tls.clone()));
    tenure_server::listen::serve(listener, app, limits, tls, shutdown_signal()).await?;
    reloader.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    let _ = stop.send(true);
    let _ = worker_task.await;
    let _ = checkpoints.await;
    let _ = expiry.await;
    let _ = reconciler.await;
    Ok(ExitCode::SUCCESS)
}

/// Reconcile each system whose `reconcile.every` has come round (checked every 10 s, first at
/// start). A run reads in its own task: lifecycle events and jobs go on meanwhile.
async fn reconcile_loop(workers: Arc<Workers>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            runs = workers.reconcile_due() => {
                for (system, r) in runs {
                    match r {
                        Ok(v) => tracing::info!(system, run = v.id, state = %v.state, accounts = v.accounts_read, "reconciled"),
                        Err(e) => tracing::error!(system, error = %e, "reconciliation failed"),
                    }
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// End what the clock ended (JIT grants, exceptions, undecided requests) every second.
async fn expiry_loop(engine: Arc<Engine>, workers: Arc<Workers>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || e.tick()).await {
            Ok(Ok(x))
                if !x.grants.is_empty()
                    || !x.suspended.is_empty()
                    || !x.expired.is_empty()
                    || !x.deleting.is_empty()
                    || !x.stalled.is_empty() =>
            {
                tracing::info!(grants = ?x.grants, suspended = ?x.suspended, expired = ?x.expired, "the clock ended access");
                workers.notify();
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "expiry failed"),
            Err(err) => tracing::error!(error = %err, "expiry task failed"),
        }
    }
}

/// Sign a checkpoint every `secs` while the ledger grows, and once more at shutdown.
async fn checkpoint_loop(
    engine: Arc<Engine>,
    signer: Arc<tenure_ledger::Signer>,
    secs: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))) => false,
            _ = stop.changed() => true,
        };
        let (e, s) = (engine.clone(), signer.clone());
        match tokio::task::spawn_blocking(move || e.checkpoint(&s)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "checkpoint failed"),
            Err(err) => tracing::error!(error = %err, "checkpoint task failed"),
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}

/// SIGHUP: read the certificate and key again (a renewed certificate, without a restart and
/// without dropping open connections). A bad file keeps the current certificate, said in the
/// log. Without TLS there is nothing to reread, and the signal does not stop the server.
async fn reload_on_hangup(tls: Option<Arc<tenure_server::listen::Tls>>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; the TLS certificate is reloaded only by a restart");
        return;
    };
    while hup.recv().await.is_some() {
        match tls.as_ref().map(|t| t.reload()) {
            None => tracing::info!("SIGHUP: no TLS certificate to reload"),
            Some(Ok(())) => tracing::info!("TLS certificate reloaded"),
            Some(Err(e)) => tracing::error!(error = %e, "TLS certificate not reloaded; the current one stays"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
