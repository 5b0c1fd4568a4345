//! Every failure of a handler, and its one mapping to a status and an error body: the cause's
//! code, a message for people, never internal error text (that goes to the log).

use crate::MAX_BODY;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tenure_engine::{EngineError, RecordError};
use tenure_proto::{ErrorBody, RecordErrorView};

/// Every failure of a handler.
pub enum ApiError {
    Engine(EngineError),
    BadRecords(Vec<RecordError>),
    /// SV0001: the request body did not arrive in time.
    BodyTimeout(std::time::Duration),
    /// SV0002: the request body is over the limit or broken.
    BodyTooLarge,
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(errors) => Self::BadRecords(errors),
            other => Self::Engine(other),
        }
    }
}

pub(crate) fn body(code: &str, message: String) -> ErrorBody {
    ErrorBody { code: code.to_owned(), message, errors: vec![] }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, b) = match self {
            Self::BadRecords(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody {
                    code: "EN0001".into(),
                    message: format!("batch rejected: {} bad record(s); nothing was applied", errors.len()),
                    errors: errors
                        .into_iter()
                        .map(|e| RecordErrorView { record: e.position.number(), field: e.field, message: e.message })
                        .collect(),
                },
            ),
            Self::BodyTimeout(t) => {
                (StatusCode::REQUEST_TIMEOUT, body("SV0001", format!("the body did not arrive within {t:?}")))
            }
            Self::BodyTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, body("SV0002", format!("the body is over {MAX_BODY} bytes or broken")))
            }
            Self::Engine(e) => match &e {
                EngineError::NotFound(r) => (StatusCode::NOT_FOUND, body(e.code(), format!("not found: {r}"))),
                EngineError::NoEntry(s) => (StatusCode::NOT_FOUND, body(e.code(), format!("no ledger entry {s}"))),
                EngineError::NoCheckpoint(s) => {
                    (StatusCode::NOT_FOUND, body(e.code(), format!("no checkpoint of size {s}")))
                }
                EngineError::NoPolicy => {
                    (StatusCode::SERVICE_UNAVAILABLE, body(e.code(), "no policy is deployed".into()))
                }
                EngineError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, body(e.code(), "batch rejected".into())),
                EngineError::Invalid { field, message } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, body(e.code(), format!("{field}: {message}")))
                }
                EngineError::Refused(m) => (StatusCode::FORBIDDEN, body(e.code(), format!("refused: {m}"))),
                EngineError::Conflict(m) => (StatusCode::CONFLICT, body(e.code(), m.clone())),
                EngineError::Transition(t) => (StatusCode::CONFLICT, body(e.code(), t.to_string())),
                EngineError::Unauthenticated(m) => {
                    let mut resp = (StatusCode::UNAUTHORIZED, Json(body(e.code(), format!("not authenticated: {m}"))))
                        .into_response();
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return resp;
                }
                EngineError::Forbidden(m) => (StatusCode::FORBIDDEN, body(e.code(), format!("forbidden: {m}"))),
                EngineError::Store(_)
                | EngineError::BadStoredPolicy { .. }
                | EngineError::Join(_)
                | EngineError::GroupCommit(_)
                | EngineError::Encode(_)
                | EngineError::NoKeyStore
                | EngineError::Broker(_)
                | EngineError::Ledger(_) => {
                    // The details are for operators, in the log; clients get the code only.
                    tracing::error!(error = %e, "request failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, body(e.code(), "internal error; see the server log".into()))
                }
            },
        };
        (status, Json(b)).into_response()
    }
}

/// A JSON body, with errors naming the field.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "body".to_owned() } else { field };
        ApiError::from(EngineError::Invalid { field, message: e.inner().to_string() })
    })
}

pub(crate) fn invalid(field: &str, message: String) -> ApiError {
    EngineError::invalid(field, message).into()
}
