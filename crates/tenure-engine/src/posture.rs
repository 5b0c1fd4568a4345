//! The posture report: tenure's own state measured against the OWASP Non-Human Identities
//! Top 10 (2025), NIST CSF 2.0's identity subcategories (`PR.AA`) and the NIST AI RMF's four
//! functions. Every check says what it computed and from which data; a failing one lists what
//! makes it fail, each item pointing at the identity, the ledger entry (`tenure ledger prove`)
//! or the open finding behind it. What tenure cannot see is `n/a` with the reason, never a
//! pass. Snapshots (one a day by the clock, or `tenure posture --save`) give each check a trend.

use crate::{Engine, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_ledger::LedgerEvent;
use tenure_model::{IdentityKind, LifecycleState, rfc3339};
use tenure_policy::Bundle;
use tenure_proto::posture::{Evidence, PostureCheck, PostureReport, PostureSection, TrendPoint};
use tenure_store::{CredentialRow, FindingRow, GrantRow, IdentityRow, ReadTx, ReviewItemQuery, TokenRow};
use time::{Duration, OffsetDateTime};

/// A failing check lists at most this many items of evidence (`failing` counts them all).
pub const EVIDENCE_CAP: usize = 25;
/// How many snapshots a report's trend goes back.
pub const TREND: usize = 30;
/// Static secrets and live credentials older than this are long-lived (NHI4, NHI7).
const LONG_LIVED: Duration = Duration::days(90);
/// Privileged access unreviewed for longer than this fails NHI5 and PR.AA-05.
const REVIEW_WINDOW: Duration = Duration::days(90);
/// Closed leavers whose closure time is measured (the most recently changed).
const CLOSURE_SAMPLE: usize = 500;

impl Engine {
    /// The posture report as of now, with each check's trend from the kept snapshots.
    pub fn posture(&self) -> Result<PostureReport> {
        let policy = self.current_policy()?;
        let tx = self.store.read()?;
        let mut report = compute(tx.as_ref(), &policy, self.clock.now())?;
        let snapshots = tx.posture_snapshots(TREND)?;
        for check in report.sections.iter_mut().flat_map(|s| s.checks.iter_mut()) {
            check.trend = snapshots
                .iter()
                .rev()
                .filter_map(|(at, snap)| {
                    let c = snap.get("checks")?.get(&check.id)?;
                    Some(TrendPoint {
                        // The report's own time (the row's is the store's, to microseconds).
                        at: snap.get("at").and_then(|a| a.as_str()).map_or_else(|| rfc3339(*at), str::to_owned),
                        status: c.get("status")?.as_str()?.to_owned(),
                        failing: c.get("failing")?.as_u64()?,
                    })
                })
                .collect();
        }
        Ok(report)
    }

    /// Compute the report and keep a snapshot of it (each check's status and failing count).
    pub fn save_posture(&self) -> Result<PostureReport> {
        let report = self.posture()?;
        let at = self.clock.now();
        let checks: serde_json::Map<String, serde_json::Value> = report
            .sections
            .iter()
            .flat_map(|s| &s.checks)
            .map(|c| (c.id.clone(), serde_json::json!({ "status": c.status, "failing": c.failing })))
            .collect();
        let mut tx = self.store.write()?;
        tx.put_posture_snapshot(
            at,
            &serde_json::json!({ "at": report.at, "policy_version": report.policy_version, "checks": checks }),
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// The clock's daily snapshot: taken when the last one is a day old (or there is none).
    pub(crate) fn posture_due(&self, now: OffsetDateTime) -> Result<Option<String>> {
        let last = self.store.read()?.posture_snapshots(1)?;
        if last.first().is_some_and(|(at, _)| now - *at < Duration::days(1)) {
            return Ok(None);
        }
        let r = self.save_posture()?;
        let failing = r.summary.get("fail").copied().unwrap_or(0);
        Ok(Some(format!("snapshot: {failing} checks failing")))
    }
}

/// What every check reads, loaded once on one snapshot of the store.
struct World<'a> {
    policy: &'a Bundle,
    now: OffsetDateTime,
    identities: Vec<IdentityRow>,
    by_id: HashMap<i64, usize>,
    by_ref: HashMap<String, usize>,
    grants: BTreeMap<i64, Vec<GrantRow>>,
    credentials: Vec<CredentialRow>,
    tokens: Vec<TokenRow>,
    findings: Vec<FindingRow>,
    /// Per grant: when a review last decided it.
    reviewed: HashMap<i64, OffsetDateTime>,
    /// Review decisions: by a person, and by the no-answer default.
    decided_by_people: u64,
    decided_by_default: u64,
    rubber_stamping: Vec<String>,
}

impl World<'_> {
    fn identity(&self, id: i64) -> Option<&IdentityRow> {
        self.by_id.get(&id).and_then(|i| self.identities.get(*i))
    }

    fn owner_active_human(&self, i: &IdentityRow) -> bool {
        i.owner
            .as_ref()
            .and_then(|o| self.by_ref.get(&o.to_string()))
            .and_then(|n| self.identities.get(*n))
            .is_some_and(|o| o.kind.is_human() && o.state == LifecycleState::Active)
    }

    fn live_credential(&self, c: &CredentialRow) -> bool {
        c.revoked_at.is_none() && c.expires_at > self.now
    }

    fn live_token(&self, t: &TokenRow) -> bool {
        t.revoked_at.is_none() && t.expires_at > self.now
    }

    fn privileged(&self, g: &GrantRow) -> bool {
        g.state.is_wanted() && self.policy.entitlement(&g.entitlement).is_some_and(|e| e.privileged)
    }

    fn gone(i: &IdentityRow) -> bool {
        matches!(i.state, LifecycleState::Leaving | LifecycleState::Closed | LifecycleState::Suspended)
    }

    fn open(&self, kinds: &[&str]) -> impl Iterator<Item = &FindingRow> {
        let kinds: BTreeSet<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.findings.iter().filter(move |f| kinds.contains(&f.kind))
    }
}

fn load<'a>(tx: &dyn ReadTx, policy: &'a Bundle, now: OffsetDateTime) -> Result<World<'a>> {
    let identities = tx.identities()?;
    let by_id = identities.iter().enumerate().map(|(n, i)| (i.id, n)).collect();
    let by_ref = identities.iter().enumerate().map(|(n, i)| (i.reference.to_string(), n)).collect();
    let mut reviewed: HashMap<i64, OffsetDateTime> = HashMap::new();
    let (mut decided_by_people, mut decided_by_default) = (0, 0);
    let mut rubber_stamping = Vec::new();
    for c in tx.campaigns(None)? {
        let mut after = None;
        loop {
            let page = tx.review_items(c.id, &ReviewItemQuery::default(), after, 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for item in &page {
                if let Some(at) = item.decided_at {
                    let e = reviewed.entry(item.grant_id).or_insert(at);
                    *e = (*e).max(at);
                }
            }
        }
        for d in tx.review_decisions(c.id)? {
            if d.decided_by.is_some() {
                decided_by_people += 1;
            } else {
                decided_by_default += 1;
            }
        }
        for r in crate::reviews::rubber_stamping(tx, c.id)? {
            rubber_stamping.push(format!("campaign {}: {r}", c.id));
        }
    }
    Ok(World {
        policy,
        now,
        by_id,
        by_ref,
        identities,
        grants: tx.all_grants()?,
        credentials: tx.credentials(None)?,
        tokens: tx.tokens()?,
        findings: tx.findings(true)?,
        reviewed,
        decided_by_people,
        decided_by_default,
        rubber_stamping,
    })
}

