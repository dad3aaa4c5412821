//! Identity platform: client credentials (secret, certificate assertions), Graph token
//! validation, authorize + PKCE, refresh tokens, admin consent, provisioning.

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

#[tokio::test]
async fn client_secret_token_carries_roles_and_graph_audience() {
    let env = small().await;
    let jwt = Jwt::parse(&env.token).unwrap();
    assert_eq!(jwt.claims["aud"], "https://graph.microsoft.com");
    assert_eq!(jwt.claims["tid"], env.emu.info().tenant_id);
    assert_eq!(jwt.claims["appid"], env.emu.info().client_id);
    assert_eq!(jwt.claims["idtyp"], "app");
    assert!(jwt.claims["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "Mail.ReadWrite"));
    assert_eq!(jwt.header["alg"], "RS256");
    // The signature verifies against the published JWKS key.
    let (status, _, jwks) = env
        .get(&format!(
            "{}/{}/discovery/v2.0/keys",
            env.emu.info().authority,
            env.emu.info().tenant_id
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kid"], jwt.header["kid"]);
    // HTTP Basic client authentication is accepted too.
    let info = env.emu.info();
    let resp = env
        .http
        .post(env.token_url())
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let (status, _, body) = split(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn client_credentials_errors_follow_aadsts() {
    let env = small().await;
    let info = env.emu.info().clone();
    let post = |form: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = env.token_url();
        async move { split(http.post(url).form(&form).send().await.unwrap()).await }
    };
    let scope = "https://graph.microsoft.com/.default".to_string();
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("client_secret", "wrong".into()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000215);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", uuid::Uuid::new_v4().to_string()),
        ("client_secret", "x".into()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700016);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("client_secret", info.client_secret.clone()),
        ("scope", "https://graph.microsoft.com/Mail.Read".into()),
    ])
    .await;
    assert_aadsts(s, &b, 400, "invalid_scope", 1002012);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000218);
    let (s, _, b) = post(vec![("grant_type", "password".into())]).await;
    assert_aadsts(s, &b, 400, "unsupported_grant_type", 70003);
    let resp = env
        .http
        .post(format!(
            "{}/nosuchtenant.example/oauth2/v2.0/token",
            info.authority
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (s, _, b) = split(resp).await;
    assert_aadsts(s, &b, 400, "invalid_request", 90002);
}

#[tokio::test]
async fn certificate_assertions_ps256_and_rs256_are_verified() {
    let env = small().await;
    let app = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["User.Read.All".into()],
            certificate: Some(fixture("app-cert.pem")),
            ..Default::default()
        })
        .unwrap();
    let good = key("app-key.pem");
    for alg in ["PS256", "RS256"] {
        let (s, b) = assertion_token(
            &env,
            &app.client_id,
            &assertion(&env, &app.client_id, alg, &good, json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{alg}: {b}");
        let jwt = Jwt::parse(b["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(jwt.claims["appidacr"], "2");
        assert_eq!(jwt.claims["roles"], json!(["User.Read.All"]));
    }
    // The v1 token endpoint as audience (legacy assertions) is accepted too.
    let v1 = format!(
        "{}/{}/oauth2/token",
        env.emu.info().authority,
        env.emu.info().tenant_id
    );
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(&env, &app.client_id, "RS256", &good, json!({"aud": v1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Forged: right thumbprint, wrong key.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &key("forger-key.pem"),
            json!({}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
    // Expired.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"nbf": now() - 7200, "exp": now() - 3600}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700024);
    // Wrong audience.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700212);
    // Subject differs from issuer.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"sub": uuid::Uuid::new_v4().to_string()}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 50048);
    // Replayed jti.
    let once = assertion(&env, &app.client_id, "PS256", &good, json!({}));
    assert_eq!(
        assertion_token(&env, &app.client_id, &once).await.0,
        StatusCode::OK
    );
    let (s, b) = assertion_token(&env, &app.client_id, &once).await;
    assert_aadsts(s, &b, 401, "invalid_client", 50027);
    // A certificate that is not registered.
    let (s, b) = assertion_token(
        &env,
        &env.emu.info().client_id.clone(),
        &assertion(
            &env,
            &env.emu.info().client_id.clone(),
            "PS256",
            &good,
            json!({}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
}

#[tokio::test]
async fn graph_rejects_missing_forged_and_expired_tokens() {
    let env = small().await;
    let url = format!("{}/users", env.graph());
    let (s, h, b) = split(env.http.get(&url).send().await.unwrap()).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert!(h
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer realm=\"\""));
    let (s, h, b) = env.get_with(&url, "not-a-jwt", &[]).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    // Tampered claims: the signature no longer verifies.
    let mut parts: Vec<String> = env.token.split('.').map(str::to_string).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["Directory.ReadWrite.All"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let (s, h, b) = env.get_with(&url, &parts.join("."), &[]).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert_eq!(env.get(&url).await.0, StatusCode::OK);
    env.emu.advance_clock(Duration::from_secs(2 * 3600));
    let (s, h, b) = env.get(&url).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert_eq!(
        b["error"]["message"],
        "Access token has expired or is not yet valid."
    );
}

#[tokio::test]
async fn missing_roles_give_403() {
    let env = small().await;
    let info = env.emu.info().clone();
    let user = env.mailbox_user();
    let directory_only = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["User.Read.All".into()],
            ..Default::default()
        })
        .unwrap();
    let token = secret_token(
        &env.http,
        &info.authority,
        &info.tenant_id,
        &directory_only.client_id,
        &directory_only.client_secret,
    )
    .await;
    assert_eq!(
        env.get_with(&format!("{}/users", env.graph()), &token, &[])
            .await
            .0,
        StatusCode::OK
    );
    let (s, h, b) = env
        .get_with(
            &format!("{}/users/{}/mailFolders", env.graph(), user.id),
            &token,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    let mail_only = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["Mail.Read".into()],
            ..Default::default()
        })
        .unwrap();
    let token = secret_token(
        &env.http,
        &info.authority,
        &info.tenant_id,
        &mail_only.client_id,
        &mail_only.client_secret,
    )
    .await;
    let (s, h, b) = env
        .get_with(&format!("{}/users", env.graph()), &token, &[])
        .await;
    assert_graph_error(s, &h, &b, 403, "Authorization_RequestDenied");
    let (s, h, b) = env
        .get_with(
            &format!("{}/users/{}/mailboxSettings", env.graph(), user.id),
            &token,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    assert_eq!(
        env.get_with(
            &format!("{}/users/{}/mailFolders", env.graph(), user.id),
            &token,
            &[]
        )
        .await
        .0,
        StatusCode::OK
    );
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

#[tokio::test]
async fn auth_code_with_pkce_on_a_loopback_redirect() {
    let env = small().await;
    let admin = env.emu.info().admin.clone();
    let (verifier, challenge) = pkce();
    // Registered as http://localhost: any port matches; no path comes back with a slash.
    let redirect = "http://localhost:53682";
    let location = sign_in(
        &env,
        "organizations",
        redirect,
        &challenge,
        &admin.username,
        &admin.password,
        true,
    )
    .await;
    assert!(
        location.starts_with("http://localhost:53682/?"),
        "{location}"
    );
    let q = query(&location);
    assert_eq!(q["state"], "st-123");
    let code = q["code"].clone();

    let (s, b) = redeem(
        &env,
        &code,
        redirect,
        "wrong-verifier-wrong-verifier-wrong-verifier",
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_grant", 501481);
    let (s, b) = redeem(&env, &code, redirect, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for k in ["access_token", "refresh_token", "id_token", "scope"] {
        assert!(b[k].is_string(), "{k}: {b}");
    }
    let id = Jwt::parse(b["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id.claims["preferred_username"], admin.username);
    assert_eq!(id.claims["aud"], env.emu.info().client_id);
    // The delegated token works on /me.
    let access = b["access_token"].as_str().unwrap().to_string();
    let (s, _, me) = env
        .get_with(&format!("{}/me", env.graph()), &access, &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["userPrincipalName"], admin.username);
    // Delegated Mail.Read opens the signed-in user's mailbox, not someone else's.
    let (s, _, _) = env
        .get_with(
            &format!("{}/me/mailFolders/inbox/messages", env.graph()),
            &access,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let other = env.mailbox_user();
    let (s, h, b) = env
        .get_with(
            &format!(
                "{}/users/{}/mailFolders/inbox/messages",
                env.graph(),
                other.id
            ),
            &access,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    // Codes are single use.
    let (s, b) = redeem(&env, &code, redirect, &verifier).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 54005);

    // Refresh: a new refresh token each time; the old one still works until revoked.
    let refresh = redeem_fresh(&env, &admin, SCOPE).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info = env.emu.info().clone();
    let refresh_with = |token: String| redeem_refresh(&env, token, &[]);
    // MSAL's client_info=1 adds {uid, utid} of the signed-in user.
    let (_, with_info) = redeem_refresh(&env, refresh.clone(), &[("client_info", "1")]).await;
    let client_info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(with_info["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(client_info["utid"], info.tenant_id);
    assert_eq!(client_info["uid"], env.emu.tenant().users[0].id);
    let (s, first) = refresh_with(refresh.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_ne!(first["refresh_token"], refresh.as_str());
    assert_eq!(refresh_with(refresh.clone()).await.0, StatusCode::OK);
    env.emu.revoke_refresh_tokens();
    let (s, b) = refresh_with(refresh).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 50173);
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

#[tokio::test]
async fn authorize_error_paths() {
    let env = small().await;
    let info = env.emu.info().clone();
    let admin = info.admin.clone();
    let authorize = |params: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = format!("{}/common/oauth2/v2.0/authorize", info.authority);
        async move { http.get(url).query(&params).send().await.unwrap() }
    };
    // Unregistered redirect URI: an error page, never a redirect.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://evil.example/cb".into()),
        ("scope", "openid".into()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));
    // prompt=none without a session redirects with login_required and the state.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost/".into()),
        ("scope", "openid".into()),
        ("state", "s1".into()),
        ("prompt", "none".into()),
    ])
    .await;
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s1");
    // Wrong password shows the sign-in page again with AADSTS50126.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost/".into()),
        ("scope", "openid".into()),
    ])
    .await;
    let ctx = field(&resp.text().await.unwrap(), "ctx");
    let resp = post_login(
        &env.http,
        &info.authority,
        "common",
        &ctx,
        &admin.username,
        "nope",
    )
    .await;
    assert!(resp.text().await.unwrap().contains("AADSTS50126"));
    // Declining consent redirects with access_denied.
    let (_, challenge) = pkce();
    let location = sign_in(
        &env,
        "common",
        "http://localhost/",
        &challenge,
        &admin.username,
        &admin.password,
        false,
    )
    .await;
    let q = query(&location);
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].starts_with("AADSTS65004"));
    assert_eq!(q["state"], "st-123");
    // An expired code (10 minutes) and a public client presenting a secret.
    let (verifier, challenge) = pkce();
    let location = sign_in(
        &env,
        "common",
        "http://localhost/",
        &challenge,
        &admin.username,
        &admin.password,
        true,
    )
    .await;
    let code = query(&location)["code"].clone();
    let (s, b) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", info.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost/"),
            ("code_verifier", verifier.as_str()),
            ("client_secret", info.client_secret.as_str()),
        ],
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 700025);
    env.emu.advance_clock(Duration::from_secs(11 * 60));
    let (s, b) = redeem(&env, &code, "http://localhost/", &verifier).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 70008);
}

#[tokio::test]
async fn openid_metadata_for_tenant_and_aliases() {
    let env = small().await;
    let info = env.emu.info().clone();
    for tenant in [
        info.tenant_id.as_str(),
        "common",
        "organizations",
        info.tenant_domain.as_str(),
    ] {
        let (s, _, b) = env
            .get(&format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                info.authority
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            b["token_endpoint"],
            format!("{}/{tenant}/oauth2/v2.0/token", info.authority)
        );
        assert_eq!(
            b["authorization_endpoint"],
            format!("{}/{tenant}/oauth2/v2.0/authorize", info.authority)
        );
    }
    // MSAL's instance discovery points back at the emulator.
    let authorize = format!(
        "{}/{}/oauth2/v2.0/authorize",
        info.authority, info.tenant_id
    );
    let (s, _, b) = env
        .get(&format!(
            "{}/common/discovery/instance?api-version=1.1&authorization_endpoint={authorize}",
            info.authority
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["tenant_discovery_endpoint"],
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            info.authority, info.tenant_id
        )
    );
    assert_eq!(
        b["metadata"][0]["aliases"][0],
        info.authority.trim_start_matches("http://")
    );
}

/// The provisioning flow: an admin signs in, creates an app with a certificate, its service
/// principal and Graph role assignments; the new app then authenticates with its certificate.
#[tokio::test]
async fn provisioning_creates_an_app_that_uses_its_certificate() {
    let env = small().await;
    let admin = env.emu.info().admin.clone();
    let delegated = redeem_fresh(
        &env,
        &admin,
        "openid offline_access https://graph.microsoft.com/.default",
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |url: String, body: Value| {
        let http = env.http.clone();
        let token = delegated.clone();
        async move {
            split(
                http.post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let der = cert_der();
    let (s, _, app) = post(
        format!("{}/applications", env.graph()),
        json!({
            "displayName": "Strongroom backup",
            "keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&der)}],
            "requiredResourceAccess": [{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": "810c84a8-4a9e-49e6-bf7d-12d183f40d01", "type": "Role"}]}]
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    assert_eq!(
        app["keyCredentials"][0]["customKeyIdentifier"],
        STANDARD.encode(sha1::Sha1::digest(&der))
    );
    let app_id = app["appId"].as_str().unwrap().to_string();
    let (s, _, sp) = post(
        format!("{}/servicePrincipals", env.graph()),
        json!({"appId": app_id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let (s, _, graph_sps) = env
        .get_with(
            &format!(
                "{}/servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'",
                env.graph()
            ),
            &delegated,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{graph_sps}");
    let graph_sp = &graph_sps["value"][0];
    let role_id = graph_sp["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "User.Read.All")
        .unwrap()["id"]
        .clone();
    let (s, _, assignment) = post(
        format!(
            "{}/servicePrincipals/{}/appRoleAssignedTo",
            env.graph(),
            graph_sp["id"].as_str().unwrap()
        ),
        json!({"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role_id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{assignment}");
    assert_eq!(assignment["principalType"], "ServicePrincipal");
    // The new app signs in with its certificate and can read users, but not mail.
    let (s, b) = assertion_token(
        &env,
        &app_id,
        &assertion(&env, &app_id, "PS256", &key("app-key.pem"), json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let token = b["access_token"].as_str().unwrap();
    assert_eq!(
        env.get_with(&format!("{}/users", env.graph()), token, &[])
            .await
            .0,
        StatusCode::OK
    );
    let user = env.mailbox_user();
    assert_eq!(
        env.get_with(
            &format!("{}/users/{}/messages", env.graph(), user.id),
            token,
            &[]
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn admin_consent_v1_and_v2_grant_application_roles() {
    let env = small().await;
    let info = env.emu.info().clone();
    let app = env
        .emu
        .register_app(&AppSpec {
            roles: vec![],
            redirect_uris: vec!["http://localhost/consent".into()],
            ..Default::default()
        })
        .unwrap();
    // The registration asks for Mail.Read; nothing is granted yet.
    let consent = |path: &'static str,
                   extra: Vec<(&'static str, String)>,
                   user: (String, String),
                   accept: bool| {
        let http = env.http.clone();
        let info = info.clone();
        let client_id = app.client_id.clone();
        async move {
            let mut params = vec![
                ("client_id", client_id),
                ("redirect_uri", "http://localhost:4000/consent".to_string()),
                ("state", "xyz".to_string()),
            ];
            params.extend(extra);
            let html = http
                .get(format!("{}/{}/{path}", info.authority, info.tenant_id))
                .query(&params)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let ctx = field(&html, "ctx");
            let resp = post_login(
                &http,
                &info.authority,
                &info.tenant_id,
                &ctx,
                &user.0,
                &user.1,
            )
            .await;
            let html = resp.text().await.unwrap();
            if !html.contains("id=\"consent\"") {
                return Err(html);
            }
            let resp = post_consent(&http, &info.authority, &info.tenant_id, &ctx, accept).await;
            Ok(query(resp.headers()["location"].to_str().unwrap()))
        }
    };
    let admin = (info.admin.username.clone(), info.admin.password.clone());
    let q = consent("adminconsent", vec![], admin.clone(), false)
        .await
        .unwrap();
    assert_eq!(q["error"], "permission_denied");
    let q = consent(
        "v2.0/adminconsent",
        vec![("scope", "https://graph.microsoft.com/.default".into())],
        admin.clone(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(q["admin_consent"], "True");
    assert_eq!(q["tenant"], info.tenant_id);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["state"], "xyz");
    let q = consent("adminconsent", vec![], admin, true).await.unwrap();
    assert_eq!(q["admin_consent"], "True");
    // A non-admin cannot consent for the organisation.
    let regular = env.mailbox_user();
    assert!(consent(
        "adminconsent",
        vec![],
        (regular.user_principal_name, regular.password),
        true
    )
    .await
    .unwrap_err()
    .contains("AADSTS90094"));
    let _ = UserKind::Licensed;
}

#[tokio::test]
async fn form_post_and_fragment_modes_and_refresh_inactivity() {
    let env = small().await;
    let info = env.emu.info().clone();
    let run = |mode: &'static str| {
        let http = env.http.clone();
        let info = info.clone();
        async move {
            let html = http
                .get(format!(
                    "{}/organizations/oauth2/v2.0/authorize",
                    info.authority
                ))
                .query(&[
                    ("client_id", info.client_id.as_str()),
                    ("response_type", "code"),
                    ("redirect_uri", "http://127.0.0.1:8400"),
                    ("scope", "offline_access Mail.Read"),
                    ("state", "m1"),
                    ("response_mode", mode),
                ])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let ctx = field(&html, "ctx");
            let resp = post_login(
                &http,
                &info.authority,
                "organizations",
                &ctx,
                &info.admin.username,
                &info.admin.password,
            )
            .await;
            if resp.status() == StatusCode::OK
                && resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            {
                let page = resp.text().await.unwrap();
                if page.contains("id=\"consent\"") {
                    return post_consent(&http, &info.authority, "organizations", &ctx, true).await;
                }
                panic!("unexpected page {page}");
            }
            resp
        }
    };
    // form_post: an auto-submitting form to the redirect URI carrying code and state.
    let resp = run("form_post").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("action=\"http://127.0.0.1:8400/\""), "{html}");
    assert_eq!(field(&html, "state"), "m1");
    let code = field(&html, "code");
    // fragment: the parameters come after '#'.
    let resp = run("fragment").await;
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let fragment = location.split_once('#').expect("fragment").1.to_string();
    assert!(
        fragment.contains("code=") && fragment.contains("state=m1"),
        "{location}"
    );
    // Without PKCE the code is redeemed with the redirect URI alone; refresh tokens expire
    // after 90 days without use.
    let (s, b) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", info.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:8400"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.get("id_token").is_none(), "no openid scope, no id_token");
    let refresh = b["refresh_token"].as_str().unwrap().to_string();
    env.emu.advance_clock(Duration::from_secs(91 * 86_400));
    let (s, b) = redeem_refresh(&env, refresh, &[]).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 700082);
}

#[tokio::test]
async fn a_signed_in_session_allows_prompt_none() {
    let env = small().await;
    let info = env.emu.info().clone();
    let authorize = |prompt: Option<&'static str>, cookie: Option<String>| {
        let http = env.http.clone();
        let info = info.clone();
        async move {
            let mut params = vec![
                ("client_id", info.client_id.clone()),
                ("response_type", "code".to_string()),
                ("redirect_uri", "http://localhost/".to_string()),
                ("scope", "User.Read".to_string()),
                ("state", "silent".to_string()),
            ];
            if let Some(p) = prompt {
                params.push(("prompt", p.to_string()));
            }
            let mut req = http
                .get(format!("{}/common/oauth2/v2.0/authorize", info.authority))
                .query(&params);
            if let Some(c) = cookie {
                req = req.header("Cookie", c);
            }
            req.send().await.unwrap()
        }
    };
    let html = authorize(None, None).await.text().await.unwrap();
    let ctx = field(&html, "ctx");
    let resp = post_login(
        &env.http,
        &info.authority,
        "common",
        &ctx,
        &info.admin.username,
        &info.admin.password,
    )
    .await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("ESTSAUTH="));
    let html = resp.text().await.unwrap();
    let resp = post_consent(
        &env.http,
        &info.authority,
        "common",
        &field(&html, "ctx"),
        true,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    // Same session, consent given: prompt=none returns a code without any page.
    let resp = authorize(Some("none"), Some(cookie.clone())).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert!(q.contains_key("code"));
    assert_eq!(q["state"], "silent");
    // prompt=login asks for the password again.
    let resp = authorize(Some("login"), Some(cookie)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("id=\"i0118\""));
}
