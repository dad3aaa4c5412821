use std::sync::Arc;

use strongroom_archive::backend::{FaultPlan, FaultyBackend, MemoryBackend};
use strongroom_archive::Error;

use crate::common::*;

/// Bytes of archive files, leaving out lock files.
fn dir_size(dir: &std::path::Path) -> u64 {
    all_files(dir)
        .iter()
        .filter(|p| !p.starts_with(dir.join("locks")))
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

#[test]
fn prune_plans_then_frees_space_and_keeps_what_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 70);
    let (s1, c1) = write_snapshot(&archive, 1, 40);
    write_snapshot(&archive, 2, 40);
    // s3 shares half of s1's blobs, so s1's packs become partly live.
    let c3: Vec<Vec<u8>> = c1.iter().step_by(2).cloned().collect();
    let s3 = commit_blobs(&archive, &c3);
    let before = dir_size(dir.path());

    let prune = archive.prune(&[s3]).unwrap();
    let plan = prune.plan().clone();
    assert_eq!(plan.keep_snapshots, vec![s3]);
    assert_eq!(plan.delete_snapshots.len(), 2);
    assert!(!plan.delete_packs.is_empty(), "{plan:?}");
    assert!(!plan.repack_packs.is_empty(), "{plan:?}");
    assert_eq!(plan.live_blobs, c3.len() + 1);
    assert!(plan.bytes_freed > 0);
    // Planning changed nothing on disk.
    assert_eq!(dir_size(dir.path()), before);
    let report = prune.execute().unwrap();
    assert_eq!(report.snapshots_deleted, 2);
    assert_eq!(
        report.packs_deleted,
        plan.delete_packs.len() + plan.repack_packs.len()
    );

    let after = dir_size(dir.path());
    assert!(after < before, "{after} >= {before}");
    for archive in [archive, open(dir.path(), 71)] {
        assert!(damage(&archive).is_empty());
        assert_snapshot(&archive, &s3, &c3);
        assert!(archive.load_snapshot(&s1).is_err());
        assert_eq!(archive.snapshots().unwrap().len(), 1);
        // Pruned content is gone for good.
        let gone = archive.counts().0;
        assert_eq!(gone, c3.len() + 1);
    }
}

#[test]
fn prune_refuses_unknown_snapshot_and_nothing_to_do_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 72);
    let (s1, c1) = write_snapshot(&archive, 1, 5);
    assert!(matches!(
        archive.prune(&[strongroom_archive::SnapshotId([1; 32])]),
        Err(Error::SnapshotNotFound(_))
    ));
    let prune = archive.prune(&[s1]).unwrap();
    assert!(prune.plan().is_empty(), "{:?}", prune.plan());
    prune.execute().unwrap();
    assert_snapshot(&archive, &s1, &c1);
}

#[test]
fn interrupted_prune_leaves_a_valid_archive() {
    let mut interrupted = 0;
    // Crash after 0, 1, 2, ... write operations until prune gets through.
    for n in 0.. {
        // In memory: the ordering is what is tested, and it keeps 40 rounds fast.
        let mem = MemoryBackend::new();
        let archive = init_on(Arc::new(mem.clone()), 73);
        write_snapshot(&archive, 1, 12);
        let (s2, c2) = write_snapshot(&archive, 2, 12);
        commit_blobs(&archive, &[]);
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                crash_after_writes: Some(n),
                ..FaultPlan::default()
            },
        );
        let crashing = open_on(Arc::new(faulty), 74);
        let done = crashing.prune(&[s2]).and_then(|p| p.execute()).is_ok();
        interrupted += usize::from(!done);
        let clock = clock();
        clock.advance(3_600_000);
        let a = open_with_clock(Arc::new(mem.clone()), 75, clock);
        let damage = damage(&a);
        assert!(damage.is_empty(), "after {n} writes: {damage:#?}");
        assert_snapshot(&a, &s2, &c2);
        // Finishing the prune later completes it.
        a.prune(&[s2]).unwrap().execute().unwrap();
        assert_snapshot(&a, &s2, &c2);
        assert_eq!(a.snapshots().unwrap().len(), 1);
        assert!(verify_all(&a).is_empty());
        if done {
            break;
        }
    }
    assert!(interrupted >= 10, "{interrupted}");
}

/// Regression: a handle opened before another process pruned must not deduplicate against
/// blobs whose packs the prune deleted (it would commit snapshots referencing lost data).
#[test]
fn writer_does_not_dedup_against_blobs_pruned_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path(), 76);
    let (_, c1) = write_snapshot(&first, 1, 6);
    let (s2, _) = write_snapshot(&first, 2, 6);
    let stale = open(dir.path(), 77); // loads an index that still lists s1's blobs
    first.prune(&[s2]).unwrap().execute().unwrap();
    let s3 = commit_blobs(&stale, &c1);
    assert!(damage(&stale).is_empty());
    assert_snapshot(&open(dir.path(), 78), &s3, &c1);
}

#[test]
fn reader_follows_blobs_repacked_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path(), 79);
    let (_, c1) = write_snapshot(&first, 1, 30);
    write_snapshot(&first, 2, 30);
    // s3 keeps every other blob of s1, so s1's packs get repacked.
    let kept: Vec<Vec<u8>> = c1.iter().step_by(2).cloned().collect();
    let s3 = commit_blobs(&first, &kept);
    let reader = open(dir.path(), 80);
    let plan = first.prune(&[s3]).unwrap();
    assert!(!plan.plan().repack_packs.is_empty());
    plan.execute().unwrap();
    assert_snapshot(&reader, &s3, &kept);
}
