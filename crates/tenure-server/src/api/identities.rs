//! Events in; identities, jobs and findings out.

use crate::extract::{Path, Query};
use crate::{ApiError, AppState, invalid, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use tenure_engine::EngineError;
use tenure_engine::parse;
use tenure_model::Principal;
use tenure_proto::{IdentityDetail, IdentityView, IngestReport};

pub(crate) async fn post_events(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<Json<IngestReport>, ApiError> {
    // Parsing a large batch is real work too: keep it off the async threads.
    let report = s
        .run(move |engine| engine.ingest_from(&caller, parse::json_array(&raw).map_err(EngineError::Rejected)?))
        .await?;
    s.workers.notify();
    Ok(Json(report))
}

/// Identities on one page if none is asked for.
const DEFAULT_LIMIT: usize = 500;
/// The largest page: a response stays a few megabytes, whatever the population.
const MAX_LIMIT: usize = 5000;

/// `GET /v1/identities?limit=&after=&state=&kind=&source=`: a keyset page in reference order;
/// the next page's URL is in the `Link` header (`rel="next"`), absent on the last page.
pub(crate) async fn list_identities(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if let Some(k) = q.keys().find(|k| !["limit", "after", "state", "kind", "source"].contains(&k.as_str())) {
        return Err(invalid("query", format!("unknown parameter `{k}` (limit, after, state, kind, source)")));
    }
    let limit = page_limit(&q)?;
    let filter = tenure_engine::IdentityFilter {
        state: q
            .get("state")
            .map(|v| v.parse::<tenure_model::LifecycleState>().map_err(|e| invalid("state", e.to_string())))
            .transpose()?,
        kind: q
            .get("kind")
            .map(|v| v.parse::<tenure_model::IdentityKind>().map_err(|e| invalid("kind", e.to_string())))
            .transpose()?,
        source: q.get("source").cloned(),
    };
    let after = q.get("after").cloned();
    let (page, next) = s.run(move |engine| engine.identities_page(&filter, after.as_deref(), limit)).await?;
    Ok(paged(Json(page).into_response(), "/v1/identities", &q, next))
}

/// A page's answer with the next page's URL in its `Link` header (`rel="next"`): the same
/// query, `after` set to where this page ended; none on the last page.
fn paged(
    mut resp: axum::response::Response,
    path: &str,
    q: &std::collections::BTreeMap<String, String>,
    next: Option<String>,
) -> axum::response::Response {
    if let Some(next) = next {
        let mut params: Vec<(&str, &str)> =
            q.iter().filter(|(k, _)| k.as_str() != "after").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        params.push(("after", &next));
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")) {
            resp.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    resp
}

/// `limit` of a paged route: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn page_limit(q: &std::collections::BTreeMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(invalid("limit", format!("expected 1 to {MAX_LIMIT}, found `{l}`"))),
        },
    }
}

pub(crate) async fn show_identity(
    State(s): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<IdentityDetail>, ApiError> {
    Ok(Json(s.run(move |engine| engine.identity_detail(&reference)).await?))
}

/// `POST /v1/identities/{reference}/renew`: its owner (a person's manager) or an admin extends
/// its expiry.
pub(crate) async fn renew(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(reference): Path<String>,
    raw: Bytes,
) -> Result<Json<IdentityView>, ApiError> {
    let w: tenure_proto::RenewWire = json_body(&raw)?;
    let view = s.run(move |engine| engine.renew(&caller, &reference, w.expires_at, &w.reason)).await?;
    s.workers.notify();
    Ok(Json(view))
}

pub(crate) async fn jobs(State(s): State<AppState>) -> Result<Json<tenure_proto::JobsView>, ApiError> {
    Ok(Json(s.run(move |engine| engine.jobs_view(None)).await?))
}

/// `GET /v1/findings[?state=open|resolved|all][&system=NAME][&class=CLASS][&limit=N][&after=ID]`:
/// a keyset page, oldest first; the next page's URL is in the `Link` header.
pub(crate) async fn findings(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    const KNOWN: [&str; 6] = ["all", "state", "system", "class", "limit", "after"];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(invalid("query", format!("unknown parameter `{k}` ({})", KNOWN.join(", "))));
    }
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(invalid("all", format!("expected true or false, found `{other}`"))),
    };
    let (all, resolved_only) = match q.get("state").map(String::as_str) {
        None => (all, false),
        Some("open") => (false, false),
        Some("resolved") => (true, true),
        Some("all") => (true, false),
        Some(other) => return Err(invalid("state", format!("expected open, resolved or all, found `{other}`"))),
    };
    let limit = page_limit(&q)?;
    let after = match q.get("after") {
        None => None,
        Some(a) => Some(a.parse::<i64>().map_err(|_| invalid("after", format!("expected a finding id, found `{a}`")))?),
    };
    let kind = q.get("class").cloned();
    let filter = tenure_engine::views::FindingFilter { all, resolved_only, system: q.get("system").cloned(), kind };
    let (page, next) = s.run(move |engine| engine.findings_page(&filter, after, limit)).await?;
    Ok(paged(Json(page).into_response(), "/v1/findings", &q, next.map(|n| n.to_string())))
}
