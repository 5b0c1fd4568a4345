//! The LDAP connector (OpenLDAP and other RFC 4511 directories).
//!
//! - An account is an `inetOrgPerson` entry `uid=NAME,PEOPLE,BASE`.
//! - An entitlement is membership (`member`) of a `groupOfNames` entry `cn=TARGET,GROUPS,BASE`;
//!   a missing group is created on first grant. Read-back covers groups anywhere under the base
//!   (one elsewhere is named `dn:` and its DN), so a leaver is removed from those too. Groups
//!   keep an empty `member` value so the last member can be removed without breaking the
//!   schema's `MUST member`.
//! - Its other attributes come from the system's attribute mappings (defaults: `cn`,
//!   `displayName`, `sn`, `givenName`, `mail`, `title`, `departmentNumber`, `employeeType`,
//!   `manager` as the manager's DN), set with one modify and read back.
//! - Disabled means, by the system's `disable` method: locked by the password policy overlay
//!   (`pwdAccountLockedTime: 000001010000Z`, the permanent lock; binds then fail while
//!   `pwdLockout` is on), AD's ACCOUNTDISABLE bit, an attribute's value (389-DS'
//!   `nsAccountLock`), or living in a container of disabled accounts (`disable = "move"`: the
//!   entry is moved there and back, its group memberships following it). Each is read back.
//!
//! Every value that goes into a DN is escaped with RFC 4514 rules and every value in a filter
//! with RFC 4515 rules (`ldap3::dn_escape`, `ldap3::ldap_escape`), so `*)(uid=*` or
//! `cn=x,dc=evil` is just a name.

use crate::{
    AccountRecord, AccountSpec, Connector, ConnectorError, PageSink, Pager, Probe, ScanRequest, ScanTotals,
    expand_account_name,
};
use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
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
const UNWILLING_TO_PERFORM: u32 = 53;

/// Attributes whose values are DNs (compared as DNs on read-back).
const DN_VALUED: &[&str] = &["manager", "secretary", "seeAlso", "owner"];

/// A membership of a group outside the groups container is named by its DN after this.
const DN_PREFIX: &str = "dn:";
/// The trial entry of [`Connector::check_write`] (20 characters: AD's `sAMAccountName` limit).
const CHECK_ACCOUNT: &str = "tenure-systems-check";

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
    /// TLS for `ldaps://` or StartTLS (`None`: plain `ldap://`).
    pub tls: Option<crate::tls::Tls>,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// The directory's kind: OpenLDAP-style `inetOrgPerson`, or Active Directory `user`.
    pub flavor: Flavor,
    /// How an account is disabled and read back as disabled.
    pub disable: Disable,
    /// Active Directory: the `userPrincipalName` suffix (`name@SUFFIX`; default: the base
    /// DN's `dc` parts, `dc=corp,dc=example,dc=com` → `corp.example.com`).
    pub upn_suffix: String,
}

/// The kind of directory (`flavor` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `inetOrgPerson` entries `uid=NAME`, `groupOfNames` groups (OpenLDAP, 389-DS, …).
    OpenLdap,
    /// Active Directory (or a Samba AD DC): `user` entries `CN=NAME` with `sAMAccountName`
    /// and `userPrincipalName`, `group` groups, `memberOf` maintained by the directory.
    ActiveDirectory,
}

/// How an account is disabled (`disable` setting), each read back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disable {
    /// The password policy overlay's permanent lock (`pwdAccountLockedTime: 000001010000Z`).
    Ppolicy,
    /// Active Directory's `userAccountControl` ACCOUNTDISABLE bit (0x2).
    UserAccountControl,
    /// An attribute holding a value while disabled (`nsAccountLock: TRUE` for 389-DS, or
    /// `disable_attribute`/`disable_value`), removed to enable.
    Attribute { name: String, value: String },
    /// The entry lives in this container (an RDN under the base, `disabled_container`) while
    /// disabled, and under the people container while enabled.
    Move { container: String },
}

