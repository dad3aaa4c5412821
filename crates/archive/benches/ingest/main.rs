//! Ingest benchmark: Strongroom vs restic and borg on the same folder of `.eml` files.
//!
//! ```text
//! cargo bench -p strongroom-archive --bench ingest -- [--quick] [--messages N] [--eml DIR]
//!                                                    [--distinct-attachments]
//! ```
//!
//! Without `--eml` it generates a realistic corpus: MIME messages with Exchange-style
//! headers, text and HTML bodies, base64 attachments drawn from a shared pool (the same
//! PDF sent to many people), and one copy per recipient mailbox with its own delivery
//! headers. Strongroom ingests the way the engine does: each attachment becomes its own
//! blob, the message without its attachment bodies another, one tree per folder, one
//! snapshot. restic and borg (if installed) back up the same folder; the run prints
//! throughput and size ratios. `--quick` keeps the whole run under a minute on 2 cores.
//!
//! `corpus` generates the messages, `base64` is the attachment codec both sides share,
//! `strongroom` and `peers` ingest, `report` prints.

mod base64;
mod corpus;
mod peers;
mod report;
mod strongroom;

use std::path::PathBuf;
use std::time::Instant;

use report::Run;

const PASSWORD: &str = "benchmark passphrase";

struct Args {
    quick: bool,
    /// No attachment is shared between sent messages (only per-recipient copies remain).
    distinct: bool,
    messages: usize,
    eml: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        quick: false,
        distinct: false,
        messages: 0,
        eml: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--distinct-attachments" => a.distinct = true,
            "--messages" => a.messages = it.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--eml" => a.eml = it.next().map(PathBuf::from),
            _ => {} // `cargo bench` adds `--bench`.
        }
    }
    if a.messages == 0 {
        a.messages = if a.quick { 250 } else { 2500 };
    }
    a
}

fn main() {
    base64::check_base64_round_trips();
    let args = args();
    let scratch = tempfile::tempdir().unwrap();
    let (eml, files, input) = match &args.eml {
        Some(dir) => {
            let files: usize = strongroom::eml_files(dir).values().map(Vec::len).sum();
            (dir.clone(), files, report::du(dir))
        }
        None => {
            let dir = scratch.path().join("eml");
            let started = Instant::now();
            let (files, bytes) = corpus::generate(&dir, args.messages, args.distinct);
            eprintln!(
                "generated {files} .eml files, {:.1} MB, in {:.1} s",
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            (dir, files, bytes)
        }
    };
    report::header(files, input, args.quick, args.distinct);

    let mut runs = Vec::new();
    let repo = scratch.path().join("strongroom");
    let seconds = strongroom::ingest_strongroom(&eml, &repo);
    runs.push(Run {
        name: "strongroom",
        seconds,
        repo_bytes: report::du(&repo),
    });
    if peers::tool("restic", "version") {
        let repo = scratch.path().join("restic");
        let seconds = peers::ingest_restic(&eml, &repo, scratch.path());
        runs.push(Run {
            name: "restic",
            seconds,
            repo_bytes: report::du(&repo),
        });
    } else {
        println!("restic not installed: skipped (apt-get install restic)");
    }
    if peers::tool("borg", "--version") {
        let repo = scratch.path().join("borg");
        let seconds = peers::ingest_borg(&eml, &repo, scratch.path());
        runs.push(Run {
            name: "borg",
            seconds,
            repo_bytes: report::du(&repo),
        });
    } else {
        println!("borg not installed: skipped (apt-get install borgbackup)");
    }
    report::results(input, &runs);
}
