//! Health and metrics.

use crate::{ApiError, AppState};

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

pub(crate) async fn healthz(State(s): State<AppState>) -> Result<Json<tenure_proto::Health>, ApiError> {
    let policy_version = s.run(move |engine| Ok(engine.current_policy()?.version.to_string())).await?;
    Ok(Json(tenure_proto::Health { status: "ok".into(), policy_version }))
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = s.run(move |engine| engine.metrics_text()).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
