//! The crate's one error type. Corrupt input is always an `Err`, never a panic.

use std::io;

use crate::lock::LockInfo;

/// Everything that can go wrong when using an archive.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key file accepted the passphrase (or recovery code). Nothing was written.
    #[error("wrong passphrase or recovery code")]
    WrongPassphrase,
    /// The folder holds no archive (no `config` file).
    #[error("no archive found (missing config)")]
    NotAnArchive,
    /// `init` was asked to create an archive where one already exists.
    #[error("an archive already exists here")]
    AlreadyExists,
    /// The archive was written by a newer, unknown format version.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion { what: &'static str, version: u32 },
    /// On-disk bytes failed authentication or did not parse.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: &'static str },
    /// No index entry for this blob.
    #[error("blob {0} not found")]
    BlobNotFound(String),
    /// No snapshot file with this id.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// No encrypted file with this name.
    #[error("encrypted file not found")]
    FileNotFound,
    /// Another live process holds a conflicting lock.
    #[error("archive is locked: {0}")]
    Locked(LockInfo),
    /// Our own lock file was removed (another process judged it stale): stop writing.
    #[error("our lock was removed by another process; stopped to stay safe")]
    LockLost,
    /// A single blob is larger than [`crate::MAX_BLOB_LEN`]; use `put_stream`.
    #[error("blob of {len} bytes exceeds the maximum of {max} bytes")]
    BlobTooLarge { len: usize, max: usize },
    /// Invalid Argon2 parameters.
    #[error("invalid KDF parameters: {0}")]
    InvalidKdf(String),
    /// Invalid argument from the caller (e.g. a malformed recovery code).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The storage backend failed (including ENOSPC and injected faults).
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, reason: &'static str) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason,
        }
    }
}
