//! The route table: every endpoint, its method and path, and who may call it; the router built
//! from it, each route behind its guard (authenticate the bearer token, check the role, hand
//! the [`Principal`](tenure_model::Principal) to the handler). A route cannot be added without
//! saying who may call it: [`handler`] matches [`Endpoint`] exhaustively.

use crate::api::{access, credentials, identities, meta, reconcile, reviews, scim, tokens};
use crate::{ApiError, AppState, MAX_BODY, closing, read_body};
use RoleName::{Admin, Approver, Auditor, Authorizer, Requester};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use tenure_engine::EngineError;
use tenure_model::RoleName;

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
    Livez,
    Readyz,
    OpenApi,
    PostEvents,
    ListIdentities,
    ShowIdentity,
    RenewIdentity,
    AttestIdentity,
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
    Reconcile,
    ReconcileRuns,
    ReconcileRun,
    Systems,
    StartReview,
    ListReviews,
    ShowReview,
    DecideReview,
    ReleaseReview,
    Posture,
    ScimConfig,
    ScimResourceTypes,
    ScimResourceType,
    ScimSchemas,
    ScimSchema,
    ScimListUsers,
    ScimSearchUsers,
    ScimSearch,
    ScimCreateUser,
    ScimGetUser,
    ScimReplaceUser,
    ScimPatchUser,
    ScimDeleteUser,
}

/// A route: endpoint, method, path and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub endpoint: Endpoint,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(endpoint: Endpoint, method: &'static str, path: &'static str, access: Access) -> Route {
    Route { endpoint, method, path, access }
}

/// The API: every route and who may call it.
pub const ROUTES: &[Route] = &[
    route(Endpoint::Health, "GET", "/healthz", Access::Public),
    // Liveness (the process answers) and readiness (database, data dir, policy, job runners).
    route(Endpoint::Livez, "GET", "/livez", Access::Public),
    route(Endpoint::Readyz, "GET", "/readyz", Access::Public),
    // The OpenAPI 3.1 document of every route here (`openapi.rs`).
    route(Endpoint::OpenApi, "GET", "/openapi.json", Access::Public),
    route(Endpoint::PostEvents, "POST", "/v1/events", Access::Source),
    route(Endpoint::ListIdentities, "GET", "/v1/identities", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::ShowIdentity, "GET", "/v1/identities/{reference}", Access::Roles(&[Admin, Auditor])),
    // The owner (the manager, for a person) or an admin: the engine checks which.
    route(Endpoint::RenewIdentity, "POST", "/v1/identities/{reference}/renew", Access::Authenticated),
    // The NHI's owner only: the engine checks.
    route(Endpoint::AttestIdentity, "POST", "/v1/identities/{reference}/attest", Access::Authenticated),
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
    route(Endpoint::Reconcile, "POST", "/v1/reconcile", Access::Roles(&[Admin])),
    route(Endpoint::ReconcileRuns, "GET", "/v1/reconcile/runs", Access::Roles(&[Admin, Auditor])),
    route(Endpoint::ReconcileRun, "GET", "/v1/reconcile/runs/{id}", Access::Roles(&[Admin, Auditor])),
    // `tenure systems check` over HTTP: each system reachable, TLS verified, credentials taken.
    route(Endpoint::Systems, "GET", "/v1/systems", Access::Roles(&[Admin, Auditor])),
    // Access reviews (docs/reviews.md): a reviewer holds the approver role and sees, and
    // decides, only the items assigned to it; the engine checks which.
    route(Endpoint::StartReview, "POST", "/v1/reviews", Access::Roles(&[Admin])),
    route(Endpoint::ListReviews, "GET", "/v1/reviews", Access::Roles(&[Admin, Auditor, Approver])),
    route(Endpoint::ShowReview, "GET", "/v1/reviews/{id}", Access::Roles(&[Admin, Auditor, Approver])),
    route(Endpoint::DecideReview, "POST", "/v1/reviews/{id}/items/{item}/decide", Access::Roles(&[Approver])),
    route(Endpoint::ReleaseReview, "POST", "/v1/reviews/{id}/release", Access::Roles(&[Admin])),
    // The posture report (docs/posture.md): OWASP NHI Top 10, NIST CSF 2.0 PR.AA, NIST AI RMF.
    route(Endpoint::Posture, "GET", "/v1/posture", Access::Roles(&[Admin, Auditor])),
    // SCIM 2.0 for sources (docs/sources.md): a token with one source:NAME role pushes users.
    route(Endpoint::ScimConfig, "GET", "/scim/v2/ServiceProviderConfig", Access::Source),
    route(Endpoint::ScimResourceTypes, "GET", "/scim/v2/ResourceTypes", Access::Source),
    route(Endpoint::ScimResourceType, "GET", "/scim/v2/ResourceTypes/{id}", Access::Source),
    route(Endpoint::ScimSchemas, "GET", "/scim/v2/Schemas", Access::Source),
    route(Endpoint::ScimSchema, "GET", "/scim/v2/Schemas/{id}", Access::Source),
    route(Endpoint::ScimListUsers, "GET", "/scim/v2/Users", Access::Source),
    route(Endpoint::ScimCreateUser, "POST", "/scim/v2/Users", Access::Source),
    route(Endpoint::ScimSearchUsers, "POST", "/scim/v2/Users/.search", Access::Source),
    // Across resource types: Users are the only one.
    route(Endpoint::ScimSearch, "POST", "/scim/v2/.search", Access::Source),
    route(Endpoint::ScimGetUser, "GET", "/scim/v2/Users/{id}", Access::Source),
    route(Endpoint::ScimReplaceUser, "PUT", "/scim/v2/Users/{id}", Access::Source),
    route(Endpoint::ScimPatchUser, "PATCH", "/scim/v2/Users/{id}", Access::Source),
    route(Endpoint::ScimDeleteUser, "DELETE", "/scim/v2/Users/{id}", Access::Source),
];

