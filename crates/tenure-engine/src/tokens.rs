//! API tokens: bearer credentials tenure issues to identities it governs. A token is
//! `tnr_<id>_<secret>`; only the SHA-256 of the secret is stored (the secret has 256 bits of
//! entropy, so a plain hash is enough), and a token is good only while it is unexpired,
//! unrevoked, and its identity is `active`: a leaver's tokens stop working the instant the
//! leaver event commits.

use crate::ledger::{Stamp, record};
use crate::{Engine, EngineError, Result};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{TokenIssued, TokenRevoked};
use tenure_model::{IdentityRef, LifecycleState, Principal, Role, RoleName};
use tenure_proto::{IssuedTokenView, TokenView};
use tenure_store::{ReadTx, TokenRow};
use time::Duration;

use tenure_model::rfc3339 as ts;

const PREFIX: &str = "tnr_";
/// Longest a token may live.
pub const MAX_TTL: Duration = Duration::days(366);
/// A token's lifetime when the caller names none.
pub const DEFAULT_TTL_DAYS: i64 = 90;

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Equal without an early exit, so timing says nothing about where two hashes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn view(tx: &dyn ReadTx, t: &TokenRow) -> Result<TokenView> {
    Ok(TokenView {
        id: t.id.clone(),
        identity: tx.identity_by_id(t.identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default(),
        roles: t.roles.clone(),
        description: t.description.clone(),
        created_at: ts(t.created_at),
        expires_at: ts(t.expires_at),
        revoked_at: t.revoked_at.map(ts),
    })
}

impl Engine {
    /// Issue a token to `identity` with `roles`. The secret is in the answer and nowhere else.
    /// Only people hold `admin` and `approver`; `source:NAME` must name a source of the policy.
    pub fn issue_token(
        &self,
        identity: &str,
        roles: &[String],
        ttl_days: Option<i64>,
        description: &str,
        by: &Principal,
    ) -> Result<IssuedTokenView> {
        let actor = by.actor();
        // One check, before any arithmetic: a day count from outside cannot overflow.
        let days = ttl_days.unwrap_or(DEFAULT_TTL_DAYS);
        if !(1..=MAX_TTL.whole_days()).contains(&days) {
            return Err(EngineError::invalid(
                "ttl_days",
                format!("expected 1 to {} days, found {days}", MAX_TTL.whole_days()),
            ));
        }
        let ttl = Duration::days(days);
        let policy = self.current_policy()?;
        let r: IdentityRef = identity.parse().map_err(|e| EngineError::invalid("identity", format!("{e}")))?;
        let mut parsed = BTreeSet::new();
        for role in roles {
            let role: Role = role.parse().map_err(|e: String| EngineError::invalid("roles", e))?;
            if let Role::Source(s) = &role
                && !policy.sources.contains_key(s)
            {
                return Err(EngineError::invalid("roles", format!("unknown source `{s}`")));
            }
            parsed.insert(role);
        }
        if parsed.is_empty() {
            return Err(EngineError::invalid("roles", "a token needs at least one role"));
        }
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let who =
            tx.identity(&r)?.ok_or_else(|| EngineError::invalid("identity", format!("no identity `{identity}`")))?;
        if who.state != LifecycleState::Active {
            return Err(EngineError::invalid(
                "identity",
                format!("`{identity}` is {}; tokens go to active identities", who.state),
            ));
        }
        let human_only = [RoleName::Admin, RoleName::Approver];
        if !who.kind.is_human() && parsed.iter().any(|p| human_only.iter().any(|h| p == &Role::Named(*h))) {
            return Err(EngineError::invalid(
                "roles",
                format!("`{identity}` is a {}; only people are admins or approvers", who.kind),
            ));
        }
        let mut rng = rand::rng();
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let id = hex::encode(id);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let row = TokenRow {
            id: id.clone(),
            identity_id: who.id,
            roles: parsed.iter().map(ToString::to_string).collect(),
            hash: hash(&secret),
            description: description.to_owned(),
            created_at: now,
            expires_at: now + ttl,
            revoked_at: None,
        };
        tx.insert_token(&row)?;
        let event = TokenIssued {
            token: id.clone(),
            roles: row.roles.clone(),
            expires_at: ts(row.expires_at),
            description: description.to_owned(),
        };
        record(
            tx.as_mut(),
            Stamp::new(now, &actor, policy.version.as_str()),
            identity,
            LedgerEvent::TokenIssued(event),
        )?;
        let token = view(&*tx, &row)?;
        tx.commit()?;
        Ok(IssuedTokenView { token, secret: format!("{PREFIX}{id}_{secret}") })
    }

    /// Who a bearer token belongs to, if it is good now: an API token (`tnr_…`), or else a
    /// workload's own broker credential (an API key or JWT-SVID), which holds no role.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let unauth = |m: &str| EngineError::Unauthenticated(m.to_owned());
        if bearer.is_empty() {
            return Err(unauth("missing bearer token"));
        }
        let Some(rest) = bearer.strip_prefix(PREFIX) else { return self.authenticate_credential(bearer) };
        let (id, secret) = rest.split_once('_').ok_or_else(|| unauth("not a tenure token"))?;
        let tx = self.store.read()?;
        let t = tx.token(id)?.ok_or_else(|| unauth("unknown or revoked token"))?;
        if !same(&t.hash, &hash(secret)) {
            return Err(unauth("unknown or revoked token"));
        }
        if t.revoked_at.is_some() {
            return Err(unauth("unknown or revoked token"));
        }
        if t.expires_at <= self.clock.now() {
            return Err(unauth("token expired"));
        }
        let who = tx.identity_by_id(t.identity_id)?.ok_or_else(|| unauth("unknown or revoked token"))?;
        if who.state != LifecycleState::Active || crate::expiry::is_expired(&who, self.clock.now()) {
            return Err(unauth("the token's identity is not active"));
        }
        let roles = t.roles.iter().filter_map(|r| r.parse::<Role>().ok()).collect();
        Ok(Principal { identity: who.reference, roles, via: tenure_model::Via::Token(t.id), on_behalf_of: vec![] })
    }

    /// [`Engine::authenticate`] for a caller reaching us from `source` (its address), or, with
    /// no bearer token, by the TLS client certificate it presented (`certificate`, DER: an
    /// X.509-SVID tenure issued, [`Engine::authenticate_certificate`]). A failure is logged
    /// (never with the secret) and counted (`tenure_auth_failures_total`), and a source that
    /// keeps failing is slowed down: the answer says how long to wait first.
    pub fn authenticate_from(
        &self,
        bearer: &str,
        certificate: Option<&[u8]>,
        source: &str,
    ) -> (Result<Principal>, std::time::Duration) {
        let now = self.clock.now();
        let delay = self.auth_failures.delay(source, now);
        let result = match certificate {
            Some(der) if bearer.is_empty() => self.authenticate_certificate(der),
            _ => self.authenticate(bearer),
        };
        if let Err(e) = &result {
            let failures = self.auth_failures.record(source, now);
            let reason = match e {
                EngineError::Unauthenticated(m) => m.as_str(),
                _ => "internal error",
            };
            tracing::warn!(source, reason, recent_failures = failures, "authentication failed");
        }
        (result, delay)
    }

    /// How many authentication failures a source may make in a minute before it is slowed
    /// down (`serve --auth-failures-per-minute`; default [`FREE_FAILURES`]).
    pub fn set_auth_failures_per_minute(&self, n: u32) {
        self.auth_failures.free.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Authentication failures since start, for `/metrics`.
    pub fn auth_failures_total(&self) -> u64 {
        self.auth_failures.total()
    }

    /// Revoke a token; it stops working at once.
    pub fn revoke_token(&self, id: &str, by: &Principal) -> Result<TokenView> {
        let actor = by.actor();
        let now = self.clock.now();
        let version = self.current_policy()?.version.to_string();
        let mut tx = self.store.write()?;
        let t = tx.token(id)?.ok_or_else(|| EngineError::NotFound(format!("token {id}")))?;
        if !tx.revoke_token(id, now)? {
            return Err(EngineError::Conflict(format!("token {id} is already revoked")));
        }
        let subject = tx.identity_by_id(t.identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
        let event = LedgerEvent::TokenRevoked(TokenRevoked { token: id.to_owned() });
        record(tx.as_mut(), Stamp::new(now, &actor, &version), &subject, event)?;
        let t = tx.token(id)?.ok_or_else(|| EngineError::NotFound(format!("token {id}")))?;
        let v = view(&*tx, &t)?;
        tx.commit()?;
        Ok(v)
    }

    /// Whether some admin could call the API now (a good admin token of an active person).
    pub fn has_admin(&self) -> Result<bool> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        for t in tx.tokens()? {
            if t.revoked_at.is_none()
                && t.expires_at > now
                && t.roles.iter().any(|r| r == RoleName::Admin.as_str())
                && tx.identity_by_id(t.identity_id)?.is_some_and(|i| i.state == LifecycleState::Active)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Recent authentication failures per source, to slow down guessing.
#[derive(Default)]
pub(crate) struct AuthFailures {
    /// Failures a source may make in a window before it is slowed down (0: the default).
    free: std::sync::atomic::AtomicU32,
    total: std::sync::atomic::AtomicU64,
    /// source → (failures in the current window, window start).
    recent: std::sync::Mutex<std::collections::HashMap<String, (u32, time::OffsetDateTime)>>,
}

/// Failures a source may make in a window before it is slowed down, unless configured.
pub const FREE_FAILURES: u32 = 20;
const WINDOW: Duration = Duration::minutes(1);
/// Sources remembered at most (the oldest windows are forgotten first).
const MAX_SOURCES: usize = 10_000;

impl AuthFailures {
    fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn free(&self) -> u32 {
        match self.free.load(std::sync::atomic::Ordering::Relaxed) {
            0 => FREE_FAILURES,
            n => n,
        }
    }

    /// Count a failure of `source`; returns its failures in the current window.
    fn record(&self, source: &str, now: time::OffsetDateTime) -> u32 {
        self.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() >= MAX_SOURCES && !recent.contains_key(source) {
            recent.retain(|_, (_, start)| now - *start < WINDOW);
        }
        let entry = recent.entry(source.to_owned()).or_insert((0, now));
        if now - entry.1 >= WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0
    }

    /// How long `source` waits before it is answered: nothing for the first failures in a
    /// window, then 100 ms more per failure, at most 5 s.
    fn delay(&self, source: &str, now: time::OffsetDateTime) -> std::time::Duration {
        let free = self.free();
        let recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match recent.get(source) {
            Some((n, start)) if now - *start < WINDOW && *n > free => {
                std::time::Duration::from_millis(u64::from(n - free).saturating_mul(100).min(5_000))
            }
            _ => std::time::Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_source_that_keeps_failing_is_slowed_and_others_are_not() {
        let f = AuthFailures::default();
        let t0 = time::macros::datetime!(2026-11-01 09:00 UTC);
        for _ in 0..FREE_FAILURES {
            f.record("10.0.0.1", t0);
        }
        assert_eq!(f.delay("10.0.0.1", t0), std::time::Duration::ZERO);
        for _ in 0..10 {
            f.record("10.0.0.1", t0);
        }
        assert_eq!(f.delay("10.0.0.1", t0), std::time::Duration::from_millis(1000));
        assert_eq!(f.delay("10.0.0.2", t0), std::time::Duration::ZERO);
        assert_eq!(f.delay("10.0.0.1", t0 + WINDOW), std::time::Duration::ZERO, "the window ended");
        assert_eq!(f.total(), u64::from(FREE_FAILURES) + 10);
    }
}
