//! Interactive sign-in for a public client: authorization code + PKCE (S256) with a loopback
//! redirect URI, then a delegated session that rotates its refresh token.
//!
//! The UI opens [`SignInRequest::url`] in a webview, intercepts the navigation to the
//! redirect URI and hands the full URL to [`SignIn::finish`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::app::{classify, Failure};
use super::token::{AccessToken, TokenCache, TokenSource};
use super::Cloud;
use crate::error::GraphError;

/// The OpenID Connect `id_token` of a sign-in response (requested with the `openid` scope).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type SignInTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type PublicClient = oauth2::Client<
    BasicErrorResponse,
    SignInTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The `tid` (tenant id) claim of an ID token. The ID token came straight from the token
/// endpoint over TLS, so its claims may be read without validating the signature (OpenID
/// Connect Core 3.1.3.7); access tokens, by contrast, are never parsed.
fn tenant_of_id_token(id_token: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let payload = URL_SAFE_NO_PAD
        .decode(id_token.split('.').nth(1)?.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get("tid")?.as_str().map(str::to_owned)
}

fn public_client(cloud: &Cloud, tenant: &str, client_id: &str) -> PublicClient {
    oauth2::Client::<
        BasicErrorResponse,
        SignInTokenResponse,
        BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
    >::new(ClientId::new(client_id.to_owned()))
    .set_auth_uri(AuthUrl::from_url(cloud.authorize_url(tenant)))
    .set_token_uri(TokenUrl::from_url(cloud.token_url(tenant)))
    // A public client sends client_id in the body and never a secret.
    .set_auth_type(AuthType::RequestBody)
}

/// What the UI needs to start a sign-in.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    /// Open this in the sign-in window.
    pub url: Url,
    /// Intercept navigations whose URL starts with this.
    pub redirect_uri: Url,
}

/// One sign-in attempt in progress: holds the PKCE verifier and the expected `state`.
pub struct SignIn {
    cloud: Cloud,
    tenant: String,
    client_id: String,
    redirect_uri: Url,
    scopes: Vec<String>,
    verifier: PkceCodeVerifier,
    state: CsrfToken,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// Start a sign-in. `tenant` is usually `organizations` for a first sign-in;
    /// `scopes` should include `offline_access` to get a refresh token.
    pub fn begin(
        cloud: &Cloud,
        tenant: &str,
        client_id: &str,
        redirect_uri: &Url,
        scopes: &[&str],
    ) -> (SignIn, SignInRequest) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = public_client(cloud, tenant, client_id)
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .add_extra_param("response_mode", "query")
            .add_extra_param("prompt", "select_account")
            .url();
        let sign_in = SignIn {
            cloud: cloud.clone(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.clone(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            verifier,
            state,
        };
        (
            sign_in,
            SignInRequest {
                url,
                redirect_uri: redirect_uri.clone(),
            },
        )
    }

    /// Check the redirect (`state`, `error`) and redeem its code for tokens.
    pub async fn finish(self, redirected_to: &Url) -> Result<DelegatedSession, GraphError> {
        let code = self.code_from(redirected_to)?;
        let http = crate::client::http_client();
        let client = public_client(&self.cloud, &self.tenant, &self.client_id)
            .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()));
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(self.verifier)
            .request_async(&http)
            .await
            .map_err(|e| match classify(e) {
                Failure::Fatal(e) => e,
                Failure::Transient(msg) => GraphError::Transport(msg),
            })?;
        let refresh = response
            .refresh_token()
            .map(|r| r.secret().clone())
            .ok_or_else(|| {
                GraphError::SignIn("no refresh token: request the offline_access scope".into())
            })?;
        let token = AccessToken::new(
            response.access_token().secret().clone(),
            response.expires_in().unwrap_or(Duration::from_secs(3599)),
        );
        let scopes = self.scopes.iter().map(String::as_str).collect::<Vec<_>>();
        let tenant_id = response
            .extra_fields()
            .id_token
            .as_deref()
            .and_then(tenant_of_id_token);
        // Later refreshes go to the signed-in tenant, not to `organizations`.
        let tenant = tenant_id.clone().unwrap_or_else(|| self.tenant.clone());
        let mut session =
            DelegatedSession::resume(&self.cloud, &tenant, &self.client_id, &refresh, &scopes);
        Arc::get_mut(&mut session.inner)
            .expect("not shared yet")
            .tenant_id = tenant_id;
        session
            .inner
            .cache
            .get_or_fetch(|| async { Ok(token) })
            .await?;
        Ok(session)
    }

    /// The authorization code from the redirect, after checking `state` and `error`.
    fn code_from(&self, redirected_to: &Url) -> Result<String, GraphError> {
        let same_target = redirected_to.scheme() == self.redirect_uri.scheme()
            && redirected_to.host_str() == self.redirect_uri.host_str()
            && redirected_to.path().trim_end_matches('/')
                == self.redirect_uri.path().trim_end_matches('/');
        if !same_target {
            return Err(GraphError::SignIn(
                "redirect to an unexpected address".into(),
            ));
        }
        let param = |name: &str| {
            redirected_to
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(self.state.secret().as_str()) {
            return Err(GraphError::SignIn(
                "state does not match this sign-in".into(),
            ));
        }
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            return Err(GraphError::Identity(crate::error::IdentityError {
                status: None,
                aadsts: crate::error::aadsts_from_description(&description),
                error,
                description,
            }));
        }
        param("code").ok_or_else(|| GraphError::SignIn("redirect carries no code".into()))
    }
}

