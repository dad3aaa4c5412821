//! Backup benchmarks (issue 5): the `strongroom` CLI, as a user runs it, backs up tenants
//! served by the emulator (in this process, on loopback).
//!
//! ```text
//! cargo bench -p strongroom-cli --bench backup -- [--quick] [throttle] [cpu] [memory]
//! ```
//!
//! - `throttle`: many mailboxes under a scaled Outlook budget plus latency; achieved request
//!   rate ÷ the rate the emulator's budget allows for that run (target ≥ 0.9).
//! - `cpu`: throttling off; messages/s and MB/s of a full backup next to restic backing up
//!   the same messages (exported from the emulator as `.eml` files), same run (target ≥ 1.0×).
//! - `memory`: peak RSS of the `strongroom backup` process on tenants of 1×, 2× and 4× the
//!   size, with messages carrying tens of MB of attachments (target: flat, well under 300 MiB).
//!
//! `--mailboxes-at-once N` (with `throttle`) runs the engine in this process with N
//! mailboxes backed up at once instead of the binary with the engine's default: a what-if.
//!
//! Without a name every benchmark runs. `--quick` takes a few minutes in all on 2 cores.
//! Each benchmark prints a table and one JSON line; docs/BENCHMARKS.md records the results.

mod cpu;
mod measure;
mod memory;
mod mime;
mod strongroom;
mod throttle;

use std::path::Path;

/// Command-line switches.
pub struct Args {
    pub quick: bool,
    /// `throttle` only: run the engine in-process with this many mailboxes at once (a
    /// what-if for the engine's default of 4), instead of the `strongroom` binary.
    pub mailboxes_at_once: Option<usize>,
    benches: Vec<String>,
}

impl Args {
    fn wants(&self, name: &str) -> bool {
        self.benches.is_empty() || self.benches.iter().any(|b| b == name)
    }
}

fn args() -> Args {
    let mut args = Args {
        quick: false,
        mailboxes_at_once: None,
        benches: Vec::new(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--mailboxes-at-once" => {
                let n = argv.next().and_then(|n| n.parse().ok());
                args.mailboxes_at_once = Some(n.expect("--mailboxes-at-once N"));
            }
            "--bench" => {} // added by `cargo bench`
            "throttle" | "cpu" | "memory" => args.benches.push(a),
            other => panic!(
                "unknown argument {other:?} (expected --quick, --mailboxes-at-once N, throttle, cpu, memory)"
            ),
        }
    }
    args
}

/// Bytes of every file under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let entry = entry.expect("folder entry");
        let meta = entry.metadata().expect("file metadata");
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// The machine line every benchmark prints: core count and load, since the machine is shared.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!("{cores} cores, load average {load} at start")
}

/// Scratch space for archives and exported messages, removed at the end.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("scratch folder")
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(measure::MEASURE_ARG) {
        measure::parent_main(&argv[2..]);
    }
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "backup benchmarks ({}), {}",
        if args.quick { "quick" } else { "full" },
        machine()
    );
    if args.wants("throttle") {
        runtime.block_on(throttle::run(&args));
    }
    if args.wants("cpu") {
        runtime.block_on(cpu::run(&args));
    }
    if args.wants("memory") {
        runtime.block_on(memory::run(&args));
    }
}
