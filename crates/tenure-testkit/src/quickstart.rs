//! The quickstart's three downstream systems together (a slapd, a PostgreSQL cluster, a SCIM
//! service), and the variables the quickstart policy reads to reach them. One place for what
//! `tenure demo`, `tenure demo --systems`, the integration tests and the closure bench all start.

use crate::postgres::{LocalPostgres, PostgresError};
use crate::scim::{LocalScim, ScimServerError};
use crate::slapd::{LocalSlapd, SlapdError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    #[error(transparent)]
    Slapd(#[from] SlapdError),
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    #[error(transparent)]
    Scim(#[from] ScimServerError),
    #[error("QS0001 creating `{0}`: {1}")]
    Dir(String, std::io::Error),
}

/// The three systems, running; each stops when dropped.
pub struct Quickstart {
    pub slapd: LocalSlapd,
    pub pg: LocalPostgres,
    pub scim: LocalScim,
}

impl Quickstart {
    /// Start all three, their files under `dir` (`dir/slapd`, `dir/pg`).
    pub async fn start(dir: &Path) -> Result<Self, QuickstartError> {
        let slapd_dir = dir.join("slapd");
        std::fs::create_dir_all(&slapd_dir).map_err(|e| QuickstartError::Dir(slapd_dir.display().to_string(), e))?;
        let slapd = LocalSlapd::start(&slapd_dir).await?;
        let pg = LocalPostgres::start(&dir.join("pg")).await?;
        let scim = LocalScim::start().await?;
        Ok(Self { slapd, pg, scim })
    }

    /// The variables the quickstart's systems name, pointing at these.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_of(&self.slapd, &self.pg, &self.scim)
    }
}

/// The quickstart's variables for these three systems.
pub fn env_of(slapd: &LocalSlapd, pg: &LocalPostgres, scim: &LocalScim) -> Vec<(&'static str, String)> {
    vec![
        ("TENURE_LDAP_URL", slapd.url()),
        ("TENURE_LDAP_BASE_DN", slapd.base_dn.clone()),
        ("TENURE_LDAP_BIND_DN", slapd.bind_dn.clone()),
        ("TENURE_LDAP_PASSWORD", slapd.password.clone()),
        ("TENURE_PG_URL", pg.url()),
        ("TENURE_SCIM_URL", scim.url()),
        ("TENURE_SCIM_TOKEN", scim.token.clone()),
    ]
}
