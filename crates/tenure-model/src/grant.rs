//! Grants (identity × entitlement) and accounts (identity × system), with their states.

use serde::{Deserialize, Serialize};

string_enum! {
    /// `desired → provisioned → verified`; `revoking → revoked → revocation_verified`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum GrantState {
        Desired => "desired",
        Provisioned => "provisioned",
        Verified => "verified",
        Revoking => "revoking",
        Revoked => "revoked",
        RevocationVerified => "revocation_verified",
    }
}

impl GrantState {
    /// Whether the grant is wanted (on its way in or in place).
    pub fn is_wanted(self) -> bool {
        matches!(self, Self::Desired | Self::Provisioned | Self::Verified)
    }

    /// Whether the grant has reached its final, verified state for its direction.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Verified | Self::RevocationVerified)
    }
}

string_enum! {
    /// Why a grant exists.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum GrantOrigin {
        /// A birthright template of the current policy.
        Birthright => "birthright",
        /// An approved access request.
        Request => "request",
        /// A just-in-time elevation; always time-bound.
        Jit => "jit",
        /// An approved, time-bound departure from a guardrail.
        Exception => "exception",
    }
}

string_enum! {
    /// What tenure wants, and has verified, of an identity's account in one system.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AccountState {
        /// Should exist and be enabled; not yet verified.
        Desired => "desired",
        /// Read back: exists and enabled.
        Verified => "verified",
        /// Should be disabled; not yet verified.
        Disabling => "disabling",
        /// Read back: disabled.
        DisableVerified => "disable_verified",
        /// A closed leaver's grace period is over: should be deleted; not yet verified.
        Deleting => "deleting",
        /// Read back: gone.
        DeleteVerified => "delete_verified",
    }
}

impl AccountState {
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Verified | Self::DisableVerified | Self::DeleteVerified)
    }

    /// Disabled or gone, verified.
    pub fn is_off_verified(self) -> bool {
        matches!(self, Self::DisableVerified | Self::DeleteVerified)
    }
}
