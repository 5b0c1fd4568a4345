//! The configuration file (`--config FILE`, `TENURE_CONFIG`): TOML with a key per setting,
//! layered under the environment and the flags (a flag beats its environment variable, which
//! beats the file, which beats the default). The file's values become the flags nobody gave
//! and no variable sets, before the command line is parsed; `tenure config show` prints every
//! setting's effective value and where it came from, secrets redacted.
//!
//! ```toml
//! data_dir = "/var/lib/tenure"
//! policy = "/etc/tenure/policy"
//! log_format = "json"
//! job_max_attempts = 5
//!
//! [serve]
//! listen = "0.0.0.0:8080"
//! public_url = "https://tenure.example.com"
//! ```

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// Where a setting applies: every command, or `serve` only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    Serve,
}

/// A setting: its key in the file, its flag, its variable.
struct Setting {
    key: &'static str,
    scope: Scope,
    env: &'static str,
}

const fn s(key: &'static str, scope: Scope, env: &'static str) -> Setting {
    Setting { key, scope, env }
}

/// Every setting a file may hold (the flag is the key with `-` for `_`).
const SETTINGS: &[Setting] = &[
    s("data_dir", Scope::Global, "TENURE_DATA_DIR"),
    s("policy", Scope::Global, "TENURE_POLICY"),
    s("log_format", Scope::Global, "TENURE_LOG_FORMAT"),
    s("job_max_attempts", Scope::Global, "TENURE_JOB_MAX_ATTEMPTS"),
    s("job_backoff_secs", Scope::Global, "TENURE_JOB_BACKOFF_SECS"),
    s("job_backoff_max_secs", Scope::Global, "TENURE_JOB_BACKOFF_MAX_SECS"),
    s("listen", Scope::Serve, "TENURE_LISTEN"),
    s("workers", Scope::Serve, "TENURE_WORKERS"),
    s("job_lease_secs", Scope::Serve, "TENURE_JOB_LEASE_SECS"),
    s("max_connections", Scope::Serve, "TENURE_MAX_CONNECTIONS"),
    s("header_timeout_secs", Scope::Serve, "TENURE_HEADER_TIMEOUT_SECS"),
    s("body_timeout_secs", Scope::Serve, "TENURE_BODY_TIMEOUT_SECS"),
    s("auth_failures_per_minute", Scope::Serve, "TENURE_AUTH_FAILURES_PER_MINUTE"),
    s("public_url", Scope::Serve, "TENURE_PUBLIC_URL"),
    s("checkpoint_secs", Scope::Serve, "TENURE_CHECKPOINT_SECS"),
    s("bootstrap_admin", Scope::Serve, "TENURE_BOOTSTRAP_ADMIN"),
];

/// Values the file gave, by key.
pub type FileValues = BTreeMap<&'static str, String>;

/// The parsed command line and what the file added to it, for `config show`.
pub static LAYERED: std::sync::OnceLock<(clap::ArgMatches, FileValues)> = std::sync::OnceLock::new();

/// The file named by `--config` (or `TENURE_CONFIG`) in `args`, if any.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("TENURE_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Read and check a configuration file: known keys only, scalar values.
pub fn read(path: &std::path::Path) -> anyhow::Result<FileValues> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config `{}`", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("config `{}`", path.display()))?;
    let mut out = FileValues::new();
    let mut take = |scope: Scope, t: &toml::Table, prefix: &str| -> anyhow::Result<()> {
        for (k, v) in t {
            if scope == Scope::Global && k == "serve" {
                continue;
            }
            let Some(setting) = SETTINGS.iter().find(|s| s.key == k && s.scope == scope) else {
                let known: Vec<&str> = SETTINGS.iter().filter(|s| s.scope == scope).map(|s| s.key).collect();
                bail!("config `{}`: unknown key `{prefix}{k}` (known: {})", path.display(), known.join(", "));
            };
            let value = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => bail!("config `{}`: `{prefix}{k}` must be a string or a number", path.display()),
            };
            out.insert(setting.key, value);
        }
        Ok(())
    };
    take(Scope::Global, &table, "")?;
    match table.get("serve") {
        None => {}
        Some(toml::Value::Table(t)) => take(Scope::Serve, t, "serve.")?,
        Some(_) => bail!("config `{}`: `serve` must be a table ([serve])", path.display()),
    }
    Ok(out)
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Whether `args` give `flag` (as `--flag value` or `--flag=value`).
fn given(args: &[OsString], flag: &str) -> bool {
    args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}="))
    })
}

/// The command line with the file's values added as the flags nobody gave and no variable
/// sets; and the values taken from the file, for `config show`.
pub fn layered(args: Vec<OsString>) -> anyhow::Result<(Vec<OsString>, FileValues)> {
    let Some(path) = config_path(&args) else { return Ok((args, FileValues::new())) };
    let file = read(&path)?;
    let mut global = Vec::new();
    let mut serve = Vec::new();
    let mut used = FileValues::new();
    for setting in SETTINGS {
        let Some(value) = file.get(setting.key) else { continue };
        let f = flag(setting.key);
        if given(&args, &f) || std::env::var_os(setting.env).is_some() {
            continue;
        }
        let to = if setting.scope == Scope::Global { &mut global } else { &mut serve };
        to.push(OsString::from(format!("{f}={value}")));
        used.insert(setting.key, value.clone());
    }
    let mut out: Vec<OsString> = args.iter().take(1).cloned().collect();
    out.extend(global);
    let rest: Vec<OsString> = args.iter().skip(1).cloned().collect();
    // Serve's own flags go after the `serve` subcommand (the first argument that is it).
    match rest.iter().position(|a| a == "serve") {
        Some(i) if !serve.is_empty() => {
            out.extend(rest.iter().take(i + 1).cloned());
            out.extend(serve);
            out.extend(rest.iter().skip(i + 1).cloned());
        }
        _ => out.extend(rest),
    }
    Ok((out, used))
}

