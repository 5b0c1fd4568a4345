//! Access review campaigns over HTTP: start and release (admin), list and read (admins and
//! auditors every item, a reviewer only its own), decide (the item's reviewer); and the posture
//! report those reviews feed (admins and auditors).

use crate::extract::{Path, Query};
use crate::{ApiError, AppState, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tenure_engine::reviews::Verdict;
use tenure_model::Principal;
use tenure_proto::{CampaignView, ReviewDecisionWire, ReviewItemView, ReviewPage, ReviewReleaseWire, StartReviewWire};

/// `POST /v1/reviews`: start a campaign of the deployed bundle.
pub(crate) async fn start(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let w: StartReviewWire = json_body(&raw)?;
    let view = s.run(move |engine| engine.start_review(&caller, &w.name)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/reviews`: campaigns, newest first (a reviewer: those with items for it).
pub(crate) async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Vec<CampaignView>>, ApiError> {
    Ok(Json(s.run(move |engine| engine.reviews(&caller)).await?))
}

/// `GET /v1/reviews/{id}?undecided=true&limit=&after=`: the campaign and a keyset page of its
/// items in id order (a reviewer sees only those it decides).
pub(crate) async fn show(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let q = super::page::PageQuery::new(q, &["undecided"])?;
    let (limit, after) = (q.limit()?, q.after_id("an item")?);
    let undecided = match q.get("undecided") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(crate::invalid("undecided", format!("expected true or false, found `{other}`"))),
    };
    let (campaign, items) = s.run(move |engine| engine.review(&caller, id, undecided, after, limit)).await?;
    let next = (items.len() == limit).then(|| items.last().map(|i| i.id.to_string())).flatten();
    Ok(q.answer(Json(ReviewPage { campaign, items }), &format!("/v1/reviews/{id}"), next))
}

/// `POST /v1/reviews/{id}/items/{item}/decide`: keep or revoke, as the item's reviewer.
pub(crate) async fn decide(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path((id, item)): Path<(i64, i64)>,
    raw: Bytes,
) -> Result<Json<ReviewItemView>, ApiError> {
    let w: ReviewDecisionWire = json_body(&raw)?;
    let verdict: Verdict = w.decision.parse()?;
    let view = s.run(move |engine| engine.decide_review(&caller.identity, id, item, verdict, &w.reason)).await?;
    s.workers.notify();
    Ok(Json(view))
}

/// `POST /v1/reviews/{id}/release`: a paused campaign's undecided items get its default, or
/// are kept.
pub(crate) async fn release(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<i64>,
    raw: Bytes,
) -> Result<Json<CampaignView>, ApiError> {
    let w: ReviewReleaseWire = json_body(&raw)?;
    let apply_default = match w.apply.as_str() {
        "default" => true,
        "keep" => false,
        other => return Err(crate::invalid("apply", format!("expected default or keep, found `{other}`"))),
    };
    let view = s.run(move |engine| engine.release_review(&caller, id, apply_default, &w.reason)).await?;
    s.workers.notify();
    Ok(Json(view))
}

/// `GET /v1/posture`: the posture report as of now, each check with its trend.
pub(crate) async fn posture(State(s): State<AppState>) -> Result<Json<tenure_proto::posture::PostureReport>, ApiError> {
    Ok(Json(s.run(|engine| engine.posture()).await?))
}
