//! The embedded backend: SQLite in WAL mode with `synchronous=FULL` (a commit is durable when it
//! returns). One writer at a time, across processes too (`BEGIN IMMEDIATE` with a busy timeout),
//! so the CLI is safe to use on a data directory a server is running on.

use crate::rows::*;
use crate::{ReadTx, Result, Store, StoreError, WriteTx};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tenure_model::{AccountState, GrantState, IdentityKind, IdentityRef, LifecycleState, RequestState};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Schema migrations, applied in order; `PRAGMA user_version` is how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    identity    TEXT NOT NULL,
    at          TEXT NOT NULL,
    received_at TEXT NOT NULL,
    digest      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;

CREATE TABLE identities (
    id             INTEGER PRIMARY KEY,
    ref            TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    owner          TEXT,
    purpose        TEXT,
    expires_at     TEXT,
    state          TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX identities_owner ON identities(owner) WHERE owner IS NOT NULL;

CREATE TABLE grants (
    id             INTEGER PRIMARY KEY,
    identity_id    INTEGER NOT NULL REFERENCES identities(id),
    entitlement    TEXT NOT NULL,
    system         TEXT NOT NULL,
    state          TEXT NOT NULL,
    origin         TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    rev            INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (identity_id, entitlement)
);

CREATE TABLE accounts (
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    system      TEXT NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    rev         INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (identity_id, system),
    UNIQUE (system, name)
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    system      TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- INVARIANT: at most one pending job per (kind, identity, system); enqueue relies on it.
CREATE UNIQUE INDEX jobs_one_pending ON jobs(kind, identity_id, system) WHERE state = 'pending';
CREATE INDEX jobs_due ON jobs(state, next_run_at);
CREATE INDEX jobs_key ON jobs(kind, identity_id, system, state);
CREATE INDEX jobs_lease ON jobs(state, lease_until);

-- The ledger: `entry` holds exactly the bytes hashed into the Merkle tree (tenure-ledger's
-- Entry); `leaf` is SHA-256(0x00 || entry). `subject` and `action` are copies for lookups.
-- INVARIANT: seq runs 0, 1, 2, ... without gaps (assigned under the write lock).
CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    action  TEXT NOT NULL,
    entry   BLOB NOT NULL,
    leaf    BLOB NOT NULL
);
CREATE INDEX audit_subject ON audit(subject);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    frontier   BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;

CREATE TABLE policy_files (
    version TEXT NOT NULL,
    path    TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (version, path)
) WITHOUT ROWID;
CREATE TABLE policy_deployments (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    version     TEXT NOT NULL,
    deployed_at TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE grants ADD COLUMN expires_at TEXT;
ALTER TABLE grants ADD COLUMN request_id INTEGER;
CREATE INDEX grants_expiry ON grants(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    requester_id   INTEGER NOT NULL REFERENCES identities(id),
    beneficiary_id INTEGER NOT NULL REFERENCES identities(id),
    entitlement    TEXT NOT NULL,
    intent         TEXT NOT NULL,
    duration_secs  INTEGER,
    state          TEXT NOT NULL,
    decision       TEXT NOT NULL,
    waives         TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    decide_by      TEXT NOT NULL,
    decided_at     TEXT
);
CREATE INDEX requests_pending ON requests(decide_by) WHERE state = 'pending';

-- INVARIANT: one answer per approver per request (the primary key).
CREATE TABLE approvals (
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    approver_id INTEGER NOT NULL REFERENCES identities(id),
    approve     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (request_id, approver_id)
) WITHOUT ROWID;

-- API tokens: the secret itself is never stored, only its SHA-256.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    roles       TEXT NOT NULL,
    hash        BLOB NOT NULL,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
) WITHOUT ROWID;

CREATE TABLE findings (
    id             INTEGER PRIMARY KEY,
    identity_id    INTEGER NOT NULL REFERENCES identities(id),
    kind           TEXT NOT NULL,
    entitlement    TEXT NOT NULL,
    detail         TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    resolved_at    TEXT
);
-- INVARIANT: at most one open finding per (identity, kind, entitlement).
CREATE UNIQUE INDEX findings_open ON findings(identity_id, kind, entitlement) WHERE resolved_at IS NULL;
"#,
    r#"
-- An NHI whose owner left waits for a new one until this time, then is suspended.
ALTER TABLE identities ADD COLUMN owner_deadline TEXT;
CREATE INDEX identities_owner_deadline ON identities(owner_deadline) WHERE owner_deadline IS NOT NULL;
"#,
    r#"
-- A party's pending requests, looked up on every leaver event.
CREATE INDEX requests_beneficiary ON requests(beneficiary_id) WHERE state = 'pending';
CREATE INDEX requests_requester ON requests(requester_id) WHERE state = 'pending';
"#,
    r#"
-- Credentials of the broker: fingerprints only, never a secret.
CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    identity_id   INTEGER NOT NULL REFERENCES identities(id),
    kind          TEXT NOT NULL,
    fingerprint   TEXT NOT NULL UNIQUE,
    spiffe_id     TEXT,
    audience      TEXT NOT NULL,
    system        TEXT,
    name          TEXT,
    purpose       TEXT NOT NULL,
    owner         TEXT,
    issued_by     TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT,
    revoke_reason TEXT,
    verified_at   TEXT,
    evidence      TEXT,
    replaces      TEXT
) WITHOUT ROWID;
CREATE INDEX credentials_identity ON credentials(identity_id, issued_at);
CREATE INDEX credentials_unverified ON credentials(identity_id) WHERE verified_at IS NULL;
CREATE INDEX credentials_logins ON credentials(expires_at) WHERE kind = 'postgres-login' AND revoked_at IS NULL;
CREATE INDEX credentials_signed_by ON credentials(name, expires_at) WHERE kind = 'jwt-svid';

