//! Connectors against real servers the tests start themselves (slapd, PostgreSQL). One test
//! binary for the crate.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod ad;
mod attributes;
mod exec;
mod ldap;
mod postgres;
mod scan;
mod scim;
mod tls;

use tenure_connectors::AccountSpec;

/// A person's account `name`, as every connector test asks for it.
fn spec(name: &str) -> AccountSpec {
    AccountSpec {
        name: name.into(),
        display_name: format!("Name of {name}"),
        kind: "human".into(),
        reference: format!("hr:{name}"),
        expires_at: None,
        attributes: Default::default(),
    }
}
