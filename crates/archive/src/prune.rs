//! `prune`: forget the snapshots not kept, then delete the packs whose blobs are no longer
//! reachable and repack the ones that are mostly garbage. It plans first (so the caller
//! can show what will happen) and executes under an exclusive lock, in an order that
//! leaves a valid archive if interrupted at any point (FORMAT.md §11):
//! snapshots → new packs → new index → old index removed → old packs removed.

use std::collections::{HashMap, HashSet};

use crate::archive::Archive;
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::{seal_index, Index, IndexedPack, Location};
use crate::lock::{LockGuard, LockMode};
use crate::pack::PackWriter;
use crate::repair::PACKS_PER_INDEX_FILE;
use crate::verify::{list_ids, load_disk_index};
use crate::walk::walk;

/// What a prune will do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Snapshots that stay.
    pub keep_snapshots: Vec<SnapshotId>,
    /// Snapshots that will be deleted.
    pub delete_snapshots: Vec<SnapshotId>,
    /// Packs without any live blob (including packs no index references).
    pub delete_packs: Vec<PackId>,
    /// Packs whose live blobs are copied to new packs before they are deleted.
    pub repack_packs: Vec<PackId>,
    /// Blobs reachable from the kept snapshots.
    pub live_blobs: usize,
    /// Live blobs that will be copied.
    pub repack_blobs: usize,
    /// Sealed bytes that will be copied.
    pub bytes_repacked: u64,
    /// Bytes of pack files that will be deleted, minus the bytes copied.
    pub bytes_freed: u64,
}

impl PrunePlan {
    /// Whether executing would change anything.
    pub fn is_empty(&self) -> bool {
        self.delete_snapshots.is_empty()
            && self.delete_packs.is_empty()
            && self.repack_packs.is_empty()
    }
}

/// What a prune did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Snapshot files deleted.
    pub snapshots_deleted: usize,
    /// Pack files deleted.
    pub packs_deleted: usize,
    /// Pack files written by repacking.
    pub packs_written: usize,
    /// Index files written.
    pub index_files_written: usize,
}

/// A planned prune holding the exclusive lock; inspect [`Prune::plan`], then
/// [`Prune::execute`] or drop it to cancel.
pub struct Prune {
    archive: Archive,
    lock: LockGuard,
    plan: PrunePlan,
    live: Vec<(BlobId, Location)>,
    old_index_files: Vec<IndexId>,
    rewrite_index: bool,
}

impl std::fmt::Debug for Prune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prune({:?})", self.plan)
    }
}

impl Archive {
    /// Plans a prune that keeps exactly the snapshots in `keep`. Takes the exclusive lock
    /// (fails with [`Error::Locked`] while anyone reads or writes). Refuses to plan on a
    /// damaged archive, where it could not tell what is live.
    pub fn prune(&self, keep: &[SnapshotId]) -> Result<Prune> {
        let lock = self.lock(LockMode::Exclusive)?;
        let inner = &self.inner;
        let disk = load_disk_index(self)?;
        if let Some((id, _)) = disk.unreadable.first() {
            return Err(Error::corrupt(
                format!("index {id}"),
                "unreadable; run verify",
            ));
        }
        let keep_set: HashSet<SnapshotId> = keep.iter().copied().collect();
        let mut all: Vec<SnapshotId> = list_ids(self, FileKind::Snapshot)?;
        all.sort();
        for id in &keep_set {
            if !all.contains(id) {
                return Err(Error::SnapshotNotFound(id.to_hex()));
            }
        }
        let mut roots = Vec::new();
        let mut plan = PrunePlan::default();
        for id in all {
            if keep_set.contains(&id) {
                roots.push(self.load_snapshot(&id)?.root);
                plan.keep_snapshots.push(id);
            } else {
                plan.delete_snapshots.push(id);
            }
        }
        let walked = walk(roots, &disk.index, |loc| self.read_location(loc));
        if let Some(blob) = walked.missing.first() {
            return Err(Error::BlobNotFound(blob.to_hex()));
        }
        if let Some((tree, _)) = walked.bad_trees.first() {
            return Err(Error::corrupt(
                format!("tree {tree}"),
                "unreadable; run verify",
            ));
        }

        // Live bytes per pack, counting each live blob only at its chosen location.
        let mut live_bytes: HashMap<PackId, u64> = HashMap::new();
        let mut live = Vec::with_capacity(walked.reached.len());
        for id in &walked.reached {
            let loc = disk.index.get(id).expect("walk only reaches indexed blobs");
            *live_bytes.entry(loc.pack).or_default() += u64::from(loc.entry.length);
            live.push((*id, loc));
        }
        live.sort_by_key(|(_, l)| (l.pack, l.entry.offset));
        plan.live_blobs = live.len();

        let threshold = u64::from(inner.options.repack_threshold_percent.min(100));
        let mut on_disk: Vec<PackId> = list_ids(self, FileKind::Pack)?;
        on_disk.sort();
        let mut any_dead_entry = false;
        for pack in on_disk {
            let size = inner.backend.size(FileKind::Pack, &pack.to_hex())?;
            let used = live_bytes.get(&pack).copied().unwrap_or(0);
            let indexed = disk.packs.get(&pack).map_or(0, |p| p.1.len());
            let live_here = live.iter().filter(|(_, l)| l.pack == pack).count();
            any_dead_entry |= indexed != live_here;
            if used == 0 {
                plan.delete_packs.push(pack);
                plan.bytes_freed += size;
            } else if (size - used.min(size)) * 100 >= size * threshold && threshold > 0 {
                plan.repack_packs.push(pack);
                plan.bytes_repacked += used;
                plan.bytes_freed += size - used.min(size);
            }
        }
        let repack: HashSet<PackId> = plan.repack_packs.iter().copied().collect();
        plan.repack_blobs = live
            .iter()
            .filter(|(_, l)| repack.contains(&l.pack))
            .count();
        let rewrite_index = !plan.delete_packs.is_empty()
            || !plan.repack_packs.is_empty()
            || any_dead_entry
            || disk.files.len() > disk.packs.len().div_ceil(PACKS_PER_INDEX_FILE).max(1);
        Ok(Prune {
            archive: self.clone(),
            lock,
            plan,
            live,
            old_index_files: disk.files,
            rewrite_index,
        })
    }
}

