//! Reconciliation over HTTP: start runs (admin), read them and their signed drift reports
//! (admin, auditor).

use crate::extract::{Path, Query};
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use tenure_engine::EngineError;
use tenure_model::Principal;
use tenure_proto::{ReconcileWire, RunView};

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

#[derive(serde::Deserialize)]
pub(crate) struct RunsQuery {
    system: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /v1/reconcile/runs`: newest first.
pub(crate) async fn runs(
    State(s): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    if !(1..=1000).contains(&q.limit) {
        return Err(crate::invalid("limit", format!("expected 1 to 1000, found {}", q.limit)));
    }
    Ok(Json(s.run(move |e| e.runs_view(q.system.as_deref(), q.limit)).await?))
}

/// `GET /v1/reconcile/runs/{id}`: one run with its plan.
pub(crate) async fn run(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Json<RunView>, ApiError> {
    Ok(Json(s.run(move |e| e.run_view(id)).await?))
}
