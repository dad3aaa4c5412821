//! IPC commands: each one delegates to `strongroom_engine::api` and nothing more.

use strongroom_engine::api::{self, EngineStatus};

#[tauri::command]
pub fn engine_status() -> EngineStatus {
    api::status()
}
