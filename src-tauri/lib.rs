//! The Strongroom desktop app: a thin Tauri shell around `strongroom-engine`.
//!
//! Commands delegate to `strongroom_engine::api`; the tray keeps the app running with its
//! window closed so scheduled backups can run in the background.

mod commands;
mod tray;

use tauri::{Manager, WindowEvent};

/// Builds and runs the app until the user chooses Quit.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "strongroom=info".into()),
        )
        .init();

    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![commands::engine_status])
        .setup(|app| {
            tray::install(app.handle())?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Close-to-tray: closing the window hides it; the app keeps running for scheduled
            // backups until Quit is chosen from the tray menu.
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main" {
                    api.prevent_close();
                    if let Err(error) = window.hide() {
                        tracing::warn!(%error, "could not hide the main window");
                    }
                }
            }
        })
        .run(tauri::generate_context!())
        .expect("Strongroom could not start its window");
}

/// Shows and focuses the main window (tray "Open", or a click on the tray icon).
fn show_main_window(app: &tauri::AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let shown = window
            .show()
            .and_then(|()| window.unminimize())
            .and_then(|()| window.set_focus());
        if let Err(error) = shown {
            tracing::warn!(%error, "could not show the main window");
        }
    }
}
