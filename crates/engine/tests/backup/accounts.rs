//! New and departed accounts, and `rebuild` keeping activations and settings.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mailboxes_are_activated_and_departed_ones_archived_for_the_retention() {
    use strongroom_archive::ManualClock;
    use strongroom_engine::task::Retention;

    let emu = tenant(3, 6, 17).await;
    let clock = std::sync::Arc::new(ManualClock::new(1_760_000_000_000));
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup_with(
        &emu,
        dir.path(),
        TaskSettings {
            retention: Retention::Days(7),
            ..auto_activate()
        },
        EngineOptions {
            clock: clock.clone(),
            ..options()
        },
    )
    .await;
    let first = backup(&engine, &task).await;
    let victim = backed_up(&first)[0].clone();
    let victim_messages = engine.messages(&victim, None, None).unwrap().len();

    // A new licensed user is detected and, as the task says, activated and backed up.
    let newcomer = emu
        .add_user(&m365_emulator::NewUser {
            display_name: "Newcomer Person".into(),
            kind: Some(m365_emulator::UserKind::Licensed),
            ..Default::default()
        })
        .unwrap();
    emu.add_message(&newcomer.id, "inbox", b"Subject: welcome\r\n\r\nhello\r\n")
        .unwrap();
    clock.advance(3_600_000);
    let second = backup(&engine, &task).await;
    assert!(backed_up(&second).contains(&newcomer.id));
    assert_eq!(engine.messages(&newcomer.id, None, None).unwrap().len(), 1);

    // The victim leaves the tenant: archived, still in every new snapshot...
    emu.remove_user(&victim).unwrap();
    clock.advance(86_400_000);
    let third = backup(&engine, &task).await;
    assert_eq!(third.outcome, Outcome::Success);
    assert!(!backed_up(&third).contains(&victim));
    let row = engine
        .accounts(&task)
        .unwrap()
        .into_iter()
        .find(|a| a.user_id == victim)
        .unwrap();
    assert_eq!(row.status, AccountStatus::Archived);
    assert_eq!(
        engine.messages(&victim, None, None).unwrap().len(),
        victim_messages
    );

    // ...until the retention runs out; older snapshots keep it.
    clock.advance(8 * 86_400_000);
    let fourth = backup(&engine, &task).await;
    assert_eq!(fourth.outcome, Outcome::Success);
    assert!(engine.messages(&victim, None, None).is_err());
    assert_eq!(
        engine
            .messages(&victim, None, third.snapshot.as_deref())
            .unwrap()
            .len(),
        victim_messages
    );
}

/// Bytes of every file under `dir`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_keeps_activations_and_settings_changed_after_the_last_backup() {
    use strongroom_engine::task::Retention;
    let emu = tenant(6, 5, 19).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), TaskSettings::default()).await;
    let grid = engine.mailboxes(&task).await.unwrap();
    let eligible: Vec<String> = grid
        .iter()
        .filter(|r| r.skip_reason.is_none())
        .map(|r| r.address.clone())
        .collect();
    assert!(eligible.len() >= 2);
    let (first, second) = (&eligible[0], &eligible[1]);
    engine
        .activate(&task, &Selection::Addresses(vec![first.clone()]))
        .unwrap();
    assert_eq!(backed_up(&backup(&engine, &task).await).len(), 1);

    // After the last backup: another activation and new settings, then the catalog is lost.
    engine
        .activate(&task, &Selection::Addresses(vec![second.clone()]))
        .unwrap();
    let settings = TaskSettings {
        index_for_search: false,
        retention: Retention::Days(30),
        ..task.settings.clone()
    };
    engine.update_settings(&task, &settings).unwrap();
    let task = engine.task(None).unwrap();
    let before = engine.accounts(&task).unwrap();

    engine.rebuild().unwrap();
    let task = engine.task(None).unwrap();
    assert_eq!(task.settings, settings);
    assert_eq!(engine.accounts(&task).unwrap(), before);

    // The backed-up mailbox kept its folders: the next backup downloads only the mailbox
    // activated since.
    let next = backup(&engine, &task).await;
    let line = |address: &str| {
        next.mailboxes
            .iter()
            .find(|m| m.address == address)
            .unwrap_or_else(|| panic!("{address} not in the report"))
            .clone()
    };
    assert_eq!(line(first).new, 0);
    assert!(line(second).new > 0);
    assert_eq!(line(second).status, MailboxStatus::BackedUp);
}
