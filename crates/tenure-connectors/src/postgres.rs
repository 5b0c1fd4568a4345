//! PostgreSQL: an account is a `LOGIN` role (with `VALID UNTIL` when the identity expires), an
//! entitlement is a group role (`NOLOGIN`) granted to it. Disabling is `NOLOGIN` plus ending the
//! role's sessions; deleting reassigns what the role owns, drops the rest and drops the role.
//! Read-back is `pg_roles` and `pg_auth_members`; the probe logs in as the role and must be
//! refused.
//!
//! Role names go into statements only through [`quote_ident`] and literals only through
//! [`quote_literal`] (DDL takes no bind parameters); everything else is a bind parameter. A name
//! like `x"; DROP ROLE admin; --` is just a strange role name.

use crate::{
    AccountRecord, AccountSpec, Connector, ConnectorError, DynamicLogin, PageSink, Pager, Probe, ScanRequest,
    ScanTotals, expand_account_name,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

/// tenure's marker on a role it created: the role comment starts with it, then the identity.
const MARKER: &str = "tenure: ";

/// The identity a role comment marks the role as made for (`tenure: REF (kind, name)`).
fn marker(comment: Option<&str>) -> Option<String> {
    let rest = comment?.strip_prefix(MARKER)?;
    Some(rest.split_once(" (").map_or(rest, |(r, _)| r).to_owned())
}

/// A role comment: the marker for `reference`, then the mapped comment in parentheses.
fn marked(reference: &str, comment: Option<&String>) -> String {
    match comment {
        Some(c) => format!("{MARKER}{reference} ({c})"),
        None => format!("{MARKER}{reference}"),
    }
}

/// The mapped part of a role comment (what follows the marker, in parentheses).
fn mapped_comment(comment: &str) -> Option<String> {
    let (_, rest) = comment.strip_prefix(MARKER)?.split_once(" (")?;
    Some(rest.strip_suffix(')').unwrap_or(rest).to_owned())
}

/// PostgreSQL truncates longer identifiers silently; tenure refuses them instead.
const MAX_NAME: usize = 63;

/// The trial role of [`Connector::check_write`], never committed.
const CHECK_ROLE: &str = "tenure_systems_check";

/// `"name"` with every `"` doubled: an identifier, whatever it contains.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with every `'` doubled (with `standard_conforming_strings`, which the connector sets).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Run a connection's I/O until its client is dropped (plain or TLS alike).
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
}

/// An error with its causes (a TLS failure is in the source, not the message).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Whether an error is about the connection or the server's availability (retry later) rather
/// than a refusal of the statement: no server answer at all, or SQLSTATE classes 08
/// (connection exception), 53 (insufficient resources) and 57 (operator intervention, e.g. a
/// shutdown).
fn connection_problem(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => ["08", "53", "57"].iter().any(|class| db.code().code().starts_with(class)),
    }
}

/// Connector settings.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `postgres://user[:password]@host:port/database` of a role with `CREATEROLE`.
    pub url: String,
    pub account_name: String,
    /// Who takes over what a deleted role owned (default: the connecting user).
    pub reassign_to: Option<String>,
    /// A group every dynamic login joins (for a `pg_hba.conf` rule such as
    /// `host all +tenure_logins 0.0.0.0/0 scram-sha-256`).
    pub login_group: Option<String>,
    /// TLS, from the URL's `sslmode` (`require` and `verify-full` verify the chain and the
    /// host name, `verify-ca` the chain only; `disable` or none: no TLS).
    pub tls: Option<crate::tls::Tls>,
}

