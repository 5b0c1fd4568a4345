//! The pure part of reconciliation: what tenure holds of one system ([`Expected`]), compared
//! page by page with what a scan reads ([`Classifier`]), into a [`Plan`]: one item per account or
//! membership that drifted, with its situation and the reaction policy gives it. No IO; memory
//! is what tenure holds of the system plus the names of accounts it does not hold.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use tenure_connectors::{AccountRecord, Page};
use tenure_model::{AccountState, GrantState, LifecycleState, Reaction, Situation};
use tenure_policy::reconcile::ReconcileRules;

/// An identity that holds, or may correlate to, an account.
#[derive(Debug, Clone)]
struct Holder {
    reference: String,
    state: LifecycleState,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    holder: u32,
    state: AccountState,
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    state: GrantState,
    seen: bool,
}

/// An `(account, target)` pair of indices as one key.
fn pair(account: u32, target: u32) -> u64 {
    (u64::from(account) << 32) | u64::from(target)
}

fn unpair(key: u64) -> (u32, u32) {
    (u32::try_from(key >> 32).unwrap_or(u32::MAX), u32::try_from(key & 0xffff_ffff).unwrap_or(u32::MAX))
}

/// A hasher for the packed index pairs: tenure's own indices, never a value from a system, so
/// a fast mix (MurmurHash3's 64-bit finalizer) is safe where SipHash would be most of a large
/// run's cost.
#[derive(Default)]
struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// What tenure holds of one system: identities, their accounts and grants, the privileged
/// targets, and the correlation keys of every identity.
#[derive(Debug)]
pub struct Expected {
    rules: ReconcileRules,
    holders: Vec<Holder>,
    by_reference: HashMap<String, u32>,
    accounts: HashMap<String, u32>,
    held: Vec<Held>,
    targets: HashMap<String, u32>,
    /// By `(account, target)` index pair, packed.
    grants: HashMap<u64, Grant, std::hash::BuildHasherDefault<PairHasher>>,
    privileged: HashSet<String>,
    /// The broker's dynamic logins in this system, by role name: live or not.
    logins: HashMap<String, bool>,
    /// Per correlation rule: key → identities with it.
    keys: Vec<HashMap<String, Vec<u32>>>,
}

impl Expected {
    pub fn new(rules: &ReconcileRules) -> Self {
        Self {
            keys: vec![HashMap::new(); rules.correlate.len()],
            rules: rules.clone(),
            holders: Vec::new(),
            by_reference: HashMap::new(),
            accounts: HashMap::new(),
            held: Vec::new(),
            targets: HashMap::new(),
            grants: HashMap::default(),
            privileged: HashSet::new(),
            logins: HashMap::new(),
        }
    }

    /// A dynamic login the broker issued in this system (`live`: unrevoked and unexpired).
    pub fn login(&mut self, name: &str, live: bool) {
        let was = self.logins.entry(name.to_owned()).or_insert(false);
        *was |= live;
    }

    /// An identity (`source:external_id`), with the attributes correlation rules compare.
    pub fn identity(&mut self, reference: &str, state: LifecycleState, attributes: &BTreeMap<String, String>) {
        let Ok(i) = u32::try_from(self.holders.len()) else { return };
        self.holders.push(Holder { reference: reference.to_owned(), state });
        self.by_reference.insert(reference.to_owned(), i);
        for (rule, keys) in self.rules.correlate.iter().zip(self.keys.iter_mut()) {
            if let Some(v) = rule.identity_value(reference, attributes) {
                keys.entry(rule.key(v)).or_default().push(i);
            }
        }
    }

    /// The account tenure holds for `reference` (added with [`Expected::identity`] first).
    pub fn account(&mut self, reference: &str, name: &str, state: AccountState) {
        let (Some(&holder), Ok(i)) = (self.by_reference.get(reference), u32::try_from(self.held.len())) else {
            return;
        };
        self.held.push(Held { holder, state });
        self.accounts.insert(name.to_owned(), i);
    }

