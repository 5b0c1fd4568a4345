//! The broker's private keys. A [`KeyStore`] keeps their PEM by name, never overwriting one;
//! [`FileKeyStore`] is a directory (0700, files 0600, synced). [`KeyRing`] caches the signers
//! and the CA made from them and serialises making new keys, so two requests never make two
//! current keys. The public halves and the schedule are the engine's to record.

use crate::{BrokerError, CA_LIFETIME, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tenure_store::SigningKeyRow;
use tenure_svid::jwt::JwtSigner;
use tenure_svid::x509::Ca;
use time::OffsetDateTime;

/// Where private keys live.
pub trait KeyStore: Send + Sync {
    /// Keep `pem` under `name`; an existing key is never replaced (an error instead).
    fn write_private(&self, name: &str, pem: &str) -> Result<()>;
    fn read_private(&self, name: &str) -> Result<String>;
}

/// Private keys as files in one directory.
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl KeyStore for FileKeyStore {
    fn write_private(&self, name: &str, pem: &str) -> Result<()> {
        let io = |e: std::io::Error| BrokerError::KeyStore(format!("key directory `{}`: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(self.dir.join(name)).map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    fn read_private(&self, name: &str) -> Result<String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| BrokerError::KeyStore(format!("signing key `{}`: {e}", path.display())))
    }
}

/// The key ring: a key store, and the signers and CA already loaded from it.
pub struct KeyRing {
    store: Box<dyn KeyStore>,
    jwt: Mutex<HashMap<String, Arc<JwtSigner>>>,
    ca: Mutex<Option<(String, Arc<Ca>)>>,
    creating: Mutex<()>,
}

/// A new key, its private half already kept: what the engine records.
pub struct NewKey {
    /// `jwt` or `ca`.
    pub usage: &'static str,
    pub kid: String,
    /// The public JWK (JSON) of a JWT key; the certificate (PEM) of a CA.
    pub public: String,
}

/// The signing key of `usage` (`jwt` or `ca`) in use, among `keys` (oldest first).
pub fn current<'k>(keys: &'k [SigningKeyRow], usage: &str) -> Option<&'k SigningKeyRow> {
    keys.iter().rev().find(|k| k.usage == usage && k.retired_at.is_none())
}

/// Whether the CA `k` still has long enough to run at `now`.
pub fn ca_fresh(k: &SigningKeyRow, now: OffsetDateTime) -> bool {
    k.created_at + CA_LIFETIME - time::Duration::days(30) > now
}

impl KeyRing {
    pub fn new(store: Box<dyn KeyStore>) -> Self {
        Self { store, jwt: Mutex::default(), ca: Mutex::default(), creating: Mutex::default() }
    }

    /// Hold this while checking whether a key must be made and making it.
    pub fn creating(&self) -> MutexGuard<'_, ()> {
        self.creating.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The JWT signer of `kid`, from the key store the first time.
    pub fn jwt_signer(&self, kid: &str) -> Result<Arc<JwtSigner>> {
        let mut cache = self.jwt.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = cache.get(kid) {
            return Ok(s.clone());
        }
        let key = tenure_svid::key_from_pem(&self.store.read_private(&format!("jwt-{kid}.pem"))?)?;
        let signer = Arc::new(JwtSigner::new(key)?);
        if signer.kid() != kid {
            return Err(BrokerError::KeyStore(format!("key file jwt-{kid}.pem holds key {}", signer.kid())));
        }
        cache.insert(kid.to_owned(), signer.clone());
        Ok(signer)
    }

    /// The CA `kid` with its certificate, from the key store the first time.
    pub fn ca(&self, kid: &str, cert_pem: &str) -> Result<Arc<Ca>> {
        let mut cache = self.ca.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, ca)) = cache.as_ref()
            && k == kid
        {
            return Ok(ca.clone());
        }
        let ca = Arc::new(Ca::from_pem(&self.store.read_private(&format!("ca-{kid}.pem"))?, cert_pem)?);
        *cache = Some((kid.to_owned(), ca.clone()));
        Ok(ca)
    }

    /// Make a JWT signing key and keep its private half. The file comes first: a crash before
    /// the engine records it leaves an unused file, never a recorded key without its file.
    pub fn new_jwt_key(&self) -> Result<NewKey> {
        let signer = JwtSigner::new(tenure_svid::generate_key())?;
        self.store.write_private(&format!("jwt-{}.pem", signer.kid()), &tenure_svid::key_to_pem(signer.key())?)?;
        let key = NewKey { usage: "jwt", kid: signer.kid().to_owned(), public: signer.jwk()?.to_string() };
        self.jwt.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.kid.clone(), Arc::new(signer));
        Ok(key)
    }

    /// Make the CA of `trust_domain`, valid from a minute before `now` for [`CA_LIFETIME`].
    pub fn new_ca(&self, trust_domain: &str, now: OffsetDateTime) -> Result<NewKey> {
        let start = now.unix_timestamp() - 60;
        let ca = Ca::generate(trust_domain, start, start + CA_LIFETIME.whole_seconds())?;
        let cert = ca.cert_pem()?;
        let kid = tenure_svid::fingerprint(cert.as_bytes()).get(..16).unwrap_or_default().to_owned();
        self.store.write_private(&format!("ca-{kid}.pem"), &tenure_svid::key_to_pem(ca.key())?)?;
        *self.ca.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((kid.clone(), Arc::new(ca)));
        Ok(NewKey { usage: "ca", kid, public: cert })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_is_kept_once_and_read_back_by_a_fresh_ring() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(Box::new(FileKeyStore::new(dir.path().join("keys"))));
        let jwt = ring.new_jwt_key().unwrap();
        let ca = ring.new_ca("example.org", time::macros::datetime!(2026-11-01 09:00 UTC)).unwrap();
        let again = KeyRing::new(Box::new(FileKeyStore::new(dir.path().join("keys"))));
        assert_eq!(again.jwt_signer(&jwt.kid).unwrap().kid(), jwt.kid);
        assert_eq!(again.ca(&ca.kid, &ca.public).unwrap().cert_pem().unwrap(), ca.public);
        let store = FileKeyStore::new(dir.path().join("keys"));
        assert!(store.write_private(&format!("jwt-{}.pem", jwt.kid), "x").is_err(), "a key was overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys")).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
    }
}
