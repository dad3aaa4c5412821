fn main() {
    // Listing the app's commands makes Tauri generate an `allow-<command>` permission for
    // each, so a window can call only what its capability file grants it.
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/*.json")
        .app_manifest(tauri_build::AppManifest::new().commands(&["engine_status"]));
    tauri_build::try_build(attributes).expect("failed to run tauri-build");
}
