//! Restore end to end against the emulator, checked by reading the tenant back through Graph:
//! the folder tree and every message (non-draft, dates, read state, flag, categories,
//! attachments, one large enough for an upload session) match the source; restoring to
//! another mailbox; from an older snapshot after the tenant changed; re-running skips what is
//! there; a read-only app gets `restore_permission_needed` until the roles are granted; and
//! cancelling stops between whole messages.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use futures::TryStreamExt;
use m365_emulator::{AppSpec, Config, Emulator, FaultKind, MessageUpdate, ScheduledFault};
use strongroom_engine::api::{ConnectRequest, Engine};
use strongroom_engine::cancel::CancelToken;
use strongroom_engine::progress::{self, ProgressEvent, ProgressSink};
use strongroom_engine::report::Outcome;
use strongroom_engine::restore::{RestoreReport, RestoreRequest};
use strongroom_engine::task::{Credential, Task};
use strongroom_engine::ErrorCode;
use strongroom_graph::{AppCredential, AppSecret, Cloud, GraphClient, READ_ROLES};

mod support;
use support::*;

/// A 3.5 MB attachment (upload session), a small one and an inline image.
fn big_mime() -> Vec<u8> {
    let big: Vec<u8> = (0..3_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let b64 = |b: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(b);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    format!(
        "From: Ann Lee <ann@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: Big report\r\n\
Message-ID: <big-report@example.com>\r\nDate: Tue, 2 Jan 2024 09:30:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>See attached <img src=\"cid:logo\"></p>\r\n--outer\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n\
Content-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer\r\nContent-Type: application/pdf; name=\"small.pdf\"\r\n\
Content-Disposition: attachment; filename=\"small.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer\r\n\
Content-Type: application/zip; name=\"big.zip\"\r\nContent-Disposition: attachment; filename=\"big.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer--\r\n",
        b64(b"\x89PNG\r\n\x1a\nlogo"),
        b64(b"%PDF-1.4 small"),
        b64(&big)
    )
    .into_bytes()
}

struct Fixture {
    emu: Emulator,
    engine: Engine,
    task: Task,
    /// The admin (with the planted folder) and a second licensed user.
    source: String,
    other: String,
    graph: GraphClient,
}

/// A tenant with planted state, backed up once by a task connected with the emulator's app
/// (which may write) or, with `read_only`, with an app holding only the backup roles.
async fn fixture(dir: &Path, read_only: bool) -> Fixture {
    let emu = Emulator::start(Config {
        users: 2,
        messages_per_user: 12,
        seed: 77,
        ..Config::default()
    })
    .await
    .unwrap();
    let tenant = emu.tenant();
    let source = tenant.users[0].id.clone();
    let other = tenant.users[1].id.clone();
    let projects = emu
        .create_folder(&source, "Inbox", "Projects", false)
        .unwrap();
    let deep = emu.create_folder(&source, &projects, "Big", false).unwrap();
    let big = emu.add_message(&source, &deep, &big_mime()).unwrap();
    emu.update_message(
        &source,
        &big.id,
        &MessageUpdate {
            is_read: Some(true),
            subject: None,
            flag_status: Some("flagged".into()),
            categories: Some(vec!["Red category".into(), "Audit".into()]),
        },
    )
    .unwrap();
    let info = emu.info().clone();
    let (client_id, secret) = if read_only {
        let app = emu
            .register_app(&AppSpec {
                roles: READ_ROLES.iter().map(|r| (*r).to_owned()).collect(),
                ..AppSpec::default()
            })
            .unwrap();
        (app.client_id, app.client_secret)
    } else {
        (info.client_id.clone(), info.client_secret.clone())
    };
    let request = ConnectRequest {
        client_id,
        credential: Credential::Secret(secret),
        ..connect_request(&emu, auto_activate())
    };
    let (engine, task) = setup_request(dir, request, options()).await;
    let report = backup(&engine, &task).await;
    assert_eq!(
        report.outcome,
        Outcome::Success,
        "read roles suffice to back up"
    );
    let graph = admin_graph(&emu);
    Fixture {
        emu,
        engine,
        task,
        source,
        other,
        graph,
    }
}

/// A Graph client with the emulator's own app (every role): the test's eyes.
fn admin_graph(emu: &Emulator) -> GraphClient {
    let info = emu.info();
    let cloud = Cloud::new(&info.authority, &info.graph).unwrap();
    let credential = AppCredential::new(
        &cloud,
        &info.tenant_id,
        &info.client_id,
        AppSecret::Secret(info.client_secret.clone()),
    );
    GraphClient::new(&cloud, credential)
}

fn request(mailbox: &str) -> RestoreRequest {
    RestoreRequest {
        mailbox: mailbox.into(),
        folder: None,
        message: None,
        at: None,
        to: None,
        new_folder: false,
    }
}

async fn restore(engine: &Engine, request: &RestoreRequest) -> RestoreReport {
    engine
        .restore(request, progress::silent(), &CancelToken::new())
        .await
        .unwrap()
}

/// A message as compared between source and target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    internet_message_id: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    sent: Option<i64>,
    received: Option<i64>,
    is_read: Option<bool>,
    flag: Option<String>,
    categories: Vec<String>,
    has_attachments: Option<bool>,
    /// (name, size, BLAKE3 of the content, inline) of every attachment, sorted.
    attachments: Vec<(String, usize, String, bool)>,
    /// `In-Reply-To` and `References` of the MIME (`$value`), unfolded.
    thread: (Option<String>, Option<String>),
}