/// One check as it is being built.
struct Check {
    id: &'static str,
    title: &'static str,
    why: String,
    measures: BTreeMap<String, serde_json::Value>,
    failing: u64,
    evidence: Vec<Evidence>,
    not_applicable: bool,
}

impl Check {
    fn new(id: &'static str, title: &'static str, why: impl Into<String>) -> Self {
        Check {
            id,
            title,
            why: why.into(),
            measures: BTreeMap::new(),
            failing: 0,
            evidence: Vec::new(),
            not_applicable: false,
        }
    }

    fn na(id: &'static str, title: &'static str, why: impl Into<String>) -> Self {
        Check { not_applicable: true, ..Check::new(id, title, why) }
    }

    fn measure(mut self, name: &str, v: impl Into<serde_json::Value>) -> Self {
        self.measures.insert(name.to_owned(), v.into());
        self
    }

    fn fail(&mut self, e: Evidence) {
        self.failing += 1;
        if self.evidence.len() < EVIDENCE_CAP {
            self.evidence.push(e);
        }
    }

    fn about(&mut self, i: &IdentityRow, what: String) {
        let r = i.reference.to_string();
        self.fail(Evidence {
            what,
            link: format!("/v1/identities/{r}"),
            identity: Some(r),
            ledger_seq: None,
            finding: None,
        });
    }

