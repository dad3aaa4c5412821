//! Errors as they cross the IPC boundary: a stable machine-readable `code` the UI matches on,
//! and a human `message` it only displays.

use serde::Serialize;

/// Stable error codes. The UI switches on these, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A bug or an unexpected condition; the message says what happened.
    Internal,
}

/// An engine error: `{code, message}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "EngineError"))]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}