fn handler(e: Endpoint) -> MethodRouter<AppState> {
    match e {
        Endpoint::Health => get(meta::healthz),
        Endpoint::Livez => get(meta::livez),
        Endpoint::Readyz => get(meta::readyz),
        Endpoint::OpenApi => get(meta::openapi),
        Endpoint::PostEvents => post(identities::post_events),
        Endpoint::ListIdentities => get(identities::list_identities),
        Endpoint::ShowIdentity => get(identities::show_identity),
        Endpoint::RenewIdentity => post(identities::renew),
        Endpoint::AttestIdentity => post(identities::attest),
        Endpoint::Jobs => get(identities::jobs),
        Endpoint::CreateRequest => post(access::create_request),
        Endpoint::ListRequests => get(access::list_requests),
        Endpoint::ShowRequest => get(access::show_request),
        Endpoint::Approve => post(access::approve),
        Endpoint::Deny => post(access::deny),
        Endpoint::Authorize => post(access::authorize),
        Endpoint::IssueToken => post(tokens::issue_token),
        Endpoint::ListTokens => get(tokens::list_tokens),
        Endpoint::RevokeToken => post(tokens::revoke_token),
        Endpoint::Findings => get(identities::findings),
        Endpoint::Metrics => get(meta::metrics),
        Endpoint::Discovery => get(credentials::discovery),
        Endpoint::Jwks => get(credentials::jwks),
        Endpoint::TrustBundle => get(credentials::trust_bundle),
        Endpoint::Crl => get(credentials::crl),
        Endpoint::IssueCredential => post(credentials::issue_credential),
        Endpoint::ListCredentials => get(credentials::list_credentials),
        Endpoint::RotateCredential => post(credentials::rotate_credential),
        Endpoint::RevokeCredential => post(credentials::revoke_credential),
        Endpoint::Introspect => post(credentials::introspect),
        Endpoint::OAuthRevoke => post(credentials::oauth_revoke),
        Endpoint::Reconcile => post(reconcile::start),
        Endpoint::ReconcileRuns => get(reconcile::runs),
        Endpoint::ReconcileRun => get(reconcile::run),
        Endpoint::Systems => get(reconcile::systems),
        Endpoint::StartReview => post(reviews::start),
        Endpoint::ListReviews => get(reviews::list),
        Endpoint::ShowReview => get(reviews::show),
        Endpoint::DecideReview => post(reviews::decide),
        Endpoint::ReleaseReview => post(reviews::release),
        Endpoint::Posture => get(reviews::posture),
        Endpoint::ScimConfig => get(scim::service_provider_config),
        Endpoint::ScimResourceTypes => get(scim::resource_types),
        Endpoint::ScimResourceType => get(scim::resource_type),
        Endpoint::ScimSchemas => get(scim::schemas),
        Endpoint::ScimSchema => get(scim::schema),
        Endpoint::ScimListUsers => get(scim::list_users),
        Endpoint::ScimCreateUser => post(scim::create_user),
        Endpoint::ScimSearchUsers | Endpoint::ScimSearch => post(scim::search_users),
        Endpoint::ScimGetUser => get(scim::get_user),
        Endpoint::ScimReplaceUser => put(scim::replace_user),
        Endpoint::ScimPatchUser => patch(scim::patch_user),
        Endpoint::ScimDeleteUser => delete(scim::delete_user),
    }
}

/// The API's routes, each behind its guard.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        let mut guarded = handler(route.endpoint)
            .route_layer(from_fn_with_state(state.body_timeout, read_body))
            .route_layer(from_fn_with_state((state.clone(), route.access), guard));
        if route.path.starts_with("/scim/") {
            guarded = guarded.route_layer(axum::middleware::from_fn(scim::scim_errors));
        }
        r = r.route(route.path, guarded);
    }
    // An unknown URL or method is answered in the error shape (under /scim/v2, SCIM's).
    r.fallback(scim::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn_with_state(state.clone(), crate::access_log::layer))
        .with_state(state)
}

/// Only `GET /metrics`, without a token: for `serve --metrics-listen`, an address only the
/// monitoring network reaches. Everything else answers the JSON 404.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(meta::metrics))
        .fallback(scim::not_found)
        .layer(from_fn_with_state(state.clone(), crate::access_log::layer))
        .with_state(state)
}

/// Authenticate and check the role; hand the caller to the handler. A refusal is answered
/// before the body is read, so it closes the connection: a client that pooled it would
/// otherwise write its next request behind the unread body of this one and find it gone.
async fn guard(State((state, access)): State<(AppState, Access)>, req: Request, next: Next) -> Response {
    match admit(state, access, req, next).await {
        Ok(resp) => resp,
        Err(e) => closing(e),
    }
}

async fn admit(state: AppState, access: Access, mut req: Request, next: Next) -> Result<Response, ApiError> {
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
    // A verified TLS client certificate (an X.509-SVID) stands in for a missing bearer token.
    let certificate = req.extensions().get::<crate::listen::PeerCertificate>().map(|c| c.0.clone());
    // On this thread: a token is two rows read on a pooled WAL reader (readers never wait for
    // the writer), a certificate a signature check; a hop to the blocking pool and back costs
    // more than either (measured by the `authorize` benchmark's HTTP row).
    let (caller, delay) = engine.authenticate_from(&bearer, certificate.as_deref().map(Vec::as_slice), &source);
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
    let name = caller.actor();
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(crate::access_log::Caller(name));
    // What an authenticated route answers (identity data, issued secrets) is nobody's to cache.
    resp.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    Ok(resp)
}
