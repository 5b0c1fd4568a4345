//! The Cedar side of a bundle: tenure's built-in schema (extended by the bundle's
//! `schema/*.cedarschema`), the bundle's `policies/*.cedar` validated in strict mode at load, and
//! the three questions tenure asks of them. Every answer is a [`Decision`] value carrying the
//! policies that determined it; an evaluation error is a deny with the error recorded.
//!
//! - `hold`: may this identity hold this entitlement, given everything it would hold? Permitted
//!   unless a `forbid` (a guardrail) says otherwise; applies to birthright, requests, JIT alike.
//! - `request`: may this request go ahead, and with whose approval? The `@approve` and
//!   `@approvals` annotations of the permit rules that allowed it say who must approve.
//! - runtime authorization: any action of the (extended) schema.

use crate::error::{Problem, problem};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, SchemaFragment, ValidationMode, Validator,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use tenure_model::{ApproverRole, IdentityKind, LifecycleState, RequestKind};

/// Tenure's entities and actions. Identity attributes of a source (department, employment, …)
/// are Cedar tags: `principal.hasTag("department") && principal.getTag("department") == "x"`.
pub const BASE_SCHEMA: &str = r#"namespace Tenure {
  // A person, service, workload or agent. Parents: the entitlements it holds.
  entity Identity in [Entitlement] = {
    kind: String,
    human: Bool,
    source: String,
    state: String,
    name: String,
    owner?: Identity,
    manager?: Identity,
    purpose?: String,
  } tags String;
  entity System = {};
  entity Entitlement in [System] = {
    system: String,
    privileged: Bool,
    human_only: Bool,
    environment: String,
  };
  // A resource of runtime authorization that is neither an identity nor an entitlement.
  entity Resource = { type: String } tags String;

  // Guardrails: may the principal hold the entitlement, given everything it would hold?
  action hold appliesTo {
    principal: [Identity],
    resource: [Entitlement],
    context: { origin: String, holding: Set<Entitlement>, environments: Set<String> },
  };
  // Requests for access, JIT elevation and exceptions.
  action request appliesTo {
    principal: [Identity],
    resource: [Entitlement],
    context: {
      requester: Identity,
      kind: String,
      intent: String,
      duration_minutes: Long,
      holding: Set<Entitlement>,
      environments: Set<String>,
    },
  };
}
"#;

/// The built-in rule that makes guardrails `forbid`-only: holding is permitted unless forbidden.
const HOLD_DEFAULT_ID: &str = "tenure:hold-unless-forbidden";
const HOLD_DEFAULT: &str = r#"permit (principal, action == Tenure::Action::"hold", resource);"#;

/// The id of the lifecycle cut-off in decisions: only `active` identities are authorized.
pub const LIFECYCLE_CUTOFF: &str = "tenure:lifecycle";

/// Annotations tenure reads; any other is an error (a typo would silently drop an obligation).
const ANNOTATIONS: &[&str] = &["id", "reason", "approve", "approvals"];

/// allow, deny, or allow once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    NeedsApproval,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::NeedsApproval => "needs_approval",
        }
    }
}

/// Who must approve: someone eligible for each role, and at least `count` distinct approvers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub roles: BTreeSet<ApproverRole>,
    pub count: u32,
}

impl Requirement {
    pub fn none() -> Self {
        Self { roles: BTreeSet::new(), count: 0 }
    }

    pub fn is_none(&self) -> bool {
        self.roles.is_empty() && self.count == 0
    }

    /// Both obligations at once: the union of roles and the larger count.
    fn and(&mut self, other: &Self) {
        self.roles.extend(other.roles.iter().copied());
        self.count = self.count.max(other.count);
    }
}

