//! Reading mail: folders (top level, childFolders, hidden folders, well-known names,
//! mailFolders/delta), messages (list, get, `$select`, `$value` byte for byte), per-folder
//! messages/delta with `@removed` and sync-state generations, and attachments.

use super::{collection, decode_token, encode_token, json, project, select, top, Ctx};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{AttachmentMeta, Change, Folder, Mailbox, Message, Recipient};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

type Params = Path<HashMap<String, String>>;
type QueryMap = Query<HashMap<String, String>>;

/// Only the newest three sync-state generations of a folder are kept (observed behaviour).
pub const KEPT_GENERATIONS: u64 = 3;

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
const FOLDER_PROPERTIES: [&str; 8] = [
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
    "sizeInBytes",
];

fn user_of(p: &HashMap<String, String>) -> String {
    p.get("user").cloned().unwrap_or_else(|| "me".into())
}

fn date(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn recipient(r: &Recipient) -> Value {
    json!({"emailAddress": {"name": r.name, "address": r.address}})
}

fn strip_html(html: &str) -> String {
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
    out.replace("&amp;", "&")
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

pub fn folder_json(mb: &Mailbox, f: &Folder) -> Value {
    let messages: Vec<&Message> = mb.folder_messages(&f.id).collect();
    let mut v = json!({
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "childFolderCount": mb.children(&f.id).count(),
        "unreadItemCount": messages.iter().filter(|m| !m.is_read).count(),
        "totalItemCount": messages.len(),
        "isHidden": f.is_hidden,
    });
    if let Some(q) = &f.search_query {
        let map = v.as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut with_type = serde_json::Map::new();
        with_type.insert(
            "@odata.type".into(),
            "#microsoft.graph.mailSearchFolder".into(),
        );
        with_type.extend(map);
        with_type.insert("isSupported".into(), true.into());
        with_type.insert("filterQuery".into(), q.clone().into());
        v = Value::Object(with_type);
    }
    v
}

/// Folders a plain listing shows: not the recoverable-items folder, hidden ones on request.
fn listable(f: &Folder, include_hidden: bool) -> bool {
    f.well_known != Some("recoverableitemsdeletions") && (include_hidden || !f.is_hidden)
}

fn folder_list(
    ctx: &Ctx,
    mb: &Mailbox,
    user_id: &str,
    parent: &Folder,
    q: &HashMap<String, String>,
    child_route: bool,
) -> Result<Response, GraphError> {
    let include_hidden = q
        .get("includeHiddenFolders")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let selected = select(q, &FOLDER_PROPERTIES, "mailFolder")?;
    let page = top(q, 10, 1000)?;
    let skip: usize = q.get("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let all: Vec<&Folder> = mb
        .children(&parent.id)
        .filter(|f| listable(f, include_hidden))
        .collect();
    let value: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(page)
        .map(|f| project(folder_json(mb, f), selected.as_deref()))
        .collect();
    let (path, context) = if child_route {
        (
            format!("users/{user_id}/mailFolders/{}/childFolders", parent.id),
            format!(
                "users('{user_id}')/mailFolders('{}')/childFolders",
                parent.id
            ),
        )
    } else {
        (
            format!("users/{user_id}/mailFolders"),
            format!("users('{user_id}')/mailFolders"),
        )
    };
    let next = (skip + page < all.len()).then(|| {
        let mut link = format!("{}/{path}?$top={page}&$skip={}", ctx.base, skip + page);
        if include_hidden {
            link.push_str("&includeHiddenFolders=true");
        }
        if let Some(s) = q.get("$select") {
            link.push_str(&format!("&$select={s}"));
        }
        link
    });
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context(&context), value, next, None),
    ))
}

pub async fn list_top_folders(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    folder_list(&ctx, mb, &user.id, &mb.folders[0], &q, false)
}

pub async fn list_child_folders(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    let folder = mb
        .folder(p.get("folder").map(String::as_str).unwrap_or(""))
        .ok_or_else(GraphError::item_not_found)?;
    folder_list(&ctx, mb, &user.id, folder, &q, true)
}

pub async fn get_folder(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    let folder = mb
        .folder(p.get("folder").map(String::as_str).unwrap_or(""))
        .ok_or_else(GraphError::item_not_found)?;
    let selected = select(&q, &FOLDER_PROPERTIES, "mailFolder")?;
    let mut v = project(folder_json(mb, folder), selected.as_deref());
    v["@odata.context"] = ctx
        .context(&format!("users('{}')/mailFolders/$entity", user.id))
        .into();
    Ok(json(StatusCode::OK, &v))
}

