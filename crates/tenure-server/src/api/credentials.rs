//! The credential broker: issue, list, rotate, revoke; RFC 7662 introspection and RFC 7009
//! revocation; what relying parties fetch (discovery, JWKS, trust bundle, CRL).

use crate::extract::{Path, Query};
use crate::{ApiError, AppState, invalid, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use tenure_engine::creds::CredentialRequest;
use tenure_model::Principal;
use tenure_proto::{CredentialActionWire, CredentialView, CredentialWire, IssuedCredentialView};

pub(crate) async fn issue_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedCredentialView>), ApiError> {
    let w: CredentialWire = json_body(&raw)?;
    let req = CredentialRequest::from_wire(w, &caller)?;
    let issued = s.workers.issue_credential(req, caller).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// `GET /v1/credentials?identity=&kind=&system=&state=&limit=&after=`: a keyset page, newest
/// first (`after` is the credential id the previous page ended with).
pub(crate) async fn list_credentials(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    use tenure_engine::lists::{CredentialFilter, parse_field};
    let q = super::page::PageQuery::new(q, &["identity", "kind", "system", "state"])?;
    let limit = q.limit()?;
    let filter = CredentialFilter {
        identity: q.get("identity").map(str::to_owned),
        kind: parse_field("kind", q.get("kind"))?,
        system: q.get("system").map(str::to_owned),
        state: parse_field("state", q.get("state"))?,
    };
    let after = q.get("after").map(str::to_owned);
    let (page, next) = s.run(move |engine| engine.credentials_page(&filter, after.as_deref(), limit)).await?;
    Ok(q.answer(Json(page), "/v1/credentials", next))
}

pub(crate) async fn rotate_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedCredentialView>), ApiError> {
    let w: CredentialActionWire = if raw.is_empty() { CredentialActionWire::default() } else { json_body(&raw)? };
    let req = s.run(move |engine| engine.rotation_of(&id, w.csr)).await?;
    let issued = s.workers.issue_credential(req, caller).await?;
    s.workers.notify();
    Ok((StatusCode::CREATED, Json(issued)))
}

pub(crate) async fn revoke_credential(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<CredentialView>, ApiError> {
    let w: CredentialActionWire = if raw.is_empty() { CredentialActionWire::default() } else { json_body(&raw)? };
    let v = s.run(move |engine| engine.revoke_credential(&id, w.reason.as_deref(), &caller)).await?;
    s.workers.notify();
    Ok(Json(v))
}

/// An OAuth form body (RFC 7662 and RFC 7009 use `application/x-www-form-urlencoded`); JSON
/// is accepted too.
#[derive(serde::Deserialize)]
pub(crate) struct TokenForm {
    token: String,
    #[serde(default)]
    #[expect(dead_code, reason = "RFC 7662/7009 allow it; the fingerprint finds the credential whatever its kind")]
    token_type_hint: Option<String>,
}

pub(crate) fn token_form(headers: &axum::http::HeaderMap, raw: &[u8]) -> Result<TokenForm, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return json_body(raw);
    }
    serde_urlencoded::from_bytes(raw).map_err(|e| invalid("token", e.to_string()))
}

pub(crate) async fn introspect(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Result<Json<tenure_proto::broker::Introspection>, ApiError> {
    let form = token_form(&headers, &raw)?;
    Ok(Json(s.run(move |engine| engine.introspect(&form.token)).await?))
}

pub(crate) async fn oauth_revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let form = token_form(&headers, &raw)?;
    s.run(move |engine| engine.revoke_token_value(&form.token, &caller)).await?;
    s.workers.notify();
    Ok(StatusCode::OK)
}

pub(crate) async fn discovery(State(s): State<AppState>) -> Result<Json<tenure_proto::broker::Discovery>, ApiError> {
    Ok(Json(s.run(move |engine| engine.discovery()).await?))
}

pub(crate) async fn jwks(State(s): State<AppState>) -> Result<Response, ApiError> {
    let keys = s.run(move |engine| engine.jwks()).await?;
    Ok(([(header::CONTENT_TYPE, "application/jwk-set+json")], Json(keys)).into_response())
}

pub(crate) async fn trust_bundle(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pem = s.run(move |engine| engine.trust_bundle()).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

pub(crate) async fn crl(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pem = s.run(move |engine| engine.crl()).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}
