//! The backup job: discover accounts, back up every active mailbox (several at once), and
//! commit checkpoints in the crash-safe write order:
//!
//! 1. message blobs and folder trees go into packs (the archive's writer);
//! 2. `commit_snapshot` flushes packs and index, then writes a snapshot whose root reaches
//!    every committed mailbox tree (a *checkpoint* snapshot while the run goes on);
//! 3. one catalog transaction records that snapshot, the mailbox trees, and each finished
//!    folder's manifest **with its delta link** — never earlier.
//!
//! A killed run therefore resumes from the last committed folder of each mailbox, and even
//! a first backup that dies half-way leaves everything committed so far restorable from a
//! snapshot. The run ends with a *backup* snapshot: the complete point-in-time view.

mod base64_body;
mod mailbox;
pub mod manifest;
mod mime_split;
mod mime_store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use mime_store::{MimeStore, StoredMime};
use strongroom_archive::{Archive, BlobId, Clock, Tree, Writer};
use strongroom_graph::{GraphClient, GraphError, Lane};

use crate::accounts::{self, Account};
use crate::catalog::{Catalog, Checkpoint, FolderState, SnapshotRow};
use crate::error::{Error, Result};
use crate::progress::{Meter, ProgressEvent, ProgressSink};
use crate::report::{MailboxReport, MailboxStatus, Outcome, RunReport};
use crate::task::Task;
use manifest::{AccountEntry, RootManifest, SnapshotKind, SnapshotMeta, MANIFEST_VERSION};

/// Bytes of a streaming message handed to the store at a time.
const MIME_BATCH: usize = 1 << 20;

/// An overall progress event goes out at least this often, so throttling shows while no
/// item moves.
const PROGRESS_TICK: Duration = Duration::from_secs(1);

/// How a download attempt ended, when it did not store the message.
enum Fetch {
    /// The message is gone (its removal comes with the next delta).
    Gone,
    /// The transfer broke: start again.
    Broken(String),
    Failed(Error),
}

impl From<Error> for Fetch {
    fn from(e: Error) -> Self {
        Fetch::Failed(e)
    }
}

/// Tunables of a backup run.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Mailboxes backed up at once. Microsoft's request budget is per mailbox, so a run
    /// goes as fast as the budget allows only when many mailboxes proceed together.
    pub mailboxes_in_parallel: usize,
    /// MIME downloads in flight per mailbox (the governor caps requests at 4 anyway).
    pub downloads_per_mailbox: usize,
    /// MIME bodies being read and stored at once across the run (a download takes its
    /// permit when the response arrives). Each holds at most ~5 MiB whatever the message
    /// size (see `mime_store`), so this bounds the run's memory.
    pub downloads_in_flight: usize,
    /// Of those, downloads of messages larger than one MIME batch: each holds the chunker's
    /// lookahead and the chunk being cut (about 10 MiB) while it is stored, so without this
    /// the peak would follow how many large messages a tenant happens to have in flight.
    /// A large message's download is bound by bandwidth and storing CPU, not latency, so
    /// two at a time keep both busy.
    pub large_downloads_in_flight: usize,
    /// A mailbox commits a checkpoint after a folder once this long has passed since its
    /// last one (and always when it finishes).
    pub checkpoint_every: Duration,
    /// Messages larger than this are refused (Exchange Online's limit is 150 MB).
    pub max_message_bytes: usize,
    /// Delta page size.
    pub page_size: u32,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            mailboxes_in_parallel: 16,
            downloads_per_mailbox: 4,
            downloads_in_flight: 32,
            large_downloads_in_flight: 2,
            checkpoint_every: Duration::from_secs(15),
            max_message_bytes: 160 << 20,
            page_size: 100,
        }
    }
}

/// What a run needs.
pub(crate) struct Job<'a> {
    pub archive: &'a Archive,
    pub catalog: &'a Catalog,
    pub graph: GraphClient,
    pub clock: Arc<dyn Clock>,
    pub options: BackupOptions,
    pub task: Task,
}

