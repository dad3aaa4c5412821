//! Rebuild: recreate the catalog from the archive alone. For each task, its newest snapshot's
//! root tree gives the task (name, settings, sealed connection) and its accounts (with their
//! activation); changes of settings or activation write a *task* snapshot, so the newest
//! snapshot holds them even when no backup ran since. Its
//! mailbox trees give each folder's manifest. Delta links are not in the archive (they would
//! defeat folder dedup), so the next backup enumerates each folder again; messages whose id
//! and change key match the manifest are not downloaded again.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use strongroom_archive::Archive;

use crate::accounts::Account;
use crate::backup::manifest::{self, FolderManifest, RootManifest, SnapshotKind};
use crate::catalog::{Catalog, Checkpoint, FolderState, SnapshotRow};
use crate::error::{Error, Result};
use crate::snapshot_view;

/// What `rebuild` recreated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildSummary {
    pub tasks: usize,
    pub accounts: usize,
    pub folders: usize,
    pub snapshots: usize,
}

pub fn rebuild(archive: &Archive, catalog: &Catalog) -> Result<RebuildSummary> {
    let snapshots = snapshot_view::snapshots(archive)?;
    catalog.clear()?;
    let mut newest = BTreeMap::new();
    for s in &snapshots {
        newest.insert(s.task_id, s.clone()); // sorted oldest first: the last one wins
        catalog.commit(
            s.task_id,
            &Checkpoint {
                snapshot: Some(SnapshotRow {
                    id: s.id.clone(),
                    task_id: s.task_id,
                    time_ms: s.time_ms,
                    complete: s.kind == SnapshotKind::Backup,
                    mailboxes: s.mailboxes,
                    messages: s.messages,
                }),
                ..Checkpoint::default()
            },
        )?;
    }
    let mut summary = RebuildSummary {
        tasks: 0,
        accounts: 0,
        folders: 0,
        snapshots: snapshots.len(),
    };
    for info in newest.values() {
        let snapshot = snapshot_view::resolve(archive, Some(&info.id))?;
        let (root, meta): (_, RootManifest) = manifest::read(archive, &snapshot.root)?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&meta.connection)
            .map_err(|_| Error::internal("root manifest holds a malformed connection"))?;
        catalog.insert_task(
            Some(meta.task_id),
            &meta.task_name,
            meta.service,
            &sealed,
            &meta.settings,
            meta.task_created_ms,
        )?;
        summary.tasks += 1;
        for entry in &meta.accounts {
            let tree = entry.tree.and_then(|i| root.children.get(i).copied());
            let account = Account {
                user_id: entry.user_id.clone(),
                address: entry.address.clone(),
                display_name: entry.display_name.clone(),
                licensed: entry.licensed,
                mailbox: entry.mailbox,
                active: entry.active,
                first_seen_ms: entry.first_seen_ms,
                gone_since_ms: entry.gone_since_ms,
                tree,
                last_backup_ms: entry.last_backup_ms,
            };
            catalog.upsert_account(meta.task_id, &account, entry.first_seen_ms)?;
            summary.accounts += 1;
            let Some(tree) = tree else { continue };
            let mut checkpoint = Checkpoint::default();
            for folder_tree in archive.read_tree(&tree)?.children {
                let (_, folder): (_, FolderManifest) = manifest::read(archive, &folder_tree)?;
                checkpoint.folders.push((
                    entry.user_id.clone(),
                    folder.id.clone(),
                    FolderState {
                        manifest: folder_tree,
                        delta_link: None,
                        messages: folder.messages.len() as u64,
                    },
                ));
                summary.folders += 1;
            }
            catalog.commit(meta.task_id, &checkpoint)?;
        }
    }
    Ok(summary)
}
