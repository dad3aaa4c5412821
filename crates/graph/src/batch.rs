//! JSON batching: `POST /$batch` with up to 20 requests, answered item by item.
//!
//! A batch's 200 says nothing about its items. Items throttled with 429 (each with its own
//! `Retry-After`) are sent again in a new batch after the longest wait, together with the
//! items that failed with 424 only because they depended on them. The batch holds the lane's
//! concurrency slots while it runs: Outlook runs up to 4 items at once and counts them
//! against the mailbox's limit.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::{Call, GraphClient};
use crate::error::{GraphError, ServiceError};
use crate::governor::{parse_retry_after, Lane};
use crate::mail::IMMUTABLE_IDS;

/// The service's limit on requests in one batch.
pub const MAX_BATCH: usize = 20;

/// One request inside a batch. `url` is relative to the version (`/users/{id}/...`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRequest {
    pub id: String,
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl BatchRequest {
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> BatchRequest {
        BatchRequest {
            id: id.into(),
            method: "GET".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            depends_on: Vec::new(),
        }
    }

    /// A request with a JSON body (`Content-Type` is required with a body).
    pub fn with_json(
        id: impl Into<String>,
        method: &str,
        url: impl Into<String>,
        body: serde_json::Value,
    ) -> BatchRequest {
        let mut r = BatchRequest::get(id, url);
        r.method = method.to_owned();
        r.headers
            .insert("Content-Type".into(), "application/json".into());
        r.body = Some(body);
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> BatchRequest {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Run only after `id` succeeded (otherwise this one gets 424).
    pub fn depends_on(mut self, id: &str) -> BatchRequest {
        self.depends_on.push(id.to_owned());
        self
    }
}

/// One answer inside a batch response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.header("Retry-After")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    }

    /// The body of a successful item.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        if let Some(e) = self.error() {
            return Err(GraphError::Service(e));
        }
        let body = self.body.clone().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(body)
            .map_err(|e| GraphError::Decode(format!("batch item {}: {e}", self.id)))
    }

    /// The item's error envelope, when its status is not a success.
    pub fn error(&self) -> Option<ServiceError> {
        if self.is_success() {
            return None;
        }
        let body = self
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let mut e = ServiceError::from_body(self.status, &body, self.header("request-id"));
        e.retry_after = self.retry_after();
        Some(e)
    }
}

#[derive(Serialize)]
struct BatchBody<'a> {
    requests: &'a [BatchRequest],
}

#[derive(Deserialize)]
struct BatchAnswer {
    responses: Vec<BatchResponse>,
}

/// Refuse what the service would refuse: empty or over 20, duplicate ids (ids are
/// case-insensitive), dependencies on ids not in the batch.
pub(crate) fn validate(requests: &[BatchRequest]) -> Result<(), GraphError> {
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(GraphError::InvalidRequest(format!(
            "a batch holds 1 to {MAX_BATCH} requests, not {}",
            requests.len()
        )));
    }
    let mut ids = HashSet::new();
    for r in requests {
        if !ids.insert(r.id.to_ascii_lowercase()) {
            return Err(GraphError::InvalidRequest(format!(
                "duplicate batch id {:?}",
                r.id
            )));
        }
    }
    for r in requests {
        if let Some(d) = r
            .depends_on
            .iter()
            .find(|d| !ids.contains(&d.to_ascii_lowercase()))
        {
            return Err(GraphError::InvalidRequest(format!(
                "{:?} depends on unknown id {d:?}",
                r.id
            )));
        }
    }
    Ok(())
}

/// Ids to send again: throttled items, then (transitively) items that failed with 424
/// because something they depend on is being sent again.
pub(crate) fn to_retry(requests: &[BatchRequest], answers: &[BatchResponse]) -> HashSet<String> {
    let status = |id: &str| {
        answers
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(id))
            .map(|a| a.status)
    };
    let mut retry: HashSet<String> = answers
        .iter()
        .filter(|a| a.status == 429 || (a.status == 503 && a.retry_after().is_some()))
        .map(|a| a.id.to_ascii_lowercase())
        .collect();
    loop {
        let more: Vec<String> = requests
            .iter()
            .filter(|r| !retry.contains(&r.id.to_ascii_lowercase()))
            .filter(|r| status(&r.id) == Some(424) || status(&r.id).is_none())
            .filter(|r| {
                r.depends_on
                    .iter()
                    .any(|d| retry.contains(&d.to_ascii_lowercase()))
            })
            .map(|r| r.id.to_ascii_lowercase())
            .collect();
        if more.is_empty() {
            return retry;
        }
        retry.extend(more);
    }
}

