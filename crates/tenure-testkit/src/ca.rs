//! Throwaway certificate authorities for TLS tests, made with the `openssl` command: a CA and
//! the certificates it signs (EC P-256, valid a day or two), as PEM files in a directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `openssl` in `dir`; its complaint when it fails.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("CA0001 openssl: {e} (install it with `apt-get install openssl`)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("CA0002 openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A certificate for `cn` signed by CA `ca` (made in `dir` on first use: `ca.pem`, `ca.key`),
/// for the subject alternative names `sans` (`IP:127.0.0.1,DNS:localhost`); with `client`, for
/// TLS client authentication. Returns the certificate and key files (`cn.pem`, `cn.key`).
pub fn certificate(dir: &Path, ca: &str, cn: &str, sans: &str, client: bool) -> Result<(PathBuf, PathBuf), String> {
    if !dir.join(format!("{ca}.pem")).exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        )?;
    }
    let usage = if client { "clientAuth" } else { "serverAuth" };
    let ext = format!("{cn}.ext");
    std::fs::write(dir.join(&ext), format!("subjectAltName={sans}\nextendedKeyUsage={usage}\n"))
        .map_err(|e| format!("CA0003 writing {ext}: {e}"))?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{cn}.key"),
            "-out",
            &format!("{cn}.csr"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{cn}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &format!("{cn}.pem"),
        ],
    )?;
    Ok((dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key"))))
}

/// A server certificate for loopback (`127.0.0.1` and `localhost`) signed by CA `ca`.
pub fn loopback(dir: &Path, ca: &str, cn: &str) -> Result<(PathBuf, PathBuf), String> {
    certificate(dir, ca, cn, "IP:127.0.0.1,DNS:localhost", false)
}
