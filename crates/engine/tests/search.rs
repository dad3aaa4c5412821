//! Search end to end against the emulator: planted messages are found by free text and by
//! every filter, newest first and paged; a message deleted from the tenant is still found and
//! marked; a crash between the catalog and the search commit is repaired; rebuild recreates
//! the same results; turning search off deletes the index; no planted word reaches the disk.

use std::path::Path;
use std::time::Duration;

use m365_emulator::{Config, Emulator, MessageIds};
use strongroom_engine::api::{ConnectRequest, Engine};
use strongroom_engine::report::Outcome;
use strongroom_engine::search::{SearchHit, SearchIndex, SearchQuery, SearchResults};
use strongroom_engine::task::Task;
use strongroom_engine::ErrorCode;

mod support;
use support::options;

/// A new archive with one task that activates every mailbox (search is on by default).
async fn setup(emu: &Emulator, dir: &Path) -> (Engine, Task) {
    support::setup(emu, dir, support::auto_activate()).await
}

async fn backup(engine: &Engine, task: &Task) {
    let report = support::backup(engine, task).await;
    assert_eq!(report.outcome, Outcome::Success);
}

fn search(engine: &Engine, query: &str) -> SearchResults {
    engine
        .search(&SearchQuery {
            query: query.into(),
            page: 1,
            page_size: 100,
        })
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The message ids a query finds, in result order.
fn ids(engine: &Engine, query: &str) -> Vec<String> {
    search(engine, query)
        .hits
        .into_iter()
        .map(|h| h.message_id)
        .collect()
}

fn hit(engine: &Engine, query: &str, id: &str) -> SearchHit {
    search(engine, query)
        .hits
        .into_iter()
        .find(|h| h.message_id == id)
        .unwrap_or_else(|| panic!("{query} does not find the message"))
}

/// Three planted messages in two mailboxes, ten days apart. Every fact is unique to them.
struct Planted {
    alice: String,
    bob: String,
    /// Alice's Inbox: HTML body, a PDF attachment, a Cc.
    plumbus: MessageIds,
    /// Bob's "Projects Xyzzy": a Bcc and a CSV attachment whose text is indexed.
    numbers: MessageIds,
    /// Alice's Inbox, ten days later, no attachment.
    lunch: MessageIds,
}

const CANARIES: &[&str] = &[
    "wubbalubba",
    "gazorpazorp",
    "Plumbus inventory",
    "zelda.quartz@fabrikam.com",
    "Zelda Quartz",
    "secret.bcc@northwind.com",
    "carol.cc@fabrikam.com",
    "Projects Xyzzy",
    "plumbus-specs.pdf",
    "figures-q3.csv",
];

async fn planted_tenant() -> (Emulator, Planted) {
    let emu = Emulator::start(Config {
        users: 3,
        messages_per_user: 5,
        seed: 61,
        ..Config::default()
    })
    .await
    .unwrap();
    let tenant = emu.tenant();
    let mut users = tenant
        .users
        .iter()
        .filter(|u| u.mailbox.is_some() && u.licensed)
        .map(|u| u.user_principal_name.clone());
    let alice = users.next().unwrap();
    let bob = users.next().unwrap();
    let day = Duration::from_secs(24 * 3600);
    let plumbus = emu
        .add_message(
            &alice,
            "inbox",
            format!(
                "From: Zelda Quartz <zelda.quartz@fabrikam.com>\r\nTo: {alice}\r\nCc: carol.cc@fabrikam.com\r\nSubject: Plumbus inventory\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><body><p>The <b>wubbalubba</b> report is ready.</p></body></html>\r\n--b\r\nContent-Type: application/pdf; name=\"plumbus-specs.pdf\"\r\nContent-Disposition: attachment; filename=\"plumbus-specs.pdf\"\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    emu.advance_clock(10 * day);
    let numbers = emu
        .add_message(
            &bob,
            "Inbox/Projects Xyzzy",
            format!(
                "From: Yuri K <yuri.k@northwind.com>\r\nTo: {bob}\r\nBcc: secret.bcc@northwind.com\r\nSubject: Quarterly wubbalubba numbers\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe numbers are attached.\r\n--b\r\nContent-Type: text/csv; name=\"figures-q3.csv\"\r\nContent-Disposition: attachment; filename=\"figures-q3.csv\"\r\n\r\nregion,gazorpazorp\r\nnorth,42\r\n--b--\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    emu.advance_clock(10 * day);
    let lunch = emu
        .add_message(
            &alice,
            "inbox",
            format!(
                "From: Zelda Quartz <zelda.quartz@fabrikam.com>\r\nTo: {alice}\r\nSubject: Lunch\r\nContent-Type: text/plain\r\n\r\nNo attachments, just wubbalubba.\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    (
        emu,
        Planted {
            alice,
            bob,
            plumbus,
            numbers,
            lunch,
        },
    )
}

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_and_every_filter_find_the_planted_messages_newest_first() {
    let (emu, p) = planted_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path()).await;
    backup(&engine, &task).await;
    let [plumbus, numbers, lunch] =
        [&p.plumbus, &p.numbers, &p.lunch].map(|m| m.immutable_id.as_str());

    // Free text reaches subject, HTML body and attachment names and text; newest first.
    assert_eq!(ids(&engine, "wubbalubba"), [lunch, numbers, plumbus]);
    assert_eq!(ids(&engine, "plumbus-specs.pdf"), [plumbus]);
    assert_eq!(ids(&engine, "gazorpazorp"), [numbers]);
    assert_eq!(ids(&engine, "wubbalubba report"), [plumbus]);
    assert_eq!(ids(&engine, "\"wubbalubba report\""), [plumbus]);
    assert!(ids(&engine, "\"report wubbalubba\"").is_empty());
    // Fields narrow: the word is in numbers' subject but only in the others' bodies.
    assert_eq!(ids(&engine, "subject:wubbalubba"), [numbers]);
    assert_eq!(ids(&engine, "subject:\"plumbus inventory\""), [plumbus]);
    assert_eq!(
        ids(&engine, "from:zelda.quartz@fabrikam.com"),
        [lunch, plumbus]
    );
    assert_eq!(ids(&engine, "from:yuri"), [numbers]);
    assert_eq!(ids(&engine, "to:carol.cc@fabrikam.com"), [plumbus]);
    assert_eq!(ids(&engine, "to:secret.bcc@northwind.com"), [numbers]);
    assert_eq!(
        ids(&engine, "wubbalubba has:attachment"),
        [numbers, plumbus]
    );
    assert_eq!(
        ids(&engine, &format!("wubbalubba mailbox:{}", p.alice)),
        [lunch, plumbus]
    );
    assert_eq!(
        ids(&engine, &format!("wubbalubba mailbox:{}", p.bob)),
        [numbers]
    );
    assert_eq!(ids(&engine, "folder:\"projects xyzzy\""), [numbers]);
    assert_eq!(
        ids(&engine, "wubbalubba folder:inbox"),
        [lunch, numbers, plumbus]
    );

    // Dates: ten days apart, so day boundaries separate them.
    let t = |id: &str| hit(&engine, "wubbalubba", id).date_ms;
    let (t1, t2, t3) = (t(plumbus), t(numbers), t(lunch));
    assert!(t1 < t2 && t2 < t3);
    assert_eq!(
        ids(&engine, &format!("wubbalubba after:{}", day_of(t2))),
        [lunch, numbers]
    );
    assert_eq!(
        ids(&engine, &format!("wubbalubba before:{}", day_of(t2))),
        [plumbus]
    );
    assert_eq!(
        ids(
            &engine,
            &format!("wubbalubba after:{} before:{}", day_of(t2), day_of(t3))
        ),
        [numbers]
    );
    let bad = engine.search(&SearchQuery::new("before:soon")).unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidArgument);

    // What a hit carries.
    let h = hit(&engine, "wubbalubba", plumbus);
    assert_eq!(h.mailbox, p.alice);
    assert_eq!(h.folder_path, "Inbox");
    assert_eq!(h.subject, "Plumbus inventory");
    assert!(h.from.contains("zelda.quartz@fabrikam.com"));
    assert!(h.has_attachments && h.size > 200);
    assert_eq!(h.deleted_ms, None);
    assert!(h.snippet.contains("wubbalubba report"), "{}", h.snippet);
    assert!(!h.snippet.contains('<'), "HTML stripped: {}", h.snippet);
    let newest = engine.snapshots().unwrap().last().unwrap().id.clone();
    assert_eq!(h.snapshot_id, newest);
    let n = hit(&engine, "gazorpazorp", numbers);
    assert_eq!(n.folder_path, "Inbox/Projects Xyzzy");
    assert_eq!(n.mailbox, p.bob);

    // Pages of two.
    let page = |n| {
        engine
            .search(&SearchQuery {
                query: "wubbalubba".into(),
                page: n,
                page_size: 2,
            })
            .unwrap()
    };
    let (one, two) = (page(1), page(2));
    assert_eq!((one.total, two.total), (3, 3));
    assert_eq!(
        one.hits
            .iter()
            .chain(&two.hits)
            .map(|h| &h.message_id)
            .collect::<Vec<_>>(),
        [lunch, numbers, plumbus]
    );
    assert!(page(3).hits.is_empty());
    // Every message of the tenant is indexed: an empty query lists them all.
    let all = search(&engine, "").total;
    let archived: usize = [&p.alice, &p.bob]
        .iter()
        .map(|u| engine.messages(u, None, None).unwrap().len())
        .sum();
    assert!(
        all as usize >= archived && archived >= 10,
        "{all} / {archived}"
    );

    drop(engine);
    assert_no_plaintext(dir.path(), CANARIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_messages_stay_found_crashes_are_repaired_rebuild_matches_and_off_deletes() {
    let (emu, p) = planted_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path()).await;
    backup(&engine, &task).await;
    let [plumbus, numbers, lunch] =
        [&p.plumbus, &p.numbers, &p.lunch].map(|m| m.immutable_id.as_str());
    let first = engine.snapshots().unwrap().last().unwrap().clone();

    // Deleted from the tenant, moved within it: still found, marked, at its new place.
    emu.delete_message(&p.alice, &p.plumbus.id).unwrap();
    emu.move_message(&p.bob, &p.numbers.id, "archive").unwrap();
    backup(&engine, &task).await;
    let second = engine.snapshots().unwrap().last().unwrap().clone();
    assert_eq!(ids(&engine, "wubbalubba"), [lunch, numbers, plumbus]);
    let gone = hit(&engine, "wubbalubba", plumbus);
    let deleted = gone.deleted_ms.expect("marked deleted");
    assert!(deleted > first.time_ms && deleted <= second.time_ms);
    // It can be browsed (and so restored) from the snapshot the hit names.
    assert!(engine
        .messages(&p.alice, None, Some(&gone.snapshot_id))
        .unwrap()
        .iter()
        .any(|m| m.entry.id == plumbus));
    assert!(engine
        .messages(&p.alice, None, None)
        .unwrap()
        .iter()
        .all(|m| m.entry.id != plumbus));
    let moved = hit(&engine, "wubbalubba", numbers);
    assert_eq!(
        (moved.folder_path.as_str(), moved.deleted_ms),
        ("Archive", None)
    );
    assert_eq!(moved.snapshot_id, second.id);
    assert_eq!(hit(&engine, "wubbalubba", lunch).deleted_ms, None);

    // A crash after the catalog transaction but before the search commit: the index files
    // are as they were before the run (the run's new segment files stay behind, unused).
    let files = dir.path().join("files");
    let saved = read_tree(&files);
    emu.advance_clock(Duration::from_secs(60));
    let late = emu
        .add_message(
            &p.bob,
            "inbox",
            b"From: x@northwind.com\r\nSubject: Late wubbalubba\r\nContent-Type: text/plain\r\n\r\nhi\r\n",
        )
        .unwrap();
    backup(&engine, &task).await;
    drop(engine);
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    let engine = Engine::open(dir.path(), "pw", options()).unwrap();
    let third = engine.snapshots().unwrap().last().unwrap().clone();
    let state = SearchIndex::open_or_create(engine.archive())
        .unwrap()
        .state()
        .unwrap();
    assert_eq!(
        state.latest(task.id),
        Some(second.id.as_str()),
        "index is behind"
    );
    // While another process holds the archive's write lock (a backup), search answers from
    // the index as it is, without writing to it.
    let other_process = engine.archive().writer().unwrap();
    assert_eq!(ids(&engine, "wubbalubba"), [lunch, numbers, plumbus]);
    drop(other_process);
    // Then the next search indexes what the index missed.
    assert_eq!(
        ids(&engine, "wubbalubba"),
        [late.immutable_id.as_str(), lunch, numbers, plumbus]
    );
    assert_eq!(hit(&engine, "wubbalubba", lunch).snapshot_id, third.id);
    // The index's files (orphans of the crash included) are sound archive files.
    assert!(engine.verify(true).unwrap().ok);

    // Rebuild recreates the index from the archive alone, with the same answers.
    let queries = [
        "wubbalubba",
        "",
        "has:attachment",
        "folder:archive",
        "from:zelda.quartz@fabrikam.com",
    ];
    let before: Vec<SearchResults> = queries.iter().map(|q| search(&engine, q)).collect();
    engine.rebuild().unwrap();
    let after: Vec<SearchResults> = queries.iter().map(|q| search(&engine, q)).collect();
    assert_eq!(before, after);

    // Turning the option off deletes the index; search then says it is off.
    let mut settings = task.settings.clone();
    settings.index_for_search = false;
    engine.update_settings(&task, &settings).unwrap();
    assert!(!SearchIndex::exists(engine.archive()).unwrap());
    assert_eq!(
        engine
            .search(&SearchQuery::new("wubbalubba"))
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    // Only the orphans of the simulated crash are left, and nothing new is indexed.
    let left = read_tree(&files).len();
    backup(&engine, &engine.task(None).unwrap()).await;
    assert_eq!(read_tree(&files).len(), left);
    assert!(!SearchIndex::exists(engine.archive()).unwrap());
}

fn read_tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out
}

fn assert_no_plaintext(dir: &Path, secrets: &[&str]) {
    let files = read_tree(dir);
    assert!(
        files
            .iter()
            .filter(|(p, _)| p.starts_with(dir.join("files")))
            .count()
            > 3,
        "the index wrote its files"
    );
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for s in secrets {
            assert!(
                !text.contains(&s.to_lowercase()),
                "{s:?} in plaintext in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_search_off_for_one_task_keeps_the_others() {
    let (emu, _) = planted_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, first) = setup(&emu, dir.path()).await;
    let second = engine
        .connect(ConnectRequest {
            name: "Contoso again".into(),
            ..support::connect_request(&emu, first.settings.clone())
        })
        .await
        .unwrap();
    backup(&engine, &first).await;
    backup(&engine, &second).await;
    let tasks = |r: SearchResults| r.hits.iter().map(|h| h.task_id).collect::<Vec<_>>();
    let mut both = tasks(search(&engine, "wubbalubba"));
    both.sort();
    assert_eq!(
        both,
        [first.id, first.id, first.id, second.id, second.id, second.id]
    );
    let mut settings = first.settings.clone();
    settings.index_for_search = false;
    engine.update_settings(&first, &settings).unwrap();
    assert!(SearchIndex::exists(engine.archive()).unwrap());
    assert_eq!(
        tasks(search(&engine, "wubbalubba")),
        [second.id, second.id, second.id]
    );
    // Back on: the task's snapshots are indexed again.
    settings.index_for_search = true;
    engine.update_settings(&first, &settings).unwrap();
    assert_eq!(search(&engine, "wubbalubba").total, 6);
}
