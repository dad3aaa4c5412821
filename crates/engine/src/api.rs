//! The one surface the desktop app and the CLI call. Every function here is safe to expose
//! over IPC: inputs and outputs are plain serialisable data, errors are [`crate::Error`].

use serde::Serialize;

/// What the engine is and what it is doing, for the dashboard and `strongroom --version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// The engine crate's version (the app and the CLI ship in step with it).
    pub version: String,
    /// Number of configured backup tasks.
    pub task_count: u32,
    /// Whether a job (backup, restore, …) is running now.
    pub busy: bool,
}

/// The engine's version and status.
pub fn status() -> EngineStatus {
    EngineStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        task_count: 0,
        busy: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serialises_in_camel_case_for_the_ui() {
        let json = serde_json::to_value(status()).unwrap();
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["taskCount"], 0);
        assert_eq!(json["busy"], false);
    }
}
