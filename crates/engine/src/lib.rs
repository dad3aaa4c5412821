//! strongroom-engine: Strongroom's UI-agnostic application core.
//!
//! The desktop app and the `strongroom` CLI call only [`api`]: [`api::status`] before an
//! archive is open, then an [`api::Engine`] (an archive plus its catalog) for tasks
//! ([`task`]), account discovery and activation ([`accounts`]), backups ([`backup`], with
//! [`progress`] events and a [`report`]), browsing snapshots ([`snapshot_view`]) and
//! maintenance (verify, prune, [`rebuild`]).
//!
//! Data flow of a backup: Graph → [`backup`] job → archive (packs, index, snapshot) →
//! [`catalog`] transaction (with the delta links). The catalog's content columns are sealed
//! ([`seal`]) under the archive's catalog subkey; tenant secrets under its secrets subkey.
//!
//! ```
//! let status = strongroom_engine::api::status();
//! assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
//! ```

pub mod accounts;
pub mod api;
pub mod backup;
pub mod cancel;
pub mod catalog;
pub mod error;
pub mod export;
pub mod maintenance;
pub mod progress;
pub mod rebuild;
pub mod report;
pub mod restore;
pub mod scope;
pub mod seal;
pub mod search;
pub mod snapshot_view;
pub mod task;
#[cfg(test)]
pub(crate) mod testing;

pub use error::{Error, ErrorCode, Result};