    fn finding(&mut self, w: &World<'_>, f: &FindingRow) {
        let who = f.identity_id.and_then(|id| w.identity(id)).map(|i| i.reference.to_string());
        let on = if f.system.is_empty() { String::new() } else { format!(" on {} account {}", f.system, f.account) };
        self.fail(Evidence {
            what: format!("open finding {}{on}", f.kind),
            identity: who,
            ledger_seq: None,
            finding: Some(f.id),
            link: format!("/v1/findings?class={}", f.kind),
        });
    }

    fn done(self) -> PostureCheck {
        let status = if self.not_applicable {
            "n/a"
        } else if self.failing > 0 {
            "fail"
        } else {
            "pass"
        };
        PostureCheck {
            id: self.id.to_owned(),
            title: self.title.to_owned(),
            status: status.to_owned(),
            why: self.why,
            measures: self.measures,
            failing: self.failing,
            evidence: self.evidence,
            trend: Vec::new(),
        }
    }
}

/// Point each identity-only evidence item at the identity's latest ledger entry, so it can
/// be proved (`tenure ledger prove SEQ`) against a checkpoint.
fn anchor(tx: &dyn ReadTx, checks: &mut [PostureCheck]) -> Result<()> {
    let mut latest: HashMap<String, Option<i64>> = HashMap::new();
    for e in checks.iter_mut().flat_map(|c| c.evidence.iter_mut()) {
        if let (Some(r), None) = (&e.identity, e.ledger_seq) {
            if !latest.contains_key(r) {
                let seq = tx.ledger_for(r)?.last().map(|row| row.seq);
                latest.insert(r.clone(), seq);
            }
            e.ledger_seq = latest.get(r).copied().flatten();
        }
    }
    Ok(())
}

