//! Notification channels (`[notifications.NAME]` in `tenure.toml`): where tenure tells people
//! that something waits for them — review items, pending approvals, reminders, an attestation
//! falling due, a suspension. A channel is a webhook (every notice, signed the Standard
//! Webhooks way) or email over SMTP (each notice to the person it is for, at the address an
//! identity attribute holds).
//!
//! ```toml
//! [notifications.chatops]
//! type = "webhook"
//! url = "${TENURE_WEBHOOK_URL}"
//! secret = "${TENURE_WEBHOOK_SECRET}"   # `whsec_` + base64; only ever from the environment
//! on = ["review.assigned", "approval.pending"]   # absent: every kind
//!
//! [notifications.mail]
//! type = "email"
//! url = "${TENURE_SMTP_URL}"            # smtp://host:port, smtp+starttls://…, smtps://…
//! from = "tenure <tenure@example.com>"
//! username = "${TENURE_SMTP_USER}"
//! password = "${TENURE_SMTP_PASSWORD}"
//! address = "{email}"                   # the default: a template over the person, as in mappings
//! ```
//!
//! Settings take `${VAR}` like a system's; the engine expands them when it sends. A secret
//! (`secret`, `password`) must be a `${VAR}`: the bundle is versioned and shared, a secret is not.

use crate::attributes::Template;
use crate::bundle::MANIFEST;
use crate::error::{Problem, problem};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoticeKind {
    /// Review items were assigned to a reviewer (a campaign started, or items reached their stage).
    ReviewAssigned,
    /// A reviewer still has items and the deadline nears.
    ReviewReminder,
    /// A request waits for an approver.
    ApprovalPending,
    /// An NHI's owner must attest it before its deadline.
    AttestationDue,
    /// An NHI was suspended (its owner did not attest, nobody took it over, it expired).
    IdentitySuspended,
}

impl NoticeKind {
    pub const ALL: [Self; 5] = [
        Self::ReviewAssigned,
        Self::ReviewReminder,
        Self::ApprovalPending,
        Self::AttestationDue,
        Self::IdentitySuspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReviewAssigned => "review.assigned",
            Self::ReviewReminder => "review.reminder",
            Self::ApprovalPending => "approval.pending",
            Self::AttestationDue => "attestation.due",
            Self::IdentitySuspended => "identity.suspended",
        }
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NoticeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown notice kind `{s}` (one of {})", all.join(", "))
        })
    }
}

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// An HTTP POST of each notice, HMAC-signed (Standard Webhooks).
    Webhook,
    /// An email to the person each notice is for.
    Email,
}

/// One `[notifications.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// The notice kinds it carries.
    pub on: BTreeSet<NoticeKind>,
    /// Its settings as written (`${VAR}` not yet expanded): `url`, `secret`, `from`, …
    pub settings: BTreeMap<String, String>,
    /// A person's address (email channels): a template over the identity, `{email}` unless set.
    pub address: Template,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelSection {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    on: Option<Vec<String>>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    tls_ca_file: Option<String>,
    #[serde(default)]
    tls_verify: Option<String>,
}

