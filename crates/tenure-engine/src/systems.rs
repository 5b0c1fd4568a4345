//! Connectors for the systems a policy names. Settings may name environment variables as
//! `${VAR}`, expanded here when connecting (so a bundle's version does not change with the
//! deployment's addresses and secrets); `VAR_FILE` variables name a file holding the value.

use std::collections::BTreeMap;
use std::sync::Arc;
use tenure_connectors::exec::{ExecConnector, ExecSettings};
use tenure_connectors::ldap::{LdapConnector, LdapSettings};
use tenure_connectors::notify::{Mailer, Webhook};
use tenure_connectors::postgres::{PostgresConnector, PostgresSettings};
use tenure_connectors::scim::{ScimConnector, ScimSettings};
use tenure_connectors::{Connector, ConnectorError};
use tenure_policy::notify::ChannelKind;
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

/// The variable naming which variables a bundle may use: a comma-separated list of names and
/// `PREFIX*` patterns, set by the operator (default `TENURE_*`).
pub const ALLOWED_VARS: &str = "TENURE_POLICY_VARS";

/// Settings that take a secret; only they may receive a secret variable.
const SECRET_FIELDS: &[&str] = &["bind_password", "token", "password", "secret"];

/// A variable holding a secret: named so (`…_PASSWORD`, `…_TOKEN`, `…_SECRET`, `…_KEY`), or
/// one read from a file.
fn is_secret_var(name: &str, lookup: &Lookup) -> bool {
    ["_PASSWORD", "_TOKEN", "_SECRET", "_KEY"].iter().any(|s| name.ends_with(s))
        || lookup(&format!("{name}_FILE")).is_some()
}

fn allowed(name: &str, lookup: &Lookup) -> bool {
    let list = lookup(ALLOWED_VARS).unwrap_or_else(|| "TENURE_*".into());
    name != ALLOWED_VARS
        && list.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        })
}

/// Why a setting's `${VAR}` could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("variable `{0}` is not one the operator allows policies to read (`{ALLOWED_VARS}`, default `TENURE_*`)")]
    NotAllowed(String),
    #[error("variable `{0}` holds a secret and may fill only {fields}", fields = secret_fields())]
    SecretOutOfPlace(String),
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    #[error("unclosed `${{` in `{0}`")]
    Unclosed(String),
}

/// [`SECRET_FIELDS`] as the error names them: `` `bind_password`, `token`, `password` ``.
fn secret_fields() -> String {
    SECRET_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

/// Expand the `${VAR}`s of setting `field`: only variables the operator allows
/// ([`ALLOWED_VARS`]), and secret ones only into fields that take a secret, so a bundle cannot
/// send the bind password to a listener of its choosing through a URL.
pub fn expand_setting(field: &str, value: &str, lookup: &Lookup) -> Result<String, SettingError> {
    expand_with(value, &mut |name| {
        if !allowed(name, lookup) {
            return Err(SettingError::NotAllowed(name.to_owned()));
        }
        if is_secret_var(name, lookup) && !SECRET_FIELDS.contains(&field) {
            return Err(SettingError::SecretOutOfPlace(name.to_owned()));
        }
        lookup(name).ok_or_else(|| SettingError::Unset(name.to_owned()))
    })
}

/// Expand every `${VAR}` in `value` with `lookup`, whose error (an unset or refused variable)
/// is the expansion's. Policy settings go through [`expand_setting`], which decides which
/// variables may be read.
fn expand_with(
    value: &str,
    lookup: &mut dyn FnMut(&str) -> Result<String, SettingError>,
) -> Result<String, SettingError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let tail = tail.get(2..).unwrap_or_default();
        let Some(end) = tail.find('}') else { return Err(SettingError::Unclosed(value.to_owned())) };
        let name = tail.get(..end).unwrap_or_default();
        out.push_str(&lookup(name)?);
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
    /// The notification channels (`[notifications.NAME]`), or why one cannot be used.
    channels: BTreeMap<String, Result<Sender, ConnectorError>>,
}

/// How a notification channel delivers.
#[derive(Clone)]
pub enum Sender {
    Webhook(Arc<Webhook>),
    Mail(Arc<Mailer>),
}

