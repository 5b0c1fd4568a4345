//! Health, readiness, metrics, and the answers to requests no route takes.

use crate::{ApiError, AppState};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub(crate) async fn healthz(State(s): State<AppState>) -> Result<Json<tenure_proto::Health>, ApiError> {
    let policy_version = s.run(move |engine| Ok(engine.current_policy()?.version.to_string())).await?;
    Ok(Json(tenure_proto::Health { status: "ok".into(), policy_version }))
}

/// The process is up and answering; nothing else is checked (a restart is what this asks for).
pub(crate) async fn livez() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long the job runners may go without a heartbeat (they beat every second).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether this node should get traffic: the database answers a read and takes a write, the
/// data dir takes a file, a policy is deployed and loads, the job runners beat. 503 names
/// each part that failed.
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let dir = s.data_dir.clone();
    let mut checks = s
        .run(move |engine| {
            let mut checks = serde_json::Map::new();
            let database =
                engine.store().write().and_then(|tx| tx.commit()).and_then(|()| engine.store().read().map(drop));
            checks.insert("database".into(), verdict(database.map_err(|e| e.to_string())));
            if let Some(dir) = dir {
                checks.insert("data_dir".into(), verdict(writable(&dir)));
            }
            let policy = engine.current_policy().map(drop).map_err(|e| e.to_string());
            checks.insert("policy".into(), verdict(policy));
            Ok(checks)
        })
        .await
        .unwrap_or_else(|_| {
            let mut m = serde_json::Map::new();
            m.insert("engine".into(), verdict(Err("the engine did not answer".into())));
            m
        });
    let beating = s.workers.beating(HEARTBEAT);
    checks.insert(
        "workers".into(),
        verdict(if beating { Ok(()) } else { Err("the job runners are not running".into()) }),
    );
    let ready = checks.values().all(|v| v == "ok");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A part's verdict for anyone who asks: `ok` or `failing`; what failed (paths, store errors)
/// goes to the operators' log, never to an unauthenticated caller.
fn verdict(r: Result<(), String>) -> serde_json::Value {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            "failing".into()
        }
    }
}

/// A file can be made and removed in `dir` (keys, exports and SQLite's journal need it).
fn writable(dir: &std::path::Path) -> Result<(), String> {
    if !dir.join("tenure.db").is_file() {
        return Err(format!("no database in `{}` (was the volume unmounted?)", dir.display()));
    }
    let probe = dir.join(format!(".readyz-{}", std::process::id()));
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("`{}` is not writable: {e}", dir.display()))
}

/// `GET /openapi.json`, built from the route table.
pub(crate) async fn openapi(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(s.engine.public_url()))
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = s.run(move |engine| engine.metrics_text()).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// No route has this path: the JSON error shape, not an empty 404.
pub(crate) fn no_route(uri: &Uri) -> Response {
    let b = crate::error::body("SV0003", format!("no route `{}`", uri.path()));
    (StatusCode::NOT_FOUND, Json(b)).into_response()
}

/// The path exists but not with this method.
pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    let b = crate::error::body("SV0004", format!("`{}` does not take {method}", uri.path()));
    (StatusCode::METHOD_NOT_ALLOWED, Json(b)).into_response()
}
