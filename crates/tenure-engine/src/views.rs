//! Read models: identities as the API and the CLI show them (wire types, converted here
//! explicitly from store rows).

use crate::{Engine, EngineError, Result};
use tenure_model::IdentityRef;
use tenure_proto::{AccountView, FindingView, GrantView, IdentityDetail, IdentityView, LedgerEntryView};
use tenure_store::{GrantRow, IdentityRow};

use tenure_model::rfc3339 as ts;

fn view(i: IdentityRow, grants: &[GrantRow]) -> IdentityView {
    IdentityView {
        reference: i.reference.to_string(),
        kind: i.kind.to_string(),
        name: i.name,
        state: i.state.to_string(),
        owner: i.owner.map(|o| o.to_string()),
        purpose: i.purpose,
        expires_at: i.expires_at.map(ts),
        attributes: i.attributes,
        grants: grants
            .iter()
            .map(|g| GrantView {
                entitlement: g.entitlement.clone(),
                system: g.system.clone(),
                state: g.state.to_string(),
                origin: g.origin.clone(),
                expires_at: g.expires_at.map(ts),
            })
            .collect(),
        policy_version: i.policy_version,
        updated_at: ts(i.updated_at),
        owner_deadline: i.owner_deadline.map(ts),
    }
}

impl Engine {
    /// Every identity, by reference.
    pub fn list_identities(&self) -> Result<Vec<IdentityView>> {
        let tx = self.store.read()?;
        let mut grants = tx.all_grants()?;
        Ok(tx
            .identities()?
            .into_iter()
            .map(|i| {
                let g = grants.remove(&i.id).unwrap_or_default();
                view(i, &g)
            })
            .collect())
    }

    /// The identities after `after` (a reference, the previous page's cursor) that match
    /// `filter`, at most `limit` of them, and the cursor of the next page when there is one.
    /// Memory is bounded by the page, whatever the population.
    pub fn identities_page(
        &self,
        filter: &tenure_store::IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<IdentityView>, Option<String>)> {
        let limit = limit.max(1);
        let tx = self.store.read()?;
        // One more than asked says whether another page follows.
        let mut rows = tx.identities_page(filter, after, limit + 1)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let mut page = Vec::with_capacity(rows.len());
        for i in rows {
            let grants = tx.grants(i.id)?;
            page.push(view(i, &grants));
        }
        let next = if more { page.last().map(|v| v.reference.clone()) } else { None };
        Ok((page, next))
    }

    /// One identity with its accounts and timeline. `reference` is `source:external_id`.
    pub fn identity_detail(&self, reference: &str) -> Result<IdentityDetail> {
        let r: IdentityRef = reference.parse().map_err(|_| EngineError::NotFound(reference.to_owned()))?;
        let tx = self.store.read()?;
        let i = tx.identity(&r)?.ok_or_else(|| EngineError::NotFound(reference.to_owned()))?;
        let grants = tx.grants(i.id)?;
        let accounts = tx
            .accounts(i.id)?
            .into_iter()
            .map(|a| AccountView { system: a.system, account: a.name, state: a.state.to_string() })
            .collect();
        let timeline = tx
            .ledger_for(reference)?
            .into_iter()
            .map(|a| {
                let (action, detail) = a.event.to_parts();
                LedgerEntryView {
                    seq: a.seq,
                    at: ts(a.at),
                    actor: a.actor,
                    action,
                    policy_version: a.policy_version,
                    detail,
                }
            })
            .collect();
        Ok(IdentityDetail { identity: view(i, &grants), accounts, timeline })
    }
}

/// Which findings to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Resolved ones too.
    pub all: bool,
    /// Only resolved ones (implies `all`).
    pub resolved_only: bool,
    /// Only those about this system.
    pub system: Option<String>,
    /// Only this kind, or this reconciliation class (`unmatched` for `reconcile.unmatched`).
    pub kind: Option<String>,
}

impl FindingFilter {
    fn query(&self) -> tenure_store::FindingQuery<'_> {
        tenure_store::FindingQuery {
            open_only: !(self.all || self.resolved_only),
            resolved_only: self.resolved_only,
            system: self.system.as_deref(),
            kind: self.kind.as_deref(),
        }
    }
}

impl Engine {
    /// Findings, oldest first; only open ones unless `all`.
    pub fn list_findings(&self, all: bool) -> Result<Vec<FindingView>> {
        self.find_findings(&FindingFilter { all, ..FindingFilter::default() })
    }

