//! Microsoft Graph (`/v1.0` and `/beta`): the request pipeline every Graph call goes through,
//! and the helpers handlers share (OData links, `$select`, `Prefer`, mailbox lookup).
//!
//! Pipeline order, as the real service behaves: request ids → authentication → counters →
//! injected faults → per-mailbox throttle → latency (service time) → handler → error envelope.

pub mod apps;
pub mod attachments;
pub mod batch;
pub mod delta;
pub mod folders;
pub mod messages;
pub mod restore;
pub mod uploads;
pub mod users;

use crate::error::GraphError;
use crate::identity::jwt::Jwt;
use crate::server::ConnectionControl;
use crate::state::{AppState, Shared};
use crate::tenant::{Mailbox, Tenant, User};
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Route parameters (`{user}`, `{folder}`, `{message}`, `{attachment}`) by name.
pub type Params = axum::extract::Path<HashMap<String, String>>;
/// Query-string parameters by name.
pub type QueryMap = axum::extract::Query<HashMap<String, String>>;

/// The `{user}` route segment; `me` on the `/me` routes, which have none.
pub fn user_of(p: &HashMap<String, String>) -> String {
    p.get("user").cloned().unwrap_or_else(|| "me".into())
}

/// The folder a route's `{folder}` names (an id or a well-known name).
pub fn named_folder<'a>(
    mb: &'a Mailbox,
    p: &HashMap<String, String>,
) -> Result<&'a crate::tenant::Folder, GraphError> {
    mb.folder(p.get("folder").map(String::as_str).unwrap_or(""))
        .ok_or_else(GraphError::item_not_found)
}

/// Who is calling: from the validated access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub app_id: String,
    /// Application roles (app-only tokens).
    pub roles: Vec<String>,
    /// Delegated scopes (user tokens).
    pub scopes: Vec<String>,
    /// The signed-in user for delegated tokens (`/me`).
    pub user_id: Option<String>,
}

impl Principal {
    pub fn allows(&self, any_of: &[&str]) -> bool {
        any_of.iter().any(|p| {
            self.roles
                .iter()
                .chain(&self.scopes)
                .any(|r| r.eq_ignore_ascii_case(p))
        })
    }
}

/// Per-request facts handlers need: the API base for links, preferences, the caller.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    /// e.g. `http://127.0.0.1:PORT/v1.0`
    pub base: String,
    pub principal: Principal,
    pub immutable_ids: bool,
    pub max_page_size: Option<usize>,
    pub body_as_text: bool,
}

impl Ctx {
    pub fn require(&self, any_of: &[&str]) -> Result<(), GraphError> {
        if self.principal.allows(any_of) {
            Ok(())
        } else {
            Err(GraphError::forbidden())
        }
    }