/// A policy decision, as a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub decision: Verdict,
    /// Ids of the policies that determined it.
    pub policies: Vec<String>,
    /// The `@reason` texts of those policies, for people.
    pub reasons: Vec<String>,
    /// Evaluation errors (any one makes the decision a deny).
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Requirement>,
    pub policy_version: String,
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        self.decision == Verdict::Allow
    }

    pub(crate) fn deny(version: &str, policy: &str, reason: impl Into<String>) -> Self {
        Self {
            decision: Verdict::Deny,
            policies: vec![policy.to_owned()],
            reasons: vec![reason.into()],
            errors: vec![],
            approval: None,
            policy_version: version.to_owned(),
        }
    }
}

/// An identity as policy sees it.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub reference: &'a str,
    pub kind: IdentityKind,
    pub source: &'a str,
    pub state: LifecycleState,
    pub name: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    pub owner: Option<&'a str>,
    pub purpose: Option<&'a str>,
    /// The entitlements it holds.
    pub holding: &'a BTreeSet<String>,
}

/// A request, as policy sees it.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub beneficiary: Subject<'a>,
    pub requester: Subject<'a>,
    /// Other identities a rule may look at (owners, managers).
    pub related: Vec<Subject<'a>>,
    pub entitlement: &'a str,
    pub kind: RequestKind,
    pub intent: &'a str,
    pub duration_minutes: i64,
}

/// A runtime authorization question.
#[derive(Debug, Clone)]
pub struct AuthzFacts<'a> {
    pub principal: Subject<'a>,
    pub related: Vec<Subject<'a>>,
    /// `Namespace::Action::"name"`, or a bare name for `Tenure::Action::"name"`.
    pub action: &'a str,
    pub resource: &'a ResourceSpec,
    pub context: &'a serde_json::Value,
    /// What names this state of the principal and the related identities exactly (the
    /// engine: their ids and store revisions), or `None`. With it, the question's Cedar inputs
    /// are built once and reused for the same question about the same revision; a caller must
    /// make it change whenever any of the subjects' facts do.
    pub revision: Option<&'a str>,
}

/// The resource of a runtime authorization: a type and id; for types other than tenure's
/// identities and entitlements, attributes (and for `Tenure::Resource`, tags) as JSON.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    #[serde(rename = "type", default = "default_resource_type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ResourceSpec {
    /// A `Tenure::Resource` with this id, no attributes and no tags.
    pub fn resource(id: &str) -> Self {
        Self {
            kind: default_resource_type(),
            id: id.to_owned(),
            attributes: Default::default(),
            tags: Default::default(),
        }
    }
}

fn default_resource_type() -> String {
    "Tenure::Resource".into()
}

/// Bad input to a runtime authorization (not a decision: the question itself is malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AuthzInputError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, Clone)]
struct Types {
    identity: EntityTypeName,
    entitlement: EntityTypeName,
}

/// An entitlement's facts for the entity store.
pub(crate) struct EntitlementFacts<'a> {
    pub id: &'a str,
    pub system: &'a str,
    pub privileged: bool,
    pub human_only: bool,
    pub environment: &'a str,
}

/// The loaded, validated rules of a bundle.
#[derive(Debug, Clone)]
pub struct Rules {
    schema: Schema,
    policies: PolicySet,
    /// The policies that can apply to `hold` and to `request` (the rest cannot match those
    /// actions, so evaluating them would only cost time).
    hold_policies: PolicySet,
    request_policies: PolicySet,
    /// Entitlement and system entities of the catalog, by entitlement id.
    catalog: HashMap<String, (Entity, Entity)>,
    /// One entity per system of the catalog.
    systems: Vec<Entity>,
    environments: HashMap<String, String>,
    /// Entity type names, parsed once.
    types: Types,
    /// Each policy's approval obligation (permit rules of `request` only).
    obligations: HashMap<String, Requirement>,
    reasons: HashMap<String, String>,
    /// Runtime questions' Cedar inputs, built once per revision of the facts (see
    /// [`AuthzFacts::revision`]).
    prepared: Prepared,
    /// The principal's attribute and tag names the `hold` policies read, when that is bounded
    /// (see [`crate::footprint`]).
    hold_reads: Option<BTreeSet<String>>,
}

/// How many prepared questions [`Prepared`] keeps before it starts again: a bound on memory.
const PREPARED: usize = 20_000;

