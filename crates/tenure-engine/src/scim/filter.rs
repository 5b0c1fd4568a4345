//! SCIM filters (RFC 7644 §3.4.2.2) and attribute paths: parsed into a [`Filter`], evaluated
//! against a resource's JSON. Strings compare case-insensitively except `id`, `externalId`
//! and `meta.version` (the attributes RFC 7643 makes `caseExact`); `not` binds tightest, then
//! `and`, then `or`.

use serde_json::Value;

/// `[urn:…:]attr[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(AttrPath, Op, Value),
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and primary eq true]`: some element matches.
    ValuePath(AttrPath, Box<Filter>),
}

/// A filter or path that does not parse: what was wrong, for `scimType: invalidFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The core User schema: a path under it is a path at the resource's root.
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

impl AttrPath {
    /// Parse `[urn:…:]attr[.sub]`.
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        let (urn, rest) = match s.rsplit_once(':') {
            Some((urn, rest)) => (Some(urn.to_owned()), rest),
            None => (None, s),
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        let ok = |n: &str| {
            !n.is_empty()
                && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        if !ok(attr) || sub.is_some_and(|s| !ok(s)) {
            return Err(FilterError(format!("`{s}` is not an attribute path")));
        }
        let urn = urn.filter(|u| !u.eq_ignore_ascii_case(CORE_USER));
        Ok(Self { urn, attr: attr.to_owned(), sub: sub.map(str::to_owned) })
    }

    /// Whether values of this attribute compare case-sensitively.
    fn case_exact(&self) -> bool {
        self.urn.is_none()
            && (self.attr.eq_ignore_ascii_case("id")
                || self.attr.eq_ignore_ascii_case("externalId")
                || (self.attr.eq_ignore_ascii_case("meta")
                    && self.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("version"))))
    }
}

/// The member of `o` named `name`, whatever its case.
pub fn member<'a>(o: &'a Value, name: &str) -> Option<&'a Value> {
    o.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The object a path's attribute lives in: the resource, or its extension's object.
fn container<'a>(resource: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    match &path.urn {
        None => Some(resource),
        Some(urn) => member(resource, urn),
    }
}

// ---- parsing ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(Value),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn tokens(s: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '[' => out.push(Token::OpenBracket),
            ']' => out.push(Token::CloseBracket),
            '"' => {
                // A JSON string: its escapes are JSON's.
                let mut text = String::from('"');
                let mut closed = false;
                while let Some(c) = chars.next() {
                    text.push(c);
                    if c == '\\' {
                        if let Some(e) = chars.next() {
                            text.push(e);
                        }
                    } else if c == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(FilterError("a string without its closing quote".into()));
                }
                let v: String =
                    serde_json::from_str(&text).map_err(|e| FilterError(format!("bad string {text}: {e}")))?;
                out.push(Token::Literal(Value::String(v)));
            }
            first => {
                let mut word = String::from(first);
                while let Some(c) = chars.next_if(|c| !matches!(c, ' ' | '\t' | '(' | ')' | '[' | ']' | '"')) {
                    word.push(c);
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_word().as_deref() == Some("not") {
            self.at += 1;
            if self.tokens.get(self.at) != Some(&Token::Open) {
                return Err(FilterError("`not` needs a parenthesised filter".into()));
            }
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.tokens.get(self.at).cloned() {
            Some(Token::Open) => {
                self.at += 1;
                let f = self.or()?;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return Err(FilterError("a `(` without its `)`".into()));
                }
                self.at += 1;
                Ok(f)
            }
            Some(Token::Word(w)) => {
                self.at += 1;
                let path = AttrPath::parse(&w)?;
                if self.tokens.get(self.at) == Some(&Token::OpenBracket) {
                    self.at += 1;
                    let inner = self.or()?;
                    if self.tokens.get(self.at) != Some(&Token::CloseBracket) {
                        return Err(FilterError("a `[` without its `]`".into()));
                    }
                    self.at += 1;
                    return Ok(Filter::ValuePath(path, Box::new(inner)));
                }
                let op = self.peek_word().ok_or_else(|| FilterError(format!("`{w}` needs an operator")))?;
                self.at += 1;
                let op = match op.as_str() {
                    "pr" => return Ok(Filter::Present(path)),
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "co" => Op::Co,
                    "sw" => Op::Sw,
                    "ew" => Op::Ew,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    other => return Err(FilterError(format!("unknown operator `{other}`"))),
                };
                let value = match self.tokens.get(self.at).cloned() {
                    Some(Token::Literal(v)) => v,
                    Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" => Value::Null,
                        _ => serde_json::from_str::<serde_json::Number>(&w)
                            .map(Value::Number)
                            .map_err(|_| FilterError(format!("`{w}` is not a value (strings are quoted)")))?,
                    },
                    _ => return Err(FilterError("a comparison needs a value".into())),
                };
                self.at += 1;
                Ok(Filter::Compare(path, op, value))
            }
            other => Err(FilterError(format!("unexpected {other:?}"))),
        }
    }
}

