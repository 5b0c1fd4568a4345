//! Grants (identity × entitlement) and accounts (identity × system), with their states.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `desired → provisioned → verified`; `revoking → revoked → revocation_verified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Desired,
    Provisioned,
    Verified,
    Revoking,
    Revoked,
    RevocationVerified,
}

impl GrantState {
    pub const ALL: [GrantState; 6] =
        [Self::Desired, Self::Provisioned, Self::Verified, Self::Revoking, Self::Revoked, Self::RevocationVerified];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desired => "desired",
            Self::Provisioned => "provisioned",
            Self::Verified => "verified",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::RevocationVerified => "revocation_verified",
        }
    }

    /// Whether the grant is wanted (on its way in or in place).
    pub fn is_wanted(self) -> bool {
        matches!(self, Self::Desired | Self::Provisioned | Self::Verified)
    }

    /// Whether the grant has reached its final, verified state for its direction.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Verified | Self::RevocationVerified)
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown grant state `{s}`"))
    }
}

/// Why a grant exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantOrigin {
    Birthright,
}

impl GrantOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Birthright => "birthright",
        }
    }
}

/// What tenure wants, and has verified, of an identity's account in one system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Should exist and be enabled; not yet verified.
    Desired,
    /// Read back: exists and enabled.
    Verified,
    /// Should be disabled; not yet verified.
    Disabling,
    /// Read back: disabled.
    DisableVerified,
}

impl AccountState {
    pub const ALL: [AccountState; 4] = [Self::Desired, Self::Verified, Self::Disabling, Self::DisableVerified];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desired => "desired",
            Self::Verified => "verified",
            Self::Disabling => "disabling",
            Self::DisableVerified => "disable_verified",
        }
    }

    pub fn is_settled(self) -> bool {
        matches!(self, Self::Verified | Self::DisableVerified)
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown account state `{s}`"))
    }
}
