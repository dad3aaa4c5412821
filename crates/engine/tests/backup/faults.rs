//! Injected faults and throttling lose and duplicate nothing; a backup that fails half-way
//! leaves a browsable checkpoint.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_duplicate_nothing_and_concurrency_stays_within_four() {
    let emu = Emulator::start(Config {
        users: 4,
        messages_per_user: 25,
        seed: 5,
        fault_rate: 0.08,
        fault_kinds: vec![
            FaultKind::Throttled,
            FaultKind::Unavailable,
            FaultKind::GatewayTimeout,
            FaultKind::ConnectionReset,
            FaultKind::TruncatedBody,
        ],
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(
        &emu,
        dir.path(),
        TaskSettings {
            backup_unlicensed: true,
            ..auto_activate()
        },
    )
    .await;
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let counters = emu.counters();
    assert!(counters.faults > 0, "the faults must have happened");
    for (mailbox, c) in &counters.mailboxes {
        assert!(
            c.max_concurrency <= 4,
            "{mailbox}: {} in flight",
            c.max_concurrency
        );
    }
    emu.set_faults(0.0, vec![]);
    assert_complete(&engine, &emu.tenant(), &backed_up(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_waits_are_measured_per_mailbox_and_overall() {
    use m365_emulator::Throttle;
    use std::sync::{Arc, Mutex};
    use strongroom_engine::progress::ProgressEvent;

    let emu = tenant(3, 15, 13).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    // Nothing throttled: nothing waited.
    let quiet = backup(&engine, &task).await;
    assert!(quiet.mailboxes.iter().all(|m| m.throttle_wait_ms == 0));
    assert_eq!(quiet.throttle_wait_ms, 0);
    let users = backed_up(&quiet);

    // One 429 for one mailbox: it waited at least the Retry-After (0.5 s or more), the
    // others not at all.
    let target = &users[0];
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::Throttled,
            path_contains: Some(format!("{target}/mailFolders")),
        },
        1,
    );
    let once = backup(&engine, &task).await;
    for m in &once.mailboxes {
        if &m.user_id == target {
            assert!(m.throttle_wait_ms >= 500, "{m:?}");
        } else {
            assert_eq!(m.throttle_wait_ms, 0, "{m:?}");
        }
    }

    // The emulator's budget throttling on: the waits are real time, per mailbox and summed.
    emu.set_throttle(
        Throttle::Scaled {
            requests: 8,
            per: Duration::from_secs(1),
        },
        4,
    );
    emu.reset_counters();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = events.clone();
        Arc::new(move |e: &ProgressEvent| events.lock().unwrap().push(e.clone()))
    };
    let started = std::time::Instant::now();
    let report = engine.backup(&task, sink).await.unwrap();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    assert!(
        emu.counters().throttled > 0,
        "the emulator throttled nothing"
    );
    assert!(report.throttle_wait_ms > 0);
    assert_eq!(
        report.throttle_wait_ms,
        report
            .mailboxes
            .iter()
            .map(|m| m.throttle_wait_ms)
            .sum::<u64>()
    );
    for m in &report.mailboxes {
        assert!(m.throttle_wait_ms <= elapsed_ms, "{m:?} in {elapsed_ms} ms");
    }
    let last = events
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| match e {
            ProgressEvent::Overall(o) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last.throttle_wait_ms, report.throttle_wait_ms);
    assert_eq!(last.throttled_mailboxes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_backup_that_fails_half_way_leaves_a_browsable_checkpoint() {
    use strongroom_engine::backup::manifest::SnapshotKind;
    let emu = tenant(1, 40, 17).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    // A checkpoint after every folder, so what finished before the failure is committed.
    opts.backup.checkpoint_every = Duration::ZERO;
    let (engine, task) = setup_with(&emu, dir.path(), auto_activate(), opts).await;
    let tenant = emu.tenant();
    let user = tenant
        .users
        .iter()
        .find(|u| u.licensed && u.mailbox.is_some())
        .unwrap();
    let folders: Vec<_> = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .filter(|f| !f.search_folder && f.parent_id.is_some())
        .collect();
    // The last folder never answers its delta: the mailbox, and so the run, fails there.
    let broken = folders.last().unwrap();
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::GatewayTimeout,
            path_contains: Some(format!("mailFolders/{}/messages/delta", broken.id)),
        },
        1000,
    );
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert!(report.snapshot.is_none());

    // `snapshots`: checkpoints (and the task record), no backup.
    let snapshots = engine.snapshots().unwrap();
    assert!(snapshots.iter().all(|s| s.kind != SnapshotKind::Backup));
    let checkpoint = snapshots
        .iter()
        .rev()
        .find(|s| s.kind == SnapshotKind::Checkpoint)
        .expect("a checkpoint snapshot");
    assert!(checkpoint.messages > 0);

    // `ls` on it: the folders committed so far, each with exactly the tenant's messages,
    // which read back byte for byte.
    let listed = engine
        .folders(&user.id, Some(&checkpoint.short_id))
        .unwrap();
    assert!(!listed.iter().any(|f| f.id == broken.id));
    let mut committed = 0;
    for folder in &listed {
        let source = folders.iter().find(|f| f.id == folder.id).unwrap();
        let messages = engine
            .messages(&user.id, Some(&folder.id), Some(&checkpoint.id))
            .unwrap();
        assert_eq!(messages.len(), source.messages.len(), "{}", folder.path);
        for m in &source.messages {
            let mime = engine
                .message_mime(&user.id, &m.immutable_id, Some(&checkpoint.id))
                .unwrap();
            assert!(mime == m.mime.as_ref(), "MIME differs");
            committed += 1;
        }
    }
    assert!(committed > 0 && committed as u64 == checkpoint.messages);
    assert!(
        listed.len() + 1 >= folders.len() / 2,
        "too few folders committed"
    );
    assert!(engine.verify(true).unwrap().ok);
}
