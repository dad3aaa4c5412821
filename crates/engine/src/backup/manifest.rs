//! Manifests: the JSON each snapshot's trees carry, so every snapshot is a complete
//! point-in-time view of its task while unchanged folders and mailboxes deduplicate.
//!
//! ```text
//! snapshot ─▶ root tree      meta: RootManifest (task, settings, sealed connection, accounts)
//!              └▶ mailbox tree    meta: MailboxManifest (account)       one per mailbox
//!                   └▶ folder tree     meta: FolderManifest (folder, messages)  one per folder
//!                        └▶ data blobs      each message's MIME, as segments (see below)
//! ```
//!
//! Trees are blobs, so their `meta` is compressed and sealed by the archive like any content.
//! A folder tree holds no delta link and no time, so a folder that did not change produces
//! the same tree (the same blob id) on every run.
//!
//! A message's MIME is cut into segments at attachment bodies: each attachment's encoded
//! body is one segment, the headers and text between them are the others, and each segment
//! is chunked (FastCDC) on its own. So an attachment carried by many messages is stored
//! once, and `MessageEntry::read_mime` gives back exactly the MIME. A message's
//! `attachments` say which run of its blobs each attachment is (absent in manifests written
//! before attachments were split, which read as messages without that list).
//! Since version 2 an attachment's base64 body may be stored decoded (`Base64Layout`), and
//! `read_mime` re-encodes it; readers refuse manifests of a version above their own.

use serde::{Deserialize, Serialize};
use strongroom_archive::{Archive, BlobId, Tree};

use super::base64_body::Base64Text;
use crate::accounts::MailboxType;
use crate::error::{Error, ErrorCode, Result};
use crate::task::{Service, TaskSettings};

/// 2: attachments may be stored decoded (`AttachmentEntry::base64`); a reader of version 1
/// would read their bytes as if they were the MIME.
pub const MANIFEST_VERSION: u32 = 2;

/// What kind of snapshot this is, in the snapshot's own (sealed) metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// A finished backup run.
    Backup,
    /// Written during a run after folders finished; superseded by the run's `Backup`.
    Checkpoint,
    /// Records the task as the catalog holds it (settings, accounts and their activation,
    /// the committed mailbox trees): written when the task is created and whenever its
    /// settings or activations change, so `rebuild` finds changes made between backups.
    Task,
}

/// A snapshot's own metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMeta {
    pub version: u32,
    pub kind: SnapshotKind,
    pub task_id: i64,
    pub mailboxes: u64,
    pub messages: u64,
    /// Order of writing across the archive (one past the highest before it), so snapshots
    /// committed in the same millisecond (or under a frozen test clock) still sort in the
    /// order they were written. Archives written before counted it per run.
    #[serde(default)]
    pub seq: u64,
}

impl SnapshotKind {
    /// Among snapshots of the same time, which is newer: a run's backup snapshot comes after
    /// its checkpoints, which come after a task record.
    pub fn rank(self) -> u8 {
        match self {
            SnapshotKind::Task => 0,
            SnapshotKind::Checkpoint => 1,
            SnapshotKind::Backup => 2,
        }
    }
}

/// One account as the root tree records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEntry {
    pub user_id: String,
    pub address: String,
    pub display_name: String,
    pub licensed: bool,
    pub mailbox: MailboxType,
    pub active: bool,
    pub first_seen_ms: i64,
    pub gone_since_ms: Option<i64>,
    pub last_backup_ms: Option<i64>,
    /// Index into the root tree's children, when a backup of this mailbox exists.
    pub tree: Option<usize>,
    pub messages: u64,
}

/// The root tree's metadata: enough to recreate the task and its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootManifest {
    pub version: u32,
    pub task_id: i64,
    pub task_name: String,
    pub service: Service,
    pub settings: TaskSettings,
    pub task_created_ms: i64,
    /// The connection sealed under the secrets subkey (base64).
    pub connection: String,
    pub accounts: Vec<AccountEntry>,
}

/// A mailbox tree's metadata; its children are its folder trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxManifest {
    pub version: u32,
    pub user_id: String,
}

/// A folder tree's metadata; its children are the blobs its messages reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderManifest {
    pub version: u32,
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub hidden: bool,
    /// Messages ordered by id.
    pub messages: Vec<MessageEntry>,
}

/// One message: where its MIME is and the metadata a listing or restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEntry {
    /// Immutable id.
    pub id: String,
    pub change_key: Option<String>,
    /// MIME chunks, in order (hex blob ids).
    pub blobs: Vec<String>,
    /// MIME size in bytes.
    pub size: u64,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub received_ms: Option<i64>,
    pub sent_ms: Option<i64>,
    pub is_read: Option<bool>,
    pub flag_status: Option<String>,
    pub categories: Vec<String>,
    pub internet_message_id: Option<String>,
    pub has_attachments: Option<bool>,
    /// The attachment parts found in the MIME, in order (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentEntry>,
}

