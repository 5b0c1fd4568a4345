//! Access, JIT and exception requests, and approvers' answers (one per approver).

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

const REQUEST_COLS: &str =
    "id, kind, requester_id, beneficiary_id, entitlement, intent, duration_secs, state, decision,
    waives, policy_version, created_at, decide_by, decided_at";

fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        kind: parse(&r.get::<_, String>(1)?)?,
        requester_id: r.get(2)?,
        beneficiary_id: r.get(3)?,
        entitlement: r.get(4)?,
        intent: r.get(5)?,
        duration: r.get::<_, Option<i64>>(6)?.map(time::Duration::seconds),
        state: parse(&r.get::<_, String>(7)?)?,
        decision: json_col(&r.get::<_, String>(8)?)?,
        waives: json_col(&r.get::<_, String>(9)?)?,
        policy_version: r.get(10)?,
        created_at: parse_ts(&r.get::<_, String>(11)?)?,
        decide_by: parse_ts(&r.get::<_, String>(12)?)?,
        decided_at: r.get::<_, Option<String>>(13)?.as_deref().map(parse_ts).transpose()?,
    })
}

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        request_id: r.get(0)?,
        approver_id: r.get(1)?,
        approve: r.get(2)?,
        reason: r.get(3)?,
        at: parse_ts(&r.get::<_, String>(4)?)?,
    })
}

impl AccessReads for SqliteTx<'_> {
    fn request(&self, id: i64) -> Result<Option<RequestRow>> {
        let mut st = self.c()?.prepare_cached(&format!("SELECT {REQUEST_COLS} FROM requests WHERE id = ?1"))?;
        Ok(st.query_row([id], request_row).optional()?)
    }
    fn requests(&self, state: Option<RequestState>) -> Result<Vec<RequestRow>> {
        match state {
            Some(st) => q_all(
                self.c()?,
                &format!("SELECT {REQUEST_COLS} FROM requests WHERE state = ?1 ORDER BY id DESC"),
                [st.as_str()],
                request_row,
            ),
            None => q_all(self.c()?, &format!("SELECT {REQUEST_COLS} FROM requests ORDER BY id DESC"), [], request_row),
        }
    }
    fn requests_page(&self, q: &RequestQuery, before: Option<i64>, limit: usize) -> Result<Vec<RequestRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE id < ?1
                   AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR beneficiary_id = ?4)
                 ORDER BY id DESC LIMIT ?5"
            ),
            params![
                before.unwrap_or(i64::MAX),
                q.state.map(|s| s.as_str()),
                q.kind.map(|k| k.as_str()),
                q.beneficiary_id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            request_row,
        )
    }
    fn pending_requests_of(&self, identity_id: i64) -> Result<Vec<RequestRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = 'pending'
                AND (beneficiary_id = ?1 OR requester_id = ?1) ORDER BY id"
            ),
            [identity_id],
            request_row,
        )
    }
    fn requests_overdue(&self, now: OffsetDateTime) -> Result<Vec<RequestRow>> {
        q_all(
            self.c()?,
            &format!("SELECT {REQUEST_COLS} FROM requests WHERE state = 'pending' AND decide_by <= ?1 ORDER BY id"),
            [ts(now)],
            request_row,
        )
    }
    fn approvals(&self, request_id: i64) -> Result<Vec<ApprovalRow>> {
        q_all(
            self.c()?,
            "SELECT request_id, approver_id, approve, reason, at FROM approvals WHERE request_id = ?1 ORDER BY at",
            [request_id],
            approval_row,
        )
    }
}

impl AccessWrites for SqliteTx<'_> {
    fn insert_request(&mut self, r: &NewRequest<'_>) -> Result<i64> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO requests (kind, requester_id, beneficiary_id, entitlement, intent, duration_secs, state,
               decision, waives, policy_version, created_at, decide_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        st.execute(params![
            r.kind.as_str(),
            r.requester_id,
            r.beneficiary_id,
            r.entitlement,
            r.intent,
            r.duration.map(|d| d.whole_seconds()),
            r.state.as_str(),
            r.decision.to_string(),
            serde_json::to_string(r.waives).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            r.policy_version,
            ts(r.at),
            ts(r.decide_by),
        ])?;
        Ok(self.c()?.last_insert_rowid())
    }
    fn finish_request(&mut self, id: i64, to: RequestState, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .c()?
            .prepare_cached("UPDATE requests SET state = ?2, decided_at = ?3 WHERE id = ?1 AND state = 'pending'")?;
        Ok(st.execute(params![id, to.as_str(), ts(at)])? == 1)
    }
    fn insert_approval(&mut self, a: &ApprovalRow) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO approvals (request_id, approver_id, approve, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )?;
        Ok(st.execute(params![a.request_id, a.approver_id, a.approve, a.reason, ts(a.at)])? == 1)
    }
}
