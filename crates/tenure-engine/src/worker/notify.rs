//! Delivering a `notify` job: the notice its payload holds, through the channel it names
//! (the job's `system`), with the channel as the current policy defines it. A webhook gets the
//! payload's bytes, signed; an email goes to the address the recipient's attribute holds now.
//! A failed delivery is retried with backoff and dead-lettered after the last attempt (a
//! `job.dead` entry; `tenure jobs --state dead` shows it); what retrying cannot fix (the
//! channel is gone or misconfigured, the person has no address) is dead at once.

use super::{Outcome, Workers, fail};
use crate::systems::Sender;
use crate::{EngineError, Result};
use tenure_connectors::ConnectorError;
use tenure_policy::attributes::{Inputs, Template, Value};
use tenure_store::{IdentityRow, JobRow};

impl Workers {
    pub(super) async fn run_notify(&self, job: &JobRow) -> Result<Outcome> {
        let policy = self.blocking(|e| e.current_policy()).await?;
        let systems = self.systems_for(&policy).await;
        let payload = job.payload.clone().unwrap_or_default();
        let recipient = match job.identity_id {
            Some(id) => self.blocking(move |e| Ok(e.store.read()?.identity_by_id(id)?)).await?,
            None => None,
        };
        let channel = policy.notifications.get(&job.system);
        let result: std::result::Result<(), ConnectorError> = async {
            let sender = systems.channel(&job.system)?;
            match sender {
                Sender::Webhook(w) => {
                    let body = serde_json::to_vec(&payload).map_err(|e| permanent(job, e.to_string()))?;
                    // The receiver checks the timestamp against its own clock to refuse replays:
                    // it is the wall clock's, whatever clock the engine runs on.
                    let sent = tenure_model::Clock::now(&tenure_model::SystemClock).unix_timestamp();
                    w.send(&job.account, sent, body).await
                }
                Sender::Mail(m) => {
                    let Some(to) = recipient.as_ref() else {
                        return Err(permanent(job, "the notice is for nobody; email needs a recipient".into()));
                    };
                    if to.state.has_left() {
                        tracing::info!(job = job.id, to = %to.reference, "not mailing a notice to someone who left");
                        return Ok(());
                    }
                    let template = channel.map(|c| c.address.as_str()).unwrap_or("{email}");
                    let address = channel.and_then(|c| address_of(&c.address, to)).ok_or_else(|| {
                        permanent(job, format!("`{}` has no address: `{template}` gives nothing", to.reference))
                    })?;
                    let text = |k: &str| payload.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    let body = format!("{}\n\n-- \ntenure (notice {})\n", text("text"), job.account);
                    m.send(&job.account, &address, &text("subject"), &body).await
                }
            }
        }
        .await;
        let job = job.clone();
        let config = self.config.clone();
        self.blocking(move |e| {
            let now = e.clock.now();
            let version = e.current_policy()?.version.to_string();
            let mut tx = e.store.write()?;
            let subject = format!("notify:{}", job.system);
            let outcome = match result {
                Ok(()) => {
                    if !tx.finish_job(&job, now)? {
                        return Ok(Outcome::Stale);
                    }
                    Outcome::Verified
                }
                Err(err) => {
                    let permanent = matches!(err, ConnectorError::Config { .. });
                    let config =
                        super::WorkerConfig { max_attempts: if permanent { 0 } else { config.max_attempts }, ..config };
                    fail(tx.as_mut(), &job, &err.to_string(), now, &config, &subject, &version)?
                }
            };
            if outcome != Outcome::Stale {
                tx.commit()?;
            }
            Ok(outcome)
        })
        .await
        .map_err(|e: EngineError| e)
    }
}

/// `to`'s address as the channel's template makes it.
fn address_of(t: &Template, to: &IdentityRow) -> Option<String> {
    let inputs = Inputs {
        kind: to.kind,
        source: to.reference.source(),
        external_id: to.reference.external_id(),
        name: &to.name,
        attributes: &to.attributes,
        account: "",
        manager_account: None,
    };
    match t.render(&inputs)? {
        Value::Text(a) => Some(a),
        Value::Account(_) => None,
    }
}

fn permanent(job: &JobRow, message: String) -> ConnectorError {
    ConnectorError::Config { system: job.system.clone(), message }
}
