//! Attribute mappings: what an identity's account carries in each system besides its name.
//!
//! ```toml
//! [systems.corp-directory.attributes]              # every kind of identity
//! mail = "{given_name|lower}.{family_name|lower}@example.com"
//! title = "{title}"
//! manager = "{manager.account}"                     # the manager's account (an LDAP DN)
//! telephoneNumber = ["{phone}", "{mobile}"]         # several values (a multi-valued target)
//! departmentNumber = false                          # not set (drops a default)
//!
//! [systems.corp-directory.kinds.service.attributes] # one kind: replaces the rules it names
//! mail = "{external_id}@services.example.com"
//! ```
//!
//! A value is a template: text with `{…}` placeholders (`{{` and `}}` are braces). A
//! placeholder names an identity attribute or one of `name`, `kind`, `source`, `external_id`,
//! `ref`, `account` (the account's own name) and `manager.account` (the manager's account in
//! the same system, which a connector writes as it names accounts: a DN in LDAP, the user's
//! `id` in SCIM), then filters (`|lower`, `|upper`, `|trim`, `|first`, `|last`: the first or
//! last word, `|ascii`: accents off and other non-ASCII dropped, for a mail address). `a ?? b` takes the first that has a value. A template one of whose
//! placeholders has no value gives no value: the attribute is left out (or removed), never
//! half-filled.
//!
//! Every system type has defaults ([`defaults`]): inetOrgPerson for LDAP, SCIM core and the
//! enterprise extension, the role comment for PostgreSQL. The targets a system accepts are
//! checked when the bundle loads: an unknown one (SCIM, PostgreSQL), one tenure keeps for
//! itself (the marker, the name, the password, memberships), several values for a single-valued
//! target, a malformed template.

use crate::bundle::SystemType;
use crate::error::{Problem, problem};
use std::collections::BTreeMap;
use tenure_model::IdentityKind;

/// A value to write: text, or an account of the same system that the connector names its way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Text(String),
    Account(String),
}

/// Target attribute → its values (empty: the attribute should be absent).
pub type Values = BTreeMap<String, Vec<Value>>;

/// What a mapping reads of an identity.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub kind: IdentityKind,
    pub source: &'a str,
    pub external_id: &'a str,
    pub name: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    /// The account's name in this system.
    pub account: &'a str,
    /// The manager's account in this system, when the manager has one.
    pub manager_account: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Lower,
    Upper,
    Trim,
    First,
    Last,
    Ascii,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    Name,
    Kind,
    Source,
    ExternalId,
    Ref,
    Account,
    ManagerAccount,
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    path: Path,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Hole(Vec<Alternative>),
}

/// One value's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parse `text`; the error says what is wrong where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("a `}}` without its `{{` at {i} (write `}}}}` for a brace)")),
                '{' => {
                    let rest = &text[i + 1..];
                    let close = rest.find('}').ok_or_else(|| format!("a `{{` without its `}}` at {i}"))?;
                    let hole = &rest[..close];
                    for _ in 0..hole.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Hole(parse_hole(hole)?));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { source: text.to_owned(), parts })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The value for `inputs`, `None` when a placeholder has none.
    pub fn render(&self, inputs: &Inputs<'_>) -> Option<Value> {
        // Exactly `{manager.account}`: an account the connector names its way.
        if let [Part::Hole(alts)] = self.parts.as_slice()
            && let [Alternative { path: Path::ManagerAccount, filters }] = alts.as_slice()
            && filters.is_empty()
        {
            return inputs.manager_account.map(|a| Value::Account(a.to_owned()));
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Hole(alts) => out.push_str(&alts.iter().find_map(|a| a.value(inputs))?),
            }
        }
        Some(Value::Text(out)).filter(|v| !matches!(v, Value::Text(t) if t.trim().is_empty()))
    }
}

