//! Throttle-bound: many mailboxes, each with Outlook's per-(app, mailbox) limits scaled down
//! (a request budget per sliding window, 4 concurrent requests) and added latency, so that the
//! budget, not the CPU or the emulator, bounds the backup. The emulator's counters give the
//! requests it admitted per mailbox; a poller records when each mailbox's count first and
//! last moved.
//!
//! The limit is the most the emulator's sliding window can admit: in `t` seconds one mailbox
//! takes at most `budget × (t / window + 1)` requests (a full window at once, then `budget`
//! per `window`). Two ratios:
//! - **tenant**: admitted requests over the whole backup ÷ that limit for every mailbox over
//!   the backup's wall time: how close the run came to what the tenant allows (target ≥ 0.9);
//! - **per mailbox**: the same while each mailbox was being backed up (first to last request):
//!   how well the governor and Retry-After handling use one mailbox's budget.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::path::Path;

use m365_emulator::{Config, Emulator, ReadyInfo, Throttle};
use strongroom_archive::KdfParams;
use strongroom_engine::accounts::Selection;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::backup::BackupOptions;
use strongroom_engine::progress;
use strongroom_engine::report::MailboxStatus;
use strongroom_engine::task::{Credential, Task, TaskSettings};

use crate::strongroom::Archive;
use crate::Args;

/// Scaled budget: 5 requests per second per mailbox in a 1 s sliding window (Microsoft's is
/// 10,000 per 600 s, 16.7/s). A run lasts many windows, as a real one lasts many 10-minute
/// windows. It is below the client's own pacing (9,600 per 600 s), so the emulator's 429s
/// and their Retry-After pace the client, as when Microsoft's budget is tighter than documented.
const BUDGET: u32 = 5;
const WINDOW: Duration = Duration::from_secs(1);
/// Service time of every Graph request (Graph answers in 50–300 ms).
const LATENCY: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(50);

/// One mailbox's busy span, seconds from the backup's start: from its first request after
/// discovery (which asks every mailbox for its settings up front) to its last request.
#[derive(Debug, Default, Clone, Copy)]
struct Span {
    first: f64,
    last: f64,
    /// Admitted requests before the span (discovery's).
    before: u64,
    admitted: u64,
}

/// Per mailbox: requests admitted (throttled ones are refused, not admitted) and requests of
/// any kind but discovery's `mailboxSettings`.
fn counts(emu: &Emulator) -> BTreeMap<String, (u64, u64)> {
    emu.counters()
        .mailboxes
        .into_iter()
        .map(|(user, c)| {
            let work = c
                .endpoints
                .iter()
                .filter(|(name, _)| !name.ends_with("/mailboxSettings"))
                .map(|(_, n)| n)
                .sum();
            (user, (c.requests - c.throttled, work))
        })
        .collect()
}

/// Who runs the backup: the `strongroom` binary as shipped, or (`--mailboxes-at-once N`, a
/// what-if) the engine in this process with that many mailboxes backed up at once.
enum Runner {
    Cli(Archive),
    Engine(Box<(Engine, Task)>),
}

/// What the ratios need from a backup run.
struct Outcome {
    wall_s: f64,
    /// The engine's backup run (discovery to final snapshot), seconds from the command's
    /// start: the rest of the wall time is opening the archive before and indexing after.
    run_s: (f64, f64),
    messages: u64,
    bytes: u64,
    backed_up: usize,
    failures: Vec<String>,
}

impl Runner {
    async fn engine(dir: &Path, info: &ReadyInfo, mailboxes_at_once: usize) -> Runner {
        let options = EngineOptions {
            backup: BackupOptions {
                mailboxes_in_parallel: mailboxes_at_once,
                ..BackupOptions::default()
            },
            ..EngineOptions::default()
        };
        let engine = Engine::init(
            &dir.join("archive"),
            "benchmark passphrase",
            KdfParams::production(),
            options,
        )
        .expect("archive");
        let task = engine
            .connect(ConnectRequest {
                name: "Bench".into(),
                tenant_id: info.tenant_id.clone(),
                client_id: info.client_id.clone(),
                credential: Credential::Secret(info.client_secret.clone()),
                authority: Some(info.authority.clone()),
                graph_url: Some(info.graph.clone()),
                settings: TaskSettings {
                    backup_unlicensed: true,
                    ..TaskSettings::default()
                },
            })
            .await
            .expect("connect");
        engine.mailboxes(&task).await.expect("discovery");
        engine.activate(&task, &Selection::All).expect("activate");
        Runner::Engine(Box::new((engine, task)))
    }

