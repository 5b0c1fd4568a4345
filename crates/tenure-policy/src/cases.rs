//! A bundle's own test cases, in `tests/*.toml`: named identity fixtures, then cases that say
//! what policy must answer: the entitlements an identity gets (after guardrails), what a request
//! needs, or how a runtime authorization is decided. Cases run through the same functions the
//! engine uses, so a passing case is a statement about production behaviour.
//!
//! ```toml
//! [identities.grace]
//! kind = "human"
//! source = "hr"
//! attributes = { department = "engineering", employment = "employee", manager = "test:ada" }
//!
//! [[case]]
//! name = "engineers get the source code"
//! identity = "grace"
//! expect_birthright = ["corp-directory/engineering", "corp-directory/source-code"]
//!
//! [[case]]
//! name = "production access needs two approvers"
//! request = { beneficiary = "grace", entitlement = "corp-directory/prod-admin", kind = "jit", intent = "incident 42", duration_minutes = 60 }
//! expect = "needs_approval"
//! expect_approvals = 2
//!
//! [[case]]
//! name = "a hand-made entry carrying Grace's HR id is hers"
//! correlate = { system = "corp-directory", account = "grace-admin", attributes = { employeeNumber = "grace" } }
//! expect_identity = "grace"
//!
//! [[case]]
//! name = "an HR export's row maps to a person"
//! map = { source = "bamboohr", record = { "Employee #" = "B1", "First Name" = "Mary", "Status" = "Active" } }
//! expect_mapped = { external_id = "B1", name = "Mary", status = "active", attributes = { department = "engineering" } }
//! # or: expect_error = "Status: `Away` is neither …" (the start of the message)
//!
//! [[case]]
//! name = "Grace's directory entry"
//! provision = { system = "corp-directory", identity = "grace" }   # account, manager_account optional
//! expect_attributes = { mail = "grace.hopper@example.com", manager = "E1000", departmentNumber = false }
//! ```

