//! CLI for policy tooling (`policy test|diff|deploy`), API tokens, requests and findings.

use crate::cli::{EXIT_BAD_INPUT, Global, Output, ensure_policy, open, read_bundle_dir};
use crate::listing::{self, Frame};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tenure_engine::Deployed;
use tenure_policy::{Bundle, short_version};

/// Who the CLI acts as in the ledger: the operator at the machine.

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Issue an API token to an identity; the secret is printed once and never stored.
    Issue {
        /// The identity (`source:external_id`) the token belongs to.
        #[arg(long)]
        identity: String,
        /// A role: admin, approver, auditor, requester, authorizer or source:NAME (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Days the token is valid (default: the engine's, 90).
        #[arg(long)]
        ttl_days: Option<i64>,
        #[arg(long, default_value = "")]
        description: String,
        /// Write the secret to this file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// API tokens (never their secrets), oldest first.
    List {
        /// Only this identity's (`source:external_id`).
        #[arg(long)]
        identity: Option<String>,
        /// Only those in this state: active, expired, revoked.
        #[arg(long)]
        state: Option<String>,
    },
    /// Revoke a token; it stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum RequestsCommand {
    /// Requests, newest first.
    List {
        /// Only requests in this state (pending, approved, denied, expired).
        #[arg(long)]
        state: Option<String>,
        /// Only requests of this kind (access, jit, exception).
        #[arg(long)]
        kind: Option<String>,
        /// Only requests for this identity (`source:external_id`).
        #[arg(long)]
        identity: Option<String>,
    },
    /// One request with its decision and answers.
    Show { id: i64 },
    /// Approve a request as one of its eligible approvers (the same rules as over the API:
    /// nobody approves their own request, a privileged one needs distinct people).
    Approve {
        id: i64,
        /// The approver (`source:external_id`) answering.
        #[arg(long = "as")]
        approver: String,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
    },
    /// Deny a request as one of its eligible approvers.
    Deny {
        id: i64,
        #[arg(long = "as")]
        approver: String,
        #[arg(long)]
        reason: String,
    },
}

/// The bundle in `dir`, or (having said what is wrong with it) the exit code for bad input.
fn load(dir: &Path) -> anyhow::Result<Result<Bundle, ExitCode>> {
    Ok(Bundle::load(read_bundle_dir(dir)?).map_err(|e| bad_bundle(dir, e)))
}

/// A bundle that does not load or whose cases cannot run: exit 2.
fn bad_bundle(dir: &Path, e: impl std::fmt::Display) -> ExitCode {
    crate::cli::report(crate::cli::CL_BAD_INPUT, &format!("{}: {e}", dir.display()), EXIT_BAD_INPUT);
    ExitCode::from(EXIT_BAD_INPUT)
}