/// Active Directory's `userAccountControl` bits tenure uses.
const UAC_ACCOUNTDISABLE: u32 = 0x2;
const UAC_NORMAL_ACCOUNT: u32 = 0x200;

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
        let url = need("url")?;
        let starttls = match m.get("starttls").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConnectorError::Config {
                    system: system.to_owned(),
                    message: format!("field `starttls`: expected true or false, found `{other}`"),
                });
            }
        };
        let tls = match (url.split_once("://").map(|(s, _)| s), starttls) {
            (Some("ldaps"), false) | (Some("ldap"), true) => Some(crate::tls::Tls::from_map(system, m)?),
            (Some("ldap"), false) => {
                if let Some(k) = crate::tls::KEYS.iter().find(|k| m.contains_key(**k)) {
                    return Err(ConnectorError::Config {
                        system: system.to_owned(),
                        message: format!("field `{k}` needs TLS: use an `ldaps://` URL, or set `starttls = \"true\"`"),
                    });
                }
                None
            }
            (Some("ldaps"), true) => {
                return Err(ConnectorError::Config {
                    system: system.to_owned(),
                    message: "field `starttls`: an `ldaps://` connection is TLS from the start".into(),
                });
            }
            _ => {
                return Err(ConnectorError::Config {
                    system: system.to_owned(),
                    message: format!("field `url`: expected ldap://… or ldaps://…, found `{url}`"),
                });
            }
        };
        let config = |message: String| ConnectorError::Config { system: system.to_owned(), message };
        let flavor = match m.get("flavor").map(String::as_str) {
            None | Some("openldap") => Flavor::OpenLdap,
            Some("ad") => Flavor::ActiveDirectory,
            Some(other) => return Err(config(format!("field `flavor`: expected openldap or ad, found `{other}`"))),
        };
        let disable = match (m.get("disable").map(String::as_str), flavor) {
            (None, Flavor::OpenLdap) | (Some("ppolicy"), _) => Disable::Ppolicy,
            (None, Flavor::ActiveDirectory) | (Some("user_account_control"), Flavor::ActiveDirectory) => {
                Disable::UserAccountControl
            }
            (Some("user_account_control"), Flavor::OpenLdap) => {
                return Err(config("field `disable`: user_account_control needs `flavor = \"ad\"`".into()));
            }
            (Some("nsaccountlock"), _) => Disable::Attribute { name: "nsAccountLock".into(), value: "TRUE".into() },
            (Some("attribute"), _) => {
                let name = need("disable_attribute")?;
                if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(config(format!("field `disable_attribute`: `{name}` is not an attribute name")));
                }
                Disable::Attribute { name, value: need("disable_value")? }
            }
            (Some("move"), _) => Disable::Move { container: need("disabled_container")? },
            (Some(other), _) => {
                return Err(config(format!(
                    "field `disable`: expected ppolicy, user_account_control, nsaccountlock, attribute or move, \
                     found `{other}`"
                )));
            }
        };
        let base_dn = need("base_dn")?;
        let upn_suffix = m.get("upn_suffix").cloned().unwrap_or_else(|| {
            base_dn
                .split(',')
                .filter_map(|rdn| rdn.split_once('=').filter(|(a, _)| a.trim().eq_ignore_ascii_case("dc")))
                .map(|(_, v)| v.trim().to_owned())
                .collect::<Vec<_>>()
                .join(".")
        });
        let default_container = |ou: &str| match flavor {
            Flavor::OpenLdap => format!("ou={ou}"),
            Flavor::ActiveDirectory => "CN=Users".to_owned(),
        };
        let people = m.get("people").cloned().unwrap_or_else(|| default_container("people"));
        if let Disable::Move { container } = &disable
            && normalize_dn(container) == normalize_dn(&people)
        {
            return Err(config(format!("field `disabled_container`: `{container}` is the people container")));
        }
        Ok(Self {
            tls,
            starttls,
            flavor,
            disable,
            upn_suffix,
            url,
            base_dn,
            bind_dn: need("bind_dn")?,
            bind_password: need("bind_password")?,
            people,
            groups: m.get("groups").cloned().unwrap_or_else(|| default_container("groups")),
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

    /// The DN of an account (an enabled one, with `disable = "move"`).
    pub fn account_dn(&self, name: &str) -> String {
        format!("{},{},{}", self.account_rdn(name), self.settings.people, self.settings.base_dn)
    }

    /// An account's RDN: `uid=NAME`, or `CN=NAME` in AD.
    fn account_rdn(&self, name: &str) -> String {
        let rdn = match self.settings.flavor {
            Flavor::OpenLdap => "uid",
            Flavor::ActiveDirectory => "CN",
        };
        format!("{rdn}={}", dn_escape(name))
    }

    /// With `disable = "move"`: the container of disabled accounts, and an account's DN in it.
    fn disabled_base(&self) -> Option<String> {
        match &self.settings.disable {
            Disable::Move { container } => Some(format!("{container},{}", self.settings.base_dn)),
            _ => None,
        }
    }

    /// Every DN an account may have: under the people container, and with `disable = "move"`
    /// under the disabled one.
    fn account_dns(&self, name: &str) -> Vec<String> {
        let mut dns = vec![self.account_dn(name)];
        dns.extend(self.disabled_base().map(|b| format!("{},{b}", self.account_rdn(name))));
        dns
    }

    /// The DN an account has now: where it is found (with `disable = "move"`, one read per
    /// place), else where it would be created.
    async fn current_dn(&self, name: &str) -> Result<String, ConnectorError> {
        let dns = self.account_dns(name);
        if dns.len() > 1 {
            for dn in &dns {
                let base = dn.clone();
                let found = self
                    .op("locate account", |mut l| async move {
                        let res = l.search(&base, Scope::Base, "(objectClass=*)", vec!["1.1"]).await?;
                        if res.1.rc == NO_SUCH_OBJECT {
                            return Ok(false);
                        }
                        Ok(!res.success()?.0.is_empty())
                    })
                    .await?;
                if found {
                    return Ok(dn.clone());
                }
            }
        }
        Ok(self.account_dn(name))
    }

    /// The attribute holding an account's name.
    fn name_attr(&self) -> &'static str {
        match self.settings.flavor {
            Flavor::OpenLdap => "uid",
            Flavor::ActiveDirectory => "sAMAccountName",
        }
    }

    /// The object class of a group.
    fn group_class(&self) -> &'static str {
        match self.settings.flavor {
            Flavor::OpenLdap => "groupOfNames",
            Flavor::ActiveDirectory => "group",
        }
    }

    /// The filter of the accounts under the people container.
    fn account_filter(&self) -> &'static str {
        match self.settings.flavor {
            Flavor::OpenLdap => "(uid=*)",
            Flavor::ActiveDirectory => "(&(objectClass=user)(!(objectClass=computer))(sAMAccountName=*))",
        }
    }

    /// What every read of an account asks for: its name, its state, the marker.
    fn account_attrs(&self) -> Vec<String> {
        let mut attrs = vec![self.name_attr().to_owned(), "description".to_owned()];
        match &self.settings.disable {
            Disable::Ppolicy => attrs.push(LOCK_ATTR.to_owned()),
            Disable::UserAccountControl => attrs.push("userAccountControl".to_owned()),
            Disable::Attribute { name, .. } => attrs.push(name.clone()),
            Disable::Move { .. } => {}
        }
        if self.settings.flavor == Flavor::ActiveDirectory {
            // The built-in accounts (Administrator, krbtgt, Guest) are never managed.
            attrs.push("isCriticalSystemObject".to_owned());
        }
        attrs.push(self.last_login_attr().to_owned());
        attrs
    }

    /// Where the directory records an account's last sign-in: OpenLDAP's `lastbind` overlay
    /// writes `authTimestamp`; Active Directory `lastLogonTimestamp`.
    fn last_login_attr(&self) -> &'static str {
        match self.settings.flavor {
            Flavor::OpenLdap => "authTimestamp",
            Flavor::ActiveDirectory => "lastLogonTimestamp",
        }
    }

    /// An entry's last sign-in, where the directory records one (a value it cannot read is
    /// none rather than a guess).
    fn last_login(&self, e: &SearchEntry) -> Option<time::OffsetDateTime> {
        let v = values(e, self.last_login_attr()).first()?.clone();
        match self.settings.flavor {
            Flavor::OpenLdap => generalized_time(&v),
            Flavor::ActiveDirectory => filetime(&v),
        }
    }

    /// Whether an entry reads as enabled by the system's disable method.
    fn is_enabled(&self, e: &SearchEntry) -> bool {
        match &self.settings.disable {
            Disable::Ppolicy => !values(e, LOCK_ATTR).iter().any(|x| x == LOCKED),
            Disable::UserAccountControl => values(e, "userAccountControl")
                .first()
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|u| u & UAC_ACCOUNTDISABLE == 0),
            Disable::Attribute { name, value } => !values(e, name).iter().any(|x| x.eq_ignore_ascii_case(value)),
            Disable::Move { .. } => {
                split_first_rdn(&e.dn).is_some_and(|(_, parent)| same_dn(parent, &self.people_base()))
            }
        }
    }

    /// An entry the directory itself depends on (the bind account, AD's built-in accounts).
    fn is_reserved_entry(&self, e: &SearchEntry) -> bool {
        self.is_reserved(&e.dn) || values(e, "isCriticalSystemObject").iter().any(|v| v.eq_ignore_ascii_case("TRUE"))
    }

    /// The account's current `userAccountControl` (Active Directory).
    async fn user_account_control(&self, dn: &str) -> Result<u32, ConnectorError> {
        let base = dn.to_owned();
        let e = self
            .op("read userAccountControl", |mut l| async move {
                let (mut rs, _) =
                    l.search(&base, Scope::Base, "(objectClass=*)", vec!["userAccountControl"]).await?.success()?;
                Ok(rs.pop().map(SearchEntry::construct))
            })
            .await?
            .ok_or_else(|| self.refused("read userAccountControl", format!("no entry `{dn}`")))?;
        values(&e, "userAccountControl")
            .first()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.refused("read userAccountControl", format!("`{dn}` has no userAccountControl")))
    }

    /// Why an add failed with "already exists" when the account's DN holds nothing: the
    /// name is taken elsewhere (AD's `sAMAccountName` is unique in the whole domain). Such an
    /// account is not tenure's to take over.
    async fn taken_elsewhere(&self, spec: &AccountSpec) -> Result<ConnectorError, ConnectorError> {
        let filter = format!("({}={})", self.name_attr(), ldap_escape(&spec.name));
        let base = self.settings.base_dn.clone();
        let found = self
            .op("find account", |mut l| async move {
                let (rs, _) = l.search(&base, Scope::Subtree, &filter, vec!["1.1"]).await?.success()?;
                Ok(rs.into_iter().next().map(|e| SearchEntry::construct(e).dn))
            })
            .await?;
        Ok(match found {
            Some(dn) => ConnectorError::NotManaged {
                system: self.system.clone(),
                account: spec.name.clone(),
                reference: spec.reference.clone(),
                why: format!("the name is taken by `{dn}`, outside the people container"),
            },
            None => self.refused("create account", format!("`{}` exists and does not", spec.name)),
        })
    }

    /// Set or clear AD's ACCOUNTDISABLE bit, keeping every other bit.
    async fn set_disabled_bit(&self, name: &str, disabled: bool) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        let op = if disabled { "disable account" } else { "enable account" };
        let uac = self.user_account_control(&dn).await?;
        let want = if disabled { uac | UAC_ACCOUNTDISABLE } else { uac & !UAC_ACCOUNTDISABLE };
        if want == uac {
            return Ok(());
        }
        let v = want.to_string();
        self.op(op, |mut l| async move {
            l.modify(&dn, vec![Mod::Replace("userAccountControl".to_owned(), set(&[&v]))]).await?.success().map(drop)
        })
        .await
    }

    /// Remove `member` (a DN) from the group of `target`, verifying Samba's ambiguous answer.
    async fn revoke_member(&self, member: &str, target: &str) -> Result<(), ConnectorError> {
        let member = member.to_owned();
        let group = self.target_dn(target)?;
        self.op("revoke", |mut l| async move {
            let r = l.modify(&group, vec![Mod::Delete("member".to_owned(), set(&[&member]))]).await?;
            if r.rc == UNWILLING_TO_PERFORM {
                // Samba's answer for a member that is not there, and for real refusals: the
                // group is read to tell which.
                let filter = format!("(member={})", ldap_escape(&member));
                let (still, _) = l.search(&group, Scope::Base, &filter, vec!["1.1"]).await?.success()?;
                return if still.is_empty() { Ok(()) } else { Err(LdapError::LdapResult { result: r }) };
            }
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

    /// The containers accounts live in: people, and the disabled one with `disable = "move"`.
    fn account_bases(&self) -> Vec<String> {
        let mut bases = vec![self.people_base()];
        bases.extend(self.disabled_base());
        bases
    }

    /// Read the entry at `dn` in `container`: `None` only when the container is there and the
    /// entry is not (the server matched the container, or, for a server that names no match,
    /// such as Samba, a read of it finds it): a missing base says nothing about the account.
    async fn read_entry(
        &self,
        dn: &str,
        container: &str,
        attrs: Vec<String>,
    ) -> Result<Option<SearchEntry>, ConnectorError> {
        let (base, container) = (dn.to_owned(), container.to_owned());
        self.op("read account", |mut l| async move {
            let res = l.search(&base, Scope::Base, "(objectClass=*)", attrs).await?;
            if res.1.rc == NO_SUCH_OBJECT {
                if same_dn(&res.1.matched, &container) {
                    return Ok(None);
                }
                if res.1.matched.is_empty() {
                    let there = l.search(&container, Scope::Base, "(objectClass=*)", vec!["1.1"]).await?;
                    if there.1.rc == 0 && !there.0.is_empty() {
                        return Ok(None);
                    }
                }
                return Err(LdapError::LdapResult { result: res.1 });
            }
            let (mut rs, _) = res.success()?;
            Ok(rs.pop().map(SearchEntry::construct))
        })
        .await
    }

    /// `disable = "move"`: move the account into the people container (`enable`) or the
    /// disabled one, unless it is there already; then every group listing it by its other DN
    /// lists it by the new one (what OpenLDAP's refint overlay does, and AD by itself; done
    /// again on every call, so a move interrupted before its groups followed is completed).
    async fn move_account(&self, name: &str, enable: bool) -> Result<(), ConnectorError> {
        let (Some(disabled), people) = (self.disabled_base(), self.people_base()) else {
            return Err(self.refused("move account", "the system's disable method is not `move`"));
        };
        let op = if enable { "enable account" } else { "disable account" };
        let (to_parent, from_parent) = if enable { (people, disabled) } else { (disabled, people) };
        let rdn = self.account_rdn(name);
        let (to, from) = (format!("{rdn},{to_parent}"), format!("{rdn},{from_parent}"));
        let here = self.current_dn(name).await?;
        if !same_dn(&here, &to) {
            if self.is_reserved(&here) {
                return Err(self.refused(op, "it is the directory account tenure binds as"));
            }
            let (here, rdn, parent) = (here.clone(), rdn.clone(), to_parent.clone());
            self.op(op, |mut l| async move { l.modifydn(&here, &rdn, true, Some(&parent)).await?.success().map(drop) })
                .await?;
        }
        if self.settings.flavor == Flavor::ActiveDirectory {
            return Ok(());
        }
        let filter = format!("(&(objectClass={})(member={}))", self.group_class(), ldap_escape(&from));
        let base = self.settings.base_dn.clone();
        self.op(op, |mut l| async move {
            let (groups, _) = l.search(&base, Scope::Subtree, &filter, vec!["1.1"]).await?.success()?;
            for g in groups {
                let group = SearchEntry::construct(g).dn;
                let r = l
                    .modify(
                        &group,
                        vec![
                            Mod::Add("member".to_owned(), set(&[&to])),
                            Mod::Delete("member".to_owned(), set(&[&from])),
                        ],
                    )
                    .await?;
                if r.rc == ATTRIBUTE_OR_VALUE_EXISTS {
                    let r = l.modify(&group, vec![Mod::Delete("member".to_owned(), set(&[&from]))]).await?;
                    tolerate(r, &[NO_SUCH_ATTRIBUTE])?;
                } else {
                    tolerate(r, &[NO_SUCH_ATTRIBUTE])?;
                }
            }
            Ok(())
        })
        .await
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
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.settings.timeout);
        if let Some(tls) = &self.settings.tls {
            tls.warn_if_unverified();
            settings = settings.set_config(tls.client_config()?).set_starttls(self.settings.starttls);
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(|e| self.unreachable(crate::tls::explain(&e.to_string())))?;
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

    /// A search read with the paged results control (RFC 2696), each entry handed to `each`.
    /// A transport error, a malformed page or a final result other than success (a size or
    /// time limit, say) is [`ConnectorError::Incomplete`] naming the page.
    #[allow(clippy::too_many_arguments)]
    async fn paged(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
        page_size: i32,
        pager: &mut Pager<'_>,
        mut each: impl FnMut(&Self, &mut Pager<'_>, SearchEntry) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let mut ldap = self.ldap().await?;
        let incomplete = |pager: &Pager<'_>, what: String| ConnectorError::Incomplete {
            system: self.system.clone(),
            page: pager.page_number(),
            message: format!("searching `{base}`: {what}"),
        };
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))];
        let mut stream = match ldap.streaming_search_with(adapters, base, scope, filter, attrs).await {
            Ok(s) => s,
            Err(e) => {
                *self.conn.lock().await = None;
                return Err(incomplete(pager, e.to_string()));
            }
        };
        loop {
            match stream.next().await {
                Ok(Some(entry)) => each(self, pager, SearchEntry::construct(entry))?,
                Ok(None) => break,
                Err(e) => {
                    *self.conn.lock().await = None;
                    return Err(incomplete(pager, e.to_string()));
                }
            }
        }
        let done = stream.finish().await;
        if done.rc != 0 {
            *self.conn.lock().await = None;
            return Err(incomplete(pager, format!("the search ended with result {}: {}", done.rc, done.text)));
        }
        pager.flush()
    }

    /// An account entry as a record: its `uid` the name, the lock its state, the marker in
    /// `description`, and its other attributes (lowercase names, first values) for correlation.
    fn entry_record(&self, mut e: SearchEntry, memberships: BTreeSet<String>) -> Option<AccountRecord> {
        let name = values(&e, self.name_attr()).first().cloned()?;
        let enabled = self.is_enabled(&e);
        let managed_by = marker(&e);
        let reserved = self.is_reserved_entry(&e);
        let state = self.account_attrs();
        let last_login = self.last_login(&e);
        let attributes = e
            .attrs
            .drain()
            .filter(|(k, _)| k != "description" && !state.iter().skip(2).any(|s| s.eq_ignore_ascii_case(k)))
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.into_iter().next()?)))
            .collect();
        Some(AccountRecord {
            name,
            enabled,
            memberships,
            managed_by,
            reserved,
            privileges: BTreeSet::new(),
            attributes,
            last_login,
        })
    }

    /// Every group under the whole base with any of `dns` as a member (groups outside the
    /// groups container too: a leaver is "in no group" only if no group anywhere lists them;
    /// with `disable = "move"`, under either of its DNs).
    async fn memberships(&self, dns: &[String]) -> Result<BTreeSet<String>, ConnectorError> {
        let members: String = dns.iter().map(|dn| format!("(member={})", ldap_escape(dn))).collect();
        let filter = format!("(&(objectClass={})(|{members}))", self.group_class());
        let base = self.settings.base_dn.clone();
        let entries = self
            .op("search groups", |mut l| async move {
                let (rs, _) = l.search(&base, Scope::Subtree, &filter, vec!["cn"]).await?.success()?;
                Ok(rs)
            })
            .await?;
        Ok(entries.into_iter().filter_map(|e| self.group_name(SearchEntry::construct(e))).collect())
    }

    /// How the group at `dn` is named as a membership (see [`Self::group_name`]).
    fn group_name_of(&self, dn: &str) -> String {
        match split_first_rdn(dn).and_then(|(rdn, _)| rdn.split_once('=')).and_then(|(_, v)| unescape_dn_value(v)) {
            Some(cn) if normalize_dn(dn) == normalize_dn(&self.group_dn(&cn)) => cn,
            _ => format!("{DN_PREFIX}{dn}"),
        }
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

/// The account a member DN names: its `uid` when the DN is `uid=NAME` directly under the people
/// container (`suffix`, normalized with a leading comma); the value is unescaped (RFC 4514).
fn account_of(member: &str, suffix: &str) -> Option<String> {
    let rdn = split_first_rdn(member)?;
    let (attr, value) = rdn.0.split_once('=')?;
    if !attr.trim().eq_ignore_ascii_case("uid") || normalize_dn(&format!(",{}", rdn.1)) != suffix {
        return None;
    }
    unescape_dn_value(value.trim())
}

/// A DN's first RDN and the rest, split at the first unescaped comma.
fn split_first_rdn(dn: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, ',') => return Some((dn.get(..i)?, dn.get(i + 1..)?)),
            _ => {}
        }
    }
    None
}

