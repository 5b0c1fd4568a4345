//! The LDAP connector (OpenLDAP and other RFC 4511 directories).
//!
//! - An account is an `inetOrgPerson` entry `uid=NAME,PEOPLE,BASE`.
//! - An entitlement is membership (`member`) of a `groupOfNames` entry `cn=TARGET,GROUPS,BASE`;
//!   a missing group is created on first grant. Read-back covers groups anywhere under the base
//!   (one elsewhere is named `dn:` and its DN), so a leaver is removed from those too. Groups
//!   keep an empty `member` value so the last member can be removed without breaking the
//!   schema's `MUST member`.
//! - Disabled means locked by the password policy overlay (`pwdAccountLockedTime:
//!   000001010000Z`, the permanent lock); binds then fail while `pwdLockout` is on.
//!
//! Every value that goes into a DN is escaped with RFC 4514 rules and every value in a filter
//! with RFC 4515 rules (`ldap3::dn_escape`, `ldap3::ldap_escape`), so `*)(uid=*` or
//! `cn=x,dc=evil` is just a name.

use crate::{AccountRecord, AccountSpec, Connector, ConnectorError, Probe, expand_account_name};
use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, dn_escape, ldap_escape};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;
use tokio::sync::Mutex;

/// The permanent-lock value of the password policy overlay.
const LOCKED: &str = "000001010000Z";
const LOCK_ATTR: &str = "pwdAccountLockedTime";

// LDAP result codes (RFC 4511 §4.1.9) that mean "already as wanted".
const NO_SUCH_ATTRIBUTE: u32 = 16;
const NO_SUCH_OBJECT: u32 = 32;
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const ENTRY_ALREADY_EXISTS: u32 = 68;
const OBJECT_CLASS_VIOLATION: u32 = 65;

/// A membership of a group outside the groups container is named by its DN after this.
const DN_PREFIX: &str = "dn:";

/// tenure's marker on an entry it created: `description: managed by tenure: REF`.
const MARKER: &str = "managed by tenure: ";

fn marker(entry: &SearchEntry) -> Option<String> {
    entry.attrs.get("description")?.iter().find_map(|d| d.strip_prefix(MARKER).map(str::to_owned))
}

/// Settings of an LDAP system (the `[systems.NAME]` table, after `${VAR}` expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    pub url: String,
    pub base_dn: String,
    pub bind_dn: String,
    pub bind_password: String,
    /// RDN of the people container under `base_dn` (default `ou=people`).
    pub people: String,
    /// RDN of the groups container under `base_dn` (default `ou=groups`).
    pub groups: String,
    /// Account-name pattern (default `{external_id}`).
    pub account_name: String,
    pub timeout: Duration,
}

impl LdapSettings {
    /// Read settings from the system's table; errors name the missing field.
    pub fn from_map(system: &str, m: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let need = |k: &str| {
            m.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| ConnectorError::Config {
                system: system.to_owned(),
                message: format!("field `{k}` is missing or empty"),
            })
        };
        let timeout = match m.get("timeout_secs") {
            Some(t) => Duration::from_secs(t.parse().map_err(|_| ConnectorError::Config {
                system: system.to_owned(),
                message: format!("field `timeout_secs`: expected a number of seconds, found `{t}`"),
            })?),
            None => Duration::from_secs(10),
        };
        Ok(Self {
            url: need("url")?,
            base_dn: need("base_dn")?,
            bind_dn: need("bind_dn")?,
            bind_password: need("bind_password")?,
            people: m.get("people").cloned().unwrap_or_else(|| "ou=people".into()),
            groups: m.get("groups").cloned().unwrap_or_else(|| "ou=groups".into()),
            account_name: m.get("account_name").cloned().unwrap_or_else(|| "{external_id}".into()),
            timeout,
        })
    }
}

/// A connection to one directory, re-established when it breaks.
pub struct LdapConnector {
    system: String,
    settings: LdapSettings,
    conn: Mutex<Option<Ldap>>,
}

