//! The HTTP API. Handlers extract, call the engine, and map the result; every error goes
//! through [`ApiError`]'s one `IntoResponse`, which picks the status and never shows internal
//! error text to clients.
//!
//! Every route is in [`ROUTES`] with who may call it; the router is built from that table, and
//! each route's guard authenticates the bearer token and checks the role before the handler
//! runs (the handler gets the [`Principal`]). A route cannot be added without saying who may call
//! it: [`handler`] matches the [`Endpoint`] enum exhaustively.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use std::sync::Arc;
use tenure_engine::access::AccessRequest;
use tenure_engine::authz::{Decision, Question, ResourceSpec};
use tenure_engine::creds::{self, CredentialRequest};
use tenure_engine::worker::Workers;
use tenure_engine::{Engine, EngineError, RecordError, parse};
use tenure_model::Principal;
use tenure_model::credential::parse_ttl;
use tenure_model::{CredentialKind, RequestKind, RequestState, RoleName};
use tenure_proto::{
    AnswerWire, AuthorizeWire, CredentialActionWire, CredentialView, CredentialWire, ErrorBody, FindingView,
    IdentityDetail, IdentityView, IngestReport, IssuedCredentialView, IssuedTokenView, RecordErrorView, RequestView,
    RequestWire, TokenView, TokenWire,
};

/// Largest accepted request body (a bulk event batch).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub mod listen;

/// Read the whole request body within `timeout` (a stalled body gets 408, not a connection
/// held open for ever) and at most [`MAX_BODY`] bytes (413); handlers then read it from memory.
async fn read_body(State(timeout): State<std::time::Duration>, req: Request, next: Next) -> Response {
    let (parts, incoming) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(incoming, MAX_BODY)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => ApiError::BodyTooLarge.into_response(),
        Err(_) => ApiError::BodyTimeout(timeout).into_response(),
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub workers: Arc<Workers>,
    /// How long a client has to send a request body (read only after the guard let it in, so an
    /// unauthenticated client cannot make the server buffer anything).
    pub body_timeout: std::time::Duration,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (health checks).
    Public,
    /// A token holding any of these roles.
    Roles(&'static [RoleName]),
    /// A token holding `source:NAME` for the source of every record posted.
    Source,
    /// Any authenticated caller: an API token, or a workload's own tenure credential (an API
    /// key or JWT-SVID). The handler decides what it may do (an NHI's owner or the NHI itself).
    Authenticated,
}

/// Every endpoint of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    PostEvents,
    ListIdentities,
    ShowIdentity,
    Jobs,
    CreateRequest,
    ListRequests,
    ShowRequest,
    Approve,
    Deny,
    Authorize,
    IssueToken,
    ListTokens,
    RevokeToken,
    Findings,
    Metrics,
    Discovery,
    Jwks,
    TrustBundle,
    Crl,
    IssueCredential,
    ListCredentials,
    RotateCredential,
    RevokeCredential,
    Introspect,
    OAuthRevoke,
}

/// A route: endpoint, method, path and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub endpoint: Endpoint,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

use RoleName::{Admin, Approver, Auditor, Authorizer, Requester};

const fn route(endpoint: Endpoint, method: &'static str, path: &'static str, access: Access) -> Route {
    Route { endpoint, method, path, access }
}

