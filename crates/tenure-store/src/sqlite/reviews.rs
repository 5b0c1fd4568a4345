//! Access review campaigns, their items, reviewers and decisions; posture report snapshots.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::params;
use time::OffsetDateTime;

const CAMPAIGN_COLS: &str =
    "id, name, state, policy_version, stages, started_at, deadline, reminded, started_by, closed_at";

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        policy_version: r.get(3)?,
        stages: r.get(4)?,
        started_at: parse_ts(text(r, 5)?)?,
        deadline: parse_ts(text(r, 6)?)?,
        reminded: r.get(7)?,
        started_by: r.get(8)?,
        closed_at: text_or_null(r, 9)?.map(parse_ts).transpose()?,
    })
}

const ITEM_COLS: &str =
    "i.id, i.campaign_id, i.identity_id, i.grant_id, i.entitlement, i.system, i.origin, i.privileged,
     i.granted_at, i.stage, i.recommendation, i.evidence, i.outcome, i.decided_at, i.verified_seq";

fn item_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewItemRow> {
    Ok(ReviewItemRow {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        identity_id: r.get(2)?,
        grant_id: r.get(3)?,
        entitlement: r.get(4)?,
        system: r.get(5)?,
        origin: r.get(6)?,
        privileged: r.get(7)?,
        granted_at: text_or_null(r, 8)?.map(parse_ts).transpose()?,
        stage: r.get(9)?,
        recommendation: r.get(10)?,
        evidence: json_col(text(r, 11)?)?,
        outcome: r.get(12)?,
        decided_at: text_or_null(r, 13)?.map(parse_ts).transpose()?,
        verified_seq: r.get(14)?,
    })
}

fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewDecisionRow> {
    Ok(ReviewDecisionRow {
        item_id: r.get(0)?,
        stage: r.get(1)?,
        decision: r.get(2)?,
        reason: r.get(3)?,
        decided_by: r.get(4)?,
        at: parse_ts(text(r, 5)?)?,
        seq: r.get(6)?,
    })
}

