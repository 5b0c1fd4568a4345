//! Access review campaigns (`[reviews.NAME]` in `tenure.toml`): which grants a campaign
//! covers, who reviews each item at each of up to three stages (with a fallback), how long
//! reviewers have, when they are reminded, and what happens to an item nobody decided — with
//! the guard that a campaign whose no-answer default would revoke more than its threshold
//! waits for an admin instead.
//!
//! Ownership attestation (`[attestation]`): every NHI of a kind is reconfirmed by its owner
//! on a cadence (more often when it holds privileged access); a missed deadline suspends it.
//!
//! ```toml
//! [attestation]
//! every_days = { service = 90, workload = 90, agent = 30 }
//! privileged_every_days = 7
//! remind_days_before = 7
//!
//! [reviews.privileged]
//! description = "Everyone holding privileged access"
//! scope = { privileged = true }        # systems, entitlements, privileged, kinds, origins, attributes
//! duration_days = 14
//! remind_days_before = [7, 1]
//! no_answer = "keep"                   # keep | revoke | recommend
//! max_no_answer_revokes = 10           # past this the campaign pauses for an admin
//! every_days = 90                      # the clock starts it again (absent: by hand only)
//! # trigger = "mover"                  # or "owner_changed", "unlinked": a micro-review of one identity
//!
//! [[reviews.privileged.stage]]
//! reviewers = ["manager"]              # manager, owner, system-owner, security, or `source:id`
//! fallback = ["hr:E1011"]
//! ```

use crate::bundle::{EntitlementDef, EntitlementId, MANIFEST};
use crate::error::{Problem, problem};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tenure_model::{ApproverRole, GrantOrigin, IdentityKind};
use time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttestationSection {
    every_days: BTreeMap<String, u32>,
    #[serde(default)]
    privileged_every_days: Option<u32>,
    #[serde(default)]
    remind_days_before: Option<u32>,
}

/// How often owners reconfirm their NHIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Per non-human kind: the longest an NHI goes without its owner's attestation.
    pub every: BTreeMap<IdentityKind, Duration>,
    /// For an NHI holding privileged access, if shorter.
    pub privileged_every: Option<Duration>,
    /// A notice (a finding for the owner) this long before the deadline.
    pub remind_before: Option<Duration>,
}

impl Attestation {
    /// The cadence of an NHI of `kind`, holding privileged access or not.
    pub fn every(&self, kind: IdentityKind, privileged: bool) -> Option<Duration> {
        let base = self.every.get(&kind).copied()?;
        Some(match self.privileged_every {
            Some(p) if privileged => base.min(p),
            _ => base,
        })
    }
}

pub(crate) fn attestation(s: &AttestationSection, problems: &mut Vec<Problem>) -> Attestation {
    let max_days = u32::try_from(tenure_model::credential::MAX_DURATION_DAYS).unwrap_or(u32::MAX);
    let days = |d: u32| Duration::days(i64::from(d));
    let mut every = BTreeMap::new();
    for (kind, d) in &s.every_days {
        let field = format!("attestation.every_days.{kind}");
        match kind.parse::<IdentityKind>() {
            Ok(k) if k.is_human() => problems.push(problem(MANIFEST, field, "people are reviewed, not attested")),
            Ok(_) if *d == 0 || *d > max_days => {
                problems.push(problem(MANIFEST, field, format!("expected 1 to {max_days} days")));
            }
            Ok(k) => {
                every.insert(k, days(*d));
            }
            Err(e) => problems.push(problem(MANIFEST, field, e)),
        }
    }
    for (field, v) in [("privileged_every_days", s.privileged_every_days), ("remind_days_before", s.remind_days_before)]
    {
        if v.is_some_and(|d| d == 0 || d > max_days) {
            problems.push(problem(MANIFEST, format!("attestation.{field}"), format!("expected 1 to {max_days} days")));
        }
    }
    Attestation {
        every,
        privileged_every: s.privileged_every_days.map(days),
        remind_before: s.remind_days_before.map(days),
    }
}

