//! A writing session. Blobs go into packs; `flush` persists the open pack and then an index
//! file for every pack finished since the last flush; `commit_snapshot` flushes and then
//! writes the snapshot. That order (pack → index → snapshot) is why a crash at any point
//! leaves a valid archive: nothing ever references a file that is not yet durable.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use crate::archive::Archive;
use crate::backend::FileKind;
use crate::blob::{blob_id, BlobKind, Tree, MAX_BLOB_LEN};
use crate::chunker::for_each_chunk;
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, SnapshotId};
use crate::index::{seal_index, IndexedPack};
use crate::lock::{LockGuard, LockMode};
use crate::pack::{encode_record, FinishedPack, PackWriter, MAX_PACK_LEN};
use crate::repair::PACKS_PER_INDEX_FILE;
use crate::snapshot::seal_snapshot;

/// Write an index file at the latest after this many finished packs, even without a
/// flush, so a crash loses at most this much work.
const PACKS_PER_INDEX: usize = 16;
/// Full packs that may be finishing in the background at once; past this, storing waits for
/// the oldest, so a disk slower than the callers holds them back instead of piling up threads.
const PACKS_FINISHING: usize = 4;

/// Counters of one writing session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Blobs stored by this session.
    pub blobs_added: u64,
    /// Blobs that were already stored (deduplicated).
    pub blobs_deduplicated: u64,
    /// Plaintext bytes of stored blobs.
    pub bytes_added: u64,
    /// Plaintext bytes of deduplicated blobs.
    pub bytes_deduplicated: u64,
    /// Pack files written.
    pub packs_written: u64,
    /// Bytes of pack files written.
    pub pack_bytes_written: u64,
}

/// A blob hashed, and perhaps compressed, before it reaches the writer: see
/// [`Archive::prepare_blob`] and [`Writer::put_prepared`].
#[derive(Debug)]
pub struct PreparedBlob {
    id: BlobId,
    kind: BlobKind,
    raw_len: u32,
    level: i32,
    /// The record to seal, once [`PreparedBlob::compress`] ran.
    record: Option<Vec<u8>>,
}

impl PreparedBlob {
    /// The blob's id (its keyed hash).
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// Compresses `data` (the content this blob was prepared from). Skip it when the
    /// writer already has the blob: a duplicate is never compressed.
    pub fn compress(&mut self, data: &[u8]) {
        debug_assert_eq!(self.raw_len as usize, data.len());
        self.record = Some(encode_record(data, self.level));
    }
}

impl Archive {
    /// Hashes a blob's content for [`Writer::put_prepared`]; needs no writer, so it can
    /// run on any thread.
    pub fn prepare_blob(&self, kind: BlobKind, data: &[u8]) -> Result<PreparedBlob> {
        if data.len() > MAX_BLOB_LEN {
            return Err(Error::BlobTooLarge {
                len: data.len(),
                max: MAX_BLOB_LEN,
            });
        }
        Ok(PreparedBlob {
            id: blob_id(&self.inner.keys.blob_id, data),
            kind,
            raw_len: data.len() as u32,
            level: self.inner.options.zstd_level,
            record: None,
        })
    }
}

/// A writing session holding the archive's write lock. After any error it refuses further
/// work: start a new writer (committed snapshots are unaffected). Dropping it without
/// `finish` discards unflushed blobs.
pub struct Writer {
    archive: Archive,
    /// Full packs being finished (trailer, fsync, rename) on threads of their own, so that
    /// storing goes on while the disk syncs; joined before an index file lists them.
    /// Declared before `lock` so that, dropped, it waits for them before the lock goes.
    finishing: Finishing,
    lock: LockGuard,
    pack: Option<PackWriter>,
    /// Blobs written by this session but not yet in a persisted index.
    pending: HashMap<BlobId, BlobKind>,
    finished: Vec<IndexedPack>,
    stats: WriteStats,
    failed: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Writer({:?})", self.stats)
    }
}

impl Writer {
    pub(crate) fn new(archive: Archive) -> Result<Writer> {
        let lock = archive.lock(LockMode::Write)?;
        // We hold the write lock, so temp files of dead processes are garbage.
        let removed = archive.inner.backend.clean_temp()?;
        if removed > 0 {
            tracing::info!(removed, "removed abandoned temporary files");
        }
        archive.reload_index()?;
        Ok(Writer {
            archive,
            lock,
            pack: None,
            pending: HashMap::new(),
            finishing: Finishing::default(),
            finished: Vec::new(),
            stats: WriteStats::default(),
            failed: false,
        })
    }