    /// A grant of `target` to the account `name` (added with [`Expected::account`] first).
    pub fn grant(&mut self, name: &str, target: &str, state: GrantState) {
        let Some(&account) = self.accounts.get(name) else { return };
        let t = self.target(target);
        self.grants.insert(pair(account, t), Grant { state, seen: false });
    }

    /// A target the catalog marks privileged.
    pub fn privileged(&mut self, target: &str) {
        self.privileged.insert(target.to_owned());
    }

    fn target(&mut self, name: &str) -> u32 {
        if let Some(t) = self.targets.get(name) {
            return *t;
        }
        let next = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        self.targets.insert(name.to_owned(), next);
        next
    }

    pub fn accounts_held(&self) -> usize {
        self.held.len()
    }
}

/// One drifted account or membership, and what the run does about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub situation: Situation,
    pub account: String,
    /// The membership's target; `""` for the account as a whole.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The identity that holds or correlates to the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// A disputed account's candidates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// Whether tenure made the account (its reactions go through the identity's sync job).
    pub managed: bool,
    pub reaction: Reaction,
}

/// A run's plan: its items in canonical order, counts per situation and what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub items: Vec<Item>,
    pub counts: BTreeMap<Situation, u64>,
    pub pages: u64,
    pub accounts_read: u64,
    pub memberships_read: u64,
    /// Accounts the system reserves (its own connection account): never classified.
    pub reserved: u64,
    /// When the system last saw each of tenure's accounts sign in, where it says (recorded on
    /// the account, for reviews; not part of the plan's digest).
    #[serde(skip)]
    pub last_logins: Vec<(String, time::OffsetDateTime)>,
}

impl Plan {
    /// Add an item found without a scan (tenure's own checks), reported.
    pub fn report(&mut self, situation: Situation, account: &str, identity: Option<&str>) {
        *self.counts.entry(situation).or_default() += 1;
        self.items.push(Item {
            situation,
            account: account.to_owned(),
            target: String::new(),
            identity: identity.map(str::to_owned),
            candidates: Vec::new(),
            managed: true,
            reaction: Reaction::Report,
        });
    }

    /// Drop the items at `indices` (found stale against the store): each counts as linked.
    pub fn drop_items(&mut self, indices: &[usize]) {
        let mut i = 0;
        let counts = &mut self.counts;
        self.items.retain(|item| {
            let keep = !indices.contains(&i);
            i += 1;
            if !keep {
                if let Some(n) = counts.get_mut(&item.situation) {
                    *n = n.saturating_sub(1);
                }
                if !item.situation.is_membership() {
                    *counts.entry(Situation::Linked).or_default() += 1;
                }
            }
            keep
        });
        self.counts.retain(|s, n| *n > 0 || *s == Situation::Linked);
    }

    /// Put the items in plan order (situation, account, target).
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| (a.situation, &a.account, &a.target).cmp(&(b.situation, &b.account, &b.target)));
    }

    /// Items whose reaction changes the system.
    pub fn changes(&self) -> u64 {
        self.items.iter().filter(|i| i.reaction.changes()).count() as u64
    }

    /// SHA-256 (hex) of the canonical form: each item's JSON on a line, in plan order, after a
    /// first line with the counts (see docs/reconciliation.md).
    pub fn digest(&self) -> String {
        let items: Vec<serde_json::Value> =
            self.items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect();
        tenure_ledger::drift::plan_digest(&self.counts_json(), &items)
    }

    /// The counts keyed by situation name.
    pub fn counts_json(&self) -> serde_json::Value {
        serde_json::to_value(self.counts.iter().map(|(s, n)| (s.as_str(), *n)).collect::<BTreeMap<_, _>>())
            .unwrap_or_default()
    }
}

/// Why an account is not tenure's, remembered so its memberships can be judged.
#[derive(Debug, Clone, Copy)]
struct Other {
    identity: Option<u32>,
}