    async fn backup(self) -> Outcome {
        match self {
            Runner::Cli(archive) => {
                let started = epoch_s();
                let b = tokio::task::spawn_blocking(move || archive.backup())
                    .await
                    .expect("backup");
                Outcome {
                    wall_s: b.run.wall_s,
                    run_s: run_span(&b.report, started),
                    messages: b.messages(),
                    bytes: b.bytes(),
                    backed_up: b.backed_up_mailboxes(),
                    failures: b.failures(),
                }
            }
            Runner::Engine(boxed) => {
                let (engine, task) = *boxed;
                let (started, started_epoch) = (Instant::now(), epoch_s());
                let report = engine
                    .backup(&task, progress::silent())
                    .await
                    .expect("backup");
                let reports = &report.mailboxes;
                Outcome {
                    wall_s: started.elapsed().as_secs_f64(),
                    run_s: run_span(
                        &serde_json::to_value(&report).expect("report"),
                        started_epoch,
                    ),
                    messages: reports.iter().map(|m| m.messages).sum(),
                    bytes: reports.iter().map(|m| m.bytes).sum(),
                    backed_up: reports
                        .iter()
                        .filter(|m| m.status == MailboxStatus::BackedUp)
                        .count(),
                    failures: reports
                        .iter()
                        .filter(|m| m.status == MailboxStatus::Failed)
                        .map(|m| format!("{}: {:?}", m.address, m.error))
                        .collect(),
                }
            }
        }
    }
}

fn epoch_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The report's `startedMs`/`finishedMs` as seconds from `started` (seconds since the epoch).
fn run_span(report: &serde_json::Value, started: f64) -> (f64, f64) {
    let at = |key: &str| report[key].as_f64().unwrap_or(f64::NAN) / 1000.0 - started;
    (at("startedMs"), at("finishedMs"))
}

