//! The embedded backend: one SQLite file in WAL mode, one writer connection (SQLite's single
//! writer, held for a whole unit of work) and a pool of readers. One file per capability, each
//! implementing its traits for the one transaction type, `SqliteTx`.

mod access;
mod conv;
mod credentials;
mod findings;
mod grants;
mod identities;
mod jobs;
mod ledger;
mod policies;
mod reviews;
mod schema;
mod scim;
#[cfg(test)]
mod tests;
mod tokens;

use crate::{ReadTx, Result, Store, StoreError, WriteTx};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// The SQLite backend.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    checkpointer: Checkpointer,
}

/// How long the checkpointer lets commits gather in the write-ahead log before it copies
/// them into the database (a checkpoint flushes the main file: at most one a second, not one
/// per commit; the authorize benchmark's 100 ms cost single-caller throughput).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);

/// The writer checkpoints by itself only past this many log pages (40 MB): a safety net
/// should the checkpointer fall behind, not the usual path.
const WRITER_CHECKPOINT_PAGES: i64 = 10_000;

/// Checkpoints off the commit path. SQLite's own automatic checkpoint runs inside the commit
/// that crosses 1,000 log pages, so that one commit (and everyone waiting on it, a group
/// commit's whole batch) pays for copying the log and flushing the database: the tail of
/// commit latency. Here a thread of the store's own checkpoints (`PASSIVE`: it never blocks a
/// writer or a reader) [`CHECKPOINT_EVERY`] after commits, on its own connection.
struct Checkpointer {
    signal: std::sync::Arc<(Mutex<Pending>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Pending {
    commits: bool,
    stop: bool,
}

impl Checkpointer {
    fn start(path: PathBuf) -> std::io::Result<Self> {
        let signal = std::sync::Arc::new((Mutex::new(Pending::default()), std::sync::Condvar::new()));
        let theirs = signal.clone();
        let thread = std::thread::Builder::new().name("tenure-checkpoint".into()).spawn(move || {
            let (lock, cv) = &*theirs;
            let mut conn = None;
            let mut p = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                while !p.commits && !p.stop {
                    p = cv.wait(p).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if p.stop {
                    return;
                }
                // Let commits gather (a stop cuts the wait short).
                let deadline = std::time::Instant::now() + CHECKPOINT_EVERY;
                while !p.stop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    p = cv.wait_timeout(p, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
                }
                p.commits = false;
                drop(p);
                if conn.is_none() {
                    conn = connect(&path).ok();
                }
                // A failed checkpoint is tried again after the next commit; the log is never
                // lost either way, it only grows until one succeeds (and the writer's own
                // checkpoint past WRITER_CHECKPOINT_PAGES still runs).
                if let Some(c) = &conn
                    && c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).is_err()
                {
                    conn = None;
                }
                p = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        })?;
        Ok(Self { signal, thread: Some(thread) })
    }

    /// A write committed: checkpoint soon.
    fn committed(&self) {
        let (lock, cv) = &*self.signal;
        let mut p = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !p.commits {
            p.commits = true;
            cv.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cv) = &*self.signal;
        lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stop = true;
        cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    /// Open (creating and migrating as needed) `tenure.db` in `data_dir`.
    /// The directory is made 0700 and the database files 0600 (identity data is nobody else's
    /// to read); SQLite gives `-wal` and `-shm` the main file's mode.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir_err = |source| StoreError::DataDir { path: data_dir.display().to_string(), source };
        private_dir(data_dir).map_err(dir_err)?;
        let path = data_dir.join("tenure.db");
        private_file(&path).map_err(dir_err)?;
        // The side files by path only: opening and closing a descriptor of a file SQLite has
        // locked would drop this process's POSIX locks on it. So all of this comes before
        // this process's first connection.
        for side in ["tenure.db-wal", "tenure.db-shm"] {
            let p = data_dir.join(side);
            if p.exists() {
                owner_only(&p, 0o600).map_err(dir_err)?;
            }
        }
        let mut writer = connect(&path)?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        schema::migrate(&mut writer)?;
        let checkpointer = Checkpointer::start(path.clone()).map_err(dir_err)?;
        Ok(Self { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()), checkpointer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the writer leaves no open transaction behind (it rolled back
        // when the guard's transaction was dropped), so the connection is still usable.
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Create `dir` (and its parents) if needed; `dir` itself ends up mode 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)?;
    owner_only(dir, 0o700)
}

/// Create `path` empty if missing; either way it ends up mode 0600.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    drop(o.open(path)?);
    owner_only(path, 0o600)
}

/// Set `path`'s mode (an existing file or directory made by an older version may be wider).
fn owner_only(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store for SqliteStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>> {
        let pooled = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        conn.execute_batch("BEGIN DEFERRED")?;
        Ok(Box::new(SqliteTx(Conn::Read { conn: Some(conn), store: self }, LedgerTail::default())))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>> {
        let conn = self.writer();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteTx(Conn::Write { conn, open: true, store: self }, LedgerTail::default())))
    }
}

/// A transaction: a snapshot on a pooled reader, or the unit of work on the writer. Handed
/// out as `dyn ReadTx` or `dyn WriteTx`, so a read transaction cannot write.
pub(crate) struct SqliteTx<'s>(Conn<'s>, LedgerTail);

/// The ledger's last entry as this write transaction appended it: the next append chains to
/// it without reading it back (nothing else writes the ledger while we hold the write lock,
/// and the ledger is append-only). Empty until the first append.
#[derive(Default)]
pub(crate) struct LedgerTail(std::cell::Cell<Option<(i64, tenure_ledger::Hash)>>);

enum Conn<'s> {
    Read { conn: Option<Connection>, store: &'s SqliteStore },
    Write { conn: MutexGuard<'s, Connection>, open: bool, store: &'s SqliteStore },
}

impl SqliteTx<'_> {
    fn c(&self) -> Result<&Connection> {
        match &self.0 {
            Conn::Read { conn, .. } => {
                conn.as_ref().ok_or_else(|| StoreError::Corrupt("read transaction already closed".into()))
            }
            Conn::Write { conn, .. } => Ok(conn),
        }
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        match &mut self.0 {
            Conn::Read { conn, store } => {
                if let Some(conn) = conn.take()
                    && conn.execute_batch("ROLLBACK").is_ok()
                {
                    store.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
                }
            }
            // Nothing of an uncommitted unit of work survives.
            Conn::Write { conn, open: true, .. } => {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Conn::Write { open: false, .. } => {}
        }
    }
}

impl ReadTx for SqliteTx<'_> {}

impl WriteTx for SqliteTx<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        match &mut self.0 {
            Conn::Write { conn, open, store } => {
                conn.execute_batch("COMMIT")?;
                *open = false;
                store.checkpointer.committed();
                Ok(())
            }
            Conn::Read { .. } => Err(StoreError::Corrupt("a read transaction cannot commit".into())),
        }
    }
}