/// Undo RFC 4514 escaping: `\,` and the like, and `\XX` hex pairs (UTF-8 bytes).
fn unescape_dn_value(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let first = bytes.next()?;
        let hex = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
        match (hex(first), bytes.peek().copied().and_then(hex)) {
            (Some(hi), Some(lo)) => {
                bytes.next();
                out.push(hi * 16 + lo);
            }
            _ => out.push(first),
        }
    }
    String::from_utf8(out).ok()
}

/// A DN compared loosely: case and spaces after commas do not matter.
fn normalize_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_ascii_lowercase()).collect::<Vec<_>>().join(",")
}

/// An attribute's values, whatever case the server spells its name in.
fn values<'e>(e: &'e SearchEntry, name: &str) -> &'e [String] {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or(&[], |(_, v)| v.as_slice())
}

/// A password of 32 random characters from every class a domain's complexity rule asks for.
fn random_password() -> String {
    use rand::Rng;
    const CLASSES: [&[u8]; 4] = [b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"abcdefghijkmnopqrstuvwxyz", b"23456789", b"-_.!+=#%"];
    let mut rng = rand::rng();
    CLASSES
        .iter()
        .cycle()
        .take(32)
        .filter_map(|class| class.get(rng.random_range(0..class.len())).copied().map(char::from))
        .collect()
}

