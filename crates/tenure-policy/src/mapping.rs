//! Source mappings: how a source's own records (an HR export's rows, with its column names)
//! become identities, so a Workday- or BambooHR-style file imports as it is.
//!
//! ```toml
//! [sources.bamboo.mapping]
//! external_id = "Employee #"                 # a column, or a template of columns
//! kind = "human"                             # a fixed kind (or `kind_column`, with `kind_values`)
//! name = "{First Name} {Last Name}"
//! manager = "Supervisor EID"                 # the manager's id in this source → `manager` attribute
//! expires_at = "Contract End"                # a date (RFC 3339, YYYY-MM-DD, or `date_format`)
//! date_format = "[month]/[day]/[year]"       # optional, a `time` format description
//! status = "Status"
//! active = ["Active"]                        # the status values of a current identity
//! leave = ["Terminated", "Inactive"]         # … and of a leaver
//! suspend = ["On Leave"]                     # … and of someone held back for now (optional)
//! snapshot_max_leavers = 10                  # a snapshot import's threshold (count, default)
//! snapshot_max_leavers_percent = 20          # … and share of the source's current identities
//!
//! [sources.bamboo.mapping.attributes]        # tenure attribute = column, or a rule
//! department = { column = "Department", transform = "lowercase" }
//! employment = { column = "Employment Type", values = { "Full-Time" = "employee", "Contractor" = "contractor" } }
//! title = "Job Title"
//! ```
//!
//! Every cell is trimmed; an empty cell is absent. A record that does not fit names the column
//! at fault.

use crate::error::{Problem, problem};
use serde::Deserialize;
use std::collections::BTreeMap;
use tenure_model::IdentityKind;
use time::OffsetDateTime;

/// A record as a source wrote it: column → cell.
pub type SourceRecord = BTreeMap<String, String>;

/// What a mapped record says of its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub external_id: String,
    pub kind: IdentityKind,
    pub name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub status: Status,
}

/// What a record's status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// One of the `active` values (or no status column).
    Active,
    /// One of the `leave` values.
    Leave,
    /// One of the `suspend` values: held back for now (a leave of absence).
    Suspend,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Leave => "leave",
            Self::Suspend => "suspend",
        }
    }
}

/// A record that does not fit: the column (or mapping field) at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub field: String,
    pub message: String,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, MapError> {
    Err(MapError { field: field.to_owned(), message: message.into() })
}

/// A column, or a template with `{Column}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cells(String);

impl Cells {
    /// A column name, or a template with `{Column}` placeholders.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The value in `record`, `None` when every column it reads is empty or absent.
    fn read(&self, record: &SourceRecord) -> Result<Option<String>, MapError> {
        if !self.0.contains('{') {
            return Ok(record.get(&self.0).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
        }
        let mut out = String::new();
        let mut any = false;
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else { return err(&self.0, "a `{` without its `}`") };
            let column = &rest[open + 1..open + close];
            if let Some(v) = record.get(column).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                out.push_str(v);
                any = true;
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(any.then(|| out.trim().to_owned()))
    }

    /// The columns it reads.
    pub fn columns(&self) -> Vec<&str> {
        if !self.0.contains('{') {
            return vec![self.0.as_str()];
        }
        self.0.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(c, _)| c)).collect()
    }

    fn name(&self) -> &str {
        &self.0
    }
}

/// How an attribute is read: a column (or template), a transform, a value map, a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeRule {
    pub cells: Cells,
    pub transform: Transform,
    pub values: BTreeMap<String, String>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    None,
    Lowercase,
    Uppercase,
}

/// A source's mapping (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub external_id: Cells,
    pub kind: Option<IdentityKind>,
    pub kind_column: Option<Cells>,
    pub kind_values: BTreeMap<String, IdentityKind>,
    pub name: Option<Cells>,
    pub manager: Option<Cells>,
    pub owner: Option<Cells>,
    pub purpose: Option<Cells>,
    pub expires_at: Option<Cells>,
    pub date_format: Option<String>,
    pub status: Option<Cells>,
    pub active: Vec<String>,
    pub leave: Vec<String>,
    pub suspend: Vec<String>,
    pub attributes: BTreeMap<String, AttributeRule>,
    /// A snapshot that would make more leavers than this waits for a person.
    pub snapshot_max_leavers: usize,
    /// … or more than this share (percent) of the source's current identities.
    pub snapshot_max_leavers_percent: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingSection {
    external_id: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    kind_column: Option<String>,
    #[serde(default)]
    kind_values: BTreeMap<String, String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    manager: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    date_format: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    active: Vec<String>,
    #[serde(default)]
    leave: Vec<String>,
    #[serde(default)]
    suspend: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttributeSection>,
    #[serde(default = "default_max_leavers")]
    snapshot_max_leavers: usize,
    #[serde(default = "default_max_percent")]
    snapshot_max_leavers_percent: u32,
}

