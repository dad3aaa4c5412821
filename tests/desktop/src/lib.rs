//! Drives the built Strongroom desktop app through `tauri-driver` (which runs WebKitWebDriver)
//! so that tests exercise the real window, the real IPC and the real engine.
//!
//! The app must be built first with the UI embedded (`./dev test` does this); the tests need
//! an X display and a D-Bus session (`xvfb-run -a dbus-run-session -- ...`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

/// The workspace root, where `target/` and `test-artifacts/` live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The app binary: `STRONGROOM_APP` if set, else the debug build in the target directory.
pub fn app_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STRONGROOM_APP") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join("strongroom-app")
}

/// Where screenshots go: `STRONGROOM_ARTIFACTS` or `test-artifacts/` in the workspace.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("STRONGROOM_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("test-artifacts"));
    std::fs::create_dir_all(&dir).expect("create the artifacts folder");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running app window under WebDriver. Dropping it ends the session and the driver.
pub struct AppSession {
    pub client: Client,
    driver: Child,
}

impl AppSession {
    /// Starts tauri-driver and opens a WebDriver session on the app, which launches it.
    pub async fn start() -> AppSession {
        let app = app_binary();
        assert!(
            app.exists(),
            "no app binary at {} — build it with `./dev build-app` (or run `./dev test`)",
            app.display()
        );
        assert!(
            std::env::var_os("DISPLAY").is_some(),
            "no X display: run under `xvfb-run -a dbus-run-session -- cargo test ...` (./dev test does)"
        );
        let port = free_port();
        let driver = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tauri-driver must be installed: cargo install tauri-driver --locked");

        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    panic!("could not open a WebDriver session on the app: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        AppSession { client, driver }
    }

    /// Saves a PNG screenshot of the X display (what a person would see) under the
    /// artifacts folder. WebKitWebDriver's own screenshot comes back blank under Xvfb (no
    /// GPU compositing), so this uses ImageMagick's `import` on the root window instead.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // Let the window finish painting after the DOM settled.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let path = artifacts_dir().join(format!("{name}.png"));
        let status = Command::new("import")
            .args(["-window", "root"])
            .arg(&path)
            .status()
            .expect("ImageMagick's `import` must be installed (package imagemagick)");
        assert!(status.success(), "import failed to capture the display");
        path
    }

    /// Ends the WebDriver session (closing the app) and stops the driver.
    pub async fn finish(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for AppSession {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
