//! Deployed policy bundles: every version's files, and the order they were deployed in.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use time::OffsetDateTime;

fn q_current_version(c: &Connection) -> Result<Option<String>> {
    let mut st = c.prepare_cached("SELECT version FROM policy_deployments ORDER BY seq DESC LIMIT 1")?;
    Ok(st.query_row([], |r| r.get(0)).optional()?)
}

fn q_current_policy(c: &Connection) -> Result<Option<StoredPolicy>> {
    let Some(version) = q_current_version(c)? else { return Ok(None) };
    let mut st = c.prepare_cached("SELECT path, content FROM policy_files WHERE version = ?1")?;
    let files = st
        .query_map([&version], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(Some(StoredPolicy { version, files }))
}

impl PolicyReads for SqliteTx<'_> {
    fn current_policy(&self) -> Result<Option<StoredPolicy>> {
        q_current_policy(self.c()?)
    }
    fn current_policy_version(&self) -> Result<Option<String>> {
        q_current_version(self.c()?)
    }
}

impl PolicyWrites for SqliteTx<'_> {
    fn deploy_policy(&mut self, p: &StoredPolicy, at: OffsetDateTime) -> Result<()> {
        {
            let mut st = self
                .c()?
                .prepare_cached("INSERT OR IGNORE INTO policy_files (version, path, content) VALUES (?1, ?2, ?3)")?;
            for (path, content) in &p.files {
                st.execute(params![p.version, path, content])?;
            }
        }
        self.c()?.execute(
            "INSERT INTO policy_deployments (version, deployed_at) VALUES (?1, ?2)",
            params![p.version, ts(at)],
        )?;
        Ok(())
    }
}
