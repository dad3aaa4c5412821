//! A full backup is byte for byte what the tenant serves; an incremental one records exactly
//! the changes and leaves older snapshots as they were.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_backup_is_byte_for_byte_and_settings_decide_what_is_skipped() {
    let emu = tenant(8, 12, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), TaskSettings::default()).await;
    let grid = engine.mailboxes(&task).await.unwrap();
    let tenant = emu.tenant();
    assert_eq!(grid.len(), tenant.users.len());
    for row in &grid {
        let user = tenant.users.iter().find(|u| u.id == row.user_id).unwrap();
        match (&user.mailbox, user.licensed) {
            (None, _) => assert_eq!(row.skip_reason, Some(SkipReason::NoMailbox)),
            (Some(_), false) => assert_eq!(row.skip_reason, Some(SkipReason::Unlicensed)),
            (Some(_), true) => assert_eq!(row.status, AccountStatus::Inactive),
        }
        assert!(row.new);
    }
    assert!(grid
        .iter()
        .any(|r| r.skip_reason == Some(SkipReason::NoMailbox)));
    assert!(grid
        .iter()
        .any(|r| r.skip_reason == Some(SkipReason::Unlicensed)));

    engine.activate(&task, &Selection::All).unwrap();
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success);
    let licensed: Vec<String> = tenant
        .users
        .iter()
        .filter(|u| u.mailbox.is_some() && u.licensed)
        .map(|u| u.id.clone())
        .collect();
    let mut done = backed_up(&report);
    done.sort();
    let mut want = licensed.clone();
    want.sort();
    assert_eq!(done, want);
    assert_complete(&engine, &tenant, &licensed);
    assert!(engine.verify(true).unwrap().ok);

    // Unlicensed mailboxes (shared, room) once the task backs them up.
    let mut settings = task.settings.clone();
    settings.backup_unlicensed = true;
    engine.update_settings(&task, &settings).unwrap();
    let task = engine.task(None).unwrap();
    engine.mailboxes(&task).await.unwrap();
    engine.activate(&task, &Selection::All).unwrap();
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success);
    let with_mailbox: Vec<String> = tenant
        .users
        .iter()
        .filter(|u| u.mailbox.is_some())
        .map(|u| u.id.clone())
        .collect();
    assert!(with_mailbox.len() > licensed.len());
    assert_complete(&engine, &tenant, &with_mailbox);

    // The catalog is a derived view: rebuilt from the archive alone it lists the same.
    let before = engine.accounts(&task).unwrap();
    let summary = engine.rebuild().unwrap();
    assert_eq!(summary.tasks, 1);
    assert_eq!(engine.accounts(&task).unwrap().len(), before.len());
    let again = backup(&engine, &task).await;
    assert_eq!(again.outcome, Outcome::Success);
    assert!(again
        .mailboxes
        .iter()
        .all(|m| m.new == 0 && m.deleted == 0 && m.changed == 0));
    assert_complete(&engine, &tenant, &with_mailbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_records_exactly_the_changes_and_old_snapshots_stay() {
    let emu = tenant(3, 20, 9).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let first = backup(&engine, &task).await;
    let users = backed_up(&first);
    assert!(!users.is_empty());
    let first_snapshot = first.snapshot.clone().unwrap();
    let before = engine.messages(&users[0], None, None).unwrap();

    // Unchanged tenant: O(folders) requests and no download.
    emu.reset_counters();
    let unchanged = backup(&engine, &task).await;
    assert!(unchanged
        .mailboxes
        .iter()
        .all(|m| m.new + m.changed + m.deleted + m.moved == 0));
    let counters = emu.counters();
    let folders: u64 = unchanged.mailboxes.iter().map(|m| m.folders).sum();
    assert!(
        !counters.endpoints.keys().any(|e| e.contains("$value")),
        "no MIME downloads expected: {:?}",
        counters.endpoints
    );
    let users_total = emu.tenant_metadata().users.len() as u64;
    assert!(
        counters.requests <= 3 * folders + 2 * users_total + 10,
        "{} requests for {folders} folders",
        counters.requests
    );

    // One of each change in the first mailbox.
    let user = &users[0];
    let tenant = emu.tenant();
    let mailbox = tenant
        .users
        .iter()
        .find(|u| &u.id == user)
        .unwrap()
        .mailbox
        .clone()
        .unwrap();
    let inbox = mailbox
        .folders
        .iter()
        .find(|f| f.well_known.as_deref() == Some("inbox"))
        .unwrap();
    // Folders under the mailbox root (the root itself is not a mail folder Graph lists).
    let with_msgs: Vec<_> = mailbox
        .folders
        .iter()
        .filter(|f| !f.search_folder && f.parent_id.is_some() && f.messages.len() >= 3)
        .collect();
    let src = with_msgs[0];
    let (m_mod, m_move, m_del) = (&src.messages[0], &src.messages[1], &src.messages[2]);
    let target = mailbox
        .folders
        .iter()
        .find(|f| !f.search_folder && f.parent_id.is_some() && f.id != src.id)
        .unwrap();
    emu.add_message(user, "inbox", b"From: a@fabrikam.com\r\nTo: b@contoso.com\r\nSubject: fresh\r\nMessage-ID: <fresh@x>\r\n\r\nnew body\r\n").unwrap();
    emu.update_message(
        user,
        &m_mod.immutable_id,
        &MessageUpdate {
            is_read: Some(!m_mod.is_read),
            ..Default::default()
        },
    )
    .unwrap();
    emu.move_message(user, &m_move.immutable_id, &target.id)
        .unwrap();
    emu.delete_message(user, &m_del.immutable_id).unwrap();

    let report = backup(&engine, &task).await;
    let line = report
        .mailboxes
        .iter()
        .find(|m| &m.user_id == user)
        .unwrap();
    assert_eq!(
        (line.new, line.changed, line.moved, line.deleted),
        (1, 1, 1, 1),
        "{line:?}"
    );
    for other in report.mailboxes.iter().filter(|m| &m.user_id != user) {
        assert_eq!(other.new + other.changed + other.moved + other.deleted, 0);
    }
    assert_complete(&engine, &emu.tenant(), &users);
    // The first snapshot still shows the mailbox as it was.
    let then = engine.messages(user, None, Some(&first_snapshot)).unwrap();
    let ids = |v: &[strongroom_engine::snapshot_view::MessageInfo]| {
        let mut x: Vec<(String, String)> = v
            .iter()
            .map(|m| (m.entry.id.clone(), m.folder_path.clone()))
            .collect();
        x.sort();
        x
    };
    assert_eq!(ids(&then), ids(&before));

    // An expired delta state resyncs that folder only, and changes nothing.
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::DeltaTokenExpired,
            path_contains: Some(format!("mailFolders/{}/messages/delta", inbox.id)),
        },
        1,
    );
    let report = backup(&engine, &task).await;
    let resynced: u64 = report.mailboxes.iter().map(|m| m.resynced_folders).sum();
    assert_eq!(resynced, 1, "{:?}", report.mailboxes);
    assert!(report
        .mailboxes
        .iter()
        .all(|m| m.new + m.changed + m.moved + m.deleted == 0));
    assert_complete(&engine, &emu.tenant(), &users);
    assert!(engine.verify(true).unwrap().ok);
}
