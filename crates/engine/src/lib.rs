//! strongroom-engine: Strongroom's UI-agnostic application core.
//!
//! The desktop app and the `strongroom` CLI call only [`api`]. Today the engine reports its
//! version and status; tasks, accounts, the catalog, search and jobs arrive with issues 5 and 6.
//!
//! ```
//! let status = strongroom_engine::api::status();
//! assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
//! ```

pub mod api;
pub mod error;

pub use error::{Error, ErrorCode};
