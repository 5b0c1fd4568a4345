//! Birthright templates: conditions on an identity's kind, source and attributes, and the
//! entitlements they give.

use crate::bundle::EntitlementId;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tenure_model::IdentityKind;

/// What a template may look at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub source: &'a str,
    pub kind: IdentityKind,
    pub attributes: &'a BTreeMap<String, String>,
}

/// One or several accepted values.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, v: &str) -> bool {
        match self {
            Self::One(s) => s == v,
            Self::Many(all) => all.iter().any(|s| s == v),
        }
    }

    pub(crate) fn values(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(all) => all.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct When {
    #[serde(default)]
    pub kind: Option<OneOrMany>,
    #[serde(default)]
    pub source: Option<OneOrMany>,
    #[serde(default)]
    pub attributes: BTreeMap<String, OneOrMany>,
}

/// A birthright template: every condition must hold (an absent attribute never matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub file: String,
    pub description: String,
    pub(crate) when: When,
    pub grants: BTreeSet<EntitlementId>,
}

impl Template {
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        if let Some(kinds) = &self.when.kind
            && !kinds.contains(facts.kind.as_str())
        {
            return false;
        }
        if let Some(sources) = &self.when.source
            && !sources.contains(facts.source)
        {
            return false;
        }
        self.when
            .attributes
            .iter()
            .all(|(name, want)| facts.attributes.get(name).is_some_and(|have| want.contains(have)))
    }
}
