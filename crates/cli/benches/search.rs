//! Search benchmark: Strongroom's encrypted tantivy index vs notmuch (Xapian) on the same
//! messages.
//!
//! ```text
//! cargo bench -p strongroom-cli --bench search -- [--quick] [--messages N] [--keep DIR]
//! ```
//!
//! A generated tenant (in-process emulator) is backed up with search off; then, in the same
//! run and on the same machine:
//! - **index build**: Strongroom indexes the archive (decrypting each message from its packs,
//!   writing the encrypted index) vs `notmuch new` on the same MIME written out as a maildir
//!   (plaintext files, plaintext database);
//! - **query latency**: each query of a fixed set, as a fresh process per query (the way a
//!   script calls either tool: `strongroom search --json` vs `notmuch search --format=json
//!   --limit=20`), and in-process through `Engine::search` (the desktop app's path).
//!
//! It prints rates, p50/p95 latencies and the ratios, and last a JSON line. The archive uses
//! the tests' cheap KDF, so opening it costs no Argon2 time (the app opens it once per
//! session). Default 100 000 messages in the archive; `--quick` 10 000. Attachments are the
//! emulator's `Attachments::Small` (2–30 KB, a third of them text): search reads attachment
//! names and text, so realistic multi-MB binaries would only fill the disk (100 000 messages
//! would need about 25 GB of maildir, as much again of archive).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use m365_emulator::{Attachments, Config, Emulator};
use strongroom_archive::KdfParams;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::search::SearchQuery;
use strongroom_engine::snapshot_view::{self, MailboxView};
use strongroom_engine::task::{Credential, TaskSettings};

const PASSPHRASE: &str = "benchmark passphrase";
const USERS: usize = 50;
/// The generated users whose mailbox the backup takes (the others are the kinds without one).
const MAILBOXES: usize = 40;
/// Each query runs this many times per tool.
const REPEATS: usize = 15;

struct Args {
    messages: usize,
    keep: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 100_000,
        keep: None,
    };
    let mut quick = false;
    let mut messages = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--messages" => messages = it.next().and_then(|n| n.parse().ok()),
            "--keep" => a.keep = it.next().map(PathBuf::from),
            _ => {} // `cargo bench` adds `--bench`.
        }
    }
    a.messages = messages.unwrap_or(if quick { 10_000 } else { 100_000 });
    a
}

