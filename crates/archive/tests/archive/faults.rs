//! Fault injection through `FaultyBackend`: a crash after N write operations, a single
//! failed write, ENOSPC and short writes. After each, the archive verifies clean and every
//! committed snapshot reads back. These run on the in-memory backend (the ordering logic
//! is the same; the SIGKILL test in `crash` covers the real file system).

use std::sync::Arc;

use strongroom_archive::backend::{Backend, FaultPlan, FaultyBackend, MemoryBackend};
use strongroom_archive::{Archive, BlobKind, Error, SnapshotId, Tree};

use crate::common::*;

/// Writes two snapshots through a faulty backend; returns those that were committed.
fn write_through(backend: Arc<dyn Backend>, seed: u64) -> Vec<(SnapshotId, Vec<Vec<u8>>)> {
    write_through_with(backend, options(seed, clock()), seed)
}

fn write_through_with(
    backend: Arc<dyn Backend>,
    options: strongroom_archive::Options,
    seed: u64,
) -> Vec<(SnapshotId, Vec<Vec<u8>>)> {
    let mut committed = Vec::new();
    let Ok(archive) = Archive::open(backend, PASS, options) else {
        return committed;
    };
    for round in 0..2u64 {
        let result = (|| -> Result<_, Error> {
            let mut w = archive.writer()?;
            let contents: Vec<Vec<u8>> = (0..12)
                .map(|i| bytes(seed * 100 + round * 10 + i, 1000 + (i as usize) * 1500))
                .collect();
            let mut ids = Vec::new();
            for c in &contents {
                ids.push(w.put_blob(BlobKind::Data, c)?);
            }
            let root = w.put_tree(&Tree {
                children: ids,
                meta: vec![],
            })?;
            let snap = w.commit_snapshot(root, b"")?;
            w.finish()?;
            Ok((snap, contents))
        })();
        match result {
            Ok(s) => committed.push(s),
            Err(_) => break,
        }
    }
    committed
}

fn check(
    mem: &MemoryBackend,
    committed: &[(SnapshotId, Vec<Vec<u8>>)],
    base: &(SnapshotId, Vec<Vec<u8>>),
) {
    let archive = open_on(Arc::new(mem.clone()), 99);
    let damage = damage(&archive);
    assert!(damage.is_empty(), "{damage:#?}");
    assert_snapshot(&archive, &base.0, &base.1);
    for (s, c) in committed {
        assert_snapshot(&archive, s, c);
    }
    // The archive stays writable: the dead writer's lock goes stale.
    let clock = clock();
    clock.advance(3_600_000);
    let a = Archive::open(Arc::new(mem.clone()), PASS, options(98, clock)).unwrap();
    a.writer().unwrap().finish().unwrap();
}

fn base_archive(seed: u64) -> (MemoryBackend, (SnapshotId, Vec<Vec<u8>>)) {
    let mem = MemoryBackend::new();
    let base = write_snapshot(&init_on(Arc::new(mem.clone()), seed), 1, 3);
    (mem, base)
}

#[test]
fn crash_after_every_number_of_writes() {
    let mut crashed_mid_way = 0;
    // Crash after 0, 1, 2, ... write operations until the whole run fits in the budget.
    for n in 0.. {
        let (mem, base) = base_archive(60);
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                crash_after_writes: Some(n),
                ..FaultPlan::default()
            },
        );
        let committed = write_through(Arc::new(faulty.clone()), n);
        if faulty.crashed() && !committed.is_empty() {
            crashed_mid_way += 1;
        }
        check(&mem, &committed, &base);
        if !faulty.crashed() {
            assert_eq!(committed.len(), 2);
            break;
        }
    }
    assert!(
        crashed_mid_way > 5,
        "crashes should also land after a commit"
    );
}