/// The API: every route and who may call it.
pub const ROUTES: &[Route] = &[
    route(Endpoint::Health, "GET", "/healthz", Access::Public),
    route(Endpoint::PostEvents, "POST", "/v1/events", Access::Source),
    route(Endpoint::ListIdentities, "GET", "/v1/identities", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::ShowIdentity, "GET", "/v1/identities/{reference}", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::Jobs, "GET", "/v1/jobs", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::CreateRequest, "POST", "/v1/requests", Access::Roles(&[Admin, Requester])),
    route(Endpoint::ListRequests, "GET", "/v1/requests", Access::Roles(&[Admin, Approver, Auditor])),
    route(Endpoint::ShowRequest, "GET", "/v1/requests/{id}", Access::Roles(&[Admin, Approver, Auditor, Requester])),
    route(Endpoint::Approve, "POST", "/v1/requests/{id}/approve", Access::Roles(&[Approver])),
    route(Endpoint::Deny, "POST", "/v1/requests/{id}/deny", Access::Roles(&[Approver])),
    route(Endpoint::Authorize, "POST", "/v1/authorize", Access::Roles(&[Admin, Authorizer])),
    route(Endpoint::IssueToken, "POST", "/v1/tokens", Access::Roles(&[Admin])),
    route(Endpoint::ListTokens, "GET", "/v1/tokens", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::RevokeToken, "POST", "/v1/tokens/{id}/revoke", Access::Roles(&[Admin])),
    route(Endpoint::Findings, "GET", "/v1/findings", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::Metrics, "GET", "/metrics", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::Discovery, "GET", "/.well-known/openid-configuration", Access::Public),
    route(Endpoint::Jwks, "GET", "/.well-known/jwks.json", Access::Public),
    route(Endpoint::TrustBundle, "GET", "/v1/trust-bundle", Access::Public),
    route(Endpoint::Crl, "GET", "/v1/crl", Access::Public),
    route(Endpoint::IssueCredential, "POST", "/v1/credentials", Access::Authenticated),
    route(Endpoint::ListCredentials, "GET", "/v1/credentials", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::RotateCredential, "POST", "/v1/credentials/{id}/rotate", Access::Authenticated),
    route(Endpoint::RevokeCredential, "POST", "/v1/credentials/{id}/revoke", Access::Authenticated),
    route(Endpoint::Introspect, "POST", "/v1/oauth/introspect", Access::Roles(&[Admin, Authorizer])),
    route(Endpoint::OAuthRevoke, "POST", "/v1/oauth/revoke", Access::Authenticated),
];

fn handler(e: Endpoint) -> MethodRouter<AppState> {
    match e {
        Endpoint::Health => get(healthz),
        Endpoint::PostEvents => post(post_events),
        Endpoint::ListIdentities => get(list_identities),
        Endpoint::ShowIdentity => get(show_identity),
        Endpoint::Jobs => get(jobs),
        Endpoint::CreateRequest => post(create_request),
        Endpoint::ListRequests => get(list_requests),
        Endpoint::ShowRequest => get(show_request),
        Endpoint::Approve => post(approve),
        Endpoint::Deny => post(deny),
        Endpoint::Authorize => post(authorize),
        Endpoint::IssueToken => post(issue_token),
        Endpoint::ListTokens => get(list_tokens),
        Endpoint::RevokeToken => post(revoke_token),
        Endpoint::Findings => get(findings),
        Endpoint::Metrics => get(metrics),
        Endpoint::Discovery => get(discovery),
        Endpoint::Jwks => get(jwks),
        Endpoint::TrustBundle => get(trust_bundle),
        Endpoint::Crl => get(crl),
        Endpoint::IssueCredential => post(issue_credential),
        Endpoint::ListCredentials => get(list_credentials),
        Endpoint::RotateCredential => post(rotate_credential),
        Endpoint::RevokeCredential => post(revoke_credential),
        Endpoint::Introspect => post(introspect),
        Endpoint::OAuthRevoke => post(oauth_revoke),
    }
}

/// The API's routes, each behind its guard.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        let guarded = handler(route.endpoint)
            .route_layer(from_fn_with_state(state.body_timeout, read_body))
            .route_layer(from_fn_with_state((state.clone(), route.access), guard));
        r = r.route(route.path, guarded);
    }
    r.layer(DefaultBodyLimit::max(MAX_BODY)).with_state(state)
}