/// A message's threading headers, as its MIME gives them.
async fn thread_of(graph: &GraphClient, user: &str, id: &str) -> (Option<String>, Option<String>) {
    let mime = graph.message_mime(user, id, 64 << 20).await.unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&mime[..])
        .unwrap();
    let header = |name: &'static str| {
        let raw = parsed.header_raw(name)?;
        Some(raw.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    (header("In-Reply-To"), header("References"))
}

/// Folder path → messages, for every non-hidden, non-search folder that holds mail, read
/// through Graph. `under` keeps only paths below a prefix (and strips it).
async fn read_back(fx: &Fixture, user: &str, under: &str) -> BTreeMap<String, Vec<Seen>> {
    let tenant = fx.emu.tenant();
    let u = tenant.users.iter().find(|u| u.id == user).unwrap();
    let mut out = BTreeMap::new();
    for f in &u.mailbox.as_ref().unwrap().folders {
        if f.hidden || f.search_folder || f.messages.is_empty() {
            continue;
        }
        let Some(path) = f.path.strip_prefix(under) else {
            continue;
        };
        for m in &f.messages {
            assert!(
                !m.is_draft || f.path == "Drafts",
                "a restored message is a draft"
            );
        }
        let pages: Vec<_> = fx
            .graph
            .messages(user, &f.id, 100)
            .try_collect()
            .await
            .unwrap();
        let mut seen = Vec::new();
        for m in pages.into_iter().flat_map(|p| p.value) {
            let mut attachments = Vec::new();
            if f.messages.iter().any(|x| x.attachments > 0 && x.id == m.id)
                || m.has_attachments == Some(true)
            {
                for a in fx.graph.attachments(user, &m.id).await.unwrap() {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(a.content_bytes.unwrap_or_default())
                        .unwrap();
                    attachments.push((
                        a.name.unwrap_or_default(),
                        bytes.len(),
                        blake3::hash(&bytes).to_hex().to_string(),
                        a.is_inline == Some(true),
                    ));
                }
            }
            attachments.sort();
            let thread = thread_of(&fx.graph, user, &m.id).await;
            seen.push(Seen {
                internet_message_id: m.internet_message_id,
                subject: m.subject,
                from: m.from.and_then(|r| r.email_address.address),
                to: m
                    .to_recipients
                    .into_iter()
                    .filter_map(|r| r.email_address.address)
                    .collect(),
                sent: m.sent_date_time.map(|t| t.timestamp()),
                received: m.received_date_time.map(|t| t.timestamp()),
                is_read: m.is_read,
                flag: m.flag.and_then(|f| f.flag_status),
                categories: m.categories,
                has_attachments: m.has_attachments,
                attachments,
                thread,
            });
        }
        seen.sort();
        out.insert(path.to_owned(), seen);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_restored_to_another_mailbox_matches_the_source_and_reruns_skip() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path(), false).await;
    let source = read_back(&fx, &fx.source, "").await;
    let total: usize = source
        .iter()
        .filter(|(p, _)| *p != "Drafts")
        .map(|(_, m)| m.len())
        .sum();
    let big = source["Inbox/Projects/Big"][0].clone();
    assert_eq!(big.attachments.len(), 3);
    let replies = source.values().flatten().filter(|m| m.thread.0.is_some());
    assert!(replies.count() >= 2, "the tenant has replies to restore");
    assert!(big.attachments.iter().any(|a| a.1 == 3_500_000));

    let to_other = RestoreRequest {
        to: Some(fx.other.clone()),
        new_folder: true,
        ..request(&fx.source)
    };
    let report = restore(&fx.engine, &to_other).await;
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.failed);
    let folder = report.restore_folder.clone().unwrap();
    assert!(folder.starts_with("Restored 20"));
    let restored = read_back(&fx, &fx.other, &format!("{folder}/")).await;
    // Drafts come back as received mail: compare everything else field for field.
    let mut want = source.clone();
    let drafts = want.remove("Drafts").map(|d| d.len()).unwrap_or(0);
    let mut got = restored.clone();
    assert_eq!(got.remove("Drafts").map(|d| d.len()).unwrap_or(0), drafts);
    assert_eq!(
        got, want,
        "restored folders and messages differ from the source"
    );
    assert_eq!(report.restored as usize, total + drafts);
    assert!(report.folders_created >= 4);

    // Again: nothing new.
    let again = restore(&fx.engine, &to_other).await;
    assert_eq!(again.outcome, Outcome::Success);
    assert_eq!(again.restored, 0);
    assert_eq!(again.skipped, report.restored);
    assert_eq!(again.folders_created, 0);
    assert_eq!(
        read_back(&fx, &fx.other, &format!("{folder}/")).await,
        restored
    );

    // Into the other mailbox's own folders (well-known folders map to themselves).
    let before = read_back(&fx, &fx.other, "").await;
    let inbox_projects = RestoreRequest {
        to: Some(fx.other.clone()),
        folder: Some("Inbox/Projects".into()),
        ..request(&fx.source)
    };
    let report = restore(&fx.engine, &inbox_projects).await;
    assert_eq!(report.restored, 1);
    assert_eq!(
        report.folders_created, 2,
        "Inbox exists; Projects and Big are new"
    );
    let after = read_back(&fx, &fx.other, "").await;
    assert_eq!(after["Inbox/Projects/Big"], vec![big]);
    assert_eq!(after["Inbox"], before["Inbox"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_snapshot_brings_back_deleted_mail_into_the_original_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path(), false).await;
    let first = fx.engine.snapshots().unwrap().last().unwrap().id.clone();
    let original = read_back(&fx, &fx.source, "").await;

    // The tenant changes: a folder tree and an Inbox message are deleted, another message is
    // marked read and recategorised; a backup records that.
    let tenant = fx.emu.tenant();
    let folders = &tenant.users[0].mailbox.as_ref().unwrap().folders;
    let inbox = folders.iter().find(|f| f.path == "Inbox").unwrap();
    let victim = inbox.messages[0].clone();
    fx.emu.delete_message(&fx.source, &victim.id).unwrap();
    fx.emu.delete_folder(&fx.source, "Inbox/Projects").unwrap();
    let changed = &inbox.messages[1];
    fx.emu
        .update_message(
            &fx.source,
            &changed.id,
            &MessageUpdate {
                is_read: Some(!changed.is_read),
                subject: None,
                flag_status: Some("complete".into()),
                categories: Some(vec!["Later".into()]),
            },
        )
        .unwrap();
    fx.engine
        .backup(&fx.task, progress::silent())
        .await
        .unwrap();
    let now = fx.engine.snapshots().unwrap().last().unwrap().id.clone();
    assert_ne!(now, first);

    // The newest snapshot no longer has the folder.
    let missing = fx
        .engine
        .restore(
            &RestoreRequest {
                folder: Some("Inbox/Projects".into()),
                ..request(&fx.source)
            },
            progress::silent(),
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    // From the first snapshot, the Inbox tree goes back to its original paths.
    let report = restore(
        &fx.engine,
        &RestoreRequest {
            folder: Some("Inbox".into()),
            at: Some(first[..12].to_owned()),
            ..request(&fx.source)
        },
    )
    .await;
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.failed);
    assert_eq!(
        report.restored, 2,
        "the deleted message and the deleted folder's one"
    );
    assert_eq!(report.folders_created, 2, "Projects and Big");
    let in_inbox_tree: u64 = fx
        .engine
        .folders(&fx.source, Some(&first))
        .unwrap()
        .iter()
        .filter(|f| f.path == "Inbox" || f.path.starts_with("Inbox/"))
        .map(|f| f.messages)
        .sum();
    assert_eq!(
        report.skipped,
        in_inbox_tree - 2,
        "what is still there is skipped"
    );
    let back = read_back(&fx, &fx.source, "").await;
    assert_eq!(back["Inbox/Projects/Big"], original["Inbox/Projects/Big"]);
    // The Inbox is whole again; the changed message kept its new state (it was skipped).
    assert_eq!(back["Inbox"].len(), original["Inbox"].len());
    let unchanged = back["Inbox"]
        .iter()
        .filter(|m| original["Inbox"].contains(m))
        .count();
    assert_eq!(unchanged, original["Inbox"].len() - 1);

    // One message, into "Restored <date>" of the same mailbox.
    let one = fx
        .engine
        .messages(&fx.source, Some("Inbox"), Some(&first))
        .unwrap()[0]
        .entry
        .id
        .clone();
    let report = restore(
        &fx.engine,
        &RestoreRequest {
            message: Some(one),
            at: Some(first.clone()),
            new_folder: true,
            ..request(&fx.source)
        },
    )
    .await;
    assert_eq!(report.restored, 1);
    let folder = report.restore_folder.unwrap();
    let restored = read_back(&fx, &fx.source, &format!("{folder}/")).await;
    assert_eq!(restored.keys().collect::<Vec<_>>(), vec!["Inbox"]);
    assert_eq!(restored["Inbox"].len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_app_is_asked_for_the_restore_permission_then_restores() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path(), true).await;
    let req = RestoreRequest {
        folder: Some("Inbox/Projects".into()),
        to: Some(fx.other.clone()),
        ..request(&fx.source)
    };
    let refused = fx
        .engine
        .restore(&req, progress::silent(), &CancelToken::new())
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::RestorePermissionNeeded);
    assert!(refused.message.contains("grant-restore"));

    // The admin signs in (the emulator's public client, loopback redirect) and consents.
    let info = fx.emu.info().clone();
    let grant = fx
        .engine
        .begin_grant_restore(&fx.task, Some(&info.client_id), "http://127.0.0.1:53682/")
        .unwrap();
    let landed = fx.emu.sign_in_as_admin(&grant.url).await.unwrap();
    let granted = fx
        .engine
        .finish_grant_restore(grant, &landed)
        .await
        .unwrap();
    assert!(granted.contains(&"Mail.ReadWrite".to_string()));
    let report = restore(&fx.engine, &req).await;
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.failed);
    assert_eq!(report.restored, 1);
    let back = read_back(&fx, &fx.other, "").await;
    assert_eq!(back["Inbox/Projects/Big"][0].attachments.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_between_whole_messages() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path(), false).await;
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = events.clone();
    let sink: ProgressSink = std::sync::Arc::new(move |e: &ProgressEvent| {
        log.lock().unwrap().push(e.clone());
        if let ProgressEvent::Overall(o) = e {
            if o.items >= 3 {
                trigger.cancel();
            }
        }
    });
    let report = fx
        .engine
        .restore(
            &RestoreRequest {
                to: Some(fx.other.clone()),
                new_folder: true,
                ..request(&fx.source)
            },
            sink,
            &cancel,
        )
        .await
        .unwrap();
    assert!(report.cancelled);
    assert_eq!(report.outcome, Outcome::Partial);
    assert_eq!(report.restored, 3);
    let folder = report.restore_folder.unwrap();
    let restored = read_back(&fx, &fx.other, &format!("{folder}/")).await;
    assert_eq!(restored.values().map(Vec::len).sum::<usize>(), 3);
    let events = events.lock().unwrap();
    assert!(matches!(events[0], ProgressEvent::MailboxStarted { .. }));
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::MailboxFinished { ok: false, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attachment_leaves_no_half_message_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path(), false).await;
    // The large attachment's upload session cannot be created, once.
    fx.emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::GatewayTimeout,
            path_contains: Some("createUploadSession".into()),
        },
        1,
    );
    let req = RestoreRequest {
        folder: Some("Inbox".into()),
        to: Some(fx.other.clone()),
        new_folder: true,
        ..request(&fx.source)
    };
    let report = restore(&fx.engine, &req).await;
    assert_eq!(report.outcome, Outcome::Partial);
    assert_eq!(report.failed.len(), 1);
    assert!(report.restored > 0);
    let folder = report.restore_folder.clone().unwrap();
    let partial = read_back(&fx, &fx.other, &format!("{folder}/")).await;
    assert!(
        !partial.contains_key("Inbox/Projects/Big"),
        "the message whose attachment failed was removed again"
    );

    let rerun = restore(&fx.engine, &req).await;
    assert_eq!(rerun.outcome, Outcome::Success, "{:?}", rerun.failed);
    assert_eq!(rerun.restored, 1);
    assert_eq!(rerun.skipped, report.restored);
    let source = read_back(&fx, &fx.source, "Inbox/Projects/").await;
    let restored = read_back(&fx, &fx.other, &format!("{folder}/Inbox/Projects/")).await;
    assert_eq!(restored, source);
}
