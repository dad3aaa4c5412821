//! Reading messages: list (with `$filter`, `$orderby`, paging), get with `$select` and
//! `$expand=attachments`, `$value` byte for byte, and translateExchangeIds.

use super::attachments::attachment_json;
use super::{collection, json, named_folder, project, select, top, user_of, Ctx, Params, QueryMap};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{Folder, Mailbox, Message, Recipient};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const MESSAGE_PROPERTIES: [&str; 33] = [
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
    "uniqueBody",
    "singleValueExtendedProperties",
    "attachments",
];

pub(super) fn date(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn recipient(r: &Recipient) -> Value {
    json!({"emailAddress": {"name": r.name, "address": r.address}})
}

/// The text between an HTML body's tags, as written (no entity decoding).
pub(super) fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// An HTML body as plain text for `Prefer: outlook.body-content-type="text"`.
fn strip_html(html: &str) -> String {
    strip_tags(html)
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .trim()
        .to_string()
}

/// The message id as this request wants it (immutable with `Prefer: IdType="ImmutableId"`).
pub fn message_id(m: &Message, ctx: &Ctx) -> String {
    if ctx.immutable_ids {
        m.immutable_id.clone()
    } else {
        m.rest_id.clone()
    }
}

/// Full message JSON in the order of Graph's message-get example. The body is only read
/// when wanted (it may need the MIME).
pub fn message_json(m: &Message, ctx: &Ctx, with_body: bool, with_headers: bool) -> Value {
    let id = message_id(m, ctx);
    let mut v = json!({
        "@odata.etag": format!("W/\"{}\"", m.change_key()),
        "id": id,
        "createdDateTime": date(m.created),
        "lastModifiedDateTime": date(m.last_modified),
        "changeKey": m.change_key(),
        "categories": m.categories,
        "receivedDateTime": date(m.received),
        "sentDateTime": m.sent.map(date),
        "hasAttachments": m.has_attachments(),
        "internetMessageId": m.internet_message_id,
        "subject": m.subject,
        "bodyPreview": m.body_preview,
        "importance": m.importance,
        "parentFolderId": m.folder_id,
        "conversationId": m.conversation_id,
        "conversationIndex": base64::engine::general_purpose::STANDARD.encode(format!("{:022}", m.num)),
        "isDeliveryReceiptRequested": false,
        "isReadReceiptRequested": false,
        "isRead": m.is_read,
        "isDraft": m.is_draft,
        "webLink": format!("https://outlook.office365.com/owa/?ItemID={}&exvsurl=1&viewmodel=ReadMessageItem", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
        "inferenceClassification": "focused",
        "sender": m.from.as_ref().map(recipient),
        "from": m.from.as_ref().map(recipient),
        "toRecipients": m.to.iter().map(recipient).collect::<Vec<_>>(),
        "ccRecipients": m.cc.iter().map(recipient).collect::<Vec<_>>(),
        "bccRecipients": m.bcc.iter().map(recipient).collect::<Vec<_>>(),
        "replyTo": m.reply_to.iter().map(recipient).collect::<Vec<_>>(),
        "flag": {"flagStatus": m.flag_status},
    });
    if with_body {
        let (kind, content) = m.body();
        let (kind, content) = if ctx.body_as_text && kind == "html" {
            ("text".to_string(), strip_html(&content))
        } else {
            (kind, content)
        };
        v["body"] = json!({"contentType": kind, "content": content});
    }
    if with_headers {
        v["internetMessageHeaders"] = m
            .headers
            .iter()
            .map(|(n, val)| json!({"name": n, "value": val}))
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// A message shaped by `$select` (`id` and `@odata.etag` always present).
pub fn shaped_message(m: &Message, ctx: &Ctx, selected: Option<&[String]>) -> Value {
    let wants = |p: &str| selected.is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case(p)));
    let with_headers = selected.is_some_and(|s| {
        s.iter()
            .any(|x| x.eq_ignore_ascii_case("internetMessageHeaders"))
    });
    project(message_json(m, ctx, wants("body"), with_headers), selected)
}

/// One comparison of a message-list `$filter`.
#[derive(Debug)]
enum MessageClause {
    IsRead(bool),
    Received(std::cmp::Ordering, bool, i64),
    HasAttachments(bool),
}

impl MessageClause {
    fn matches(&self, m: &Message) -> bool {
        match self {
            MessageClause::IsRead(v) => m.is_read == *v,
            MessageClause::HasAttachments(v) => m.has_attachments() == *v,
            MessageClause::Received(ordering, or_equal, t) => {
                let c = m.received.timestamp().cmp(t);
                c == *ordering || (*or_equal && c == std::cmp::Ordering::Equal)
            }
        }
    }
}

/// `$filter` for message lists: `and` of `isRead eq`, `hasAttachments eq`, and
/// `receivedDateTime ge|gt|le|lt` comparisons.
fn message_filter(filter: &str) -> Result<Vec<MessageClause>, GraphError> {
    let invalid = || GraphError::bad_request(format!("Invalid filter clause: {filter}"));
    filter
        .split(" and ")
        .map(|clause| {
            let parts: Vec<&str> = clause.split_whitespace().collect();
            let [prop, op, value] = parts.as_slice() else {
                return Err(invalid());
            };
            match (*prop, *op) {
                ("isRead", "eq") => value
                    .parse()
                    .map(MessageClause::IsRead)
                    .map_err(|_| invalid()),
                ("hasAttachments", "eq") => value
                    .parse()
                    .map(MessageClause::HasAttachments)
                    .map_err(|_| invalid()),
                ("receivedDateTime", op) => {
                    let t = chrono::DateTime::parse_from_rfc3339(value)
                        .map_err(|_| invalid())?
                        .timestamp();
                    let (ordering, or_equal) = match op {
                        "ge" => (std::cmp::Ordering::Greater, true),
                        "gt" => (std::cmp::Ordering::Greater, false),
                        "le" => (std::cmp::Ordering::Less, true),
                        "lt" => (std::cmp::Ordering::Less, false),
                        _ => return Err(invalid()),
                    };
                    Ok(MessageClause::Received(ordering, or_equal, t))
                }
                _ => Err(invalid()),
            }
        })
        .collect()
}

fn list_messages(
    ctx: &Ctx,
    user_id: &str,
    mb: &Mailbox,
    folder: Option<&Folder>,
    q: &HashMap<String, String>,
) -> Result<Response, GraphError> {
    let selected = select(q, &MESSAGE_PROPERTIES, "message")?;
    let page = top(q, 10, 1000)?;
    let skip: usize = q.get("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let filter = q
        .get("$filter")
        .map(|f| message_filter(f))
        .transpose()?
        .unwrap_or_default();
    let mut all: Vec<&Message> = match folder {
        Some(f) => mb.folder_messages(&f.id).collect(),
        None => mb.messages.values().collect(),
    };
    all.retain(|m| filter.iter().all(|clause| clause.matches(m)));
    all.sort_by(|a, b| b.received.cmp(&a.received).then(b.num.cmp(&a.num)));
    match q.get("$orderby").map(|o| o.trim().to_ascii_lowercase()) {
        None => {}
        Some(o) if o == "receiveddatetime desc" => {}
        Some(o) if o == "receiveddatetime asc" || o == "receiveddatetime" => all.reverse(),
        Some(o) => {
            return Err(GraphError::bad_request(format!(
                "The $orderby '{o}' is not supported by the emulator."
            )))
        }
    }
    let value: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(page)
        .map(|m| shaped_message(m, ctx, selected.as_deref()))
        .collect();
    let path = match folder {
        Some(f) => format!("users/{user_id}/mailFolders/{}/messages", f.id),
        None => format!("users/{user_id}/messages"),
    };
    let next = (skip + page < all.len()).then(|| {
        let mut link = format!("{}/{path}?$top={page}&$skip={}", ctx.base, skip + page);
        for key in ["$select", "$filter", "$orderby"] {
            if let Some(v) = q.get(key) {
                let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                link.push_str(&format!("&{key}={encoded}"));
            }
        }
        link
    });
    let context = match (&selected, folder) {
        (Some(sel), Some(f)) => format!(
            "users('{user_id}')/mailFolders('{}')/messages({})",
            f.id,
            sel.join(",")
        ),
        (None, Some(f)) => format!("users('{user_id}')/mailFolders('{}')/messages", f.id),
        (Some(sel), None) => format!("users('{user_id}')/messages({})", sel.join(",")),
        (None, None) => format!("users('{user_id}')/messages"),
    };
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context(&context), value, next, None),
    ))
}

