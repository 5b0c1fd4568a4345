//! Domain types of tenure: identities, their kinds and lifecycle states, grants and accounts,
//! and the invariants every path must keep. No IO, no SQL, no HTTP.

#[macro_use]
mod string_enum;

pub mod access;
pub mod clock;
pub mod credential;
pub mod grant;
pub mod identity;
pub mod lifecycle;
pub mod principal;
pub mod reconcile;
pub mod text;

pub use access::{ApproverRole, RequestKind, RequestState, Role, RoleName};
pub use clock::{Clock, FixedClock, SystemClock, rfc3339};
pub use credential::CredentialKind;
pub use grant::{AccountState, GrantOrigin, GrantState};
pub use identity::{IdentityKind, IdentityRef, RefError};
pub use lifecycle::{LifecycleState, SuspendedBy, TransitionError};
pub use principal::{Principal, Via};
pub use reconcile::{Reaction, Situation};
