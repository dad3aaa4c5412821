//! The Graph HTTP pipeline: base URL, bearer token, `client-request-id`, `Prefer` headers,
//! the per-mailbox governor, retries, and error envelopes turned into [`GraphError`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use crate::auth::{Cloud, TokenSource};
use crate::error::{ErrorCode, GraphError, ServiceError};
use crate::governor::{parse_retry_after, Backoff, Governor, GovernorConfig, Lane, Permit};

/// JSON bodies (pages, entities, batch responses) above this are refused, not buffered.
const JSON_LIMIT: usize = 64 * 1024 * 1024;

/// The one HTTP client configuration: no redirects (a token or Graph redirect is never
/// followed with credentials), bounded connect and read stalls, but no total timeout (a large
/// MIME body may legitimately stream for minutes).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("Strongroom/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static HTTP client configuration")
}

/// Tunables of a [`GraphClient`].
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub governor: GovernorConfig,
    pub backoff: Backoff,
}

/// A Microsoft Graph v1.0 client. Cheap to clone; clones share the token cache and governor.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    tokens: Arc<dyn TokenSource>,
    governor: Governor,
    backoff: Backoff,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// One logical request; retried attempts are built from it again.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub lane: Lane,
    pub prefer: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<CallBody>,
    /// Governor weight: concurrency slots held and budget tokens spent (1 and 1 except for
    /// `$batch`).
    pub slots: u32,
    pub cost: u32,
    /// Send no bearer token (pre-authenticated upload URLs on another host).
    pub anonymous: bool,
    /// Safe to send again after a failure the service may have acted on (GET, PUT, DELETE,
    /// and `$batch`es of reads).
    pub idempotent: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum CallBody {
    Json(serde_json::Value),
    /// Sent as `text/plain` (base64 MIME for message creation).
    Text(String),
    /// Sent as `application/octet-stream` (upload-session chunks).
    Bytes(Bytes),
}

impl Call {
    pub fn get(url: Url, lane: Lane) -> Call {
        Call {
            method: Method::GET,
            url,
            lane,
            prefer: Vec::new(),
            headers: Vec::new(),
            body: None,
            slots: 1,
            cost: 1,
            anonymous: false,
            idempotent: true,
        }
    }

    /// A POST creates something: not repeated after a 5xx or a broken connection, where the
    /// service may have acted (a `$batch` of GETs sets `idempotent` back itself).
    pub fn post_json(url: Url, lane: Lane, body: serde_json::Value) -> Call {
        Call {
            method: Method::POST,
            body: Some(CallBody::Json(body)),
            idempotent: false,
            ..Call::get(url, lane)
        }
    }

    pub fn with_method(mut self, method: Method) -> Call {
        self.idempotent = !matches!(method, Method::POST | Method::PATCH);
        self.method = method;
        self
    }

    pub fn prefer(mut self, preference: impl Into<String>) -> Call {
        self.prefer.push(preference.into());
        self
    }

    /// The next request of a paged or delta sequence: the link verbatim, same lane and
    /// `Prefer` headers (preferences apply per request and must be sent every time).
    pub fn follow(&self, link: &str) -> Result<Call, GraphError> {
        let url = Url::parse(link)
            .map_err(|e| GraphError::Decode(format!("paging link is not an absolute URL: {e}")))?;
        Ok(Call {
            url,
            body: None,
            method: Method::GET,
            ..self.clone()
        })
    }
}

/// What to do about an error response.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// 401 InvalidAuthenticationToken, first time: get a new token and resend at once.
    Reauthenticate,
    /// 429/503 with Retry-After: every request to the lane waits that long.
    Fence(Duration),
    /// 429 without Retry-After: the lane waits a backoff delay.
    FenceWithBackoff,
    /// Transient server failure: this request waits a backoff delay.
    Backoff,
    /// Not worth retrying: the caller gets the error.
    Fail,
}