pub async fn list_folder_messages(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    let folder = named_folder(mb, &p)?;
    list_messages(&ctx, &user.id, mb, Some(folder), &q)
}

pub async fn list_all_messages(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    list_messages(&ctx, &user.id, mb, None, &q)
}

/// Finds the message a route names (optionally inside the named folder).
pub fn find_message<'a>(
    mb: &'a Mailbox,
    p: &HashMap<String, String>,
) -> Result<&'a Message, GraphError> {
    let id = p.get("message").map(String::as_str).unwrap_or("");
    let m = mb
        .message_num(id)
        .and_then(|n| mb.messages.get(&n))
        .ok_or_else(GraphError::item_not_found)?;
    if let Some(folder) = p.get("folder") {
        if mb.folder(folder).is_none_or(|f| f.id != m.folder_id) {
            return Err(GraphError::item_not_found());
        }
    }
    Ok(m)
}

/// A clone of the message, so MIME can be built without holding the tenant lock.
pub(super) fn message_snapshot(
    shared: &AppState,
    ctx: &Ctx,
    p: &HashMap<String, String>,
) -> Result<(String, Message), GraphError> {
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, ctx, &user_of(p))?;
    Ok((user.id.clone(), find_message(mb, p)?.clone()))
}

pub async fn get_message(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    let selected = select(&q, &MESSAGE_PROPERTIES, "message")?;
    let needs_content = selected.as_ref().is_none_or(|s| {
        s.iter()
            .any(|f| f.eq_ignore_ascii_case("body") || f.eq_ignore_ascii_case("uniqueBody"))
    });
    ctx.require(if needs_content {
        roles::READ_MAIL
    } else {
        roles::READ_MAIL_BASIC
    })?;
    let (user_id, m) = message_snapshot(&shared, &ctx, &p)?;
    let mut v = shaped_message(&m, &ctx, selected.as_deref());
    if q.get("$expand")
        .is_some_and(|e| e.eq_ignore_ascii_case("attachments"))
    {
        v["attachments"] = m
            .attachments
            .iter()
            .map(|a| attachment_json(&m, a, true))
            .collect::<Vec<_>>()
            .into();
    }
    v["@odata.context"] = match &selected {
        Some(sel) => ctx.context(&format!(
            "users('{user_id}')/messages({})/$entity",
            sel.join(",")
        )),
        None => ctx.context(&format!("users('{user_id}')/messages/$entity")),
    }
    .into();
    Ok(json(StatusCode::OK, &v))
}

