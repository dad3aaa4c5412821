//! Access tokens, their cache, and the seam through which the Graph client gets them.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::error::GraphError;

/// Renew a cached token this long before it expires, so no request carries a token that dies
/// in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// A bearer token. Opaque: never parsed; `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    secret: String,
    expires_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    pub fn new(secret: String, lifetime: Duration) -> AccessToken {
        AccessToken {
            secret,
            expires_at: Instant::now() + lifetime,
        }
    }

    /// The bearer value, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Fresh enough to start a request with.
    pub fn is_fresh(&self) -> bool {
        Instant::now() + EXPIRY_MARGIN < self.expires_at
    }
}

/// Where the Graph client gets bearer tokens. Implemented by [`crate::AppCredential`] and
/// [`crate::DelegatedSession`]; tests may implement it too.
pub trait TokenSource: Send + Sync + 'static {
    /// A token valid for at least a few minutes (cached when possible).
    fn access_token(&self) -> BoxFuture<'_, Result<AccessToken, GraphError>>;
    /// Graph said the token is invalid (401): drop any cached copy.
    fn invalidate(&self);
}

/// A single-flight cache: concurrent callers share one token request.
#[derive(Debug, Default)]
pub struct TokenCache {
    slot: tokio::sync::Mutex<Option<AccessToken>>,
}

impl TokenCache {
    pub async fn get_or_fetch<F, Fut>(&self, fetch: F) -> Result<AccessToken, GraphError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<AccessToken, GraphError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.is_fresh()) {
            return Ok(t.clone());
        }
        let token = fetch().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    pub fn clear(&self) {
        // A request holding the lock is fetching a new token anyway.
        if let Ok(mut slot) = self.slot.try_lock() {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn cache_reuses_until_near_expiry() {
        let cache = TokenCache::default();
        let fetches = AtomicU32::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(format!("t{n}"), Duration::from_secs(3599)))
        };
        assert_eq!(cache.get_or_fetch(fetch).await.unwrap().secret(), "t0");
        assert_eq!(cache.get_or_fetch(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(3599 - 301)).await;
        assert_eq!(cache.get_or_fetch(fetch).await.unwrap().secret(), "t0");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            cache.get_or_fetch(fetch).await.unwrap().secret(),
            "t1",
            "renewed in margin"
        );
        cache.clear();
        assert_eq!(cache.get_or_fetch(fetch).await.unwrap().secret(), "t2");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = AccessToken::new("eyJ-very-secret".into(), Duration::from_secs(1));
        assert!(!format!("{t:?}").contains("very-secret"));
    }
}
