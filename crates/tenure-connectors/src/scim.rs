//! SCIM 2.0 (RFC 7643/7644) client: an account is a `User` (matched by `userName`, carrying the
//! identity's reference as `externalId`), an entitlement is membership of a `Group` (matched by
//! `displayName`, created on first grant). Disabling is `active: false` and removing every
//! membership; deleting is `DELETE /Users/{id}`. Read-back is a fresh `GET` of the user and of
//! the groups whose `members.value` is the user's id.
//!
//! Values go into filters only as JSON string literals (RFC 7644 §3.4.2.2 uses JSON's quoting)
//! and into URLs only as encoded query parameters or server-issued ids. SCIM has no login to
//! try, so the probe is unsupported; verification rests on the read-back.
//!
//! Mapped attributes are core `User` attributes, `name.*`, `emails` and `phoneNumbers` (work
//! values, the first primary) and the enterprise extension as `enterprise.*` (`manager` is the
//! manager user's `id`), sent with the `POST` and changed with `PATCH` operations.

use crate::{
    AccountRecord, AccountSpec, Connector, ConnectorError, PageSink, Pager, Probe, ScanRequest, ScanTotals,
    expand_account_name,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const PAGE: usize = 200;

#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// The service's base URL, e.g. `http://127.0.0.1:8080/scim/v2`.
    pub url: String,
    /// A bearer token (from `${VAR}`).
    pub token: Option<String>,
    pub account_name: String,
    /// TLS for an `https://` URL.
    pub tls: Option<crate::tls::Tls>,
}

impl ScimSettings {
    pub fn from_map(system: &str, s: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let config = |message: String| ConnectorError::Config { system: system.to_owned(), message };
        for k in s.keys() {
            if !["url", "token", "account_name"].contains(&k.as_str()) && !crate::tls::KEYS.contains(&k.as_str()) {
                return Err(config(format!(
                    "unknown setting `{k}` (expected url, token, account_name, {})",
                    crate::tls::KEYS.join(", ")
                )));
            }
        }
        let url = s.get("url").cloned().ok_or_else(|| config("missing setting `url`".into()))?;
        let tls = if url.starts_with("https://") {
            Some(crate::tls::Tls::from_map(system, s)?)
        } else if url.starts_with("http://") {
            if let Some(k) = crate::tls::KEYS.iter().find(|k| s.contains_key(**k)) {
                return Err(config(format!("field `{k}` needs TLS: use an `https://` URL")));
            }
            None
        } else {
            return Err(config(format!("field `url`: expected http(s)://…, found `{url}`")));
        };
        Ok(Self {
            tls,
            url: url.trim_end_matches('/').to_owned(),
            token: s.get("token").cloned().filter(|t| !t.is_empty()),
            account_name: s.get("account_name").cloned().unwrap_or_else(|| "{external_id}".into()),
        })
    }
}

pub struct ScimConnector {
    system: String,
    settings: ScimSettings,
    agent: ureq::Agent,
}

/// The system's TLS settings as ureq takes them (rustls, ring): its roots, its client
/// certificate, verification off only when the settings turned it off.
pub(crate) fn ureq_tls(tls: &crate::tls::Tls) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let roots: Vec<Certificate<'static>> = tls.roots().iter().map(|c| Certificate::from_der(c).to_owned()).collect();
    // Both files loaded once already (`Tls::from_map`): what does not parse here is left out.
    let client = tls.client_pem().and_then(|(chain, key)| {
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(chain)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        Some(ClientCert::new_with_certs(&chain, PrivateKey::from_pem(key).ok()?))
    });
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client)
        .disable_verification(tls.verify == crate::tls::Verify::Off)
        .build()
}

/// A SCIM filter comparing `attribute` with `value` as a string literal.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    format!("{attribute} eq {}", Value::String(value.to_owned()))
}

