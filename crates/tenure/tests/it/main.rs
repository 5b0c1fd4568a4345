//! Integration tests of the `tenure` binary, as a user runs it, against a real slapd. One test
//! binary for the crate (each `tests/*.rs` would be a separate slow link).

// Test code: a failed unwrap is a failed test, and real processes need real waiting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

mod support;

mod access;
mod api;
mod cli;
mod closure;
mod crash;
mod creds;
mod demo;
mod expiry;
mod ledger;
mod lifecycle;
mod lists;
mod mappings;
mod notify;
mod openapi;
mod ops;
mod output;
mod posture;
mod readme;
mod reconcile;
mod reviews;
mod scim;
mod snapshots;
mod sources;
mod systems;
