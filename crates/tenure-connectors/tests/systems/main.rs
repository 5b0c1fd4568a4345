//! Connectors against real servers the tests start themselves (slapd, PostgreSQL). One test
//! binary for the crate.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod exec;
mod ldap;
mod postgres;
mod scim;
