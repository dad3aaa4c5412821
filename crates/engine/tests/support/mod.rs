//! What the engine's end-to-end tests share: a generated tenant, fast retries, a new archive
//! with one task connected to the emulator's app.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use m365_emulator::{Config, Emulator};
use strongroom_archive::KdfParams;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::progress;
use strongroom_engine::report::RunReport;
use strongroom_engine::task::{Credential, Task, TaskSettings};
use strongroom_graph::{Backoff, ClientOptions};

/// Engine options with retries fast enough for tests.
pub fn options() -> EngineOptions {
    EngineOptions {
        graph: ClientOptions {
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(100), 12),
            ..ClientOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// A generated tenant with default behaviour (no throttling, no faults).
pub async fn tenant(users: usize, messages_per_user: usize, seed: u64) -> Emulator {
    Emulator::start(Config {
        users,
        messages_per_user,
        seed,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// The id of the tenant's first licensed user with a mailbox.
pub fn licensed_user(emu: &Emulator) -> String {
    let tenant = emu.tenant_metadata();
    let user = tenant
        .users
        .iter()
        .find(|u| u.mailbox.is_some() && u.licensed);
    user.expect("a licensed user with a mailbox").id.clone()
}

/// `data` in base64 lines of `width` characters, each ending in `eol`, as mailers write
/// attachment bodies.
pub fn base64_lines(data: &[u8], width: usize, eol: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::new();
    for line in text.as_bytes().chunks(width) {
        out.extend_from_slice(line);
        out.extend_from_slice(eol.as_bytes());
    }
    out
}

/// Task settings that activate every mailbox discovery finds.
pub fn auto_activate() -> TaskSettings {
    TaskSettings {
        auto_activate_new: true,
        ..TaskSettings::default()
    }
}

/// Connects task "Contoso" to the emulator's own app (every role) with `settings`.
pub fn connect_request(emu: &Emulator, settings: TaskSettings) -> ConnectRequest {
    let info = emu.info();
    ConnectRequest {
        name: "Contoso".into(),
        tenant_id: info.tenant_id.clone(),
        client_id: info.client_id.clone(),
        credential: Credential::Secret(info.client_secret.clone()),
        authority: Some(info.authority.clone()),
        graph_url: Some(info.graph.clone()),
        settings,
    }
}

/// A new archive in `dir` (passphrase "pw", test KDF cost) with one task made by `request`.
pub async fn setup_request(
    dir: &Path,
    request: ConnectRequest,
    options: EngineOptions,
) -> (Engine, Task) {
    let engine = Engine::init(dir, "pw", KdfParams::insecure_for_tests(), options).unwrap();
    engine.connect(request).await.unwrap();
    let task = engine.task(None).unwrap();
    (engine, task)
}

/// A new archive in `dir` with one task connected to the emulator's app.
pub async fn setup_with(
    emu: &Emulator,
    dir: &Path,
    settings: TaskSettings,
    options: EngineOptions,
) -> (Engine, Task) {
    setup_request(dir, connect_request(emu, settings), options).await
}

pub async fn setup(emu: &Emulator, dir: &Path, settings: TaskSettings) -> (Engine, Task) {
    setup_with(emu, dir, settings, options()).await
}

pub async fn backup(engine: &Engine, task: &Task) -> RunReport {
    engine.backup(task, progress::silent()).await.unwrap()
}
