//! Access, JIT and exception requests, their answers, and runtime authorization.

use crate::extract::{Path, Query};
use crate::{ApiError, AppState, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tenure_engine::access::AccessRequest;
use tenure_model::Principal;
use tenure_proto::{AnswerWire, AuthorizeWire, DecisionView, RequestView, RequestWire};

pub(crate) async fn create_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let w: RequestWire = json_body(&raw)?;
    let req = AccessRequest::from_wire(w, &caller)?;
    let view = s.run(move |engine| engine.request(&caller, &req)).await?;
    s.workers.notify();
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/requests?state=&kind=&identity=&limit=&after=`: a keyset page, newest first
/// (`after` is the id the previous page ended with; the next page's URL is in `Link`).
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use tenure_engine::lists::{RequestFilter, parse_field};
    let q = super::page::PageQuery::new(q, &["state", "kind", "identity"])?;
    let (limit, before) = (q.limit()?, q.after_id("a request")?);
    let filter = RequestFilter {
        state: parse_field("state", q.get("state"))?,
        kind: parse_field("kind", q.get("kind"))?,
        identity: q.get("identity").map(str::to_owned),
    };
    let (page, next) = s.run(move |engine| engine.requests_page(&filter, before, limit)).await?;
    Ok(q.answer(Json(page), "/v1/requests", next.map(|n| n.to_string())))
}

pub(crate) async fn show_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.request_for(&caller, id)).await?))
}

pub(crate) async fn answer(
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

pub(crate) async fn approve(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    raw: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    answer(s, caller, id, raw, true).await
}

pub(crate) async fn deny(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    raw: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    answer(s, caller, id, raw, false).await
}

pub(crate) async fn authorize(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<Json<DecisionView>, ApiError> {
    let w: AuthorizeWire = json_body(&raw)?;
    Ok(Json(s.run(move |engine| engine.authorize_wire(&caller, w)).await?))
}
