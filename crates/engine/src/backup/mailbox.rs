//! One mailbox: its folder tree (hidden folders too), then each folder's message delta from
//! its saved link, new and changed messages' MIME into the archive, and a new folder
//! manifest. Unchanged messages (including moved ones, found by immutable id and change
//! key anywhere in the mailbox's last backup) are not downloaded again.
//!
//! Counts come from comparing the mailbox's last committed manifests with the new ones, so
//! they are exact whatever path the delta took (incremental, resync after 410, resume).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use strongroom_archive::BlobId;
use strongroom_graph::{Change, DeltaLink, GraphError, MailFolder, Message, MessageDeltaOptions};
use tokio::sync::Semaphore;

use super::manifest::{self, FolderManifest, MailboxManifest, MessageEntry, MANIFEST_VERSION};
use super::Run;
use crate::accounts::{Account, SkipReason};
use crate::catalog::FolderState;
use crate::error::{Error, Result};
use crate::progress::ProgressEvent;
use crate::report::{MailboxReport, MailboxStatus};

/// Folders whose delta rounds run at once. While one folder's last downloads finish, the
/// next folder's delta request is already waiting, so the mailbox's budget does not idle at
/// every folder change. One request after another runs at 1 / latency: with Microsoft's
/// budget (16.7 requests/s) and Graph's 50-300 ms, slower than the budget allows.
const FOLDERS_AT_ONCE: usize = 2;

/// Backs up one mailbox; never fails the run: failures go into the report.
pub(super) async fn back_up(run: &Run<'_>, account: &Account) -> MailboxReport {
    let mut report =
        MailboxReport::new(&account.user_id, &account.address, MailboxStatus::BackedUp);
    run.meter.start_mailbox(&account.user_id);
    let result = back_up_inner(run, account, &mut report).await;
    report.throttle_wait_ms = run.meter.throttle_wait_ms(&account.user_id);
    run.meter.emit(ProgressEvent::MailboxFinished {
        user_id: account.user_id.clone(),
        ok: result.is_ok(),
    });
    match result {
        Ok(()) => {}
        // The mailbox went away between discovery and backup: skipped, not failed; the
        // next discovery archives it.
        Err(Failure::NoMailbox) => {
            report.status = MailboxStatus::Skipped;
            report.skip_reason = Some(SkipReason::NoMailbox);
        }
        Err(Failure::Error(e)) => {
            tracing::warn!(user = %account.user_id, error = %e.message, "mailbox backup failed");
            report.status = MailboxStatus::Failed;
            report.error = Some(e.message);
        }
    }
    report
}

