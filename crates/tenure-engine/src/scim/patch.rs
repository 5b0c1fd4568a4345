//! SCIM PATCH (RFC 7644 §3.5.2): `add`, `remove` and `replace` on a resource's JSON, with
//! paths `attr`, `attr.sub`, `urn:…:attr` and value-path filters `attr[filter].sub`. The
//! operations apply in order to a copy; any that fails fails the whole request.

use super::filter::{AttrPath, Filter};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct PatchRequest {
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOp>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PatchOp {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

/// Why a PATCH fails: the `scimType` and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn fail<T>(scim_type: &'static str, detail: impl Into<String>) -> Result<T, PatchError> {
    Err(PatchError { scim_type, detail: detail.into() })
}

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `attr[filter].sub`, parsed.
struct Target {
    path: AttrPath,
    filter: Option<Filter>,
}

fn target(s: &str) -> Result<Target, PatchError> {
    let bad = |e: super::filter::FilterError| PatchError { scim_type: "invalidPath", detail: e.0 };
    // A schema extension's URN alone names the extension's whole object.
    if s.eq_ignore_ascii_case(super::schema::ENTERPRISE) {
        let path = AttrPath { urn: None, attr: super::schema::ENTERPRISE.to_owned(), sub: None };
        return Ok(Target { path, filter: None });
    }
    match s.split_once('[') {
        None => Ok(Target { path: AttrPath::parse(s).map_err(bad)?, filter: None }),
        Some((attr, rest)) => {
            let (inner, after) = rest.rsplit_once(']').ok_or_else(|| PatchError {
                scim_type: "invalidPath",
                detail: format!("`{s}`: a `[` without its `]`"),
            })?;
            let mut path = AttrPath::parse(attr).map_err(bad)?;
            let filter = Filter::parse(inner).map_err(|e| PatchError { scim_type: "invalidFilter", detail: e.0 })?;
            if let Some(sub) = after.strip_prefix('.') {
                path.sub = Some(sub.to_owned());
            } else if !after.is_empty() {
                return fail("invalidPath", format!("`{s}`: unexpected `{after}`"));
            }
            Ok(Target { path, filter: Some(filter) })
        }
    }
}

/// The key of `o` that names `name` (whatever its case), or `name` itself.
fn key(o: &Map<String, Value>, name: &str) -> String {
    o.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_owned())
}

/// The object a path's attribute lives in, created where `create`.
fn container<'a>(resource: &'a mut Value, path: &AttrPath, create: bool) -> Option<&'a mut Map<String, Value>> {
    let root = resource.as_object_mut()?;
    match &path.urn {
        None => Some(root),
        Some(urn) => {
            let k = key(root, urn);
            if !root.contains_key(&k) {
                if !create {
                    return None;
                }
                root.insert(k.clone(), Value::Object(Map::new()));
            }
            root.get_mut(&k)?.as_object_mut()
        }
    }
}

const READ_ONLY: &[&str] = &["id", "meta", "groups"];

/// Apply `ops` to `resource` in order.
pub fn apply(resource: &mut Value, request: &PatchRequest) -> Result<(), PatchError> {
    if !request.schemas.iter().any(|s| s == PATCH_OP) {
        return fail("invalidSyntax", format!("a PATCH body's schemas must list `{PATCH_OP}`"));
    }
    if request.operations.is_empty() {
        return fail("invalidSyntax", "a PATCH needs at least one operation");
    }
    for op in &request.operations {
        let kind = op.op.to_ascii_lowercase();
        match (kind.as_str(), &op.path) {
            ("add" | "replace", None) => {
                let Some(Value::Object(values)) = &op.value else {
                    return fail("invalidValue", format!("`{}` without a path needs an object value", op.op));
                };
                for (k, v) in values {
                    if k.to_ascii_lowercase().starts_with("urn:") && v.is_object() && !k.contains('.') {
                        // An extension's attributes, each its own path.
                        let urn_is_core = k.eq_ignore_ascii_case(super::filter::CORE_USER);
                        for (a, av) in v.as_object().into_iter().flatten() {
                            let p = if urn_is_core { a.clone() } else { format!("{k}:{a}") };
                            one(resource, &kind, &p, Some(av))?;
                        }
                    } else {
                        one(resource, &kind, k, Some(v))?;
                    }
                }
            }
            ("remove", None) => return fail("noTarget", "`remove` needs a path"),
            ("add" | "replace" | "remove", Some(path)) => one(resource, &kind, path, op.value.as_ref())?,
            _ => return fail("invalidSyntax", format!("unknown op `{}` (add, remove, replace)", op.op)),
        }
    }
    Ok(())
}

