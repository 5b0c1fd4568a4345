//! Imports of a source's own records: an HR export's rows, mapped to identities by the
//! source's `[sources.NAME.mapping]`, compared with what tenure holds, and turned into the
//! lifecycle events they mean — a joiner for someone new, a mover for a changed record, a
//! leaver for a leave status. A **snapshot** (a full export) also makes a leaver of every
//! current identity of the source it no longer lists.
//!
//! The derived events go through ingest like any other batch: validated against policy and
//! state, all or nothing, idempotent. A snapshot that would make more leavers than the
//! mapping's threshold (more than `snapshot_max_leavers`, or — for more than one — more than
//! `snapshot_max_leavers_percent` of the source's current identities) is quarantined: nothing is applied, a `source.snapshot_quarantined`
//! entry records it, and a person who has read the preview applies it by stating the number
//! of leavers they accept. A truncated export cannot turn half the company into leavers.

use crate::ingest::{Event, identity_digest};
use crate::ledger::{Stamp, record};
use crate::parse::{Position, PositionedRecord, RecordError};
use crate::{Engine, EngineError, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::SnapshotQuarantined;
use tenure_model::{IdentityRef, Principal};
use tenure_policy::mapping::Mapped;
use tenure_proto::{EventType, EventWire, IdentityWire, IngestReport};

/// How to import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportMode {
    /// The file is the source's whole population: who it no longer lists leaves.
    pub snapshot: bool,
    /// Derive and show, apply nothing.
    pub dry_run: bool,
    /// The number of leavers a person accepts past the threshold (they must match).
    pub accept_leavers: Option<usize>,
}

/// One derived change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub identity: String,
    pub kind: EventType,
    /// Why: `new`, the fields that changed, `status`, or `missing from the snapshot`.
    pub why: String,
}

/// What an import derived from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    pub changes: Vec<Derived>,
    pub unchanged: usize,
    /// Leave-status records of identities tenure never had (nothing to do).
    pub ignored: usize,
    /// Current identities of the source before the import.
    pub current: usize,
    pub leavers: usize,
    /// The threshold it was held to: (count, percent), for a snapshot.
    pub threshold: Option<(usize, u32)>,
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOutcome {
    Applied(ImportPlan, IngestReport),
    Preview(ImportPlan),
    /// Past the threshold: nothing applied; the reason says how to go on.
    Quarantined(ImportPlan, String),
}

