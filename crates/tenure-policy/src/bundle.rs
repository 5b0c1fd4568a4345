//! The bundle: parsing `tenure.toml` and the templates, cross-checking them, and versioning the
//! whole by content hash.

use crate::error::{BundleError, Problem, problem};
use crate::rules::{
    AuthzFacts, AuthzInputError, Decision, EntitlementFacts, RequestFacts, Requirement, Rules, Subject,
};
use crate::template::{Facts, Template, When};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tenure_model::{ApproverRole, GrantOrigin, IdentityKind};
use time::Duration;

/// The files of a bundle: path relative to the bundle root (with `/`) → content.
pub type BundleFiles = BTreeMap<String, Vec<u8>>;

/// The most a bundle's files may hold together (16 MiB): loading is linear in its size, and a
/// bundle past this is refused with a clear error rather than left to exhaust memory.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) const MANIFEST: &str = "tenure.toml";

/// A policy version: the SHA-256 of the bundle's files (paths and contents).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyVersion(String);

impl PolicyVersion {
    /// The version of a set of files. Each file contributes its path, a NUL, its length as
    /// 8 big-endian bytes and its content, in path order, so no two bundles share a hash
    /// by moving bytes between files.
    pub fn of(files: &BundleFiles) -> Self {
        let mut h = Sha256::new();
        for (path, content) in files {
            h.update(path.as_bytes());
            h.update([0u8]);
            h.update((content.len() as u64).to_be_bytes());
            h.update(content);
        }
        Self(hex::encode(h.finalize()))
    }

    pub fn from_hex(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        short_version(&self.0)
    }
}

/// The first 12 hex digits of a policy version given as text, for people.
pub fn short_version(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `SYSTEM/NAME`: an entitlement in the catalog.
pub type EntitlementId = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDef {
    pub name: String,
    pub kinds: BTreeSet<IdentityKind>,
    pub description: String,
    /// How the source's own records map to identities (`[sources.NAME.mapping]`), if they
    /// are not tenure events.
    pub mapping: Option<crate::mapping::Mapping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemType {
    Ldap,
    Postgres,
    Scim,
    Exec,
}

impl SystemType {
    pub const ALL: &[SystemType] = &[Self::Ldap, Self::Postgres, Self::Scim, Self::Exec];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ldap => "ldap",
            Self::Postgres => "postgres",
            Self::Scim => "scim",
            Self::Exec => "exec",
        }
    }
}

/// A downstream system: its connector type and the connector's settings (strings, which may
/// name environment variables as `${VAR}`; the engine expands them when it connects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemDef {
    pub name: String,
    pub kind: SystemType,
    pub settings: BTreeMap<String, String>,
    /// The identity that owns the system (an approver for `system-owner`).
    pub owner: Option<String>,
    /// At most this many jobs talk to the system at once.
    pub max_concurrency: Option<usize>,
    /// How it is reconciled (`[systems.NAME.reconcile]`, `[[systems.NAME.correlate]]`).
    pub reconcile: crate::reconcile::ReconcileRules,
    /// What its accounts carry (`[systems.NAME.attributes]`, `[systems.NAME.kinds.KIND.attributes]`).
    pub attributes: crate::attributes::AttributeMap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementDef {
    pub id: EntitlementId,
    pub system: String,
    /// The name of the group (role, …) in the system.
    pub target: String,
    pub description: String,
    pub privileged: bool,
    /// Never to be held by a non-human (enforced by guardrails that read it).
    pub human_only: bool,
    /// `prod`, `dev`, …: what environment-isolation guardrails compare.
    pub environment: String,
    /// Longest a requested or JIT grant of it may last.
    pub max_duration: Option<Duration>,
}

/// How requests, JIT and exceptions are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    /// A request not decided within this long expires.
    pub decide_within: Duration,
    /// The identity attribute naming a person's manager (`source:external_id`).
    pub manager_attribute: String,
    /// Longest any JIT elevation may last.
    pub jit_max: Duration,
    /// Longest any exception may last.
    pub exception_max: Duration,
    /// Who approves exceptions.
    pub exception_approval: Requirement,
    /// The `security` approvers.
    pub security: BTreeSet<String>,
}

/// A grant other than birthright that an identity holds or would hold.
#[derive(Debug, Clone)]
pub struct Held<'a> {
    pub entitlement: &'a str,
    pub origin: GrantOrigin,
    /// Guardrails an exception waives for its beneficiary while it lasts.
    pub waives: &'a [String],
}

/// What policy wants an identity to hold, and what guardrails blocked.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub grants: BTreeMap<EntitlementId, GrantOrigin>,
    pub blocked: BTreeMap<EntitlementId, Decision>,
}

/// Lifecycle rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// Longest an NHI may live between renewals.
    pub max_nhi_lifetime: Duration,
    /// Longest a contractor's engagement may run between renewals, if limited.
    pub max_contractor_lifetime: Option<Duration>,
    /// How long a closed leaver's accounts are kept (disabled) before deletion.
    pub leaver_grace: Duration,
    /// Who takes over a departing person's NHIs: their manager, or nobody (each NHI then waits
    /// for an `owner_changed` event).
    pub nhi_successor_is_manager: bool,
    /// How long an NHI may wait for a new owner before it is suspended.
    pub nhi_transfer_deadline: Duration,
    /// How long a leaver may stay `leaving` with no job carrying its closure forward before
    /// the clock re-queues its work and raises an alert.
    pub leaver_stalled_after: Duration,
    /// How long before an identity's `expires_at` each notice is raised, longest first.
    pub expiry_notices: Vec<Duration>,
    /// What happens at `expires_at`, per identity kind.
    pub on_expiry: BTreeMap<IdentityKind, OnExpiry>,
}

/// What the clock does to an identity whose `expires_at` has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    /// The full leaver flow: cut off, closed when every system is verified, a certificate.
    Leave,
    /// Accounts disabled (memberships kept) and credentials revoked until a renewal.
    Suspend,
}