-- The broker's signing keys: public halves and their schedule (private halves are files).
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    usage      TEXT NOT NULL,
    public     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    removed_at TEXT
) WITHOUT ROWID;
"#,
    r#"
-- The UTS #39 skeleton of each identity's reference: look-alikes (`hr:Е1000` with a Cyrillic Е)
-- share one. Filled for existing rows by `migrate`.
ALTER TABLE identities ADD COLUMN skeleton TEXT;
CREATE INDEX identities_skeleton ON identities(skeleton);
-- The clock's look for leavers with no job carrying their closure (`leavers_stalled`).
CREATE INDEX jobs_identity ON jobs(identity_id, state);
"#,
    // One name for the log: the ledger.
    r#"
ALTER TABLE audit RENAME TO ledger;
DROP TRIGGER audit_no_update;
DROP TRIGGER audit_no_delete;
DROP INDEX audit_subject;
CREATE INDEX ledger_subject ON ledger(subject);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"#,
];

/// The SQLite backend.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
        migrate(&mut writer)?;
        Ok(Self { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) })
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

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    for sql in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql)?;
    }
    // Skeletons are computed here, not in SQL: fill those the migration left empty.
    let missing: Vec<(i64, String)> = {
        let mut st = tx.prepare("SELECT id, ref FROM identities WHERE skeleton IS NULL")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (id, reference) in missing {
        tx.execute(
            "UPDATE identities SET skeleton = ?2 WHERE id = ?1",
            params![id, tenure_model::text::skeleton(&reference)],
        )?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    Ok(())
}

impl Store for SqliteStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>> {
        let pooled = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        conn.execute_batch("BEGIN DEFERRED")?;
        Ok(Box::new(SqliteRead { conn: Some(conn), store: self }))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>> {
        let conn = self.writer();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteWrite { conn, open: true }))
    }
}

struct SqliteRead<'s> {
    conn: Option<Connection>,
    store: &'s SqliteStore,
}

impl SqliteRead<'_> {
    fn c(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| StoreError::Corrupt("read transaction already closed".into()))
    }
}

impl Drop for SqliteRead<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.execute_batch("ROLLBACK").is_ok()
        {
            self.store.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
        }
    }
}

struct SqliteWrite<'s> {
    conn: MutexGuard<'s, Connection>,
    open: bool,
}

impl Drop for SqliteWrite<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing of an uncommitted unit of work survives.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

// ---- conversions ----

pub(crate) fn ts(t: OffsetDateTime) -> String {
    // Fixed width (microseconds, UTC) so text order is time order.
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn parse_ts(s: &str) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| conv_err(format!("bad timestamp `{s}`: {e}")))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn conv_err(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, msg.into())
}

fn parse<T: std::str::FromStr>(s: &str) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| conv_err(e.to_string()))
}

const IDENTITY_COLS: &str = "id, ref, kind, name, attributes, owner, purpose, expires_at, state, policy_version, created_at, updated_at, owner_deadline";

fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRow> {
    let reference: String = r.get(1)?;
    let kind: String = r.get(2)?;
    let attributes: String = r.get(4)?;
    let owner: Option<String> = r.get(5)?;
    let expires_at: Option<String> = r.get(7)?;
    let state: String = r.get(8)?;
    Ok(IdentityRow {
        id: r.get(0)?,
        reference: parse::<IdentityRef>(&reference)?,
        kind: parse::<IdentityKind>(&kind)?,
        name: r.get(3)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| conv_err(e.to_string()))?,
        owner: owner.as_deref().map(parse::<IdentityRef>).transpose()?,
        purpose: r.get(6)?,
        expires_at: expires_at.as_deref().map(parse_ts).transpose()?,
        state: parse::<LifecycleState>(&state)?,
        policy_version: r.get(9)?,
        created_at: parse_ts(&r.get::<_, String>(10)?)?,
        updated_at: parse_ts(&r.get::<_, String>(11)?)?,
        owner_deadline: r.get::<_, Option<String>>(12)?.as_deref().map(parse_ts).transpose()?,
    })
}

const GRANT_COLS: &str =
    "id, identity_id, entitlement, system, state, origin, policy_version, rev, expires_at, request_id";

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        entitlement: r.get(2)?,
        system: r.get(3)?,
        state: parse::<GrantState>(&r.get::<_, String>(4)?)?,
        origin: r.get(5)?,
        policy_version: r.get(6)?,
        rev: r.get(7)?,
        expires_at: r.get::<_, Option<String>>(8)?.as_deref().map(parse_ts).transpose()?,
        request_id: r.get(9)?,
    })
}

const REQUEST_COLS: &str =
    "id, kind, requester_id, beneficiary_id, entitlement, intent, duration_secs, state, decision,
    waives, policy_version, created_at, decide_by, decided_at";

fn json_col<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| conv_err(e.to_string()))
}

fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        kind: parse(&r.get::<_, String>(1)?)?,
        requester_id: r.get(2)?,
        beneficiary_id: r.get(3)?,
        entitlement: r.get(4)?,
        intent: r.get(5)?,
        duration: r.get::<_, Option<i64>>(6)?.map(time::Duration::seconds),
        state: parse(&r.get::<_, String>(7)?)?,
        decision: json_col(&r.get::<_, String>(8)?)?,
        waives: json_col(&r.get::<_, String>(9)?)?,
        policy_version: r.get(10)?,
        created_at: parse_ts(&r.get::<_, String>(11)?)?,
        decide_by: parse_ts(&r.get::<_, String>(12)?)?,
        decided_at: r.get::<_, Option<String>>(13)?.as_deref().map(parse_ts).transpose()?,
    })
}

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        request_id: r.get(0)?,
        approver_id: r.get(1)?,
        approve: r.get(2)?,
        reason: r.get(3)?,
        at: parse_ts(&r.get::<_, String>(4)?)?,
    })
}

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

