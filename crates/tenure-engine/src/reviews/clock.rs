//! What the clock does for reviews: reminders, the deadline's no-answer default (or a pause
//! past its threshold), closing campaigns whose revocations are verified, recurring starts.

use super::{Verdict, apply_defaults, default_for, finish_if_decided, snapshot, subject_of, undecided_items};
use crate::ledger::{Stamp, record};
use crate::steps::notices::{self, Notice};
use crate::{Engine, Result};
use std::collections::{BTreeMap, BTreeSet};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{ReviewClosed, ReviewPaused, ReviewReminded};
use tenure_model::rfc3339 as ts;
use tenure_policy::Bundle;
use tenure_policy::notify::NoticeKind;
use tenure_store::{CampaignRow, IdentityRow, ReadTx, StoreError, WriteTx};
use time::OffsetDateTime;

impl Engine {
    /// What is due for reviews at `now`: reminders, deadlines (the no-answer default, or a
    /// pause past its threshold), campaigns whose revocations are all verified (closed), and
    /// recurring campaigns due to start again. The names of what it did.
    pub(crate) fn reviews_due(&self, policy: &Bundle, now: OffsetDateTime) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let version = policy.version.as_str();
        let campaigns = self.store.read()?.campaigns(None)?;
        for c in campaigns.iter().filter(|c| c.state == "open" || c.state == "completing") {
            let def = policy.reviews.get(&c.name);
            // Looked at on a read snapshot first: most ticks find nothing due, and take no write
            // lock for it.
            let reminders = def.map(|d| d.reminders.as_slice()).unwrap_or_default();
            let reminders_due =
                i64::try_from(reminders.iter().filter(|r| now >= c.deadline - **r).count()).unwrap_or(0);
            let due = match c.state.as_str() {
                "open" => now >= c.deadline || reminders_due > c.reminded,
                _ => {
                    let r = self.store.read()?;
                    !r.any_undecided(c.id)? && !r.revocations_unverified(c.id)?
                }
            };
            if !due {
                continue;
            }
            let mut tx = self.store.write()?;
            let Some(c) = tx.campaign(c.id)? else { continue };
            if c.state == "open" {
                // Reminders: each offset before the deadline once, to those with items left
                // (the deadline is fixed at the start: the count above holds for this row).
                let due = reminders_due;
                if due > c.reminded && now < c.deadline {
                    let mut reviewers = BTreeMap::new();
                    for (id, n) in tx.reviewers_pending(c.id)? {
                        if let Some(r) = tx.identity_by_id(id)? {
                            let n = u64::try_from(n).unwrap_or(0);
                            reviewers.insert(r.reference.to_string(), n);
                            remind(tx.as_mut(), policy, &c, &r, n, due, now)?;
                        }
                    }
                    tx.set_campaign_reminded(c.id, due)?;
                    if !reviewers.is_empty() {
                        record(
                            tx.as_mut(),
                            Stamp::engine(now, version),
                            &subject_of(c.id),
                            LedgerEvent::ReviewReminded(ReviewReminded {
                                campaign: c.id,
                                reviewers,
                                deadline: ts(c.deadline),
                            }),
                        )?;
                        out.push(format!("review {} reminded", c.id));
                    }
                }
                if now >= c.deadline {
                    let undecided = undecided_items(&*tx, c.id)?;
                    let would_revoke = undecided.iter().filter(|i| default_for(def, i) == Verdict::Revoke).count();
                    let max = def.map_or(0, |d| d.max_no_answer_revokes);
                    if u64::try_from(would_revoke).unwrap_or(u64::MAX) > u64::from(max) {
                        tx.set_campaign_state(c.id, "open", "paused", now)?;
                        record(
                            tx.as_mut(),
                            Stamp::engine(now, version),
                            &subject_of(c.id),
                            LedgerEvent::ReviewPaused(ReviewPaused {
                                campaign: c.id,
                                undecided: u64::try_from(undecided.len()).unwrap_or(0),
                                would_revoke: u64::try_from(would_revoke).unwrap_or(0),
                                max_no_answer_revokes: max,
                            }),
                        )?;
                        out.push(format!("review {} paused: its default would revoke {would_revoke}", c.id));
                    } else {
                        apply_defaults(tx.as_mut(), policy, &c, def, now, true)?;
                        finish_if_decided(tx.as_mut(), &c, now)?;
                        out.push(format!("review {} deadline: {} decided by default", c.id, undecided.len()));
                    }
                }
            }
            if let Some(c) = tx.campaign(c.id)?
                && c.state == "completing"
                && close_if_verified(tx.as_mut(), &c, version, now)?
            {
                out.push(format!("review {} closed", c.id));
            }
            tx.commit()?;
        }
        for def in policy.reviews.values() {
            let Some(every) = def.every else { continue };
            let due = |tx: &dyn ReadTx| -> Result<bool> {
                Ok(match tx.last_campaign(&def.name)? {
                    None => true,
                    Some(last) => last.state == "closed" && now >= last.started_at + every,
                })
            };
            if !due(&*self.store.read()?)? {
                continue;
            }
            let mut tx = self.store.write()?;
            let due = due(&*tx)?;
            if due && let Some(id) = snapshot(tx.as_mut(), policy, def, crate::ACTOR_ENGINE, now, None)? {
                tx.commit()?;
                out.push(format!("review {id} ({}) started", def.name));
            }
        }
        Ok(out)
    }
}