/// `idempotent`: sending the request twice does no harm. A request that is not (creating a
/// message) is repeated only when the service certainly did not act on it: throttled (429,
/// 503) or never delivered (connect error); a 500/502/504 may have been processed.
fn next_step(error: &ServiceError, reauthenticated: bool, idempotent: bool) -> Step {
    match (error.status, error.retry_after) {
        (401, _) if error.code == ErrorCode::InvalidAuthenticationToken && !reauthenticated => {
            Step::Reauthenticate
        }
        (429 | 503, Some(wait)) => Step::Fence(wait),
        (429, None) => Step::FenceWithBackoff,
        (503, None) => Step::Backoff,
        (500 | 502 | 504 | 509, _) if idempotent => Step::Backoff,
        _ => Step::Fail,
    }
}

enum Next {
    /// The lane's fence already holds the wait.
    Fenced(String),
    Backoff(String),
}

impl GraphClient {
    pub fn new(cloud: &Cloud, tokens: impl TokenSource) -> GraphClient {
        GraphClient::with_options(cloud, tokens, ClientOptions::default())
    }

    pub fn with_options(
        cloud: &Cloud,
        tokens: impl TokenSource,
        options: ClientOptions,
    ) -> GraphClient {
        GraphClient {
            inner: Arc::new(Inner {
                http: http_client(),
                base: cloud.graph_v1(),
                tokens: Arc::new(tokens),
                governor: Governor::new(options.governor),
                backoff: options.backoff,
            }),
        }
    }

    /// The governor shared by every request of this client.
    pub fn governor(&self) -> &Governor {
        &self.inner.governor
    }

    /// The retry policy, for callers that restart a broken body stream themselves.
    pub fn backoff(&self) -> &Backoff {
        &self.inner.backoff
    }

    /// `{graph}/v1.0/` followed by `segments`, each percent-encoded as one path segment.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http base URL");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// A URL relative to `{graph}/v1.0/` as `$batch` items name them (`/users/{id}/...`).
    pub(crate) fn relative(&self, url: &Url) -> String {
        let base = self.inner.base.as_str();
        let full = url.as_str();
        match full.strip_prefix(base) {
            Some(rest) => format!("/{rest}"),
            None => full.to_owned(),
        }
    }