/// The URL without its `sslmode` parameter (tokio-postgres knows only `disable`, `prefer` and
/// `require`; tenure reads it itself), and the mode it named.
fn take_sslmode(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None) };
    let mut mode = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("sslmode=") {
            Some(m) => {
                mode = Some(m.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (url, mode)
}

impl PostgresSettings {
    pub fn from_map(system: &str, s: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config { system: system.to_owned(), message };
        for k in s.keys() {
            if !["url", "account_name", "reassign_to", "login_group"].contains(&k.as_str())
                && !crate::tls::KEYS.contains(&k.as_str())
            {
                return Err(config(format!(
                    "unknown setting `{k}` (expected url, account_name, reassign_to, login_group, {})",
                    crate::tls::KEYS.join(", ")
                )));
            }
        }
        let url = s.get("url").cloned().ok_or_else(|| config("missing setting `url`".into()))?;
        let (url, sslmode) = take_sslmode(&url);
        url.parse::<Config>().map_err(|e| config(format!("field `url`: {e}")))?;
        use crate::tls::{Tls, Verify};
        let tls = match sslmode.as_deref() {
            None | Some("disable") => {
                if let Some(k) = crate::tls::KEYS.iter().find(|k| s.contains_key(**k)) {
                    return Err(config(format!("field `{k}` needs TLS: add `sslmode=verify-full` to the URL")));
                }
                None
            }
            Some("require" | "verify-full") => Some(Tls::from_map(system, s)?.with_verify(Verify::Full)),
            Some("verify-ca") => Some(Tls::from_map(system, s)?.with_verify(Verify::ChainOnly)),
            Some(other) => {
                return Err(config(format!(
                    "field `url`: sslmode `{other}`: expected disable, require, verify-ca or verify-full (tenure never \
                     falls back to plain text, as `prefer` and `allow` would)"
                )));
            }
        };
        Ok(Self {
            tls,
            url,
            account_name: s.get("account_name").cloned().unwrap_or_else(|| "{external_id}".into()),
            reassign_to: s.get("reassign_to").cloned(),
            login_group: s.get("login_group").cloned(),
        })
    }
}

pub struct PostgresConnector {
    system: String,
    settings: PostgresSettings,
    config: Config,
    client: Mutex<Option<Client>>,
}

impl PostgresConnector {
    pub fn new(system: &str, settings: PostgresSettings) -> Result<Self, ConnectorError> {
        let mut config: Config = settings.url.parse().map_err(|e: tokio_postgres::Error| ConnectorError::Config {
            system: system.to_owned(),
            message: format!("field `url`: {e}"),
        })?;
        config.connect_timeout(std::time::Duration::from_secs(10));
        config.application_name("tenure");
        if settings.tls.is_some() {
            // TLS or nothing: never a plain-text fallback.
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        Ok(Self { system: system.to_owned(), settings, config, client: Mutex::new(None) })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Unreachable { system: self.system.clone(), message: e.to_string() }
    }

    fn error(&self, operation: &str, e: &tokio_postgres::Error) -> ConnectorError {
        match e.as_db_error() {
            Some(_) if connection_problem(e) => self.unreachable(e),
            Some(db) => ConnectorError::Refused {
                system: self.system.clone(),
                operation: operation.to_owned(),
                message: format!("{} ({})", db.message(), db.code().code()),
            },
            None => self.unreachable(e),
        }
    }

    fn check_name(&self, name: &str) -> Result<(), ConnectorError> {
        if name.is_empty() || name.len() > MAX_NAME || name.contains('\0') {
            return Err(ConnectorError::Refused {
                system: self.system.clone(),
                operation: "name a role".into(),
                message: format!("`{name}` is not a usable role name (1 to {MAX_NAME} bytes, no NUL)"),
            });
        }
        Ok(())
    }

    /// The connection's own role, `postgres` and the `pg_` roles are never managed (superusers
    /// are recognised on read-back, see `rolsuper`).
    fn is_reserved_name(&self, name: &str) -> bool {
        name == self.config.get_user().unwrap_or("postgres") || name == "postgres" || name.starts_with("pg_")
    }

    /// A role name tenure may change: usable, and not reserved.
    fn check_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.check_name(name)?;
        if self.is_reserved_name(name) {
            return Err(ConnectorError::NotManaged {
                system: self.system.clone(),
                account: name.to_owned(),
                reference: "any identity".into(),
                why: "it is the connection's own role or a reserved name".into(),
            });
        }
        Ok(())
    }

    /// Connect as `config` says, over TLS when the settings have it; the connection's task
    /// runs until the client is dropped.
    async fn connect(&self, config: &Config) -> Result<Client, ConnectorError> {
        let client = match &self.settings.tls {
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(|e| self.unreachable(e))?;
                drive(connection);
                client
            }
            Some(tls) => {
                tls.warn_if_unverified();
                let make = crate::pg_tls::MakeRustls(tls.client_config()?);
                let (client, connection) =
                    config.connect(make).await.map_err(|e| self.unreachable(crate::tls::explain(&error_chain(&e))))?;
                drive(connection);
                client
            }
        };
        client.batch_execute("SET standard_conforming_strings = on").await.map_err(|e| self.error("connect", &e))?;
        Ok(client)
    }

    /// Run `f` with a connected client, connecting (again) when needed.
    async fn with<T>(
        &self,
        operation: &str,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, ConnectorError> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let client = self.connect(&self.config).await?;
            *slot = Some(client);
        }
        let Some(client) = slot.as_ref() else { return Err(self.unreachable("no connection")) };
        let result = f(client).await;
        if let Err(e) = &result
            && connection_problem(e)
        {
            *slot = None;
        }
        result.map_err(|e| self.error(operation, &e))
    }

    /// A role's comment: `None` when there is no such role, `Some(None)` when it has none.
    async fn comment(&self, name: &str) -> Result<Option<Option<String>>, ConnectorError> {
        let name = name.to_owned();
        self.with("read role comment", async move |c| {
            Ok(c.query_opt("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", &[&name])
                .await?
                .map(|r| r.get::<_, Option<String>>(0)))
        })
        .await
    }

    async fn role_exists(&self, name: &str) -> Result<bool, ConnectorError> {
        let name = name.to_owned();
        self.with("read role", async move |c| {
            Ok(c.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name]).await?.is_some())
        })
        .await
    }

    /// Run statements; errors with a code in `tolerate` ("already exists", "does not exist")
    /// are what idempotence expects and count as success.
    async fn exec_tolerant(&self, operation: &str, sql: String, tolerate: &[SqlState]) -> Result<(), ConnectorError> {
        let tolerate = tolerate.to_vec();
        let system = self.system.clone();
        let op = operation.to_owned();
        let outcome = self
            .with(operation, async move |c| match c.batch_execute(&sql).await {
                Ok(()) => Ok(Ok(())),
                Err(e) if e.code().is_some_and(|code| tolerate.contains(code)) => Ok(Ok(())),
                Err(e) if !connection_problem(&e) => Ok(Err(e)),
                Err(e) => Err(e),
            })
            .await?;
        outcome.map_err(|e| ConnectorError::Refused {
            system,
            operation: op,
            message: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| format!("{} ({})", d.message(), d.code().code())),
        })
    }

    fn reassign_to(&self) -> String {
        self.settings
            .reassign_to
            .clone()
            .or_else(|| self.config.get_user().map(str::to_owned))
            .unwrap_or_else(|| "postgres".into())
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    fn system(&self) -> &str {
        &self.system
    }

    fn account_name(&self, source: &str, external_id: &str) -> String {
        expand_account_name(&self.settings.account_name, source, external_id)
    }

    async fn scan(&self, request: &ScanRequest, sink: PageSink<'_>) -> Result<ScanTotals, ConnectorError> {
        let mut pager = Pager::new(request.page_size, sink);
        let limit = i64::try_from(request.page_size.clamp(1, 100_000)).unwrap_or(500);
        // Which login roles have a password: only a superuser may read `pg_authid`; otherwise
        // the scan says nothing about passwords (no `password` attribute) rather than "none".
        let passwords: Option<std::collections::HashSet<String>> = self
            .with("list passwords", async move |c| {
                c.query("SELECT rolname::text FROM pg_authid WHERE rolpassword IS NOT NULL AND rolcanlogin", &[]).await
            })
            .await
            .ok()
            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect());
        let mut after = String::new();
        loop {
            let from = after.clone();
            let rows = self
                .with("list roles", async move |c| {
                    // Keyset pages in `name` order (C collation): an account is a LOGIN role, or
                    // one tenure made (disabled ones are NOLOGIN); other NOLOGIN roles are groups.
                    // The page of roles first (an index scan on the name, stopping at the limit),
                    // then each one's memberships: aggregating before the limit would read every
                    // role for every page.
                    c.query(
                        "WITH page AS (
                            SELECT r.oid, r.rolname, r.rolcanlogin AND (r.rolvaliduntil IS NULL OR r.rolvaliduntil > now()) AS enabled,
                                   shobj_description(r.oid, 'pg_authid') AS comment,
                                   array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                                       CASE WHEN r.rolcreatedb THEN 'CREATEDB' END, CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
                                       CASE WHEN r.rolreplication THEN 'REPLICATION' END, CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL) AS privileges
                            FROM pg_roles r
                            WHERE r.rolname > $1::text::name AND r.rolname !~ '^pg_'
                              AND (r.rolcanlogin OR coalesce(shobj_description(r.oid, 'pg_authid'), '') LIKE 'tenure: %')
                            ORDER BY r.rolname LIMIT $2)
                         SELECT p.rolname, p.enabled,
                                coalesce((SELECT array_agg(g.rolname::text ORDER BY g.rolname) FROM pg_auth_members m
                                          JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = p.oid), '{}'),
                                p.comment, p.privileges
                         FROM page p ORDER BY p.rolname",
                        &[&from, &limit],
                    )
                    .await
                })
                .await
                .map_err(|e| ConnectorError::Incomplete {
                    system: self.system.clone(),
                    page: pager.page_number(),
                    message: format!("listing roles after `{after}`: {e}"),
                })?;
            let n = rows.len();
            for r in &rows {
                let name: String = r.get(0);
                let comment: Option<String> = r.get(3);
                let mut attributes = BTreeMap::new();
                if let Some(c) = &comment {
                    attributes.insert("comment".to_owned(), c.clone());
                }
                if let Some(p) = &passwords {
                    attributes.insert("password".to_owned(), if p.contains(&name) { "set" } else { "none" }.to_owned());
                }
                pager.account(AccountRecord {
                    reserved: self.is_reserved_name(&name),
                    enabled: r.get(1),
                    memberships: r.get::<_, Vec<String>>(2).into_iter().collect(),
                    managed_by: marker(comment.as_deref()),
                    privileges: r.get::<_, Vec<String>>(4).into_iter().collect(),
                    attributes,
                    // PostgreSQL records no last login (only `log_connections`, in its log).
                    last_login: None,
                    name: name.clone(),
                })?;
                after = name;
            }
            pager.flush()?;
            if n < usize::try_from(limit).unwrap_or(usize::MAX) {
                return pager.finish();
            }
        }
    }

    async fn mark(&self, name: &str, reference: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        let comment = format!("{MARKER}{reference} (adopted)");
        let sql = format!("COMMENT ON ROLE {} IS {}", quote_ident(name), quote_literal(&comment));
        self.with("mark role", async move |c| c.batch_execute(&sql).await).await
    }

    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError> {
        let rows = self
            .with("list group roles", async move |c| {
                c.query("SELECT rolname FROM pg_roles WHERE NOT rolcanlogin AND rolname !~ '^pg_' ORDER BY 1", &[])
                    .await
            })
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError> {
        let n = name.to_owned();
        let rows = self
            .with("read role", async move |c| {
                let role = c
                    .query_opt(
                        "SELECT rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now()),
                                shobj_description(oid, 'pg_authid'),
                                array_remove(ARRAY[CASE WHEN rolsuper THEN 'SUPERUSER' END,
                                    CASE WHEN rolcreatedb THEN 'CREATEDB' END, CASE WHEN rolcreaterole THEN 'CREATEROLE' END,
                                    CASE WHEN rolreplication THEN 'REPLICATION' END, CASE WHEN rolbypassrls THEN 'BYPASSRLS' END], NULL)
                         FROM pg_roles WHERE rolname = $1",
                        &[&n],
                    )
                    .await?;
                let groups = c
                    .query(
                        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                         JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1",
                        &[&n],
                    )
                    .await?;
                Ok(role.map(|r| {
                    let groups = groups.iter().map(|g| g.get::<_, String>(0)).collect::<BTreeSet<_>>();
                    (r.get::<_, bool>(0), groups, r.get::<_, Option<String>>(1), r.get::<_, Vec<String>>(2))
                }))
            })
            .await?;
        Ok(rows.map(|(enabled, memberships, comment, privileges)| AccountRecord {
            name: name.to_owned(),
            enabled,
            memberships,
            managed_by: marker(comment.as_deref()),
            reserved: self.is_reserved_name(name),
            privileges: privileges.into_iter().collect(),
            attributes: BTreeMap::new(),
            last_login: None,
        }))
    }

    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError> {
        self.check_account(&spec.name)?;
        if let Some(existing) = self.read_account(&spec.name).await? {
            return ConnectorError::ensure_managed(&self.system, &existing, &spec.reference);
        }
        let until =
            spec.expires_at.as_deref().map(|t| format!(" VALID UNTIL {}", quote_literal(t))).unwrap_or_default();
        let role = quote_ident(&spec.name);
        // The role and its marker in one statement string, which PostgreSQL runs as one
        // implicit transaction: there is never an unmarked role of ours, and a role someone
        // else created meanwhile makes CREATE fail instead of being taken over.
        let comment = marked(&spec.reference, spec.attributes.get("comment").and_then(|v| v.first()));
        let created = self
            .exec_tolerant(
                "create role",
                format!("CREATE ROLE {role} LOGIN{until}; COMMENT ON ROLE {role} IS {}", quote_literal(&comment)),
                &[],
            )
            .await;
        match created {
            Err(ConnectorError::Refused { message, .. })
                if message.ends_with(&format!("({})", SqlState::DUPLICATE_OBJECT.code())) =>
            {
                match self.read_account(&spec.name).await? {
                    Some(r) => ConnectorError::ensure_managed(&self.system, &r, &spec.reference),
                    None => Err(ConnectorError::Refused {
                        system: self.system.clone(),
                        operation: "create role".into(),
                        message,
                    }),
                }
            }
            other => other,
        }
    }

    async fn read_attributes(
        &self,
        name: &str,
        targets: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, ConnectorError> {
        let Some(comment) = self.comment(name).await? else { return Ok(None) };
        Ok(Some(
            targets
                .iter()
                .map(|t| {
                    let v = if t == "comment" { comment.as_deref().and_then(mapped_comment) } else { None };
                    (t.clone(), v.into_iter().collect())
                })
                .collect(),
        ))
    }

    async fn set_attributes(&self, name: &str, values: &BTreeMap<String, Vec<String>>) -> Result<(), ConnectorError> {
        let Some(wanted) = values.get("comment") else { return Ok(()) };
        self.check_account(name)?;
        // The marker stays as it is: only the part after it is mapped.
        let reference = match self.comment(name).await? {
            Some(c) => marker(c.as_deref()),
            None => None,
        };
        let Some(reference) = reference else {
            return Err(ConnectorError::Refused {
                system: self.system.clone(),
                operation: "set attributes".into(),
                message: format!("role `{name}` is absent or carries no tenure marker"),
            });
        };
        let comment = marked(&reference, wanted.first());
        self.exec_tolerant(
            "comment on role",
            format!("COMMENT ON ROLE {} IS {}", quote_ident(name), quote_literal(&comment)),
            &[],
        )
        .await
    }

    async fn check_write(&self) -> Result<Option<String>, ConnectorError> {
        // DDL is transactional in PostgreSQL: a role created and commented on, then rolled
        // back, proves the privileges provisioning needs and leaves nothing behind.
        let role = quote_ident(CHECK_ROLE);
        let sql = format!(
            "BEGIN; CREATE ROLE {role} NOLOGIN; COMMENT ON ROLE {role} IS {}; ROLLBACK",
            quote_literal(&marked("tenure:systems-check", None))
        );
        let tried = self.exec_tolerant("create a trial role", sql, &[]).await;
        if tried.is_err() {
            // The failed statement left the transaction open and aborted: end it.
            self.exec_tolerant("roll back the trial role", "ROLLBACK".into(), &[]).await?;
        }
        tried.map(|()| Some(format!("created role `{CHECK_ROLE}` in a transaction, then rolled it back")))
    }

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        self.exec_tolerant("enable role", format!("ALTER ROLE {} LOGIN", quote_ident(name)), &[]).await
    }

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        // A disabled role keeps no elevated attribute either (a leaver's role given SUPERUSER
        // or BYPASSRLS by hand would still be dangerous in the hands of anyone who can SET ROLE
        // to it). Only the attributes it holds are named, so a connection without SUPERUSER can
        // still disable an ordinary role.
        let strip: String = match self.read_account(name).await? {
            Some(r) => r.privileges.iter().map(|p| format!(" NO{p}")).collect(),
            None => String::new(),
        };
        self.exec_tolerant(
            "disable role",
            format!("ALTER ROLE {} NOLOGIN{strip}", quote_ident(name)),
            &[SqlState::UNDEFINED_OBJECT],
        )
        .await?;
        // Sessions already open survive NOLOGIN: end them.
        let n = name.to_owned();
        self.with("end sessions", async move |c| {
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&n]).await
        })
        .await?;
        Ok(())
    }

    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        if !self.role_exists(name).await? {
            return Ok(());
        }
        self.disable_account(name).await?;
        let role = quote_ident(name);
        let heir = quote_ident(&self.reassign_to());
        self.exec_tolerant(
            "drop role",
            format!("REASSIGN OWNED BY {role} TO {heir}; DROP OWNED BY {role}; DROP ROLE {role}"),
            &[SqlState::UNDEFINED_OBJECT],
        )
        .await
    }

    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        self.check_name(target)?;
        let group = quote_ident(target);
        self.exec_tolerant("create group role", format!("CREATE ROLE {group} NOLOGIN"), &[SqlState::DUPLICATE_OBJECT])
            .await?;
        self.exec_tolerant("grant role", format!("GRANT {group} TO {}", quote_ident(name)), &[]).await
    }

    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        self.check_account(name)?;
        self.check_name(target)?;
        self.exec_tolerant(
            "revoke role",
            format!("REVOKE {} FROM {}", quote_ident(target), quote_ident(name)),
            &[SqlState::UNDEFINED_OBJECT],
        )
        .await
    }

    async fn create_login(&self, login: &DynamicLogin) -> Result<(), ConnectorError> {
        self.check_account(&login.name)?;
        // The server gets the SCRAM verifier, never the password: nothing to leak into its
        // statement log.
        let verifier = postgres_protocol::password::scram_sha_256(login.password.as_bytes());
        let role = quote_ident(&login.name);
        self.exec_tolerant(
            "create login",
            format!(
                "CREATE ROLE {role} LOGIN PASSWORD {} VALID UNTIL {}; COMMENT ON ROLE {role} IS {}",
                quote_literal(&verifier),
                quote_literal(&login.valid_until),
                quote_literal(&login.comment)
            ),
            &[],
        )
        .await?;
        for g in self.settings.login_group.iter().chain(&login.groups) {
            self.grant(&login.name, g).await?;
        }
        Ok(())
    }

    async fn probe(&self, name: &str) -> Result<Probe, ConnectorError> {
        self.check_name(name)?;
        let mut as_role = self.config.clone();
        as_role.user(name);
        as_role.password(Vec::<u8>::new());
        // Over the same transport as the connector's own connection: a server that takes only
        // TLS would refuse a plain-text probe whatever the role.
        let attempt = match &self.settings.tls {
            None => as_role.connect(NoTls).await.map(|(client, connection)| {
                drop(client);
                drop(connection);
            }),
            Some(tls) => as_role.connect(crate::pg_tls::MakeRustls(tls.client_config()?)).await.map(|(c, conn)| {
                drop(c);
                drop(conn);
            }),
        };
        match attempt {
            Ok(()) => Ok(Probe::Allowed),
            Err(e) => match e.code() {
                Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    Ok(Probe::Refused(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())))
                }
                Some(c) if *c == SqlState::INVALID_PASSWORD => {
                    Ok(Probe::Unsupported("the server wants a password; a login probe proves nothing".into()))
                }
                _ => Err(self.unreachable(e)),
            },
        }
    }
}
