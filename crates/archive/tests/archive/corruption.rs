//! Damaged files yield typed findings naming what is damaged; undamaged data still reads.

use std::fs;

use strongroom_archive::{BlobId, Finding, ReadData, VerifyOptions};

use crate::common::*;

fn flip(path: &std::path::Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x55;
    fs::write(path, b).unwrap();
}

#[test]
fn flipped_pack_byte_names_blob_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 50);
    let (s1, c1) = write_snapshot(&archive, 1, 30);
    let (s2, c2) = write_snapshot(&archive, 2, 30);
    // The first blob of s1 is at offset 40 of some pack: damage that record.
    let tree = archive
        .read_tree(&archive.load_snapshot(&s1).unwrap().root)
        .unwrap();
    let victim = tree.children[0];
    let victim_pack = find_pack_of(&archive, dir.path(), &victim);
    flip(&victim_pack, 60);

    let archive = open(dir.path(), 51);
    let structural = archive.verify(&VerifyOptions::default()).unwrap();
    assert!(structural.iter().all(|f| !f.is_damage()), "{structural:?}");
    let findings = damage(&archive);
    assert!(
        findings.iter().any(|f| matches!(f,
            Finding::BlobDamaged { blob, snapshots, .. } if *blob == victim && snapshots == &vec![s1])),
        "{findings:#?}"
    );
    assert!(findings
        .iter()
        .any(|f| matches!(f, Finding::PackDamaged { reason, .. } if reason.contains("hash"))));
    assert!(archive.read_blob(&victim).is_err());
    // Everything else still reads.
    for (id, want) in tree.children.iter().zip(&c1).skip(1) {
        if let Ok(got) = archive.read_blob(id) {
            assert_eq!(&got, want);
        }
    }
    assert_snapshot(&archive, &s2, &c2);
}

fn find_pack_of(
    archive: &strongroom_archive::Archive,
    dir: &std::path::Path,
    blob: &BlobId,
) -> std::path::PathBuf {
    // Damage each pack in turn until the blob stops reading: the test needs no internals.
    for p in pack_files(dir) {
        let orig = fs::read(&p).unwrap();
        flip(&p, 60);
        let broken = archive.read_blob(blob).is_err();
        fs::write(&p, &orig).unwrap();
        if broken {
            return p;
        }
    }
    panic!("blob not found in any pack");
}

#[test]
fn flipped_index_and_snapshot_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 52);
    let (s1, _) = write_snapshot(&archive, 1, 5);
    let (s2, c2) = write_snapshot(&archive, 2, 5);
    let (s3, c3) = write_snapshot(&archive, 3, 5);
    let snap_path = dir.path().join("snapshots").join(s1.to_hex());
    flip(&snap_path, 70);
    // Damage the index file written by the second snapshot's session.
    let index_files = all_files(&dir.path().join("index"));
    assert_eq!(index_files.len(), 3);
    let archive = open(dir.path(), 53);
    let mut damaged_index = None;
    for p in &index_files {
        let orig = fs::read(p).unwrap();
        flip(p, 60);
        let a = open(dir.path(), 54);
        let root = a.load_snapshot(&s2).unwrap().root;
        if !a.has_blob(&root) {
            damaged_index = Some(p.clone());
            break;
        }
        fs::write(p, orig).unwrap();
    }
    let damaged_index = damaged_index.expect("one index holds s2's blobs");
    drop(archive);
    let archive = open(dir.path(), 55);
    let findings = damage(&archive);
    let index_name = damaged_index
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        findings.iter().any(|f| matches!(f,
        Finding::IndexUnreadable { index, .. } if index.to_hex() == index_name)),
        "{findings:#?}"
    );
    assert!(findings.iter().any(|f| matches!(f,
        Finding::SnapshotUnreadable { snapshot, .. } if *snapshot == s1)));
    assert!(findings.iter().any(|f| matches!(f,
        Finding::BlobMissing { snapshots, .. } if snapshots == &vec![s2])));
    // Its packs are still there, just unindexed.
    assert!(verify_all(&archive)
        .iter()
        .any(|f| matches!(f, Finding::PackUnreferenced { .. })));
    assert_snapshot(&archive, &s3, &c3);
    let _ = c2;
}

#[test]
fn missing_pack_is_named_with_its_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 56);
    let (s1, _) = write_snapshot(&archive, 1, 10);
    let packs = pack_files(dir.path());
    fs::remove_file(&packs[0]).unwrap();
    let findings = archive.verify(&VerifyOptions::default()).unwrap();
    assert!(
        findings.iter().any(|f| matches!(f,
            Finding::PackMissing { pack, blobs, snapshots }
                if pack.to_hex() == packs[0].file_name().unwrap().to_string_lossy()
                && !blobs.is_empty() && snapshots == &vec![s1])),
        "{findings:#?}"
    );
}

#[test]
fn sampled_read_data_reads_some_packs() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 57);
    write_snapshot(&archive, 1, 40);
    for p in pack_files(dir.path()) {
        flip(&p, 45);
    }
    let some = archive
        .verify(&VerifyOptions {
            read_data: ReadData::Percent(1),
        })
        .unwrap();
    let all = verify_all(&archive);
    let count = |fs: &[Finding]| {
        fs.iter()
            .filter(|f| matches!(f, Finding::BlobDamaged { .. }))
            .count()
    };
    assert!(count(&some) >= 1, "at least one pack is sampled");
    assert!(count(&some) < count(&all));
}

#[test]
fn rebuild_index_repairs_a_destroyed_index() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 58);
    let (s1, c1) = write_snapshot(&archive, 1, 20);
    let (s2, c2) = write_snapshot(&archive, 2, 20);
    for p in all_files(&dir.path().join("index")) {
        flip(&p, 50);
    }
    let archive = open(dir.path(), 59);
    assert!(archive
        .read_blob(&archive.load_snapshot(&s1).unwrap().root)
        .is_err());
    assert!(damage(&archive)
        .iter()
        .any(|f| matches!(f, Finding::IndexUnreadable { .. })));
    let report = archive.rebuild_index().unwrap();
    assert_eq!(report.packs_indexed, pack_files(dir.path()).len());
    assert!(report.packs_unreadable.is_empty());
    assert!(verify_all(&archive).is_empty());
    assert_snapshot(&archive, &s1, &c1);
    assert_snapshot(&open(dir.path(), 60), &s2, &c2);
}

#[test]
fn damaged_encrypted_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 61);
    let data = bytes(3, 3 * strongroom_archive::FILE_BLOCK_LEN);
    archive.write_file("index/segment", &data).unwrap();
    archive.write_file("catalog", b"small").unwrap();
    assert!(verify_all(&archive).is_empty());
    let files = all_files(&dir.path().join("files"));
    let big = files
        .iter()
        .find(|p| p.metadata().unwrap().len() > 1000)
        .unwrap();
    flip(big, 100); // inside block 0: only reading data finds it
    assert!(archive
        .verify(&VerifyOptions::default())
        .unwrap()
        .is_empty());
    let findings = verify_all(&archive);
    let name = big.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        matches!(&findings[..], [Finding::FileDamaged { name_hash, .. }] if *name_hash == name),
        "{findings:#?}"
    );
    assert_eq!(
        archive.open_file("catalog").unwrap().read_all().unwrap(),
        b"small"
    );
}
