//! `POST /{tenant}/oauth2/v2.0/token`: client credentials (secret or certificate assertion),
//! authorization code + PKCE, and refresh tokens.

use super::certificate::Certificate;
use super::error::AadError;
use super::jwt::Jwt;
use super::{check_tenant, graph_scopes, random_token, CodeGrant, RefreshGrant};
use crate::state::{AppState, Shared};
use crate::tenant::User;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use chrono::Duration;
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::HashMap;

/// Lifetime of access tokens in seconds (Entra's default is about an hour).
pub const ACCESS_TOKEN_SECONDS: i64 = 3599;
/// Authorization codes live about ten minutes.
pub const CODE_LIFETIME: Duration = Duration::minutes(10);
/// Refresh tokens expire after 90 days without use.
pub const REFRESH_INACTIVITY: Duration = Duration::days(90);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub async fn token(
    State(shared): State<AppState>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let result = check_tenant(&shared, &segment).and_then(|_| {
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => client_credentials(&shared, &segment, &headers, &form),
            Some("authorization_code") => authorization_code(&shared, &segment, &headers, &form),
            Some("refresh_token") => refresh_token(&shared, &headers, &form),
            Some(other) => Err(AadError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
            None => Err(AadError::missing("grant_type")),
        }
    });
    match result {
        Ok(mut body) => {
            if form.get("client_info").map(String::as_str) == Some("1") {
                add_client_info(&mut body);
            }
            Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// MSAL asks for `client_info=1` on user flows: base64url `{"uid","utid"}` of the signed-in
/// user, from which it builds the account's home id.
fn add_client_info(body: &mut Value) {
    let Some(claims) = body["access_token"]
        .as_str()
        .and_then(|t| Jwt::parse(t).ok())
        .map(|j| j.claims)
    else {
        return;
    };
    if claims["idtyp"] != "user" {
        return;
    }
    let info = json!({"uid": claims["oid"], "utid": claims["tid"]});
    body["client_info"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(info.to_string())
        .into();
}

/// The client id and secret from the form or from HTTP Basic authentication.
fn client_secret(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
    {
        if let Some((id, secret)) = basic.split_once(':') {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            return (decode(id), decode(secret));
        }
    }
    (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    )
}

fn client_credentials(
    shared: &Shared,
    segment: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let (client_id, secret) = client_secret(headers, form);
    let client_id = client_id.ok_or_else(|| AadError::missing("client_id"))?;
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing("scope"))?;
    let resource = scope
        .strip_suffix("/.default")
        .ok_or_else(|| invalid_scope(scope))?;
    if resource != super::roles::GRAPH_RESOURCE
        && resource != super::roles::GRAPH_APP_ID
        && resource != "https://graph.microsoft.com/"
    {
        return Err(invalid_scope(scope));
    }
    let tenant = shared.tenant();
    let app = tenant
        .app(&client_id)
        .ok_or_else(|| app_not_found(&client_id, &tenant.id))?;
    let with_certificate = if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(AadError::new(
                "invalid_request",
                700024,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            ));
        }
        check_assertion(shared, segment, &client_id, &app.certificates, assertion)?;
        true
    } else if let Some(secret) = secret {
        if !app.secrets.contains(&secret) {
            return Err(AadError::new(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
            ));
        }
        false
    } else {
        return Err(AadError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    let sp = tenant.service_principal(&client_id).ok_or_else(|| {
        AadError::new(
            "invalid_client",
            7000229,
            format!(
                "The client application {client_id} is missing service principal in the tenant {}.",
                tenant.id
            ),
        )
    })?;
    let now = shared.clock.unix();
    let claims = json!({
        "aud": super::roles::GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_SECONDS,
        "aio": random_token(24),
        "app_displayname": app.display_name,
        "appid": app.app_id,
        "appidacr": if with_certificate { "2" } else { "1" },
        "idp": format!("https://sts.windows.net/{}/", tenant.id),
        "idtyp": "app",
        "oid": sp.id,
        "rh": random_token(16),
        "roles": sp.roles,
        "sub": sp.id,
        "tenant_region_scope": "EU",
        "tid": tenant.id,
        "uti": random_token(22),
        "ver": "1.0",
    });
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "ext_expires_in": ACCESS_TOKEN_SECONDS,
        "access_token": shared.signer.sign(&claims),
    }))
}

fn invalid_scope(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        1002012,
        format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
    )
}

