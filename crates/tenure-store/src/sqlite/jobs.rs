//! The job queue: one pending job per (kind, identity, system), leases, attempt fencing.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use time::OffsetDateTime;

const JOB_COLS: &str = "id, kind, identity_id, system, state, attempts, last_error, account, payload, request_id";

/// The columns that name a job's work: at most one pending and one live attempt per key.
const SAME_WORK: &str =
    "p.kind = j.kind AND p.identity_id IS j.identity_id AND p.system = j.system AND p.account = j.account";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: parse::<JobKind>(&r.get::<_, String>(1)?)?,
        identity_id: r.get(2)?,
        system: r.get(3)?,
        state: parse::<JobState>(&r.get::<_, String>(4)?)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        account: r.get(7)?,
        payload: r.get::<_, Option<String>>(8)?.as_deref().map(json_col).transpose()?,
        request_id: r.get(9)?,
    })
}

fn q_job_counts(c: &Connection) -> Result<BTreeMap<String, i64>> {
    let mut st = c.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(rows)
}

fn q_jobs(c: &Connection, state: Option<JobState>) -> Result<Vec<JobRow>> {
    let rows = match state {
        Some(s) => {
            let mut st = c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE state = ?1 ORDER BY id"))?;
            st.query_map([s.as_str()], job_row)?.collect::<rusqlite::Result<Vec<_>>>()?
        }
        None => {
            let mut st = c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs ORDER BY id"))?;
            st.query_map([], job_row)?.collect::<rusqlite::Result<Vec<_>>>()?
        }
    };
    Ok(rows)
}

impl JobReads for SqliteTx<'_> {
    fn job_counts(&self) -> Result<BTreeMap<String, i64>> {
        q_job_counts(self.c()?)
    }
    fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRow>> {
        q_jobs(self.c()?, state)
    }
    fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let mut st = self.c()?.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))?;
        Ok(st.query_row([id], job_row).optional()?)
    }
    fn jobs_page(&self, q: &JobQuery<'_>, after: Option<i64>, limit: usize) -> Result<Vec<JobRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {JOB_COLS} FROM jobs WHERE id > ?1
                   AND (?2 IS NULL OR state = ?2)
                   AND (?3 = 0 OR state = 'dead' OR (state = 'pending' AND last_error IS NOT NULL))
                   AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR system = ?5) AND (?6 IS NULL OR identity_id = ?6)
                 ORDER BY id LIMIT ?7"
            ),
            params![
                after.unwrap_or(i64::MIN),
                q.state.map(|s| s.as_str()),
                q.failing,
                q.kind.map(|k| k.as_str()),
                q.system,
                q.identity_id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            job_row,
        )
    }
    fn unfinished_jobs(&self, identity_id: i64) -> Result<i64> {
        Ok(self
            .c()?
            .prepare_cached(
                "SELECT count(*) FROM jobs WHERE identity_id = ?1 AND kind <> 'notify' AND state <> 'done'",
            )?
            .query_row([identity_id], |r| r.get(0))?)
    }
}

