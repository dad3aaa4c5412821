//! The peers: restic and borg back up the same folder, when they are installed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::PASSWORD;

/// Whether `name` is installed (runs `name version_arg`).
pub(crate) fn tool(name: &str, version_arg: &str) -> bool {
    Command::new(name)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Backs `eml` up into a new restic repository at `repo`; returns seconds.
pub(crate) fn ingest_restic(eml: &Path, repo: &Path, scratch: &Path) -> f64 {
    let env = |c: &mut Command| {
        c.env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", scratch.join("restic-cache"));
    };
    let mut init = Command::new("restic");
    init.args(["init", "--repository-version", "2", "-r"])
        .arg(repo);
    env(&mut init);
    run(&mut init);
    let mut backup = Command::new("restic");
    backup.args(["backup", "--quiet", "-r"]).arg(repo).arg(eml);
    env(&mut backup);
    let started = Instant::now();
    run(&mut backup);
    started.elapsed().as_secs_f64()
}

/// Backs `eml` up into a new borg repository at `repo`; returns seconds.
pub(crate) fn ingest_borg(eml: &Path, repo: &Path, scratch: &Path) -> f64 {
    let env = |c: &mut Command| {
        c.env("BORG_PASSPHRASE", PASSWORD)
            .env("BORG_BASE_DIR", scratch.join("borg-home"));
    };
    let mut init = Command::new("borg");
    init.args(["init", "--encryption=repokey-blake2"]).arg(repo);
    env(&mut init);
    run(&mut init);
    let mut create = Command::new("borg");
    create
        .arg("create")
        .arg(format!("{}::bench", repo.display()))
        .arg(".")
        .current_dir(eml);
    env(&mut create);
    let started = Instant::now();
    run(&mut create);
    started.elapsed().as_secs_f64()
}
