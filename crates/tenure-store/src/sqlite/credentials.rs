//! The broker's credentials (fingerprints, never secrets) and its signing keys.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;
use time::OffsetDateTime;

const CREDENTIAL_COLS: &str = "id, identity_id, kind, fingerprint, spiffe_id, audience, system, name, purpose, owner, \
     issued_by, issued_at, expires_at, revoked_at, revoke_reason, verified_at, evidence, replaces";

fn credential_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        kind: parse(&r.get::<_, String>(2)?)?,
        fingerprint: r.get(3)?,
        spiffe_id: r.get(4)?,
        audience: json_col(&r.get::<_, String>(5)?)?,
        system: r.get(6)?,
        name: r.get(7)?,
        purpose: r.get(8)?,
        owner: r.get(9)?,
        issued_by: r.get(10)?,
        issued_at: parse_ts(&r.get::<_, String>(11)?)?,
        expires_at: parse_ts(&r.get::<_, String>(12)?)?,
        revoked_at: opt_ts(r.get(13)?)?,
        revoke_reason: r.get(14)?,
        verified_at: opt_ts(r.get(15)?)?,
        evidence: r.get::<_, Option<String>>(16)?.as_deref().map(json_col).transpose()?,
        replaces: r.get(17)?,
    })
}

fn signing_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SigningKeyRow> {
    Ok(SigningKeyRow {
        kid: r.get(0)?,
        usage: r.get(1)?,
        public: r.get(2)?,
        created_at: parse_ts(&r.get::<_, String>(3)?)?,
        retired_at: opt_ts(r.get(4)?)?,
        removed_at: opt_ts(r.get(5)?)?,
    })
}

impl CredentialReads for SqliteTx<'_> {
    fn credential(&self, id: &str) -> Result<Option<CredentialRow>> {
        let mut st = self.c()?.prepare_cached(&format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = ?1"))?;
        Ok(st.query_row([id], credential_row).optional()?)
    }
    fn credential_by_fingerprint(&self, fingerprint: &str) -> Result<Option<CredentialRow>> {
        let mut st =
            self.c()?.prepare_cached(&format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE fingerprint = ?1"))?;
        Ok(st.query_row([fingerprint], credential_row).optional()?)
    }
    fn credentials(&self, identity_id: Option<i64>) -> Result<Vec<CredentialRow>> {
        match identity_id {
            Some(id) => q_all(
                self.c()?,
                &format!(
                    "SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 ORDER BY issued_at DESC, id"
                ),
                [id],
                credential_row,
            ),
            None => q_all(
                self.c()?,
                &format!("SELECT {CREDENTIAL_COLS} FROM credentials ORDER BY issued_at DESC, id"),
                [],
                credential_row,
            ),
        }
    }
    fn credentials_page(
        &self,
        q: &CredentialQuery<'_>,
        now: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRow>> {
        // Newest first, ties by id: the rows after the cursor are older, or as old with a
        // greater id. The bound on `issued_at` is a range whether or not there is a cursor, so
        // the index is searched from the cursor, not scanned from the newest.
        let cursor: Option<String> = match after {
            None => None,
            Some(a) => match self.credential(a)? {
                Some(c) => Some(ts(c.issued_at)),
                None => return Ok(Vec::new()),
            },
        };
        q_all(
            self.c()?,
            &format!(
                "SELECT {CREDENTIAL_COLS} FROM credentials
                 WHERE issued_at <= coalesce(?8, char(1114111)) AND (?8 IS NULL OR issued_at < ?8 OR id > ?1)
                   AND (?2 IS NULL OR identity_id = ?2) AND (?3 IS NULL OR kind = ?3)
                   AND (?4 IS NULL OR system = ?4)
                   AND (?5 IS NULL OR ?5 = CASE
                          WHEN revoked_at IS NOT NULL AND verified_at IS NOT NULL THEN 'revocation-verified'
                          WHEN revoked_at IS NOT NULL THEN 'revoked'
                          WHEN expires_at <= ?6 THEN 'expired'
                          ELSE 'active' END)
                 ORDER BY issued_at DESC, id LIMIT ?7"
            ),
            params![
                after,
                q.identity_id,
                q.kind.map(|k| k.as_str()),
                q.system,
                q.state.map(CredentialStatus::as_str),
                ts(now),
                i64::try_from(limit).unwrap_or(i64::MAX),
                cursor
            ],
            credential_row,
        )
    }
    fn credentials_to_verify(&self, identity_id: i64) -> Result<Vec<CredentialRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 AND verified_at IS NULL AND revoked_at IS NOT NULL ORDER BY issued_at, id"
            ),
            [identity_id],
            credential_row,
        )
    }
    fn credentials_live(&self, identity_id: i64, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 AND verified_at IS NULL AND revoked_at IS NULL AND (expires_at > ?2 OR kind = 'postgres-login') ORDER BY issued_at, id"
            ),
            params![identity_id, ts(now)],
            credential_row,
        )
    }
    fn logins_expired(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {CREDENTIAL_COLS} FROM credentials WHERE kind = 'postgres-login' AND revoked_at IS NULL AND expires_at <= ?1 ORDER BY expires_at, id"
            ),
            [ts(now)],
            credential_row,
        )
    }
    fn revoked_certificates(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
        q_all(
            self.c()?,
            &format!(
                "SELECT {CREDENTIAL_COLS} FROM credentials WHERE kind = 'x509-svid' AND revoked_at IS NOT NULL AND expires_at > ?1 ORDER BY revoked_at, id"
            ),
            [ts(now)],
            credential_row,
        )
    }
    fn last_expiry_signed_by(&self, kid: &str) -> Result<Option<OffsetDateTime>> {
        let mut st = self
            .c()?
            .prepare_cached("SELECT max(expires_at) FROM credentials WHERE kind = 'jwt-svid' AND name = ?1")?;
        let v: Option<String> = st.query_row([kid], |r| r.get(0))?;
        Ok(opt_ts(v)?)
    }
    fn credential_counts(&self, now: OffsetDateTime) -> Result<BTreeMap<String, i64>> {
        let rows = q_all(
            self.c()?,
            "SELECT CASE WHEN revoked_at IS NOT NULL AND verified_at IS NOT NULL THEN 'revocation-verified'
                             WHEN revoked_at IS NOT NULL THEN 'revoked'
                             WHEN expires_at <= ?1 THEN 'expired' ELSE 'active' END AS state, count(*)
                 FROM credentials GROUP BY state",
            [ts(now)],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }
    fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        q_all(
            self.c()?,
            "SELECT kid, usage, public, created_at, retired_at, removed_at FROM signing_keys ORDER BY created_at, kid",
            [],
            signing_key_row,
        )
    }
}

