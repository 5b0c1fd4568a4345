//! A throwaway SCIM 2.0 service for the demo and the tests: `scim2-server` from PyPI (a
//! third-party, in-memory implementation), on a loopback port with a random bearer token.
//! `scripts/install-deps` puts it in `target/pyenv`; `$TENURE_SCIM2_SERVER` names it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ScimServerError {
    #[error(
        "SC0001 scim2-server not found (looked at $TENURE_SCIM2_SERVER, target/pyenv/bin and PATH); run scripts/install-deps"
    )]
    NotFound,
    #[error("SC0002 scim2-server did not start: {0}")]
    Start(String),
}

pub struct LocalScim {
    child: Child,
    pub port: u16,
    pub token: String,
}

fn find() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = std::env::var_os("TENURE_SCIM2_SERVER").map(PathBuf::from).into_iter().collect();
    // From a crate's test directory or the workspace root.
    for up in ["", "..", "../.."] {
        c.push(PathBuf::from(up).join("target/pyenv/bin/scim2-server"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        c.extend(std::env::split_paths(&path).map(|d| d.join("scim2-server")));
    }
    c.into_iter().find(|p| p.is_file())
}

impl LocalScim {
    pub async fn start() -> Result<Self, ScimServerError> {
        let exe = find().ok_or(ScimServerError::NotFound)?;
        let token = format!("scim-{}", hex::encode(rand::random::<[u8; 12]>()));
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| ScimServerError::Start(e.to_string()))?
                .port();
            let mut child = Command::new(&exe)
                .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", &token])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| ScimServerError::Start(format!("{}: {e}", exe.display())))?;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Ok(Self { child, port, token });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(ScimServerError::Start(last))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalScim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