/// Authenticate and check the role; hand the caller to the handler.
async fn guard(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let roles = match access {
        Access::Public => return Ok(next.run(req).await),
        Access::Roles(r) => Some(r),
        Access::Source | Access::Authenticated => None,
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .unwrap_or_default();
    let engine = state.engine.clone();
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let (caller, delay) = blocking(move || Ok(engine.authenticate_from(&bearer, &source))).await?;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let caller = caller?;
    let allowed = match (access, roles) {
        (Access::Authenticated, _) => true,
        (_, Some(roles)) => roles.iter().any(|r| caller.has(*r)),
        (_, None) => caller.sources().next().is_some(),
    };
    if !allowed {
        let need = match roles {
            Some(roles) => roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or "),
            None => "source:NAME".into(),
        };
        return Err(EngineError::Forbidden(format!("this needs the {need} role")).into());
    }
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    // What an authenticated route answers (identity data, issued secrets) is nobody's to cache.
    resp.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Every failure of a handler.
pub enum ApiError {
    Engine(EngineError),
    BadRecords(Vec<RecordError>),
    /// SV0001: the request body did not arrive in time.
    BodyTimeout(std::time::Duration),
    /// SV0002: the request body is over the limit or broken.
    BodyTooLarge,
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(errors) => Self::BadRecords(errors),
            other => Self::Engine(other),
        }
    }
}

fn body(code: &str, message: String) -> ErrorBody {
    ErrorBody { code: code.to_owned(), message, errors: vec![] }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, b) = match self {
            Self::BadRecords(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody {
                    code: "EN0001".into(),
                    message: format!("batch rejected: {} bad record(s); nothing was applied", errors.len()),
                    errors: errors
                        .into_iter()
                        .map(|e| RecordErrorView { record: e.position.number(), field: e.field, message: e.message })
                        .collect(),
                },
            ),
            Self::BodyTimeout(t) => {
                (StatusCode::REQUEST_TIMEOUT, body("SV0001", format!("the body did not arrive within {t:?}")))
            }
            Self::BodyTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, body("SV0002", format!("the body is over {MAX_BODY} bytes or broken")))
            }
            Self::Engine(e) => match &e {
                EngineError::NotFound(r) => (StatusCode::NOT_FOUND, body(e.code(), format!("not found: {r}"))),
                EngineError::NoEntry(s) => (StatusCode::NOT_FOUND, body(e.code(), format!("no ledger entry {s}"))),
                EngineError::NoCheckpoint(s) => {
                    (StatusCode::NOT_FOUND, body(e.code(), format!("no checkpoint of size {s}")))
                }
                EngineError::NoPolicy => {
                    (StatusCode::SERVICE_UNAVAILABLE, body(e.code(), "no policy is deployed".into()))
                }
                EngineError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, body(e.code(), "batch rejected".into())),
                EngineError::Invalid { field, message } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, body(e.code(), format!("{field}: {message}")))
                }
                EngineError::Refused(m) => (StatusCode::FORBIDDEN, body(e.code(), format!("refused: {m}"))),
                EngineError::Conflict(m) => (StatusCode::CONFLICT, body(e.code(), m.clone())),
                EngineError::Unauthenticated(m) => {
                    let mut resp = (StatusCode::UNAUTHORIZED, Json(body(e.code(), format!("not authenticated: {m}"))))
                        .into_response();
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return resp;
                }
                EngineError::Forbidden(m) => (StatusCode::FORBIDDEN, body(e.code(), format!("forbidden: {m}"))),
                EngineError::Store(_)
                | EngineError::BadStoredPolicy { .. }
                | EngineError::Task(_)
                | EngineError::Broker(_)
                | EngineError::Ledger(_) => {
                    // The details are for operators, in the log; clients get the code only.
                    tracing::error!(error = %e, "request failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, body(e.code(), "internal error; see the server log".into()))
                }
            },
        };
        (status, Json(b)).into_response()
    }
}

/// A JSON body, with errors naming the field.
fn json_body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "body".to_owned() } else { field };
        ApiError::from(EngineError::Invalid { field, message: e.inner().to_string() })
    })
}

