//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), built from the route table: every
//! [`Route`] gets an operation from [`operation`], which matches [`Endpoint`] exhaustively, so a
//! route cannot be added without being documented. Bodies are the JSON Schemas (2020-12, the
//! dialect of OpenAPI 3.1) that `schemars` derives from the wire types in `tenure-proto`;
//! requests are described as they are read, responses as they are written. The statuses listed
//! are the ones the route can answer: its own, its guard's (401, 403), reading a body's (408,
//! 413, 422), and 500 and 503 everywhere (the store failed; no policy is deployed).

use crate::routes::{Access, Endpoint, ROUTES, Route};
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};
use tenure_model::{CredentialKind, IdentityKind, LifecycleState, RequestKind, RequestState};
use tenure_proto as p;

/// The document, for a server whose clients reach it at `public_url` (none: relative).
pub fn document(public_url: Option<&str>) -> Value {
    let mut requests = Schemas::new(Contract::Deserialize);
    let mut responses = Schemas::new(Contract::Serialize);
    let mut paths = Map::new();
    for route in ROUTES {
        let op = operation(route.endpoint, &mut requests, &mut responses);
        let item = paths.entry(route.path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(route.method.to_ascii_lowercase(), render(route, op));
        }
    }
    responses.of::<p::ErrorBody>();
    let mut components = requests.definitions();
    // A type read and written under one name has one schema; the written one wins, and the
    // unit test below checks no such pair differs.
    components.extend(responses.definitions());
    components.insert("ScimError".into(), scim_error_schema());
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tenure",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Identity lifecycle governance: events in, access decided, provisioned, \
                            verified and proven. Every route says which roles may call it \
                            (`x-tenure-roles`); errors share one shape (`ErrorBody`, SCIM's under /scim/v2).",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`tenure tokens issue`), or a workload's own tenure \
                                    credential (API key or JWT-SVID) where the route says so.",
                },
                "svid": {
                    "type": "mutualTLS",
                    "description": "A workload's X.509-SVID from tenure's CA as its TLS client certificate \
                                    (`serve --tls-client-certs`), where a workload's own credential is taken.",
                },
            },
        },
    });
    if let (Some(url), Some(o)) = (public_url, doc.as_object_mut()) {
        o.insert("servers".into(), json!([{ "url": url.trim_end_matches('/') }]));
    }
    doc
}

/// Schemas of the wire types in one direction, collected as components.
struct Schemas(SchemaGenerator);

impl Schemas {
    fn new(contract: Contract) -> Self {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas".into();
        settings.contract = contract;
        Self(settings.into_generator())
    }

    fn of<T: JsonSchema>(&mut self) -> Value {
        self.0.subschema_for::<T>().to_value()
    }

    fn definitions(&mut self) -> Map<String, Value> {
        self.0.take_definitions(true)
    }
}

/// What a route takes and answers.
struct Operation {
    summary: &'static str,
    tag: &'static str,
    /// Query parameters: name, schema, description.
    query: Vec<(&'static str, Value, &'static str)>,
    body: Body,
    /// Success statuses and what they carry.
    ok: Vec<(u16, Body)>,
    /// Error statuses of the route itself (the guard's and the body's are added).
    errors: &'static [u16],
    /// Response headers of the success answers beyond `X-Request-Id`.
    headers: &'static [(&'static str, &'static str)],
}

/// A request or response body.
enum Body {
    None,
    Json(Value),
    /// A JSON body under another media type.
    Typed(&'static str, Value),
    /// `application/x-www-form-urlencoded` (JSON is accepted too).
    Form(Value),
    Text(&'static str),
    /// `application/scim+json`.
    Scim(Value),
}

impl Operation {
    fn new(summary: &'static str, tag: &'static str, ok: u16, body: Body) -> Self {
        Self { summary, tag, query: vec![], body: Body::None, ok: vec![(ok, body)], errors: &[], headers: &[] }
    }

    fn takes(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    fn query(mut self, name: &'static str, schema: Value, description: &'static str) -> Self {
        self.query.push((name, schema, description));
        self
    }

    /// A keyset page: `limit`, `after` (the cursor `after` describes), and the `Link` header.
    fn paged(mut self, items: &'static str, after: Value, cursor: &'static str) -> Self {
        self = self
            .query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 5000, "default": 500 }), items)
            .query("after", after, cursor);
        self.headers = &[("Link", "the next page (`rel=\"next\"`), absent on the last")];
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }

