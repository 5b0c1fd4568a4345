//! What converging one account in one system takes, as a plan: a pure function of what the
//! store wants and what the system holds, with no IO. The worker executes a plan and reads the
//! account back; reconciliation can compute the same plan to preview a run before it acts.

use std::collections::BTreeSet;
use tenure_connectors::{AccountRecord, ConnectorError};

/// What the store wants of one identity's account in one system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The identity (`source:external_id`), which the account must be marked for.
    pub reference: String,
    /// The account exists and is enabled (a current identity whose account is wanted).
    pub enabled: bool,
    /// The identity left: the account keeps no membership at all, managed or not.
    pub left: bool,
    /// The account is to be deleted (a closed leaver past its grace period).
    pub delete: bool,
    /// Entitlement targets it should hold.
    pub grants: BTreeSet<String>,
    /// Entitlement targets it should not hold.
    pub revokes: BTreeSet<String>,
}

/// One change, in the order a plan lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Enable,
    /// Disable (which strips elevated attributes where the system has them).
    Disable,
    Delete,
    Grant(String),
    Revoke(String),
}

/// The steps that make `actual` (`None`: the account does not exist) what `want` says. An
/// existing account tenure did not make for this identity is refused, whatever the steps.
pub fn plan(system: &str, want: &Want, actual: Option<&AccountRecord>) -> Result<Vec<Step>, ConnectorError> {
    if let Some(r) = actual {
        ConnectorError::ensure_managed(system, r, &want.reference)?;
    }
    let mut steps = Vec::new();
    if want.delete {
        if actual.is_some() {
            steps.push(Step::Delete);
        }
        return Ok(steps);
    }
    let empty = BTreeSet::new();
    let held = actual.map_or(&empty, |r| &r.memberships);
    if want.enabled {
        match actual {
            None => steps.push(Step::Create),
            Some(r) if !r.enabled => steps.push(Step::Enable),
            Some(_) => {}
        }
        steps.extend(want.grants.difference(held).cloned().map(Step::Grant));
        steps.extend(held.intersection(&want.revokes).cloned().map(Step::Revoke));
    } else if let Some(r) = actual {
        if r.enabled || !r.privileges.is_empty() {
            steps.push(Step::Disable);
        }
        let strip: Vec<&String> =
            if want.left { held.iter().collect() } else { held.intersection(&want.revokes).collect() };
        steps.extend(strip.into_iter().cloned().map(Step::Revoke));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(enabled: bool, grants: &[&str], revokes: &[&str]) -> Want {
        Want {
            reference: "hr:E1".into(),
            enabled,
            left: false,
            delete: false,
            grants: grants.iter().map(|s| (*s).to_owned()).collect(),
            revokes: revokes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn account(enabled: bool, memberships: &[&str]) -> AccountRecord {
        AccountRecord {
            name: "E1".into(),
            enabled,
            memberships: memberships.iter().map(|s| (*s).to_owned()).collect(),
            managed_by: Some("hr:E1".into()),
            reserved: false,
            privileges: BTreeSet::new(),
            attributes: Default::default(),
            last_login: None,
        }
    }

    /// One case: what is wanted, what the system holds, the steps (or the refusal's code).
    fn check(w: &Want, actual: Option<&AccountRecord>, expected: &[Step]) {
        assert_eq!(plan("dir", w, actual).unwrap(), expected, "{w:?} against {actual:?}");
    }

    #[test]
    fn plans_create_enable_grant_revoke_disable_and_delete() {
        use Step::*;
        let g = |s: &str| Grant(s.to_owned());
        let r = |s: &str| Revoke(s.to_owned());
        check(&want(true, &["eng", "vpn"], &[]), None, &[Create, g("eng"), g("vpn")]);
        check(&want(true, &["eng"], &["old"]), Some(&account(false, &["old", "eng"])), &[Enable, r("old")]);
        check(&want(true, &["eng"], &[]), Some(&account(true, &["eng"])), &[]);
        // A mover keeps what it still may hold, including memberships tenure does not manage.
        check(&want(false, &[], &["eng"]), Some(&account(true, &["eng", "other"])), &[Disable, r("eng")]);
        // A leaver keeps nothing.
        let mut leaver = want(false, &[], &["eng"]);
        leaver.left = true;
        check(&leaver, Some(&account(false, &["eng", "other"])), &[r("eng"), r("other")]);
        check(&leaver, None, &[]);
        // A disabled account that still holds SUPERUSER is disabled again (stripped).
        let mut superuser = account(false, &[]);
        superuser.privileges.insert("SUPERUSER".into());
        check(&leaver, Some(&superuser), &[Disable]);
        let mut gone = want(false, &[], &[]);
        gone.delete = true;
        check(&gone, Some(&account(false, &[])), &[Delete]);
        check(&gone, None, &[]);
    }

    #[test]
    fn an_account_tenure_did_not_make_is_refused_whatever_is_wanted() {
        let mut foreign = account(true, &[]);
        foreign.managed_by = None;
        let mut reserved = account(true, &[]);
        reserved.reserved = true;
        let mut other = account(true, &[]);
        other.managed_by = Some("hr:E2".into());
        for a in [&foreign, &reserved, &other] {
            for w in [want(true, &["eng"], &[]), want(false, &[], &[])] {
                let e = plan("dir", &w, Some(a)).unwrap_err();
                assert!(e.to_string().starts_with("CN0004"), "{e}");
            }
        }
    }
}