/// AD's `unicodePwd` value: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn set(values: &[&str]) -> HashSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// An LDAP result with one of the "already as wanted" codes is a success.
/// Whether two DNs name the same entry, as far as case and the spaces around separators go.
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |d: &str| {
        d.split(',')
            .map(|rdn| rdn.split('=').map(|p| p.trim().to_lowercase()).collect::<Vec<_>>().join("="))
            .collect::<Vec<_>>()
            .join(",")
    };
    norm(a) == norm(b)
}

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

    async fn scan(&self, request: &ScanRequest, sink: PageSink<'_>) -> Result<ScanTotals, ConnectorError> {
        let mut pager = Pager::new(request.page_size, sink);
        let size = i32::try_from(request.page_size.clamp(1, 100_000)).unwrap_or(500);
        let mut attrs = self.account_attrs();
        attrs.extend(["mail", "cn", "employeeNumber"].iter().map(|a| (*a).to_owned()));
        attrs.extend(request.attributes.iter().filter(|a| !attrs.contains(a)).cloned().collect::<Vec<_>>());
        let ad = self.settings.flavor == Flavor::ActiveDirectory;
        if ad {
            // AD keeps each account's groups on it (`memberOf`): read with the account, whatever
            // its CN, so no DN has to be mapped back to a name.
            attrs.push("memberOf".to_owned());
        }
        // Accounts: every account entry directly under the people container (and the disabled
        // one, with `disable = "move"`).
        let filter = self.account_filter();
        for base in self.account_bases() {
            self.paged(&base, Scope::OneLevel, filter, attrs.clone(), size, &mut pager, |me, pager, mut e| {
                let groups: BTreeSet<String> =
                    match e.attrs.keys().find(|k| k.eq_ignore_ascii_case("memberOf")).cloned() {
                        Some(k) => {
                            e.attrs.remove(&k).unwrap_or_default().iter().map(|dn| me.group_name_of(dn)).collect()
                        }
                        None => BTreeSet::new(),
                    };
                match me.entry_record(e, groups) {
                    Some(r) => pager.account(r),
                    None => Ok(()),
                }
            })
            .await?;
        }
        if ad {
            return pager.finish();
        }
        // Memberships: every group under the base, each member that is an account above.
        let suffixes: Vec<String> = self.account_bases().iter().map(|b| format!(",{}", normalize_dn(b))).collect();
        let base = self.settings.base_dn.clone();
        let wanted = vec!["cn".to_owned(), "member".to_owned()];
        self.paged(
            &base,
            Scope::Subtree,
            "(objectClass=groupOfNames)",
            wanted,
            size,
            &mut pager,
            |me, pager, mut e| {
                let members = e.attrs.remove("member").unwrap_or_default();
                let Some(group) = me.group_name(e) else { return Ok(()) };
                for m in members {
                    if let Some(account) = suffixes.iter().find_map(|suffix| account_of(&m, suffix)) {
                        pager.membership(account, group.clone())?;
                    }
                }
                Ok(())
            },
        )
        .await?;
        pager.finish()
    }

    async fn mark(&self, name: &str, reference: &str) -> Result<(), ConnectorError> {
        let dn = self.current_dn(name).await?;
        if self.is_reserved(&dn) {
            return Err(self.refused("mark account", "it is the directory account tenure binds as"));
        }
        // Another value of `description` goes (a marker for someone else included); the rest stay.
        let current = self
            .read_account(name)
            .await?
            .ok_or_else(|| self.refused("mark account", format!("no account `{name}`")))?;
        let mut mods = Vec::new();
        if let Some(other) = current.managed_by.filter(|m| m != reference) {
            mods.push(Mod::Delete("description".to_owned(), set(&[&format!("{MARKER}{other}")])));
        }
        mods.push(Mod::Add("description".to_owned(), set(&[&format!("{MARKER}{reference}")])));
        let r = self.op("mark account", |mut l| async move { l.modify(&dn, mods).await }).await?;
        tolerate(r, &[ATTRIBUTE_OR_VALUE_EXISTS]).map_err(|e| self.refused("mark account", e))
    }

    async fn find(&self, attribute: &str, value: &str) -> Result<Vec<AccountRecord>, ConnectorError> {
        let attr = if attribute == "name" { self.name_attr() } else { attribute };
        if attr.is_empty() || !attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ConnectorError::Config {
                system: self.system.clone(),
                message: format!("`{attribute}` is not an LDAP attribute name"),
            });
        }
        let filter = format!("({attr}={})", ldap_escape(value));
        let mut wanted = self.account_attrs();
        wanted.push(attr.to_owned());
        let mut out = Vec::new();
        for base in self.account_bases() {
            let (filter, wanted) = (filter.clone(), wanted.clone());
            let entries = self
                .op("find accounts", |mut l| async move {
                    let (rs, _) = l.search(&base, Scope::OneLevel, &filter, wanted).await?.success()?;
                    Ok(rs)
                })
                .await?;
            for e in entries {
                let e = SearchEntry::construct(e);
                let Some(name) = values(&e, self.name_attr()).first().cloned() else { continue };
                let memberships = self.memberships(&self.account_dns(&name)).await?;
                out.extend(self.entry_record(e, memberships));
            }
        }
        Ok(out)
    }

    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError> {
        let base = self.groups_base();
        let filter = format!("(objectClass={})", self.group_class());
        let groups = self
            .op("search groups", |mut l| async move {
                let (rs, _) = l.search(&base, Scope::Subtree, &filter, vec!["cn"]).await?.success()?;
                Ok(rs)
            })
            .await?;
        Ok(groups.into_iter().filter_map(|g| SearchEntry::construct(g).attrs.remove("cn")?.pop()).collect())
    }

    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError> {
        // Absent only when absent from every container it may be in.
        let dns = self.account_dns(name);
        let mut entry = None;
        for (dn, container) in dns.iter().zip(self.account_bases()) {
            entry = self.read_entry(dn, &container, self.account_attrs()).await?;
            if entry.is_some() {
                break;
            }
        }
        let Some(entry) = entry else { return Ok(None) };
        let enabled = self.is_enabled(&entry);
        let memberships = self.memberships(&dns).await?;
        let managed_by = marker(&entry);
        let reserved = self.is_reserved_entry(&entry);
        Ok(Some(AccountRecord {
            name: name.to_owned(),
            enabled,
            memberships,
            managed_by,
            reserved,
            privileges: BTreeSet::new(),
            attributes: BTreeMap::new(),
            last_login: self.last_login(&entry),
        }))
    }

    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError> {
        let dn = self.account_dn(&spec.name);
        let mut attrs: Vec<(String, HashSet<String>)> = match self.settings.flavor {
            Flavor::OpenLdap => vec![
                ("objectClass".into(), set(&["top", "person", "organizationalPerson", "inetOrgPerson"])),
                ("uid".into(), set(&[&spec.name])),
            ],
            Flavor::ActiveDirectory => vec![
                ("objectClass".into(), set(&["top", "person", "organizationalPerson", "user"])),
                ("sAMAccountName".into(), set(&[&spec.name])),
                ("userPrincipalName".into(), set(&[&format!("{}@{}", spec.name, self.settings.upn_suffix)])),
                ("userAccountControl".into(), set(&[&UAC_NORMAL_ACCOUNT.to_string()])),
            ],
        };
        attrs.push(("description".into(), set(&[&format!("{MARKER}{}", spec.reference)])));
        attrs.extend(
            spec.attributes
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect::<HashSet<_>>())),
        );
        // inetOrgPerson: `sn` and `cn` are mandatory and non-empty: the display name, else the
        // account name. (AD's `cn` is the RDN, the account name.)
        let display = if spec.display_name.trim().is_empty() { spec.name.clone() } else { spec.display_name.clone() };
        let must: &[&str] = if self.settings.flavor == Flavor::OpenLdap { &["cn", "sn"] } else { &[] };
        for must in must {
            if !attrs.iter().any(|(k, _)| k.eq_ignore_ascii_case(must)) {
                attrs.push(((*must).to_owned(), set(&[&display])));
            }
        }
        // AD enables an account only with a password: a random one nobody learns (the person
        // sets their own through the organisation's reset flow). Sent only over TLS.
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> =
            attrs.into_iter().map(|(k, v)| (k.into_bytes(), v.into_iter().map(String::into_bytes).collect())).collect();
        if self.settings.flavor == Flavor::ActiveDirectory {
            if self.settings.tls.is_none() {
                return Err(self.refused(
                    "create account",
                    "Active Directory takes a password only over TLS: use an ldaps:// URL or starttls",
                ));
            }
            attrs.push((b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&random_password())])));
        }
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
                None => Err(self.taken_elsewhere(spec).await?),
            },
            _ => Err(self.refused("create account", created)),
        }
    }

    async fn account_reference(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        Ok(Some(self.current_dn(name).await?))
    }

    async fn read_attributes(
        &self,
        name: &str,
        targets: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, ConnectorError> {
        let dn = self.current_dn(name).await?;
        let wanted: Vec<String> = targets.to_vec();
        let entry = self
            .op("read attributes", |mut l| async move {
                let res = l.search(&dn, Scope::Base, "(objectClass=*)", wanted).await?;
                if res.1.rc == NO_SUCH_OBJECT {
                    return Ok(None);
                }
                let (mut rs, _) = res.success()?;
                Ok(rs.pop().map(SearchEntry::construct))
            })
            .await?;
        Ok(entry.map(|mut e| {
            targets
                .iter()
                .map(|t| {
                    let key = e.attrs.keys().find(|k| k.eq_ignore_ascii_case(t)).cloned();
                    (t.clone(), key.and_then(|k| e.attrs.remove(&k)).unwrap_or_default())
                })
                .collect()
        }))
    }

    async fn set_attributes(&self, name: &str, values: &BTreeMap<String, Vec<String>>) -> Result<(), ConnectorError> {
        if values.is_empty() {
            return Ok(());
        }
        let dn = self.current_dn(name).await?;
        // Replace with no values removes the attribute (and is no error when it is absent).
        let mods: Vec<Mod<String>> =
            values.iter().map(|(k, v)| Mod::Replace(k.clone(), v.iter().cloned().collect())).collect();
        self.op("set attributes", |mut l| async move { l.modify(&dn, mods).await?.success().map(drop) }).await
    }

    fn same_values(&self, target: &str, want: &[String], got: &[String]) -> bool {
        if DN_VALUED.iter().any(|a| a.eq_ignore_ascii_case(target)) {
            want.len() == got.len() && want.iter().all(|w| got.iter().any(|g| same_dn(w, g)))
        } else {
            want.iter().collect::<BTreeSet<_>>() == got.iter().collect::<BTreeSet<_>>()
        }
    }

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        // The lock goes; an attribute keeps its other values.
        let (attr, values) = match &self.settings.disable {
            Disable::UserAccountControl => return self.set_disabled_bit(name, false).await,
            Disable::Move { .. } => return self.move_account(name, true).await,
            Disable::Ppolicy => (LOCK_ATTR.to_owned(), HashSet::new()),
            Disable::Attribute { name, value } => (name.clone(), set(&[value])),
        };
        self.op("enable account", |mut l| async move {
            tolerate(l.modify(&dn, vec![Mod::Delete(attr, values)]).await?, &[NO_SUCH_ATTRIBUTE])
        })
        .await
    }

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.account_dn(name);
        let (attr, value) = match &self.settings.disable {
            Disable::UserAccountControl => return self.set_disabled_bit(name, true).await,
            Disable::Move { .. } => return self.move_account(name, false).await,
            Disable::Ppolicy => (LOCK_ATTR.to_owned(), LOCKED.to_owned()),
            Disable::Attribute { name, value } => (name.clone(), value.clone()),
        };
        self.op("disable account", |mut l| async move {
            l.modify(&dn, vec![Mod::Replace(attr, set(&[&value]))]).await?.success().map(drop)
        })
        .await
    }

    async fn check_write(&self) -> Result<Option<String>, ConnectorError> {
        // No transactions to roll back here: a trial entry, added as an account would be,
        // read back and deleted. An entry of that name someone else made is refused, not
        // touched.
        let spec = AccountSpec {
            name: CHECK_ACCOUNT.into(),
            display_name: "tenure systems check".into(),
            kind: "service".into(),
            reference: "tenure:systems-check".into(),
            expires_at: None,
            attributes: BTreeMap::new(),
        };
        self.create_account(&spec).await?;
        let found = self.read_account(CHECK_ACCOUNT).await;
        self.delete_account(CHECK_ACCOUNT).await?;
        if found?.is_none() {
            return Err(self.refused("check write", format!("the trial entry `{CHECK_ACCOUNT}` did not read back")));
        }
        Ok(Some(format!("added the trial entry `{}`, read it back and deleted it", self.account_dn(CHECK_ACCOUNT))))
    }

    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError> {
        let dn = self.current_dn(name).await?;
        self.op("delete account", |mut l| async move { tolerate(l.delete(&dn).await?, &[NO_SUCH_OBJECT]) }).await
    }

    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        if target.starts_with(DN_PREFIX) {
            return Err(self.refused("grant", format!("`{target}`: entitlements are groups in the groups container")));
        }
        let member = self.current_dn(name).await?;
        let group = self.group_dn(target);
        let cn = target.to_owned();
        let flavor = self.settings.flavor;
        self.op("grant", |mut l| async move {
            let r = l.modify(&group, vec![Mod::Add("member".to_owned(), set(&[&member]))]).await?;
            if r.rc != NO_SUCH_OBJECT {
                // A modify makes no entry: "already exists" is the member (Samba's answer).
                return tolerate(r, &[ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS]);
            }
            // First member of a group the directory does not have yet: create it (a
            // `groupOfNames` with the empty placeholder; an AD global security group).
            let attrs: Vec<(String, HashSet<String>)> = match flavor {
                Flavor::OpenLdap => vec![
                    ("objectClass".into(), set(&["top", "groupOfNames"])),
                    ("cn".into(), set(&[&cn])),
                    ("member".into(), set(&["", &member])),
                ],
                Flavor::ActiveDirectory => vec![
                    ("objectClass".into(), set(&["top", "group"])),
                    ("cn".into(), set(&[&cn])),
                    ("sAMAccountName".into(), set(&[&cn])),
                    ("member".into(), set(&[&member])),
                ],
            };
            let r = l.add(&group, attrs).await?;
            if r.rc == ENTRY_ALREADY_EXISTS {
                // Someone created it meanwhile; add to it.
                let r = l.modify(&group, vec![Mod::Add("member".to_owned(), set(&[&member]))]).await?;
                return tolerate(r, &[ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS]);
            }
            tolerate(r, &[])
        })
        .await
    }

    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        // Under every DN the account may have (a group may still list the other one).
        for member in self.account_dns(name) {
            self.revoke_member(&member, target).await?;
        }
        Ok(())
    }

    async fn probe(&self, _name: &str) -> Result<Probe, ConnectorError> {
        // tenure never learns a person's directory password, so it cannot bind as them; the
        // lock is verified by read-back. (A bind probe needs a credential tenure issued, which
        // the credential broker brings.)
        Ok(Probe::Unsupported("tenure holds no password to bind with".into()))
    }
}