impl CredentialWrites for SqliteTx<'_> {
    fn insert_credential(&mut self, c: &CredentialRow) -> Result<()> {
        let audience = serde_json::to_string(&c.audience).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let evidence = c.evidence.as_ref().map(serde_json::Value::to_string);
        let mut st = self.c()?.prepare_cached(&format!(
            "INSERT INTO credentials ({CREDENTIAL_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ))?;
        st.execute(params![
            c.id,
            c.identity_id,
            c.kind.as_str(),
            c.fingerprint,
            c.spiffe_id,
            audience,
            c.system,
            c.name,
            c.purpose,
            c.owner,
            c.issued_by,
            ts(c.issued_at),
            ts(c.expires_at),
            c.revoked_at.map(ts),
            c.revoke_reason,
            c.verified_at.map(ts),
            evidence,
            c.replaces
        ])?;
        Ok(())
    }
    fn revoke_credential(&mut self, id: &str, at: OffsetDateTime, reason: &str) -> Result<bool> {
        let mut st = self.c()?.prepare_cached(
            "UPDATE credentials SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        )?;
        Ok(st.execute(params![id, ts(at), reason])? == 1)
    }
    fn set_credential_verified(&mut self, id: &str, at: OffsetDateTime, evidence: &serde_json::Value) -> Result<()> {
        let mut st =
            self.c()?.prepare_cached("UPDATE credentials SET verified_at = ?2, evidence = ?3 WHERE id = ?1")?;
        st.execute(params![id, ts(at), evidence.to_string()])?;
        Ok(())
    }
    fn insert_signing_key(&mut self, k: &SigningKeyRow) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO signing_keys (kid, usage, public, created_at, retired_at, removed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        st.execute(params![k.kid, k.usage, k.public, ts(k.created_at), k.retired_at.map(ts), k.removed_at.map(ts)])?;
        Ok(())
    }
    fn retire_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .c()?
            .prepare_cached("UPDATE signing_keys SET retired_at = ?2 WHERE kid = ?1 AND retired_at IS NULL")?;
        Ok(st.execute(params![kid, ts(at)])? == 1)
    }
    fn remove_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .c()?
            .prepare_cached("UPDATE signing_keys SET removed_at = ?2 WHERE kid = ?1 AND removed_at IS NULL")?;
        Ok(st.execute(params![kid, ts(at)])? == 1)
    }
}
