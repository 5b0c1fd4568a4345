//! A throwaway Samba Active Directory domain controller (`samba-tool domain provision`, Debian's
//! `samba` package) on loopback, in a directory of its own: what the LDAP connector's AD flavour
//! is tested against. It serves LDAP over TLS with a certificate of a CA the caller made, and
//! only LDAP (`server services = ldap`).
//!
//! A domain controller listens on the fixed LDAP ports (389, 636), so one process runs at most
//! one: [`LocalSambaDc::shared`] starts it on first use and every test of the process shares it,
//! each under organizational units of its own ([`LocalSambaDc::organizational_unit`]). It ends
//! with the process: `samba` runs under a shell that waits on a pipe from this process and
//! stops it (and removes its directory) when the pipe closes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tenure_connectors::ldap::{Disable, Flavor, LdapSettings};

/// The realm the domain is provisioned with; its base DN is `DC=tenure,DC=test`.
const REALM: &str = "TENURE.TEST";

#[derive(Debug, Clone, thiserror::Error)]
pub enum SambaError {
    #[error("SB0001 samba-tool not found; install it with `apt-get install samba` (the AD DC tests need it)")]
    NotFound,
    #[error("SB0002 cannot provision the domain in `{dir}`: {message}")]
    Provision { dir: String, message: String },
    #[error("SB0003 samba did not start: {0}")]
    Start(String),
    #[error("SB0004 cannot seed the directory: {0}")]
    Seed(String),
}

/// A running domain controller.
pub struct LocalSambaDc {
    _child: Mutex<Child>,
    dir: PathBuf,
    pub base_dn: String,
    /// The domain administrator's DN and password (what tenure binds as).
    pub bind_dn: String,
    pub password: String,
    /// The CA that signed the DC's certificate.
    pub ca_file: PathBuf,
}

impl LocalSambaDc {
    /// The process's domain controller, started on first use.
    pub fn shared() -> Result<&'static Self, SambaError> {
        static DC: OnceLock<Result<LocalSambaDc, SambaError>> = OnceLock::new();
        DC.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("tenure-samba-{}", std::process::id()));
            // Once running, the shell around `samba` removes the directory; before, this does.
            Self::start(&dir).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    fn start(dir: &Path) -> Result<Self, SambaError> {
        if Command::new("samba-tool").arg("--version").output().is_err() {
            return Err(SambaError::NotFound);
        }
        let dir = dir.to_path_buf();
        let provision = |message: String| SambaError::Provision { dir: dir.display().to_string(), message };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tls")).map_err(|e| provision(e.to_string()))?;
        let (cert, key) = crate::ca::loopback(&dir.join("tls"), "ca", "dc").map_err(provision)?;
        // Samba refuses a key others can read.
        set_mode(&key, 0o600).map_err(|e| provision(e.to_string()))?;
        let password = "Tenure-Adm1n-Pass!".to_owned();
        let conf = |k: &str, v: &str| format!("--option={k}={v}");
        let out = Command::new("samba-tool")
            .args(["domain", "provision", "--realm", REALM, "--domain", "TENURE", "--server-role=dc"])
            .args(["--dns-backend=NONE", "--adminpass", &password, "--host-ip=127.0.0.1"])
            .arg(format!("--targetdir={}", dir.display()))
            .arg(conf("interfaces", "lo"))
            .arg(conf("bind interfaces only", "yes"))
            .arg(conf("server services", "ldap"))
            .arg(conf("tls enabled", "yes"))
            .arg(conf("tls certfile", &cert.display().to_string()))
            .arg(conf("tls keyfile", &key.display().to_string()))
            .arg(conf("tls cafile", &dir.join("tls/ca.pem").display().to_string()))
            .arg(conf("log file", &dir.join("log.%m").display().to_string()))
            .output()
            .map_err(|e| provision(e.to_string()))?;
        if !out.status.success() {
            return Err(provision(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        for port in [389, 636] {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Err(SambaError::Start(format!("port {port} is taken: another directory runs on this machine")));
            }
        }
        // `samba` in the foreground under a shell that stops it, and removes the directory,
        // when this process's end of the pipe closes.
        let script = format!(
            "samba -i -M single -s '{conf}' > '{log}' 2>&1 & p=$!; read _; kill $p; wait $p; rm -rf '{dir}'",
            conf = dir.join("etc/smb.conf").display(),
            log = dir.join("samba.out").display(),
            dir = dir.display(),
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| SambaError::Start(e.to_string()))?;
        let base_dn = "DC=tenure,DC=test".to_owned();
        let dc = Self {
            _child: Mutex::new(child),
            bind_dn: format!("CN=Administrator,CN=Users,{base_dn}"),
            base_dn,
            password,
            ca_file: dir.join("tls/ca.pem"),
            dir,
        };
        // Up when an authenticated search over TLS answers.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match dc.ldap("ldapsearch", &["-b", &dc.base_dn, "-s", "base", "(objectClass=*)", "dn"], "") {
                Ok(_) => return Ok(dc),
                Err(e) if std::time::Instant::now() > deadline => {
                    let log = std::fs::read_to_string(dc.dir.join("samba.out")).unwrap_or_default();
                    return Err(SambaError::Start(format!("{e}\n{log}")));
                }
                #[expect(clippy::disallowed_methods, reason = "waiting for a server process, outside any clock")]
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    pub fn url(&self) -> String {
        "ldaps://127.0.0.1:636".into()
    }

    /// An LDAP tool (`ldapsearch`, `ldapadd`, `ldapmodify`) as the administrator over TLS,
    /// `stdin` fed to it; its output.
    pub fn ldap(&self, tool: &str, args: &[&str], stdin: &str) -> Result<String, String> {
        let mut child = Command::new(tool)
            .env("LDAPTLS_CACERT", &self.ca_file)
            .args(["-x", "-H", &self.url(), "-D", &self.bind_dn, "-w", &self.password])
            .args(if tool == "ldapsearch" { &["-LLL", "-o", "ldif-wrap=no"][..] } else { &[] })
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{tool}: {e} (apt-get install ldap-utils)"))?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Make `OU=NAME` under the base (a test's own container); its RDN.
    pub fn organizational_unit(&self, name: &str) -> Result<String, SambaError> {
        let ldif = format!("dn: OU={name},{}\nobjectClass: organizationalUnit\nou: {name}\n", self.base_dn);
        self.ldap("ldapadd", &[], &ldif).map_err(SambaError::Seed)?;
        Ok(format!("OU={name}"))
    }

    /// Connector settings for accounts under `people` and groups under `groups` (RDNs under
    /// the base), over TLS with the DC's CA.
    pub fn settings(&self, people: &str, groups: &str) -> Result<LdapSettings, tenure_connectors::ConnectorError> {
        let mut tls = BTreeMap::new();
        tls.insert("tls_ca_file".to_owned(), self.ca_file.display().to_string());
        Ok(LdapSettings {
            url: self.url(),
            base_dn: self.base_dn.clone(),
            bind_dn: self.bind_dn.clone(),
            bind_password: self.password.clone(),
            people: people.to_owned(),
            groups: groups.to_owned(),
            account_name: "{external_id}".into(),
            timeout: Duration::from_secs(10),
            tls: Some(tenure_connectors::tls::Tls::from_map("ad", &tls)?),
            starttls: false,
            flavor: Flavor::ActiveDirectory,
            disable: Disable::UserAccountControl,
            upn_suffix: "tenure.test".into(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
