//! Writes one valid input per fuzz target into `<dir>/<target>/sample`, so fuzzing starts
//! from bytes that authenticate and reaches the parsers behind the AEAD.

use strongroom_archive::fuzzing::{sample, Target, TARGETS};

fn name(t: Target) -> &'static str {
    match t {
        Target::Pack => "pack",
        Target::Index => "index",
        Target::Snapshot => "snapshot",
        Target::KeyFile => "key_file",
        Target::EncryptedFile => "encrypted_file",
        Target::Tree => "tree",
        Target::LockAndConfig => "lock_config",
    }
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    for t in TARGETS {
        let d = std::path::Path::new(&dir).join(name(t));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("sample"), sample(t)).unwrap();
    }
}
