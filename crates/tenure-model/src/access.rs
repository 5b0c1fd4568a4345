//! Access requests, approvals and the roles of API callers.

use serde::{Deserialize, Serialize};

string_enum! {
    /// What a request asks for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RequestKind {
        /// An entitlement, for a duration or until revoked.
        Access => "access",
        /// A time-bound elevation to a privileged entitlement.
        Jit => "jit",
        /// A time-bound departure from a guardrail that blocks an entitlement.
        Exception => "exception",
    }
}

impl RequestKind {
    /// The origin of the grant an approved request of this kind gives.
    pub fn origin(self) -> crate::GrantOrigin {
        match self {
            Self::Access => crate::GrantOrigin::Request,
            Self::Jit => crate::GrantOrigin::Jit,
            Self::Exception => crate::GrantOrigin::Exception,
        }
    }
}

string_enum! {
    /// `pending → approved | denied | expired`; nothing leaves a final state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RequestState {
        Pending => "pending",
        Approved => "approved",
        Denied => "denied",
        Expired => "expired",
    }
}

string_enum! {
    /// Who may approve, relative to the request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ApproverRole {
        /// The beneficiary's owner (non-human beneficiaries).
        Owner => "owner",
        /// The beneficiary's manager (its `manager` attribute).
        Manager => "manager",
        /// The owner of the system the entitlement lives in.
        #[serde(rename = "system-owner")]
        SystemOwner => "system-owner",
        /// A member of the policy's security approvers.
        Security => "security",
    }
}

string_enum! {
    /// What an API token lets its holder do. `source:NAME` is [`Role::Source`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RoleName {
        /// Everything: tokens, identities, jobs, findings, requests.
        Admin => "admin",
        /// Acts on requests it is an eligible approver of.
        Approver => "approver",
        /// Reads identities, jobs, findings, requests and decisions; changes nothing.
        Auditor => "auditor",
        /// Makes access, JIT and exception requests.
        Requester => "requester",
        /// Asks runtime authorization questions (`/v1/authorize`).
        Authorizer => "authorizer",
    }
}

/// A role held by an API token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Named(RoleName),
    /// May post events for this source only.
    Source(String),
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n.as_str()),
            Self::Source(s) => write!(f, "source:{s}"),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("source", name)) if !name.is_empty() => Ok(Self::Source(name.to_owned())),
            Some(_) => Err(format!("expected a role or `source:NAME`, found `{s}`")),
            None => s.parse::<RoleName>().map(Self::Named).map_err(|e| format!("{e}, or source:NAME")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approver_roles_serialize_as_their_names() {
        for r in ApproverRole::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in ["admin", "approver", "auditor", "requester", "authorizer", "source:hr"] {
            assert_eq!(r.parse::<Role>().unwrap().to_string(), r);
        }
        assert!("source:".parse::<Role>().is_err());
        assert!("root".parse::<Role>().unwrap_err().contains("source:NAME"));
    }
}