fn close_if_verified(tx: &mut dyn WriteTx, c: &CampaignRow, version: &str, now: OffsetDateTime) -> Result<bool> {
    if tx.any_undecided(c.id)? || tx.revocations_unverified(c.id)? {
        return Ok(false);
    }
    let counts = tx.review_counts(c.id)?;
    let n = |k: &str| u64::try_from(counts.get(k).copied().unwrap_or(0)).unwrap_or(0);
    let by_default: BTreeSet<i64> =
        tx.review_decisions(c.id)?.iter().filter(|d| d.decided_by.is_none()).map(|d| d.item_id).collect();
    if !tx.set_campaign_state(c.id, "completing", "closed", now)? {
        return Ok(false);
    }
    record(
        tx,
        Stamp::engine(now, version),
        &subject_of(c.id),
        LedgerEvent::ReviewClosed(ReviewClosed {
            campaign: c.id,
            items: counts.values().map(|v| u64::try_from(*v).unwrap_or(0)).sum(),
            kept: n("keep"),
            revoked: n("revoke"),
            by_default: u64::try_from(by_default.len()).unwrap_or(0),
        }),
    )?;
    Ok(true)
}

/// Tell reviewer `to` that `n` items of campaign `c` are still theirs (reminder number `due`).
fn remind(
    tx: &mut dyn WriteTx,
    policy: &Bundle,
    c: &CampaignRow,
    to: &IdentityRow,
    n: u64,
    due: i64,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if !notices::wanted(policy, NoticeKind::ReviewReminder) {
        return Ok(());
    }
    let items = if n == 1 { "1 item".to_owned() } else { format!("{n} items") };
    let notice = Notice {
        kind: NoticeKind::ReviewReminder,
        key: format!("review:{}:reminder:{due}:{}", c.id, to.reference),
        to: Some(to),
        subject: format!("Reminder: access review {} closes {}; {items} still yours", c.name, ts(c.deadline)),
        text: format!(
            "{items} of access review {} ({}) still wait for your decision; it closes {}.\n\
             Undecided items then get the campaign's default. `tenure reviews show {}` lists them.",
            c.id,
            c.name,
            ts(c.deadline),
            c.id
        ),
        data: serde_json::json!({ "campaign": c.id, "name": c.name, "items": n, "deadline": ts(c.deadline), "reminder": due }),
    };
    notices::notify(tx, policy, &notice, now)
}
