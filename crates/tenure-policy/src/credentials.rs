//! The `[credentials]` section of a bundle: the SPIFFE trust domain and how an NHI's SPIFFE ID
//! is derived, which credential kinds each identity kind may hold, and the longest each may
//! live, per identity kind and per environment (the identity's `environment` attribute). The
//! effective maximum is the smallest that applies. People hold no broker credentials.
//!
//! ```toml
//! [credentials]
//! trust_domain = "example.org"
//! spiffe_path = "/{kind}/{source}/{external_id}"
//! signing_key_rotation = "24h"
//! max_ttl = { jwt-svid = "5m", x509-svid = "1h" }
//! [credentials.kinds.service]
//! allow = ["jwt-svid", "x509-svid", "api-key", "postgres-login"]
//! [credentials.environments.production]
//! max_ttl = { api-key = "7d" }
//! ```

use crate::error::{Problem, problem};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tenure_model::credential::parse_ttl;
use tenure_model::{CredentialKind, IdentityKind};
use time::Duration;

const MANIFEST: &str = "tenure.toml";
const PLACEHOLDERS: [&str; 3] = ["kind", "source", "external_id"];

/// What the broker may issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRules {
    pub trust_domain: String,
    /// A path template over `{kind}`, `{source}` and `{external_id}`.
    pub spiffe_path: String,
    /// `iss` of JWT-SVIDs and of the discovery document, when set.
    pub issuer: Option<String>,
    /// How often the JWT signing key is replaced.
    pub signing_key_rotation: Duration,
    max_ttl: BTreeMap<CredentialKind, Duration>,
    kinds: BTreeMap<IdentityKind, KindRule>,
    environments: BTreeMap<String, EnvRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct KindRule {
    allow: BTreeSet<CredentialKind>,
    max_ttl: BTreeMap<CredentialKind, Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct EnvRule {
    allow: Option<BTreeSet<CredentialKind>>,
    max_ttl: BTreeMap<CredentialKind, Duration>,
}

impl CredentialRules {
    /// `iss` of every JWT-SVID and of the discovery document: the policy's `issuer`, else
    /// `spiffe://TRUST_DOMAIN`. Configured, never taken from a request. It is also the audience
    /// a JWT-SVID must name to be accepted as a login to tenure itself.
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| format!("spiffe://{}", self.trust_domain))
    }

    /// The longest a `kind` credential of an identity of `identity_kind` in `environment` may
    /// live, or why it may not have one at all.
    pub fn max_ttl(
        &self,
        kind: CredentialKind,
        identity_kind: IdentityKind,
        environment: Option<&str>,
    ) -> Result<Duration, String> {
        let rule = self
            .kinds
            .get(&identity_kind)
            .filter(|r| r.allow.contains(&kind))
            .ok_or_else(|| format!("policy does not allow {kind} credentials for {identity_kind} identities"))?;
        let env = environment.and_then(|e| self.environments.get(e));
        if let Some(allow) = env.and_then(|e| e.allow.as_ref())
            && !allow.contains(&kind)
        {
            return Err(format!(
                "policy does not allow {kind} credentials in environment `{}`",
                environment.unwrap_or_default()
            ));
        }
        let mut max = self.max_ttl.get(&kind).copied().unwrap_or_else(|| kind.default_max_ttl());
        for m in [rule.max_ttl.get(&kind), env.and_then(|e| e.max_ttl.get(&kind))].into_iter().flatten() {
            max = max.min(*m);
        }
        Ok(max)
    }

    /// The longest any credential of `kind` may live under this policy.
    pub fn longest(&self, kind: CredentialKind) -> Duration {
        let base = self.max_ttl.get(&kind).copied().unwrap_or_else(|| kind.default_max_ttl());
        self.kinds.values().filter_map(|r| r.max_ttl.get(&kind)).fold(base, |a, b| a.max(*b))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialsSection {
    trust_domain: String,
    #[serde(default = "default_path")]
    spiffe_path: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default = "default_rotation")]
    signing_key_rotation: String,
    #[serde(default)]
    max_ttl: BTreeMap<String, String>,
    #[serde(default)]
    kinds: BTreeMap<String, KindSection>,
    #[serde(default)]
    environments: BTreeMap<String, EnvSection>,
}

