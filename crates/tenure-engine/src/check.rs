//! `tenure systems check`: whether tenure can work with each system of the policy, before a
//! job finds out. Per system: its settings load, TLS is on and verified (or said not to be),
//! tenure reaches it and its credentials are taken, its account base exists and can be
//! searched, its groups can be read, its certificate is not about to end. Each failure names
//! its class and what to do about it. Writing is checked where the system can take a trial
//! object and keep nothing of it (PostgreSQL rolls a created role back; a directory has a trial
//! entry added and deleted); a SCIM application and an exec system are not written to.

use crate::systems::Systems;
use tenure_connectors::ConnectorError;
use tenure_policy::{Bundle, SystemType};

pub use tenure_proto::{CheckOutcome as Outcome, SystemCheck as Check, SystemReport};

fn ok(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check: check.to_owned(), outcome: Outcome::Ok, detail: detail.into(), remedy: None }
}

fn failed(check: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
    Check { check: check.to_owned(), outcome: Outcome::Failed, detail: detail.into(), remedy: Some(remedy.into()) }
}

fn not_checked(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check: check.to_owned(), outcome: Outcome::NotChecked, detail: detail.into(), remedy: None }
}

/// What the system's settings say of TLS: on (and how it verifies) or off. `url` is the URL
/// with its variables expanded (the scheme is usually in a variable).
fn tls_of(kind: SystemType, settings: &std::collections::BTreeMap<String, String>, url: &str) -> Option<String> {
    let verify = if settings.get("tls_verify").map(String::as_str) == Some("false") {
        "verification OFF (`tls_verify = \"false\"`)"
    } else if settings.contains_key("tls_ca_file") {
        "verified against `tls_ca_file`"
    } else {
        "verified against the platform's CAs"
    };
    let on = match kind {
        SystemType::Ldap => url.starts_with("ldaps://") || settings.get("starttls").map(String::as_str) == Some("true"),
        SystemType::Postgres => {
            ["sslmode=require", "sslmode=verify-ca", "sslmode=verify-full"].iter().any(|m| url.contains(m))
        }
        SystemType::Scim => url.starts_with("https://"),
        SystemType::Exec => return None,
    };
    Some(if on { format!("on, {verify}") } else { "off: plain text on the network".into() })
}

/// The checks of system `name` of `policy`, with its connector from `systems`; `url` is its
/// URL once variables are expanded (for what it says about TLS).
pub async fn check_system(
    policy: &Bundle,
    systems: &Systems,
    name: &str,
    url: Option<&str>,
    lookup: &crate::systems::Lookup,
) -> SystemReport {
    let def = policy.systems.get(name);
    let kind = def.map(|d| d.kind).unwrap_or(SystemType::Exec);
    let mut checks = Vec::new();
    let report = |checks| SystemReport {
        system: name.to_owned(),
        kind: def.map(|d| format!("{:?}", d.kind).to_lowercase()).unwrap_or_default(),
        checks,
    };
    let connector = match systems.get(name) {
        Ok(c) => {
            checks.push(ok("settings", "loaded"));
            c
        }
        Err(e) => {
            checks.push(failed(
                "settings",
                e.to_string(),
                format!(
                    "fix `[systems.{name}]` in the policy bundle, or the variables it reads (`tenure config show`)"
                ),
            ));
            return report(checks);
        }
    };
    if let (Some(d), Some(url)) = (def, url)
        && let Some(tls) = tls_of(kind, &d.settings, url)
    {
        checks.push(if tls.starts_with("off") {
            not_checked("tls", tls)
        } else if tls.contains("OFF") {
            failed(
                "tls",
                tls,
                "set `tls_ca_file` to the CA that signed the server's certificate, and drop `tls_verify`",
            )
        } else {
            ok("tls", tls)
        });
    }
    // Reading an account no one has: the connection, the TLS handshake, the credentials and
    // the search base, all at once; the error says which failed.
    match connector.read_account("tenure-systems-check").await {
        Ok(_) => {
            checks.push(ok("reach", "connected"));
            checks.push(ok("credentials", "accepted"));
            checks.push(ok("base", "accounts can be searched"));
        }
        Err(e) => {
            let failure = classify(name, &e);
            // The handshake failed: that, not the settings' promise, is what TLS comes to.
            checks.retain(|c| c.check != failure.check);
            checks.push(failure);
            return report(checks);
        }
    }
    if let (Some(d), Some(url)) = (def, url) {
        checks.push(certificate(name, d, url, lookup).await);
    }
    match connector.list_entitlements().await {
        Ok(groups) => checks.push(ok("read groups", format!("{} group(s)", groups.len()))),
        Err(e) => checks.push(failed(
            "read groups",
            e.to_string(),
            "give the connection's account read access to the groups (`groups` under the base)",
        )),
    }
    checks.push(match connector.check_write().await {
        Ok(Some(tried)) => ok("write", tried),
        Ok(None) => not_checked(
            "write",
            "this connector makes no trial objects (one could have effects of its own, such as an invitation)",
        ),
        Err(e) => failed(
            "write",
            e.to_string(),
            "give the connection's account the right to create, change and delete accounts (LDAP: write access \
             to the people container; PostgreSQL: CREATEROLE)",
        ),
    });
    report(checks)
}

