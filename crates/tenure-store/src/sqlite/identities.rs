//! Identities (with their UTS #39 skeletons) and the source events that made them.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};
use tenure_model::{IdentityKind, IdentityRef, LifecycleState};
use time::OffsetDateTime;

pub(super) const IDENTITY_COLS: &str = "id, ref, kind, name, attributes, owner, purpose, expires_at, state, policy_version, created_at, updated_at, owner_deadline, suspended_by, rev";

pub(super) fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRow> {
    Ok(IdentityRow {
        id: r.get(0)?,
        reference: parse::<IdentityRef>(text(r, 1)?)?,
        kind: parse::<IdentityKind>(text(r, 2)?)?,
        name: r.get(3)?,
        attributes: serde_json::from_str(text(r, 4)?).map_err(|e| conv_err(e.to_string()))?,
        owner: text_or_null(r, 5)?.map(parse::<IdentityRef>).transpose()?,
        purpose: r.get(6)?,
        expires_at: text_or_null(r, 7)?.map(parse_ts).transpose()?,
        state: parse::<LifecycleState>(text(r, 8)?)?,
        policy_version: r.get(9)?,
        created_at: parse_ts(text(r, 10)?)?,
        updated_at: parse_ts(text(r, 11)?)?,
        owner_deadline: text_or_null(r, 12)?.map(parse_ts).transpose()?,
        suspended_by: text_or_null(r, 13)?.map(parse::<tenure_model::SuspendedBy>).transpose()?,
        rev: r.get(14)?,
    })
}

fn q_identity(c: &Connection, r: &IdentityRef) -> Result<Option<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE ref = ?1"))?;
    Ok(st.query_row([r.to_string()], identity_row).optional()?)
}

fn q_identity_by_id(c: &Connection, id: i64) -> Result<Option<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE id = ?1"))?;
    Ok(st.query_row([id], identity_row).optional()?)
}

fn q_identities(c: &Connection) -> Result<Vec<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities ORDER BY ref"))?;
    let rows = st.query_map([], identity_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_owned_by(c: &Connection, owner: &IdentityRef) -> Result<Vec<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE owner = ?1 ORDER BY ref"))?;
    let rows = st.query_map([owner.to_string()], identity_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_event_digest(c: &Connection, source: &str, event_id: &str) -> Result<Option<String>> {
    let mut st = c.prepare_cached("SELECT digest FROM events WHERE source = ?1 AND event_id = ?2")?;
    Ok(st.query_row(params![source, event_id], |r| r.get(0)).optional()?)
}

impl IdentityReads for SqliteTx<'_> {
    fn identity(&self, r: &IdentityRef) -> Result<Option<IdentityRow>> {
        q_identity(self.c()?, r)
    }
    fn identity_rev(&self, r: &IdentityRef) -> Result<Option<(i64, i64)>> {
        let mut st = self.c()?.prepare_cached("SELECT id, rev FROM identities WHERE ref = ?1")?;
        Ok(st.query_row([r.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }
    fn identity_by_id(&self, id: i64) -> Result<Option<IdentityRow>> {
        q_identity_by_id(self.c()?, id)
    }
    fn identities(&self) -> Result<Vec<IdentityRow>> {
        q_identities(self.c()?)
    }
    fn identities_page(&self, filter: &IdentityFilter, after: Option<&str>, limit: usize) -> Result<Vec<IdentityRow>> {
        // A source is a range of references (`hr:` up to `hr;`, the next byte), so the
        // primary key's order serves every page. The bounds are one range whatever is given
        // (none: from '' up to the last code point), so the index is searched from the cursor
        // rather than scanned from the start (`?1 IS NULL OR …` would plan a scan).
        let mut st = self.c()?.prepare_cached(&format!(
            "SELECT {IDENTITY_COLS} FROM identities
             WHERE ref > max(coalesce(?1, ''), coalesce(?4 || ':', ''))
               AND ref < coalesce(?4 || ';', char(1114111))
               AND (?2 IS NULL OR state = ?2)
               AND (?3 IS NULL OR kind = ?3)
             ORDER BY ref LIMIT ?5"
        ))?;
        let rows = st
            .query_map(
                params![
                    after,
                    filter.state.map(|s| s.to_string()),
                    filter.kind.map(|k| k.to_string()),
                    filter.source.as_deref(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                identity_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
    fn identities_owned_by(&self, owner: &IdentityRef) -> Result<Vec<IdentityRow>> {
        q_owned_by(self.c()?, owner)
    }
    fn identity_like(&self, r: &IdentityRef) -> Result<Option<IdentityRow>> {
        let reference = r.to_string();
        let mut st = self.c()?.prepare_cached(&format!(
            "SELECT {IDENTITY_COLS} FROM identities WHERE skeleton = ?1 AND ref <> ?2 LIMIT 1"
        ))?;
        Ok(st.query_row(params![tenure_model::text::skeleton(&reference), reference], identity_row).optional()?)
    }
    fn leavers_stalled(&self, since: OffsetDateTime) -> Result<Vec<IdentityRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {IDENTITY_COLS} FROM identities i WHERE i.state = 'leaving' AND i.updated_at <= ?1
                AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.identity_id = i.id AND j.kind <> 'notify' AND j.state IN ('pending', 'running'))
                ORDER BY i.id"
            ),
            [ts(since)],
            identity_row,
        )
    }
    fn owners_overdue(&self, now: OffsetDateTime) -> Result<Vec<IdentityRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {IDENTITY_COLS} FROM identities WHERE owner_deadline IS NOT NULL
                AND owner_deadline <= ?1 AND state IN ('pending', 'active') ORDER BY id"
            ),
            [ts(now)],
            identity_row,
        )
    }
    fn identities_expiring(&self, by: OffsetDateTime) -> Result<Vec<IdentityRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {IDENTITY_COLS} FROM identities WHERE expires_at IS NOT NULL
                AND expires_at <= ?1 AND state IN ('pending', 'active', 'suspended')
                AND suspended_by IS NOT 'expiry' ORDER BY expires_at, id"
            ),
            [ts(by)],
            identity_row,
        )
    }
    fn deletions_due(&self, closed_by: OffsetDateTime) -> Result<Vec<i64>> {
        q_all(
            self.c()?,
            "SELECT DISTINCT i.id FROM identities i JOIN accounts a ON a.identity_id = i.id
                WHERE i.state = 'closed' AND i.updated_at <= ?1 AND a.state = 'disable_verified' ORDER BY i.id",
            [ts(closed_by)],
            |r| r.get(0),
        )
    }
    fn event_digest(&self, source: &str, event_id: &str) -> Result<Option<String>> {
        q_event_digest(self.c()?, source, event_id)
    }
    fn event_count(&self) -> Result<i64> {
        q_count(self.c()?, "events")
    }
}