/// State shared by the mailboxes of one run.
pub(crate) struct Run<'a> {
    job: &'a Job<'a>,
    writer: Arc<Mutex<Writer>>,
    /// The picture the next snapshot's root shows, guarded so checkpoints are serialised.
    root: tokio::sync::Mutex<RootState>,
    meter: Meter,
    /// The `seq` of the next snapshot this run writes.
    next_seq: std::sync::atomic::AtomicU64,
    /// Permits for MIME downloads (`BackupOptions::downloads_in_flight`).
    downloads: tokio::sync::Semaphore,
    /// Permits for large messages (`BackupOptions::large_downloads_in_flight`).
    large_downloads: tokio::sync::Semaphore,
}

/// Per-account entries and committed mailbox trees (with their message counts).
struct RootState {
    /// The task as the root records it (name, settings).
    task: Task,
    accounts: BTreeMap<String, (Account, Option<(BlobId, u64)>)>,
    sealed_connection: Vec<u8>,
}

impl<'a> Run<'a> {
    fn now_ms(&self) -> i64 {
        self.job.clock.now_ms()
    }

    /// Downloads a message's MIME and stores it as it streams in (attachments as their own
    /// segments); `None` when the message is gone. A transfer that breaks is started again
    /// after a backoff: blobs of the broken attempt deduplicate or are left for prune.
    async fn fetch_mime(&self, user: &str, message_id: &str) -> Result<Option<StoredMime>> {
        let backoff = self.job.graph.backoff();
        let mut attempt = 0;
        loop {
            match self.try_fetch_mime(user, message_id).await {
                Ok(stored) => return Ok(Some(stored)),
                Err(Fetch::Gone) => return Ok(None),
                Err(Fetch::Failed(e)) => return Err(e),
                Err(Fetch::Broken(why)) => {
                    attempt += 1;
                    if attempt >= backoff.max_attempts {
                        return Err(Error::new(
                            crate::ErrorCode::Graph,
                            format!("a message download broke {attempt} times: {why}"),
                        ));
                    }
                    tracing::debug!(attempt, %why, "MIME download broke; starting again");
                    self.job
                        .graph
                        .governor()
                        .back_off(&Lane::mailbox(user), backoff.delay(attempt - 1))
                        .await;
                }
            }
        }
    }

