//! Reading attachments: list (with `$select`), get with contentBytes, and `$value`.

use super::messages::{date, message_snapshot};
use super::{collection, json, project, select, Ctx, Params, QueryMap};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{AttachmentMeta, Message};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The OData path of a message's attachments collection, for `@odata.context`.
pub(super) fn attachments_path(user_id: &str, p: &HashMap<String, String>) -> String {
    let message = p.get("message").map(String::as_str).unwrap_or("");
    format!("users('{user_id}')/messages('{message}')/attachments")
}

/// The attachment a route's `{attachment}` names.
fn named_attachment<'a>(
    m: &'a Message,
    p: &HashMap<String, String>,
) -> Result<&'a AttachmentMeta, GraphError> {
    let id = p.get("attachment").map(String::as_str).unwrap_or("");
    m.attachments
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(GraphError::item_not_found)
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
    Ok(json(
        StatusCode::OK,
        &collection(
            ctx.context(&attachments_path(&user_id, &p)),
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
    let a = named_attachment(&m, &p)?;
    let mut v = attachment_json(&m, a, true);
    v["@odata.context"] = ctx
        .context(&format!("{}/$entity", attachments_path(&user_id, &p)))
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
    let a = named_attachment(&m, &p)?;
    let bytes = m
        .attachment_bytes(&a.id)
        .ok_or_else(GraphError::item_not_found)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, a.content_type.clone())],
        bytes,
    )
        .into_response())
}
