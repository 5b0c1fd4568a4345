//! The HTTP API, thin: `routes` is the route table with who may call each route and the
//! guard in front of it; `error` maps every failure to one status and body, never showing
//! internal error text; `api/` has one module of handlers per area, each extracting, calling
//! the engine (off the async threads, `AppState::run`) and mapping the result. Rules live in
//! the engine, wire shapes in `tenure-proto`; [`listen`] is the connection loop with its limits;
//! `access_log` gives every request an id, a log line and its place in the metrics; [`openapi`]
//! documents the route table.

mod access_log;
mod api;
mod error;
mod extract;
pub mod listen;
pub mod openapi;
mod routes;

pub use error::ApiError;
pub(crate) use error::{invalid, json_body};
pub use routes::{Access, Endpoint, ROUTES, Route, metrics_router, router};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tenure_engine::worker::Workers;
use tenure_engine::{Engine, EngineError};

/// Largest accepted request body (a bulk event batch).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Read the whole request body within `timeout` (a stalled body gets 408, not a connection
/// held open for ever) and at most [`MAX_BODY`] bytes (413); handlers then read it from memory.
pub(crate) async fn read_body(State(timeout): State<std::time::Duration>, req: Request, next: Next) -> Response {
    let (parts, incoming) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(incoming, MAX_BODY)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => closing(ApiError::BodyTooLarge),
        Err(_) => closing(ApiError::BodyTimeout(timeout)),
    }
}

/// An answer sent with part of the request unread: the connection cannot carry another request,
/// and the client is told so (`connection: close`) rather than finding out on its next write.
pub(crate) fn closing(e: ApiError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    resp
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub workers: Arc<Workers>,
    /// How long a client has to send a request body (read only after the guard let it in, so an
    /// unauthenticated client cannot make the server buffer anything).
    pub body_timeout: std::time::Duration,
    /// The data directory, which readiness checks is writable (none: not checked).
    pub data_dir: Option<std::path::PathBuf>,
}

/// Run store-bound work off the async threads.
impl AppState {
    /// Call the engine off the async threads (it does blocking IO), mapping its errors.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.engine.clone();
        blocking(move || f(&engine)).await
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    // What the engine writes for this request (ledger entries, jobs) carries its id.
    let request = access_log::REQUEST_ID.try_with(Clone::clone).ok();
    match tokio::task::spawn_blocking(move || tenure_engine::telemetry::with_request_id(request.as_deref(), f)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::Engine(EngineError::Join(e.to_string()))),
    }
}
