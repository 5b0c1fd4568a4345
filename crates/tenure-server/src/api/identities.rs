//! Events in; identities, jobs and findings out.

use crate::{ApiError, AppState, json_body};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use tenure_engine::EngineError;
use tenure_engine::parse;
use tenure_model::Principal;
use tenure_proto::{FindingView, IdentityDetail, IdentityView, IngestReport};

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

pub(crate) async fn list_identities(State(s): State<AppState>) -> Result<Json<Vec<IdentityView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.list_identities()).await?))
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingsQuery {
    #[serde(default)]
    all: bool,
    /// `open` (the default), `resolved` or `all`.
    state: Option<String>,
    system: Option<String>,
    /// A kind, or a reconciliation class (`unmatched`).
    class: Option<String>,
}

/// `GET /v1/findings[?state=open|resolved|all][&system=NAME][&class=CLASS]`.
pub(crate) async fn findings(
    State(s): State<AppState>,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<Vec<FindingView>>, ApiError> {
    let (all, resolved_only) = match q.state.as_deref() {
        None => (q.all, false),
        Some("open") => (false, false),
        Some("resolved") => (true, true),
        Some("all") => (true, false),
        Some(other) => {
            return Err(
                EngineError::invalid("state", format!("expected open, resolved or all, found `{other}`")).into()
            );
        }
    };
    let filter = tenure_engine::views::FindingFilter { all, resolved_only, system: q.system, kind: q.class };
    Ok(Json(s.run(move |engine| engine.find_findings(&filter)).await?))
}