/// A value shown without what it must not show.
fn shown(key: &str, value: &str) -> String {
    let k = key.to_ascii_uppercase();
    let secret = ["PASSWORD", "TOKEN", "SECRET", "KEY"].iter().any(|s| k.ends_with(s)) && !k.ends_with("_FILE");
    if secret { "(redacted)".to_owned() } else { value.to_owned() }
}

/// `tenure config show`: each setting's effective value and origin (flag, environment, file,
/// default), then the other `TENURE_*` variables the policy bundle may read, secrets redacted.
pub fn show(
    matches: &clap::ArgMatches,
    file: &FileValues,
    config: Option<&std::path::Path>,
    output: crate::cli::Output,
) -> anyhow::Result<()> {
    use clap::parser::ValueSource;
    let serve_cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let serve_defaults = serve_cmd.find_subcommand("serve").map(|c| {
        c.get_arguments()
            .filter_map(|a| {
                a.get_default_values().first().map(|d| (a.get_id().to_string(), d.to_string_lossy().into_owned()))
            })
            .collect::<BTreeMap<_, _>>()
    });
    let mut rows: Vec<(String, &str, Option<String>)> = Vec::new();
    for setting in SETTINGS {
        let (value, from) = match setting.scope {
            Scope::Global => {
                let value =
                    matches.get_raw(setting.key).and_then(|mut v| v.next()).map(|v| v.to_string_lossy().into_owned());
                let from = match matches.value_source(setting.key) {
                    _ if file.contains_key(setting.key) => "file",
                    Some(ValueSource::CommandLine) => "flag",
                    Some(ValueSource::EnvVariable) => "environment",
                    Some(ValueSource::DefaultValue) => "default",
                    _ => "unset",
                };
                (value, from)
            }
            Scope::Serve => {
                if let Some(v) = std::env::var_os(setting.env) {
                    (Some(v.to_string_lossy().into_owned()), "environment")
                } else if let Some(v) = file.get(setting.key) {
                    (Some(v.clone()), "file")
                } else {
                    match serve_defaults.as_ref().and_then(|d| d.get(setting.key)) {
                        Some(d) => (Some(d.clone()), "default"),
                        None => (None, "unset"),
                    }
                }
            }
        };
        let key = if setting.scope == Scope::Serve { format!("serve.{}", setting.key) } else { setting.key.to_owned() };
        rows.push((key, from, value.map(|v| shown(setting.key, &v))));
    }
    let settings: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
    let mut others: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TENURE_") && !settings.contains(&k.as_str()) && k != "TENURE_CONFIG")
        .collect();
    others.sort();
    if output == crate::cli::Output::Json {
        let settings: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(k, from, v)| (k.clone(), serde_json::json!({ "value": v, "from": from }))).collect();
        let env: serde_json::Map<String, serde_json::Value> =
            others.iter().map(|(k, v)| (k.clone(), shown(k, v).into())).collect();
        let doc = serde_json::json!({ "config_file": config, "settings": settings, "policy_environment": env });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    match config {
        Some(p) => println!("config file: {}", p.display()),
        None => println!("config file: none (--config, TENURE_CONFIG)"),
    }
    println!("{:<32} {:<12} VALUE", "SETTING", "FROM");
    for (key, from, value) in &rows {
        println!("{key:<32} {from:<12} {}", value.as_deref().unwrap_or_default());
    }
    if !others.is_empty() {
        println!("\nenvironment the policy bundle may read:");
        for (k, v) in others {
            println!("{k:<32} {}", shown(&k, &v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_tables_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("tenure.toml");
        let check = |text: &str| {
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
            read(&p).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(check("data_dir = \"/d\"\n[serve]\nworkers = 8\n").ok().map(|v| v.len()), Some(2));
        assert!(check("data_dirr = \"/d\"").is_err_and(|e| e.contains("unknown key `data_dirr`")));
        assert!(check("[serve]\ndata_dir = \"/d\"").is_err_and(|e| e.contains("unknown key `serve.data_dir`")));
        assert!(check("listen = \"x\"").is_err_and(|e| e.contains("unknown key `listen`")));
        assert!(check("workers = [1]").is_err_and(|e| e.contains("unknown key")));
        assert!(check("[serve]\nworkers = [1]").is_err_and(|e| e.contains("must be a string or a number")));
    }

    #[test]
    fn secrets_are_redacted_and_file_names_are_not() {
        assert_eq!(shown("TENURE_LDAP_PASSWORD", "hunter2"), "(redacted)");
        assert_eq!(shown("TENURE_SCIM_TOKEN", "t"), "(redacted)");
        assert_eq!(shown("TENURE_LDAP_PASSWORD_FILE", "/run/secret"), "/run/secret");
        assert_eq!(shown("data_dir", "/d"), "/d");
    }
}
