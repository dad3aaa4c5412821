//! `strongroom`: the command-line face of the engine, for scripts, servers and benchmarks.
//! Every command calls `strongroom_engine::api`; docs/CLI.md documents commands, exit codes
//! and the `--json` output.
//!
//! Exit codes: 0 success, 2 partial success (a backup where some mailboxes failed), 1 failure.

/// `println!` that ignores a closed stdout (`strongroom ls … | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod allocator;
mod demo;
mod loopback;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use strongroom_archive::KdfParams;
use strongroom_engine::accounts::Selection;
use strongroom_engine::api::{ConnectRequest, Engine, EngineOptions};
use strongroom_engine::progress::{self, ProgressEvent, ProgressSink};
use strongroom_engine::report::{Outcome, RunReport};
use strongroom_engine::task::{Credential, TaskSettings};

/// Set to 1 to create archives with a trivial KDF cost. For tests only: such an archive's
/// passphrase is no protection.
const INSECURE_KDF_ENV: &str = "STRONGROOM_INSECURE_KDF_FOR_TESTS";

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Encrypted local backup of Microsoft 365"
)]
struct Cli {
    /// The archive folder.
    #[arg(long, global = true, env = "STRONGROOM_ARCHIVE")]
    archive: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the engine's version and status (with --archive: the archive's task count).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Create a new archive (passphrase from STRONGROOM_PASSPHRASE or a prompt).
    Init,
    /// Create a backup task for a tenant; verifies the credentials first.
    Connect {
        #[arg(long)]
        name: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        client_id: String,
        /// The app's client secret.
        #[arg(
            long,
            conflicts_with = "certificate",
            required_unless_present = "certificate"
        )]
        client_secret: Option<String>,
        /// A PEM file holding the app's certificate and private key.
        #[arg(long)]
        certificate: Option<PathBuf>,
        #[arg(long)]
        authority: Option<String>,
        #[arg(long)]
        graph_url: Option<String>,
        /// Back up unlicensed accounts (shared, room, external).
        #[arg(long)]
        backup_unlicensed: bool,
        /// Activate new mailboxes automatically.
        #[arg(long)]
        auto_activate: bool,
    },
    /// Discover the tenant's accounts: licence, mailbox type, backup status.
    Mailboxes {
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Activate accounts for backup.
    Activate {
        #[arg(long)]
        task: Option<String>,
        #[arg(long, conflicts_with = "addresses")]
        all: bool,
        #[arg(required_unless_present = "all")]
        addresses: Vec<String>,
    },
    /// Back up every active mailbox of the task.
    Backup {
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List snapshots.
    Snapshots {
        #[arg(long)]
        json: bool,
    },
    /// List a mailbox's folders, or a folder's messages, at a snapshot (default: newest).
    Ls {
        address: String,
        folder: Option<String>,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check the archive's structure (and with --read-data every byte).
    Verify {
        #[arg(long)]
        read_data: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete superseded checkpoint snapshots and the data only they reached.
    Prune {
        #[arg(long)]
        json: bool,
    },
    /// Recreate the catalog from the archive alone.
    Rebuild {
        #[arg(long)]
        json: bool,
    },
    /// Write a mailbox or folder at a snapshot to a directory as EML or mbox files, with a
    /// manifest (paths, sizes, SHA-256).
    Export {
        #[arg(long)]
        mailbox: String,
        /// A folder path (or id); its subfolders are included. Default: the whole mailbox.
        #[arg(long)]
        folder: Option<String>,
        /// A snapshot id or unique prefix. Default: the newest backup.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        #[arg(long)]
        out: PathBuf,
        /// Write into a non-empty directory, replacing files of the same name.
        #[arg(long)]
        overwrite: bool,
        #[arg(long)]
        json: bool,
    },
    /// Restore a message, a folder (with its subfolders) or a whole mailbox from a snapshot
    /// into Microsoft 365: to the original mailbox or another, at the original folder paths
    /// or under a new folder "Restored <date>".
    Restore {
        #[arg(long)]
        mailbox: String,
        /// A folder path (or id); its subfolders are included. Default: the whole mailbox.
        #[arg(long, conflicts_with = "message")]
        folder: Option<String>,
        /// One message's id (as `ls --json` shows it).
        #[arg(long)]
        message: Option<String>,
        /// A snapshot id or unique prefix. Default: the newest backup.
        #[arg(long)]
        at: Option<String>,
        /// The target mailbox. Default: the original one.
        #[arg(long)]
        to: Option<String>,
        /// Restore under a new top-level folder "Restored <date>".
        #[arg(long)]
        new_folder: bool,
        #[arg(long)]
        json: bool,
    },
    /// Grant the task's app the write roles a restore needs, signed in as a Global
    /// Administrator in a browser (backups need only read roles).
    GrantRestore {
        #[arg(long)]
        task: Option<String>,
        /// The public client to sign in with. Default: the task's app id.
        #[arg(long)]
        client_id: Option<String>,
        /// Loopback port for the sign-in redirect (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Search every backed-up message at every point in time, newest first. Filters:
    /// from: to: subject: folder: mailbox: attachment: has:attachment after:DATE before:DATE.
    Search {
        query: String,
        /// Which page of results (1-based).
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 20)]
        page_size: u32,
        #[arg(long)]
        json: bool,
    },
    /// Back up a generated demo tenant (in-process emulator) into an archive.
    Demo {
        #[arg(long, default_value_t = 5)]
        users: usize,
        #[arg(long, default_value_t = 20)]
        messages_per_user: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormatArg {
    Eml,
    Mbox,
}

fn main() -> ExitCode {
    allocator::bound_retention();
    let cli = Cli::parse();
    let json = cli.command.json();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let engine_error = e.downcast_ref::<strongroom_engine::Error>();
            if json {
                let value = match engine_error {
                    Some(err) => serde_json::json!({ "error": err }),
                    None => {
                        serde_json::json!({ "error": { "code": "internal", "message": format!("{e:#}") } })
                    }
                };
                out!("{value}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

impl Command {
    fn json(&self) -> bool {
        match self {
            Command::Status { json }
            | Command::Mailboxes { json, .. }
            | Command::Backup { json, .. }
            | Command::Snapshots { json }
            | Command::Ls { json, .. }
            | Command::Verify { json, .. }
            | Command::Prune { json }
            | Command::Rebuild { json }
            | Command::Demo { json, .. }
            | Command::Export { json, .. }
            | Command::Restore { json, .. }
            | Command::Search { json, .. } => *json,
            Command::Init
            | Command::Connect { .. }
            | Command::Activate { .. }
            | Command::GrantRestore { .. } => false,
        }
    }
}

fn kdf() -> KdfParams {
    if std::env::var(INSECURE_KDF_ENV).as_deref() == Ok("1") {
        KdfParams::insecure_for_tests()
    } else {
        KdfParams::production()
    }
}

fn passphrase(confirm: bool) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("STRONGROOM_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("Archive passphrase: ").context("reading the passphrase")?;
    if confirm && rpassword::prompt_password("Repeat passphrase: ")? != p {
        bail!("the passphrases differ");
    }
    if p.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    Ok(p)
}

fn archive_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    cli.archive
        .clone()
        .ok_or_else(|| anyhow!("no archive: pass --archive DIR or set STRONGROOM_ARCHIVE"))
}

fn open(cli: &Cli) -> anyhow::Result<Engine> {
    let dir = archive_dir(cli)?;
    Ok(Engine::open(
        &dir,
        &passphrase(false)?,
        EngineOptions::default(),
    )?)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Status { json } => {
            let status = match &cli.archive {
                Some(_) => open(&cli)?.status()?,
                None => strongroom_engine::api::status(),
            };
            if *json {
                output::json(&status);
            } else {
                out!(
                    "strongroom {} — {} task(s)",
                    status.version,
                    status.task_count
                );
            }
        }
        Command::Init => {
            let dir = archive_dir(&cli)?;
            Engine::init(&dir, &passphrase(true)?, kdf(), EngineOptions::default())?;
            out!("created an archive in {}", dir.display());
        }
        Command::Connect {
            name,
            tenant,
            client_id,
            client_secret,
            certificate,
            authority,
            graph_url,
            backup_unlicensed,
            auto_activate,
        } => {
            let engine = open(&cli)?;
            let credential = match (client_secret, certificate) {
                (Some(s), _) => Credential::Secret(s.clone()),
                (None, Some(path)) => Credential::Certificate(
                    std::fs::read_to_string(path).context("reading the certificate PEM")?,
                ),
                (None, None) => bail!("pass --client-secret or --certificate"),
            };
            let task = engine
                .connect(ConnectRequest {
                    name: name.clone(),
                    tenant_id: tenant.clone(),
                    client_id: client_id.clone(),
                    credential,
                    authority: authority.clone(),
                    graph_url: graph_url.clone(),
                    settings: TaskSettings {
                        backup_unlicensed: *backup_unlicensed,
                        auto_activate_new: *auto_activate,
                        ..TaskSettings::default()
                    },
                })
                .await?;
            out!("connected task {:?}: credentials verified", task.name);
        }
        Command::Mailboxes { task, json } => {
            let engine = open(&cli)?;
            let task = engine.task(task.as_deref())?;
            let grid = engine.mailboxes(&task).await?;
            if *json {
                output::json(&grid);
            } else {
                output::mailboxes(&grid);
            }
        }
        Command::Activate {
            task,
            all,
            addresses,
        } => {
            let engine = open(&cli)?;
            let task = engine.task(task.as_deref())?;
            if engine.accounts(&task)?.is_empty() {
                engine.mailboxes(&task).await?;
            }
            let selection = if *all {
                Selection::All
            } else {
                Selection::Addresses(addresses.clone())
            };
            let n = engine.activate(&task, &selection)?;
            out!("activated {n} mailbox(es)");
        }
        Command::Backup { task, json } => {
            let engine = open(&cli)?;
            let task = engine.task(task.as_deref())?;
            let report = backup(&engine, &task, *json).await?;
            return Ok(exit_code(&report));
        }
        Command::Snapshots { json } => {
            let list = open(&cli)?.snapshots()?;
            if *json {
                output::json(&list);
            } else {
                output::snapshots(&list);
            }
        }
        Command::Ls {
            address,
            folder,
            at,
            json,
        } => {
            let engine = open(&cli)?;
            match folder {
                None => {
                    let folders = engine.folders(address, at.as_deref())?;
                    if *json {
                        output::json(&folders);
                    } else {
                        output::folders(&folders);
                    }
                }
                Some(path) => {
                    let messages = engine.messages(address, Some(path), at.as_deref())?;
                    if *json {
                        output::json(&messages);
                    } else {
                        output::messages(&messages);
                    }
                }
            }
        }
        Command::Verify { read_data, json } => {
            let report = open(&cli)?.verify(*read_data)?;
            if *json {
                output::json(&report);
            } else {
                for f in &report.findings {
                    out!(
                        "{} {}",
                        if f.damage { "DAMAGE" } else { "note  " },
                        f.description
                    );
                }
                out!(
                    "{}",
                    if report.ok {
                        "archive OK"
                    } else {
                        "archive DAMAGED"
                    }
                );
            }
            return Ok(if report.ok { 0 } else { 1 });
        }
        Command::Prune { json } => {
            let summary = open(&cli)?.prune()?;
            if *json {
                output::json(&summary);
            } else {
                out!(
                    "kept {} snapshot(s), removed {}, deleted {} pack(s), wrote {}",
                    summary.snapshots_kept,
                    summary.snapshots_removed,
                    summary.packs_deleted,
                    summary.packs_written
                );
            }
        }
        Command::Rebuild { json } => {
            let summary = open(&cli)?.rebuild()?;
            if *json {
                output::json(&summary);
            } else {
                out!(
                    "catalog rebuilt: {} task(s), {} account(s), {} folder(s), {} snapshot(s)",
                    summary.tasks,
                    summary.accounts,
                    summary.folders,
                    summary.snapshots
                );
            }
        }
        Command::Export {
            mailbox,
            folder,
            at,
            format,
            out,
            overwrite,
            json,
        } => {
            let engine = open(&cli)?;
            let request = strongroom_engine::export::ExportRequest {
                mailbox: mailbox.clone(),
                folder: folder.clone(),
                at: at.clone(),
                format: match format {
                    ExportFormatArg::Eml => strongroom_engine::export::ExportFormat::Eml,
                    ExportFormatArg::Mbox => strongroom_engine::export::ExportFormat::Mbox,
                },
                out: out.clone(),
                overwrite: *overwrite,
            };
            let report = engine.export(
                &request,
                progress::silent(),
                &strongroom_engine::cancel::CancelToken::new(),
            )?;
            if *json {
                output::json(&report);
            } else {
                out!(
                    "exported {} message(s) from {} folder(s) into {} file(s), {} bytes, in {}; manifest: {}",
                    report.messages,
                    report.folders,
                    report.files,
                    report.bytes,
                    report.out.display(),
                    strongroom_engine::export::MANIFEST_FILE
                );
            }
        }
        Command::Restore {
            mailbox,
            folder,
            message,
            at,
            to,
            new_folder,
            json,
        } => {
            let engine = open(&cli)?;
            let request = strongroom_engine::restore::RestoreRequest {
                mailbox: mailbox.clone(),
                folder: folder.clone(),
                message: message.clone(),
                at: at.clone(),
                to: to.clone(),
                new_folder: *new_folder,
            };
            let report = engine
                .restore(
                    &request,
                    progress_bar(*json),
                    &strongroom_engine::cancel::CancelToken::new(),
                )
                .await?;
            if *json {
                output::json(&report);
            } else {
                output::restore_report(&report);
            }
            return Ok(match report.outcome {
                Outcome::Success => 0,
                Outcome::Partial => 2,
                Outcome::Failed => 1,
            });
        }
        Command::GrantRestore {
            task,
            client_id,
            port,
        } => {
            let engine = open(&cli)?;
            let task = engine.task(task.as_deref())?;
            let listener = std::net::TcpListener::bind(("127.0.0.1", *port))
                .context("listening for the sign-in redirect")?;
            let redirect = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
            let grant = engine.begin_grant_restore(&task, client_id.as_deref(), &redirect)?;
            eprintln!(
                "Open this address in a browser and sign in as a Global Administrator:\n\n  {}\n",
                grant.url
            );
            let landed = tokio::task::spawn_blocking(move || loopback::redirect(&listener))
                .await
                .context("waiting for the sign-in")??;
            let roles = engine
                .finish_grant_restore(
                    grant,
                    &format!("{}{}", redirect.trim_end_matches('/'), landed),
                )
                .await?;
            out!(
                "granted {} to task {:?}: restores may now write",
                roles.join(", "),
                task.name
            );
        }
        Command::Search {
            query,
            page,
            page_size,
            json,
        } => {
            let results = open(&cli)?.search(&strongroom_engine::search::SearchQuery {
                query: query.clone(),
                page: *page,
                page_size: *page_size,
            })?;
            if *json {
                output::json(&results);
            } else {
                output::search(&results);
            }
        }
        Command::Demo {
            users,
            messages_per_user,
            json,
        } => {
            return demo::run(
                cli.archive.clone(),
                *users,
                *messages_per_user,
                *json,
                kdf(),
            )
            .await;
        }
    }
    Ok(0)
}

/// Runs a backup with a progress bar on a terminal, prints the report, returns the exit code.
async fn backup(
    engine: &Engine,
    task: &strongroom_engine::task::Task,
    json: bool,
) -> anyhow::Result<RunReport> {
    let report = engine.backup(task, progress_bar(json)).await?;
    if json {
        output::json(&report);
    } else {
        output::report(&report);
    }
    Ok(report)
}

/// A progress bar on a terminal (not with --json), else nothing.
fn progress_bar(json: bool) -> ProgressSink {
    if !json && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} items  {msg}  [{elapsed_precise}, eta {eta}]",
            )
            .expect("static template"),
        );
        Arc::new(move |event: &ProgressEvent| {
            if let ProgressEvent::Overall(o) = event {
                bar.set_length(o.items_total);
                bar.set_position(o.items);
                let throttled = if o.throttled_mailboxes > 0 {
                    format!(", {} mailbox(es) throttled", o.throttled_mailboxes)
                } else if o.throttle_wait_ms > 0 {
                    format!(", {:.1} s throttled", o.throttle_wait_ms as f64 / 1000.0)
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "{:.1} MiB, {:.1} MiB/s{throttled}",
                    o.bytes as f64 / 1048576.0,
                    o.bytes_per_second / 1048576.0
                ));
            }
        })
    } else {
        progress::silent()
    }
}

fn exit_code(report: &RunReport) -> u8 {
    match report.outcome {
        Outcome::Success => 0,
        Outcome::Partial => 2,
        Outcome::Failed => 1,
    }
}