impl OnExpiry {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leave => "leave",
            Self::Suspend => "suspend",
        }
    }
}

impl Lifecycle {
    /// What happens to an identity of `kind` at its expiry (people leave, NHIs are suspended,
    /// unless the policy says otherwise).
    pub fn on_expiry(&self, kind: IdentityKind) -> OnExpiry {
        self.on_expiry.get(&kind).copied().unwrap_or(if kind.is_human() { OnExpiry::Leave } else { OnExpiry::Suspend })
    }
}

/// A checked policy bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub version: PolicyVersion,
    pub name: String,
    pub lifecycle: Lifecycle,
    pub sources: BTreeMap<String, SourceDef>,
    pub systems: BTreeMap<String, SystemDef>,
    pub entitlements: BTreeMap<EntitlementId, EntitlementDef>,
    pub templates: Vec<Template>,
    pub access: AccessRules,
    /// What the credential broker may issue; `None` when the bundle has no `[credentials]`.
    pub credentials: Option<crate::credentials::CredentialRules>,
    /// Access review campaigns (`[reviews.NAME]`), by name.
    pub reviews: BTreeMap<String, crate::reviews::Campaign>,
    /// Ownership attestation (`[attestation]`); `None`: NHIs are not attested.
    pub attestation: Option<crate::reviews::Attestation>,
    /// Notification channels (`[notifications.NAME]`), by name.
    pub notifications: BTreeMap<String, crate::notify::Channel>,
    pub rules: Rules,
    pub files: BundleFiles,
    /// [`Bundle::desired`]'s answers per distinct set of the facts it can see.
    memo: Memo,
}

/// How many distinct sets of facts [`Memo`] keeps before it starts again: a bound on memory.
const MEMO: usize = 50_000;

/// What policy wants an identity to hold depends only on the facts its templates and its
/// guardrails can see: kind, source, the attributes (and tags) they read, and the grants
/// beyond birthright. Two identities alike in those get the same answer, so it is computed
/// once per distinct set of them (a population of 100,000 people usually has a few hundred).
/// When the guardrails' reads cannot be bounded ([`crate::footprint`]), every identity is
/// evaluated on its own. Looking an answer up copies nothing: the key is hashed as borrowed
/// from the identity, and compared in full with the stored one.
struct Memo {
    /// The attribute and tag names read, in order; `None`: no memo.
    names: Option<Vec<String>>,
    map: std::sync::Mutex<std::collections::HashMap<u64, Bucket>>,
    /// Keyed per memo: attribute values come from sources, and must not be able to pile their
    /// keys into one bucket.
    hasher: std::collections::hash_map::RandomState,
}

/// The answers whose keys share a hash.
type Bucket = Vec<(MemoKey, std::sync::Arc<Desired>)>;

/// The facts an answer depends on, borrowed from the identity asked about.
#[derive(PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    kind: IdentityKind,
    source: &'a str,
    /// Per name read: the principal's attribute of that name, and its tag of that name.
    seen: Vec<(Option<&'a str>, Option<&'a str>)>,
    /// Grants beyond birthright: entitlement, origin, what their exceptions waive.
    held: Vec<(&'a str, &'static str, &'a [String])>,
}

/// [`KeyRef`], owned, as the memo keeps it.
struct MemoKey {
    kind: IdentityKind,
    source: String,
    seen: Vec<(Option<String>, Option<String>)>,
    held: Vec<(String, &'static str, Vec<String>)>,
}

impl MemoKey {
    fn of(k: &KeyRef<'_>) -> Self {
        Self {
            kind: k.kind,
            source: k.source.to_owned(),
            seen: k.seen.iter().map(|(a, t)| (a.map(str::to_owned), t.map(str::to_owned))).collect(),
            held: k.held.iter().map(|(e, o, w)| ((*e).to_owned(), *o, w.to_vec())).collect(),
        }
    }

    fn view(&self) -> KeyRef<'_> {
        KeyRef {
            kind: self.kind,
            source: &self.source,
            seen: self.seen.iter().map(|(a, t)| (a.as_deref(), t.as_deref())).collect(),
            held: self.held.iter().map(|(e, o, w)| (e.as_str(), *o, w.as_slice())).collect(),
        }
    }
}

impl Memo {
    fn new(names: Option<Vec<String>>) -> Self {
        Self { names, map: std::sync::Mutex::default(), hasher: std::collections::hash_map::RandomState::new() }
    }

    fn key<'a>(&self, subject: &Subject<'a>, extra: &[Held<'a>], manager_attribute: &str) -> Option<KeyRef<'a>> {
        let names = self.names.as_ref()?;
        let seen = names
            .iter()
            .map(|n| {
                // The principal entity's attributes (see `Rules::subject_entity`): its manager
                // is there only when it is its own.
                let attribute = match n.as_str() {
                    "state" => Some(subject.state.as_str()),
                    "name" => Some(subject.name),
                    "owner" => subject.owner,
                    "purpose" => subject.purpose,
                    "manager" => Some(
                        if subject.attributes.get(manager_attribute).map(String::as_str) == Some(subject.reference) {
                            "own"
                        } else {
                            "none"
                        },
                    ),
                    _ => None,
                };
                (attribute, subject.attributes.get(n).map(String::as_str))
            })
            .collect();
        let held = extra.iter().map(|h| (h.entitlement, h.origin.as_str(), h.waives)).collect();
        Some(KeyRef { kind: subject.kind, source: subject.source, seen, held })
    }

    fn hash(&self, key: &KeyRef<'_>) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    fn get(&self, key: &KeyRef<'_>) -> Option<std::sync::Arc<Desired>> {
        let map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&self.hash(key))?.iter().find(|(k, _)| k.view() == *key).map(|(_, d)| d.clone())
    }

    fn put(&self, key: &KeyRef<'_>, desired: std::sync::Arc<Desired>) {
        let h = self.hash(key);
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MEMO {
            map.clear();
        }
        map.entry(h).or_default().push((MemoKey::of(key), desired));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.values().map(Vec::len).sum())
    }
}