const CREDENTIAL_COLS: &str = "id, identity_id, kind, fingerprint, spiffe_id, audience, system, name, purpose, owner, \
     issued_by, issued_at, expires_at, revoked_at, revoke_reason, verified_at, evidence, replaces";

fn opt_ts(v: Option<String>) -> rusqlite::Result<Option<OffsetDateTime>> {
    v.as_deref().map(parse_ts).transpose()
}

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

const FINDING_COLS: &str = "id, identity_id, kind, entitlement, detail, policy_version, opened_at, resolved_at";

fn finding_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        identity_id: r.get(1)?,
        kind: r.get(2)?,
        entitlement: r.get(3)?,
        detail: json_col(&r.get::<_, String>(4)?)?,
        policy_version: r.get(5)?,
        opened_at: parse_ts(&r.get::<_, String>(6)?)?,
        resolved_at: r.get::<_, Option<String>>(7)?.as_deref().map(parse_ts).transpose()?,
    })
}

fn q_all<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, f)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        identity_id: r.get(0)?,
        system: r.get(1)?,
        name: r.get(2)?,
        state: parse::<AccountState>(&r.get::<_, String>(3)?)?,
        rev: r.get(4)?,
    })
}

const JOB_COLS: &str = "id, kind, identity_id, system, state, attempts, last_error";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: parse::<JobKind>(&r.get::<_, String>(1)?)?,
        identity_id: r.get(2)?,
        system: r.get(3)?,
        state: parse::<JobState>(&r.get::<_, String>(4)?)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
    })
}

// ---- reads, shared by both transaction kinds ----

fn q_identity(c: &Connection, r: &IdentityRef) -> Result<Option<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE ref = ?1"))?;
    Ok(st.query_row([r.to_string()], identity_row).optional()?)
}

fn q_identity_by_id(c: &Connection, id: i64) -> Result<Option<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE id = ?1"))?;
    Ok(st.query_row([id], identity_row).optional()?)
}

