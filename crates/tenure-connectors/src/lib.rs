//! Connectors: how tenure reads and changes accounts and entitlements in downstream systems.
//!
//! Every connector implements [`Connector`]. Operations are idempotent (creating an account that
//! tenure made already, granting a membership that is held, revoking one that is gone all
//! succeed), so a job that is retried after a crash never double-applies. An account tenure did
//! not make (no marker) is never taken over: see [`AccountRecord::managed_by`]. Verification is
//! always a separate read back ([`Connector::read_account`]), never the success code of the
//! write.
//!
//! Reconciliation reads a whole system with [`Connector::scan`]: pages handed to a sink as they
//! arrive (LDAP paged results, PostgreSQL keyset pages, SCIM `startIndex`/`count`, exec JSON
//! lines), so what a connector buffers is bounded by the page size. A scan either reads the
//! whole system or fails with [`ConnectorError::Incomplete`] naming the page: a partial read is
//! never handed on as if it were all there is.

pub mod exec;
pub mod ldap;
pub mod notify;
mod pg_tls;
pub mod postgres;
pub mod scim;
pub mod tls;

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};

/// What tenure asks a system to hold for one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The account's name in the system (for example an LDAP `uid`).
    pub name: String,
    /// The identity's display name.
    pub display_name: String,
    /// `human`, `service`, `workload` or `agent`.
    pub kind: String,
    /// The identity's `source:external_id`, recorded on the account so it can be traced back.
    pub reference: String,
    /// When the identity expires (RFC 3339), for systems that can end an account by date.
    pub expires_at: Option<String>,
    /// Mapped attributes to create it with (target → values; an empty list is left out), as
    /// the system writes them (account references already named its way).
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// An account as read back from the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub name: String,
    pub enabled: bool,
    /// Names of the groups (roles, …) the account is a member of, as entitlement targets.
    pub memberships: BTreeSet<String>,
    /// The identity (`source:external_id`) tenure marked the account with when it created it
    /// (a PostgreSQL role comment, an LDAP `description`, a SCIM `externalId`); `None` for an
    /// account tenure did not make. Only an account marked for the identity is ever managed.
    pub managed_by: Option<String>,
    /// The system's own connection account or a reserved name (`postgres`, the LDAP bind
    /// DN): never managed, whatever its marker says.
    pub reserved: bool,
    /// Elevated attributes the account holds beyond plain membership (PostgreSQL `SUPERUSER`,
    /// `CREATEDB`, `CREATEROLE`, `REPLICATION`, `BYPASSRLS`); disabling strips them.
    pub privileges: BTreeSet<String>,
    /// Attributes correlation rules may compare (LDAP `mail`, SCIM `emails`, …), by lowercase
    /// name; filled by [`Connector::scan`], empty on a read back.
    pub attributes: BTreeMap<String, String>,
    /// When the system last saw the account sign in, where it records that: LDAP
    /// `authTimestamp` (OpenLDAP's `lastbind` overlay), AD `lastLogonTimestamp` (replicated
    /// only every 9–14 days); `None` where it does not (PostgreSQL keeps no last login; SCIM
    /// has no standard attribute for it).
    pub last_login: Option<time::OffsetDateTime>,
}

/// How to read a whole system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Entries per page asked of the system (and handed to the sink at a time).
    pub page_size: usize,
    /// Account attributes to read beyond those the connector always reads, for correlation.
    pub attributes: Vec<String>,
}

impl Default for ScanRequest {
    fn default() -> Self {
        Self { page_size: 500, attributes: Vec::new() }
    }
}

/// One page of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// 1 for the first page a scan hands on, then 2, …
    pub number: u64,
    pub accounts: Vec<AccountRecord>,
    /// Memberships read apart from their accounts, `(account, target)` (LDAP and SCIM list
    /// members on the group); a connector that reads them with the account fills
    /// [`AccountRecord::memberships`] instead.
    pub memberships: Vec<(String, String)>,
}

