//! Who is acting: one type for an API caller, the actor of a request and whoever asks the broker
//! for a credential. A principal is a governed identity with the roles it came with, how it
//! proved itself, and (for agent delegation) whom it acts for.

use crate::access::{Role, RoleName};
use crate::identity::IdentityRef;
use std::collections::BTreeSet;

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An API token (`tnr_…`), by id.
    Token(String),
    /// A credential of the broker (an API key or a JWT-SVID for tenure), by id, with its expiry:
    /// nothing issued to this principal may outlive it.
    Credential { id: String, expires_at: time::OffsetDateTime },
    /// In process, at the data directory (the demo, tests), as a governed identity: no secret
    /// was presented, and the identity's own rules apply (it cannot approve its own request).
    Local,
    /// The operator at the command line, or the engine itself: trusted like the database, since
    /// whoever can run it can edit the database. Its identity is `operator:NAME`.
    Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: IdentityRef,
    pub roles: BTreeSet<Role>,
    pub via: Via,
    /// The identities this principal acts for, outermost first; empty when it acts as itself.
    pub on_behalf_of: Vec<IdentityRef>,
}

impl Principal {
    /// `identity` acting in process, with `roles`.
    pub fn local(identity: IdentityRef, roles: impl IntoIterator<Item = RoleName>) -> Self {
        Self { identity, roles: roles.into_iter().map(Role::Named).collect(), via: Via::Local, on_behalf_of: vec![] }
    }

    /// The operator `name` (`cli`, `demo`, `tenure` for the engine's own work), with every
    /// named role.
    pub fn operator(name: &str) -> Self {
        Self {
            identity: IdentityRef::operator(name),
            roles: RoleName::ALL.iter().copied().map(Role::Named).collect(),
            via: Via::Operator,
            on_behalf_of: vec![],
        }
    }

    pub fn is_operator(&self) -> bool {
        self.via == Via::Operator
    }

    pub fn has(&self, role: RoleName) -> bool {
        self.roles.contains(&Role::Named(role))
    }

    /// Sources this principal may post events for.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().filter_map(|r| match r {
            Role::Source(s) => Some(s.as_str()),
            Role::Named(_) => None,
        })
    }

    /// The credential it came with and its expiry, when it came with one of the broker's.
    pub fn credential(&self) -> Option<(&str, time::OffsetDateTime)> {
        match &self.via {
            Via::Credential { id, expires_at } => Some((id, *expires_at)),
            _ => None,
        }
    }

    /// How the ledger names it as an actor: an operator by its name (`cli`), anyone else as
    /// `api:REFERENCE`.
    pub fn actor(&self) -> String {
        match self.via {
            Via::Operator => self.identity.external_id().to_owned(),
            _ => format!("api:{}", self.identity),
        }
    }
}
