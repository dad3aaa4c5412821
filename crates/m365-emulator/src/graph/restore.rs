//! Writing mail (restore): folders, messages from MIME or JSON, attachments (small POST and
//! upload sessions on a pre-authenticated URL), move, copy, update and delete.

use super::attachments::{attachment_json, attachments_path};
use super::folders::folder_json;
use super::messages::{find_message, message_id, message_json};
use super::{json, named_folder, user_of, Ctx, Params};
use crate::error::GraphError;
use crate::identity::{random_token, roles};
use crate::state::AppState;
use crate::tenant::generate::from_mime_facts;
use crate::tenant::message::preview;
use crate::tenant::{attachment_id, AttachmentMeta, Message, MimeSource, Recipient};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Graph rejects request bodies over about 4 MB.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Upload-session chunks must be 4 MB or less.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Exchange's largest message (admins can raise 35 MB to 150 MB).
pub const MAX_ATTACHMENT_BYTES: u64 = 150 * 1024 * 1024;

fn too_large() -> GraphError {
    GraphError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("The request body is too large; the limit is {MAX_REQUEST_BYTES} bytes."),
    )
}

fn parse_json(body: &Bytes) -> Result<Value, GraphError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    serde_json::from_slice(body).map_err(|e| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "RequestBodyRead",
            format!("Invalid JSON in the request body: {e}"),
        )
    })
}

/// The id of a folder given by id or well-known name.
fn folder_id_of(mb: &crate::tenant::Mailbox, key: &str) -> Result<String, GraphError> {
    Ok(mb
        .folder(key)
        .ok_or_else(GraphError::item_not_found)?
        .id
        .clone())
}

/// `destinationId` of a move or copy body.
fn destination_id(v: &Value) -> Result<String, GraphError> {
    v["destinationId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| GraphError::bad_request("destinationId is required."))
}

/// A written folder as Graph returns it.
fn folder_response(
    mb: &crate::tenant::Mailbox,
    ctx: &Ctx,
    user_id: &str,
    id: &str,
    status: StatusCode,
) -> Result<Response, GraphError> {
    let folder = mb.folder(id).ok_or_else(GraphError::item_not_found)?;
    let mut out = folder_json(mb, folder);
    out["@odata.context"] = ctx
        .context(&format!("users('{user_id}')/mailFolders/$entity"))
        .into();
    Ok(json(status, &out))
}

/// A written message as Graph returns it (with its body).
fn message_response(
    mb: &crate::tenant::Mailbox,
    num: u64,
    ctx: &Ctx,
    user_id: &str,
    status: StatusCode,
) -> Result<Response, GraphError> {
    let m = mb
        .messages
        .get(&num)
        .ok_or_else(GraphError::item_not_found)?;
    let mut out = message_json(m, ctx, true, false);
    out["@odata.context"] = ctx
        .context(&format!("users('{user_id}')/messages/$entity"))
        .into();
    Ok(json(status, &out))
}

fn create_folder(
    shared: &AppState,
    ctx: &Ctx,
    p: &HashMap<String, String>,
    parent: &str,
    body: &Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(body)?;
    let name = v["displayName"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            GraphError::new(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                "The displayName is required.",
            )
        })?;
    let hidden = v["isHidden"].as_bool().unwrap_or(false);
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, ctx, &user_of(p))?;
    let parent_id = folder_id_of(mb, parent)?;
    let id = mb.create_folder(&parent_id, name, hidden, seq)?;
    let folder = mb.folder(&id).ok_or_else(GraphError::item_not_found)?;
    let mut out = folder_json(mb, folder);
    out["@odata.context"] = ctx
        .context(&format!(
            "users('{user_id}')/mailFolders('{parent_id}')/childFolders/$entity"
        ))
        .into();
    Ok(json(StatusCode::CREATED, &out))
}

pub async fn create_top_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    create_folder(&shared, &ctx, &p, "msgfolderroot", &body)
}

pub async fn create_child_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    let parent = p.get("folder").cloned().unwrap_or_default();
    create_folder(&shared, &ctx, &p, &parent, &body)
}

pub async fn update_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let id = named_folder(mb, &p)?.id.clone();
    if let Some(name) = v["displayName"].as_str() {
        mb.rename_folder(&id, name, seq)?;
    }
    folder_response(mb, &ctx, &user_id, &id, StatusCode::OK)
}

pub async fn move_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let dest = destination_id(&v)?;
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let id = named_folder(mb, &p)?.id.clone();
    mb.move_folder(&id, &dest, seq)?;
    folder_response(mb, &ctx, &user_id, &id, StatusCode::CREATED)
}