/// Compares what a scan reads with what tenure holds, a page at a time.
pub struct Classifier {
    e: Expected,
    seen: Vec<bool>,
    others: HashMap<String, Other>,
    deferred: Vec<(String, String)>,
    plan: Plan,
}

impl Classifier {
    pub fn new(expected: Expected) -> Self {
        Self {
            seen: vec![false; expected.held.len()],
            e: expected,
            others: HashMap::new(),
            deferred: Vec::new(),
            plan: Plan::default(),
        }
    }

    /// Classify one page.
    pub fn page(&mut self, page: Page) {
        self.plan.pages += 1;
        for a in page.accounts {
            self.account(a);
        }
        for (account, target) in page.memberships {
            self.plan.memberships_read += 1;
            self.membership(account, target);
        }
    }

    fn push(&mut self, situation: Situation, account: &str, target: &str, identity: Option<u32>, managed: bool) {
        let reaction = self.e.rules.reaction(situation);
        *self.plan.counts.entry(situation).or_default() += 1;
        self.plan.items.push(Item {
            situation,
            account: account.to_owned(),
            target: target.to_owned(),
            identity: identity.and_then(|h| self.e.holders.get(h as usize)).map(|h| h.reference.clone()),
            candidates: Vec::new(),
            managed,
            reaction,
        });
    }

    fn holder(&self, i: u32) -> Option<&Holder> {
        self.e.holders.get(i as usize)
    }

    /// A held account whose identity left (or is leaving) and whose disabling tenure verified:
    /// any access it shows is access surviving the leaver.
    fn leaver(&self, held: Held) -> bool {
        let gone = self.holder(held.holder).is_some_and(|h| h.state.has_left());
        gone && matches!(
            held.state,
            AccountState::DisableVerified | AccountState::Deleting | AccountState::DeleteVerified
        )
    }

    fn account(&mut self, a: AccountRecord) {
        self.plan.accounts_read += 1;
        self.plan.memberships_read += a.memberships.len() as u64;
        if a.reserved {
            self.plan.reserved += 1;
            return;
        }
        // The broker's dynamic logins: its own while their credential lives.
        if let Some(live) = self.e.logins.get(&a.name).copied() {
            if live || !a.enabled {
                *self.plan.counts.entry(Situation::Linked).or_default() += 1;
            } else {
                self.push(Situation::UnissuedLogin, &a.name, "", None, false);
            }
            return;
        }
        let held = self.e.accounts.get(&a.name).copied();
        let tenure_s = held.and_then(|i| {
            let h = *self.e.held.get(i as usize)?;
            let reference = &self.holder(h.holder)?.reference;
            (a.managed_by.as_deref() == Some(reference.as_str())).then_some((i, h))
        });
        let Some((i, h)) = tenure_s else {
            self.other(&a, held);
            return;
        };
        if let Some(s) = self.seen.get_mut(i as usize) {
            *s = true;
        }
        if let Some(at) = a.last_login {
            self.plan.last_logins.push((a.name.clone(), at));
        }
        let suspended = self.holder(h.holder).is_some_and(|x| x.state == LifecycleState::Suspended)
            && h.state == AccountState::DisableVerified;
        if self.leaver(h) && (a.enabled || !a.privileges.is_empty()) {
            self.push(Situation::SurvivingLeaver, &a.name, "", Some(h.holder), true);
        } else if suspended && a.enabled {
            self.push(Situation::EnabledWhileSuspended, &a.name, "", Some(h.holder), true);
        } else if a.enabled && a.attributes.get("password").is_some_and(|p| p == "set") {
            // tenure sets no password on the accounts it makes: someone else did.
            self.push(Situation::UnissuedLogin, &a.name, "", Some(h.holder), true);
        } else {
            *self.plan.counts.entry(Situation::Linked).or_default() += 1;
        }
        for target in &a.memberships {
            self.membership(a.name.clone(), target.clone());
        }
    }