impl JobWrites for SqliteTx<'_> {
    fn enqueue(&mut self, job: &NewJob<'_>) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO jobs (kind, identity_id, system, state, next_run_at, created_at, updated_at, request_id)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?5, ?6)
             ON CONFLICT (kind, coalesce(identity_id, 0), system, account) WHERE state = 'pending'
             DO UPDATE SET next_run_at = min(jobs.next_run_at, excluded.next_run_at), updated_at = excluded.updated_at,
                           request_id = coalesce(excluded.request_id, jobs.request_id)",
        )?;
        st.execute(params![
            job.kind.as_str(),
            job.identity_id,
            job.system,
            millis(job.run_at),
            ts(job.run_at),
            job.request_id
        ])?;
        Ok(())
    }
    fn enqueue_drift(&mut self, job: &NewDriftJob<'_>) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO jobs (kind, identity_id, system, account, payload, state, next_run_at, created_at, updated_at)
             VALUES ('drift', ?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6)
             ON CONFLICT (kind, coalesce(identity_id, 0), system, account) WHERE state = 'pending'
             DO UPDATE SET payload = excluded.payload, next_run_at = min(jobs.next_run_at, excluded.next_run_at),
                           updated_at = excluded.updated_at",
        )?;
        st.execute(params![
            job.identity_id,
            job.system,
            job.account,
            job.payload.to_string(),
            millis(job.run_at),
            ts(job.run_at)
        ])?;
        Ok(())
    }
    fn enqueue_notice(&mut self, job: &NewNoticeJob<'_>) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO jobs (kind, identity_id, system, account, payload, state, next_run_at, created_at, updated_at)
             VALUES ('notify', ?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6)
             ON CONFLICT (kind, coalesce(identity_id, 0), system, account) WHERE state = 'pending' DO NOTHING",
        )?;
        st.execute(params![
            job.identity_id,
            job.channel,
            job.key,
            job.payload.to_string(),
            millis(job.run_at),
            ts(job.run_at)
        ])?;
        Ok(())
    }
    fn claim_job(&mut self, now: OffsetDateTime, lease: time::Duration) -> Result<Option<JobRow>> {
        let now_ms = millis(now);
        // Two index-friendly probes (an `OR` across states would scan every job): jobs whose
        // worker's lease ran out first (the oldest work), then due pending jobs.
        // INVARIANT: one live worker per (kind, identity, system) at a time.
        const FREE: &str = "NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.identity_id IS j.identity_id
                             AND r.system = j.system AND r.account = j.account AND r.state = 'running'
                             AND r.lease_until > ?1 AND r.id <> j.id)";
        let pending = format!(
            "SELECT j.id FROM jobs j WHERE j.state = 'pending' AND j.next_run_at <= ?1 AND {FREE}
             ORDER BY j.next_run_at, j.id LIMIT 1"
        );
        let expired = format!(
            "SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until <= ?1 AND {FREE}
             ORDER BY j.lease_until, j.id LIMIT 1"
        );
        let mut id: Option<i64> = self.c()?.prepare_cached(&expired)?.query_row([now_ms], |r| r.get(0)).optional()?;
        if id.is_none() {
            id = self.c()?.prepare_cached(&pending)?.query_row([now_ms], |r| r.get(0)).optional()?;
        }
        let Some(id) = id else { return Ok(None) };
        let mut st = self.c()?.prepare_cached(&format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?2, updated_at = ?3
             WHERE id = ?1 RETURNING {JOB_COLS}"
        ))?;
        Ok(st.query_row(params![id, millis(now + lease), ts(now)], job_row).optional()?)
    }
    fn finish_job(&mut self, job: &JobRow, at: OffsetDateTime) -> Result<bool> {
        // INVARIANT (fencing): only the attempt that holds the job (running, same attempt
        // number) may end it; a stale attempt whose lease ran out changes nothing.
        let mut st = self.c()?.prepare_cached(
            "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?;
        Ok(st.execute(params![job.id, job.attempts, ts(at)])? == 1)
    }
    fn fail_job(
        &mut self,
        job: &JobRow,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        // Fenced like `finish_job`: only the attempt that holds the job changes it.
        let Some(retry_at) = retry_at else {
            let mut st = self.c()?.prepare_cached(
                "UPDATE jobs SET state = 'dead', lease_until = NULL, last_error = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            )?;
            return Ok(st.execute(params![job.id, job.attempts, error, ts(at)])? == 1);
        };
        // Another, newer pending job for the same work already exists: it will do this job's
        // work too (the unique pending index allows only one).
        let superseded: bool = self.c()?.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM jobs p, jobs j WHERE j.id = ?1 AND p.id <> j.id AND p.state = 'pending'
                   AND {SAME_WORK})"
            ),
            [job.id],
            |r| r.get(0),
        )?;
        let mut st = self.c()?.prepare_cached(
            "UPDATE jobs SET state = ?3, next_run_at = ?4, lease_until = NULL, last_error = ?5, updated_at = ?6
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?;
        let state = if superseded { "done" } else { "pending" };
        Ok(st.execute(params![job.id, job.attempts, state, millis(retry_at), error, ts(at)])? == 1)
    }
    fn renew_lease(&mut self, job: &JobRow, until: OffsetDateTime) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE jobs SET lease_until = max(lease_until, ?3) WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?;
        Ok(st.execute(params![job.id, job.attempts, millis(until)])? == 1)
    }
    fn retry_dead_jobs(&mut self, which: DeadJobs, at: OffsetDateTime) -> Result<Vec<i64>> {
        let (identity_id, job_id) = match which {
            DeadJobs::All => (None, None),
            DeadJobs::OfIdentity(i) => (Some(i), None),
            DeadJobs::One(j) => (None, Some(j)),
        };
        let dead: Vec<i64> = {
            let mut st = self.c()?.prepare_cached(
                "SELECT id FROM jobs WHERE state = 'dead' AND (?1 IS NULL OR identity_id = ?1) AND (?2 IS NULL OR id = ?2)
                 ORDER BY id",
            )?;
            st.query_map(params![identity_id, job_id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut requeued = Vec::new();
        for id in dead {
            let pending: bool = self.c()?.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM jobs p, jobs j WHERE j.id = ?1 AND p.id <> j.id AND p.state = 'pending'
                       AND {SAME_WORK})"
                ),
                [id],
                |r| r.get(0),
            )?;
            let (state, attempts) = if pending { ("done", "attempts") } else { ("pending", "0") };
            self.c()?.execute(
                &format!(
                    "UPDATE jobs SET state = ?2, attempts = {attempts}, next_run_at = ?3, lease_until = NULL, updated_at = ?4
                     WHERE id = ?1"
                ),
                params![id, state, millis(at), ts(at)],
            )?;
            if !pending {
                requeued.push(id);
            }
        }
        Ok(requeued)
    }
}