/// An id issued by the server, checked before it goes into a path.
fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl ScimConnector {
    pub fn new(system: &str, settings: ScimSettings) -> Self {
        if let Some(tls) = &settings.tls {
            tls.warn_if_unverified();
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)));
        if let Some(tls) = &settings.tls {
            config = config.tls_config(ureq_tls(tls));
        }
        Self { system: system.to_owned(), settings, agent: config.build().into() }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Unreachable { system: self.system.clone(), message: e.to_string() }
    }

    fn refused(&self, operation: &str, message: String) -> ConnectorError {
        ConnectorError::Refused { system: self.system.clone(), operation: operation.to_owned(), message }
    }

    /// One request, off the async threads. `None` body for GET/DELETE.
    async fn call(
        &self,
        method: &'static str,
        path: String,
        query: Vec<(&'static str, String)>,
        body: Option<Value>,
    ) -> Result<(u16, Value), ConnectorError> {
        let url = format!("{}{path}", self.settings.url);
        let agent = self.agent.clone();
        let token = self.settings.token.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<(u16, Value), ureq::Error> {
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut resp = match (method, body) {
                ("GET" | "DELETE", _) => {
                    let mut r = if method == "GET" { agent.get(&url) } else { agent.delete(&url) };
                    for (k, v) in &query {
                        r = r.query(*k, v);
                    }
                    if let Some(a) = &auth {
                        r = r.header("authorization", a);
                    }
                    r.header("accept", "application/scim+json").call()?
                }
                (_, body) => {
                    let mut r = if method == "POST" { agent.post(&url) } else { agent.patch(&url) };
                    if let Some(a) = &auth {
                        r = r.header("authorization", a);
                    }
                    r.header("content-type", "application/scim+json")
                        .header("accept", "application/scim+json")
                        .send(body.unwrap_or(Value::Null).to_string().as_bytes())?
                }
            };
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
        })
        .await
        .map_err(|e| self.unreachable(e))?;
        let (status, body) = result.map_err(|e| self.unreachable(crate::tls::explain(&e.to_string())))?;
        if status == 401 || status == 403 {
            return Err(ConnectorError::Config {
                system: self.system.clone(),
                message: format!("the SCIM service refused our credentials (HTTP {status})"),
            });
        }
        if status >= 500 {
            return Err(self.unreachable(format!("HTTP {status}: {}", detail(&body))));
        }
        Ok((status, body))
    }

    /// Every resource of a filtered list, following pages.
    async fn list(&self, path: &str, filter: Option<String>) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let mut q = vec![("startIndex", start.to_string()), ("count", PAGE.to_string())];
            if let Some(f) = &filter {
                q.push(("filter", f.clone()));
            }
            let (status, body) = self.call("GET", path.to_owned(), q, None).await?;
            if status != 200 {
                return Err(self.refused(&format!("list {path}"), format!("HTTP {status}: {}", detail(&body))));
            }
            let page = body.get("Resources").and_then(Value::as_array).cloned().unwrap_or_default();
            let n = page.len();
            out.extend(page);
            let total = body.get("totalResults").and_then(Value::as_u64).unwrap_or(0) as usize;
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
            start += n;
        }
    }

    /// Every resource at `path`, a page (`startIndex`/`count`, RFC 7644 §3.4.2.4) at a time,
    /// each handed to `each`. A failed or malformed page, or one that ends short of
    /// `totalResults`, is [`ConnectorError::Incomplete`] naming the page.
    async fn pages(
        &self,
        path: &str,
        count: usize,
        pager: &mut Pager<'_>,
        mut each: impl FnMut(&mut Pager<'_>, &Value) -> Result<(), String>,
    ) -> Result<(), ConnectorError> {
        let mut start = 1usize;
        let mut page = 0u64;
        loop {
            page += 1;
            let incomplete = |message: String| ConnectorError::Incomplete {
                system: self.system.clone(),
                page,
                message: format!("GET {path}?startIndex={start}&count={count}: {message}"),
            };
            let q = vec![("startIndex", start.to_string()), ("count", count.to_string())];
            let (status, body) =
                self.call("GET", path.to_owned(), q, None).await.map_err(|e| incomplete(e.to_string()))?;
            if status != 200 {
                return Err(incomplete(format!("HTTP {status}: {}", detail(&body))));
            }
            let (Some(resources), Some(total)) =
                (body.get("Resources").and_then(Value::as_array), body.get("totalResults").and_then(Value::as_u64))
            else {
                if body.get("totalResults").and_then(Value::as_u64) == Some(0) {
                    return pager.flush();
                }
                return Err(incomplete(format!("not a list response: {}", short(&body))));
            };
            for r in resources {
                each(pager, r).map_err(&incomplete)?;
            }
            pager.flush()?;
            let read = start - 1 + resources.len();
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            if read >= total {
                return Ok(());
            }
            if resources.is_empty() {
                return Err(incomplete(format!("an empty page after {read} of {total} resources")));
            }
            start = read + 1;
        }
    }

    async fn user(&self, name: &str) -> Result<Option<Value>, ConnectorError> {
        Ok(self
            .list("/Users", Some(eq_filter("userName", name)))
            .await?
            .into_iter()
            .find(|u| u.get("userName").and_then(Value::as_str) == Some(name)))
    }

    fn id<'a>(&self, resource: &'a Value) -> Result<&'a str, ConnectorError> {
        resource
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| safe_id(id))
            .ok_or_else(|| self.refused("read id", format!("the service returned an unusable id in {resource}")))
    }

    async fn group(&self, name: &str) -> Result<Option<Value>, ConnectorError> {
        Ok(self
            .list("/Groups", Some(eq_filter("displayName", name)))
            .await?
            .into_iter()
            .find(|g| g.get("displayName").and_then(Value::as_str) == Some(name)))
    }

    async fn groups_of(&self, user_id: &str) -> Result<BTreeSet<String>, ConnectorError> {
        Ok(self
            .list("/Groups", Some(eq_filter("members.value", user_id)))
            .await?
            .iter()
            .filter(|g| {
                g.get("members")
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.iter().any(|x| x.get("value").and_then(Value::as_str) == Some(user_id)))
            })
            .filter_map(|g| g.get("displayName").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    async fn patch(&self, path: String, ops: Value, operation: &str) -> Result<(), ConnectorError> {
        let (status, body) =
            self.call("PATCH", path, vec![], Some(json!({ "schemas": [PATCH], "Operations": ops }))).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.refused(operation, format!("HTTP {status}: {}", detail(&body))))
        }
    }

    async fn set_active(&self, name: &str, active: bool) -> Result<(), ConnectorError> {
        let op = if active { "enable user" } else { "disable user" };
        let Some(u) = self.user(name).await? else {
            return if active { Err(self.refused(op, format!("no user `{name}`"))) } else { Ok(()) };
        };
        let id = self.id(&u)?.to_owned();
        self.patch(format!("/Users/{id}"), json!([{ "op": "replace", "path": "active", "value": active }]), op).await
    }
}