    /// GET a JSON resource by path relative to `/v1.0/` (e.g. `organization`), for calls this
    /// crate has no typed method for yet.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &[&str],
        lane: &Lane,
    ) -> Result<T, GraphError> {
        self.json(&Call::get(self.url(path), lane.clone())).await
    }

    /// Send until a success status arrives or retrying is pointless. The permit stays with
    /// the response: a streaming body still counts as in flight.
    pub(crate) async fn send(
        &self,
        call: &Call,
    ) -> Result<(reqwest::Response, Permit), GraphError> {
        let i = &self.inner;
        let client_request_id = Uuid::new_v4().to_string();
        // Transient failures, counted against `max_attempts`; throttling refusals are
        // counted apart and limited by time (`max_throttled`).
        let mut attempt: u32 = 0;
        let mut refusals: u32 = 0;
        let mut first_refused: Option<tokio::time::Instant> = None;
        let mut reauthenticated = false;
        loop {
            let permit = i
                .governor
                .acquire_weighted(&call.lane, call.slots, call.cost)
                .await;
            let mut req = i
                .http
                .request(call.method.clone(), call.url.clone())
                .header("client-request-id", &client_request_id);
            if !call.anonymous {
                req = req.bearer_auth(i.tokens.access_token().await?.secret());
            }
            if !call.prefer.is_empty() {
                req = req.header("Prefer", call.prefer.join(", "));
            }
            for (name, value) in &call.headers {
                req = req.header(*name, value);
            }
            match &call.body {
                Some(CallBody::Json(v)) => req = req.json(v),
                Some(CallBody::Text(t)) => {
                    req = req.header("Content-Type", "text/plain").body(t.clone());
                }
                Some(CallBody::Bytes(b)) => {
                    req = req
                        .header("Content-Type", "application/octet-stream")
                        .body(b.clone());
                }
                None => {}
            }
            let next = match req.send().await {
                // Strip the URL: a pre-authenticated upload URL carries a credential.
                Err(e) if call.idempotent || e.is_connect() => {
                    drop(permit); // never hold a mailbox slot while backing off
                    Next::Backoff(format!("{}: {}", call.method, e.without_url()))
                }
                Err(e) => return Err(GraphError::Transport(e.without_url().to_string())),
                Ok(resp) if resp.status().is_success() => return Ok((resp, permit)),
                Ok(resp) => {
                    let status = resp.status();
                    let error = read_error(resp).await;
                    drop(permit);
                    tracing::debug!(
                        status = status.as_u16(),
                        code = error.code.as_str(),
                        request_id = error.request_id.as_deref().unwrap_or(""),
                        "Graph request failed"
                    );
                    match next_step(&error, reauthenticated, call.idempotent) {
                        Step::Reauthenticate => {
                            i.tokens.invalidate();
                            reauthenticated = true;
                            continue;
                        }
                        Step::Fence(wait) => {
                            i.governor.fence(&call.lane, wait);
                            Next::Fenced(error.to_string())
                        }
                        Step::FenceWithBackoff => {
                            // No Retry-After: back the whole mailbox off, not just this request.
                            i.governor.fence(&call.lane, i.backoff.delay(refusals));
                            Next::Fenced(error.to_string())
                        }
                        Step::Backoff => Next::Backoff(error.to_string()),
                        Step::Fail => return Err(GraphError::Service(error)),
                    }
                }
            };
            match next {
                Next::Fenced(last) => {
                    refusals += 1;
                    let since = *first_refused.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= i.backoff.max_throttled {
                        return Err(GraphError::RetriesExhausted {
                            attempts: attempt + refusals,
                            last,
                        });
                    }
                }
                Next::Backoff(last) => {
                    attempt += 1;
                    if attempt >= i.backoff.max_attempts {
                        return Err(GraphError::RetriesExhausted {
                            attempts: attempt + refusals,
                            last,
                        });
                    }
                    i.governor
                        .back_off(&call.lane, i.backoff.delay(attempt - 1))
                        .await;
                }
            }
        }
    }

    /// The whole body, at most `limit` bytes. A body cut short (connection reset, truncated
    /// transfer) is requested again.
    pub(crate) async fn bytes(
        &self,
        call: &Call,
        limit: usize,
    ) -> Result<(HeaderMap, Bytes), GraphError> {
        let mut attempt: u32 = 0;
        loop {
            let (mut resp, permit) = self.send(call).await?;
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            let outcome = loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > limit {
                            return Err(GraphError::TooLarge { limit });
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            drop(permit);
            match outcome {
                Ok(()) => return Ok((headers, Bytes::from(body))),
                Err(e) if !call.idempotent => {
                    // The service acted on the request; sending it again could duplicate it.
                    return Err(GraphError::Transport(format!(
                        "response body interrupted: {}",
                        e.without_url()
                    )));
                }
                Err(e) => {
                    attempt += 1;
                    if attempt >= self.inner.backoff.max_attempts {
                        return Err(GraphError::RetriesExhausted {
                            attempts: attempt,
                            last: format!("body interrupted: {}", e.without_url()),
                        });
                    }
                    tracing::debug!(
                        attempt,
                        "response body interrupted, retrying: {}",
                        e.without_url()
                    );
                    self.inner
                        .governor
                        .back_off(&call.lane, self.inner.backoff.delay(attempt - 1))
                        .await;
                }
            }
        }
    }

    /// A JSON body. A body that ends mid-document without a transport error (a proxy cut it
    /// short) is requested again too.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, GraphError> {
        let mut attempt: u32 = 0;
        loop {
            let (_, body) = self.bytes(call, JSON_LIMIT).await?;
            match serde_json::from_slice::<T>(&body) {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.is_eof()
                        && call.idempotent
                        && attempt + 1 < self.inner.backoff.max_attempts =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, "truncated JSON body, retrying");
                    self.inner
                        .governor
                        .back_off(&call.lane, self.inner.backoff.delay(attempt - 1))
                        .await;
                }
                Err(e) => return Err(GraphError::Decode(format!("{}: {e}", call.url.path()))),
            }
        }
    }

    /// The body as a stream of chunks, holding the governor permit until it ends or is
    /// dropped. Failures after the headers surface as stream errors (the caller restarts).
    pub(crate) async fn stream(&self, call: &Call) -> Result<BodyStream, GraphError> {
        let (resp, permit) = self.send(call).await?;
        let length = resp.content_length();
        let inner = resp
            .bytes_stream()
            .map(|r| {
                r.map_err(|e| {
                    GraphError::Transport(format!("body interrupted: {}", e.without_url()))
                })
            })
            .boxed();
        Ok(BodyStream {
            inner,
            length,
            _permit: permit,
        })
    }
}

