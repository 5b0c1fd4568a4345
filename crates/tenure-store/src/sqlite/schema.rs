//! The schema, as the migrations that build it, and [`migrate`], which applies the missing ones.

use super::{Result, StoreError};
use rusqlite::{Connection, params};

/// Schema migrations, applied in order; `PRAGMA user_version` is how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // Findings about no identity (an account nobody governs): identity_id may be NULL; at most
    // one open finding per (identity or none, kind, entitlement).
    r#"
CREATE TABLE findings_new (
    id             INTEGER PRIMARY KEY,
    identity_id    INTEGER REFERENCES identities(id),
    kind           TEXT NOT NULL,
    entitlement    TEXT NOT NULL,
    detail         TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    resolved_at    TEXT
);
INSERT INTO findings_new SELECT id, identity_id, kind, entitlement, detail, policy_version, opened_at, resolved_at FROM findings;
DROP TABLE findings;
ALTER TABLE findings_new RENAME TO findings;
CREATE UNIQUE INDEX findings_open ON findings(coalesce(identity_id, 0), kind, entitlement) WHERE resolved_at IS NULL;
CREATE INDEX findings_identity ON findings(identity_id) WHERE resolved_at IS NULL;
"#,
    // Reconciliation: findings about an account in a system, seen again or not by later runs;
    // the runs themselves.
    r#"
ALTER TABLE findings ADD COLUMN system TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN last_seen_at TEXT;
DROP INDEX findings_open;
CREATE UNIQUE INDEX findings_open ON findings(coalesce(identity_id, 0), kind, system, account, entitlement)
    WHERE resolved_at IS NULL;
CREATE INDEX findings_system ON findings(system, kind) WHERE resolved_at IS NULL;
CREATE TABLE reconcile_runs (
    id             INTEGER PRIMARY KEY,
    system         TEXT NOT NULL,
    state          TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT NOT NULL,
    changes        INTEGER NOT NULL,
    summary        TEXT NOT NULL,
    plan           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    ledger_seq     INTEGER,
    policy_version TEXT NOT NULL
);
CREATE INDEX reconcile_runs_system ON reconcile_runs(system, started_at);
"#,
    // Drift jobs: about an account, perhaps nobody's (identity_id NULL), with a payload.
    r#"
CREATE TABLE jobs_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    identity_id INTEGER REFERENCES identities(id),
    system      TEXT NOT NULL,
    account     TEXT NOT NULL DEFAULT '',
    payload     TEXT,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
INSERT INTO jobs_new (id, kind, identity_id, system, state, attempts, next_run_at, lease_until, last_error, created_at, updated_at)
    SELECT id, kind, identity_id, system, state, attempts, next_run_at, lease_until, last_error, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
-- INVARIANT: at most one pending job per (kind, identity or none, system, account).
CREATE UNIQUE INDEX jobs_one_pending ON jobs(kind, coalesce(identity_id, 0), system, account) WHERE state = 'pending';
CREATE INDEX jobs_due ON jobs(state, next_run_at);
CREATE INDEX jobs_key ON jobs(kind, identity_id, system, account, state);
"#,
    // 11: the clock finds identities whose expiry is near or past without reading them all.
    r#"
CREATE INDEX identities_expiry ON identities(expires_at) WHERE expires_at IS NOT NULL;
"#,
    // 12: why a suspended identity is suspended (the ones before were NHIs nobody took over).
    r#"
ALTER TABLE identities ADD COLUMN suspended_by TEXT;
UPDATE identities SET suspended_by = 'owner' WHERE state = 'suspended';
"#,
    // 13: SCIM resources pushed by sources, each tied to the identity it made.
    r#"
