//! Shadow paths (CI/CD runners, backup consoles, anything without an API): a configured program
//! does the work. tenure runs it once per operation with the operation's name as its only
//! argument, a JSON request on stdin and a JSON result expected on stdout, under a timeout, with a
//! cleared environment. Values never reach a command line or a shell: a name like
//! `$(touch /tmp/x); rm -rf /` is a string inside JSON.
//!
//! Request: `{"operation": "...", "system": "...", "account": "...", "target": "...",
//! "spec": {...}}`. Result: `{"ok": true}` plus, for `read_account`, `"account": null | {"name",
//! "enabled", "memberships": [...], "reference", "attributes": {...}}`, for
//! `list_entitlements` `"entitlements": [...]`, for `probe` `"probe": "refused" | "allowed" |
//! "unsupported"` (with `"detail"`); or `{"ok": false, "error": "..."}`.
//!
//! `list` (reconciliation's read of the whole system) streams instead: one account object per
//! line on stdout, as it reads them, and exit 0 when it has listed everything. A line that is
//! not an account, a pause longer than the timeout or any other exit is an incomplete read.

use crate::{
    AccountRecord, AccountSpec, Connector, ConnectorError, PageSink, Pager, Probe, ScanRequest, ScanTotals,
    expand_account_name,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// The program (an absolute path).
    pub command: String,
    pub timeout: Duration,
    pub account_name: String,
}

impl ExecSettings {
    pub fn from_map(system: &str, s: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config { system: system.to_owned(), message };
        for k in s.keys() {
            if !["command", "timeout_secs", "account_name"].contains(&k.as_str()) {
                return Err(config(format!("unknown setting `{k}` (expected command, timeout_secs, account_name)")));
            }
        }
        let command = s.get("command").cloned().ok_or_else(|| config("missing setting `command`".into()))?;
        if !command.starts_with('/') {
            return Err(config(format!("field `command`: expected an absolute path, found `{command}`")));
        }
        let timeout = match s.get("timeout_secs") {
            None => 30,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| config(format!("field `timeout_secs`: expected seconds, found `{t}`")))?,
        };
        Ok(Self {
            command,
            timeout: Duration::from_secs(timeout),
            account_name: s.get("account_name").cloned().unwrap_or_else(|| "{external_id}".into()),
        })
    }
}

pub struct ExecConnector {
    system: String,
    settings: ExecSettings,
}

impl ExecConnector {
    pub fn new(system: &str, settings: ExecSettings) -> Self {
        Self { system: system.to_owned(), settings }
    }

    /// The program, started for `operation`, with a clean environment and piped standard streams.
    fn spawn(&self, operation: &str) -> Result<tokio::process::Child, ConnectorError> {
        tokio::process::Command::new(&self.settings.command)
            .arg(operation)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ConnectorError::Unreachable {
                system: self.system.clone(),
                message: format!("cannot run `{}`: {e}", self.settings.command),
            })
    }

    /// Run one operation; the result object on success.
    async fn run(&self, operation: &'static str, mut request: Value) -> Result<Value, ConnectorError> {
        let refused = |message: String| ConnectorError::Refused {
            system: self.system.clone(),
            operation: operation.to_owned(),
            message,
        };
        if let Some(o) = request.as_object_mut() {
            o.insert("operation".into(), operation.into());
            o.insert("system".into(), self.system.clone().into());
        }
        let mut child = self.spawn(operation)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(request.to_string().as_bytes())
                .await
                .map_err(|e| refused(format!("writing the request: {e}")))?;
        }
        let out = match tokio::time::timeout(self.settings.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| refused(e.to_string()))?,
            Err(_) => {
                return Err(ConnectorError::Unreachable {
                    system: self.system.clone(),
                    message: format!("`{}` did not answer within {:?}", self.settings.command, self.settings.timeout),
                });
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let result: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| refused(format!("exit {}: not a JSON result ({e}); stderr: {}", out.status, stderr.trim())))?;
        if !out.status.success() || result.get("ok") != Some(&Value::Bool(true)) {
            let why = result.get("error").and_then(Value::as_str).unwrap_or(stderr.trim()).to_owned();
            return Err(refused(format!("exit {}: {why}", out.status)));
        }
        Ok(result)
    }
}

fn record(v: &Value) -> Option<AccountRecord> {
    Some(AccountRecord {
        name: v.get("name")?.as_str()?.to_owned(),
        enabled: v.get("enabled")?.as_bool()?,
        memberships: v
            .get("memberships")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect(),
        // The marker the program keeps for tenure: the `reference` it was created with.
        managed_by: v.get("reference").and_then(Value::as_str).map(str::to_owned),
        reserved: v.get("reserved").and_then(Value::as_bool).unwrap_or(false),
        privileges: Default::default(),
        attributes: v
            .get("attributes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
            .collect(),
        // When the system last saw it sign in, if the program knows (RFC 3339).
        last_login: v
            .get("last_login")
            .and_then(Value::as_str)
            .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()),
    })
}