pub async fn delete_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let mut t = shared.tenant_mut();
    let (_, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let id = named_folder(mb, &p)?.id.clone();
    mb.delete_folder(&id, seq)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn recipients(v: &Value) -> Vec<Recipient> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| Recipient {
                    name: r["emailAddress"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    address: r["emailAddress"]["address"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn extended_property<'a>(v: &'a Value, id: &str) -> Option<&'a str> {
    v["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .and_then(|p| p["value"].as_str())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, GraphError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| GraphError::bad_request(format!("Invalid SystemTime value '{s}'.")))
}

/// A message from Graph JSON. PidTagMessageFlags (0x0E07) without MSGFLAG_UNSENT makes it a
/// sent item; 0x0E06 / 0x0039 set the delivery and submit times. `isDraft` is ignored.
fn message_from_json(v: &Value, now: DateTime<Utc>) -> Result<Message, GraphError> {
    let flags = extended_property(v, "Integer 0x0E07")
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| GraphError::bad_request("Integer 0x0E07 must be a number."))
        })
        .transpose()?;
    let received = extended_property(v, "SystemTime 0x0E06")
        .map(parse_time)
        .transpose()?
        .unwrap_or(now);
    let sent = extended_property(v, "SystemTime 0x0039")
        .map(parse_time)
        .transpose()?;
    let is_draft = flags.is_none_or(|f| f & 0x8 != 0);
    let content_type = v["body"]["contentType"]
        .as_str()
        .unwrap_or("text")
        .to_ascii_lowercase();
    let content = v["body"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text_for_preview = if content_type == "html" {
        strip_tags(&content)
    } else {
        content.clone()
    };
    let mut attachments = Vec::new();
    for a in v["attachments"].as_array().into_iter().flatten() {
        attachments.push(file_attachment(a, now)?);
    }
    let from = recipients(&json!([v["from"]]))
        .into_iter()
        .find(|r| !r.address.is_empty());
    Ok(Message {
        num: 0,
        rest_id: String::new(),
        immutable_id: String::new(),
        folder_id: String::new(),
        change_count: 0,
        created_seq: 0,
        created: now,
        last_modified: now,
        received,
        sent: sent.or(if is_draft { None } else { Some(received) }),
        is_read: v["isRead"]
            .as_bool()
            .unwrap_or(flags.is_some_and(|f| f & 0x1 != 0)),
        is_draft,
        importance: v["importance"].as_str().unwrap_or("normal").to_string(),
        flag_status: v["flag"]["flagStatus"]
            .as_str()
            .unwrap_or("notFlagged")
            .to_string(),
        categories: v["categories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        subject: v["subject"].as_str().unwrap_or_default().to_string(),
        from,
        to: recipients(&v["toRecipients"]),
        cc: recipients(&v["ccRecipients"]),
        bcc: recipients(&v["bccRecipients"]),
        reply_to: recipients(&v["replyTo"]),
        internet_message_id: v["internetMessageId"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("<{}@emulator.prod.outlook.com>", random_token(24))),
        conversation_id: base64::engine::general_purpose::STANDARD.encode(random_token(18)),
        body_preview: preview(&text_for_preview),
        body: Some((content_type, content)),
        headers: Vec::new(),
        attachments,
        mime: MimeSource::Composed,
        size: 0,
    })
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in html.chars() {
        match c {
            '<' => tag = true,
            '>' => tag = false,
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn file_attachment(a: &Value, now: DateTime<Utc>) -> Result<AttachmentMeta, GraphError> {
    if a["@odata.type"]
        .as_str()
        .is_some_and(|t| !t.eq_ignore_ascii_case("#microsoft.graph.fileAttachment"))
    {
        return Err(GraphError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Only file attachments are supported by the emulator.",
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(a["contentBytes"].as_str().unwrap_or_default())
        .map_err(|_| GraphError::bad_request("contentBytes is not valid base64."))?;
    Ok(AttachmentMeta {
        id: String::new(),
        name: a["name"].as_str().unwrap_or("attachment").to_string(),
        content_type: a["contentType"]
            .as_str()
            .unwrap_or("application/octet-stream")
            .to_string(),
        size: bytes.len() as u64,
        is_inline: a["isInline"].as_bool().unwrap_or(false),
        content_id: a["contentId"].as_str().map(str::to_string),
        last_modified: now,
        bytes: Some(Bytes::from(bytes)),
    })
}

/// POST messages: `text/plain` base64 MIME (always a draft) or JSON.
pub async fn create_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    if body.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    let now = shared.clock.now();
    let is_mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/plain"));
    let message = if is_mime {
        let text: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let mime = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|_| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "ErrorMimeContentInvalidBase64String",
                    "Invalid base64 string for MIME content.",
                )
                .without_inner()
            })?;
        let mut m = from_mime_facts(&mime, now);
        m.is_draft = true;
        m
    } else {
        message_from_json(&parse_json(&body)?, now)?
    };
    let folder = p.get("folder").cloned().unwrap_or_else(|| "drafts".into());
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let folder_id = folder_id_of(mb, &folder)?;
    let num = mb.insert_message(message, &folder_id, seq);
    if let Some(m) = mb.messages.get_mut(&num) {
        resize_composed(m);
    }
    message_response(mb, num, &ctx, &user_id, StatusCode::CREATED)
}

/// PATCH message: the properties a client may change after creation. Writes to
/// PidTagMessageFlags are ignored, as Exchange makes them read-only after the first save.
pub async fn update_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let now = shared.clock.now();
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let num = find_message(mb, &p)?.num;
    if let Some(m) = mb.messages.get_mut(&num) {
        if let Some(b) = v["isRead"].as_bool() {
            m.is_read = b;
        }
        if let Some(s) = v["flag"]["flagStatus"].as_str() {
            m.flag_status = s.to_string();
        }
        if let Some(c) = v["categories"].as_array() {
            m.categories = c
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
        }
        if let Some(s) = v["importance"].as_str() {
            m.importance = s.to_string();
        }
        if m.is_draft {
            if let Some(s) = v["subject"].as_str() {
                m.subject = s.to_string();
            }
        }
    }
    mb.touch_message(num, now, seq);
    message_response(mb, num, &ctx, &user_id, StatusCode::OK)
}

pub async fn delete_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let mut t = shared.tenant_mut();
    let (_, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let num = find_message(mb, &p)?.num;
    mb.delete_message(num, seq);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn move_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let dest = destination_id(&v)?;
    let now = shared.clock.now();
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let num = find_message(mb, &p)?.num;
    mb.move_message(num, &dest, now, seq)?;
    message_response(mb, num, &ctx, &user_id, StatusCode::CREATED)
}

pub async fn copy_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let dest = destination_id(&v)?;
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let copy = find_message(mb, &p)?.clone();
    let dest_id = folder_id_of(mb, &dest)?;
    let num = mb.insert_message(copy, &dest_id, seq);
    message_response(mb, num, &ctx, &user_id, StatusCode::CREATED)
}

/// A message built from JSON has no stored MIME; its size is that of the MIME `$value` composes.
fn resize_composed(m: &mut Message) {
    if matches!(m.mime, MimeSource::Composed) {
        m.size = m.mime_bytes().len() as u64;
    }
}

/// Appends an attachment to a message (the message's MIME is re-synthesised on `$value`
/// for JSON-created messages).
fn attach(
    mb: &mut crate::tenant::Mailbox,
    num: u64,
    mut a: AttachmentMeta,
    now: DateTime<Utc>,
    seq: &mut u64,
) -> Result<AttachmentMeta, GraphError> {
    let m = mb
        .messages
        .get_mut(&num)
        .ok_or_else(GraphError::item_not_found)?;
    a.id = attachment_id(&m.immutable_id, m.attachments.len());
    m.attachments.push(a.clone());
    resize_composed(m);
    mb.touch_message(num, now, seq);
    Ok(a)
}

pub async fn add_attachment(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::WRITE_MAIL)?;
    let v = parse_json(&body)?;
    let now = shared.clock.now();
    let a = file_attachment(&v, now)?;
    let mut t = shared.tenant_mut();
    let (user_id, mb, seq) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    let num = find_message(mb, &p)?.num;
    let a = attach(mb, num, a, now, seq)?;
    let m = mb
        .messages
        .get(&num)
        .ok_or_else(GraphError::item_not_found)?;
    let mut out = attachment_json(m, &a, true);
    out["@odata.context"] = ctx
        .context(&format!("{}/$entity", attachments_path(&user_id, &p)))
        .into();
    Ok(json(StatusCode::CREATED, &out))
}

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
        return Err(GraphError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
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
    let attachment = {
        let mut t = shared.tenant_mut();
        let crate::tenant::Tenant { users, seq, .. } = &mut *t;
        let Some(mb) = users
            .iter_mut()
            .find(|u| u.id == done.user_id)
            .and_then(|u| u.mailbox.as_mut())
        else {
            return upload_error(
                StatusCode::NOT_FOUND,
                "ErrorItemNotFound",
                "The message no longer exists.",
            );
        };
        match attach(mb, done.message_num, meta, now, seq) {
            Ok(a) => a,
            Err(_) => {
                return upload_error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The message no longer exists.",
                )
            }
        }
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