/// State carried by message and folder delta links.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeltaState {
    /// Folder id (messages delta) or empty (folders delta).
    folder: String,
    after: u64,
    upto: u64,
    cursor: u64,
    generation: u64,
    select: Option<Vec<String>>,
    change_type: Option<String>,
    /// `$top`: how many items the whole round may still return.
    remaining: Option<usize>,
    /// `receivedDateTime ge` filter (unix seconds).
    received_since: Option<i64>,
}

fn sync_state_not_found(generation: u64, highest: u64) -> GraphError {
    let kept: Vec<String> = (highest.saturating_sub(KEPT_GENERATIONS - 1)..=highest)
        .map(|g| format!("[{g}]"))
        .collect();
    GraphError::new(
        StatusCode::GONE,
        "SyncStateNotFound",
        format!("The sync state generation is not found; generation={generation};[highest={highest}]{}.", kept.join("")),
    )
}

/// Parses `receivedDateTime ge 2024-01-01T00:00:00Z`, the only filter message delta supports.
fn received_filter(q: &HashMap<String, String>) -> Result<Option<i64>, GraphError> {
    let Some(f) = q.get("$filter") else {
        return Ok(None);
    };
    let parts: Vec<&str> = f.split_whitespace().collect();
    match parts.as_slice() {
        ["receivedDateTime", "ge" | "gt", value] => chrono::DateTime::parse_from_rfc3339(value)
            .map(|d| Some(d.timestamp()))
            .map_err(|_| GraphError::bad_request(format!("Invalid filter clause: {f}"))),
        _ => Err(GraphError::bad_request(
            "The only supported filter for message delta is receivedDateTime ge {value}.",
        )),
    }
}

pub async fn messages_delta(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    // Starting a round bumps the folder's generation (write lock); the page is built under a
    // read lock so other mailboxes' requests are not held up.
    let (user_id, folder_id, state) = {
        let mut t = shared.tenant_mut();
        let (user_id, mb, _) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
        if mb.full {
            return Err(quota_exceeded());
        }
        let folder_key = p.get("folder").cloned().unwrap_or_default();
        let folder = mb.folder(&folder_key).ok_or_else(|| {
            GraphError::new(
                StatusCode::NOT_FOUND,
                "ErrorSyncFolderNotFound",
                "The sync folder was not found.",
            )
        })?;
        let folder_id = folder.id.clone();
        let highest = folder.generation;
        let current_seq = folder.log.last_seq();
        let state = if let Some(token) = q.get("$skiptoken") {
            let s: DeltaState =
                decode_token(token).ok_or_else(|| sync_state_not_found(0, highest))?;
            if s.generation + KEPT_GENERATIONS <= highest {
                return Err(sync_state_not_found(s.generation, highest));
            }
            s
        } else if let Some(token) = q.get("$deltatoken") {
            let s: DeltaState =
                decode_token(token).ok_or_else(|| sync_state_not_found(0, highest))?;
            if s.folder != folder_id || s.generation + KEPT_GENERATIONS <= highest {
                return Err(sync_state_not_found(s.generation, highest));
            }
            let generation = new_generation(mb, &folder_id);
            DeltaState {
                after: s.after,
                upto: current_seq,
                cursor: s.after,
                generation,
                ..s
            }
        } else {
            let selected = select(&q, &MESSAGE_PROPERTIES, "message")?;
            let change_type = q.get("changeType").cloned();
            let remaining = q
                .get("$top")
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| GraphError::bad_request("Invalid $top"))
                })
                .transpose()?;
            let received_since = received_filter(&q)?;
            let generation = new_generation(mb, &folder_id);
            DeltaState {
                folder: folder_id.clone(),
                after: 0,
                upto: current_seq,
                cursor: 0,
                generation,
                select: selected,
                change_type,
                remaining,
                received_since,
            }
        };
        (user_id, folder_id, state)
    };
    let t = shared.tenant();
    let (_, mb) = super::mailbox(&t, &ctx, &user_of(&p))?;
    let page_size = ctx.max_page_size.unwrap_or(10).clamp(1, 1000);
    let folder = mb
        .folder(&folder_id)
        .ok_or_else(GraphError::item_not_found)?;
    let mut value = Vec::new();
    let mut last = state.cursor;
    let mut more = false;
    let mut remaining = state.remaining;
    for (seq, change) in folder.log.range(state.cursor, state.upto) {
        if value.len() == page_size || remaining == Some(0) {
            more = remaining != Some(0);
            break;
        }
        last = seq;
        let item = match change {
            Change::Upsert(num) => {
                let Some(m) = num.parse().ok().and_then(|n: u64| mb.messages.get(&n)) else {
                    continue;
                };
                let created_in_round = m.created_seq > state.after;
                let wanted = match state.change_type.as_deref() {
                    Some("created") => created_in_round,
                    Some("updated") => !created_in_round,
                    Some("deleted") => false,
                    _ => true,
                };
                if !wanted
                    || state
                        .received_since
                        .is_some_and(|since| m.received.timestamp() < since)
                {
                    continue;
                }
                let mut v = shaped_message(m, &ctx, state.select.as_deref());
                if let Value::Object(map) = &mut v {
                    map.insert("@odata.type".into(), "#microsoft.graph.message".into());
                }
                v
            }
            Change::Removed(num) => {
                // An initial round lists what is there; removals only matter to a client that synced before.
                if state.after == 0 || state.change_type.as_deref().is_some_and(|c| c != "deleted")
                {
                    continue;
                }
                let Some((rest, immutable)) = num
                    .parse()
                    .ok()
                    .and_then(|n: u64| mb.gone.get(&(folder_id.clone(), n)))
                else {
                    continue;
                };
                let id = if ctx.immutable_ids { immutable } else { rest };
                json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}})
            }
        };
        value.push(item);
        if let Some(r) = remaining.as_mut() {
            *r -= 1;
        }
    }
    let link = format!(
        "{}/users/{user_id}/mailFolders/{folder_id}/messages/delta",
        ctx.base
    );
    let (next, delta) = if more {
        let token = encode_token(&DeltaState {
            cursor: last,
            remaining,
            ..state.clone()
        });
        (Some(format!("{link}?$skiptoken={token}")), None)
    } else {
        let token = encode_token(&DeltaState {
            after: state.upto,
            upto: 0,
            cursor: 0,
            remaining: None,
            ..state.clone()
        });
        (None, Some(format!("{link}?$deltatoken={token}")))
    };
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("Collection(message)"), value, next, delta),
    ))
}

