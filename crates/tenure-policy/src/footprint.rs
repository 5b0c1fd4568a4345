//! What a set of `hold` guardrails can see of its principal, read from the policies' JSON form
//! (Cedar's EST): the attribute and tag names they read. Two identities that agree on those
//! (and on kind, source and what they would hold) get the same guardrail answers, so what
//! policy wants for one is what it wants for the other: [`crate::Bundle::desired`] computes it
//! once per distinct set of facts instead of once per identity, which is what makes a policy
//! diff or deployment over 100,000 people take a second rather than minutes.
//!
//! The analysis is conservative: whatever it cannot bound — a tag read by a computed name, an
//! identity named literally, the principal used other than by reading its attributes, its
//! tags, its type or its ancestors (the entitlements held), a template slot — answers `None`,
//! and every identity is then evaluated on its own.

use cedar_policy::PolicySet;
use serde_json::Value;
use std::collections::BTreeSet;

/// The names of the principal's attributes and tags the policies of `set` can read, or `None`
/// when that cannot be bounded. Names are collected whatever they are read on (the resource's
/// attributes too): a name too many makes the memo key longer, never wrong.
pub(crate) fn principal_reads(set: &PolicySet) -> Option<BTreeSet<String>> {
    if set.templates().next().is_some() {
        return None;
    }
    let mut names = BTreeSet::new();
    for p in set.policies() {
        let json = p.to_json().ok()?;
        if names_an_identity(&json) || has_slot(&json) {
            return None;
        }
        for c in json.get("conditions")?.as_array()? {
            expr(c.get("body")?, false, &mut names)?;
        }
    }
    Some(names)
}

/// Whether an identity entity is named literally anywhere (in the scope or a condition).
fn names_an_identity(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("Identity"))
                || m.values().any(names_an_identity)
        }
        Value::Array(a) => a.iter().any(names_an_identity),
        _ => false,
    }
}

fn has_slot(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("slot") || m.contains_key("Slot") || m.values().any(has_slot),
        Value::Array(a) => a.iter().any(has_slot),
        _ => false,
    }
}

/// Walk an expression, collecting attribute and tag names; `None` when the principal is used
/// in a way the names do not bound. `principal_ok`: whether `expr` may be the bare principal
/// (it is the receiver of an attribute or tag read, of `is`, or the left of `in`).
fn expr(v: &Value, principal_ok: bool, names: &mut BTreeSet<String>) -> Option<()> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| expr(i, false, names)),
        Value::Object(m) => {
            if let (1, Some((k, inner))) = (m.len(), m.iter().next()) {
                match (k.as_str(), inner) {
                    ("Var", Value::String(var)) => return (var != "principal" || principal_ok).then_some(()),
                    ("." | "has", _) => {
                        match inner.get("attr")? {
                            Value::String(a) => {
                                names.insert(a.clone());
                            }
                            Value::Array(path) => {
                                for a in path {
                                    names.insert(a.as_str()?.to_owned());
                                }
                            }
                            _ => return None,
                        }
                        return expr(inner.get("left")?, true, names);
                    }
                    ("getTag" | "hasTag", _) => {
                        // A tag read by a computed name could read any of them.
                        let tag = inner.get("right")?.get("Value")?.as_str()?;
                        names.insert(tag.to_owned());
                        return expr(inner.get("left")?, true, names);
                    }
                    ("in", _) => {
                        expr(inner.get("left")?, true, names)?;
                        return expr(inner.get("right")?, false, names);
                    }
                    ("is", _) => {
                        expr(inner.get("left")?, true, names)?;
                        return inner.get("in").map_or(Some(()), |e| expr(e, false, names));
                    }
                    _ => {}
                }
            }
            m.values().try_for_each(|x| expr(x, false, names))
        }
        _ => Some(()),
    }
}

#[cfg(test)]
mod tests {
    use super::principal_reads;
    use cedar_policy::PolicySet;
    use std::collections::BTreeSet;

    fn reads(src: &str) -> Option<BTreeSet<String>> {
        principal_reads(&src.parse::<PolicySet>().unwrap())
    }

    fn set(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn attribute_and_tag_reads_are_collected() {
        assert_eq!(
            reads(
                r#"forbid (principal, action, resource) when { !principal.human && resource.human_only };
                   forbid (principal, action, resource) when {
                     principal.hasTag("department") && principal.getTag("department") == "sales"
                     && principal has owner.department };"#
            ),
            set(&["department", "human", "human_only", "owner"])
        );
        assert_eq!(
            reads(
                r#"forbid (principal in Tenure::Entitlement::"a", action, resource) when { principal is Tenure::Identity };"#
            ),
            set(&[])
        );
        assert_eq!(
            reads(r#"forbid (principal, action, resource) when { principal in context.holding };"#),
            set(&["holding"])
        );
    }

    #[test]
    fn what_cannot_be_bounded_is_refused() {
        // A tag by a computed name.
        assert_eq!(
            reads(r#"forbid (principal, action, resource) when { principal.getTag(resource.tag) == "x" };"#),
            None
        );
        // An identity named in the scope or a condition.
        assert_eq!(reads(r#"forbid (principal == Tenure::Identity::"hr:E1", action, resource);"#), None);
        assert_eq!(
            reads(r#"forbid (principal, action, resource) when { principal == Tenure::Identity::"hr:E1" };"#),
            None
        );
        // The principal compared or passed as a value.
        assert_eq!(reads(r#"forbid (principal, action, resource) when { principal.owner == principal };"#), None);
        assert_eq!(reads(r#"forbid (principal, action, resource) when { resource in principal };"#), None);
        assert_eq!(reads(r#"forbid (principal, action, resource) when { [principal].contains(resource) };"#), None);
        assert_eq!(reads(r#"forbid (principal, action, resource) when { {"Var": principal}.Var.human };"#), None);
        // A template.
        assert_eq!(reads(r#"forbid (principal == ?principal, action, resource);"#), None);
    }
}
