//! The Microsoft identity platform: OpenID metadata, the authorize endpoint with its sign-in and
//! consent pages, admin consent, and the token endpoint (client credentials with a secret or a
//! certificate assertion, authorization code + PKCE, refresh tokens).

pub mod authorize;
pub mod certificate;
pub mod error;
pub mod jwt;
pub mod roles;
pub mod token;

use crate::state::{AppState, Shared};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use error::AadError;
use std::collections::{HashMap, HashSet};

/// An issued authorization code (single use, 10 minutes).
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// (code_challenge, method)
    pub challenge: Option<(String, String)>,
    pub user_id: String,
    pub issued: DateTime<Utc>,
    pub redeemed: bool,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub last_used: DateTime<Utc>,
    pub revoked: bool,
}

/// An authorize request waiting for the user to sign in and consent.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub tenant: String,
    pub kind: SignInKind,
    pub client_id: String,
    /// The redirect URI as the client sent it (the response goes there).
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub response_mode: String,
    pub challenge: Option<(String, String)>,
    pub nonce: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    Authorize,
    AdminConsentV1,
    AdminConsentV2,
}

#[derive(Debug, Default)]
pub struct IdentityState {
    pub codes: HashMap<String, CodeGrant>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub used_jtis: HashSet<String>,
    pub sign_ins: HashMap<String, SignIn>,
    /// Session cookie value -> user id (so a second authorize can skip the password).
    pub sessions: HashMap<String, String>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/common/discovery/keys", get(keys_common))
        .route("/common/discovery/instance", get(instance_discovery))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/{tenant}/oauth2/token", post(token::token))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/login", post(authorize::login))
        .route("/{tenant}/consent", post(authorize::consent))
        .route("/{tenant}/adminconsent", get(authorize::admin_consent_v1))
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(authorize::admin_consent_v2),
        )
}

/// Accepts the tenant id, its domain, and the `common` / `organizations` aliases.
pub fn check_tenant(shared: &Shared, segment: &str) -> Result<(), AadError> {
    let tenant = shared.tenant();
    let s = segment.to_ascii_lowercase();
    if s == tenant.id || s == tenant.domain || s == "common" || s == "organizations" {
        Ok(())
    } else {
        Err(AadError::new(
            "invalid_request",
            90002,
            format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        ))
    }
}

async fn openid_configuration(
    State(shared): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<serde_json::Value>, AadError> {
    check_tenant(&shared, &segment)?;
    let base = &shared.info.authority;
    let tid = shared.tenant().id.clone();
    let issuer_tenant = if segment == "common" || segment == "organizations" {
        "{tenantid}".to_string()
    } else {
        tid
    };
    Ok(Json(serde_json::json!({
        "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{}/oidc/userinfo", shared.info.graph),
        "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{segment}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{segment}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": shared.info.graph.trim_start_matches("http://"),
        "rbac_url": "https://pas.windows.net"
    })))
}

async fn keys(
    State(shared): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<serde_json::Value>, AadError> {
    check_tenant(&shared, &segment)?;
    Ok(Json(shared.signer.jwks()))
}

async fn keys_common(State(shared): State<AppState>) -> Json<serde_json::Value> {
    Json(shared.signer.jwks())
}

/// MSAL's instance discovery: the emulator's host is its own cloud, with no aliases.
async fn instance_discovery(
    State(shared): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let base = &shared.info.authority;
    let host = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let tenant = q
        .get("authorization_endpoint")
        .and_then(|e| e.strip_prefix(base.as_str()))
        .and_then(|rest| {
            rest.trim_start_matches('/')
                .split('/')
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "common".into());
    Json(serde_json::json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
}

/// Splits requested scopes into Graph permission names and OpenID Connect scopes.
pub fn graph_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| {
            !matches!(
                s.as_str(),
                "openid" | "profile" | "email" | "offline_access"
            )
        })
        .map(|s| {
            s.trim_start_matches("https://graph.microsoft.com/")
                .trim_start_matches("00000003-0000-0000-c000-000000000000/")
                .to_string()
        })
        .collect()
}

/// Delegated permissions a `.default` request expands to for interactive sign-in.
pub const DEFAULT_DELEGATED: [&str; 6] = [
    "User.Read",
    "User.Read.All",
    "Mail.ReadWrite",
    "Directory.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

pub fn random_token(len: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}