async fn healthz(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let policy = s.run(move |engine| Ok(engine.current_policy()?.version.to_string())).await?;
    Ok(Json(serde_json::json!({ "status": "ok", "policy_version": policy })))
}

async fn post_events(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<Json<IngestReport>, ApiError> {
    // Parsing a large batch is real work too: keep it off the async threads.
    let report = s
        .run(move |engine| engine.ingest_from(&caller, parse::json_array(&raw).map_err(EngineError::Rejected)?))
        .await?;
    s.workers.notify();
    Ok(Json(report))
}

async fn list_identities(State(s): State<AppState>) -> Result<Json<Vec<IdentityView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_identities()).await?))
}

async fn show_identity(
    State(s): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<IdentityDetail>, ApiError> {
    Ok(Json(s.run(move |engine| engine.identity_detail(&reference)).await?))
}

async fn jobs(State(s): State<AppState>) -> Result<Json<tenure_proto::JobsView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.jobs_view(None)).await?))
}

fn invalid(field: &str, message: String) -> ApiError {
    EngineError::Invalid { field: field.to_owned(), message }.into()
}

async fn create_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let w: RequestWire = json_body(&raw)?;
    let kind = match w.kind.as_deref() {
        None => RequestKind::Access,
        Some(k) => k.parse::<RequestKind>().map_err(|e| invalid("kind", e))?,
    };
    let duration = w
        .duration_minutes
        .map(|m| tenure_model::credential::bounded(m, 60, "minutes"))
        .transpose()
        .map_err(|e| invalid("duration_minutes", e))?;
    let req = AccessRequest {
        beneficiary: w.beneficiary.unwrap_or_else(|| caller.identity.to_string()),
        entitlement: w.entitlement,
        kind,
        intent: w.intent,
        duration,
    };
    let view = s.run(move |engine| engine.request(&caller, &req)).await?;
    s.workers.notify();
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    state: Option<String>,
}

async fn list_requests(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let state = q.state.map(|st| st.parse::<RequestState>().map_err(|e| invalid("state", e))).transpose()?;
    Ok(Json(s.run(move |engine| engine.list_requests(state)).await?))
}

async fn show_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.request_for(&caller, id)).await?))
}

async fn answer(
    s: AppState,
    caller: Principal,
    id: i64,
    raw: Bytes,
    approve: bool,
) -> Result<Json<RequestView>, ApiError> {
    let w: AnswerWire = json_body(&raw)?;
    let view = s.run(move |engine| engine.answer(&caller.identity, id, approve, &w.reason)).await?;
    s.workers.notify();
    Ok(Json(view))
}

async fn approve(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    raw: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    answer(s, caller, id, raw, true).await
}

async fn deny(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    raw: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    answer(s, caller, id, raw, false).await
}

async fn authorize(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<Json<Decision>, ApiError> {
    let w: AuthorizeWire = json_body(&raw)?;
    let resource: ResourceSpec = serde_json::from_value(w.resource).map_err(|e| invalid("resource", e.to_string()))?;
    let q = Question { principal: w.principal, action: w.action, resource, context: w.context };
    Ok(Json(s.run(move |engine| engine.authorize(&q, &caller.identity.to_string())).await?))
}

async fn issue_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedTokenView>), ApiError> {
    let w: TokenWire = json_body(&raw)?;
    let issued = s
        .run(move |engine| {
            engine.issue_token(&w.identity, &w.roles, w.ttl_days, &w.description, &caller.identity.to_string())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn list_tokens(State(s): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_tokens()).await?))
}

async fn revoke_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.revoke_token(&id, &caller.identity.to_string())).await?))
}

#[derive(serde::Deserialize)]
struct FindingsQuery {
    #[serde(default)]
    all: bool,
}

async fn findings(
    State(s): State<AppState>,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<Vec<FindingView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_findings(q.all)).await?))
}

