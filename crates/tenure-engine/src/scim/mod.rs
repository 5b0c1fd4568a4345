//! The SCIM 2.0 service provider sources push users to (RFC 7643/7644, `/scim/v2`), as Okta
//! and Entra provision any SCIM application. Each call is a lifecycle event of the source whose
//! `source:NAME` token made it: a create is a joiner, a change a mover (`active: false` the
//! policy's choice of leaver or suspension, `true` again a resumption), a DELETE a leaver.
//!
//! A resource is flattened to a record (`userName`, `name.givenName`, `emails.value` of the
//! primary email, `enterprise.department`, …) and mapped to the identity by the source's
//! mapping (`docs/sources.md`), or by [`default_mapping`]. The identity's external id is fixed
//! at creation (the mapped `userName` by default); a later rename changes the resource, not the
//! identity. Each call runs in one write transaction: the events through ingest's checks, the
//! stored resource and its version (the ETag) commit together, or nothing does.

pub mod filter;
pub mod patch;
pub mod schema;

use crate::ingest::{Applied, Bad, Event};
use crate::parse::Position;
use crate::{Engine, EngineError};
use filter::{Filter, member};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tenure_model::{IdentityRef, LifecycleState, Principal, SuspendedBy, rfc3339};
use tenure_policy::mapping::{Cells, Mapped, Mapping, SourceRecord, Status};
use tenure_proto::{EventType, EventWire};
use tenure_store::{ScimRow, WriteTx};

/// Why a SCIM call fails, as RFC 7644 §3.12 answers it.
#[derive(Debug)]
pub enum ScimError {
    /// 400, with a `scimType`.
    Invalid {
        scim_type: &'static str,
        detail: String,
    },
    NotFound(String),
    /// 409.
    Conflict {
        scim_type: Option<&'static str>,
        detail: String,
    },
    /// 412: `If-Match` names another version.
    Precondition(String),
    Forbidden(String),
    Engine(EngineError),
}

impl From<EngineError> for ScimError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(errors) => Self::Invalid {
                scim_type: "invalidValue",
                detail: errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "),
            },
            EngineError::Invalid { field, message } => {
                Self::Invalid { scim_type: "invalidValue", detail: format!("{field}: {message}") }
            }
            EngineError::NotFound(r) => Self::NotFound(r),
            EngineError::Conflict(m) => Self::Conflict { scim_type: None, detail: m },
            EngineError::Forbidden(m) => Self::Forbidden(m),
            other => Self::Engine(other),
        }
    }
}