impl Systems {
    pub fn build(policy: &Bundle, lookup: &Lookup) -> Self {
        let mut connectors: BTreeMap<String, Arc<dyn Connector>> = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for (name, def) in &policy.systems {
            let mut settings = BTreeMap::new();
            let mut problem = None;
            for (k, v) in &def.settings {
                match expand_setting(k, v, lookup) {
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
        let mut channels = BTreeMap::new();
        for (name, def) in &policy.notifications {
            let mut settings = BTreeMap::new();
            let mut problem = None;
            for (k, v) in &def.settings {
                match expand_setting(k, v, lookup) {
                    Ok(v) => {
                        settings.insert(k.clone(), v);
                    }
                    Err(e) => problem = Some(format!("field `{k}`: {e}")),
                }
            }
            let built = match problem {
                Some(message) => Err(ConnectorError::Config { system: name.clone(), message }),
                None => match def.kind {
                    ChannelKind::Webhook => Webhook::new(name, &settings).map(|w| Sender::Webhook(Arc::new(w))),
                    ChannelKind::Email => Mailer::new(name, &settings).map(|m| Sender::Mail(Arc::new(m))),
                },
            };
            channels.insert(name.clone(), built);
        }
        Self { version: policy.version.to_string(), connectors, broken, limits, channels }
    }

    /// The notification channel `name` of this policy version.
    pub fn channel(&self, name: &str) -> Result<Sender, ConnectorError> {
        self.channels.get(name).cloned().unwrap_or_else(|| {
            Err(ConnectorError::Config {
                system: name.to_owned(),
                message: "the current policy has no such notification channel".into(),
            })
        })
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
        let l = |n: &str| (n == "HOST").then(|| "ldap.example".to_owned());
        let expand = |v: &str| expand_with(v, &mut |n| l(n).ok_or_else(|| SettingError::Unset(n.to_owned())));
        assert_eq!(expand("ldap://${HOST}:389").unwrap(), "ldap://ldap.example:389");
        assert_eq!(expand("plain").unwrap(), "plain");
        assert!(expand("${NOPE}").unwrap_err().to_string().contains("`NOPE`"));
        assert!(expand("${HOST").is_err());
    }

    #[test]
    fn only_allowed_variables_and_secrets_only_into_secret_fields() {
        let env: BTreeMap<&str, &str> = [
            ("TENURE_LDAP_URL", "ldap://x"),
            ("TENURE_LDAP_PASSWORD", "s3cret"),
            ("TENURE_DB_DSN_FILE", "/run/secrets/dsn"),
            ("TENURE_DB_DSN", "postgres://u:p@h/d"),
            ("HOME", "/root"),
        ]
        .into_iter()
        .collect();
        let env2 = env.clone();
        let l: Lookup = Arc::new(move |k: &str| env2.get(k).map(|v| (*v).to_owned()));
        assert_eq!(expand_setting("url", "${TENURE_LDAP_URL}", &l).unwrap(), "ldap://x");
        assert_eq!(expand_setting("bind_password", "${TENURE_LDAP_PASSWORD}", &l).unwrap(), "s3cret");
        let e = expand_setting("url", "http://evil/?p=${TENURE_LDAP_PASSWORD}", &l).unwrap_err();
        assert_eq!(e, SettingError::SecretOutOfPlace("TENURE_LDAP_PASSWORD".into()));
        assert!(expand_setting("url", "${TENURE_DB_DSN}", &l).unwrap_err().to_string().contains("holds a secret"));
        let e = expand_setting("url", "${HOME}", &l).unwrap_err();
        assert!(e.to_string().contains("not one the operator allows"), "{e}");
        // The operator widens the list.
        let mut wider = env.clone();
        wider.insert(ALLOWED_VARS, "TENURE_*, HOME");
        let l: Lookup = Arc::new(move |k: &str| wider.get(k).map(|v| (*v).to_owned()));
        assert_eq!(expand_setting("url", "${HOME}", &l).unwrap(), "/root");
        assert!(expand_setting("url", "${TENURE_POLICY_VARS}", &l).is_err());
    }
}
