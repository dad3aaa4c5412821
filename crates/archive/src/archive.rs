//! The [`Archive`] handle: opening, key management, reading, and the entry points to
//! writing, verifying, pruning and encrypted files.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::backend::{Backend, FileKind, LocalBackend};
use crate::blob::{BlobKind, Tree};
use crate::codec::{put_u32, Reader};
use crate::crypto::ObjectKey;
use crate::env::{Clock, Rng, SystemClock};
use crate::error::{Error, Result};
use crate::file::{name_hash, EncryptedFile, FileWriter};
use crate::id::{BlobId, IndexId, SnapshotId};
use crate::index::{open_index, Index, Location};
use crate::keys::{KdfParams, KeyFile, KeyKind, Keys, Purpose, RecoveryCode};
use crate::lock::{self, LockGuard, LockInfo, LockMode};
use crate::pack::open_record;
use crate::snapshot::{open_snapshot, Snapshot};
use crate::writer::Writer;
use crate::ChunkerParams;

const CONFIG_MAGIC: &[u8; 4] = b"SRCF";
/// The archive format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Tunables and injected dependencies. `Options::default()` is right for production.
#[derive(Clone, Debug)]
pub struct Options {
    /// A pack is finished once it reaches this many bytes (default 16 MiB).
    pub pack_size: u64,
    /// zstd level for blobs (default 3).
    pub zstd_level: i32,
    /// Large-content chunk sizes for `put_stream`.
    pub chunker: ChunkerParams,
    /// A lock whose heartbeat is older than this is stale (default 30 minutes).
    pub stale_lock_after_ms: i64,
    /// Packs whose unused share is at least this percentage are repacked by prune.
    pub repack_threshold_percent: u8,
    /// When a writer finishes and more index files than this exist, it merges them into
    /// one, so opening stays fast after years of small backups (default 32).
    pub max_index_files: usize,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness for keys, salts and seeds (must be a CSPRNG outside tests).
    pub rng: Rng,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pack_size: 16 * 1024 * 1024,
            zstd_level: 3,
            chunker: ChunkerParams::default(),
            stale_lock_after_ms: 30 * 60 * 1000,
            repack_threshold_percent: 20,
            max_index_files: 32,
            clock: Arc::new(SystemClock),
            rng: Rng::os(),
        }
    }
}

pub(crate) struct Inner {
    pub backend: Arc<dyn Backend>,
    pub keys: Keys,
    pub archive_id: [u8; 32],
    pub options: Options,
    pub index: RwLock<Index>,
    pub loaded_indexes: Mutex<HashSet<IndexId>>,
    /// Whether `index` may lag behind `index/`: from opening until the first load, so that
    /// callers that never touch blobs (a search reads only encrypted files) do not pay for
    /// it, and again after `snapshots()`, whose newer snapshots may reach newer index files.
    pub index_stale: AtomicBool,
}

/// An open archive. Cheap to clone; clones share the in-memory index.
#[derive(Clone)]
pub struct Archive {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Archive({:?})", self.inner.backend)
    }
}

/// Size and kind of a stored blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// Data or tree.
    pub kind: BlobKind,
    /// Plaintext length.
    pub len: u32,
    /// Sealed (compressed and encrypted) length in its pack.
    pub stored_len: u32,
}