impl From<tenure_store::StoreError> for ScimError {
    fn from(e: tenure_store::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

type Result<T> = std::result::Result<T, ScimError>;

fn invalid<T>(scim_type: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(ScimError::Invalid { scim_type, detail: detail.into() })
}

/// A resource as answered, with its version for the `ETag` header.
#[derive(Debug, Clone)]
pub struct Answer {
    pub resource: Value,
    pub etag: String,
}

/// `GET /Users` parameters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// The mapping a source without `[sources.NAME.mapping]` gets: `userName` is the external id,
/// `displayName` (or the name's parts) the name, `active: false` suspends, and `title`, the
/// enterprise `department` (lower-cased), `userType` (as `employment`, default `employee`) and
/// the enterprise manager are attributes.
pub fn default_mapping(kind: tenure_model::IdentityKind) -> Mapping {
    use tenure_policy::mapping::{AttributeRule, Transform};
    let rule = |c: &str, transform, default: Option<&str>| AttributeRule {
        cells: Cells::new(c),
        transform,
        values: BTreeMap::new(),
        default: default.map(str::to_owned),
    };
    Mapping {
        external_id: Cells::new("userName"),
        kind: Some(kind),
        kind_column: None,
        kind_values: BTreeMap::new(),
        name: Some(Cells::new("$name")),
        manager: Some(Cells::new("$manager")),
        owner: None,
        purpose: None,
        expires_at: None,
        date_format: None,
        status: Some(Cells::new("active")),
        active: vec!["true".into()],
        leave: vec![],
        suspend: vec!["false".into()],
        attributes: BTreeMap::from([
            ("title".to_owned(), rule("title", Transform::None, None)),
            ("department".to_owned(), rule("enterprise.department", Transform::Lowercase, None)),
            ("employment".to_owned(), rule("userType", Transform::Lowercase, Some("employee"))),
        ]),
        snapshot_max_leavers: 10,
        snapshot_max_leavers_percent: 20,
    }
}

/// A resource as a record for its mapping (see the module docs).
fn flatten(resource: &Value) -> SourceRecord {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    fn walk(prefix: &str, v: &Value, out: &mut SourceRecord) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, v, out);
                }
            }
            Value::Array(items) => {
                // The primary value of a multi-valued attribute, or its first.
                let pick = items.iter().find(|i| member(i, "primary") == Some(&Value::Bool(true))).or(items.first());
                if let Some(p) = pick {
                    walk(prefix, p, out);
                }
            }
            other => {
                if let Some(s) = scalar(other) {
                    out.insert(prefix.to_owned(), s);
                }
            }
        }
    }
    let mut out = SourceRecord::new();
    if let Value::Object(o) = resource {
        for (k, v) in o {
            if k.eq_ignore_ascii_case(schema::ENTERPRISE) {
                walk("enterprise", v, &mut out);
            } else if k != "schemas" {
                walk(k, v, &mut out);
            }
        }
    }
    out.entry("active".into()).or_insert_with(|| "true".into());
    let name = out
        .get("displayName")
        .or_else(|| out.get("name.formatted"))
        .cloned()
        .or_else(|| {
            let parts: Vec<&str> =
                ["name.givenName", "name.familyName"].iter().filter_map(|k| out.get(*k).map(String::as_str)).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .or_else(|| out.get("userName").cloned());
    if let Some(n) = name {
        out.insert("$name".into(), n);
    }
    out
}

fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-Match` header allows changing `version`.
fn precondition(if_match: Option<&str>, version: i64) -> Result<()> {
    let Some(h) = if_match else { return Ok(()) };
    let ok = h
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == version.to_string());
    if ok {
        Ok(())
    } else {
        Err(ScimError::Precondition(format!("the resource is at version {}, not {h}", etag(version))))
    }
}

/// The resource as answered: its attributes, `id`, `schemas` and `meta`.
fn render(row: &ScimRow, base: &str) -> Value {
    let mut r = row.resource.clone();
    if let Value::Object(o) = &mut r {
        o.insert("id".into(), Value::String(row.id.clone()));
        let mut schemas = vec![Value::String(filter::CORE_USER.into())];
        if o.keys().any(|k| k.eq_ignore_ascii_case(schema::ENTERPRISE)) {
            schemas.push(Value::String(schema::ENTERPRISE.into()));
        }
        o.insert("schemas".into(), Value::Array(schemas));
        o.insert(
            "meta".into(),
            json!({
                "resourceType": "User",
                "created": rfc3339(row.created_at),
                "lastModified": rfc3339(row.updated_at),
                "location": format!("{base}/Users/{}", row.id),
                "version": etag(row.version),
            }),
        );
    }
    r
}

/// Only the attributes asked for (`attributes`), or all but some (`excludedAttributes`);
/// `id` and `schemas` always.
pub fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let list =
        |s: &str| -> Vec<String> { s.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect() };
    let Value::Object(o) = resource else { return resource };
    let split = |a: &str| -> (Option<String>, String, Option<String>) {
        match filter::AttrPath::parse(a) {
            Ok(p) => (p.urn, p.attr, p.sub),
            Err(_) => (None, a.to_owned(), None),
        }
    };
    if let Some(keep) = attributes.map(list).filter(|l| !l.is_empty()) {
        let mut out = Map::new();
        for (k, v) in &o {
            if k == "id" || k == "schemas" {
                out.insert(k.clone(), v.clone());
            }
        }
        for a in keep {
            let (urn, attr, sub) = split(&a);
            let (src, dst): (Option<&Value>, String) = match &urn {
                Some(u) => (o.iter().find(|(k, _)| k.eq_ignore_ascii_case(u)).map(|(_, v)| v), u.clone()),
                None => (Some(&Value::Object(o.clone())), String::new()),
            };
            let Some(src) = src.cloned() else { continue };
            let Some((name, value)) =
                src.as_object().and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(&attr)))
            else {
                continue;
            };
            let picked = match (&sub, value) {
                (Some(s), Value::Object(m)) => {
                    m.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)).map(|(k, v)| json!({ k.clone(): v.clone() }))
                }
                (Some(s), Value::Array(items)) => Some(Value::Array(
                    items
                        .iter()
                        .filter_map(|i| {
                            i.as_object()?
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(s))
                                .map(|(k, v)| json!({ k.clone(): v.clone() }))
                        })
                        .collect(),
                )),
                _ => Some(value.clone()),
            };
            let Some(picked) = picked else { continue };
            let target = if dst.is_empty() {
                &mut out
            } else {
                match out.entry(dst.clone()).or_insert_with(|| Value::Object(Map::new())).as_object_mut() {
                    Some(t) => t,
                    None => continue,
                }
            };
            match (target.get_mut(name), picked) {
                (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
                (_, p) => {
                    target.insert(name.clone(), p);
                }
            }
        }
        return Value::Object(out);
    }
    let mut o = o;
    for a in excluded.map(list).unwrap_or_default() {
        let (urn, attr, sub) = split(&a);
        if urn.is_none() && (attr.eq_ignore_ascii_case("id") || attr.eq_ignore_ascii_case("schemas")) {
            continue;
        }
        let holder = match &urn {
            Some(u) => o.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(u)).and_then(|(_, v)| v.as_object_mut()),
            None => Some(&mut o),
        };
        let Some(holder) = holder else { continue };
        let Some(name) = holder.keys().find(|k| k.eq_ignore_ascii_case(&attr)).cloned() else { continue };
        match sub {
            None => {
                holder.remove(&name);
            }
            Some(s) => {
                if let Some(Value::Object(m)) = holder.get_mut(&name)
                    && let Some(k) = m.keys().find(|k| k.eq_ignore_ascii_case(&s)).cloned()
                {
                    m.remove(&k);
                }
            }
        }
    }
    Value::Object(o)
}

/// A body as stored: an object naming the core User schema, with a `userName`; the
/// attributes that are ours (`id`, `meta`, `schemas`) or never kept (`password`, the read-only
/// `groups`) dropped.
fn stored(body: Value) -> Result<(Value, String)> {
    let Value::Object(mut o) = body else { return invalid("invalidSyntax", "expected a JSON object") };
    let schemas = o.get("schemas").and_then(Value::as_array).cloned().unwrap_or_default();
    if !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(filter::CORE_USER))) {
        return invalid("invalidSyntax", format!("schemas must list `{}`", filter::CORE_USER));
    }
    for k in ["id", "meta", "schemas", "password", "groups"] {
        if let Some(key) = o.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned() {
            o.remove(&key);
        }
    }
    let Some(user_name) = o.get("userName").and_then(Value::as_str).map(str::trim).filter(|u| !u.is_empty()) else {
        return invalid("invalidValue", "userName is required");
    };
    let user_name = user_name.to_owned();
    if let Some(a) = o.get("active")
        && !a.is_boolean()
    {
        return invalid("invalidValue", "active must be true or false");
    }
    Ok((Value::Object(o), user_name))
}

impl Engine {
    /// The one source a SCIM caller pushes for (its token's only `source:NAME` role).
    pub fn scim_source(&self, caller: &Principal) -> Result<String> {
        let sources: Vec<&str> = caller.sources().collect();
        match sources.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] => Err(ScimError::Forbidden("SCIM needs a token with a source:NAME role".into())),
            many => Err(ScimError::Forbidden(format!(
                "a SCIM token pushes for one source; this one holds {}",
                many.join(", ")
            ))),
        }
    }

    /// Where the service provider is reached: the public URL and `/scim/v2`.
    pub fn scim_base_url(&self) -> String {
        format!("{}/scim/v2", self.public_url.get().map_or("", String::as_str))
    }

    pub fn scim_get(&self, source: &str, id: &str) -> Result<Answer> {
        let tx = self.store.read()?;
        let row = tx.scim_user(source, id)?.ok_or_else(|| ScimError::NotFound(format!("no User `{id}`")))?;
        Ok(Answer { resource: render(&row, &self.scim_base_url()), etag: etag(row.version) })
    }

    /// `GET /Users`: filtered, one page, in the order they were created.
    pub fn scim_list(&self, source: &str, q: &ListQuery) -> Result<Value> {
        let filter = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => {
                Some(Filter::parse(f).map_err(|e| ScimError::Invalid { scim_type: "invalidFilter", detail: e.0 })?)
            }
            None => None,
        };
        let start = usize::try_from(q.start_index.unwrap_or(1).max(1)).unwrap_or(1);
        let count = usize::try_from(q.count.unwrap_or(100).clamp(0, schema::MAX_RESULTS as i64)).unwrap_or(0);
        let base = self.scim_base_url();
        let rows = self.store.read()?.scim_users(source)?;
        let matching: Vec<Value> =
            rows.iter().map(|r| render(r, &base)).filter(|r| filter.as_ref().is_none_or(|f| f.matches(r))).collect();
        let total = matching.len();
        let page: Vec<Value> = matching
            .into_iter()
            .skip(start - 1)
            .take(count)
            .map(|r| project(r, q.attributes.as_deref(), q.excluded_attributes.as_deref()))
            .collect();
        Ok(schema::list(page, total, start))
    }

    /// `POST /Users`: a joiner.
    pub fn scim_create(&self, caller: &Principal, source: &str, body: Value) -> Result<Answer> {
        let (resource, user_name) = stored(body)?;
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        if tx.scim_user_named(source, &user_name)?.is_some() {
            return Err(ScimError::Conflict {
                scim_type: Some("uniqueness"),
                detail: format!("userName `{user_name}` is taken"),
            });
        }
        let mapped = self.scim_map(tx.as_mut(), &policy, source, &resource)?;
        let reference = IdentityRef::new(source, &mapped.external_id)
            .map_err(|e| ScimError::Invalid { scim_type: "invalidValue", detail: e.to_string() })?;
        if let Some(existing) = tx.identity(&reference)? {
            return Err(ScimError::Conflict {
                scim_type: Some("uniqueness"),
                detail: format!(
                    "`{reference}` already exists ({}); a returning person needs a new userName",
                    existing.state
                ),
            });
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        let mut kinds = vec![EventType::Joined];
        match mapped.status {
            Status::Active => {}
            Status::Suspend => kinds.push(EventType::Suspended),
            Status::Leave => kinds.push(EventType::Left),
        }
        self.scim_events(tx.as_mut(), &policy, caller, source, &id, 1, &mapped, &kinds, now)?;
        let identity = tx.identity(&reference)?.ok_or_else(|| ScimError::NotFound(reference.to_string()))?;
        let row = ScimRow {
            source: source.to_owned(),
            id,
            identity_id: identity.id,
            user_name,
            version: 1,
            resource,
            created_at: now,
            updated_at: now,
        };
        tx.put_scim_user(&row)?;
        tx.commit()?;
        Ok(Answer { resource: render(&row, &self.scim_base_url()), etag: etag(1) })
    }

    /// `PUT /Users/{id}`: the whole resource replaced; a mover, a suspension or a leaver.
    pub fn scim_replace(
        &self,
        caller: &Principal,
        source: &str,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Answer> {
        self.scim_update(caller, source, id, if_match, |_| Ok(body))
    }

    /// `PATCH /Users/{id}`.
    pub fn scim_patch(
        &self,
        caller: &Principal,
        source: &str,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Answer> {
        let request: patch::PatchRequest = serde_json::from_value(body)
            .map_err(|e| ScimError::Invalid { scim_type: "invalidSyntax", detail: format!("a PatchOp body: {e}") })?;
        self.scim_update(caller, source, id, if_match, |current| {
            let mut r = current.clone();
            if let Value::Object(o) = &mut r {
                o.insert("schemas".into(), json!([filter::CORE_USER]));
            }
            patch::apply(&mut r, &request)
                .map_err(|e| ScimError::Invalid { scim_type: e.scim_type, detail: e.detail })?;
            Ok(r)
        })
    }

    fn scim_update(
        &self,
        caller: &Principal,
        source: &str,
        id: &str,
        if_match: Option<&str>,
        new: impl FnOnce(&Value) -> Result<Value>,
    ) -> Result<Answer> {
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        let mut row = tx.scim_user(source, id)?.ok_or_else(|| ScimError::NotFound(format!("no User `{id}`")))?;
        precondition(if_match, row.version)?;
        let (resource, user_name) = stored(new(&row.resource)?)?;
        if let Some(other) = tx.scim_user_named(source, &user_name)?
            && other.id != row.id
        {
            return Err(ScimError::Conflict {
                scim_type: Some("uniqueness"),
                detail: format!("userName `{user_name}` is taken"),
            });
        }
        let identity = tx
            .identity_by_id(row.identity_id)?
            .ok_or_else(|| ScimError::NotFound(format!("the identity of User `{id}`")))?;
        let mut mapped = self.scim_map(tx.as_mut(), &policy, source, &resource)?;
        // The identity's external id is fixed at creation; a rename is an attribute change.
        mapped.external_id = identity.reference.external_id().to_owned();
        // A resource without `active` says nothing of it: the identity stays as it is.
        if member(&resource, "active").is_none() {
            mapped.status = if identity.state.has_left() {
                Status::Leave
            } else if identity.state == LifecycleState::Suspended && identity.suspended_by == Some(SuspendedBy::Source)
            {
                Status::Suspend
            } else {
                Status::Active
            };
        }
        let mut kinds = Vec::new();
        if identity.state.has_left() {
            if mapped.status != Status::Leave && mapped.status != Status::Suspend {
                return Err(ScimError::Conflict {
                    scim_type: None,
                    detail: format!("`{}` has left ({}); it cannot be reactivated", identity.reference, identity.state),
                });
            }
        } else {
            match mapped.status {
                Status::Leave => kinds.push(EventType::Left),
                Status::Suspend if identity.state.is_current() => kinds.push(EventType::Suspended),
                Status::Active
                    if identity.state == LifecycleState::Suspended
                        && identity.suspended_by == Some(SuspendedBy::Source) =>
                {
                    kinds.push(EventType::Resumed);
                }
                _ => {}
            }
            if mapped.status != Status::Leave && !crate::import::differences(&mapped, &identity).is_empty() {
                kinds.push(EventType::Changed);
            }
        }
        row.version += 1;
        self.scim_events(tx.as_mut(), &policy, caller, source, id, row.version, &mapped, &kinds, now)?;
        row.resource = resource;
        row.user_name = user_name;
        row.updated_at = now;
        tx.put_scim_user(&row)?;
        tx.commit()?;
        Ok(Answer { resource: render(&row, &self.scim_base_url()), etag: etag(row.version) })
    }

    /// `DELETE /Users/{id}`: a leaver; the resource is gone.
    pub fn scim_delete(&self, caller: &Principal, source: &str, id: &str, if_match: Option<&str>) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.store.write()?;
        let policy = self.policy_in(&*tx)?;
        let row = tx.scim_user(source, id)?.ok_or_else(|| ScimError::NotFound(format!("no User `{id}`")))?;
        precondition(if_match, row.version)?;
        let identity = tx.identity_by_id(row.identity_id)?;
        if let Some(identity) = identity.filter(|i| !i.state.has_left()) {
            let mapped = Mapped {
                external_id: identity.reference.external_id().to_owned(),
                kind: identity.kind,
                name: None,
                attributes: BTreeMap::new(),
                owner: None,
                purpose: None,
                expires_at: None,
                status: Status::Leave,
            };
            self.scim_events(
                tx.as_mut(),
                &policy,
                caller,
                source,
                id,
                row.version + 1,
                &mapped,
                &[EventType::Left],
                now,
            )?;
        }
        tx.delete_scim_user(source, id)?;
        tx.commit()?;
        Ok(())
    }

    /// A resource through the source's mapping (or [`default_mapping`]); the enterprise
    /// manager's SCIM id resolved to the external id of that User's identity.
    fn scim_map(
        &self,
        tx: &mut dyn WriteTx,
        policy: &tenure_policy::Bundle,
        source: &str,
        resource: &Value,
    ) -> Result<Mapped> {
        let def = policy.sources.get(source).ok_or_else(|| {
            ScimError::Forbidden(format!("the policy has no source `{source}`; this token's source is unknown"))
        })?;
        let mut record = flatten(resource);
        if let Some(m) = record.get("enterprise.manager.value").cloned() {
            let manager = tx.scim_user(source, &m)?.ok_or_else(|| ScimError::Invalid {
                scim_type: "invalidValue",
                detail: format!("{}:manager.value: no User `{m}`", schema::ENTERPRISE),
            })?;
            if let Some(i) = tx.identity_by_id(manager.identity_id)? {
                record.insert("$manager".into(), i.reference.external_id().to_owned());
            }
        }
        let default;
        let mapping = match &def.mapping {
            Some(m) => m,
            None => {
                let kind = match def.kinds.iter().collect::<Vec<_>>().as_slice() {
                    [k] => **k,
                    _ => {
                        return invalid(
                            "invalidValue",
                            format!("source `{source}` is authoritative for several kinds; its mapping must say which"),
                        );
                    }
                };
                default = default_mapping(kind);
                &default
            }
        };
        mapping.map(source, &policy.access.manager_attribute, &record).map_err(|e| ScimError::Invalid {
            scim_type: "invalidValue",
            detail: format!("{}: {}", e.field, e.message),
        })
    }

    /// Apply `kinds` of events for one SCIM call through ingest, in its transaction.
    #[expect(clippy::too_many_arguments, reason = "one call's parts, all needed")]
    fn scim_events(
        &self,
        tx: &mut dyn WriteTx,
        policy: &tenure_policy::Bundle,
        caller: &Principal,
        source: &str,
        id: &str,
        version: i64,
        m: &Mapped,
        kinds: &[EventType],
        now: time::OffsetDateTime,
    ) -> Result<()> {
        let actor = caller.actor();
        for kind in kinds {
            let wire = EventWire {
                source: source.to_owned(),
                id: format!("scim-{id}-v{version}-{}", kind.as_str()),
                kind: *kind,
                at: now,
                identity: crate::import::identity_wire(m),
            };
            let event = Event::from_wire(Position::Index(0), wire).map_err(|e| ScimError::Invalid {
                scim_type: "invalidValue",
                detail: format!("{}: {}", e.field, e.message),
            })?;
            match crate::ingest::apply(tx, policy, &event, now, &actor) {
                Ok(Applied::New | Applied::Duplicate) => {}
                Err(Bad::Record(field, message)) => {
                    return invalid(
                        "invalidValue",
                        if field.is_empty() { message } else { format!("{field}: {message}") },
                    );
                }
                Err(Bad::Store(s)) => return Err(s.into()),
            }
        }
        Ok(())
    }
}
