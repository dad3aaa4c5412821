//! Delta queries: per-folder messages/delta and mailFolders/delta, with `@removed` entries
//! and sync-state generations that expire.

use super::folders::{folder_json, FOLDER_PROPERTIES};
use super::messages::{shaped_message, MESSAGE_PROPERTIES};
use super::{
    collection, decode_token, encode_token, json, project, select, user_of, Ctx, Params, QueryMap,
};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{Change, Mailbox};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Only the newest three sync-state generations of a folder are kept (observed behaviour).
pub const KEPT_GENERATIONS: u64 = 3;

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

impl DeltaState {
    /// The page's `@odata.nextLink` (when `more`: the round continues after `last`) or its
    /// `@odata.deltaLink` (the next round starts where this one ended).
    fn links(
        &self,
        link: &str,
        more: bool,
        last: u64,
        remaining: Option<usize>,
    ) -> (Option<String>, Option<String>) {
        if more {
            let token = encode_token(&DeltaState {
                cursor: last,
                remaining,
                ..self.clone()
            });
            (Some(format!("{link}?$skiptoken={token}")), None)
        } else {
            let token = encode_token(&DeltaState {
                after: self.upto,
                upto: 0,
                cursor: 0,
                remaining: None,
                ..self.clone()
            });
            (None, Some(format!("{link}?$deltatoken={token}")))
        }
    }
}

/// One page of a delta round.
pub(super) struct ChangePage {
    pub value: Vec<Value>,
    /// Sequence number of the last change read (items skipped included).
    pub last: u64,
    /// Whether the round has more changes after this page.
    pub more: bool,
    /// What is left of the round's `$top` budget, if it has one.
    pub remaining: Option<usize>,
}

/// Reads changes in order, turning each into an item or skipping it (`None`), until the page
/// holds `page_size` items or the round's `remaining` budget is spent.
pub(super) fn change_page<'a>(
    changes: impl Iterator<Item = (u64, &'a Change)>,
    cursor: u64,
    page_size: usize,
    mut remaining: Option<usize>,
    mut item: impl FnMut(&'a Change) -> Option<Value>,
) -> ChangePage {
    let mut value = Vec::new();
    let mut last = cursor;
    let mut more = false;
    for (seq, change) in changes {
        if value.len() == page_size || remaining == Some(0) {
            more = remaining != Some(0);
            break;
        }
        last = seq;
        let Some(v) = item(change) else { continue };
        value.push(v);
        if let Some(r) = remaining.as_mut() {
            *r -= 1;
        }
    }
    ChangePage {
        value,
        last,
        more,
        remaining,
    }
}

/// The state a `$skiptoken` or `$deltatoken` carries, if its generation is still kept.
fn resume(token: &str, highest: u64) -> Result<DeltaState, GraphError> {
    let s: DeltaState = decode_token(token).ok_or_else(|| sync_state_not_found(0, highest))?;
    if s.generation + KEPT_GENERATIONS <= highest {
        return Err(sync_state_not_found(s.generation, highest));
    }
    Ok(s)
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
            resume(token, highest)?
        } else if let Some(token) = q.get("$deltatoken") {
            let s = resume(token, highest)?;
            if s.folder != folder_id {
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
    let page = change_page(
        folder.log.range(state.cursor, state.upto),
        state.cursor,
        page_size,
        state.remaining,
        |change| match change {
            Change::Upsert(num) => {
                let m = num.parse().ok().and_then(|n: u64| mb.messages.get(&n))?;
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
                    return None;
                }
                let mut v = shaped_message(m, &ctx, state.select.as_deref());
                if let Value::Object(map) = &mut v {
                    map.insert("@odata.type".into(), "#microsoft.graph.message".into());
                }
                Some(v)
            }
            Change::Removed(num) => {
                // An initial round lists what is there; removals only matter to a client that synced before.
                if state.after == 0 || state.change_type.as_deref().is_some_and(|c| c != "deleted")
                {
                    return None;
                }
                let (rest, immutable) = num
                    .parse()
                    .ok()
                    .and_then(|n: u64| mb.gone.get(&(folder_id.clone(), n)))?;
                let id = if ctx.immutable_ids { immutable } else { rest };
                Some(
                    json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}}),
                )
            }
        },
    );
    let link = format!(
        "{}/users/{user_id}/mailFolders/{folder_id}/messages/delta",
        ctx.base
    );
    let (next, delta) = state.links(&link, page.more, page.last, page.remaining);
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("Collection(message)"), page.value, next, delta),
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
        resume(token, highest)?
    } else if let Some(token) = q.get("$deltatoken") {
        let s = resume(token, highest)?;
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
    let page = change_page(
        mb.folder_log.range(state.cursor, state.upto),
        state.cursor,
        page_size,
        None,
        |change| match change {
            Change::Upsert(id) => {
                let f = mb.folder(id)?;
                if f.id == root || f.well_known == Some("recoverableitemsdeletions") {
                    return None;
                }
                let mut v = project(folder_json(mb, f), state.select.as_deref());
                if let Value::Object(map) = &mut v {
                    map.entry("@odata.type")
                        .or_insert("#microsoft.graph.mailFolder".into());
                }
                Some(v)
            }
            Change::Removed(id) if state.after > 0 => Some(
                json!({"@odata.type": "#microsoft.graph.mailFolder", "id": id, "@removed": {"reason": "deleted"}}),
            ),
            Change::Removed(_) => None,
        },
    );
    let link = format!("{}/users/{user_id}/mailFolders/delta", ctx.base);
    let (next, delta) = state.links(&link, page.more, page.last, state.remaining);
    Ok(json(
        StatusCode::OK,
        &collection(
            ctx.context("Collection(mailFolder)"),
            page.value,
            next,
            delta,
        ),
    ))
}
