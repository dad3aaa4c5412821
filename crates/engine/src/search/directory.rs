//! A tantivy [`Directory`] over the archive's encrypted files (FORMAT.md §9), so the search
//! index is never readable on disk.
//!
//! Every index file `F` is the archive file `search/F`: its name is hashed, its content
//! sealed in 64 KiB blocks. Reads decrypt only the blocks a range touches, through a small
//! shared LRU cache of plaintext blocks — the index is never decrypted as a whole. Files are
//! write-once (tantivy's contract); `atomic_write` (for `meta.json` and `.managed.json`) uses
//! the archive's commit, which replaces a file by rename. Tantivy's managed directory keeps
//! the list of files it created in `.managed.json`, so no listing of the archive is needed.
//!
//! Locks are held in memory: the engine is the only writer of its archive's index, and a
//! lock file left behind by a killed process would block every later writer.
//!
//! ```no_run
//! # fn demo(archive: strongroom_archive::Archive) -> tantivy::Result<()> {
//! use strongroom_engine::search::directory::ArchiveDirectory;
//! let dir = ArchiveDirectory::new(archive, "search/");
//! let index = tantivy::Index::open(dir)?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strongroom_archive::{Archive, EncryptedFile, FileWriter, FILE_BLOCK_LEN};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};
use tantivy::HasLen;

/// Plaintext blocks kept in memory across all open index files (64 KiB each).
pub const DEFAULT_CACHE_BLOCKS: usize = 128;

/// The search index's files, stored as encrypted archive files under a name prefix.
#[derive(Clone)]
pub struct ArchiveDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    archive: Archive,
    prefix: String,
    cache: Arc<BlockCache>,
    locks: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for ArchiveDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveDirectory({:?})", self.inner.prefix)
    }
}

impl ArchiveDirectory {
    /// The index files named `prefix` + tantivy's file name in `archive`.
    pub fn new(archive: Archive, prefix: &str) -> Self {
        Self::with_cache(archive, prefix, DEFAULT_CACHE_BLOCKS)
    }

    pub fn with_cache(archive: Archive, prefix: &str, cache_blocks: usize) -> Self {
        ArchiveDirectory {
            inner: Arc::new(Inner {
                archive,
                prefix: prefix.to_owned(),
                cache: Arc::new(BlockCache::new(cache_blocks.max(1))),
                locks: Arc::new(Mutex::new(HashSet::new())),
            }),
        }
    }

    fn name(&self, path: &Path) -> String {
        format!("{}{}", self.inner.prefix, path.to_string_lossy())
    }

    fn open(&self, path: &Path) -> Result<EncryptedFile, OpenReadError> {
        match self.inner.archive.open_file(&self.name(path)) {
            Ok(f) => Ok(f),
            Err(strongroom_archive::Error::FileNotFound) => {
                Err(OpenReadError::FileDoesNotExist(path.to_owned()))
            }
            Err(e) => Err(OpenReadError::wrap_io_error(to_io(e), path.to_owned())),
        }
    }
}

fn to_io(e: strongroom_archive::Error) -> io::Error {
    match e {
        strongroom_archive::Error::Io(io) => io,
        other => io::Error::other(other),
    }
}

impl Directory for ArchiveDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let file = self.open(path)?;
        Ok(Arc::new(EncryptedHandle {
            len: file.len() as usize,
            file,
            id: self.inner.cache.next_file_id(),
            cache: self.inner.cache.clone(),
        }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        let name = self.name(path);
        let io_err = |e| DeleteError::IoError {
            io_error: Arc::new(to_io(e)),
            filepath: path.to_owned(),
        };
        if !self.inner.archive.file_exists(&name).map_err(io_err)? {
            return Err(DeleteError::FileDoesNotExist(path.to_owned()));
        }
        self.inner.archive.remove_file(&name).map_err(io_err)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner
            .archive
            .file_exists(&self.name(path))
            .map_err(|e| OpenReadError::wrap_io_error(to_io(e), path.to_owned()))
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let wrap = |e| OpenWriteError::wrap_io_error(to_io(e), path.to_owned());
        let name = self.name(path);
        if self.inner.archive.file_exists(&name).map_err(wrap)? {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        let writer = self.inner.archive.create_file(&name).map_err(wrap)?;
        Ok(BufWriter::new(Box::new(EncryptedWrite(Some(writer)))))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.open(path)?
            .read_all()
            .map_err(|e| OpenReadError::wrap_io_error(to_io(e), path.to_owned()))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner
            .archive
            .write_file(&self.name(path), data)
            .map_err(to_io)
    }

    fn sync_directory(&self) -> io::Result<()> {
        // Each file's commit already made it and its directory entry durable.
        Ok(())
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let mut held = self.inner.locks.lock().expect("lock set");
        if !held.insert(lock.filepath.clone()) {
            return Err(LockError::LockBusy);
        }
        Ok(DirectoryLock::from(Box::new(HeldLock {
            locks: self.inner.locks.clone(),
            path: lock.filepath.clone(),
        })))
    }

    fn watch(&self, _: WatchCallback) -> tantivy::Result<WatchHandle> {
        // Readers are reloaded explicitly after each commit (ReloadPolicy::Manual).
        Ok(WatchHandle::empty())
    }
}

/// Released when tantivy drops its `DirectoryLock`.
struct HeldLock {
    locks: Arc<Mutex<HashSet<PathBuf>>>,
    path: PathBuf,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Ok(mut held) = self.locks.lock() {
            held.remove(&self.path);
        }
    }
}