    /// One download attempt. The body is handed to the store in batches of [`MIME_BATCH`]
    /// bytes on a blocking thread (chunking, compression and sealing are CPU work), so a
    /// message of any size holds about a batch plus the chunker's lookahead in memory.
    async fn try_fetch_mime(&self, user: &str, message_id: &str) -> Result<StoredMime, Fetch> {
        let limit = self.job.options.max_message_bytes as u64;
        let mut body = match self.job.graph.message_mime_stream(user, message_id).await {
            Ok(body) => body,
            Err(GraphError::Service(e)) if e.status == 404 => return Err(Fetch::Gone),
            Err(e) => return Err(Fetch::Failed(e.into())),
        };
        let too_large = || {
            Fetch::Failed(
                GraphError::TooLarge {
                    limit: limit as usize,
                }
                .into(),
            )
        };
        // The run's permit is taken once the service has admitted the request and answered:
        // it bounds the bodies being read and stored, and a download waiting on its
        // mailbox's Retry-After fence must not hold one that another mailbox could use.
        let _permit = permit(&self.downloads).await?;
        let expected = body.content_length();
        if expected.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        // A large message takes its permit before its body is read when its size is known,
        // else when its first batch is full.
        let mut large = None;
        if expected.is_some_and(|n| n > MIME_BATCH as u64) {
            large = Some(permit(&self.large_downloads).await?);
        }
        let mut store = MimeStore::new(self.job.archive);
        // Most messages are small: size the batch by the body, not the batch limit.
        let mut batch =
            Vec::with_capacity(expected.map_or(64 << 10, |n| n as usize).min(MIME_BATCH));
        let mut received = 0u64;
        loop {
            match body.next().await {
                Some(Ok(bytes)) => {
                    received += bytes.len() as u64;
                    if received > limit {
                        return Err(too_large());
                    }
                    batch.extend_from_slice(&bytes);
                    if batch.len() >= MIME_BATCH {
                        if large.is_none() {
                            large = Some(permit(&self.large_downloads).await?);
                        }
                        (store, batch) = self.store_batch(store, batch).await?;
                    }
                }
                Some(Err(e)) => return Err(Fetch::Broken(e.to_string())),
                None => break,
            }
        }
        drop(body); // frees the mailbox's request slot
        if expected.is_some_and(|n| n != received) {
            return Err(Fetch::Broken("the body ended early".into()));
        }
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            store.push(&batch, &writer)?;
            store.finish(&writer)
        })
        .await
        .map_err(|e| Error::internal(format!("storing task panicked: {e}")))?
        .map_err(Fetch::Failed)
    }

    async fn store_batch(
        &self,
        mut store: MimeStore,
        mut batch: Vec<u8>,
    ) -> Result<(MimeStore, Vec<u8>), Fetch> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            store.push(&batch, &writer)?;
            batch.clear();
            Ok((store, batch))
        })
        .await
        .map_err(|e| Error::internal(format!("storing task panicked: {e}")))?
        .map_err(Fetch::Failed)
    }

    fn put_tree(&self, tree: &Tree) -> Result<BlobId> {
        Ok(self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put_tree(tree)?)
    }

    /// Commits one mailbox's progress. When its tree changed a snapshot is written first;
    /// then the catalog records snapshot, tree and folder states in one transaction.
    pub async fn checkpoint(
        &self,
        user_id: &str,
        tree: Option<(BlobId, u64)>,
        folders: Vec<(String, FolderState)>,
        removed_folders: Vec<String>,
    ) -> Result<()> {
        let mut root = self.root.lock().await;
        let now = self.now_ms();
        let mut checkpoint = Checkpoint {
            folders: folders
                .into_iter()
                .map(|(f, s)| (user_id.to_owned(), f, s))
                .collect(),
            removed_folders: removed_folders
                .into_iter()
                .map(|f| (user_id.to_owned(), f))
                .collect(),
            ..Checkpoint::default()
        };
        let mut changed = false;
        if let Some(entry) = root.accounts.get_mut(user_id) {
            entry.0.last_backup_ms = Some(now);
            if tree.is_some() && entry.1.map(|t| t.0) != tree.map(|t| t.0) {
                entry.1 = tree;
                changed = true;
            }
            if let Some((t, _)) = entry.1 {
                checkpoint.mailboxes.push((user_id.to_owned(), t, now));
            }
        }
        if changed {
            checkpoint.snapshot = Some(self.snapshot(&root, SnapshotKind::Checkpoint)?);
        }
        self.job.catalog.commit(self.job.task.id, &checkpoint)
    }

    /// Writes a snapshot of the root as it stands (flushing every blob first).
    fn snapshot(&self, root: &RootState, kind: SnapshotKind) -> Result<SnapshotRow> {
        let (tree, mailboxes, messages) = root_tree(root)?;
        let meta = SnapshotMeta {
            version: MANIFEST_VERSION,
            kind,
            task_id: self.job.task.id,
            mailboxes,
            messages,
            seq: self
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let root_id = writer.put_tree(&tree)?;
        let id = writer.commit_snapshot(root_id, &serde_json::to_vec(&meta)?)?;
        Ok(SnapshotRow {
            id: id.to_hex(),
            task_id: self.job.task.id,
            time_ms: self.now_ms(),
            complete: kind == SnapshotKind::Backup,
            mailboxes,
            messages,
        })
    }
}

