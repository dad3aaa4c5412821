//! What the crate's unit tests share.

use std::sync::Arc;

use strongroom_archive::backend::MemoryBackend;
use strongroom_archive::{Archive, KdfParams, Options};

/// A new, empty archive in memory at a trivial KDF cost, and its backend (to look at its
/// files).
pub fn memory_archive() -> (Archive, MemoryBackend) {
    let backend = MemoryBackend::new();
    let archive = Archive::init(
        Arc::new(backend.clone()),
        "pw",
        KdfParams::insecure_for_tests(),
        Options::default(),
    )
    .expect("an archive in memory");
    (archive, backend)
}
