//! Policy bundles: a directory of files whose content hash is the policy version. This crate
//! reads a bundle from an in-memory map of files (the caller does the IO), checks it, and answers
//! policy questions: which source is authoritative for which kind, what the lifecycle limits
//! are, and which entitlements an identity's birthright templates give it.
//!
//! Layout of a bundle (v0):
//! - `tenure.toml`: `[bundle]`, `[lifecycle]`, `[sources.NAME]`, `[systems.NAME]`,
//!   `[entitlements."SYSTEM/NAME"]`;
//! - `templates/*.toml`: `[[template]]` birthright templates (attribute conditions → entitlements).
//!
//! Files other than these (for instance `policies/*.cedar`, `tests/*`) are part of the version
//! hash but not read by v0, so guardrails and test cases can slot in without changing the format.

mod bundle;
mod error;
mod template;

pub use bundle::{
    Bundle, BundleFiles, EntitlementDef, EntitlementId, Lifecycle, PolicyVersion, SourceDef, SystemDef, SystemType,
    short_version,
};
pub use error::{BundleError, Problem};
pub use template::{Facts, Template};
