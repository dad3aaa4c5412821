//! `m365-emulator serve`: runs the emulator until killed, after printing one JSON line with
//! everything a client needs (authority, graph, tenant_id, client_id, client_secret, admin).

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use m365_emulator::{Config, EmlImport, Emulator};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "m365-emulator",
    about = "A local Microsoft 365 tenant: identity platform and Graph"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until killed; prints one JSON line on stdout when ready.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value_t = 5)]
    users: usize,
    #[arg(long, default_value_t = 20)]
    messages_per_user: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A tenant spec (JSON); replaces the generated tenant.
    #[arg(long)]
    tenant: Option<PathBuf>,
    /// A directory of .eml files to import; pair each with --into.
    #[arg(long = "import-eml")]
    import_eml: Vec<PathBuf>,
    /// ADDRESS[/FOLDER/PATH] for the --import-eml at the same position.
    #[arg(long = "into")]
    into: Vec<String>,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// off, realistic (10,000 per 10 minutes, 4 concurrent) or scaled (500 per 5 s).
    #[arg(long, default_value = "off")]
    throttle: String,
    /// Requests per window for --throttle scaled.
    #[arg(long)]
    scaled_requests: Option<u32>,
    /// Window in milliseconds for --throttle scaled.
    #[arg(long)]
    scaled_per_ms: Option<u64>,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Fraction of Graph requests that fail (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Serve(args) = Cli::parse().command;
    if args.import_eml.len() != args.into.len() {
        bail!("each --import-eml DIR needs a matching --into ADDRESS[/FOLDER/PATH]");
    }
    let throttle = m365_emulator::control::parse_throttle(
        &args.throttle,
        args.scaled_requests,
        args.scaled_per_ms.map(Duration::from_millis),
    )
    .map_err(anyhow::Error::msg)?;
    let config = Config {
        users: args.users,
        messages_per_user: args.messages_per_user,
        seed: args.seed,
        throttle,
        concurrency_limit: args.concurrency,
        latency: Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        tenant_file: args.tenant,
        eml_imports: args
            .import_eml
            .into_iter()
            .zip(args.into)
            .map(|(dir, into)| EmlImport { dir, into })
            .collect(),
        port: args.port,
        ..Config::default()
    };
    let emulator = Emulator::start(config)
        .await
        .context("starting the emulator")?;
    println!("{}", serde_json::to_string(emulator.info())?);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emulator.shutdown().await;
    Ok(())
}