/// A file being written: sealed block by block, visible only once terminated.
struct EncryptedWrite(Option<FileWriter>);

impl Write for EncryptedWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("index file written after it was finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for EncryptedWrite {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        match self.0.take() {
            Some(w) => w.commit().map_err(to_io),
            None => Ok(()),
        }
    }
}

/// An open index file: random-access reads decrypt only the blocks they touch.
struct EncryptedHandle {
    file: EncryptedFile,
    len: usize,
    id: u64,
    cache: Arc<BlockCache>,
}

impl std::fmt::Debug for EncryptedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedHandle({} bytes)", self.len)
    }
}

impl HasLen for EncryptedHandle {
    fn len(&self) -> usize {
        self.len
    }
}

impl EncryptedHandle {
    fn block(&self, k: usize) -> io::Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.get(self.id, k) {
            return Ok(b);
        }
        let start = k * FILE_BLOCK_LEN;
        let len = FILE_BLOCK_LEN.min(self.len - start);
        let data = Arc::new(self.file.read_at(start as u64, len).map_err(to_io)?);
        self.cache.put(self.id, k, data.clone());
        Ok(data)
    }
}

impl FileHandle for EncryptedHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.end > self.len || range.start > range.end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of an index file",
            ));
        }
        let mut out = Vec::with_capacity(range.len());
        let mut pos = range.start;
        while pos < range.end {
            let k = pos / FILE_BLOCK_LEN;
            let block = self.block(k)?;
            let from = pos - k * FILE_BLOCK_LEN;
            let take = (block.len() - from).min(range.end - pos);
            out.extend_from_slice(&block[from..from + take]);
            pos += take;
        }
        Ok(OwnedBytes::new(out))
    }
}

/// Least-recently-used plaintext blocks, keyed by (open file, block number). Files are
/// write-once, so a block never goes stale while its handle lives.
struct BlockCache {
    capacity: usize,
    next_file: AtomicU64,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    tick: u64,
    /// (file, block) → (last use, plaintext).
    blocks: HashMap<BlockKey, (u64, Arc<Vec<u8>>)>,
}

/// An open file's id and a block number.
type BlockKey = (u64, usize);