enum Failure {
    NoMailbox,
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// A message of the last committed backup, by immutable id.
#[derive(Clone)]
struct Known {
    folder: String,
    entry: MessageEntry,
}

async fn back_up_inner(
    run: &Run<'_>,
    account: &Account,
    report: &mut MailboxReport,
) -> Result<(), Failure> {
    let job = run.job;
    let user = account.user_id.as_str();
    let folders: Vec<MailFolder> = match job.graph.folder_tree(user).await {
        Ok(folders) => folders,
        Err(e) if e.is_mailbox_not_enabled() => return Err(Failure::NoMailbox),
        Err(e) => return Err(Failure::Error(e.into())),
    };
    let folders: Vec<MailFolder> = folders
        .into_iter()
        .filter(|f| !f.is_search_folder())
        .collect();
    let items: u64 = folders
        .iter()
        .map(|f| u64::from(f.total_item_count.unwrap_or(0)))
        .sum();
    run.meter.expect_items(items);
    run.meter.emit(ProgressEvent::MailboxStarted {
        user_id: user.to_owned(),
        items,
    });

    // The last committed state: folder manifests and every message they hold.
    let states: HashMap<String, FolderState> = job
        .catalog
        .folder_states(job.task.id, user)?
        .into_iter()
        .collect();
    let mut known: HashMap<String, Known> = HashMap::new();
    for (folder_id, state) in &states {
        let (_, m): (_, FolderManifest) = manifest::read(job.archive, &state.manifest)?;
        for entry in m.messages {
            known.insert(
                entry.id.clone(),
                Known {
                    folder: folder_id.clone(),
                    entry,
                },
            );
        }
    }

    let current: HashSet<&str> = folders.iter().map(|f| f.id.as_str()).collect();
    let removed_folders: Vec<String> = states
        .keys()
        .filter(|f| !current.contains(f.as_str()))
        .cloned()
        .collect();
    // Manifests for the mailbox tree: this run's where done, else the last committed.
    let mut manifests: HashMap<String, (BlobId, u64)> = states
        .iter()
        .filter(|(f, _)| current.contains(f.as_str()))
        .map(|(f, s)| (f.clone(), (s.manifest, s.messages)))
        .collect();
    let mut after: HashMap<String, String> = HashMap::new(); // message id -> folder id
    let mut pending: Vec<(String, FolderState)> = Vec::new();
    let mut last_checkpoint = Instant::now();

    // The folders' downloads share the mailbox's download slots, so the mailbox has no more
    // downloads out than with one folder at a time.
    let slots = Semaphore::new(job.options.downloads_per_mailbox.max(1));
    let mut rounds = futures::stream::iter(&folders)
        .map(|folder| {
            let (known, slots, previous) = (&known, &slots, states.get(&folder.id));
            async move {
                let done = back_up_folder(run, user, folder, previous, known, slots).await;
                (folder, done)
            }
        })
        .buffered(FOLDERS_AT_ONCE);
    while let Some((folder, done)) = rounds.next().await {
        let (done, counts) = done?;
        report.new += counts.new;
        report.changed += counts.changed;
        report.bytes += counts.bytes;
        report.resynced_folders += counts.resynced;
        for m in &done.manifest.messages {
            after.insert(m.id.clone(), folder.id.clone());
        }
        let tree_id = run.put_tree(&done.manifest.to_tree()?)?;
        let count = done.manifest.messages.len() as u64;
        manifests.insert(folder.id.clone(), (tree_id, count));
        pending.push((
            folder.id.clone(),
            FolderState {
                manifest: tree_id,
                delta_link: Some(done.delta_link),
                messages: count,
            },
        ));
        if last_checkpoint.elapsed() >= job.options.checkpoint_every {
            let tree = mailbox_tree(run, user, &folders, &manifests)?;
            run.checkpoint(user, Some(tree), std::mem::take(&mut pending), Vec::new())
                .await?;
            last_checkpoint = Instant::now();
        }
    }
    let tree = mailbox_tree(run, user, &folders, &manifests)?;
    run.checkpoint(user, Some(tree), pending, removed_folders)
        .await?;

    // Exact counts: the last committed backup against this one.
    for (id, k) in &known {
        match after.get(id) {
            None => report.deleted += 1,
            Some(f) if *f != k.folder => report.moved += 1,
            Some(_) => {}
        }
    }
    report.folders = folders.len() as u64;
    report.messages = after.len() as u64;
    Ok(())
}

/// The mailbox tree: its folders (parents first) as children.
fn mailbox_tree(
    run: &Run<'_>,
    user: &str,
    folders: &[MailFolder],
    manifests: &HashMap<String, (BlobId, u64)>,
) -> Result<(BlobId, u64)> {
    let mut children = Vec::new();
    let mut messages = 0;
    for f in folders {
        if let Some((tree, n)) = manifests.get(&f.id) {
            children.push(*tree);
            messages += n;
        }
    }
    let meta = MailboxManifest {
        version: MANIFEST_VERSION,
        user_id: user.to_owned(),
    };
    let id = run.put_tree(&strongroom_archive::Tree {
        children,
        meta: serde_json::to_vec(&meta)?,
    })?;
    Ok((id, messages))
}

struct FolderDone {
    manifest: FolderManifest,
    delta_link: String,
}

/// One folder's share of the mailbox report.
#[derive(Default)]
struct FolderCounts {
    new: u64,
    changed: u64,
    /// MIME bytes downloaded (an expired round's included).
    bytes: u64,
    resynced: u64,
}

/// One folder's delta round from its saved link (or a full enumeration), with one resync
/// when the service says the saved state expired.
async fn back_up_folder(
    run: &Run<'_>,
    user: &str,
    folder: &MailFolder,
    previous: Option<&FolderState>,
    known: &HashMap<String, Known>,
    slots: &Semaphore,
) -> Result<(FolderDone, FolderCounts)> {
    let job = run.job;
    let mut counts = FolderCounts::default();
    let base: BTreeMap<String, MessageEntry> = match previous {
        Some(state) => {
            let (_, m): (_, FolderManifest) = manifest::read(job.archive, &state.manifest)?;
            m.messages.into_iter().map(|e| (e.id.clone(), e)).collect()
        }
        None => BTreeMap::new(),
    };
    let mut from = previous
        .and_then(|s| s.delta_link.clone())
        .map(DeltaLink::new);
    loop {
        // A full enumeration starts empty: whatever it does not return is gone.
        let start = if from.is_some() {
            base.clone()
        } else {
            BTreeMap::new()
        };
        match delta_round(
            run,
            user,
            folder,
            from.as_ref(),
            start,
            known,
            slots,
            &mut counts,
        )
        .await
        {
            Ok(done) => {
                for (id, entry) in &done
                    .manifest
                    .messages
                    .iter()
                    .map(|e| (&e.id, e))
                    .collect::<Vec<_>>()
                {
                    match base.get(*id) {
                        None if !known.contains_key(*id) => counts.new += 1,
                        Some(old)
                            if old.change_key != entry.change_key || old.blobs != entry.blobs =>
                        {
                            counts.changed += 1
                        }
                        _ => {}
                    }
                }
                return Ok((done, counts));
            }
            Err(RoundError::Expired) if from.is_some() => {
                tracing::info!(user, folder = %folder.id, "delta state expired; resyncing folder");
                counts.resynced += 1;
                from = None;
            }
            Err(RoundError::Expired) => {
                return Err(Error::new(
                    crate::ErrorCode::Graph,
                    "the service expired a fresh delta enumeration",
                ))
            }
            Err(RoundError::Other(e)) => return Err(e),
        }
    }
}

enum RoundError {
    Expired,
    Other(Error),
}

impl From<Error> for RoundError {
    fn from(e: Error) -> Self {
        RoundError::Other(e)
    }
}

impl From<GraphError> for RoundError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::SyncStateNotFound { .. } => RoundError::Expired,
            e => RoundError::Other(e.into()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn delta_round(
    run: &Run<'_>,
    user: &str,
    folder: &MailFolder,
    from: Option<&DeltaLink>,
    mut entries: BTreeMap<String, MessageEntry>,
    known: &HashMap<String, Known>,
    slots: &Semaphore,
    counts: &mut FolderCounts,
) -> Result<FolderDone, RoundError> {
    let job = run.job;
    let options = MessageDeltaOptions {
        page_size: job.options.page_size,
        include_size: false,
    };
    let mut pages = job.graph.message_delta(user, &folder.id, from, &options)?;
    let mut delta_link = None;
    while let Some(page) = pages.try_next().await? {
        let mut downloads = Vec::new();
        for change in page.changes {
            match change {
                Change::Removed { id, .. } => {
                    entries.remove(&id);
                }
                Change::Upsert(message) => {
                    // Same id and change key as a message we hold: reuse its blobs.
                    let same = known
                        .get(&message.id)
                        .map(|k| &k.entry)
                        .or_else(|| entries.get(&message.id))
                        .filter(|e| e.change_key.is_some() && e.change_key == message.change_key)
                        .cloned();
                    match same {
                        Some(old) => {
                            let mut entry = entry_of(&message, old.blobs, old.size);
                            entry.attachments = old.attachments;
                            entries.insert(entry.id.clone(), entry);
                            run.meter.add(user, 1, 0);
                        }
                        None => downloads.push(message),
                    }
                }
            }
        }
        let fetched: Vec<Option<MessageEntry>> = futures::stream::iter(downloads)
            .map(|message| download(run, user, message, slots))
            .buffer_unordered(job.options.downloads_per_mailbox.max(1))
            .try_collect()
            .await?;
        for entry in fetched.into_iter().flatten() {
            counts.bytes += entry.size;
            entries.insert(entry.id.clone(), entry);
        }
        if let Some(link) = page.delta_link {
            delta_link = Some(link);
        }
    }
    let delta_link = delta_link.ok_or_else(|| {
        Error::new(
            crate::ErrorCode::Graph,
            "delta round ended without a delta link",
        )
    })?;
    Ok(FolderDone {
        manifest: FolderManifest {
            version: MANIFEST_VERSION,
            id: folder.id.clone(),
            parent_id: folder.parent_folder_id.clone(),
            name: folder.display_name.clone().unwrap_or_default(),
            hidden: folder.is_hidden(),
            messages: entries.into_values().collect(),
        },
        delta_link: delta_link.as_str().to_owned(),
    })
}

/// Downloads and stores one message; `None` when it vanished meanwhile (the next round's
/// delta reports its removal).
async fn download(
    run: &Run<'_>,
    user: &str,
    message: Message,
    slots: &Semaphore,
) -> Result<Option<MessageEntry>> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|_| Error::internal("download slots closed"))?;
    let Some(stored) = run.fetch_mime(user, &message.id).await? else {
        return Ok(None);
    };
    run.meter.add(user, 1, stored.size);
    let mut entry = entry_of(
        &message,
        stored.blobs.iter().map(BlobId::to_hex).collect(),
        stored.size,
    );
    entry.attachments = stored.attachments;
    Ok(Some(entry))
}

fn entry_of(m: &Message, blobs: Vec<String>, size: u64) -> MessageEntry {
    MessageEntry {
        id: m.id.clone(),
        change_key: m.change_key.clone(),
        blobs,
        size,
        subject: m.subject.clone(),
        from: m
            .from
            .as_ref()
            .and_then(|r| r.email_address.address.clone()),
        received_ms: m.received_date_time.map(|d| d.timestamp_millis()),
        sent_ms: m.sent_date_time.map(|d| d.timestamp_millis()),
        is_read: m.is_read,
        flag_status: m.flag.as_ref().and_then(|f| f.flag_status.clone()),
        categories: m.categories.clone(),
        internet_message_id: m.internet_message_id.clone(),
        has_attachments: m.has_attachments,
        attachments: Vec::new(),
    }
}
