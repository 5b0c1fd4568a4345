//! Keyset pages on list routes: the query's parameters checked against the route's, `limit`,
//! and the next page's URL in the `Link` header (`rel="next"`), absent on the last page.

use crate::{ApiError, invalid};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// Items on one page if none is asked for.
pub(crate) const DEFAULT_LIMIT: usize = 500;
/// The largest page: a response stays a few megabytes, whatever the population.
pub(crate) const MAX_LIMIT: usize = 5000;

/// A list route's query: its parameters, each known to the route.
pub(crate) struct PageQuery(pub BTreeMap<String, String>);

impl PageQuery {
    /// Refuse a parameter the route does not know (`limit` and `after` always are).
    pub(crate) fn new(q: BTreeMap<String, String>, known: &[&str]) -> Result<Self, ApiError> {
        if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str()) && !["limit", "after"].contains(&k.as_str())) {
            let mut all: Vec<&str> = known.to_vec();
            all.extend(["limit", "after"]);
            return Err(invalid("query", format!("unknown parameter `{k}` ({})", all.join(", "))));
        }
        Ok(Self(q))
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(invalid("limit", format!("expected 1 to {MAX_LIMIT}, found `{l}`"))),
            },
        }
    }

    /// `after` as a numeric id (`what` names the kind of id in the error).
    pub(crate) fn after_id(&self, what: &str) -> Result<Option<i64>, ApiError> {
        self.get("after")
            .map(|a| a.parse::<i64>().map_err(|_| invalid("after", format!("expected {what} id, found `{a}`"))))
            .transpose()
    }

    /// The page's answer, with the next page's URL (this query, `after` set to `next`).
    pub(crate) fn answer(&self, body: impl IntoResponse, path: &str, next: Option<String>) -> Response {
        let mut resp = body.into_response();
        if let Some(next) = next {
            let mut params: Vec<(&str, &str)> =
                self.0.iter().filter(|(k, _)| k.as_str() != "after").map(|(k, v)| (k.as_str(), v.as_str())).collect();
            params.push(("after", &next));
            let query = serde_urlencoded::to_string(&params).unwrap_or_default();
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")) {
                resp.headers_mut().insert(axum::http::header::LINK, v);
            }
        }
        resp
    }
}
