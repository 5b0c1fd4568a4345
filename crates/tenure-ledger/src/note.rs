//! Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint):
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key hash[4] ‖ Ed25519 signature[64])>
//! ```
//!
//! The signature covers the note text up to and including the newline after the root. The key
//! hash is the first 4 bytes of `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)`; the verifier
//! key is written `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.

use crate::merkle::Hash;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// A signed statement: the log named `origin` had `size` entries with this `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The signed body.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("LG0001 malformed verifier key: {0}")]
    BadKey(String),
    #[error("LG0002 malformed checkpoint: {0}")]
    Malformed(String),
    #[error("LG0003 no signature by `{0}` verifies")]
    BadSignature(String),
    #[error("LG0004 checkpoint is for log `{found}`, expected `{expected}`")]
    WrongOrigin { expected: String, found: String },
}

fn key_hash(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public);
    let d = h.finalize();
    let mut out = [0u8; 4];
    out.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    out
}

/// The signing side (the seed is the secret; callers keep it out of logs and databases).
pub struct Signer {
    name: String,
    key: SigningKey,
}

impl Signer {
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        Self { name: name.to_owned(), key: SigningKey::from_bytes(seed) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> Verifier {
        let public = self.key.verifying_key();
        Verifier { name: self.name.clone(), hash: key_hash(&self.name, public.as_bytes()), key: public }
    }

    /// A detached Ed25519 signature over `context`, a newline and `message` (the context keeps
    /// a signature made for one purpose from being valid for another), base64.
    pub fn sign_message(&self, context: &str, message: &[u8]) -> String {
        let mut m = Vec::with_capacity(context.len() + 1 + message.len());
        m.extend_from_slice(context.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(message);
        B64.encode(self.key.sign(&m).to_bytes())
    }

    /// The signed note for `c`.
    pub fn sign(&self, c: &Checkpoint) -> String {
        let body = c.body();
        let sig = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&key_hash(&self.name, self.key.verifying_key().as_bytes()));
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{DASH}{} {}\n", self.name, B64.encode(blob))
    }
}

/// The public side: anyone checks notes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: [u8; 4],
    key: VerifyingKey,
}

impl Verifier {
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::BadKey(m.to_owned());
        // The base64 key may itself contain `+`: only the first two separate fields.
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected `name+hexhash+base64key`"));
        };
        let key = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        let (Some(&ED25519), Some(public)) = (key.first(), key.get(1..)) else {
            return Err(bad("not an Ed25519 key (type byte 0x01)"));
        };
        let public: [u8; 32] = public.try_into().map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 point"))?;
        let computed = key_hash(name, &public);
        if hex::encode(computed) != hash {
            return Err(bad("key hash does not match name and key"));
        }
        Ok(Self { name: name.to_owned(), hash: computed, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Check a signature made by [`Signer::sign_message`].
    pub fn verify_message(&self, context: &str, message: &[u8], signature: &str) -> bool {
        let Some(sig) = B64.decode(signature).ok().and_then(|b| Signature::from_slice(&b).ok()) else {
            return false;
        };
        let mut m = Vec::with_capacity(context.len() + 1 + message.len());
        m.extend_from_slice(context.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(message);
        self.key.verify_strict(&m, &sig).is_ok()
    }

    /// Check a note's signature and parse its checkpoint; the origin must be the key's name.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_owned());
        let split = note.find("\n\n").ok_or_else(|| bad("no blank line before the signatures"))?;
        let (body, sigs) = note.split_at(split + 1);
        let sigs = sigs.strip_prefix('\n').unwrap_or(sigs);
        let mut verified = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(DASH) else { return Err(bad("signature line must start with `— `")) };
            let Some((name, blob)) = rest.split_once(' ') else { return Err(bad("signature line has no signature")) };
            if name != self.name {
                continue;
            }
            let blob = B64.decode(blob).map_err(|_| bad("signature is not base64"))?;
            let (Some(hash), Some(sig)) = (blob.get(..4), blob.get(4..)) else { continue };
            if hash != self.hash {
                continue;
            }
            let Ok(sig) = Signature::from_slice(sig) else { continue };
            if self.key.verify_strict(body.as_bytes(), &sig).is_ok() {
                verified = true;
            }
        }
        if !verified {
            return Err(NoteError::BadSignature(self.name.clone()));
        }
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(bad("a checkpoint has origin, size and root lines"));
        };
        if origin != self.name {
            return Err(NoteError::WrongOrigin { expected: self.name.clone(), found: origin.to_owned() });
        }
        let size: u64 = size.parse().map_err(|_| bad("tree size is not a number"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root is not a base64 SHA-256 hash"))?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = vec![ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex::encode(self.hash), B64.encode(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_sign_verify_and_refuse_changes() {
        let s = Signer::from_seed("tenure.test/ledger", &[7; 32]);
        let v = Verifier::parse(&s.verifier().to_string()).unwrap();
        let c = Checkpoint { origin: "tenure.test/ledger".into(), size: 42, root: [9; 32] };
        let note = s.sign(&c);
        assert!(note.starts_with("tenure.test/ledger\n42\nCQkJ"));
        assert!(note.contains("\n\n\u{2014} tenure.test/ledger "));
        assert_eq!(v.open(&note).unwrap(), c);
        let forged = note.replace("\n42\n", "\n43\n");
        assert_eq!(v.open(&forged).unwrap_err(), NoteError::BadSignature("tenure.test/ledger".into()));
        let other = Signer::from_seed("tenure.test/ledger", &[8; 32]).sign(&c);
        assert!(v.open(&other).is_err());
        assert!(Verifier::parse("x+00000000+AQ==").is_err());
        // Keys whose base64 holds `+` parse (found by hand: such keys were refused).
        for seed in 0..64u8 {
            let s = Signer::from_seed("o", &[seed; 32]);
            assert_eq!(Verifier::parse(&s.verifier().to_string()).unwrap(), s.verifier());
        }
    }
}
