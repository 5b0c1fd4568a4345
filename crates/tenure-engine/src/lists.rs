//! Keyset pages of what the API and the CLI list: requests, credentials, API tokens, jobs
//! (identities and findings are in [`crate::views`]). Each page holds at most `limit` items
//! and the cursor the next page starts after, none on the last; a cursor is the last item's
//! id, so a page costs the same at the millionth item as at the first and memory is bounded
//! by the page.

use crate::{Engine, EngineError, Result};
use std::collections::BTreeMap;
use tenure_model::{CredentialKind, IdentityRef, RequestKind, RequestState};
use tenure_proto::{CredentialView, JobView, JobsView, RequestView, TokenView};
use tenure_store::{
    CredentialQuery, CredentialStatus, JobKind, JobQuery, JobState, ReadTx, RequestQuery, TokenQuery, TokenStatus,
};

/// A filter's value from text (a query parameter, a flag): an error names the field.
pub fn parse_field<T: std::str::FromStr<Err = String>>(field: &str, value: Option<&str>) -> Result<Option<T>> {
    value.map(|v| v.parse::<T>().map_err(|e| EngineError::invalid(field, e))).transpose()
}

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub kind: Option<RequestKind>,
    /// Only those for this identity (`source:external_id`).
    pub identity: Option<String>,
}

/// Which credentials to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFilter {
    pub identity: Option<String>,
    pub kind: Option<CredentialKind>,
    /// Only dynamic logins on this system.
    pub system: Option<String>,
    pub state: Option<CredentialStatus>,
}

/// Which API tokens to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    pub identity: Option<String>,
    pub state: Option<TokenStatus>,
}

/// Which jobs to list. With no `state`, those that need a look: dead-lettered, or waiting
/// for a retry after a failed attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
    pub system: Option<String>,
    pub identity: Option<String>,
}

/// The id of the identity a filter names: one that does not exist is not found (an empty
/// list would read as "it holds nothing").
fn identity_id(tx: &dyn ReadTx, reference: Option<&str>) -> Result<Option<i64>> {
    let Some(r) = reference else { return Ok(None) };
    let parsed: IdentityRef = r.parse().map_err(|e| EngineError::invalid("identity", format!("{e}")))?;
    Ok(Some(tx.identity(&parsed)?.ok_or_else(|| EngineError::NotFound(r.to_owned()))?.id))
}

/// One more row than a page holds was read: drop it, and say where the next page starts.
fn split<T, C>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> (Vec<T>, Option<C>) {
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

impl Engine {
    /// Requests, newest first: those with an id below `before`.
    pub fn requests_page(
        &self,
        filter: &RequestFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<RequestView>, Option<i64>)> {
        let tx = self.store.read()?;
        let q = RequestQuery {
            state: filter.state,
            kind: filter.kind,
            beneficiary_id: identity_id(tx.as_ref(), filter.identity.as_deref())?,
        };
        let rows = tx.requests_page(&q, before, limit.saturating_add(1))?;
        let (rows, next) = split(rows, limit, |r| r.id);
        let views = rows.into_iter().map(|r| crate::access::request_view(tx.as_ref(), r)).collect::<Result<_>>()?;
        Ok((views, next))
    }

    /// Credentials (never their secrets), newest first: those after the credential `after`.
    pub fn credentials_page(
        &self,
        filter: &CredentialFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<CredentialView>, Option<String>)> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        if let Some(a) = after
            && tx.credential(a)?.is_none()
        {
            return Err(EngineError::invalid("after", format!("no credential `{a}` to continue after")));
        }
        let q = CredentialQuery {
            identity_id: identity_id(tx.as_ref(), filter.identity.as_deref())?,
            kind: filter.kind,
            system: filter.system.as_deref(),
            state: filter.state,
        };
        let rows = tx.credentials_page(&q, now, after, limit.saturating_add(1))?;
        let (rows, next) = split(rows, limit, |c| c.id.clone());
        let views = rows.iter().map(|c| crate::creds::view(tx.as_ref(), c, now)).collect::<Result<_>>()?;
        Ok((views, next))
    }

    /// API tokens (never their secrets), oldest first: those after the token `after`.
    pub fn tokens_page(
        &self,
        filter: &TokenFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TokenView>, Option<String>)> {
        let now = self.clock.now();
        let tx = self.store.read()?;
        if let Some(a) = after
            && tx.token(a)?.is_none()
        {
            return Err(EngineError::invalid("after", format!("no token `{a}` to continue after")));
        }
        let q = TokenQuery { identity_id: identity_id(tx.as_ref(), filter.identity.as_deref())?, state: filter.state };
        let rows = tx.tokens_page(&q, now, after, limit.saturating_add(1))?;
        let (rows, next) = split(rows, limit, |t| t.id.clone());
        let views = rows.iter().map(|t| crate::tokens::view(tx.as_ref(), t)).collect::<Result<_>>()?;
        Ok((views, next))
    }

    /// Job counts by state, and a page of the jobs the filter keeps, in id order.
    pub fn jobs_page(&self, filter: &JobFilter, after: Option<i64>, limit: usize) -> Result<(JobsView, Option<i64>)> {
        let tx = self.store.read()?;
        let counts = tx.job_counts()?;
        let q = JobQuery {
            state: filter.state,
            failing: filter.state.is_none(),
            kind: filter.kind,
            system: filter.system.as_deref(),
            identity_id: identity_id(tx.as_ref(), filter.identity.as_deref())?,
        };
        let rows = tx.jobs_page(&q, after, limit.saturating_add(1))?;
        let (rows, next) = split(rows, limit, |j| j.id);
        // An identity has a job per system: look each one up once.
        let mut refs: BTreeMap<i64, String> = BTreeMap::new();
        let mut jobs = Vec::with_capacity(rows.len());
        for j in rows {
            let identity = match j.identity_id {
                None => String::new(),
                Some(id) => match refs.get(&id) {
                    Some(r) => r.clone(),
                    None => {
                        let r = tx.identity_by_id(id)?.map(|i| i.reference.to_string()).unwrap_or_default();
                        refs.insert(id, r.clone());
                        r
                    }
                },
            };
            jobs.push(JobView {
                id: j.id,
                kind: j.kind.as_str().to_owned(),
                identity,
                identity_id: j.identity_id,
                system: j.system,
                account: j.account,
                state: j.state.to_string(),
                attempts: j.attempts,
                error: j.last_error,
            });
        }
        Ok((JobsView { counts, jobs }, next))
    }
}