impl Clone for Memo {
    /// A copy starts empty: what it would hold is computed again on demand.
    fn clone(&self) -> Self {
        Self::new(self.names.clone())
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.map.lock().map_or(0, |m| m.values().map(Vec::len).sum::<usize>());
        write!(f, "Memo({n} sets of facts, reads {:?})", self.names)
    }
}

// ---- file formats ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    bundle: BundleSection,
    lifecycle: LifecycleSection,
    #[serde(default)]
    sources: BTreeMap<String, SourceSection>,
    #[serde(default)]
    systems: BTreeMap<String, toml::Table>,
    #[serde(default)]
    entitlements: BTreeMap<String, EntitlementSection>,
    #[serde(default)]
    requests: RequestsSection,
    #[serde(default)]
    jit: JitSection,
    #[serde(default)]
    exceptions: ExceptionsSection,
    #[serde(default)]
    approvers: ApproversSection,
    #[serde(default)]
    credentials: Option<crate::credentials::CredentialsSection>,
    #[serde(default)]
    reviews: BTreeMap<String, crate::reviews::CampaignSection>,
    #[serde(default)]
    attestation: Option<crate::reviews::AttestationSection>,
    #[serde(default)]
    notifications: BTreeMap<String, crate::notify::ChannelSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RequestsSection {
    decide_within_hours: u32,
    manager_attribute: String,
}