impl LdapConnector {
    pub fn new(system: &str, settings: LdapSettings) -> Self {
        Self { system: system.to_owned(), settings, conn: Mutex::new(None) }
    }

    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }

    /// The DN of an account.
    pub fn account_dn(&self, name: &str) -> String {
        format!("uid={},{},{}", dn_escape(name), self.settings.people, self.settings.base_dn)
    }

    /// The DN of an entitlement target (group).
    pub fn group_dn(&self, target: &str) -> String {
        format!("cn={},{},{}", dn_escape(target), self.settings.groups, self.settings.base_dn)
    }

    /// The account tenure binds as is never managed (nor any entry with its DN).
    fn is_reserved(&self, dn: &str) -> bool {
        normalize_dn(dn) == normalize_dn(&self.settings.bind_dn)
    }

    fn groups_base(&self) -> String {
        format!("{},{}", self.settings.groups, self.settings.base_dn)
    }

    fn people_base(&self) -> String {
        format!("{},{}", self.settings.people, self.settings.base_dn)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Unreachable { system: self.system.clone(), message: e.to_string() }
    }

    fn refused(&self, op: &str, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Refused { system: self.system.clone(), operation: op.to_owned(), message: e.to_string() }
    }

    /// A bound handle, connecting on first use or after a failure.
    async fn ldap(&self) -> Result<Ldap, ConnectorError> {
        let mut slot = self.conn.lock().await;
        if let Some(l) = slot.as_mut()
            && !l.is_closed()
        {
            return Ok(l.clone());
        }
        let settings = LdapConnSettings::new().set_conn_timeout(self.settings.timeout);
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(settings, &self.settings.url).await.map_err(|e| self.unreachable(e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.settings.timeout);
        ldap.simple_bind(&self.settings.bind_dn, &self.settings.bind_password)
            .await
            .map_err(|e| self.unreachable(e))?
            .success()
            .map_err(|e| self.refused("bind", e))?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    /// Run one operation; a transport failure drops the cached connection.
    async fn op<T, F, Fut>(&self, name: &str, f: F) -> Result<T, ConnectorError>
    where
        F: FnOnce(Ldap) -> Fut,
        Fut: std::future::Future<Output = Result<T, LdapError>>,
    {
        let ldap = self.ldap().await?;
        match f(ldap).await {
            Ok(v) => Ok(v),
            Err(LdapError::LdapResult { result }) => Err(self.refused(name, result)),
            Err(e) => {
                *self.conn.lock().await = None;
                Err(self.unreachable(e))
            }
        }
    }

    /// Every group under the whole base with `dn` as a member (groups outside the groups
    /// container too: a leaver is "in no group" only if no group anywhere lists them).
    async fn memberships(&self, dn: &str) -> Result<BTreeSet<String>, ConnectorError> {
        let filter = format!("(&(objectClass=groupOfNames)(member={}))", ldap_escape(dn));
        let base = self.settings.base_dn.clone();
        let entries = self
            .op("search groups", |mut l| async move {
                let (rs, _) = l.search(&base, Scope::Subtree, &filter, vec!["cn"]).await?.success()?;
                Ok(rs)
            })
            .await?;
        Ok(entries.into_iter().filter_map(|e| self.group_name(SearchEntry::construct(e))).collect())
    }

    /// How a group is named as a membership: its `cn` when it is a direct child of the groups
    /// container (an entitlement target), else `dn:` and its whole DN.
    fn group_name(&self, mut entry: SearchEntry) -> Option<String> {
        let cn = entry.attrs.remove("cn").and_then(|mut v| v.pop())?;
        if normalize_dn(&entry.dn) == normalize_dn(&self.group_dn(&cn)) {
            Some(cn)
        } else {
            Some(format!("{DN_PREFIX}{}", entry.dn))
        }
    }

    /// The DN of a membership target: a group in the groups container by name, or a `dn:`
    /// target (read back from a group elsewhere) if it lies under the base DN.
    fn target_dn(&self, target: &str) -> Result<String, ConnectorError> {
        match target.strip_prefix(DN_PREFIX) {
            None => Ok(self.group_dn(target)),
            Some(dn) if normalize_dn(dn).ends_with(&format!(",{}", normalize_dn(&self.settings.base_dn))) => {
                Ok(dn.to_owned())
            }
            Some(dn) => Err(self.refused("revoke", format!("`{dn}` is not under the base DN"))),
        }
    }
}

/// A DN compared loosely: case and spaces after commas do not matter.
fn normalize_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_ascii_lowercase()).collect::<Vec<_>>().join(",")
}

