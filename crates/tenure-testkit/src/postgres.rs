//! A throwaway PostgreSQL cluster on a loopback port, in a directory of its own (`initdb` and
//! `pg_ctl`), for the demo and the tests. PostgreSQL refuses to run as root: when we are root,
//! the cluster runs as `nobody` (through `runuser`). Local connections are trusted, so a probe
//! shows whether a role may log in at all, except for members of [`LOGIN_GROUP`] (dynamic
//! logins), who must give their password. Stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The group whose members log in with a password (SCRAM); set it as a postgres system's
/// `login_group` so the broker's dynamic logins join it.
pub const LOGIN_GROUP: &str = "tenure_logins";

/// Where PostgreSQL's programs may be, besides `$TENURE_PG_BIN` and `PATH`.
const BIN_CANDIDATES: &[&str] = &["/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"];

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "PG0001 initdb and pg_ctl not found (looked at $TENURE_PG_BIN, PATH and {0}); install PostgreSQL (`apt-get install postgresql`)"
    )]
    NotFound(String),
    #[error("PG0002 cannot prepare the cluster in `{dir}`: {message}")]
    Prepare { dir: String, message: String },
    #[error("PG0003 PostgreSQL did not start: {0}")]
    Start(String),
}

/// A running throwaway cluster.
pub struct LocalPostgres {
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<&'static str>,
    pub port: u16,
    pub user: String,
    pub database: String,
    running: bool,
}

fn find_bin() -> Result<PathBuf, PostgresError> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("TENURE_PG_BIN").map(PathBuf::from).into_iter().collect();
    dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    dirs.extend(BIN_CANDIDATES.iter().map(PathBuf::from));
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or_else(|| PostgresError::NotFound(BIN_CANDIDATES.join(", ")))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl LocalPostgres {
    /// Create and start a cluster under `dir` (created if needed).
    pub async fn start(dir: &Path) -> Result<Self, PostgresError> {
        let bin = find_bin()?;
        let prep = |message: String| PostgresError::Prepare { dir: dir.display().to_string(), message };
        let data = dir.join("pgdata");
        std::fs::create_dir_all(dir).map_err(|e| prep(e.to_string()))?;
        let run_as = if is_root() { Some("nobody") } else { None };
        if let Some(user) = run_as {
            // The cluster's owner must be able to reach and own its directory.
            let out = Command::new("chown").args(["-R", &format!("{user}:")]).arg(dir).output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                return Err(prep(format!("chown to {user} failed")));
            }
            let mut p = dir.parent();
            while let Some(parent) = p {
                // Traversal only (o+x), never read, on the way down to the cluster.
                let _ = Command::new("chmod").arg("o+x").arg(parent).output();
                p = parent.parent();
            }
        }
        let mut me =
            Self { bin, data, run_as, port: 0, user: "postgres".into(), database: "postgres".into(), running: false };
        let out = me
            .run("initdb", &["-D", &me.data.display().to_string(), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .map_err(prep)?;
        if !out.status.success() {
            return Err(prep(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        // Members of `tenure_logins` (the broker's dynamic logins, per the tests' and
        // quickstart's `login_group`) must give their password; every other role is trusted.
        let hba = me.data.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).map_err(|e| prep(format!("reading pg_hba.conf: {e}")))?;
        std::fs::write(&hba, format!("host all +{LOGIN_GROUP} 127.0.0.1/32 scram-sha-256\n{rest}"))
            .map_err(|e| prep(format!("writing pg_hba.conf: {e}")))?;
        me.start_again().await?;
        Ok(me)
    }

    /// Serve TLS too (`ssl = on`) with this certificate and key, copied into the cluster (the
    /// server insists its key is private to it); restarts the cluster.
    pub async fn enable_tls(&mut self, cert: &Path, key: &Path) -> Result<(), PostgresError> {
        let prep = |message: String| PostgresError::Prepare { dir: self.data.display().to_string(), message };
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, self.data.join(to)).map_err(|e| prep(format!("copying {}: {e}", from.display())))?;
        }
        let key_file = self.data.join("server.key").display().to_string();
        let _ = Command::new("chmod").args(["600", &key_file]).output();
        if let Some(user) = self.run_as {
            for f in ["server.crt", "server.key"] {
                let _ = Command::new("chown").arg(format!("{user}:")).arg(self.data.join(f)).output();
            }
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| prep(format!("reading postgresql.conf: {e}")))?;
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).map_err(|e| prep(format!("writing postgresql.conf: {e}")))?;
        let data = self.data.display().to_string();
        // The log file, or the server would hold our output pipe open for as long as it runs.
        let log = self.data.join("postgres.log").display().to_string();
        let out = self
            .run("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "60", "restart"])
            .map_err(PostgresError::Start)?;
        if !out.status.success() {
            return Err(PostgresError::Start(format!(
                "restart with TLS: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let exe = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", exe.display()))
    }

    /// Start (again) on a free port, or the same port when restarting.
    pub async fn start_again(&mut self) -> Result<(), PostgresError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port =
                if self.port == 0 { free_port().map_err(|e| PostgresError::Start(e.to_string()))? } else { self.port };
            let opts = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200",
                self.data.display()
            );
            let log = self.data.join("postgres.log").display().to_string();
            let data = self.data.display().to_string();
            let out = self.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
            match out {
                Ok(o) if o.status.success() => {
                    self.port = port;
                    self.running = true;
                    return Ok(());
                }
                Ok(o) => {
                    last = format!(
                        "{}{}; log: {}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                Err(e) => last = e,
            }
            if self.port != 0 {
                break;
            }
        }
        Err(PostgresError::Start(last))
    }

    /// Stop the server (fast shutdown: sessions are cut); the data stays for `start_again`.
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data.display().to_string();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    /// The admin connection URL (trusted on loopback, no password).
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}", self.user, self.port, self.database)
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
