//! SPIFFE IDs (`spiffe://TRUST_DOMAIN/PATH`), validated per the SPIFFE ID specification: a
//! trust domain of lowercase letters, digits, `.`, `-` and `_`; path segments of letters,
//! digits, `.`, `-` and `_`, none empty, `.` or `..`. A policy template such as
//! `/{kind}/{source}/{external_id}` derives an identity's path; a value that is not a valid
//! segment is refused rather than rewritten, so two identities never share an ID.

use crate::{Result, SvidError};
use std::fmt;

/// A valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId(String);

fn err(m: String) -> SvidError {
    SvidError::SpiffeId(m)
}

/// Check a trust domain name.
pub fn check_trust_domain(td: &str) -> Result<()> {
    if td.is_empty() {
        return Err(err("the trust domain is empty".into()));
    }
    if let Some(c) = td.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(*c))) {
        return Err(err(format!(
            "trust domain `{td}`: `{c}` is not allowed (lowercase letters, digits, `.`, `-`, `_`)"
        )));
    }
    Ok(())
}

fn check_segment(seg: &str, what: &str) -> Result<()> {
    if seg.is_empty() || seg == "." || seg == ".." {
        return Err(err(format!("{what}: a path segment may not be empty, `.` or `..`")));
    }
    if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || ".-_".contains(*c))) {
        return Err(err(format!(
            "{what}: `{c}` in `{seg}` is not allowed in a SPIFFE ID path (letters, digits, `.`, `-`, `_`)"
        )));
    }
    Ok(())
}

impl SpiffeId {
    /// Derive an ID from `template` (a path with `{name}` placeholders), substituting `values`.
    /// Each substituted value must be a valid path segment on its own.
    pub fn derive(trust_domain: &str, template: &str, values: &[(&str, &str)]) -> Result<Self> {
        check_trust_domain(trust_domain)?;
        let mut path = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            path.push_str(before);
            let close = after.find('}').ok_or_else(|| err(format!("template `{template}`: unclosed `{{`")))?;
            let name = after.get(1..close).unwrap_or_default();
            let value = values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| err(format!("template `{template}`: unknown placeholder `{{{name}}}`")))?;
            check_segment(value, &format!("`{{{name}}}` = `{value}`"))?;
            path.push_str(value);
            rest = after.get(close + 1..).unwrap_or_default();
        }
        path.push_str(rest);
        Self::parse(&format!("spiffe://{trust_domain}{path}"))
    }

    /// Parse and validate a SPIFFE ID.
    pub fn parse(s: &str) -> Result<Self> {
        let rest = s.strip_prefix("spiffe://").ok_or_else(|| err(format!("`{s}` does not start with `spiffe://`")))?;
        let (td, path) = rest.split_once('/').map_or((rest, ""), |(t, p)| (t, p));
        check_trust_domain(td)?;
        if !path.is_empty() || rest.ends_with('/') {
            for seg in path.split('/') {
                check_segment(seg, &format!("`{s}`"))?;
            }
        }
        if s.len() > 2048 {
            return Err(err("longer than 2048 bytes".into()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain's own ID, `spiffe://TRUST_DOMAIN`.
    pub fn trust_domain(&self) -> &str {
        let rest = self.0.get("spiffe://".len()..).unwrap_or_default();
        rest.split('/').next().unwrap_or_default()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_and_refuses_what_the_spec_forbids() -> Result<()> {
        let id = SpiffeId::derive(
            "example.org",
            "/{kind}/{source}/{id}",
            &[("kind", "service"), ("source", "service-registry"), ("id", "svc-billing")],
        )?;
        assert_eq!(id.as_str(), "spiffe://example.org/service/service-registry/svc-billing");
        assert_eq!(id.trust_domain(), "example.org");
        for bad in ["a/b", "..", "", "x y", "é"] {
            let e = SpiffeId::derive("example.org", "/s/{id}", &[("id", bad)]).err();
            assert!(e.is_some(), "`{bad}` must be refused");
        }
        assert!(SpiffeId::derive("Example.org", "/x", &[]).is_err());
        assert!(SpiffeId::derive("example.org", "/{nope}", &[]).is_err());
        assert!(SpiffeId::parse("spiffe://example.org/a//b").is_err());
        assert!(SpiffeId::parse("spiffe://example.org/a/").is_err());
        assert!(SpiffeId::parse("https://example.org/a").is_err());
        Ok(())
    }
}
