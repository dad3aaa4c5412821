//! Reading folders: top level, childFolders, hidden folders and well-known names.

use super::{collection, json, named_folder, project, select, top, user_of, Ctx, Params, QueryMap};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{Folder, Mailbox, Message};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) const FOLDER_PROPERTIES: [&str; 8] = [
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
    "sizeInBytes",
];

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
    let folder = named_folder(mb, &p)?;
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
    let folder = named_folder(mb, &p)?;
    let selected = select(&q, &FOLDER_PROPERTIES, "mailFolder")?;
    let mut v = project(folder_json(mb, folder), selected.as_deref());
    v["@odata.context"] = ctx
        .context(&format!("users('{}')/mailFolders/$entity", user.id))
        .into();
    Ok(json(StatusCode::OK, &v))
}
