//! Browsing the archive at a point in time: the snapshots, a mailbox's folders, a folder's
//! messages, a message's MIME. Reads the archive only (never the catalog), so what it shows
//! is exactly what a restore would get.

use std::collections::HashMap;

use serde::Serialize;
use strongroom_archive::{Archive, Snapshot};

use crate::backup::manifest::{
    self, AccountEntry, FolderManifest, MessageEntry, RootManifest, SnapshotKind, SnapshotMeta,
};
use crate::error::{Error, Result};

/// A snapshot as `strongroom snapshots` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub id: String,
    pub short_id: String,
    pub time_ms: i64,
    pub kind: SnapshotKind,
    pub task_id: i64,
    pub mailboxes: u64,
    pub messages: u64,
    #[serde(skip)]
    seq: u64,
}

/// Every snapshot the archive holds, oldest first (ties: by `seq`, the order of writing).
pub fn snapshots(archive: &Archive) -> Result<Vec<SnapshotInfo>> {
    let mut out = Vec::new();
    for s in archive.snapshots()? {
        let meta: SnapshotMeta = serde_json::from_slice(&s.meta)?;
        out.push(SnapshotInfo {
            id: s.id.to_hex(),
            short_id: s.id.short(),
            time_ms: s.time_ms,
            kind: meta.kind,
            task_id: meta.task_id,
            mailboxes: meta.mailboxes,
            messages: meta.messages,
            seq: meta.seq,
        });
    }
    out.sort_by_key(|s| (s.time_ms, s.seq, s.kind.rank(), s.id.clone()));
    Ok(out)
}

/// The `seq` for the next snapshot written: one past every snapshot's, so snapshots of the
/// same millisecond still sort in the order they were written, across runs and task
/// records. (Archives written before `seq` was global count it from 0 in each run; their
/// ties fall back to the kind's rank.) Call it holding the write lock.
pub(crate) fn next_seq(archive: &Archive) -> Result<u64> {
    Ok(snapshots(archive)?
        .iter()
        .map(|s| s.seq + 1)
        .max()
        .unwrap_or(0))
}

/// The snapshot named by `at` (a full id or a unique prefix), or the newest backup or
/// checkpoint.
pub fn resolve(archive: &Archive, at: Option<&str>) -> Result<Snapshot> {
    let all = snapshots(archive)?;
    let chosen = match at {
        Some(prefix) => {
            let matches: Vec<_> = all.iter().filter(|s| s.id.starts_with(prefix)).collect();
            match matches.as_slice() {
                [one] => one.id.clone(),
                [] => return Err(Error::not_found(format!("no snapshot {prefix}"))),
                _ => {
                    return Err(Error::invalid(format!(
                        "snapshot prefix {prefix} is ambiguous"
                    )))
                }
            }
        }
        None => all
            .iter()
            .rev()
            .find(|s| s.kind != SnapshotKind::Task)
            .map(|s| s.id.clone())
            .ok_or_else(|| Error::not_found("the archive holds no backup yet"))?,
    };
    let id = chosen
        .parse()
        .map_err(|_| Error::internal("snapshot id does not parse"))?;
    Ok(archive.load_snapshot(&id)?)
}

/// A folder as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderInfo {
    pub id: String,
    /// Slash-separated names from the mailbox root.
    pub path: String,
    pub hidden: bool,
    pub messages: u64,
}

/// A message as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageInfo {
    #[serde(flatten)]
    pub entry: MessageEntry,
    pub folder_path: String,
}

/// A mailbox at a point in time: its account and its folders with their manifests.
#[derive(Debug)]
pub struct MailboxView {
    pub snapshot: Snapshot,
    pub account: AccountEntry,
    pub folders: Vec<(FolderInfo, FolderManifest)>,
}

impl MailboxView {
    /// Opens `address` (or user id) in the snapshot `at`.
    pub fn open(archive: &Archive, at: Option<&str>, address: &str) -> Result<MailboxView> {
        let snapshot = resolve(archive, at)?;
        let (root, meta): (_, RootManifest) = manifest::read(archive, &snapshot.root)?;
        let account = meta
            .accounts
            .into_iter()
            .find(|a| a.address.eq_ignore_ascii_case(address) || a.user_id == address)
            .ok_or_else(|| Error::not_found("no such mailbox in this snapshot"))?;
        let tree = account
            .tree
            .and_then(|i| root.children.get(i).copied())
            .ok_or_else(|| Error::not_found("this mailbox has no backup in this snapshot"))?;
        let mailbox = archive.read_tree(&tree)?;
        let mut manifests = Vec::new();
        for child in &mailbox.children {
            let (_, m): (_, FolderManifest) = manifest::read(archive, child)?;
            manifests.push(m);
        }
        let names: HashMap<&str, (&str, Option<&str>)> = manifests
            .iter()
            .map(|m| (m.id.as_str(), (m.name.as_str(), m.parent_id.as_deref())))
            .collect();
        let path_of = |id: &str| {
            let mut parts = Vec::new();
            let mut cursor = Some(id);
            while let Some(c) = cursor {
                match names.get(c) {
                    Some((name, parent)) if parts.len() < 64 => {
                        parts.push(*name);
                        cursor = *parent;
                    }
                    _ => break,
                }
            }
            parts.reverse();
            parts.join("/")
        };
        let folders = manifests
            .iter()
            .map(|m| {
                (
                    FolderInfo {
                        id: m.id.clone(),
                        path: path_of(&m.id),
                        hidden: m.hidden,
                        messages: m.messages.len() as u64,
                    },
                    m.clone(),
                )
            })
            .collect();
        Ok(MailboxView {
            snapshot,
            account,
            folders,
        })
    }

    /// The messages of the folder at `path` (case-insensitive) or with that id.
    pub fn messages(&self, path: &str) -> Result<Vec<MessageInfo>> {
        let wanted = path.trim_matches('/');
        let (info, manifest) = self
            .folders
            .iter()
            .find(|(f, _)| f.path.eq_ignore_ascii_case(wanted) || f.id == wanted)
            .ok_or_else(|| Error::not_found("no such folder in this snapshot"))?;
        Ok(manifest
            .messages
            .iter()
            .map(|e| MessageInfo {
                entry: e.clone(),
                folder_path: info.path.clone(),
            })
            .collect())
    }

    /// Every message of the mailbox.
    pub fn all_messages(&self) -> Vec<MessageInfo> {
        self.folders
            .iter()
            .flat_map(|(f, m)| {
                m.messages.iter().map(|e| MessageInfo {
                    entry: e.clone(),
                    folder_path: f.path.clone(),
                })
            })
            .collect()
    }
}

/// A message's MIME bytes as stored.
pub fn message_mime(archive: &Archive, entry: &MessageEntry) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(entry.size as usize);
    entry.read_mime(archive, |_| true, &mut out)?;
    Ok(out)
}
