//! Findings: what people must look at, about an identity or about none.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::params;
use time::OffsetDateTime;

const FINDING_COLS: &str =
    "id, identity_id, kind, entitlement, detail, policy_version, opened_at, resolved_at, system, account, last_seen_at";

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
        system: r.get(8)?,
        account: r.get(9)?,
        last_seen_at: r.get::<_, Option<String>>(10)?.as_deref().map(parse_ts).transpose()?,
    })
}

const RUN_COLS: &str =
    "id, system, state, started_at, finished_at, changes, summary, plan, digest, ledger_seq, policy_version";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        system: r.get(1)?,
        state: r.get(2)?,
        started_at: parse_ts(&r.get::<_, String>(3)?)?,
        finished_at: parse_ts(&r.get::<_, String>(4)?)?,
        changes: r.get(5)?,
        summary: json_col(&r.get::<_, String>(6)?)?,
        plan: json_col(&r.get::<_, String>(7)?)?,
        digest: r.get(8)?,
        ledger_seq: r.get(9)?,
        policy_version: r.get(10)?,
    })
}

impl RunReads for SqliteTx<'_> {
    fn run(&self, id: i64) -> Result<Option<RunRow>> {
        Ok(q_all(self.c()?, &format!("SELECT {RUN_COLS} FROM reconcile_runs WHERE id = ?1"), [id], run_row)?.pop())
    }
    fn runs(&self, system: Option<&str>, before: Option<i64>, limit: u32) -> Result<Vec<RunRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {RUN_COLS} FROM reconcile_runs WHERE (?1 IS NULL OR system = ?1) AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            ),
            params![system, before.unwrap_or(i64::MAX), limit],
            run_row,
        )
    }
    fn changes_since(&self, system: &str, since: OffsetDateTime) -> Result<i64> {
        Ok(self
            .c()?
            .prepare_cached(
                "SELECT coalesce(sum(changes), 0) FROM reconcile_runs WHERE system = ?1 AND started_at >= ?2",
            )?
            .query_row(params![system, ts(since)], |r| r.get(0))?)
    }
}

impl RunWrites for SqliteTx<'_> {
    fn put_run(&mut self, r: &NewRun<'_>) -> Result<i64> {
        self.c()?.prepare_cached(
            "INSERT INTO reconcile_runs (system, state, started_at, finished_at, changes, summary, plan, digest, policy_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            r.system,
            r.state,
            ts(r.started_at),
            ts(r.finished_at),
            r.changes,
            r.summary.to_string(),
            r.plan.to_string(),
            r.digest,
            r.policy_version
        ])?;
        Ok(self.c()?.last_insert_rowid())
    }
    fn update_run(&mut self, id: i64, state: &str, changes: i64, summary: &serde_json::Value) -> Result<bool> {
        Ok(self
            .c()?
            .prepare_cached("UPDATE reconcile_runs SET state = ?2, changes = ?3, summary = ?4 WHERE id = ?1")?
            .execute(params![id, state, changes, summary.to_string()])?
            == 1)
    }
    fn set_run_entry(&mut self, id: i64, seq: i64) -> Result<()> {
        self.c()?
            .prepare_cached("UPDATE reconcile_runs SET ledger_seq = ?2 WHERE id = ?1")?
            .execute(params![id, seq])?;
        Ok(())
    }
}

impl FindingReads for SqliteTx<'_> {
    fn findings(&self, open_only: bool) -> Result<Vec<FindingRow>> {
        let filter = if open_only { "WHERE resolved_at IS NULL" } else { "" };
        q_all(self.c()?, &format!("SELECT {FINDING_COLS} FROM findings {filter} ORDER BY id"), [], finding_row)
    }
    fn findings_page(&self, q: &FindingQuery<'_>, after: Option<i64>, limit: usize) -> Result<Vec<FindingRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {FINDING_COLS} FROM findings WHERE id > ?1
                   AND (?2 = 0 OR resolved_at IS NULL) AND (?3 = 0 OR resolved_at IS NOT NULL)
                   AND (?4 IS NULL OR system = ?4) AND (?5 IS NULL OR kind = ?5 OR kind = 'reconcile.' || ?5)
                 ORDER BY id LIMIT ?6"
            ),
            params![
                after.unwrap_or(i64::MIN),
                q.open_only,
                q.resolved_only,
                q.system,
                q.kind,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            finding_row,
        )
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
             ON CONFLICT (coalesce(identity_id, 0), kind, system, account, entitlement) WHERE resolved_at IS NULL
             DO NOTHING",
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
             WHERE identity_id IS ?1 AND kind = ?2 AND entitlement = ?3 AND system = '' AND resolved_at IS NULL",
        )?;
        Ok(st.execute(params![identity_id, kind, entitlement, ts(at)])? > 0)
    }

    fn observe(&mut self, o: &Observation<'_>) -> Result<i64> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO findings (identity_id, kind, entitlement, detail, policy_version, opened_at, system, account, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6)
             ON CONFLICT (coalesce(identity_id, 0), kind, system, account, entitlement) WHERE resolved_at IS NULL
             DO UPDATE SET detail = excluded.detail, last_seen_at = excluded.last_seen_at,
                           policy_version = excluded.policy_version
             RETURNING id",
        )?;
        Ok(st.query_row(
            params![
                o.identity_id,
                o.kind,
                o.target,
                o.detail.to_string(),
                o.policy_version,
                ts(o.at),
                o.system,
                o.account
            ],
            |r| r.get(0),
        )?)
    }

    fn resolve_unseen(&mut self, system: &str, seen_before: OffsetDateTime, at: OffsetDateTime) -> Result<u64> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE findings SET resolved_at = ?3
             WHERE system = ?1 AND kind LIKE 'reconcile.%' AND resolved_at IS NULL AND last_seen_at < ?2",
        )?;
        Ok(st.execute(params![system, ts(seen_before), ts(at)])? as u64)
    }
}