/// One attachment part of a message: its body is `blobs[first_blob..][..blob_count]` of the
/// message's entry, encoded as in the MIME or, with `base64`, decoded in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentEntry {
    /// File name as the part's headers give it (decoded).
    pub name: Option<String>,
    /// `type/subtype` of the part.
    pub content_type: Option<String>,
    /// Bytes of the encoded body (as in the MIME, e.g. base64 text).
    pub size: u64,
    pub first_blob: usize,
    pub blob_count: usize,
    /// The body's first `decoded_blobs` blobs are the bytes its base64 lines encode (see
    /// `base64_body`); the others hold the rest of the body as it is. Absent: all as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<Base64Layout>,
}

/// How decoded attachment bytes re-encode to the body's text, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Base64Layout {
    /// Characters per line (a multiple of 4); the last line may be shorter.
    pub line_len: u32,
    /// Lines end in CRLF (else LF); every line ends, the last one too.
    pub crlf: bool,
    /// Bytes of text the decoded blobs re-encode to.
    pub encoded_len: u64,
    pub decoded_blobs: usize,
}

impl MessageEntry {
    /// Appends the message's MIME as it was downloaded to `out`, leaving out the bodies of
    /// the attachments `keep` turns down (their headers stay).
    pub fn read_mime(
        &self,
        archive: &Archive,
        keep: impl Fn(&AttachmentEntry) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let ids = self.blob_ids()?;
        let mut at = 0;
        for a in &self.attachments {
            let run = (a.first_blob >= at)
                .then(|| ids.get(a.first_blob..a.first_blob + a.blob_count))
                .flatten()
                .ok_or_else(|| damaged("its attachments are out of place"))?;
            archive.read_stream(&ids[at..a.first_blob], out)?;
            at = a.first_blob + a.blob_count;
            if !keep(a) {
                continue;
            }
            let Some(layout) = &a.base64 else {
                archive.read_stream(run, out)?;
                continue;
            };
            let line_len = layout.line_len;
            let (decoded, rest) = run
                .split_at_checked(layout.decoded_blobs)
                .filter(|_| line_len > 0 && line_len.is_multiple_of(4))
                .ok_or_else(|| damaged("an attachment's base64 layout is invalid"))?;
            let mut text = Base64Text::new(layout);
            for id in decoded {
                text.push(&archive.read_blob(id)?, out);
            }
            if text.finish(out) != layout.encoded_len {
                return Err(damaged("an attachment re-encodes to another length"));
            }
            archive.read_stream(rest, out)?;
        }
        archive.read_stream(&ids[at..], out)?;
        Ok(())
    }

    pub fn blob_ids(&self) -> Result<Vec<BlobId>> {
        self.blobs
            .iter()
            .map(|b| {
                b.parse()
                    .map_err(|_| Error::internal("manifest holds a malformed blob id"))
            })
            .collect()
    }
}

impl FolderManifest {
    pub fn to_tree(&self) -> Result<Tree> {
        let mut children = Vec::new();
        for m in &self.messages {
            children.extend(m.blob_ids()?);
        }
        Ok(Tree {
            children,
            meta: serde_json::to_vec(self)?,
        })
    }
}

fn damaged(what: &str) -> Error {
    Error::new(
        ErrorCode::ArchiveDamaged,
        format!("A message's manifest is damaged: {what}. Run verify."),
    )
}

/// A tree's metadata, which says which version of this format wrote it.
pub trait Manifest: serde::de::DeserializeOwned {
    fn version(&self) -> u32;
}

impl Manifest for RootManifest {
    fn version(&self) -> u32 {
        self.version
    }
}

impl Manifest for MailboxManifest {
    fn version(&self) -> u32 {
        self.version
    }
}

impl Manifest for FolderManifest {
    fn version(&self) -> u32 {
        self.version
    }
}

/// Reads a tree and parses its metadata as `T`. A manifest of a later version than this
/// build writes is refused: it may mean something this build would misread.
pub fn read<T: Manifest>(archive: &Archive, id: &BlobId) -> Result<(Tree, T)> {
    let tree = archive.read_tree(id)?;
    let meta: T = serde_json::from_slice(&tree.meta)?;
    if meta.version() > MANIFEST_VERSION {
        return Err(Error::new(
            ErrorCode::ArchiveDamaged,
            format!(
                "The archive was written by a newer Strongroom (manifest version {}, this one reads up to {MANIFEST_VERSION}). Update Strongroom to read it.",
                meta.version()
            ),
        ));
    }
    Ok((tree, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_archive;

    #[test]
    fn a_manifest_from_a_newer_strongroom_is_refused() {
        let (archive, _) = memory_archive();
        let folder = |version| FolderManifest {
            version,
            id: "inbox".into(),
            parent_id: None,
            name: "Inbox".into(),
            hidden: false,
            messages: Vec::new(),
        };
        let mut writer = archive.writer().unwrap();
        let current = writer.put_tree(&folder(MANIFEST_VERSION).to_tree().unwrap());
        let newer = writer.put_tree(&folder(MANIFEST_VERSION + 1).to_tree().unwrap());
        writer.finish().unwrap();

        let (_, read_back): (_, FolderManifest) = read(&archive, &current.unwrap()).unwrap();
        assert_eq!(read_back, folder(MANIFEST_VERSION));
        let err = read::<FolderManifest>(&archive, &newer.unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ArchiveDamaged);
        assert!(err.message.contains("newer Strongroom"), "{}", err.message);
    }
}
