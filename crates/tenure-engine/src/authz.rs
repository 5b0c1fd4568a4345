//! Runtime authorization: a principal, an action, a resource and a context in; a decision with
//! its reasons and policy version out, written to the ledger before it is returned. Writes are
//! group-committed: concurrent deciders share one transaction (and one fsync), so logging every
//! decision durably costs little per decision.

use crate::workflow::Facts;
use crate::{Engine, EngineError, Result};
use std::sync::{Condvar, Mutex};
use tenure_model::IdentityRef;
use tenure_policy::AuthzFacts;
pub use tenure_policy::{Decision, ResourceSpec, Verdict};
use tenure_store::{AuditEntry, Store};
use time::OffsetDateTime;

/// A runtime authorization question.
#[derive(Debug, Clone)]
pub struct Question {
    pub principal: String,
    pub action: String,
    pub resource: ResourceSpec,
    pub context: serde_json::Value,
}

/// A decision entry waiting to be written.
struct Pending {
    at: OffsetDateTime,
    actor: String,
    subject: String,
    version: String,
    detail: serde_json::Value,
}

#[derive(Default)]
struct LogState {
    queue: Vec<Pending>,
    /// The batch now filling.
    open: u64,
    /// Every batch up to this one is written.
    written: u64,
    writing: bool,
    /// Recent batches that failed, and why.
    failed: Vec<(u64, String)>,
}

/// Group commit of decision entries.
#[derive(Default)]
pub(crate) struct DecisionLog {
    state: Mutex<LogState>,
    done: Condvar,
}

impl DecisionLog {
    /// Append one entry and return once it is durable. Whoever finds nobody writing writes the
    /// whole queue; the others wait for their batch.
    fn append(&self, store: &dyn Store, entry: Pending) -> Result<()> {
        let lock = || self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut st = lock();
        st.queue.push(entry);
        // INVARIANT: an entry queued while batch `open` fills is written with batch `open`.
        let mine = st.open + 1;
        loop {
            if st.written >= mine {
                return match st.failed.iter().find(|(b, _)| *b == mine) {
                    Some((_, e)) => Err(EngineError::Task(format!("decision log: {e}"))),
                    None => Ok(()),
                };
            }
            if st.writing {
                st = self.done.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            st.writing = true;
            st.open += 1;
            let batch = st.open;
            let entries = std::mem::take(&mut st.queue);
            drop(st);
            let result = write(store, &entries);
            st = lock();
            st.writing = false;
            st.written = batch;
            if let Err(e) = result {
                // Waiters of older failed batches have long woken; keep a few.
                if st.failed.len() >= 64 {
                    st.failed.remove(0);
                }
                st.failed.push((batch, e.to_string()));
            }
            self.done.notify_all();
        }
    }
}

fn write(store: &dyn Store, entries: &[Pending]) -> Result<()> {
    let mut tx = store.write()?;
    for e in entries {
        tx.append_audit(&AuditEntry {
            at: e.at,
            actor: &e.actor,
            action: "authz.decided",
            subject: &e.subject,
            policy_version: &e.version,
            detail: e.detail.clone(),
        })?;
    }
    tx.commit()?;
    Ok(())
}

impl Engine {
    /// Decide, log durably, answer. An unknown principal is denied (and logged); a question
    /// that does not fit the schema is bad input.
    pub fn authorize(&self, q: &Question, caller: &str) -> Result<Decision> {
        let decision = self.decide(q)?;
        let detail = serde_json::json!({
            "action": q.action,
            "resource": q.resource,
            "context": q.context,
            "decision": decision.decision,
            "policies": decision.policies,
            "reasons": decision.reasons,
            "errors": decision.errors,
        });
        self.decisions.append(
            self.store.as_ref(),
            Pending {
                at: self.clock.now(),
                actor: caller.to_owned(),
                subject: q.principal.clone(),
                version: decision.policy_version.clone(),
                detail,
            },
        )?;
        Ok(decision)
    }

    /// The decision alone, without logging it (what [`Engine::authorize`] logs).
    pub fn decide(&self, q: &Question) -> Result<Decision> {
        let policy = self.current_policy()?;
        let tx = self.store.read()?;
        let principal = match q.principal.parse::<IdentityRef>().ok().map(|r| tx.identity(&r)).transpose()? {
            Some(Some(row)) => Facts::load(&*tx, row)?,
            _ => {
                return Ok(Decision {
                    decision: tenure_policy::Verdict::Deny,
                    policies: vec!["tenure:unknown-principal".into()],
                    reasons: vec![format!("no identity `{}`", q.principal)],
                    errors: vec![],
                    approval: None,
                    policy_version: policy.version.to_string(),
                });
            }
        };
        let mut related = Vec::new();
        let mut refs: Vec<IdentityRef> = principal.row.owner.iter().cloned().collect();
        refs.extend(principal.row.attributes.get(&policy.access.manager_attribute).and_then(|m| m.parse().ok()));
        if q.resource.kind == "Tenure::Identity" {
            refs.extend(q.resource.id.parse().ok());
        }
        for r in refs {
            if let Some(row) = tx.identity(&r)? {
                related.push(Facts::load(&*tx, row)?);
            }
        }
        drop(tx);
        policy
            .authorize(&AuthzFacts {
                principal: principal.subject(),
                related: related.iter().map(Facts::subject).collect(),
                action: &q.action,
                resource: &q.resource,
                context: &q.context,
            })
            .map_err(|e| EngineError::Invalid { field: e.field.to_owned(), message: e.message })
    }
}
