//! The UI's TypeScript types are generated from the engine's IPC types (ts-rs). This test fails
//! when `ui/src/bindings/` is stale; `UPDATE_BINDINGS=1 cargo test -p strongroom-engine
//! --features ts --test bindings` rewrites the files.
#![cfg(feature = "ts")]

use std::path::PathBuf;
use strongroom_engine::api::EngineStatus;
use strongroom_engine::{Error, ErrorCode};
use ts_rs::TS;

fn binding<T: TS + 'static>() -> (String, String) {
    let header = "// Generated from strongroom-engine by ts-rs. Do not edit: run\n\
                  // UPDATE_BINDINGS=1 cargo test -p strongroom-engine --features ts --test bindings\n";
    let cfg = ts_rs::Config::new();
    let text = T::export_to_string(&cfg).unwrap();
    (format!("{}.ts", T::name(&cfg)), format!("{header}\n{text}"))
}

#[test]
fn ui_bindings_match_the_engine_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings");
    let update = std::env::var_os("UPDATE_BINDINGS").is_some();
    let mut stale = Vec::new();
    for (file, text) in [
        binding::<EngineStatus>(),
        binding::<ErrorCode>(),
        binding::<Error>(),
    ] {
        let path = dir.join(&file);
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale UI bindings {stale:?}: rerun with UPDATE_BINDINGS=1"
    );
}
