//! The control API: inspect and mutate the emulated tenant from tests, benchmarks and demos.
//! Every operation is a function on the shared state (used by `Emulator`'s methods) and an
//! HTTP route under `/_emulator/` (documented in docs/EMULATOR.md).

use crate::config::{FaultKind, Throttle};
use crate::counters::CounterSnapshot;
use crate::error::EmulatorError;
use crate::faults::ScheduledFault;
use crate::identity::certificate::{der_from_text, Certificate};
use crate::state::{AppState, Shared};
use crate::tenant::generate::KIND_CYCLE;
use crate::tenant::message::from_mime_facts;
use crate::tenant::{Application, Mailbox, ServicePrincipal, Tenant, User, UserKind, SKU_E3};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A read-only copy of the tenant (what `emu.tenant()` returns).
#[derive(Debug, Clone, Serialize)]
pub struct TenantSnapshot {
    pub tenant_id: String,
    pub domain: String,
    pub users: Vec<UserSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSnapshot {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub kind: UserKind,
    pub account_enabled: bool,
    pub licensed: bool,
    pub password: String,
    pub mailbox: Option<MailboxSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxSnapshot {
    /// userPurpose: user, shared or room.
    pub purpose: String,
    pub folders: Vec<FolderSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderSnapshot {
    pub id: String,
    pub display_name: String,
    /// Display path from the root, e.g. `Inbox/Projects/2024` (empty for the root).
    pub path: String,
    pub parent_id: Option<String>,
    pub well_known: Option<String>,
    pub hidden: bool,
    pub search_folder: bool,
    pub messages: Vec<MessageSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageSnapshot {
    pub id: String,
    pub immutable_id: String,
    pub subject: String,
    pub received: DateTime<Utc>,
    pub is_read: bool,
    pub is_draft: bool,
    pub size: u64,
    pub attachments: usize,
    /// Exactly what `$value` returns (omitted from the HTTP snapshot).
    #[serde(skip)]
    pub mime: Bytes,
}

/// Copies the tenant; `with_mime` also builds every message's MIME.
pub fn snapshot(shared: &Shared, with_mime: bool) -> TenantSnapshot {
    let t = shared.tenant();
    TenantSnapshot {
        tenant_id: t.id.clone(),
        domain: t.domain.clone(),
        users: t
            .users
            .iter()
            .map(|u| user_snapshot(u, with_mime))
            .collect(),
    }
}

fn user_snapshot(u: &User, with_mime: bool) -> UserSnapshot {
    UserSnapshot {
        id: u.id.clone(),
        user_principal_name: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
        kind: u.kind,
        account_enabled: u.account_enabled,
        licensed: !u.licenses.is_empty(),
        password: u.password.clone(),
        mailbox: u.mailbox.as_ref().map(|mb| MailboxSnapshot {
            purpose: mb.purpose.to_string(),
            folders: mb
                .folders
                .iter()
                .map(|f| FolderSnapshot {
                    id: f.id.clone(),
                    display_name: f.display_name.clone(),
                    path: mb.folder_path(&f.id),
                    parent_id: f.parent_id.clone(),
                    well_known: f.well_known.map(str::to_string),
                    hidden: f.is_hidden,
                    search_folder: f.search_query.is_some(),
                    messages: mb
                        .folder_messages(&f.id)
                        .map(|m| MessageSnapshot {
                            id: m.rest_id.clone(),
                            immutable_id: m.immutable_id.clone(),
                            subject: m.subject.clone(),
                            received: m.received,
                            is_read: m.is_read,
                            is_draft: m.is_draft,
                            size: m.size,
                            attachments: m.attachments.len(),
                            mime: if with_mime {
                                m.mime_bytes()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect(),
                })
                .collect(),
        }),
    }
}

/// Ids of a message created through the control API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageIds {
    pub id: String,
    pub immutable_id: String,
}

fn with_mailbox<R>(
    shared: &Shared,
    user: &str,
    f: impl FnOnce(&mut Mailbox, &mut u64) -> Result<R, EmulatorError>,
) -> Result<R, EmulatorError> {
    let mut t = shared.tenant_mut();
    let Tenant { users, seq, .. } = &mut *t;
    let u = users
        .iter_mut()
        .find(|u| {
            u.id.eq_ignore_ascii_case(user) || u.user_principal_name.eq_ignore_ascii_case(user)
        })
        .ok_or(EmulatorError::NotFound("user"))?;
    let mb = u
        .mailbox
        .as_mut()
        .ok_or(EmulatorError::NotFound("mailbox"))?;
    f(mb, seq)
}

/// A folder by id, well-known name or display path (`Inbox/Projects`).
fn resolve_folder(mb: &Mailbox, folder: &str) -> Option<String> {
    if let Some(f) = mb.folder(folder) {
        return Some(f.id.clone());
    }
    mb.folders
        .iter()
        .find(|f| {
            mb.folder_path(&f.id)
                .eq_ignore_ascii_case(folder.trim_matches('/'))
        })
        .map(|f| f.id.clone())
}

/// Delivers MIME into a folder (created if the path does not exist), byte for byte.
pub fn add_message(
    shared: &Shared,
    user: &str,
    folder: &str,
    mime: &[u8],
) -> Result<MessageIds, EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let folder_id = match resolve_folder(mb, folder) {
            Some(id) => id,
            None => mb.ensure_path(folder, seq),
        };
        let mut message = from_mime_facts(mime, now);
        message.is_read = false;
        let num = mb.insert_message(message, &folder_id, seq);
        let m = &mb.messages[&num];
        Ok(MessageIds {
            id: m.rest_id.clone(),
            immutable_id: m.immutable_id.clone(),
        })
    })
}

/// Changes to an existing message (as a user would make them in Outlook).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageUpdate {
    #[serde(rename = "isRead")]
    pub is_read: Option<bool>,
    pub subject: Option<String>,
    #[serde(rename = "flagStatus")]
    pub flag_status: Option<String>,
    pub categories: Option<Vec<String>>,
}

pub fn update_message(
    shared: &Shared,
    user: &str,
    id: &str,
    update: &MessageUpdate,
) -> Result<(), EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        let m = mb
            .messages
            .get_mut(&num)
            .ok_or(EmulatorError::NotFound("message"))?;
        if let Some(v) = update.is_read {
            m.is_read = v;
        }
        if let Some(v) = &update.subject {
            m.subject = v.clone();
        }
        if let Some(v) = &update.flag_status {
            m.flag_status = v.clone();
        }
        if let Some(v) = &update.categories {
            m.categories = v.clone();
        }
        mb.touch_message(num, now, seq);
        Ok(())
    })
}