/// `policy check`: what the bundle holds, once it loads.
pub fn policy_check(dir: &Path, output: Output) -> anyhow::Result<ExitCode> {
    let b = match load(dir)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let counts = serde_json::json!({
        "name": b.name,
        "version": b.version.as_str(),
        "sources": b.sources.len(),
        "systems": b.systems.len(),
        "entitlements": b.entitlements.len(),
        "templates": b.templates.len(),
        "cedar_policies": b.rules.policy_ids().len(),
    });
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&counts)?),
        Output::Table => println!(
            "{}: policy `{}` version {} ({} sources, {} systems, {} entitlements, {} templates, {} Cedar policies)",
            dir.display(),
            b.name,
            b.version,
            b.sources.len(),
            b.systems.len(),
            b.entitlements.len(),
            b.templates.len(),
            b.rules.policy_ids().len()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The cases' results as JSON: each case, and how many passed and failed.
fn cases_json(results: &[tenure_policy::cases::CaseResult]) -> serde_json::Value {
    let failed = results.iter().filter(|r| !r.passed()).count();
    serde_json::json!({
        "cases": results.iter().map(|r| serde_json::json!({
            "file": r.file, "name": r.name, "passed": r.passed(), "failures": r.failures,
        })).collect::<Vec<_>>(),
        "passed": results.len() - failed,
        "failed": failed,
    })
}

pub fn policy_test(dir: &Path, output: Output) -> anyhow::Result<ExitCode> {
    let bundle = match load(dir)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let results = match tenure_policy::cases::run(&bundle) {
        Ok(r) => r,
        Err(e) => return Ok(bad_bundle(dir, e)),
    };
    let failed = results.iter().filter(|r| !r.passed()).count();
    if output == Output::Json {
        let doc = serde_json::json!({ "version": bundle.version.as_str(), "tests": cases_json(&results) });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for r in &results {
            if r.passed() {
                println!("ok     {}: {}", r.file, r.name);
            } else {
                println!("FAILED {}: {}", r.file, r.name);
                for f in &r.failures {
                    println!("         {f}");
                }
            }
        }
        println!(
            "{} case(s): {} passed, {failed} failed (policy {})",
            results.len(),
            results.len() - failed,
            bundle.version.short()
        );
    }
    if results.is_empty() {
        crate::cli::report(
            crate::cli::CL_BAD_INPUT,
            &format!("{}: no test cases (add tests/*.toml)", dir.display()),
            1,
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn policy_diff(g: &Global, dir: &Path, output: Output) -> anyhow::Result<ExitCode> {
    let bundle = match load(dir)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let engine = open(&g.data_dir)?;
    let impact = engine.impact(&bundle)?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&impact)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_impact(&impact);
    Ok(ExitCode::SUCCESS)
}

fn print_impact(impact: &tenure_engine::impact::Impact) {
    println!(
        "policy {} -> {}: {} identities change; {} grants gained, {} lost",
        impact.from.as_deref().map_or("none", short_version),
        short_version(&impact.to),
        impact.identities.len(),
        impact.grants_gained,
        impact.grants_lost
    );
    for i in &impact.identities {
        println!("{}", i.reference);
        for e in &i.gains {
            println!("  + {e}");
        }
        for e in &i.losses {
            println!("  - {e}");
        }
        for (e, by) in &i.newly_blocked {
            println!("  ! {e} blocked by {}", by.join(", "));
        }
        for e in &i.unblocked {
            println!("  ~ {e} no longer blocked");
        }
    }
    for (p, n) in &impact.guardrails_blocking {
        println!("guardrail {p} would block {n} grant(s)");
    }
    for r in &impact.pending_requests {
        println!(
            "pending request {} ({} -> {}): {} now, {} under the new policy ({} approval(s))",
            r.id, r.beneficiary, r.entitlement, r.before, r.after, r.approvals_after
        );
    }
    println!("approvals needed by pending requests: {}", impact.approvals_needed);
    // A changed mapping: the accounts it rewrites, the first few by name.
    const SHOWN: usize = 20;
    for (system, accounts) in &impact.remapped {
        println!("mapped attributes rewritten in `{system}`: {} account(s)", accounts.len());
        for a in accounts.iter().take(SHOWN) {
            println!("  ~ {} ({})", a.account, a.reference);
        }
        if accounts.len() > SHOWN {
            println!("  … and {} more (--output json lists them all)", accounts.len() - SHOWN);
        }
    }
    if !impact.remap_over.is_empty() {
        let total: usize = impact.remapped.values().map(Vec::len).sum();
        println!("past the threshold: {}; deploying needs --accept-remap {total}", impact.remap_over.join(", "));
    }
}

pub fn policy_deploy(
    g: &Global,
    dir: &Path,
    force: Option<&str>,
    accept_remap: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let bundle = match load(dir)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let engine = open(&g.data_dir)?;
    // What it changes, before it does; then its own tests.
    let impact = engine.impact(&bundle)?;
    let results = match tenure_policy::cases::run(&bundle) {
        Ok(r) => r,
        Err(e) => return Ok(bad_bundle(dir, e)),
    };
    let failed = results.iter().filter(|r| !r.passed()).count();
    if output == Output::Table {
        print_impact(&impact);
        for r in results.iter().filter(|r| !r.passed()) {
            println!("FAILED {}: {}", r.file, r.name);
            for f in &r.failures {
                println!("         {f}");
            }
        }
        println!("tests: {} case(s), {} passed, {failed} failed", results.len(), results.len() - failed);
    }
    if results.is_empty() {
        tracing::warn!("{}: the bundle has no test cases (tests/*.toml)", dir.display());
    }
    let deployed = engine.deploy_tested(&bundle, &crate::cli::operator(), force, accept_remap);
    if output == Output::Json {
        // One document whatever happened: the impact, the tests, and the deployment (null
        // when refused; the reason is on standard error).
        let outcome = match &deployed {
            Ok(Deployed::Unchanged) => serde_json::json!({ "changed": false, "version": bundle.version.as_str() }),
            Ok(Deployed::Changed { from, to, affected, remapped }) => serde_json::json!({
                "changed": true, "from": from, "to": to, "affected": affected, "remapped": remapped,
                "forced": force.is_some(),
            }),
            Err(_) => serde_json::Value::Null,
        };
        let doc = serde_json::json!({ "impact": impact, "tests": cases_json(&results), "deployed": outcome });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    match deployed {
        Ok(_) if output == Output::Json => {}
        Ok(Deployed::Unchanged) => println!("policy `{}` {} is already current", bundle.name, bundle.version.short()),
        Ok(Deployed::Changed { from, to, affected, remapped }) => println!(
            "deployed policy `{}` {} (was {}){}; {affected} identities recomputed, {remapped} accounts remapped",
            bundle.name,
            short_version(&to),
            from.as_deref().map_or("none", short_version),
            if force.is_some() { ", forced past failing tests" } else { "" }
        ),
        Err(e) => return Ok(crate::cli::engine_exit(e)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Write a secret to a new file only its owner can read.
pub fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("creating `{}`", path.display()))?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

pub fn tokens(g: &Global, cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let engine = open(&g.data_dir)?;
    ensure_policy(&engine, g.policy.as_deref())?;
    match cmd {
        TokensCommand::Issue { identity, roles, ttl_days, description, out } => {
            match engine.issue_token(&identity, &roles, ttl_days, &description, &crate::cli::operator()) {
                Ok(t) => {
                    if output == Output::Json {
                        // The secret goes to the file when one is named, never to both.
                        match &out {
                            Some(path) => {
                                write_secret(path, &t.secret)?;
                                println!("{}", serde_json::to_string_pretty(&t.token)?);
                            }
                            None => println!("{}", serde_json::to_string_pretty(&t)?),
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    match out {
                        Some(path) => {
                            write_secret(&path, &t.secret)?;
                            eprintln!(
                                "token {} for {} ({}) written to {}",
                                t.token.id,
                                identity,
                                t.token.roles.join(", "),
                                path.display()
                            );
                        }
                        None => {
                            eprintln!(
                                "token {} for {} ({}), expires {}; shown once:",
                                t.token.id,
                                identity,
                                t.token.roles.join(", "),
                                t.token.expires_at
                            );
                            println!("{}", t.secret);
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            }
        }
        TokensCommand::List { identity, state } => {
            let state = match crate::cli::option("--state", state.as_deref()) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let filter = tenure_engine::lists::TokenFilter { identity, state };
            let header = ["ID", "IDENTITY", "ROLES", "VALID", "DESCRIPTION"];
            let row = |t: &tenure_proto::TokenView| {
                let state =
                    if t.revoked_at.is_some() { "revoked".to_owned() } else { format!("until {}", t.expires_at) };
                vec![t.id.clone(), t.identity.clone(), t.roles.join(","), state, t.description.clone()]
            };
            listing::stream(output, Frame::array(), &header, row, |after: Option<String>| {
                engine.tokens_page(&filter, after.as_deref(), listing::PAGE)
            })
        }
        TokensCommand::Revoke { id } => match engine.revoke_token(&id, &crate::cli::operator()) {
            Ok(t) => {
                match output {
                    Output::Json => println!("{}", serde_json::to_string_pretty(&t)?),
                    Output::Table => println!("token {} of {} revoked", t.id, t.identity),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(crate::cli::engine_exit(e)),
        },
    }
}

pub fn requests(g: &Global, cmd: RequestsCommand) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let is_approve = matches!(cmd, RequestsCommand::Approve { .. });
    let engine = open(&g.data_dir)?;
    match cmd {
        RequestsCommand::List { state, kind, identity } => {
            let filter = tenure_engine::lists::RequestFilter {
                state: match crate::cli::option("--state", state.as_deref()) {
                    Ok(s) => s,
                    Err(code) => return Ok(code),
                },
                kind: match crate::cli::option("--kind", kind.as_deref()) {
                    Ok(k) => k,
                    Err(code) => return Ok(code),
                },
                identity,
            };
            let header = ["ID", "KIND", "BENEFICIARY", "ENTITLEMENT", "STATE", "REQUESTER", "INTENT"];
            let row = |r: &tenure_proto::RequestView| {
                vec![
                    r.id.to_string(),
                    r.kind.clone(),
                    r.beneficiary.clone(),
                    r.entitlement.clone(),
                    r.state.clone(),
                    r.requester.clone(),
                    r.intent.clone(),
                ]
            };
            listing::stream(output, Frame::array(), &header, row, |before| {
                engine.requests_page(&filter, before, listing::PAGE)
            })
        }
        RequestsCommand::Approve { id, approver, reason } | RequestsCommand::Deny { id, approver, reason } => {
            let approve = is_approve;
            let who: tenure_model::IdentityRef = match approver.parse() {
                Ok(r) => r,
                Err(e) => return Ok(crate::cli::bad_option(format!("--as: {e}"))),
            };
            match engine.answer(&who, id, approve, &reason) {
                Ok(r) => {
                    let verb = if approve { "approved" } else { "denied" };
                    match output {
                        Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                        Output::Table => println!("request {} {verb} by {approver}: now {}", r.id, r.state),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            }
        }
        RequestsCommand::Show { id } => match engine.request_detail(id) {
            Ok(r) if output == Output::Json => {
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(ExitCode::SUCCESS)
            }
            Ok(r) => {
                show_request(&r);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(crate::cli::engine_exit(e)),
        },
    }
}

/// One request for people: what, for whom, the decision with its reasons, the answers.
fn show_request(r: &tenure_proto::RequestView) {
    let d = &r.decision;
    println!("request {} ({}): {}", r.id, r.kind, r.state);
    println!("  for          {} (asked by {})", r.beneficiary, r.requester);
    println!("  entitlement  {}", r.entitlement);
    if let Some(m) = r.duration_minutes {
        println!("  for          {m} minutes");
    }
    println!("  intent       {}", r.intent);
    println!("  decision     {} by policy {} ({})", d.decision, d.policy_version, d.policies.join(", "));
    for reason in &d.reasons {
        println!("    because    {reason}");
    }
    if let Some(a) = &d.approval {
        println!("  needs        {} approver(s): {}", a.count, a.roles.join(", "));
    }
    if !r.waives.is_empty() {
        println!("  waives       {}", r.waives.join(", "));
    }
    println!("  made         {}, to be decided by {}", r.created_at, r.decide_by);
    for a in &r.approvals {
        println!("  {} by {} at {}: {}", if a.approve { "approved" } else { "denied" }, a.approver, a.at, a.reason);
    }
    if let Some(at) = &r.decided_at {
        println!("  ended        {at}");
    }
}

/// The findings the options keep, oldest first, a page at a time.
pub fn findings(g: &Global, filter: tenure_engine::views::FindingFilter) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let engine = open(&g.data_dir)?;
    let header = ["ID", "KIND", "IDENTITY", "SUBJECT", "BY", "STATE"];
    let row = |f: &tenure_proto::FindingView| {
        // A reconciliation finding is about an account in a system (and maybe a membership).
        let subject = if f.system.is_empty() {
            f.entitlement.clone()
        } else if f.entitlement.is_empty() {
            format!("{} `{}`", f.system, f.account)
        } else {
            format!("{} `{}` in `{}`", f.system, f.account, f.entitlement)
        };
        let by = match f.detail.get("policies") {
            Some(p) => p.to_string(),
            None => f.detail.get("run").map(|r| format!("run {r}")).unwrap_or_default(),
        };
        vec![
            f.id.to_string(),
            f.kind.clone(),
            f.identity.clone(),
            subject,
            by,
            f.resolved_at.clone().unwrap_or_else(|| "open".into()),
        ]
    };
    listing::stream(output, Frame::array(), &header, row, |after| engine.findings_page(&filter, after, listing::PAGE))
}

#[derive(Subcommand)]
pub enum ClosureCommand {
    /// A closed leaver's closure certificate: per system what was done and how it was verified,
    /// each claim anchored in the ledger, signed with the ledger key. Fails, naming what is
    /// pending, while the identity is not closed.
    Show {
        reference: String,
        /// Write the certificate (JSON) here; otherwise print a summary and the JSON.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a certificate offline: signature, checkpoint, inclusion of every entry it rests on,
    /// and every claim against its entry.
    Verify {
        file: PathBuf,
        /// The ledger's public key (`tenure ledger key`, or `ledger.pub` of an export).
        #[arg(long)]
        key: PathBuf,
    },
}

/// A signed document (a closure certificate, a drift report) and the ledger key to check it
/// with, read from their files.
pub fn signed_document(
    file: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<(serde_json::Value, tenure_ledger::Verifier)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).with_context(|| format!("reading `{}`", file.display()))?)
            .with_context(|| format!("`{}` is not JSON", file.display()))?;
    let key = tenure_ledger::Verifier::parse(
        &std::fs::read_to_string(key).with_context(|| format!("reading `{}`", key.display()))?,
    )?;
    Ok((doc, key))
}

pub fn closure(g: &Global, cmd: ClosureCommand) -> anyhow::Result<ExitCode> {
    let output = g.output;
    match cmd {
        ClosureCommand::Show { reference, out } => {
            let engine = open(&g.data_dir)?;
            let signer = crate::keys::ledger_signer(&g.data_dir)?;
            let cert = match engine.closure_certificate(&reference, &signer) {
                Ok(c) => c,
                Err(e) => return Ok(crate::cli::engine_exit(e)),
            };
            let at = |v: &serde_json::Value, p: &str| v.pointer(p).cloned().unwrap_or(serde_json::Value::Null);
            let text = serde_json::to_string_pretty(&cert)?;
            if output == Output::Json {
                // The certificate is the document; written to a file, where it went.
                match out {
                    Some(path) => {
                        std::fs::write(&path, text + "\n").with_context(|| format!("writing `{}`", path.display()))?;
                        println!("{}", serde_json::json!({ "identity": reference, "written": path }));
                    }
                    None => println!("{text}"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "closure certificate of {reference} ({}), closed at {}",
                at(&cert, "/certificate/name"),
                at(&cert, "/certificate/closed_at")
            );
            for s in cert.pointer("/certificate/systems").and_then(|v| v.as_array()).into_iter().flatten() {
                eprintln!(
                    "  {} account {}: disabled={} revoked={} read-back={} probe={} (ledger entry {})",
                    at(s, "/system"),
                    at(s, "/account"),
                    at(s, "/done/disabled"),
                    at(s, "/done/revoked"),
                    at(s, "/read_back"),
                    at(s, "/probe"),
                    at(s, "/evidence")
                );
            }
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n").with_context(|| format!("writing `{}`", path.display()))?;
                    eprintln!("written to {}", path.display());
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ClosureCommand::Verify { file, key } => {
            let (doc, key) = signed_document(&file, &key)?;
            let verified = tenure_ledger::closure::verify(&doc, &key);
            if output == Output::Json {
                let doc = match &verified {
                    Ok(v) => serde_json::json!({
                        "valid": true, "identity": v.identity, "closed_at": v.closed_at, "tree_size": v.tree_size,
                        "systems": v.systems, "credentials": v.credentials,
                    }),
                    Err(e) => serde_json::json!({ "valid": false, "error": e.to_string() }),
                };
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(if verified.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            match verified {
                Ok(v) => {
                    println!(
                        "{}: closure of {} at {} verified against a signed ledger of {} entries",
                        file.display(),
                        v.identity,
                        v.closed_at,
                        v.tree_size
                    );
                    for s in &v.systems {
                        println!("  {s}: disabled, in no group, verified");
                    }
                    for c in &v.credentials {
                        println!("  credential {c}: revoked, verified unusable");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("{}: INVALID: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
