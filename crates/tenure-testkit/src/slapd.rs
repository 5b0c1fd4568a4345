//! A throwaway OpenLDAP `slapd` on a loopback port, in a directory of its own: what the demo and
//! the tests provision into. It is configured like a production directory tenure manages
//! (`mdb` backend, `ppolicy` overlay with lockout on, `lastbind` recording each entry's last
//! bind in `authTimestamp`, `ou=people` and `ou=groups`), and stopped when dropped.

use ldap3::{LdapConnAsync, LdapConnSettings};
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tenure_connectors::ldap::LdapSettings;

/// An entry's attributes, as ldap3 takes them.
type Attrs = Vec<(String, HashSet<String>)>;

/// Where Debian's packages put things; overridable for other layouts.
const SLAPD_CANDIDATES: &[&str] = &["/usr/sbin/slapd", "/usr/local/sbin/slapd", "/usr/local/libexec/slapd"];

#[derive(Debug, thiserror::Error)]
pub enum SlapdError {
    #[error(
        "SL0001 slapd not found (looked at $TENURE_SLAPD and {0}); install it with `apt-get install slapd ldap-utils`"
    )]
    NotFound(String),
    #[error("SL0002 cannot prepare slapd in `{dir}`: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("SL0003 slapd did not start: {0}")]
    Start(String),
    #[error("SL0004 cannot seed the directory: {0}")]
    Seed(String),
}

/// A running throwaway directory.
pub struct LocalSlapd {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    /// The `ldaps://` port, when started with a certificate ([`LocalSlapd::start_tls`]).
    pub tls_port: Option<u16>,
    pub base_dn: String,
    pub bind_dn: String,
    pub password: String,
}

impl LocalSlapd {
    /// Start slapd in `dir` (which must exist and be private to the caller) and seed it.
    pub async fn start(dir: &Path) -> Result<Self, SlapdError> {
        Self::start_with(dir, None).await
    }

    /// The same, also serving `ldaps://` (and StartTLS on `ldap://`) with this certificate
    /// and key.
    pub async fn start_tls(dir: &Path, cert: &Path, key: &Path) -> Result<Self, SlapdError> {
        Self::start_with(dir, Some((cert, key))).await
    }

