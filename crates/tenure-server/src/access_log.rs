//! Around every request: its id (`X-Request-Id`, the client's when it sent a sane one, else a
//! new one), echoed in the answer and carried into what the engine writes for it (ledger
//! entries, jobs); one access log line (`tenure::access`: method, route, status, latency,
//! caller, request id); and its latency in the route's histogram.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request this task answers.
    pub(crate) static REQUEST_ID: String;
}

/// Who called, as the guard found out: put on the response for the log line.
#[derive(Clone)]
pub(crate) struct Caller(pub String);

/// A client's id is kept when it is short and plain (it lands in logs and the ledger).
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

pub(crate) async fn layer(state: axum::extract::State<crate::AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| format!("{:032x}", rand::random::<u128>()), str::to_owned);
    let method = req.method().to_string();
    // The route's pattern, not the path: bounded labels, and no identifiers in the metrics.
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let took = started.elapsed();
    let status = resp.status().as_u16();
    let caller = resp.extensions().get::<Caller>().map_or("-", |c| c.0.as_str());
    tracing::info!(
        target: "tenure::access",
        method,
        route,
        status,
        latency_ms = took.as_secs_f64() * 1000.0,
        caller,
        request_id = id,
        "request"
    );
    state.engine.telemetry().http(&method, &route, status, took);
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_short_ids_are_taken_from_clients() {
        assert!(super::acceptable("3f2a-req_1.x:y/z"));
        assert!(!super::acceptable(""));
        assert!(!super::acceptable("a b"));
        assert!(!super::acceptable("line\nbreak"));
        assert!(!super::acceptable(&"a".repeat(129)));
    }
}