fn set(values: &[&str]) -> HashSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// An LDAP result with one of the "already as wanted" codes is a success.
fn tolerate(r: ldap3::LdapResult, ok: &[u32]) -> Result<(), LdapError> {
    if r.rc == 0 || ok.contains(&r.rc) { Ok(()) } else { Err(LdapError::LdapResult { result: r }) }
}

#[async_trait]
impl Connector for LdapConnector {
    fn system(&self) -> &str {
        &self.system
    }

    fn account_name(&self, source: &str, external_id: &str) -> String {
        expand_account_name(&self.settings.account_name, source, external_id)
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, ConnectorError> {
        let base = self.people_base();
        let people = self
            .op("search people", |mut l| async move {
                let (rs, _) = l
                    .search(
                        &base,
                        Scope::OneLevel,
                        "(objectClass=inetOrgPerson)",
                        vec!["uid", LOCK_ATTR, "description"],
                    )
                    .await?
                    .success()?;
                Ok(rs)
            })
            .await?;
        let gbase = self.settings.base_dn.clone();
        let groups = self
            .op("search groups", |mut l| async move {
                let (rs, _) = l
                    .search(&gbase, Scope::Subtree, "(objectClass=groupOfNames)", vec!["cn", "member"])
                    .await?
                    .success()?;
                Ok(rs)
            })
            .await?;
        let mut by_dn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for g in groups {
            let mut g = SearchEntry::construct(g);
            let members = g.attrs.remove("member").unwrap_or_default();
            let Some(name) = self.group_name(g) else { continue };
            for m in members {
                by_dn.entry(m.to_ascii_lowercase()).or_default().insert(name.clone());
            }
        }
        Ok(people
            .into_iter()
            .filter_map(|p| {
                let mut p = SearchEntry::construct(p);
                let name = p.attrs.remove("uid")?.pop()?;
                let enabled = !p.attrs.get(LOCK_ATTR).is_some_and(|v| v.iter().any(|x| x == LOCKED));
                let memberships = by_dn.remove(&p.dn.to_ascii_lowercase()).unwrap_or_default();
                let managed_by = marker(&p);
                let reserved = self.is_reserved(&p.dn);
                Some(AccountRecord { name, enabled, memberships, managed_by, reserved, privileges: BTreeSet::new() })
            })
            .collect())
    }

    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError> {
        let base = self.groups_base();
        let groups = self
            .op("search groups", |mut l| async move {
                let (rs, _) =
                    l.search(&base, Scope::Subtree, "(objectClass=groupOfNames)", vec!["cn"]).await?.success()?;
                Ok(rs)
            })
            .await?;
        Ok(groups.into_iter().filter_map(|g| SearchEntry::construct(g).attrs.remove("cn")?.pop()).collect())
    }

    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError> {
        let dn = self.account_dn(name);
        let base = dn.clone();
        let entry = self
            .op("read account", |mut l| async move {
                let res =
                    l.search(&base, Scope::Base, "(objectClass=*)", vec!["uid", LOCK_ATTR, "description"]).await?;
                if res.1.rc == NO_SUCH_OBJECT {
                    return Ok(None);
                }
                let (mut rs, _) = res.success()?;
                Ok(rs.pop().map(SearchEntry::construct))
            })
            .await?;
        let Some(entry) = entry else { return Ok(None) };
        let enabled = !entry.attrs.get(LOCK_ATTR).is_some_and(|v| v.iter().any(|x| x == LOCKED));
        let memberships = self.memberships(&dn).await?;
        let managed_by = marker(&entry);
        let reserved = self.is_reserved(&entry.dn);
        Ok(Some(AccountRecord {
            name: name.to_owned(),
            enabled,
            memberships,
            managed_by,
            reserved,
            privileges: BTreeSet::new(),
        }))
    }

    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError> {
        let dn = self.account_dn(&spec.name);
        // `sn` and `cn` are mandatory and non-empty; fall back to the account name.
        let display = if spec.display_name.trim().is_empty() { spec.name.clone() } else { spec.display_name.clone() };
        let attrs: Vec<(String, HashSet<String>)> = vec![
            ("objectClass".into(), set(&["top", "person", "organizationalPerson", "inetOrgPerson"])),
            ("uid".into(), set(&[&spec.name])),
            ("cn".into(), set(&[&display])),
            ("sn".into(), set(&[&display])),
            ("displayName".into(), set(&[&display])),
            ("employeeType".into(), set(&[&spec.kind])),
            ("description".into(), set(&[&format!("{MARKER}{}", spec.reference)])),
        ];
        if self.is_reserved(&dn) {
            return Err(ConnectorError::NotManaged {
                system: self.system.clone(),
                account: spec.name.clone(),
                reference: spec.reference.clone(),
                why: "it is the directory account tenure binds as".into(),
            });
        }
        let created = self.op("create account", |mut l| async move { l.add(&dn, attrs).await }).await?;
        match created.rc {
            0 => Ok(()),
            // It exists: ours only if it carries our marker for this identity.
            ENTRY_ALREADY_EXISTS => match self.read_account(&spec.name).await? {
                Some(r) => ConnectorError::ensure_managed(&self.system, &r, &spec.reference),
                None => Err(self.refused("create account", format!("`{}` exists and does not", spec.name))),
            },
            _ => Err(self.refused("create account", created)),
        }
    }

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        self.op("enable account", |mut l| async move {
            tolerate(
                l.modify(&dn, vec![Mod::Delete(LOCK_ATTR.to_owned(), HashSet::new())]).await?,
                &[NO_SUCH_ATTRIBUTE],
            )
        })
        .await
    }

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        self.op("disable account", |mut l| async move {
            l.modify(&dn, vec![Mod::Replace(LOCK_ATTR.to_owned(), set(&[LOCKED]))]).await?.success().map(drop)
        })
        .await
    }

    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        self.op("delete account", |mut l| async move { tolerate(l.delete(&dn).await?, &[NO_SUCH_OBJECT]) }).await
    }

    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        if target.starts_with(DN_PREFIX) {
            return Err(self.refused("grant", format!("`{target}`: entitlements are groups in the groups container")));
        }
        let member = self.account_dn(name);
        let group = self.group_dn(target);
        let cn = target.to_owned();
        self.op("grant", |mut l| async move {
            let r = l.modify(&group, vec![Mod::Add("member".to_owned(), set(&[&member]))]).await?;
            if r.rc != NO_SUCH_OBJECT {
                return tolerate(r, &[ATTRIBUTE_OR_VALUE_EXISTS]);
            }
            // First member of a group the directory does not have yet: create it.
            let attrs: Vec<(String, HashSet<String>)> = vec![
                ("objectClass".into(), set(&["top", "groupOfNames"])),
                ("cn".into(), set(&[&cn])),
                ("member".into(), set(&["", &member])),
            ];
            let r = l.add(&group, attrs).await?;
            if r.rc == ENTRY_ALREADY_EXISTS {
                // Someone created it meanwhile; add to it.
                let r = l.modify(&group, vec![Mod::Add("member".to_owned(), set(&[&member]))]).await?;
                return tolerate(r, &[ATTRIBUTE_OR_VALUE_EXISTS]);
            }
            tolerate(r, &[])
        })
        .await
    }

    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        let member = self.account_dn(name);
        let group = self.target_dn(target)?;
        self.op("revoke", |mut l| async move {
            let r = l.modify(&group, vec![Mod::Delete("member".to_owned(), set(&[&member]))]).await?;
            if r.rc != OBJECT_CLASS_VIOLATION {
                return tolerate(r, &[NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT]);
            }
            // The last member of a group made without the empty placeholder: add it in the same
            // modification, so the group stays valid.
            let r = l
                .modify(
                    &group,
                    vec![Mod::Add("member".to_owned(), set(&[""])), Mod::Delete("member".to_owned(), set(&[&member]))],
                )
                .await?;
            tolerate(r, &[NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT])
        })
        .await
    }

    async fn probe(&self, _name: &str) -> Result<Probe, ConnectorError> {
        // tenure never learns a person's directory password, so it cannot bind as them; the
        // lock is verified by read-back. (A bind probe needs a credential tenure issued, which
        // the credential broker brings.)
        Ok(Probe::Unsupported("tenure holds no password to bind with".into()))
    }
}
