//! strongroom-archive: an encrypted, deduplicated, crash-safe, content-addressed store.
//!
//! Content is stored as **blobs** identified by the keyed BLAKE3 of their plaintext, so
//! equal content is stored once. Blobs are zstd-compressed, sealed with AES-256-GCM and
//! appended to **pack** files; an encrypted **index** maps blob ids to pack locations;
//! **snapshots** name a root [`Tree`] whose children reach every blob of a backup. A
//! passphrase unlocks the master key through Argon2id. `docs/FORMAT.md` is the normative
//! description of every byte on disk. The archive knows nothing about mail.
//!
//! The surface, in the order an application meets it:
//!
//! - [`Archive::init`] / [`Archive::open`] / [`Archive::open_with_recovery_code`] (or the
//!   `_local` shorthands); [`Archive::change_passphrase`], [`Archive::create_recovery_code`];
//!   [`Archive::subkey`] for the application's own sealing keys.
//! - [`Archive::writer`] → [`Writer::put_blob`], [`Writer::put_stream`] (FastCDC chunks),
//!   [`Writer::put_tree`], [`Writer::flush`], [`Writer::commit_snapshot`],
//!   [`Writer::finish`]. One writer at a time across processes (lock files); after any
//!   error a writer refuses more work, and committed snapshots are never affected.
//! - [`Archive::snapshots`], [`Archive::load_snapshot`], [`Archive::read_tree`],
//!   [`Archive::read_blob`], [`Archive::read_stream`], [`Archive::has_blob`]; safe while
//!   another process writes.
//! - [`Archive::create_file`] / [`Archive::write_file`] / [`Archive::open_file`]: encrypted
//!   files with random access ([`EncryptedFile::read_at`]) for derived data.
//! - [`Archive::verify`] → typed [`Finding`]s; [`Archive::prune`] → [`Prune::plan`] then
//!   [`Prune::execute`]; [`Archive::rebuild_index`].
//! - [`backend`]: the storage trait, a local folder, memory, and fault injection for tests.
//!   Time ([`Clock`]), randomness ([`Rng`]) and KDF cost ([`KdfParams`]) are injected.
//!
//! ```
//! use strongroom_archive::{Archive, BlobKind, KdfParams, Tree, VerifyOptions, ReadData};
//!
//! # fn main() -> Result<(), strongroom_archive::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! // Tests may use a tiny KDF cost; real archives use KdfParams::production().
//! let archive = Archive::init_local(dir.path(), "correct horse", KdfParams::insecure_for_tests())?;
//!
//! let mut writer = archive.writer()?;
//! let message = writer.put_blob(BlobKind::Data, b"From: a@example.com\r\n\r\nhello")?;
//! let folder = writer.put_tree(&Tree { children: vec![message], meta: b"{}".to_vec() })?;
//! let snapshot = writer.commit_snapshot(folder, b"engine metadata")?;
//! writer.finish()?;
//!
//! let archive = Archive::open_local(dir.path(), "correct horse")?;
//! let root = archive.load_snapshot(&snapshot)?.root;
//! let child = archive.read_tree(&root)?.children[0];
//! assert_eq!(archive.read_blob(&child)?, b"From: a@example.com\r\n\r\nhello");
//! assert!(archive.verify(&VerifyOptions { read_data: ReadData::All })?.is_empty());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod archive;
pub mod backend;
mod blob;
mod chunker;
mod codec;
mod crypto;
mod env;
mod error;
mod file;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod index;
mod keys;
mod lock;
mod pack;
mod prune;
mod repair;
mod snapshot;
mod verify;
mod walk;
mod writer;

pub use archive::{Archive, BlobInfo, Options, ReadLock, FORMAT_VERSION};
pub use blob::{BlobKind, Tree, MAX_BLOB_LEN};
pub use chunker::{Chunker, ChunkerParams};
pub use env::{Clock, ManualClock, Rng, SystemClock};
pub use error::{Error, Result};
pub use file::{EncryptedFile, FileWriter, FILE_BLOCK_LEN};
pub use id::{BlobId, IndexId, PackId, SnapshotId};
pub use keys::{KdfParams, Purpose, RecoveryCode};
pub use lock::{LockInfo, LockMode};
pub use prune::{Prune, PrunePlan, PruneReport};
pub use repair::RebuildReport;
pub use snapshot::Snapshot;
pub use verify::{Finding, ReadData, VerifyOptions};
pub use writer::{PreparedBlob, WriteStats, Writer};

#[cfg(test)]
mod tests {
    /// The engine moves these across threads (a search index needs `Send + Sync` files).
    #[test]
    fn handles_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<crate::Archive>();
        send_sync::<crate::EncryptedFile>();
        send_sync::<crate::FileWriter>();
        send::<crate::Writer>();
        send::<crate::Prune>();
    }
}