impl ReviewReads for SqliteTx<'_> {
    fn campaign(&self, id: i64) -> Result<Option<CampaignRow>> {
        Ok(q_all(
            self.c()?,
            &format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns WHERE id = ?1"),
            [id],
            campaign_row,
        )?
        .pop())
    }
    fn campaigns(&self, state: Option<&str>) -> Result<Vec<CampaignRow>> {
        q_all(
            self.c()?,
            &format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC"),
            [state],
            campaign_row,
        )
    }
    fn last_campaign(&self, name: &str) -> Result<Option<CampaignRow>> {
        Ok(q_all(
            self.c()?,
            &format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns WHERE name = ?1 ORDER BY id DESC LIMIT 1"),
            [name],
            campaign_row,
        )?
        .pop())
    }
    fn review_item(&self, id: i64) -> Result<Option<ReviewItemRow>> {
        Ok(q_all(self.c()?, &format!("SELECT {ITEM_COLS} FROM review_items i WHERE i.id = ?1"), [id], item_row)?.pop())
    }
    fn review_items(
        &self,
        campaign_id: i64,
        q: &ReviewItemQuery,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ReviewItemRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.unwrap_or(i64::MIN);
        match q.reviewer {
            None => q_all(
                self.c()?,
                &format!(
                    "SELECT {ITEM_COLS} FROM review_items i
                     WHERE i.campaign_id = ?1 AND i.id > ?2 AND (?3 = 0 OR i.outcome IS NULL)
                     ORDER BY i.id LIMIT ?4"
                ),
                params![campaign_id, after, q.undecided, limit],
                item_row,
            ),
            Some(who) => q_all(
                self.c()?,
                &format!(
                    "SELECT {ITEM_COLS} FROM review_reviewers r JOIN review_items i ON i.id = r.item_id AND i.stage = r.stage
                     WHERE r.identity_id = ?1 AND i.campaign_id = ?2 AND i.id > ?3 AND (?4 = 0 OR i.outcome IS NULL)
                     ORDER BY i.id LIMIT ?5"
                ),
                params![who, campaign_id, after, q.undecided, limit],
                item_row,
            ),
        }
    }
    fn item_reviewers(&self, item_id: i64, stage: i64) -> Result<Vec<i64>> {
        let mut st = self.c()?.prepare_cached(
            "SELECT identity_id FROM review_reviewers WHERE item_id = ?1 AND stage = ?2 ORDER BY identity_id",
        )?;
        let rows = st.query_map([item_id, stage], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
    fn review_decisions(&self, campaign_id: i64) -> Result<Vec<ReviewDecisionRow>> {
        q_all(
            self.c()?,
            "SELECT d.item_id, d.stage, d.decision, d.reason, d.decided_by, d.at, d.seq
             FROM review_decisions d JOIN review_items i ON i.id = d.item_id
             WHERE i.campaign_id = ?1 ORDER BY d.item_id, d.stage",
            [campaign_id],
            decision_row,
        )
    }
    fn item_decisions(&self, item_id: i64) -> Result<Vec<ReviewDecisionRow>> {
        q_all(
            self.c()?,
            "SELECT item_id, stage, decision, reason, decided_by, at, seq FROM review_decisions
             WHERE item_id = ?1 ORDER BY stage",
            [item_id],
            decision_row,
        )
    }
    fn account_review(&self, system: &str, account: &str) -> Result<Option<i64>> {
        Ok(q_all(
            self.c()?,
            "SELECT id FROM review_items WHERE origin = 'unlinked' AND system = ?1 AND entitlement = ?2
             ORDER BY id DESC LIMIT 1",
            params![system, account],
            |r| r.get(0),
        )?
        .pop())
    }
    fn any_undecided(&self, campaign_id: i64) -> Result<bool> {
        Ok(self
            .c()?
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM review_items WHERE campaign_id = ?1 AND outcome IS NULL)")?
            .query_row([campaign_id], |r| r.get(0))?)
    }
    fn revocations_unverified(&self, campaign_id: i64) -> Result<bool> {
        Ok(self
            .c()?
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM review_items i LEFT JOIN grants g ON g.id = i.grant_id AND i.origin != 'unlinked'
                 WHERE i.campaign_id = ?1 AND i.outcome = 'revoke'
                   AND CASE WHEN i.origin = 'unlinked' THEN i.verified_seq IS NULL
                            ELSE g.id IS NOT NULL AND g.state != 'revocation_verified' END)",
            )?
            .query_row([campaign_id], |r| r.get(0))?)
    }
    fn review_counts(&self, campaign_id: i64) -> Result<BTreeMap<String, i64>> {
        let mut st = self.c()?.prepare_cached(
            "SELECT coalesce(outcome, 'undecided'), count(*) FROM review_items WHERE campaign_id = ?1 GROUP BY 1",
        )?;
        let rows = st.query_map([campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
    fn reviewer_pace(&self, campaign_id: i64) -> Result<Vec<(i64, i64, OffsetDateTime, OffsetDateTime)>> {
        q_all(
            self.c()?,
            "SELECT d.decided_by, count(*), min(d.at), max(d.at) FROM review_decisions d
             JOIN review_items i ON i.id = d.item_id
             WHERE i.campaign_id = ?1 AND d.decided_by IS NOT NULL GROUP BY d.decided_by ORDER BY d.decided_by",
            [campaign_id],
            |r| Ok((r.get(0)?, r.get(1)?, parse_ts(text(r, 2)?)?, parse_ts(text(r, 3)?)?)),
        )
    }
    fn last_attested(&self, identity_id: i64) -> Result<Option<OffsetDateTime>> {
        let mut st = self.c()?.prepare_cached("SELECT attested_at FROM attestations WHERE identity_id = ?1")?;
        let mut rows = st.query([identity_id])?;
        match rows.next()? {
            Some(r) => Ok(Some(parse_ts(text(r, 0)?)?)),
            None => Ok(None),
        }
    }
    fn attestations_due(&self, kind: tenure_model::IdentityKind, before: OffsetDateTime) -> Result<Vec<IdentityRow>> {
        let cols: String =
            super::identities::IDENTITY_COLS.split(", ").map(|c| format!("i.{c}")).collect::<Vec<_>>().join(", ");
        q_all(
            self.c()?,
            &format!(
                "SELECT {cols} FROM identities i LEFT JOIN attestations a ON a.identity_id = i.id
                 WHERE i.kind = ?1 AND i.state = 'active' AND coalesce(a.attested_at, i.created_at) < ?2
                 ORDER BY i.id"
            ),
            params![kind.as_str(), ts(before)],
            super::identities::identity_row,
        )
    }
    fn reviewers_pending(&self, campaign_id: i64) -> Result<Vec<(i64, i64)>> {
        let mut st = self.c()?.prepare_cached(
            "SELECT r.identity_id, count(*) FROM review_items i
             JOIN review_reviewers r ON r.item_id = i.id AND r.stage = i.stage
             WHERE i.campaign_id = ?1 AND i.outcome IS NULL GROUP BY r.identity_id ORDER BY r.identity_id",
        )?;
        let rows = st.query_map([campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl ReviewWrites for SqliteTx<'_> {
    fn insert_campaign(&mut self, c: &NewCampaign<'_>) -> Result<i64> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO review_campaigns (name, state, policy_version, stages, started_at, deadline, started_by)
             VALUES (?1, 'open', ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?;
        Ok(st.query_row(
            params![c.name, c.policy_version, c.stages, ts(c.started_at), ts(c.deadline), c.started_by],
            |r| r.get(0),
        )?)
    }
    fn insert_review_item(&mut self, i: &NewReviewItem<'_>) -> Result<i64> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO review_items (campaign_id, identity_id, grant_id, entitlement, system, origin, privileged,
                                       granted_at, recommendation, evidence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )?;
        Ok(st.query_row(
            params![
                i.campaign_id,
                i.identity_id,
                i.grant_id,
                i.entitlement,
                i.system,
                i.origin,
                i.privileged,
                i.granted_at.map(ts),
                i.recommendation,
                i.evidence.to_string()
            ],
            |r| r.get(0),
        )?)
    }
    fn assign_reviewers(&mut self, item_id: i64, stage: i64, reviewers: &[i64]) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO review_reviewers (item_id, stage, identity_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        for r in reviewers {
            st.execute(params![item_id, stage, r])?;
        }
        Ok(())
    }
    fn insert_review_decision(&mut self, d: &ReviewDecisionRow) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO review_decisions (item_id, stage, decision, reason, decided_by, at, seq)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM review_items WHERE id = ?1 AND stage = ?2 AND outcome IS NULL
             ON CONFLICT DO NOTHING",
        )?;
        Ok(st.execute(params![d.item_id, d.stage, d.decision, d.reason, d.decided_by, ts(d.at), d.seq])? == 1)
    }
    fn set_review_item_verified(&mut self, id: i64, seq: i64) -> Result<bool> {
        Ok(self
            .c()?
            .prepare_cached("UPDATE review_items SET verified_seq = ?2 WHERE id = ?1 AND verified_seq IS NULL")?
            .execute(params![id, seq])?
            == 1)
    }
    fn settle_review_item(&mut self, id: i64, outcome: Option<&str>, at: OffsetDateTime) -> Result<bool> {
        let n = match outcome {
            Some(o) => self
                .c()?
                .prepare_cached(
                    "UPDATE review_items SET outcome = ?2, decided_at = ?3 WHERE id = ?1 AND outcome IS NULL",
                )?
                .execute(params![id, o, ts(at)])?,
            None => self
                .c()?
                .prepare_cached("UPDATE review_items SET stage = stage + 1 WHERE id = ?1 AND outcome IS NULL")?
                .execute([id])?,
        };
        Ok(n == 1)
    }
    fn set_campaign_state(&mut self, id: i64, from: &str, to: &str, at: OffsetDateTime) -> Result<bool> {
        let closed = (to == "closed").then(|| ts(at));
        Ok(self
            .c()?
            .prepare_cached(
                "UPDATE review_campaigns SET state = ?3, closed_at = coalesce(?4, closed_at) WHERE id = ?1 AND state = ?2",
            )?
            .execute(params![id, from, to, closed])?
            == 1)
    }
    fn put_attestation(&mut self, identity_id: i64, by: i64, reason: &str, at: OffsetDateTime) -> Result<()> {
        self.c()?
            .prepare_cached(
                "INSERT INTO attestations (identity_id, attested_at, attested_by, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (identity_id) DO UPDATE SET attested_at = excluded.attested_at,
                     attested_by = excluded.attested_by, reason = excluded.reason",
            )?
            .execute(params![identity_id, ts(at), by, reason])?;
        Ok(())
    }
    fn set_campaign_reminded(&mut self, id: i64, reminded: i64) -> Result<()> {
        self.c()?
            .prepare_cached("UPDATE review_campaigns SET reminded = ?2 WHERE id = ?1")?
            .execute(params![id, reminded])?;
        Ok(())
    }
}

impl PostureReads for SqliteTx<'_> {
    fn posture_snapshots(&self, limit: usize) -> Result<Vec<(OffsetDateTime, serde_json::Value)>> {
        let mut st = self.c()?.prepare_cached("SELECT at, report FROM posture_snapshots ORDER BY id DESC LIMIT ?1")?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok((parse_ts(text(r, 0)?)?, json_col::<serde_json::Value>(text(r, 1)?)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl PostureWrites for SqliteTx<'_> {
    fn put_posture_snapshot(&mut self, at: OffsetDateTime, report: &serde_json::Value) -> Result<()> {
        self.c()?
            .prepare_cached("INSERT INTO posture_snapshots (at, report) VALUES (?1, ?2)")?
            .execute(params![ts(at), report.to_string()])?;
        Ok(())
    }
}