impl Engine {
    /// Import `records` of `source` through its mapping (see the module docs).
    pub fn import_mapped(
        &self,
        source: &str,
        records: &[PositionedRecord],
        mode: ImportMode,
        by: &Principal,
    ) -> Result<ImportOutcome> {
        let policy = self.current_policy()?;
        let def = policy.sources.get(source).ok_or_else(|| {
            EngineError::invalid(
                "source",
                format!("unknown source `{source}`; the policy knows {}", {
                    let known: Vec<&str> = policy.sources.keys().map(String::as_str).collect();
                    known.join(", ")
                }),
            )
        })?;
        let mapping = def.mapping.as_ref().ok_or_else(|| {
            EngineError::invalid(
                "source",
                format!("source `{source}` has no [sources.{source}.mapping]; its records must be tenure events"),
            )
        })?;
        let manager_attribute = policy.access.manager_attribute.as_str();
        let mut errors = Vec::new();
        let mut mapped: Vec<(Position, Mapped)> = Vec::with_capacity(records.len());
        let mut seen: BTreeMap<String, Position> = BTreeMap::new();
        for (pos, r) in records {
            match mapping.map(source, manager_attribute, r) {
                Ok(m) => {
                    if let Some(first) = seen.insert(m.external_id.clone(), *pos) {
                        errors.push(RecordError::new(
                            *pos,
                            mapping.external_id.columns().join(", "),
                            format!("`{}` is listed twice (first at {first})", m.external_id),
                        ));
                        continue;
                    }
                    mapped.push((*pos, m));
                }
                Err(e) => errors.push(RecordError::new(*pos, e.field, e.message)),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Rejected(errors));
        }

        let now = self.clock.now();
        let mut plan = ImportPlan::default();
        let mut wires: Vec<(Position, EventWire)> = Vec::new();
        {
            let tx = self.store.read()?;
            let current: Vec<_> = tx
                .identities()?
                .into_iter()
                .filter(|i| i.reference.source() == source && !i.state.has_left())
                .collect();
            plan.current = current.len();
            for (pos, m) in &mapped {
                let reference = IdentityRef::new(source, &m.external_id)
                    .map_err(|e| EngineError::Rejected(vec![RecordError::new(*pos, "external_id", e.to_string())]))?;
                let existing = tx.identity(&reference)?;
                let wire_identity = identity_wire(m);
                use tenure_policy::mapping::Status;
                let mut derived: Vec<(EventType, String)> = Vec::new();
                match (&existing, m.status) {
                    (None, Status::Active) => derived.push((EventType::Joined, "new".to_owned())),
                    (None, _) => plan.ignored += 1,
                    (Some(row), Status::Leave) if row.state.has_left() => plan.unchanged += 1,
                    (Some(row), _) if row.state.has_left() => {
                        return Err(EngineError::Rejected(vec![RecordError::new(
                            *pos,
                            mapping.status.as_ref().map_or_else(|| "status".to_owned(), |s| s.columns().join(", ")),
                            format!("`{reference}` has left ({}); a return needs a new external id", row.state),
                        )]));
                    }
                    (Some(_), Status::Leave) => derived.push((EventType::Left, "status".to_owned())),
                    (Some(row), status) => {
                        if status == Status::Suspend && row.state.is_current() {
                            derived.push((EventType::Suspended, "status".to_owned()));
                        }
                        if status == Status::Active
                            && row.state == tenure_model::LifecycleState::Suspended
                            && row.suspended_by == Some(tenure_model::SuspendedBy::Source)
                        {
                            derived.push((EventType::Resumed, "status".to_owned()));
                        }
                        let changed = differences(m, row);
                        if !changed.is_empty() {
                            derived.push((EventType::Changed, changed.join(", ")));
                        }
                        if derived.is_empty() {
                            plan.unchanged += 1;
                        }
                    }
                }
                let before = existing.as_ref().map(identity_digest).unwrap_or_default();
                for (kind, why) in derived {
                    wires.push((*pos, wire(source, kind, now, wire_identity.clone(), &before)));
                    plan.changes.push(Derived { identity: reference.to_string(), kind, why });
                }
            }
            if mode.snapshot {
                for row in current.iter().filter(|i| !seen.contains_key(i.reference.external_id())) {
                    let identity = IdentityWire {
                        external_id: row.reference.external_id().to_owned(),
                        kind: row.kind.as_str().to_owned(),
                        name: None,
                        attributes: BTreeMap::new(),
                        owner: None,
                        purpose: None,
                        expires_at: None,
                    };
                    let pos = Position::Line(0);
                    wires.push((pos, wire(source, EventType::Left, now, identity, &identity_digest(row))));
                    plan.changes.push(Derived {
                        identity: row.reference.to_string(),
                        kind: EventType::Left,
                        why: "missing from the snapshot".into(),
                    });
                }
            }
        }
        plan.leavers = plan.changes.iter().filter(|c| c.kind == EventType::Left).count();

        if mode.snapshot {
            let (max, percent) = (mapping.snapshot_max_leavers, mapping.snapshot_max_leavers_percent);
            plan.threshold = Some((max, percent));
            let over = over_threshold(plan.leavers, plan.current, max, percent);
            if over && !mode.dry_run {
                match mode.accept_leavers {
                    Some(n) if n == plan.leavers => {}
                    Some(n) => {
                        return Err(EngineError::Conflict(format!(
                            "the snapshot makes {} leavers, not the {n} accepted; nothing was applied",
                            plan.leavers
                        )));
                    }
                    None => {
                        let reason = format!(
                            "the snapshot makes {} leavers of {} current identities of `{source}`, past the threshold \
                             ({max}, or {percent}%); nothing was applied. Check the export; to apply it anyway, \
                             import it again with --accept-leavers {}",
                            plan.leavers, plan.current, plan.leavers
                        );
                        let event = SnapshotQuarantined {
                            source: source.to_owned(),
                            records: records.len(),
                            current: plan.current,
                            leavers: plan.leavers,
                            max_leavers: max,
                            max_leavers_percent: percent,
                            digest: snapshot_digest(records),
                        };
                        let mut tx = self.store.write()?;
                        let subject = format!("source:{source}");
                        record(
                            tx.as_mut(),
                            Stamp::new(now, &by.actor(), policy.version.as_str()),
                            &subject,
                            LedgerEvent::SnapshotQuarantined(event),
                        )?;
                        tx.commit()?;
                        tracing::warn!(source, leavers = plan.leavers, current = plan.current, "snapshot quarantined");
                        return Ok(ImportOutcome::Quarantined(plan, reason));
                    }
                }
            }
        }
        if mode.dry_run {
            return Ok(ImportOutcome::Preview(plan));
        }
        let mut events = Vec::with_capacity(wires.len());
        let mut errors = Vec::new();
        for (pos, w) in wires {
            match Event::from_wire(pos, w) {
                Ok(e) => events.push(e),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Rejected(errors));
        }
        let report = self.ingest(&events, by)?;
        Ok(ImportOutcome::Applied(plan, report))
    }
}