CREATE TABLE scim_users (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    user_name   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    resource    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
-- INVARIANT: a userName names one resource per source, whatever its case.
CREATE UNIQUE INDEX scim_users_name ON scim_users(source, user_name COLLATE NOCASE);
CREATE INDEX scim_users_identity ON scim_users(identity_id);
"#,
    // 14: the API request (X-Request-Id) a job came of, so the entries it writes carry it.
    "ALTER TABLE jobs ADD COLUMN request_id TEXT;",
    // 15: list pages in the order they are listed, however many rows precede them.
    r#"
CREATE INDEX credentials_newest ON credentials(issued_at DESC, id);
CREATE INDEX api_tokens_oldest ON api_tokens(created_at, id);
"#,
    // 16: an identity's revision, bumped by the database itself in the statement that changes
    // the identity or any of its grants: a copy read at the revision the row still has is
    // current (the authorization cache checks it on every decision).
    r#"
ALTER TABLE identities ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER identities_rev AFTER UPDATE ON identities WHEN NEW.rev = OLD.rev
BEGIN UPDATE identities SET rev = OLD.rev + 1 WHERE id = NEW.id; END;
CREATE TRIGGER grants_insert_rev AFTER INSERT ON grants
BEGIN UPDATE identities SET rev = rev + 1 WHERE id = NEW.identity_id; END;
CREATE TRIGGER grants_update_rev AFTER UPDATE ON grants
BEGIN UPDATE identities SET rev = rev + 1 WHERE id IN (OLD.identity_id, NEW.identity_id); END;
CREATE TRIGGER grants_delete_rev AFTER DELETE ON grants
BEGIN UPDATE identities SET rev = rev + 1 WHERE id = OLD.identity_id; END;
"#,
    // 17: access review campaigns, their items (grants snapshotted at the start), reviewers
    // per item and stage, and decisions per item and stage.
    r#"
CREATE TABLE review_campaigns (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    state          TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    stages         INTEGER NOT NULL,
    started_at     TEXT NOT NULL,
    deadline       TEXT NOT NULL,
    reminded       INTEGER NOT NULL DEFAULT 0,
    started_by     TEXT NOT NULL,
    closed_at      TEXT
);
CREATE INDEX review_campaigns_name ON review_campaigns(name, id);
CREATE TABLE review_items (
    id             INTEGER PRIMARY KEY,
    campaign_id    INTEGER NOT NULL REFERENCES review_campaigns(id),
    identity_id    INTEGER NOT NULL REFERENCES identities(id),
    grant_id       INTEGER NOT NULL,
    entitlement    TEXT NOT NULL,
    system         TEXT NOT NULL,
    origin         TEXT NOT NULL,
    privileged     INTEGER NOT NULL,
    granted_at     TEXT,
    stage          INTEGER NOT NULL DEFAULT 0,
    recommendation TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    outcome        TEXT,
    decided_at     TEXT
);
CREATE INDEX review_items_campaign ON review_items(campaign_id, id);
CREATE INDEX review_items_undecided ON review_items(campaign_id, id) WHERE outcome IS NULL;
CREATE INDEX review_items_revoked ON review_items(campaign_id, id) WHERE outcome = 'revoke';
CREATE TABLE review_reviewers (
    item_id     INTEGER NOT NULL REFERENCES review_items(id),
    stage       INTEGER NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    PRIMARY KEY (item_id, stage, identity_id)
) WITHOUT ROWID;
CREATE INDEX review_reviewers_identity ON review_reviewers(identity_id, item_id);
CREATE TABLE review_decisions (
    item_id    INTEGER NOT NULL REFERENCES review_items(id),
    stage      INTEGER NOT NULL,
    decision   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    decided_by INTEGER REFERENCES identities(id),
    at         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (item_id, stage)
) WITHOUT ROWID;
-- Ownership attestation: an NHI's last reconfirmation by its owner.
CREATE TABLE attestations (
    identity_id INTEGER PRIMARY KEY REFERENCES identities(id),
    attested_at TEXT NOT NULL,
    attested_by INTEGER NOT NULL REFERENCES identities(id),
    reason      TEXT NOT NULL
);
"#,
    // 18: posture report snapshots (the report as JSON), for each check's trend.
    r#"
CREATE TABLE posture_snapshots (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    report TEXT NOT NULL
);
"#,
    // 19: the latest entry of one action about a subject (a holder's last authorization, for a
    // review item's last use) is an index seek; the index replaces the subject's alone, so an
    // append maintains no more than before.
    r#"
DROP INDEX ledger_subject;
CREATE INDEX ledger_subject_action ON ledger(subject, action);
"#,
    // 20: when a system last saw an account sign in, as reconciliation read it.
    r#"
ALTER TABLE accounts ADD COLUMN last_login TEXT;
"#,
    // 21: an account under review (an `unlinked` one): the entry that verified its revoke.
    r#"
ALTER TABLE review_items ADD COLUMN verified_seq INTEGER;
"#,
];

/// Apply the migrations this database has not had, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
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
