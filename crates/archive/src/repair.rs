//! `rebuild_index`: recreate the index from the packs' own trailers, restic's
//! `repair index`. It repairs a lost or damaged index file (the `IndexUnreadable` and
//! `BlobMissing` findings that follow from it) and re-indexes packs that a crashed writer
//! committed but never indexed.

use crate::archive::Archive;
use crate::backend::FileKind;
use crate::error::Result;
use crate::id::{file_hash, IndexId, PackId};
use crate::index::{seal_index, Index, IndexedPack};
use crate::lock::LockMode;
use crate::pack::parse_pack;
use crate::verify::list_ids;

/// Index files hold at most this many packs each.
pub(crate) const PACKS_PER_INDEX_FILE: usize = 1024;

/// What `rebuild_index` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Packs whose trailer was read and indexed.
    pub packs_indexed: usize,
    /// Blobs now in the index.
    pub blobs_indexed: usize,
    /// Packs whose trailer could not be read (their blobs stay unindexed; `verify` names
    /// what is lost).
    pub packs_unreadable: Vec<PackId>,
}

impl Archive {
    /// Rebuilds the index from every pack's trailer under the exclusive lock. New index
    /// files are durable before the old ones are removed, so an interruption leaves a
    /// valid archive.
    pub fn rebuild_index(&self) -> Result<RebuildReport> {
        let lock = self.lock(LockMode::Exclusive)?;
        let inner = &self.inner;
        let mut report = RebuildReport::default();
        let mut packs = Vec::new();
        let mut ids: Vec<PackId> = list_ids(self, FileKind::Pack)?;
        ids.sort();
        for id in ids {
            let bytes = inner.backend.read(FileKind::Pack, &id.to_hex())?;
            let what = format!("pack {id}");
            match parse_pack(&bytes, &inner.keys.pack, &what) {
                Ok((seed, entries)) => {
                    if file_hash(&bytes) != id.0 {
                        // The trailer still authenticates: index it, and let verify
                        // report the damaged records.
                        tracing::warn!(pack = %id, "pack content does not match its name");
                    }
                    report.blobs_indexed += entries.len();
                    packs.push(IndexedPack { id, seed, entries });
                }
                Err(e) => {
                    tracing::warn!(pack = %id, error = %e, "pack trailer unreadable");
                    report.packs_unreadable.push(id);
                }
            }
            lock.refresh_if_due(inner.options.stale_lock_after_ms)?;
        }
        report.packs_indexed = packs.len();

        let old: Vec<IndexId> = list_ids(self, FileKind::Index)?;
        let mut index = Index::default();
        let mut new_files = std::collections::HashSet::new();
        for group in packs.chunks(PACKS_PER_INDEX_FILE) {
            let (id, bytes) = seal_index(&inner.keys.index, inner.options.rng.bytes(), group);
            inner.backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
            new_files.insert(id);
            for p in group {
                index.add_pack(p);
            }
        }
        for id in old.iter().filter(|id| !new_files.contains(id)) {
            inner.backend.remove(FileKind::Index, &id.to_hex())?;
        }
        report.blobs_indexed = index.blob_count();
        *inner.index.write().expect("index lock") = index;
        *inner.loaded_indexes.lock().expect("index set") = new_files;
        lock.release()?;
        Ok(report)
    }
}