async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = s.run(move |engine| engine.metrics_text()).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn discovery(State(s): State<AppState>) -> Result<Json<tenure_proto::broker::Discovery>, ApiError> {
    Ok(Json(s.run(move |engine| engine.discovery()).await?))
}

async fn jwks(State(s): State<AppState>) -> Result<Response, ApiError> {
    let keys = s.run(move |engine| engine.jwks()).await?;
    let body = serde_json::to_string(&keys).map_err(|e| EngineError::Task(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response())
}

async fn trust_bundle(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pem = s.run(move |engine| engine.trust_bundle()).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

async fn crl(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pem = s.run(move |engine| engine.crl()).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

fn credential_request(w: CredentialWire, caller: &Principal) -> Result<CredentialRequest, ApiError> {
    let kind = w.kind.parse::<CredentialKind>().map_err(|e| invalid("kind", e))?;
    let ttl = w.ttl.as_deref().map(parse_ttl).transpose().map_err(|e| invalid("ttl", e))?;
    Ok(CredentialRequest {
        identity: w.identity.unwrap_or_else(|| caller.identity.to_string()),
        kind,
        ttl,
        audience: w.audience,
        csr: w.csr,
        system: w.system,
        purpose: w.purpose,
        replaces: None,
    })
}

async fn issue_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedCredentialView>), ApiError> {
    let w: CredentialWire = json_body(&raw)?;
    let req = credential_request(w, &caller)?;
    let issued = s.workers.issue_credential(req, creds::Requester::Api(caller)).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(serde::Deserialize)]
struct CredentialsQuery {
    identity: Option<String>,
}

async fn list_credentials(
    State(s): State<AppState>,
    Query(q): Query<CredentialsQuery>,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_credentials(q.identity.as_deref())).await?))
}

async fn rotate_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedCredentialView>), ApiError> {
    let w: CredentialActionWire = if raw.is_empty() { CredentialActionWire::default() } else { json_body(&raw)? };
    let req = s.run(move |engine| engine.rotation_of(&id, w.csr)).await?;
    let issued = s.workers.issue_credential(req, creds::Requester::Api(caller)).await?;
    s.workers.notify();
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn revoke_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<CredentialView>, ApiError> {
    let w: CredentialActionWire = if raw.is_empty() { CredentialActionWire::default() } else { json_body(&raw)? };
    let reason = w.reason.unwrap_or_else(|| "revoked on request".into());
    let v = s.run(move |engine| engine.revoke_credential(&id, &reason, &creds::Requester::Api(caller))).await?;
    s.workers.notify();
    Ok(Json(v))
}

/// An OAuth form body (RFC 7662 and RFC 7009 use `application/x-www-form-urlencoded`); JSON
/// is accepted too.
#[derive(serde::Deserialize)]
struct TokenForm {
    token: String,
    #[serde(default)]
    #[expect(dead_code, reason = "RFC 7662/7009 allow it; the fingerprint finds the credential whatever its kind")]
    token_type_hint: Option<String>,
}

fn token_form(headers: &axum::http::HeaderMap, raw: &[u8]) -> Result<TokenForm, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return json_body(raw);
    }
    serde_urlencoded::from_bytes(raw).map_err(|e| invalid("token", e.to_string()))
}

async fn introspect(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Result<Json<tenure_proto::broker::Introspection>, ApiError> {
    let form = token_form(&headers, &raw)?;
    Ok(Json(s.run(move |engine| engine.introspect(&form.token)).await?))
}

async fn oauth_revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let form = token_form(&headers, &raw)?;
    s.run(move |engine| engine.revoke_token_value(&form.token, &creds::Requester::Api(caller))).await?;
    s.workers.notify();
    Ok(StatusCode::OK)
}

/// Run store-bound work off the async threads.
impl AppState {
    /// Call the engine off the async threads (it does blocking IO), mapping its errors.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.engine.clone();
        blocking(move || f(&engine)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::Engine(EngineError::Task(e.to_string()))),
    }
}
