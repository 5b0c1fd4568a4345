//! `/scim/v2`: the SCIM 2.0 service provider sources push users to (RFC 7644). Bodies and
//! answers are `application/scim+json`; every failure, the guard's included, is answered in
//! the SCIM error schema.

use crate::AppState;
use crate::extract::{Path, Query};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenure_engine::EngineError;
use tenure_engine::scim::{Answer, ListQuery, ScimError, schema};
use tenure_model::Principal;

const SCIM_JSON: &str = "application/scim+json";

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

/// An error in the SCIM error schema.
fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({ "schemas": [schema::ERROR], "status": status.as_str(), "detail": detail });
    if let (Some(t), Some(o)) = (scim_type, body.as_object_mut()) {
        o.insert("scimType".into(), json!(t));
    }
    scim_json(status, &body)
}

fn failure(e: ScimError) -> Response {
    match e {
        ScimError::Invalid { scim_type, detail } => error(StatusCode::BAD_REQUEST, Some(scim_type), &detail),
        ScimError::NotFound(d) => error(StatusCode::NOT_FOUND, None, &d),
        ScimError::Conflict { scim_type, detail } => error(StatusCode::CONFLICT, scim_type, &detail),
        ScimError::Precondition(d) => error(StatusCode::PRECONDITION_FAILED, None, &d),
        ScimError::Forbidden(d) => error(StatusCode::FORBIDDEN, None, &d),
        ScimError::Engine(EngineError::NoPolicy) => {
            error(StatusCode::SERVICE_UNAVAILABLE, None, "no policy is deployed")
        }
        ScimError::Engine(e) => {
            tracing::error!(error = %e, "SCIM call failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error (see the server log)")
        }
    }
}

async fn run<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&tenure_engine::Engine) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let engine = s.engine.clone();
    match tokio::task::spawn_blocking(move || f(&engine)).await {
        Ok(r) => r,
        Err(e) => Err(ScimError::Engine(EngineError::Join(e.to_string()))),
    }
}

fn bad(scim_type: &'static str, detail: String) -> ScimError {
    ScimError::Invalid { scim_type, detail }
}

fn body(raw: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(raw).map_err(|e| bad("invalidSyntax", format!("expected a JSON body: {e}")))
}

/// A handler's outcome as an answer.
fn answer(r: Result<Response, ScimError>) -> Response {
    r.unwrap_or_else(failure)
}

fn if_match(h: &HeaderMap) -> Option<String> {
    h.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn resource(status: StatusCode, a: Answer, q: &BTreeMap<String, String>) -> Response {
    let location = a.resource.pointer("/meta/location").and_then(Value::as_str).map(str::to_owned);
    let r = tenure_engine::scim::project(a.resource, param(q, "attributes"), param(q, "excludedAttributes"));
    let mut resp = scim_json(status, &r);
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

fn param<'a>(q: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn number(q: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, ScimError> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad("invalidValue", format!("{name}: expected an integer, found `{v}`"))),
    }
}

fn source_of(s: &AppState, caller: &Principal) -> Result<String, ScimError> {
    s.engine.scim_source(caller)
}

fn base(s: &AppState) -> String {
    s.engine.scim_base_url()
}

pub(crate) async fn service_provider_config(State(s): State<AppState>) -> Response {
    scim_json(StatusCode::OK, &schema::service_provider_config(&base(&s)))
}

pub(crate) async fn resource_types(State(s): State<AppState>) -> Response {
    scim_json(StatusCode::OK, &schema::list(vec![schema::user_resource_type(&base(&s))], 1, 1))
}

pub(crate) async fn resource_type(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if id == "User" {
        scim_json(StatusCode::OK, &schema::user_resource_type(&base(&s)))
    } else {
        error(StatusCode::NOT_FOUND, None, &format!("no resource type `{id}`"))
    }
}

pub(crate) async fn schemas(State(s): State<AppState>) -> Response {
    let all = schema::schemas(&base(&s));
    let n = all.len();
    scim_json(StatusCode::OK, &schema::list(all, n, 1))
}

pub(crate) async fn schema(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match schema::schemas(&base(&s)).into_iter().find(|x| x["id"].as_str() == Some(id.as_str())) {
        Some(x) => scim_json(StatusCode::OK, &x),
        None => error(StatusCode::NOT_FOUND, None, &format!("no schema `{id}`")),
    }
}

