//! Reconciliation's vocabulary: the situation an account or membership read from a system is
//! in, compared with what tenure holds, and what policy may do about each.

use serde::{Deserialize, Serialize};

string_enum! {
    /// What a reconciliation run found about one account or membership.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Situation {
        /// The account is tenure's, for a current identity, as tenure holds it (no finding).
        Linked => "linked",
        /// Not made by tenure, and correlates to exactly one identity.
        Unlinked => "unlinked",
        /// Not made by tenure and correlates to no identity: an orphan.
        Unmatched => "unmatched",
        /// Not made by tenure and correlates to two or more identities.
        Disputed => "disputed",
        /// tenure holds it as provisioned, the system no longer has it.
        Missing => "missing",
        /// A membership in the system that no grant accounts for.
        UnmanagedMembership => "unmanaged_membership",
        /// A granted, verified membership the system no longer has.
        MissingMembership => "missing_membership",
        /// An unmanaged membership of a privileged entitlement.
        PrivilegedMembership => "privileged_membership",
        /// A `leaving` or `closed` identity's account enabled again, or back in a group.
        SurvivingLeaver => "surviving_leaver",
        /// A `suspended` identity's account is enabled.
        EnabledWhileSuspended => "enabled_while_suspended",
        /// A login with a password the broker did not issue: a broker-named role whose
        /// credential is revoked or expired, or a password set on an account tenure made.
        UnissuedLogin => "unissued_login",
        /// A live broker credential of an identity whose own expiry has passed.
        CredentialPastExpiry => "credential_past_expiry",
        /// A current NHI whose owner is not an active human.
        NhiOwnerless => "nhi_ownerless",
        /// A current NHI past its `expires_at`.
        NhiExpired => "nhi_expired",
    }
}

impl Situation {
    /// The finding kind a situation opens (`reconcile.SITUATION`); `linked` opens none.
    pub fn finding_kind(self) -> Option<String> {
        (self != Self::Linked).then(|| format!("reconcile.{}", self.as_str()))
    }

    /// Whether the situation is about a membership rather than a whole account.
    pub fn is_membership(self) -> bool {
        matches!(self, Self::UnmanagedMembership | Self::MissingMembership | Self::PrivilegedMembership)
    }

    /// What policy does when it says nothing: report, except that access surviving a leaver
    /// is taken away at once.
    pub fn default_reaction(self) -> Reaction {
        match self {
            Self::SurvivingLeaver => Reaction::Disable,
            _ => Reaction::Report,
        }
    }

    /// The reactions that make sense for the situation (`report` always does).
    pub fn allows(self, r: Reaction) -> bool {
        use Reaction::*;
        match self {
            Self::Linked => r == Report,
            Self::Missing | Self::MissingMembership | Self::Disputed => r == Report,
            Self::Unlinked => matches!(r, Report | Disable | Delete | Adopt | Review),
            Self::Unmatched => matches!(r, Report | Disable | Delete),
            Self::UnmanagedMembership | Self::PrivilegedMembership => matches!(r, Report | Revoke),
            Self::SurvivingLeaver | Self::EnabledWhileSuspended => matches!(r, Report | Disable),
            // A password is removed by a person (disabling an account in use would be undone by
            // its next sync); enforcing expiry is the clock's, not reconciliation's.
            Self::UnissuedLogin | Self::CredentialPastExpiry | Self::NhiOwnerless | Self::NhiExpired => r == Report,
        }
    }
}

string_enum! {
    /// What a run does about a situation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Reaction {
        /// A finding only.
        Report => "report",
        /// Disable the account (and, for a leaver, strip every membership).
        Disable => "disable",
        /// Remove the membership.
        Revoke => "revoke",
        /// Disable the account now, delete it after the system's `delete_after`.
        Delete => "delete",
        /// Link the account to the identity it correlates to: mark it as tenure's for them and
        /// manage it from then on.
        Adopt => "adopt",
        /// Ask people: a micro-review of the account (the bundle's `trigger = "unlinked"`
        /// campaign), where keep adopts it and revoke disables it.
        Review => "review",
    }
}

impl Reaction {
    /// Whether the reaction changes the system (and so counts against thresholds): a review
    /// changes nothing until someone decides.
    pub fn changes(self) -> bool {
        !matches!(self, Self::Report | Self::Review)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_report_everything_but_a_surviving_leaver() {
        for s in Situation::ALL {
            assert!(s.allows(s.default_reaction()), "{s}");
            assert_eq!(s.default_reaction().changes(), *s == Situation::SurvivingLeaver, "{s}");
        }
        assert_eq!(Situation::Linked.finding_kind(), None);
        assert_eq!(Situation::Unmatched.finding_kind().as_deref(), Some("reconcile.unmatched"));
        assert!(!Situation::Missing.allows(Reaction::Delete));
    }
}
