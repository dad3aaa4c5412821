//! JSON batching: `POST /$batch` with up to 20 requests. Each item runs through the full Graph
//! pipeline (so it is authenticated, counted and throttled on its own), up to four at a time,
//! honouring `dependsOn` (424 when a dependency failed). Responses come back in completion
//! order; binary bodies are base64.

use super::{json, Ctx};
use crate::error::GraphError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::Engine as _;
use bytes::Bytes;
use futures::future::join_all;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use tower::ServiceExt as _;

pub const MAX_REQUESTS: usize = 20;
/// Graph dispatches at most four requests of a batch at once.
const PARALLEL: usize = 4;

#[derive(Debug, Clone)]
struct Item {
    id: String,
    method: Method,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn parse(v: &Value) -> Result<Vec<Item>, GraphError> {
    let requests = v["requests"].as_array().ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        )
    })?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", format!("Invalid batch payload format: the number of requests must be between 1 and {MAX_REQUESTS}.")));
    }
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for r in requests {
        let id = match &r["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Every batch request needs an id.",
                ))
            }
        };
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Batch request ids must be unique; '{id}' is repeated."),
            ));
        }
        let method = r["method"]
            .as_str()
            .and_then(|m| m.to_ascii_uppercase().parse::<Method>().ok())
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Request '{id}' has no valid method."),
                )
            })?;
        let url = r["url"]
            .as_str()
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Request '{id}' has no url."),
                )
            })?
            .to_string();
        let headers = r["headers"].as_object().cloned().unwrap_or_default();
        let body = r.get("body").filter(|b| !b.is_null()).cloned();
        if body.is_some()
            && !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Request '{id}' has a body but no Content-Type header."),
            ));
        }
        let depends_on = r["dependsOn"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
        });
    }
    let ids: HashSet<String> = items.iter().map(|i| i.id.to_ascii_lowercase()).collect();
    if let Some(bad) = items.iter().find(|i| {
        i.depends_on
            .iter()
            .any(|d| !ids.contains(&d.to_ascii_lowercase()))
    }) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Request '{}' depends on an unknown request id.", bad.id),
        ));
    }
    Ok(items)
}

pub async fn batch(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GraphError> {
    let v: Value = serde_json::from_slice(&body).map_err(|_| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        )
    })?;
    let items = parse(&v)?;
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let prefix = if ctx.base.ends_with("/beta") {
        "/beta"
    } else {
        "/v1.0"
    };
    let app = crate::server::app(shared.clone());
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut pending: Vec<Item> = items;
    let mut responses = Vec::new();
    while !pending.is_empty() {
        // Items whose dependencies all finished run now, at most four at a time.
        let (ready, waiting): (Vec<Item>, Vec<Item>) = pending.into_iter().partition(|i| {
            i.depends_on
                .iter()
                .all(|d| statuses.contains_key(&d.to_ascii_lowercase()))
        });
        pending = waiting;
        if ready.is_empty() {
            // A dependency cycle: fail what is left.
            for item in pending.drain(..) {
                responses.push(failed_dependency(&item.id));
            }
            break;
        }
        for chunk in ready.chunks(PARALLEL) {
            let runs = chunk.iter().map(|item| {
                let failed = item.depends_on.iter().any(|d| {
                    statuses
                        .get(&d.to_ascii_lowercase())
                        .is_some_and(|s| !(200..300).contains(s))
                });
                let app = app.clone();
                let authorization = authorization.clone();
                async move {
                    if failed {
                        return (item.id.clone(), 424, failed_dependency(&item.id));
                    }
                    let (status, out) = run(app, prefix, item, authorization).await;
                    (item.id.clone(), status, out)
                }
            });
            for (id, status, out) in join_all(runs).await {
                statuses.insert(id.to_ascii_lowercase(), status);
                responses.push(out);
            }
        }
    }
    Ok(json(StatusCode::OK, &json!({"responses": responses})))
}

fn failed_dependency(id: &str) -> Value {
    json!({"id": id, "status": 424, "body": {"error": {"code": "FailedDependency", "message": "The request could not be processed because a request it depends on failed."}}})
}

async fn run(
    app: axum::Router,
    prefix: &str,
    item: &Item,
    authorization: Option<axum::http::HeaderValue>,
) -> (u16, Value) {
    let path = if item.url.starts_with('/') {
        item.url.clone()
    } else {
        format!("/{}", item.url)
    };
    let mut builder = Request::builder()
        .method(item.method.clone())
        .uri(format!("{prefix}{}", path.replace(' ', "%20")));
    if let Some(auth) = authorization {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    for (k, v) in &item.headers {
        if let Some(s) = v.as_str() {
            builder = builder.header(k.as_str(), s);
        }
    }
    let body = match &item.body {
        None => Body::empty(),
        Some(Value::String(s)) => Body::from(s.clone()),
        Some(other) => Body::from(other.to_string()),
    };
    let Ok(request) = builder.body(body) else {
        return (
            400,
            json!({"id": item.id, "status": 400, "body": {"error": {"code": "BadRequest", "message": "Invalid request in batch."}}}),
        );
    };
    let Ok(response) = app.oneshot(request).await;
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for name in [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.as_str().to_string(), v.into());
        }
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut out = json!({"id": item.id, "status": status, "headers": headers});
    if !bytes.is_empty() {
        out["body"] = if is_json {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else {
            base64::engine::general_purpose::STANDARD
                .encode(&bytes)
                .into()
        };
    }
    (status, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicate_ids_case_insensitively_and_oversized_batches() {
        let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]});
        assert!(parse(&dup).is_err());
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
            .collect();
        assert!(parse(&json!({"requests": many})).is_err());
        let body_without_type =
            json!({"requests": [{"id": "1", "method": "POST", "url": "/x", "body": {"a": 1}}]});
        assert!(parse(&body_without_type).is_err());
        let ok = json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]}]});
        assert_eq!(parse(&ok).unwrap().len(), 2);
    }
}