/// A response body streamed chunk by chunk.
pub struct BodyStream {
    inner: BoxStream<'static, Result<Bytes, GraphError>>,
    length: Option<u64>,
    _permit: Permit,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// `Content-Length`, when the server sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, GraphError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

async fn read_error(resp: reqwest::Response) -> ServiceError {
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
    let request_id = header("request-id");
    // An error body that cannot be read still yields an error with the status.
    let body = resp.bytes().await.unwrap_or_default();
    let mut error = ServiceError::from_body(status.as_u16(), &body, request_id.as_deref());
    error.retry_after = retry_after;
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, name: &str, retry_after: Option<Duration>) -> ServiceError {
        let body = std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_default();
        ServiceError {
            retry_after,
            ..ServiceError::from_body(status, &body, None)
        }
    }

    fn next_step_i(e: &ServiceError, reauthenticated: bool) -> Step {
        next_step(e, reauthenticated, true)
    }

    #[test]
    fn a_json_post_is_not_idempotent() {
        let url = Url::parse("https://graph.microsoft.com/v1.0/users/u/messages").unwrap();
        let call = Call::post_json(url, Lane::mailbox("u"), serde_json::json!({}));
        assert!(
            !call.idempotent,
            "a retried create could duplicate a message"
        );
    }

    #[test]
    fn writes_are_repeated_only_when_the_service_did_not_act() {
        let wait = Duration::from_secs(1);
        let post = |status, ra| next_step(&error(status, "", ra), false, false);
        assert_eq!(post(429, Some(wait)), Step::Fence(wait));
        assert_eq!(post(429, None), Step::FenceWithBackoff);
        assert_eq!(post(503, Some(wait)), Step::Fence(wait));
        assert_eq!(post(503, None), Step::Backoff);
        for s in [500, 502, 504, 509] {
            assert_eq!(post(s, None), Step::Fail, "{s} may have created the item");
        }
    }

    #[test]
    fn which_failures_are_retried_and_how() {
        let wait = Duration::from_millis(2128);
        let ra = Some(wait);
        assert_eq!(
            next_step_i(&error(429, "error-429-throttled.json", ra), false),
            Step::Fence(wait)
        );
        assert_eq!(
            next_step_i(
                &error(429, "error-429-MailboxConcurrency.json", None),
                false
            ),
            Step::FenceWithBackoff
        );
        assert_eq!(next_step_i(&error(503, "", ra), false), Step::Fence(wait));
        assert_eq!(
            next_step_i(&error(503, "", None), false),
            Step::Backoff,
            "empty 503 body"
        );
        for s in [500, 502, 504, 509] {
            assert_eq!(
                next_step_i(&error(s, "", None), false),
                Step::Backoff,
                "{s}"
            );
        }
        let expired = error(401, "error-401-InvalidAuthenticationToken.json", None);
        assert_eq!(next_step_i(&expired, false), Step::Reauthenticate);
        assert_eq!(
            next_step_i(&expired, true),
            Step::Fail,
            "only one new token per request"
        );
        assert_eq!(
            next_step_i(
                &error(404, "error-404-MailboxNotEnabledForRESTAPI.json", None),
                false
            ),
            Step::Fail
        );
        assert_eq!(
            next_step_i(&error(410, "error-410-SyncStateNotFound.json", None), false),
            Step::Fail
        );
        assert_eq!(
            next_step_i(
                &error(
                    403,
                    "error-403-ErrorAccessDenied-appaccesspolicy.json",
                    None
                ),
                false
            ),
            Step::Fail
        );
        assert_eq!(
            next_step_i(&error(501, "error-501-notimplemented.json", None), false),
            Step::Fail
        );
    }
}
