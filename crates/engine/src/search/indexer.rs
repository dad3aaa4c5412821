//! Brings the index up to date with the archive, snapshot by snapshot, oldest first.
//!
//! Each task's snapshots are compared with the last one the index saw for that task:
//! unchanged mailbox and folder trees (same blob id, same path) are skipped without reading
//! a message, so an incremental run costs work in proportion to what changed. A message
//! that is new, changed or moved is (re)indexed from its MIME; one that disappeared is
//! re-added marked deleted at the time of the first snapshot that lacks it, pointing at the
//! last snapshot that holds it.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use strongroom_archive::{Archive, BlobId};
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::document;
use super::schema::Fields;
use super::IndexState;
use crate::backup::manifest::{self, FolderManifest, MessageEntry, RootManifest};
use crate::error::{Error, Result};
use crate::snapshot_view::{self, SnapshotInfo};

/// A mailbox in one snapshot: its address, display name and mailbox tree.
struct MailboxAt {
    address: String,
    display_name: String,
    tree: BlobId,
}

/// The mailboxes of a snapshot, by user id.
fn mailboxes(archive: &Archive, snapshot_id: &str) -> Result<BTreeMap<String, MailboxAt>> {
    // Loaded by id, not resolved by prefix: resolving lists every snapshot, and a rebuild
    // loads one per snapshot.
    let id = snapshot_id
        .parse()
        .map_err(|_| Error::internal("the search index names a malformed snapshot id"))?;
    let snapshot = archive.load_snapshot(&id)?;
    let (root, meta): (_, RootManifest) = manifest::read(archive, &snapshot.root)?;
    Ok(meta
        .accounts
        .into_iter()
        .filter_map(|a| {
            let tree = a.tree.and_then(|i| root.children.get(i).copied())?;
            Some((
                a.user_id,
                MailboxAt {
                    address: a.address,
                    display_name: a.display_name,
                    tree,
                },
            ))
        })
        .collect())
}

/// A mailbox's folders: (folder tree, path, manifest).
fn folders(archive: &Archive, mailbox: &BlobId) -> Result<Vec<(BlobId, String, FolderManifest)>> {
    let mut manifests = Vec::new();
    for child in archive.read_tree(mailbox)?.children {
        let (_, m): (_, FolderManifest) = manifest::read(archive, &child)?;
        manifests.push((child, m));
    }
    let names: HashMap<String, (String, Option<String>)> = manifests
        .iter()
        .map(|(_, m)| (m.id.clone(), (m.name.clone(), m.parent_id.clone())))
        .collect();
    Ok(manifests
        .into_iter()
        .map(|(tree, m)| {
            let path = folder_path(&names, &m.id);
            (tree, path, m)
        })
        .collect())
}

/// Slash-separated names from the mailbox root (as `snapshot_view` shows paths).
fn folder_path(names: &HashMap<String, (String, Option<String>)>, id: &str) -> String {
    let mut parts = Vec::new();
    let mut cursor = Some(id);
    while let Some(c) = cursor {
        match names.get(c) {
            Some((name, parent)) if parts.len() < 64 => {
                parts.push(name.as_str());
                cursor = parent.as_deref();
            }
            _ => break,
        }
    }
    parts.reverse();
    parts.join("/")
}

/// One message as the diff sees it.
type Seen<'a> = HashMap<&'a str, (&'a MessageEntry, &'a str)>;

fn messages_of<'a>(
    folders: &'a [(BlobId, String, FolderManifest)],
    skip: &HashSet<(BlobId, &str)>,
) -> Seen<'a> {
    let mut out = HashMap::new();
    for (tree, path, m) in folders {
        if skip.contains(&(*tree, path.as_str())) {
            continue;
        }
        for e in &m.messages {
            out.insert(e.id.as_str(), (e, path.as_str()));
        }
    }
    out
}

