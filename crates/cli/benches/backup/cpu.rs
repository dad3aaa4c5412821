//! CPU-bound: throttling and latency off, a full first backup of a generated tenant, next to
//! restic backing up the same messages as `.eml` files from disk, in the same run.
//!
//! The `.eml` files are each message's `$value` as the emulator serves it (one folder per
//! mailbox, one per mail folder, search folders left out as the engine leaves them out), so
//! both tools store exactly the same bytes. Both run as separate processes, measured the same
//! way (wall time, CPU time, peak RSS); neither's repository setup is timed, both open their
//! repository with their real KDF inside the timed run. restic reads from the page cache;
//! Strongroom downloads over loopback from the emulator, which runs in this process and
//! competes for the same cores (its CPU time is reported too); it serves every message's
//! MIME from memory rather than generating it per request.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use m365_emulator::{Config, Emulator, Throttle};
use nix::sys::resource::{getrusage, UsageWho};

use crate::measure::{self, Measured};
use crate::strongroom::Archive;
use crate::Args;

const RESTIC_PASSWORD: &str = "benchmark passphrase";
/// Rounds of the full run (`--quick`: one).
const ROUNDS: usize = 5;

/// One round: each tool's measured run and repository size.
struct Round {
    strongroom: (Measured, u64),
    mailboxes: usize,
    restic: Option<(Measured, u64)>,
    emulator_cpu: f64,
}