impl Default for RequestsSection {
    fn default() -> Self {
        Self { decide_within_hours: 72, manager_attribute: "manager".into() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct JitSection {
    max_hours: u32,
}

impl Default for JitSection {
    fn default() -> Self {
        Self { max_hours: 8 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ExceptionsSection {
    max_days: u32,
    approve: Vec<String>,
    approvals: u32,
}

impl Default for ExceptionsSection {
    fn default() -> Self {
        Self { max_days: 30, approve: vec!["security".into()], approvals: 1 }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ApproversSection {
    security: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleSection {
    name: String,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for people reading the bundle")]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleSection {
    max_nhi_lifetime_days: u32,
    #[serde(default)]
    max_contractor_lifetime_days: Option<u32>,
    leaver_grace_days: u32,
    #[serde(default = "default_successor")]
    nhi_successor: String,
    #[serde(default = "default_transfer_days")]
    nhi_transfer_days: u32,
    #[serde(default = "default_stalled_minutes")]
    leaver_stalled_minutes: u32,
    #[serde(default = "default_notice_days")]
    expiry_notice_days: Vec<u32>,
    #[serde(default)]
    on_expiry: BTreeMap<String, String>,
}

fn default_notice_days() -> Vec<u32> {
    vec![14, 3]
}

fn default_stalled_minutes() -> u32 {
    15
}

fn default_successor() -> String {
    "manager".into()
}

fn default_transfer_days() -> u32 {
    14
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    kinds: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    mapping: Option<crate::mapping::MappingSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitlementSection {
    #[serde(default)]
    description: String,
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    human_only: bool,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    max_duration_hours: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default)]
    template: Vec<TemplateSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateSection {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    when: When,
    grant: Vec<String>,
}

impl Bundle {
    /// Parse and check a bundle. Every problem found is reported, each naming file and field.
    pub fn load(files: BundleFiles) -> Result<Self, BundleError> {
        let mut problems = Vec::new();
        let total: usize = files.values().map(Vec::len).sum();
        if total > MAX_BUNDLE_BYTES {
            return Err(BundleError {
                problems: vec![problem(
                    "(bundle)",
                    "",
                    format!("the bundle's files hold {total} bytes; at most {MAX_BUNDLE_BYTES} are accepted"),
                )],
            });
        }
        let version = PolicyVersion::of(&files);
        let Some(manifest) = files.get(MANIFEST) else {
            return Err(BundleError { problems: vec![problem(MANIFEST, "", "missing; a bundle needs one")] });
        };
        let manifest: ManifestFile = match parse_toml(MANIFEST, manifest) {
            Ok(m) => m,
            Err(p) => return Err(BundleError { problems: vec![p] }),
        };

        // Every duration is bounded (100 years), so no date arithmetic on it can overflow.
        {
            let l = &manifest.lifecycle;
            let max_days = u32::try_from(tenure_model::credential::MAX_DURATION_DAYS).unwrap_or(u32::MAX);
            let day_fields = [
                ("lifecycle.max_nhi_lifetime_days", Some(l.max_nhi_lifetime_days)),
                ("lifecycle.max_contractor_lifetime_days", l.max_contractor_lifetime_days),
                ("lifecycle.leaver_grace_days", Some(l.leaver_grace_days)),
                ("lifecycle.nhi_transfer_days", Some(l.nhi_transfer_days)),
                ("exceptions.max_days", Some(manifest.exceptions.max_days)),
                ("lifecycle.leaver_stalled_minutes", Some(l.leaver_stalled_minutes / 1440)),
                ("requests.decide_within_hours", Some(manifest.requests.decide_within_hours / 24)),
                ("jit.max_hours", Some(manifest.jit.max_hours / 24)),
            ];
            for (field, v) in day_fields {
                if v.is_some_and(|v| v > max_days) {
                    problems.push(problem(MANIFEST, field, format!("expected at most {max_days} days")));
                }
            }
        }
        let days = |d: u32| Duration::days(i64::from(d));
        let mut lifecycle = Lifecycle {
            max_nhi_lifetime: days(manifest.lifecycle.max_nhi_lifetime_days),
            max_contractor_lifetime: manifest.lifecycle.max_contractor_lifetime_days.map(days),
            leaver_grace: days(manifest.lifecycle.leaver_grace_days),
            nhi_successor_is_manager: manifest.lifecycle.nhi_successor == "manager",
            nhi_transfer_deadline: days(manifest.lifecycle.nhi_transfer_days),
            leaver_stalled_after: Duration::minutes(i64::from(manifest.lifecycle.leaver_stalled_minutes.max(1))),
            expiry_notices: {
                let mut n: Vec<u32> = manifest.lifecycle.expiry_notice_days.clone();
                n.sort_unstable_by(|a, b| b.cmp(a));
                n.dedup();
                n.into_iter().map(days).collect()
            },
            on_expiry: BTreeMap::new(),
        };
        for d in &manifest.lifecycle.expiry_notice_days {
            if *d == 0 || *d > 3660 {
                problems.push(problem(
                    MANIFEST,
                    "lifecycle.expiry_notice_days",
                    format!("expected days between 1 and 3660, found {d}"),
                ));
            }
        }
        for (kind, action) in &manifest.lifecycle.on_expiry {
            let field = format!("lifecycle.on_expiry.{kind}");
            let kind = match kind.parse::<IdentityKind>() {
                Ok(k) => k,
                Err(e) => {
                    problems.push(problem(MANIFEST, &field, e));
                    continue;
                }
            };
            let action = match action.as_str() {
                "leave" => OnExpiry::Leave,
                "suspend" => OnExpiry::Suspend,
                other => {
                    problems.push(problem(MANIFEST, &field, format!("expected leave or suspend, found `{other}`")));
                    continue;
                }
            };
            lifecycle.on_expiry.insert(kind, action);
        }
        if !["manager", "none"].contains(&manifest.lifecycle.nhi_successor.as_str()) {
            problems.push(problem(
                MANIFEST,
                "lifecycle.nhi_successor",
                format!("expected manager or none, found `{}`", manifest.lifecycle.nhi_successor),
            ));
        }
        if manifest.lifecycle.max_nhi_lifetime_days == 0 {
            problems.push(problem(MANIFEST, "lifecycle.max_nhi_lifetime_days", "expected at least 1"));
        }

        let access = access_rules(&manifest, &mut problems);
        let credentials = manifest.credentials.as_ref().map(|c| crate::credentials::rules(c, &mut problems));
        let mut sources = BTreeMap::new();
        for (name, s) in manifest.sources {
            let field = format!("sources.{name}.kinds");
            if name.is_empty() || name.contains(':') || name.contains('/') {
                problems.push(problem(
                    MANIFEST,
                    format!("sources.{name}"),
                    "a source name must be non-empty without `:` or `/`",
                ));
            }
            let mut kinds = BTreeSet::new();
            for k in &s.kinds {
                match k.parse::<IdentityKind>() {
                    Ok(k) => {
                        kinds.insert(k);
                    }
                    Err(e) => problems.push(problem(MANIFEST, &field, e)),
                }
            }
            if s.kinds.is_empty() {
                problems.push(problem(MANIFEST, &field, "expected at least one identity kind"));
            }
            let mapping = s.mapping.map(|m| crate::mapping::mapping(MANIFEST, &name, &kinds, m, &mut problems));
            sources.insert(name.clone(), SourceDef { name, kinds, description: s.description, mapping });
        }

        let mut systems = BTreeMap::new();
        for (name, table) in manifest.systems {
            match system_def(&name, table) {
                Ok(s) => {
                    systems.insert(name, s);
                }
                Err(mut p) => problems.append(&mut p),
            }
        }

        let mut entitlements = BTreeMap::new();
        for (id, e) in manifest.entitlements {
            let field = format!("entitlements.\"{id}\"");
            let Some((system, target)) = id.split_once('/').filter(|(s, t)| !s.is_empty() && !t.is_empty()) else {
                problems.push(problem(MANIFEST, field, "an entitlement id is `SYSTEM/NAME`"));
                continue;
            };
            if !systems.contains_key(system) {
                problems.push(problem(MANIFEST, field, format!("unknown system `{system}`")));
                continue;
            }
            entitlements.insert(
                id.clone(),
                EntitlementDef {
                    id: id.clone(),
                    system: system.to_owned(),
                    target: target.to_owned(),
                    description: e.description,
                    privileged: e.privileged,
                    human_only: e.human_only,
                    environment: e.environment,
                    max_duration: e.max_duration_hours.map(|h| Duration::hours(i64::from(h))),
                },
            );
        }

        let mut templates = Vec::new();
        let mut names = BTreeSet::new();
        for (path, content) in files.iter().filter(|(p, _)| p.starts_with("templates/") && p.ends_with(".toml")) {
            let file: TemplateFile = match parse_toml(path, content) {
                Ok(f) => f,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            for (i, t) in file.template.into_iter().enumerate() {
                let at = format!("template[{i}]");
                if !names.insert(t.name.clone()) {
                    problems.push(problem(
                        path,
                        format!("{at}.name"),
                        format!("template `{}` is defined twice", t.name),
                    ));
                }
                if let Some(kinds) = &t.when.kind {
                    for k in kinds.values() {
                        if let Err(e) = k.parse::<IdentityKind>() {
                            problems.push(problem(path, format!("{at}.when.kind"), e));
                        }
                    }
                }
                if let Some(srcs) = &t.when.source {
                    for s in srcs.values() {
                        if !sources.contains_key(s) {
                            problems.push(problem(path, format!("{at}.when.source"), format!("unknown source `{s}`")));
                        }
                    }
                }
                let mut grants = BTreeSet::new();
                for g in t.grant {
                    if entitlements.contains_key(&g) {
                        grants.insert(g);
                    } else {
                        problems.push(problem(path, format!("{at}.grant"), format!("unknown entitlement `{g}`")));
                    }
                }
                templates.push(Template {
                    name: t.name,
                    file: path.clone(),
                    description: t.description,
                    when: t.when,
                    grants,
                });
            }
        }

        let facts: Vec<EntitlementFacts<'_>> = entitlements
            .values()
            .map(|e| EntitlementFacts {
                id: &e.id,
                system: &e.system,
                privileged: e.privileged,
                human_only: e.human_only,
                environment: &e.environment,
            })
            .collect();
        let rules = Rules::load(&files, &facts, &mut problems);
        let system_names: BTreeSet<String> = systems.keys().cloned().collect();
        let reviews = crate::reviews::campaigns(&manifest.reviews, &entitlements, &system_names, &mut problems);
        // A `review` reaction opens the bundle's `trigger = "unlinked"` campaign: there must be one.
        if !reviews.values().any(|c| c.trigger == Some(crate::reviews::Trigger::Unlinked)) {
            for (name, s) in &systems {
                for (situation, _) in
                    s.reconcile.reactions.iter().filter(|(_, r)| **r == tenure_model::Reaction::Review)
                {
                    problems.push(problem(
                        MANIFEST,
                        format!("systems.{name}.reconcile.reactions.{situation}"),
                        "`review` opens the campaign with `trigger = \"unlinked\"`, and the bundle has none",
                    ));
                }
            }
        }
        let attestation = manifest.attestation.as_ref().map(|a| crate::reviews::attestation(a, &mut problems));
        let notifications = crate::notify::channels(&manifest.notifications, &mut problems);
        drop(facts);

        match rules {
            Some(rules) if problems.is_empty() => Ok(Self {
                memo: Memo::new(rules.hold_reads().map(|reads| {
                    let mut names: BTreeSet<String> = reads.clone();
                    names.extend(templates.iter().flat_map(|t| t.when.attributes.keys().cloned()));
                    names.into_iter().collect()
                })),
                version,
                name: manifest.bundle.name,
                lifecycle,
                sources,
                systems,
                entitlements,
                templates,
                access,
                credentials,
                reviews,
                attestation,
                notifications,
                rules,
                files,
            }),
            _ => Err(BundleError { problems }),
        }
    }

    /// Whether `source` is authoritative for identities of `kind`.
    pub fn is_authoritative(&self, source: &str, kind: IdentityKind) -> bool {
        self.sources.get(source).is_some_and(|s| s.kinds.contains(&kind))
    }

    /// The entitlements an identity's birthright templates give it.
    pub fn birthright(&self, facts: &Facts<'_>) -> BTreeSet<EntitlementId> {
        self.templates.iter().filter(|t| t.matches(facts)).flat_map(|t| t.grants.iter().cloned()).collect()
    }

    pub fn entitlement(&self, id: &str) -> Option<&EntitlementDef> {
        self.entitlements.get(id)
    }

    /// What `subject` should hold: its birthright and `extra` grants, less what guardrails
    /// block. Guardrails see everything it would hold at once (`subject.holding` is ignored);
    /// a guardrail an exception waives does not block.
    ///
    /// Computed once per distinct set of the facts templates and guardrails can see (see
    /// [`Memo`]); an answer with an evaluation error is not kept (its message may name the
    /// identity).
    pub fn desired(&self, subject: &Subject<'_>, extra: &[Held<'_>]) -> std::sync::Arc<Desired> {
        let Some(key) = self.memo.key(subject, extra, &self.access.manager_attribute) else {
            return std::sync::Arc::new(self.evaluate_desired(subject, extra));
        };
        if let Some(d) = self.memo.get(&key) {
            return d;
        }
        let d = std::sync::Arc::new(self.evaluate_desired(subject, extra));
        if d.blocked.values().all(|b| b.errors.is_empty()) {
            self.memo.put(&key, d.clone());
        }
        d
    }

    /// [`Bundle::desired`] evaluated for this identity alone.
    pub fn evaluate_desired(&self, subject: &Subject<'_>, extra: &[Held<'_>]) -> Desired {
        let facts = Facts { source: subject.source, kind: subject.kind, attributes: subject.attributes };
        let mut candidate: BTreeMap<EntitlementId, GrantOrigin> =
            self.birthright(&facts).into_iter().map(|e| (e, GrantOrigin::Birthright)).collect();
        for h in extra {
            if self.entitlements.contains_key(h.entitlement) {
                candidate.entry(h.entitlement.to_owned()).or_insert(h.origin);
            }
        }
        let waived: BTreeSet<&str> = extra.iter().flat_map(|h| h.waives.iter().map(String::as_str)).collect();
        let holding: BTreeSet<String> = candidate.keys().cloned().collect();
        let whole = Subject { holding: &holding, ..subject.clone() };
        let mut out = Desired::default();
        let items: Vec<(&str, &str)> = candidate.iter().map(|(e, o)| (e.as_str(), o.as_str())).collect();
        let decisions = self.rules.hold_all(&whole, &items, &self.access.manager_attribute, self.version.as_str());
        for ((ent, origin), d) in candidate.iter().zip(decisions) {
            let waived_all =
                d.errors.is_empty() && !d.policies.is_empty() && d.policies.iter().all(|p| waived.contains(p.as_str()));
            if d.is_allow() || waived_all {
                out.grants.insert(ent.clone(), *origin);
            } else {
                out.blocked.insert(ent.clone(), d);
            }
        }
        out
    }

    /// The guardrails' answer for `subject` holding `entitlement` on top of `subject.holding`.
    pub fn hold(&self, subject: &Subject<'_>, entitlement: &str, origin: GrantOrigin) -> Decision {
        let mut holding = subject.holding.clone();
        holding.insert(entitlement.to_owned());
        let whole = Subject { holding: &holding, ..subject.clone() };
        self.rules.hold(&whole, entitlement, origin.as_str(), &self.access.manager_attribute, self.version.as_str())
    }

    /// What a request needs. Guardrails come first: a request for something the beneficiary
    /// may not hold is denied whatever the request rules say. A privileged entitlement that
    /// needs approval needs two distinct approvers.
    pub fn decide_request(&self, q: &RequestFacts<'_>) -> Decision {
        let guard = self.hold(&q.beneficiary, q.entitlement, q.kind.origin());
        if !guard.is_allow() {
            return guard;
        }
        let mut holding = q.beneficiary.holding.clone();
        holding.insert(q.entitlement.to_owned());
        let q = RequestFacts { beneficiary: Subject { holding: &holding, ..q.beneficiary.clone() }, ..q.clone() };
        let mut d = self.rules.request(&q, &self.access.manager_attribute, self.version.as_str());
        if let Some(need) = &mut d.approval
            && self.entitlement(q.entitlement).is_some_and(|e| e.privileged)
        {
            // Step-up: two distinct people, one of them from security unless the rule already
            // names two roles.
            need.count = need.count.max(2);
            if need.roles.len() < 2 {
                need.roles.insert(ApproverRole::Security);
            }
        }
        d
    }

    /// Runtime authorization.
    pub fn authorize(&self, q: &AuthzFacts<'_>) -> Result<Decision, AuthzInputError> {
        self.rules.authorize(q, &self.access.manager_attribute, self.version.as_str())
    }
}

fn access_rules(m: &ManifestFile, problems: &mut Vec<Problem>) -> AccessRules {
    let mut roles = BTreeSet::new();
    for r in &m.exceptions.approve {
        match r.parse::<ApproverRole>() {
            Ok(r) => {
                roles.insert(r);
            }
            Err(e) => problems.push(problem(MANIFEST, "exceptions.approve", e)),
        }
    }
    if roles.is_empty() {
        problems.push(problem(MANIFEST, "exceptions.approve", "an exception needs at least one approver role"));
    }
    if m.requests.decide_within_hours == 0 {
        problems.push(problem(MANIFEST, "requests.decide_within_hours", "expected at least 1"));
    }
    for r in &m.approvers.security {
        if r.split_once(':').is_none_or(|(s, e)| s.is_empty() || e.is_empty()) {
            problems.push(problem(
                MANIFEST,
                "approvers.security",
                format!("expected `source:external_id`, found `{r}`"),
            ));
        }
    }
    AccessRules {
        decide_within: Duration::hours(i64::from(m.requests.decide_within_hours)),
        manager_attribute: m.requests.manager_attribute.clone(),
        jit_max: Duration::hours(i64::from(m.jit.max_hours)),
        exception_max: Duration::days(i64::from(m.exceptions.max_days)),
        exception_approval: Requirement { roles, count: m.exceptions.approvals.max(1) },
        security: m.approvers.security.iter().cloned().collect(),
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|_| problem(file, "", "expected UTF-8 text"))?;
    toml::from_str(text).map_err(|e| problem(file, "", e.message().to_owned() + &span_note(text, e.span())))
}

fn span_note(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text.get(..r.start).map_or(0, |t| t.matches('\n').count()) + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn type_names() -> String {
    SystemType::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

fn system_def(name: &str, mut table: toml::Table) -> Result<SystemDef, Vec<Problem>> {
    let at = format!("systems.{name}");
    if name == crate::reconcile::TENURE_SYSTEM {
        return Err(vec![problem(
            MANIFEST,
            at,
            "the name is reserved: tenure's own reconciliation checks run under it",
        )]);
    }
    let kind = match table.remove("type") {
        Some(toml::Value::String(t)) if SystemType::ALL.iter().any(|k| k.as_str() == t) => {
            SystemType::ALL.iter().copied().find(|k| k.as_str() == t).unwrap_or(SystemType::Ldap)
        }
        Some(other) => {
            return Err(vec![problem(
                MANIFEST,
                format!("{at}.type"),
                format!("expected one of {}, found `{other}`", type_names()),
            )]);
        }
        None => {
            return Err(vec![problem(
                MANIFEST,
                format!("{at}.type"),
                format!("missing; expected one of {}", type_names()),
            )]);
        }
    };
    let mut settings = BTreeMap::new();
    let mut problems = Vec::new();
    let owner = match table.remove("owner") {
        None => None,
        Some(toml::Value::String(o)) if o.split_once(':').is_some_and(|(s, e)| !s.is_empty() && !e.is_empty()) => {
            Some(o)
        }
        Some(other) => {
            problems.push(problem(
                MANIFEST,
                format!("{at}.owner"),
                format!("expected `source:external_id`, found `{other}`"),
            ));
            None
        }
    };
    let max_concurrency = match table.remove("max_concurrency") {
        None => None,
        Some(toml::Value::Integer(n)) if (1..=1024).contains(&n) => usize::try_from(n).ok(),
        Some(other) => {
            problems.push(problem(
                MANIFEST,
                format!("{at}.max_concurrency"),
                format!("expected 1 to 1024, found `{other}`"),
            ));
            None
        }
    };
    let reconcile = match crate::reconcile::parse(name, table.remove("reconcile"), table.remove("correlate")) {
        Ok(r) => r,
        Err(p) => {
            problems.extend(p);
            crate::reconcile::ReconcileRules::default()
        }
    };
    let ad = kind == SystemType::Ldap && table.get("flavor").and_then(toml::Value::as_str) == Some("ad");
    let disable_attribute = match table.get("disable").and_then(toml::Value::as_str) {
        Some("nsaccountlock") => Some("nsAccountLock".to_owned()),
        Some("attribute") => table.get("disable_attribute").and_then(toml::Value::as_str).map(str::to_owned),
        _ => None,
    };
    let shape = crate::attributes::Shape { kind, ad, disable_attribute: disable_attribute.as_deref() };
    let attributes = crate::attributes::parse(
        MANIFEST,
        name,
        shape,
        table.remove("attributes"),
        table.remove("kinds"),
        &mut problems,
    );
    for (k, v) in table {
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                problems.push(problem(MANIFEST, format!("{at}.{k}"), "expected a string, integer or boolean"));
                continue;
            }
        };
        settings.insert(k, s);
    }
    if problems.is_empty() {
        Ok(SystemDef { name: name.to_owned(), kind, settings, owner, max_concurrency, reconcile, attributes })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST_OK: &str = r#"
[bundle]
name = "t"
[lifecycle]
max_nhi_lifetime_days = 90
leaver_grace_days = 30
[sources.hr]
kinds = ["human"]
[sources.registry]
kinds = ["service", "agent"]
[systems.dir]
type = "ldap"
url = "${URL}"
port = 389
[entitlements."dir/staff"]
[entitlements."dir/eng"]
privileged = false
"#;

    fn files(extra: &[(&str, &str)]) -> BundleFiles {
        let mut f = BundleFiles::new();
        f.insert(MANIFEST.into(), MANIFEST_OK.as_bytes().to_vec());
        for (p, c) in extra {
            f.insert((*p).into(), c.as_bytes().to_vec());
        }
        f
    }

    #[test]
    fn templates_give_birthrights_by_kind_and_attribute() {
        let b = Bundle::load(files(&[(
            "templates/base.toml",
            r#"
[[template]]
name = "staff"
when = { kind = "human" }
grant = ["dir/staff"]
[[template]]
name = "eng"
when.attributes = { department = ["engineering", "research"] }
grant = ["dir/eng"]
"#,
        )]))
        .unwrap();
        let mut attrs = BTreeMap::new();
        attrs.insert("department".to_owned(), "research".to_owned());
        let f = Facts { source: "hr", kind: IdentityKind::Human, attributes: &attrs };
        assert_eq!(b.birthright(&f).into_iter().collect::<Vec<_>>(), ["dir/eng", "dir/staff"]);
        let none = BTreeMap::new();
        let f = Facts { source: "registry", kind: IdentityKind::Service, attributes: &none };
        assert!(b.birthright(&f).is_empty());
        assert!(b.is_authoritative("registry", IdentityKind::Agent));
        assert!(!b.is_authoritative("hr", IdentityKind::Agent));
        assert_eq!(b.systems["dir"].settings["port"], "389");
    }

    #[test]
    fn a_review_reaction_needs_a_campaign_triggered_by_unlinked_accounts() {
        let with = |extra: &str| {
            let mut f = files(&[]);
            f.insert(MANIFEST.into(), format!("{MANIFEST_OK}{extra}").into_bytes());
            Bundle::load(f)
        };
        let reaction = "[systems.dir.reconcile]\nreactions = { unlinked = \"review\" }\n";
        let e = with(reaction).unwrap_err();
        assert!(e.problems.iter().any(|p| p.to_string().contains("systems.dir.reconcile.reactions.unlinked")), "{e:?}");
        let campaign =
            "[reviews.unlinked]\ntrigger = \"unlinked\"\n[[reviews.unlinked.stage]]\nreviewers = [\"system-owner\"]\n";
        let b = with(&format!("{reaction}{campaign}")).unwrap();
        assert_eq!(b.reviews["unlinked"].trigger, Some(crate::reviews::Trigger::Unlinked));
        let e = with("[systems.dir.reconcile]\nreactions = { unmatched = \"review\" }\n").unwrap_err();
        assert!(e.problems.iter().any(|p| p.to_string().contains("reactions.unmatched")), "{e:?}");
    }

    #[test]
    fn version_changes_with_any_byte_and_path() {
        let a = PolicyVersion::of(&files(&[("templates/a.toml", "")]));
        let b = PolicyVersion::of(&files(&[("templates/b.toml", "")]));
        let c = PolicyVersion::of(&files(&[("templates/a.toml", " ")]));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, PolicyVersion::of(&files(&[("templates/a.toml", "")])));
    }

    #[test]
    fn a_bundle_past_the_size_limit_is_refused_before_parsing() {
        let mut f = files(&[]);
        f.insert("policies/huge.cedar".into(), vec![b' '; MAX_BUNDLE_BYTES]);
        let err = Bundle::load(f).unwrap_err().to_string();
        assert!(err.contains("at most 16777216 are accepted"), "{err}");
    }

    #[test]
    fn two_thousand_policies_in_one_file_load() {
        // Each policy once kept its own copy of the whole file (memory ∝ policies × file size);
        // the memory figures are in the issue's closing note, measured on the binary.
        let rules: String = (0..2000)
            .map(|i| format!("@id(\"r{i}\")\nforbid (principal, action == Tenure::Action::\"hold\", resource) when {{ principal.name == \"n{i}\" }};\n"))
            .collect();
        let b = Bundle::load(files(&[("policies/many.cedar", &rules)])).unwrap();
        assert_eq!(b.rules.policy_ids().len(), 2001);
    }

    #[test]
    fn problems_name_file_and_field() {
        let err = Bundle::load(files(&[(
            "templates/bad.toml",
            r#"
[[template]]
name = "x"
when = { kind = "robot", source = "nowhere" }
grant = ["dir/nope"]
"#,
        )]))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("templates/bad.toml: field template[0].when.kind: expected one of human"), "{text}");
        assert!(text.contains("field template[0].when.source: unknown source `nowhere`"), "{text}");
        assert!(text.contains("field template[0].grant: unknown entitlement `dir/nope`"), "{text}");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let mut f = files(&[]);
        f.insert(MANIFEST.into(), b"[bundle]\nname = \n".to_vec());
        let err = Bundle::load(f).unwrap_err().to_string();
        assert!(err.contains("tenure.toml: "), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}

#[cfg(test)]
mod quickstart_tests {
    use super::*;

    fn quickstart() -> BundleFiles {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/policy");
        let mut files = BundleFiles::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    files.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        files
    }

    #[test]
    fn the_quickstart_cases_pass() {
        let b = Bundle::load(quickstart()).unwrap_or_else(|e| panic!("{e}"));
        let results = crate::cases::run(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(results.len() >= 15, "{}", results.len());
        for r in &results {
            assert!(r.passed(), "{}: {}: {:?}", r.file, r.name, r.failures);
        }
    }

    #[test]
    fn breaking_a_rule_fails_the_case_that_covers_it() {
        let mut files = quickstart();
        let text = String::from_utf8(files["policies/requests.cedar"].clone()).unwrap();
        files.insert(
            "policies/requests.cedar".into(),
            text.replace("context.duration_minutes <= 60", "context.duration_minutes <= 20").into_bytes(),
        );
        let b = Bundle::load(files).unwrap();
        let failed: Vec<_> = crate::cases::run(&b).unwrap().into_iter().filter(|r| !r.passed()).collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].name, "an engineer elevates for 30 minutes without approval");
        assert!(failed[0].failures[0].contains("expected allow; policy says deny"), "{:?}", failed[0].failures);
    }

    #[test]
    fn cedar_errors_name_file_and_line() {
        let mut files = quickstart();
        files.insert(
            "policies/bad.cedar".into(),
            b"// a comment\n@id(\"typo\")\npermit (principal, action == Tenure::Action::\"hold\", resource)\nwhen { principal.departmnt == \"x\" };\n".to_vec(),
        );
        files.insert("policies/syntax.cedar".into(), b"\n\npermit (principal, action, resource) when { ;\n".to_vec());
        let err = Bundle::load(files).unwrap_err().to_string();
        assert!(err.contains("policies/bad.cedar: field line 4, policy `typo`"), "{err}");
        assert!(err.contains("departmnt"), "{err}");
        assert!(err.contains("policies/syntax.cedar: field line 3"), "{err}");
    }

    #[test]
    fn approval_annotations_are_checked_at_load() {
        let mut files = quickstart();
        files.insert(
            "policies/x.cedar".into(),
            b"@id(\"x\")\n@approve(\"boss\")\npermit (principal, action == Tenure::Action::\"request\", resource);\n@id(\"y\")\n@aprove(\"manager\")\npermit (principal, action == Tenure::Action::\"request\", resource);\n".to_vec(),
        );
        let err = Bundle::load(files).unwrap_err().to_string();
        assert!(err.contains("policy `x`: @approve: expected one of owner, manager"), "{err}");
        assert!(err.contains("unknown annotation `@aprove`"), "{err}");
    }

    /// What policy wants, from the memo, is what evaluating each identity on its own gives,
    /// across identities that differ in kind, source, state, name, attributes a guardrail reads
    /// and attributes nobody reads, and grants beyond birthright.
    #[test]
    fn the_memo_answers_what_each_identity_evaluated_alone_would() {
        let mut files = quickstart();
        files.insert(
            "policies/memo.cedar".into(),
            br#"@id("contractors-no-prod")
forbid (principal, action == Tenure::Action::"hold", resource)
when { principal.hasTag("employment") && principal.getTag("employment") == "contractor"
       && context.environments.contains("prod") };
@id("names-ending-7")
forbid (principal, action == Tenure::Action::"hold", resource == Tenure::Entitlement::"corp-directory/sales")
when { principal.name like "*7" };
@id("suspended-no-vpn")
forbid (principal, action == Tenure::Action::"hold", resource == Tenure::Entitlement::"corp-directory/vpn")
when { principal.state == "suspended" };
"#
            .to_vec(),
        );
        let b = Bundle::load(files).unwrap_or_else(|e| panic!("{e}"));
        let names = b.memo.names.clone().expect("these guardrails' reads are bounded");
        for n in ["employment", "name", "state", "department"] {
            assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
        }
        assert!(!names.contains(&"email".to_owned()), "{names:?}");
        let departments = ["engineering", "finance", "sales", "people", "marketing"];
        let kinds = [IdentityKind::Human, IdentityKind::Human, IdentityKind::Service, IdentityKind::Workload];
        let states = [tenure_model::LifecycleState::Active, tenure_model::LifecycleState::Suspended];
        let extras: [&[(&str, GrantOrigin)]; 4] = [
            &[],
            &[("corp-directory/prod-admin", GrantOrigin::Request)],
            &[("corp-directory/payments-approve", GrantOrigin::Request)],
            &[("corp-directory/dev-deploy", GrantOrigin::Jit), ("corp-directory/prod-deploy", GrantOrigin::Request)],
        ];
        let holding = BTreeSet::new();
        let waives: Vec<String> = vec![];
        let mut distinct = BTreeSet::new();
        for i in 0..600usize {
            let mut attributes = BTreeMap::from([
                ("department".to_owned(), departments[i % 5].to_owned()),
                ("email".to_owned(), format!("p{i}@example.com")),
            ]);
            if i % 3 == 0 {
                attributes.insert("employment".into(), if i % 2 == 0 { "contractor" } else { "employee" }.into());
            }
            if i % 11 == 0 {
                attributes.insert("team".into(), "engineering".into());
            }
            let reference = format!("hr:E{i}");
            let name = format!("Person {}", i % 20);
            let subject = Subject {
                reference: &reference,
                kind: kinds[i % 4],
                source: if i % 13 == 0 { "registry" } else { "hr" },
                state: states[(i / 7) % 2],
                name: &name,
                attributes: &attributes,
                owner: None,
                purpose: None,
                holding: &holding,
            };
            let held: Vec<Held<'_>> = extras[(i / 5) % 4]
                .iter()
                .map(|(e, origin)| Held { entitlement: e, origin: *origin, waives: &waives })
                .collect();
            let alone = b.evaluate_desired(&subject, &held);
            for _ in 0..2 {
                let memo = b.desired(&subject, &held);
                assert_eq!(memo.grants, alone.grants, "{reference}");
                // In the same order, too: Cedar names them in none, tenure sorts them.
                let policies = |d: &Desired| -> BTreeMap<String, Vec<String>> {
                    d.blocked.iter().map(|(e, d)| (e.clone(), d.policies.clone())).collect()
                };
                assert_eq!(policies(&memo), policies(&alone), "{reference}");
            }
            distinct.insert(format!("{:?}", b.memo.key(&subject, &held, "manager").map(|k| k.seen)));
        }
        let kept = b.memo.len();
        assert!(kept > 20 && kept < 600, "the memo kept {kept} answers for 600 identities");
        assert!(distinct.len() > 1);
    }

    /// Guardrails that read a tag by a computed name cannot be bounded: every identity is
    /// evaluated alone.
    #[test]
    fn unbounded_reads_turn_the_memo_off() {
        let mut files = quickstart();
        files.insert(
            "policies/memo.cedar".into(),
            br#"@id("by-name")
forbid (principal, action == Tenure::Action::"hold", resource)
when { principal.hasTag(resource.system) };
"#
            .to_vec(),
        );
        let b = Bundle::load(files).unwrap_or_else(|e| panic!("{e}"));
        assert!(b.memo.names.is_none());
    }
}
