//! Shared helpers: deterministic options and small archives.

use std::path::Path;
use std::sync::Arc;

use strongroom_archive::backend::{Backend, LocalBackend};
use strongroom_archive::{
    Archive, BlobId, BlobKind, ChunkerParams, Finding, KdfParams, ManualClock, Options, ReadData,
    Rng, SnapshotId, Tree, VerifyOptions,
};

pub const PASS: &str = "correct horse battery staple";

/// Deterministic options: seeded RNG, manual clock, small packs so tests span many packs.
pub fn options(seed: u64, clock: Arc<ManualClock>) -> Options {
    Options {
        pack_size: 64 * 1024,
        chunker: ChunkerParams {
            min: 4 * 1024,
            avg: 16 * 1024,
            max: 64 * 1024,
        },
        clock,
        rng: Rng::seeded(seed),
        ..Options::default()
    }
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

pub fn local(dir: &Path) -> Arc<dyn Backend> {
    Arc::new(LocalBackend::new(dir))
}

pub fn init(dir: &Path, seed: u64) -> Archive {
    init_on(local(dir), seed)
}

pub fn open(dir: &Path, seed: u64) -> Archive {
    open_on(local(dir), seed)
}

pub fn init_on(backend: Arc<dyn Backend>, seed: u64) -> Archive {
    init_with_clock(backend, seed, clock())
}

pub fn open_on(backend: Arc<dyn Backend>, seed: u64) -> Archive {
    open_with_clock(backend, seed, clock())
}

/// Like [`init_on`], with a clock the test keeps to move time forward.
pub fn init_with_clock(backend: Arc<dyn Backend>, seed: u64, clock: Arc<ManualClock>) -> Archive {
    Archive::init(
        backend,
        PASS,
        KdfParams::insecure_for_tests(),
        options(seed, clock),
    )
    .unwrap()
}

/// Like [`open_on`], with a clock the test keeps to move time forward.
pub fn open_with_clock(backend: Arc<dyn Backend>, seed: u64, clock: Arc<ManualClock>) -> Archive {
    Archive::open(backend, PASS, options(seed, clock)).unwrap()
}

/// Pseudo-random bytes from a seed (xorshift), cheap and reproducible in any process.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes one snapshot of `n` data blobs; returns the snapshot and the blobs' contents.
pub fn write_snapshot(archive: &Archive, seed: u64, n: usize) -> (SnapshotId, Vec<Vec<u8>>) {
    let contents: Vec<Vec<u8>> = (0..n)
        .map(|i| bytes(seed * 1000 + i as u64, 500 + (i * 997) % 20_000))
        .collect();
    let snap = commit(
        archive,
        &contents,
        format!("snapshot {seed}").into_bytes(),
        b"meta",
    );
    (snap, contents)
}

/// Commits a snapshot whose root tree lists `contents` as data blobs, with empty metadata.
/// Blobs the archive already holds are deduplicated, as a real backup would.
pub fn commit_blobs(archive: &Archive, contents: &[Vec<u8>]) -> SnapshotId {
    commit(archive, contents, vec![], b"")
}

fn commit(archive: &Archive, contents: &[Vec<u8>], tree_meta: Vec<u8>, meta: &[u8]) -> SnapshotId {
    let mut w = archive.writer().unwrap();
    let ids: Vec<BlobId> = contents
        .iter()
        .map(|c| w.put_blob(BlobKind::Data, c).unwrap())
        .collect();
    let root = w
        .put_tree(&Tree {
            children: ids,
            meta: tree_meta,
        })
        .unwrap();
    let snap = w.commit_snapshot(root, meta).unwrap();
    w.finish().unwrap();
    snap
}

/// Asserts every blob of a snapshot reads back bit-exact.
pub fn assert_snapshot(archive: &Archive, snap: &SnapshotId, contents: &[Vec<u8>]) {
    let root = archive.load_snapshot(snap).unwrap().root;
    let tree = archive.read_tree(&root).unwrap();
    assert_eq!(tree.children.len(), contents.len());
    for (id, want) in tree.children.iter().zip(contents) {
        assert_eq!(&archive.read_blob(id).unwrap(), want);
    }
}

pub fn verify_all(archive: &Archive) -> Vec<Finding> {
    archive
        .verify(&VerifyOptions {
            read_data: ReadData::All,
        })
        .unwrap()
}

pub fn damage(archive: &Archive) -> Vec<Finding> {
    verify_all(archive)
        .into_iter()
        .filter(Finding::is_damage)
        .collect()
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The pack files under `dir/data`.
pub fn pack_files(dir: &Path) -> Vec<std::path::PathBuf> {
    all_files(&dir.join("data"))
}
