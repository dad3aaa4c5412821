use strongroom_archive::{BlobKind, Error, LockMode};

use crate::common::*;

#[test]
fn one_writer_at_a_time_and_readers_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 30);
    let (snap, contents) = write_snapshot(&archive, 1, 3);
    let mut w = archive.writer().unwrap();
    w.put_blob(BlobKind::Data, &bytes(1, 200_000)).unwrap();

    // A second handle, as another process would have, cannot write...
    let other = open(dir.path(), 31);
    match other.writer() {
        Err(Error::Locked(info)) => {
            assert_eq!(info.mode, LockMode::Write);
            assert_eq!(info.pid, std::process::id());
            assert!(!info.stale);
        }
        r => panic!("expected Locked, got {r:?}"),
    }
    // ...nor prune, but it can read committed data while the write goes on.
    assert!(matches!(other.prune(&[snap]), Err(Error::Locked(_))));
    assert_snapshot(&other, &snap, &contents);
    let read_lock = other.read_lock().unwrap();
    w.flush().unwrap();
    assert_snapshot(&other, &snap, &contents);
    w.finish().unwrap();
    // A reader's lock keeps prune out, but not writers.
    assert!(matches!(archive.prune(&[snap]), Err(Error::Locked(_))));
    archive.writer().unwrap().finish().unwrap();
    drop(read_lock);
    archive.prune(&[snap]).unwrap();
}

#[test]
fn stale_lock_is_reported_then_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let a = init_with_clock(local(dir.path()), 32, clock.clone());
    let w = a.writer().unwrap();
    std::mem::forget(w); // a writer that hangs: its heartbeat stops
    assert!(matches!(a.writer(), Err(Error::Locked(_))));
    clock.advance(31 * 60 * 1000);
    let locks = a.locks().unwrap();
    assert_eq!(locks.len(), 1);
    assert!(locks[0].stale);
    assert!(verify_all(&a)
        .iter()
        .any(|f| matches!(f, strongroom_archive::Finding::StaleLock { .. })));
    a.writer().unwrap().finish().unwrap();
    assert!(a.locks().unwrap().is_empty());
}

#[test]
fn long_writes_keep_their_lock_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let a = init_with_clock(local(dir.path()), 33, clock.clone());
    let mut w = a.writer().unwrap();
    // 25 minutes of putting blobs without a flush, in 1-minute steps.
    for i in 0..25 {
        clock.advance(60_000);
        w.put_blob(BlobKind::Data, &bytes(i, 1000)).unwrap();
    }
    clock.advance(10 * 60_000);
    // 35 minutes after the lock was taken it is still fresh, so nobody takes over.
    let locks = a.locks().unwrap();
    assert_eq!(locks.len(), 1);
    assert!(!locks[0].stale, "{locks:?}");
    assert!(matches!(a.writer(), Err(Error::Locked(_))));
    w.finish().unwrap();
}

#[test]
fn a_writer_whose_lock_was_taken_over_stops() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let a = init_with_clock(local(dir.path()), 34, clock.clone());
    let (s1, c1) = write_snapshot(&a, 1, 3);
    let mut w = a.writer().unwrap();
    let id = w.put_blob(BlobKind::Data, &bytes(9, 5000)).unwrap();
    let root = w
        .put_tree(&strongroom_archive::Tree {
            children: vec![id],
            meta: vec![],
        })
        .unwrap();
    // The writer hangs past the stale limit; a prune takes over and deletes its packs.
    clock.advance(31 * 60 * 1000);
    a.prune(&[s1]).unwrap().execute().unwrap();
    assert!(matches!(w.commit_snapshot(root, b""), Err(Error::LockLost)));
    assert!(damage(&a).is_empty());
    assert_snapshot(&a, &s1, &c1);
}