impl Prune {
    /// What `execute` will do.
    pub fn plan(&self) -> &PrunePlan {
        &self.plan
    }

    /// Carries out the plan, then releases the lock.
    pub fn execute(self) -> Result<PruneReport> {
        let inner = &self.archive.inner;
        let backend = &*inner.backend;
        let mut report = PruneReport::default();

        // 1. Forget snapshots: only roots disappear; all files they reach stay valid.
        for id in &self.plan.delete_snapshots {
            backend.remove(FileKind::Snapshot, &id.to_hex())?;
            report.snapshots_deleted += 1;
        }

        // 2. Copy live blobs out of packs to repack, into new packs (not yet indexed).
        let repack: HashSet<PackId> = self.plan.repack_packs.iter().copied().collect();
        let mut new_packs: Vec<IndexedPack> = Vec::new();
        let mut writer: Option<PackWriter> = None;
        for (id, loc) in self.live.iter().filter(|(_, l)| repack.contains(&l.pack)) {
            self.lock
                .refresh_if_due(inner.options.stale_lock_after_ms)?;
            let data = self.archive.read_location(loc)?;
            if writer.is_none() {
                writer = Some(PackWriter::new(
                    backend,
                    &inner.keys.pack,
                    inner.options.rng.bytes(),
                    inner.options.zstd_level,
                )?);
            }
            let w = writer.as_mut().expect("just opened");
            w.add(*id, loc.entry.kind, &data)?;
            if w.len() >= inner.options.pack_size {
                let done = writer.take().expect("open").finish()?;
                new_packs.push(IndexedPack {
                    id: done.id,
                    seed: done.seed,
                    entries: done.entries,
                });
            }
        }
        if let Some(w) = writer.take() {
            let done = w.finish()?;
            new_packs.push(IndexedPack {
                id: done.id,
                seed: done.seed,
                entries: done.entries,
            });
        }
        report.packs_written = new_packs.len();

        if self.rewrite_index {
            // 3. A complete index of live blobs. Until the old files go, readers see both;
            //    every pack either lists still exists.
            let mut by_pack: HashMap<PackId, IndexedPack> = HashMap::new();
            for (_, loc) in self.live.iter().filter(|(_, l)| !repack.contains(&l.pack)) {
                by_pack
                    .entry(loc.pack)
                    .or_insert_with(|| IndexedPack {
                        id: loc.pack,
                        seed: loc.seed,
                        entries: Vec::new(),
                    })
                    .entries
                    .push(loc.entry);
            }
            let mut packs: Vec<IndexedPack> = by_pack.into_values().collect();
            packs.sort_by_key(|p| p.id);
            packs.extend(new_packs);
            let mut new_files = HashSet::new();
            let mut index = Index::default();
            for group in packs.chunks(PACKS_PER_INDEX_FILE) {
                let (id, bytes) = seal_index(&inner.keys.index, inner.options.rng.bytes(), group);
                backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
                new_files.insert(id);
                report.index_files_written += 1;
                for p in group {
                    index.add_pack(p);
                }
            }
            // 4. Old index files go only after the new ones are durable, and only while
            //    our exclusive lock still stands.
            self.lock.check()?;
            for id in &self.old_index_files {
                if !new_files.contains(id) {
                    backend.remove(FileKind::Index, &id.to_hex())?;
                }
            }
            *inner.index.write().expect("index lock") = index;
            *inner.loaded_indexes.lock().expect("index set") = new_files;

            // 5. No index references these packs any more.
            for pack in self.plan.delete_packs.iter().chain(&self.plan.repack_packs) {
                backend.remove(FileKind::Pack, &pack.to_hex())?;
                report.packs_deleted += 1;
            }
        }
        self.lock.release()?;
        Ok(report)
    }
}
