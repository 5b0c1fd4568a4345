//! Notices, inside the caller's transaction: telling someone that something waits for them
//! is a job of the transactional outbox like any other, so a notice is enqueued with the
//! change it is about (a campaign's start, a request left pending, a suspension) or not at
//! all. Each channel of the policy (`[notifications.NAME]`) that carries the notice's kind gets
//! one `notify` job; the worker delivers it (`worker/notify.rs`), retried and dead-lettered
//! like a sync job.
//!
//! A notice's key is unique per notice and recipient (`review:7:stage:0:hr:E1002`), so the
//! same notice is never enqueued twice while one is pending, and a receiver can drop a
//! retried delivery by its `webhook-id`.

use serde_json::{Value, json};
use tenure_model::rfc3339 as ts;
use tenure_policy::Bundle;
use tenure_policy::notify::{ChannelKind, NoticeKind};
use tenure_store::{IdentityRow, NewNoticeJob, StoreError, WriteTx};
use time::OffsetDateTime;

/// One notice to one person (or, with no `to`, to whoever watches the webhook).
pub(crate) struct Notice<'a> {
    pub kind: NoticeKind,
    pub key: String,
    pub to: Option<&'a IdentityRow>,
    /// One line: an email's subject, a chat message's title.
    pub subject: String,
    /// What to do, in a few lines of plain text.
    pub text: String,
    /// The facts behind it (campaign and item counts, the request, the identity), as JSON.
    pub data: Value,
}

/// The body a notice is delivered with (a webhook's JSON; an email is made from it).
pub(crate) fn body(n: &Notice<'_>, now: OffsetDateTime) -> Value {
    json!({
        "id": n.key,
        "type": n.kind.as_str(),
        "at": ts(now),
        "to": n.to.map(|p| json!({ "reference": p.reference.to_string(), "name": p.name, "kind": p.kind.as_str() })),
        "subject": n.subject,
        "text": n.text,
        "data": n.data,
    })
}

/// Enqueue `notice` on every channel that carries its kind (email only when it is for someone).
pub(crate) fn notify(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    notice: &Notice<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut payload = None;
    for c in policy.notifications.values().filter(|c| c.on.contains(&notice.kind)) {
        if c.kind == ChannelKind::Email && notice.to.is_none() {
            continue;
        }
        let payload = payload.get_or_insert_with(|| body(notice, now));
        tx.enqueue_notice(&NewNoticeJob {
            identity_id: notice.to.map(|p| p.id),
            channel: &c.name,
            key: &notice.key,
            payload,
            run_at: now,
        })?;
    }
    Ok(())
}

/// Whether any channel carries `kind`: callers skip building notices nobody would get.
pub(crate) fn wanted(policy: &Bundle, kind: NoticeKind) -> bool {
    policy.notifications.values().any(|c| c.on.contains(&kind))
}