/// `$value`: the MIME, byte for byte.
pub async fn message_value(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL)?;
    let (_, m) = message_snapshot(&shared, &ctx, &p)?;
    let bytes = tokio::task::spawn_blocking(move || m.mime_bytes())
        .await
        .map_err(|_| GraphError::bad_request("MIME generation failed"))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        bytes,
    )
        .into_response())
}

/// `POST /users/{id}/translateExchangeIds`: converts between `restId` and
/// `restImmutableEntryId` (at most 1,000 ids; unknown ids are left out of the result).
pub async fn translate_exchange_ids(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    body: bytes::Bytes,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| GraphError::bad_request("Invalid JSON body."))?;
    let inputs = v["inputIds"]
        .as_array()
        .ok_or_else(|| GraphError::bad_request("inputIds is required."))?;
    if inputs.len() > 1000 {
        return Err(GraphError::bad_request(
            "At most 1000 ids can be translated at once.",
        ));
    }
    let to_immutable = match v["targetIdType"].as_str() {
        Some("restImmutableEntryId") => true,
        Some("restId") => false,
        other => {
            return Err(GraphError::not_implemented(format!(
                "targetIdType {other:?} is not supported by the emulator (restId, restImmutableEntryId)."
            )))
        }
    };
    let t = shared.tenant();
    let (_, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    let value: Vec<Value> = inputs
        .iter()
        .filter_map(|id| id.as_str())
        .filter_map(|id| {
            let m = mb.messages.get(&mb.message_num(id)?)?;
            let target = if to_immutable {
                &m.immutable_id
            } else {
                &m.rest_id
            };
            Some(json!({"sourceId": id, "targetId": target}))
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &collection(
            ctx.context("Collection(microsoft.graph.convertIdResult)"),
            value,
            None,
            None,
        ),
    ))
}
