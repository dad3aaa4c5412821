//! The `strongroom` binary as a user runs it: `init`, `connect` to the emulated tenant,
//! `activate --all`, then the measured `backup --json`. The archive uses the production KDF
//! (Argon2id, 64 MiB), so every command pays what a real one pays to open the archive.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use m365_emulator::ReadyInfo;

use crate::measure::{self, Measured};

const PASSPHRASE: &str = "benchmark passphrase";

/// One archive folder and the task connected to one emulator.
pub struct Archive {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A measured `strongroom backup --json` and its report.
pub struct Backup {
    pub run: Measured,
    pub report: serde_json::Value,
}

impl Backup {
    /// Messages held after the backup, over every mailbox.
    pub fn messages(&self) -> u64 {
        self.mailboxes()
            .map(|m| m["messages"].as_u64().unwrap_or(0))
            .sum()
    }

    /// MIME bytes downloaded and stored by this run.
    pub fn bytes(&self) -> u64 {
        self.mailboxes()
            .map(|m| m["bytes"].as_u64().unwrap_or(0))
            .sum()
    }

    pub fn backed_up_mailboxes(&self) -> usize {
        self.mailboxes()
            .filter(|m| m["status"] == "backed_up")
            .count()
    }

    /// Failed mailboxes with their errors.
    pub fn failures(&self) -> Vec<String> {
        self.mailboxes()
            .filter(|m| m["status"] == "failed")
            .map(|m| format!("{}: {}", m["address"], m["error"]))
            .collect()
    }

    fn mailboxes(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.report["mailboxes"].as_array().into_iter().flatten()
    }
}

impl Archive {
    /// Creates an archive in `scratch/archive` with a task for the emulator's tenant, every
    /// mailbox (shared and room mailboxes too) activated.
    pub fn connect(scratch: &Path, info: &ReadyInfo) -> Archive {
        let archive = Archive {
            dir: scratch.join("archive"),
            tmp: scratch.join("tmp"),
        };
        std::fs::create_dir_all(&archive.tmp).expect("temp folder");
        archive.ok(&["init"]);
        archive.ok(&[
            "connect",
            "--name",
            "Bench",
            "--tenant",
            &info.tenant_id,
            "--client-id",
            &info.client_id,
            "--client-secret",
            &info.client_secret,
            "--authority",
            &info.authority,
            "--graph-url",
            &info.graph,
            "--backup-unlicensed",
        ]);
        archive.ok(&["activate", "--all"]);
        archive
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        c.args(args)
            .env("STRONGROOM_ARCHIVE", &self.dir)
            .env("STRONGROOM_PASSPHRASE", PASSPHRASE)
            .env_remove("STRONGROOM_INSECURE_KDF_FOR_TESTS")
            .env("TMPDIR", &self.tmp)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) {
        let out = self.command(args).output().expect("strongroom runs");
        assert!(
            out.status.success(),
            "strongroom {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `strongroom backup --json`, measured; panics when the run failed as a whole (exit 1).
    /// A partial run (exit 2) is returned: its failed mailboxes are part of the result.
    pub fn backup(&self) -> Backup {
        let run = measure::run(&self.command(&["backup", "--json"]));
        run.expect_exit("strongroom backup", &[0, 2]);
        let report = serde_json::from_slice(&run.stdout).expect("backup --json report");
        Backup { run, report }
    }

    /// Bytes of every file under the archive folder.
    pub fn size(&self) -> u64 {
        crate::dir_size(&self.dir)
    }
}
