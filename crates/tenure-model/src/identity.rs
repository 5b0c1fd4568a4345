//! Identity kinds and references (`source:external_id`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum! {
    /// What an identity is. Everything but `Human` is a non-human identity (NHI).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum IdentityKind {
        Human => "human",
        Service => "service",
        Workload => "workload",
        Agent => "agent",
    }
}

impl IdentityKind {
    pub fn is_human(self) -> bool {
        self == Self::Human
    }
}

/// A reference to an identity: the source that is authoritative for it and its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityRef {
    source: String,
    external_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("expected `source:external_id`, found `{0}`")]
    Malformed(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} {1}")]
    Text(&'static str, crate::text::TextError),
}

impl IdentityRef {
    pub fn new(source: &str, external_id: &str) -> Result<Self, RefError> {
        check_part("source", source)?;
        check_part("external_id", external_id)?;
        if source.contains(':') {
            return Err(RefError::Malformed(format!("{source}:{external_id}")));
        }
        Ok(Self { source: source.to_owned(), external_id: external_id.to_owned() })
    }

    /// `operator:NAME`, the identity of an operator (a name tenure's code chooses, not input).
    pub(crate) fn operator(name: &str) -> Self {
        Self { source: "operator".to_owned(), external_id: name.to_owned() }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn external_id(&self) -> &str {
        &self.external_id
    }
}

fn check_part(what: &'static str, s: &str) -> Result<(), RefError> {
    if s.is_empty() {
        return Err(RefError::Empty(what));
    }
    // Lengths, control, bidi and invisible characters.
    let max = if what == "source" { crate::text::MAX_SOURCE } else { crate::text::MAX_ID };
    crate::text::check(s, max, false).map_err(|e| RefError::Text(what, e))?;
    Ok(())
}

impl FromStr for IdentityRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The source never contains `:`; the external id may.
        let (source, external_id) = s.split_once(':').ok_or_else(|| RefError::Malformed(s.to_owned()))?;
        Self::new(source, external_id)
    }
}

impl fmt::Display for IdentityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.external_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_and_keep_colons_in_the_external_id() {
        let r: IdentityRef = "hr:E:1".parse().unwrap();
        assert_eq!(r.source(), "hr");
        assert_eq!(r.external_id(), "E:1");
        assert_eq!(r.to_string(), "hr:E:1");
    }

    #[test]
    fn malformed_refs_are_refused() {
        assert!("nocolon".parse::<IdentityRef>().is_err());
        assert!(":x".parse::<IdentityRef>().is_err());
        assert!("hr:".parse::<IdentityRef>().is_err());
        assert!("hr:a\nb".parse::<IdentityRef>().is_err());
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("agent".parse::<IdentityKind>().unwrap(), IdentityKind::Agent);
        assert!("robot".parse::<IdentityKind>().unwrap_err().contains("`robot`"));
    }
}
