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

/// The longest any lifetime or duration tenure accepts may be (100 years): every duration from
/// outside is checked against it before any arithmetic, so none can overflow a timestamp.
pub const MAX_DURATION_DAYS: i64 = 36_500;

/// Why a lifetime or duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("expected a positive number of {unit}, found {n}")]
    NotPositive { n: i64, unit: String },
    #[error("expected at most {max} {unit} ({MAX_DURATION_DAYS} days), found {n}")]
    TooLong { n: i64, max: i64, unit: String },
    #[error("`{text}`: expected a number and a unit (s, m, h, d), e.g. `5m`")]
    NoUnit { text: String },
    #[error("`{text}`: unknown unit `{unit}`; expected s, m, h or d")]
    UnknownUnit { text: String, unit: String },
    #[error("`{text}`: longer than {MAX_DURATION_DAYS} days")]
    Overflow { text: String },
    /// A number out of range, in the text it came from.
    #[error("`{text}`: {source}")]
    In { text: String, source: Box<DurationError> },
}

/// `n` units of `unit_secs` seconds as a duration, if positive and at most
/// [`MAX_DURATION_DAYS`]; the error says what was expected.
pub fn bounded(n: i64, unit_secs: i64, unit: &str) -> Result<Duration, DurationError> {
    if n <= 0 {
        return Err(DurationError::NotPositive { n, unit: unit.to_owned() });
    }
    let max = MAX_DURATION_DAYS * 86_400 / unit_secs.max(1);
    if n > max {
        return Err(DurationError::TooLong { n, max, unit: unit.to_owned() });
    }
    Ok(Duration::seconds(n * unit_secs))
}

/// Parse a lifetime such as `90s`, `5m`, `1h` or `30d` (at most [`MAX_DURATION_DAYS`]).
pub fn parse_ttl(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let text = || s.to_owned();
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ if n.is_empty() => return Err(DurationError::NoUnit { text: text() }),
        _ => return Err(DurationError::UnknownUnit { text: text(), unit: unit.to_owned() }),
    };
    let n: i64 = match n.parse() {
        Ok(n) => n,
        Err(_) if !n.is_empty() => return Err(DurationError::Overflow { text: text() }),
        Err(_) => return Err(DurationError::NoUnit { text: text() }),
    };
    bounded(n, unit_secs, unit).map_err(|e| DurationError::In { text: text(), source: Box::new(e) })
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
        assert!(parse_ttl("5").unwrap_err().to_string().contains("unit"));
        assert!(parse_ttl("0m").unwrap_err().to_string().contains("positive"));
        assert!(parse_ttl("m").is_err());
        assert!(parse_ttl("3w").unwrap_err().to_string().contains("unknown unit"));
        // Overflowing values are errors, not panics.
        assert!(parse_ttl("9223372036854775807d").unwrap_err().to_string().contains("at most"));
        assert!(parse_ttl("99999999999999999999999d").unwrap_err().to_string().contains("longer than"));
        assert!(parse_ttl("36501d").is_err());
        assert_eq!(parse_ttl("36500d").unwrap(), Duration::days(36_500));
        assert!(bounded(i64::MAX, 60, "minutes").is_err());
        assert!(bounded(i64::MIN, 60, "minutes").is_err());
    }
}
