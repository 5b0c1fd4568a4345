//! API tokens.

use crate::extract::Path;
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

pub(crate) async fn list_tokens(State(s): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_tokens()).await?))
}

pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.revoke_token(&id, &caller)).await?))
}
