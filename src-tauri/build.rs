use std::path::Path;
use std::process::Command;

fn main() {
    ensure_ui_built();
    // Listing the app's commands makes Tauri generate an `allow-<command>` permission for
    // each, so a window can call only what its capability file grants it.
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/*.json")
        .app_manifest(tauri_build::AppManifest::new().commands(&["engine_status"]));
    tauri_build::try_build(attributes).expect("failed to run tauri-build");
}

/// `tauri::generate_context!` embeds `ui/dist` at compile time, so a plain
/// `cargo build --workspace` on a fresh clone builds the UI first (./dev rebuilds it anyway).
fn ensure_ui_built() {
    println!("cargo:rerun-if-changed=ui/dist/index.html");
    if Path::new("ui/dist/index.html").exists() {
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !Path::new("ui/node_modules").exists() {
        npm_run(npm, &["install", "--no-audit", "--no-fund"]);
    }
    npm_run(npm, &["run", "build"]);
}

fn npm_run(npm: &str, args: &[&str]) {
    let status = Command::new(npm)
        .arg("--prefix")
        .arg("ui")
        .args(args)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`npm {}` in ui/ failed ({status}); run ./dev build-app",
            args.join(" ")
        ),
        Err(error) => {
            panic!("the UI needs Node.js and npm to build ({error}); run ./dev build-app")
        }
    }
}
