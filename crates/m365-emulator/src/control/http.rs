//! The control API's HTTP routes under `/_emulator/`: each one parses its request and calls
//! the operation of the same name in `control`.

use super::*;
use crate::config::{FaultKind, Throttle};
use crate::counters::CounterSnapshot;
use crate::error::EmulatorError;
use crate::faults::ScheduledFault;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

struct ControlError(EmulatorError);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            EmulatorError::NotFound(_) => StatusCode::NOT_FOUND,
            EmulatorError::FolderExists(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        (
            status,
            Json(serde_json::json!({"error": self.0.to_string()})),
        )
            .into_response()
    }
}

impl From<EmulatorError> for ControlError {
    fn from(e: EmulatorError) -> Self {
        ControlError(e)
    }
}

type Reply = Result<Response, ControlError>;

fn ok<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    Ok((status, Json(value)).into_response())
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/info",
            get(|State(s): State<AppState>| async move { Json(s.info.clone()) }),
        )
        .route(
            "/tenant",
            get(|State(s): State<AppState>| async move { Json(snapshot(&s, false)) }),
        )
        .route(
            "/counters",
            get(|State(s): State<AppState>| async move {
                Json::<CounterSnapshot>(s.counters.snapshot())
            }),
        )
        .route(
            "/counters/reset",
            post(|State(s): State<AppState>| async move {
                s.counters.reset();
                StatusCode::NO_CONTENT
            }),
        )
        .route("/users", post(http_add_user))
        .route("/users/{user}", delete(http_remove_user))
        .route("/users/{user}/unlicense", post(http_unlicense))
        .route("/users/{user}/messages", post(http_add_message))
        .route(
            "/users/{user}/messages/{id}",
            patch(http_update_message).delete(http_delete_message),
        )
        .route("/users/{user}/messages/{id}/mime", get(http_message_mime))
        .route("/users/{user}/messages/{id}/move", post(http_move_message))
        .route("/users/{user}/folders", post(http_create_folder))
        .route(
            "/users/{user}/folders/{folder}",
            patch(http_update_folder).delete(http_delete_folder),
        )
        .route("/delta/expire", post(http_expire))
        .route("/clock/advance", post(http_advance))
        .route("/throttle", post(http_throttle))
        .route("/faults", post(http_faults))
        .route("/faults/schedule", post(http_schedule))
        .route("/apps", post(http_register_app))
        .route("/apps/{client_id}/access-policy", post(http_access_policy))
        .route("/users/{user}/quota", post(http_quota))
        .route(
            "/refresh-tokens/revoke",
            post(|State(s): State<AppState>| async move {
                revoke_refresh_tokens(&s);
                StatusCode::NO_CONTENT
            }),
        )
}

async fn http_add_user(State(s): State<AppState>, Json(new): Json<NewUser>) -> Reply {
    ok(StatusCode::CREATED, &add_user(&s, &new)?)
}

/// `DELETE /users/{user}[?permanent=true]`
async fn http_remove_user(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    remove_user(&s, &user, q.get("permanent").is_some_and(|v| v == "true"))?;
    no_content()
}

async fn http_unlicense(State(s): State<AppState>, Path(user): Path<String>) -> Reply {
    unlicense_user(&s, &user)?;
    no_content()
}

/// Body: raw MIME. Query: `folder` (id, well-known name or path; default Inbox).
async fn http_add_message(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    let folder = q.get("folder").cloned().unwrap_or_else(|| "inbox".into());
    ok(
        StatusCode::CREATED,
        &add_message(&s, &user, &folder, &body)?,
    )
}

async fn http_update_message(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    Json(update): Json<MessageUpdate>,
) -> Reply {
    update_message(&s, &user, &id, &update)?;
    no_content()
}

async fn http_delete_message(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
) -> Reply {
    delete_message(&s, &user, &id)?;
    no_content()
}

async fn http_message_mime(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
) -> Reply {
    let t = s.tenant();
    let mb = t
        .user(&user)
        .and_then(|u| u.mailbox.as_ref())
        .ok_or(EmulatorError::NotFound("mailbox"))?;
    let m = mb
        .message_num(&id)
        .and_then(|n| mb.messages.get(&n))
        .ok_or(EmulatorError::NotFound("message"))?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], m.mime_bytes()).into_response())
}

#[derive(Debug, Deserialize)]
struct Destination {
    folder: String,
}

async fn http_move_message(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    Json(d): Json<Destination>,
) -> Reply {
    ok(StatusCode::OK, &move_message(&s, &user, &id, &d.folder)?)
}