/// The root tree: one child per backed-up mailbox, accounts in the metadata.
fn root_tree(root: &RootState) -> Result<(Tree, u64, u64)> {
    let task = &root.task;
    let mut children = Vec::new();
    let mut accounts = Vec::new();
    let mut messages = 0;
    for (account, tree) in root.accounts.values() {
        let index = tree.map(|(id, n)| {
            children.push(id);
            messages += n;
            children.len() - 1
        });
        accounts.push(AccountEntry {
            user_id: account.user_id.clone(),
            address: account.address.clone(),
            display_name: account.display_name.clone(),
            licensed: account.licensed,
            mailbox: account.mailbox,
            active: account.active,
            first_seen_ms: account.first_seen_ms,
            gone_since_ms: account.gone_since_ms,
            last_backup_ms: account.last_backup_ms,
            tree: index,
            messages: tree.map_or(0, |t| t.1),
        });
    }
    let manifest = RootManifest {
        version: MANIFEST_VERSION,
        task_id: task.id,
        task_name: task.name.clone(),
        service: task.service,
        settings: task.settings.clone(),
        task_created_ms: task.created_ms,
        connection: base64::engine::general_purpose::STANDARD.encode(&root.sealed_connection),
        accounts,
    };
    let count = children.len() as u64;
    Ok((
        Tree {
            children,
            meta: serde_json::to_vec(&manifest)?,
        },
        count,
        messages,
    ))
}

/// Writes a `Task` snapshot of the task as the catalog holds it now: its settings, its
/// accounts with their activation, and their committed mailbox trees. `connect` writes one
/// so `rebuild` finds a task before its first backup; changes of settings or activation
/// write one so `rebuild` does not lose them when no backup ran since.
pub(crate) fn record_task(archive: &Archive, catalog: &Catalog, task: &Task) -> Result<()> {
    let task = catalog
        .tasks()?
        .into_iter()
        .find(|t| t.id == task.id)
        .ok_or_else(|| Error::not_found("the task no longer exists"))?;
    let mut accounts = BTreeMap::new();
    for account in catalog.accounts(task.id)? {
        let tree = match account.tree {
            Some(t) => Some((t, mailbox_message_count(catalog, task.id, &account)?)),
            None => None,
        };
        accounts.insert(account.user_id.clone(), (account, tree));
    }
    let root = RootState {
        sealed_connection: catalog.sealed_connection(task.id)?,
        task,
        accounts,
    };
    let (tree, mailboxes, messages) = root_tree(&root)?;
    let task = &root.task;
    let mut writer = archive.writer()?;
    let meta = SnapshotMeta {
        version: MANIFEST_VERSION,
        kind: SnapshotKind::Task,
        task_id: task.id,
        mailboxes,
        messages,
        seq: crate::snapshot_view::next_seq(archive)?,
    };
    let root_id = writer.put_tree(&tree)?;
    let id = writer.commit_snapshot(root_id, &serde_json::to_vec(&meta)?)?;
    writer.finish()?;
    let time_ms = archive.load_snapshot(&id)?.time_ms;
    catalog.commit(
        task.id,
        &Checkpoint {
            snapshot: Some(SnapshotRow {
                id: id.to_hex(),
                task_id: task.id,
                time_ms,
                complete: false,
                mailboxes,
                messages,
            }),
            ..Checkpoint::default()
        },
    )
}