    /// The 403 directory endpoints return for a missing role.
    pub fn require_directory(&self, any_of: &[&str]) -> Result<(), GraphError> {
        if self.principal.allows(any_of) {
            Ok(())
        } else {
            Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
    }

    /// Delegated tokens open only the signed-in user's mailbox unless a `.Shared` scope was
    /// granted; app-only tokens open any mailbox (access policies are checked earlier).
    pub fn may_open(&self, user_id: &str) -> Result<(), GraphError> {
        match &self.principal.user_id {
            Some(me)
                if !me.eq_ignore_ascii_case(user_id)
                    && !self.principal.scopes.iter().any(|s| s.ends_with(".Shared")) =>
            {
                Err(GraphError::new(
                    StatusCode::FORBIDDEN,
                    "ErrorAccessDenied",
                    "Access is denied. Check credentials and try again.",
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn context(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.base)
    }

    /// The user a path segment names (`me` is the signed-in user).
    pub fn user_segment<'a>(&'a self, segment: &'a str) -> Result<&'a str, GraphError> {
        if segment.eq_ignore_ascii_case("me") {
            self.principal.user_id.as_deref().ok_or_else(|| {
                GraphError::bad_request(
                    "/me request is only valid with delegated authentication flow.",
                )
            })
        } else {
            Ok(segment)
        }
    }
}

pub fn router() -> Router<AppState> {
    let message = || {
        Router::new()
            .route(
                "/",
                get(messages::get_message)
                    .patch(restore::update_message)
                    .delete(restore::delete_message),
            )
            .route("/$value", get(messages::message_value))
            .route("/move", post(restore::move_message))
            .route("/copy", post(restore::copy_message))
            .route(
                "/attachments",
                get(attachments::list_attachments).post(restore::add_attachment),
            )
            .route(
                "/attachments/createUploadSession",
                post(uploads::create_upload_session),
            )
            .route(
                "/attachments/{attachment}",
                get(attachments::get_attachment),
            )
            .route(
                "/attachments/{attachment}/$value",
                get(attachments::attachment_value),
            )
    };
    let mailbox = || {
        Router::new()
            .route("/mailboxSettings", get(users::mailbox_settings))
            .route(
                "/translateExchangeIds",
                post(messages::translate_exchange_ids),
            )
            .route(
                "/mailFolders",
                get(folders::list_top_folders).post(restore::create_top_folder),
            )
            .route("/mailFolders/delta", get(delta::folders_delta))
            .route(
                "/mailFolders/{folder}",
                get(folders::get_folder)
                    .patch(restore::update_folder)
                    .delete(restore::delete_folder),
            )
            .route("/mailFolders/{folder}/move", post(restore::move_folder))
            .route(
                "/mailFolders/{folder}/childFolders",
                get(folders::list_child_folders).post(restore::create_child_folder),
            )
            .route(
                "/mailFolders/{folder}/messages",
                get(messages::list_folder_messages).post(restore::create_message),
            )
            .route(
                "/mailFolders/{folder}/messages/delta",
                get(delta::messages_delta),
            )
            .nest("/mailFolders/{folder}/messages/{message}", message())
            .route(
                "/messages",
                get(messages::list_all_messages).post(restore::create_message),
            )
            .nest("/messages/{message}", message())
    };
    Router::new()
        .route("/organization", get(users::organization))
        .route("/users", get(users::list_users))
        .route("/users/delta", get(users::users_delta))
        .route("/users/{user}", get(users::get_user))
        .route("/me", get(users::get_user))
        .nest("/users/{user}", mailbox())
        .nest("/me", mailbox())
        .route("/$batch", post(batch::batch))
        .route(
            "/applications",
            post(apps::create_application).get(apps::list_applications),
        )
        .route("/applications/{id}", get(apps::get_application))
        .route("/applications/{id}/addPassword", post(apps::add_password))
        .route(
            "/servicePrincipals",
            post(apps::create_service_principal).get(apps::list_service_principals),
        )
        .route("/servicePrincipals/{id}", get(apps::get_service_principal))
        .route(
            "/servicePrincipals/{id}/appRoleAssignedTo",
            post(apps::assign_role_to).get(apps::list_assigned_to),
        )
        .route(
            "/servicePrincipals/{id}/appRoleAssignments",
            post(apps::assign_role).get(apps::list_assignments),
        )
        .fallback(unknown_segment)
}

async fn unknown_segment(uri: axum::http::Uri) -> GraphError {
    let segment = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    GraphError::bad_request(format!("Resource not found for the segment '{segment}'."))
}

/// Validates `Authorization: Bearer` against the emulator's signing key, audience and clock.
pub fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, GraphError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(GraphError::unauthenticated("Access token is empty."));
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or("");
    let jwt = Jwt::parse(token).map_err(|_| {
        GraphError::unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).")
    })?;
    jwt.verify(&shared.signer.public_key())
        .map_err(|_| GraphError::unauthenticated("Access token validation failure."))?;
    let c = &jwt.claims;
    if c["aud"].as_str() != Some(crate::identity::roles::GRAPH_RESOURCE)
        && c["aud"].as_str() != Some(crate::identity::roles::GRAPH_APP_ID)
    {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Invalid audience.",
        ));
    }
    let now = shared.clock.unix();
    if c["exp"].as_i64().unwrap_or(0) < now || c["nbf"].as_i64().unwrap_or(0) > now + 300 {
        return Err(GraphError::unauthenticated(
            "Access token has expired or is not yet valid.",
        ));
    }
    if c["tid"].as_str() != Some(shared.tenant().id.as_str()) {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Invalid tenant.",
        ));
    }
    let strings = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Principal {
        app_id: c["appid"].as_str().unwrap_or_default().to_string(),
        roles: strings(&c["roles"]),
        scopes: c["scp"]
            .as_str()
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        user_id: (c["idtyp"] == "user").then(|| c["oid"].as_str().unwrap_or_default().to_string()),
    })
}

/// Parsed `Prefer` header(s).
fn preferences(headers: &HeaderMap) -> (bool, Option<usize>, bool) {
    let mut immutable = false;
    let mut page = None;
    let mut text = false;
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for pref in value.split(',').map(str::trim) {
            let lower = pref.to_ascii_lowercase().replace(' ', "");
            if lower == "idtype=\"immutableid\"" {
                immutable = true;
            } else if let Some(n) = lower.strip_prefix("odata.maxpagesize=") {
                page = n.trim_matches('"').parse().ok();
            } else if lower == "outlook.body-content-type=\"text\"" {
                text = true;
            }
        }
    }
    (immutable, page, text)
}