#[derive(Debug, Deserialize)]
struct NewFolder {
    parent: String,
    #[serde(rename = "displayName")]
    display_name: String,
    #[serde(default)]
    hidden: bool,
}

async fn http_create_folder(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Json(f): Json<NewFolder>,
) -> Reply {
    let id = create_folder(&s, &user, &f.parent, &f.display_name, f.hidden)?;
    ok(StatusCode::CREATED, &serde_json::json!({"id": id}))
}

#[derive(Debug, Deserialize)]
struct FolderUpdate {
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    parent: Option<String>,
}

async fn http_update_folder(
    State(s): State<AppState>,
    Path((user, folder)): Path<(String, String)>,
    Json(u): Json<FolderUpdate>,
) -> Reply {
    if let Some(name) = &u.display_name {
        rename_folder(&s, &user, &folder, name)?;
    }
    if let Some(parent) = &u.parent {
        move_folder(&s, &user, &folder, parent)?;
    }
    no_content()
}

async fn http_delete_folder(
    State(s): State<AppState>,
    Path((user, folder)): Path<(String, String)>,
) -> Reply {
    delete_folder(&s, &user, &folder)?;
    no_content()
}

#[derive(Debug, Deserialize, Default)]
struct ExpireRequest {
    user: Option<String>,
}

async fn http_expire(State(s): State<AppState>, body: Bytes) -> Reply {
    let req: ExpireRequest = serde_json::from_slice(&body).unwrap_or_default();
    expire_delta_tokens(&s, req.user.as_deref())?;
    no_content()
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: f64,
}

async fn http_advance(State(s): State<AppState>, Json(a): Json<Advance>) -> Reply {
    s.clock.advance(Duration::from_secs_f64(a.seconds.max(0.0)));
    ok(StatusCode::OK, &serde_json::json!({"now": s.clock.now()}))
}

#[derive(Debug, Deserialize)]
struct ThrottleRequest {
    mode: String,
    requests: Option<u32>,
    per_ms: Option<u64>,
    concurrency: Option<usize>,
}

async fn http_throttle(State(s): State<AppState>, Json(r): Json<ThrottleRequest>) -> Reply {
    let mode = parse_throttle(&r.mode, r.requests, r.per_ms.map(Duration::from_millis))
        .map_err(EmulatorError::Invalid)?;
    let concurrency = r.concurrency.unwrap_or_else(|| s.throttle.mode().1);
    s.throttle.set(mode, concurrency);
    no_content()
}

/// `off`, `realistic`, or `scaled` (default 500 requests per 5 seconds).
pub fn parse_throttle(
    mode: &str,
    requests: Option<u32>,
    per: Option<Duration>,
) -> Result<Throttle, String> {
    match mode {
        "off" => Ok(Throttle::Off),
        "realistic" => Ok(Throttle::Realistic),
        "scaled" => Ok(Throttle::Scaled {
            requests: requests.unwrap_or(500),
            per: per.unwrap_or(Duration::from_secs(5)),
        }),
        other => Err(format!(
            "unknown throttle mode {other:?} (off, realistic, scaled)"
        )),
    }
}

#[derive(Debug, Deserialize)]
struct FaultsRequest {
    rate: f64,
    kinds: Option<Vec<FaultKind>>,
}

async fn http_faults(State(s): State<AppState>, Json(r): Json<FaultsRequest>) -> Reply {
    s.faults
        .set(r.rate, r.kinds.unwrap_or_else(|| FaultKind::ALL.to_vec()));
    no_content()
}

#[derive(Debug, Deserialize)]
struct ScheduleRequest {
    #[serde(flatten)]
    fault: ScheduledFault,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn http_schedule(State(s): State<AppState>, Json(r): Json<ScheduleRequest>) -> Reply {
    s.faults.schedule(r.fault, r.count);
    no_content()
}

#[derive(Debug, Deserialize)]
struct QuotaRequest {
    full: bool,
}

async fn http_quota(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Json(q): Json<QuotaRequest>,
) -> Reply {
    set_mailbox_full(&s, &user, q.full)?;
    no_content()
}

#[derive(Debug, Deserialize)]
struct AccessPolicyRequest {
    mailboxes: Option<Vec<String>>,
}

async fn http_access_policy(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    Json(r): Json<AccessPolicyRequest>,
) -> Reply {
    set_access_policy(&s, &client_id, r.mailboxes.as_deref())?;
    no_content()
}

async fn http_register_app(State(s): State<AppState>, Json(spec): Json<AppSpec>) -> Reply {
    ok(StatusCode::CREATED, &register_app(&s, &spec)?)
}
