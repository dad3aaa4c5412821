//! Identity platform, by flow: `credentials` (client credentials with a secret or certificate
//! assertion, Graph token validation, metadata), `authorize` (auth code + PKCE, response
//! modes, sessions, refresh tokens) and `provisioning` (admin consent, creating an app).
//! The helpers below drive the endpoints the way MSAL does.

mod authorize;
mod credentials;
mod provisioning;

use crate::common::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use m365_emulator::identity::jwt::{sign_with, Jwt};
use m365_emulator::{AppSpec, UserKind};
use reqwest::StatusCode;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Digest as _;
use std::time::Duration;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
}

fn key(name: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&fixture(name)).expect("PKCS#8 key")
}

fn cert_der() -> Vec<u8> {
    m365_emulator::identity::certificate::der_from_text(&fixture("app-cert.pem"))
        .expect("certificate")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A client assertion as MSAL builds it (PS256 + x5t#S256) or the legacy form (RS256 + x5t).
fn assertion(
    env: &Env,
    client_id: &str,
    alg: &str,
    signer: &RsaPrivateKey,
    claims_patch: Value,
) -> String {
    let der = cert_der();
    let header = if alg == "PS256" {
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der))})
    } else {
        json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der))})
    };
    let mut claims = json!({
        "aud": env.token_url(),
        "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now(), "iat": now(), "exp": now() + 600,
    });
    if let (Value::Object(c), Value::Object(p)) = (&mut claims, claims_patch) {
        c.extend(p);
    }
    sign_with(signer, alg, &header, &claims)
}

async fn assertion_token(env: &Env, client_id: &str, assertion: &str) -> (StatusCode, Value) {
    token(
        env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

fn assert_aadsts(status: StatusCode, body: &Value, expected_status: u16, error: &str, code: u64) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"][0], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")),
        "{body}"
    );
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[k].is_string(), "{k} missing: {body}");
    }
}

/// POSTs a form to the token endpoint; returns the status and the JSON body.
async fn token(env: &Env, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let (s, _, b) = split(
        env.http
            .post(env.token_url())
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    (s, b)
}

/// POSTs the sign-in page's form (`{authority}/{tenant}/login`).
async fn post_login(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    ctx: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{authority}/{tenant}/login"))
        .form(&[("ctx", ctx), ("login", username), ("passwd", password)])
        .send()
        .await
        .unwrap()
}

/// POSTs the consent page's form (`{authority}/{tenant}/consent`).
async fn post_consent(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    ctx: &str,
    accept: bool,
) -> reqwest::Response {
    http.post(format!("{authority}/{tenant}/consent"))
        .form(&[("ctx", ctx), ("accept", if accept { "yes" } else { "no" })])
        .send()
        .await
        .unwrap()
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

const SCOPE: &str = "openid offline_access https://graph.microsoft.com/Mail.Read User.Read";

/// Runs authorize → sign-in → consent and returns the redirect's Location.
async fn sign_in(
    env: &Env,
    tenant: &str,
    redirect_uri: &str,
    challenge: &str,
    username: &str,
    password: &str,
    accept: bool,
) -> String {
    sign_in_scoped(
        env,
        tenant,
        redirect_uri,
        challenge,
        username,
        password,
        accept,
        SCOPE,
    )
    .await
}

/// As `sign_in` with explicit scopes. Consent is skipped once given for the same scopes.
#[allow(clippy::too_many_arguments)]
async fn sign_in_scoped(
    env: &Env,
    tenant: &str,
    redirect_uri: &str,
    challenge: &str,
    username: &str,
    password: &str,
    accept: bool,
    scope: &str,
) -> String {
    let info = env.emu.info();
    let resp = env
        .http
        .get(format!("{}/{tenant}/oauth2/v2.0/authorize", info.authority))
        .query(&[
            ("client_id", info.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", "st-123"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"i0116\"") && html.contains("id=\"i0118\""));
    let ctx = field(&html, "ctx");
    let resp = post_login(&env.http, &info.authority, tenant, &ctx, username, password).await;
    if resp.status() == StatusCode::FOUND {
        assert!(accept, "consent was already given");
        return resp.headers()["location"].to_str().unwrap().to_string();
    }
    let html = resp.text().await.unwrap();
    assert!(html.contains("Permissions requested"), "{html}");
    assert!(
        html.contains(
            &scope
                .split(' ')
                .next_back()
                .unwrap()
                .replace("https://graph.microsoft.com/", "")
        ),
        "{html}"
    );
    let resp = post_consent(&env.http, &info.authority, tenant, &ctx, accept).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn redeem(env: &Env, code: &str, redirect_uri: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", env.emu.info().client_id.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            (
                "scope",
                "https://graph.microsoft.com/Mail.Read offline_access openid",
            ),
        ],
    )
    .await
}

async fn redeem_fresh(env: &Env, admin: &m365_emulator::Credentials, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let location = sign_in_scoped(
        env,
        &env.emu.info().tenant_id.clone(),
        "http://127.0.0.1:9999/",
        &challenge,
        &admin.username,
        &admin.password,
        true,
        scope,
    )
    .await;
    let (s, b) = redeem(
        env,
        &query(&location)["code"],
        "http://127.0.0.1:9999/",
        &verifier,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// Redeems a refresh token for the default app, with any extra form fields.
async fn redeem_refresh(env: &Env, refresh: String, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let client_id = env.emu.info().client_id.clone();
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    form.extend_from_slice(extra);
    token(env, &form).await
}