    /// Findings the filter keeps, oldest first.
    pub fn find_findings(&self, filter: &FindingFilter) -> Result<Vec<FindingView>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.findings_page(filter, after, 1000)?;
            out.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// A keyset page of the findings the filter keeps: at most `limit` with an id above
    /// `after`, oldest first, and the id the next page starts after (none on the last).
    pub fn findings_page(
        &self,
        filter: &FindingFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<FindingView>, Option<i64>)> {
        let tx = self.store.read()?;
        let mut rows = tx.findings_page(&filter.query(), after, limit.saturating_add(1))?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|f| f.id)
        } else {
            None
        };
        let views = rows
            .into_iter()
            .map(|f| {
                Ok(FindingView {
                    id: f.id,
                    identity: match f.identity_id {
                        Some(id) => tx.identity_by_id(id)?.map(|i| i.reference.to_string()).unwrap_or_default(),
                        None => String::new(),
                    },
                    kind: f.kind,
                    entitlement: f.entitlement,
                    detail: f.detail,
                    policy_version: f.policy_version,
                    opened_at: ts(f.opened_at),
                    resolved_at: f.resolved_at.map(ts),
                    system: f.system,
                    account: f.account,
                    last_seen_at: f.last_seen_at.map(ts),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((views, next))
    }
}

use crate::telemetry::label;

impl Engine {
    /// Gauges in the Prometheus text format: jobs by state (alert on `tenure_jobs{state="dead"}`),
    /// identities by state, open findings, ledger size.
    pub fn metrics_text(&self) -> Result<String> {
        let tx = self.store.read()?;
        let mut out = String::from(
            "# HELP tenure_jobs Provisioning jobs by state; dead ones need people.\n# TYPE tenure_jobs gauge\n",
        );
        let counts = tx.job_counts()?;
        for state in ["pending", "running", "done", "dead"] {
            out.push_str(&format!("tenure_jobs{{state=\"{state}\"}} {}\n", counts.get(state).copied().unwrap_or(0)));
        }
        out.push_str(&format!(
            "# HELP tenure_auth_failures_total API authentication failures since start.\n# TYPE tenure_auth_failures_total counter\ntenure_auth_failures_total {}\n",
            self.auth_failures_total()
        ));
        let (batches, units) = self.group_commit_totals();
        out.push_str(&format!(
            "# HELP tenure_group_commit_batches_total Transactions the group commit of decisions and credentials wrote.\n# TYPE tenure_group_commit_batches_total counter\ntenure_group_commit_batches_total {batches}\n# HELP tenure_group_commit_units_total Decisions and credentials written by the group commit.\n# TYPE tenure_group_commit_units_total counter\ntenure_group_commit_units_total {units}\n"
        ));
        out.push_str("# HELP tenure_identities Identities by lifecycle state.\n# TYPE tenure_identities gauge\n");
        let mut states: std::collections::BTreeMap<String, i64> =
            tenure_model::LifecycleState::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        for i in tx.identities()? {
            *states.entry(i.state.to_string()).or_default() += 1;
        }
        for (state, n) in states {
            out.push_str(&format!("tenure_identities{{state=\"{state}\"}} {n}\n"));
        }
        let open = tx.findings(true)?;
        out.push_str(&format!(
            "# HELP tenure_findings_open Findings nobody has resolved.\n# TYPE tenure_findings_open gauge\ntenure_findings_open {}\n",
            open.len()
        ));
        out.push_str(
            "# HELP tenure_drift_open Open reconciliation findings by system and situation.\n# TYPE tenure_drift_open gauge\n",
        );
        let mut drift: std::collections::BTreeMap<(&str, &str), usize> = std::collections::BTreeMap::new();
        for f in &open {
            if let Some(situation) = f.kind.strip_prefix("reconcile.").filter(|_| !f.system.is_empty()) {
                *drift.entry((f.system.as_str(), situation)).or_default() += 1;
            }
        }
        for ((system, situation), n) in drift {
            out.push_str(&format!(
                "tenure_drift_open{{system=\"{}\",situation=\"{}\"}} {n}\n",
                label(system),
                label(situation)
            ));
        }
        out.push_str(
            "# HELP tenure_credentials Broker credentials by state; `revoked` ones wait for verification.\n# TYPE tenure_credentials gauge\n",
        );
        let counts = tx.credential_counts(self.clock.now())?;
        for state in ["active", "expired", "revoked", "revocation-verified"] {
            out.push_str(&format!(
                "tenure_credentials{{state=\"{state}\"}} {}\n",
                counts.get(state).copied().unwrap_or(0)
            ));
        }
        out.push_str(&format!(
            "# HELP tenure_ledger_entries Entries in the ledger.\n# TYPE tenure_ledger_entries gauge\ntenure_ledger_entries {}\n",
            tx.ledger_count()?
        ));
        self.telemetry.render(&mut out);
        Ok(out)
    }
}