/// Delta writes sync state into the mailbox, so a full mailbox refuses delta (plain reads work).
fn quota_exceeded() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "ErrorQuotaExceeded",
        "The mailbox has exceeded its quota; the sync state cannot be saved.",
    )
}

/// Starts a new sync round for a folder: bumps its generation and returns it.
fn new_generation(mb: &mut Mailbox, folder_id: &str) -> u64 {
    match mb.folder_mut(folder_id) {
        Some(f) => {
            f.generation += 1;
            f.generation
        }
        None => 0,
    }
}

pub async fn folders_delta(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL_BASIC)?;
    let mut t = shared.tenant_mut();
    let (user_id, mb, _) = super::mailbox_mut(&mut t, &ctx, &user_of(&p))?;
    if mb.full {
        return Err(quota_exceeded());
    }
    let highest = mb.folder_generation;
    let current_seq = mb.folder_log.last_seq();
    let state = if let Some(token) = q.get("$skiptoken") {
        let s: DeltaState = decode_token(token).ok_or_else(|| sync_state_not_found(0, highest))?;
        if s.generation + KEPT_GENERATIONS <= highest {
            return Err(sync_state_not_found(s.generation, highest));
        }
        s
    } else if let Some(token) = q.get("$deltatoken") {
        let s: DeltaState = decode_token(token).ok_or_else(|| sync_state_not_found(0, highest))?;
        if s.generation + KEPT_GENERATIONS <= highest {
            return Err(sync_state_not_found(s.generation, highest));
        }
        mb.folder_generation += 1;
        DeltaState {
            after: s.after,
            upto: current_seq,
            cursor: s.after,
            generation: mb.folder_generation,
            ..s
        }
    } else {
        mb.folder_generation += 1;
        DeltaState {
            folder: String::new(),
            after: 0,
            upto: current_seq,
            cursor: 0,
            generation: mb.folder_generation,
            select: select(&q, &FOLDER_PROPERTIES, "mailFolder")?,
            change_type: None,
            remaining: None,
            received_since: None,
        }
    };
    let page_size = ctx.max_page_size.unwrap_or(100).clamp(1, 1000);
    let root = mb.root_id().to_string();
    let mut value = Vec::new();
    let mut last = state.cursor;
    let mut more = false;
    for (seq, change) in mb.folder_log.range(state.cursor, state.upto) {
        if value.len() == page_size {
            more = true;
            break;
        }
        last = seq;
        match change {
            Change::Upsert(id) => {
                let Some(f) = mb.folder(id) else { continue };
                if f.id == root || f.well_known == Some("recoverableitemsdeletions") {
                    continue;
                }
                let mut v = project(folder_json(mb, f), state.select.as_deref());
                if let Value::Object(map) = &mut v {
                    map.entry("@odata.type")
                        .or_insert("#microsoft.graph.mailFolder".into());
                }
                value.push(v);
            }
            Change::Removed(id) if state.after > 0 => {
                value.push(json!({"@odata.type": "#microsoft.graph.mailFolder", "id": id, "@removed": {"reason": "deleted"}}));
            }
            Change::Removed(_) => {}
        }
    }
    let link = format!("{}/users/{user_id}/mailFolders/delta", ctx.base);
    let (next, delta) = if more {
        (
            Some(format!(
                "{link}?$skiptoken={}",
                encode_token(&DeltaState {
                    cursor: last,
                    ..state.clone()
                })
            )),
            None,
        )
    } else {
        (
            None,
            Some(format!(
                "{link}?$deltatoken={}",
                encode_token(&DeltaState {
                    after: state.upto,
                    upto: 0,
                    cursor: 0,
                    ..state.clone()
                })
            )),
        )
    };
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("Collection(mailFolder)"), value, next, delta),
    ))
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
    let folder = mb
        .folder(p.get("folder").map(String::as_str).unwrap_or(""))
        .ok_or_else(GraphError::item_not_found)?;
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
fn message_snapshot(
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

pub fn attachment_json(m: &Message, a: &AttachmentMeta, with_content: bool) -> Value {
    let mut v = json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "@odata.mediaContentType": a.content_type,
        "id": a.id,
        "lastModifiedDateTime": date(a.last_modified),
        "name": a.name,
        "contentType": a.content_type,
        "size": a.size,
        "isInline": a.is_inline,
        "contentId": a.content_id.as_deref().map(|c| c.trim_start_matches('<').trim_end_matches('>')),
        "contentLocation": null,
    });
    if with_content {
        let bytes = m.attachment_bytes(&a.id).unwrap_or_default();
        v["contentBytes"] = base64::engine::general_purpose::STANDARD
            .encode(&bytes)
            .into();
    }
    v
}