fn q_identities(c: &Connection) -> Result<Vec<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities ORDER BY ref"))?;
    let rows = st.query_map([], identity_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_owned_by(c: &Connection, owner: &IdentityRef) -> Result<Vec<IdentityRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE owner = ?1 ORDER BY ref"))?;
    let rows = st.query_map([owner.to_string()], identity_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
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
        "SELECT identity_id, system, name, state, rev FROM accounts WHERE identity_id = ?1 ORDER BY system",
    )?;
    let rows = st.query_map([identity_id], account_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn q_account_by_name(c: &Connection, system: &str, name: &str) -> Result<Option<AccountRow>> {
    let mut st =
        c.prepare_cached("SELECT identity_id, system, name, state, rev FROM accounts WHERE system = ?1 AND name = ?2")?;
    Ok(st.query_row(params![system, name], account_row).optional()?)
}

fn ledger_row(seq: i64, entry: &[u8]) -> rusqlite::Result<LedgerRow> {
    let e = tenure_ledger::Entry::parse(entry).map_err(|m| conv_err(format!("ledger entry {seq}: {m}")))?;
    let event = tenure_ledger::LedgerEvent::from_parts(&e.action, &e.detail)
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

fn q_count(c: &Connection, table: &'static str) -> Result<i64> {
    Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
}

fn q_event_digest(c: &Connection, source: &str, event_id: &str) -> Result<Option<String>> {
    let mut st = c.prepare_cached("SELECT digest FROM events WHERE source = ?1 AND event_id = ?2")?;
    Ok(st.query_row(params![source, event_id], |r| r.get(0)).optional()?)
}

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

macro_rules! impl_reads {
    ($t:ty, $c:ident => $conn:expr) => {
        impl ReadTx for $t {
            fn identity(&self, r: &IdentityRef) -> Result<Option<IdentityRow>> {
                let $c = self;
                q_identity($conn, r)
            }
            fn identity_by_id(&self, id: i64) -> Result<Option<IdentityRow>> {
                let $c = self;
                q_identity_by_id($conn, id)
            }
            fn identities(&self) -> Result<Vec<IdentityRow>> {
                let $c = self;
                q_identities($conn)
            }
            fn identities_owned_by(&self, owner: &IdentityRef) -> Result<Vec<IdentityRow>> {
                let $c = self;
                q_owned_by($conn, owner)
            }
            fn grants(&self, identity_id: i64) -> Result<Vec<GrantRow>> {
                let $c = self;
                q_grants($conn, identity_id)
            }
            fn all_grants(&self) -> Result<BTreeMap<i64, Vec<GrantRow>>> {
                let $c = self;
                q_all_grants($conn)
            }
            fn accounts(&self, identity_id: i64) -> Result<Vec<AccountRow>> {
                let $c = self;
                q_accounts($conn, identity_id)
            }
            fn account_by_name(&self, system: &str, name: &str) -> Result<Option<AccountRow>> {
                let $c = self;
                q_account_by_name($conn, system, name)
            }
            fn ledger_for(&self, subject: &str) -> Result<Vec<LedgerRow>> {
                let $c = self;
                q_ledger_for($conn, subject)
            }
            fn ledger_count(&self) -> Result<i64> {
                let $c = self;
                q_count($conn, "ledger")
            }
            fn ledger_entries(&self, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
                let $c = self;
                q_ledger_entries($conn, from, limit)
            }
            fn ledger_leaves(&self, from: i64, to: i64) -> Result<Vec<tenure_ledger::Hash>> {
                let $c = self;
                q_ledger_leaves($conn, from, to)
            }
            fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
                let $c = self;
                q_checkpoints($conn)
            }
            fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>> {
                let $c = self;
                q_latest_checkpoint($conn)
            }
            fn event_digest(&self, source: &str, event_id: &str) -> Result<Option<String>> {
                let $c = self;
                q_event_digest($conn, source, event_id)
            }
            fn event_count(&self) -> Result<i64> {
                let $c = self;
                q_count($conn, "events")
            }
            fn current_policy_version(&self) -> Result<Option<String>> {
                let $c = self;
                q_current_version($conn)
            }
            fn current_policy(&self) -> Result<Option<StoredPolicy>> {
                let $c = self;
                q_current_policy($conn)
            }
            fn job_counts(&self) -> Result<BTreeMap<String, i64>> {
                let $c = self;
                q_job_counts($conn)
            }
            fn deletions_due(&self, closed_by: OffsetDateTime) -> Result<Vec<i64>> {
                let $c = self;
                q_all($conn, "SELECT DISTINCT i.id FROM identities i JOIN accounts a ON a.identity_id = i.id
                    WHERE i.state = 'closed' AND i.updated_at <= ?1 AND a.state = 'disable_verified' ORDER BY i.id",
                    [ts(closed_by)], |r| r.get(0))
            }
            fn identity_like(&self, r: &IdentityRef) -> Result<Option<IdentityRow>> {
                let $c = self;
                let reference = r.to_string();
                let mut st = $conn.prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE skeleton = ?1 AND ref <> ?2 LIMIT 1"))?;
                Ok(st.query_row(params![tenure_model::text::skeleton(&reference), reference], identity_row).optional()?)
            }
            fn leavers_stalled(&self, since: OffsetDateTime) -> Result<Vec<IdentityRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {IDENTITY_COLS} FROM identities i WHERE i.state = 'leaving' AND i.updated_at <= ?1
                    AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.identity_id = i.id AND j.state IN ('pending', 'running'))
                    ORDER BY i.id"), [ts(since)], identity_row)
            }
            fn owners_overdue(&self, now: OffsetDateTime) -> Result<Vec<IdentityRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {IDENTITY_COLS} FROM identities WHERE owner_deadline IS NOT NULL
                    AND owner_deadline <= ?1 AND state IN ('pending', 'active') ORDER BY id"), [ts(now)], identity_row)
            }
            fn grants_expiring(&self, now: OffsetDateTime) -> Result<Vec<GrantRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {GRANT_COLS} FROM grants WHERE expires_at IS NOT NULL AND expires_at <= ?1
                    AND state IN ('desired', 'provisioned', 'verified') ORDER BY expires_at"), [ts(now)], grant_row)
            }
            fn request(&self, id: i64) -> Result<Option<RequestRow>> {
                let $c = self;
                let mut st = $conn.prepare_cached(&format!("SELECT {REQUEST_COLS} FROM requests WHERE id = ?1"))?;
                Ok(st.query_row([id], request_row).optional()?)
            }
            fn requests(&self, state: Option<RequestState>) -> Result<Vec<RequestRow>> {
                let $c = self;
                match state {
                    Some(st) => q_all($conn, &format!("SELECT {REQUEST_COLS} FROM requests WHERE state = ?1 ORDER BY id DESC"), [st.as_str()], request_row),
                    None => q_all($conn, &format!("SELECT {REQUEST_COLS} FROM requests ORDER BY id DESC"), [], request_row),
                }
            }
            fn pending_requests_of(&self, identity_id: i64) -> Result<Vec<RequestRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {REQUEST_COLS} FROM requests WHERE state = 'pending'
                    AND (beneficiary_id = ?1 OR requester_id = ?1) ORDER BY id"), [identity_id], request_row)
            }
            fn requests_overdue(&self, now: OffsetDateTime) -> Result<Vec<RequestRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {REQUEST_COLS} FROM requests WHERE state = 'pending' AND decide_by <= ?1 ORDER BY id"), [ts(now)], request_row)
            }
            fn approvals(&self, request_id: i64) -> Result<Vec<ApprovalRow>> {
                let $c = self;
                q_all($conn, "SELECT request_id, approver_id, approve, reason, at FROM approvals WHERE request_id = ?1 ORDER BY at", [request_id], approval_row)
            }
            fn token(&self, id: &str) -> Result<Option<TokenRow>> {
                let $c = self;
                let mut st = $conn.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"))?;
                Ok(st.query_row([id], token_row).optional()?)
            }
            fn tokens(&self) -> Result<Vec<TokenRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_at, id"), [], token_row)
            }
            fn findings(&self, open_only: bool) -> Result<Vec<FindingRow>> {
                let $c = self;
                let filter = if open_only { "WHERE resolved_at IS NULL" } else { "" };
                q_all($conn, &format!("SELECT {FINDING_COLS} FROM findings {filter} ORDER BY id"), [], finding_row)
            }
            fn open_findings(&self, identity_id: i64) -> Result<Vec<FindingRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {FINDING_COLS} FROM findings WHERE identity_id = ?1 AND resolved_at IS NULL ORDER BY id"), [identity_id], finding_row)
            }
            fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRow>> {
                let $c = self;
                q_jobs($conn, state)
            }
            fn credential(&self, id: &str) -> Result<Option<CredentialRow>> {
                let $c = self;
                let mut st = $conn.prepare_cached(&format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = ?1"))?;
                Ok(st.query_row([id], credential_row).optional()?)
            }
            fn credential_by_fingerprint(&self, fingerprint: &str) -> Result<Option<CredentialRow>> {
                let $c = self;
                let mut st = $conn.prepare_cached(&format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE fingerprint = ?1"))?;
                Ok(st.query_row([fingerprint], credential_row).optional()?)
            }
            fn credentials(&self, identity_id: Option<i64>) -> Result<Vec<CredentialRow>> {
                let $c = self;
                match identity_id {
                    Some(id) => q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 ORDER BY issued_at DESC, id"), [id], credential_row),
                    None => q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials ORDER BY issued_at DESC, id"), [], credential_row),
                }
            }
            fn credentials_to_verify(&self, identity_id: i64) -> Result<Vec<CredentialRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 AND verified_at IS NULL AND revoked_at IS NOT NULL ORDER BY issued_at, id"), [identity_id], credential_row)
            }
            fn credentials_live(&self, identity_id: i64, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE identity_id = ?1 AND verified_at IS NULL AND revoked_at IS NULL AND (expires_at > ?2 OR kind = 'postgres-login') ORDER BY issued_at, id"), params![identity_id, ts(now)], credential_row)
            }
            fn logins_expired(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE kind = 'postgres-login' AND revoked_at IS NULL AND expires_at <= ?1 ORDER BY expires_at, id"), [ts(now)], credential_row)
            }
            fn revoked_certificates(&self, now: OffsetDateTime) -> Result<Vec<CredentialRow>> {
                let $c = self;
                q_all($conn, &format!("SELECT {CREDENTIAL_COLS} FROM credentials WHERE kind = 'x509-svid' AND revoked_at IS NOT NULL AND expires_at > ?1 ORDER BY revoked_at, id"), [ts(now)], credential_row)
            }
            fn last_expiry_signed_by(&self, kid: &str) -> Result<Option<OffsetDateTime>> {
                let $c = self;
                let mut st = $conn.prepare_cached("SELECT max(expires_at) FROM credentials WHERE kind = 'jwt-svid' AND name = ?1")?;
                let v: Option<String> = st.query_row([kid], |r| r.get(0))?;
                Ok(opt_ts(v)?)
            }
            fn credential_counts(&self, now: OffsetDateTime) -> Result<BTreeMap<String, i64>> {
                let $c = self;
                let rows = q_all(
                    $conn,
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
                let $c = self;
                q_all($conn, "SELECT kid, usage, public, created_at, retired_at, removed_at FROM signing_keys ORDER BY created_at, kid", [], signing_key_row)
            }
        }
    };
}