fn parse_hole(hole: &str) -> Result<Vec<Alternative>, String> {
    let mut alts = Vec::new();
    for alt in hole.split("??") {
        let mut pieces = alt.split('|').map(str::trim);
        let path = match pieces.next().unwrap_or_default() {
            "" => return Err(format!("`{{{hole}}}` names nothing")),
            "name" => Path::Name,
            "kind" => Path::Kind,
            "source" => Path::Source,
            "external_id" => Path::ExternalId,
            "ref" => Path::Ref,
            "account" => Path::Account,
            "manager.account" => Path::ManagerAccount,
            a if a.contains('.') => {
                return Err(format!("`{a}` is not a field (of the dotted ones only `manager.account` is)"));
            }
            a if a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => Path::Attribute(a.to_owned()),
            a => return Err(format!("`{a}` is not an attribute name (letters, digits, `_`, `-`)")),
        };
        let filters = pieces
            .map(|f| match f {
                "lower" => Ok(Filter::Lower),
                "upper" => Ok(Filter::Upper),
                "trim" => Ok(Filter::Trim),
                "first" => Ok(Filter::First),
                "last" => Ok(Filter::Last),
                "ascii" => Ok(Filter::Ascii),
                other => Err(format!("unknown filter `{other}` (lower, upper, trim, first, last, ascii)")),
            })
            .collect::<Result<_, _>>()?;
        alts.push(Alternative { path, filters });
    }
    Ok(alts)
}

impl Alternative {
    fn value(&self, i: &Inputs<'_>) -> Option<String> {
        let raw = match &self.path {
            Path::Name => i.name.to_owned(),
            Path::Kind => i.kind.as_str().to_owned(),
            Path::Source => i.source.to_owned(),
            Path::ExternalId => i.external_id.to_owned(),
            Path::Ref => format!("{}:{}", i.source, i.external_id),
            Path::Account => i.account.to_owned(),
            Path::ManagerAccount => i.manager_account?.to_owned(),
            Path::Attribute(a) => i.attributes.get(a)?.clone(),
        };
        let mut v = raw.trim().to_owned();
        for f in &self.filters {
            v = match f {
                Filter::Lower => v.to_lowercase(),
                Filter::Upper => v.to_uppercase(),
                Filter::Trim => v.trim().to_owned(),
                Filter::First => v.split_whitespace().next().unwrap_or_default().to_owned(),
                Filter::Last => v.split_whitespace().last().unwrap_or_default().to_owned(),
                // Accents off (NFKD, combining marks dropped), then anything else not ASCII:
                // what a mail address or an IA5 attribute can hold.
                Filter::Ascii => {
                    use unicode_normalization::UnicodeNormalization;
                    v.nfkd().filter(char::is_ascii).collect()
                }
            };
        }
        Some(v).filter(|v| !v.is_empty())
    }
}

/// One target's rule: its templates (one value each) or nothing (not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Values(Vec<Template>),
    Unset,
}

/// A system's attribute mappings, defaults included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeMap {
    all: BTreeMap<String, Rule>,
    kinds: BTreeMap<IdentityKind, BTreeMap<String, Rule>>,
}

impl AttributeMap {
    /// Every target this map may set for some kind (what a read-back compares).
    pub fn targets(&self, kind: IdentityKind) -> Vec<String> {
        self.rules(kind).into_keys().collect()
    }

    fn rules(&self, kind: IdentityKind) -> BTreeMap<String, &Rule> {
        let mut rules: BTreeMap<String, &Rule> = self.all.iter().map(|(k, r)| (k.clone(), r)).collect();
        if let Some(own) = self.kinds.get(&kind) {
            rules.extend(own.iter().map(|(k, r)| (k.clone(), r)));
        }
        rules.retain(|_, r| **r != Rule::Unset);
        rules
    }

    /// The values an identity's account should carry: every target the map sets for its kind,
    /// an empty list where the identity gives it no value.
    pub fn values(&self, inputs: &Inputs<'_>) -> Values {
        self.rules(inputs.kind)
            .into_iter()
            .map(|(target, rule)| {
                let values = match rule {
                    Rule::Values(ts) => ts.iter().filter_map(|t| t.render(inputs)).collect(),
                    Rule::Unset => Vec::new(),
                };
                (target, values)
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.kinds.is_empty()
    }
}

/// What a system type accepts as targets.
struct Catalog {
    /// Only these (SCIM, PostgreSQL), or any well-formed name (LDAP).
    closed: bool,
    /// Known targets and whether each takes several values.
    known: &'static [(&'static str, bool)],
    /// Targets tenure keeps for itself.
    reserved: &'static [&'static str],
}