/// Where a scan hands its pages; an error from it stops the scan and is returned as is.
pub type PageSink<'a> = &'a mut (dyn FnMut(Page) -> Result<(), ConnectorError> + Send);

/// Counts of a finished scan: everything the system holds was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub pages: u64,
    pub accounts: u64,
    pub memberships: u64,
}

/// Hands pages to a sink, numbering them and counting what passed; connectors use it so each
/// does not count for itself.
pub struct Pager<'s> {
    sink: PageSink<'s>,
    page: Page,
    page_size: usize,
    totals: ScanTotals,
}

impl<'s> Pager<'s> {
    pub fn new(page_size: usize, sink: PageSink<'s>) -> Self {
        Self { sink, page: Page::default(), page_size: page_size.max(1), totals: ScanTotals::default() }
    }

    /// The number the page being filled will carry (for an error naming where a read stopped).
    pub fn page_number(&self) -> u64 {
        self.totals.pages + 1
    }

    pub fn account(&mut self, a: AccountRecord) -> Result<(), ConnectorError> {
        self.totals.accounts += 1;
        self.totals.memberships += a.memberships.len() as u64;
        self.page.accounts.push(a);
        self.flush_when_full()
    }

    pub fn membership(&mut self, account: String, target: String) -> Result<(), ConnectorError> {
        self.totals.memberships += 1;
        self.page.memberships.push((account, target));
        self.flush_when_full()
    }

    fn flush_when_full(&mut self) -> Result<(), ConnectorError> {
        if self.page.accounts.len() + self.page.memberships.len() >= self.page_size { self.flush() } else { Ok(()) }
    }

    /// Hand on what is buffered (a connector calls it at the end of each page it read).
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        if self.page.accounts.is_empty() && self.page.memberships.is_empty() {
            return Ok(());
        }
        self.totals.pages += 1;
        let mut page = std::mem::take(&mut self.page);
        page.number = self.totals.pages;
        (self.sink)(page)
    }

    /// The scan read everything: hand on the rest and return the counts.
    pub fn finish(mut self) -> Result<ScanTotals, ConnectorError> {
        self.flush()?;
        Ok(self.totals)
    }
}

/// The outcome of trying to use an account the way its holder would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The system refused the account (what a leaver's probe must show).
    Refused(String),
    /// The system let the account in.
    Allowed,
    /// This connector has no probe for this account.
    Unsupported(String),
}

/// Errors of a connector. All are retried with backoff by the engine; the code is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("CN0001 system `{system}` is unreachable: {message}")]
    Unreachable { system: String, message: String },
    #[error("CN0002 system `{system}` refused `{operation}`: {message}")]
    Refused { system: String, operation: String, message: String },
    #[error("CN0003 system `{system}` is misconfigured: {message}")]
    Config { system: String, message: String },
    /// An account exists that tenure did not make for this identity (or one it must never
    /// manage): it is left untouched. Not retried; a person decides.
    #[error(
        "CN0004 system `{system}` holds account `{account}` that tenure did not make for `{reference}`: {why}; left untouched"
    )]
    NotManaged { system: String, account: String, reference: String, why: String },
    /// A scan stopped before it had read the whole system: nothing may be concluded from the
    /// part it read (an account it did not reach is not absent).
    #[error("CN0005 reading system `{system}` stopped at page {page}: {message}; the read is incomplete")]
    Incomplete { system: String, page: u64, message: String },
}

impl ConnectorError {
    /// `Ok` when tenure may change `record` for `reference` (it carries our marker for that
    /// identity and is not reserved); otherwise the [`ConnectorError::NotManaged`] saying why.
    pub fn ensure_managed(system: &str, record: &AccountRecord, reference: &str) -> Result<(), Self> {
        let why = if record.reserved {
            "it is the system's own account or a reserved name".to_owned()
        } else {
            match &record.managed_by {
                None => "it carries no tenure marker (it was made outside tenure)".to_owned(),
                Some(other) if other != reference => format!("it is marked for `{other}`"),
                Some(_) => return Ok(()),
            }
        };
        Err(Self::NotManaged {
            system: system.to_owned(),
            account: record.name.clone(),
            reference: reference.to_owned(),
            why,
        })
    }
}