impl Filter {
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        let mut p = Parser { tokens: tokens(s)?, at: 0 };
        let f = p.or()?;
        if p.at != p.tokens.len() {
            return Err(FilterError(format!("unexpected text after the filter in `{s}`")));
        }
        Ok(f)
    }

    /// Whether `resource` (or, inside a value path, one element) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(resource) && b.matches(resource),
            Self::Or(a, b) => a.matches(resource) || b.matches(resource),
            Self::Not(f) => !f.matches(resource),
            Self::Present(p) => values(resource, p).iter().any(|v| present(v)),
            Self::Compare(p, op, want) => {
                let found = values(resource, p);
                if found.is_empty() {
                    return *op == Op::Ne && !want.is_null();
                }
                let exact = p.case_exact();
                match op {
                    Op::Ne => !found.iter().any(|v| compare(v, Op::Eq, want, exact)),
                    _ => found.iter().any(|v| compare(v, *op, want, exact)),
                }
            }
            Self::ValuePath(p, inner) => {
                let Some(attr) = container(resource, p).and_then(|c| member(c, &p.attr)) else { return false };
                match attr {
                    Value::Array(items) => items.iter().any(|i| inner.matches(i)),
                    other => inner.matches(other),
                }
            }
        }
    }
}

/// The values a path reaches: an attribute's value, each element of a multi-valued one, and
/// (for a multi-valued complex attribute without a sub-attribute) each element's `value`.
fn values<'a>(resource: &'a Value, p: &AttrPath) -> Vec<&'a Value> {
    let Some(attr) = container(resource, p).and_then(|c| member(c, &p.attr)) else { return vec![] };
    let items: Vec<&Value> = match attr {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    items
        .into_iter()
        .filter_map(|v| match (&p.sub, v) {
            (Some(sub), o @ Value::Object(_)) => member(o, sub),
            (Some(_), _) => None,
            (None, o @ Value::Object(_)) => member(o, "value").or(Some(o)),
            (None, v) => Some(v),
        })
        .collect()
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(have: &Value, op: Op, want: &Value, exact: bool) -> bool {
    match (have, want) {
        (Value::String(h), Value::String(w)) => {
            let (h, w) = if exact { (h.clone(), w.clone()) } else { (h.to_lowercase(), w.to_lowercase()) };
            match op {
                Op::Eq => h == w,
                Op::Ne => h != w,
                Op::Co => h.contains(&w),
                Op::Sw => h.starts_with(&w),
                Op::Ew => h.ends_with(&w),
                Op::Gt => h > w,
                Op::Ge => h >= w,
                Op::Lt => h < w,
                Op::Le => h <= w,
            }
        }
        (Value::Bool(h), Value::Bool(w)) => match op {
            Op::Eq => h == w,
            Op::Ne => h != w,
            _ => false,
        },
        (Value::Number(h), Value::Number(w)) => {
            let (Some(h), Some(w)) = (h.as_f64(), w.as_f64()) else { return false };
            match op {
                Op::Eq => h == w,
                Op::Ne => h != w,
                Op::Gt => h > w,
                Op::Ge => h >= w,
                Op::Lt => h < w,
                Op::Le => h <= w,
                _ => false,
            }
        }
        (_, Value::Null) => matches!(op, Op::Ne),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "Ada@Example.com", "active": true, "title": "Engineer", "id": "AbC",
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@work.example", "type": "work", "primary": true }, { "value": "ada@home.example", "type": "home" }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Engineering" },
            "meta": { "lastModified": "2026-11-20T09:00:00Z" },
        })
    }

    fn m(f: &str) -> bool {
        Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}")).matches(&user())
    }

    #[test]
    fn the_operators_of_rfc_7644_match_as_they_should() {
        assert!(m(r#"userName eq "ada@example.com""#), "userName is not case-exact");
        assert!(m(r#"USERNAME Eq "ADA@EXAMPLE.COM""#), "names and operators are case-insensitive");
        assert!(!m(r#"id eq "abc""#), "id is case-exact");
        assert!(m(r#"name.givenName sw "ad" and name.familyName ew "ACE""#));
        assert!(m(r#"title co "gine" or userName eq "nobody""#));
        assert!(m("title pr and not (nickName pr)"));
        assert!(m(r#"emails[type eq "work" and primary eq true]"#));
        assert!(!m(r#"emails[type eq "other"]"#));
        assert!(m(r#"emails co "home.example""#), "a multi-valued attribute compares its values");
        assert!(m(r#"emails.type eq "home""#));
        assert!(m(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "engineering""#));
        assert!(m(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ada""#));
        assert!(m(r#"meta.lastModified gt "2026-11-01T00:00:00Z""#));
        assert!(m("active eq true") && !m("active eq false") && m("active ne false"));
        assert!(m(r#"userName eq "nobody" or (title eq "engineer" and active eq true)"#));
        assert!(!m(r#"userName eq "nobody" or title eq "engineer" and active eq false"#), "and binds tighter than or");
        assert!(m(r#"nickName ne "x""#));
    }

    #[test]
    fn a_bad_filter_says_what_is_wrong() {
        for bad in [
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"userName eq ada"#,
            r#"emails[type eq "w""#,
            "",
            r#"userName eq "a" junk"#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
