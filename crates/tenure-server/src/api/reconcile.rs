//! Reconciliation over HTTP: start runs (admin), read them and their signed drift reports
//! (admin, auditor); and the systems themselves checked (`GET /v1/systems`).

use crate::extract::{Path, Query};
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use tenure_engine::EngineError;
use tenure_model::Principal;
use tenure_proto::{ReconcileWire, RunView, SystemReport};

/// `POST /v1/reconcile`: run one system, or every system in the policy and tenure's own checks,
/// and answer with the runs. The run goes on if the client goes away.
pub(crate) async fn start(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let wire: ReconcileWire = if raw.iter().all(u8::is_ascii_whitespace) {
        ReconcileWire { system: None, dry_run: false }
    } else {
        crate::json_body(&raw)?
    };
    let systems = match wire.system {
        Some(system) => vec![system],
        None => {
            let mut all: Vec<String> = s.run(|e| Ok(e.current_policy()?.systems.keys().cloned().collect())).await?;
            all.push(tenure_engine::reconcile::TENURE.to_owned());
            all
        }
    };
    let workers = s.workers.clone();
    let task = tokio::spawn(async move {
        let mut runs = Vec::new();
        for system in systems {
            runs.push(workers.reconcile(&system, wire.dry_run, caller.clone(), &mut |_| {}).await?);
        }
        Ok::<_, EngineError>(runs)
    });
    let runs = task.await.map_err(|e| ApiError::Engine(EngineError::Join(e.to_string())))??;
    Ok(Json(runs))
}

/// `GET /v1/reconcile/runs?system=&limit=&after=`: a keyset page, newest first (`after` is
/// the run id the previous page ended with; the next page's URL is in `Link`).
pub(crate) async fn runs(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let q = super::page::PageQuery::new(q, &["system"])?;
    let (limit, before) = (q.limit()?, q.after_id("a run")?);
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let system = q.get("system").map(str::to_owned);
    let (page, next) = s.run(move |e| e.runs_page(system.as_deref(), before, limit)).await?;
    Ok(q.answer(Json::<Vec<RunView>>(page), "/v1/reconcile/runs", next.map(|n| n.to_string())))
}

/// `GET /v1/reconcile/runs/{id}`: one run with its plan.
pub(crate) async fn run(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Json<RunView>, ApiError> {
    Ok(Json(s.run(move |e| e.run_view(id)).await?))
}

/// `GET /v1/systems?system=NAME`: `tenure systems check` of every system of the deployed policy
/// (or one): a report per system, a line per check. Always 200 when the checks ran, failed
/// ones included (they are the answer); 404 for a system the policy does not have.
pub(crate) async fn systems(
    State(s): State<AppState>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Result<Json<Vec<SystemReport>>, ApiError> {
    if let Some(k) = q.keys().find(|k| *k != "system") {
        return Err(ApiError::Engine(EngineError::Invalid {
            field: k.clone(),
            message: "unknown query parameter (expected system)".into(),
        }));
    }
    let only = q.get("system").cloned();
    Ok(Json(s.workers.check_systems(only.as_deref()).await?))
}
