//! The backup engine end to end against the emulator: completeness byte for byte, account
//! settings, incremental exactness and request counts, expired delta state, faults, and that
//! no plaintext reaches the archive folder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use m365_emulator::{Config, Emulator, FaultKind, MessageUpdate, ScheduledFault, TenantSnapshot};
use strongroom_engine::accounts::{AccountStatus, Selection, SkipReason};
use strongroom_engine::api::{Engine, EngineOptions};
use strongroom_engine::report::{MailboxStatus, Outcome, RunReport};
use strongroom_engine::task::TaskSettings;

mod support;
use support::*;

/// Every message of every backed-up mailbox (search folders hold none of their own).
fn tenant_messages(
    tenant: &TenantSnapshot,
    user_ids: &[String],
) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for user in tenant.users.iter().filter(|u| user_ids.contains(&u.id)) {
        let Some(mailbox) = &user.mailbox else {
            continue;
        };
        for folder in mailbox.folders.iter().filter(|f| !f.search_folder) {
            for m in &folder.messages {
                out.insert(m.immutable_id.clone(), (user.id.clone(), m.mime.to_vec()));
            }
        }
    }
    out
}

/// Asserts the archive's newest snapshot holds exactly the tenant's messages, byte for byte.
fn assert_complete(engine: &Engine, tenant: &TenantSnapshot, user_ids: &[String]) {
    let expected = tenant_messages(tenant, user_ids);
    let mut seen = HashMap::new();
    for user in user_ids {
        for m in engine.messages(user, None, None).unwrap() {
            assert!(
                seen.insert(m.entry.id.clone(), ()).is_none(),
                "duplicate message"
            );
            let (owner, mime) = expected
                .get(&m.entry.id)
                .unwrap_or_else(|| panic!("archive holds a message the tenant does not"));
            assert_eq!(owner, user);
            let stored = engine.message_mime(user, &m.entry.id, None).unwrap();
            assert!(stored == *mime, "MIME differs for a message");
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "messages missing from the archive"
    );
}

fn backed_up(report: &RunReport) -> Vec<String> {
    report
        .mailboxes
        .iter()
        .filter(|m| m.status == MailboxStatus::BackedUp)
        .map(|m| m.user_id.clone())
        .collect()
}

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
async fn no_plaintext_canary_reaches_the_archive_folder() {
    let emu = tenant(3, 5, 11).await;
    let canaries = [
        "CanarySubjectQx7",
        "canary.addr.zq9@fabrikam.com",
        "CanaryBodyWordVv3",
        "CanaryAttachmentJj2.pdf",
        "CanaryFolderKk5",
    ];
    let tenant = emu.tenant();
    let user = tenant
        .users
        .iter()
        .find(|u| u.mailbox.is_some() && u.licensed)
        .unwrap();
    emu.create_folder(&user.id, "inbox", canaries[4], false)
        .unwrap();
    let mime = format!(
        "From: Canary <{}>\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{} {}\r\n--b\r\nContent-Type: application/pdf; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
        canaries[1], user.user_principal_name, canaries[0], canaries[2], canaries[2], canaries[3], canaries[3]
    );
    emu.add_message(&user.id, &format!("Inbox/{}", canaries[4]), mime.as_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success);
    assert!(
        engine
            .messages(&user.id, Some(&format!("Inbox/{}", canaries[4])), None)
            .unwrap()
            .len()
            == 1
    );
    let mut secrets: Vec<String> = canaries.iter().map(|s| s.to_string()).collect();
    secrets.push(user.user_principal_name.clone());
    secrets.push(user.display_name.clone());
    secrets.push(emu.info().client_secret.clone());
    drop(engine);
    assert_no_plaintext(dir.path(), &secrets);
}

fn assert_no_plaintext(dir: &Path, secrets: &[String]) {
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            // Lossy UTF-8 keeps every valid run intact; std's substring search is fast.
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for s in secrets {
                for needle in [s.clone(), s.to_lowercase()] {
                    assert!(
                        !text.contains(needle.as_str()),
                        "{s:?} in plaintext in {}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(files > 3, "the scan must see the archive's files");
}

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
fn disk_bytes(dir: &Path) -> u64 {
    let mut stack = vec![dir.to_owned()];
    let mut total = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                total += entry.metadata().unwrap().len();
            }
        }
    }
    total
}

/// A message whose text differs per `n` and that carries `attachment` (base64 lines).
fn mime_with_attachment(n: usize, attachment: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let mut mime = format!(
        "From: a@fabrikam.com\r\nTo: b@contoso.com\r\nSubject: report {n}\r\n\
         Message-ID: <report-{n}@fabrikam.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
         --b{n}\r\nContent-Type: text/plain\r\n\r\n{}\r\n\
         --b{n}\r\nContent-Type: application/octet-stream; name=\"figures.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"figures.bin\"\r\n\r\n",
        "Text that shifts the attachment. ".repeat(n * 7 + 1)
    )
    .into_bytes();
    for line in encoded.as_bytes().chunks(76) {
        mime.extend_from_slice(line);
        mime.extend_from_slice(b"\r\n");
    }
    mime.extend_from_slice(format!("--b{n}--\r\n").as_bytes());
    mime
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_in_many_messages_is_stored_once() {
    use rand::{RngCore, SeedableRng};
    let emu = tenant(2, 2, 31).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let users = backed_up(&backup(&engine, &task).await);
    let user = &users[0];

    // Random bytes (incompressible), smaller than the chunker's minimum: without the split
    // each message would be one chunk of its own and nothing would deduplicate.
    let mut attachment = vec![0u8; 150_000];
    rand::rngs::StdRng::seed_from_u64(5).fill_bytes(&mut attachment);
    const N: usize = 8;
    for n in 0..N {
        emu.add_message(user, "inbox", &mime_with_attachment(n, &attachment))
            .unwrap();
    }
    // The pack files: where content goes (the catalog and index files are small and derived).
    let packs = dir.path().join("data");
    let before = disk_bytes(&packs);
    let report = backup(&engine, &task).await;
    let grown = disk_bytes(&packs) - before;
    assert_eq!(
        report.mailboxes.iter().map(|m| m.new).sum::<u64>(),
        N as u64
    );
    let size = attachment.len() as u64;
    assert!(
        grown < size * 5 / 4,
        "{N} messages with the same {size}-byte attachment grew the archive by {grown} bytes"
    );

    // Every message still reads back byte for byte, and all carry the same attachment blobs.
    assert_complete(&engine, &emu.tenant(), &users);
    let with: Vec<_> = engine
        .messages(user, None, None)
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.entry
                .subject
                .as_deref()
                .is_some_and(|s| s.starts_with("report "))
        })
        .collect();
    assert_eq!(with.len(), N);
    let blobs_of = |m: &strongroom_engine::snapshot_view::MessageInfo| {
        let a = &m.entry.attachments[0];
        m.entry.blobs[a.first_blob..a.first_blob + a.blob_count].to_vec()
    };
    let first = blobs_of(&with[0]);
    for m in &with {
        let a = &m.entry.attachments[0];
        assert_eq!(a.name.as_deref(), Some("figures.bin"));
        assert_eq!(a.content_type.as_deref(), Some("application/octet-stream"));
        assert_eq!(blobs_of(m), first);
    }
    assert!(engine.verify(true).unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mb_attachment_streams_into_the_archive_byte_for_byte() {
    use rand::{RngCore, SeedableRng};
    let emu = tenant(1, 1, 41).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let mut attachment = vec![0u8; 60 << 20];
    rand::rngs::StdRng::seed_from_u64(6).fill_bytes(&mut attachment);
    let mime = mime_with_attachment(1, &attachment);
    drop(attachment);
    let user = emu
        .tenant_metadata()
        .users
        .iter()
        .find(|u| u.mailbox.is_some() && u.licensed)
        .unwrap()
        .id
        .clone();
    let ids = emu.add_message(&user, "inbox", &mime).unwrap();

    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let stored = engine.message_mime(&user, &ids.immutable_id, None).unwrap();
    assert!(stored == mime, "the large message differs from its $value");
    let entry = engine
        .messages(&user, None, None)
        .unwrap()
        .into_iter()
        .find(|m| m.entry.id == ids.immutable_id)
        .unwrap()
        .entry;
    let [a] = entry.attachments.as_slice() else {
        panic!("one attachment expected: {:?}", entry.attachments)
    };
    let encoded = (60u64 << 20).div_ceil(3) * 4;
    assert_eq!(a.size, encoded + 2 * encoded.div_ceil(76));
    assert!(a.blob_count >= 15, "{} chunks", a.blob_count);
    assert_eq!(entry.size, mime.len() as u64);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_mail_has_its_attachments_found_and_recorded() {
    use mail_parser::{MessageParser, MimeHeaders};
    let emu = tenant(3, 40, 43).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let users = backed_up(&backup(&engine, &task).await);
    let tenant = emu.tenant();
    let expected = tenant_messages(&tenant, &users);
    let mut with_attachments = 0;
    for user in &users {
        for m in engine.messages(user, None, None).unwrap() {
            let (_, mime) = &expected[&m.entry.id];
            let parsed = MessageParser::new().parse(mime).unwrap();
            let names: Vec<Option<&str>> =
                parsed.attachments().map(|a| a.attachment_name()).collect();
            let found: Vec<Option<&str>> = m
                .entry
                .attachments
                .iter()
                .map(|a| a.name.as_deref())
                .collect();
            assert_eq!(found, names, "{:?}", m.entry.subject);
            for a in &m.entry.attachments {
                let bytes: u64 = m.entry.blobs[a.first_blob..a.first_blob + a.blob_count]
                    .iter()
                    .map(|b| {
                        engine
                            .archive()
                            .read_blob(&b.parse().unwrap())
                            .unwrap()
                            .len() as u64
                    })
                    .sum();
                assert_eq!(bytes, a.size);
            }
            with_attachments += usize::from(!found.is_empty());
        }
    }
    assert!(
        with_attachments >= 5,
        "{with_attachments} messages with attachments"
    );
}
