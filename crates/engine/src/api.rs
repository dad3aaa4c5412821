//! The one surface the desktop app and the CLI call. Inputs and outputs are plain
//! serialisable data, errors are [`crate::Error`] (`{code, message}`).
//!
//! [`status`] needs no archive. Everything else goes through an [`Engine`]: an open archive
//! and its catalog, from [`Engine::init`] or [`Engine::open`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use strongroom_archive::{Archive, Clock, KdfParams, Options, Purpose, SystemClock};
use strongroom_graph::ClientOptions;

use crate::accounts::{self, AccountView, Selection};
use crate::backup::{self, BackupOptions};
use crate::catalog::{Catalog, CATALOG_FILE};
use crate::error::{Error, ErrorCode, Result};
use crate::maintenance::{self, PruneSummary, VerifyReport};
use crate::progress::ProgressSink;
use crate::rebuild::{self, RebuildSummary};
use crate::report::RunReport;
use crate::search::{IndexSummary, Search, SearchQuery, SearchResults};
use crate::snapshot_view::{self, FolderInfo, MailboxView, MessageInfo, SnapshotInfo};
use crate::task::{Connection, Credential, Service, Task, TaskSettings};

/// What the engine is and what it is doing, for the dashboard and `strongroom --version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// The engine crate's version (the app and the CLI ship in step with it).
    pub version: String,
    /// Number of configured backup tasks.
    pub task_count: u32,
    /// Whether a job (backup, restore, …) is running now.
    pub busy: bool,
}

/// The engine's version and status before any archive is open (no tasks yet).
pub fn status() -> EngineStatus {
    EngineStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        task_count: 0,
        busy: false,
    }
}

/// Injected dependencies and tunables. `EngineOptions::default()` is right for production.
#[derive(Clone)]
pub struct EngineOptions {
    pub clock: Arc<dyn Clock>,
    pub graph: ClientOptions,
    pub backup: BackupOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            clock: Arc::new(SystemClock),
            graph: ClientOptions::default(),
            backup: BackupOptions::default(),
        }
    }
}

/// A new task's name and tenant connection.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    /// `None`: the global cloud.
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    pub settings: TaskSettings,
}

/// An open archive with its catalog.
pub struct Engine {
    archive: Archive,
    catalog: Catalog,
    dir: PathBuf,
    options: EngineOptions,
    busy: AtomicBool,
    search: Search,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({})", self.dir.display())
    }
}

impl Engine {
    /// Creates a new archive in `dir` (which must not hold one) and its catalog.
    pub fn init(
        dir: &Path,
        passphrase: &str,
        kdf: KdfParams,
        options: EngineOptions,
    ) -> Result<Engine> {
        std::fs::create_dir_all(dir)?;
        let archive = Archive::init(
            Arc::new(strongroom_archive::backend::LocalBackend::new(dir)),
            passphrase,
            kdf,
            archive_options(&options),
        )?;
        Self::with_archive(dir, archive, options)
    }

    /// Opens the archive in `dir`; creates the catalog if it is missing (run `rebuild` to
    /// fill it from the archive).
    pub fn open(dir: &Path, passphrase: &str, options: EngineOptions) -> Result<Engine> {
        let archive = Archive::open(
            Arc::new(strongroom_archive::backend::LocalBackend::new(dir)),
            passphrase,
            archive_options(&options),
        )?;
        Self::with_archive(dir, archive, options)
    }

