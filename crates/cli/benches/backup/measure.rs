//! Wall time, CPU time and peak resident memory of exactly one child process.
//!
//! The benchmark binary runs itself again as a thin parent (`__measure PROGRAM ARGS…`) that
//! starts the command, waits for it and reads `getrusage(RUSAGE_CHILDREN)`. That parent has
//! only the one child, so `ru_maxrss` is that child's peak RSS (the kernel's own high-water
//! mark, not a sample), whatever else the benchmark process has run or holds in memory itself
//! (the in-process emulator, for one).

use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};

/// First argument that switches the binary into the measuring parent.
pub const MEASURE_ARG: &str = "__measure";
/// The measuring parent's last stderr line starts with this.
const TAG: &str = "__measured";

/// What one measured run of a command gave.
#[derive(Debug)]
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// From just before the child starts until it has exited.
    pub wall_s: f64,
    /// User plus system CPU time of the child.
    pub cpu_s: f64,
    pub max_rss_kib: u64,
}

impl Measured {
    pub fn peak_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    /// Panics with the child's stderr unless it exited with one of `codes`.
    pub fn expect_exit(&self, what: &str, codes: &[i32]) {
        let code = self.status.code().unwrap_or(-1);
        assert!(
            codes.contains(&code),
            "{what} exited with {:?}: {}",
            self.status,
            self.stderr
        );
    }
}

/// Runs `cmd` (program, arguments, environment and folder are taken from it) under the
/// measuring parent, capturing its stdout and stderr.
///
/// Dirty pages are written back first, so the run does not pay for an earlier one's: the
/// kernel makes whoever writes next wait for them (`balance_dirty_pages`), which on a slow
/// disk cost the second tool of a CPU-bound round up to a fifth of its time.
pub fn run(cmd: &Command) -> Measured {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    assert!(synced, "sync (coreutils) runs");
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut parent = Command::new(exe);
    parent
        .arg(MEASURE_ARG)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => parent.env(key, v),
            None => parent.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        parent.current_dir(dir);
    }
    let out = parent.output().expect("the measuring parent starts");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, line) = stderr
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", stderr.trim_end()));
    let fields: Vec<&str> = line
        .strip_prefix(TAG)
        .unwrap_or_else(|| panic!("{cmd:?}: the measuring parent failed: {stderr}"))
        .split_whitespace()
        .collect();
    let num = |i: usize| -> f64 { fields[i].parse().expect("a measured number") };
    Measured {
        status: out.status,
        stdout: out.stdout,
        stderr: rest.to_owned(),
        wall_s: num(0),
        cpu_s: num(1),
        max_rss_kib: num(2) as u64,
    }
}

/// The measuring parent: `args` is PROGRAM ARGS…; exits with the child's exit code.
pub fn parent_main(args: &[String]) -> ! {
    let (program, rest) = args.split_first().expect("__measure PROGRAM [ARGS…]");
    let started = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .status()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let wall = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu = seconds(usage.user_time()) + seconds(usage.system_time());
    // Linux reports ru_maxrss in KiB.
    eprintln!("\n{TAG} {wall:.4} {cpu:.4} {}", usage.max_rss());
    std::process::exit(status.code().unwrap_or(1));
}
