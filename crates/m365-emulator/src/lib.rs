//! m365-emulator: a local Microsoft 365 tenant — the Microsoft identity platform and the
//! Microsoft Graph endpoints a mailbox backup uses — for tests, benchmarks and demos on
//! machines without internet.
//!
//! It follows Microsoft's documented behaviour field for field: token endpoint (client
//! credentials with a secret or certificate assertion, auth code + PKCE, refresh tokens),
//! sign-in and consent pages, admin consent, users and mailboxes, folders, messages, `$value`,
//! attachments, delta queries with `@removed` and expiring sync states, `$batch`, restore
//! writes and upload sessions, provisioning of apps; plus per-mailbox throttling, latency and
//! fault injection. Tenants are generated from a seed or loaded from a spec file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), m365_emulator::EmulatorError> {
//! use m365_emulator::{Config, Emulator};
//!
//! let emu = Emulator::start(Config { users: 5, messages_per_user: 20, seed: 7, ..Default::default() }).await?;
//! let info = emu.info();
//! // Token endpoint: {authority}/{tenant_id}/oauth2/v2.0/token; Graph: {graph}/v1.0/users
//! println!("{} {} {}", info.authority, info.graph, info.client_id);
//! let tenant = emu.tenant(); // users, folders, messages with their exact MIME bytes
//! assert!(tenant.users.len() >= 5);
//! let counters = emu.counters(); // requests per mailbox and endpoint, 429s, peak concurrency
//! assert_eq!(counters.throttled, 0);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin_browser;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod error;
pub mod faults;
pub mod graph;
pub mod identity;
pub mod server;
pub mod state;
pub mod tenant;
pub mod throttle;

pub use config::{Attachments, Config, EmlImport, FaultKind, Throttle};
pub use control::{AppCredentials, AppSpec, MessageIds, MessageUpdate, NewUser, TenantSnapshot};
pub use counters::CounterSnapshot;
pub use error::EmulatorError;
pub use faults::ScheduledFault;
pub use tenant::UserKind;

