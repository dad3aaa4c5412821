//! Restore rate against the upload limit that bounds it.
//!
//! Microsoft allows 150 MB of uploads (POST/PUT/PATCH bodies) per 5 minutes per app and
//! mailbox, so a restore into one mailbox is upload-bound. This benchmark backs up a generated
//! mailbox, then restores it twice through the engine:
//!
//! 1. **client ceiling** — no upload limit (the request budget and 4-request concurrency of
//!    realistic throttling stay on but do not bind): how fast the engine restores when nothing
//!    holds it back, as a multiple of Microsoft's real limit (0.5 MB/s). Above 1× means the
//!    limit, not Strongroom, decides how long a restore takes. It also measures the upload
//!    bytes `B` the mailbox costs.
//! 2. **throttle-bound** — the emulator's realistic throttling with the upload limit scaled
//!    to `L` bytes per `W` seconds (same sliding-window shape, reached in seconds): the
//!    restore's time against the fastest any client could finish the same `B` upload bytes,
//!    `W × (⌈B / L⌉ − 1)` (each window admits `L`; the first is free). 1.0 = saturates the
//!    limit exactly.
//!
//! ```text
//! cargo bench -p strongroom-engine --bench restore -- --quick   # 160 messages, about 30 s
//! cargo bench -p strongroom-engine --bench restore              # 240 messages, about 1 min
//! ```
//!
//! The last line printed is JSON.

use std::time::{Duration, Instant};

use m365_emulator::{Config, Emulator, Throttle};
use strongroom_archive::KdfParams;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::cancel::CancelToken;
use strongroom_engine::progress;
use strongroom_engine::report::Outcome;
use strongroom_engine::restore::RestoreRequest;
use strongroom_engine::task::{Credential, TaskSettings};
use strongroom_graph::{Backoff, ClientOptions};

/// Microsoft's documented upload limit, bytes per second (150 MB per 5 minutes).
const MICROSOFT_UPLOAD_RATE: f64 = 150.0 * 1024.0 * 1024.0 / 300.0;
/// The scaled window of the throttle-bound run.
const WINDOW: Duration = Duration::from_secs(5);
/// Windows the throttle-bound restore should need, so the limit binds several times.
const WINDOWS: f64 = 4.5;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(quick));
}

async fn run(quick: bool) {
    let messages = if quick { 160 } else { 240 };
    let emu = Emulator::start(Config {
        users: 2,
        messages_per_user: messages,
        seed: 404,
        throttle: Throttle::Off,
        ..Config::default()
    })
    .await
    .expect("the emulator starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let engine = Engine::init(
        dir.path(),
        "bench",
        KdfParams::insecure_for_tests(),
        EngineOptions {
            graph: ClientOptions {
                // Generous: a throttle-bound restore waits out many Retry-Afters.
                backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(10), 64),
                ..ClientOptions::default()
            },
            ..EngineOptions::default()
        },
    )
    .expect("an archive");
    let info = emu.info().clone();
    engine
        .connect(ConnectRequest {
            name: "Bench".into(),
            tenant_id: info.tenant_id.clone(),
            client_id: info.client_id.clone(),
            credential: Credential::Secret(info.client_secret.clone()),
            authority: Some(info.authority.clone()),
            graph_url: Some(info.graph.clone()),
            settings: TaskSettings {
                auto_activate_new: true,
                ..TaskSettings::default()
            },
        })
        .await
        .expect("connect");
    let task = engine.task(None).expect("the task");
    let backup = engine
        .backup(&task, progress::silent())
        .await
        .expect("backup");
    assert_eq!(backup.outcome, Outcome::Success);
    let tenant = emu.tenant_metadata();
    let (source, other) = (tenant.users[0].id.clone(), tenant.users[1].id.clone());

    // 1. Client ceiling: no upload limit, into the other mailbox.
    emu.set_throttle(Throttle::Realistic, 4);
    emu.set_upload_limit(u64::MAX / 2, WINDOW);
    let started = Instant::now();
    let free = engine
        .restore(
            &whole_mailbox(&source, &other),
            progress::silent(),
            &CancelToken::new(),
        )
        .await
        .expect("restore");
    let free_secs = started.elapsed().as_secs_f64();
    assert_eq!(free.outcome, Outcome::Success, "{:?}", free.failed);
    let free_rate = free.bytes as f64 / free_secs;

    // 2. Throttle-bound: the upload limit scaled so that the same restore needs several
    //    windows. Into the source mailbox itself, under a new folder: a fresh upload lane.
    // Never below two of the largest request bodies (4 MB upload-session chunks): with
    // Microsoft's 150 MB a window holds dozens of them, and a limit close to one request's
    // size would measure packing, not the client.
    let limit = ((emu.uploaded_bytes(&other) as f64 / WINDOWS) as u64).max(8 << 20);
    emu.set_upload_limit(limit, WINDOW);
    let started = Instant::now();
    let bound = engine
        .restore(
            &whole_mailbox(&source, &source),
            progress::silent(),
            &CancelToken::new(),
        )
        .await
        .expect("restore");
    let bound_secs = started.elapsed().as_secs_f64();
    assert_eq!(bound.outcome, Outcome::Success, "{:?}", bound.failed);
    assert_eq!(bound.restored, free.restored);
    let uploaded = emu.uploaded_bytes(&source);
    let windows_needed = (uploaded as f64 / limit as f64).ceil() - 1.0;
    let fastest = WINDOW.as_secs_f64() * windows_needed;
    let fraction = fastest / bound_secs;
    let throttled = emu
        .counters()
        .mailboxes
        .get(&source)
        .map_or(0, |m| m.throttled);

    println!(
        "restore, no upload limit: {} messages, {:.1} MB MIME in {:.2} s = {:.1} MB/s = {:.0}x Microsoft's upload limit (0.5 MB/s per mailbox)",
        free.restored,
        free.bytes as f64 / 1e6,
        free_secs,
        free_rate / 1e6,
        free_rate / MICROSOFT_UPLOAD_RATE
    );
    println!(
        "restore, upload limit {:.1} MB per {} s: {:.1} MB uploaded in {:.2} s; the limit allows it in {:.1} s at best: {:.2} of the limit ({} responses 429)",
        limit as f64 / 1e6,
        WINDOW.as_secs(),
        uploaded as f64 / 1e6,
        bound_secs,
        fastest,
        fraction,
        throttled
    );
    println!(
        "{}",
        serde_json::json!({
            "messages": free.restored,
            "mimeBytes": free.bytes,
            "ceilingSeconds": free_secs,
            "ceilingBytesPerSecond": free_rate,
            "ceilingVsMicrosoftLimit": free_rate / MICROSOFT_UPLOAD_RATE,
            "uploadLimitBytes": limit,
            "uploadWindowSeconds": WINDOW.as_secs(),
            "uploadedBytes": uploaded,
            "boundSeconds": bound_secs,
            "fastestSeconds": fastest,
            "fractionOfLimit": fraction,
            "throttled": throttled,
        })
    );
}

/// The whole newest backup of `source`, into `to` under a new "Restored <date>" folder.
fn whole_mailbox(source: &str, to: &str) -> RestoreRequest {
    RestoreRequest {
        mailbox: source.into(),
        folder: None,
        message: None,
        at: None,
        to: Some(to.into()),
        new_folder: true,
    }
}