fn app_not_found(client_id: &str, tenant: &str) -> AadError {
    AadError::new(
        "unauthorized_client",
        700016,
        format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
    )
}

/// Checks a client assertion: signing certificate, signature, audience, issuer/subject, time
/// window and jti replay, in the order Entra reports them.
fn check_assertion(
    shared: &Shared,
    segment: &str,
    client_id: &str,
    certificates: &[Vec<u8>],
    assertion: &str,
) -> Result<(), AadError> {
    let malformed = || {
        AadError::new(
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let jwt = Jwt::parse(assertion).map_err(|_| malformed())?;
    let x5t_s256 = jwt.header["x5t#S256"].as_str();
    let x5t = jwt.header["x5t"].as_str();
    let certificate = certificates
        .iter()
        .filter_map(|der| Certificate::from_der(der))
        .find(|c| Some(c.x5t_s256().as_str()) == x5t_s256 || Some(c.x5t().as_str()) == x5t)
        .ok_or_else(|| {
            AadError::new(
                "invalid_client",
                700027,
                format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']", x5t_s256.or(x5t).unwrap_or("")),
            )
        })?;
    jwt.verify(&certificate.public_key).map_err(|_| {
        AadError::new(
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        )
    })?;
    let claims = &jwt.claims;
    let tenant = shared.tenant();
    let base = &shared.info.authority;
    let aud = claims["aud"].as_str().unwrap_or("");
    let accepted = [segment, tenant.id.as_str(), tenant.domain.as_str()]
        .iter()
        .flat_map(|t| {
            [
                format!("{base}/{t}/oauth2/v2.0/token"),
                format!("{base}/{t}/oauth2/token"),
            ]
        })
        .any(|a| a.eq_ignore_ascii_case(aud));
    if !accepted {
        return Err(AadError::new(
            "invalid_client",
            700212,
            format!("No matching federated identity record found for presented assertion audience '{aud}'."),
        ));
    }
    let iss = claims["iss"].as_str().unwrap_or("");
    let sub = claims["sub"].as_str().unwrap_or("");
    if iss != sub {
        return Err(AadError::new(
            "invalid_client",
            50048,
            "Subject mismatches Issuer claim in the client assertion.",
        ));
    }
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(AadError::new(
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let now = shared.clock.unix();
    let exp = claims["exp"].as_i64().ok_or_else(|| {
        AadError::new(
            "invalid_client",
            700024,
            "Client assertion is missing the 'exp' claim.",
        )
    })?;
    let nbf = claims["nbf"].as_i64().unwrap_or(now);
    // Entra allows five minutes of clock skew.
    if exp + 300 < now || nbf - 300 > now {
        return Err(AadError::new(
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let jti = claims["jti"].as_str().ok_or_else(|| {
        AadError::new(
            "invalid_client",
            50027,
            "JWT token is invalid or malformed: missing 'jti'.",
        )
    })?;
    if !shared.identity().used_jtis.insert(jti.to_string()) {
        return Err(AadError::new("invalid_client", 50027, format!("JWT token is invalid or malformed: the assertion with jti '{jti}' was already used.")));
    }
    Ok(())
}

/// A public client (mobile/desktop redirect) must not present credentials.
fn reject_client_credentials(
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), AadError> {
    if form.contains_key("client_secret")
        || form.contains_key("client_assertion")
        || headers.contains_key("authorization")
    {
        return Err(AadError::new(
            "invalid_request",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        ));
    }
    Ok(())
}

fn authorization_code(
    shared: &Shared,
    segment: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let _ = segment;
    let client_id = form
        .get("client_id")
        .ok_or_else(|| AadError::missing("client_id"))?;
    let code = form.get("code").ok_or_else(|| AadError::missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| AadError::missing("redirect_uri"))?;
    let now = shared.clock.now();
    let grant = {
        let identity = shared.identity();
        identity.codes.get(code).cloned()
    };
    let grant: CodeGrant = grant.ok_or_else(|| {
        AadError::new(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if grant.redeemed {
        return Err(AadError::new(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if now - grant.issued > CODE_LIFETIME {
        return Err(AadError::new("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
    }
    if !grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(AadError::new("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued to a different client."));
    }
    if grant.redirect_uri != *redirect_uri {
        return Err(AadError::new("invalid_grant", 500112, "The reply address does not match the reply address provided when requesting Authorization code."));
    }
    {
        let tenant = shared.tenant();
        let app = tenant
            .app(client_id)
            .ok_or_else(|| app_not_found(client_id, &tenant.id))?;
        if super::authorize::redirect_matches(&app.public_redirect_uris, redirect_uri) {
            reject_client_credentials(form, headers)?;
        } else {
            let (_, secret) = client_secret(headers, form);
            if secret.is_none_or(|s| !app.secrets.contains(&s))
                && !form.contains_key("client_assertion")
            {
                return Err(AadError::new("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."));
            }
        }
    }
    if let Some((challenge, method)) = &grant.challenge {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        let computed = if method == "S256" {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_string()
        };
        if verifier.is_empty() || computed != *challenge {
            return Err(AadError::new("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."));
        }
    }
    if let Some(g) = shared.identity().codes.get_mut(code) {
        g.redeemed = true;
    }
    user_tokens(
        shared,
        client_id,
        &grant.user_id,
        &grant.scopes,
        grant.nonce.as_deref(),
    )
}

fn refresh_token(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let client_id = form
        .get("client_id")
        .ok_or_else(|| AadError::missing("client_id"))?;
    let token = form
        .get("refresh_token")
        .ok_or_else(|| AadError::missing("refresh_token"))?;
    let _ = headers;
    let now = shared.clock.now();
    let grant: RefreshGrant = shared
        .identity()
        .refresh_tokens
        .get(token)
        .cloned()
        .ok_or_else(|| {
            AadError::new(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
    if grant.revoked {
        return Err(AadError::new(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        ));
    }
    if now - grant.last_used > REFRESH_INACTIVITY {
        return Err(AadError::new(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(AadError::new(
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        ));
    }
    if let Some(g) = shared.identity().refresh_tokens.get_mut(token) {
        g.last_used = now;
    }
    let scopes = match form.get("scope") {
        Some(s) => s.split_whitespace().map(str::to_string).collect(),
        None => grant.scopes.clone(),
    };
    user_tokens(shared, client_id, &grant.user_id, &scopes, None)
}

/// Access token (delegated), plus a rotated refresh token and an id token when requested.
pub fn user_tokens(
    shared: &Shared,
    client_id: &str,
    user_id: &str,
    scopes: &[String],
    nonce: Option<&str>,
) -> Result<Value, AadError> {
    let tenant = shared.tenant();
    let user: &User = tenant.user(user_id).ok_or_else(|| {
        AadError::new(
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        )
    })?;
    let app = tenant
        .app(client_id)
        .ok_or_else(|| app_not_found(client_id, &tenant.id))?;
    let mut graph = graph_scopes(scopes);
    if graph.iter().any(|s| s == ".default") || graph.is_empty() {
        graph = super::DEFAULT_DELEGATED
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let now = shared.clock.unix();
    let claims = json!({
        "aud": super::roles::GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_SECONDS,
        "app_displayname": app.display_name,
        "appid": app.app_id,
        "appidacr": "0",
        "idtyp": "user",
        "name": user.display_name,
        "oid": user.id,
        "scp": graph.join(" "),
        "sub": random_token(43),
        "tid": tenant.id,
        "unique_name": user.user_principal_name,
        "upn": user.user_principal_name,
        "uti": random_token(22),
        "ver": "1.0",
        "wids": if tenant.users.first().is_some_and(|u| u.id == user.id) { vec!["62e90394-69f5-4237-9190-012177145e10"] } else { Vec::new() },
    });
    let mut body = json!({
        "token_type": "Bearer",
        "scope": graph.join(" "),
        "expires_in": ACCESS_TOKEN_SECONDS,
        "ext_expires_in": ACCESS_TOKEN_SECONDS,
        "access_token": shared.signer.sign(&claims),
    });
    if scopes.iter().any(|s| s == "offline_access") {
        let refresh = format!("1.A{}", random_token(120));
        shared.identity().refresh_tokens.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                user_id: user.id.clone(),
                scopes: scopes.to_vec(),
                last_used: shared.clock.now(),
                revoked: false,
            },
        );
        body["refresh_token"] = refresh.into();
    }
    if scopes.iter().any(|s| s == "openid") {
        let mut id_claims = json!({
            "aud": client_id,
            "iss": format!("{}/{}/v2.0", shared.info.authority, tenant.id),
            "iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_SECONDS,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.user_principal_name,
            "sub": user.id,
            "tid": tenant.id,
            "ver": "2.0",
        });
        if let Some(nonce) = nonce {
            id_claims["nonce"] = nonce.into();
        }
        body["id_token"] = shared.signer.sign(&id_claims).into();
    }
    Ok(body)
}
