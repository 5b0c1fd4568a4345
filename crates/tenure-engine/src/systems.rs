//! Connectors for the systems a policy names. Settings may name environment variables as
//! `${VAR}`, expanded here when connecting (so a bundle's version does not change with the
//! deployment's addresses and secrets); `VAR_FILE` variables name a file holding the value.

use std::collections::BTreeMap;
use std::sync::Arc;
use tenure_connectors::exec::{ExecConnector, ExecSettings};
use tenure_connectors::ldap::{LdapConnector, LdapSettings};
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_connectors::{Connector, ConnectorError};
use tenure_policy::{Bundle, SystemType};

/// Looks up a variable (the process environment, or a test's or demo's own map).
pub type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment; `${VAR}` also accepts `VAR_FILE` naming a file with the value.
pub fn process_env() -> Lookup {
    Arc::new(|name: &str| {
        std::env::var(name).ok().or_else(|| {
            let path = std::env::var(format!("{name}_FILE")).ok()?;
            std::fs::read_to_string(path).ok().map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        })
    })
}

/// Expand every `${VAR}` in `value`; an unset variable is an error naming it.
pub fn expand(value: &str, lookup: &Lookup) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let tail = tail.get(2..).unwrap_or_default();
        let Some(end) = tail.find('}') else { return Err(format!("unclosed `${{` in `{value}`")) };
        let name = tail.get(..end).unwrap_or_default();
        let v = lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&v);
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

/// The connectors of one policy version.
pub struct Systems {
    pub version: String,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    /// Systems whose settings could not be used, with the reason.
    broken: BTreeMap<String, ConnectorError>,
    /// Systems with a concurrency limit: a permit per job talking to them.
    limits: BTreeMap<String, Arc<tokio::sync::Semaphore>>,
}

impl Systems {
    pub fn build(policy: &Bundle, lookup: &Lookup) -> Self {
        let mut connectors: BTreeMap<String, Arc<dyn Connector>> = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for (name, def) in &policy.systems {
            let mut settings = BTreeMap::new();
            let mut problem = None;
            for (k, v) in &def.settings {
                match expand(v, lookup) {
                    Ok(v) => {
                        settings.insert(k.clone(), v);
                    }
                    Err(e) => problem = Some(format!("field `{k}`: {e}")),
                }
            }
            if let Some(message) = problem {
                broken.insert(name.clone(), ConnectorError::Config { system: name.clone(), message });
                continue;
            }
            let built: Result<Arc<dyn Connector>, ConnectorError> = match def.kind {
                SystemType::Ldap => LdapSettings::from_map(name, &settings)
                    .map(|s| Arc::new(LdapConnector::new(name, s)) as Arc<dyn Connector>),
                SystemType::Postgres => PostgresSettings::from_map(name, &settings)
                    .and_then(|s| PostgresConnector::new(name, s))
                    .map(|c| Arc::new(c) as Arc<dyn Connector>),
                SystemType::Scim => ScimSettings::from_map(name, &settings)
                    .map(|s| Arc::new(ScimConnector::new(name, s)) as Arc<dyn Connector>),
                SystemType::Exec => ExecSettings::from_map(name, &settings)
                    .map(|s| Arc::new(ExecConnector::new(name, s)) as Arc<dyn Connector>),
            };
            match built {
                Ok(c) => {
                    connectors.insert(name.clone(), c);
                }
                Err(e) => {
                    broken.insert(name.clone(), e);
                }
            }
        }
        let limits = policy
            .systems
            .values()
            .filter_map(|d| d.max_concurrency.map(|n| (d.name.clone(), Arc::new(tokio::sync::Semaphore::new(n)))))
            .collect();
        Self { version: policy.version.to_string(), connectors, broken, limits }
    }

    /// The concurrency limit of a system, if it has one.
    pub fn limit(&self, system: &str) -> Option<Arc<tokio::sync::Semaphore>> {
        self.limits.get(system).cloned()
    }

    pub fn get(&self, system: &str) -> Result<Arc<dyn Connector>, ConnectorError> {
        if let Some(c) = self.connectors.get(system) {
            return Ok(c.clone());
        }
        Err(self.broken.get(system).cloned().unwrap_or_else(|| ConnectorError::Config {
            system: system.to_owned(),
            message: "the current policy has no such system".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_missing_ones_are_named() {
        let l: Lookup = Arc::new(|n: &str| (n == "HOST").then(|| "ldap.example".to_owned()));
        assert_eq!(expand("ldap://${HOST}:389", &l).unwrap(), "ldap://ldap.example:389");
        assert_eq!(expand("plain", &l).unwrap(), "plain");
        assert!(expand("${NOPE}", &l).unwrap_err().contains("`NOPE`"));
        assert!(expand("${HOST", &l).is_err());
    }
}
