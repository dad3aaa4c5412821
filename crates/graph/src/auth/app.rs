//! App-only access: the OAuth 2.0 client-credentials grant with a client secret or a
//! certificate assertion, scope `{graph}/.default`. No refresh token; the token is cached and
//! fetched again shortly before it expires.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use url::Url;
use uuid::Uuid;

use super::certificate::{AppCertificate, AssertionAlgorithm, AssertionClaims};
use super::token::{AccessToken, TokenCache, TokenSource};
use super::Cloud;
use crate::error::{aadsts_from_description, GraphError, IdentityError};
use crate::governor::Backoff;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the app proves its identity.
#[derive(Clone)]
pub enum AppSecret {
    Secret(String),
    Certificate {
        certificate: AppCertificate,
        algorithm: AssertionAlgorithm,
    },
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppSecret::Secret(_) => f.write_str("Secret(<redacted>)"),
            AppSecret::Certificate {
                certificate,
                algorithm,
            } => f
                .debug_struct("Certificate")
                .field("certificate", certificate)
                .field("algorithm", algorithm)
                .finish(),
        }
    }
}

/// App-only credential for one tenant: a [`TokenSource`] for the Graph client.
#[derive(Clone, Debug)]
pub struct AppCredential {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    token_url: Url,
    scope: String,
    client_id: String,
    secret: AppSecret,
    http: reqwest::Client,
    cache: TokenCache,
    backoff: Backoff,
}

impl AppCredential {
    pub fn new(cloud: &Cloud, tenant: &str, client_id: &str, secret: AppSecret) -> AppCredential {
        AppCredential {
            inner: Arc::new(Inner {
                token_url: cloud.token_url(tenant),
                scope: cloud.default_scope(),
                client_id: client_id.to_owned(),
                secret,
                http: crate::client::http_client(),
                cache: TokenCache::default(),
                backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10), 4),
            }),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Request a new token now, bypassing the cache (also how a caller verifies credentials).
    pub async fn fetch(&self) -> Result<AccessToken, GraphError> {
        let mut attempt = 0;
        loop {
            match self.fetch_once().await {
                Err(Failure::Transient(msg)) if attempt + 1 < self.inner.backoff.max_attempts => {
                    tracing::debug!(attempt, "token request failed transiently: {msg}");
                    tokio::time::sleep(self.inner.backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(Failure::Transient(last)) => {
                    return Err(GraphError::RetriesExhausted {
                        attempts: attempt + 1,
                        last,
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Ok(t) => return Ok(t),
            }
        }
    }

    async fn fetch_once(&self) -> Result<AccessToken, Failure> {
        let i = &self.inner;
        let token_url = TokenUrl::from_url(i.token_url.clone());
        let client = BasicClient::new(ClientId::new(i.client_id.clone()))
            .set_token_uri(token_url)
            .set_auth_type(AuthType::RequestBody);
        let result = match &i.secret {
            AppSecret::Secret(s) => {
                client
                    .set_client_secret(ClientSecret::new(s.clone()))
                    .exchange_client_credentials()
                    .add_scope(Scope::new(i.scope.clone()))
                    .request_async(&i.http)
                    .await
            }
            AppSecret::Certificate {
                certificate,
                algorithm,
            } => {
                let claims = AssertionClaims::new(
                    &i.token_url,
                    &i.client_id,
                    chrono::Utc::now(),
                    Uuid::new_v4(),
                );
                let assertion = certificate
                    .client_assertion(*algorithm, &claims)
                    .map_err(Failure::Fatal)?;
                client
                    .exchange_client_credentials()
                    .add_scope(Scope::new(i.scope.clone()))
                    .add_extra_param("client_assertion_type", JWT_BEARER)
                    .add_extra_param("client_assertion", assertion)
                    .request_async(&i.http)
                    .await
            }
        };
        let response = result.map_err(classify)?;
        let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3599));
        Ok(AccessToken::new(
            response.access_token().secret().clone(),
            lifetime,
        ))
    }
}

impl TokenSource for AppCredential {
    fn access_token(&self) -> BoxFuture<'_, Result<AccessToken, GraphError>> {
        Box::pin(async move { self.inner.cache.get_or_fetch(|| self.fetch()).await })
    }

    fn invalidate(&self) {
        self.inner.cache.clear();
    }
}

pub(crate) enum Failure {
    Transient(String),
    Fatal(GraphError),
}

type OauthError = RequestTokenError<
    oauth2::HttpClientError<reqwest::Error>,
    oauth2::StandardErrorResponse<BasicErrorResponseType>,
>;

/// Sort a token-endpoint failure into "try again" and "tell the user".
pub(crate) fn classify(e: OauthError) -> Failure {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let error = r.error().to_string();
            let description = r.error_description().cloned().unwrap_or_default();
            if error == "temporarily_unavailable" {
                return Failure::Transient(format!("{error}: {description}"));
            }
            Failure::Fatal(GraphError::Identity(IdentityError {
                status: None,
                aadsts: aadsts_from_description(&description),
                error,
                description,
            }))
        }
        RequestTokenError::Request(e) => Failure::Transient(format!("token request: {e}")),
        // Non-JSON bodies: gateways' 5xx pages, truncated bodies.
        RequestTokenError::Parse(e, body) => Failure::Transient(format!(
            "token response not understood ({e}): {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        )),
        RequestTokenError::Other(msg) => Failure::Transient(msg),
    }
}
