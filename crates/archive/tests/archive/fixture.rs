//! Backward compatibility: `tests/fixtures/v1` is an archive written by the first release
//! of format version 1. Every later version of this crate must still read it bit-exact.
//! (Regenerate only when deliberately starting a new format version:
//! `cargo test -p strongroom-archive --test archive fixture::write_v1_fixture -- --ignored`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_archive::backend::LocalBackend;
use strongroom_archive::{
    Archive, BlobKind, KdfParams, ManualClock, RecoveryCode, Tree, FILE_BLOCK_LEN,
};

use crate::common::*;

const FIXTURE_PASS: &str = "fixture passphrase";
const FIXTURE_RECOVERY: &str = include_str!("../fixtures/v1-recovery-code.txt");

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn message(i: u64) -> Vec<u8> {
    format!(
        "Subject: fixture message {i}\r\n\r\n{}",
        "body text ".repeat(i as usize * 40)
    )
    .into_bytes()
}

fn attachment() -> Vec<u8> {
    bytes(4242, 3 * 64 * 1024)
}

fn derived_file() -> Vec<u8> {
    bytes(77, 2 * FILE_BLOCK_LEN + 999)
}

#[test]
#[ignore = "writes the committed fixture; run by hand only for a new format version"]
fn write_v1_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    let options = options(1, clock.clone());
    let archive = Archive::init(
        Arc::new(LocalBackend::new(&dir)),
        FIXTURE_PASS,
        KdfParams::insecure_for_tests(),
        options,
    )
    .unwrap();
    let code = archive
        .create_recovery_code(KdfParams::insecure_for_tests())
        .unwrap();
    std::fs::write(dir.join("../v1-recovery-code.txt"), code.to_string()).unwrap();
    for snap in 0..2u64 {
        clock.advance(86_400_000);
        let mut w = archive.writer().unwrap();
        let mut children: Vec<_> = (0..3 + snap)
            .map(|i| w.put_blob(BlobKind::Data, &message(i)).unwrap())
            .collect();
        let chunks = w.put_stream(&attachment()[..]).unwrap();
        children.push(
            w.put_tree(&Tree {
                children: chunks,
                meta: b"chunks".to_vec(),
            })
            .unwrap(),
        );
        let folder = w
            .put_tree(&Tree {
                children,
                meta: format!("folder {snap}").into_bytes(),
            })
            .unwrap();
        let root = w
            .put_tree(&Tree {
                children: vec![folder],
                meta: vec![],
            })
            .unwrap();
        w.commit_snapshot(root, format!("snapshot {snap}").as_bytes())
            .unwrap();
        w.finish().unwrap();
    }
    archive
        .write_file("catalog.sealed", &derived_file())
        .unwrap();
    let _ = std::fs::remove_dir_all(dir.join("tmp"));
}

fn check(archive: &Archive) {
    let snaps = archive.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    for (n, s) in snaps.iter().enumerate() {
        assert_eq!(s.meta, format!("snapshot {n}").as_bytes());
        let root = archive.read_tree(&s.root).unwrap();
        let folder = archive.read_tree(&root.children[0]).unwrap();
        assert_eq!(folder.meta, format!("folder {n}").as_bytes());
        let (chunk_tree, messages) = folder.children.split_last().unwrap();
        assert_eq!(messages.len(), 3 + n);
        for (i, id) in messages.iter().enumerate() {
            assert_eq!(archive.read_blob(id).unwrap(), message(i as u64));
        }
        let chunks = archive.read_tree(chunk_tree).unwrap().children;
        let mut out = Vec::new();
        archive.read_stream(&chunks, &mut out).unwrap();
        assert_eq!(out, attachment());
    }
    let f = archive.open_file("catalog.sealed").unwrap();
    assert_eq!(f.read_all().unwrap(), derived_file());
    assert!(verify_all(archive).is_empty());
}

#[test]
fn reads_the_v1_fixture() {
    // Copy it: opening writes nothing, but verify and a stray writer must not touch the
    // committed files.
    let tmp = tempfile::tempdir().unwrap();
    for src in all_files(&fixture_dir()) {
        let rel = src.strip_prefix(fixture_dir()).unwrap();
        let dst = tmp.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    check(&Archive::open(local(tmp.path()), FIXTURE_PASS, options(2, clock())).unwrap());
    let code = RecoveryCode::parse(FIXTURE_RECOVERY.trim()).unwrap();
    check(
        &Archive::open_with_recovery_code(local(tmp.path()), &code, options(3, clock())).unwrap(),
    );
}