fn nhis<'w>(w: &'w World<'_>) -> impl Iterator<Item = &'w IdentityRow> {
    w.identities.iter().filter(|i| !i.kind.is_human())
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// Seconds from each sampled leaver's `identity.left` to its `identity.closed`.
fn closure_times(tx: &dyn ReadTx, w: &World<'_>) -> Result<Vec<i64>> {
    let mut closed: Vec<&IdentityRow> = w.identities.iter().filter(|i| i.state == LifecycleState::Closed).collect();
    closed.sort_by_key(|i| std::cmp::Reverse(i.updated_at));
    let mut out = Vec::new();
    for i in closed.into_iter().take(CLOSURE_SAMPLE) {
        let mut left = None;
        for row in tx.ledger_for(&i.reference.to_string())? {
            match row.event {
                LedgerEvent::Left(_) | LedgerEvent::Expired(_) if left.is_none() => left = Some(row.at),
                LedgerEvent::Closed(_) => {
                    if let Some(l) = left.take() {
                        out.push((row.at - l).whole_seconds());
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn owasp(tx: &dyn ReadTx, w: &World<'_>) -> Result<Vec<Check>> {
    let now = w.now;
    let mut out = Vec::new();

    // NHI1: improper offboarding.
    let times = closure_times(tx, w)?;
    let mut c = Check::new(
        "NHI1",
        "Improper Offboarding",
        "Fails for each live NHI whose owner is not an active person, each leaver (leaving, closed or suspended) still holding a live credential or API token, and each open finding of a surviving leaver account, an ownerless NHI or a stalled leaver.",
    )
    .measure("leavers_closed_measured", times.len())
    .measure("leaver_to_closed_p50_seconds", percentile(&times, 0.5))
    .measure("leaver_to_closed_p95_seconds", percentile(&times, 0.95))
    .measure("leaving_now", w.identities.iter().filter(|i| i.state == LifecycleState::Leaving).count());
    for i in nhis(w).filter(|i| i.state == LifecycleState::Active && !w.owner_active_human(i)) {
        let owner =
            i.owner.as_ref().map_or_else(|| "no owner".to_owned(), |o| format!("owner {o} is not an active person"));
        c.about(i, format!("{} {} is active with {owner}", i.kind, i.reference));
    }
    let mut leaver_live: BTreeMap<i64, usize> = BTreeMap::new();
    for cr in w.credentials.iter().filter(|cr| w.live_credential(cr)) {
        if w.identity(cr.identity_id).is_some_and(World::gone) {
            *leaver_live.entry(cr.identity_id).or_default() += 1;
        }
    }
    for t in w.tokens.iter().filter(|t| w.live_token(t)) {
        if w.identity(t.identity_id).is_some_and(World::gone) {
            *leaver_live.entry(t.identity_id).or_default() += 1;
        }
    }
    for (id, n) in leaver_live {
        if let Some(i) = w.identity(id) {
            c.about(i, format!("{} is {} with {n} live credentials or tokens", i.reference, i.state));
        }
    }
    for f in w.open(&["reconcile.surviving_leaver", "reconcile.nhi_ownerless", "leaver_stalled", "owner_needed"]) {
        c.finding(w, f);
    }
    out.push(c);

    out.push(Check::na(
        "NHI2",
        "Secret Leakage",
        "tenure keeps only fingerprints of what it issues and cannot see where secrets were copied (code, logs, tickets); a secret scanner answers this. Short lifetimes (NHI7) bound the damage of a leak.",
    ));
    out.push(Check::na(
        "NHI3",
        "Vulnerable Third-Party NHI",
        "tenure does not inventory third-party integrations' grants (OAuth apps, vendor extensions); register them as NHIs to bring them under NHI1, NHI5 and NHI7.",
    ));

    // NHI4: insecure authentication: static secrets with long lifetimes.
    let mut c = Check::new(
        "NHI4",
        "Insecure Authentication",
        "Fails for each live static secret (API key, API bearer token) issued for longer than 90 days; short-lived JWT-SVIDs, X.509-SVIDs and dynamic logins are the strong forms.",
    );
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for cr in w.credentials.iter().filter(|cr| w.live_credential(cr)) {
        *kinds.entry(cr.kind.to_string()).or_default() += 1;
        if cr.kind == tenure_model::CredentialKind::ApiKey
            && cr.expires_at - cr.issued_at > LONG_LIVED
            && let Some(i) = w.identity(cr.identity_id)
        {
            c.about(
                i,
                format!(
                    "API key {} of {} lives {} days",
                    cr.id,
                    i.reference,
                    (cr.expires_at - cr.issued_at).whole_days()
                ),
            );
        }
    }
    for t in w.tokens.iter().filter(|t| w.live_token(t) && t.expires_at - t.created_at > LONG_LIVED) {
        if let Some(i) = w.identity(t.identity_id) {
            c.about(
                i,
                format!(
                    "API token {} of {} lives {} days",
                    t.id,
                    i.reference,
                    (t.expires_at - t.created_at).whole_days()
                ),
            );
        }
    }
    let c = c.measure("live_credentials_by_kind", serde_json::to_value(&kinds).unwrap_or_default());
    out.push(c);

    // NHI5: overprivileged NHIs.
    let mut c = Check::new(
        "NHI5",
        "Overprivileged NHI",
        "Fails for each privileged grant an NHI holds that no access review decided in the last 90 days, each open finding of a privileged membership outside policy, and each guardrail that blocked a grant.",
    );
    let mut privileged_grants = 0;
    for i in nhis(w).filter(|i| i.state == LifecycleState::Active) {
        for g in w.grants.get(&i.id).into_iter().flatten().filter(|g| w.privileged(g)) {
            privileged_grants += 1;
            if w.reviewed.get(&g.id).is_none_or(|at| now - *at > REVIEW_WINDOW) {
                c.about(i, format!("{} holds privileged {} with no review in 90 days", i.reference, g.entitlement));
            }
        }
    }
    for f in w.open(&["reconcile.privileged_membership", crate::steps::grants::FINDING_GUARDRAIL]) {
        c.finding(w, f);
    }
    out.push(c.measure("nhi_privileged_grants", privileged_grants));

    out.push(Check::na(
        "NHI6",
        "Insecure Cloud Deployment Configurations",
        "tenure does not read CI/CD or cloud configuration; its SPIFFE broker gives workloads identity without static secrets in pipelines.",
    ));

    // NHI7: long-lived secrets.
    let mut c = Check::new(
        "NHI7",
        "Long-Lived Secrets",
        "Fails for each live credential or API token issued more than 90 days ago, and each open finding of a login in a system that tenure did not issue or that outlived its expiry.",
    );
    let (mut ages, mut lifetimes): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    for cr in w.credentials.iter().filter(|cr| w.live_credential(cr)) {
        ages.push((now - cr.issued_at).whole_seconds());
        lifetimes.push((cr.expires_at - cr.issued_at).whole_seconds());
        if now - cr.issued_at > LONG_LIVED
            && let Some(i) = w.identity(cr.identity_id)
        {
            c.about(
                i,
                format!(
                    "{} {} of {} was issued {} days ago",
                    cr.kind,
                    cr.id,
                    i.reference,
                    (now - cr.issued_at).whole_days()
                ),
            );
        }
    }
    for t in w.tokens.iter().filter(|t| w.live_token(t) && now - t.created_at > LONG_LIVED) {
        if let Some(i) = w.identity(t.identity_id) {
            c.about(
                i,
                format!(
                    "API token {} of {} was issued {} days ago",
                    t.id,
                    i.reference,
                    (now - t.created_at).whole_days()
                ),
            );
        }
    }
    for f in w.open(&["reconcile.unissued_login", "reconcile.credential_past_expiry"]) {
        c.finding(w, f);
    }
    ages.sort_unstable();
    lifetimes.sort_unstable();
    out.push(
        c.measure("live_credential_age_p50_seconds", percentile(&ages, 0.5))
            .measure("live_credential_age_max_seconds", ages.last().copied())
            .measure("live_credential_lifetime_p50_seconds", percentile(&lifetimes, 0.5))
            .measure("live_credential_lifetime_max_seconds", lifetimes.last().copied()),
    );

    // NHI8: environment isolation.
    let mut c = Check::new(
        "NHI8",
        "Environment Isolation",
        "Fails for each NHI holding entitlements in more than one environment (the `environment` of each entitlement in the bundle).",
    );
    let mut tagged = 0;
    for i in nhis(w).filter(|i| !World::gone(i)) {
        let envs: BTreeSet<&str> = w
            .grants
            .get(&i.id)
            .into_iter()
            .flatten()
            .filter(|g| g.state.is_wanted())
            .filter_map(|g| w.policy.entitlement(&g.entitlement))
            .map(|e| e.environment.as_str())
            .filter(|e| !e.is_empty())
            .collect();
        tagged += usize::from(!envs.is_empty());
        if envs.len() > 1 {
            let list: Vec<&str> = envs.into_iter().collect();
            c.about(i, format!("{} holds entitlements in {}", i.reference, list.join(", ")));
        }
    }
    let envs = w.policy.entitlements.values().filter(|e| !e.environment.is_empty()).count();
    let c = if envs == 0 {
        Check::na(
            "NHI8",
            "Environment Isolation",
            "No entitlement in the bundle names an `environment`, so tenure cannot tell production from the rest.",
        )
    } else {
        c.measure("nhis_with_environment", tagged)
    };
    out.push(c);

    out.push(Check::na(
        "NHI9",
        "NHI Reuse",
        "tenure cannot see which applications present a credential it issued; give each application its own NHI and audience-bound credentials.",
    ));
    out.push(Check::na(
        "NHI10",
        "Human Use of NHI",
        "tenure cannot see who types a credential in; it does refuse tokens and credentials of anything that is not active, and records every issuance.",
    ));
    Ok(out)
}

fn csf(w: &World<'_>, signing_keys: &[tenure_store::SigningKeyRow]) -> Vec<Check> {
    let now = w.now;
    let mut out = Vec::new();

    let mut c = Check::new(
        "PR.AA-01",
        "Identities and credentials for authorized users, services and hardware are managed",
        "Fails for each live NHI missing an owner, a purpose or an expiry, and each open finding of an account tenure could not tie to an identity (unmatched, unlinked, disputed).",
    )
    .measure("identities", w.identities.len())
    .measure("nhis", nhis(w).count());
    for i in nhis(w).filter(|i| !matches!(i.state, LifecycleState::Closed)) {
        let missing: Vec<&str> = [
            ("owner", i.owner.is_none()),
            ("purpose", i.purpose.as_deref().is_none_or(str::is_empty)),
            ("expiry", i.expires_at.is_none()),
        ]
        .into_iter()
        .filter_map(|(what, m)| m.then_some(what))
        .collect();
        if !missing.is_empty() {
            c.about(i, format!("{} has no {}", i.reference, missing.join(", ")));
        }
    }
    for f in w.open(&["reconcile.unmatched", "reconcile.unlinked", "reconcile.disputed", "account_not_managed"]) {
        c.finding(w, f);
    }
    out.push(c);

    let mut c = Check::new(
        "PR.AA-02",
        "Identities are proofed and bound to credentials based on the context of interactions",
        "Fails for each live broker credential held by an identity that is not active (the broker refuses them at introspection; a live row means revocation has not been recorded).",
    );
    let live = w.credentials.iter().filter(|cr| w.live_credential(cr)).count();
    for cr in w.credentials.iter().filter(|cr| w.live_credential(cr)) {
        if let Some(i) = w.identity(cr.identity_id).filter(|i| i.state != LifecycleState::Active) {
            c.about(i, format!("{} {} is live while {} is {}", cr.kind, cr.id, i.reference, i.state));
        }
    }
    out.push(c.measure("live_credentials", live));

    let mut c = Check::new(
        "PR.AA-03",
        "Users, services and hardware are authenticated",
        "Fails for each live API token of an identity that is not active, and each live token issued for more than a year.",
    );
    let live = w.tokens.iter().filter(|t| w.live_token(t)).count();
    for t in w.tokens.iter().filter(|t| w.live_token(t)) {
        if let Some(i) = w.identity(t.identity_id) {
            if i.state != LifecycleState::Active {
                c.about(i, format!("API token {} is live while {} is {}", t.id, i.reference, i.state));
            } else if t.expires_at - t.created_at > Duration::days(365) {
                c.about(i, format!("API token {} of {} lives more than a year", t.id, i.reference));
            }
        }
    }
    out.push(c.measure("live_tokens", live));

    let c = match &w.policy.credentials {
        None => Check::na(
            "PR.AA-04",
            "Identity assertions are protected, conveyed and verified",
            "The bundle has no `[credentials]`: the broker signs no assertions.",
        ),
        Some(rules) => {
            let mut c = Check::new(
                "PR.AA-04",
                "Identity assertions are protected, conveyed and verified",
                "JWT-SVIDs are ES256-signed and verified against the published JWKS; fails when the signing key in use is older than twice `signing_key_rotation`.",
            )
            .measure("signing_key_rotation_seconds", rules.signing_key_rotation.whole_seconds());
            let current =
                signing_keys.iter().filter(|k| k.usage == "jwt" && k.retired_at.is_none()).max_by_key(|k| k.created_at);
            if let Some(k) = current {
                let age = now - k.created_at;
                c = c.measure("signing_key_age_seconds", age.whole_seconds());
                if age > rules.signing_key_rotation * 2 {
                    c.fail(Evidence {
                        what: format!("JWT signing key {} is {} hours old", k.kid, age.whole_hours()),
                        identity: None,
                        ledger_seq: None,
                        finding: None,
                        link: "/.well-known/jwks.json".to_owned(),
                    });
                }
            }
            c
        }
    };
    out.push(c);

    let mut c = Check::new(
        "PR.AA-05",
        "Access permissions, entitlements and authorizations are defined, managed, enforced and reviewed",
        "Fails for each privileged grant (anyone's) that no access review decided in the last 90 days, each reviewer flagged as rubber-stamping, and each open finding of a membership outside policy or a blocked grant. Measures how many review decisions people made and how many fell to the no-answer default (the on-time rate). Separation of duties is enforced, not measured: a self-review or self-approval is refused before it is recorded.",
    );
    let mut privileged = 0;
    let mut covered = 0;
    for i in w.identities.iter().filter(|i| i.state == LifecycleState::Active) {
        for g in w.grants.get(&i.id).into_iter().flatten().filter(|g| w.privileged(g)) {
            privileged += 1;
            if w.reviewed.get(&g.id).is_some_and(|at| now - *at <= REVIEW_WINDOW) {
                covered += 1;
            } else {
                c.about(i, format!("{} holds privileged {} with no review in 90 days", i.reference, g.entitlement));
            }
        }
    }
    for r in &w.rubber_stamping {
        c.fail(Evidence {
            what: format!("rubber-stamping: {r}"),
            identity: None,
            ledger_seq: None,
            finding: None,
            link: "/v1/reviews".to_owned(),
        });
    }
    for f in w.open(&["reconcile.unmanaged_membership", crate::steps::grants::FINDING_GUARDRAIL]) {
        c.finding(w, f);
    }
    out.push(
        c.measure("privileged_grants", privileged)
            .measure("privileged_reviewed_90d", covered)
            .measure("review_decisions_by_people", w.decided_by_people)
            .measure("review_decisions_by_default", w.decided_by_default)
            // A decision after the deadline is refused, so one by a person was on time.
            .measure("review_on_time_rate", on_time(w.decided_by_people, w.decided_by_default)),
    );

    out.push(Check::na(
        "PR.AA-06",
        "Physical access to assets is managed",
        "Physical access is outside what tenure governs.",
    ));
    out
}

fn ai_rmf(tx: &dyn ReadTx, w: &World<'_>) -> Result<Vec<Check>> {
    let agents: Vec<&IdentityRow> =
        w.identities.iter().filter(|i| i.kind == IdentityKind::Agent && i.state != LifecycleState::Closed).collect();
    let n = agents.len();
    let none = |id, title| Check::na(id, title, "No AI agent is governed here yet.");
    if n == 0 {
        return Ok(vec![
            none("GOVERN", "Accountability for AI agents"),
            none("MAP", "Each agent's context and purpose"),
            none("MEASURE", "What agents do, measured"),
            none("MANAGE", "Agents reconfirmed, suspended when nobody vouches"),
        ]);
    }
    let mut out = Vec::new();
    let mut c = Check::new(
        "GOVERN",
        "Accountability for AI agents",
        "Fails for each agent that is not closed and has no active person as its owner (sponsor).",
    );
    for a in agents.iter().filter(|a| !w.owner_active_human(a)) {
        c.about(a, format!("agent {} has no active sponsor", a.reference));
    }
    out.push(c.measure("agents", n));

    let mut c = Check::new(
        "MAP",
        "Each agent's context and purpose",
        "Fails for each agent without a stated purpose or an expiry. (Agent classes with allowed tools and task lifetimes are not part of tenure yet.)",
    );
    for a in &agents {
        if a.purpose.as_deref().is_none_or(str::is_empty) || a.expires_at.is_none() {
            c.about(a, format!("agent {} lacks a purpose or an expiry", a.reference));
        }
    }
    out.push(c);

    let mut c = Check::new(
        "MEASURE",
        "What agents do, measured",
        "Counts each agent's credentials issued; fails for each active agent that holds a live credential issued more than 30 days ago (an agent's access should be as short as its task).",
    );
    let mut issued = 0;
    for a in agents.iter().filter(|a| a.state == LifecycleState::Active) {
        for cr in w.credentials.iter().filter(|cr| cr.identity_id == a.id) {
            issued += 1;
            if w.live_credential(cr) && w.now - cr.issued_at > Duration::days(30) {
                c.about(
                    a,
                    format!(
                        "agent {} holds {} {} issued {} days ago",
                        a.reference,
                        cr.kind,
                        cr.id,
                        (w.now - cr.issued_at).whole_days()
                    ),
                );
            }
        }
    }
    out.push(c.measure("agent_credentials_issued", issued));

    let c = match w.policy.attestation.as_ref().and_then(|a| a.every(IdentityKind::Agent, false)) {
        None => {
            let mut c = Check::new(
                "MANAGE",
                "Agents reconfirmed, suspended when nobody vouches",
                "Fails: the bundle's `[attestation]` sets no cadence for agents, so nobody reconfirms them.",
            );
            c.fail(Evidence {
                what: "no `attestation.every_days.agent` in the bundle".to_owned(),
                identity: None,
                ledger_seq: None,
                finding: None,
                link: "tenure.toml#attestation".to_owned(),
            });
            c
        }
        Some(every) => {
            let mut c = Check::new(
                "MANAGE",
                "Agents reconfirmed, suspended when nobody vouches",
                "Fails for each active agent whose owner's last attestation (or its joining) is older than its cadence; the clock suspends such agents.",
            )
            .measure("agent_cadence_days", every.whole_days());
            for a in agents.iter().filter(|a| a.state == LifecycleState::Active) {
                let since = tx.last_attested(a.id)?.unwrap_or(a.created_at);
                if w.now - since > every {
                    c.about(
                        a,
                        format!("agent {} was last vouched for {} days ago", a.reference, (w.now - since).whole_days()),
                    );
                }
            }
            c
        }
    };
    out.push(c);
    Ok(out)
}

/// The share of review items a person decided (before the deadline: later ones are refused)
/// rather than the no-answer default; `None` before any decision.
fn on_time(people: u64, by_default: u64) -> Option<f64> {
    let all = people + by_default;
    #[expect(clippy::cast_precision_loss, reason = "a ratio of two counts far below 2^52")]
    (all > 0).then(|| people as f64 / all as f64)
}

fn section(framework: &str, title: &str, checks: Vec<Check>) -> PostureSection {
    PostureSection {
        framework: framework.to_owned(),
        title: title.to_owned(),
        checks: checks.into_iter().map(Check::done).collect(),
    }
}

/// The report on one read snapshot (without trends).
pub fn compute(tx: &dyn ReadTx, policy: &Bundle, now: OffsetDateTime) -> Result<PostureReport> {
    let w = load(tx, policy, now)?;
    let keys = tx.signing_keys()?;
    let mut sections = vec![
        section("owasp-nhi-2025", "OWASP Non-Human Identities Top 10 (2025)", owasp(tx, &w)?),
        section(
            "nist-csf-2.0",
            "NIST CSF 2.0: Identity Management, Authentication and Access Control (PR.AA)",
            csf(&w, &keys),
        ),
        section("nist-ai-rmf-1.0", "NIST AI RMF 1.0: the four functions, for AI agents", ai_rmf(tx, &w)?),
    ];
    let mut summary: BTreeMap<String, u64> = ["pass", "fail", "n/a"].iter().map(|s| ((*s).to_owned(), 0)).collect();
    for s in &mut sections {
        anchor(tx, &mut s.checks)?;
        for c in &s.checks {
            *summary.entry(c.status.clone()).or_default() += 1;
        }
    }
    Ok(PostureReport {
        at: rfc3339(now),
        policy_version: policy.version.to_string(),
        ledger_size: tx.ledger_count()?,
        summary,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.95), Some(7));
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.95), Some(95));
    }
}