/// Built Cedar inputs (request and entity store) of runtime questions, keyed by the revision
/// of the facts and the question's own text. Building them (entities and their transitive
/// closure, the schema-checked context) costs several times what evaluating them does.
#[derive(Default)]
struct Prepared(std::sync::Mutex<HashMap<String, std::sync::Arc<(Request, Entities)>>>);

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |m| m.len());
        write!(f, "Prepared({n} questions)")
    }
}

impl Clone for Prepared {
    /// A copy starts empty: what it would hold is rebuilt on demand.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Prepared {
    fn get(&self, key: &str) -> Option<std::sync::Arc<(Request, Entities)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    fn put(&self, key: String, inputs: std::sync::Arc<(Request, Entities)>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= PREPARED {
            map.clear();
        }
        map.insert(key, inputs);
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// Render a Cedar diagnostic as problems naming file and line.
fn diagnostic_problems(file: &str, text: &str, d: &dyn miette::Diagnostic, out: &mut Vec<Problem>) {
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message = format!("{message} ({help})");
    }
    let line = d.labels().and_then(|mut l| l.next()).map(|l| line_of(text, l.offset()));
    out.push(problem(file, line.map_or(String::new(), |l| format!("line {l}")), message));
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let t = EntityTypeName::from_str(kind).map_err(|e| format!("bad entity type `{kind}`: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn lit(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

impl Rules {
    /// Load the schema and the policies from the bundle's files; problems name file and line.
    pub(crate) fn load(
        files: &BTreeMap<String, Vec<u8>>,
        entitlements: &[EntitlementFacts<'_>],
        problems: &mut Vec<Problem>,
    ) -> Option<Self> {
        let start = problems.len();
        let mut fragments = Vec::new();
        match SchemaFragment::from_cedarschema_str(BASE_SCHEMA) {
            Ok((f, _)) => fragments.push(f),
            Err(e) => problems.push(problem("(built-in schema)", "", e.to_string())),
        }
        for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("schema/") && p.ends_with(".cedarschema")) {
            let Ok(text) = std::str::from_utf8(bytes) else {
                problems.push(problem(path, "", "expected UTF-8 text"));
                continue;
            };
            match SchemaFragment::from_cedarschema_str(text) {
                Ok((f, _)) => fragments.push(f),
                Err(e) => diagnostic_problems(path, text, &e, problems),
            }
        }
        let schema = match Schema::from_schema_fragments(fragments) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(problem("schema/", "", e.to_string()));
                None
            }
        };

        let mut policies = PolicySet::new();
        let mut obligations = HashMap::new();
        let mut reasons = HashMap::new();
        // Policy id → its file; the text is looked up in `files` when a diagnostic needs it
        // (a copy of the file per policy made memory grow with policies × file size).
        let mut texts: HashMap<String, String> = HashMap::new();
        if let Ok(p) = cedar_policy::Policy::parse(Some(PolicyId::new(HOLD_DEFAULT_ID)), HOLD_DEFAULT)
            && policies.add(p).is_err()
        {
            problems.push(problem("(built-in policies)", "", "cannot add the default hold rule"));
        }
        for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("policies/") && p.ends_with(".cedar")) {
            let Ok(text) = std::str::from_utf8(bytes) else {
                problems.push(problem(path, "", "expected UTF-8 text"));
                continue;
            };
            let set = match PolicySet::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    for err in e.iter() {
                        diagnostic_problems(path, text, err, problems);
                    }
                    continue;
                }
            };
            if set.templates().next().is_some() {
                problems.push(problem(path, "", "policy templates are not supported; write static policies"));
            }
            let stem = path.trim_start_matches("policies/").trim_end_matches(".cedar");
            let mut parsed: Vec<_> = set.policies().cloned().collect();
            // INVARIANT (order): `policy0`, `policy1`, … follow the file's order.
            parsed.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0));
            for (n, p) in parsed.into_iter().enumerate() {
                let id = p.annotation("id").map_or_else(|| format!("{stem}#{n}"), str::to_owned);
                let at = format!("policy `{id}`");
                for (key, _) in p.annotations() {
                    if !ANNOTATIONS.contains(&key) {
                        problems.push(problem(
                            path,
                            &at,
                            format!("unknown annotation `@{key}`; expected one of {}", ANNOTATIONS.join(", ")),
                        ));
                    }
                }
                match obligation(&p) {
                    Ok(Some(req)) => {
                        obligations.insert(id.clone(), req);
                    }
                    Ok(None) => {}
                    Err(m) => problems.push(problem(path, &at, m)),
                }
                if let Some(r) = p.annotation("reason") {
                    reasons.insert(id.clone(), r.to_owned());
                }
                if texts.insert(id.clone(), path.clone()).is_some() {
                    problems.push(problem(path, &at, "a policy with this @id is defined twice"));
                    continue;
                }
                if policies.add(p.new_id(PolicyId::new(&id))).is_err() {
                    problems.push(problem(path, &at, "cannot add this policy"));
                }
            }
        }

        let schema = schema?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        for e in result.validation_errors() {
            let id = e.policy_id().to_string();
            let file = texts.get(&id).cloned().unwrap_or_else(|| "(built-in policies)".into());
            let text = files.get(&file).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
            let line = miette::Diagnostic::labels(e).and_then(|mut l| l.next()).map(|l| line_of(text, l.offset()));
            let field = match line {
                Some(l) => format!("line {l}, policy `{id}`"),
                None => format!("policy `{id}`"),
            };
            let mut message = e.to_string();
            if let Some(help) = miette::Diagnostic::help(e) {
                message = format!("{message} ({help})");
            }
            problems.push(problem(&file, field, message));
        }

        let mut catalog = HashMap::new();
        let mut environments = HashMap::new();
        for e in entitlements {
            match entitlement_entities(e) {
                Ok(pair) => {
                    catalog.insert(e.id.to_owned(), pair);
                    environments.insert(e.id.to_owned(), e.environment.to_owned());
                }
                Err(m) => problems.push(problem("tenure.toml", format!("entitlements.\"{}\"", e.id), m)),
            }
        }
        if problems.len() > start {
            return None;
        }
        let mut systems: Vec<Entity> = catalog.values().map(|(_, sys)| sys.clone()).collect();
        dedup_entities(&mut systems);
        let types =
            match (EntityTypeName::from_str("Tenure::Identity"), EntityTypeName::from_str("Tenure::Entitlement")) {
                (Ok(identity), Ok(entitlement)) => Types { identity, entitlement },
                _ => {
                    problems.push(problem("(built-in schema)", "", "cannot name tenure's entity types"));
                    return None;
                }
            };
        let hold_policies = applying_to(&policies, &schema, "hold");
        let request_policies = applying_to(&policies, &schema, "request");
        let hold_reads = crate::footprint::principal_reads(&hold_policies);
        Some(Self {
            schema,
            policies,
            hold_policies,
            request_policies,
            types,
            catalog,
            systems,
            environments,
            obligations,
            reasons,
            prepared: Prepared::default(),
            hold_reads,
        })
    }

    /// The principal's attribute and tag names the `hold` policies can read, or `None` when
    /// that is not bounded.
    pub(crate) fn hold_reads(&self) -> Option<&BTreeSet<String>> {
        self.hold_reads.as_ref()
    }

    fn subject_entity(&self, subj: &Subject<'_>, manager: Option<&str>) -> Result<Entity, String> {
        let mut attrs: Vec<(String, RestrictedExpression)> = vec![
            ("kind".into(), lit(subj.kind.as_str())),
            ("human".into(), RestrictedExpression::new_bool(subj.kind == IdentityKind::Human)),
            ("source".into(), lit(subj.source)),
            ("state".into(), lit(subj.state.as_str())),
            ("name".into(), lit(subj.name)),
        ];
        if let Some(o) = subj.owner {
            attrs.push(("owner".into(), RestrictedExpression::new_entity_uid(uid("Tenure::Identity", o)?)));
        }
        if let Some(m) = manager {
            attrs.push(("manager".into(), RestrictedExpression::new_entity_uid(uid("Tenure::Identity", m)?)));
        }
        if let Some(p) = subj.purpose {
            attrs.push(("purpose".into(), lit(p)));
        }
        let parents = subj
            .holding
            .iter()
            .map(|e| EntityUid::from_type_name_and_id(self.types.entitlement.clone(), EntityId::new(e)));
        let tags = subj.attributes.iter().map(|(k, v)| (k.clone(), lit(v)));
        let me = EntityUid::from_type_name_and_id(self.types.identity.clone(), EntityId::new(subj.reference));
        Entity::new_with_tags(me, attrs, parents, tags).map_err(|e| e.to_string())
    }

    /// The entities of a question: the identities given (a manager reference is kept only when
    /// the manager is among them, so rules never see a dangling one), the resource and the
    /// entitlements held.
    fn entities<'a>(
        &self,
        subjects: impl IntoIterator<Item = &'a Subject<'a>>,
        manager_attribute: &str,
        extra: Vec<Entity>,
    ) -> Result<Entities, String> {
        let subjects: Vec<&Subject<'_>> = subjects.into_iter().collect();
        let known: BTreeSet<&str> = subjects.iter().map(|s| s.reference).collect();
        let mut all = extra;
        let mut seen = BTreeSet::new();
        let mut ents = BTreeSet::new();
        for s in &subjects {
            if !seen.insert(s.reference) {
                continue;
            }
            let manager = s.attributes.get(manager_attribute).map(String::as_str).filter(|m| known.contains(m));
            all.push(self.subject_entity(s, manager)?);
            ents.extend(s.holding.iter().map(String::as_str));
        }
        for e in ents {
            if let Some((ent, _)) = self.catalog.get(e) {
                all.push(ent.clone());
            }
        }
        all.extend(self.systems.iter().cloned());
        dedup_entities(&mut all);
        Entities::from_entities(all, None).map_err(|e| e.to_string())
    }

    /// The context sets every `hold` and `request` question carries: the entitlements held (as
    /// entity references) and their environments.
    fn holding_sets(&self, holding: &BTreeSet<String>) -> (Vec<RestrictedExpression>, Vec<RestrictedExpression>) {
        let entitlements = holding
            .iter()
            .map(|e| {
                RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
                    self.types.entitlement.clone(),
                    EntityId::new(e),
                ))
            })
            .collect();
        let environments: BTreeSet<&String> =
            holding.iter().filter_map(|e| self.environments.get(e)).filter(|e| !e.is_empty()).collect();
        (entitlements, environments.into_iter().map(|e| lit(e)).collect())
    }

    fn evaluate(&self, set: &PolicySet, request: &Request, entities: &Entities, version: &str) -> Decision {
        let response = Authorizer::new().is_authorized(request, set, entities);
        // Cedar names them in no fixed order; sorted, the same decision reads (and is recorded)
        // the same every time.
        let mut policies: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        policies.sort_unstable();
        let mut errors: Vec<String> = response.diagnostics().errors().map(ToString::to_string).collect();
        errors.sort_unstable();
        let reasons = policies.iter().filter_map(|p| self.reasons.get(p).cloned()).collect();
        let decision = match response.decision() {
            // An evaluation error anywhere could have hidden a forbid: fail closed.
            cedar_policy::Decision::Allow if errors.is_empty() => Verdict::Allow,
            _ => Verdict::Deny,
        };
        Decision { decision, policies, reasons, errors, approval: None, policy_version: version.to_owned() }
    }

    fn error_decision(version: &str, error: String) -> Decision {
        Decision {
            decision: Verdict::Deny,
            policies: vec![],
            reasons: vec![],
            errors: vec![error],
            approval: None,
            policy_version: version.to_owned(),
        }
    }

    /// May `subject` hold `entitlement`, given `subject.holding` (which includes it)?
    pub(crate) fn hold(
        &self,
        subject: &Subject<'_>,
        entitlement: &str,
        origin: &str,
        manager_attribute: &str,
        version: &str,
    ) -> Decision {
        self.hold_all(subject, &[(entitlement, origin)], manager_attribute, version)
            .pop()
            .unwrap_or_else(|| Self::error_decision(version, "no decision".into()))
    }

    /// [`Rules::hold`] for several entitlements of one subject (whose `holding` includes them
    /// all), sharing the entity store and the context's sets between the evaluations.
    pub(crate) fn hold_all(
        &self,
        subject: &Subject<'_>,
        items: &[(&str, &str)],
        manager_attribute: &str,
        version: &str,
    ) -> Vec<Decision> {
        let shared = || -> Result<_, String> {
            let (holding, envs) = self.holding_sets(subject.holding);
            let entities = self.entities([subject], manager_attribute, vec![])?;
            let principal = uid("Tenure::Identity", subject.reference)?;
            let action = uid("Tenure::Action", "hold")?;
            Ok((holding, envs, entities, principal, action))
        };
        let (holding, envs, entities, principal, action) = match shared() {
            Ok(s) => s,
            Err(e) => return items.iter().map(|_| Self::error_decision(version, e.clone())).collect(),
        };
        // One context per distinct origin (usually all birthright).
        let mut contexts: HashMap<&str, Result<Context, String>> = HashMap::new();
        items
            .iter()
            .map(|(entitlement, origin)| {
                let context = contexts.entry(origin).or_insert_with(|| {
                    Context::from_pairs([
                        ("origin".to_owned(), lit(origin)),
                        ("holding".to_owned(), RestrictedExpression::new_set(holding.clone())),
                        ("environments".to_owned(), RestrictedExpression::new_set(envs.clone())),
                    ])
                    .map_err(|e| e.to_string())
                });
                let run = || -> Result<Decision, String> {
                    let context = context.clone()?;
                    let resource =
                        EntityUid::from_type_name_and_id(self.types.entitlement.clone(), EntityId::new(entitlement));
                    let request = Request::new(principal.clone(), action.clone(), resource, context, None)
                        .map_err(|e| e.to_string())?;
                    Ok(self.evaluate(&self.hold_policies, &request, &entities, version))
                };
                run().unwrap_or_else(|e| Self::error_decision(version, e))
            })
            .collect()
    }

    /// What a request needs: deny, allow, or the approvals of the permit rules that allowed it.
    pub(crate) fn request(&self, q: &RequestFacts<'_>, manager_attribute: &str, version: &str) -> Decision {
        let run = || -> Result<Decision, String> {
            let (holding, envs) = self.holding_sets(q.beneficiary.holding);
            let context = Context::from_pairs([
                (
                    "requester".to_owned(),
                    RestrictedExpression::new_entity_uid(uid("Tenure::Identity", q.requester.reference)?),
                ),
                ("kind".to_owned(), lit(q.kind.as_str())),
                ("intent".to_owned(), lit(q.intent)),
                ("duration_minutes".to_owned(), RestrictedExpression::new_long(q.duration_minutes)),
                ("holding".to_owned(), RestrictedExpression::new_set(holding)),
                ("environments".to_owned(), RestrictedExpression::new_set(envs)),
            ])
            .map_err(|e| e.to_string())?;
            let request = Request::new(
                uid("Tenure::Identity", q.beneficiary.reference)?,
                uid("Tenure::Action", "request")?,
                uid("Tenure::Entitlement", q.entitlement)?,
                context,
                None,
            )
            .map_err(|e| e.to_string())?;
            let subjects = std::iter::once(&q.beneficiary).chain(std::iter::once(&q.requester)).chain(q.related.iter());
            let entities = self.entities(subjects, manager_attribute, vec![])?;
            let mut d = self.evaluate(&self.request_policies, &request, &entities, version);
            if d.decision == Verdict::Allow {
                let mut need = Requirement::none();
                for p in &d.policies {
                    if let Some(o) = self.obligations.get(p) {
                        need.and(o);
                    }
                }
                if !need.is_none() {
                    need.count = need.count.max(1);
                    d.decision = Verdict::NeedsApproval;
                    d.approval = Some(need);
                }
            } else if d.policies.is_empty() && d.errors.is_empty() {
                d.reasons.push("no rule permits this request".into());
            }
            Ok(d)
        };
        run().unwrap_or_else(|e| Self::error_decision(version, e))
    }

    /// Runtime authorization. Malformed questions (unknown action or resource type, a context
    /// or resource that does not match the schema) are input errors, not decisions.
    pub(crate) fn authorize(
        &self,
        q: &AuthzFacts<'_>,
        manager_attribute: &str,
        version: &str,
    ) -> Result<Decision, AuthzInputError> {
        let key = q.revision.map(|rev| {
            let resource = serde_json::to_string(q.resource).unwrap_or_default();
            format!("{rev}\u{0}{}\u{0}{resource}\u{0}{}", q.action, q.context)
        });
        let inputs = match key.as_deref().and_then(|k| self.prepared.get(k)) {
            Some(inputs) => inputs,
            None => {
                let inputs = std::sync::Arc::new(self.authorize_inputs(q, manager_attribute)?);
                if let Some(k) = key {
                    self.prepared.put(k, inputs.clone());
                }
                inputs
            }
        };
        if q.principal.state != LifecycleState::Active {
            return Ok(Decision::deny(
                version,
                LIFECYCLE_CUTOFF,
                format!("`{}` is {}; only active identities are authorized", q.principal.reference, q.principal.state),
            ));
        }
        Ok(self.evaluate(&self.policies, &inputs.0, &inputs.1, version))
    }

    /// The Cedar request and entity store of a runtime authorization question: what
    /// [`Rules::authorize`] evaluates against [`Rules::policy_set`].
    pub fn authorize_inputs(
        &self,
        q: &AuthzFacts<'_>,
        manager_attribute: &str,
    ) -> Result<(Request, Entities), AuthzInputError> {
        let bad = |field: &'static str, message: String| AuthzInputError { field, message };
        let action = if q.action.contains("::") {
            EntityUid::from_str(q.action).map_err(|e| bad("action", e.to_string()))?
        } else {
            uid("Tenure::Action", q.action).map_err(|m| bad("action", m))?
        };
        if self.schema.actions().all(|a| a != &action) {
            return Err(bad("action", format!("unknown action `{action}`")));
        }
        let r = q.resource;
        let (resource, extra) = match r.kind.as_str() {
            "Tenure::Entitlement" => {
                let (ent, _) = self
                    .catalog
                    .get(&r.id)
                    .ok_or_else(|| bad("resource.id", format!("unknown entitlement `{}`", r.id)))?;
                (ent.uid(), vec![ent.clone()])
            }
            "Tenure::Identity" => {
                if !q.related.iter().any(|s| s.reference == r.id) {
                    return Err(bad("resource.id", format!("unknown identity `{}`", r.id)));
                }
                (uid("Tenure::Identity", &r.id).map_err(|m| bad("resource.id", m))?, vec![])
            }
            "Tenure::Resource" => {
                let u = uid("Tenure::Resource", &r.id).map_err(|m| bad("resource.id", m))?;
                let kind = r.attributes.get("type").and_then(|v| v.as_str()).unwrap_or("").to_owned();
                let e = Entity::new_with_tags(
                    u.clone(),
                    [("type".to_owned(), lit(&kind))],
                    [],
                    r.tags.iter().map(|(k, v)| (k.clone(), lit(v))),
                )
                .map_err(|e| bad("resource", e.to_string()))?;
                (u, vec![e])
            }
            other => {
                let json = serde_json::json!([{
                    "uid": { "type": other, "id": r.id },
                    "attrs": r.attributes,
                    "parents": [],
                }]);
                let parsed =
                    Entities::from_json_value(json, Some(&self.schema)).map_err(|e| bad("resource", e.to_string()))?;
                let u = uid(other, &r.id).map_err(|m| bad("resource.type", m))?;
                (u, parsed.iter().cloned().collect())
            }
        };
        let context = Context::from_json_value(q.context.clone(), Some((&self.schema, &action)))
            .map_err(|e| bad("context", e.to_string()))?;
        let principal = uid("Tenure::Identity", q.principal.reference).map_err(|m| bad("principal", m))?;
        let request = Request::new(principal, action, resource, context, Some(&self.schema))
            .map_err(|e| bad("request", e.to_string()))?;
        let subjects = std::iter::once(&q.principal).chain(q.related.iter());
        let entities = self.entities(subjects, manager_attribute, extra).map_err(|m| bad("principal", m))?;
        Ok((request, entities))
    }

    /// Every policy tenure evaluates: the bundle's and the built-in default hold rule.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// Ids of every policy, for listings.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies.policies().map(|p| p.id().to_string()).collect()
    }
}