fn main() {
    let args = args();
    if Command::new("notmuch").arg("--version").output().is_err() {
        eprintln!("notmuch is not installed (apt-get install -y notmuch): nothing to compare with");
        std::process::exit(2);
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = args.keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&work).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let archive = work.join("archive");
    let started = Instant::now();
    let messages = runtime.block_on(back_up(&archive, args.messages));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split(' ').next().unwrap_or("?").to_owned();
    eprintln!(
        "backed up {messages} messages in {:.0} s (not measured)",
        started.elapsed().as_secs_f64()
    );

    let engine = Engine::open(&archive, PASSPHRASE, EngineOptions::default()).unwrap();
    let maildir = work.join("maildir");
    let (files, mime_bytes) = write_maildir(&engine, &maildir);
    println!(
        "input: {files} messages, {:.1} MB of MIME ({:.1} KB each on average), {MAILBOXES} mailboxes; load average {load}",
        mime_bytes as f64 / 1e6,
        mime_bytes as f64 / files as f64 / 1e3
    );

    // Index build.
    let task = engine.task(None).unwrap();
    let mut settings = task.settings.clone();
    settings.index_for_search = true;
    engine.update_settings(&task, &settings).unwrap();
    let t = Instant::now();
    let summary = engine.index_for_search().unwrap();
    let ours = t.elapsed().as_secs_f64();
    assert_eq!(summary.documents as usize, files);
    let notmuch_config = notmuch_setup(&work, &maildir);
    let t = Instant::now();
    let out = notmuch(&notmuch_config)
        .args(["new", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = t.elapsed().as_secs_f64();
    let our_bytes = du(&archive.join("files"));
    let their_bytes = du(&maildir.join(".notmuch"));
    println!();
    println!(
        "{:<12} {:>9} {:>12} {:>10}",
        "index build", "seconds", "messages/s", "index MB"
    );
    for (name, secs, bytes) in [
        ("strongroom", ours, our_bytes),
        ("notmuch", theirs, their_bytes),
    ] {
        println!(
            "{name:<12} {secs:>9.2} {:>12.0} {:>10.1}",
            files as f64 / secs,
            bytes as f64 / 1e6
        );
    }
    println!(
        "build rate: strongroom/notmuch = {:.2}x; index size {:.2}x",
        theirs / ours,
        our_bytes as f64 / their_bytes as f64
    );
    drop(engine);

    // Query latency.
    let engine = Engine::open(&archive, PASSPHRASE, EngineOptions::default()).unwrap();
    let queries = queries(&engine);
    println!();
    println!(
        "{:<44} {:>7} {:>7} | {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9}",
        "query (strongroom)",
        "hits",
        "nm",
        "cli p50",
        "cli p95",
        "nm p50",
        "nm p95",
        "app p50",
        "app p95"
    );
    let (mut cli_all, mut nm_all, mut app_all) = (Vec::new(), Vec::new(), Vec::new());
    for (ours_q, theirs_q) in &queries {
        let hits = engine.search(&SearchQuery::new(ours_q)).unwrap().total;
        let count = String::from_utf8(
            notmuch(&notmuch_config)
                .args(["count", theirs_q])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let (mut cli, mut nm, mut app) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            let t = Instant::now();
            let out = strongroom(&archive)
                .args(["search", "--json", ours_q])
                .output()
                .unwrap();
            cli.push(t.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let t = Instant::now();
            let out = notmuch(&notmuch_config)
                .args(["search", "--format=json", "--limit=20", theirs_q])
                .output()
                .unwrap();
            nm.push(t.elapsed());
            assert!(out.status.success());
            let t = Instant::now();
            engine.search(&SearchQuery::new(ours_q)).unwrap();
            app.push(t.elapsed());
        }
        println!(
            "{:<44} {:>7} {:>7} | {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9}",
            truncate(ours_q, 44),
            hits,
            count.trim(),
            ms(pct(&mut cli, 50)),
            ms(pct(&mut cli, 95)),
            ms(pct(&mut nm, 50)),
            ms(pct(&mut nm, 95)),
            ms(pct(&mut app, 50)),
            ms(pct(&mut app, 95)),
        );
        cli_all.extend(cli);
        nm_all.extend(nm);
        app_all.extend(app);
    }
    let (c50, c95) = (pct(&mut cli_all, 50), pct(&mut cli_all, 95));
    let (n50, n95) = (pct(&mut nm_all, 50), pct(&mut nm_all, 95));
    let (a50, a95) = (pct(&mut app_all, 50), pct(&mut app_all, 95));
    println!(
        "all queries: strongroom CLI p50 {} p95 {}; notmuch CLI p50 {} p95 {}; in-process p50 {} p95 {}",
        ms(c50),
        ms(c95),
        ms(n50),
        ms(n95),
        ms(a50),
        ms(a95)
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "latency ratio strongroom/notmuch (process per query): p50 {:.2}x, p95 {:.2}x; in-process strongroom/notmuch process: p50 {:.2}x, p95 {:.2}x",
        ratio(c50, n50),
        ratio(c95, n95),
        ratio(a50, n50),
        ratio(a95, n95),
    );
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let ms3 = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "search", "messages": files, "mime_mb": r2(mime_bytes as f64 / 1e6),
            "strongroom_index_s": r2(ours), "notmuch_index_s": r2(theirs),
            "strongroom_msg_s": (files as f64 / ours).round(),
            "notmuch_msg_s": (files as f64 / theirs).round(),
            "build_rate_ratio": r2(theirs / ours),
            "strongroom_index_mb": r2(our_bytes as f64 / 1e6),
            "notmuch_index_mb": r2(their_bytes as f64 / 1e6),
            "cli_p50_ms": ms3(c50), "cli_p95_ms": ms3(c95),
            "notmuch_p50_ms": ms3(n50), "notmuch_p95_ms": ms3(n95),
            "app_p50_ms": ms3(a50), "app_p95_ms": ms3(a95),
            "cli_ratio_p50": r2(ratio(c50, n50)), "cli_ratio_p95": r2(ratio(c95, n95)),
            "app_ratio_p50": r2(ratio(a50, n50)), "app_ratio_p95": r2(ratio(a95, n95)),
            "load_before": load, "load_after": load_after.split(' ').next().unwrap_or("?"),
        })
    );
}

