//! Errors as they cross the IPC boundary: a stable machine-readable `code` the UI matches on,
//! and a human `message` it only displays. Messages never carry mailbox content (addresses,
//! subjects, folder names): they end up in logs and notifications.

use serde::Serialize;

/// Stable error codes. The UI switches on these, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A bug or an unexpected condition; the message says what happened.
    Internal,
    /// The passphrase does not open this archive.
    WrongPassphrase,
    /// The folder holds no archive.
    NoArchive,
    /// `init` found an archive already there.
    ArchiveExists,
    /// Another process is writing to or pruning the archive.
    ArchiveLocked,
    /// The archive's bytes are damaged; run verify.
    ArchiveDamaged,
    /// The disk or file system failed (full disk, permissions, ...).
    Storage,
    /// The catalog database failed; `rebuild` recreates it from the archive.
    Catalog,
    /// A task, account, snapshot or folder of that name does not exist.
    NotFound,
    /// Several tasks exist and none was named.
    TaskRequired,
    /// A task of that name exists already.
    TaskExists,
    /// The request is malformed (bad certificate, bad URL, bad selection).
    InvalidArgument,
    /// The tenant refused the app's credentials (wrong secret, revoked consent, ...).
    GraphAuth,
    /// Microsoft Graph failed after retries.
    Graph,
    /// An export's output directory is not empty and overwriting was not allowed.
    OutputNotEmpty,
    /// The tenant refused a restore write: the app lacks the write roles. Grant them once
    /// (`Engine::grant_restore_permission`, `strongroom grant-restore`), then retry.
    RestorePermissionNeeded,
}

/// An engine error: `{code, message}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "EngineError"))]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Error {
        Error::new(ErrorCode::NotFound, what)
    }

    pub fn invalid(what: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, what)
    }

    pub fn internal(what: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, what)
    }
}

/// Shorthand used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<strongroom_archive::Error> for Error {
    fn from(e: strongroom_archive::Error) -> Error {
        use strongroom_archive::Error as A;
        let code = match &e {
            A::WrongPassphrase => ErrorCode::WrongPassphrase,
            A::NotAnArchive => ErrorCode::NoArchive,
            A::AlreadyExists => ErrorCode::ArchiveExists,
            A::Locked(_) | A::LockLost => ErrorCode::ArchiveLocked,
            A::Corrupt { .. } | A::BlobNotFound(_) | A::UnsupportedVersion { .. } => {
                ErrorCode::ArchiveDamaged
            }
            A::SnapshotNotFound(_) | A::FileNotFound => ErrorCode::NotFound,
            A::Io(_) => ErrorCode::Storage,
            A::InvalidKdf(_) | A::InvalidArgument(_) | A::BlobTooLarge { .. } => {
                ErrorCode::InvalidArgument
            }
        };
        Error::new(code, e.to_string())
    }
}

impl From<strongroom_graph::GraphError> for Error {
    fn from(e: strongroom_graph::GraphError) -> Error {
        use strongroom_graph::GraphError as G;
        let code = match &e {
            G::Identity(_) => ErrorCode::GraphAuth,
            G::Service(s) if s.status == 401 || s.status == 403 => ErrorCode::GraphAuth,
            G::Certificate(_) | G::InvalidRequest(_) => ErrorCode::InvalidArgument,
            _ => ErrorCode::Graph,
        };
        Error::new(code, e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::new(ErrorCode::Catalog, format!("catalog: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorCode::Storage, e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::internal(format!("malformed stored JSON: {e}"))
    }
}