/// A mapped target's values in a user resource (`name.givenName`, `emails`, `enterprise.manager`).
fn read_target(u: &Value, target: &str) -> Vec<String> {
    let at = match target.strip_prefix("enterprise.") {
        Some(rest) => u.get(ENTERPRISE).and_then(|e| e.get(rest)),
        None => target.split('.').try_fold(u, |v, k| v.get(k)),
    };
    match at {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            items.iter().filter_map(|i| i.get("value").and_then(Value::as_str).map(str::to_owned)).collect()
        }
        Some(Value::Object(o)) => o.get("value").and_then(Value::as_str).map(str::to_owned).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The JSON of a mapped target's values (`None`: remove it).
fn target_json(target: &str, values: &[String]) -> Option<Value> {
    let first = values.first()?;
    Some(match target {
        "emails" | "phoneNumbers" => Value::Array(
            values.iter().enumerate().map(|(i, v)| json!({ "value": v, "type": "work", "primary": i == 0 })).collect(),
        ),
        "enterprise.manager" => json!({ "value": first }),
        _ => json!(first),
    })
}

/// The PATCH path of a mapped target.
fn target_path(target: &str) -> String {
    match target.strip_prefix("enterprise.") {
        Some(rest) => format!("{ENTERPRISE}:{rest}"),
        None => target.to_owned(),
    }
}

/// Put a target's values into a resource being created.
fn put_target(body: &mut Value, target: &str, values: &[String]) {
    let Some(v) = target_json(target, values) else { return };
    let (parent, key) = match target.strip_prefix("enterprise.") {
        Some(rest) => (Some(ENTERPRISE), rest),
        None => match target.split_once('.') {
            Some((p, k)) => (Some(p), k),
            None => (None, target),
        },
    };
    let obj = match parent {
        Some(p) => &mut body[p],
        None => body,
    };
    obj[key] = v;
}

/// tenure's marker on a SCIM user: the `externalId` it created the user with.
fn marker(u: &Value) -> Option<String> {
    u.get("externalId").and_then(Value::as_str).map(str::to_owned)
}

/// A resource in an error message, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 { format!("{}…", s.chars().take(200).collect::<String>()) } else { s }
}

fn detail(body: &Value) -> String {
    body.get("detail").and_then(Value::as_str).map_or_else(|| body.to_string(), str::to_owned)
}

#[async_trait]
impl Connector for ScimConnector {
    fn system(&self) -> &str {
        &self.system
    }

    fn account_name(&self, source: &str, external_id: &str) -> String {
        expand_account_name(&self.settings.account_name, source, external_id)
    }