const LDAP: Catalog = Catalog {
    closed: false,
    known: &[
        ("cn", true),
        ("sn", true),
        ("givenName", true),
        ("displayName", false),
        ("mail", true),
        ("title", true),
        ("departmentNumber", true),
        ("employeeNumber", false),
        ("employeeType", true),
        ("manager", true),
        ("telephoneNumber", true),
        ("mobile", true),
        ("o", true),
        ("ou", true),
        ("l", true),
        ("preferredLanguage", false),
        ("initials", true),
    ],
    reserved: &["objectClass", "uid", "description", "userPassword", "pwdAccountLockedTime", "member", "memberOf"],
};

/// SCIM targets: core User attributes, `name.*`, and the enterprise extension as `enterprise.*`.
pub const SCIM_TARGETS: &[(&str, bool)] = &[
    ("displayName", false),
    ("nickName", false),
    ("title", false),
    ("userType", false),
    ("preferredLanguage", false),
    ("locale", false),
    ("timezone", false),
    ("profileUrl", false),
    ("name.formatted", false),
    ("name.givenName", false),
    ("name.familyName", false),
    ("name.middleName", false),
    ("name.honorificPrefix", false),
    ("name.honorificSuffix", false),
    ("emails", true),
    ("phoneNumbers", true),
    ("enterprise.employeeNumber", false),
    ("enterprise.costCenter", false),
    ("enterprise.organization", false),
    ("enterprise.division", false),
    ("enterprise.department", false),
    ("enterprise.manager", false),
];

const SCIM: Catalog = Catalog {
    closed: true,
    known: SCIM_TARGETS,
    reserved: &["userName", "externalId", "active", "id", "groups", "password"],
};

/// Active Directory (`flavor = "ad"`): its user attributes are single-valued but for a few.
const AD: Catalog = Catalog {
    closed: false,
    known: &[
        ("displayName", false),
        ("givenName", false),
        ("sn", false),
        ("initials", false),
        ("mail", false),
        ("title", false),
        ("department", false),
        ("company", false),
        ("division", false),
        ("employeeID", false),
        ("employeeNumber", false),
        ("employeeType", false),
        ("manager", false),
        ("telephoneNumber", false),
        ("mobile", false),
        ("physicalDeliveryOfficeName", false),
        ("otherTelephone", true),
        ("proxyAddresses", true),
    ],
    reserved: &[
        "objectClass",
        "cn",
        "name",
        "sAMAccountName",
        "userPrincipalName",
        "userAccountControl",
        "unicodePwd",
        "userPassword",
        "pwdLastSet",
        "description",
        "member",
        "memberOf",
        "objectSid",
        "objectGUID",
    ],
};

const POSTGRES: Catalog = Catalog { closed: true, known: &[("comment", false)], reserved: &[] };

const EXEC: Catalog = Catalog { closed: true, known: &[], reserved: &[] };

fn catalog(t: SystemType, ad: bool) -> &'static Catalog {
    match t {
        SystemType::Ldap if ad => &AD,
        SystemType::Ldap => &LDAP,
        SystemType::Scim => &SCIM,
        SystemType::Postgres => &POSTGRES,
        SystemType::Exec => &EXEC,
    }
}