/// Endpoint name for counters: method and path with ids replaced, e.g.
/// `GET /users/{id}/mailFolders/{id}/messages/delta`.
pub fn endpoint_name(method: &Method, path: &str) -> String {
    const STATIC: [&str; 23] = [
        "users",
        "me",
        "mailFolders",
        "childFolders",
        "messages",
        "delta",
        "$value",
        "attachments",
        "mailboxSettings",
        "organization",
        "$batch",
        "applications",
        "servicePrincipals",
        "appRoleAssignedTo",
        "appRoleAssignments",
        "createUploadSession",
        "move",
        "copy",
        "addPassword",
        "translateExchangeIds",
        "v1.0",
        "beta",
        "",
    ];
    let templated: Vec<&str> = path
        .split('/')
        .map(|s| if STATIC.contains(&s) { s } else { "{id}" })
        .collect();
    format!("{method} {}", templated.join("/"))
}

/// The mailbox a request touches (resolved to the user id), if it is an Outlook request.
fn mailbox_of(tenant: &Tenant, principal: &Principal, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (who, rest) = match segments.as_slice() {
        ["users", who, rest, ..] => (*who, *rest),
        ["me", rest, ..] => (principal.user_id.as_deref()?, *rest),
        _ => return None,
    };
    if !matches!(
        rest,
        "mailFolders" | "messages" | "mailboxSettings" | "translateExchangeIds"
    ) {
        return None;
    }
    Some(
        tenant
            .user(who)
            .map(|u| u.id.clone())
            .unwrap_or_else(|| who.to_ascii_lowercase()),
    )
}

/// Runs every Graph request: see the module documentation for the order.
pub async fn pipeline(State(shared): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let (immutable_ids, max_page_size, body_as_text) = preferences(req.headers());
    let mut response = handle(
        &shared,
        &mut req,
        next,
        &request_id,
        (immutable_ids, max_page_size, body_as_text),
    )
    .await;
    let date = shared.clock.now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let error = response.extensions_mut().remove::<GraphError>();
    if let Some(error) = error {
        if !error.empty_body {
            let body = error
                .body(&request_id, &client_request_id, &date)
                .to_string();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            *response.body_mut() = Body::from(body);
        }
    } else if response.status().is_success() {
        let mut applied = Vec::new();
        if immutable_ids {
            applied.push("IdType=\"ImmutableId\"".to_string());
        }
        if let Some(n) = max_page_size {
            applied.push(format!("odata.maxpagesize={n}"));
        }
        if body_as_text {
            applied.push("outlook.body-content-type=\"text\"".to_string());
        }
        if !applied.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&applied.join(",")) {
                response.headers_mut().insert("preference-applied", v);
            }
        }
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("request-id", &request_id),
        ("client-request-id", &client_request_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    headers.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"003","RoleInstance":"AM2PEPF0001A2B3"}}"#),
    );
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn handle(
    shared: &AppState,
    req: &mut Request,
    next: Next,
    request_id: &str,
    prefs: (bool, Option<usize>, bool),
) -> Response {
    let principal = match authenticate(shared, req.headers()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let original = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| req.uri().clone());
    let version = if original.path().starts_with("/beta") {
        "beta"
    } else {
        "v1.0"
    };
    let path = req.uri().path().to_string();
    let path_and_query = original
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mailbox = mailbox_of(&shared.tenant(), &principal, &path);
    shared
        .counters
        .request(mailbox.as_deref(), &endpoint_name(req.method(), &path));
    req.extensions_mut().insert(Ctx {
        request_id: request_id.to_string(),
        base: format!("{}/{version}", shared.info.graph),
        principal: principal.clone(),
        immutable_ids: prefs.0,
        max_page_size: prefs.1,
        body_as_text: prefs.2,
    });
    let connection = req.extensions().get::<ConnectionControl>().cloned();
    let delta_with_token = path.ends_with("/delta")
        && (path_and_query.contains("deltatoken") || path_and_query.contains("skiptoken"));
    if let Some(kind) = shared
        .faults
        .pick(&path_and_query, delta_with_token, connection.is_some())
    {
        shared.counters.fault();
        let fault = crate::server::fault_response(kind, connection.as_ref()).await;
        match fault {
            Some(response) => return response,
            None => {
                // Truncated body: run the request, then cut the body in half.
                let response = next.run(std::mem::take(req)).await;
                return crate::server::truncate(response).await;
            }
        }
    }
    if let Some(m) = &mailbox {
        let denied = principal.user_id.is_none()
            && shared
                .tenant()
                .app(&principal.app_id)
                .and_then(|a| a.mailbox_scope.as_ref())
                .is_some_and(|scope| !scope.contains(m));
        if denied {
            return GraphError::new(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access to OData is disabled.",
            )
            .into_response();
        }
    }
    let incoming = if matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        req.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let admitted = match &mailbox {
        Some(m) => {
            match shared
                .throttle
                .admit(&principal.app_id, m, incoming, shared.clock.unix_ms())
            {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    shared.counters.throttled(Some(m));
                    return refusal.to_error().into_response();
                }
            }
        }
        None => false,
    };
    if let Some(m) = &mailbox {
        shared.counters.enter(m);
    }
    // Latency is service time: the request holds its mailbox slot meanwhile.
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let response = next.run(std::mem::take(req)).await;
    match mailbox {
        // The request is in flight until its body is sent: release the slot then.
        Some(m) => {
            let guard = InFlight {
                shared: shared.clone(),
                app: principal.app_id,
                mailbox: m,
                admitted,
            };
            let (parts, body) = response.into_parts();
            let stream = body.into_data_stream().map(move |chunk| {
                let _ = &guard;
                chunk
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
        None => response,
    }
}

/// Releases the throttle slot and the concurrency counter when the response body is done.
struct InFlight {
    shared: AppState,
    app: String,
    mailbox: String,
    admitted: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.admitted {
            self.shared.throttle.release(&self.app, &self.mailbox);
        }
        self.shared.counters.leave(&self.mailbox);
    }
}

/// A JSON response with Graph's content type.
pub fn json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// An OData collection page.
pub fn collection(
    context: String,
    value: Vec<Value>,
    next_link: Option<String>,
    delta_link: Option<String>,
) -> Value {
    let mut m = Map::new();
    m.insert("@odata.context".into(), context.into());
    if let Some(n) = next_link {
        m.insert("@odata.nextLink".into(), n.into());
    }
    if let Some(d) = delta_link {
        m.insert("@odata.deltaLink".into(), d.into());
    }
    m.insert("value".into(), Value::Array(value));
    Value::Object(m)
}

/// Opaque paging and delta tokens: base64url of the state they carry.
pub fn encode_token<T: Serialize>(state: &T) -> String {
    B64.encode(serde_json::to_vec(state).unwrap_or_default())
}

pub fn decode_token<T: DeserializeOwned>(token: &str) -> Option<T> {
    serde_json::from_slice(&B64.decode(token.trim()).ok()?).ok()
}

/// `$select` as a list, validated against the properties the type has.
pub fn select(
    query: &std::collections::HashMap<String, String>,
    known: &[&str],
    type_name: &str,
) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = query.get("$select") else {
        return Ok(None);
    };
    let fields: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for f in &fields {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "RequestBroker--ParseUri",
                format!(
                    "Could not find a property named '{f}' on type 'microsoft.graph.{type_name}'."
                ),
            ));
        }
    }
    Ok(Some(fields))
}