pub async fn run(args: &Args) {
    // 10 users: 8 mailboxes (shared and room ones included), 2 accounts without a mailbox.
    let (users, per_user) = if args.quick { (10, 60) } else { (20, 80) };
    let emu = Emulator::start(Config {
        users,
        messages_per_user: per_user,
        seed: 5,
        throttle: Throttle::Scaled {
            requests: BUDGET,
            per: WINDOW,
        },
        concurrency_limit: 4,
        latency: LATENCY,
        ..Config::default()
    })
    .await
    .expect("emulator");
    let scratch = crate::scratch("strongroom-bench-throttle-");
    let info = emu.info().clone();
    let path = scratch.path().to_owned();
    let runner = match args.mailboxes_at_once {
        None => Runner::Cli(
            tokio::task::spawn_blocking(move || Archive::connect(&path, &info))
                .await
                .expect("setup"),
        ),
        Some(n) => Runner::engine(&path, &info, n).await,
    };
    // Start from fresh budgets and zero counters: setup's discovery used some.
    emu.set_throttle(
        Throttle::Scaled {
            requests: BUDGET,
            per: WINDOW,
        },
        4,
    );
    emu.reset_counters();

    let emu = Arc::new(emu);
    let spans: Arc<Mutex<BTreeMap<String, Span>>> = Arc::default();
    // When the run's first Graph request (discovery's) came, seconds from the start.
    let first_request: Arc<Mutex<Option<f64>>> = Arc::default();
    let started = Instant::now();
    let poller = {
        let (emu, spans, first_request) = (emu.clone(), spans.clone(), first_request.clone());
        tokio::spawn(async move {
            let mut previous: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let now = started.elapsed().as_secs_f64();
                {
                    let mut first = first_request.lock().unwrap();
                    if first.is_none() && emu.counters().requests > 0 {
                        *first = Some(now - POLL.as_secs_f64() / 2.0);
                    }
                }
                {
                    let mut spans = spans.lock().unwrap();
                    for (user, (admitted, work)) in counts(&emu) {
                        let before = previous.insert(user.clone(), admitted).unwrap_or(0);
                        if work == 0 {
                            continue;
                        }
                        let span = spans.entry(user).or_insert(Span {
                            first: now - POLL.as_secs_f64() / 2.0,
                            last: now,
                            before,
                            admitted,
                        });
                        if admitted != span.admitted {
                            span.last = now;
                            span.admitted = admitted;
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        })
    };
    let backup = runner.backup().await;
    poller.abort();
    let counters = emu.counters();
    let final_counts: BTreeMap<String, u64> =
        counts(&emu).into_iter().map(|(u, (a, _))| (u, a)).collect();
    let spans = spans.lock().unwrap().clone();
    let first_request = first_request.lock().unwrap().unwrap_or(f64::NAN);

    let wall = backup.wall_s;
    let window = WINDOW.as_secs_f64();
    let limit = |seconds: f64| f64::from(BUDGET) * (seconds / window + 1.0);
    // Accounts without a mailbox answer discovery's one request with 404 and get no work.
    let mailboxes = spans.len();
    let total: u64 = final_counts
        .iter()
        .filter(|(user, _)| spans.contains_key(*user))
        .map(|(_, n)| n)
        .sum();
    let tenant_limit = mailboxes as f64 * limit(wall);
    let tenant_ratio = total as f64 / tenant_limit;
    let (mut busy_admitted, mut busy_limit, mut busy_seconds) = (0u64, 0.0, 0.0);
    let mut per_mailbox: Vec<f64> = Vec::new();
    for (user, n) in &final_counts {
        let Some(span) = spans.get(user).copied() else {
            continue;
        };
        let seconds = (span.last - span.first).max(POLL.as_secs_f64());
        let admitted = n - span.before;
        busy_admitted += admitted;
        busy_limit += limit(seconds);
        busy_seconds += seconds;
        per_mailbox.push(admitted as f64 / limit(seconds));
    }
    per_mailbox.sort_by(f64::total_cmp);
    // Where the wall time goes: before the first mailbox's work, while mailboxes work (the
    // first starts to the last ends), after it.
    let first_work = spans
        .values()
        .map(|s| s.first)
        .fold(f64::INFINITY, f64::min);
    let starts: Vec<f64> = spans.values().map(|s| s.first).collect();
    let ends: Vec<f64> = spans.values().map(|s| s.last).collect();
    let last_work = ends.iter().copied().fold(0.0, f64::max);
    let (run_start, run_end) = backup.run_s;
    let busy_ratio = busy_admitted as f64 / busy_limit;
    let failures = backup.failures.clone();

    if let Some(n) = args.mailboxes_at_once {
        println!("\n(what-if: the engine in this process with {n} mailboxes at once, not the CLI's default)");
    }
    println!(
        "\nthrottle-bound: {mailboxes} mailboxes, budget {BUDGET} requests per {window} s per mailbox (sliding window), \
         4 concurrent, {} ms latency",
        LATENCY.as_millis()
    );
    println!(
        "  backup: {:.1} s wall, {} messages, {:.1} MB, {} of {} mailboxes backed up",
        wall,
        backup.messages,
        backup.bytes as f64 / 1e6,
        backup.backed_up,
        mailboxes
    );
    for f in &failures {
        println!("  FAILED {f}");
    }
    println!(
        "  requests admitted: {total} ({:.1}/s); 429s: {} ({} over the concurrency limit); \
         peak concurrency per mailbox: {}",
        total as f64 / wall,
        counters.throttled,
        counters.over_concurrency,
        counters
            .mailboxes
            .values()
            .map(|m| m.max_concurrency)
            .max()
            .unwrap_or(0)
    );
    println!(
        "  limit for the tenant: {mailboxes} × {BUDGET} × ({wall:.1} s / {window} s + 1) = {tenant_limit:.0} requests \
         ({:.1}/s)",
        tenant_limit / wall
    );
    println!("  tenant ratio (admitted ÷ limit):      {tenant_ratio:.3}   (target ≥ 0.9)");
    println!(
        "  per-mailbox ratio while busy:          {busy_ratio:.3}   (median {:.3}, worst {:.3}; \
         mailboxes busy {:.1} s on average, {:.1} at a time)",
        per_mailbox[per_mailbox.len() / 2],
        per_mailbox[0],
        busy_seconds / mailboxes as f64,
        busy_seconds / wall
    );
    let fmt = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.iter()
            .map(|t| format!("{t:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  timeline (s): command starts 0, backup run starts {run_start:.2}, first Graph request \
         {first_request:.2}, first mailbox work {first_work:.2}, last mailbox work {last_work:.2}, \
         run ends {run_end:.2}, command ends {wall:.2}"
    );
    println!(
        "  mailboxes start at {}; end at {}",
        fmt(&starts),
        fmt(&ends)
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "backup-throttle", "quick": args.quick, "mailboxes": mailboxes,
            "budget": BUDGET, "window_s": window, "latency_ms": LATENCY.as_millis() as u64,
            "wall_s": (wall * 10.0).round() / 10.0, "messages": backup.messages,
            "mailboxes_at_once": args.mailboxes_at_once,
            "admitted": total, "throttled": counters.throttled,
            "over_concurrency": counters.over_concurrency, "failed_mailboxes": failures.len(),
            "tenant_ratio": (tenant_ratio * 1000.0).round() / 1000.0,
            "busy_ratio": (busy_ratio * 1000.0).round() / 1000.0,
            "mailboxes_at_a_time": ((busy_seconds / wall) * 10.0).round() / 10.0,
            "timeline_s": {
                "run_start": (run_start * 100.0).round() / 100.0,
                "first_request": (first_request * 100.0).round() / 100.0,
                "first_work": (first_work * 100.0).round() / 100.0,
                "last_work": (last_work * 100.0).round() / 100.0,
                "run_end": (run_end * 100.0).round() / 100.0,
            },
        })
    );
    if let Ok(emu) = Arc::try_unwrap(emu) {
        emu.shutdown().await;
    }
}
