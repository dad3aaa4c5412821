//! Writing mail (restore): folders, messages from MIME or JSON, small attachments (POST),
//! move, copy, update and delete. Large attachments go through `uploads`.

use super::attachments::{attachment_json, attachments_path};
use super::folders::folder_json;
use super::messages::{find_message, message_json, strip_tags};
use super::{json, named_folder, user_of, Ctx, Params};
use crate::error::GraphError;
use crate::identity::{random_token, roles};
use crate::state::AppState;
use crate::tenant::message::from_mime_facts;
use crate::tenant::message::preview;
use crate::tenant::{attachment_id, AttachmentMeta, Message, MimeSource, Recipient};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Graph rejects request bodies over about 4 MB.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

fn too_large() -> GraphError {
    GraphError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("The request body is too large; the limit is {MAX_REQUEST_BYTES} bytes."),
    )
}

pub(super) fn parse_json(body: &Bytes) -> Result<Value, GraphError> {
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
/// sent item; 0x0E06 / 0x0039 set the delivery and submit times; 0x1042 / 0x1039 become the
/// `In-Reply-To` / `References` of its MIME. `isDraft` is ignored.
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
        thread_headers: [
            ("In-Reply-To", "String 0x1042"),
            ("References", "String 0x1039"),
        ]
        .into_iter()
        .filter_map(|(header, id)| {
            Some((header.to_string(), extended_property(v, id)?.to_string()))
        })
        .collect(),
        attachments,
        mime: MimeSource::Composed,
        size: 0,
    })
}

fn file_attachment(a: &Value, now: DateTime<Utc>) -> Result<AttachmentMeta, GraphError> {
    if a["@odata.type"]
        .as_str()
        .is_some_and(|t| !t.eq_ignore_ascii_case("#microsoft.graph.fileAttachment"))
    {
        return Err(GraphError::not_implemented(
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
pub(super) fn attach(
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
