//! SCIM resources pushed by sources.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{OptionalExtension, params};

const SCIM_COLS: &str = "source, id, identity_id, user_name, version, resource, created_at, updated_at";

fn scim_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScimRow> {
    Ok(ScimRow {
        source: r.get(0)?,
        id: r.get(1)?,
        identity_id: r.get(2)?,
        user_name: r.get(3)?,
        version: r.get(4)?,
        resource: json_col(&r.get::<_, String>(5)?)?,
        created_at: parse_ts(&r.get::<_, String>(6)?)?,
        updated_at: parse_ts(&r.get::<_, String>(7)?)?,
    })
}

impl ScimReads for SqliteTx<'_> {
    fn scim_user(&self, source: &str, id: &str) -> Result<Option<ScimRow>> {
        let mut st =
            self.c()?.prepare_cached(&format!("SELECT {SCIM_COLS} FROM scim_users WHERE source = ?1 AND id = ?2"))?;
        Ok(st.query_row(params![source, id], scim_row).optional()?)
    }
    fn scim_user_named(&self, source: &str, user_name: &str) -> Result<Option<ScimRow>> {
        let mut st = self.c()?.prepare_cached(&format!(
            "SELECT {SCIM_COLS} FROM scim_users WHERE source = ?1 AND user_name = ?2 COLLATE NOCASE"
        ))?;
        Ok(st.query_row(params![source, user_name], scim_row).optional()?)
    }
    fn scim_users(&self, source: &str) -> Result<Vec<ScimRow>> {
        q_all(
            self.c()?,
            &format!("SELECT {SCIM_COLS} FROM scim_users WHERE source = ?1 ORDER BY created_at, id"),
            [source],
            scim_row,
        )
    }
    fn scim_user_of(&self, identity_id: i64) -> Result<Option<ScimRow>> {
        let mut st = self.c()?.prepare_cached(&format!("SELECT {SCIM_COLS} FROM scim_users WHERE identity_id = ?1"))?;
        Ok(st.query_row([identity_id], scim_row).optional()?)
    }
}

impl ScimWrites for SqliteTx<'_> {
    fn put_scim_user(&mut self, r: &ScimRow) -> Result<()> {
        let mut st = self.c()?.prepare_cached(&format!(
            "INSERT INTO scim_users ({SCIM_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (source, id) DO UPDATE SET identity_id = ?3, user_name = ?4, version = ?5, resource = ?6,
             updated_at = ?8"
        ))?;
        st.execute(params![
            r.source,
            r.id,
            r.identity_id,
            r.user_name,
            r.version,
            r.resource.to_string(),
            ts(r.created_at),
            ts(r.updated_at)
        ])?;
        Ok(())
    }
    fn delete_scim_user(&mut self, source: &str, id: &str) -> Result<bool> {
        let mut st = self.c()?.prepare_cached("DELETE FROM scim_users WHERE source = ?1 AND id = ?2")?;
        Ok(st.execute(params![source, id])? > 0)
    }
}
