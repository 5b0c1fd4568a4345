//! Ingest: a batch of events is validated against the current policy and the current state,
//! record by record in order (a record may rely on one before it, such as an NHI owned by a
//! person who joined earlier in the same file), inside one write transaction. Any bad record
//! rolls the whole batch back; otherwise it commits with its ledger entries and jobs.
//! Ingest is idempotent on (source, event id): a replayed event is skipped, and an event id
//! reused for different content is an error.

use crate::ledger::{Stamp, record};
use crate::parse::{Position, Positioned, RecordError};
use crate::steps::grants;
use crate::{ACTOR_ENGINE, Engine, EngineError, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{BeforeAfter, Changes, FromTo, IdentityEvent, OwnerChange, SourceEvent, StateChange};
use tenure_model::{IdentityKind, IdentityRef, LifecycleState, SuspendedBy, rfc3339};
use tenure_policy::Bundle;
use tenure_policy::reviews::Trigger;
use tenure_proto::{EventType, EventWire, IngestReport};
use tenure_store::{IdentityRow, NewEvent, NewIdentity, WriteTx};
use time::OffsetDateTime;

/// How far in the future an event's `at` may be (clock skew between sources and tenure).
const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// A structurally valid event (fields parsed; not yet checked against policy or state).
#[derive(Debug, Clone)]
pub struct Event {
    pub position: Position,
    pub source: String,
    pub id: String,
    pub kind: EventType,
    pub at: OffsetDateTime,
    pub reference: IdentityRef,
    pub identity_kind: IdentityKind,
    pub name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub owner: Option<IdentityRef>,
    pub purpose: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// SHA-256 of the canonical JSON of the wire event.
    pub digest: String,
    pub payload: String,
}

impl Event {
    /// Convert a wire event, naming the field at fault.
    pub fn from_wire(position: Position, w: EventWire) -> std::result::Result<Self, RecordError> {
        let err = |field: &str, msg: String| RecordError::new(position, field, msg);
        if w.source.is_empty() || w.source.contains(':') {
            return Err(err("source", format!("expected a source name without `:`, found `{}`", w.source)));
        }
        if w.id.trim().is_empty() {
            return Err(err("id", "expected a non-empty event id".into()));
        }
        use tenure_model::text::{self, MAX_ATTRIBUTE_NAME, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES, MAX_ID, MAX_NAME};
        text::check(&w.id, MAX_ID, false).map_err(|e| err("id", e.to_string()))?;
        if w.identity.attributes.len() > MAX_ATTRIBUTES {
            return Err(err(
                "identity.attributes",
                format!("at most {MAX_ATTRIBUTES} attributes, found {}", w.identity.attributes.len()),
            ));
        }
        for (k, v) in &w.identity.attributes {
            let field = format!("identity.attributes.{}", k.chars().take(64).collect::<String>());
            if k.is_empty() {
                return Err(err(&field, "names must not be empty".into()));
            }
            // Control characters (a tab only in values), bidi and invisible ones, lengths.
            text::check(k, MAX_ATTRIBUTE_NAME, false).map_err(|e| err(&field, format!("name {e}")))?;
            text::check(v, MAX_ATTRIBUTE_VALUE, true).map_err(|e| err(&field, e.to_string()))?;
        }
        for (field, v) in [("identity.name", &w.identity.name), ("identity.purpose", &w.identity.purpose)] {
            if let Some(v) = v {
                text::check(v, MAX_NAME, false).map_err(|e| err(field, e.to_string()))?;
            }
        }
        let reference = IdentityRef::new(&w.source, &w.identity.external_id)
            .map_err(|e| err("identity.external_id", e.to_string()))?;
        let identity_kind = w.identity.kind.parse::<IdentityKind>().map_err(|e| err("identity.kind", e))?;
        let owner = match &w.identity.owner {
            Some(o) => Some(o.parse::<IdentityRef>().map_err(|e| err("identity.owner", e.to_string()))?),
            None => None,
        };
        let payload = serde_json::to_string(&w).map_err(|e| err("", e.to_string()))?;
        let digest = hex::encode(Sha256::digest(payload.as_bytes()));
        Ok(Self {
            position,
            source: w.source,
            id: w.id,
            kind: w.kind,
            at: w.at,
            reference,
            identity_kind,
            name: w.identity.name,
            attributes: w.identity.attributes,
            owner,
            purpose: w.identity.purpose.filter(|p| !p.trim().is_empty()),
            expires_at: w.identity.expires_at,
            digest,
            payload,
        })
    }

    fn is_contractor(&self) -> bool {
        self.attributes.get("employment").is_some_and(|e| e == "contractor")
    }
}

/// Convert parsed records, collecting every error.
pub fn events_from_wire(records: Vec<Positioned>) -> std::result::Result<Vec<Event>, Vec<RecordError>> {
    let mut ok = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (pos, w) in records {
        match Event::from_wire(pos, w) {
            Ok(e) => ok.push(e),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(ok) } else { Err(errors) }
}

impl Engine {
    /// Ingest a batch posted by `caller`: every record must come from a source its token may
    /// post for (`source:NAME` roles), else nothing is applied.
    pub fn ingest_from(&self, caller: &tenure_model::Principal, records: Vec<Positioned>) -> Result<IngestReport> {
        let allowed: Vec<&str> = caller.sources().collect();
        if let Some((pos, e)) = records.iter().find(|(_, e)| !allowed.contains(&e.source.as_str())) {
            return Err(EngineError::Forbidden(format!(
                "record {}: this token may post events for {} only, not `{}`",
                pos.number(),
                allowed.join(", "),
                e.source
            )));
        }
        let events = events_from_wire(records).map_err(EngineError::Rejected)?;
        self.ingest(&events, caller)
    }

    /// Validate and apply a batch: all of it, or (on any bad record) none of it.
    pub fn ingest(&self, events: &[Event], by: &tenure_model::Principal) -> Result<IngestReport> {
        self.ingest_with_progress(events, by, &mut |_| {})
    }

    /// [`Engine::ingest`], calling `progress` with the number of records checked so far.
    pub fn ingest_with_progress(
        &self,
        events: &[Event],
        by: &tenure_model::Principal,
        progress: &mut dyn FnMut(usize),
    ) -> Result<IngestReport> {
        let actor = by.actor();
        let actor = actor.as_str();
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        let mut errors = Vec::new();
        let mut accepted = 0;
        let mut duplicates = 0;
        for (done, e) in events.iter().enumerate() {
            if done % 1024 == 0 {
                progress(done);
            }
            match apply(tx.as_mut(), &policy, e, now, actor) {
                Ok(Applied::New) => accepted += 1,
                Ok(Applied::Duplicate) => duplicates += 1,
                Err(Bad::Record(field, message)) => errors.push(RecordError::new(e.position, field, message)),
                Err(Bad::Store(s)) => return Err(s.into()),
            }
        }
        if !errors.is_empty() {
            // Dropping the transaction rolls back everything this batch did.
            return Err(EngineError::Rejected(errors));
        }
        tx.commit()?;
        progress(events.len());
        Ok(IngestReport { accepted, duplicates, policy_version: policy.version.to_string() })
    }
}

pub(crate) enum Applied {
    New,
    Duplicate,
}

pub(crate) enum Bad {
    Record(String, String),
    Store(tenure_store::StoreError),
}

impl From<tenure_store::StoreError> for Bad {
    fn from(e: tenure_store::StoreError) -> Self {
        Self::Store(e)
    }
}

fn bad<T>(field: &str, message: impl Into<String>) -> std::result::Result<T, Bad> {
    Err(Bad::Record(field.to_owned(), message.into()))
}

pub(crate) fn apply(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    e: &Event,
    now: OffsetDateTime,
    actor: &str,
) -> std::result::Result<Applied, Bad> {
    // Idempotency first: a replay of an accepted event changes nothing.
    if let Some(digest) = tx.event_digest(&e.source, &e.id)? {
        if digest == e.digest {
            return Ok(Applied::Duplicate);
        }
        return bad(
            "id",
            format!("event id `{}` of source `{}` was already accepted with different content", e.id, e.source),
        );
    }
    if !policy.sources.contains_key(&e.source) {
        let known: Vec<&str> = policy.sources.keys().map(String::as_str).collect();
        return bad("source", format!("unknown source `{}`; the policy knows {}", e.source, known.join(", ")));
    }
    if !policy.is_authoritative(&e.source, e.identity_kind) {
        return bad(
            "source",
            format!("source `{}` is not authoritative for `{}` identities", e.source, e.identity_kind),
        );
    }
    if e.at > now + MAX_SKEW {
        return bad("at", format!("`{}` is in the future", rfc3339(e.at)));
    }

    let existing = tx.identity(&e.reference)?;
    let before = existing.as_ref().map(identity_digest);
    if let Some(existing) = &existing
        && existing.kind != e.identity_kind
    {
        return bad(
            "identity.kind",
            format!("`{}` is a {} identity, not {}", e.reference, existing.kind, e.identity_kind),
        );
    }
    let recorded: fn(IdentityEvent) -> LedgerEvent;
    let mut trigger: Option<Trigger> = None;
    let mut detail = IdentityEvent {
        state: None,
        attributes: None,
        owner: None,
        expires_at: None,
        changes: Changes::default(),
        owned_nhis: vec![],
        identity_digest: BeforeAfter { before, after: None },
        event: SourceEvent {
            source: e.source.clone(),
            id: e.id.clone(),
            kind: e.kind.as_str().to_owned(),
            at: rfc3339(e.at),
            digest: e.digest.clone(),
        },
    };
    let subject = e.reference.to_string();
    match (e.kind, existing) {
        (EventType::Joined, Some(existing)) => {
            return bad(
                "identity.external_id",
                format!("`{}` has already joined (state {}); send `changed` to update it", e.reference, existing.state),
            );
        }
        (EventType::Joined, None) => {
            // A look-alike of someone who exists (a Cyrillic Е, a zero-width space that slipped
            // through elsewhere) would get accounts of its own beside theirs: refused.
            if let Some(like) = tx.identity_like(&e.reference)? {
                return bad(
                    "identity.external_id",
                    format!(
                        "`{}` is confusable with the existing `{}` (UTS #39); refused",
                        e.reference, like.reference
                    ),
                );
            }
            let name = e.name.clone().unwrap_or_else(|| e.reference.external_id().to_owned());
            check_nhi_and_contractor(tx, policy, e, e.owner.as_ref(), e.purpose.as_deref(), e.expires_at, true)?;
            let id = tx.insert_identity(&NewIdentity {
                reference: &e.reference,
                kind: e.identity_kind,
                name: &name,
                attributes: &e.attributes,
                owner: e.owner.as_ref(),
                purpose: e.purpose.as_deref(),
                expires_at: e.expires_at,
                state: LifecycleState::Pending,
                policy_version: policy.version.as_str(),
                at: now,
            })?;
            let row = tx.identity_by_id(id)?.ok_or_else(|| Bad::Record(String::new(), "identity vanished".into()))?;
            let change = grants::apply_desired(tx, policy, &row, now).map_err(workflow_bad)?;
            recorded = LedgerEvent::Joined;
            detail.state = Some(StateChange { from: None, to: LifecycleState::Pending });
            detail.changes = change.recorded();
            if change.is_empty() {
                // Nothing to provision: the joiner is active at once.
                tx.set_identity_state(id, LifecycleState::Active, now)?;
                detail.state = Some(StateChange { from: None, to: LifecycleState::Active });
            }
        }
        (_, None) => {
            return bad("identity.external_id", format!("no identity `{}`; it must join first", e.reference));
        }
        (kind, Some(mut row)) => {
            if row.state.has_left() {
                return bad(
                    "type",
                    format!("`{}` is {}; no further `{}` applies", e.reference, row.state, kind.as_str()),
                );
            }
            match kind {
                EventType::Joined => return bad("type", "internal: `joined` of an existing identity"),
                EventType::Changed => {
                    let owner = e.owner.clone().or_else(|| row.owner.clone());
                    let purpose = e.purpose.clone().or_else(|| row.purpose.clone());
                    let expires_at = e.expires_at.or(row.expires_at);
                    let expiry_changed = e.expires_at.is_some() && e.expires_at != row.expires_at;
                    let owner_changed = e.owner.is_some() && e.owner != row.owner;
                    check_nhi_and_contractor(
                        tx,
                        policy,
                        e,
                        owner.as_ref(),
                        purpose.as_deref(),
                        expires_at,
                        expiry_changed || owner_changed,
                    )?;
                    let previous = row.clone();
                    let before = row.attributes.clone();
                    if let Some(n) = &e.name {
                        row.name = n.clone();
                    }
                    row.attributes = e.attributes.clone();
                    row.owner = owner;
                    row.purpose = purpose;
                    row.expires_at = expires_at;
                    row.policy_version = policy.version.to_string();
                    row.updated_at = now;
                    tx.update_identity(&row)?;
                    if expiry_changed {
                        crate::steps::suspension::resolve_notices(tx, row.id, None, now)?;
                    }
                    // A later expiry resumes an identity its expiry suspended.
                    let change = match crate::steps::suspension::resume_if_suspended(
                        tx,
                        policy,
                        &mut row,
                        SuspendedBy::Expiry,
                        now,
                    )
                    .map_err(workflow_bad)?
                    {
                        Some((state, change)) => {
                            detail.state = Some(state);
                            change
                        }
                        None => {
                            let mut change = grants::apply_desired(tx, policy, &row, now).map_err(workflow_bad)?;
                            // A changed title, name or manager reaches every system that maps it.
                            crate::steps::attributes::remap(tx, policy, &previous, &row, &mut change, now)?;
                            change
                        }
                    };
                    recorded = LedgerEvent::Changed;
                    let manager = &policy.access.manager_attribute;
                    if before.get(manager) != row.attributes.get(manager) {
                        trigger = Some(Trigger::Mover);
                    } else if owner_changed {
                        trigger = Some(Trigger::OwnerChanged);
                    }
                    detail.attributes = Some(BeforeAfter { before, after: row.attributes.clone() });
                    detail.changes = change.recorded();
                }
                EventType::Left => {
                    let left = crate::leaver::leave(tx, policy, &row, now, actor).map_err(workflow_bad)?;
                    recorded = LedgerEvent::Left;
                    detail.state = Some(StateChange::new(left.from, left.to));
                    detail.changes = left.change.recorded();
                    detail.owned_nhis = left.owned;
                }
                EventType::OwnerChanged => {
                    if row.kind.is_human() {
                        return bad("identity.kind", "`owner_changed` applies to non-human identities only");
                    }
                    let Some(owner) = &e.owner else { return bad("identity.owner", "required for `owner_changed`") };
                    if row.owner.as_ref() == Some(owner) && row.owner_deadline.is_none() {
                        // Already so: recorded (the source said it), changes nothing.
                        detail.owner = Some(OwnerChange::Unchanged { unchanged: owner.to_string() });
                        recorded = LedgerEvent::OwnerUnchanged;
                    } else {
                        check_owner(tx, e, owner)?;
                        detail.owner = Some(OwnerChange::Changed(FromTo {
                            from: row.owner.as_ref().map(ToString::to_string),
                            to: owner.to_string(),
                        }));
                        row.owner = Some(owner.clone());
                        row.owner_deadline = None;
                        tx.resolve_finding(Some(row.id), "owner_needed", "", now)?;
                        row.updated_at = now;
                        tx.update_identity(&row)?;
                        // An NHI suspended for want of an owner resumes with its new one (unless
                        // its expiry has come too).
                        detail.changes = match crate::steps::suspension::resume_if_suspended(
                            tx,
                            policy,
                            &mut row,
                            SuspendedBy::Owner,
                            now,
                        )
                        .map_err(workflow_bad)?
                        {
                            Some((state, change)) => {
                                detail.state = Some(state);
                                change.recorded()
                            }
                            None => grants::apply_desired(tx, policy, &row, now).map_err(workflow_bad)?.recorded(),
                        };
                        // The old owner may have seen its secrets: a forced rotation.
                        let revoked = crate::steps::credentials::revoke_live(
                            tx,
                            &row,
                            "owner-transfer",
                            policy.version.as_str(),
                            actor,
                            now,
                        )?
                        .ids;
                        if !revoked.is_empty() {
                            detail.changes.credentials_revoked = revoked;
                        }
                        recorded = LedgerEvent::OwnerChanged;
                        trigger = Some(Trigger::OwnerChanged);
                    }
                }
                EventType::Suspended => {
                    recorded = LedgerEvent::SourceSuspended;
                    if row.state.is_current() {
                        let from = row.state;
                        let change = crate::steps::suspension::suspend(tx, policy, &mut row, SuspendedBy::Source, now)
                            .map_err(workflow_bad)?;
                        detail.state = Some(StateChange::new(from, row.state));
                        detail.changes = change.recorded();
                    } else if row.suspended_by != Some(SuspendedBy::Source) {
                        // Suspended for another cause too: the source's hold is recorded, and a
                        // `resumed` lifts it once that cause is gone.
                        row.suspended_by = Some(SuspendedBy::Source);
                        tx.update_identity(&row)?;
                    }
                }
                EventType::Resumed => {
                    recorded = LedgerEvent::Resumed;
                    if let Some((state, change)) =
                        crate::steps::suspension::resume_if_suspended(tx, policy, &mut row, SuspendedBy::Source, now)
                            .map_err(workflow_bad)?
                    {
                        detail.state = Some(state);
                        detail.changes = change.recorded();
                    } else if row.state == LifecycleState::Suspended && row.suspended_by == Some(SuspendedBy::Source) {
                        // The source's hold is lifted; what else holds it back now decides.
                        let rest = if crate::steps::suspension::is_expired(&row, now) {
                            Some(SuspendedBy::Expiry)
                        } else if row.owner_deadline.is_some() {
                            Some(SuspendedBy::Owner)
                        } else {
                            None
                        };
                        if rest.is_some() {
                            row.suspended_by = rest;
                            tx.update_identity(&row)?;
                        }
                    }
                }
                EventType::Renewed => {
                    let Some(expires_at) = e.expires_at else {
                        return bad("identity.expires_at", "required for `renewed`");
                    };
                    check_expiry(
                        policy,
                        e,
                        expires_at,
                        !row.kind.is_human() || e.is_contractor() || is_contractor(&row),
                    )?;
                    detail.expires_at = Some(FromTo { from: row.expires_at.map(rfc3339), to: rfc3339(expires_at) });
                    row.expires_at = Some(expires_at);
                    row.updated_at = now;
                    tx.update_identity(&row)?;
                    crate::steps::suspension::resolve_notices(tx, row.id, None, now)?;
                    // An identity its expiry suspended resumes.
                    if let Some((state, change)) =
                        crate::steps::suspension::resume_if_suspended(tx, policy, &mut row, SuspendedBy::Expiry, now)
                            .map_err(workflow_bad)?
                    {
                        detail.state = Some(state);
                        detail.changes = change.recorded();
                    }
                    recorded = LedgerEvent::Renewed;
                }
            }
        }
    }

    tx.insert_event(&NewEvent {
        source: &e.source,
        event_id: &e.id,
        kind: e.kind.as_str(),
        identity: &subject,
        at: e.at,
        received_at: now,
        digest: &e.digest,
        payload: &e.payload,
    })?;
    detail.identity_digest.after = tx.identity(&e.reference)?.as_ref().map(identity_digest);
    let actor = if actor.is_empty() { ACTOR_ENGINE } else { actor };
    record(tx, Stamp::new(now, actor, policy.version.as_str()), &subject, recorded(detail))?;
    // Micro-reviews: a mover's new manager, an NHI's new owner, asked about what it holds.
    if let Some(t) = trigger
        && let Some(row) = tx.identity(&e.reference)?
        && row.state.is_current()
    {
        crate::reviews::on_trigger(tx, policy, t, &row, actor, now)?;
    }
    Ok(Applied::New)
}

fn workflow_bad(w: grants::WorkflowError) -> Bad {
    match w {
        grants::WorkflowError::Store(s) => Bad::Store(s),
        grants::WorkflowError::AccountTaken { system, name, holder } => Bad::Record(
            "identity.external_id".into(),
            format!("account name `{name}` in system `{system}` is already held by `{holder}`"),
        ),
        grants::WorkflowError::Transition(t) => Bad::Record("type".into(), t.to_string()),
    }
}

fn is_contractor(row: &IdentityRow) -> bool {
    row.attributes.get("employment").is_some_and(|e| e == "contractor")
}

/// NHIs need an owner (an active human, not themselves), a purpose and an expiry within the
/// policy's maximum; contractors need an expiry (within the maximum, if the policy sets one).
fn check_nhi_and_contractor(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    e: &Event,
    owner: Option<&IdentityRef>,
    purpose: Option<&str>,
    expires_at: Option<OffsetDateTime>,
    check_values: bool,
) -> std::result::Result<(), Bad> {
    let kind = e.identity_kind;
    if !kind.is_human() {
        let Some(owner) = owner else {
            return bad(
                "identity.owner",
                format!("a {kind} identity needs an owner (`source:external_id` of a human)"),
            );
        };
        if purpose.is_none() {
            return bad("identity.purpose", format!("a {kind} identity needs a purpose"));
        }
        let Some(expires_at) = expires_at else {
            return bad("identity.expires_at", format!("a {kind} identity needs an expiry"));
        };
        if check_values {
            check_owner(tx, e, owner)?;
            check_expiry(policy, e, expires_at, true)?;
        }
    } else if e.is_contractor() {
        let Some(expires_at) = expires_at else {
            return bad("identity.expires_at", "a contractor (`employment = contractor`) needs an expiry");
        };
        if check_values {
            check_expiry(policy, e, expires_at, true)?;
        }
    } else if e.owner.is_some() {
        return bad("identity.owner", "only non-human identities have an owner");
    }
    Ok(())
}

fn check_owner(tx: &mut dyn WriteTx, e: &Event, owner: &IdentityRef) -> std::result::Result<(), Bad> {
    if owner == &e.reference {
        return bad("identity.owner", "an identity cannot own itself");
    }
    let Some(o) = tx.identity(owner)? else {
        return bad("identity.owner", format!("no identity `{owner}`; the owner must be an active human"));
    };
    if !o.kind.is_human() {
        return bad("identity.owner", format!("`{owner}` is a {} identity; the owner must be a human", o.kind));
    }
    // A joiner whose accounts are still being provisioned (`pending`) is a current person.
    if !o.state.is_current() {
        return bad("identity.owner", format!("`{owner}` is {}; the owner must be an active human", o.state));
    }
    Ok(())
}

fn check_expiry(policy: &Bundle, e: &Event, expires_at: OffsetDateTime, limited: bool) -> std::result::Result<(), Bad> {
    if expires_at <= e.at {
        return bad(
            "identity.expires_at",
            format!("`{}` is not after the event's time `{}`", rfc3339(expires_at), rfc3339(e.at)),
        );
    }
    if !limited {
        return Ok(());
    }
    let (max, what) = if e.identity_kind.is_human() {
        match policy.lifecycle.max_contractor_lifetime {
            Some(m) => (m, "max_contractor_lifetime_days"),
            None => return Ok(()),
        }
    } else {
        (policy.lifecycle.max_nhi_lifetime, "max_nhi_lifetime_days")
    };
    if expires_at > e.at + max {
        return bad(
            "identity.expires_at",
            format!(
                "`{}` is more than {} days after the event (policy `{what}`)",
                rfc3339(expires_at),
                max.whole_days()
            ),
        );
    }
    Ok(())
}

/// SHA-256 of an identity's record (reference, kind, name, attributes, owner, purpose, expiry,
/// state) as canonical JSON: what the ledger records before and after each event.
pub fn identity_digest(i: &IdentityRow) -> String {
    let canonical = serde_json::json!({
        "ref": i.reference.to_string(),
        "kind": i.kind.as_str(),
        "name": i.name,
        "attributes": i.attributes,
        "owner": i.owner.as_ref().map(ToString::to_string),
        "purpose": i.purpose,
        "expires_at": i.expires_at.map(rfc3339),
        "state": i.state.as_str(),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}