/// The mappings a system has before its own section: what users of each system expect (`ad`:
/// an LDAP system with `flavor = "ad"`).
pub fn defaults(t: SystemType, ad: bool) -> &'static [(&'static str, &'static str)] {
    match t {
        SystemType::Ldap if ad => &[
            ("displayName", "{name}"),
            ("sn", "{family_name ?? name|last ?? account}"),
            ("givenName", "{given_name ?? name|first}"),
            ("mail", "{mail ?? email}"),
            ("title", "{title}"),
            ("department", "{department}"),
            ("employeeType", "{kind}"),
            ("manager", "{manager.account}"),
        ],
        SystemType::Ldap => &[
            ("cn", "{name}"),
            ("displayName", "{name}"),
            ("sn", "{family_name ?? name|last ?? account}"),
            ("givenName", "{given_name ?? name|first}"),
            ("mail", "{mail ?? email}"),
            ("title", "{title}"),
            ("departmentNumber", "{department}"),
            ("employeeType", "{kind}"),
            ("manager", "{manager.account}"),
        ],
        SystemType::Scim => &[
            ("displayName", "{name}"),
            ("name.formatted", "{name}"),
            ("name.givenName", "{given_name ?? name|first}"),
            ("name.familyName", "{family_name ?? name|last}"),
            ("emails", "{mail ?? email}"),
            ("title", "{title}"),
            ("enterprise.department", "{department}"),
            ("enterprise.manager", "{manager.account}"),
        ],
        SystemType::Postgres => &[("comment", "{kind}, {name}")],
        SystemType::Exec => &[],
    }
}

/// What a system is, as far as its targets go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub kind: SystemType,
    /// An LDAP system with `flavor = "ad"`.
    pub ad: bool,
    /// The attribute its `disable` method writes (never a mapping's).
    pub disable_attribute: Option<&'a str>,
}