/// Writes documents for one snapshot after another into one tantivy writer.
pub(super) struct Indexer<'a> {
    pub archive: &'a Archive,
    pub writer: &'a IndexWriter,
    pub fields: Fields,
    /// Documents added or replaced so far.
    pub indexed: u64,
}

/// Where a message sits and what to mark it with.
struct Placement<'a> {
    task: i64,
    user_id: &'a str,
    mailbox: &'a MailboxAt,
    path: &'a str,
    deleted: Option<(i64, &'a str)>,
}

impl Indexer<'_> {
    /// Indexes snapshot `s`, given the last snapshot of its task the index saw.
    pub fn snapshot(&mut self, s: &SnapshotInfo, state: &mut IndexState) -> Result<()> {
        let previous = state.latest(s.task_id).map(str::to_owned);
        let before = match &previous {
            Some(p) => match mailboxes(self.archive, p) {
                Ok(m) => m,
                // Pruned since: compare with nothing (every message is re-indexed).
                Err(e) if e.code == crate::ErrorCode::NotFound => BTreeMap::new(),
                Err(e) => return Err(e),
            },
            None => BTreeMap::new(),
        };
        let after = mailboxes(self.archive, &s.id)?;
        let deleted = Some((s.time_ms, previous.as_deref().unwrap_or_default()));
        for (user, now) in &after {
            let old = before.get(user);
            if old.map(|o| o.tree) == Some(now.tree) {
                continue;
            }
            let new_folders = folders(self.archive, &now.tree)?;
            let old_folders = match old {
                Some(o) => folders(self.archive, &o.tree)?,
                None => Vec::new(),
            };
            let key = |f: &(BlobId, String, FolderManifest)| (f.0, f.1.clone());
            let old_keys: HashSet<(BlobId, String)> = old_folders.iter().map(key).collect();
            let new_keys: HashSet<(BlobId, String)> = new_folders.iter().map(key).collect();
            // Folders present unchanged on both sides hold no news.
            let same: HashSet<(BlobId, &str)> = new_keys
                .intersection(&old_keys)
                .map(|(t, p)| (*t, p.as_str()))
                .collect();
            let gone = messages_of(&old_folders, &same);
            let present = messages_of(&new_folders, &same);
            let mut ids: Vec<&&str> = present.keys().collect();
            ids.sort();
            let mut jobs = Vec::new();
            for id in ids {
                let (entry, path) = present[*id];
                if gone.get(*id) == Some(&(entry, path)) {
                    continue;
                }
                jobs.push((
                    entry,
                    Placement {
                        task: s.task_id,
                        user_id: user,
                        mailbox: now,
                        path,
                        deleted: None,
                    },
                ));
            }
            // Only an older tree can have lost messages.
            if let Some(old) = old {
                let mut removed: Vec<&&str> = gone
                    .keys()
                    .filter(|id| !present.contains_key(**id))
                    .collect();
                removed.sort();
                for id in removed {
                    let (entry, path) = gone[*id];
                    jobs.push((
                        entry,
                        Placement {
                            task: s.task_id,
                            user_id: user,
                            mailbox: old,
                            path,
                            deleted,
                        },
                    ));
                }
            }
            self.put_all(&jobs)?;
        }
        // Mailboxes the snapshot no longer holds: all their messages are gone from it.
        for (user, old) in &before {
            if after.contains_key(user) {
                continue;
            }
            let old_folders = folders(self.archive, &old.tree)?;
            let jobs: Vec<_> = old_folders
                .iter()
                .flat_map(|(_, path, folder)| {
                    folder.messages.iter().map(move |entry| {
                        (
                            entry,
                            Placement {
                                task: s.task_id,
                                user_id: user,
                                mailbox: old,
                                path,
                                deleted,
                            },
                        )
                    })
                })
                .collect();
            self.put_all(&jobs)?;
        }
        state.record(s.task_id, &s.id);
        Ok(())
    }

    /// Puts the documents of `jobs`, reading and parsing messages on every core: that part
    /// is most of indexing's work, while tantivy's writer takes documents from any thread.
    fn put_all(&mut self, jobs: &[(&MessageEntry, Placement<'_>)]) -> Result<()> {
        let this = &*self;
        jobs.par_iter()
            .try_for_each(|(entry, at)| this.put(entry, at))?;
        self.indexed += jobs.len() as u64;
        Ok(())
    }

    /// Adds the message's document, replacing any earlier one of the same identity.
    fn put(&self, entry: &MessageEntry, at: &Placement<'_>) -> Result<()> {
        let f = &self.fields;
        let key = doc_key(at.task, at.user_id, &entry.id);
        let mime = searchable_mime(self.archive, entry)?;
        let text = document::extract(&mime);
        drop(mime);
        let mut doc = TantivyDocument::new();
        doc.add_text(f.key, &key);
        doc.add_i64(f.task, at.task);
        doc.add_text(f.user_id, at.user_id);
        doc.add_text(
            f.mailbox,
            format!("{} {}", at.mailbox.address, at.mailbox.display_name),
        );
        doc.add_text(f.address, &at.mailbox.address);
        doc.add_text(f.folder, at.path);
        doc.add_text(f.message_id, &entry.id);
        let subject = entry.subject.clone().or(text.subject).unwrap_or_default();
        doc.add_text(f.subject, &subject);
        let from = if text.from.is_empty() {
            entry.from.clone().unwrap_or_default()
        } else {
            text.from
        };
        doc.add_text(f.from, &from);
        doc.add_text(f.to, &text.to);
        doc.add_text(f.body, &text.body);
        doc.add_text(f.attachment, &text.attachment);
        let has_attachments = entry.has_attachments.unwrap_or(text.attachment_count > 0);
        if has_attachments {
            doc.add_text(f.has, "attachment");
        }
        doc.add_bool(f.has_attachments, has_attachments);
        let date = entry
            .received_ms
            .or(entry.sent_ms)
            .or(text.date_ms)
            .unwrap_or(0);
        doc.add_i64(f.date, date);
        doc.add_u64(f.size, entry.size);
        if let Some((deleted_ms, last_snapshot)) = at.deleted {
            doc.add_i64(f.deleted_ms, deleted_ms);
            doc.add_text(f.snapshot, last_snapshot);
        }
        self.writer.delete_term(Term::from_field_text(f.key, &key));
        self.writer.add_document(doc).map_err(super::index_error)?;
        Ok(())
    }
}

/// The message's MIME without the bodies of attachments whose text is not indexed: their
/// headers (names, types) stay, so the extracted text is the same as from the whole MIME, but
/// a message with a 40 MB attachment is read as a few KB instead of held whole in memory,
/// twice (encoded and decoded), while it is indexed.
fn searchable_mime(archive: &Archive, entry: &MessageEntry) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    entry.read_mime(
        archive,
        |a| document::indexes_text_of(a.content_type.as_deref()),
        &mut out,
    )?;
    Ok(out)
}

/// A document's identity: the message's immutable id within its mailbox and task, so a
/// move or a change replaces the document and a deletion marks it.
pub fn doc_key(task: i64, user_id: &str, message_id: &str) -> String {
    format!("{task}/{user_id}/{message_id}")
}

/// Snapshots of `tasks` the index has not seen, oldest first (task records hold no mail).
pub(super) fn unseen(
    archive: &Archive,
    state: &IndexState,
    tasks: &HashSet<i64>,
) -> Result<Vec<SnapshotInfo>> {
    Ok(snapshot_view::snapshots(archive)?
        .into_iter()
        .filter(|s| {
            s.kind != manifest::SnapshotKind::Task
                && tasks.contains(&s.task_id)
                && !state.has_seen(s.task_id, &s.id)
        })
        .collect())
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Error {
        super::index_error(e)
    }
}