#[async_trait]
impl Connector for ExecConnector {
    fn system(&self) -> &str {
        &self.system
    }

    fn account_name(&self, source: &str, external_id: &str) -> String {
        expand_account_name(&self.settings.account_name, source, external_id)
    }

    async fn scan(&self, request: &ScanRequest, sink: PageSink<'_>) -> Result<ScanTotals, ConnectorError> {
        let mut pager = Pager::new(request.page_size, sink);
        let incomplete = |pager: &Pager<'_>, message: String| ConnectorError::Incomplete {
            system: self.system.clone(),
            page: pager.page_number(),
            message,
        };
        let mut child = self.spawn("list")?;
        if let Some(mut stdin) = child.stdin.take() {
            let body = json!({ "operation": "list", "system": self.system, "attributes": request.attributes });
            // A program that lists without reading its request may have closed stdin already.
            if let Err(e) = stdin.write_all(body.to_string().as_bytes()).await
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(incomplete(&pager, format!("writing the request: {e}")));
            }
        }
        let Some(stdout) = child.stdout.take() else { return Err(incomplete(&pager, "no output".into())) };
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut number = 0u64;
        loop {
            // The timeout is per line: a long listing may take long, a silent program may not.
            let line = match tokio::time::timeout(self.settings.timeout, lines.next_line()).await {
                Ok(Ok(Some(l))) => l,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(incomplete(&pager, format!("reading line {}: {e}", number + 1))),
                Err(_) => {
                    return Err(incomplete(
                        &pager,
                        format!("no line within {:?} after line {number}", self.settings.timeout),
                    ));
                }
            };
            number += 1;
            if line.trim().is_empty() {
                continue;
            }
            let account = serde_json::from_str::<Value>(&line).ok().as_ref().and_then(record).ok_or_else(|| {
                let shown: String = line.chars().take(120).collect();
                incomplete(&pager, format!("line {number} is not an account (`name`, `enabled`): `{shown}`"))
            })?;
            pager.account(account)?;
        }
        let status = match tokio::time::timeout(self.settings.timeout, child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(incomplete(&pager, e.to_string())),
            Err(_) => return Err(incomplete(&pager, "the program did not exit after its last line".into())),
        };
        if !status.success() {
            return Err(incomplete(
                &pager,
                format!("`{}` ended with {status} after {number} lines", self.settings.command),
            ));
        }
        pager.finish()
    }

    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError> {
        let r = self.run("list_entitlements", json!({})).await?;
        Ok(r.get("entitlements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect())
    }

    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError> {
        let r = self.run("read_account", json!({ "account": name })).await?;
        match r.get("account") {
            None | Some(Value::Null) => Ok(None),
            Some(a) => record(a).map(Some).ok_or_else(|| ConnectorError::Refused {
                system: self.system.clone(),
                operation: "read_account".into(),
                message: format!("malformed account in the result: {a}"),
            }),
        }
    }

    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError> {
        let body = json!({ "account": spec.name, "spec": {
            "name": spec.name, "display_name": spec.display_name, "kind": spec.kind,
            "reference": spec.reference, "expires_at": spec.expires_at,
        }});
        self.run("create_account", body).await.map(|_| ())
    }

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.run("enable_account", json!({ "account": name })).await.map(|_| ())
    }

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.run("disable_account", json!({ "account": name })).await.map(|_| ())
    }

    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.run("delete_account", json!({ "account": name })).await.map(|_| ())
    }

    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        self.run("grant", json!({ "account": name, "target": target })).await.map(|_| ())
    }

    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        self.run("revoke", json!({ "account": name, "target": target })).await.map(|_| ())
    }

    async fn mark(&self, name: &str, reference: &str) -> Result<(), ConnectorError> {
        self.run("mark", json!({ "account": name, "reference": reference })).await.map(|_| ())
    }

    async fn probe(&self, name: &str) -> Result<Probe, ConnectorError> {
        let r = self.run("probe", json!({ "account": name })).await?;
        let detail = r.get("detail").and_then(Value::as_str).unwrap_or("").to_owned();
        Ok(match r.get("probe").and_then(Value::as_str) {
            Some("refused") => Probe::Refused(detail),
            Some("allowed") => Probe::Allowed,
            _ => Probe::Unsupported(if detail.is_empty() { "the program has no probe".into() } else { detail }),
        })
    }
}
