//! `tenure reviews …`: access review campaigns from the deployed bundle (docs/reviews.md):
//! start, list, show, decide, release a paused one, its signed report and the report's offline
//! check.

use crate::cli::{Global, Output, open};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use tenure_engine::reviews::Verdict;
use tenure_model::{IdentityRef, Principal};

#[derive(Subcommand)]
pub enum ReviewsCommand {
    /// Start the campaign `[reviews.NAME]` of the deployed bundle: the grants in its scope are
    /// snapshotted and assigned to their reviewers.
    Start { name: String },
    /// Campaigns, newest first, with their items by outcome.
    List,
    /// One campaign and its items (status, reviewers, recommendation, decisions).
    Show {
        id: i64,
        /// Only undecided items.
        #[arg(long)]
        undecided: bool,
        /// Only the items this reviewer (`source:external_id`) decides now.
        #[arg(long)]
        reviewer: Option<String>,
    },
    /// Decide an item as its reviewer: keep or revoke (the same rules as over the API: nobody
    /// reviews their own access; a revoke and a privileged keep need a reason).
    Decide {
        id: i64,
        item: i64,
        /// keep or revoke.
        decision: String,
        /// The reviewer (`source:external_id`) deciding.
        #[arg(long = "as")]
        reviewer: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A paused campaign (its no-answer default would revoke past the threshold): let the
    /// default apply (`--apply default`) or keep every undecided item (`--apply keep`).
    Release {
        id: i64,
        #[arg(long)]
        apply: String,
        #[arg(long)]
        reason: String,
    },
    /// A closed campaign's signed report: every decision and each revocation's verification,
    /// anchored in the ledger.
    Report {
        id: i64,
        /// Write the report (JSON) here; otherwise print it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a report offline: signature, checkpoint, inclusion of every entry, every claim.
    Verify {
        file: PathBuf,
        /// The ledger's public key (`tenure ledger key`, or `ledger.pub` of an export).
        #[arg(long)]
        key: PathBuf,
    },
}

fn item_row(i: &tenure_proto::ReviewItemView) -> Vec<String> {
    let by = i.decisions.last().map(|d| d.by.clone().unwrap_or_else(|| "(default)".into())).unwrap_or_default();
    vec![
        i.id.to_string(),
        i.identity.clone(),
        i.entitlement.clone(),
        i.origin.clone(),
        (i.stage + 1).to_string(),
        i.status.clone(),
        if i.reviewers.is_empty() { by } else { i.reviewers.join(",") },
        i.recommendation.clone(),
    ]
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn reviews(g: &Global, cmd: ReviewsCommand) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let operator = Principal::operator("cli");
    if let ReviewsCommand::Verify { file, key } = &cmd {
        let (doc, key) = crate::govern::signed_document(file, key)?;
        let verified = tenure_ledger::review::verify(&doc, &key);
        if output == Output::Json {
            let doc = match &verified {
                Ok(v) => serde_json::json!({
                    "valid": true, "campaign": v.campaign, "name": v.name, "closed_at": v.closed_at,
                    "items": v.items, "kept": v.kept, "revoked": v.revoked, "by_default": v.by_default,
                    "tree_size": v.tree_size,
                }),
                Err(e) => serde_json::json!({ "valid": false, "error": e.to_string() }),
            };
            print_json(&doc)?;
            return Ok(if verified.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        return match verified {
            Ok(v) => {
                println!(
                    "{}: review {} (`{}`) closed at {} verified against a signed ledger of {} entries",
                    file.display(),
                    v.campaign,
                    v.name,
                    v.closed_at,
                    v.tree_size
                );
                println!(
                    "  {} items: {} kept, {} revoked ({} by the no-answer default)",
                    v.items,
                    v.kept,
                    v.revoked.len(),
                    v.by_default
                );
                for r in &v.revoked {
                    println!("  {r}: revoked, verified by read-back");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("{}: INVALID: {e}", file.display());
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let engine = open(&g.data_dir)?;
    let done = match cmd {
        ReviewsCommand::Start { name } => engine.start_review(&operator, &name).map(|c| {
            match output {
                Output::Json => print_json(&c)?,
                Output::Table => println!(
                    "review {} (`{}`) started: {} items, deadline {}",
                    c.id,
                    c.name,
                    c.items.values().sum::<i64>(),
                    c.deadline
                ),
            }
            Ok(())
        }),
        ReviewsCommand::List => engine.reviews(&operator).map(|list| {
            match output {
                Output::Json => print_json(&list)?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|c| {
                            let n = |k: &str| c.items.get(k).copied().unwrap_or(0).to_string();
                            vec![
                                c.id.to_string(),
                                c.name.clone(),
                                c.state.clone(),
                                c.deadline.clone(),
                                n("undecided"),
                                n("keep"),
                                n("revoke"),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        crate::table::render(
                            &["ID", "NAME", "STATE", "DEADLINE", "UNDECIDED", "KEPT", "REVOKED"],
                            &rows
                        )
                    );
                }
            }
            Ok(())
        }),
        ReviewsCommand::Show { id, undecided, reviewer } => {
            let caller = match reviewer {
                Some(r) => match r.parse::<IdentityRef>() {
                    Ok(r) => Principal::local(r, []),
                    Err(e) => return Ok(crate::cli::bad_option(format!("--reviewer: {e}"))),
                },
                None => operator.clone(),
            };
            let mut all = Vec::new();
            let mut head = None;
            let mut after = None;
            let res = loop {
                match engine.review(&caller, id, undecided, after, crate::listing::PAGE) {
                    Ok((c, items)) => {
                        head = Some(c);
                        let Some(last) = items.last() else { break Ok(()) };
                        after = Some(last.id);
                        all.extend(items);
                    }
                    Err(e) => break Err(e),
                }
            };
            res.map(|()| {
                let Some(c) = head else { return Ok(()) };
                match output {
                    Output::Json => print_json(&serde_json::json!({ "campaign": c, "items": all }))?,
                    Output::Table => {
                        println!(
                            "review {} (`{}`): {}, deadline {}, {} stage(s)",
                            c.id, c.name, c.state, c.deadline, c.stages
                        );
                        for r in &c.rubber_stamping {
                            println!("  rubber-stamping? {r}");
                        }
                        let rows: Vec<Vec<String>> = all.iter().map(item_row).collect();
                        print!(
                            "{}",
                            crate::table::render(
                                &[
                                    "ITEM",
                                    "IDENTITY",
                                    "ENTITLEMENT",
                                    "ORIGIN",
                                    "STAGE",
                                    "STATUS",
                                    "REVIEWERS/BY",
                                    "RECOMMENDS"
                                ],
                                &rows,
                            )
                        );
                    }
                }
                Ok(())
            })
        }
        ReviewsCommand::Decide { id, item, decision, reviewer, reason } => {
            let who: IdentityRef = match reviewer.parse() {
                Ok(r) => r,
                Err(e) => return Ok(crate::cli::bad_option(format!("--as: {e}"))),
            };
            let verdict: Verdict = match decision.parse() {
                Ok(v) => v,
                Err(e) => return Ok(crate::cli::engine_exit(e)),
            };
            engine.decide_review(&who, id, item, verdict, &reason).map(|i| {
                match output {
                    Output::Json => print_json(&i)?,
                    Output::Table => println!(
                        "item {} ({} {}): {} by {reviewer}, now {}",
                        i.id,
                        i.identity,
                        i.entitlement,
                        verdict.as_str(),
                        i.status
                    ),
                }
                Ok(())
            })
        }
        ReviewsCommand::Release { id, apply, reason } => {
            let apply_default = match apply.as_str() {
                "default" => true,
                "keep" => false,
                other => {
                    return Ok(crate::cli::bad_option(format!("--apply: expected default or keep, found `{other}`")));
                }
            };
            engine.release_review(&operator, id, apply_default, &reason).map(|c| {
                match output {
                    Output::Json => print_json(&c)?,
                    Output::Table => println!("review {} released ({apply}): now {}", c.id, c.state),
                }
                Ok(())
            })
        }
        ReviewsCommand::Report { id, out } => {
            let signer = crate::keys::ledger_signer(&g.data_dir)?;
            engine.review_report(id, &signer).map(|doc| {
                let text = serde_json::to_string_pretty(&doc)?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, text + "\n").with_context(|| format!("writing `{}`", path.display()))?;
                        match output {
                            Output::Json => println!("{}", serde_json::json!({ "review": id, "written": path })),
                            Output::Table => println!("review {id}: report written to {}", path.display()),
                        }
                    }
                    None => println!("{text}"),
                }
                Ok(())
            })
        }
        ReviewsCommand::Verify { .. } => Ok(Ok(())),
    };
    match done {
        Ok(printed) => printed.map(|()| ExitCode::SUCCESS),
        Err(e) => Ok(crate::cli::engine_exit(e)),
    }
}
