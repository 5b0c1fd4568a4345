//! `tenure ledger`: checkpoints, proofs, export, offline verification and replay of the ledger.

use crate::cli::{self, Global, Output};
use crate::keys::ledger_signer;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Sign a checkpoint of the ledger now and print it.
    Checkpoint,
    /// Print the public verifier key of this ledger.
    Key,
    /// Print entry SEQ with its inclusion proof against the latest checkpoint (JSON).
    Prove { seq: i64 },
    /// Print a consistency proof between two checkpoints, by their sizes (JSON).
    Consistency { old: i64, new: i64 },
    /// Write the ledger to DIR: entries.jsonl, checkpoints/*.note, ledger.pub.
    Export { dir: PathBuf },
    /// Check an export from its files alone (no database, no server), against a verifier key
    /// from outside the export: `--key FILE`, else this data dir's own ledger key. The export's
    /// `ledger.pub` is never trusted (a rewritten history re-signed with a fresh key would
    /// verify against it).
    Verify {
        dir: PathBuf,
        /// The verifier key to trust (`tenure ledger key` on the ledger's host prints it).
        #[arg(long)]
        key: Option<PathBuf>,
        /// A checkpoint kept from earlier that the log must extend (repeatable).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
    },
    /// Rebuild identity states and grants from the ledger and compare them with the database.
    Replay,
}

pub fn run(g: &Global, cmd: LedgerCommand) -> anyhow::Result<ExitCode> {
    if let LedgerCommand::Verify { dir, key, checkpoints } = cmd {
        return verify(g, &dir, key.as_deref(), &checkpoints);
    }
    let json = g.output == Output::Json;
    let engine = cli::open(&g.data_dir)?;
    let signer = ledger_signer(&g.data_dir)?;
    match cmd {
        LedgerCommand::Checkpoint => {
            let cp = engine.checkpoint(&signer)?;
            if json {
                let doc = serde_json::json!({ "size": cp.size, "root": hex::encode(&cp.root), "note": cp.note });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print!("{}", cp.note);
            }
        }
        LedgerCommand::Key if json => println!("{}", serde_json::json!({ "key": signer.verifier().to_string() })),
        LedgerCommand::Key => println!("{}", signer.verifier()),
        LedgerCommand::Prove { seq } => println!("{}", serde_json::to_string_pretty(&engine.prove(seq, &signer)?)?),
        LedgerCommand::Consistency { old, new } => {
            println!("{}", serde_json::to_string_pretty(&engine.consistency(old, new)?)?)
        }
        LedgerCommand::Export { dir } => {
            let cp = engine.checkpoint(&signer)?;
            if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
                bail!("`{}` is not empty", dir.display());
            }
            std::fs::create_dir_all(dir.join("checkpoints"))?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("entries.jsonl"))?);
            let mut written = 0;
            engine.for_each_entry(&mut |seq, bytes| -> anyhow::Result<()> {
                if seq >= cp.size {
                    return Ok(());
                }
                out.write_all(bytes).and_then(|()| out.write_all(b"\n"))?;
                written += 1;
                Ok(())
            })?;
            out.flush()?;
            for c in engine.store().read()?.checkpoints()? {
                std::fs::write(dir.join("checkpoints").join(format!("{:020}.note", c.size)), c.note)?;
            }
            std::fs::write(dir.join("ledger.pub"), format!("{}\n", signer.verifier()))?;
            if json {
                let doc = serde_json::json!({ "dir": dir, "entries": written, "size": cp.size, "root": hex::encode(&cp.root) });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("exported {written} entries and their checkpoints to {}", dir.display());
            }
        }
        LedgerCommand::Replay => {
            let diffs = engine.replay()?;
            if json {
                let doc = serde_json::json!({
                    "matches": diffs.is_empty(),
                    "differences": diffs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(if diffs.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            if diffs.is_empty() {
                println!("replay: the database matches the ledger");
            } else {
                for d in &diffs {
                    println!("{d}");
                }
                println!("replay: {} difference(s) between the ledger and the database", diffs.len());
                return Ok(ExitCode::FAILURE);
            }
        }
        LedgerCommand::Verify { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn read_notes(paths: impl Iterator<Item = PathBuf>) -> anyhow::Result<Vec<(String, String)>> {
    paths
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok((name, std::fs::read_to_string(&p).with_context(|| format!("reading `{}`", p.display()))?))
        })
        .collect()
}

fn verify(g: &Global, dir: &Path, key_file: Option<&Path>, kept: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (key, from) = match key_file {
        Some(f) => (
            std::fs::read_to_string(f).with_context(|| format!("reading `{}`", f.display()))?,
            format!("--key {}", f.display()),
        ),
        None if g.data_dir.join(crate::keys::FILE).exists() => (
            ledger_signer(&g.data_dir)?.verifier().to_string(),
            format!("the ledger key of data dir `{}`", g.data_dir.display()),
        ),
        None => {
            cli::report(
                cli::CL_BAD_INPUT,
                "no verifier key to trust: pass `--key FILE` (`tenure ledger key` on the ledger's host prints it); \
                 the export's own ledger.pub proves nothing",
                cli::EXIT_BAD_INPUT,
            );
            return Ok(ExitCode::from(cli::EXIT_BAD_INPUT));
        }
    };
    let key = key.trim().to_owned();
    let name = tenure_ledger::Verifier::parse(&key)
        .map(|v| v.name().to_owned())
        .map_err(|e| anyhow::anyhow!("{from}: not a verifier key: {e}"))?;
    let json = g.output == Output::Json;
    // Under JSON, one document: the outcome with the key it was checked against.
    let failed = |why: String| -> anyhow::Result<ExitCode> {
        if json {
            let doc = serde_json::json!({ "valid": false, "key": name, "key_from": from, "error": why });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            println!("verification FAILED: {why}");
        }
        Ok(ExitCode::FAILURE)
    };
    if !json {
        println!("key: `{name}` from {from}");
    }
    if let Ok(shipped) = std::fs::read_to_string(dir.join("ledger.pub"))
        && shipped.trim() != key
    {
        return failed("the export's ledger.pub is not the trusted key".into());
    }
    let mut notes: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
        .context("reading checkpoints/")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    notes.sort();
    let notes = read_notes(notes.into_iter())?;
    let trusted = read_notes(kept.iter().cloned())?;
    let file = std::fs::File::open(dir.join("entries.jsonl")).context("reading entries.jsonl")?;
    match tenure_ledger::export::verify(&mut std::io::BufReader::new(file), &notes, &key, &trusted) {
        Ok(r) if json => {
            let doc = serde_json::json!({
                "valid": true, "key": name, "key_from": from, "entries": r.entries, "checkpoints": r.checkpoints,
                "kept": trusted.len(), "root": hex::encode(r.root),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            println!(
                "verified: {} entries, {} checkpoints (+{} kept), root {}",
                r.entries,
                r.checkpoints,
                trusted.len(),
                hex::encode(r.root)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => failed(e.to_string()),
    }
}
