//! What the run prints: the input line and table header, then one row per tool and the
//! ratios of Strongroom against each peer.

use std::fs;
use std::path::Path;

/// One tool's ingest: how long it took and how large its repository is.
pub(crate) struct Run {
    pub name: &'static str,
    pub seconds: f64,
    pub repo_bytes: u64,
}

/// Bytes of the files under `path` (or of `path` itself, if it is a file).
pub(crate) fn du(path: &Path) -> u64 {
    if path.is_file() {
        return path.metadata().map(|m| m.len()).unwrap_or(0);
    }
    fs::read_dir(path)
        .map(|rd| rd.filter_map(Result::ok).map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// The input line and the table header, printed before any tool runs.
pub(crate) fn header(files: usize, input_bytes: u64, quick: bool, distinct: bool) {
    let mb = input_bytes as f64 / 1e6;
    println!(
        "input: {files} .eml files, {mb:.1} MB ({}{})",
        if quick { "quick" } else { "full" },
        if distinct {
            ", distinct attachments"
        } else {
            ""
        }
    );
    println!(
        "{:<12} {:>9} {:>10} {:>11} {:>12} {:>11}",
        "tool", "seconds", "MB/s", "repo MB", "repo/input", "speed ×"
    );
}

/// One row per run, then Strongroom (the first run) against each of the others.
pub(crate) fn results(input_bytes: u64, runs: &[Run]) {
    let mb = input_bytes as f64 / 1e6;
    let ours = &runs[0];
    for run in runs {
        println!(
            "{:<12} {:>9.2} {:>10.1} {:>11.1} {:>12.3} {:>11.2}",
            run.name,
            run.seconds,
            mb / run.seconds,
            run.repo_bytes as f64 / 1e6,
            run.repo_bytes as f64 / input_bytes as f64,
            run.seconds / ours.seconds,
        );
    }
    for run in &runs[1..] {
        let name = run.name;
        println!(
            "vs {name}: throughput ratio {:.2} (strongroom MB/s ÷ {name} MB/s), size ratio {:.3} (strongroom repo ÷ {name} repo)",
            run.seconds / ours.seconds,
            ours.repo_bytes as f64 / run.repo_bytes as f64
        );
    }
}