impl GraphClient {
    /// Send `requests` (1 to 20) as one `$batch` on `lane` (the mailbox they all address,
    /// or [`Lane::Tenant`]). Returns one response per request, in request order. Throttled
    /// items are retried; other failures are returned as items for the caller to inspect.
    /// Items without a `Prefer` header get `Prefer: IdType="ImmutableId"`.
    pub async fn batch(
        &self,
        lane: &Lane,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphError> {
        validate(&requests)?;
        // Immutable ids on every request, as everywhere else in this client.
        let requests: Vec<BatchRequest> = requests
            .into_iter()
            .map(|mut r| {
                if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("prefer")) {
                    r.headers.insert("Prefer".into(), IMMUTABLE_IDS.into());
                }
                r
            })
            .collect();
        let max_attempts = self.backoff().max_attempts;
        let mut done: BTreeMap<String, BatchResponse> = BTreeMap::new();
        let mut pending = requests.clone();
        for attempt in 0..max_attempts {
            let mut call = Call::post_json(
                self.url(&["$batch"]),
                lane.clone(),
                serde_json::to_value(BatchBody { requests: &pending }).expect("batch serialises"),
            );
            // A batch of reads may be sent again after any failure; one with writes may not.
            call.idempotent = pending.iter().all(|r| r.method.eq_ignore_ascii_case("GET"));
            call.slots = pending.len() as u32;
            call.cost = pending.len() as u32;
            let answer: BatchAnswer = self.json(&call).await?;
            let retry = if attempt + 1 < max_attempts {
                to_retry(&pending, &answer.responses)
            } else {
                HashSet::new()
            };
            let wait = answer
                .responses
                .iter()
                .filter(|a| retry.contains(&a.id.to_ascii_lowercase()))
                .filter_map(BatchResponse::retry_after)
                .max();
            for a in answer.responses {
                if !retry.contains(&a.id.to_ascii_lowercase()) {
                    done.insert(a.id.to_ascii_lowercase(), a);
                }
            }
            if retry.is_empty() {
                break;
            }
            let delay = wait.unwrap_or_else(|| self.backoff().delay(attempt));
            tracing::debug!(
                items = retry.len(),
                ?delay,
                "retrying throttled batch items"
            );
            self.governor().fence(lane, delay);
            pending = pending
                .into_iter()
                .filter(|r| retry.contains(&r.id.to_ascii_lowercase()))
                .map(|mut r| {
                    r.depends_on
                        .retain(|d| retry.contains(&d.to_ascii_lowercase()));
                    r
                })
                .collect();
        }
        requests
            .iter()
            .map(|r| {
                done.remove(&r.id.to_ascii_lowercase()).ok_or_else(|| {
                    GraphError::Decode(format!("batch response has no item for id {:?}", r.id))
                })
            })
            .collect()
    }

    /// A Graph URL in the relative form `$batch` items use, built from path segments
    /// (each percent-encoded), e.g. `["users", id, "messages", mid]`.
    pub fn batch_path(&self, segments: &[&str]) -> String {
        self.relative(&self.url(segments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::fixture;

    #[test]
    fn request_serialises_like_the_documented_example() {
        let reqs = vec![
            BatchRequest::get("1", "/me/drive/root:/{file}:/content"),
            BatchRequest::get("2", "/me/planner/tasks"),
            BatchRequest::get("3", "/groups/{id}/events"),
            BatchRequest::with_json("4", "PATCH", "/me", serde_json::json!({"city": "Redmond"})),
            BatchRequest::get(
                "5",
                "users?$select=id,displayName,userPrincipalName&$filter=city eq null&$count=true",
            )
            .header("ConsistencyLevel", "eventual"),
        ];
        let ours = serde_json::to_value(BatchBody { requests: &reqs }).unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&fixture("batch-request.json")).unwrap();
        assert_eq!(ours, doc);
    }

    #[test]
    fn response_items_decode_in_any_order() {
        let a: BatchAnswer = serde_json::from_slice(&fixture("batch-response.json")).unwrap();
        let by_id = |id: &str| a.responses.iter().find(|r| r.id == id).unwrap();
        assert_eq!(by_id("1").status, 302);
        assert!(by_id("1")
            .header("Location")
            .unwrap()
            .starts_with("https://"));
        let e = by_id("3").error().unwrap();
        assert_eq!(e.status, 401);
        assert_eq!(e.code.as_str(), "Forbidden");
        #[derive(Deserialize)]
        struct Users {
            value: Vec<serde_json::Value>,
        }
        assert_eq!(by_id("5").json::<Users>().unwrap().value.len(), 1);
        assert!(
            by_id("4").is_success() && by_id("4").body.is_none(),
            "204 with body null"
        );
        assert!(by_id("3").json::<Users>().is_err());
    }

    #[test]
    fn validation_refuses_what_the_service_refuses() {
        let many: Vec<_> = (0..21)
            .map(|i| BatchRequest::get(i.to_string(), "/me"))
            .collect();
        assert!(validate(&many).is_err());
        assert!(validate(&many[..20]).is_ok());
        assert!(validate(&[]).is_err());
        let dup = vec![BatchRequest::get("a", "/me"), BatchRequest::get("A", "/me")];
        assert!(validate(&dup).is_err(), "ids are case-insensitive");
        let dangling = vec![BatchRequest::get("a", "/me").depends_on("b")];
        assert!(validate(&dangling).is_err());
    }

    #[test]
    fn throttled_items_and_their_dependants_are_retried() {
        let reqs = vec![
            BatchRequest::get("1", "/a"),
            BatchRequest::get("2", "/b").depends_on("1"),
            BatchRequest::get("3", "/c").depends_on("2"),
            BatchRequest::get("4", "/d"),
            BatchRequest::get("5", "/e"),
        ];
        let answer = |id: &str, status: u16, ra: Option<&str>| BatchResponse {
            id: id.into(),
            status,
            headers: ra
                .map(|v| BTreeMap::from([("Retry-After".to_string(), v.to_string())]))
                .unwrap_or_default(),
            body: None,
        };
        let answers = vec![
            answer("1", 429, Some("1.5")),
            answer("2", 424, None),
            answer("3", 424, None),
            answer("4", 200, None),
            answer("5", 404, None),
        ];
        let retry = to_retry(&reqs, &answers);
        let mut got: Vec<_> = retry.into_iter().collect();
        got.sort();
        assert_eq!(got, vec!["1", "2", "3"]);
        assert_eq!(answers[0].retry_after(), Some(Duration::from_millis(1500)));
        assert!(to_retry(&reqs, &answers[3..]).is_empty());
    }
}