    fn with_archive(dir: &Path, archive: Archive, options: EngineOptions) -> Result<Engine> {
        let catalog = Catalog::open(
            &dir.join(CATALOG_FILE),
            archive.subkey(Purpose::Catalog),
            archive.subkey(Purpose::Secrets),
        )?;
        Ok(Engine {
            archive,
            catalog,
            dir: dir.to_owned(),
            options,
            busy: AtomicBool::new(false),
            search: Search::default(),
        })
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Version, real task count, and whether a job runs.
    pub fn status(&self) -> Result<EngineStatus> {
        Ok(EngineStatus {
            task_count: self.catalog.task_count()?,
            busy: self.busy.load(Ordering::Relaxed),
            ..status()
        })
    }

    /// Verifies the credentials by fetching a token, then stores the task with its
    /// connection sealed (and records it in the archive so `rebuild` finds it).
    pub async fn connect(&self, request: ConnectRequest) -> Result<Task> {
        let connection = Connection {
            tenant_id: request.tenant_id,
            client_id: request.client_id,
            credential: request.credential,
            authority: request
                .authority
                .unwrap_or_else(|| Connection::GLOBAL_AUTHORITY.to_owned()),
            graph_url: request
                .graph_url
                .unwrap_or_else(|| Connection::GLOBAL_GRAPH.to_owned()),
        };
        let (_, credential) = connection.app_credential()?;
        credential.fetch().await.map_err(|e| {
            Error::new(
                ErrorCode::GraphAuth,
                format!("the tenant refused the credentials: {e}"),
            )
        })?;
        let sealed = self.catalog.seal_connection(&connection)?;
        let task = self.catalog.insert_task(
            None,
            &request.name,
            Service::Exchange,
            &sealed,
            &request.settings,
            self.options.clock.now_ms(),
        )?;
        backup::record_task(&self.archive, &self.catalog, &task)?;
        Ok(task)
    }

    pub fn tasks(&self) -> Result<Vec<Task>> {
        self.catalog.tasks()
    }

    /// The task called `name`, or the only task when `name` is `None`.
    pub fn task(&self, name: Option<&str>) -> Result<Task> {
        let tasks = self.catalog.tasks()?;
        match name {
            Some(n) => tasks
                .into_iter()
                .find(|t| t.name == n)
                .ok_or_else(|| Error::not_found("no task of that name")),
            None => match tasks.len() {
                1 => Ok(tasks.into_iter().next().expect("one task")),
                0 => Err(Error::not_found("no task yet: run connect first")),
                _ => Err(Error::new(
                    ErrorCode::TaskRequired,
                    "several tasks exist: name one",
                )),
            },
        }
    }

    /// Changes a task's settings, and records them in the archive so `rebuild` keeps them.
    pub fn update_settings(&self, task: &Task, settings: &TaskSettings) -> Result<()> {
        self.catalog.update_settings(task.id, settings)?;
        if !settings.index_for_search {
            // Turning search off deletes what the index holds of the task.
            self.search
                .forget_task(&self.archive, task.id, &self.search_tasks()?)?;
        }
        self.record_task(task)
    }

    fn graph(&self, task: &Task) -> Result<strongroom_graph::GraphClient> {
        let sealed = self.catalog.sealed_connection(task.id)?;
        self.catalog
            .open_connection(&sealed)?
            .graph(&self.options.graph)
    }

    /// Discovers the tenant's accounts (licence state, mailbox type, new users) and returns
    /// the grid.
    pub async fn mailboxes(&self, task: &Task) -> Result<Vec<AccountView>> {
        let graph = self.graph(task)?;
        accounts::discover(&graph, &self.catalog, task, self.options.clock.now_ms()).await
    }

    /// The grid as last discovered, without asking the tenant.
    pub fn accounts(&self, task: &Task) -> Result<Vec<AccountView>> {
        Ok(self
            .catalog
            .accounts(task.id)?
            .iter()
            .map(|a| AccountView::of(a, &task.settings, false))
            .collect())
    }

    /// Activates accounts for backup; returns how many changed. A change is recorded in
    /// the archive so `rebuild` keeps it.
    pub fn activate(&self, task: &Task, selection: &Selection) -> Result<usize> {
        let changed = accounts::activate(&self.catalog, task, selection)?;
        if changed > 0 {
            self.record_task(task)?;
        }
        Ok(changed)
    }

    /// Records the task's settings and activations in the archive. While a backup holds
    /// the archive, that run's final snapshot records them instead.
    fn record_task(&self, task: &Task) -> Result<()> {
        match backup::record_task(&self.archive, &self.catalog, task) {
            Err(e) if e.code == ErrorCode::ArchiveLocked => {
                tracing::info!("archive busy; the running backup records the task change");
                Ok(())
            }
            other => other,
        }
    }

    /// Backs up every active mailbox of the task.
    pub async fn backup(&self, task: &Task, progress: ProgressSink) -> Result<RunReport> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                ErrorCode::ArchiveLocked,
                "a job is running already",
            ));
        }
        let result = async {
            let job = backup::Job {
                archive: &self.archive,
                catalog: &self.catalog,
                graph: self.graph(task)?,
                clock: self.options.clock.clone(),
                options: self.options.backup.clone(),
                task: task.clone(),
            };
            backup::run(&job, progress).await
        }
        .await;
        if result.is_ok() {
            // The search commit comes after the catalog's; if it fails (or the process dies
            // first) the next backup or search indexes what was missed.
            if let Err(e) = self.index_for_search() {
                tracing::warn!(code = ?e.code, "search index not updated: {e}");
            }
        }
        self.busy.store(false, Ordering::SeqCst);
        result
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        snapshot_view::snapshots(&self.archive)
    }

    /// A mailbox's folders at a snapshot (default: the newest).
    pub fn folders(&self, address: &str, at: Option<&str>) -> Result<Vec<FolderInfo>> {
        let view = MailboxView::open(&self.archive, at, address)?;
        Ok(view.folders.into_iter().map(|(f, _)| f).collect())
    }

    /// The messages of one folder (by path or id), or of the whole mailbox when `path` is
    /// `None`, at a snapshot.
    pub fn messages(
        &self,
        address: &str,
        path: Option<&str>,
        at: Option<&str>,
    ) -> Result<Vec<MessageInfo>> {
        let view = MailboxView::open(&self.archive, at, address)?;
        match path {
            Some(p) => view.messages(p),
            None => Ok(view.all_messages()),
        }
    }

    /// A message's MIME as backed up.
    pub fn message_mime(
        &self,
        address: &str,
        message_id: &str,
        at: Option<&str>,
    ) -> Result<Vec<u8>> {
        let view = MailboxView::open(&self.archive, at, address)?;
        let info = view
            .all_messages()
            .into_iter()
            .find(|m| m.entry.id == message_id)
            .ok_or_else(|| Error::not_found("no such message in this snapshot"))?;
        snapshot_view::message_mime(&self.archive, &info.entry)
    }

    pub fn verify(&self, read_data: bool) -> Result<VerifyReport> {
        maintenance::verify(&self.archive, read_data)
    }

    pub fn prune(&self) -> Result<PruneSummary> {
        maintenance::prune(&self.archive, &self.catalog)
    }

    /// Recreates the catalog, then the search index, from the archive alone.
    pub fn rebuild(&self) -> Result<RebuildSummary> {
        let summary = rebuild::rebuild(&self.archive, &self.catalog)?;
        self.search.rebuild(&self.archive, &self.search_tasks()?)?;
        Ok(summary)
    }

    /// Ids of the tasks whose "Index all data for search" is on.
    fn search_tasks(&self) -> Result<std::collections::HashSet<i64>> {
        Ok(self
            .catalog
            .tasks()?
            .into_iter()
            .filter(|t| t.settings.index_for_search)
            .map(|t| t.id)
            .collect())
    }

    /// Indexes every snapshot the search index has not seen yet.
    pub fn index_for_search(&self) -> Result<IndexSummary> {
        self.search.catch_up(&self.archive, &self.search_tasks()?)
    }

    /// Searches every message of every point in time (catching the index up first unless a
    /// job is running).
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let idle = !self.busy.load(Ordering::SeqCst);
        self.search
            .query(&self.archive, &self.search_tasks()?, idle, query)
    }

    /// Writes a mailbox (or a folder and its subfolders) at a snapshot to a directory as EML
    /// or mbox files with a manifest (see [`crate::export`]). Reads the archive only.
    pub fn export(
        &self,
        request: &crate::export::ExportRequest,
        progress: ProgressSink,
        cancel: &crate::cancel::CancelToken,
    ) -> Result<crate::export::ExportReport> {
        crate::export::run(&self.archive, request, progress, cancel)
    }

    /// Restores a message, a folder or a mailbox from a snapshot into Microsoft 365 (see
    /// [`crate::restore`]), through the connection of the task that made the snapshot. A
    /// tenant that refuses the writes gives [`ErrorCode::RestorePermissionNeeded`]: call
    /// [`Engine::grant_restore_permission`] once, then restore again.
    pub async fn restore(
        &self,
        request: &crate::restore::RestoreRequest,
        progress: ProgressSink,
        cancel: &crate::cancel::CancelToken,
    ) -> Result<crate::restore::RestoreReport> {
        let view = MailboxView::open(&self.archive, request.at.as_deref(), &request.mailbox)?;
        let meta: crate::backup::manifest::SnapshotMeta =
            serde_json::from_slice(&view.snapshot.meta)?;
        let task = self
            .catalog
            .tasks()?
            .into_iter()
            .find(|t| t.id == meta.task_id)
            .ok_or_else(|| Error::not_found("the task that made this snapshot is gone"))?;
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                ErrorCode::ArchiveLocked,
                "a job is running already",
            ));
        }
        let result = async {
            let job = crate::restore::Job {
                archive: &self.archive,
                graph: self.graph(&task)?,
                clock: &*self.options.clock,
            };
            crate::restore::run(&job, &view, request, progress, cancel).await
        }
        .await;
        self.busy.store(false, Ordering::SeqCst);
        result
    }

    /// Grants the task's app the write roles a restore needs (least privilege: backups run
    /// with read roles only, so this is asked for when the admin first restores). `admin`
    /// supplies tokens allowed to assign app roles: a Global Administrator's
    /// [`strongroom_graph::DelegatedSession`] from the sign-in window (scopes
    /// [`strongroom_graph::provision::provisioning_scopes`]), or an app holding
    /// AppRoleAssignment.ReadWrite.All. Returns the roles granted.
    pub async fn grant_restore_permission(
        &self,
        task: &Task,
        admin: impl strongroom_graph::TokenSource,
    ) -> Result<Vec<String>> {
        let sealed = self.catalog.sealed_connection(task.id)?;
        let connection = self.catalog.open_connection(&sealed)?;
        let (cloud, _) = connection.app_credential()?;
        let graph =
            strongroom_graph::GraphClient::with_options(&cloud, admin, self.options.graph.clone());
        crate::restore::grant_permission(graph, &connection.client_id).await
    }

    /// Starts a Global Administrator's interactive sign-in (auth code + PKCE) to grant the
    /// restore permission. `public_client_id` is the public client the sign-in runs as
    /// (`None`: the task's own app id); `redirect_uri` a loopback URL it registers.
    pub fn begin_grant_restore(
        &self,
        task: &Task,
        public_client_id: Option<&str>,
        redirect_uri: &str,
    ) -> Result<crate::restore::GrantSignIn> {
        let sealed = self.catalog.sealed_connection(task.id)?;
        let connection = self.catalog.open_connection(&sealed)?;
        let (cloud, _) = connection.app_credential()?;
        let redirect = url::Url::parse(redirect_uri)
            .map_err(|e| Error::invalid(format!("redirect URI: {e}")))?;
        let scopes = strongroom_graph::provision::provisioning_scopes(&cloud);
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let (sign_in, request) = strongroom_graph::SignIn::begin(
            &cloud,
            &connection.tenant_id,
            public_client_id.unwrap_or(&connection.client_id),
            &redirect,
            &scopes,
        );
        Ok(crate::restore::GrantSignIn {
            url: request.url.to_string(),
            redirect_uri: request.redirect_uri.to_string(),
            sign_in,
            task_id: task.id,
        })
    }

    /// Completes [`Engine::begin_grant_restore`] with the URL the sign-in redirected to, and
    /// grants the write roles. Returns the roles granted.
    pub async fn finish_grant_restore(
        &self,
        grant: crate::restore::GrantSignIn,
        redirected_to: &str,
    ) -> Result<Vec<String>> {
        let landed = url::Url::parse(redirected_to)
            .map_err(|e| Error::invalid(format!("redirect URL: {e}")))?;
        let task = self
            .catalog
            .tasks()?
            .into_iter()
            .find(|t| t.id == grant.task_id)
            .ok_or_else(|| Error::not_found("no such task"))?;
        let session = grant.sign_in.finish(&landed).await?;
        self.grant_restore_permission(&task, session).await
    }
}

