//! Grants (what an identity should hold, with an optimistic `rev`) and accounts (where it
//! holds it, also with a `rev`).

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use time::OffsetDateTime;

const GRANT_COLS: &str =
    "id, identity_id, entitlement, system, state, origin, policy_version, rev, expires_at, request_id";

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        entitlement: r.get(2)?,
        system: r.get(3)?,
        state: parse::<GrantState>(text(r, 4)?)?,
        origin: r.get(5)?,
        policy_version: r.get(6)?,
        rev: r.get(7)?,
        expires_at: text_or_null(r, 8)?.map(parse_ts).transpose()?,
        request_id: r.get(9)?,
    })
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        identity_id: r.get(0)?,
        system: r.get(1)?,
        name: r.get(2)?,
        state: parse::<AccountState>(text(r, 3)?)?,
        rev: r.get(4)?,
        last_login: text_or_null(r, 5)?.map(parse_ts).transpose()?,
    })
}

fn q_grants(c: &Connection, identity_id: i64) -> Result<Vec<GrantRow>> {
    let mut st =
        c.prepare_cached(&format!("SELECT {GRANT_COLS} FROM grants WHERE identity_id = ?1 ORDER BY entitlement"))?;
    let rows = st.query_map([identity_id], grant_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_all_grants(c: &Connection) -> Result<BTreeMap<i64, Vec<GrantRow>>> {
    let mut st = c.prepare_cached(&format!("SELECT {GRANT_COLS} FROM grants ORDER BY identity_id, entitlement"))?;
    let mut out: BTreeMap<i64, Vec<GrantRow>> = BTreeMap::new();
    for g in st.query_map([], grant_row)? {
        let g = g?;
        out.entry(g.identity_id).or_default().push(g);
    }
    Ok(out)
}

fn q_accounts(c: &Connection, identity_id: i64) -> Result<Vec<AccountRow>> {
    let mut st = c.prepare_cached(
        "SELECT identity_id, system, name, state, rev, last_login FROM accounts WHERE identity_id = ?1 ORDER BY system",
    )?;
    let rows = st.query_map([identity_id], account_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_account_by_name(c: &Connection, system: &str, name: &str) -> Result<Option<AccountRow>> {
    let mut st = c.prepare_cached(
        "SELECT identity_id, system, name, state, rev, last_login FROM accounts WHERE system = ?1 AND name = ?2",
    )?;
    Ok(st.query_row(params![system, name], account_row).optional()?)
}

impl GrantReads for SqliteTx<'_> {
    fn grants(&self, identity_id: i64) -> Result<Vec<GrantRow>> {
        q_grants(self.c()?, identity_id)
    }
    fn all_grants(&self) -> Result<BTreeMap<i64, Vec<GrantRow>>> {
        q_all_grants(self.c()?)
    }
    fn grants_expiring(&self, now: OffsetDateTime) -> Result<Vec<GrantRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {GRANT_COLS} FROM grants WHERE expires_at IS NOT NULL AND expires_at <= ?1
                AND state IN ('desired', 'provisioned', 'verified') ORDER BY expires_at"
            ),
            [ts(now)],
            grant_row,
        )
    }
    fn accounts(&self, identity_id: i64) -> Result<Vec<AccountRow>> {
        q_accounts(self.c()?, identity_id)
    }
    fn account_by_name(&self, system: &str, name: &str) -> Result<Option<AccountRow>> {
        q_account_by_name(self.c()?, system, name)
    }
    fn system_accounts(&self, system: &str) -> Result<Vec<AccountRow>> {
        q_all(
            self.c()?,
            "SELECT identity_id, system, name, state, rev, last_login FROM accounts WHERE system = ?1 ORDER BY name",
            [system],
            account_row,
        )
    }
    fn system_grants(&self, system: &str) -> Result<Vec<GrantRow>> {
        q_all(
            self.c()?,
            &format!("SELECT {GRANT_COLS} FROM grants WHERE system = ?1 ORDER BY identity_id, entitlement"),
            [system],
            grant_row,
        )
    }
}

impl GrantWrites for SqliteTx<'_> {
    fn set_account_last_login(&mut self, system: &str, name: &str, at: OffsetDateTime) -> Result<bool> {
        let at = ts(at);
        let mut st = self.c()?.prepare_cached(
            "UPDATE accounts SET last_login = ?3 WHERE system = ?1 AND name = ?2 AND (last_login IS NULL OR last_login < ?3)",
        )?;
        Ok(st.execute(params![system, name, at])? == 1)
    }
    fn put_grant(&mut self, g: &NewGrant<'_>) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO grants (identity_id, entitlement, system, state, origin, policy_version, rev, updated_at,
               expires_at, request_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9)
             ON CONFLICT (identity_id, entitlement) DO UPDATE SET state = excluded.state, origin = excluded.origin,
               policy_version = excluded.policy_version, rev = grants.rev + 1, updated_at = excluded.updated_at,
               expires_at = excluded.expires_at, request_id = excluded.request_id",
        )?;
        st.execute(params![
            g.identity_id,
            g.entitlement,
            g.system,
            g.state.as_str(),
            g.origin,
            g.policy_version,
            ts(g.at),
            g.expires_at.map(ts),
            g.request_id,
        ])?;
        Ok(())
    }
    fn set_grant_state(&mut self, id: i64, rev: i64, to: GrantState, at: OffsetDateTime) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE grants SET state = ?3, rev = rev + 1, updated_at = ?4 WHERE id = ?1 AND rev = ?2",
        )?;
        Ok(st.execute(params![id, rev, to.as_str(), ts(at)])? == 1)
    }
    fn put_account(
        &mut self,
        identity_id: i64,
        system: &str,
        name: &str,
        state: AccountState,
        at: OffsetDateTime,
    ) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO accounts (identity_id, system, name, state, rev, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT (identity_id, system) DO UPDATE SET state = excluded.state, rev = accounts.rev + 1,
               updated_at = excluded.updated_at",
        )?;
        st.execute(params![identity_id, system, name, state.as_str(), ts(at)])?;
        Ok(())
    }
    fn set_account_state(
        &mut self,
        identity_id: i64,
        system: &str,
        rev: i64,
        to: AccountState,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE accounts SET state = ?4, rev = rev + 1, updated_at = ?5 WHERE identity_id = ?1 AND system = ?2 AND rev = ?3",
        )?;
        Ok(st.execute(params![identity_id, system, rev, to.as_str(), ts(at)])? == 1)
    }
}
