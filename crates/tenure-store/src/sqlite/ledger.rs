//! The ledger: `entry` holds exactly the bytes hashed into the Merkle tree; append-only by
//! trigger; and its signed checkpoints.

use super::SqliteTx;
use super::conv::*;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};

fn ledger_row(seq: i64, entry: &[u8]) -> rusqlite::Result<LedgerRow> {
    let e = tenure_ledger::Entry::parse(entry).map_err(|m| conv_err(format!("ledger entry {seq}: {m}")))?;
    let event = tenure_ledger::LedgerEvent::from_parts(&e.action, e.detail)
        .map_err(|m| conv_err(format!("ledger entry {seq}: {m}")))?;
    Ok(LedgerRow {
        seq,
        at: parse_ts(&e.at)?,
        actor: e.actor,
        subject: e.subject,
        policy_version: e.policy_version,
        event,
    })
}

fn q_ledger_for(c: &Connection, subject: &str) -> Result<Vec<LedgerRow>> {
    let mut st = c.prepare_cached("SELECT seq, entry FROM ledger WHERE subject = ?1 ORDER BY seq")?;
    let rows = st
        .query_map([subject], |r| ledger_row(r.get(0)?, &r.get::<_, Vec<u8>>(1)?))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_ledger_last(c: &Connection, subject: &str, action: &str) -> Result<Option<LedgerRow>> {
    let mut st =
        c.prepare_cached("SELECT seq, entry FROM ledger WHERE subject = ?1 AND action = ?2 ORDER BY seq DESC LIMIT 1")?;
    let mut rows = st.query_map([subject, action], |r| ledger_row(r.get(0)?, &r.get::<_, Vec<u8>>(1)?))?;
    Ok(rows.next().transpose()?)
}

fn q_ledger_entries(c: &Connection, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut st = c.prepare_cached("SELECT seq, entry FROM ledger WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
    let rows = st.query_map([from, limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_ledger_leaves(c: &Connection, from: i64, to: i64) -> Result<Vec<tenure_ledger::Hash>> {
    let mut st = c.prepare_cached("SELECT seq, leaf FROM ledger WHERE seq >= ?1 AND seq < ?2 ORDER BY seq")?;
    let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    let mut rows = st.query([from, to])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let leaf: Vec<u8> = r.get(1)?;
        let leaf: tenure_ledger::Hash = leaf
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("ledger entry {seq}: leaf hash is not 32 bytes")))?;
        out.push(leaf);
    }
    Ok(out)
}

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckpointRow> {
    Ok(CheckpointRow {
        size: r.get(0)?,
        root: r.get(1)?,
        frontier: r.get(2)?,
        note: r.get(3)?,
        created_at: parse_ts(&r.get::<_, String>(4)?)?,
    })
}

fn q_checkpoints(c: &Connection) -> Result<Vec<CheckpointRow>> {
    let mut st = c.prepare_cached("SELECT size, root, frontier, note, created_at FROM checkpoints ORDER BY size")?;
    let rows = st.query_map([], checkpoint_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_latest_checkpoint(c: &Connection) -> Result<Option<CheckpointRow>> {
    let mut st =
        c.prepare_cached("SELECT size, root, frontier, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1")?;
    Ok(st.query_row([], checkpoint_row).optional()?)
}

impl LedgerReads for SqliteTx<'_> {
    fn ledger_head(&self) -> Result<Option<LedgerHead>> {
        if let Some((seq, leaf)) = self.1.0.get() {
            return Ok(Some(LedgerHead { seq, leaf }));
        }
        let head: Option<(i64, Vec<u8>)> = self
            .c()?
            .prepare_cached("SELECT seq, leaf FROM ledger ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((seq, leaf)) = head else { return Ok(None) };
        let leaf = leaf
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("ledger entry {seq}: leaf hash is not 32 bytes")))?;
        Ok(Some(LedgerHead { seq, leaf }))
    }
    fn ledger_for(&self, subject: &str) -> Result<Vec<LedgerRow>> {
        q_ledger_for(self.c()?, subject)
    }
    fn ledger_last(&self, subject: &str, action: &str) -> Result<Option<LedgerRow>> {
        q_ledger_last(self.c()?, subject, action)
    }
    fn ledger_count(&self) -> Result<i64> {
        q_count(self.c()?, "ledger")
    }
    fn ledger_entries(&self, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        q_ledger_entries(self.c()?, from, limit)
    }
    fn ledger_leaves(&self, from: i64, to: i64) -> Result<Vec<tenure_ledger::Hash>> {
        q_ledger_leaves(self.c()?, from, to)
    }
    fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        q_checkpoints(self.c()?)
    }
    fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>> {
        q_latest_checkpoint(self.c()?)
    }
}

impl LedgerWrites for SqliteTx<'_> {
    fn append_entry(&mut self, e: &NewEntry<'_>) -> Result<i64> {
        // We hold the write lock: nobody else appends between reading the head and this insert.
        let (seq, prev) = match self.ledger_head()? {
            Some(h) => (h.seq + 1, hex::encode(h.leaf)),
            None => (0, tenure_ledger::entry::ZERO.to_owned()),
        };
        let (action, detail) = e.event.to_parts();
        let entry = tenure_ledger::Entry {
            seq: u64::try_from(seq).unwrap_or(0),
            prev,
            at: ts(e.at),
            actor: e.actor.to_owned(),
            action,
            subject: e.subject.to_owned(),
            policy_version: e.policy_version.to_owned(),
            detail,
            request_id: e.request_id.map(str::to_owned),
        };
        let bytes = entry.to_bytes();
        let leaf = tenure_ledger::merkle::leaf_hash(&bytes);
        let mut st = self
            .c()?
            .prepare_cached("INSERT INTO ledger (seq, subject, action, entry, leaf) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        st.execute(params![seq, e.subject, entry.action, bytes, &leaf[..]])?;
        self.1.0.set(Some((seq, leaf)));
        Ok(seq)
    }
    fn add_checkpoint(&mut self, c: &CheckpointRow) -> Result<()> {
        let mut st = self.c()?.prepare_cached(
            "INSERT INTO checkpoints (size, root, frontier, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        st.execute(params![c.size, c.root, c.frontier, c.note, ts(c.created_at)])?;
        Ok(())
    }
}