pub(crate) async fn list_users(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let query = ListQuery {
            filter: param(&q, "filter").map(str::to_owned),
            start_index: number(&q, "startIndex")?,
            count: number(&q, "count")?,
            attributes: param(&q, "attributes").map(str::to_owned),
            excluded_attributes: param(&q, "excludedAttributes").map(str::to_owned),
        };
        let list = run(&s, move |e| e.scim_list(&source, &query)).await?;
        Ok::<_, ScimError>(scim_json(StatusCode::OK, &list))
    };
    answer(go.await)
}

/// `POST /Users/.search` (RFC 7644 §3.4.3): the query in a `SearchRequest` body.
pub(crate) async fn search_users(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    raw: Bytes,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let b = body(&raw)?;
        const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
        if !b.get("schemas").and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x == SEARCH)) {
            return Err(bad("invalidSyntax", format!("schemas must list `{SEARCH}`")));
        }
        let list = |k: &str| -> Option<String> {
            match b.get(k) {
                Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            }
        };
        let int = |k: &str| -> Result<Option<i64>, ScimError> {
            match b.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| bad("invalidValue", format!("{k}: expected an integer"))),
            }
        };
        let query = ListQuery {
            filter: b.get("filter").and_then(Value::as_str).map(str::to_owned),
            start_index: int("startIndex")?,
            count: int("count")?,
            attributes: list("attributes"),
            excluded_attributes: list("excludedAttributes"),
        };
        let list = run(&s, move |e| e.scim_list(&source, &query)).await?;
        Ok::<_, ScimError>(scim_json(StatusCode::OK, &list))
    };
    answer(go.await)
}

/// Any URL no route matches: under `/scim/`, a SCIM 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/scim/") {
        error(StatusCode::NOT_FOUND, None, &format!("no such endpoint: {}", uri.path()))
    } else {
        super::meta::no_route(&uri)
    }
}

pub(crate) async fn get_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let a = run(&s, move |e| e.scim_get(&source, &id)).await?;
        let unchanged = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag || t.trim() == "*"));
        if unchanged {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&a.etag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return Ok(r);
        }
        Ok::<_, ScimError>(resource(StatusCode::OK, a, &q))
    };
    answer(go.await)
}

pub(crate) async fn create_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<BTreeMap<String, String>>,
    raw: Bytes,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let b = body(&raw)?;
        let a = run(&s, move |e| e.scim_create(&caller, &source, b)).await?;
        s.workers.notify();
        Ok::<_, ScimError>(resource(StatusCode::CREATED, a, &q))
    };
    answer(go.await)
}

pub(crate) async fn replace_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let b = body(&raw)?;
        let m = if_match(&headers);
        let a = run(&s, move |e| e.scim_replace(&caller, &source, &id, b, m.as_deref())).await?;
        s.workers.notify();
        Ok::<_, ScimError>(resource(StatusCode::OK, a, &q))
    };
    answer(go.await)
}

pub(crate) async fn patch_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let b = body(&raw)?;
        let m = if_match(&headers);
        let a = run(&s, move |e| e.scim_patch(&caller, &source, &id, b, m.as_deref())).await?;
        s.workers.notify();
        Ok::<_, ScimError>(resource(StatusCode::OK, a, &q))
    };
    answer(go.await)
}

pub(crate) async fn delete_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let go = async {
        let source = source_of(&s, &caller)?;
        let m = if_match(&headers);
        run(&s, move |e| e.scim_delete(&caller, &source, &id, m.as_deref())).await?;
        s.workers.notify();
        Ok::<_, ScimError>(StatusCode::NO_CONTENT.into_response())
    };
    answer(go.await)
}

/// Around every SCIM route: a refusal of the guard (401, 403) or of the body reader, written
/// in tenure's error body, is answered in the SCIM error schema instead.
pub(crate) async fn scim_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let ours = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || !ours {
        return resp;
    }
    let (parts, b) = resp.into_parts();
    let bytes = axum::body::to_bytes(b, 64 * 1024).await.unwrap_or_default();
    let detail =
        serde_json::from_slice::<tenure_proto::ErrorBody>(&bytes).map_or_else(|_| status.to_string(), |e| e.message);
    // A URL that does not parse (its path or query) is SCIM's 400 invalidValue.
    let mut out = if status == StatusCode::UNPROCESSABLE_ENTITY {
        error(StatusCode::BAD_REQUEST, Some("invalidValue"), &detail)
    } else {
        error(status, None, &detail)
    };
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
