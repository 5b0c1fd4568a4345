//! A system's reconciliation rules, from `[systems.NAME.reconcile]` and
//! `[[systems.NAME.correlate]]`: how often to run, how large a page to read, which identity an
//! account not made by tenure belongs to, what to do about each situation, and how much one run
//! (and a window of runs) may change before it waits for a person.

use crate::error::{Problem, problem};
use std::collections::BTreeMap;
use std::time::Duration;
use tenure_model::{Reaction, Situation};

const MANIFEST: &str = "tenure.toml";

/// The name tenure's own reconciliation checks run under; no system may take it.
pub const TENURE_SYSTEM: &str = "tenure";

/// An account attribute compared with an identity attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    /// The account's attribute, lowercase (`mail`, `email`, `employeenumber`, or `name` for
    /// the account name itself).
    pub account: String,
    /// The identity's attribute (`email`), or `external_id`.
    pub identity: String,
    pub ignore_case: bool,
}

impl Correlation {
    /// The identity's value this rule compares: `external_id` and `reference` from the
    /// reference (`source:external_id`), anything else from its attributes.
    pub fn identity_value<'a>(&self, reference: &'a str, attributes: &'a BTreeMap<String, String>) -> Option<&'a str> {
        let v = match self.identity.as_str() {
            "external_id" => reference.split_once(':').map(|(_, e)| e),
            "reference" => Some(reference),
            other => attributes.get(other).map(String::as_str),
        };
        v.filter(|v| !v.trim().is_empty())
    }

    /// The account's value this rule compares (`name` is the account name).
    pub fn account_value<'a>(&self, name: &'a str, attributes: &'a BTreeMap<String, String>) -> Option<&'a str> {
        let v = if self.account == "name" { Some(name) } else { attributes.get(&self.account).map(String::as_str) };
        v.filter(|v| !v.trim().is_empty())
    }

    /// The comparable form of a value under this rule.
    pub fn key(&self, value: &str) -> String {
        let v = value.trim();
        if self.ignore_case { v.to_lowercase() } else { v.to_owned() }
    }
}

/// How much a run may change before it is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Changes (reactions other than `report`) in one run.
    pub max_changes: u64,
    /// Changes as a percentage of the accounts read; whichever of the two limits is lower
    /// applies.
    pub max_percent: Option<u32>,
    /// Per situation class.
    pub per_class: BTreeMap<Situation, u64>,
    /// Changes across all runs of the system within `window`, this one included.
    pub window: Duration,
    pub window_max_changes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_changes: 25,
            // Off unless set: in a small system one change is already a large share.
            max_percent: None,
            per_class: BTreeMap::new(),
            window: Duration::from_secs(86_400),
            window_max_changes: 100,
        }
    }
}

/// A system's reconciliation rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileRules {
    /// Run by `tenure serve` this often; `None`: only when asked.
    pub every: Option<Duration>,
    pub page_size: usize,
    pub correlate: Vec<Correlation>,
    /// Reactions the bundle sets; other situations take [`Situation::default_reaction`].
    pub reactions: BTreeMap<Situation, Reaction>,
    pub thresholds: Thresholds,
    /// How long a `delete` reaction keeps the account disabled before deleting it.
    pub delete_after: Duration,
}

impl ReconcileRules {
    pub fn reaction(&self, s: Situation) -> Reaction {
        self.reactions.get(&s).copied().unwrap_or_else(|| s.default_reaction())
    }

    /// Account attributes the correlation rules read.
    pub fn account_attributes(&self) -> Vec<String> {
        let mut a: Vec<String> = self.correlate.iter().map(|c| c.account.clone()).filter(|a| a != "name").collect();
        a.sort();
        a.dedup();
        a
    }
}

fn duration(at: &str, v: &toml::Value, problems: &mut Vec<Problem>) -> Option<Duration> {
    let parsed = v.as_str().map(tenure_model::credential::parse_ttl);
    match parsed {
        Some(Ok(d)) => Some(d.unsigned_abs()),
        Some(Err(e)) => {
            problems.push(problem(MANIFEST, at, e.to_string()));
            None
        }
        None => {
            problems.push(problem(MANIFEST, at, format!("expected a duration such as \"1h\", found `{v}`")));
            None
        }
    }
}

fn count(at: &str, v: &toml::Value, max: i64, problems: &mut Vec<Problem>) -> Option<u64> {
    match v.as_integer() {
        Some(n) if (0..=max).contains(&n) => u64::try_from(n).ok(),
        _ => {
            problems.push(problem(MANIFEST, at, format!("expected a whole number from 0 to {max}, found `{v}`")));
            None
        }
    }
}

fn situation(at: &str, key: &str, problems: &mut Vec<Problem>) -> Option<Situation> {
    match key.parse::<Situation>() {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(problem(MANIFEST, format!("{at}.{key}"), e));
            None
        }
    }
}