/// An LDAP GeneralizedTime in UTC (`20261204191500Z`, optionally with a fraction:
/// `20261204191500.123Z`), as OpenLDAP writes `authTimestamp`.
fn generalized_time(v: &str) -> Option<time::OffsetDateTime> {
    let v = v.strip_suffix('Z')?;
    let whole = v.split(['.', ',']).next()?;
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(6..8)?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// An Active Directory FILETIME (100 ns intervals since 1601-01-01 UTC); 0 is "never".
fn filetime(v: &str) -> Option<time::OffsetDateTime> {
    const UNIX_EPOCH_IN_FILETIME_SECONDS: i64 = 11_644_473_600;
    let ticks: i64 = v.parse().ok().filter(|t| *t > 0)?;
    time::OffsetDateTime::from_unix_timestamp(ticks / 10_000_000 - UNIX_EPOCH_IN_FILETIME_SECONDS).ok()
}

#[cfg(test)]
mod tests {
    use super::{filetime, generalized_time};
    use time::macros::datetime;

    #[test]
    fn last_sign_in_times_read_as_the_directories_write_them() {
        assert_eq!(generalized_time("20261204191500Z"), Some(datetime!(2026-12-04 19:15:00 UTC)));
        assert_eq!(generalized_time("20261204191500.123Z"), Some(datetime!(2026-12-04 19:15:00 UTC)));
        assert_eq!(generalized_time("20261304191500Z"), None, "month 13");
        assert_eq!(generalized_time("2026120419Z"), None);
        assert_eq!(generalized_time("20261204191500+0100"), None, "only UTC is written");
        // 2026-12-04 19:15:00 UTC as 100 ns ticks since 1601.
        assert_eq!(filetime("134408853000000000"), Some(datetime!(2026-12-04 19:15:00 UTC)));
        assert_eq!(filetime("0"), None, "never signed in");
        assert_eq!(filetime("x"), None);
    }
}
