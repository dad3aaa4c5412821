//! strongroom-archive: the encrypted, deduplicated, content-addressed store.
//!
//! Not built yet (issue 4): this crate is an empty placeholder in the workspace so that the
//! layout of `DESIGN.md` is in place. It will know nothing of Microsoft 365, SQLite or Tauri.