/// A downstream system.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The system's name in the policy.
    fn system(&self) -> &str;

    /// The account name for an identity (`{source}` and `{external_id}` in the connector's
    /// `account_name` setting).
    fn account_name(&self, source: &str, external_id: &str) -> String;

    /// Read every account and membership the system holds, handing pages to `sink` as they
    /// arrive. Accounts tenure did not make are included (that is what reconciliation looks
    /// for); groups (entitlement targets) are not accounts. A read that fails part way is
    /// [`ConnectorError::Incomplete`].
    async fn scan(&self, request: &ScanRequest, sink: PageSink<'_>) -> Result<ScanTotals, ConnectorError>;

    /// Every account the system holds with its memberships, from one [`Connector::scan`]
    /// (held in memory: for small systems, the demo and tests).
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, ConnectorError> {
        collect(self, &ScanRequest::default()).await
    }

    /// The accounts whose `attribute` (lowercase, as [`AccountRecord::attributes`] names it;
    /// `name` for the account name) equals `value`, with their memberships: how a leaver's
    /// accounts made outside tenure are found. Connectors that can ask the system (an LDAP
    /// filter, a SCIM filter) do; the default reads the whole system.
    async fn find(&self, attribute: &str, value: &str) -> Result<Vec<AccountRecord>, ConnectorError> {
        if attribute == "name" {
            return Ok(self.read_account(value).await?.into_iter().collect());
        }
        let request = ScanRequest { attributes: vec![attribute.to_owned()], ..ScanRequest::default() };
        Ok(collect(self, &request)
            .await?
            .into_iter()
            .filter(|a| a.attributes.get(attribute).is_some_and(|v| v.trim().eq_ignore_ascii_case(value.trim())))
            .collect())
    }

    /// Every entitlement target the system offers (for reconciliation).
    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError>;

    /// Read one account back, with its memberships; `None` when it does not exist.
    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError>;

    /// Create the account (enabled, no memberships), marked as made by tenure for
    /// `spec.reference`; succeeds when it exists already with that marker, and refuses
    /// ([`ConnectorError::NotManaged`]) an existing account without it.
    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError>;

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError>;

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError>;

    /// Delete the account; succeeds when it is gone already.
    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError>;

    /// Add the account to an entitlement target; succeeds when it is a member already.
    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError>;

    /// Remove the account from an entitlement target; succeeds when it is not a member.
    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError>;

    /// Try to use the account as its holder would.
    async fn probe(&self, name: &str) -> Result<Probe, ConnectorError>;

    /// Whether the connection may write what provisioning writes, tried on a trial object the
    /// system keeps nothing of: `Ok(Some(what was tried))`, or `Ok(None)` where this connector
    /// makes no trial objects (a write there could have effects of its own). A refusal is the
    /// error.
    async fn check_write(&self) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }

    /// How this system names account `name` in another account's attribute (an LDAP DN, a
    /// SCIM user's `id`); `None` when it holds no such account.
    async fn account_reference(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        Ok(Some(name.to_owned()))
    }

    /// Read the mapped attributes `targets` of an account as the system holds them (a target
    /// it does not carry has no values); `None` when the account does not exist.
    async fn read_attributes(
        &self,
        name: &str,
        targets: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, ConnectorError> {
        let _ = targets;
        Err(ConnectorError::Refused {
            system: self.system().to_owned(),
            operation: format!("read the attributes of `{name}`"),
            message: "this connector has no attribute mappings".into(),
        })
    }

    /// Set each attribute to exactly its values (none: remove it); others are left as they are.
    async fn set_attributes(&self, name: &str, values: &BTreeMap<String, Vec<String>>) -> Result<(), ConnectorError> {
        let _ = values;
        Err(ConnectorError::Refused {
            system: self.system().to_owned(),
            operation: format!("set the attributes of `{name}`"),
            message: "this connector has no attribute mappings".into(),
        })
    }

    /// Whether what a read-back shows of `target` is what was written (as sets; LDAP compares
    /// DN-valued attributes as DNs).
    fn same_values(&self, target: &str, want: &[String], got: &[String]) -> bool {
        let _ = target;
        want.iter().collect::<BTreeSet<_>>() == got.iter().collect::<BTreeSet<_>>()
    }

    /// Mark an existing account as tenure's for `reference` (adopting an account made outside
    /// tenure, after a person chose to): the marker [`AccountRecord::managed_by`] reads back.
    async fn mark(&self, name: &str, reference: &str) -> Result<(), ConnectorError> {
        Err(ConnectorError::Refused {
            system: self.system().to_owned(),
            operation: format!("mark `{name}` for `{reference}`"),
            message: "this connector cannot mark accounts".into(),
        })
    }

    /// Create a short-lived login (a credential of the broker) with a password, ending at
    /// `login.valid_until`, member of `login.groups`. Drop it with [`Connector::delete_account`].
    /// Systems without dynamic logins refuse.
    async fn create_login(&self, login: &DynamicLogin) -> Result<(), ConnectorError> {
        Err(ConnectorError::Refused {
            system: self.system().to_owned(),
            operation: format!("create login `{}`", login.name),
            message: "this system has no dynamic logins".into(),
        })
    }
}