impl_reads!(SqliteRead<'_>, s => s.c()?);
impl_reads!(SqliteWrite<'_>, s => &s.conn);

impl WriteTx for SqliteWrite<'_> {
    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO events (source, event_id, type, identity, at, received_at, digest, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        st.execute(params![
            e.source,
            e.event_id,
            e.kind,
            e.identity,
            ts(e.at),
            ts(e.received_at),
            e.digest,
            e.payload
        ])?;
        Ok(())
    }

    fn insert_identity(&mut self, i: &NewIdentity<'_>) -> Result<i64> {
        let attributes = serde_json::to_string(i.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.conn.prepare_cached(
            "INSERT INTO identities (ref, kind, name, attributes, owner, purpose, expires_at, state, policy_version, created_at, updated_at, skeleton)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
        )?;
        let reference = i.reference.to_string();
        let skeleton = tenure_model::text::skeleton(&reference);
        st.execute(params![
            reference,
            i.kind.as_str(),
            i.name,
            attributes,
            i.owner.map(ToString::to_string),
            i.purpose,
            i.expires_at.map(ts),
            i.state.as_str(),
            i.policy_version,
            ts(i.at),
            skeleton,
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn update_identity(&mut self, i: &IdentityRow) -> Result<()> {
        let attributes = serde_json::to_string(&i.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.conn.prepare_cached(
            "UPDATE identities SET name = ?2, attributes = ?3, owner = ?4, purpose = ?5, expires_at = ?6,
             state = ?7, policy_version = ?8, updated_at = ?9, owner_deadline = ?10 WHERE id = ?1",
        )?;
        st.execute(params![
            i.id,
            i.name,
            attributes,
            i.owner.as_ref().map(ToString::to_string),
            i.purpose,
            i.expires_at.map(ts),
            i.state.as_str(),
            i.policy_version,
            ts(i.updated_at),
            i.owner_deadline.map(ts),
        ])?;
        Ok(())
    }

    fn set_identity_state(&mut self, id: i64, state: LifecycleState, at: OffsetDateTime) -> Result<()> {
        let mut st = self.conn.prepare_cached("UPDATE identities SET state = ?2, updated_at = ?3 WHERE id = ?1")?;
        st.execute(params![id, state.as_str(), ts(at)])?;
        Ok(())
    }

    fn put_grant(&mut self, g: &NewGrant<'_>) -> Result<()> {
        let mut st = self.conn.prepare_cached(
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
        let mut st = self.conn.prepare_cached(
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
        let mut st = self.conn.prepare_cached(
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
        let mut st = self.conn.prepare_cached(
            "UPDATE accounts SET state = ?4, rev = rev + 1, updated_at = ?5 WHERE identity_id = ?1 AND system = ?2 AND rev = ?3",
        )?;
        Ok(st.execute(params![identity_id, system, rev, to.as_str(), ts(at)])? == 1)
    }

    fn enqueue(&mut self, job: &NewJob<'_>) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO jobs (kind, identity_id, system, state, next_run_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?5)
             ON CONFLICT (kind, identity_id, system) WHERE state = 'pending'
             DO UPDATE SET next_run_at = min(jobs.next_run_at, excluded.next_run_at), updated_at = excluded.updated_at",
        )?;
        st.execute(params![job.kind.as_str(), job.identity_id, job.system, millis(job.run_at), ts(job.run_at)])?;
        Ok(())
    }

    fn claim_job(&mut self, now: OffsetDateTime, lease: time::Duration) -> Result<Option<JobRow>> {
        let now_ms = millis(now);
        // Two index-friendly probes (an `OR` across states would scan every job): jobs whose
        // worker's lease ran out first (the oldest work), then due pending jobs.
        // INVARIANT: one live worker per (kind, identity, system) at a time.
        const FREE: &str = "NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.identity_id = j.identity_id
                             AND r.system = j.system AND r.state = 'running' AND r.lease_until > ?1 AND r.id <> j.id)";
        let pending = format!(
            "SELECT j.id FROM jobs j WHERE j.state = 'pending' AND j.next_run_at <= ?1 AND {FREE}
             ORDER BY j.next_run_at, j.id LIMIT 1"
        );
        let expired = format!(
            "SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until <= ?1 AND {FREE}
             ORDER BY j.lease_until, j.id LIMIT 1"
        );
        let mut id: Option<i64> = self.conn.prepare_cached(&expired)?.query_row([now_ms], |r| r.get(0)).optional()?;
        if id.is_none() {
            id = self.conn.prepare_cached(&pending)?.query_row([now_ms], |r| r.get(0)).optional()?;
        }
        let Some(id) = id else { return Ok(None) };
        let mut st = self.conn.prepare_cached(&format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?2, updated_at = ?3
             WHERE id = ?1 RETURNING {JOB_COLS}"
        ))?;
        Ok(st.query_row(params![id, millis(now + lease), ts(now)], job_row).optional()?)
    }

    fn finish_job(&mut self, job: &JobRow, at: OffsetDateTime) -> Result<bool> {
        // INVARIANT (fencing): only the attempt that holds the job (running, same attempt
        // number) may end it; a stale attempt whose lease ran out changes nothing.
        let mut st = self.conn.prepare_cached(
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
            let mut st = self.conn.prepare_cached(
                "UPDATE jobs SET state = 'dead', lease_until = NULL, last_error = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            )?;
            return Ok(st.execute(params![job.id, job.attempts, error, ts(at)])? == 1);
        };
        // Another, newer pending job for the same work already exists: it will do this job's
        // work too (the unique pending index allows only one).
        let superseded: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs p, jobs j WHERE j.id = ?1 AND p.id <> j.id AND p.state = 'pending'
               AND p.kind = j.kind AND p.identity_id = j.identity_id AND p.system = j.system)",
            [job.id],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare_cached(
            "UPDATE jobs SET state = ?3, next_run_at = ?4, lease_until = NULL, last_error = ?5, updated_at = ?6
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?;
        let state = if superseded { "done" } else { "pending" };
        Ok(st.execute(params![job.id, job.attempts, state, millis(retry_at), error, ts(at)])? == 1)
    }

    fn renew_lease(&mut self, job: &JobRow, until: OffsetDateTime) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "UPDATE jobs SET lease_until = max(lease_until, ?3) WHERE id = ?1 AND state = 'running' AND attempts = ?2",
        )?;
        Ok(st.execute(params![job.id, job.attempts, millis(until)])? == 1)
    }

    fn retry_dead_jobs(&mut self, identity_id: Option<i64>, at: OffsetDateTime) -> Result<Vec<i64>> {
        let dead: Vec<(i64, String, i64, String)> = {
            let mut st = self.conn.prepare_cached(
                "SELECT id, kind, identity_id, system FROM jobs WHERE state = 'dead' AND (?1 IS NULL OR identity_id = ?1)
                 ORDER BY id",
            )?;
            st.query_map([identity_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut requeued = Vec::new();
        for (id, kind, identity, system) in dead {
            let pending: bool = self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'pending' AND kind = ?1 AND identity_id = ?2 AND system = ?3)",
                params![kind, identity, system],
                |r| r.get(0),
            )?;
            let (state, attempts) = if pending { ("done", "attempts") } else { ("pending", "0") };
            self.conn.execute(
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

    fn append_entry(&mut self, e: &NewEntry<'_>) -> Result<i64> {
        // The head of the log: next position and the leaf hash to chain to. We hold the write
        // lock, so nobody else appends in between.
        let head: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT seq, leaf FROM ledger ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seq, prev) = match head {
            Some((seq, leaf)) => (seq + 1, hex::encode(leaf)),
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
        };
        let bytes = entry.to_bytes();
        let leaf = tenure_ledger::merkle::leaf_hash(&bytes);
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO ledger (seq, subject, action, entry, leaf) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        st.execute(params![seq, e.subject, entry.action, bytes, &leaf[..]])?;
        Ok(seq)
    }

    fn add_checkpoint(&mut self, c: &CheckpointRow) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO checkpoints (size, root, frontier, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        st.execute(params![c.size, c.root, c.frontier, c.note, ts(c.created_at)])?;
        Ok(())
    }

    fn deploy_policy(&mut self, p: &StoredPolicy, at: OffsetDateTime) -> Result<()> {
        {
            let mut st = self
                .conn
                .prepare_cached("INSERT OR IGNORE INTO policy_files (version, path, content) VALUES (?1, ?2, ?3)")?;
            for (path, content) in &p.files {
                st.execute(params![p.version, path, content])?;
            }
        }
        self.conn.execute(
            "INSERT INTO policy_deployments (version, deployed_at) VALUES (?1, ?2)",
            params![p.version, ts(at)],
        )?;
        Ok(())
    }

    fn insert_request(&mut self, r: &NewRequest<'_>) -> Result<i64> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO requests (kind, requester_id, beneficiary_id, entitlement, intent, duration_secs, state,
               decision, waives, policy_version, created_at, decide_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        st.execute(params![
            r.kind.as_str(),
            r.requester_id,
            r.beneficiary_id,
            r.entitlement,
            r.intent,
            r.duration.map(|d| d.whole_seconds()),
            r.state.as_str(),
            r.decision.to_string(),
            serde_json::to_string(r.waives).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            r.policy_version,
            ts(r.at),
            ts(r.decide_by),
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_request(&mut self, id: i64, to: RequestState, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE requests SET state = ?2, decided_at = ?3 WHERE id = ?1 AND state = 'pending'")?;
        Ok(st.execute(params![id, to.as_str(), ts(at)])? == 1)
    }

    fn insert_approval(&mut self, a: &ApprovalRow) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO approvals (request_id, approver_id, approve, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )?;
        Ok(st.execute(params![a.request_id, a.approver_id, a.approve, a.reason, ts(a.at)])? == 1)
    }

    fn insert_token(&mut self, t: &TokenRow) -> Result<()> {
        let roles = serde_json::to_string(&t.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.conn.prepare_cached(&format!(
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

    fn insert_credential(&mut self, c: &CredentialRow) -> Result<()> {
        let audience = serde_json::to_string(&c.audience).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let evidence = c.evidence.as_ref().map(serde_json::Value::to_string);
        let mut st = self.conn.prepare_cached(&format!(
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
        let mut st = self.conn.prepare_cached(
            "UPDATE credentials SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        )?;
        Ok(st.execute(params![id, ts(at), reason])? == 1)
    }

    fn set_credential_verified(&mut self, id: &str, at: OffsetDateTime, evidence: &serde_json::Value) -> Result<()> {
        let mut st =
            self.conn.prepare_cached("UPDATE credentials SET verified_at = ?2, evidence = ?3 WHERE id = ?1")?;
        st.execute(params![id, ts(at), evidence.to_string()])?;
        Ok(())
    }

    fn insert_signing_key(&mut self, k: &SigningKeyRow) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO signing_keys (kid, usage, public, created_at, retired_at, removed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        st.execute(params![k.kid, k.usage, k.public, ts(k.created_at), k.retired_at.map(ts), k.removed_at.map(ts)])?;
        Ok(())
    }

    fn retire_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE signing_keys SET retired_at = ?2 WHERE kid = ?1 AND retired_at IS NULL")?;
        Ok(st.execute(params![kid, ts(at)])? == 1)
    }

    fn remove_signing_key(&mut self, kid: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE signing_keys SET removed_at = ?2 WHERE kid = ?1 AND removed_at IS NULL")?;
        Ok(st.execute(params![kid, ts(at)])? == 1)
    }

    fn revoke_token(&mut self, id: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st =
            self.conn.prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?;
        Ok(st.execute(params![id, ts(at)])? == 1)
    }

    fn open_finding(
        &mut self,
        identity_id: i64,
        kind: &str,
        entitlement: &str,
        detail: &serde_json::Value,
        policy_version: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO findings (identity_id, kind, entitlement, detail, policy_version, opened_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (identity_id, kind, entitlement) WHERE resolved_at IS NULL DO NOTHING",
        )?;
        Ok(st.execute(params![identity_id, kind, entitlement, detail.to_string(), policy_version, ts(at)])? == 1)
    }

    fn resolve_finding(&mut self, identity_id: i64, kind: &str, entitlement: &str, at: OffsetDateTime) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "UPDATE findings SET resolved_at = ?4
             WHERE identity_id = ?1 AND kind = ?2 AND entitlement = ?3 AND resolved_at IS NULL",
        )?;
        Ok(st.execute(params![identity_id, kind, entitlement, ts(at)])? > 0)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        (dir, s)
    }

    fn new_identity<'a>(r: &'a IdentityRef, attrs: &'a BTreeMap<String, String>) -> NewIdentity<'a> {
        NewIdentity {
            reference: r,
            kind: IdentityKind::Human,
            name: "Ada",
            attributes: attrs,
            owner: None,
            purpose: None,
            expires_at: None,
            state: LifecycleState::Pending,
            policy_version: "v1",
            at: datetime!(2026-11-01 09:00 UTC),
        }
    }

    #[test]
    fn uncommitted_work_rolls_back() {
        let (_d, s) = store();
        let r: IdentityRef = "hr:E1".parse().unwrap();
        let attrs = BTreeMap::new();
        {
            let mut tx = s.write().unwrap();
            tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
        }
        assert!(s.read().unwrap().identity(&r).unwrap().is_none());
        let mut tx = s.write().unwrap();
        tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
        tx.commit().unwrap();
        let got = s.read().unwrap().identity(&r).unwrap().unwrap();
        assert_eq!(got.name, "Ada");
        assert_eq!(got.created_at, datetime!(2026-11-01 09:00 UTC));
    }

    #[test]
    fn the_ledger_is_append_only() {
        let (_d, s) = store();
        let mut tx = s.write().unwrap();
        tx.append_entry(&NewEntry {
            at: datetime!(2026-11-01 09:00 UTC),
            actor: "test",
            subject: "hr:E1",
            policy_version: "v1",
            event: &tenure_ledger::LedgerEvent::JobsRetried(tenure_ledger::event::JobsRetried { jobs: vec![1] }),
        })
        .unwrap();
        tx.commit().unwrap();
        let conn = Connection::open(s.path()).unwrap();
        assert!(conn.execute("UPDATE ledger SET action = 'y'", []).is_err());
        assert!(conn.execute("DELETE FROM ledger", []).is_err());
    }

    #[test]
    fn one_pending_job_per_work_item_and_leases_expire() {
        let (_d, s) = store();
        let r: IdentityRef = "hr:E1".parse().unwrap();
        let attrs = BTreeMap::new();
        let t0 = datetime!(2026-11-01 09:00 UTC);
        let mut tx = s.write().unwrap();
        let id = tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
        for _ in 0..3 {
            tx.enqueue(&NewJob { kind: JobKind::Sync, identity_id: id, system: "ldap", run_at: t0 }).unwrap();
        }
        assert_eq!(tx.jobs(None).unwrap().len(), 1);
        let job = tx.claim_job(t0, time::Duration::seconds(30)).unwrap().unwrap();
        assert_eq!(job.attempts, 1);
        // Running: a new change enqueues a second job, which waits while the first is leased.
        tx.enqueue(&NewJob { kind: JobKind::Sync, identity_id: id, system: "ldap", run_at: t0 }).unwrap();
        assert!(tx.claim_job(t0, time::Duration::seconds(30)).unwrap().is_none());
        // Other work is not held up.
        tx.enqueue(&NewJob { kind: JobKind::Sync, identity_id: id, system: "pg", run_at: t0 }).unwrap();
        assert_eq!(tx.claim_job(t0, time::Duration::seconds(30)).unwrap().unwrap().system, "pg");
        // The first worker died: its lease runs out and the job is claimed again.
        let again = tx.claim_job(t0 + time::Duration::seconds(31), time::Duration::seconds(30)).unwrap().unwrap();
        assert_eq!(again.id, job.id);
        assert_eq!(again.attempts, 2);
        tx.fail_job(&again, "boom", None, t0).unwrap();
        assert_eq!(tx.jobs(Some(JobState::Dead)).unwrap().len(), 1);
        tx.commit().unwrap();
    }

    /// An identity with one pending sync job in system `exec`; its id.
    fn one_exec_job(tx: &mut dyn WriteTx, t0: OffsetDateTime) -> i64 {
        let r: IdentityRef = "hr:E1".parse().unwrap();
        let attrs = BTreeMap::new();
        let id = tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
        tx.enqueue(&NewJob { kind: JobKind::Sync, identity_id: id, system: "exec", run_at: t0 }).unwrap();
        id
    }

    #[test]
    fn a_stale_attempt_can_neither_finish_nor_fail_the_job_it_lost() {
        // An attempt outlives its lease; another worker claims the job again. Both fail: the
        // job must stay pending (it was marked done when the second failure found the row the
        // first had just put back to pending, and a leaver stayed `leaving` with live access).
        let (_d, s) = store();
        let t0 = datetime!(2026-11-01 09:00 UTC);
        let lease = time::Duration::seconds(30);
        let mut tx = s.write().unwrap();
        one_exec_job(tx.as_mut(), t0);
        let first = tx.claim_job(t0, lease).unwrap().unwrap();
        let second = tx.claim_job(t0 + time::Duration::seconds(31), lease).unwrap().unwrap();
        assert_eq!((second.id, second.attempts), (first.id, 2));
        // The stale attempt is fenced off: neither its failure nor its success counts.
        assert!(!tx.fail_job(&first, "timed out", Some(t0 + time::Duration::seconds(32)), t0).unwrap());
        assert!(!tx.finish_job(&first, t0).unwrap());
        assert!(!tx.renew_lease(&first, t0 + time::Duration::seconds(90)).unwrap());
        assert_eq!(tx.jobs(Some(JobState::Running)).unwrap().len(), 1);
        // The holder fails: the job goes back to pending, not done.
        assert!(tx.fail_job(&second, "timed out", Some(t0 + time::Duration::seconds(40)), t0).unwrap());
        let jobs = tx.jobs(None).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, JobState::Pending);
        tx.commit().unwrap();
    }

    #[test]
    fn a_renewed_lease_keeps_the_job_and_dead_jobs_can_be_retried() {
        let (_d, s) = store();
        let t0 = datetime!(2026-11-01 09:00 UTC);
        let lease = time::Duration::seconds(30);
        let mut tx = s.write().unwrap();
        let id = one_exec_job(tx.as_mut(), t0);
        let job = tx.claim_job(t0, lease).unwrap().unwrap();
        assert!(tx.renew_lease(&job, t0 + time::Duration::seconds(60)).unwrap());
        assert!(
            tx.claim_job(t0 + time::Duration::seconds(45), lease).unwrap().is_none(),
            "claimed under a renewed lease"
        );
        assert!(tx.fail_job(&job, "boom", None, t0).unwrap());
        assert_eq!(tx.retry_dead_jobs(Some(id + 1), t0).unwrap(), Vec::<i64>::new());
        assert_eq!(tx.retry_dead_jobs(None, t0).unwrap(), vec![job.id]);
        let again = tx.claim_job(t0, lease).unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (job.id, 1));
        tx.commit().unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn the_data_dir_and_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("data");
        let s = SqliteStore::open(&dir).unwrap();
        let mut tx = s.write().unwrap();
        let r: IdentityRef = "hr:E1".parse().unwrap();
        let attrs = BTreeMap::new();
        tx.insert_identity(&new_identity(&r, &attrs)).unwrap();
        tx.commit().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for f in ["tenure.db", "tenure.db-wal", "tenure.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        drop(s);
        // An existing world-readable database is tightened on open.
        std::fs::set_permissions(dir.join("tenure.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let _s = SqliteStore::open(&dir).unwrap();
        assert_eq!(mode(&dir.join("tenure.db")), 0o600);
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = ts(datetime!(2026-11-01 09:00:00.5 UTC));
        let b = ts(datetime!(2026-11-01 09:00:01 UTC));
        assert!(a < b);
        assert_eq!(parse_ts(&a).unwrap(), datetime!(2026-11-01 09:00:00.5 UTC));
    }
}
