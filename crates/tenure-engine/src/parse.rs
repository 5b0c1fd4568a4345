//! Parsing event batches (a JSON array, JSON lines, CSV) into wire events. Every bad record is
//! reported with its position and the field at fault; nothing is returned unless all parse.

use std::collections::BTreeMap;
use std::fmt;
use tenure_proto::{EventType, EventWire, IdentityWire};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where a record is: the index in a JSON array, or the line of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    Index(usize),
    Line(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "record {i}"),
            Self::Line(l) => write!(f, "line {l}"),
        }
    }
}

impl Position {
    pub fn number(self) -> usize {
        match self {
            Self::Index(n) | Self::Line(n) => n,
        }
    }
}

/// One bad record: `line 3: field identity.kind: expected one of …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub position: Position,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.position, self.message)
        } else {
            write!(f, "{}: field {}: {}", self.position, self.field, self.message)
        }
    }
}

impl RecordError {
    pub fn new(position: Position, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { position, field: field.into(), message: message.into() }
    }
}

/// A parsed record with its position.
pub type Positioned = (Position, EventWire);

/// Input formats of `tenure import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    /// By file extension: `.jsonl`/`.ndjson` or `.csv`.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// A JSON array of events (the body of `POST /v1/events`).
pub fn json_array(body: &[u8]) -> Result<Vec<Positioned>, Vec<RecordError>> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| vec![RecordError::new(Position::Index(0), "", format!("expected a JSON array of events: {e}"))])?;
    collect(values.into_iter().enumerate().map(|(i, v)| (Position::Index(i), from_value(v))))
}

/// JSON lines: one event per non-blank line; lines are numbered from 1.
pub fn json_lines(text: &str) -> Result<Vec<Positioned>, Vec<RecordError>> {
    collect(text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| {
        let mut de = serde_json::Deserializer::from_str(l);
        let r = serde_path_to_error::deserialize::<_, EventWire>(&mut de).map_err(path_error);
        (Position::Line(i + 1), r)
    }))
}

/// CSV with a header row: `source,id,type,at,external_id,kind,name,owner,purpose,expires_at`
/// (the identity's columns may also be spelled `identity.external_id`, …) and one `attr.NAME`
/// column per attribute. An empty cell is an absent value. The header is line 1.
pub fn csv(text: &str) -> Result<Vec<Positioned>, Vec<RecordError>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().trim_start_matches("identity.").to_owned()).collect::<Vec<_>>(),
        Err(e) => return Err(vec![RecordError::new(Position::Line(1), "", format!("expected a CSV header row: {e}"))]),
    };
    let known = ["source", "id", "type", "at", "external_id", "kind", "name", "owner", "purpose", "expires_at"];
    let mut problems = Vec::new();
    for h in &headers {
        if !known.contains(&h.as_str()) && !h.starts_with("attr.") {
            problems.push(RecordError::new(
                Position::Line(1),
                h.clone(),
                format!("unknown column; expected {} or attr.NAME", known.join(", ")),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    collect(reader.records().map(|rec| {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                return (Position::Line(line), Err((String::new(), format!("malformed CSV: {e}"))));
            }
        };
        let line = rec.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        let mut cells: BTreeMap<&str, &str> = BTreeMap::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            if !v.is_empty() {
                cells.insert(h.as_str(), v);
            }
        }
        (Position::Line(line), from_cells(&cells))
    }))
}

/// A source's own record (a row of an HR export) with its position, before its mapping.
pub type PositionedRecord = (Position, tenure_policy::mapping::SourceRecord);

/// A source's own CSV export: a header row of its column names, then one record per row. The
/// header is line 1.
pub fn csv_records(text: &str) -> Result<Vec<PositionedRecord>, Vec<RecordError>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_owned()).collect::<Vec<_>>(),
        Err(e) => return Err(vec![RecordError::new(Position::Line(1), "", format!("expected a CSV header row: {e}"))]),
    };
    let mut seen = std::collections::BTreeSet::new();
    for h in &headers {
        if !seen.insert(h) {
            return Err(vec![RecordError::new(Position::Line(1), h.clone(), "the column appears twice")]);
        }
    }
    collect(reader.records().map(|rec| match rec {
        Ok(r) => {
            let line = r.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
            (Position::Line(line), Ok(headers.iter().cloned().zip(r.iter().map(str::to_owned)).collect()))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
            (Position::Line(line), Err((String::new(), format!("malformed CSV: {e}"))))
        }
    }))
}

/// A source's own JSON lines: one flat object per line, each value a string, number, boolean
/// or null (null is an empty cell).
pub fn json_records(text: &str) -> Result<Vec<PositionedRecord>, Vec<RecordError>> {
    collect(text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| {
        let record = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l) {
            Ok(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => Ok((k, s)),
                    serde_json::Value::Null => Ok((k, String::new())),
                    v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Ok((k, v.to_string())),
                    _ => Err((k, "expected a string, number, boolean or null".to_owned())),
                })
                .collect(),
            Err(e) => Err((String::new(), format!("expected a JSON object: {e}"))),
        };
        (Position::Line(i + 1), record)
    }))
}

type FieldResult<T> = Result<T, (String, String)>;

fn collect<T>(items: impl Iterator<Item = (Position, FieldResult<T>)>) -> Result<Vec<(Position, T)>, Vec<RecordError>> {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (pos, r) in items {
        match r {
            Ok(e) => ok.push((pos, e)),
            Err((field, message)) => errors.push(RecordError::new(pos, field, message)),
        }
    }
    if errors.is_empty() { Ok(ok) } else { Err(errors) }
}

fn from_value(v: serde_json::Value) -> FieldResult<EventWire> {
    serde_path_to_error::deserialize::<_, EventWire>(v).map_err(path_error)
}