impl BlockCache {
    fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            next_file: AtomicU64::new(0),
            state: Mutex::new(CacheState::default()),
        }
    }

    fn next_file_id(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }

    fn get(&self, file: u64, block: usize) -> Option<Arc<Vec<u8>>> {
        let mut s = self.state.lock().expect("block cache");
        s.tick += 1;
        let tick = s.tick;
        s.blocks.get_mut(&(file, block)).map(|(used, data)| {
            *used = tick;
            data.clone()
        })
    }

    fn put(&self, file: u64, block: usize, data: Arc<Vec<u8>>) {
        let mut s = self.state.lock().expect("block cache");
        if s.blocks.len() >= self.capacity {
            // A linear scan is fine for a cache of a few hundred blocks.
            if let Some(oldest) = s
                .blocks
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| *k)
            {
                s.blocks.remove(&oldest);
            }
        }
        s.tick += 1;
        let tick = s.tick;
        s.blocks.insert((file, block), (tick, data));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().expect("block cache").blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_archive;
    use strongroom_archive::backend::{Backend, FileKind};
    use tantivy::collector::TopDocs;
    use tantivy::query::QueryParser;
    use tantivy::schema::{Schema, Value, STORED, TEXT};
    use tantivy::{doc, Index, ReloadPolicy, TantivyDocument};

    #[test]
    fn files_are_write_once_readable_at_any_offset_and_deletable() {
        let (archive, _) = memory_archive();
        let dir = ArchiveDirectory::with_cache(archive, "search/", 2);
        let path = Path::new("seg.idx");
        assert!(!dir.exists(path).unwrap());
        let data: Vec<u8> = (0..3 * FILE_BLOCK_LEN + 17)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut w = dir.open_write(path).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        assert!(dir.exists(path).unwrap());
        assert!(matches!(
            dir.open_write(path),
            Err(OpenWriteError::FileAlreadyExists(_))
        ));
        let handle = dir.get_file_handle(path).unwrap();
        assert_eq!(handle.len(), data.len());
        for range in [
            0..0,
            0..10,
            FILE_BLOCK_LEN - 5..FILE_BLOCK_LEN + 5,
            10..3 * FILE_BLOCK_LEN + 17,
            3 * FILE_BLOCK_LEN..3 * FILE_BLOCK_LEN + 17,
        ] {
            assert_eq!(
                handle.read_bytes(range.clone()).unwrap().as_slice(),
                &data[range]
            );
        }
        assert!(handle.read_bytes(0..data.len() + 1).is_err());
        // The cache stays within its bound however much was read.
        assert!(dir.inner.cache.len() <= 2);
        dir.delete(path).unwrap();
        assert!(!dir.exists(path).unwrap());
        assert!(matches!(
            dir.delete(path),
            Err(DeleteError::FileDoesNotExist(_))
        ));
        assert!(matches!(
            dir.get_file_handle(path),
            Err(OpenReadError::FileDoesNotExist(_))
        ));
    }

    #[test]
    fn atomic_write_replaces_and_prefixes_keep_indexes_apart() {
        let (archive, _) = memory_archive();
        let a = ArchiveDirectory::new(archive.clone(), "a/");
        let b = ArchiveDirectory::new(archive, "b/");
        let meta = Path::new("meta.json");
        a.atomic_write(meta, b"one").unwrap();
        a.atomic_write(meta, b"two").unwrap();
        assert_eq!(a.atomic_read(meta).unwrap(), b"two");
        assert!(matches!(
            b.atomic_read(meta),
            Err(OpenReadError::FileDoesNotExist(_))
        ));
    }

    #[test]
    fn an_unterminated_file_never_appears() {
        let (archive, _) = memory_archive();
        let dir = ArchiveDirectory::new(archive, "search/");
        let mut w = dir.open_write(Path::new("x")).unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        assert!(!dir.exists(Path::new("x")).unwrap());
    }

    #[test]
    fn locks_are_exclusive_until_dropped() {
        let (archive, _) = memory_archive();
        let dir = ArchiveDirectory::new(archive, "search/");
        let lock = Lock {
            filepath: PathBuf::from(".tantivy-writer.lock"),
            is_blocking: false,
        };
        let held = dir.acquire_lock(&lock).unwrap();
        assert!(matches!(
            dir.clone().acquire_lock(&lock),
            Err(LockError::LockBusy)
        ));
        drop(held);
        dir.acquire_lock(&lock).unwrap();
    }

    #[test]
    fn a_tantivy_index_round_trips_and_stores_no_plaintext() {
        let (archive, backend) = memory_archive();
        let mut builder = Schema::builder();
        let body = builder.add_text_field("body", TEXT | STORED);
        let schema = builder.build();
        let dir = ArchiveDirectory::with_cache(archive.clone(), "search/", 4);
        let index = Index::create(dir, schema, Default::default()).unwrap();
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for i in 0..500 {
            writer
                .add_document(doc!(body => format!("plaincanaryzz{i} shared words here")))
                .unwrap();
        }
        writer.commit().unwrap();
        drop(writer);

        // Reopen from the archive alone.
        let index = Index::open(ArchiveDirectory::new(archive, "search/")).unwrap();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .unwrap();
        let searcher = reader.searcher();
        let query = QueryParser::for_index(&index, vec![body])
            .parse_query("plaincanaryzz42")
            .unwrap();
        let hits = searcher
            .search(&query, &TopDocs::with_limit(5).order_by_score())
            .unwrap();
        assert_eq!(hits.len(), 1);
        let doc: TantivyDocument = searcher.doc(hits[0].1).unwrap();
        let text = doc.get_first(body).and_then(|v| v.as_str()).unwrap();
        assert_eq!(text, "plaincanaryzz42 shared words here");

        let mut files = 0;
        for name in backend.list(FileKind::File).unwrap() {
            let bytes = backend.read(FileKind::File, &name).unwrap();
            files += 1;
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("plaincanaryzz"), "plaintext in {name}");
            assert!(!text.contains("shared words"));
        }
        assert!(files >= 3, "the index wrote its files into the archive");
    }
}
