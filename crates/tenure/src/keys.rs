//! The ledger signing key: created at first use in the data directory (`ledger.key`, mode
//! 0600), never logged or stored in the database. Its public half is the verifier key that
//! `tenure ledger key` prints and `tenure ledger export` writes.

use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use tenure_ledger::Signer;

pub const FILE: &str = "ledger.key";

/// Load the signer, creating the key (and the log's origin name) on first use.
pub fn ledger_signer(data_dir: &Path) -> anyhow::Result<Signer> {
    let path = data_dir.join(FILE);
    if !path.exists() {
        crate::cli::require_data_dir(data_dir)?;
        let origin = std::env::var("TENURE_LEDGER_ORIGIN")
            .unwrap_or_else(|_| format!("tenure/{}", hex::encode(rand::random::<[u8; 6]>())));
        if origin.is_empty() || origin.contains(['\n', '+', ' ']) {
            bail!("TENURE_LEDGER_ORIGIN must be non-empty without spaces, `+` or newlines");
        }
        let seed: [u8; 32] = rand::random();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => {
                f.write_all(format!("{origin}\n{}\n", hex::encode(seed)).as_bytes())?;
                f.sync_all()?;
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating `{}`", path.display())),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!("`{}` is readable by others (mode {:o}); run `chmod 600` on it", path.display(), mode & 0o777);
        }
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut lines = text.lines();
    let (Some(origin), Some(seed)) = (lines.next(), lines.next()) else {
        bail!("`{}` is malformed: expected the log's origin and a hex seed", path.display());
    };
    let seed: [u8; 32] = hex::decode(seed)
        .ok()
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("`{}`: the seed is not 32 hex bytes", path.display()))?;
    Ok(Signer::from_seed(origin, &seed))
}