/// Delegated tokens of a signed-in admin, renewed with the refresh token (which rotates on
/// every use: read [`DelegatedSession::refresh_token`] after use to persist the newest).
#[derive(Clone, Debug)]
pub struct DelegatedSession {
    inner: Arc<Inner>,
}

struct Inner {
    client: PublicClient,
    tenant_id: Option<String>,
    scopes: Vec<String>,
    refresh_token: Mutex<String>,
    http: reqwest::Client,
    cache: TokenCache,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedSession")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl DelegatedSession {
    /// Continue a session from a stored refresh token.
    pub fn resume(
        cloud: &Cloud,
        tenant: &str,
        client_id: &str,
        refresh_token: &str,
        scopes: &[&str],
    ) -> DelegatedSession {
        DelegatedSession {
            inner: Arc::new(Inner {
                client: public_client(cloud, tenant, client_id),
                tenant_id: None,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                refresh_token: Mutex::new(refresh_token.to_owned()),
                http: crate::client::http_client(),
                cache: TokenCache::default(),
            }),
        }
    }

    /// The signed-in admin's tenant id (from the sign-in's ID token), when known.
    pub fn tenant_id(&self) -> Option<&str> {
        self.inner.tenant_id.as_deref()
    }

    /// The newest refresh token, for the caller to seal. Never log it.
    pub fn refresh_token(&self) -> String {
        self.inner
            .refresh_token
            .lock()
            .expect("refresh token lock")
            .clone()
    }

    async fn refresh(&self) -> Result<AccessToken, GraphError> {
        let current = RefreshToken::new(self.refresh_token());
        let response = self
            .inner
            .client
            .exchange_refresh_token(&current)
            .add_scopes(self.inner.scopes.iter().map(|s| Scope::new(s.clone())))
            .request_async(&self.inner.http)
            .await
            .map_err(|e| match classify(e) {
                Failure::Fatal(e) => e,
                Failure::Transient(msg) => GraphError::Transport(msg),
            })?;
        if let Some(next) = response.refresh_token() {
            *self.inner.refresh_token.lock().expect("refresh token lock") = next.secret().clone();
        }
        Ok(AccessToken::new(
            response.access_token().secret().clone(),
            response.expires_in().unwrap_or(Duration::from_secs(3599)),
        ))
    }
}

