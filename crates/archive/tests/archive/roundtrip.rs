use strongroom_archive::{BlobKind, Error, Tree, MAX_BLOB_LEN};

use crate::common::*;

#[test]
fn snapshots_round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 1);
    let (s1, c1) = write_snapshot(&archive, 1, 20);
    let (s2, c2) = write_snapshot(&archive, 2, 5);
    let archive = open(dir.path(), 2);
    assert_snapshot(&archive, &s1, &c1);
    assert_snapshot(&archive, &s2, &c2);
    let listed: Vec<_> = archive.snapshots().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&s1) && listed.contains(&s2));
    assert_eq!(archive.load_snapshot(&s1).unwrap().meta, b"meta");
    assert!(damage(&archive).is_empty());
}

#[test]
fn equal_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 3);
    // The same PDF attached to thirty messages.
    let pdf = bytes(42, 300_000);
    let mut w = archive.writer().unwrap();
    let ids: Vec<_> = (0..30)
        .map(|_| w.put_blob(BlobKind::Data, &pdf).unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let stats = w.finish().unwrap();
    assert_eq!((stats.blobs_added, stats.blobs_deduplicated), (1, 29));
    // A later session dedups against the persisted index, too.
    let mut w = archive.writer().unwrap();
    assert_eq!(w.put_blob(BlobKind::Data, &pdf).unwrap(), ids[0]);
    assert_eq!(w.finish().unwrap().blobs_added, 0);
    let stored: u64 = pack_files(dir.path())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(stored < 2 * 300_000, "stored {stored} bytes");
}

#[test]
fn streams_are_chunked_and_shifted_content_dedups() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 4);
    let data = bytes(7, 1_000_000);
    let mut w = archive.writer().unwrap();
    let ids = w.put_stream(&data[..]).unwrap();
    assert!(ids.len() > 10, "{} chunks", ids.len());
    let mut shifted = b"inserted at the front".to_vec();
    shifted.extend_from_slice(&data);
    let before = w.stats().blobs_added;
    let ids2 = w.put_stream(&shifted[..]).unwrap();
    let added = w.stats().blobs_added - before;
    assert!(added <= 2, "{added} new chunks for a shifted copy");
    w.finish().unwrap();
    let mut out = Vec::new();
    archive.read_stream(&ids, &mut out).unwrap();
    assert_eq!(out, data);
    out.clear();
    archive.read_stream(&ids2, &mut out).unwrap();
    assert_eq!(out, shifted);
}

#[test]
fn writer_rejects_bad_input_without_damage() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 5);
    let mut w = archive.writer().unwrap();
    let big = vec![0u8; MAX_BLOB_LEN + 1];
    assert!(matches!(
        w.put_blob(BlobKind::Data, &big),
        Err(Error::BlobTooLarge { .. })
    ));
    let data = w.put_blob(BlobKind::Data, b"not a tree").unwrap();
    assert!(matches!(
        w.commit_snapshot(data, b""),
        Err(Error::InvalidArgument(_))
    ));
    let unknown = strongroom_archive::BlobId([9; 32]);
    assert!(matches!(
        w.commit_snapshot(unknown, b""),
        Err(Error::BlobNotFound(_))
    ));
    let root = w.put_tree(&Tree::default()).unwrap();
    w.commit_snapshot(root, b"").unwrap();
    w.finish().unwrap();
    assert!(archive.has_blob(&data));
    assert!(matches!(
        archive.read_blob(&unknown),
        Err(Error::BlobNotFound(_))
    ));
}

#[test]
fn blobs_are_visible_only_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 6);
    let mut w = archive.writer().unwrap();
    let id = w.put_blob(BlobKind::Data, b"pending").unwrap();
    assert!(w.has_blob(&id));
    let reader = open(dir.path(), 7);
    assert!(!reader.has_blob(&id));
    w.flush().unwrap();
    reader.reload_index().unwrap();
    assert_eq!(reader.read_blob(&id).unwrap(), b"pending");
    drop(w);
}