/// Turn serde's message into `(field, what was expected)`.
fn path_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> (String, String) {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let msg = e.inner().to_string();
    // serde_json appends " at line L column C"; the position is already ours.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if let Some(name) = msg.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        let field = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        return (field, "required but missing".into());
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        // The path already ends at the unknown field.
        return (path, format!("unknown field; {}", rest.split_once(", ").map_or("", |(_, r)| r)));
    }
    if path == "at" || path.ends_with("expires_at") {
        return (path, format!("expected an RFC 3339 timestamp such as `2026-11-01T09:00:00Z` ({msg})"));
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return (path, format!("unknown value {rest}"));
    }
    (path, msg)
}

fn from_cells(c: &BTreeMap<&str, &str>) -> FieldResult<EventWire> {
    let need =
        |k: &str| c.get(k).map(|v| (*v).to_owned()).ok_or_else(|| (k.to_owned(), "required but missing".to_owned()));
    let ts = |k: &str, v: &str| {
        OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
            (k.to_owned(), format!("expected an RFC 3339 timestamp such as `2026-11-01T09:00:00Z`, found `{v}` ({e})"))
        })
    };
    let kind = need("type")?;
    let kind = match kind.as_str() {
        "joined" => EventType::Joined,
        "changed" => EventType::Changed,
        "left" => EventType::Left,
        "owner_changed" => EventType::OwnerChanged,
        "renewed" => EventType::Renewed,
        "suspended" => EventType::Suspended,
        "resumed" => EventType::Resumed,
        other => {
            return Err((
                "type".into(),
                format!(
                    "expected one of joined, changed, left, owner_changed, renewed, suspended, resumed, found `{other}`"
                ),
            ));
        }
    };
    let at = ts("at", &need("at")?)?;
    let expires_at = c.get("expires_at").map(|v| ts("expires_at", v)).transpose()?;
    let attributes =
        c.iter().filter_map(|(k, v)| k.strip_prefix("attr.").map(|name| (name.to_owned(), (*v).to_owned()))).collect();
    Ok(EventWire {
        source: need("source")?,
        id: need("id")?,
        kind,
        at,
        identity: IdentityWire {
            external_id: need("external_id")?,
            kind: need("kind")?,
            name: c.get("name").map(|v| (*v).to_owned()),
            attributes,
            owner: c.get("owner").map(|v| (*v).to_owned()),
            purpose: c.get("purpose").map(|v| (*v).to_owned()),
            expires_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"source":"hr","id":"evt-0001","type":"joined","at":"2026-11-01T09:00:00Z","identity":{"external_id":"E1001","kind":"human","name":"Ada Lovelace","attributes":{"department":"engineering","employment":"employee","manager":"hr:E1000"},"owner":null,"purpose":null,"expires_at":null}}"#;

    #[test]
    fn the_contract_example_parses() {
        let got = json_lines(GOOD).unwrap();
        assert_eq!(got.len(), 1);
        let (pos, e) = &got[0];
        assert_eq!(*pos, Position::Line(1));
        assert_eq!(e.identity.attributes["manager"], "hr:E1000");
        assert_eq!(e.kind, EventType::Joined);
    }

    fn errors(text: &str) -> Vec<String> {
        json_lines(text).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_bad_line_is_named_with_its_field() {
        let text = [
            GOOD,
            &GOOD.replace(r#""type":"joined""#, r#""type":"hired""#),
            "",
            &GOOD.replace(r#""kind":"human","#, ""),
            &GOOD.replace("2026-11-01T09:00:00Z", "yesterday"),
            "not json",
            &GOOD.replace(r#""owner":null"#, r#""ownr":null"#),
        ]
        .join("\n");
        let e = errors(&text);
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e[0].starts_with("line 2: field type: unknown value `hired`, expected one of"), "{}", e[0]);
        assert_eq!(e[1], "line 4: field identity.kind: required but missing");
        assert!(e[2].starts_with("line 5: field at: expected an RFC 3339 timestamp"), "{}", e[2]);
        assert!(e[3].starts_with("line 6: "), "{}", e[3]);
        assert!(e[4].starts_with("line 7: field identity.ownr: unknown field"), "{}", e[4]);
    }

    #[test]
    fn csv_uses_the_same_fields() {
        let text = "source,id,type,at,external_id,kind,name,owner,purpose,expires_at,attr.department\n\
                    hr,e1,joined,2026-11-01T09:00:00Z,E1,human,Ada,,,,engineering\n\
                    registry,e2,joined,2026-11-01T09:00:00Z,svc-1,service,Builder,hr:E1,ci builds,2027-01-01T00:00:00Z,\n";
        let got = csv(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, Position::Line(2));
        assert_eq!(got[0].1.identity.attributes["department"], "engineering");
        assert_eq!(got[1].1.identity.owner.as_deref(), Some("hr:E1"));
        assert!(got[1].1.identity.attributes.is_empty());
        let bad = "source,id,type,at,external_id,kind\nhr,e1,joined,2026-11-01T09:00:00Z,E1,human\nhr,e2,quit,2026-11-01T09:00:00Z,E2,human\n";
        let e = csv(bad).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].to_string().starts_with("line 3: field type: expected one of joined"), "{}", e[0]);
        let e = csv("source,id,colour\n").unwrap_err();
        assert!(e[0].to_string().starts_with("line 1: field colour: unknown column"), "{}", e[0]);
    }

    #[test]
    fn a_json_array_names_indices() {
        let body = format!("[{GOOD},{}]", GOOD.replace(r#""source":"hr","#, ""));
        let e = json_array(body.as_bytes()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].to_string(), "record 1: field source: required but missing");
        assert!(json_array(b"{}").is_err());
    }
}