/// Keeps only selected properties (plus annotations and `id`).
pub fn project(full: Value, selected: Option<&[String]>) -> Value {
    let (Value::Object(map), Some(sel)) = (&full, selected) else {
        return full;
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| {
            k.starts_with('@') || *k == "id" || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// `$top` within `1..=max`, with Graph's error otherwise.
pub fn top(
    query: &std::collections::HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, GraphError> {
    match query.get("$top") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!(
                    "Invalid page size specified: '{v}'. Must be between 1 and {max} inclusive."
                ),
            )),
        },
    }
}

fn invalid_user(who: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        format!("The requested user '{who}' is invalid."),
    )
}

/// Finds a user's mailbox for an Outlook request, with Graph's errors for each miss.
pub fn mailbox<'a>(
    tenant: &'a Tenant,
    ctx: &Ctx,
    segment: &str,
) -> Result<(&'a User, &'a Mailbox), GraphError> {
    let who = ctx.user_segment(segment)?;
    let user = tenant.user(who).ok_or_else(|| invalid_user(who))?;
    ctx.may_open(&user.id)?;
    let mailbox = user.mailbox.as_ref().ok_or_else(GraphError::no_mailbox)?;
    Ok((user, mailbox))
}

/// Mutable variant of `mailbox`, returning the tenant sequence counter alongside.
pub fn mailbox_mut<'a>(
    tenant: &'a mut Tenant,
    ctx: &Ctx,
    segment: &str,
) -> Result<(String, &'a mut Mailbox, &'a mut u64), GraphError> {
    let who = ctx.user_segment(segment)?.to_string();
    let index = tenant.user_index(&who).ok_or_else(|| invalid_user(&who))?;
    let Tenant { users, seq, .. } = tenant;
    let user = &mut users[index];
    let id = user.id.clone();
    ctx.may_open(&id)?;
    let mailbox = user.mailbox.as_mut().ok_or_else(GraphError::no_mailbox)?;
    Ok((id, mailbox, seq))
}