impl TokenSource for DelegatedSession {
    fn access_token(&self) -> BoxFuture<'_, Result<AccessToken, GraphError>> {
        Box::pin(async move { self.inner.cache.get_or_fetch(|| self.refresh()).await })
    }

    fn invalidate(&self) {
        self.inner.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    fn begin() -> (SignIn, SignInRequest) {
        let cloud = Cloud::global();
        let redirect = Url::parse("http://127.0.0.1:53682/callback").unwrap();
        SignIn::begin(
            &cloud,
            "organizations",
            "11112222-3333-4444-5555-666677778888",
            &redirect,
            &[
                "openid",
                "offline_access",
                "https://graph.microsoft.com/Application.ReadWrite.All",
            ],
        )
    }

    fn params(url: &Url) -> std::collections::HashMap<String, String> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn authorize_url_has_every_documented_parameter_and_an_s256_challenge() {
        let (sign_in, req) = begin();
        assert_eq!(
            format!(
                "{}://{}{}",
                req.url.scheme(),
                req.url.host_str().unwrap(),
                req.url.path()
            ),
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
        );
        let p = params(&req.url);
        assert_eq!(p["client_id"], "11112222-3333-4444-5555-666677778888");
        assert_eq!(p["response_type"], "code");
        assert_eq!(p["redirect_uri"], "http://127.0.0.1:53682/callback");
        assert_eq!(p["response_mode"], "query");
        assert_eq!(
            p["scope"],
            "openid offline_access https://graph.microsoft.com/Application.ReadWrite.All"
        );
        assert_eq!(p["code_challenge_method"], "S256");
        assert_eq!(p["state"], *sign_in.state.secret());
        // RFC 7636: challenge = BASE64URL(SHA256(ASCII(verifier))).
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(sign_in.verifier.secret().as_bytes()));
        assert_eq!(p["code_challenge"], expected);
        let v = sign_in.verifier.secret();
        assert!((43..=128).contains(&v.len()), "verifier length {}", v.len());
        // Each sign-in is fresh.
        let (other, _) = begin();
        assert_ne!(other.state.secret(), sign_in.state.secret());
        assert_ne!(other.verifier.secret(), sign_in.verifier.secret());
    }

    #[test]
    fn tenant_id_comes_from_the_id_token() {
        let claims =
            URL_SAFE_NO_PAD.encode(br#"{"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","aud":"x"}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln");
        assert_eq!(
            tenant_of_id_token(&token).as_deref(),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(tenant_of_id_token("not-a-jwt"), None);
        let no_tid = format!("h.{}.s", URL_SAFE_NO_PAD.encode(br#"{"aud":"x"}"#));
        assert_eq!(tenant_of_id_token(&no_tid), None);
    }

    #[test]
    fn redirect_checks_state_error_and_target() {
        let (sign_in, _) = begin();
        let state = sign_in.state.secret().clone();
        let ok = Url::parse(&format!(
            "http://127.0.0.1:53682/callback?code=abc&state={state}"
        ))
        .unwrap();
        assert_eq!(sign_in.code_from(&ok).unwrap(), "abc");
        let wrong_state =
            Url::parse("http://127.0.0.1:53682/callback?code=abc&state=evil").unwrap();
        assert!(matches!(
            sign_in.code_from(&wrong_state),
            Err(GraphError::SignIn(_))
        ));
        let no_state = Url::parse("http://127.0.0.1:53682/callback?code=abc").unwrap();
        assert!(matches!(
            sign_in.code_from(&no_state),
            Err(GraphError::SignIn(_))
        ));
        let denied = Url::parse(&format!(
            "http://127.0.0.1:53682/callback?error=access_denied&error_description=AADSTS65004%3A+declined&state={state}"
        ))
        .unwrap();
        match sign_in.code_from(&denied) {
            Err(GraphError::Identity(e)) => {
                assert_eq!(e.error, "access_denied");
                assert_eq!(e.aadsts, Some(65004));
            }
            other => panic!("{other:?}"),
        }
        let elsewhere = Url::parse(&format!(
            "http://evil.example/callback?code=abc&state={state}"
        ))
        .unwrap();
        assert!(matches!(
            sign_in.code_from(&elsewhere),
            Err(GraphError::SignIn(_))
        ));
        let no_code =
            Url::parse(&format!("http://127.0.0.1:53682/callback?state={state}")).unwrap();
        assert!(matches!(
            sign_in.code_from(&no_code),
            Err(GraphError::SignIn(_))
        ));
    }
}
