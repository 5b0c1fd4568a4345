//! The identity lifecycle: `pending → active ⇄ suspended → leaving → closed`, with every
//! transition explicit. Anything not listed in [`LifecycleState::can_become`] is an error.

use serde::{Deserialize, Serialize};

string_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum LifecycleState {
        /// Joined; access being provisioned.
        Pending => "pending",
        /// Every desired account and grant is provisioned and verified.
        Active => "active",
        /// Temporarily cut off (accounts disabled), may come back.
        Suspended => "suspended",
        /// Left: denied from the instant the event was accepted; deprovisioning in progress.
        Leaving => "leaving",
        /// Every account disabled and every grant revoked, each verified.
        Closed => "closed",
    }
}

string_enum! {
    /// Why an identity is suspended: only the end of that cause resumes it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum SuspendedBy {
        /// Its expiry came (a renewal resumes it).
        Expiry => "expiry",
        /// Its owner left and nobody took it over (a new owner resumes it).
        Owner => "owner",
        /// Its source said so (a `resumed` event resumes it).
        Source => "source",
        /// Its owner did not attest it by the deadline (an attestation resumes it).
        Attestation => "attestation",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity cannot go from `{from}` to `{to}`")]
pub struct TransitionError {
    pub from: LifecycleState,
    pub to: LifecycleState,
}

impl LifecycleState {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: LifecycleState) -> bool {
        use LifecycleState::*;
        matches!(
            (self, to),
            (Pending, Active)
                // An expiry may come before provisioning finished.
                | (Pending | Active, Suspended)
                | (Suspended, Active)
                // A leaver may arrive before provisioning finished, or while suspended.
                | (Pending | Active | Suspended, Leaving)
                | (Leaving, Closed)
        )
    }

    pub fn transition(self, to: LifecycleState) -> Result<LifecycleState, TransitionError> {
        if self.can_become(to) { Ok(to) } else { Err(TransitionError { from: self, to }) }
    }

    /// Whether the identity may hold and use access right now (authorize allows, accounts enabled).
    pub fn is_current(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }

    /// Whether the identity is on its way out or gone: no event but a renewal of nothing applies.
    pub fn has_left(self) -> bool {
        matches!(self, Self::Leaving | Self::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state() -> impl Strategy<Value = LifecycleState> {
        proptest::sample::select(LifecycleState::ALL.to_vec())
    }

    proptest! {
        /// Closed is terminal, nothing returns from leaving, and every walk that reaches
        /// `closed` passed through `leaving`.
        #[test]
        fn walks_respect_the_lifecycle(steps in proptest::collection::vec(state(), 0..40)) {
            let mut at = LifecycleState::Pending;
            let mut seen_leaving = false;
            for to in steps {
                match at.transition(to) {
                    Ok(next) => {
                        prop_assert!(at != LifecycleState::Closed);
                        prop_assert!(!(at == LifecycleState::Leaving && next != LifecycleState::Closed));
                        seen_leaving |= next == LifecycleState::Leaving;
                        if next == LifecycleState::Closed { prop_assert!(seen_leaving); }
                        at = next;
                    }
                    Err(e) => prop_assert_eq!(e, TransitionError { from: at, to }),
                }
            }
        }
    }

    #[test]
    fn closed_is_terminal() {
        for &to in LifecycleState::ALL {
            assert!(!LifecycleState::Closed.can_become(to));
        }
    }
}