/// At most this many stages per campaign (as Entra and midPoint allow).
pub const MAX_STAGES: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignSection {
    #[serde(default)]
    description: String,
    #[serde(default)]
    scope: ScopeSection,
    #[serde(default = "default_duration")]
    duration_days: u32,
    #[serde(default)]
    remind_days_before: Vec<u32>,
    #[serde(default = "default_no_answer")]
    no_answer: String,
    #[serde(default)]
    max_no_answer_revokes: u32,
    #[serde(default)]
    every_days: Option<u32>,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    stage: Vec<StageSection>,
}

fn default_duration() -> u32 {
    14
}

fn default_no_answer() -> String {
    "keep".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScopeSection {
    #[serde(default)]
    systems: Vec<String>,
    #[serde(default)]
    entitlements: Vec<String>,
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageSection {
    reviewers: Vec<String>,
    #[serde(default)]
    fallback: Vec<String>,
}

/// What a campaign covers: grants matching every criterion given (an empty list is no
/// criterion). Birthright is left out unless `origins` names it: policy, not a reviewer,
/// decides birthright, and a reviewer's revoke of it would be given back by the template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    pub systems: BTreeSet<String>,
    pub entitlements: BTreeSet<EntitlementId>,
    pub privileged: bool,
    pub kinds: BTreeSet<IdentityKind>,
    pub origins: BTreeSet<GrantOrigin>,
    /// Identity attributes that must have these values (`department = "sales"`).
    pub attributes: BTreeMap<String, String>,
}

impl Scope {
    /// Whether a grant of `entitlement` (in the catalog as `def`) with `origin`, held by an
    /// identity of `kind` with `attributes`, is in scope.
    pub fn covers(
        &self,
        def: &EntitlementDef,
        origin: GrantOrigin,
        kind: IdentityKind,
        attributes: &BTreeMap<String, String>,
    ) -> bool {
        (self.systems.is_empty() || self.systems.contains(&def.system))
            && (self.entitlements.is_empty() || self.entitlements.contains(&def.id))
            && (!self.privileged || def.privileged)
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
            && self.origins.contains(&origin)
            && self.attributes.iter().all(|(k, v)| attributes.get(k) == Some(v))
    }
}

/// Who reviews an item at one stage: each role resolved for the item's identity and
/// entitlement, and named identities; when nobody remains (the roles name nobody, or only the
/// identity itself), the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub roles: BTreeSet<ApproverRole>,
    /// `source:external_id` of each named reviewer.
    pub named: Vec<String>,
    pub fallback: Vec<String>,
}

/// What happens to an item nobody decided by the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    Keep,
    Revoke,
    /// What the item's recommendation says.
    Recommend,
}

impl NoAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
            Self::Recommend => "recommend",
        }
    }
}

/// What starts a micro-review of one identity's access on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A mover whose manager changed: the new manager reviews what it kept.
    Mover,
    /// An NHI's new owner attests its access.
    OwnerChanged,
    /// Reconciliation found an account tenure did not make that correlates to the identity
    /// (`unlinked`, with the reaction `review`): people say whether it is theirs.
    Unlinked,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mover => "mover",
            Self::OwnerChanged => "owner_changed",
            Self::Unlinked => "unlinked",
        }
    }
}

/// A checked campaign definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    pub description: String,
    pub scope: Scope,
    pub stages: Vec<Stage>,
    pub duration: Duration,
    /// How long before the deadline each reminder goes out, longest first.
    pub reminders: Vec<Duration>,
    pub no_answer: NoAnswer,
    /// Past this many revocations by default, the campaign pauses for an admin.
    pub max_no_answer_revokes: u32,
    /// Started again by the clock this long after the last start.
    pub every: Option<Duration>,
    /// Started, for one identity, by this event instead of by hand or by the clock.
    pub trigger: Option<Trigger>,
}

fn reference_ok(r: &str) -> bool {
    r.split_once(':').is_some_and(|(s, e)| !s.is_empty() && !e.is_empty())
}

