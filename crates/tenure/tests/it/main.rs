//! Integration tests of the `tenure` binary, as a user runs it, against a real slapd. One test
//! binary for the crate (each `tests/*.rs` would be a separate slow link).

mod support;

mod api;
mod cli;
mod crash;
mod demo;
mod lifecycle;