/// The policies whose action scope can match `Tenure::Action::"name"`: unconstrained ones,
/// those naming it, and those naming an action group (which might contain it).
fn applying_to(all: &PolicySet, schema: &Schema, name: &str) -> PolicySet {
    let Ok(action) = uid("Tenure::Action", name) else { return all.clone() };
    let groups: BTreeSet<String> = schema.action_groups().map(ToString::to_string).collect();
    let mut out = PolicySet::new();
    for p in all.policies() {
        let applies = match p.action_constraint() {
            cedar_policy::ActionConstraint::Any => true,
            cedar_policy::ActionConstraint::Eq(a) => a == action,
            cedar_policy::ActionConstraint::In(list) => {
                list.iter().any(|a| a == &action || groups.contains(&a.to_string()))
            }
        };
        if applies && out.add(p.clone()).is_err() {
            return all.clone();
        }
    }
    out
}

fn dedup_entities(all: &mut Vec<Entity>) {
    let mut seen = std::collections::HashSet::new();
    all.retain(|e| seen.insert(e.uid()));
}

fn entitlement_entities(e: &EntitlementFacts<'_>) -> Result<(Entity, Entity), String> {
    let sys_uid = uid("Tenure::System", e.system)?;
    let system = Entity::new_no_attrs(sys_uid.clone(), std::collections::HashSet::new());
    let ent = Entity::new(
        uid("Tenure::Entitlement", e.id)?,
        [
            ("system".to_owned(), lit(e.system)),
            ("privileged".to_owned(), RestrictedExpression::new_bool(e.privileged)),
            ("human_only".to_owned(), RestrictedExpression::new_bool(e.human_only)),
            ("environment".to_owned(), lit(e.environment)),
        ]
        .into_iter()
        .collect(),
        [sys_uid].into_iter().collect(),
    )
    .map_err(|e| e.to_string())?;
    Ok((ent, system))
}

/// A permit rule's approval obligation from `@approve("role, role")` and `@approvals("N")`.
fn obligation(p: &cedar_policy::Policy) -> Result<Option<Requirement>, String> {
    let approve = p.annotation("approve");
    let approvals = p.annotation("approvals");
    if approve.is_none() && approvals.is_none() {
        return Ok(None);
    }
    if p.effect() != cedar_policy::Effect::Permit {
        return Err("`@approve` and `@approvals` belong on permit rules".into());
    }
    let mut roles = BTreeSet::new();
    for r in approve.unwrap_or("").split(',').map(str::trim).filter(|r| !r.is_empty()) {
        roles.insert(r.parse::<ApproverRole>().map_err(|e| format!("@approve: {e}"))?);
    }
    let count = match approvals {
        None => 1,
        Some(n) => match n.trim().parse::<u32>() {
            Ok(n) if (1..=10).contains(&n) => n,
            _ => return Err(format!("@approvals: expected a number from 1 to 10, found `{n}`")),
        },
    };
    if roles.is_empty() && approvals.is_some() {
        return Err("`@approvals` needs `@approve` to say who approves".into());
    }
    Ok(Some(Requirement { roles, count }))
}
