//! API tokens.

use crate::extract::{Path, Query};
use crate::{ApiError, AppState, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tenure_model::Principal;
use tenure_proto::{IssuedTokenView, TokenView, TokenWire};

pub(crate) async fn issue_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<IssuedTokenView>), ApiError> {
    let w: TokenWire = json_body(&raw)?;
    let issued =
        s.run(move |engine| engine.issue_token(&w.identity, &w.roles, w.ttl_days, &w.description, &caller)).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// `GET /v1/tokens?identity=&state=&limit=&after=`: a keyset page, oldest first (`after` is
/// the token id the previous page ended with).
pub(crate) async fn list_tokens(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use tenure_engine::lists::{TokenFilter, parse_field};
    let q = super::page::PageQuery::new(q, &["identity", "state"])?;
    let limit = q.limit()?;
    let filter =
        TokenFilter { identity: q.get("identity").map(str::to_owned), state: parse_field("state", q.get("state"))? };
    let after = q.get("after").map(str::to_owned);
    let (page, next) = s.run(move |engine| engine.tokens_page(&filter, after.as_deref(), limit)).await?;
    Ok(q.answer(Json::<Vec<TokenView>>(page), "/v1/tokens", next))
}

pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.revoke_token(&id, &caller)).await?))
}