    /// An account tenure did not make (or not for the identity it holds under that name).
    fn other(&mut self, a: &AccountRecord, held_name: Option<u32>) {
        let mut found: Vec<u32> = Vec::new();
        if let Some(i) = a.managed_by.as_deref().and_then(|r| self.e.by_reference.get(r)) {
            found.push(*i);
        }
        if let Some(h) = held_name.and_then(|i| self.e.held.get(i as usize)) {
            // tenure holds an account of this name, but this one is not marked for its identity.
            found.push(h.holder);
        }
        for (rule, keys) in self.e.rules.correlate.iter().zip(&self.e.keys) {
            if let Some(ids) = rule.account_value(&a.name, &a.attributes).and_then(|v| keys.get(&rule.key(v))) {
                found.extend(ids);
            }
        }
        found.sort_unstable();
        found.dedup();
        let identity = match found.as_slice() {
            [] => {
                self.push(Situation::Unmatched, &a.name, "", None, false);
                None
            }
            [one] => {
                let gone = self.holder(*one).is_some_and(|h| h.state.has_left());
                let situation = if gone && a.enabled { Situation::SurvivingLeaver } else { Situation::Unlinked };
                self.push(situation, &a.name, "", Some(*one), false);
                Some(*one)
            }
            many => {
                self.push(Situation::Disputed, &a.name, "", None, false);
                let candidates = many.iter().filter_map(|i| self.holder(*i)).map(|h| h.reference.clone()).collect();
                if let Some(last) = self.plan.items.last_mut() {
                    last.candidates = candidates;
                }
                None
            }
        };
        self.others.insert(a.name.clone(), Other { identity });
        for target in &a.memberships {
            self.other_membership(&a.name, target, identity);
        }
    }

    fn other_membership(&mut self, account: &str, target: &str, identity: Option<u32>) {
        if self.e.privileged.contains(target) {
            self.push(Situation::PrivilegedMembership, account, target, identity, false);
        }
    }

    fn membership(&mut self, account: String, target: String) {
        if let Some(o) = self.others.get(&account).copied() {
            self.other_membership(&account, &target, o.identity);
            return;
        }
        let Some(&i) = self.e.accounts.get(&account) else { return };
        if !self.seen.get(i as usize).copied().unwrap_or(false) {
            // Its account has not been read yet (or is not tenure's after all): judge at the end.
            self.deferred.push((account, target));
            return;
        }
        let Some(h) = self.e.held.get(i as usize).copied() else { return };
        let t = self.e.targets.get(&target).copied();
        let granted = t.and_then(|t| self.e.grants.get_mut(&pair(i, t)));
        let accounted = match granted {
            Some(g) => {
                g.seen = true;
                matches!(
                    g.state,
                    GrantState::Desired | GrantState::Provisioned | GrantState::Verified | GrantState::Revoking
                )
            }
            None => false,
        };
        if accounted && !self.leaver(h) {
            return;
        }
        let situation = if self.leaver(h) {
            Situation::SurvivingLeaver
        } else if self.e.privileged.contains(&target) {
            Situation::PrivilegedMembership
        } else {
            Situation::UnmanagedMembership
        };
        self.push(situation, &account, &target, Some(h.holder), true);
    }

