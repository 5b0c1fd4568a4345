//! The credential broker: short-lived credentials for non-human identities, each with its
//! owner, purpose, issue time and expiry, and stored only as a fingerprint (hex SHA-256 of the
//! secret form). Kinds: JWT-SVIDs (ES256, published in a JWKS), X.509-SVIDs (from a CSR, by
//! tenure's CA), API keys (`tnk_<id>_<secret>`) and PostgreSQL dynamic logins (created by the
//! worker through the connector).
//!
//! A credential is good while it is unrevoked, unexpired and its identity is `active`, so a
//! leaver's credentials stop working the instant the leaver event commits ([`Engine::introspect`]
//! answers from the same rows). The leaver's transaction also revokes them and enqueues a
//! `credentials` job; the worker drops dynamic logins and verifies every revocation
//! (introspection, the CRL, a failed login), and the identity closes only when all are verified.
//!
//! Private keys live in the key directory (mode 0700, files 0600), never in the database; the
//! database holds their public halves and schedule. The JWT signing key rotates by policy
//! (`signing_key_rotation`) or on demand; a retired key stays in the JWKS until the last token
//! it signed has expired.

use crate::ledger::{Stamp, record};
pub use crate::steps::credentials::Verification;
use crate::{ACTOR_ENGINE, Engine, EngineError, Result};
use std::path::Path;
use std::sync::Arc;
use tenure_broker::introspect::{self, Introspection};
use tenure_broker::issue;
use tenure_broker::keys::{self, FileKeyStore, KeyRing, KeyStore, NewKey};
use tenure_broker::publish::{self, Discovery, Jwks};
use tenure_ledger::LedgerEvent;
use tenure_ledger::event::{CredentialCheck, CredentialIssued, CredentialRevoked, KeyRemoved, KeyRotated};
use tenure_model::Principal;
use tenure_model::credential::format_ttl;
use tenure_model::rfc3339 as ts;
use tenure_model::{CredentialKind, LifecycleState, RoleName};
use tenure_policy::Bundle;
use tenure_policy::credentials::CredentialRules;
use tenure_proto::{CredentialView, IssuedCredentialView};
use tenure_store::{CredentialRow, IdentityRow, JobKind, NewJob, ReadTx, SigningKeyRow};
use tenure_svid::jwt::JwtSigner;
use tenure_svid::spiffe::SpiffeId;
use tenure_svid::x509::Ca;
use time::{Duration, OffsetDateTime};

/// The `system` of credential jobs.
pub use crate::steps::credentials::BROKER;
pub use tenure_broker::{API_KEY_PREFIX, fingerprint_of};

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub identity: String,
    pub kind: CredentialKind,
    pub ttl: Option<Duration>,
    pub audience: Vec<String>,
    pub csr: Option<String>,
    pub system: Option<String>,
    pub purpose: Option<String>,
    /// The credential this one rotates (revoked when this one is issued).
    pub replaces: Option<String>,
}

impl CredentialRequest {
    /// A request as a client sent it (`POST /v1/credentials`): for the caller unless it names
    /// an identity; the lifetime as a duration (`5m`, `24h`), the policy's maximum by default.
    pub fn from_wire(w: tenure_proto::CredentialWire, caller: &Principal) -> Result<Self> {
        let kind = w.kind.parse::<CredentialKind>().map_err(|e| EngineError::invalid("kind", e))?;
        let ttl = w
            .ttl
            .as_deref()
            .map(tenure_model::credential::parse_ttl)
            .transpose()
            .map_err(|e| EngineError::invalid("ttl", e.to_string()))?;
        Ok(Self {
            identity: w.identity.unwrap_or_else(|| caller.identity.to_string()),
            kind,
            ttl,
            audience: w.audience,
            csr: w.csr,
            system: w.system,
            purpose: w.purpose,
            replaces: None,
        })
    }
}

/// May `by` act for `nhi`: the operator always, through the API the NHI itself or its owner
/// (and admins, when `admin_ok`)?
fn may_act_for(by: &Principal, nhi: &IdentityRow, admin_ok: bool) -> bool {
    by.is_operator()
        || by.identity == nhi.reference
        || nhi.owner.as_ref() == Some(&by.identity)
        || (admin_ok && by.has(RoleName::Admin))
}

/// A dynamic login the worker must create, for a credential already recorded.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub credential: String,
    pub system: String,
    pub login: tenure_connectors::DynamicLogin,
}