fn archive_options(options: &EngineOptions) -> Options {
    Options {
        clock: options.clock.clone(),
        ..Options::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serialises_in_camel_case_for_the_ui() {
        let json = serde_json::to_value(status()).unwrap();
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["taskCount"], 0);
        assert_eq!(json["busy"], false);
    }

    #[test]
    fn status_counts_the_catalog_tasks_and_task_lookup_needs_a_name_when_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::init(
            dir.path(),
            "pw",
            KdfParams::insecure_for_tests(),
            EngineOptions::default(),
        )
        .unwrap();
        assert_eq!(engine.status().unwrap().task_count, 0);
        assert_eq!(engine.task(None).unwrap_err().code, ErrorCode::NotFound);
        let sealed = engine
            .catalog
            .seal_connection(&Connection {
                tenant_id: "t".into(),
                client_id: "c".into(),
                credential: Credential::Secret("s".into()),
                authority: "http://127.0.0.1:1".into(),
                graph_url: "http://127.0.0.1:1".into(),
            })
            .unwrap();
        for name in ["one", "two"] {
            engine
                .catalog
                .insert_task(
                    None,
                    name,
                    Service::Exchange,
                    &sealed,
                    &TaskSettings::default(),
                    0,
                )
                .unwrap();
        }
        assert_eq!(engine.status().unwrap().task_count, 2);
        assert_eq!(engine.task(None).unwrap_err().code, ErrorCode::TaskRequired);
        assert_eq!(engine.task(Some("two")).unwrap().name, "two");
        let again = engine
            .catalog
            .insert_task(
                None,
                "one",
                Service::Exchange,
                &sealed,
                &TaskSettings::default(),
                0,
            )
            .unwrap_err();
        assert_eq!(again.code, ErrorCode::TaskExists);
        drop(engine);
        let wrong = Engine::open(dir.path(), "nope", EngineOptions::default()).unwrap_err();
        assert_eq!(wrong.code, ErrorCode::WrongPassphrase);
    }
}