pub fn move_message(
    shared: &Shared,
    user: &str,
    id: &str,
    folder: &str,
) -> Result<MessageIds, EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        let dest = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.move_message(num, &dest, now, seq)?;
        let m = &mb.messages[&num];
        Ok(MessageIds {
            id: m.rest_id.clone(),
            immutable_id: m.immutable_id.clone(),
        })
    })
}

pub fn delete_message(shared: &Shared, user: &str, id: &str) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        mb.delete_message(num, seq);
        Ok(())
    })
}

pub fn create_folder(
    shared: &Shared,
    user: &str,
    parent: &str,
    name: &str,
    hidden: bool,
) -> Result<String, EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let parent = resolve_folder(mb, parent).ok_or(EmulatorError::NotFound("folder"))?;
        mb.create_folder(&parent, name, hidden, seq)
    })
}

pub fn rename_folder(
    shared: &Shared,
    user: &str,
    folder: &str,
    name: &str,
) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.rename_folder(&id, name, seq)
    })
}

pub fn move_folder(
    shared: &Shared,
    user: &str,
    folder: &str,
    parent: &str,
) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        let dest = resolve_folder(mb, parent).ok_or(EmulatorError::NotFound("folder"))?;
        mb.move_folder(&id, &dest, seq)
    })
}

pub fn delete_folder(shared: &Shared, user: &str, folder: &str) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.delete_folder(&id, seq)
    })
}

/// A user to add. Unset fields are derived from the name and kind.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewUser {
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Local part or full address; the tenant domain is appended when missing.
    #[serde(rename = "userPrincipalName", default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub kind: Option<UserKind>,
    #[serde(default)]
    pub password: Option<String>,
}

