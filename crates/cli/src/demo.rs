//! `strongroom demo`: a generated tenant served by the in-process emulator, backed up into
//! an archive (the given folder, or a new temporary one that is kept), end to end.

use std::path::PathBuf;

use anyhow::Context;
use m365_emulator::{Config, Emulator};
use strongroom_archive::KdfParams;
use strongroom_engine::accounts::Selection;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::progress;
use strongroom_engine::task::{Credential, TaskSettings};

/// The demo archive's passphrase (printed: a demo protects nothing).
pub const DEMO_PASSPHRASE: &str = "strongroom demo";

pub async fn run(
    archive: Option<PathBuf>,
    users: usize,
    messages_per_user: usize,
    json: bool,
    kdf: KdfParams,
) -> anyhow::Result<u8> {
    let emu = Emulator::start(Config {
        users,
        messages_per_user,
        seed: 42,
        ..Config::default()
    })
    .await
    .context("starting the emulator")?;
    let dir = match archive {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("strongroom-demo-")
            .tempdir()?
            .keep(),
    };
    let engine = Engine::init(&dir, DEMO_PASSPHRASE, kdf, EngineOptions::default())?;
    let info = emu.info().clone();
    let task = engine
        .connect(ConnectRequest {
            name: "Demo".into(),
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
        .await?;
    let task = engine.task(Some(&task.name))?;
    engine.mailboxes(&task).await?;
    engine.activate(&task, &Selection::All)?;
    let report = engine.backup(&task, progress::silent()).await?;
    let verify = engine.verify(false)?;
    if json {
        crate::output::json(&serde_json::json!({
            "archive": dir,
            "passphrase": DEMO_PASSPHRASE,
            "report": report,
            "verified": verify.ok,
        }));
    } else {
        crate::output::report(&report);
        out!(
            "archive: {} (passphrase {DEMO_PASSPHRASE:?}); verify: {}",
            dir.display(),
            if verify.ok { "OK" } else { "DAMAGED" }
        );
        out!(
            "try: STRONGROOM_PASSPHRASE={DEMO_PASSPHRASE:?} strongroom --archive {} snapshots",
            dir.display()
        );
    }
    emu.shutdown().await;
    Ok(super::exit_code(&report))
}