use crate::bundle::{Bundle, Held};
use crate::error::{BundleError, Problem, problem};
use crate::rules::{AuthzFacts, Decision, RequestFacts, ResourceSpec, Subject};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use tenure_model::{IdentityKind, LifecycleState, RequestKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    identities: BTreeMap<String, Fixture>,
    #[serde(default)]
    case: Vec<CaseSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[serde(rename = "ref")]
    reference: Option<String>,
    kind: String,
    source: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    /// What it holds; by default, what policy gives it.
    #[serde(default)]
    holding: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSection {
    name: String,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    expect_birthright: Option<BTreeSet<String>>,
    #[serde(default)]
    expect_blocked: Option<BTreeSet<String>>,
    #[serde(default)]
    request: Option<RequestCase>,
    #[serde(default)]
    authorize: Option<AuthzCase>,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    expect_approvers: Option<BTreeSet<String>>,
    #[serde(default)]
    expect_approvals: Option<u32>,
    #[serde(default)]
    expect_policies: Option<BTreeSet<String>>,
    /// An account read from a system, to correlate with the fixtures.
    #[serde(default)]
    correlate: Option<CorrelateCase>,
    /// The fixture the account correlates to, or `none`.
    #[serde(default)]
    expect_identity: Option<String>,
    /// A source's own record, through its mapping.
    #[serde(default)]
    map: Option<MapCase>,
    /// What the record maps to (only the fields given are compared).
    #[serde(default)]
    expect_mapped: Option<ExpectMapped>,
    /// The mapping refuses the record: `COLUMN: message` starts with this.
    #[serde(default)]
    expect_error: Option<String>,
    /// What a fixture's account in a system carries by its attribute mappings.
    #[serde(default)]
    provision: Option<ProvisionCase>,
    /// The targets given, with their values (a string, a list, or `false`: not set).
    #[serde(default)]
    expect_attributes: Option<BTreeMap<String, Expected>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionCase {
    system: String,
    identity: String,
    /// The account's name (default: the fixture's external id).
    #[serde(default)]
    account: Option<String>,
    /// The manager's account there (default: the manager fixture's external id, when the
    /// manager is a fixture).
    #[serde(default)]
    manager_account: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expected {
    One(String),
    Many(Vec<String>),
    Unset(bool),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapCase {
    source: String,
    record: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectMapped {
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// `active`, `leave` or `suspend`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    /// Exactly these attributes.
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrelateCase {
    system: String,
    account: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestCase {
    beneficiary: String,
    #[serde(default)]
    requester: Option<String>,
    entitlement: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    duration_minutes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthzCase {
    principal: String,
    action: String,
    resource: ResourceSpec,
    #[serde(default)]
    context: Option<toml::Value>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    /// Each line: what was expected and what policy answered. Empty when the case passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// An identity fixture, owned.
struct Owned {
    reference: String,
    kind: IdentityKind,
    source: String,
    state: LifecycleState,
    name: String,
    attributes: BTreeMap<String, String>,
    owner: Option<String>,
    purpose: Option<String>,
    holding: BTreeSet<String>,
}

impl Owned {
    fn subject(&self) -> Subject<'_> {
        Subject {
            reference: &self.reference,
            kind: self.kind,
            source: &self.source,
            state: self.state,
            name: &self.name,
            attributes: &self.attributes,
            owner: self.owner.as_deref(),
            purpose: self.purpose.as_deref(),
            holding: &self.holding,
        }
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "nothing".into() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}

/// Run every case of the bundle. Malformed case files are problems (naming file and field).
pub fn run(bundle: &Bundle) -> Result<Vec<CaseResult>, BundleError> {
    let mut problems = Vec::new();
    let mut results = Vec::new();
    for (path, bytes) in bundle.files.iter().filter(|(p, _)| p.starts_with("tests/") && p.ends_with(".toml")) {
        let file: CaseFile = match std::str::from_utf8(bytes).map_err(|e| e.to_string()).and_then(|t| {
            toml::from_str(t).map_err(|e| {
                let line = e.span().map(|r| t.get(..r.start).map_or(0, |x| x.matches('\n').count()) + 1);
                format!("{}{}", e.message(), line.map_or(String::new(), |l| format!(" (line {l})")))
            })
        }) {
            Ok(f) => f,
            Err(m) => {
                problems.push(problem(path, "", m));
                continue;
            }
        };
        let fixtures = match fixtures(bundle, path, &file.identities) {
            Ok(f) => f,
            Err(mut p) => {
                problems.append(&mut p);
                continue;
            }
        };
        for (i, c) in file.case.iter().enumerate() {
            match run_case(bundle, &fixtures, c) {
                Ok(failures) => results.push(CaseResult { file: path.clone(), name: c.name.clone(), failures }),
                Err(m) => problems.push(problem(path, format!("case[{i}] `{}`", c.name), m)),
            }
        }
    }
    if problems.is_empty() { Ok(results) } else { Err(BundleError { problems }) }
}

fn fixtures(
    bundle: &Bundle,
    path: &str,
    raw: &BTreeMap<String, Fixture>,
) -> Result<BTreeMap<String, Owned>, Vec<Problem>> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, f) in raw {
        let field = format!("identities.{key}");
        let kind = match f.kind.parse::<IdentityKind>() {
            Ok(k) => k,
            Err(e) => {
                problems.push(problem(path, format!("{field}.kind"), e));
                continue;
            }
        };
        let state = match f.state.as_deref().unwrap_or("active").parse::<LifecycleState>() {
            Ok(s) => s,
            Err(e) => {
                problems.push(problem(path, format!("{field}.state"), e));
                continue;
            }
        };
        let mut o = Owned {
            reference: f.reference.clone().unwrap_or_else(|| format!("test:{key}")),
            kind,
            source: f.source.clone(),
            state,
            name: f.name.clone().unwrap_or_else(|| key.clone()),
            attributes: f.attributes.clone(),
            owner: f.owner.clone(),
            purpose: f.purpose.clone(),
            holding: BTreeSet::new(),
        };
        o.holding = match &f.holding {
            Some(h) => {
                for e in h.iter().filter(|e| bundle.entitlement(e).is_none()) {
                    problems.push(problem(path, format!("{field}.holding"), format!("unknown entitlement `{e}`")));
                }
                h.iter().cloned().collect()
            }
            None => bundle.desired(&o.subject(), &[]).grants.keys().cloned().collect(),
        };
        out.insert(key.clone(), o);
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

fn fixture<'a>(all: &'a BTreeMap<String, Owned>, key: &str) -> Result<&'a Owned, String> {
    all.get(key).ok_or_else(|| format!("unknown identity `{key}` (define it under [identities.{key}])"))
}

fn related<'a>(all: &'a BTreeMap<String, Owned>) -> Vec<Subject<'a>> {
    all.values().map(Owned::subject).collect()
}

/// Which fixtures an account correlates to under its system's rules (what reconciliation does
/// with an account tenure did not make).
fn run_correlate(
    bundle: &Bundle,
    all: &BTreeMap<String, Owned>,
    c: &CaseSection,
    k: &CorrelateCase,
) -> Result<Vec<String>, String> {
    if c.identity.is_some() || c.request.is_some() || c.authorize.is_some() {
        return Err("a case has exactly one of identity, request, authorize, correlate".into());
    }
    let system =
        bundle.systems.get(&k.system).ok_or_else(|| format!("correlate.system: unknown system `{}`", k.system))?;
    let rules = &system.reconcile.correlate;
    if rules.is_empty() {
        return Err(format!("correlate.system: `{}` has no [[systems.{}.correlate]] rules", k.system, k.system));
    }
    let want = c.expect_identity.as_deref().ok_or("a correlate case needs expect_identity (a fixture, or none)")?;
    if want != "none" {
        fixture(all, want)?;
    }
    let attributes: BTreeMap<String, String> =
        k.attributes.iter().map(|(a, v)| (a.to_ascii_lowercase(), v.clone())).collect();
    let got: BTreeSet<&str> = all
        .iter()
        .filter(|(_, o)| {
            rules.iter().any(|r| {
                match (r.identity_value(&o.reference, &o.attributes), r.account_value(&k.account, &attributes)) {
                    (Some(i), Some(a)) => r.key(i) == r.key(a),
                    _ => false,
                }
            })
        })
        .map(|(key, _)| key.as_str())
        .collect();
    let expected: BTreeSet<&str> = if want == "none" { BTreeSet::new() } else { [want].into() };
    Ok(if got == expected {
        Vec::new()
    } else {
        let shown = if got.is_empty() { "nobody".to_owned() } else { got.into_iter().collect::<Vec<_>>().join(", ") };
        vec![format!("correlation: expected {want}; the rules of `{}` match {shown}", k.system)]
    })
}

/// What a source's mapping makes of one of its records.
fn run_map(bundle: &Bundle, c: &CaseSection, m: &MapCase) -> Result<Vec<String>, String> {
    if c.identity.is_some() || c.request.is_some() || c.authorize.is_some() || c.correlate.is_some() {
        return Err("a case has exactly one of identity, request, authorize, correlate, map".into());
    }
    let source = bundle.sources.get(&m.source).ok_or_else(|| format!("map.source: unknown source `{}`", m.source))?;
    let mapping = source
        .mapping
        .as_ref()
        .ok_or_else(|| format!("map.source: `{}` has no [sources.{}.mapping]", m.source, m.source))?;
    let got = mapping.map(&m.source, &bundle.access.manager_attribute, &m.record);
    let mut failures = Vec::new();
    match (got, &c.expect_mapped, &c.expect_error) {
        (Ok(_), None, None) | (Err(_), None, None) => {
            return Err("a map case needs expect_mapped or expect_error".into());
        }
        (Ok(got), Some(want), _) => {
            let mut check = |what: &str, want: Option<String>, got: Option<String>| {
                if let Some(w) = want
                    && Some(&w) != got.as_ref()
                {
                    failures.push(format!("{what}: expected `{w}`, the mapping gives `{}`", got.unwrap_or_default()));
                }
            };
            check("external_id", want.external_id.clone(), Some(got.external_id.clone()));
            check("kind", want.kind.clone(), Some(got.kind.as_str().to_owned()));
            check("name", want.name.clone(), got.name.clone());
            check("status", want.status.clone(), Some(got.status.as_str().to_owned()));
            check("expires_at", want.expires_at.clone(), got.expires_at.map(tenure_model::rfc3339));
            if let Some(a) = &want.attributes
                && a != &got.attributes
            {
                failures.push(format!("attributes: expected {a:?}, the mapping gives {:?}", got.attributes));
            }
        }
        (Ok(got), None, Some(e)) => failures.push(format!("expected the error `{e}…`, the mapping gives {got:?}")),
        (Err(got), _, Some(e)) => {
            let shown = format!("{}: {}", got.field, got.message);
            if !shown.starts_with(e.as_str()) {
                failures.push(format!("expected the error `{e}…`, the mapping says `{shown}`"));
            }
        }
        (Err(got), Some(_), None) => {
            failures.push(format!("the mapping refuses the record: {}: {}", got.field, got.message))
        }
    }
    Ok(failures)
}

/// What a fixture's account carries by a system's attribute mappings.
fn run_provision(
    bundle: &Bundle,
    all: &BTreeMap<String, Owned>,
    c: &CaseSection,
    p: &ProvisionCase,
) -> Result<Vec<String>, String> {
    use crate::attributes::{Inputs, Value};
    if c.identity.is_some() || c.request.is_some() || c.authorize.is_some() || c.correlate.is_some() {
        return Err("a case has exactly one of identity, request, authorize, correlate, map, provision".into());
    }
    let system =
        bundle.systems.get(&p.system).ok_or_else(|| format!("provision.system: unknown system `{}`", p.system))?;
    let want = c.expect_attributes.as_ref().ok_or("a provision case needs expect_attributes")?;
    let o = fixture(all, &p.identity)?;
    let external_id = o.reference.split_once(':').map_or(o.reference.as_str(), |(_, e)| e);
    let manager = p.manager_account.clone().or_else(|| {
        let m = o.attributes.get(&bundle.access.manager_attribute)?;
        let f = all.values().find(|f| &f.reference == m)?;
        Some(f.reference.split_once(':').map_or(f.reference.clone(), |(_, e)| e.to_owned()))
    });
    let got = system.attributes.values(&Inputs {
        kind: o.kind,
        source: &o.source,
        external_id,
        name: &o.name,
        attributes: &o.attributes,
        account: p.account.as_deref().unwrap_or(external_id),
        manager_account: manager.as_deref(),
    });
    let mut failures = Vec::new();
    for (target, w) in want {
        let w: Vec<String> = match w {
            Expected::One(v) => vec![v.clone()],
            Expected::Many(v) => v.clone(),
            Expected::Unset(false) => vec![],
            Expected::Unset(true) => {
                return Err(format!("expect_attributes.{target}: expected a value, a list or false"));
            }
        };
        let g: Vec<String> = got
            .get(target)
            .map(|vs| {
                vs.iter()
                    .map(|v| match v {
                        Value::Text(t) | Value::Account(t) => t.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if g != w {
            failures.push(format!("`{target}` in `{}`: expected {w:?}, the mapping gives {g:?}", p.system));
        }
    }
    Ok(failures)
}

fn run_case(bundle: &Bundle, all: &BTreeMap<String, Owned>, c: &CaseSection) -> Result<Vec<String>, String> {
    if let Some(p) = &c.provision {
        return run_provision(bundle, all, c, p);
    }
    if let Some(m) = &c.map {
        return run_map(bundle, c, m);
    }
    if let Some(k) = &c.correlate {
        return run_correlate(bundle, all, c, k);
    }
    let mut failures = Vec::new();
    let decision: Option<Decision> = match (&c.identity, &c.request, &c.authorize) {
        (Some(key), None, None) => {
            let o = fixture(all, key)?;
            let extra: Vec<Held<'_>> = vec![];
            let d = bundle.desired(&o.subject(), &extra);
            let got: BTreeSet<String> = d.grants.keys().cloned().collect();
            let blocked: BTreeSet<String> = d.blocked.keys().cloned().collect();
            if c.expect_birthright.is_none() && c.expect_blocked.is_none() {
                return Err("an identity case needs expect_birthright or expect_blocked".into());
            }
            if let Some(want) = &c.expect_birthright
                && want != &got
            {
                failures.push(format!("birthright: expected {}; policy gives {}", list(want), list(&got)));
            }
            if let Some(want) = &c.expect_blocked
                && want != &blocked
            {
                failures.push(format!("blocked: expected {}; guardrails block {}", list(want), list(&blocked)));
            }
            None
        }
        (None, Some(r), None) => {
            let beneficiary = fixture(all, &r.beneficiary)?;
            let requester = fixture(all, r.requester.as_deref().unwrap_or(&r.beneficiary))?;
            if bundle.entitlement(&r.entitlement).is_none() {
                return Err(format!("unknown entitlement `{}`", r.entitlement));
            }
            let kind = r.kind.as_deref().unwrap_or("access").parse::<RequestKind>()?;
            Some(bundle.decide_request(&RequestFacts {
                beneficiary: beneficiary.subject(),
                requester: requester.subject(),
                related: related(all),
                entitlement: &r.entitlement,
                kind,
                intent: &r.intent,
                duration_minutes: r.duration_minutes,
            }))
        }
        (None, None, Some(a)) => {
            let principal = fixture(all, &a.principal)?;
            let context = match &a.context {
                Some(v) => serde_json::to_value(v).map_err(|e| format!("context: {e}"))?,
                None => serde_json::json!({}),
            };
            let mut resource = a.resource.clone();
            if resource.kind == "Tenure::Identity" {
                resource.id = fixture(all, &resource.id)?.reference.clone();
            }
            let d = bundle
                .authorize(&AuthzFacts {
                    principal: principal.subject(),
                    related: related(all),
                    action: &a.action,
                    resource: &resource,
                    context: &context,
                    revision: None,
                })
                .map_err(|e| e.to_string())?;
            Some(d)
        }
        _ => return Err("a case has exactly one of identity, request, authorize, correlate".into()),
    };
    if let Some(d) = decision {
        let Some(want) = &c.expect else {
            return Err("a request or authorize case needs `expect` (allow, deny or needs_approval)".into());
        };
        if want != d.decision.as_str() {
            let why = if d.policies.is_empty() { String::new() } else { format!(" (by {})", d.policies.join(", ")) };
            let errors = if d.errors.is_empty() { String::new() } else { format!("; errors: {}", d.errors.join("; ")) };
            failures.push(format!("decision: expected {want}; policy says {}{why}{errors}", d.decision.as_str()));
        }
        if let Some(want) = &c.expect_approvers {
            let got: BTreeSet<String> = d
                .approval
                .as_ref()
                .map(|a| a.roles.iter().map(|r| r.as_str().to_owned()).collect())
                .unwrap_or_default();
            if want != &got {
                failures.push(format!("approvers: expected {}; policy asks {}", list(want), list(&got)));
            }
        }
        if let Some(want) = c.expect_approvals {
            let got = d.approval.as_ref().map_or(0, |a| a.count);
            if want != got {
                failures.push(format!("approvals: expected {want}; policy asks {got}"));
            }
        }
        if let Some(want) = &c.expect_policies {
            let got: BTreeSet<String> = d.policies.iter().cloned().collect();
            if !want.is_subset(&got) {
                failures.push(format!("policies: expected {}; determined by {}", list(want), list(&got)));
            }
        }
    }
    Ok(failures)
}