#[test]
fn single_failed_write_poisons_the_writer_only() {
    for n in [0, 3, 7, 12, 20] {
        let (mem, base) = base_archive(61);
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                fail_after_writes: Some(n),
                ..FaultPlan::default()
            },
        );
        let archive = Archive::open(Arc::new(faulty), PASS, options(62, clock())).unwrap();
        let mut failed = false;
        let mut committed = Vec::new();
        for round in 0..3 {
            match archive.writer() {
                Ok(mut w) => {
                    let data = bytes(round, 50_000);
                    let r = w.put_blob(BlobKind::Data, &data).and_then(|id| {
                        let root = w.put_tree(&Tree {
                            children: vec![id],
                            meta: vec![],
                        })?;
                        w.commit_snapshot(root, b"")
                    });
                    match r {
                        Ok(s) => {
                            committed.push((s, vec![data]));
                            // Releasing the lock may be the write that fails.
                            failed |= w.finish().is_err();
                        }
                        Err(_) => {
                            failed = true;
                            // Poisoned: refuses more work instead of writing half a state.
                            assert!(w.put_blob(BlobKind::Data, b"x").is_err());
                        }
                    }
                }
                Err(_) => failed = true,
            }
        }
        assert!(failed);
        assert!(
            !committed.is_empty(),
            "later writers succeed after a transient failure"
        );
        check(&mem, &committed, &base);
    }
}

#[test]
fn disk_full_fails_cleanly() {
    for limit in [0u64, 10_000, 40_000, 100_000, 150_000] {
        let (mem, base) = base_archive(63);
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                enospc_after_bytes: Some(limit),
                ..FaultPlan::default()
            },
        );
        let committed = write_through(Arc::new(faulty), limit);
        check(&mem, &committed, &base);
    }
}

#[test]
fn short_writes_are_completed() {
    let (mem, base) = base_archive(64);
    let faulty = FaultyBackend::new(
        Arc::new(mem.clone()),
        FaultPlan {
            short_writes: true,
            ..FaultPlan::default()
        },
    );
    let committed = write_through(Arc::new(faulty), 5);
    assert_eq!(committed.len(), 2);
    check(&mem, &committed, &base);
}

#[test]
fn enospc_is_reported_as_storage_full() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), 65);
    let faulty = FaultyBackend::new(
        local(dir.path()),
        FaultPlan {
            enospc_after_bytes: Some(1000),
            ..FaultPlan::default()
        },
    );
    let archive = Archive::open(Arc::new(faulty), PASS, options(66, clock())).unwrap();
    let mut w = archive.writer().unwrap();
    let err = w
        .put_blob(BlobKind::Data, &bytes(1, 100_000))
        .and_then(|_| w.flush());
    match err {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
}

#[test]
fn interrupted_index_rebuild_leaves_a_valid_archive() {
    for n in 0.. {
        let (mem, base) = base_archive(67);
        let (s2, c2) = write_snapshot(&open_on(Arc::new(mem.clone()), 68), 2, 6);
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                crash_after_writes: Some(n),
                ..FaultPlan::default()
            },
        );
        let crashing = Archive::open(Arc::new(faulty.clone()), PASS, options(69, clock())).unwrap();
        let done = crashing.rebuild_index().is_ok();
        check(&mem, &[(s2, c2)], &base);
        if done {
            assert!(!faulty.crashed());
            break;
        }
    }
}

#[test]
fn merging_index_files_is_interruptible() {
    for n in 0.. {
        let mem = MemoryBackend::new();
        let first = init_on(Arc::new(mem.clone()), 70);
        let mut snaps: Vec<_> = (0..4).map(|i| write_snapshot(&first, i, 3)).collect();
        assert_eq!(
            mem.list(strongroom_archive::backend::FileKind::Index)
                .unwrap()
                .len(),
            4
        );
        let faulty = FaultyBackend::new(
            Arc::new(mem.clone()),
            FaultPlan {
                crash_after_writes: Some(n),
                ..FaultPlan::default()
            },
        );
        let options = strongroom_archive::Options {
            max_index_files: 2,
            ..options(71, clock())
        };
        snaps.extend(write_through_with(Arc::new(faulty.clone()), options, 9));
        let base = snaps.remove(0);
        check(&mem, &snaps, &base);
        if !faulty.crashed() {
            let index_files = mem
                .list(strongroom_archive::backend::FileKind::Index)
                .unwrap();
            // Four old files and two sessions' worth were merged down to the limit.
            assert!(index_files.len() <= 2, "{} index files", index_files.len());
            break;
        }
    }
}