/// Runs a backup of `job.task`. Errors before any mailbox starts (credentials, archive
/// locked) are returned; a mailbox's failure is reported in its line of the report.
pub(crate) async fn run(job: &Job<'_>, sink: ProgressSink) -> Result<RunReport> {
    let started_ms = job.clock.now_ms();
    let meter = Meter::new(sink, job.graph.governor().clone());
    meter.emit(ProgressEvent::Discovering);
    accounts::discover(&job.graph, job.catalog, &job.task, started_ms).await?;

    let mut root_accounts = BTreeMap::new();
    let mut reports = Vec::new();
    let mut to_back_up = Vec::new();
    for account in job.catalog.accounts(job.task.id)? {
        if account.retention_expired(job.task.settings.retention, started_ms) {
            job.catalog.forget_account(job.task.id, &account.user_id)?;
            continue;
        }
        let skip = account.skip_reason(&job.task.settings);
        if account.active && account.gone_since_ms.is_none() {
            if let Some(reason) = skip {
                let mut r =
                    MailboxReport::new(&account.user_id, &account.address, MailboxStatus::Skipped);
                r.skip_reason = Some(reason);
                reports.push(r);
            } else {
                to_back_up.push(account.clone());
            }
        }
        let tree = match account.tree {
            Some(t) => Some((
                t,
                mailbox_message_count(job.catalog, job.task.id, &account)?,
            )),
            None => None,
        };
        root_accounts.insert(account.user_id.clone(), (account, tree));
    }

    let writer = job.archive.writer()?;
    let first_seq = crate::snapshot_view::next_seq(job.archive)?;
    let run = Run {
        job,
        downloads: tokio::sync::Semaphore::new(job.options.downloads_in_flight.max(1)),
        large_downloads: tokio::sync::Semaphore::new(job.options.large_downloads_in_flight.max(1)),
        writer: Arc::new(Mutex::new(writer)),
        root: tokio::sync::Mutex::new(RootState {
            task: job.task.clone(),
            accounts: root_accounts,
            sealed_connection: job.catalog.sealed_connection(job.task.id)?,
        }),
        meter,
        next_seq: std::sync::atomic::AtomicU64::new(first_seq),
    };
    let work = futures::stream::iter(to_back_up)
        .map(|account| {
            let run = &run;
            async move { mailbox::back_up(run, &account).await }
        })
        .buffer_unordered(job.options.mailboxes_in_parallel.max(1))
        .collect::<Vec<MailboxReport>>();
    // Overall events while mailboxes sit behind Retry-After fences. It never finishes, so
    // `select!` always returns the work's result.
    let ticker = async {
        loop {
            tokio::time::sleep(PROGRESS_TICK).await;
            run.meter.emit(ProgressEvent::Overall(run.meter.overall()));
        }
    };
    let results = tokio::select! {
        results = work => results,
        () = ticker => Vec::new(),
    };
    run.meter.emit(ProgressEvent::Overall(run.meter.overall()));
    reports.extend(results);
    reports.sort_by(|a, b| a.user_id.cmp(&b.user_id));

    let outcome = RunReport::outcome_of(&reports);
    let mut snapshot = None;
    if outcome != Outcome::Failed {
        let mut root = run.root.lock().await;
        // Settings and activations changed while the run went on (their own task record
        // could not be written under this run's lock) go into its snapshot.
        refresh_from_catalog(&mut root, job.catalog)?;
        let row = run.snapshot(&root, SnapshotKind::Backup)?;
        snapshot = Some(row.id.clone());
        job.catalog.commit(
            job.task.id,
            &Checkpoint {
                snapshot: Some(row),
                ..Checkpoint::default()
            },
        )?;
    }
    let writer = Arc::try_unwrap(run.writer)
        .map_err(|_| Error::internal("writer still shared at the end of the run"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    writer.finish()?;
    Ok(RunReport {
        task: job.task.name.clone(),
        outcome,
        snapshot,
        started_ms,
        finished_ms: job.clock.now_ms(),
        error: None,
        throttle_wait_ms: reports.iter().map(|r| r.throttle_wait_ms).sum(),
        mailboxes: reports,
    })
}

/// Takes the task's settings and the accounts' activation from the catalog as they are now.
fn refresh_from_catalog(root: &mut RootState, catalog: &Catalog) -> Result<()> {
    if let Some(task) = catalog.tasks()?.into_iter().find(|t| t.id == root.task.id) {
        root.task = task;
    }
    for account in catalog.accounts(root.task.id)? {
        if let Some((held, _)) = root.accounts.get_mut(&account.user_id) {
            held.active = account.active;
        }
    }
    Ok(())
}

fn mailbox_message_count(catalog: &Catalog, task_id: i64, account: &Account) -> Result<u64> {
    Ok(catalog
        .folder_states(task_id, &account.user_id)?
        .iter()
        .map(|(_, s)| s.messages)
        .sum())
}

/// One of the run's download permits (`Run::downloads` or `Run::large_downloads`).
async fn permit(
    permits: &tokio::sync::Semaphore,
) -> Result<tokio::sync::SemaphorePermit<'_>, Fetch> {
    permits
        .acquire()
        .await
        .map_err(|_| Fetch::Failed(Error::internal("download permits closed")))
}