pub async fn list_attachments(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
    Query(q): QueryMap,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL)?;
    let (user_id, m) = message_snapshot(&shared, &ctx, &p)?;
    let known = [
        "id",
        "name",
        "contentType",
        "size",
        "isInline",
        "lastModifiedDateTime",
        "contentId",
        "contentLocation",
        "contentBytes",
    ];
    let selected = select(&q, &known, "attachment")?;
    let with_content = selected
        .as_ref()
        .is_none_or(|s| s.iter().any(|f| f == "contentBytes"));
    let value = tokio::task::spawn_blocking(move || {
        m.attachments
            .iter()
            .map(|a| project(attachment_json(&m, a, with_content), selected.as_deref()))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| GraphError::bad_request("attachment read failed"))?;
    let message = p.get("message").cloned().unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &collection(
            ctx.context(&format!(
                "users('{user_id}')/messages('{message}')/attachments"
            )),
            value,
            None,
            None,
        ),
    ))
}

pub async fn get_attachment(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL)?;
    let (user_id, m) = message_snapshot(&shared, &ctx, &p)?;
    let id = p.get("attachment").cloned().unwrap_or_default();
    let a = m
        .attachments
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(GraphError::item_not_found)?;
    let mut v = attachment_json(&m, a, true);
    let message = p.get("message").cloned().unwrap_or_default();
    v["@odata.context"] = ctx
        .context(&format!(
            "users('{user_id}')/messages('{message}')/attachments/$entity"
        ))
        .into();
    Ok(json(StatusCode::OK, &v))
}

pub async fn attachment_value(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(p): Params,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAIL)?;
    let (_, m) = message_snapshot(&shared, &ctx, &p)?;
    let id = p.get("attachment").cloned().unwrap_or_default();
    let a = m
        .attachments
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(GraphError::item_not_found)?
        .clone();
    let bytes = m
        .attachment_bytes(&id)
        .ok_or_else(GraphError::item_not_found)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, a.content_type)],
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
            return Err(GraphError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("targetIdType {other:?} is not supported by the emulator (restId, restImmutableEntryId)."),
            ))
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