    fn also(mut self, status: u16, body: Body) -> Self {
        self.ok.push((status, body));
        self
    }
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Value {
    json!({ "type": "string", "enum": all.iter().map(|v| name(*v)).collect::<Vec<_>>() })
}

fn string() -> Value {
    json!({ "type": "string" })
}

/// A SCIM resource or list: SCIM's own schemas (`GET /scim/v2/Schemas`) describe it.
fn scim_object() -> Value {
    json!({ "type": "object", "required": ["schemas"], "properties": {
        "schemas": { "type": "array", "items": { "type": "string" } } } })
}

fn operation(e: Endpoint, req: &mut Schemas, resp: &mut Schemas) -> Operation {
    use Body::{Form, Json, Scim, Text, Typed};
    use Endpoint as E;
    const BODY: &[u16] = &[404, 409];
    match e {
        E::Health => {
            Operation::new("Liveness with the deployed policy's version", "meta", 200, Json(resp.of::<p::Health>()))
        }
        E::Livez => Operation::new(
            "The process answers",
            "meta",
            200,
            Json(json!({ "type": "object", "required": ["status"], "properties": { "status": { "const": "ok" } } })),
        ),
        E::Readyz => {
            let readiness = json!({ "type": "object", "required": ["status", "checks"], "properties": {
                "status": { "enum": ["ready", "not ready"] },
                "checks": { "type": "object", "additionalProperties": { "enum": ["ok", "failing"] } } } });
            Operation::new("Database, data dir, policy and job runners all ok", "meta", 200, Json(readiness.clone()))
                .also(503, Json(readiness))
        }
        E::OpenApi => Operation::new("This document", "meta", 200, Json(json!({ "type": "object" }))),
        E::PostEvents => Operation::new(
            "Ingest a batch of lifecycle events, all or nothing",
            "events",
            200,
            Json(resp.of::<p::IngestReport>()),
        )
        .takes(Json(req.of::<Vec<p::EventWire>>())),
        E::ListIdentities => Operation::new(
            "A page of identities in reference order",
            "identities",
            200,
            Json(resp.of::<Vec<p::IdentityView>>()),
        )
        .paged("identities on the page", string(), "the reference the previous page ended with (from `Link`)")
        .query("state", names(LifecycleState::ALL, LifecycleState::as_str), "only in this lifecycle state")
        .query("kind", names(IdentityKind::ALL, IdentityKind::as_str), "only of this kind")
        .query("source", string(), "only from this source"),
        E::ShowIdentity => Operation::new(
            "An identity with its accounts and timeline",
            "identities",
            200,
            Json(resp.of::<p::IdentityDetail>()),
        )
        .errors(&[404]),
        E::AttestIdentity => Operation::new(
            "Reconfirm an NHI as its owner (ownership attestation)",
            "identities",
            200,
            Json(resp.of::<p::IdentityView>()),
        )
        .takes(Json(req.of::<p::AnswerWire>()))
        .errors(BODY),
        E::RenewIdentity => Operation::new(
            "Extend an identity's expiry (its owner or an admin)",
            "identities",
            200,
            Json(resp.of::<p::IdentityView>()),
        )
        .takes(Json(req.of::<p::RenewWire>()))
        .errors(BODY),
        E::Jobs => Operation::new(
            "Job counts by state, and a page of jobs in id order (by default the dead ones and those \
             waiting for a retry)",
            "jobs",
            200,
            Json(resp.of::<p::JobsView>()),
        )
        .paged("jobs on the page", json!({ "type": "integer" }), "the job id the previous page ended with")
        .query("state", json!({ "enum": ["pending", "running", "done", "dead"] }), "only in this state")
        .query("kind", json!({ "enum": ["sync", "credentials", "drift", "notify"] }), "only of this kind")
        .query("system", string(), "only for this system")
        .query("identity", string(), "only this identity's (`source:external_id`)")
        .errors(&[404]),
        E::CreateRequest => Operation::new(
            "Request access, a JIT elevation or an exception",
            "requests",
            201,
            Json(resp.of::<p::RequestView>()),
        )
        .takes(Json(req.of::<p::RequestWire>()))
        .errors(BODY),
        E::ListRequests => Operation::new(
            "A page of access requests, newest first",
            "requests",
            200,
            Json(resp.of::<Vec<p::RequestView>>()),
        )
        .paged("requests on the page", json!({ "type": "integer" }), "the request id the previous page ended with")
        .query("state", names(RequestState::ALL, RequestState::as_str), "only in this state")
        .query("kind", names(RequestKind::ALL, RequestKind::as_str), "only of this kind")
        .query("identity", string(), "only for this identity (`source:external_id`)")
        .errors(&[404]),
        E::ShowRequest => Operation::new(
            "A request with its decision and answers",
            "requests",
            200,
            Json(resp.of::<p::RequestView>()),
        )
        .errors(&[404]),
        E::Approve => Operation::new("Approve a request", "requests", 200, Json(resp.of::<p::RequestView>()))
            .takes(Json(req.of::<p::AnswerWire>()))
            .errors(BODY),
        E::Deny => Operation::new("Deny a request", "requests", 200, Json(resp.of::<p::RequestView>()))
            .takes(Json(req.of::<p::AnswerWire>()))
            .errors(BODY),
        E::Authorize => Operation::new(
            "Decide a runtime authorization question, logged",
            "access",
            200,
            Json(resp.of::<p::DecisionView>()),
        )
        .takes(Json(req.of::<p::AuthorizeWire>()))
        .errors(&[404]),
        E::IssueToken => Operation::new(
            "Issue an API token (its secret is shown once)",
            "tokens",
            201,
            Json(resp.of::<p::IssuedTokenView>()),
        )
        .takes(Json(req.of::<p::TokenWire>()))
        .errors(BODY),
        E::ListTokens => Operation::new(
            "A page of API tokens, oldest first, never their secrets",
            "tokens",
            200,
            Json(resp.of::<Vec<p::TokenView>>()),
        )
        .paged("tokens on the page", string(), "the token id the previous page ended with")
        .query("identity", string(), "only this identity's (`source:external_id`)")
        .query("state", json!({ "enum": ["active", "expired", "revoked"] }), "only in this state")
        .errors(&[404]),
        E::RevokeToken => {
            Operation::new("Revoke an API token", "tokens", 200, Json(resp.of::<p::TokenView>())).errors(BODY)
        }
        E::Findings => Operation::new(
            "A page of findings: drift, reconciliation, expiry notices",
            "findings",
            200,
            Json(resp.of::<Vec<p::FindingView>>()),
        )
        .paged("findings on the page", json!({ "type": "integer" }), "the finding id the previous page ended with")
        .query("state", json!({ "enum": ["open", "resolved", "all"], "default": "open" }), "which findings")
        .query("all", json!({ "type": "boolean" }), "open and resolved (`state=all`)")
        .query("system", string(), "only about this system")
        .query("class", string(), "a finding kind, or a reconciliation class"),
        E::Metrics => Operation::new("Prometheus metrics", "meta", 200, Text("text/plain; version=0.0.4")),
        E::Discovery => Operation::new(
            "OpenID discovery of the credential broker",
            "broker",
            200,
            Json(resp.of::<p::broker::Discovery>()),
        ),
        E::Jwks => Operation::new(
            "The JWT-SVID signing keys",
            "broker",
            200,
            Typed("application/jwk-set+json", resp.of::<p::broker::Jwks>()),
        ),
        E::TrustBundle => Operation::new("The X.509-SVID trust bundle", "broker", 200, Text("application/x-pem-file")),
        E::Crl => Operation::new("The certificate revocation list", "broker", 200, Text("application/x-pem-file")),
        E::IssueCredential => Operation::new(
            "Issue a credential for an NHI",
            "credentials",
            201,
            Json(resp.of::<p::IssuedCredentialView>()),
        )
        .takes(Json(req.of::<p::CredentialWire>()))
        .errors(BODY),
        E::ListCredentials => Operation::new(
            "A page of credentials, newest first, never their secrets",
            "credentials",
            200,
            Json(resp.of::<Vec<p::CredentialView>>()),
        )
        .paged("credentials on the page", string(), "the credential id the previous page ended with")
        .query("identity", string(), "only this identity's (`source:external_id`)")
        .query("kind", names(CredentialKind::ALL, CredentialKind::as_str), "only of this kind")
        .query("system", string(), "only dynamic logins on this system")
        .query(
            "state",
            json!({ "enum": ["active", "expired", "revoked", "revocation-verified"] }),
            "only in this state",
        )
        .errors(&[404]),
        E::RotateCredential => {
            Operation::new("Replace a credential", "credentials", 201, Json(resp.of::<p::IssuedCredentialView>()))
                .takes(Json(req.of::<p::CredentialActionWire>()))
                .errors(BODY)
        }
        E::RevokeCredential => {
            Operation::new("Revoke a credential", "credentials", 200, Json(resp.of::<p::CredentialView>()))
                .takes(Json(req.of::<p::CredentialActionWire>()))
                .errors(BODY)
        }
        E::Introspect => {
            Operation::new("RFC 7662 token introspection", "broker", 200, Json(resp.of::<p::broker::Introspection>()))
                .takes(Form(token_form()))
        }
        E::OAuthRevoke => Operation::new("RFC 7009 token revocation", "broker", 200, Body::None)
            .takes(Form(token_form()))
            .errors(&[409]),
        E::Reconcile => Operation::new(
            "Reconcile one system or all, or preview it",
            "reconcile",
            200,
            Json(resp.of::<Vec<p::RunView>>()),
        )
        .takes(Json(req.of::<p::ReconcileWire>()))
        .errors(BODY),
        E::ReconcileRuns => Operation::new(
            "A page of reconciliation runs, newest first",
            "reconcile",
            200,
            Json(resp.of::<Vec<p::RunView>>()),
        )
        .paged("runs on the page", json!({ "type": "integer" }), "the run id the previous page ended with")
        .query("system", string(), "only this system's"),
        E::ReconcileRun => {
            Operation::new("A run with its plan", "reconcile", 200, Json(resp.of::<p::RunView>())).errors(&[404])
        }
        E::StartReview => Operation::new(
            "Start an access review campaign of the deployed bundle",
            "reviews",
            201,
            Json(resp.of::<p::CampaignView>()),
        )
        .takes(Json(req.of::<p::StartReviewWire>()))
        .errors(BODY),
        E::ListReviews => Operation::new(
            "Access review campaigns, newest first (a reviewer: those with items for it)",
            "reviews",
            200,
            Json(resp.of::<Vec<p::CampaignView>>()),
        ),
        E::ShowReview => Operation::new(
            "A campaign and a page of its items (a reviewer: only its own)",
            "reviews",
            200,
            Json(resp.of::<p::ReviewPage>()),
        )
        .paged("items on the page", json!({ "type": "integer" }), "the item id the previous page ended with")
        .query("undecided", json!({ "type": "boolean" }), "only undecided items")
        .errors(&[404]),
        E::DecideReview => Operation::new(
            "Keep or revoke one item, as its reviewer",
            "reviews",
            200,
            Json(resp.of::<p::ReviewItemView>()),
        )
        .takes(Json(req.of::<p::ReviewDecisionWire>()))
        .errors(BODY),
        E::ReleaseReview => Operation::new(
            "Release a paused campaign: its no-answer default applies, or every undecided item is kept",
            "reviews",
            200,
            Json(resp.of::<p::CampaignView>()),
        )
        .takes(Json(req.of::<p::ReviewReleaseWire>()))
        .errors(BODY),
        E::Posture => Operation::new(
            "The posture report: every check with its status, measures, evidence and trend",
            "reviews",
            200,
            Json(resp.of::<p::posture::PostureReport>()),
        ),
        E::Systems => Operation::new(
            "Each system of the deployed policy checked: reach, TLS, credentials, base, groups",
            "reconcile",
            200,
            Json(resp.of::<Vec<p::SystemReport>>()),
        )
        .query("system", string(), "only this system")
        .errors(&[404, 422]),
        E::ScimConfig => Operation::new("SCIM service provider configuration", "scim", 200, Scim(scim_object())),
        E::ScimResourceTypes => Operation::new("SCIM resource types", "scim", 200, Scim(scim_object())),
        E::ScimResourceType => Operation::new("A SCIM resource type", "scim", 200, Scim(scim_object())).errors(&[404]),
        E::ScimSchemas => Operation::new("SCIM schemas", "scim", 200, Scim(scim_object())),
        E::ScimSchema => Operation::new("A SCIM schema", "scim", 200, Scim(scim_object())).errors(&[404]),
        E::ScimListUsers => scim_query(Operation::new("List or filter users", "scim", 200, Scim(scim_object())))
            .query("filter", string(), "a SCIM filter (RFC 7644 §3.4.2.2)")
            .query("startIndex", json!({ "type": "integer" }), "1-based")
            .query("count", json!({ "type": "integer" }), "users on the page")
            .errors(&[400]),
        E::ScimSearchUsers | E::ScimSearch => {
            Operation::new("Search users (POST form of a list)", "scim", 200, Scim(scim_object()))
                .takes(Scim(scim_object()))
                .errors(&[400])
        }
        E::ScimCreateUser => scim_query(Operation::new("Create a user: a joiner", "scim", 201, Scim(scim_object())))
            .takes(Scim(scim_object()))
            .errors(&[400, 409]),
        E::ScimGetUser => scim_query(Operation::new("A user", "scim", 200, Scim(scim_object())))
            .also(304, Body::None)
            .errors(&[400, 404]),
        E::ScimReplaceUser => scim_query(Operation::new("Replace a user: a mover", "scim", 200, Scim(scim_object())))
            .takes(Scim(scim_object()))
            .errors(&[400, 404, 409, 412]),
        E::ScimPatchUser => {
            scim_query(Operation::new("Patch a user (`active: false` is a leaver)", "scim", 200, Scim(scim_object())))
                .takes(Scim(scim_object()))
                .errors(&[400, 404, 409, 412])
        }
        E::ScimDeleteUser => {
            Operation::new("Delete a user: a leaver", "scim", 204, Body::None).errors(&[400, 404, 412])
        }
    }
}

fn scim_query(op: Operation) -> Operation {
    op.query("attributes", string(), "attributes to return, comma-separated").query(
        "excludedAttributes",
        string(),
        "attributes to leave out, comma-separated",
    )
}

fn token_form() -> Value {
    json!({ "type": "object", "required": ["token"], "properties": {
        "token": { "type": "string" }, "token_type_hint": { "type": ["string", "null"] } } })
}

fn scim_error_schema() -> Value {
    json!({ "type": "object", "required": ["schemas", "status"], "properties": {
        "schemas": { "type": "array", "items": { "type": "string" } },
        "status": { "type": "string" },
        "scimType": { "type": "string" },
        "detail": { "type": "string" } } })
}

fn content(body: &Body) -> Option<Value> {
    let (mime, schema) = match body {
        Body::None => return None,
        Body::Json(s) => ("application/json", s.clone()),
        Body::Typed(m, s) => (*m, s.clone()),
        Body::Form(s) => {
            return Some(json!({ "application/x-www-form-urlencoded": { "schema": s },
                                "application/json": { "schema": s } }));
        }
        Body::Text(m) => (*m, json!({ "type": "string" })),
        Body::Scim(s) => {
            return Some(json!({ "application/scim+json": { "schema": s }, "application/json": { "schema": s } }));
        }
    };
    Some(json!({ mime: { "schema": schema } }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified (If-None-Match)",
        400 => "Bad request",
        401 => "Not authenticated",
        403 => "Forbidden: the token lacks the role, or the rules refuse",
        404 => "Not found",
        408 => "The body did not arrive in time",
        409 => "Conflict: the state does not allow it",
        412 => "Precondition failed (If-Match)",
        413 => "The body is too large",
        422 => "Invalid input, naming the field",
        500 => "Internal error (details in the server log)",
        503 => "Not ready: no policy is deployed",
        _ => "",
    }
}

fn render(route: &Route, op: Operation) -> Value {
    let scim = route.path.starts_with("/scim/");
    let request_id = json!({ "description": "the request's id, as sent or generated", "schema": { "type": "string" } });
    let mut responses = Map::new();
    for (status, body) in &op.ok {
        let mut headers = Map::new();
        headers.insert("X-Request-Id".into(), request_id.clone());
        for (name, description) in op.headers {
            headers.insert((*name).into(), json!({ "description": description, "schema": { "type": "string" } }));
        }
        let mut r = json!({ "description": reason(*status), "headers": headers });
        if let (Some(c), Some(o)) = (content(body), r.as_object_mut()) {
            o.insert("content".into(), c);
        }
        responses.insert(status.to_string(), r);
    }
    let mut errors: Vec<u16> = op.errors.to_vec();
    if route.access != Access::Public {
        errors.extend([401, 403]);
    }
    if !matches!(op.body, Body::None) {
        errors.extend([408, 413]);
        if !scim {
            errors.push(422);
        }
    }
    if !scim && (!op.query.is_empty() || integer_id(route.endpoint)) {
        errors.push(422);
    }
    if route.endpoint != Endpoint::Livez && route.endpoint != Endpoint::OpenApi {
        errors.extend([500, 503]);
    }
    errors.sort_unstable();
    errors.dedup();
    let error = if scim { "#/components/schemas/ScimError" } else { "#/components/schemas/ErrorBody" };
    let error_content = if scim {
        json!({ "application/scim+json": { "schema": { "$ref": error } }, "application/json": { "schema": { "$ref": error } } })
    } else {
        json!({ "application/json": { "schema": { "$ref": error } } })
    };
    for status in errors {
        if responses.contains_key(&status.to_string()) {
            continue;
        }
        responses.insert(
            status.to_string(),
            json!({ "description": reason(status), "headers": { "X-Request-Id": request_id.clone() },
                    "content": error_content.clone() }),
        );
    }
    let mut parameters: Vec<Value> = path_params(route.path)
        .map(|name| {
            let schema = if (name == "id" || name == "item") && integer_id(route.endpoint) {
                json!({ "type": "integer" })
            } else {
                string()
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    for (name, schema, description) in &op.query {
        parameters.push(
            json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description }),
        );
    }
    parameters.push(json!({ "name": "X-Request-Id", "in": "header", "required": false,
        "description": "an id to log and stamp on what the request causes (up to 128 letters, digits and `-_.:/`; \
                        anything else is replaced by a new one)",
        "schema": { "type": "string" } }));
    let roles: Vec<String> = match route.access {
        Access::Public => vec![],
        Access::Roles(r) => r.iter().map(|r| r.as_str().to_owned()).collect(),
        Access::Source => vec!["source:NAME".into()],
        Access::Authenticated => vec!["any".into()],
    };
    let security = match route.access {
        Access::Public => json!([]),
        Access::Authenticated => json!([{ "bearer": [] }, { "svid": [] }]),
        Access::Roles(_) | Access::Source => json!([{ "bearer": [] }]),
    };
    let mut o = json!({
        "operationId": format!("{:?}", route.endpoint),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
        "security": security,
        "x-tenure-roles": roles,
    });
    if let (Some(c), Some(obj)) = (content(&op.body), o.as_object_mut()) {
        // These take an optional body (every field has a default); the rest need one.
        let required =
            !matches!(route.endpoint, Endpoint::RotateCredential | Endpoint::RevokeCredential | Endpoint::Reconcile);
        obj.insert("requestBody".into(), json!({ "required": required, "content": c }));
    }
    o
}

fn integer_id(e: Endpoint) -> bool {
    matches!(
        e,
        Endpoint::ShowRequest
            | Endpoint::Approve
            | Endpoint::Deny
            | Endpoint::ReconcileRun
            | Endpoint::ShowReview
            | Endpoint::DecideReview
            | Endpoint::ReleaseReview
    )
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = document(None);
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = 0;
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                assert!(
                    ROUTES.iter().any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not routed"
                );
                documented += 1;
            }
        }
        for r in ROUTES {
            let op = &paths[r.path][r.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is routed but not documented", r.method, r.path);
            assert!(op["responses"].as_object().is_some_and(|m| !m.is_empty()));
            if r.access != Access::Public {
                assert!(op["responses"]["401"].is_object(), "{} {} needs a token: 401 is documented", r.method, r.path);
            }
        }
        assert_eq!(documented, ROUTES.len());
    }

    #[test]
    fn every_reference_resolves_and_no_type_has_two_shapes() {
        let doc = document(Some("https://tenure.example/"));
        assert_eq!(doc["servers"][0]["url"], "https://tenure.example");
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref to {name}");
        }
        let mut requests = Schemas::new(Contract::Deserialize);
        let mut responses = Schemas::new(Contract::Serialize);
        for r in ROUTES {
            operation(r.endpoint, &mut requests, &mut responses);
        }
        let written = responses.definitions();
        for (name, read) in requests.definitions() {
            if let Some(w) = written.get(&name) {
                assert_eq!(&read, w, "{name} is read and written with different schemas");
            }
        }
    }
}
