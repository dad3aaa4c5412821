//! `strongroom`: the command-line face of the engine, for scripts, servers and benchmarks.
//!
//! Only `strongroom status` exists yet; the backup, restore and export commands arrive with
//! issues 5 and 6.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Encrypted local backup of Microsoft 365"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the engine's version and status.
    Status,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Status => {
            let status = strongroom_engine::api::status();
            println!(
                "strongroom {} — {} task(s)",
                status.version, status.task_count
            );
        }
    }
    Ok(())
}