use serde::{Deserialize, Serialize};
use state::{AppState, Shared};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Where and how to reach a running emulator: the CLI prints this as its one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReadyInfo {
    /// Identity platform base, like `https://login.microsoftonline.com`.
    pub authority: String,
    /// Graph base, like `https://graph.microsoft.com` (append `/v1.0`).
    pub graph: String,
    pub tenant_id: String,
    pub tenant_domain: String,
    /// The pre-registered app (all backup and restore roles granted; secret below; public
    /// client redirect URIs `http://localhost` and `http://127.0.0.1`).
    pub client_id: String,
    pub client_secret: String,
    /// The Global Administrator's sign-in.
    pub admin: Credentials,
    /// Control API base (`{graph}/_emulator`).
    pub control: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A running emulator. Dropping it (or `shutdown`) stops the server.
#[derive(Debug)]
pub struct Emulator {
    shared: AppState,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Builds the tenant, binds 127.0.0.1:`config.port` and starts serving.
    pub async fn start(config: Config) -> Result<Emulator, EmulatorError> {
        let clock = clock::Clock::default();
        let mut tenant = match &config.tenant_file {
            Some(path) => tenant::spec::load(path, config.seed, clock.now())?,
            None => {
                let (seed, users, per_user) = (config.seed, config.users, config.messages_per_user);
                let attachments = config.attachments;
                tokio::task::spawn_blocking(move || {
                    tenant::generate::tenant(seed, users, per_user, attachments)
                })
                .await
                .map_err(|e| EmulatorError::Invalid(e.to_string()))?
            }
        };
        for import in &config.eml_imports {
            tenant::spec::import_eml(&mut tenant, &import.dir, &import.into, clock.now())?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| EmulatorError::Bind {
                port: config.port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                port: config.port,
                source,
            })?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let app = tenant
            .apps
            .first()
            .ok_or(EmulatorError::NotFound("default app"))?;
        let admin = tenant
            .users
            .iter()
            .find(|u| u.is_global_admin)
            .or(tenant.users.first());
        let info = ReadyInfo {
            authority: base.clone(),
            graph: base.clone(),
            tenant_id: tenant.id.clone(),
            tenant_domain: tenant.domain.clone(),
            client_id: app.app_id.clone(),
            client_secret: app.secrets.first().cloned().unwrap_or_default(),
            admin: Credentials {
                username: admin
                    .map(|u| u.user_principal_name.clone())
                    .unwrap_or_default(),
                password: admin.map(|u| u.password.clone()).unwrap_or_default(),
            },
            control: format!("{base}/_emulator"),
        };
        let shared = Arc::new(Shared {
            throttle: throttle::Throttler::new(config.throttle, config.concurrency_limit),
            faults: faults::Faults::new(config.fault_rate, config.fault_kinds.clone(), config.seed),
            config,
            info,
            tenant: RwLock::new(tenant),
            clock,
            signer: identity::jwt::TokenSigner::default(),
            identity: Mutex::new(identity::IdentityState::default()),
            counters: counters::Counters::default(),
            uploads: Mutex::new(Default::default()),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            server::app(shared.clone()),
            stopped,
        ));
        tracing::info!(port, "m365-emulator listening");
        Ok(Emulator {
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn info(&self) -> &ReadyInfo {
        &self.shared.info
    }

    /// A copy of the tenant with every message's exact MIME bytes.
    pub fn tenant(&self) -> TenantSnapshot {
        control::snapshot(&self.shared, true)
    }

    /// The same copy without MIME (cheap for large tenants; what `GET /_emulator/tenant` serves).
    pub fn tenant_metadata(&self) -> TenantSnapshot {
        control::snapshot(&self.shared, false)
    }

    /// Keeps every generated message's MIME in memory from now on, so `$value` serves
    /// stored bytes as it does for imported mail. For benchmarks in which generating MIME
    /// must not compete with the measured client for the cores; costs the tenant's MIME
    /// size in memory.
    pub fn store_generated_mime(&self) {
        let mut tenant = self.shared.tenant_mut();
        for mailbox in tenant.users.iter_mut().filter_map(|u| u.mailbox.as_mut()) {
            for message in mailbox.messages.values_mut() {
                if let tenant::MimeSource::Generated(recipe) = &message.mime {
                    message.mime = tenant::MimeSource::Stored(recipe.build().into());
                }
            }
        }
    }

    /// Request counters (the same data as `GET /_emulator/counters`).
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Moves the emulator's clock forward (token, code and delta-token expiry; budgets).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    pub fn set_throttle(&self, throttle: Throttle, concurrency_limit: usize) {
        self.shared.throttle.set(throttle, concurrency_limit);
    }

    /// Scales Outlook's upload limit (150 MB per 5 minutes per app and mailbox) for a
    /// benchmark; applies while throttling is on.
    pub fn set_upload_limit(&self, bytes: u64, per: Duration) {
        self.shared.throttle.set_upload_limit(bytes, per);
    }

    /// Upload bytes (POST/PUT/PATCH bodies) admitted for `mailbox` (as the request path
    /// names it) while throttling is on.
    pub fn uploaded_bytes(&self, mailbox: &str) -> u64 {
        self.shared.throttle.uploaded(mailbox)
    }

    pub fn set_faults(&self, rate: f64, kinds: Vec<FaultKind>) {
        self.shared.faults.set(rate, kinds);
    }

    /// Makes the next `count` matching Graph requests fail with `fault.kind`.
    pub fn schedule_fault(&self, fault: ScheduledFault, count: usize) {
        self.shared.faults.schedule(fault, count);
    }

    /// Delivers raw MIME into `folder` (id, well-known name or path, created if missing).
    pub fn add_message(
        &self,
        user: &str,
        folder: &str,
        mime: &[u8],
    ) -> Result<MessageIds, EmulatorError> {
        control::add_message(&self.shared, user, folder, mime)
    }

    pub fn update_message(
        &self,
        user: &str,
        message_id: &str,
        update: &MessageUpdate,
    ) -> Result<(), EmulatorError> {
        control::update_message(&self.shared, user, message_id, update)
    }

    pub fn move_message(
        &self,
        user: &str,
        message_id: &str,
        folder: &str,
    ) -> Result<MessageIds, EmulatorError> {
        control::move_message(&self.shared, user, message_id, folder)
    }

    pub fn delete_message(&self, user: &str, message_id: &str) -> Result<(), EmulatorError> {
        control::delete_message(&self.shared, user, message_id)
    }

    /// Creates a folder under `parent` (id, well-known name or path); returns its id.
    pub fn create_folder(
        &self,
        user: &str,
        parent: &str,
        name: &str,
        hidden: bool,
    ) -> Result<String, EmulatorError> {
        control::create_folder(&self.shared, user, parent, name, hidden)
    }

    pub fn rename_folder(&self, user: &str, folder: &str, name: &str) -> Result<(), EmulatorError> {
        control::rename_folder(&self.shared, user, folder, name)
    }

    pub fn move_folder(&self, user: &str, folder: &str, parent: &str) -> Result<(), EmulatorError> {
        control::move_folder(&self.shared, user, folder, parent)
    }

    pub fn delete_folder(&self, user: &str, folder: &str) -> Result<(), EmulatorError> {
        control::delete_folder(&self.shared, user, folder)
    }

    pub fn add_user(&self, user: &NewUser) -> Result<control::UserSnapshot, EmulatorError> {
        control::add_user(&self.shared, user)
    }

    /// Soft-deletes a user, as deleting in Entra does (users/delta: `@removed` `changed`).
    pub fn remove_user(&self, user: &str) -> Result<(), EmulatorError> {
        control::remove_user(&self.shared, user, false)
    }

    /// Deletes a user permanently (users/delta: `@removed` `deleted`).
    pub fn purge_user(&self, user: &str) -> Result<(), EmulatorError> {
        control::remove_user(&self.shared, user, true)
    }

    pub fn unlicense_user(&self, user: &str) -> Result<(), EmulatorError> {
        control::unlicense_user(&self.shared, user)
    }

    /// Makes outstanding delta tokens of one mailbox (or all) fail with 410 SyncStateNotFound.
    pub fn expire_delta_tokens(&self, user: Option<&str>) -> Result<(), EmulatorError> {
        control::expire_delta_tokens(&self.shared, user)
    }

    /// Registers an app with exactly `spec.roles` (and optionally a certificate).
    pub fn register_app(&self, spec: &AppSpec) -> Result<AppCredentials, EmulatorError> {
        control::register_app(&self.shared, spec)
    }

    /// Over quota: delta calls get 403 ErrorQuotaExceeded, reads still work.
    pub fn set_mailbox_full(&self, user: &str, full: bool) -> Result<(), EmulatorError> {
        control::set_mailbox_full(&self.shared, user, full)
    }

    /// Restricts an app to these mailboxes (an application access policy); `None` lifts it.
    pub fn set_access_policy(
        &self,
        client_id: &str,
        mailboxes: Option<&[String]>,
    ) -> Result<(), EmulatorError> {
        control::set_access_policy(&self.shared, client_id, mailboxes)
    }

    pub fn revoke_refresh_tokens(&self) {
        control::revoke_refresh_tokens(&self.shared);
    }

    /// Stops the server and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