    async fn start_with(dir: &Path, tls: Option<(&Path, &Path)>) -> Result<Self, SlapdError> {
        let slapd = find_slapd()?;
        let io = |source| SlapdError::Io { dir: dir.display().to_string(), source };
        let db = dir.join("db");
        std::fs::create_dir_all(&db).map_err(io)?;
        let password = hex::encode(rand::random::<[u8; 16]>());
        let base_dn = "dc=example,dc=com".to_owned();
        let bind_dn = format!("cn=admin,{base_dn}");
        let schema = std::env::var("TENURE_SLAPD_SCHEMA").unwrap_or_else(|_| "/etc/ldap/schema".into());
        let modules = std::env::var("TENURE_SLAPD_MODULES").unwrap_or_else(|_| "/usr/lib/ldap".into());
        let tls_conf = match tls {
            Some((cert, key)) => {
                format!("TLSCertificateFile {}\nTLSCertificateKeyFile {}\n", cert.display(), key.display())
            }
            None => String::new(),
        };
        let conf = format!(
            "{tls_conf}include {schema}/core.schema\ninclude {schema}/cosine.schema\ninclude {schema}/inetorgperson.schema\n\
             include {schema}/nis.schema\nmodulepath {modules}\nmoduleload back_mdb\nmoduleload ppolicy\nmoduleload lastbind\n\
             pidfile {pid}\nsizelimit unlimited\ndatabase mdb\nmaxsize 4294967296\nsuffix \"{base_dn}\"\n\
             rootdn \"{bind_dn}\"\nrootpw {password}\ndirectory {db}\nindex objectClass eq\nindex uid eq\n\
             index member eq\nindex cn eq\ndbnosync\noverlay ppolicy\nppolicy_use_lockout\n\
             ppolicy_default \"cn=default,ou=policies,{base_dn}\"\noverlay lastbind\n",
            pid = dir.join("slapd.pid").display(),
            db = db.display(),
        );
        let conf_path = dir.join("slapd.conf");
        std::fs::write(&conf_path, conf).map_err(io)?;

        // Pick a free port; if another process takes it first, slapd fails and we try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(io)?;
            let tls_port = match tls {
                Some(_) => Some(free_port().map_err(io)?),
                None => None,
            };
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = tls_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let log = std::fs::File::create(dir.join("slapd.log")).map_err(io)?;
            let mut child = Command::new(&slapd)
                .arg("-f")
                .arg(&conf_path)
                .arg("-h")
                .arg(urls)
                // `-d` keeps slapd in the foreground so it is our child and dies with us.
                .args(["-d", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| SlapdError::Start(format!("{}: {e}", slapd.display())))?;
            match wait_ready(port, &bind_dn, &password, &mut child).await {
                Ok(()) => {
                    let mut me = Self { child, dir: dir.to_owned(), port, tls_port, base_dn, bind_dn, password };
                    me.seed().await?;
                    return Ok(me);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
                    last = format!("{e}; slapd said: {}", log.trim());
                }
            }
        }
        Err(SlapdError::Start(last))
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The `ldaps://` URL (started with [`LocalSlapd::start_tls`]).
    pub fn ldaps_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("ldaps://127.0.0.1:{p}"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connector settings for this directory.
    pub fn settings(&self) -> LdapSettings {
        LdapSettings {
            url: self.url(),
            base_dn: self.base_dn.clone(),
            bind_dn: self.bind_dn.clone(),
            bind_password: self.password.clone(),
            people: "ou=people".into(),
            groups: "ou=groups".into(),
            account_name: "{external_id}".into(),
            timeout: Duration::from_secs(10),
            tls: None,
            starttls: false,
            flavor: tenure_connectors::ldap::Flavor::OpenLdap,
            disable: tenure_connectors::ldap::Disable::Ppolicy,
            upn_suffix: "example.com".into(),
        }
    }

    /// Stop slapd (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn seed(&mut self) -> Result<(), SlapdError> {
        let seed = |e: ldap3::LdapError| SlapdError::Seed(e.to_string());
        let (conn, mut ldap) = LdapConnAsync::new(&self.url()).await.map_err(seed)?;
        ldap3::drive!(conn);
        ldap.simple_bind(&self.bind_dn, &self.password).await.map_err(seed)?.success().map_err(seed)?;
        let b = &self.base_dn;
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<HashSet<String>>();
        let entries: Vec<(String, Attrs)> = vec![
            (
                b.clone(),
                vec![
                    ("objectClass".into(), s(&["dcObject", "organization"])),
                    ("o".into(), s(&["Example"])),
                    ("dc".into(), s(&["example"])),
                ],
            ),
            (
                format!("ou=people,{b}"),
                vec![("objectClass".into(), s(&["organizationalUnit"])), ("ou".into(), s(&["people"]))],
            ),
            (
                format!("ou=groups,{b}"),
                vec![("objectClass".into(), s(&["organizationalUnit"])), ("ou".into(), s(&["groups"]))],
            ),
            (
                format!("ou=policies,{b}"),
                vec![("objectClass".into(), s(&["organizationalUnit"])), ("ou".into(), s(&["policies"]))],
            ),
            (
                format!("cn=default,ou=policies,{b}"),
                vec![
                    ("objectClass".into(), s(&["organizationalRole", "pwdPolicy"])),
                    ("cn".into(), s(&["default"])),
                    ("pwdAttribute".into(), s(&["userPassword"])),
                    ("pwdLockout".into(), s(&["TRUE"])),
                ],
            ),
        ];
        for (dn, attrs) in entries {
            ldap.add(&dn, attrs).await.map_err(seed)?.success().map_err(seed)?;
        }
        let _ = ldap.unbind().await;
        Ok(())
    }
}

impl Drop for LocalSlapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_slapd() -> Result<PathBuf, SlapdError> {
    if let Ok(p) = std::env::var("TENURE_SLAPD") {
        return Ok(PathBuf::from(p));
    }
    SLAPD_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| SlapdError::NotFound(SLAPD_CANDIDATES.join(", ")))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(port: u16, bind_dn: &str, password: &str, child: &mut Child) -> Result<(), String> {
    let url = format!("ldap://127.0.0.1:{port}");
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("slapd exited with {status}"));
        }
        let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(1));
        match LdapConnAsync::with_settings(settings, &url).await {
            Ok((conn, mut ldap)) => {
                ldap3::drive!(conn);
                match ldap.simple_bind(bind_dn, password).await.and_then(|r| r.success()) {
                    Ok(_) => {
                        let _ = ldap.unbind().await;
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("not ready after 5 s: {last}"))
}