/// The fields of `row` a mapped record changes.
pub(crate) fn differences(m: &Mapped, row: &tenure_store::IdentityRow) -> Vec<String> {
    let mut changed = Vec::new();
    if m.name.as_ref().is_some_and(|n| n != &row.name) {
        changed.push("name".to_owned());
    }
    let attrs: BTreeSet<&String> = m.attributes.keys().chain(row.attributes.keys()).collect();
    for a in attrs {
        if m.attributes.get(a) != row.attributes.get(a) {
            changed.push(a.clone());
        }
    }
    if m.owner.is_some() && m.owner.as_deref() != row.owner.as_ref().map(ToString::to_string).as_deref() {
        changed.push("owner".into());
    }
    if m.purpose.is_some() && m.purpose != row.purpose {
        changed.push("purpose".into());
    }
    if m.expires_at.is_some() && m.expires_at != row.expires_at {
        changed.push("expires_at".into());
    }
    changed
}

/// Whether `leavers` of `current` is past a snapshot's threshold: more than `max`, or more than
/// `percent` of the population (one leaver alone never trips the share).
pub fn over_threshold(leavers: usize, current: usize, max: usize, percent: u32) -> bool {
    leavers > max || (leavers > 1 && leavers * 100 > current * percent as usize)
}

/// The event a derived change is: its id digests the change and the identity's state before
/// it, so a re-import of the same change is a duplicate, and the same change after another is
/// new.
fn wire(source: &str, kind: EventType, at: time::OffsetDateTime, identity: IdentityWire, before: &str) -> EventWire {
    let body = serde_json::to_string(&identity).unwrap_or_default();
    let digest = Sha256::digest(format!("{}\n{body}\n{before}", kind.as_str()).as_bytes());
    EventWire { source: source.to_owned(), id: format!("map-{}", &hex::encode(digest)[..24]), kind, at, identity }
}

/// SHA-256 over the records as read (column = cell, in order).
fn snapshot_digest(records: &[PositionedRecord]) -> String {
    let mut h = Sha256::new();
    for (_, r) in records {
        for (k, v) in r {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        h.update([1]);
    }
    hex::encode(h.finalize())
}

/// A mapped record as the identity of an event (imports and SCIM pushes alike).
pub(crate) fn identity_wire(m: &Mapped) -> IdentityWire {
    IdentityWire {
        external_id: m.external_id.clone(),
        kind: m.kind.as_str().to_owned(),
        name: m.name.clone(),
        attributes: m.attributes.clone(),
        owner: m.owner.clone(),
        purpose: m.purpose.clone(),
        expires_at: m.expires_at,
    }
}
