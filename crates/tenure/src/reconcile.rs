//! `tenure reconcile`: read systems whole, find what was made outside tenure, act within
//! policy, and prove each run (docs/reconciliation.md).

use crate::cli::{Global, Output, ensure_policy, open, operator, print_list};
use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use tenure_engine::systems::process_env;
use tenure_engine::worker::Workers;
use tenure_model::Situation;
use tenure_proto::RunView;

/// Exit code of a run held for a person (quarantined past a threshold).
pub const EXIT_QUARANTINED: u8 = crate::cli::EXIT_HELD;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    pub command: Option<ReconcileCommand>,
    /// Reconcile this system only (default: every system in the policy, then `tenure`, tenure's
    /// own checks of NHI owners and expiries).
    #[arg(long)]
    pub system: Option<String>,
    /// Show the plan; apply nothing, open no finding.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand)]
pub enum ReconcileCommand {
    /// Recent runs, newest first.
    Runs {
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One run with its plan; `--out` writes its signed drift report.
    Show {
        run: i64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a drift report offline: signature, checkpoint, inclusion of its entries, and the
    /// items against the plan digest of the run's entry.
    Verify {
        file: PathBuf,
        /// The ledger's public key (`tenure ledger key`, or `ledger.pub` of an export).
        #[arg(long)]
        key: PathBuf,
    },
    /// Release a quarantined run: all of it, or only some classes or accounts.
    Release {
        run: i64,
        /// Only items of this situation class (repeatable).
        #[arg(long, value_name = "CLASS")]
        only: Vec<String>,
        /// Only items about these accounts (comma-separated).
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<String>,
    },
}

pub async fn run(g: &Global, args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let output = g.output;
    match args.command {
        None => reconcile(g, args.system, args.dry_run, output).await,
        Some(ReconcileCommand::Runs { system, limit }) => {
            let (runs, _) = open(&g.data_dir)?.runs_page(system.as_deref(), None, limit)?;
            print_list(
                output,
                &runs,
                &["RUN", "SYSTEM", "STATE", "FINISHED", "READ", "DRIFT", "CHANGES", "DIGEST"],
                row,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(ReconcileCommand::Show { run, out }) => {
            let engine = open(&g.data_dir)?;
            let view = match engine.run_view(run) {
                Ok(v) => v,
                Err(e) => return Ok(crate::cli::engine_exit(e)),
            };
            if output == Output::Table {
                summary(&view);
            }
            for i in view.items.iter().filter(|_| output == Output::Table) {
                let f = |k: &str| i.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                let target = if f("target").is_empty() { String::new() } else { format!(" in `{}`", f("target")) };
                let who = if f("identity").is_empty() { String::new() } else { format!(" ({})", f("identity")) };
                eprintln!("  {:<24} `{}`{target}{who}: {}", f("situation"), f("account"), f("reaction"));
            }
            if let Some(path) = out {
                let signer = crate::keys::ledger_signer(&g.data_dir)?;
                let report = match engine.drift_report(run, &signer) {
                    Ok(r) => r,
                    Err(e) => return Ok(crate::cli::engine_exit(e)),
                };
                std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
                    .with_context(|| format!("writing `{}`", path.display()))?;
                if output == Output::Json {
                    println!("{}", serde_json::json!({ "run": run, "written": path }));
                } else {
                    eprintln!("signed drift report written to {}", path.display());
                }
            } else {
                println!("{}", serde_json::to_string_pretty(&view)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ReconcileCommand::Verify { file, key }) => {
            let (doc, key) = crate::govern::signed_document(&file, &key)?;
            let verified = tenure_ledger::drift::verify(&doc, &key);
            if output == Output::Json {
                let doc = match &verified {
                    Ok(v) => serde_json::json!({
                        "valid": true, "run": v.run, "system": v.system, "items": v.items, "decision": v.decision,
                        "released": v.released, "tree_size": v.tree_size,
                    }),
                    Err(e) => serde_json::json!({ "valid": false, "error": e.to_string() }),
                };
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(if verified.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            match verified {
                Ok(v) => {
                    println!(
                        "{}: verified drift report of run {} of `{}`: {} item(s), {}{}, in a ledger of {} entries",
                        file.display(),
                        v.run,
                        v.system,
                        v.items,
                        v.decision,
                        if v.released > 0 { format!(", {} released", v.released) } else { String::new() },
                        v.tree_size
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{}: does not verify: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Some(ReconcileCommand::Release { run, only, accounts }) => {
            let classes: Vec<Situation> = match only.iter().map(|c| c.parse::<Situation>()).collect() {
                Ok(c) => c,
                Err(e) => return Ok(crate::cli::bad_option(format!("--only: {e}"))),
            };
            let engine = open(&g.data_dir)?;
            match engine.release_run(run, &classes, &accounts, &operator()) {
                Ok(v) if output == Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(ExitCode::SUCCESS)
                }
                Ok(v) => {
                    println!(
                        "run {}: {} of {} change(s) released, now {}; `tenure jobs run` carries them out (tenure serve does at once)",
                        v.id, v.applied_changes, v.planned_changes, v.state
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            }
        }
    }
}

fn row(r: &RunView) -> Vec<String> {
    let drift: u64 = r.counts.iter().filter(|(k, _)| k.as_str() != "linked").map(|(_, n)| n).sum();
    vec![
        r.id.to_string(),
        r.system.clone(),
        r.state.clone(),
        r.finished_at.clone(),
        r.accounts_read.to_string(),
        drift.to_string(),
        format!("{}/{}", r.applied_changes, r.planned_changes),
        r.plan_digest.get(..12).unwrap_or_default().to_owned(),
    ]
}

fn summary(v: &RunView) {
    let counts: Vec<String> = v.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "run {} of `{}`: {} — {} accounts, {} memberships in {} pages; {}; changes {}/{}; plan {}",
        v.id,
        v.system,
        v.state,
        v.accounts_read,
        v.memberships_read,
        v.pages,
        if counts.is_empty() { "nothing read".into() } else { counts.join(", ") },
        v.applied_changes,
        v.planned_changes,
        v.plan_digest
    );
    for r in &v.reasons {
        eprintln!("  held: {r}");
    }
    if let Some(e) = &v.error {
        eprintln!("  failed: {e}");
    }
}

async fn reconcile(g: &Global, system: Option<String>, dry_run: bool, output: Output) -> anyhow::Result<ExitCode> {
    let engine = open(&g.data_dir)?;
    ensure_policy(&engine, g.policy.as_deref())?;
    let policy = engine.current_policy()?;
    // Every system of the policy, then tenure's own checks.
    let all: Vec<String> =
        policy.systems.keys().cloned().chain([tenure_engine::reconcile::TENURE.to_owned()]).collect();
    let systems: Vec<String> = match system {
        Some(s) if all.contains(&s) => vec![s],
        Some(s) => {
            let all = all.join(", ");
            return Ok(crate::cli::bad_option(format!(
                "--system: no system `{s}` in policy {} (it has: {all})",
                policy.version
            )));
        }
        None => all,
    };
    let workers = Workers::new(engine.clone(), process_env(), crate::cli::worker_config(g));
    let mut runs = Vec::new();
    let mut failed = false;
    for s in systems {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} accounts, {msg} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(s.clone());
        let result = workers
            .reconcile(&s, dry_run, operator(), &mut |p| {
                bar.set_length(p.expected.max(p.accounts));
                bar.set_position(p.accounts);
                bar.set_message(format!("{} memberships, page {}", p.memberships, p.pages));
            })
            .await;
        bar.finish_and_clear();
        match result {
            Ok(v) => {
                if output == Output::Table {
                    summary(&v);
                }
                runs.push(v);
            }
            Err(e) => {
                crate::cli::report(e.code(), &e.to_string(), 1);
                failed = true;
            }
        }
    }
    print_list(output, &runs, &["RUN", "SYSTEM", "STATE", "FINISHED", "READ", "DRIFT", "CHANGES", "DIGEST"], row)?;
    let queued: i64 = runs.iter().map(|r| r.applied_changes).sum();
    if queued > 0 && output == Output::Table {
        eprintln!("{queued} change(s) queued; `tenure jobs run` carries them out (tenure serve does at once)");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else if runs.iter().any(|r| r.state == "quarantined") {
        ExitCode::from(EXIT_QUARANTINED)
    } else {
        ExitCode::SUCCESS
    })
}