/// A held read lock: while it lives, prune cannot start.
#[derive(Debug)]
pub struct ReadLock(#[allow(dead_code)] LockGuard);

fn encode_config(archive_id: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(CONFIG_MAGIC);
    put_u32(&mut out, FORMAT_VERSION);
    out.extend_from_slice(archive_id);
    out
}

pub(crate) fn encode_config_for_fuzzing() -> Vec<u8> {
    encode_config(&[1; 32])
}

pub(crate) fn decode_config(bytes: &[u8]) -> Result<[u8; 32]> {
    let what = "config";
    let mut r = Reader::new(bytes, what);
    r.header(CONFIG_MAGIC, FORMAT_VERSION, what)?;
    let id = r.array()?;
    r.finish()?;
    Ok(id)
}

fn read_config(backend: &dyn Backend) -> Result<[u8; 32]> {
    match backend.read(FileKind::Config, "config") {
        Ok(bytes) => decode_config(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotAnArchive),
        Err(e) => Err(e.into()),
    }
}

fn key_file_name(bytes: &[u8]) -> String {
    crate::id::PackId(crate::id::file_hash(bytes)).to_hex()
}

impl Archive {
    /// Creates a new archive in an empty backend, protected by `passphrase`.
    pub fn init(
        backend: Arc<dyn Backend>,
        passphrase: &str,
        kdf: KdfParams,
        options: Options,
    ) -> Result<Archive> {
        if backend.exists(FileKind::Config, "config")? {
            return Err(Error::AlreadyExists);
        }
        if kdf.memory_kib < KdfParams::production().memory_kib {
            tracing::warn!(?kdf, "Argon2id cost below the production minimum of 64 MiB");
        }
        let archive_id = options.rng.bytes::<32>();
        let master = options.rng.bytes::<32>();
        let key = options.rng.with(|rng| {
            KeyFile::wrap(
                KeyKind::Passphrase,
                passphrase.as_bytes(),
                kdf,
                &archive_id,
                &master,
                rng,
            )
        })?;
        // The key first, the config last: a folder with a config is a complete archive.
        backend.write(FileKind::Key, &key_file_name(&key), &key)?;
        backend.write(FileKind::Config, "config", &encode_config(&archive_id))?;
        Ok(Self::from_parts(backend, archive_id, master, options))
    }

    /// Creates a new archive in a local folder with default options.
    pub fn init_local(path: &Path, passphrase: &str, kdf: KdfParams) -> Result<Archive> {
        Self::init(
            Arc::new(LocalBackend::new(path)),
            passphrase,
            kdf,
            Options::default(),
        )
    }

    /// Opens an archive with its passphrase. A wrong passphrase is
    /// [`Error::WrongPassphrase`]; opening never writes anything.
    pub fn open(backend: Arc<dyn Backend>, passphrase: &str, options: Options) -> Result<Archive> {
        Self::unlock(backend, KeyKind::Passphrase, passphrase.as_bytes(), options)
    }

    /// Opens an archive in a local folder with default options.
    pub fn open_local(path: &Path, passphrase: &str) -> Result<Archive> {
        Self::open(
            Arc::new(LocalBackend::new(path)),
            passphrase,
            Options::default(),
        )
    }

    /// Opens an archive with its recovery code.
    pub fn open_with_recovery_code(
        backend: Arc<dyn Backend>,
        code: &RecoveryCode,
        options: Options,
    ) -> Result<Archive> {
        Self::unlock(backend, KeyKind::RecoveryCode, code.secret(), options)
    }

    fn unlock(
        backend: Arc<dyn Backend>,
        kind: KeyKind,
        secret: &[u8],
        options: Options,
    ) -> Result<Archive> {
        let archive_id = read_config(&*backend)?;
        let mut names = backend.list(FileKind::Key)?;
        names.sort();
        for name in names {
            let bytes = backend.read(FileKind::Key, &name)?;
            let key_file = match KeyFile::parse(&bytes) {
                Ok(k) if k.kind == kind => k,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(key = %name, error = %e, "skipping unreadable key file");
                    continue;
                }
            };
            match key_file.unwrap_with(secret, &archive_id) {
                Ok(Some(master)) => {
                    // The index loads on first use (`Inner::index_stale`).
                    return Ok(Self::from_parts(backend, archive_id, master, options));
                }
                Ok(None) => continue,
                Err(e) => tracing::warn!(key = %name, error = %e, "skipping key file"),
            }
        }
        Err(Error::WrongPassphrase)
    }

    fn from_parts(
        backend: Arc<dyn Backend>,
        archive_id: [u8; 32],
        master: [u8; 32],
        options: Options,
    ) -> Archive {
        Archive {
            inner: Arc::new(Inner {
                backend,
                keys: Keys::from_master(master),
                archive_id,
                options,
                index: RwLock::new(Index::default()),
                loaded_indexes: Mutex::new(HashSet::new()),
                index_stale: AtomicBool::new(true),
            }),
        }
    }

    /// Replaces the passphrase: writes a new key file, then removes the old ones. The
    /// recovery code, if any, keeps working.
    pub fn change_passphrase(&self, new_passphrase: &str, kdf: KdfParams) -> Result<()> {
        self.replace_key(KeyKind::Passphrase, new_passphrase.as_bytes(), kdf)
    }

    /// Creates a new recovery code (replacing any previous one) and returns it; show it to
    /// the user once. It uses the same KDF cost as `kdf`.
    pub fn create_recovery_code(&self, kdf: KdfParams) -> Result<RecoveryCode> {
        let code = self.inner.options.rng.with(|rng| RecoveryCode::random(rng));
        self.replace_key(KeyKind::RecoveryCode, code.secret(), kdf)?;
        Ok(code)
    }

    fn replace_key(&self, kind: KeyKind, secret: &[u8], kdf: KdfParams) -> Result<()> {
        let inner = &self.inner;
        let _lock = self.lock(LockMode::Write)?;
        let bytes = inner.options.rng.with(|rng| {
            KeyFile::wrap(
                kind,
                secret,
                kdf,
                &inner.archive_id,
                inner.keys.master(),
                rng,
            )
        })?;
        let new_name = key_file_name(&bytes);
        inner.backend.write(FileKind::Key, &new_name, &bytes)?;
        for name in inner.backend.list(FileKind::Key)? {
            if name == new_name {
                continue;
            }
            let old = inner.backend.read(FileKind::Key, &name)?;
            if KeyFile::parse(&old).is_ok_and(|k| k.kind == kind) {
                inner.backend.remove(FileKind::Key, &name)?;
            }
        }
        Ok(())
    }

    pub(crate) fn lock(&self, mode: LockMode) -> Result<LockGuard> {
        let inner = &self.inner;
        LockGuard::acquire(
            inner.backend.clone(),
            inner.options.clock.clone(),
            &inner.options.rng,
            mode,
            inner.options.stale_lock_after_ms,
        )
    }

    /// Takes a read lock, which keeps prune from deleting files while you read.
    pub fn read_lock(&self) -> Result<ReadLock> {
        Ok(ReadLock(self.lock(LockMode::Read)?))
    }

    /// All lock files, with stale ones marked.
    pub fn locks(&self) -> Result<Vec<LockInfo>> {
        let inner = &self.inner;
        lock::list(
            &*inner.backend,
            &*inner.options.clock,
            inner.options.stale_lock_after_ms,
        )
    }

    /// Starts a writing session; fails with [`Error::Locked`] while another process writes.
    pub fn writer(&self) -> Result<Writer> {
        Writer::new(self.clone())
    }

    /// Brings the in-memory index up to date: loads index files written since the last
    /// load, and starts over if any loaded file has gone (a prune by another process
    /// replaced it), so a writer never deduplicates against a blob whose pack was deleted.
    pub fn reload_index(&self) -> Result<()> {
        // Cleared before listing, so that a `snapshots()` marking it meanwhile is not lost.
        self.inner.index_stale.store(false, Ordering::SeqCst);
        let loaded = self.load_new_index_files();
        if loaded.is_err() {
            self.inner.index_stale.store(true, Ordering::SeqCst);
        }
        loaded
    }

    fn load_new_index_files(&self) -> Result<()> {
        let inner = &self.inner;
        let mut names = inner.backend.list(FileKind::Index)?;
        names.sort();
        let on_disk: HashSet<IndexId> = names.iter().filter_map(|n| n.parse().ok()).collect();
        {
            let mut loaded = inner.loaded_indexes.lock().expect("index set");
            if !loaded.is_subset(&on_disk) {
                loaded.clear();
                *inner.index.write().expect("index lock") = Index::default();
            }
        }
        for name in names {
            let Ok(id) = name.parse::<IndexId>() else {
                continue;
            };
            if inner
                .loaded_indexes
                .lock()
                .expect("index set")
                .contains(&id)
            {
                continue;
            }
            let bytes = match inner.backend.read(FileKind::Index, &name) {
                Ok(b) => b,
                // Removed by a concurrent prune between list and read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            match open_index(&inner.keys.index, &id, &bytes) {
                Ok(packs) => {
                    let mut index = inner.index.write().expect("index lock");
                    for p in &packs {
                        index.add_pack(p);
                    }
                    inner.loaded_indexes.lock().expect("index set").insert(id);
                }
                Err(e) => tracing::warn!(index = %id, error = %e, "skipping unreadable index"),
            }
        }
        Ok(())
    }

    /// The in-memory index, loaded first if stale. It serves answers that are not a
    /// `Result`: a load that fails is logged, and the answer comes from what is loaded, as
    /// if the files it could not read were absent (as an unreadable index file always is).
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        if self.inner.index_stale.load(Ordering::SeqCst) {
            if let Err(e) = self.reload_index() {
                tracing::warn!(error = %e, "could not load the blob index");
            }
        }
        self.inner.index.read().expect("index lock")
    }

    /// Whether a blob is stored (in a persisted index).
    pub fn has_blob(&self, id: &BlobId) -> bool {
        self.index().contains(id)
    }

    /// Kind and sizes of a stored blob.
    pub fn blob_info(&self, id: &BlobId) -> Option<BlobInfo> {
        self.index().get(id).map(|l| BlobInfo {
            kind: l.entry.kind,
            len: l.entry.raw_len,
            stored_len: l.entry.length,
        })
    }

    /// Reads a blob's plaintext, checking it against its id. A blob missing from the loaded
    /// index, or whose pack has gone, triggers one index reload (the index is not loaded
    /// yet, or another process wrote the blob, or pruned and repacked it).
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let find = || self.inner.index.read().expect("index lock").get(id);
        let loc = match find() {
            Some(loc) => loc,
            None => {
                self.reload_index()?;
                find().ok_or_else(|| Error::BlobNotFound(id.to_hex()))?
            }
        };
        match self.read_location(&loc) {
            // A prune by another process may have moved the blob to a new pack.
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                self.reload_index()?;
                let loc = find().ok_or_else(|| Error::BlobNotFound(id.to_hex()))?;
                self.read_location(&loc)
            }
            result => result,
        }
    }

    pub(crate) fn read_location(&self, loc: &Location) -> Result<Vec<u8>> {
        let inner = &self.inner;
        let sealed = inner.backend.read_at(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.entry.offset.into(),
            loc.entry.length as usize,
        )?;
        let key = ObjectKey::derive(&inner.keys.pack, &loc.seed);
        open_record(&key, &inner.keys.blob_id, &loc.entry, &sealed)
    }

    /// Reads and parses a tree blob.
    pub fn read_tree(&self, id: &BlobId) -> Result<Tree> {
        Tree::decode(&self.read_blob(id)?)
    }

    /// Writes the concatenation of `chunks` (as returned by `Writer::put_stream`) to `out`;
    /// returns the number of bytes written.
    pub fn read_stream(&self, chunks: &[BlobId], out: &mut dyn Write) -> Result<u64> {
        let mut n = 0;
        for id in chunks {
            let data = self.read_blob(id)?;
            out.write_all(&data)?;
            n += data.len() as u64;
        }
        Ok(n)
    }

    /// All readable snapshots, oldest first. Unreadable ones are skipped (and reported by
    /// `verify`). Marks the index stale, so that the next use reloads it and their blobs
    /// read; listing itself reads no index file.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        // Snapshots written since the index was loaded reach blobs of index files not loaded.
        self.inner.index_stale.store(true, Ordering::SeqCst);
        let mut out = Vec::new();
        for name in self.inner.backend.list(FileKind::Snapshot)? {
            let Ok(id) = name.parse::<SnapshotId>() else {
                continue;
            };
            match self.load_snapshot(&id) {
                Ok(s) => out.push(s),
                Err(Error::SnapshotNotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(snapshot = %id, error = %e, "skipping unreadable snapshot")
                }
            }
        }
        out.sort_by_key(|s| (s.time_ms, s.id));
        Ok(out)
    }

    /// Loads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = match self.inner.backend.read(FileKind::Snapshot, &id.to_hex()) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::SnapshotNotFound(id.to_hex()))
            }
            Err(e) => return Err(e.into()),
        };
        if crate::id::file_hash(&bytes) != id.0 {
            return Err(Error::corrupt(
                format!("snapshot {id}"),
                "content hash mismatch",
            ));
        }
        open_snapshot(&self.inner.keys.snapshot, *id, &bytes)
    }

    /// A 32-byte subkey for one of the engine's purposes.
    pub fn subkey(&self, purpose: Purpose) -> [u8; 32] {
        self.inner.keys.subkey(purpose)
    }

    /// Starts writing the encrypted file `name`; it replaces any file of that name when
    /// committed.
    pub fn create_file(&self, name: &str) -> Result<FileWriter> {
        let inner = &self.inner;
        FileWriter::new(
            &*inner.backend,
            &inner.keys.file,
            name_hash(&inner.keys.file_name, name),
            inner.options.rng.bytes(),
        )
    }

    /// Writes a whole encrypted file.
    pub fn write_file(&self, name: &str, data: &[u8]) -> Result<()> {
        let mut w = self.create_file(name)?;
        w.write_all(data)?;
        w.commit()
    }

    /// Opens an encrypted file for random-access reading.
    pub fn open_file(&self, name: &str) -> Result<EncryptedFile> {
        let inner = &self.inner;
        EncryptedFile::open(
            inner.backend.clone(),
            &inner.keys.file,
            name_hash(&inner.keys.file_name, name),
        )
    }

    /// Whether the encrypted file `name` exists.
    pub fn file_exists(&self, name: &str) -> Result<bool> {
        let disk = crate::id::PackId(name_hash(&self.inner.keys.file_name, name)).to_hex();
        Ok(self.inner.backend.exists(FileKind::File, &disk)?)
    }

    /// Removes the encrypted file `name` (absent is fine).
    pub fn remove_file(&self, name: &str) -> Result<()> {
        let disk = crate::id::PackId(name_hash(&self.inner.keys.file_name, name)).to_hex();
        Ok(self.inner.backend.remove(FileKind::File, &disk)?)
    }

    /// A chunker cutting content as `Writer::put_stream` does, for callers that receive
    /// content piece by piece and store the chunks with `Writer::put_blob` themselves.
    pub fn chunker(&self) -> crate::Chunker {
        crate::Chunker::new(self.inner.options.chunker)
    }

    /// Number of blobs and packs in the index (loading it if stale).
    pub fn counts(&self) -> (usize, usize) {
        let index = self.index();
        (index.blob_count(), index.pack_count())
    }
}
