//! Helpers shared by the integration tests.

use m365_emulator::{Config, Emulator};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A running emulator with an HTTP client and an app-only token for the default app.
pub struct Env {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

impl Env {
    pub fn graph(&self) -> String {
        format!("{}/v1.0", self.emu.info().graph)
    }

    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.emu.info().authority,
            self.emu.info().tenant_id
        )
    }

    /// GET with the default token; returns status, headers and the body as JSON (Null if none).
    pub async fn get(&self, url: &str) -> (StatusCode, HeaderMap, Value) {
        self.get_with(url, &self.token, &[]).await
    }

    /// GET with the default token, without reading the body: for checks on the raw response
    /// or on the connection itself.
    pub async fn raw_get(&self, url: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .get(absolute(self, url))
            .bearer_auth(&self.token)
            .send()
            .await
    }

    pub async fn get_with(
        &self,
        url: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.http.get(absolute(self, url)).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        split(resp).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let resp = self
            .http
            .request(method, absolute(self, url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        split(resp).await
    }

    /// POST a `text/plain` body (base64 MIME, as Graph takes it) with the default token.
    pub async fn post_text(&self, url: &str, body: String) -> (StatusCode, HeaderMap, Value) {
        let resp = self
            .http
            .post(absolute(self, url))
            .bearer_auth(&self.token)
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
            .await
            .expect("request");
        split(resp).await
    }

    pub async fn bytes(&self, url: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .http
            .get(absolute(self, url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        (resp.status(), resp.bytes().await.expect("body").to_vec())
    }

    /// A control-API call (`/_emulator{path}`, no token) with an optional JSON body.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.emu.info().control));
        if let Some(body) = body {
            req = req.json(&body);
        }
        split(req.send().await.expect("control request")).await
    }

    /// As `control`, when only the status matters.
    pub async fn control_status(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> StatusCode {
        self.control(method, path, body).await.0
    }

    /// A snapshot of the mailbox of the user with this id.
    pub fn mailbox(&self, user_id: &str) -> m365_emulator::control::MailboxSnapshot {
        self.emu
            .tenant()
            .users
            .into_iter()
            .find(|u| u.id == user_id)
            .expect("user")
            .mailbox
            .expect("mailbox")
    }

    pub fn user(&self, kind: m365_emulator::UserKind) -> m365_emulator::control::UserSnapshot {
        self.emu
            .tenant()
            .users
            .into_iter()
            .find(|u| u.kind == kind)
            .expect("user of kind")
    }

    /// The first licensed user (not the admin) with messages.
    pub fn mailbox_user(&self) -> m365_emulator::control::UserSnapshot {
        self.emu
            .tenant()
            .users
            .into_iter()
            .filter(|u| u.kind == m365_emulator::UserKind::Licensed)
            .nth(1)
            .expect("licensed user")
    }
}

fn absolute(env: &Env, url: &str) -> String {
    if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", env.graph())
    }
}

pub async fn split(resp: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn start(config: Config) -> Env {
    let emu = Emulator::start(config).await.expect("emulator starts");
    let http = client();
    let info = emu.info().clone();
    let token = secret_token(
        &http,
        &info.authority,
        &info.tenant_id,
        &info.client_id,
        &info.client_secret,
    )
    .await;
    Env { emu, http, token }
}

/// A small tenant: eight users cover every kind.
pub async fn small() -> Env {
    start(Config {
        users: 8,
        messages_per_user: 15,
        seed: 11,
        ..Default::default()
    })
    .await
}

pub async fn secret_token(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let resp = http
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request");
    let (status, _, body) = split(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Follows @odata.nextLink to the end; returns all items and the final deltaLink, if any.
pub async fn all_pages(
    env: &Env,
    first: &str,
    headers: &[(&str, &str)],
) -> (Vec<Value>, Option<String>) {
    let mut items = Vec::new();
    let mut url = first.to_string();
    loop {
        let (status, _, body) = env.get_with(&url, &env.token, headers).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        items.extend(body["value"].as_array().cloned().unwrap_or_default());
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return (items, body["@odata.deltaLink"].as_str().map(str::to_string)),
        }
    }
}

/// Asserts the Graph error envelope: code, innerError with request-id equal to the header.
pub fn assert_graph_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    expected_status: u16,
    code: &str,
) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    if let Some(inner) = body["error"].get("innerError") {
        let rid = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .expect("request-id header");
        assert_eq!(inner["request-id"], rid);
        assert!(inner["date"].is_string());
    }
}
