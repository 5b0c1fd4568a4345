//! API tokens: their hashes and roles, never a secret.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

const TOKEN_COLS: &str = "id, identity_id, roles, hash, description, created_at, expires_at, revoked_at";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        roles: json_col(&r.get::<_, String>(2)?)?,
        hash: r.get(3)?,
        description: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
        expires_at: parse_ts(&r.get::<_, String>(6)?)?,
        revoked_at: r.get::<_, Option<String>>(7)?.as_deref().map(parse_ts).transpose()?,
    })
}

impl TokenReads for SqliteTx<'_> {
    fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let mut st = self.c()?.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"))?;
        Ok(st.query_row([id], token_row).optional()?)
    }
    fn tokens(&self) -> Result<Vec<TokenRow>> {
        q_all(self.c()?, &format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_at, id"), [], token_row)
    }
    fn tokens_page(
        &self,
        q: &TokenQuery,
        now: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TokenRow>> {
        // Oldest first, ties by id: a range scan of the index from the cursor on.
        let cursor: Option<String> = match after {
            None => None,
            Some(a) => match self.token(a)? {
                Some(t) => Some(ts(t.created_at)),
                None => return Ok(Vec::new()),
            },
        };
        q_all(
            self.c()?,
            &format!(
                "SELECT {TOKEN_COLS} FROM api_tokens
                 WHERE (created_at, id) > (coalesce(?6, ''), coalesce(?1, ''))
                   AND (?2 IS NULL OR identity_id = ?2)
                   AND (?3 IS NULL OR ?3 = CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                                               WHEN expires_at <= ?4 THEN 'expired' ELSE 'active' END)
                 ORDER BY created_at, id LIMIT ?5"
            ),
            params![
                after,
                q.identity_id,
                q.state.map(TokenStatus::as_str),
                ts(now),
                i64::try_from(limit).unwrap_or(i64::MAX),
                cursor
            ],
            token_row,
        )
    }
}

impl TokenWrites for SqliteTx<'_> {
    fn insert_token(&mut self, t: &TokenRow) -> Result<()> {
        let roles = serde_json::to_string(&t.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.c()?.prepare_cached(&format!(
            "INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?;
        st.execute(params![
            t.id,
            t.identity_id,
            roles,
            t.hash,
            t.description,
            ts(t.created_at),
            ts(t.expires_at),
            t.revoked_at.map(ts)
        ])?;
        Ok(())
    }
    fn revoke_token(&mut self, id: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st =
            self.c()?.prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?;
        Ok(st.execute(params![id, ts(at)])? == 1)
    }
}