/// Read a system's `attributes` and `kinds` tables over its type's defaults, every problem
/// named (`systems.NAME.attributes.TARGET`).
pub(crate) fn parse(
    file: &str,
    system: &str,
    shape: Shape<'_>,
    attributes: Option<toml::Value>,
    kinds: Option<toml::Value>,
    problems: &mut Vec<Problem>,
) -> AttributeMap {
    let Shape { kind, ad, disable_attribute } = shape;
    let cat = catalog(kind, ad);
    let mut map = AttributeMap::default();
    for (target, t) in defaults(kind, ad) {
        // The defaults are constants, parsed in this module's tests.
        if let Ok(template) = Template::parse(t) {
            map.all.insert((*target).to_owned(), Rule::Values(vec![template]));
        }
    }
    let section = |at: String,
                   v: Option<toml::Value>,
                   into: &mut BTreeMap<String, Rule>,
                   problems: &mut Vec<Problem>| {
        let Some(v) = v else { return };
        let toml::Value::Table(t) = v else {
            problems.push(problem(file, at, "expected a table of target attribute = template"));
            return;
        };
        if !t.is_empty() && cat.known.is_empty() && cat.closed {
            problems.push(problem(file, at.clone(), format!("a {} system takes no attribute mappings", kind.as_str())));
            return;
        }
        for (target, value) in t {
            let field = format!("{at}.{target}");
            if disable_attribute.is_some_and(|d| d.eq_ignore_ascii_case(&target)) {
                problems.push(problem(
                    file,
                    field,
                    format!("`{target}` is how this system disables accounts (`disable`)"),
                ));
                continue;
            }
            if let Some(r) = cat.reserved.iter().find(|r| r.eq_ignore_ascii_case(&target)) {
                problems.push(problem(
                    file,
                    field,
                    format!("`{r}` is tenure's to set (its marker, the account's name, a password or memberships)"),
                ));
                continue;
            }
            let known = cat.known.iter().find(|(k, _)| k.eq_ignore_ascii_case(&target));
            let target = match known {
                Some((k, _)) => (*k).to_owned(),
                None if cat.closed => {
                    let names: Vec<&str> = cat.known.iter().map(|(k, _)| *k).collect();
                    problems.push(problem(
                        file,
                        field,
                        format!(
                            "not an attribute of a {} account; expected one of {}",
                            kind.as_str(),
                            names.join(", ")
                        ),
                    ));
                    continue;
                }
                None if !target.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    problems.push(problem(
                        file,
                        field,
                        "not an LDAP attribute name (a letter, then letters, digits or `-`)",
                    ));
                    continue;
                }
                None => target,
            };
            let multi = known.is_none_or(|(_, m)| *m);
            let texts: Vec<String> = match value {
                toml::Value::Boolean(false) => {
                    into.insert(target, Rule::Unset);
                    continue;
                }
                toml::Value::String(s) => vec![s],
                toml::Value::Array(a) if a.iter().all(toml::Value::is_str) => {
                    a.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
                }
                _ => {
                    problems.push(problem(
                        file,
                        field,
                        "expected a template, a list of templates, or `false` (not set)",
                    ));
                    continue;
                }
            };
            if texts.len() > 1 && !multi {
                problems.push(problem(file, field, format!("`{target}` takes one value, found {}", texts.len())));
                continue;
            }
            let mut templates = Vec::new();
            for t in &texts {
                match Template::parse(t) {
                    Ok(t) => templates.push(t),
                    Err(e) => problems.push(problem(file, field.clone(), e)),
                }
            }
            into.insert(target, Rule::Values(templates));
        }
    };
    section(format!("systems.{system}.attributes"), attributes, &mut map.all, problems);
    match kinds {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (k, v) in t {
                let at = format!("systems.{system}.kinds.{k}");
                let Ok(ik) = k.parse::<IdentityKind>() else {
                    problems.push(problem(file, at, "expected human, service, workload or agent"));
                    continue;
                };
                let toml::Value::Table(mut inner) = v else {
                    problems.push(problem(file, at, "expected a table with `attributes`"));
                    continue;
                };
                let attrs = inner.remove("attributes");
                if let Some(extra) = inner.keys().next() {
                    problems.push(problem(file, format!("{at}.{extra}"), "unknown field; expected `attributes`"));
                }
                let mut own = BTreeMap::new();
                section(format!("{at}.attributes"), attrs, &mut own, problems);
                map.kinds.insert(ik, own);
            }
        }
        Some(_) => problems.push(problem(file, format!("systems.{system}.kinds"), "expected a table of kinds")),
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(attributes: &'a BTreeMap<String, String>, manager: Option<&'a str>) -> Inputs<'a> {
        Inputs {
            kind: IdentityKind::Human,
            source: "hr",
            external_id: "E1",
            name: "Grace Brewster Hopper",
            attributes,
            account: "E1",
            manager_account: manager,
        }
    }

    fn text(s: &str) -> Option<Value> {
        Some(Value::Text(s.into()))
    }

    #[test]
    fn templates_fill_filter_fall_back_and_leave_out_what_has_no_value() {
        let a: BTreeMap<String, String> =
            [("given_name", "Grace"), ("family_name", "Hopper"), ("title", " Rear Admiral ")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
        let i = inputs(&a, Some("E0"));
        let t = |s: &str| Template::parse(s).unwrap().render(&i);
        assert_eq!(t("{given_name|lower}.{family_name|lower}@example.com"), text("grace.hopper@example.com"));
        assert_eq!(t("{title}"), text("Rear Admiral"));
        assert_eq!(t("{title|upper}"), text("REAR ADMIRAL"));
        assert_eq!(t("{mail ?? name|last|lower}"), text("hopper"));
        assert_eq!(t("{name|first}"), text("Grace"));
        let accented = Inputs { name: "Lucía Fernández-Ñúñez Straße", ..i };
        let t2 = |s: &str| Template::parse(s).unwrap().render(&accented);
        assert_eq!(t2("{name|first|ascii|lower}.{name|last|ascii|lower}"), text("lucia.strae"));
        assert_eq!(t2("{name|ascii}"), text("Lucia Fernandez-Nunez Strae"));
        assert_eq!(t("{phone}"), None);
        assert_eq!(t("tel:{phone}"), None, "never half-filled");
        assert_eq!(t("{{literal}} {kind} {ref}"), text("{literal} human hr:E1"));
        assert_eq!(t("{manager.account}"), Some(Value::Account("E0".into())));
        assert_eq!(t("m-{manager.account}"), text("m-E0"));
        assert_eq!(Template::parse("{manager.account}").unwrap().render(&inputs(&a, None)), None);
        assert_eq!(t("constant"), text("constant"));
    }

    #[test]
    fn every_default_parses() {
        for t in SystemType::ALL {
            for ad in [false, true] {
                for (target, template) in defaults(*t, ad) {
                    assert!(Template::parse(template).is_ok(), "{target}");
                    assert!(catalog(*t, ad).known.iter().any(|(k, _)| k == target), "{target} is not in the catalog");
                }
            }
        }
    }

    #[test]
    fn malformed_templates_say_what_is_wrong() {
        for (t, want) in [
            ("{given_name", "without its `}`"),
            ("x}", "without its `{`"),
            ("{}", "names nothing"),
            ("{a|shout}", "unknown filter `shout`"),
            ("{manager.dn}", "`manager.dn` is not a field"),
            ("{a b}", "not an attribute name"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    fn parsed(kind: SystemType, toml_text: &str) -> (AttributeMap, Vec<Problem>) {
        let mut t: toml::Table = toml::from_str(toml_text).unwrap();
        let mut problems = Vec::new();
        let ad = t.remove("flavor").is_some_and(|f| f.as_str() == Some("ad"));
        let shape = Shape { kind, ad, disable_attribute: Some("nsAccountLock") };
        let m = parse("tenure.toml", "s", shape, t.remove("attributes"), t.remove("kinds"), &mut problems);
        (m, problems)
    }

    #[test]
    fn sections_override_defaults_per_kind_and_bad_targets_are_named() {
        let (m, p) = parsed(
            SystemType::Ldap,
            r#"
attributes = { mail = "{given_name|lower}@example.com", departmentNumber = false, telephoneNumber = ["{phone}", "{mobile}"] }
[kinds.service.attributes]
mail = "{external_id}@services.example.com"
"#,
        );
        assert!(p.is_empty(), "{p:?}");
        let a: BTreeMap<String, String> = [("given_name", "Grace"), ("phone", "+1 555"), ("department", "eng")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let v = m.values(&inputs(&a, None));
        assert_eq!(v["mail"], vec![Value::Text("grace@example.com".into())]);
        assert_eq!(v["telephoneNumber"], vec![Value::Text("+1 555".into())]);
        assert_eq!(v["manager"], vec![]);
        assert!(!v.contains_key("departmentNumber"));
        assert_eq!(v["sn"], vec![Value::Text("Hopper".into())]);
        let service = Inputs { kind: IdentityKind::Service, ..inputs(&a, None) };
        assert_eq!(m.values(&service)["mail"], vec![Value::Text("E1@services.example.com".into())]);

        let (_, p) = parsed(
            SystemType::Scim,
            r#"attributes = { titel = "{title}", userName = "{x}", title = ["{a}", "{b}"], emails = ["{mail}", "{alt_mail}"] }
kinds = { robot = { attributes = {} } }"#,
        );
        let said: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 4, "{said:#?}");
        assert!(
            said.iter().any(|s| s.contains("attributes.titel") && s.contains("not an attribute of a scim account"))
        );
        assert!(said.iter().any(|s| s.contains("attributes.userName") && s.contains("tenure's to set")));
        assert!(said.iter().any(|s| s.contains("attributes.title") && s.contains("takes one value, found 2")));
        assert!(said.iter().any(|s| s.contains("kinds.robot")));

        let (m, p) =
            parsed(SystemType::Ldap, "flavor = \"ad\"\nattributes = { cn = \"{name}\", mail = [\"{a}\", \"{b}\"] }");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(m.targets(IdentityKind::Human).contains(&"department".to_owned()));
        assert!(!m.targets(IdentityKind::Human).contains(&"cn".to_owned()), "AD's cn is its RDN");

        let (_, p) = parsed(SystemType::Ldap, r#"attributes = { nsaccountlock = "{x}" }"#);
        assert!(p[0].to_string().contains("how this system disables accounts"), "{p:?}");

        let (_, p) = parsed(SystemType::Exec, r#"attributes = { mail = "{mail}" }"#);
        assert!(p[0].to_string().contains("takes no attribute mappings"), "{p:?}");
        let (_, p) =
            parsed(SystemType::Ldap, r#"attributes = { "bad name" = "{mail}", description = "x", mail = "{m" }"#);
        assert_eq!(p.len(), 3, "{p:?}");
    }
}