pub fn add_user(shared: &Shared, new: &NewUser) -> Result<UserSnapshot, EmulatorError> {
    let mut t = shared.tenant_mut();
    let kind = new.kind.unwrap_or(UserKind::Licensed);
    let local: String = new
        .display_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<String>()
        .to_lowercase();
    let upn = match &new.user_principal_name {
        Some(u) if u.contains('@') => u.clone(),
        Some(u) => format!("{u}@{}", t.domain),
        None => format!(
            "{}@{}",
            if local.is_empty() {
                "user".into()
            } else {
                local
            },
            t.domain
        ),
    };
    if t.user(&upn).is_some() {
        return Err(EmulatorError::Invalid(format!("{upn} already exists")));
    }
    let user = build_user(&mut t, &new.display_name, &upn, kind, new.password.clone());
    t.users.push(user);
    let i = t.users.len() - 1;
    t.touch_user(i);
    Ok(user_snapshot(&t.users[i], false))
}

/// A new user of `kind` with an empty mailbox when the kind has one.
pub fn build_user(
    t: &mut Tenant,
    display_name: &str,
    upn: &str,
    kind: UserKind,
    password: Option<String>,
) -> User {
    let salt = (t.users.len() as u32).wrapping_mul(2_654_435_761) ^ 0x9e37;
    let mailbox = kind
        .has_mailbox()
        .then(|| Mailbox::new(kind.purpose(), salt, &mut t.seq));
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_DNS,
        upn.to_ascii_lowercase().as_bytes(),
    )
    .to_string();
    User {
        id,
        user_principal_name: upn.to_string(),
        display_name: display_name.to_string(),
        given_name: display_name.split_whitespace().next().map(str::to_string),
        surname: display_name.split_whitespace().nth(1).map(str::to_string),
        job_title: None,
        mobile_phone: None,
        office_location: None,
        business_phones: Vec::new(),
        preferred_language: Some("en-US".into()),
        account_enabled: matches!(
            kind,
            UserKind::Licensed | UserKind::Unlicensed | UserKind::NoMailbox
        ),
        kind,
        licenses: match kind {
            UserKind::Licensed | UserKind::Disabled => vec![SKU_E3.to_string()],
            UserKind::NoMailbox => vec![crate::tenant::SKU_POWER_BI.to_string()],
            _ => Vec::new(),
        },
        password: password.unwrap_or_else(|| format!("Pw-{}!", crate::identity::random_token(10))),
        is_global_admin: false,
        mailbox,
        seq: 0,
    }
}

/// Deletes a user; `permanent` is a purge (users/delta `deleted`), otherwise a soft delete
/// (`changed`).
pub fn remove_user(shared: &Shared, user: &str, permanent: bool) -> Result<(), EmulatorError> {
    shared.tenant_mut().remove_user(user, permanent).map(|_| ())
}

pub fn unlicense_user(shared: &Shared, user: &str) -> Result<(), EmulatorError> {
    shared.tenant_mut().unlicense_user(user)
}

/// Makes every outstanding delta token (of one mailbox, or all) fail with 410.
pub fn expire_delta_tokens(shared: &Shared, user: Option<&str>) -> Result<(), EmulatorError> {
    let mut t = shared.tenant_mut();
    let mut found = user.is_none();
    for u in t.users.iter_mut() {
        if user.is_some_and(|x| {
            !u.id.eq_ignore_ascii_case(x) && !u.user_principal_name.eq_ignore_ascii_case(x)
        }) {
            continue;
        }
        found = true;
        if let Some(mb) = u.mailbox.as_mut() {
            mb.folder_generation += crate::graph::delta::KEPT_GENERATIONS;
            for f in mb.folders.iter_mut() {
                f.generation += crate::graph::delta::KEPT_GENERATIONS;
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(EmulatorError::NotFound("user"))
    }
}

/// Credentials of an app registered through the control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub service_principal_id: String,
}

/// An app registration with exactly these application roles, a secret, and optionally a
/// certificate (PEM or base64 DER) for assertions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppSpec {
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub certificate: Option<String>,
    #[serde(rename = "redirectUris", default)]
    pub redirect_uris: Vec<String>,
}