    async fn scan(&self, request: &ScanRequest, sink: PageSink<'_>) -> Result<ScanTotals, ConnectorError> {
        let mut pager = Pager::new(request.page_size, sink);
        let count = request.page_size.clamp(1, 1000);
        // Group members name users by id: keep id → userName (what a page of groups needs).
        let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        self.pages("/Users", count, &mut pager, |pager, u| {
            let (Some(name), Some(id)) =
                (u.get("userName").and_then(Value::as_str), u.get("id").and_then(Value::as_str))
            else {
                return Err(format!("a user without `userName` or `id`: {}", short(u)));
            };
            names.insert(id.to_owned(), name.to_owned());
            let mut attributes = BTreeMap::new();
            for key in ["displayName", "externalId"] {
                if let Some(v) = u.get(key).and_then(Value::as_str) {
                    attributes.insert(key.to_ascii_lowercase(), v.to_owned());
                }
            }
            let emails = u.get("emails").and_then(Value::as_array);
            let primary = emails
                .and_then(|e| e.iter().find(|m| m.get("primary") == Some(&Value::Bool(true))).or_else(|| e.first()));
            if let Some(mail) = primary.and_then(|m| m.get("value")).and_then(Value::as_str) {
                attributes.insert("email".to_owned(), mail.to_owned());
            }
            pager
                .account(AccountRecord {
                    name: name.to_owned(),
                    enabled: u.get("active").and_then(Value::as_bool).unwrap_or(true),
                    memberships: BTreeSet::new(),
                    managed_by: marker(u),
                    reserved: false,
                    privileges: BTreeSet::new(),
                    attributes,
                    // SCIM 2.0 has no standard attribute for it.
                    last_login: None,
                })
                .map_err(|e| e.to_string())
        })
        .await?;
        self.pages("/Groups", count, &mut pager, |pager, g| {
            let Some(group) = g.get("displayName").and_then(Value::as_str) else {
                return Err(format!("a group without `displayName`: {}", short(g)));
            };
            for m in g.get("members").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = m.get("value").and_then(Value::as_str).and_then(|id| names.get(id)) {
                    pager.membership(name.clone(), group.to_owned()).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
        .await?;
        pager.finish()
    }

    async fn find(&self, attribute: &str, value: &str) -> Result<Vec<AccountRecord>, ConnectorError> {
        let path = match attribute {
            "name" | "username" => "userName",
            "email" => "emails.value",
            "externalid" => "externalId",
            "displayname" => "displayName",
            other => {
                return Err(ConnectorError::Config {
                    system: self.system.clone(),
                    message: format!(
                        "`{other}` is not a SCIM attribute tenure can look up (userName, email, externalId, displayName)"
                    ),
                });
            }
        };
        let mut out = Vec::new();
        for u in self.list("/Users", Some(eq_filter(path, value))).await? {
            let Some(name) = u.get("userName").and_then(Value::as_str) else { continue };
            if let Some(mut r) = self.read_account(name).await? {
                r.attributes.insert(attribute.to_owned(), value.to_owned());
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn mark(&self, name: &str, reference: &str) -> Result<(), ConnectorError> {
        let Some(u) = self.user(name).await? else {
            return Err(self.refused("mark user", format!("no user `{name}`")));
        };
        let id = self.id(&u)?.to_owned();
        self.patch(
            format!("/Users/{id}"),
            json!([{ "op": "replace", "path": "externalId", "value": reference }]),
            "mark user",
        )
        .await
    }

    async fn list_entitlements(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(self
            .list("/Groups", None)
            .await?
            .iter()
            .filter_map(|g| g.get("displayName").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    async fn read_account(&self, name: &str) -> Result<Option<AccountRecord>, ConnectorError> {
        let Some(u) = self.user(name).await? else { return Ok(None) };
        let id = self.id(&u)?.to_owned();
        Ok(Some(AccountRecord {
            name: name.to_owned(),
            // RFC 7643: `active` absent means the service does not say; treat as enabled.
            enabled: u.get("active").and_then(Value::as_bool).unwrap_or(true),
            memberships: self.groups_of(&id).await?,
            managed_by: marker(&u),
            reserved: false,
            privileges: BTreeSet::new(),
            attributes: BTreeMap::new(),
            last_login: None,
        }))
    }

    async fn create_account(&self, spec: &AccountSpec) -> Result<(), ConnectorError> {
        if let Some(existing) = self.read_account(&spec.name).await? {
            return ConnectorError::ensure_managed(&self.system, &existing, &spec.reference);
        }
        let enterprise = spec.attributes.iter().any(|(k, v)| k.starts_with("enterprise.") && !v.is_empty());
        let mut body = json!({
            "schemas": if enterprise { json!([USER, ENTERPRISE]) } else { json!([USER]) },
            "userName": spec.name,
            "displayName": spec.display_name,
            "externalId": spec.reference,
            "active": true,
        });
        for (target, values) in &spec.attributes {
            put_target(&mut body, target, values);
        }
        let (status, resp) = self.call("POST", "/Users".into(), vec![], Some(body)).await?;
        match status {
            200..=299 => Ok(()),
            // Made meanwhile, by us or by someone else: the marker decides.
            409 => match self.read_account(&spec.name).await? {
                Some(r) => ConnectorError::ensure_managed(&self.system, &r, &spec.reference),
                None => Err(self.refused("create user", format!("HTTP 409 but no user `{}`", spec.name))),
            },
            _ => Err(self.refused("create user", format!("HTTP {status}: {}", detail(&resp)))),
        }
    }

    async fn account_reference(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        match self.user(name).await? {
            Some(u) => Ok(Some(self.id(&u)?.to_owned())),
            None => Ok(None),
        }
    }

    async fn read_attributes(
        &self,
        name: &str,
        targets: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, ConnectorError> {
        let Some(u) = self.user(name).await? else { return Ok(None) };
        Ok(Some(targets.iter().map(|t| (t.clone(), read_target(&u, t))).collect()))
    }

    async fn set_attributes(&self, name: &str, values: &BTreeMap<String, Vec<String>>) -> Result<(), ConnectorError> {
        if values.is_empty() {
            return Ok(());
        }
        let Some(u) = self.user(name).await? else {
            return Err(self.refused("set attributes", format!("no user `{name}`")));
        };
        let id = self.id(&u)?.to_owned();
        let ops: Vec<Value> = values
            .iter()
            .map(|(t, v)| match target_json(t, v) {
                Some(value) => json!({ "op": "replace", "path": target_path(t), "value": value }),
                None => json!({ "op": "remove", "path": target_path(t) }),
            })
            .collect();
        self.patch(format!("/Users/{id}"), Value::Array(ops), "set attributes").await
    }

    async fn enable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.set_active(name, true).await
    }

    async fn disable_account(&self, name: &str) -> Result<(), ConnectorError> {
        self.set_active(name, false).await
    }

    async fn delete_account(&self, name: &str) -> Result<(), ConnectorError> {
        let Some(u) = self.user(name).await? else { return Ok(()) };
        let id = self.id(&u)?.to_owned();
        for g in self.groups_of(&id).await? {
            self.revoke(name, &g).await?;
        }
        let (status, body) = self.call("DELETE", format!("/Users/{id}"), vec![], None).await?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.refused("delete user", format!("HTTP {status}: {}", detail(&body)))),
        }
    }

    async fn grant(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        let Some(u) = self.user(name).await? else {
            return Err(self.refused("grant", format!("no user `{name}`")));
        };
        let uid = self.id(&u)?.to_owned();
        let group = match self.group(target).await? {
            Some(g) => g,
            None => {
                let (status, body) = self
                    .call("POST", "/Groups".into(), vec![], Some(json!({ "schemas": [GROUP], "displayName": target })))
                    .await?;
                if !(200..300).contains(&status) && status != 409 {
                    return Err(self.refused("create group", format!("HTTP {status}: {}", detail(&body))));
                }
                self.group(target)
                    .await?
                    .ok_or_else(|| self.refused("create group", format!("`{target}` is absent after creation")))?
            }
        };
        let gid = self.id(&group)?.to_owned();
        self.patch(
            format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": "members", "value": [{ "value": uid }] }]),
            "grant",
        )
        .await
    }

    async fn revoke(&self, name: &str, target: &str) -> Result<(), ConnectorError> {
        let (Some(u), Some(g)) = (self.user(name).await?, self.group(target).await?) else { return Ok(()) };
        let (uid, gid) = (self.id(&u)?.to_owned(), self.id(&g)?.to_owned());
        let path = format!("members[{}]", eq_filter("value", &uid));
        self.patch(format!("/Groups/{gid}"), json!([{ "op": "remove", "path": path }]), "revoke").await
    }

    async fn probe(&self, _name: &str) -> Result<Probe, ConnectorError> {
        Ok(Probe::Unsupported("SCIM has no login to try; verified by read-back".into()))
    }
}
