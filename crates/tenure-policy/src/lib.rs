//! Policy bundles: a directory of files whose content hash is the policy version. This crate
//! reads a bundle from an in-memory map of files (the caller does the IO), checks it, and answers
//! policy questions: which source is authoritative for which kind, what the lifecycle limits
//! are, and which entitlements an identity's birthright templates give it.
//!
//! Layout of a bundle (v0):
//! - `tenure.toml`: `[bundle]`, `[lifecycle]`, `[sources.NAME]`, `[systems.NAME]`,
//!   `[entitlements."SYSTEM/NAME"]`; a system's reconciliation rules in
//!   `[systems.NAME.reconcile]` and `[[systems.NAME.correlate]]` ([`reconcile`]); what its
//!   accounts carry in `[systems.NAME.attributes]` ([`attributes`]);
//! - `templates/*.toml`: `[[template]]` birthright templates (attribute conditions → entitlements).
//!
//! - `schema/*.cedarschema`: Cedar declarations added to tenure's built-in schema
//!   ([`rules::BASE_SCHEMA`]), e.g. the actions of runtime authorization;
//! - `policies/*.cedar`: Cedar rules (guardrails, request rules, runtime authorization),
//!   validated in strict mode against the schema at load;
//! - `tests/*.toml`: the bundle's own test cases, run by [`cases::run`].
//!
//! Every file is part of the version hash.

pub mod attributes;
mod bundle;
pub mod cases;
pub mod credentials;
mod error;
mod footprint;
pub mod mapping;
pub mod notify;
pub mod reconcile;
pub mod reviews;
pub mod rules;
mod template;

pub use bundle::{
    AccessRules, Bundle, BundleFiles, Desired, EntitlementDef, EntitlementId, Held, Lifecycle, OnExpiry, PolicyVersion,
    SourceDef, SystemDef, SystemType, short_version,
};
pub use error::{BundleError, Problem};
pub use rules::{AuthzFacts, AuthzInputError, Decision, RequestFacts, Requirement, ResourceSpec, Subject, Verdict};
pub use template::{Facts, Template};