    /// The scan read everything: what tenure holds and the system did not show is missing.
    pub fn finish(mut self) -> Plan {
        for (account, target) in std::mem::take(&mut self.deferred) {
            if self.e.accounts.get(&account).is_some_and(|&i| self.seen.get(i as usize).copied().unwrap_or(false)) {
                self.membership(account, target);
            }
        }
        let mut name_of: Vec<Option<&String>> = vec![None; self.e.held.len()];
        for (n, i) in &self.e.accounts {
            if let Some(slot) = name_of.get_mut(*i as usize) {
                *slot = Some(n);
            }
        }
        let target_names: HashMap<u32, &String> = self.e.targets.iter().map(|(n, t)| (*t, n)).collect();
        let seen = |i: u32| self.seen.get(i as usize).copied().unwrap_or(false);
        let mut missing = Vec::new();
        for (i, (h, name)) in self.e.held.iter().zip(&name_of).enumerate() {
            let (Ok(i), Some(name)) = (u32::try_from(i), name) else { continue };
            if !seen(i) && matches!(h.state, AccountState::Verified | AccountState::DisableVerified) {
                missing.push((Situation::Missing, (*name).clone(), String::new(), h.holder));
            }
        }
        for (key, g) in &self.e.grants {
            let (account, t) = unpair(*key);
            let Some(h) = self.e.held.get(account as usize).copied() else { continue };
            if g.seen || g.state != GrantState::Verified || !seen(account) || self.leaver(h) {
                continue;
            }
            if let (Some(Some(name)), Some(target)) = (name_of.get(account as usize), target_names.get(&t)) {
                missing.push((Situation::MissingMembership, (*name).clone(), (*target).clone(), h.holder));
            }
        }
        for (situation, name, target, holder) in missing {
            self.push(situation, &name, &target, Some(holder), true);
        }
        let mut plan = self.plan;
        plan.sort();
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_policy::reconcile::Correlation;

    fn account(
        name: &str,
        enabled: bool,
        marker: Option<&str>,
        memberships: &[&str],
        mail: Option<&str>,
    ) -> AccountRecord {
        AccountRecord {
            name: name.into(),
            enabled,
            memberships: memberships.iter().map(|m| (*m).to_owned()).collect(),
            managed_by: marker.map(str::to_owned),
            reserved: false,
            privileges: Default::default(),
            attributes: mail.map(|m| [("mail".to_owned(), m.to_owned())].into()).unwrap_or_default(),
            last_login: None,
        }
    }

    fn expected() -> Expected {
        let mut rules = ReconcileRules::default();
        rules.correlate.push(Correlation { account: "mail".into(), identity: "email".into(), ignore_case: true });
        rules.reactions.insert(Situation::UnmanagedMembership, Reaction::Revoke);
        let mut e = Expected::new(&rules);
        let mail = |m: &str| [("email".to_owned(), m.to_owned())].into();
        e.identity("hr:ada", LifecycleState::Active, &mail("ada@example.com"));
        e.identity("hr:bob", LifecycleState::Closed, &mail("bob@example.com"));
        e.identity("hr:cy", LifecycleState::Suspended, &BTreeMap::new());
        e.identity("hr:dee", LifecycleState::Active, &mail("dup@example.com"));
        e.identity("hr:eve", LifecycleState::Active, &mail("DUP@example.com"));
        e.identity("hr:fay", LifecycleState::Active, &BTreeMap::new());
        e.account("hr:ada", "ada", AccountState::Verified);
        e.account("hr:bob", "bob", AccountState::DisableVerified);
        e.account("hr:cy", "cy", AccountState::DisableVerified);
        e.account("hr:fay", "fay", AccountState::Verified);
        e.grant("ada", "staff", GrantState::Verified);
        e.grant("ada", "vpn", GrantState::Verified);
        e.grant("ada", "new", GrantState::Desired);
        e.privileged("admins");
        e
    }

    #[test]
    fn every_situation_is_found_and_ordered() {
        let mut c = Classifier::new(expected());
        let hostile = "x*)(uid=*,cn=evil";
        c.page(Page {
            number: 1,
            accounts: vec![
                account("ada", true, Some("hr:ada"), &[], None),
                account("bob", true, Some("hr:bob"), &[], None),
                account("cy", true, Some("hr:cy"), &[], None),
                account(hostile, true, None, &[], None),
                account("ada2", true, None, &[], Some(" Ada@Example.com")),
                account("dup", true, None, &[], Some("dup@example.com")),
                account("bob-old", true, None, &[], Some("bob@example.com")),
            ],
            memberships: vec![
                ("ada".into(), "staff".into()),
                ("ada".into(), "new".into()),
                ("ada".into(), "printers".into()),
                ("ada".into(), "admins".into()),
                (hostile.into(), "admins".into()),
                ("bob".into(), "staff".into()),
            ],
        });
        let plan = c.finish();
        let got: Vec<(Situation, &str, &str, Option<&str>, Reaction)> = plan
            .items
            .iter()
            .map(|i| (i.situation, i.account.as_str(), i.target.as_str(), i.identity.as_deref(), i.reaction))
            .collect();
        use Situation::*;
        assert_eq!(
            got,
            [
                (Unlinked, "ada2", "", Some("hr:ada"), Reaction::Report),
                (Unmatched, hostile, "", None, Reaction::Report),
                (Disputed, "dup", "", None, Reaction::Report),
                (Missing, "fay", "", Some("hr:fay"), Reaction::Report),
                (UnmanagedMembership, "ada", "printers", Some("hr:ada"), Reaction::Revoke),
                (MissingMembership, "ada", "vpn", Some("hr:ada"), Reaction::Report),
                (PrivilegedMembership, "ada", "admins", Some("hr:ada"), Reaction::Report),
                (PrivilegedMembership, hostile, "admins", None, Reaction::Report),
                (SurvivingLeaver, "bob", "", Some("hr:bob"), Reaction::Disable),
                (SurvivingLeaver, "bob", "staff", Some("hr:bob"), Reaction::Disable),
                (SurvivingLeaver, "bob-old", "", Some("hr:bob"), Reaction::Disable),
                (EnabledWhileSuspended, "cy", "", Some("hr:cy"), Reaction::Report),
            ]
        );
        assert_eq!(plan.items.iter().find(|i| i.situation == Disputed).unwrap().candidates, ["hr:dee", "hr:eve"]);
        assert_eq!(plan.counts[&Linked], 1);
        assert_eq!((plan.accounts_read, plan.memberships_read, plan.changes()), (7, 6, 4));
        assert!(!plan.items.iter().find(|i| i.account == "bob-old").unwrap().managed);
        // The digest is of the plan: the same plan, the same digest; one item changed, another.
        let d = plan.digest();
        assert_eq!(d, plan.clone().digest());
        let mut other = plan.clone();
        other.items[0].reaction = Reaction::Disable;
        assert_ne!(other.digest(), d);
    }

    #[test]
    fn broker_logins_are_the_brokers_while_they_live_and_passwords_set_by_hand_are_not() {
        let mut e = expected();
        e.login("svc-live-1", true);
        e.login("svc-dead-2", false);
        let mut c = Classifier::new(e);
        let mut ada = account("ada", true, Some("hr:ada"), &["staff", "vpn"], None);
        ada.attributes.insert("password".into(), "set".into());
        c.page(Page {
            number: 1,
            accounts: vec![
                account("svc-live-1", true, None, &[], None),
                account("svc-dead-2", true, None, &[], None),
                ada,
                account("fay", true, Some("hr:fay"), &[], None),
            ],
            memberships: vec![],
        });
        let plan = c.finish();
        let got: Vec<(Situation, &str)> = plan.items.iter().map(|i| (i.situation, i.account.as_str())).collect();
        assert!(got.contains(&(Situation::UnissuedLogin, "svc-dead-2")), "{got:?}");
        assert!(got.contains(&(Situation::UnissuedLogin, "ada")), "{got:?}");
        assert!(!got.iter().any(|(_, a)| *a == "svc-live-1" || *a == "fay"), "{got:?}");
    }

    #[test]
    fn memberships_read_before_their_accounts_are_judged_at_the_end() {
        let mut c = Classifier::new(expected());
        c.page(Page {
            number: 1,
            accounts: vec![],
            memberships: vec![("ada".into(), "staff".into()), ("ada".into(), "vpn".into())],
        });
        c.page(Page {
            number: 2,
            accounts: vec![account("ada", true, Some("hr:ada"), &[], None)],
            memberships: vec![],
        });
        let plan = c.finish();
        // ada's memberships counted once her account was read; the others were not read at all.
        let got: Vec<(Situation, &str)> = plan.items.iter().map(|i| (i.situation, i.account.as_str())).collect();
        assert_eq!(got, [(Situation::Missing, "bob"), (Situation::Missing, "cy"), (Situation::Missing, "fay")]);
    }
}