/// Check every `[reviews.NAME]`.
pub(crate) fn campaigns(
    sections: &BTreeMap<String, CampaignSection>,
    entitlements: &BTreeMap<EntitlementId, EntitlementDef>,
    systems: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Campaign> {
    let mut out = BTreeMap::new();
    for (name, s) in sections {
        let at = format!("reviews.{name}");
        let before = problems.len();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(problem(MANIFEST, &at, "a campaign name is letters, digits, `-` and `_`"));
        }
        let mut scope = Scope { privileged: s.scope.privileged, ..Scope::default() };
        for sys in &s.scope.systems {
            if !systems.contains(sys) {
                problems.push(problem(MANIFEST, format!("{at}.scope.systems"), format!("unknown system `{sys}`")));
            }
            scope.systems.insert(sys.clone());
        }
        for e in &s.scope.entitlements {
            if !entitlements.contains_key(e) {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.scope.entitlements"),
                    format!("unknown entitlement `{e}`"),
                ));
            }
            scope.entitlements.insert(e.clone());
        }
        for k in &s.scope.kinds {
            match k.parse::<IdentityKind>() {
                Ok(k) => {
                    scope.kinds.insert(k);
                }
                Err(e) => problems.push(problem(MANIFEST, format!("{at}.scope.kinds"), e)),
            }
        }
        if s.scope.origins.is_empty() {
            scope.origins = [GrantOrigin::Request, GrantOrigin::Jit, GrantOrigin::Exception].into();
        }
        for o in &s.scope.origins {
            match o.parse::<GrantOrigin>() {
                Ok(o) => {
                    scope.origins.insert(o);
                }
                Err(e) => problems.push(problem(MANIFEST, format!("{at}.scope.origins"), e)),
            }
        }
        scope.attributes = s.scope.attributes.clone();

        if s.stage.is_empty() || s.stage.len() > MAX_STAGES {
            problems.push(problem(
                MANIFEST,
                format!("{at}.stage"),
                format!("a campaign has 1 to {MAX_STAGES} stages, found {}", s.stage.len()),
            ));
        }
        let mut stages = Vec::new();
        for (i, st) in s.stage.iter().enumerate() {
            let f = format!("{at}.stage[{i}]");
            let mut stage = Stage { roles: BTreeSet::new(), named: Vec::new(), fallback: Vec::new() };
            for r in &st.reviewers {
                if r.contains(':') {
                    if !reference_ok(r) {
                        problems.push(problem(
                            MANIFEST,
                            format!("{f}.reviewers"),
                            format!("expected `source:external_id`, found `{r}`"),
                        ));
                    }
                    stage.named.push(r.clone());
                } else {
                    match r.parse::<ApproverRole>() {
                        Ok(role) => {
                            stage.roles.insert(role);
                        }
                        Err(e) => problems.push(problem(
                            MANIFEST,
                            format!("{f}.reviewers"),
                            format!("{e} (or a `source:external_id`)"),
                        )),
                    }
                }
            }
            if st.reviewers.is_empty() {
                problems.push(problem(MANIFEST, format!("{f}.reviewers"), "a stage needs at least one reviewer"));
            }
            for r in &st.fallback {
                if !reference_ok(r) {
                    problems.push(problem(
                        MANIFEST,
                        format!("{f}.fallback"),
                        format!("expected `source:external_id`, found `{r}`"),
                    ));
                }
                stage.fallback.push(r.clone());
            }
            stages.push(stage);
        }
        let max_days = u32::try_from(tenure_model::credential::MAX_DURATION_DAYS).unwrap_or(u32::MAX);
        if s.duration_days == 0 || s.duration_days > 366 {
            problems.push(problem(MANIFEST, format!("{at}.duration_days"), "expected 1 to 366 days"));
        }
        let mut reminders: Vec<u32> = s.remind_days_before.clone();
        for d in &reminders {
            if *d == 0 || *d >= s.duration_days {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.remind_days_before"),
                    format!("expected days between 1 and the campaign's {} days, found {d}", s.duration_days),
                ));
            }
        }
        reminders.sort_unstable_by(|a, b| b.cmp(a));
        reminders.dedup();
        let no_answer = match s.no_answer.as_str() {
            "keep" => NoAnswer::Keep,
            "revoke" => NoAnswer::Revoke,
            "recommend" => NoAnswer::Recommend,
            other => {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.no_answer"),
                    format!("expected keep, revoke or recommend, found `{other}`"),
                ));
                NoAnswer::Keep
            }
        };
        if let Some(e) = s.every_days
            && (e == 0 || e > max_days)
        {
            problems.push(problem(MANIFEST, format!("{at}.every_days"), format!("expected 1 to {max_days} days")));
        }
        let trigger = match s.trigger.as_deref() {
            None => None,
            Some("mover") => Some(Trigger::Mover),
            Some("owner_changed") => Some(Trigger::OwnerChanged),
            Some("unlinked") => Some(Trigger::Unlinked),
            Some(other) => {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.trigger"),
                    format!("expected mover, owner_changed or unlinked, found `{other}`"),
                ));
                None
            }
        };
        if trigger.is_some() && s.every_days.is_some() {
            problems.push(problem(MANIFEST, format!("{at}.every_days"), "a triggered campaign does not recur"));
        }
        if problems.len() > before {
            continue;
        }
        let days = |d: u32| Duration::days(i64::from(d));
        out.insert(
            name.clone(),
            Campaign {
                name: name.clone(),
                description: s.description.clone(),
                scope,
                stages,
                duration: days(s.duration_days),
                reminders: reminders.into_iter().map(days).collect(),
                no_answer,
                max_no_answer_revokes: s.max_no_answer_revokes,
                every: s.every_days.map(days),
                trigger,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Bundle, BundleFiles};

    fn load(reviews: &str) -> Result<Bundle, String> {
        let manifest = format!(
            r#"
[bundle]
name = "t"
[lifecycle]
max_nhi_lifetime_days = 90
leaver_grace_days = 1
[systems.dir]
type = "ldap"
[entitlements."dir/admin"]
privileged = true
[entitlements."dir/staff"]
{reviews}
"#
        );
        let files: BundleFiles = [("tenure.toml".to_owned(), manifest.into_bytes())].into();
        Bundle::load(files).map_err(|e| e.to_string())
    }

    #[test]
    fn a_campaign_loads_with_its_stages_and_defaults() {
        let b = load(
            r#"
[reviews.priv]
scope = { privileged = true }
remind_days_before = [1, 7]
[[reviews.priv.stage]]
reviewers = ["manager", "hr:E1"]
fallback = ["hr:E2"]
[[reviews.priv.stage]]
reviewers = ["security"]
"#,
        )
        .unwrap();
        let c = &b.reviews["priv"];
        assert_eq!(c.stages.len(), 2);
        assert_eq!(c.stages[0].named, ["hr:E1"]);
        assert_eq!(c.duration, time::Duration::days(14));
        assert_eq!(c.reminders, [time::Duration::days(7), time::Duration::days(1)]);
        assert_eq!(c.no_answer, super::NoAnswer::Keep);
        assert!(!c.scope.origins.contains(&tenure_model::GrantOrigin::Birthright));
    }

    #[test]
    fn problems_name_the_campaign_and_field() {
        let err = load(
            r#"
[reviews.bad]
scope = { systems = ["nowhere"], entitlements = ["dir/nope"], origins = ["gift"] }
no_answer = "shrug"
remind_days_before = [30]
[[reviews.bad.stage]]
reviewers = ["janitor", "hr:"]
[[reviews.bad.stage]]
reviewers = ["manager"]
[[reviews.bad.stage]]
reviewers = ["manager"]
[[reviews.bad.stage]]
reviewers = ["manager"]
"#,
        )
        .unwrap_err();
        for want in [
            "reviews.bad.scope.systems: unknown system `nowhere`",
            "reviews.bad.scope.entitlements: unknown entitlement `dir/nope`",
            "reviews.bad.scope.origins",
            "reviews.bad.no_answer: expected keep, revoke or recommend, found `shrug`",
            "reviews.bad.remind_days_before",
            "reviews.bad.stage: a campaign has 1 to 3 stages, found 4",
            "reviews.bad.stage[0].reviewers",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }
}
