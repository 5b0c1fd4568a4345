//! `tenure systems check [NAME]`: whether tenure can work with each system of the deployed
//! policy (see `tenure_engine::check`), a line per check with a remedy for each failure.

use crate::cli::{Global, Output, ensure_policy, open};
use clap::Subcommand;
use std::process::ExitCode;
use tenure_engine::check::Outcome;

#[derive(Subcommand)]
pub enum SystemsCommand {
    /// Per system: settings, TLS, reach, credentials, account base, groups (writing is not
    /// tried). Exits 1 when any check fails.
    Check {
        /// Only this system.
        name: Option<String>,
    },
}

pub async fn run(g: &Global, cmd: SystemsCommand) -> anyhow::Result<ExitCode> {
    let SystemsCommand::Check { name } = cmd;
    let engine = open(&g.data_dir)?;
    ensure_policy(&engine, g.policy.as_deref())?;
    let policy = engine.current_policy()?;
    let lookup = tenure_engine::systems::process_env();
    let Some(reports) = tenure_engine::check::check_systems(&policy, &lookup, name.as_deref()).await else {
        return Ok(crate::cli::engine_exit(tenure_engine::EngineError::NotFound(format!(
            "system `{}` (the policy has {})",
            name.unwrap_or_default(),
            policy.systems.keys().cloned().collect::<Vec<_>>().join(", ")
        ))));
    };
    let failed = reports.iter().any(tenure_engine::check::SystemReport::failed);
    match g.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Output::Table => {
            for r in &reports {
                for c in &r.checks {
                    let mark = match c.outcome {
                        Outcome::Ok => "ok",
                        Outcome::Failed => "FAILED",
                        Outcome::NotChecked => "-",
                    };
                    println!("{:<16} {:<12} {mark:<7} {}", r.system, c.check, c.detail);
                    if let Some(remedy) = &c.remedy {
                        println!("{:<16} {:<12} {:<7} → {remedy}", "", "", "");
                    }
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
