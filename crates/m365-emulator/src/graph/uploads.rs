//! Attachment upload sessions: `createUploadSession` hands out a pre-authenticated URL, and
//! `PUT`s to it deliver the bytes in order, chunk by chunk, until the attachment is complete.

use super::messages::{find_message, message_id};
use super::restore::{attach, parse_json};
use super::{json, user_of, Ctx, Params};
use crate::error::GraphError;
use crate::identity::{random_token, roles};
use crate::state::AppState;
use crate::tenant::AttachmentMeta;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::HashMap;

/// Upload-session chunks must be 4 MB or less.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Exchange's largest message (admins can raise 35 MB to 150 MB).
pub const MAX_ATTACHMENT_BYTES: u64 = 150 * 1024 * 1024;

/// An attachment upload in progress: bytes arrive in order through the pre-authenticated URL.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub auth_token: String,
    pub user_id: String,
    pub message_num: u64,
    pub message_id: String,
    pub name: String,
    pub content_type: String,
    pub is_inline: bool,
    pub content_id: Option<String>,
    pub size: u64,
    pub received: Vec<u8>,
    pub expires: DateTime<Utc>,
}

pub type UploadSessions = HashMap<String, UploadSession>;

/// Outlook's timestamp style with seven fractional digits: `2019-09-25T01:09:30.7671707Z`.
fn seven_digit_time(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

pub async fn create_upload_session(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let item = &v["AttachmentItem"];
    if item["attachmentType"]
        .as_str()
        .is_some_and(|t| !t.eq_ignore_ascii_case("file"))
    {
        return Err(GraphError::not_implemented(
            "Only file attachments can be uploaded in a session.",
        ));
    }
    let size = item["size"]
        .as_u64()
        .ok_or_else(|| GraphError::bad_request("AttachmentItem.size is required."))?;
    if size == 0 || size > MAX_ATTACHMENT_BYTES {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorAttachmentSizeLimitExceeded",
            "The attachment size is not within the allowed range.",
        ));
    }
    let name = item["name"]
        .as_str()
        .ok_or_else(|| GraphError::bad_request("AttachmentItem.name is required."))?
        .to_string();
    let (user_id, num, message_id) = {
        let t = shared.tenant();
        let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
        let m = find_message(mb, &p)?;
        (user.id.clone(), m.num, message_id(m, &ctx))
    };
    let session_id = random_token(32);
    let auth_token = random_token(64);
    let expires = shared.clock.now() + Duration::hours(2);
    shared
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            session_id.clone(),
            UploadSession {
                auth_token: auth_token.clone(),
                user_id: user_id.clone(),
                message_num: num,
                message_id: message_id.clone(),
                name,
                content_type: item["contentType"]
                    .as_str()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                is_inline: item["isInline"].as_bool().unwrap_or(false),
                content_id: item["contentId"].as_str().map(str::to_string),
                size,
                received: Vec::new(),
                expires,
            },
        );
    let tenant_id = shared.tenant().id.clone();
    let upload_url = format!(
        "{}/outlook/api/v2.0/Users('{user_id}@{tenant_id}')/Messages('{message_id}')/AttachmentSessions('{session_id}')?authtoken={auth_token}",
        shared.info.graph
    );
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "@odata.context": format!("{}/$metadata#microsoft.graph.uploadSession", ctx.base),
            "uploadUrl": upload_url,
            "expirationDateTime": seven_digit_time(expires),
            "nextExpectedRanges": ["0-"],
        }),
    ))
}

fn upload_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `PUT uploadUrl` with `Content-Range: bytes a-b/total`; no Authorization header needed.
pub async fn upload_chunk(
    State(shared): State<AppState>,
    Path((_, _, session)): Path<(String, String, String)>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = session
        .trim_start_matches("AttachmentSessions('")
        .trim_end_matches("')")
        .to_string();
    let mut uploads = shared.uploads.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = uploads.get_mut(&id) else {
        return upload_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The upload session was not found.",
        );
    };
    if q.get("authtoken") != Some(&s.auth_token) {
        return upload_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The authtoken of the upload URL is not valid.",
        );
    }
    if shared.clock.now() > s.expires {
        return upload_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The upload session has expired.",
        );
    }
    if body.len() > MAX_CHUNK_BYTES {
        return upload_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "Each upload request must be 4 MB or smaller.",
        );
    }
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = range.strip_prefix("bytes ").and_then(|r| {
        let (span, total) = r.split_once('/')?;
        let (a, b) = span.split_once('-')?;
        Some((
            a.parse::<u64>().ok()?,
            b.parse::<u64>().ok()?,
            total.parse::<u64>().ok()?,
        ))
    });
    let Some((start, end, total)) = parsed else {
        return upload_error(
            StatusCode::BAD_REQUEST,
            "invalidRange",
            "Content-Range is missing or malformed.",
        );
    };
    if total != s.size
        || start != s.received.len() as u64
        || end < start
        || end - start + 1 != body.len() as u64
        || end >= total
    {
        return upload_error(StatusCode::RANGE_NOT_SATISFIABLE, "invalidRange", "The uploaded fragment does not start at the next expected byte or does not match its Content-Range.");
    }
    s.received.extend_from_slice(&body);
    let expires = seven_digit_time(s.expires);
    if (s.received.len() as u64) < s.size {
        let context = format!(
            "{}/outlook/api/v2.0/$metadata#Users('{}')/Messages('{}')/AttachmentSessions/$entity",
            shared.info.graph, s.user_id, s.message_id
        );
        return (StatusCode::OK, axum::Json(json!({"@odata.context": context, "ExpirationDateTime": expires, "nextExpectedRanges": [s.received.len().to_string()]}))).into_response();
    }
    let Some(done) = uploads.remove(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    drop(uploads);
    let now = shared.clock.now();
    let meta = AttachmentMeta {
        id: String::new(),
        name: done.name.clone(),
        content_type: done.content_type.clone(),
        size: done.size,
        is_inline: done.is_inline,
        content_id: done.content_id.clone(),
        last_modified: now,
        bytes: Some(Bytes::from(done.received)),
    };
    let attached = {
        let mut t = shared.tenant_mut();
        let crate::tenant::Tenant { users, seq, .. } = &mut *t;
        users
            .iter_mut()
            .find(|u| u.id == done.user_id)
            .and_then(|u| u.mailbox.as_mut())
            .and_then(|mb| attach(mb, done.message_num, meta, now, seq).ok())
    };
    let Some(attachment) = attached else {
        return upload_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The message no longer exists.",
        );
    };
    let location = format!(
        "{}/outlook/api/v2.0/Users('{}')/Messages('{}')/Attachments('{}')",
        shared.info.graph, done.user_id, done.message_id, attachment.id
    );
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}
