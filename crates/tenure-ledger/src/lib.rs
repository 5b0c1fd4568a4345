//! The ledger: every decision and change tenure makes is an entry in an append-only log hashed
//! as an RFC 6962 / RFC 9162 Merkle tree, with signed checkpoints in the C2SP signed-note
//! format. Anyone holding an export and the public key can check it without tenure
//! ([`export::verify`]). This crate does no IO: callers hand it bytes.
//!
//! The tree is written here rather than taken from `ct-merkle`: tenure keeps the leaves in its
//! database and streams them from export files, so it needs roots and proofs computed over leaf
//! hashes it supplies (a compact-range accumulator for streaming, RFC 6962's recursive
//! definitions for proofs), not an in-memory tree that owns the leaves. The algorithms are short
//! and property-tested against the RFC's definitions.

pub mod closure;
pub mod drift;
pub mod entry;
pub mod event;
pub mod export;
pub mod merkle;
pub mod note;
pub mod review;
pub mod signed;

pub use entry::Entry;
pub use event::LedgerEvent;
pub use merkle::{Accumulator, Hash};
pub use note::{Checkpoint, NoteError, Signer, Verifier};