/// Whether `v` is one `${VAR}` and nothing else.
fn only_var(v: &str) -> bool {
    v.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

pub(crate) fn channels(
    sections: &BTreeMap<String, ChannelSection>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Channel> {
    let mut out = BTreeMap::new();
    for (name, s) in sections {
        let at = format!("notifications.{name}");
        let before = problems.len();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(problem(MANIFEST, &at, "a channel name is letters, digits, `-` and `_`"));
        }
        let kind = match s.kind.as_str() {
            "webhook" => Some(ChannelKind::Webhook),
            "email" => Some(ChannelKind::Email),
            other => {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.type"),
                    format!("`{other}`: a channel is `webhook` or `email`"),
                ));
                None
            }
        };
        let on = match &s.on {
            None => NoticeKind::ALL.into_iter().collect(),
            Some(list) => {
                let mut on = BTreeSet::new();
                for k in list {
                    match k.parse::<NoticeKind>() {
                        Ok(k) => {
                            on.insert(k);
                        }
                        Err(e) => problems.push(problem(MANIFEST, format!("{at}.on"), e)),
                    }
                }
                if list.is_empty() {
                    problems.push(problem(MANIFEST, format!("{at}.on"), "a channel carries at least one notice kind"));
                }
                on
            }
        };
        let mut settings = BTreeMap::new();
        let fields = [
            ("url", &s.url),
            ("secret", &s.secret),
            ("from", &s.from),
            ("username", &s.username),
            ("password", &s.password),
            ("tls_ca_file", &s.tls_ca_file),
            ("tls_verify", &s.tls_verify),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                settings.insert(k.to_owned(), v.clone());
            }
        }
        let (required, allowed): (&[&str], &[&str]) = match kind {
            Some(ChannelKind::Webhook) => (&["url", "secret"], &["url", "secret", "tls_ca_file", "tls_verify"]),
            Some(ChannelKind::Email) => {
                (&["url", "from"], &["url", "from", "username", "password", "tls_ca_file", "tls_verify"])
            }
            None => (&[], &[]),
        };
        if kind.is_some() {
            for r in required {
                if !settings.contains_key(*r) {
                    problems.push(problem(MANIFEST, format!("{at}.{r}"), "required"));
                }
            }
            for k in settings.keys() {
                if !allowed.contains(&k.as_str()) {
                    problems.push(problem(
                        MANIFEST,
                        format!("{at}.{k}"),
                        format!("not a setting of a `{}` channel", s.kind),
                    ));
                }
            }
        }
        for secret in ["secret", "password"] {
            if settings.get(secret).is_some_and(|v| !only_var(v)) {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.{secret}"),
                    "a secret is read from the environment: write it as `${VAR}` (a variable ending in `_SECRET` or `_PASSWORD`, or one with a `_FILE`)",
                ));
            }
        }
        if let Some(url) = settings.get("url").filter(|u| !u.starts_with("${")) {
            let schemes: &[&str] = match kind {
                Some(ChannelKind::Webhook) => &["http://", "https://"],
                Some(ChannelKind::Email) => &["smtp://", "smtp+starttls://", "smtps://"],
                None => &[],
            };
            if kind.is_some() && !schemes.iter().any(|p| url.starts_with(p)) {
                problems.push(problem(
                    MANIFEST,
                    format!("{at}.url"),
                    format!("`{url}`: starts with one of {}", schemes.join(", ")),
                ));
            }
        }
        if s.address.is_some() && kind != Some(ChannelKind::Email) {
            problems.push(problem(MANIFEST, format!("{at}.address"), "only an email channel has an address"));
        }
        let address = match Template::parse(s.address.as_deref().unwrap_or("{email}")) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(problem(MANIFEST, format!("{at}.address"), e));
                None
            }
        };
        if let (Some(kind), Some(address), true) = (kind, address, problems.len() == before) {
            out.insert(name.clone(), Channel { name: name.clone(), kind, on, settings, address });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<BTreeMap<String, Channel>, Vec<Problem>> {
        let sections: BTreeMap<String, ChannelSection> =
            toml::from_str(toml).map_err(|e| vec![problem(MANIFEST, "", e.to_string())])?;
        let mut problems = Vec::new();
        let out = channels(&sections, &mut problems);
        if problems.is_empty() { Ok(out) } else { Err(problems) }
    }

    #[test]
    fn a_webhook_and_an_email_channel_load() {
        let c = load(
            r#"
            [hook]
            type = "webhook"
            url = "${TENURE_WEBHOOK_URL}"
            secret = "${TENURE_WEBHOOK_SECRET}"
            on = ["review.assigned"]
            [mail]
            type = "email"
            url = "smtp://127.0.0.1:25"
            from = "tenure@example.com"
            "#,
        )
        .unwrap();
        assert_eq!(c["hook"].kind, ChannelKind::Webhook);
        assert_eq!(c["hook"].on, [NoticeKind::ReviewAssigned].into());
        assert_eq!(c["mail"].on.len(), NoticeKind::ALL.len());
        assert_eq!(c["mail"].address.as_str(), "{email}");
    }

    #[test]
    fn problems_name_the_channel_and_field() {
        let p = load(
            r#"
            [hook]
            type = "webhook"
            url = "ftp://x"
            secret = "hunter2"
            from = "x@example.com"
            on = ["review.started"]
            [mail]
            type = "pager"
            [mail2]
            type = "email"
            url = "smtp://127.0.0.1"
            from = "tenure@example.com"
            address = "{email.work}"
            "#,
        )
        .unwrap_err();
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        for want in [
            "notifications.hook.url",
            "notifications.hook.secret",
            "notifications.hook.from",
            "notifications.hook.on",
            "notifications.mail.type",
            "notifications.mail2.address",
        ] {
            assert!(all.contains(want), "{want} missing from {all}");
        }
        assert!(all.contains("`${VAR}`"), "{all}");
    }

    #[test]
    fn a_webhook_needs_its_secret() {
        let p = load("[hook]\ntype = \"webhook\"\nurl = \"https://example.com/hook\"\n").unwrap_err();
        assert!(p.iter().any(|p| p.field == "notifications.hook.secret"), "{p:?}");
    }
}
