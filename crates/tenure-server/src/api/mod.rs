//! The handlers, one module per API area. Each extracts, calls the engine and maps the result;
//! the rules are the engine's.

pub(crate) mod access;
pub(crate) mod credentials;
pub(crate) mod identities;
pub(crate) mod meta;
pub(crate) mod page;
pub(crate) mod reconcile;
pub(crate) mod reviews;
pub(crate) mod scim;
pub(crate) mod tokens;