    /// The archive being written.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// This session's counters.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    fn guard<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.failed {
            return Err(Error::InvalidArgument(
                "writer failed earlier; start a new writer".into(),
            ));
        }
        let result = f(self);
        if result.is_err() {
            self.failed = true;
            // Drop the open pack (its temp file is discarded).
            self.pack = None;
        }
        result
    }

    /// Whether a blob is stored or pending in this session.
    pub fn has_blob(&self, id: &BlobId) -> bool {
        self.pending.contains_key(id) || self.archive.has_blob(id)
    }

    /// Stores a blob unless one with the same content exists; returns its id.
    pub fn put_blob(&mut self, kind: BlobKind, data: &[u8]) -> Result<BlobId> {
        let blob = self.archive.prepare_blob(kind, data)?;
        self.put_prepared(&blob, data)
    }

    /// Stores a blob hashed (and, unless the caller found it stored, compressed) by
    /// [`Archive::prepare_blob`] outside this writer; `data` is the blob's content, which
    /// is compressed here only if that was skipped. Several threads can thus do the CPU
    /// work of storing at once, while the writer only seals and appends.
    pub fn put_prepared(&mut self, blob: &PreparedBlob, data: &[u8]) -> Result<BlobId> {
        debug_assert_eq!(blob.raw_len as usize, data.len());
        self.guard(|w| w.put(blob, data))
    }

    fn put(&mut self, blob: &PreparedBlob, data: &[u8]) -> Result<BlobId> {
        self.lock
            .refresh_if_due(self.archive.inner.options.stale_lock_after_ms)?;
        let id = blob.id;
        if self.has_blob(&id) {
            self.stats.blobs_deduplicated += 1;
            self.stats.bytes_deduplicated += data.len() as u64;
            return Ok(id);
        }
        let pack_size = self.archive.inner.options.pack_size.min(MAX_PACK_LEN / 2);
        if self
            .pack
            .as_ref()
            .is_some_and(|p| p.len() + data.len() as u64 > MAX_PACK_LEN / 2)
        {
            self.finish_pack_in_background()?;
        }
        if self.pack.is_none() {
            let inner = &self.archive.inner;
            self.pack = Some(PackWriter::new(
                &*inner.backend,
                &inner.keys.pack,
                inner.options.rng.bytes(),
                inner.options.zstd_level,
            )?);
        }
        let pack = self.pack.as_mut().expect("just opened");
        match &blob.record {
            Some(record) => pack.add_record(id, blob.kind, blob.raw_len, record)?,
            None => pack.add(id, blob.kind, data)?,
        };
        self.pending.insert(id, blob.kind);
        self.stats.blobs_added += 1;
        self.stats.bytes_added += data.len() as u64;
        if pack.len() >= pack_size {
            self.finish_pack_in_background()?;
            if self.finished.len() + self.finishing.0.len() >= PACKS_PER_INDEX {
                self.write_index()?;
            }
        }
        Ok(id)
    }

    /// Stores a tree blob.
    pub fn put_tree(&mut self, tree: &Tree) -> Result<BlobId> {
        self.put_blob(BlobKind::Tree, &tree.encode())
    }

    /// Splits large content with FastCDC and stores each chunk as a data blob; returns the
    /// chunk ids in order (read back with `Archive::read_stream`).
    pub fn put_stream(&mut self, reader: impl Read) -> Result<Vec<BlobId>> {
        let params = self.archive.inner.options.chunker;
        let mut ids = Vec::new();
        for_each_chunk(reader, params, |chunk| {
            ids.push(self.put_blob(BlobKind::Data, chunk)?);
            Ok(())
        })?;
        Ok(ids)
    }

    /// Finishes the open pack on this thread: `flush` needs it durable before it returns.
    fn finish_pack(&mut self) -> Result<()> {
        if let Some(pack) = self.pack.take().filter(|p| p.blob_count() > 0) {
            let done = pack.finish()?;
            self.record_finished(done);
        }
        Ok(())
    }

    /// Hands the open pack to a thread that finishes it. Its blobs stay in `pending`, so
    /// they deduplicate as before, and no index lists the pack before `join_finishing`.
    fn finish_pack_in_background(&mut self) -> Result<()> {
        let Some(pack) = self.pack.take().filter(|p| p.blob_count() > 0) else {
            return Ok(());
        };
        if self.finishing.0.len() >= PACKS_FINISHING {
            let oldest = self.finishing.0.remove(0);
            let done = join(oldest)?;
            self.record_finished(done);
        }
        self.finishing
            .0
            .push(std::thread::spawn(move || pack.finish()));
        Ok(())
    }

    /// Waits for every pack finishing in the background; the first failure is returned
    /// after all have ended.
    fn join_finishing(&mut self) -> Result<()> {
        let mut first_error = None;
        for handle in std::mem::take(&mut self.finishing.0) {
            match join(handle) {
                Ok(done) => self.record_finished(done),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn record_finished(&mut self, done: FinishedPack) {
        self.stats.packs_written += 1;
        self.stats.pack_bytes_written += done.len;
        self.finished.push(IndexedPack {
            id: done.id,
            seed: done.seed,
            entries: done.entries,
        });
    }

    fn write_index(&mut self) -> Result<()> {
        self.join_finishing()?;
        if self.finished.is_empty() {
            return Ok(());
        }
        // If a prune took our lock over as stale, our packs may be gone: never index them.
        self.lock.check()?;
        let inner = &self.archive.inner;
        let (id, bytes) = seal_index(&inner.keys.index, inner.options.rng.bytes(), &self.finished);
        inner.backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
        {
            let mut index = inner.index.write().expect("index lock");
            for p in &self.finished {
                index.add_pack(p);
                for e in &p.entries {
                    self.pending.remove(&e.id);
                }
            }
        }
        inner.loaded_indexes.lock().expect("index set").insert(id);
        self.finished.clear();
        Ok(())
    }

    /// Replaces the index files this process has loaded by files listing their union:
    /// new files first, old ones removed after, so an interruption leaves both (valid).
    /// Safe under the write lock: no other writer or prune can change `index/` meanwhile.
    fn merge_index_files(&mut self) -> Result<()> {
        let inner = &self.archive.inner;
        let loaded: Vec<IndexId> = inner
            .loaded_indexes
            .lock()
            .expect("index set")
            .iter()
            .copied()
            .collect();
        if loaded.len() <= inner.options.max_index_files.max(1) {
            return Ok(());
        }
        self.lock.check()?;
        let packs = inner.index.read().expect("index lock").to_packs();
        let mut merged = HashSet::new();
        for group in packs.chunks(PACKS_PER_INDEX_FILE) {
            let (id, bytes) = seal_index(&inner.keys.index, inner.options.rng.bytes(), group);
            inner.backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
            merged.insert(id);
        }
        for id in loaded.iter().filter(|id| !merged.contains(id)) {
            inner.backend.remove(FileKind::Index, &id.to_hex())?;
        }
        *inner.loaded_indexes.lock().expect("index set") = merged;
        Ok(())
    }

    /// Persists everything written so far: the open pack, then an index file for it. After
    /// `flush` returns, every blob put so far survives a crash.
    pub fn flush(&mut self) -> Result<()> {
        self.guard(|w| {
            w.finish_pack()?;
            w.write_index()?;
            w.lock.refresh()
        })
    }

    /// Flushes, then writes a snapshot whose root is the tree `root`.
    pub fn commit_snapshot(&mut self, root: BlobId, meta: &[u8]) -> Result<SnapshotId> {
        match self
            .pending
            .get(&root)
            .copied()
            .or_else(|| self.archive.blob_info(&root).map(|i| i.kind))
        {
            Some(BlobKind::Tree) => {}
            Some(BlobKind::Data) => {
                return Err(Error::InvalidArgument(
                    "snapshot root must be a tree".into(),
                ))
            }
            None => return Err(Error::BlobNotFound(root.to_hex())),
        }
        self.flush()?;
        self.guard(|w| {
            w.lock.check()?;
            let inner = &w.archive.inner;
            let now = inner.options.clock.now_ms();
            let (id, bytes) = seal_snapshot(
                &inner.keys.snapshot,
                inner.options.rng.bytes(),
                now,
                &root,
                meta,
            );
            inner
                .backend
                .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
            Ok(id)
        })
    }

    /// Flushes, merges index files if there are too many, and releases the write lock.
    pub fn finish(mut self) -> Result<WriteStats> {
        self.flush()?;
        self.guard(|w| w.merge_index_files())?;
        let stats = self.stats;
        self.lock.release()?;
        Ok(stats)
    }
}

/// Packs finishing in the background. A writer dropped without `flush` (an error, a
/// cancelled run) still waits for them, so no thread outlives its write lock; their packs,
/// never indexed, are garbage for `prune`.
#[derive(Default)]
struct Finishing(Vec<std::thread::JoinHandle<Result<FinishedPack>>>);

impl Drop for Finishing {
    fn drop(&mut self) {
        for handle in self.0.drain(..) {
            let _ = handle.join();
        }
    }
}

fn join(handle: std::thread::JoinHandle<Result<FinishedPack>>) -> Result<FinishedPack> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::Io(std::io::Error::other(
            "finishing a pack panicked",
        )))
    })
}