fn one(resource: &mut Value, op: &str, path: &str, value: Option<&Value>) -> Result<(), PatchError> {
    let t = target(path)?;
    if t.path.urn.is_none() && READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(&t.path.attr)) {
        return fail("mutability", format!("`{}` is read-only", t.path.attr));
    }
    if op != "remove" && value.is_none() {
        return fail("invalidValue", format!("`{op}` of `{path}` needs a value"));
    }
    let Some(obj) = container(resource, &t.path, op != "remove") else {
        return if op == "remove" { Ok(()) } else { fail("invalidPath", format!("`{path}`: no such extension")) };
    };
    let k = key(obj, &t.path.attr);
    match (&t.filter, &t.path.sub) {
        (None, None) => {
            let v = value.cloned().unwrap_or(Value::Null);
            match op {
                "remove" => match (obj.get_mut(&k), value) {
                    // Azure's remove of members: the listed values go, the others stay.
                    (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                        let gone: Vec<&Value> =
                            gone.iter().map(|g| super::filter::member(g, "value").unwrap_or(g)).collect();
                        items.retain(|i| !gone.contains(&super::filter::member(i, "value").unwrap_or(i)));
                    }
                    _ => {
                        obj.remove(&k);
                    }
                },
                "add" => match (obj.get_mut(&k), v) {
                    (Some(Value::Array(items)), Value::Array(more)) => {
                        for m in more {
                            if !items.contains(&m) {
                                items.push(m);
                            }
                        }
                    }
                    (Some(Value::Array(items)), one) => {
                        if !items.contains(&one) {
                            items.push(one);
                        }
                    }
                    (Some(Value::Object(have)), Value::Object(more)) => {
                        for (mk, mv) in more {
                            let mk2 = key(have, &mk);
                            have.insert(mk2, mv);
                        }
                    }
                    (_, v) => {
                        obj.insert(k, v);
                    }
                },
                _ => {
                    obj.insert(k, v);
                }
            }
        }
        (None, Some(sub)) => match obj.get_mut(&k) {
            Some(Value::Array(items)) => {
                for i in items.iter_mut().filter_map(Value::as_object_mut) {
                    set_sub(i, sub, op, value);
                }
            }
            Some(Value::Object(o)) => set_sub(o, sub, op, value),
            _ if op == "remove" => {}
            _ => {
                let mut o = Map::new();
                set_sub(&mut o, sub, op, value);
                obj.insert(k, Value::Object(o));
            }
        },
        (Some(filter), sub) => {
            let Some(Value::Array(items)) = obj.get_mut(&k) else {
                return if op == "remove" {
                    Ok(())
                } else {
                    fail("noTarget", format!("`{path}`: `{}` has no values to filter", t.path.attr))
                };
            };
            let hits: Vec<usize> =
                items.iter().enumerate().filter(|(_, i)| filter.matches(i)).map(|(n, _)| n).collect();
            if hits.is_empty() && op != "remove" {
                return fail("noTarget", format!("`{path}` matches no value"));
            }
            match sub {
                Some(sub) => {
                    for (_, item) in items.iter_mut().enumerate().filter(|(n, _)| hits.contains(n)) {
                        if let Some(o) = item.as_object_mut() {
                            set_sub(o, sub, op, value);
                        }
                    }
                }
                None if op == "remove" => {
                    let mut n = 0;
                    items.retain(|_| {
                        let keep = !hits.contains(&n);
                        n += 1;
                        keep
                    });
                }
                None => {
                    for (_, item) in items.iter_mut().enumerate().filter(|(n, _)| hits.contains(n)) {
                        match (item, value) {
                            (Value::Object(have), Some(Value::Object(more))) if op == "add" => {
                                for (mk, mv) in more {
                                    let mk2 = key(have, mk);
                                    have.insert(mk2, mv.clone());
                                }
                            }
                            (slot, Some(v)) => *slot = v.clone(),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn set_sub(o: &mut Map<String, Value>, sub: &str, op: &str, value: Option<&Value>) {
    let k = key(o, sub);
    if op == "remove" {
        o.remove(&k);
    } else if let Some(v) = value {
        o.insert(k, v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(resource: Value, ops: Value) -> Result<Value, PatchError> {
        let mut r = resource;
        let req: PatchRequest = serde_json::from_value(json!({ "schemas": [PATCH_OP], "Operations": ops })).unwrap();
        apply(&mut r, &req)?;
        Ok(r)
    }

    fn user() -> Value {
        json!({
            "userName": "ada", "title": "Engineer", "active": true,
            "name": { "givenName": "Ada" },
            "emails": [{ "value": "a@work", "type": "work", "primary": true }, { "value": "a@home", "type": "home" }],
        })
    }

    #[test]
    fn add_remove_and_replace_follow_rfc_7644() {
        let r = patch(user(), json!([{ "op": "replace", "path": "title", "value": "Manager" }])).unwrap();
        assert_eq!(r["title"], "Manager");
        let r =
            patch(user(), json!([{ "op": "Replace", "value": { "active": false, "name.familyName": "Lovelace" } }]))
                .unwrap();
        assert_eq!(
            (r["active"].clone(), r["name"]["familyName"].clone(), r["name"]["givenName"].clone()),
            (json!(false), json!("Lovelace"), json!("Ada"))
        );
        let r =
            patch(user(), json!([{ "op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@new" }]))
                .unwrap();
        assert_eq!(r["emails"][0]["value"], "ada@new");
        assert_eq!(r["emails"][1]["value"], "a@home");
        let r = patch(user(), json!([{ "op": "remove", "path": "emails[type eq \"home\"]" }])).unwrap();
        assert_eq!(r["emails"].as_array().unwrap().len(), 1);
        let r = patch(
            user(),
            json!([{ "op": "add", "path": "emails", "value": [{ "value": "a@other", "type": "other" }] }]),
        )
        .unwrap();
        assert_eq!(r["emails"].as_array().unwrap().len(), 3);
        let r = patch(user(), json!([{ "op": "remove", "path": "title" }])).unwrap();
        assert!(r.get("title").is_none());
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let r = patch(user(), json!([{ "op": "add", "path": format!("{ext}:department"), "value": "Sales" }])).unwrap();
        assert_eq!(r[ext]["department"], "Sales");
        let r = patch(user(), json!([{ "op": "add", "value": { ext: { "department": "Finance" } } }])).unwrap();
        assert_eq!(r[ext]["department"], "Finance");
        let r = patch(user(), json!([{ "op": "add", "path": ext, "value": { "division": "North" } }])).unwrap();
        assert_eq!(r[ext], json!({ "division": "North" }));
        let r = patch(r, json!([{ "op": "remove", "path": ext }])).unwrap();
        assert!(r.get(ext).is_none());
        let r = patch(user(), json!([{ "op": "add", "path": "name.familyName", "value": "L" }])).unwrap();
        assert_eq!(r["name"], json!({ "givenName": "Ada", "familyName": "L" }));
    }

    #[test]
    fn a_patch_that_cannot_apply_says_why() {
        let e = patch(user(), json!([{ "op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x" }]))
            .unwrap_err();
        assert_eq!(e.scim_type, "noTarget");
        assert_eq!(patch(user(), json!([{ "op": "remove" }])).unwrap_err().scim_type, "noTarget");
        assert_eq!(
            patch(user(), json!([{ "op": "replace", "path": "id", "value": "x" }])).unwrap_err().scim_type,
            "mutability"
        );
        assert_eq!(patch(user(), json!([{ "op": "move", "path": "title" }])).unwrap_err().scim_type, "invalidSyntax");
        assert_eq!(
            patch(user(), json!([{ "op": "add", "path": "emails[type eq]", "value": 1 }])).unwrap_err().scim_type,
            "invalidFilter"
        );
    }
}
