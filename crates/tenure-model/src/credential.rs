//! Credentials the broker issues to non-human identities, and how their lifetimes are written.

use serde::{Deserialize, Serialize};
use time::Duration;

string_enum! {
    /// What kind of credential.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum CredentialKind {
        /// A SPIFFE JWT-SVID (ES256), verifiable against the JWKS.
        JwtSvid => "jwt-svid",
        /// A SPIFFE X.509-SVID issued from the holder's CSR by tenure's CA.
        X509Svid => "x509-svid",
        /// An opaque, prefixed bearer key.
        ApiKey => "api-key",
        /// A PostgreSQL role with a random password and `VALID UNTIL`.
        PostgresLogin => "postgres-login",
    }
}

impl CredentialKind {
    /// The longest a credential of this kind lives unless policy says otherwise (SPIRE's
    /// defaults for SVIDs).
    pub fn default_max_ttl(self) -> Duration {
        match self {
            Self::JwtSvid => Duration::minutes(5),
            Self::X509Svid => Duration::hours(1),
            Self::ApiKey => Duration::days(30),
            Self::PostgresLogin => Duration::hours(1),
        }
    }
}

/// Parse a lifetime such as `90s`, `5m`, `1h` or `30d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("`{s}`: expected a number and a unit (s, m, h, d), e.g. `5m`"))?;
    if n <= 0 {
        return Err(format!("`{s}`: must be positive"));
    }
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(format!("`{s}`: unknown unit `{unit}`; expected s, m, h or d")),
    }
}

/// Write a lifetime the way [`parse_ttl`] reads it, in the largest exact unit.
pub fn format_ttl(d: Duration) -> String {
    let s = d.whole_seconds();
    match s {
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_trip_and_bad_ones_say_why() {
        for t in ["90s", "5m", "1h", "30d"] {
            assert_eq!(format_ttl(parse_ttl(t).unwrap()), t);
        }
        assert!(parse_ttl("5").unwrap_err().contains("unit"));
        assert!(parse_ttl("0m").unwrap_err().contains("positive"));
        assert!(parse_ttl("m").is_err());
        assert!(parse_ttl("3w").unwrap_err().contains("unknown unit"));
    }
}