impl IdentityWrites for SqliteTx<'_> {
    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO events (source, event_id, type, identity, at, received_at, digest, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        st.execute(params![
            e.source,
            e.event_id,
            e.kind,
            e.identity,
            ts(e.at),
            ts(e.received_at),
            e.digest,
            e.payload
        ])?;
        Ok(())
    }
    fn insert_identity(&mut self, i: &NewIdentity<'_>) -> Result<i64> {
        let attributes = serde_json::to_string(i.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO identities (ref, kind, name, attributes, owner, purpose, expires_at, state, policy_version, created_at, updated_at, skeleton)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
        )?;
        let reference = i.reference.to_string();
        let skeleton = tenure_model::text::skeleton(&reference);
        st.execute(params![
            reference,
            i.kind.as_str(),
            i.name,
            attributes,
            i.owner.map(ToString::to_string),
            i.purpose,
            i.expires_at.map(ts),
            i.state.as_str(),
            i.policy_version,
            ts(i.at),
            skeleton,
        ])?;
        Ok(self.c()?.last_insert_rowid())
    }
    fn update_identity(&mut self, i: &IdentityRow) -> Result<()> {
        let attributes = serde_json::to_string(&i.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.c()?.prepare_cached(
            "UPDATE identities SET name = ?2, attributes = ?3, owner = ?4, purpose = ?5, expires_at = ?6,
             state = ?7, policy_version = ?8, updated_at = ?9, owner_deadline = ?10, suspended_by = ?11 WHERE id = ?1",
        )?;
        st.execute(params![
            i.id,
            i.name,
            attributes,
            i.owner.as_ref().map(ToString::to_string),
            i.purpose,
            i.expires_at.map(ts),
            i.state.as_str(),
            i.policy_version,
            ts(i.updated_at),
            i.owner_deadline.map(ts),
            i.suspended_by.filter(|_| i.state == LifecycleState::Suspended).map(|s| s.as_str()),
        ])?;
        Ok(())
    }
    fn set_identity_state(&mut self, id: i64, state: LifecycleState, at: OffsetDateTime) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE identities SET state = ?2, updated_at = ?3,
             suspended_by = CASE WHEN ?2 = 'suspended' THEN suspended_by END WHERE id = ?1",
        )?;
        st.execute(params![id, state.as_str(), ts(at)])?;
        Ok(())
    }
}