pub async fn run(args: &Args) {
    let (users, per_user) = if args.quick { (10, 50) } else { (20, 150) };
    let emu = Emulator::start(Config {
        users,
        messages_per_user: per_user,
        seed: 11,
        throttle: Throttle::Off,
        ..Config::default()
    })
    .await
    .expect("emulator");
    // Served from memory, as restic reads its copy from the page cache: generating MIME
    // would compete with Strongroom for the two cores.
    emu.store_generated_mime();
    let scratch = crate::scratch("strongroom-bench-cpu-");
    let eml = scratch.path().join("eml");
    let (files, bytes) = export(&emu, &eml).await;
    let mb = bytes as f64 / 1e6;

    let has_restic = installed("restic");
    if !has_restic {
        println!("  restic is not installed (apt-get install restic): skipping the peer");
    }
    // A shared 2-core machine's speed drifts by ±15 % from minute to minute, for both tools
    // alike; each round runs them back to back, and the verdict is the median round's.
    let rounds = if args.quick { 1 } else { ROUNDS };
    let mut results: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let dir = scratch.path().join(format!("round-{round}"));
        let restic = if has_restic {
            let (repo, cache) = (dir.join("restic"), dir.join("cache"));
            let (eml, repo2, cache2) = (eml.clone(), repo.clone(), cache.clone());
            let run = tokio::task::spawn_blocking(move || restic_backup(&eml, &repo2, &cache2))
                .await
                .expect("restic");
            Some((run, crate::dir_size(&repo)))
        } else {
            None
        };
        let info = emu.info().clone();
        let path = dir.join("strongroom");
        let before = self_cpu();
        let (backup, archive_size) = tokio::task::spawn_blocking(move || {
            let archive = Archive::connect(&path, &info);
            let backup = archive.backup();
            let size = archive.size();
            (backup, size)
        })
        .await
        .expect("strongroom");
        // Setup (init, connect, activate) is included here but serves almost nothing.
        let emulator_cpu = self_cpu() - before;
        assert_eq!(
            backup.messages(),
            files,
            "Strongroom backed up another number of messages than were exported"
        );
        for f in backup.failures() {
            println!("  FAILED {f}");
        }
        std::fs::remove_dir_all(&dir).expect("remove the round's repositories");
        results.push(Round {
            mailboxes: backup.backed_up_mailboxes(),
            strongroom: (backup.run, archive_size),
            restic,
            emulator_cpu,
        });
    }
    let ratio_of = |r: &Round| {
        r.restic
            .as_ref()
            .map(|(p, _)| p.wall_s / r.strongroom.0.wall_s)
    };
    let ratios: Vec<f64> = results.iter().filter_map(ratio_of).collect();
    results.sort_by(|a, b| {
        let key = |r: &Round| ratio_of(r).unwrap_or(-r.strongroom.0.wall_s);
        key(a).total_cmp(&key(b))
    });
    let median = &results[results.len() / 2];
    let (backup, archive_size) = &median.strongroom;

    let line = |name: &str, run: &Measured, size: u64| {
        println!(
            "  {name:<10} {:>6.2} s  {:>7.0} messages/s  {:>6.1} MB/s  CPU {:>6.2} s  peak RSS {:>5.0} MiB  repository {:>6.1} MB",
            run.wall_s,
            files as f64 / run.wall_s,
            mb / run.wall_s,
            run.cpu_s,
            run.peak_mib(),
            size as f64 / 1e6
        );
    };
    println!(
        "\nCPU-bound (throttling off): {files} messages, {mb:.1} MB of MIME in {} mailboxes",
        median.mailboxes
    );
    if rounds > 1 {
        println!(
            "  {rounds} rounds, restic then Strongroom in each; throughput ratios {}; the median round:",
            ratios.iter().map(|r| format!("{r:.2}×")).collect::<Vec<_>>().join(" ")
        );
    }
    line("strongroom", backup, *archive_size);
    if let Some((run, size)) = &median.restic {
        line("restic", run, *size);
    }
    println!(
        "  (the emulator serving Strongroom used {:.2} s of CPU in this process meanwhile)",
        median.emulator_cpu
    );
    let ratio = ratio_of(median);
    let cpu_ratio = median.restic.as_ref().map(|(r, _)| r.cpu_s / backup.cpu_s);
    if let (Some(ratio), Some(cpu_ratio)) = (ratio, cpu_ratio) {
        println!("  throughput ÷ restic's: {ratio:.2}×   (target ≥ 1.0×); CPU time: restic's ÷ Strongroom's {cpu_ratio:.2}×");
    }
    let restic = &median.restic;
    println!(
        "{}",
        serde_json::json!({
            "bench": "backup-cpu", "quick": args.quick, "messages": files,
            "mb": (mb * 10.0).round() / 10.0, "rounds": rounds,
            "ratios": ratios.iter().copied().map(round2).collect::<Vec<_>>(),
            "strongroom_s": round2(backup.wall_s), "strongroom_cpu_s": round2(backup.cpu_s),
            "strongroom_mb_s": round2(mb / backup.wall_s),
            "restic_s": restic.as_ref().map(|(r, _)| round2(r.wall_s)),
            "restic_cpu_s": restic.as_ref().map(|(r, _)| round2(r.cpu_s)),
            "emulator_cpu_s": round2(median.emulator_cpu),
            "ratio_vs_restic": ratio.map(round2),
            "cpu_ratio_vs_restic": cpu_ratio.map(round2),
        })
    );
    emu.shutdown().await;
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Whether `tool version` runs.
pub fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// CPU seconds this process has used so far (the in-process emulator, mostly).
fn self_cpu() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// Writes every backed-up message's `$value` to `dir/<mailbox>/<folder>/<n>.eml`; returns
/// the file count and total bytes.
async fn export(emu: &Emulator, dir: &Path) -> (u64, u64) {
    let info = emu.info().clone();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            info.authority, info.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", info.client_id.as_str()),
            ("client_secret", info.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    let token = token["access_token"].as_str().expect("access_token");
    let (mut files, mut bytes) = (0, 0);
    let tenant = emu.tenant_metadata();
    for (u, user) in tenant.users.iter().enumerate() {
        let Some(mailbox) = &user.mailbox else {
            continue;
        };
        for (f, folder) in mailbox.folders.iter().enumerate() {
            if folder.search_folder {
                continue;
            }
            let folder_dir: PathBuf = dir.join(format!("mailbox-{u:03}/folder-{f:03}"));
            std::fs::create_dir_all(&folder_dir).expect("export folder");
            for (n, message) in folder.messages.iter().enumerate() {
                let mime = http
                    .get(format!(
                        "{}/v1.0/users/{}/messages/{}/$value",
                        info.graph, user.id, message.id
                    ))
                    .bearer_auth(token)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .expect("$value")
                    .bytes()
                    .await
                    .expect("$value body");
                std::fs::write(folder_dir.join(format!("{n:05}.eml")), &mime).expect("write .eml");
                files += 1;
                bytes += mime.len() as u64;
            }
        }
    }
    (files, bytes)
}

/// `restic init` (not measured), then `restic backup` of `eml`, measured.
fn restic_backup(eml: &Path, repo: &Path, cache: &Path) -> Measured {
    let command = |args: &[&str]| {
        let mut c = Command::new("restic");
        c.args(args)
            .arg("-r")
            .arg(repo)
            .env("RESTIC_PASSWORD", RESTIC_PASSWORD)
            .env("RESTIC_CACHE_DIR", cache)
            .stdin(Stdio::null());
        c
    };
    let init = command(&["init", "--repository-version", "2"])
        .output()
        .expect("restic init runs");
    assert!(
        init.status.success(),
        "restic init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut backup = command(&["backup", "--quiet"]);
    backup.arg(eml);
    let run = measure::run(&backup);
    run.expect_exit("restic backup", &[0]);
    run
}
