//! A ledger entry: one decision or change, as compact JSON. The stored and exported bytes are
//! exactly the bytes hashed into the tree. Each entry carries its position (`seq`, from 0) and
//! the leaf hash of the entry before it (`prev`; 64 zeros for the first), so a changed byte is
//! pinned to one entry, not only to "the root differs".

use crate::merkle::{Hash, leaf_hash};
use serde::{Deserialize, Serialize};

/// Bytes that are not a ledger entry (the serde message says where).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EntryError(#[source] serde_json::Error);

/// `prev` of the first entry.
pub const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub prev: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub policy_version: String,
    /// What happened; objects' keys are sorted, so the bytes are reproducible.
    pub detail: serde_json::Value,
    /// The API request (its `X-Request-Id`) this entry came of, directly or through a job it
    /// caused. Absent otherwise, so entries written before it existed keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Entry {
    /// The bytes that are stored, exported and hashed (fields in declaration order, compact).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Keys are sorted here rather than trusted to `serde_json::Map`: another crate in the
        // build (cedar-policy) turns on serde_json's `preserve_order`, which keeps insertion order.
        // Written from borrowed fields: nothing of the entry is copied on the way.
        let canonical = EntryBytes {
            seq: self.seq,
            prev: &self.prev,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            policy_version: &self.policy_version,
            detail: Sorted(&self.detail),
            request_id: self.request_id.as_deref(),
        };
        // Serializing plain strings, integers and a `Value` cannot fail.
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        serde_json::from_slice(bytes).map_err(EntryError)
    }

    pub fn leaf_hash(bytes: &[u8]) -> Hash {
        leaf_hash(bytes)
    }
}

/// [`Entry`] as its bytes are written: the same fields in the same order, borrowed.
#[derive(Serialize)]
struct EntryBytes<'a> {
    seq: u64,
    prev: &'a str,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    policy_version: &'a str,
    detail: Sorted<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// A JSON value serialized with every object's keys in byte order, at every depth, without
/// copying it (what [`sorted`] gives, written directly).
struct Sorted<'a>(&'a serde_json::Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &Sorted(v))?;
                }
                map.end()
            }
            serde_json::Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// `v` serialized with every object's keys in byte order: the bytes a signature covers.
pub fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

/// `v` with every object's keys in byte order, at every depth.
pub fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes written from borrowed fields are the bytes of the entry with its detail
    /// sorted, serialized whole (how they were written before, and how verifiers read them).
    #[test]
    fn borrowed_bytes_are_the_canonical_bytes() {
        let detail: serde_json::Value = serde_json::from_str(
            r#"{"z": [{"b": 1, "a": {"y": null, "x": "é\"q"}}, 2.5], "a": true, "m": {"k": [], "c": {}}}"#,
        )
        .unwrap();
        for request_id in [None, Some("req-1".to_owned())] {
            let e = Entry {
                seq: 7,
                prev: ZERO.into(),
                at: "2026-12-03T10:00:00Z".into(),
                actor: "operator:x".into(),
                action: "decided".into(),
                subject: "hr:E1".into(),
                policy_version: "v1".into(),
                detail: detail.clone(),
                request_id,
            };
            let whole = serde_json::to_vec(&Entry { detail: sorted(&e.detail), ..e.clone() }).unwrap();
            assert_eq!(String::from_utf8(e.to_bytes()).unwrap(), String::from_utf8(whole).unwrap());
        }
    }

    #[test]
    fn bytes_round_trip_with_sorted_detail_keys() {
        let e = Entry {
            seq: 0,
            prev: ZERO.into(),
            at: "2026-11-01T09:00:00Z".into(),
            actor: "api".into(),
            action: "identity.joined".into(),
            subject: "hr:E1".into(),
            policy_version: "ab".into(),
            detail: serde_json::json!({"z": 1, "a": {"y": 2, "b": 3}}),
            request_id: None,
        };
        let b = e.to_bytes();
        assert_eq!(
            String::from_utf8(b.clone()).unwrap(),
            r#"{"seq":0,"prev":"0000000000000000000000000000000000000000000000000000000000000000","at":"2026-11-01T09:00:00Z","actor":"api","action":"identity.joined","subject":"hr:E1","policy_version":"ab","detail":{"a":{"b":3,"y":2},"z":1}}"#
        );
        assert_eq!(Entry::parse(&b).unwrap(), e);
    }
}