/// Read the rules of `systems.NAME` from its `reconcile` table and `correlate` array (either
/// may be absent).
pub(crate) fn parse(
    system: &str,
    reconcile: Option<toml::Value>,
    correlate: Option<toml::Value>,
) -> Result<ReconcileRules, Vec<Problem>> {
    let at = format!("systems.{system}.reconcile");
    let mut problems = Vec::new();
    let mut rules =
        ReconcileRules { page_size: 500, delete_after: Duration::from_secs(7 * 86_400), ..ReconcileRules::default() };
    match reconcile {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (k, v) in t {
                let field = format!("{at}.{k}");
                match k.as_str() {
                    "every" => rules.every = duration(&field, &v, &mut problems),
                    "delete_after" => {
                        if let Some(d) = duration(&field, &v, &mut problems) {
                            rules.delete_after = d;
                        }
                    }
                    "page_size" => {
                        if let Some(n) = count(&field, &v, 100_000, &mut problems) {
                            rules.page_size = usize::try_from(n.max(1)).unwrap_or(500);
                        }
                    }
                    "max_changes" => {
                        if let Some(n) = count(&field, &v, 10_000_000, &mut problems) {
                            rules.thresholds.max_changes = n;
                        }
                    }
                    "max_percent" => {
                        rules.thresholds.max_percent =
                            count(&field, &v, 100, &mut problems).and_then(|n| u32::try_from(n).ok());
                    }
                    "window" => {
                        if let Some(d) = duration(&field, &v, &mut problems) {
                            rules.thresholds.window = d;
                        }
                    }
                    "window_max_changes" => {
                        if let Some(n) = count(&field, &v, 10_000_000, &mut problems) {
                            rules.thresholds.window_max_changes = n;
                        }
                    }
                    "reactions" | "max_per_class" => {
                        let Some(table) = v.as_table() else {
                            problems.push(problem(MANIFEST, field, "expected a table keyed by situation"));
                            continue;
                        };
                        for (key, value) in table {
                            let Some(s) = situation(&field, key, &mut problems) else { continue };
                            let here = format!("{field}.{key}");
                            if k == "max_per_class" {
                                if let Some(n) = count(&here, value, 10_000_000, &mut problems) {
                                    rules.thresholds.per_class.insert(s, n);
                                }
                                continue;
                            }
                            match value.as_str().map(str::parse::<Reaction>) {
                                Some(Ok(r)) if s.allows(r) => {
                                    rules.reactions.insert(s, r);
                                }
                                Some(Ok(r)) => problems.push(problem(
                                    MANIFEST,
                                    here,
                                    format!("`{r}` is not a reaction to `{s}`"),
                                )),
                                Some(Err(e)) => problems.push(problem(MANIFEST, here, e)),
                                None => problems.push(problem(MANIFEST, here, "expected a reaction name")),
                            }
                        }
                    }
                    _ => problems.push(problem(
                        MANIFEST,
                        field,
                        "unknown field; expected every, page_size, max_changes, max_percent, window, window_max_changes, delete_after, reactions or max_per_class",
                    )),
                }
            }
        }
        Some(other) => problems.push(problem(MANIFEST, at, format!("expected a table, found `{other}`"))),
    }
    let at = format!("systems.{system}.correlate");
    match correlate {
        None => {}
        Some(toml::Value::Array(rules_in)) => {
            for (i, r) in rules_in.into_iter().enumerate() {
                let here = format!("{at}[{i}]");
                let text = |k: &str| r.get(k).and_then(toml::Value::as_str).map(str::to_owned);
                match (text("account"), text("identity")) {
                    (Some(account), Some(identity)) if !account.is_empty() && !identity.is_empty() => {
                        let ignore_case = match r.get("ignore_case") {
                            None => true,
                            Some(toml::Value::Boolean(b)) => *b,
                            Some(other) => {
                                problems.push(problem(
                                    MANIFEST,
                                    format!("{here}.ignore_case"),
                                    format!("expected true or false, found `{other}`"),
                                ));
                                true
                            }
                        };
                        rules.correlate.push(Correlation {
                            account: account.to_ascii_lowercase(),
                            identity,
                            ignore_case,
                        });
                    }
                    _ => problems.push(problem(
                        MANIFEST,
                        here,
                        "expected `account = \"ATTRIBUTE\"` and `identity = \"ATTRIBUTE\"`",
                    )),
                }
            }
        }
        Some(other) => problems.push(problem(MANIFEST, at, format!("expected an array of tables, found `{other}`"))),
    }
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<ReconcileRules, Vec<Problem>> {
        let mut t: toml::Table = toml::from_str(s).unwrap();
        parse("dir", t.remove("reconcile"), t.remove("correlate"))
    }

    #[test]
    fn rules_read_with_defaults_and_problems_name_the_field() {
        let r = parse_str(
            r#"
[reconcile]
every = "1h"
max_changes = 3
reactions = { unmatched = "disable", unmanaged_membership = "revoke" }
max_per_class = { unmatched = 2 }
[[correlate]]
account = "mail"
identity = "email"
"#,
        )
        .unwrap();
        assert_eq!(r.every, Some(Duration::from_secs(3600)));
        assert_eq!(r.thresholds.max_changes, 3);
        assert_eq!(r.reaction(Situation::Unmatched), Reaction::Disable);
        assert_eq!(r.reaction(Situation::SurvivingLeaver), Reaction::Disable);
        assert_eq!(r.reaction(Situation::Unlinked), Reaction::Report);
        assert_eq!(r.correlate[0].key(" Ada@Example.COM "), "ada@example.com");
        assert_eq!(r.account_attributes(), ["mail"]);

        let e = parse_str("[reconcile]\nreactions = { missing = \"delete\", nope = \"report\" }\n").unwrap_err();
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|p| p.contains("systems.dir.reconcile.reactions.missing") && p.contains("not a reaction")),
            "{shown:?}"
        );
        assert!(shown.iter().any(|p| p.contains("reactions.nope")), "{shown:?}");
        let e = parse_str("[[correlate]]\naccount = \"mail\"\n").unwrap_err();
        assert!(e[0].to_string().contains("systems.dir.correlate[0]"), "{e:?}");
    }
}