pub fn register_app(shared: &Shared, spec: &AppSpec) -> Result<AppCredentials, EmulatorError> {
    let mut certificates = Vec::new();
    if let Some(text) = &spec.certificate {
        let der = der_from_text(text)
            .filter(|d| Certificate::from_der(d).is_some())
            .ok_or_else(|| {
                EmulatorError::Invalid("certificate is not an X.509 RSA certificate".into())
            })?;
        certificates.push(der);
    }
    for r in &spec.roles {
        if crate::identity::roles::role_id(r).is_none() {
            return Err(EmulatorError::Invalid(format!(
                "unknown application role {r}"
            )));
        }
    }
    let creds = AppCredentials {
        client_id: uuid::Uuid::new_v4().to_string(),
        client_secret: format!(
            "{}~{}",
            crate::identity::random_token(3),
            crate::identity::random_token(36)
        ),
        service_principal_id: uuid::Uuid::new_v4().to_string(),
    };
    let name = spec
        .display_name
        .clone()
        .unwrap_or_else(|| "Test app".into());
    let mut t = shared.tenant_mut();
    t.apps.push(Application {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: creds.client_id.clone(),
        display_name: name.clone(),
        secrets: vec![creds.client_secret.clone()],
        certificates,
        public_redirect_uris: if spec.redirect_uris.is_empty() {
            vec!["http://localhost".into(), "http://127.0.0.1".into()]
        } else {
            spec.redirect_uris.clone()
        },
        web_redirect_uris: Vec::new(),
        required_roles: spec.roles.clone(),
        mailbox_scope: None,
    });
    t.service_principals.push(ServicePrincipal {
        id: creds.service_principal_id.clone(),
        app_id: creds.client_id.clone(),
        display_name: name,
        roles: spec.roles.clone(),
        assignments: Vec::new(),
        consented_scopes: Vec::new(),
    });
    Ok(creds)
}

/// Marks a mailbox as over quota: delta calls get 403 ErrorQuotaExceeded, reads still work.
pub fn set_mailbox_full(shared: &Shared, user: &str, full: bool) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, _| {
        mb.full = full;
        Ok(())
    })
}

/// An application access policy: the app may open only these mailboxes (ids or addresses);
/// `None` removes the policy. Other mailboxes answer 403 "Access to OData is disabled.".
pub fn set_access_policy(
    shared: &Shared,
    client_id: &str,
    mailboxes: Option<&[String]>,
) -> Result<(), EmulatorError> {
    let mut t = shared.tenant_mut();
    let scope = match mailboxes {
        Some(list) => Some(
            list.iter()
                .map(|m| {
                    t.user(m)
                        .map(|u| u.id.clone())
                        .ok_or(EmulatorError::NotFound("user"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let app = t
        .apps
        .iter_mut()
        .find(|a| a.app_id.eq_ignore_ascii_case(client_id))
        .ok_or(EmulatorError::NotFound("app"))?;
    app.mailbox_scope = scope;
    Ok(())
}

/// Revokes every refresh token (as a password reset does): AADSTS50173 afterwards.
pub fn revoke_refresh_tokens(shared: &Shared) {
    for g in shared.identity().refresh_tokens.values_mut() {
        g.revoked = true;
    }
}

// ---- HTTP routes ----

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
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Reply {
    remove_user(&s, &user, q.get("permanent").is_some_and(|v| v == "true"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn http_unlicense(State(s): State<AppState>, Path(user): Path<String>) -> Reply {
    unlicense_user(&s, &user)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body: raw MIME. Query: `folder` (id, well-known name or path; default Inbox).
async fn http_add_message(
    State(s): State<AppState>,
    Path(user): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
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
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn http_delete_message(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
) -> Reply {
    delete_message(&s, &user, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn http_delete_folder(
    State(s): State<AppState>,
    Path((user, folder)): Path<(String, String)>,
) -> Reply {
    delete_folder(&s, &user, &folder)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, Default)]
struct ExpireRequest {
    user: Option<String>,
}

async fn http_expire(State(s): State<AppState>, body: Bytes) -> Reply {
    let req: ExpireRequest = serde_json::from_slice(&body).unwrap_or_default();
    expire_delta_tokens(&s, req.user.as_deref())?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
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
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn http_register_app(State(s): State<AppState>, Json(spec): Json<AppSpec>) -> Reply {
    ok(StatusCode::CREATED, &register_app(&s, &spec)?)
}

/// The kind of the n-th generated user (documented so tests can pick users by kind).
pub fn generated_kind(index: usize) -> UserKind {
    KIND_CYCLE[index % KIND_CYCLE.len()]
}
