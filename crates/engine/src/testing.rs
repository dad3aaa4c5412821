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

/// `data` in base64 lines of `width` characters, each ending in `eol`, as mailers write
/// attachment bodies.
pub fn base64_lines(data: &[u8], width: usize, eol: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::new();
    for line in text.as_bytes().chunks(width) {
        out.extend_from_slice(line);
        out.extend_from_slice(eol.as_bytes());
    }
    out
}