fn default_path() -> String {
    "/{kind}/{source}/{external_id}".into()
}

fn default_rotation() -> String {
    "24h".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindSection {
    allow: Vec<String>,
    #[serde(default)]
    max_ttl: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvSection {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    max_ttl: BTreeMap<String, String>,
}

fn kinds(list: &[String], at: &str, problems: &mut Vec<Problem>) -> BTreeSet<CredentialKind> {
    let mut out = BTreeSet::new();
    for k in list {
        match k.parse::<CredentialKind>() {
            Ok(k) => {
                out.insert(k);
            }
            Err(e) => problems.push(problem(MANIFEST, at, e)),
        }
    }
    out
}

fn ttls(map: &BTreeMap<String, String>, at: &str, problems: &mut Vec<Problem>) -> BTreeMap<CredentialKind, Duration> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let field = format!("{at}.{k}");
        match (k.parse::<CredentialKind>(), parse_ttl(v)) {
            (Ok(k), Ok(d)) => {
                out.insert(k, d);
            }
            (Err(e), _) => problems.push(problem(MANIFEST, field, e)),
            (_, Err(e)) => problems.push(problem(MANIFEST, field, e.to_string())),
        }
    }
    out
}

pub(crate) fn rules(s: &CredentialsSection, problems: &mut Vec<Problem>) -> CredentialRules {
    if let Err(e) = tenure_svid::spiffe::check_trust_domain(&s.trust_domain) {
        problems.push(problem(MANIFEST, "credentials.trust_domain", e.to_string()));
    }
    // The template must derive a valid ID for valid values, and use only known placeholders.
    let sample: Vec<(&str, &str)> = PLACEHOLDERS.iter().map(|p| (*p, "x")).collect();
    if !s.spiffe_path.starts_with('/') {
        problems.push(problem(MANIFEST, "credentials.spiffe_path", "expected a path starting with `/`"));
    } else if let Err(e) = tenure_svid::spiffe::SpiffeId::derive("example.org", &s.spiffe_path, &sample) {
        problems.push(problem(MANIFEST, "credentials.spiffe_path", e.to_string()));
    }
    let rotation = parse_ttl(&s.signing_key_rotation).unwrap_or_else(|e| {
        problems.push(problem(MANIFEST, "credentials.signing_key_rotation", e.to_string()));
        Duration::hours(24)
    });
    let mut kind_rules = BTreeMap::new();
    for (name, k) in &s.kinds {
        let at = format!("credentials.kinds.{name}");
        match name.parse::<IdentityKind>() {
            Ok(IdentityKind::Human) => {
                problems.push(problem(MANIFEST, at, "people hold no broker credentials; list NHI kinds only"));
            }
            Ok(kind) => {
                let rule = KindRule {
                    allow: kinds(&k.allow, &format!("{at}.allow"), problems),
                    max_ttl: ttls(&k.max_ttl, &format!("{at}.max_ttl"), problems),
                };
                kind_rules.insert(kind, rule);
            }
            Err(e) => problems.push(problem(MANIFEST, at, e)),
        }
    }
    let environments = s
        .environments
        .iter()
        .map(|(name, e)| {
            let at = format!("credentials.environments.{name}");
            let rule = EnvRule {
                allow: e.allow.as_ref().map(|a| kinds(a, &format!("{at}.allow"), problems)),
                max_ttl: ttls(&e.max_ttl, &format!("{at}.max_ttl"), problems),
            };
            (name.clone(), rule)
        })
        .collect();
    CredentialRules {
        trust_domain: s.trust_domain.clone(),
        spiffe_path: s.spiffe_path.clone(),
        issuer: s.issuer.clone(),
        signing_key_rotation: rotation,
        max_ttl: ttls(&s.max_ttl, "credentials.max_ttl", problems),
        kinds: kind_rules,
        environments,
    }
}
