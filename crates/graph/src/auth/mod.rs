//! Microsoft identity platform: where to ask for tokens, and the tokens themselves.
//!
//! - [`AppCredential`]: app-only (client credentials) with a secret or a certificate assertion;
//!   what every backup uses.
//! - [`SignIn`] / [`DelegatedSession`]: interactive authorization code + PKCE for a public
//!   client, used once to provision the app registration.
//! - [`AppCertificate`]: the self-signed certificate whose key signs client assertions.
//!
//! Tokens are opaque: never parsed, never logged (their `Debug` is redacted).

mod app;
mod certificate;
mod delegated;
mod token;

pub use app::{AppCredential, AppSecret};
pub use certificate::{AppCertificate, AssertionAlgorithm, AssertionClaims};
pub use delegated::{DelegatedSession, SignIn, SignInRequest};
pub use token::{AccessToken, TokenCache, TokenSource};

use url::Url;

use crate::error::GraphError;

/// The Graph resource id used in scopes (`https://graph.microsoft.com/.default`).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Base URLs of one Microsoft cloud (global, a sovereign cloud, or the emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// Identity platform host, e.g. `https://login.microsoftonline.com`.
    pub authority: Url,
    /// Graph host, e.g. `https://graph.microsoft.com`.
    pub graph: Url,
    /// Resource id for scopes; the global Graph id unless a sovereign cloud says otherwise.
    pub graph_resource: String,
}

impl Cloud {
    pub fn global() -> Cloud {
        Cloud::new(
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
        )
        .expect("static URLs parse")
    }

    /// A cloud at other base URLs (for example the emulator's `info().authority` and `.graph`).
    pub fn new(authority: &str, graph: &str) -> Result<Cloud, GraphError> {
        let parse = |s: &str| {
            Url::parse(s.trim_end_matches('/'))
                .map_err(|e| GraphError::InvalidRequest(format!("bad base URL {s:?}: {e}")))
        };
        Ok(Cloud {
            authority: parse(authority)?,
            graph: parse(graph)?,
            graph_resource: GRAPH_RESOURCE.to_owned(),
        })
    }

    fn authority_path(&self, tenant: &str, tail: &str) -> Url {
        let base = self.authority.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{tenant}/{tail}")).expect("base URL plus path parses")
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self, tenant: &str) -> Url {
        self.authority_path(tenant, "oauth2/v2.0/token")
    }

    /// `{authority}/{tenant}/oauth2/v2.0/authorize`
    pub fn authorize_url(&self, tenant: &str) -> Url {
        self.authority_path(tenant, "oauth2/v2.0/authorize")
    }

    /// `{graph}/v1.0/` (with the trailing slash, so relative paths join under it).
    pub fn graph_v1(&self) -> Url {
        let base = self.graph.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/v1.0/")).expect("base URL plus path parses")
    }

    /// `{resource}/.default`: every application permission granted to the app.
    pub fn default_scope(&self) -> String {
        format!("{}/.default", self.graph_resource.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_the_global_cloud_and_the_emulator() {
        let g = Cloud::global();
        assert_eq!(
            g.token_url("contoso.onmicrosoft.com").as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            g.authorize_url("organizations").as_str(),
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
        );
        assert_eq!(g.graph_v1().as_str(), "https://graph.microsoft.com/v1.0/");
        assert_eq!(g.default_scope(), "https://graph.microsoft.com/.default");
        let emu = Cloud::new("http://127.0.0.1:4000/", "http://127.0.0.1:4000/").unwrap();
        assert_eq!(
            emu.token_url("t1").as_str(),
            "http://127.0.0.1:4000/t1/oauth2/v2.0/token"
        );
        assert_eq!(
            emu.graph_v1().join("users").unwrap().as_str(),
            "http://127.0.0.1:4000/v1.0/users"
        );
        assert!(Cloud::new("not a url", "http://x").is_err());
    }
}
