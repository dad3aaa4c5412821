//! The request pipeline every Graph call goes through, in the order the real service behaves:
//! request ids → authentication → counters → injected faults → per-mailbox throttle →
//! latency (service time) → handler → error envelope.

use super::{Ctx, Principal};
use crate::error::GraphError;
use crate::identity::jwt::Jwt;
use crate::server::ConnectionControl;
use crate::state::{AppState, Shared};
use crate::tenant::Tenant;
use crate::throttle::Refusal;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::Value;

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
    shared
        .signer
        .verify_issued(token, &jwt)
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
                    shared
                        .counters
                        .throttled(Some(m), matches!(refusal, Refusal::Concurrency { .. }));
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
