//! strongroom-graph: the Microsoft identity platform and Microsoft Graph client that
//! Strongroom backs mailboxes up with. It knows nothing of storage.
//!
//! - [`auth`]: app-only tokens ([`AppCredential`], client secret or certificate assertion),
//!   interactive sign-in ([`SignIn`], auth code + PKCE) and [`DelegatedSession`].
//! - [`provision`]: register Strongroom's app in a tenant and grant it Graph roles.
//! - [`GraphClient`]: every Graph call goes through it: bearer token, `client-request-id`,
//!   error envelopes as [`GraphError`], and the [`Governor`] (≤ 4 requests in flight per
//!   mailbox, a request budget, a shared `Retry-After` fence per mailbox, jittered backoff for
//!   5xx, resets and truncated bodies).
//! - Users and mailbox kinds ([`GraphClient::users`], [`GraphClient::mailbox_kind`]), mail
//!   folders ([`GraphClient::folder_tree`]), per-folder message delta
//!   ([`GraphClient::message_delta`]), MIME ([`GraphClient::message_mime`],
//!   [`GraphClient::message_mime_stream`]) and `$batch` ([`GraphClient::batch`]).
//! - [`restore`]: folders, messages as non-drafts with their original dates, attachments
//!   (upload sessions for large ones), deletes.
//!
//! Name a mailbox by the same string (the user id) in every call: the governor keys its
//! per-mailbox limits on it.
//!
//! Backup, app-only:
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use strongroom_graph::{AppCredential, AppSecret, Cloud, GraphClient, MailboxKind, MessageDeltaOptions, Change};
//!
//! # async fn backup() -> Result<(), strongroom_graph::GraphError> {
//! let cloud = Cloud::global();
//! let credential = AppCredential::new(&cloud, "contoso.onmicrosoft.com", "client-id",
//!     AppSecret::Secret("client-secret".into()));
//! let graph = GraphClient::new(&cloud, credential);
//! let mut users = graph.users();
//! while let Some(page) = users.try_next().await? {
//!     for user in page.value {
//!         if graph.mailbox_kind(&user.id).await? == MailboxKind::None {
//!             continue; // unlicensed or on-premises: nothing to back up
//!         }
//!         for folder in graph.folder_tree(&user.id).await? {
//!             let mut pages = graph.message_delta(&user.id, &folder.id, None, &MessageDeltaOptions::default())?;
//!             while let Some(page) = pages.try_next().await? {
//!                 for change in page.changes {
//!                     if let Change::Upsert(message) = change {
//!                         let mime = graph.message_mime(&user.id, &message.id, 64 << 20).await?;
//!                         println!("{} bytes", mime.len());
//!                     }
//!                 }
//!                 // page.delta_link (last page only): save it for the next round.
//!             }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A delta round that fails with [`GraphError::SyncStateNotFound`] names the folder whose
//! saved link expired: start that folder again with `from = None`; other folders go on.
//!
//! First setup, interactive: the admin signs in, Strongroom provisions its own app with a new
//! certificate, and backups then run app-only with that certificate.
//!
//! ```no_run
//! use strongroom_graph::provision::provisioning_scopes;
//! use strongroom_graph::{AppCertificate, AppCredential, AppSecret, AssertionAlgorithm, Cloud, GraphClient, SignIn, READ_ROLES};
//!
//! # async fn setup(redirected_to: url::Url) -> Result<(), strongroom_graph::GraphError> {
//! let cloud = Cloud::global();
//! let redirect = url::Url::parse("http://127.0.0.1:53682/").unwrap();
//! let scopes = provisioning_scopes(&cloud);
//! let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
//! let (sign_in, request) = SignIn::begin(&cloud, "organizations", "public-client-id", &redirect, &scopes);
//! // The UI opens request.url and hands back the URL the webview was redirected to.
//! let session = sign_in.finish(&redirected_to).await?;
//! let tenant_id = session.tenant_id().expect("openid was requested").to_owned();
//! let certificate = AppCertificate::generate("Strongroom")?;
//! let app = GraphClient::new(&cloud, session).provision_app("Strongroom", &certificate, READ_ROLES).await?;
//! // Seal certificate.private_key_pem(); then, unattended:
//! let credential = AppCredential::new(&cloud, &tenant_id, &app.app_id,
//!     AppSecret::Certificate { certificate, algorithm: AssertionAlgorithm::Ps256 });
//! let graph = GraphClient::new(&cloud, credential);
//! # Ok(()) }
//! ```

pub mod auth;
mod batch;
mod client;
mod error;
pub mod governor;
mod mail;
mod paging;
pub mod provision;
pub mod resources;
pub mod restore;
#[cfg(test)]
mod test_fixtures;
mod users;

pub use auth::{
    AccessToken, AppCertificate, AppCredential, AppSecret, AssertionAlgorithm, Cloud,
    DelegatedSession, SignIn, SignInRequest, TokenSource,
};
pub use batch::{BatchRequest, BatchResponse, MAX_BATCH};
pub use client::{BodyStream, ClientOptions, GraphClient};
pub use error::{ErrorCode, GraphError, IdentityError, ServiceError};
pub use governor::{Backoff, Governor, GovernorConfig, Lane};
pub use mail::MessageDeltaOptions;
pub use paging::{DeltaLink, DeltaPage, Page};
pub use provision::{ProvisionedApp, READ_ROLES, WRITE_ROLES};
pub use resources::{
    Attachment, Change, MailFolder, MailboxKind, MailboxSettings, Message, Recipient,
    RemovedReason, User, UserPurpose,
};
pub use restore::{NewAttachment, OriginalState};