/// A dynamic login to create. The password is sent only as a salted verifier where the
/// system supports it (PostgreSQL: SCRAM-SHA-256, computed client-side).
#[derive(Clone, PartialEq, Eq)]
pub struct DynamicLogin {
    pub name: String,
    pub password: String,
    /// RFC 3339.
    pub valid_until: String,
    pub groups: Vec<String>,
    /// Recorded on the login so it can be traced back (credential id, identity).
    pub comment: String,
}

impl std::fmt::Debug for DynamicLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicLogin")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("valid_until", &self.valid_until)
            .field("groups", &self.groups)
            .finish()
    }
}

/// A whole scan in memory, each account with its memberships.
async fn collect<C: Connector + ?Sized>(c: &C, request: &ScanRequest) -> Result<Vec<AccountRecord>, ConnectorError> {
    let mut accounts: BTreeMap<String, AccountRecord> = BTreeMap::new();
    let mut loose: Vec<(String, String)> = Vec::new();
    c.scan(request, &mut |page: Page| {
        accounts.extend(page.accounts.into_iter().map(|a| (a.name.clone(), a)));
        loose.extend(page.memberships);
        Ok(())
    })
    .await?;
    for (account, target) in loose {
        if let Some(a) = accounts.get_mut(&account) {
            a.memberships.insert(target);
        }
    }
    Ok(accounts.into_values().collect())
}

/// Expand `{source}` and `{external_id}` in an account-name pattern.
/// One pass, so a value that itself contains `{source}` is never expanded again.
pub fn expand_account_name(pattern: &str, source: &str, external_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + external_id.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let (head, tail) = rest.split_at(open);
        out.push_str(head);
        if let Some(t) = tail.strip_prefix("{source}") {
            out.push_str(source);
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{external_id}") {
            out.push_str(external_id);
            rest = t;
        } else {
            out.push('{');
            rest = tail.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_expand_once() {
        assert_eq!(expand_account_name("{external_id}", "hr", "E1"), "E1");
        assert_eq!(expand_account_name("{source}-{external_id}", "hr", "{source}"), "hr-{source}");
        assert_eq!(expand_account_name("x{y}", "hr", "E1"), "x{y}");
    }
}
