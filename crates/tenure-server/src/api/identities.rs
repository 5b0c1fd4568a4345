//! Events in; identities, jobs and findings out.

use super::page::PageQuery;
use crate::extract::{Path, Query};
use crate::{ApiError, AppState, invalid, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use std::collections::BTreeMap;
use tenure_engine::EngineError;
use tenure_engine::lists::{JobFilter, parse_field};
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

/// `GET /v1/identities?limit=&after=&state=&kind=&source=`: a keyset page in reference order;
/// the next page's URL is in the `Link` header (`rel="next"`), absent on the last page.
pub(crate) async fn list_identities(
    State(s): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = PageQuery::new(q, &["state", "kind", "source"])?;
    let limit = q.limit()?;
    let filter = tenure_engine::IdentityFilter {
        state: parse_field("state", q.get("state"))?,
        kind: parse_field("kind", q.get("kind"))?,
        source: q.get("source").map(str::to_owned),
    };
    let after = q.get("after").map(str::to_owned);
    let (page, next) = s.run(move |engine| engine.identities_page(&filter, after.as_deref(), limit)).await?;
    Ok(q.answer(Json(page), "/v1/identities", next))
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

/// `POST /v1/identities/{reference}/attest`: its owner reconfirms an NHI (the engine checks
/// the caller is the owner).
pub(crate) async fn attest(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(reference): Path<String>,
    raw: Bytes,
) -> Result<Json<IdentityView>, ApiError> {
    let w: tenure_proto::AnswerWire = json_body(&raw)?;
    let view = s.run(move |engine| engine.attest(&caller, &reference, &w.reason)).await?;
    s.workers.notify();
    Ok(Json(view))
}

/// `GET /v1/jobs?state=&kind=&system=&identity=&limit=&after=`: job counts by state and a
/// keyset page of jobs in id order (with no `state`: the dead ones and those waiting for a
/// retry).
pub(crate) async fn jobs(
    State(s): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = PageQuery::new(q, &["state", "kind", "system", "identity"])?;
    let (limit, after) = (q.limit()?, q.after_id("a job")?);
    let filter = JobFilter {
        state: parse_field("state", q.get("state"))?,
        kind: parse_field("kind", q.get("kind"))?,
        system: q.get("system").map(str::to_owned),
        identity: q.get("identity").map(str::to_owned),
    };
    let (page, next) = s.run(move |engine| engine.jobs_page(&filter, after, limit)).await?;
    Ok(q.answer(Json(page), "/v1/jobs", next.map(|n| n.to_string())))
}

/// `GET /v1/findings[?state=open|resolved|all][&system=NAME][&class=CLASS][&limit=N][&after=ID]`:
/// a keyset page, oldest first; the next page's URL is in the `Link` header.
pub(crate) async fn findings(
    State(s): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = PageQuery::new(q, &["all", "state", "system", "class"])?;
    let all = match q.get("all") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(invalid("all", format!("expected true or false, found `{other}`"))),
    };
    let (all, resolved_only) = match q.get("state") {
        None => (all, false),
        Some("open") => (false, false),
        Some("resolved") => (true, true),
        Some("all") => (true, false),
        Some(other) => return Err(invalid("state", format!("expected open, resolved or all, found `{other}`"))),
    };
    let (limit, after) = (q.limit()?, q.after_id("a finding")?);
    let filter = tenure_engine::views::FindingFilter {
        all,
        resolved_only,
        system: q.get("system").map(str::to_owned),
        kind: q.get("class").map(str::to_owned),
    };
    let (page, next) = s.run(move |engine| engine.findings_page(&filter, after, limit)).await?;
    Ok(q.answer(Json(page), "/v1/findings", next.map(|n| n.to_string())))
}