/// A server certificate this close to its end fails the check.
const CERTIFICATE_NOTICE_DAYS: i64 = 14;

/// The server certificate's expiry, from a handshake of its own (after StartTLS, or
/// PostgreSQL's SSL request, where the connection starts plain).
async fn certificate(name: &str, def: &tenure_policy::SystemDef, url: &str, lookup: &crate::systems::Lookup) -> Check {
    use tenure_connectors::tls::{Preamble, Verify};
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let on = tls_of(def.kind, &def.settings, url).is_some_and(|t| t.starts_with("on"));
    let (default_port, preamble) = match scheme {
        "ldaps" => (636, Preamble::None),
        "https" => (443, Preamble::None),
        "ldap" if on => (389, Preamble::LdapStartTls),
        "postgres" | "postgresql" if on => (5432, Preamble::PostgresSslRequest),
        "" => return not_checked("certificate", "no URL"),
        _ if on => return not_checked("certificate", "the URL is not one tenure reads a host and port from"),
        _ => return not_checked("certificate", "no TLS"),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
        Some((h, p)) => (h, p.strip_prefix(':')),
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let Ok(port) = port.map_or(Ok(default_port), str::parse::<u16>) else {
        return failed("certificate", format!("`{url}` has no port tenure can read"), "fix the URL's port");
    };
    let mut settings = std::collections::BTreeMap::new();
    for k in tenure_connectors::tls::KEYS {
        if let Some(v) = def.settings.get(k) {
            match crate::systems::expand_setting(k, v, lookup) {
                Ok(v) => {
                    settings.insert(k.to_owned(), v);
                }
                Err(e) => return failed("certificate", e.to_string(), format!("fix `{k}` or the variable it reads")),
            }
        }
    }
    let tls = match tenure_connectors::tls::Tls::from_map(name, &settings) {
        // PostgreSQL's `verify-ca` checks the chain, not the name, and so does this.
        Ok(t) if url.contains("sslmode=verify-ca") => t.with_verify(Verify::ChainOnly),
        Ok(t) => t,
        Err(e) => return failed("certificate", e.to_string(), "fix the system's TLS settings"),
    };
    match tls.certificate_expiry(host, port, preamble, std::time::Duration::from_secs(10)).await {
        Ok(end) => {
            let days = (end - tenure_model::Clock::now(&tenure_model::SystemClock)).whole_days();
            let when = format!("expires {} (in {days} days)", tenure_model::rfc3339(end));
            if days < CERTIFICATE_NOTICE_DAYS {
                failed("certificate", when, "renew the server's certificate before it ends")
            } else {
                ok("certificate", when)
            }
        }
        Err(e) => failed(
            "certificate",
            e,
            "set `tls_ca_file` to the CA that signed the server's certificate, or fix the certificate",
        ),
    }
}

/// Which check a connection error fails, with its remedy.
fn classify(name: &str, e: &ConnectorError) -> Check {
    let text = e.to_string();
    match e {
        ConnectorError::Unreachable { message, .. } if message.contains("TLS") => failed(
            "tls",
            text,
            "set `tls_ca_file` to the CA that signed the server's certificate, or fix the certificate (its name, its expiry)",
        ),
        ConnectorError::Unreachable { message, .. } if is_credentials(message) => {
            failed("credentials", text, "check the bind DN and password (the variables they read)")
        }
        ConnectorError::Unreachable { .. } => failed(
            "reach",
            text,
            format!("check `[systems.{name}]`'s URL (host, port), that the server runs, and the network path to it"),
        ),
        ConnectorError::Refused { operation, message, .. } if operation == "bind" || is_credentials(message) => {
            failed("credentials", text, "check the bind DN and password (the variables they read)")
        }
        ConnectorError::Refused { message, .. } if message.contains("noSuchObject") || message.contains("rc=32") => {
            failed("base", text, "create the base entry and its `people` container, or fix `base_dn`")
        }
        ConnectorError::Config { message, .. } if message.contains("credentials") => {
            failed("credentials", text, "check the token (the variable it reads)")
        }
        _ => failed("reach", text, "see the message; `tenure jobs status` shows what jobs meet"),
    }
}

/// PostgreSQL's refusals of a login (28P01 bad password, 28000 no such role or no pg_hba
/// line) and LDAP's invalid credentials (49).
fn is_credentials(message: &str) -> bool {
    ["28P01", "28000", "password authentication failed", "invalidCredentials", "rc=49"]
        .iter()
        .any(|m| message.contains(m))
}

/// The checks of every system of `policy` (or only `only`), its settings read through
/// `lookup`; an unknown `only` is `None`.
pub async fn check_systems(
    policy: &Bundle,
    lookup: &crate::systems::Lookup,
    only: Option<&str>,
) -> Option<Vec<SystemReport>> {
    if only.is_some_and(|n| !policy.systems.contains_key(n)) {
        return None;
    }
    let systems = Systems::build(policy, lookup);
    let mut out = Vec::new();
    for (name, def) in &policy.systems {
        if only.is_some_and(|n| n != name) {
            continue;
        }
        let url = def.settings.get("url").and_then(|u| crate::systems::expand_setting("url", u, lookup).ok());
        out.push(check_system(policy, &systems, name, url.as_deref(), lookup).await);
    }
    Some(out)
}
