//! The HTTP API. Handlers extract, call the engine, and map the result; every error goes
//! through [`ApiError`]'s one `IntoResponse`, which picks the status and never shows internal
//! error text to clients.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::BTreeMap;
use std::sync::Arc;
use tenure_engine::worker::Workers;
use tenure_engine::{Engine, EngineError, RecordError, ingest, parse};
use tenure_proto::{ErrorBody, IdentityDetail, IdentityView, IngestReport, RecordErrorView};

/// Largest accepted request body (a bulk event batch).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub workers: Arc<Workers>,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/events", post(post_events))
        .route("/v1/identities", get(list_identities))
        .route("/v1/identities/{reference}", get(show_identity))
        .route("/v1/jobs", get(jobs))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Every failure of a handler.
pub enum ApiError {
    Engine(EngineError),
    BadRecords(Vec<RecordError>),
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
            Self::Engine(e) => match &e {
                EngineError::NotFound(r) => (StatusCode::NOT_FOUND, body("EN0004", format!("no identity `{r}`"))),
                EngineError::NoEntry(s) => (StatusCode::NOT_FOUND, body("EN0007", format!("no ledger entry {s}"))),
                EngineError::NoPolicy => {
                    (StatusCode::SERVICE_UNAVAILABLE, body("EN0002", "no policy is deployed".into()))
                }
                EngineError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, body("EN0001", "batch rejected".into())),
                EngineError::Store(_)
                | EngineError::BadStoredPolicy { .. }
                | EngineError::Task(_)
                | EngineError::Ledger(_) => {
                    // The details are for operators, in the log; clients get the code only.
                    tracing::error!(error = %e, "request failed");
                    let code = e.to_string().get(..6).unwrap_or("EN0000").to_owned();
                    (StatusCode::INTERNAL_SERVER_ERROR, body(&code, "internal error; see the server log".into()))
                }
            },
        };
        (status, Json(b)).into_response()
    }
}

async fn healthz(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let engine = s.engine.clone();
    let policy = blocking(move || Ok(engine.current_policy()?.version.to_string())).await?;
    Ok(Json(serde_json::json!({ "status": "ok", "policy_version": policy })))
}

async fn post_events(State(s): State<AppState>, raw: Bytes) -> Result<Json<IngestReport>, ApiError> {
    let engine = s.engine.clone();
    // Parsing a large batch is real work too: keep it off the async threads.
    let report = blocking(move || {
        let records = parse::json_array(&raw).map_err(EngineError::Rejected)?;
        let events = ingest::events_from_wire(records).map_err(EngineError::Rejected)?;
        engine.ingest(&events, "api")
    })
    .await?;
    s.workers.notify();
    Ok(Json(report))
}

async fn list_identities(State(s): State<AppState>) -> Result<Json<Vec<IdentityView>>, ApiError> {
    let engine = s.engine.clone();
    Ok(Json(blocking(move || engine.list_identities()).await?))
}

async fn show_identity(
    State(s): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<IdentityDetail>, ApiError> {
    let engine = s.engine.clone();
    Ok(Json(blocking(move || engine.identity_detail(&reference)).await?))
}

async fn jobs(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let engine = s.engine.clone();
    let (counts, dead) = blocking(move || {
        let tx = engine.store().read()?;
        let counts: BTreeMap<String, i64> = tx.job_counts()?;
        let dead = tx.jobs(Some(tenure_engine::JobState::Dead))?;
        Ok((counts, dead))
    })
    .await?;
    let dead: Vec<_> = dead
        .into_iter()
        .map(|j| serde_json::json!({ "id": j.id, "system": j.system, "identity_id": j.identity_id, "attempts": j.attempts, "error": j.last_error }))
        .collect();
    Ok(Json(serde_json::json!({ "counts": counts, "dead": dead })))
}

/// Run store-bound work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::Engine(EngineError::Task(e.to_string()))),
    }
}
