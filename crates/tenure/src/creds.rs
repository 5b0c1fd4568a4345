//! `tenure creds`: the credential broker from the command line (the operator acts with the
//! database's authority). Secrets are printed once, or written to a 0600 file.

use crate::cli::{Global, Output, ensure_policy, open};
use anyhow::Context;
use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use tenure_engine::creds::CredentialRequest;
use tenure_engine::systems::process_env;
use tenure_engine::worker::Workers;
use tenure_model::CredentialKind;
use tenure_model::credential::parse_ttl;
use tenure_proto::IssuedCredentialView;

#[derive(Subcommand)]
pub enum CredsCommand {
    /// Issue a credential to an NHI; the secret is shown once and never stored.
    Issue {
        /// The NHI (`source:external_id`).
        #[arg(long)]
        identity: String,
        /// jwt-svid, x509-svid, api-key or postgres-login.
        #[arg(long)]
        kind: String,
        /// Lifetime, e.g. 5m, 1h, 7d (default: the policy's maximum).
        #[arg(long)]
        ttl: Option<String>,
        /// JWT-SVID audience (repeatable).
        #[arg(long = "audience")]
        audience: Vec<String>,
        /// X.509-SVID: the PEM certificate request.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Dynamic login: the postgres system.
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
        /// Write the secret (token, key, password or certificate) to this file (mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Credentials (never their secrets), newest first.
    List {
        /// Only this identity's (`source:external_id`).
        #[arg(long)]
        identity: Option<String>,
        /// Only of this kind: jwt-svid, x509-svid, api-key, postgres-login.
        #[arg(long)]
        kind: Option<String>,
        /// Only dynamic logins on this system.
        #[arg(long)]
        system: Option<String>,
        /// Only in this state: active, expired, revoked, revocation-verified.
        #[arg(long)]
        state: Option<String>,
    },
    /// Revoke a credential: it stops working at once; the worker verifies it.
    Revoke {
        id: String,
        #[arg(long, default_value = "revoked by the operator")]
        reason: String,
    },
    /// Replace a credential with a new one like it; the old one is revoked.
    Rotate {
        id: String,
        /// A new CSR (X.509-SVIDs).
        #[arg(long)]
        csr: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replace the JWT signing key now (the old one stays in the JWKS until its tokens expire).
    RotateKey,
    /// RFC 7662 introspection of a token read from standard input.
    Introspect,
}

fn bad(e: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    Ok(crate::cli::bad_option(e))
}

fn read(path: Option<PathBuf>) -> anyhow::Result<Option<String>> {
    path.map(|p| std::fs::read_to_string(&p).with_context(|| format!("reading `{}`", p.display()))).transpose()
}

fn show(issued: &IssuedCredentialView, out: Option<PathBuf>, output: Output) -> anyhow::Result<()> {
    let c = &issued.credential;
    if let Some(path) = out {
        crate::govern::write_secret(&path, &issued.secret)?;
        eprintln!(
            "{} {} for {} until {}; secret written to {}",
            c.kind,
            c.id,
            c.identity,
            c.expires_at,
            path.display()
        );
        if output == Output::Json {
            let shown = IssuedCredentialView { secret: format!("(in {})", path.display()), ..issued.clone() };
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        return Ok(());
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(issued)?),
        Output::Table => {
            eprintln!(
                "{} {} for {} ({}), until {}{}; shown once:",
                c.kind,
                c.id,
                c.identity,
                c.spiffe_id.as_deref().unwrap_or("-"),
                c.expires_at,
                issued.username.as_ref().map(|u| format!(", user `{u}`")).unwrap_or_default()
            );
            println!("{}", issued.secret.trim_end());
        }
    }
    Ok(())
}

pub async fn run(g: &Global, cmd: CredsCommand) -> anyhow::Result<ExitCode> {
    let output = g.output;
    let engine = open(&g.data_dir)?;
    ensure_policy(&engine, g.policy.as_deref())?;
    let workers = Workers::new(engine.clone(), process_env(), crate::cli::worker_config(g));
    let by = crate::cli::operator();
    let issued = match cmd {
        CredsCommand::Issue { identity, kind, ttl, audience, csr, system, purpose, out } => {
            let kind = match kind.parse::<CredentialKind>() {
                Ok(k) => k,
                Err(e) => return bad(format!("--kind: {e}")),
            };
            let ttl = match ttl.as_deref().map(parse_ttl).transpose() {
                Ok(t) => t,
                Err(e) => return bad(format!("--ttl: {e}")),
            };
            let req =
                CredentialRequest { identity, kind, ttl, audience, csr: read(csr)?, system, purpose, replaces: None };
            (workers.issue_credential(req, by).await, out, output)
        }
        CredsCommand::Rotate { id, csr, out } => {
            let req = match engine.rotation_of(&id, read(csr)?) {
                Ok(r) => r,
                Err(e) => return Ok(crate::cli::engine_exit(e)),
            };
            (workers.issue_credential(req, by).await, out, output)
        }
        CredsCommand::List { identity, kind, system, state } => {
            use tenure_engine::lists::CredentialFilter;
            let filter = CredentialFilter {
                identity,
                kind: match crate::cli::option("--kind", kind.as_deref()) {
                    Ok(k) => k,
                    Err(code) => return Ok(code),
                },
                system,
                state: match crate::cli::option("--state", state.as_deref()) {
                    Ok(s) => s,
                    Err(code) => return Ok(code),
                },
            };
            let header = ["ID", "IDENTITY", "KIND", "STATE", "EXPIRES", "FINGERPRINT"];
            let row = |c: &tenure_proto::CredentialView| {
                vec![
                    c.id.clone(),
                    c.identity.clone(),
                    c.kind.clone(),
                    c.state.clone(),
                    c.expires_at.clone(),
                    c.fingerprint.get(..16).unwrap_or_default().to_owned(),
                ]
            };
            return crate::listing::stream(
                output,
                crate::listing::Frame::array(),
                &header,
                row,
                |after: Option<String>| engine.credentials_page(&filter, after.as_deref(), crate::listing::PAGE),
            );
        }
        CredsCommand::Revoke { id, reason } => {
            return match engine.revoke_credential(&id, Some(&reason), &by) {
                Ok(c) => {
                    if output == Output::Table {
                        println!("{} {} of {} revoked", c.kind, c.id, c.identity);
                    }
                    // Carry it out and verify it now (a dynamic login is dropped).
                    workers.run_until_idle().await?;
                    if output == Output::Json {
                        // As it stands once the worker verified it.
                        let now = engine.credential_view(&c.id).unwrap_or(c);
                        println!("{}", serde_json::to_string_pretty(&now)?);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(crate::cli::engine_exit(e)),
            };
        }
        CredsCommand::RotateKey => {
            let kid = engine.rotate_signing_key(&by)?;
            match output {
                Output::Json => println!("{}", serde_json::json!({ "kid": kid })),
                Output::Table => println!(
                    "new JWT signing key {kid}; the previous one stays in the JWKS until its last token expires"
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        CredsCommand::Introspect => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            println!("{}", serde_json::to_string_pretty(&engine.introspect(token.trim())?)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    match issued {
        (Ok(i), out, output) => {
            show(&i, out, output)?;
            // A rotation revoked the old credential: carry that out too.
            workers.run_until_idle().await?;
            Ok(ExitCode::SUCCESS)
        }
        (Err(e), _, _) => Ok(crate::cli::engine_exit(e)),
    }
}