fn default_max_leavers() -> usize {
    10
}

fn default_max_percent() -> u32 {
    20
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum AttributeSection {
    Column(String),
    Rule {
        column: String,
        #[serde(default)]
        transform: Option<String>,
        #[serde(default)]
        values: BTreeMap<String, String>,
        #[serde(default)]
        default: Option<String>,
    },
}

/// Check a source's `[sources.NAME.mapping]`, every problem named.
pub(crate) fn mapping(
    file: &str,
    source: &str,
    kinds: &std::collections::BTreeSet<IdentityKind>,
    m: MappingSection,
    problems: &mut Vec<Problem>,
) -> Mapping {
    let at = |f: &str| format!("sources.{source}.mapping.{f}");
    let kind_of = |field: &str, v: &str, problems: &mut Vec<Problem>| match v.parse::<IdentityKind>() {
        Ok(k) if kinds.contains(&k) => Some(k),
        Ok(k) => {
            problems.push(problem(file, at(field), format!("`{source}` is not authoritative for `{k}` identities")));
            None
        }
        Err(e) => {
            problems.push(problem(file, at(field), e));
            None
        }
    };
    let kind = m.kind.as_deref().and_then(|k| kind_of("kind", k, problems));
    let kind_values =
        m.kind_values.iter().filter_map(|(v, k)| Some((v.clone(), kind_of("kind_values", k, problems)?))).collect();
    if m.kind.is_some() == m.kind_column.is_some() {
        problems.push(problem(file, at("kind"), "expected exactly one of kind (fixed) and kind_column"));
    }
    if m.status.is_some() && (m.active.is_empty() || m.leave.is_empty()) {
        problems.push(problem(file, at("status"), "a status column needs its `active` and `leave` values"));
    }
    if let Some(f) = &m.date_format
        && let Err(e) = time::format_description::parse_borrowed::<2>(f)
    {
        problems.push(problem(file, at("date_format"), format!("not a date format: {e}")));
    }
    if m.snapshot_max_leavers_percent > 100 {
        problems.push(problem(file, at("snapshot_max_leavers_percent"), "expected a percentage between 0 and 100"));
    }
    let mut attributes = BTreeMap::new();
    for (name, a) in m.attributes {
        let rule = match a {
            AttributeSection::Column(c) => {
                AttributeRule { cells: Cells(c), transform: Transform::None, values: BTreeMap::new(), default: None }
            }
            AttributeSection::Rule { column, transform, values, default } => {
                let transform = match transform.as_deref() {
                    None => Transform::None,
                    Some("lowercase") => Transform::Lowercase,
                    Some("uppercase") => Transform::Uppercase,
                    Some(other) => {
                        problems.push(problem(
                            file,
                            at(&format!("attributes.{name}.transform")),
                            format!("expected lowercase or uppercase, found `{other}`"),
                        ));
                        Transform::None
                    }
                };
                AttributeRule { cells: Cells(column), transform, values, default }
            }
        };
        attributes.insert(name, rule);
    }
    Mapping {
        external_id: Cells(m.external_id),
        kind,
        kind_column: m.kind_column.map(Cells),
        kind_values,
        name: m.name.map(Cells),
        manager: m.manager.map(Cells),
        owner: m.owner.map(Cells),
        purpose: m.purpose.map(Cells),
        expires_at: m.expires_at.map(Cells),
        date_format: m.date_format,
        status: m.status.map(Cells),
        active: m.active,
        leave: m.leave,
        suspend: m.suspend,
        attributes,
        snapshot_max_leavers: m.snapshot_max_leavers,
        snapshot_max_leavers_percent: m.snapshot_max_leavers_percent,
    }
}

impl Mapping {
    /// Map one record of `source`; `manager_attribute` is the attribute naming a manager.
    pub fn map(&self, source: &str, manager_attribute: &str, r: &SourceRecord) -> Result<Mapped, MapError> {
        let need = |c: &Cells| match c.read(r)? {
            Some(v) => Ok(v),
            None => err(c.name(), "required but empty or missing"),
        };
        let external_id = need(&self.external_id)?;
        let kind = match (&self.kind, &self.kind_column) {
            (Some(k), _) => *k,
            (None, Some(c)) => {
                let v = need(c)?;
                match self.kind_values.get(&v).copied().or_else(|| v.parse().ok()) {
                    Some(k) => k,
                    None => return err(c.name(), format!("`{v}` is not a kind the mapping knows")),
                }
            }
            (None, None) => return err("kind", "the mapping names no kind"),
        };
        let status = match &self.status {
            None => Status::Active,
            Some(c) => {
                let v = need(c)?;
                let is = |values: &[String]| values.iter().any(|a| a.eq_ignore_ascii_case(&v));
                if is(&self.active) {
                    Status::Active
                } else if is(&self.leave) {
                    Status::Leave
                } else if is(&self.suspend) {
                    Status::Suspend
                } else {
                    let suspend = if self.suspend.is_empty() {
                        String::new()
                    } else {
                        format!(", nor a suspend ({})", self.suspend.join(", "))
                    };
                    return err(
                        c.name(),
                        format!(
                            "`{v}` is neither an active ({}) nor a leave ({}) status{suspend}",
                            self.active.join(", "),
                            self.leave.join(", ")
                        ),
                    );
                }
            }
        };
        let mut attributes = BTreeMap::new();
        for (name, rule) in &self.attributes {
            let value = match rule.cells.read(r)? {
                Some(v) => {
                    let v = match rule.values.get(&v) {
                        Some(mapped) => mapped.clone(),
                        None if !rule.values.is_empty() && rule.default.is_none() => {
                            let known: Vec<&str> = rule.values.keys().map(String::as_str).collect();
                            return err(rule.cells.name(), format!("`{v}` is not one of {}", known.join(", ")));
                        }
                        None if !rule.values.is_empty() => rule.default.clone().unwrap_or_default(),
                        None => v,
                    };
                    match rule.transform {
                        Transform::None => v,
                        Transform::Lowercase => v.to_lowercase(),
                        Transform::Uppercase => v.to_uppercase(),
                    }
                }
                None => match &rule.default {
                    Some(d) => d.clone(),
                    None => continue,
                },
            };
            attributes.insert(name.clone(), value);
        }
        if let Some(c) = &self.manager
            && let Some(m) = c.read(r)?
        {
            // An id in this source, or already `source:id`.
            let m = if m.contains(':') { m } else { format!("{source}:{m}") };
            attributes.insert(manager_attribute.to_owned(), m);
        }
        let expires_at = match &self.expires_at {
            Some(c) => match c.read(r)? {
                Some(v) => Some(self.date(c.name(), &v)?),
                None => None,
            },
            None => None,
        };
        Ok(Mapped {
            external_id,
            kind,
            name: self.name.as_ref().map(|c| c.read(r)).transpose()?.flatten(),
            attributes,
            owner: self.owner.as_ref().map(|c| c.read(r)).transpose()?.flatten(),
            purpose: self.purpose.as_ref().map(|c| c.read(r)).transpose()?.flatten(),
            expires_at,
            status,
        })
    }

    /// A date cell: the mapping's `date_format`, else RFC 3339 or `YYYY-MM-DD` (midnight UTC).
    fn date(&self, column: &str, v: &str) -> Result<OffsetDateTime, MapError> {
        use time::format_description::well_known::Rfc3339;
        let day = |d: time::Date| d.with_hms(0, 0, 0).map(|t| t.assume_utc()).ok();
        let parsed = match &self.date_format {
            Some(f) => time::format_description::parse_borrowed::<2>(f)
                .ok()
                .and_then(|f| time::Date::parse(v, &f).ok())
                .and_then(day),
            None => OffsetDateTime::parse(v, &Rfc3339).ok().or_else(|| {
                time::Date::parse(v, &time::macros::format_description!("[year]-[month]-[day]")).ok().and_then(day)
            }),
        };
        match parsed {
            Some(t) => Ok(t),
            None => err(
                column,
                format!(
                    "expected a date ({}), found `{v}`",
                    self.date_format.as_deref().unwrap_or("RFC 3339 or YYYY-MM-DD")
                ),
            ),
        }
    }
}
