//! Microsoft Graph (`/v1.0` and `/beta`): the routes, the per-request context handlers get,
//! and the helpers handlers share (OData links, `$select`, `Prefer`, mailbox lookup). The
//! middleware every Graph call goes through is in `pipeline`.

pub mod apps;
pub mod attachments;
pub mod batch;
pub mod delta;
pub mod folders;
pub mod messages;
pub mod pipeline;
pub mod restore;
pub mod uploads;
pub mod users;

use crate::error::GraphError;
use crate::state::AppState;
use crate::tenant::{Mailbox, Tenant, User};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub use pipeline::{authenticate, endpoint_name, pipeline};

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