/// Generates the tenant and backs every mailbox up with search off; returns the messages.
async fn back_up(archive: &Path, messages: usize) -> u64 {
    let emu = Emulator::start(Config {
        users: USERS,
        messages_per_user: messages.div_ceil(MAILBOXES),
        seed: 7,
        attachments: Attachments::Small,
        ..Config::default()
    })
    .await
    .unwrap();
    let engine = Engine::init(
        archive,
        PASSPHRASE,
        KdfParams::insecure_for_tests(),
        EngineOptions::default(),
    )
    .unwrap();
    let info = emu.info();
    engine
        .connect(ConnectRequest {
            name: "Bench".into(),
            tenant_id: info.tenant_id.clone(),
            client_id: info.client_id.clone(),
            credential: Credential::Secret(info.client_secret.clone()),
            authority: Some(info.authority.clone()),
            graph_url: Some(info.graph.clone()),
            settings: TaskSettings {
                index_for_search: false,
                backup_unlicensed: true,
                auto_activate_new: true,
                ..TaskSettings::default()
            },
        })
        .await
        .unwrap();
    let task = engine.task(None).unwrap();
    let report = engine
        .backup(&task, strongroom_engine::progress::silent())
        .await
        .unwrap();
    assert_eq!(report.mailboxes.len(), MAILBOXES);
    let total = report.mailboxes.iter().map(|m| m.messages).sum();
    emu.shutdown().await;
    total
}

/// Writes every message of the newest snapshot as a maildir file; returns (files, bytes).
fn write_maildir(engine: &Engine, maildir: &Path) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let snapshot = engine.snapshots().unwrap().last().unwrap().id.clone();
    let task = engine.task(None).unwrap();
    for (n, account) in engine.accounts(&task).unwrap().iter().enumerate() {
        let Ok(view) = MailboxView::open(engine.archive(), Some(&snapshot), &account.user_id)
        else {
            continue;
        };
        let cur = maildir.join(format!("m{n}")).join("cur");
        std::fs::create_dir_all(&cur).unwrap();
        std::fs::create_dir_all(maildir.join(format!("m{n}/new"))).unwrap();
        std::fs::create_dir_all(maildir.join(format!("m{n}/tmp"))).unwrap();
        for (i, m) in view.all_messages().iter().enumerate() {
            let mime = snapshot_view::message_mime(engine.archive(), &m.entry).unwrap();
            bytes += mime.len() as u64;
            std::fs::write(cur.join(format!("{i}.bench:2,S")), mime).unwrap();
            files += 1;
        }
    }
    (files, bytes)
}

fn notmuch_setup(work: &Path, maildir: &Path) -> PathBuf {
    let config = work.join("notmuch-config");
    std::fs::write(
        &config,
        format!(
            "[database]\npath={}\n[user]\nname=Bench\nprimary_email=bench@example.com\n[new]\ntags=inbox;\nignore=\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n",
            maildir.display()
        ),
    )
    .unwrap();
    config
}

fn notmuch(config: &Path) -> Command {
    let mut c = Command::new("notmuch");
    c.env("NOTMUCH_CONFIG", config);
    c
}

fn strongroom(archive: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    c.env("STRONGROOM_ARCHIVE", archive)
        .env("STRONGROOM_PASSPHRASE", PASSPHRASE);
    c
}

/// The query set, in both languages, with an address and dates taken from the data.
fn queries(engine: &Engine) -> Vec<(String, String)> {
    let sample = engine
        .search(&SearchQuery {
            query: String::new(),
            page: 1,
            page_size: 1000,
        })
        .unwrap();
    let from = sample
        .hits
        .iter()
        .find_map(|h| {
            let start = h.from.find('<')? + 1;
            let end = h.from.find('>')?;
            Some(h.from[start..end].to_owned())
        })
        .expect("a sender address");
    let to = sample.hits[0].mailbox.clone();
    let mut dates: Vec<i64> = sample.hits.iter().map(|h| h.date_ms).collect();
    dates.sort();
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let mid = day(dates[dates.len() / 2]);
    [
        ("budget", "budget"),
        ("shipment delayed", "shipment and delayed"),
        ("\"press gather\"", "\"press gather\""),
        ("subject:contract", "subject:contract"),
        (&format!("from:{from}"), &format!("from:{from}")),
        (&format!("to:{to}"), &format!("to:{to}")),
        ("has:attachment", "tag:attachment"),
        ("attachment:orders", "attachment:orders"),
        ("toner", "toner"),
        (
            &format!("figures after:{mid}"),
            &format!("figures and date:{mid}.."),
        ),
        ("nonexistentwordzz", "nonexistentwordzz"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn pct(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) * p).div_ceil(100)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn du(path: &Path) -> u64 {
    if path.is_file() {
        return path.metadata().map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|rd| rd.filter_map(Result::ok).map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}