pub(crate) fn view(tx: &dyn ReadTx, c: &CredentialRow, now: OffsetDateTime) -> Result<CredentialView> {
    let identity = tx.identity_by_id(c.identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
    Ok(view_of(c, identity, now))
}

fn view_of(c: &CredentialRow, identity: String, now: OffsetDateTime) -> CredentialView {
    let lifetime = c.expires_at - c.issued_at;
    CredentialView {
        id: c.id.clone(),
        identity,
        kind: c.kind.to_string(),
        state: tenure_broker::state(c, now).to_owned(),
        fingerprint: c.fingerprint.clone(),
        spiffe_id: c.spiffe_id.clone(),
        audience: c.audience.clone(),
        system: c.system.clone(),
        name: c.name.clone(),
        purpose: c.purpose.clone(),
        owner: c.owner.clone(),
        issued_by: c.issued_by.clone(),
        issued_at: ts(c.issued_at),
        expires_at: ts(c.expires_at),
        rotate_after: ts(c.issued_at + lifetime / 2),
        revoked_at: c.revoked_at.map(ts),
        revoke_reason: c.revoke_reason.clone(),
        verified_at: c.verified_at.map(ts),
        replaces: c.replaces.clone(),
    }
}

fn not_active(identity: &str, state: LifecycleState) -> EngineError {
    EngineError::Refused(format!("`{identity}` is {state}; credentials are issued to active identities only"))
}

/// The SPIFFE ID policy derives for an identity.
pub fn spiffe_id(rules: &CredentialRules, identity: &IdentityRow) -> Result<SpiffeId> {
    SpiffeId::derive(
        &rules.trust_domain,
        &rules.spiffe_path,
        &[
            ("kind", identity.kind.as_str()),
            ("source", identity.reference.source()),
            ("external_id", identity.reference.external_id()),
        ],
    )
    .map_err(|e| EngineError::Refused(format!("`{}` has no valid SPIFFE ID: {e}", identity.reference)))
}

fn rules(policy: &Bundle) -> Result<&CredentialRules> {
    policy
        .credentials
        .as_ref()
        .ok_or_else(|| EngineError::Refused("the deployed policy has no [credentials] section".into()))
}

/// The signing key of `usage` (`jwt` or `ca`) now in use.
fn current_key(tx: &dyn ReadTx, usage: &str) -> Result<Option<SigningKeyRow>> {
    Ok(keys::current(&tx.signing_keys()?, usage).cloned())
}

impl Engine {
    /// Where the broker keeps its private keys (`DATA_DIR/keys`). Set once, before issuing.
    pub fn set_key_dir(&self, dir: &Path) {
        self.set_key_store(Box::new(FileKeyStore::new(dir.to_owned())));
    }

    /// Where the broker keeps its private keys, any [`KeyStore`]. Set once, before issuing.
    pub fn set_key_store(&self, store: Box<dyn KeyStore>) {
        let _ = self.keys.set(KeyRing::new(store));
    }

    /// Where clients reach this server (`serve --public-url`, default `http://LISTEN`): the
    /// base of the endpoints the discovery document names. Set once, at start.
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_owned());
    }

    /// The base set by [`Engine::set_public_url`], if any.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.get().map(String::as_str)
    }

    fn keys(&self) -> Result<&KeyRing> {
        self.keys.get().ok_or(EngineError::NoKeyStore)
    }

    /// The current JWT signing key, created (or rotated, when policy's period is over) first.
    fn jwt_signer(&self, rules: &CredentialRules, version: &str) -> Result<Arc<JwtSigner>> {
        let now = self.clock.now();
        if let Some(k) = current_key(self.store.read()?.as_ref(), "jwt")?
            && k.created_at + rules.signing_key_rotation > now
        {
            return Ok(self.keys()?.jwt_signer(&k.kid)?);
        }
        let kid = self.rotate_jwt_key(version, "scheduled", ACTOR_ENGINE, Some(rules.signing_key_rotation))?;
        Ok(self.keys()?.jwt_signer(&kid)?)
    }

    /// Replace the JWT signing key; the old one stays published until its last token expired.
    /// With `if_older_than`, only when the current key is at least that old (or missing).
    fn rotate_jwt_key(&self, version: &str, why: &str, actor: &str, if_older_than: Option<Duration>) -> Result<String> {
        let keys = self.keys()?;
        let _one = keys.creating();
        let now = self.clock.now();
        let old = current_key(self.store.read()?.as_ref(), "jwt")?;
        if let (Some(o), Some(age)) = (&old, if_older_than)
            && o.created_at + age > now
        {
            // Someone rotated it while we waited.
            return Ok(o.kid.clone());
        }
        let key = keys.new_jwt_key()?;
        let why = KeyRotated { why: Some(why.to_owned()), ..KeyRotated::default() };
        self.record_key(&key, old.as_ref(), actor, version, why)?;
        let kid = key.kid;
        Ok(kid)
    }

    /// Record a new signing key (its private half already in the key directory) and retire the
    /// one it replaces, with the ledger entry, in one transaction.
    fn record_key(
        &self,
        key: &NewKey,
        old: Option<&SigningKeyRow>,
        actor: &str,
        version: &str,
        mut event: KeyRotated,
    ) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        tx.insert_signing_key(&SigningKeyRow {
            kid: key.kid.clone(),
            usage: key.usage.to_owned(),
            public: key.public.clone(),
            created_at: now,
            retired_at: None,
            removed_at: None,
        })?;
        if let Some(o) = old {
            tx.retire_signing_key(&o.kid, now)?;
        }
        event.usage = key.usage.to_owned();
        event.kid = key.kid.clone();
        event.retired = old.map(|o| o.kid.clone());
        record(tx.as_mut(), Stamp::new(now, actor, version), "broker", LedgerEvent::KeyRotated(event))?;
        tx.commit()?;
        Ok(())
    }

    /// Rotate the JWT signing key now (`tenure creds rotate-key`).
    pub fn rotate_signing_key(&self, by: &Principal) -> Result<String> {
        let policy = self.current_policy()?;
        rules(&policy)?;
        self.rotate_jwt_key(policy.version.as_str(), "on demand", &by.actor(), None)
    }

    /// The trust domain's CA, created on first use (and again when it nears its end).
    fn ca(&self, rules: &CredentialRules, version: &str) -> Result<Arc<Ca>> {
        let now = self.clock.now();
        if let Some(k) = current_key(self.store.read()?.as_ref(), "ca")?
            && keys::ca_fresh(&k, now)
        {
            return Ok(self.keys()?.ca(&k.kid, &k.public)?);
        }
        let keys = self.keys()?;
        let _one = keys.creating();
        if let Some(k) = current_key(self.store.read()?.as_ref(), "ca")?
            && keys::ca_fresh(&k, now)
        {
            return Ok(keys.ca(&k.kid, &k.public)?);
        }
        let old = current_key(self.store.read()?.as_ref(), "ca")?;
        let key = keys.new_ca(&rules.trust_domain, now)?;
        let domain = KeyRotated { trust_domain: Some(rules.trust_domain.clone()), ..KeyRotated::default() };
        self.record_key(&key, old.as_ref(), ACTOR_ENGINE, version, domain)?;
        let ca = keys.ca(&key.kid, &key.public)?;
        Ok(ca)
    }

    /// Issue a credential. The secret is in the answer and nowhere else. A dynamic login comes
    /// back with the [`PendingLogin`] the caller must create (see `Workers::issue_credential`).
    pub fn issue_credential(
        &self,
        req: &CredentialRequest,
        by: &Principal,
    ) -> Result<(IssuedCredentialView, Option<PendingLogin>)> {
        let policy = self.current_policy()?;
        let rules = rules(&policy)?;
        let version = policy.version.as_str();
        let r: tenure_model::IdentityRef =
            req.identity.parse().map_err(|e| EngineError::invalid("identity", format!("{e}")))?;
        let nhi = self
            .store
            .read()?
            .identity(&r)?
            .ok_or_else(|| EngineError::invalid("identity", format!("no identity `{}`", req.identity)))?;
        if !may_act_for(by, &nhi, false) {
            return Err(EngineError::Forbidden(format!(
                "only `{}` itself or its owner may ask for its credentials",
                req.identity
            )));
        }
        if nhi.kind.is_human() {
            return Err(EngineError::invalid(
                "identity",
                format!("`{}` is a person; the broker issues to NHIs only", req.identity),
            ));
        }
        let max = rules
            .max_ttl(req.kind, nhi.kind, nhi.attributes.get("environment").map(String::as_str))
            .map_err(EngineError::Refused)?;
        let mut ttl = req.ttl.unwrap_or(max);
        if req.replaces.is_some() {
            // A rotation keeps its predecessor's lifetime, within what policy allows now.
            ttl = ttl.min(max);
        }
        if ttl > max {
            return Err(EngineError::Refused(format!(
                "ttl {} is above the policy's maximum of {} for a {} of `{}`",
                format_ttl(ttl),
                format_ttl(max),
                req.kind,
                req.identity
            )));
        }
        if nhi.state != LifecycleState::Active {
            return Err(not_active(&req.identity, nhi.state));
        }
        if let Some(deadline) = nhi.owner_deadline {
            return Err(EngineError::Refused(format!(
                "`{}` waits for a new owner (until {}); its credentials are issued once one takes it",
                req.identity,
                ts(deadline)
            )));
        }
        // A workload acting with a credential may replace only that credential, and nothing it
        // gets outlives what it came with: a 5-minute token cannot mint a 7-day key.
        let presented = by.credential().map(|(id, end)| (id.to_owned(), end));
        if let (Some((token, _)), Some(old)) = (&presented, &req.replaces)
            && token != old
        {
            return Err(EngineError::Forbidden(format!(
                "a credential may rotate only itself; `{old}` is not the one presented"
            )));
        }
        let sid = spiffe_id(rules, &nhi)?;
        // Signing happens before the write transaction, so concurrent issuers sign in parallel
        // and hold the writer only to record; the state is checked again inside it.
        let now = self.clock.now();
        let mut expires_at = now + ttl;
        if let Some((_, end)) = presented {
            expires_at = expires_at.min(end);
        }
        if let Some(end) = nhi.expires_at {
            // Never outlive the identity.
            if end <= now {
                return Err(EngineError::Refused(format!("`{}` expired at {}", req.identity, ts(end))));
            }
            expires_at = expires_at.min(end);
        }
        let id = format!("crd_{}", hex::encode(rand::random::<[u8; 8]>()));
        let mut row = CredentialRow {
            id: id.clone(),
            identity_id: nhi.id,
            kind: req.kind,
            fingerprint: String::new(),
            spiffe_id: Some(sid.to_string()),
            audience: vec![],
            system: None,
            name: None,
            purpose: req.purpose.clone().or_else(|| nhi.purpose.clone()).unwrap_or_default(),
            owner: nhi.owner.as_ref().map(ToString::to_string),
            issued_by: by.actor(),
            issued_at: now,
            expires_at,
            revoked_at: None,
            revoke_reason: None,
            verified_at: None,
            evidence: None,
            replaces: req.replaces.clone(),
        };
        let mut username = None;
        let mut pending = None;
        let minted = match req.kind {
            CredentialKind::JwtSvid => {
                // Keys (which commit their own ledger entries) outside the issuing transaction.
                let signer = self.jwt_signer(rules, version)?;
                row.audience = req.audience.clone();
                issue::jwt_svid(&signer, sid.as_str(), &req.audience, &id, &rules.issuer(), now, expires_at)?
            }
            CredentialKind::X509Svid => {
                let ca = self.ca(rules, version)?;
                issue::x509_svid(&ca, req.csr.as_deref(), sid.as_str(), now, expires_at, ttl)?
            }
            CredentialKind::ApiKey => issue::api_key(&id, now, expires_at),
            CredentialKind::PostgresLogin => {
                let system = req
                    .system
                    .clone()
                    .ok_or_else(|| EngineError::invalid("system", "a dynamic login needs a system"))?;
                let def = policy
                    .systems
                    .get(&system)
                    .ok_or_else(|| EngineError::invalid("system", format!("no system `{system}`")))?;
                if def.kind != tenure_policy::SystemType::Postgres {
                    return Err(EngineError::invalid(
                        "system",
                        format!("`{system}` is a {} system; dynamic logins are for postgres", def.kind.as_str()),
                    ));
                }
                // The identity's groups in that system: the login acts with its holder's rights.
                let groups: Vec<String> = self
                    .store
                    .read()?
                    .grants(nhi.id)?
                    .into_iter()
                    .filter(|g| g.system == system && g.state.is_wanted())
                    .filter_map(|g| g.entitlement.split_once('/').map(|(_, n)| n.to_owned()))
                    .collect();
                let minted = issue::dynamic_login(nhi.reference.external_id(), now, expires_at);
                let name = minted.name.clone().unwrap_or_default();
                row.system = Some(system.clone());
                username = Some(name.clone());
                pending = Some(PendingLogin {
                    credential: id.clone(),
                    system,
                    login: tenure_connectors::DynamicLogin {
                        name,
                        password: minted.secret.clone(),
                        valid_until: ts(expires_at),
                        groups,
                        comment: format!("tenure credential {id} of {}", nhi.reference),
                    },
                });
                minted
            }
        };
        row.fingerprint = minted.fingerprint.clone();
        row.name = minted.name.clone();
        // The recorded lifetime is the credential's own (a certificate's notBefore is backdated),
        // so a rotation keeps it whole.
        row.issued_at = minted.valid_from;
        row.expires_at = minted.valid_until;
        let (secret, bundle) = (minted.secret, minted.bundle);
        // Recorded in a shared transaction (group commit): concurrent issuers share one fsync.
        // A leaver (or suspension) may have committed since the check above: nothing signed
        // leaves then.
        let (issued, subject, actor) = (row.clone(), nhi.reference.to_string(), by.actor());
        let (label, version, replaces, nhi_id) =
            (req.identity.clone(), version.to_owned(), req.replaces.clone(), nhi.id);
        self.commits.run(
            self.store.as_ref(),
            Box::new(move |tx| {
                let state = tx.identity_by_id(nhi_id)?.map_or(LifecycleState::Closed, |i| i.state);
                if state != LifecycleState::Active {
                    return Ok(Err(not_active(&label, state)));
                }
                let prev = match &replaces {
                    Some(old) => match tx.credential(old)? {
                        Some(p) if p.identity_id == nhi_id => Some(p),
                        Some(_) => {
                            return Ok(Err(EngineError::invalid(
                                "credential",
                                format!("{old} is not a credential of `{label}`"),
                            )));
                        }
                        None => return Ok(Err(EngineError::NotFound(format!("credential {old}")))),
                    },
                    None => None,
                };
                tx.insert_credential(&issued)?;
                let stamp = Stamp::new(now, &actor, &version);
                let event = CredentialIssued {
                    credential: issued.id.clone(),
                    kind: issued.kind,
                    fingerprint: issued.fingerprint.clone(),
                    spiffe_id: issued.spiffe_id.clone(),
                    audience: issued.audience.clone(),
                    system: issued.system.clone(),
                    name: issued.name.clone(),
                    purpose: issued.purpose.clone(),
                    owner: issued.owner.clone(),
                    expires_at: ts(issued.expires_at),
                    replaces: issued.replaces.clone(),
                };
                record(tx, stamp, &subject, LedgerEvent::CredentialIssued(event))?;
                if let Some(prev) = prev
                    && tx.revoke_credential(&prev.id, now, "rotated")?
                {
                    let event = CredentialRevoked {
                        credential: prev.id,
                        kind: prev.kind,
                        fingerprint: prev.fingerprint,
                        reason: "rotated".into(),
                        replaced_by: Some(issued.id.clone()),
                    };
                    record(tx, stamp, &subject, LedgerEvent::CredentialRevoked(event))?;
                    tx.enqueue(&NewJob {
                        kind: JobKind::Credentials,
                        identity_id: nhi_id,
                        system: BROKER,
                        run_at: now,
                        request_id: crate::telemetry::request_id().as_deref(),
                    })?;
                }
                Ok(Ok(()))
            }),
        )?;
        let v = view_of(&row, nhi.reference.to_string(), now);
        Ok((IssuedCredentialView { credential: v, secret, username, bundle }, pending))
    }

    /// A dynamic login could not be created: revoke its credential (the worker then makes sure
    /// no half-made login is left).
    pub fn login_failed(&self, credential: &str, error: &str) -> Result<()> {
        self.revoke_credential(
            credential,
            Some(&format!("provisioning failed: {error}")),
            &Principal::operator(ACTOR_ENGINE),
        )
        .map(|_| ())
    }

    /// Rotate a credential: a new one like it (an X.509-SVID needs a new CSR); the old one is
    /// revoked in the same transaction.
    pub fn rotation_of(&self, id: &str, csr: Option<String>) -> Result<CredentialRequest> {
        let tx = self.store.read()?;
        let c = tx.credential(id)?.ok_or_else(|| EngineError::NotFound(format!("credential {id}")))?;
        if c.revoked_at.is_some() {
            return Err(EngineError::Conflict(format!("credential {id} is revoked; issue a new one")));
        }
        let who = tx.identity_by_id(c.identity_id)?.ok_or_else(|| EngineError::NotFound(format!("credential {id}")))?;
        if c.kind == CredentialKind::X509Svid && csr.is_none() {
            return Err(EngineError::invalid("csr", "rotating an X.509-SVID needs a new CSR"));
        }
        Ok(CredentialRequest {
            identity: who.reference.to_string(),
            kind: c.kind,
            ttl: Some(c.expires_at - c.issued_at),
            audience: c.audience.clone(),
            csr,
            system: c.system.clone(),
            purpose: Some(c.purpose.clone()),
            replaces: Some(c.id.clone()),
        })
    }

    /// Revoke one credential (by id); it stops working at once, and the worker verifies it.
    /// Revoke one credential (by id), for `reason` ("revoked on request" when none is given).
    pub fn revoke_credential(&self, id: &str, reason: Option<&str>, by: &Principal) -> Result<CredentialView> {
        let reason = reason.unwrap_or("revoked on request");
        let version = self.current_policy()?.version.to_string();
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let c = tx.credential(id)?.ok_or_else(|| EngineError::NotFound(format!("credential {id}")))?;
        let who = tx.identity_by_id(c.identity_id)?.ok_or_else(|| EngineError::NotFound(format!("credential {id}")))?;
        if !may_act_for(by, &who, true) {
            // Not even whether it exists.
            return Err(EngineError::NotFound(format!("credential {id}")));
        }
        if !crate::steps::credentials::revoke_recorded(
            tx.as_mut(),
            &c,
            &who.reference.to_string(),
            &by.actor(),
            &version,
            reason,
            now,
        )? {
            return Err(EngineError::Conflict(format!("credential {id} is already revoked")));
        }
        tx.enqueue(&NewJob {
            kind: JobKind::Credentials,
            identity_id: who.id,
            system: BROKER,
            run_at: now,
            request_id: crate::telemetry::request_id().as_deref(),
        })?;
        let c = tx.credential(id)?.ok_or_else(|| EngineError::NotFound(format!("credential {id}")))?;
        let v = view(tx.as_ref(), &c, now)?;
        tx.commit()?;
        Ok(v)
    }

    /// RFC 7009: revoke the credential a token is. Unknown tokens, and tokens of identities the
    /// caller may not act for, are ignored (the RFC answers 200 either way).
    pub fn revoke_token_value(&self, token: &str, by: &Principal) -> Result<()> {
        let found = self.store.read()?.credential_by_fingerprint(&fingerprint_of(token))?;
        match found {
            Some(c) if c.revoked_at.is_none() => {
                match self.revoke_credential(&c.id, Some("revoked by its holder or owner"), by) {
                    Ok(_) | Err(EngineError::NotFound(_) | EngineError::Conflict(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        }
    }

    /// RFC 7662 introspection of a presented token (a JWT-SVID, an API key, a dynamic login's
    /// password, or an X.509-SVID in PEM).
    pub fn introspect(&self, token: &str) -> Result<Introspection> {
        self.introspect_fingerprint(&fingerprint_of(token))
    }

    pub fn introspect_fingerprint(&self, fingerprint: &str) -> Result<Introspection> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        let c = tx.credential_by_fingerprint(fingerprint)?;
        let identity = match &c {
            Some(c) => tx.identity_by_id(c.identity_id)?,
            None => None,
        };
        // From the same snapshot: no second read transaction on this hot path.
        let issuer = self.policy_in(tx.as_ref())?.credentials.as_ref().map(CredentialRules::issuer);
        Ok(introspect::introspect(c.as_ref(), identity.as_ref(), now, issuer.as_deref()))
    }

    /// A workload authenticating with a credential tenure issued it (an API key or a
    /// JWT-SVID): good while introspection says active. It holds no roles.
    pub(crate) fn authenticate_credential(&self, bearer: &str) -> Result<Principal> {
        let unauth = |m: &str| EngineError::Unauthenticated(m.to_owned());
        let now = self.clock.now();
        let tx = self.store.read()?;
        let c = tx
            .credential_by_fingerprint(&fingerprint_of(bearer))?
            .filter(|c| matches!(c.kind, CredentialKind::ApiKey | CredentialKind::JwtSvid))
            .ok_or_else(|| unauth("unknown or revoked credential"))?;
        if c.kind == CredentialKind::JwtSvid {
            // As any relying party must (SPIFFE JWT-SVID §5.2): the signature, the expiry, and an
            // audience naming tenure itself. A JWT-SVID minted for `payments` is no login here.
            let policy = self.policy_in(tx.as_ref())?;
            let audience = rules(&policy)?.issuer();
            let keys = publish::jwks(&tx.signing_keys()?).values();
            tenure_svid::jwt::verify(bearer, &keys, now.unix_timestamp(), Some(&audience))
                .map_err(|e| unauth(&format!("JWT-SVID refused: {e}")))?;
        }
        credential_principal(tx.as_ref(), c, now)
    }

    /// A workload authenticating with the X.509-SVID tenure issued it, presented as its TLS
    /// client certificate (DER; the TLS layer verified its chain to tenure's CA): good while
    /// the credential is active, so revoking it shuts the workload out at once, CRL or not.
    pub fn authenticate_certificate(&self, der: &[u8]) -> Result<Principal> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        let c = tx
            .credential_by_fingerprint(&tenure_svid::fingerprint(der))?
            .filter(|c| c.kind == CredentialKind::X509Svid)
            .ok_or_else(|| EngineError::Unauthenticated("unknown or revoked client certificate".into()))?;
        credential_principal(tx.as_ref(), c, now)
    }

    /// One credential as it stands (never its secret).
    pub fn credential_view(&self, id: &str) -> Result<CredentialView> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        let c = tx.credential(id)?.ok_or_else(|| EngineError::NotFound(format!("credential `{id}`")))?;
        view(tx.as_ref(), &c, now)
    }

    /// The JWKS: every JWT signing key not yet removed.
    pub fn jwks(&self) -> Result<Jwks> {
        Ok(publish::jwks(&self.store.read()?.signing_keys()?))
    }

    /// The X.509 trust bundle (PEM): the CA certificates still trusted.
    pub fn trust_bundle(&self) -> Result<String> {
        let policy = self.current_policy()?;
        let rules = rules(&policy)?;
        self.ca(rules, policy.version.as_str())?;
        Ok(publish::trust_bundle(&self.store.read()?.signing_keys()?))
    }

    /// The CRL (PEM) of revoked, unexpired X.509-SVIDs, signed by the current CA; valid ten
    /// minutes, fetched again by relying parties.
    pub fn crl(&self) -> Result<String> {
        let policy = self.current_policy()?;
        let ca = self.ca(rules(&policy)?, policy.version.as_str())?;
        let now = self.clock.now();
        Ok(publish::crl(&ca, &self.store.read()?.revoked_certificates(now)?, now)?)
    }

    /// The OIDC discovery document. Its `issuer` is the configured one (policy `issuer`, else
    /// `spiffe://TRUST_DOMAIN`), and its endpoints hang off the server's configured public URL
    /// ([`Engine::set_public_url`]): nothing in it comes from a request, so a caching proxy
    /// cannot be made to serve a poisoned copy.
    pub fn discovery(&self) -> Result<Discovery> {
        let policy = self.current_policy()?;
        let rules = rules(&policy)?;
        let base = self.public_url.get().cloned().ok_or_else(|| {
            EngineError::Refused("the server's public URL is not configured (`serve --public-url`)".into())
        })?;
        Ok(publish::discovery(rules.issuer(), &base, &rules.trust_domain))
    }

    /// Revoked credentials of an identity still to verify, for the worker.
    pub fn credentials_to_verify(&self, identity_id: i64) -> Result<Vec<CredentialRow>> {
        Ok(self.store.read()?.credentials_to_verify(identity_id)?)
    }

    /// Verify a revoked JWT-SVID, API key or X.509-SVID the way a relying party would:
    /// introspection must say inactive, and a certificate must be on the CRL (or expired).
    pub fn verify_revoked(&self, creds: &[CredentialRow]) -> Result<Vec<Verification>> {
        let now = self.clock.now();
        // The serials the served CRL lists, built once for all the certificates checked.
        let mut crl: Option<Vec<Vec<u8>>> = None;
        let mut out = Vec::with_capacity(creds.len());
        for c in creds {
            let seen = self.introspect_fingerprint(&c.fingerprint)?;
            let inactive = !seen.active;
            let answer = crate::encode(&seen)?;
            let (ok, evidence) = match c.kind {
                CredentialKind::X509Svid if c.expires_at > now => {
                    let serials = match &mut crl {
                        Some(s) => s,
                        None => crl.insert(
                            tenure_svid::x509::crl_serials(&self.crl()?).map_err(tenure_broker::BrokerError::from)?,
                        ),
                    };
                    let listed =
                        c.name.as_deref().and_then(|n| hex::decode(n).ok()).is_some_and(|s| serials.contains(&s));
                    let entries = serials.len();
                    let evidence =
                        CredentialCheck::Crl { introspection: answer, crl_listed: listed, crl_entries: entries };
                    (inactive && listed, evidence)
                }
                CredentialKind::X509Svid => {
                    (inactive, CredentialCheck::Expired { introspection: answer, expired_at: ts(c.expires_at) })
                }
                _ => (inactive, CredentialCheck::Introspection { introspection: answer }),
            };
            out.push(Verification { credential: c.id.clone(), ok, evidence });
        }
        Ok(out)
    }

    /// The clock's part: drop dynamic logins whose time is up (revoked as `expired`, then the
    /// worker drops and verifies them), and stop publishing retired JWT keys whose last token
    /// has expired. Returns how many things it did.
    pub(crate) fn expire_credentials(&self, policy: &Bundle) -> Result<usize> {
        let now = self.clock.now();
        let version = policy.version.as_str();
        let mut done = 0;
        let (due, mut keys) = {
            let tx = self.store.read()?;
            (tx.logins_expired(now)?, tx.signing_keys()?)
        };
        // The JWT signing key's scheduled rotation (issuing also rotates a key past its time).
        if let (Some(rules), Some(_)) = (&policy.credentials, self.keys.get())
            && keys::current(&keys, "jwt").is_some_and(|k| k.created_at + rules.signing_key_rotation <= now)
        {
            self.rotate_jwt_key(version, "scheduled", ACTOR_ENGINE, Some(rules.signing_key_rotation))?;
            done += 1;
            keys = self.store.read()?.signing_keys()?;
        }
        if due.is_empty() && keys.iter().all(|k| k.retired_at.is_none() || k.removed_at.is_some()) {
            return Ok(done);
        }
        let mut tx = self.store.write()?;
        for c in tx.logins_expired(now)? {
            let subject = tx.identity_by_id(c.identity_id)?.map(|i| i.reference.to_string()).unwrap_or_default();
            if crate::steps::credentials::revoke_recorded(
                tx.as_mut(),
                &c,
                &subject,
                ACTOR_ENGINE,
                version,
                "expired",
                now,
            )? {
                tx.enqueue(&NewJob {
                    kind: JobKind::Credentials,
                    identity_id: c.identity_id,
                    system: BROKER,
                    run_at: now,
                    request_id: crate::telemetry::request_id().as_deref(),
                })?;
                done += 1;
            }
        }
        for k in keys.iter().filter(|k| k.usage == "jwt" && k.retired_at.is_some() && k.removed_at.is_none()) {
            let last = tx.last_expiry_signed_by(&k.kid)?;
            if last.is_none_or(|l| l <= now) && tx.remove_signing_key(&k.kid, now)? {
                let event = KeyRemoved { usage: "jwt".into(), kid: k.kid.clone(), last_token_expired: last.map(ts) };
                record(tx.as_mut(), Stamp::engine(now, version), "broker", LedgerEvent::KeyRemoved(event))?;
                done += 1;
            }
        }
        tx.commit()?;
        Ok(done)
    }
}

/// The workload holding credential `c`, if it may act now: the credential unrevoked and
/// unexpired, its identity active.
fn credential_principal(
    tx: &dyn tenure_store::ReadTx,
    c: tenure_store::CredentialRow,
    now: time::OffsetDateTime,
) -> Result<Principal> {
    let unauth = |m: &str| EngineError::Unauthenticated(m.to_owned());
    let who = tx.identity_by_id(c.identity_id)?.ok_or_else(|| unauth("unknown or revoked credential"))?;
    if c.revoked_at.is_some() {
        return Err(unauth("unknown or revoked credential"));
    }
    if c.expires_at <= now {
        return Err(unauth("credential expired"));
    }
    if who.state != LifecycleState::Active || crate::expiry::is_expired(&who, now) {
        return Err(unauth("the credential's identity is not active"));
    }
    Ok(Principal {
        identity: who.reference,
        roles: Default::default(),
        via: tenure_model::Via::Credential { id: c.id, expires_at: c.expires_at },
        on_behalf_of: vec![],
    })
}
