//! Entry points for fuzzing every parser of on-disk bytes (`crates/archive/fuzz`) and the
//! corrupt-input unit tests. Each takes arbitrary bytes and must return, never panic.
//! The fixed keys let [`sample`] produce valid inputs that mutations start from.

use std::sync::Arc;

use crate::backend::{Backend, FileKind, MemoryBackend};
use crate::blob::{blob_id, BlobKind, Tree};
use crate::crypto::ObjectKey;
use crate::file::{name_hash, EncryptedFile, FileWriter};
use crate::id::{file_hash, IndexId, PackId, SnapshotId};
use crate::index::{decode_index, open_index, seal_index, IndexedPack};
use crate::keys::{KdfParams, KeyFile, KeyKind};
use crate::pack::{open_record, parse_pack, record, PackWriter};
use crate::snapshot::{decode_snapshot, open_snapshot, seal_snapshot};

const KEY: [u8; 32] = [0x42; 32];
const BLOB_KEY: [u8; 32] = [0x24; 32];

/// The kinds of on-disk bytes there are parsers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A whole pack file.
    Pack,
    /// A sealed index file, and the plaintext index payload parser.
    Index,
    /// A sealed snapshot file, and the plaintext snapshot payload parser.
    Snapshot,
    /// A key file (header parse and, at low KDF cost, unwrapping).
    KeyFile,
    /// An encrypted file (header and blocks).
    EncryptedFile,
    /// A tree blob's plaintext.
    Tree,
    /// A lock file and the config file.
    LockAndConfig,
}

/// Every target, for loops.
pub const TARGETS: [Target; 7] = [
    Target::Pack,
    Target::Index,
    Target::Snapshot,
    Target::KeyFile,
    Target::EncryptedFile,
    Target::Tree,
    Target::LockAndConfig,
];

/// Feeds `data` to the parser(s) of `target`.
pub fn parse(target: Target, data: &[u8]) {
    match target {
        Target::Pack => pack(data),
        Target::Index => {
            let _ = open_index(&KEY, &IndexId(file_hash(data)), data);
            let _ = decode_index(data, "fuzz");
        }
        Target::Snapshot => {
            let _ = open_snapshot(&KEY, SnapshotId([0; 32]), data);
            let _ = decode_snapshot(SnapshotId([0; 32]), data, "fuzz");
        }
        Target::KeyFile => {
            if let Ok(k) = KeyFile::parse(data) {
                // Only unwrap at a cost the fuzzer can afford.
                if k.kdf.memory_kib <= 64 && k.kdf.iterations <= 2 && k.kdf.parallelism <= 2 {
                    let _ = k.unwrap_with(b"pw", &[1; 32]);
                }
            }
        }
        Target::EncryptedFile => encrypted_file(data),
        Target::Tree => {
            let _ = Tree::decode(data);
        }
        Target::LockAndConfig => {
            let _ = crate::lock::decode("fuzz", data);
            let _ = crate::archive::decode_config(data);
        }
    }
}

fn pack(data: &[u8]) {
    if let Ok((seed, entries)) = parse_pack(data, &KEY, "fuzz") {
        let key = ObjectKey::derive(&KEY, &seed);
        for e in &entries {
            if let Ok(sealed) = record(data, e, "fuzz") {
                let _ = open_record(&key, &BLOB_KEY, e, sealed);
            }
        }
    }
}

fn encrypted_file(data: &[u8]) {
    let backend = MemoryBackend::new();
    let nh = name_hash(&KEY, "fuzz");
    if backend
        .write(FileKind::File, &PackId(nh).to_hex(), data)
        .is_ok()
    {
        if let Ok(f) = EncryptedFile::open(Arc::new(backend), &KEY, nh) {
            let _ = f.read_at(0, f.len().min(1 << 20) as usize);
        }
    }
}

/// A valid input for `target` (under the fixed fuzzing keys).
pub fn sample(target: Target) -> Vec<u8> {
    let backend = MemoryBackend::new();
    match target {
        Target::Pack => {
            let mut w = PackWriter::new(&backend, &KEY, [7; 32], 3).expect("memory");
            for data in [&b"first blob"[..], &[0u8; 300][..]] {
                w.add(blob_id(&BLOB_KEY, data), BlobKind::Data, data)
                    .expect("memory");
            }
            let done = w.finish().expect("memory");
            backend
                .read(FileKind::Pack, &done.id.to_hex())
                .expect("memory")
        }
        Target::Index => {
            let mut w = PackWriter::new(&backend, &KEY, [7; 32], 3).expect("memory");
            let e = w
                .add(blob_id(&BLOB_KEY, b"x"), BlobKind::Data, b"x")
                .expect("memory");
            let p = IndexedPack {
                id: PackId([3; 32]),
                seed: [7; 32],
                entries: vec![e],
            };
            seal_index(&KEY, [5; 32], &[p]).1
        }
        Target::Snapshot => seal_snapshot(&KEY, [5; 32], 7, &blob_id(&BLOB_KEY, b"r"), b"{}").1,
        Target::KeyFile => {
            let mut rng = rand::rngs::mock::StepRng::new(1, 1);
            KeyFile::wrap(
                KeyKind::Passphrase,
                b"pw",
                KdfParams::insecure_for_tests(),
                &[1; 32],
                &[2; 32],
                &mut rng,
            )
            .expect("tiny kdf")
        }
        Target::EncryptedFile => {
            let nh = name_hash(&KEY, "fuzz");
            let mut w = FileWriter::new(&backend, &KEY, nh, [9; 32]).expect("memory");
            std::io::Write::write_all(&mut w, &[1u8; 70_000]).expect("memory");
            w.commit().expect("memory");
            backend
                .read(FileKind::File, &PackId(nh).to_hex())
                .expect("memory")
        }
        Target::Tree => Tree {
            children: vec![blob_id(&BLOB_KEY, b"c")],
            meta: b"meta".to_vec(),
        }
        .encode(),
        Target::LockAndConfig => crate::archive::encode_config_for_fuzzing(),
    }
}
