//! Findings: what people must look at, about an identity or about none.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::params;
use time::OffsetDateTime;

const FINDING_COLS: &str = "id, identity_id, kind, entitlement, detail, policy_version, opened_at, resolved_at";

fn finding_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        kind: r.get(2)?,
        entitlement: r.get(3)?,
        detail: json_col(&r.get::<_, String>(4)?)?,
        policy_version: r.get(5)?,
        opened_at: parse_ts(&r.get::<_, String>(6)?)?,
        resolved_at: r.get::<_, Option<String>>(7)?.as_deref().map(parse_ts).transpose()?,
    })
}

impl FindingReads for SqliteTx<'_> {
    fn findings(&self, open_only: bool) -> Result<Vec<FindingRow>> {
        let filter = if open_only { "WHERE resolved_at IS NULL" } else { "" };
        q_all(self.c()?, &format!("SELECT {FINDING_COLS} FROM findings {filter} ORDER BY id"), [], finding_row)
    }
    fn open_findings(&self, identity_id: i64) -> Result<Vec<FindingRow>> {
        q_all(
            self.c()?,
            &format!("SELECT {FINDING_COLS} FROM findings WHERE identity_id = ?1 AND resolved_at IS NULL ORDER BY id"),
            [identity_id],
            finding_row,
        )
    }
}

impl FindingWrites for SqliteTx<'_> {
    fn open_finding(&mut self, f: &NewFinding<'_>) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO findings (identity_id, kind, entitlement, detail, policy_version, opened_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (coalesce(identity_id, 0), kind, entitlement) WHERE resolved_at IS NULL DO NOTHING",
        )?;
        Ok(st.execute(params![
            f.identity_id,
            f.kind,
            f.entitlement,
            f.detail.to_string(),
            f.policy_version,
            ts(f.at)
        ])? == 1)
    }

    fn resolve_finding(
        &mut self,
        identity_id: Option<i64>,
        kind: &str,
        entitlement: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE findings SET resolved_at = ?4
             WHERE identity_id IS ?1 AND kind = ?2 AND entitlement = ?3 AND resolved_at IS NULL",
        )?;
        Ok(st.execute(params![identity_id, kind, entitlement, ts(at)])? > 0)
    }
}
