//! The `strongroom` binary end to end against the emulator: the command flow, exit codes and
//! `--json`, and crash safety — a backup SIGKILLed at several points and run again leaves a
//! complete, verified archive, with no plaintext under the archive or the temp folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use m365_emulator::{Config, Emulator};
use strongroom_engine::api::{Engine, EngineOptions};
use strongroom_engine::snapshot_view;

struct Env {
    archive: PathBuf,
    tmp: PathBuf,
}

impl Env {
    /// An archive and a temp folder (the CLI's TMPDIR) inside `dir`.
    fn in_dir(dir: &Path) -> Env {
        let env = Env {
            archive: dir.join("archive"),
            tmp: dir.join("tmp"),
        };
        std::fs::create_dir_all(&env.tmp).unwrap();
        env
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        c.args(args)
            .env("STRONGROOM_ARCHIVE", &self.archive)
            .env("STRONGROOM_PASSPHRASE", "cli test passphrase")
            .env("STRONGROOM_INSECURE_KDF_FOR_TESTS", "1")
            .env("TMPDIR", &self.tmp)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "strongroom {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Deterministic "random" kill points (xorshift), so a failure can be replayed.
fn kill_points(n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x5eed_1234_abcd;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(150 + x % 900)
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backups_resume_into_a_complete_verified_archive() {
    let emu = Emulator::start(Config {
        users: 6,
        messages_per_user: 30,
        seed: 21,
        latency: Duration::from_millis(8),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env::in_dir(dir.path());
    let info = emu.info().clone();

    let env = tokio::task::spawn_blocking(move || {
        env.ok(&["init"]);
        // Wrong credentials are refused before anything is stored.
        let bad = env.run(&[
            "connect",
            "--name",
            "T",
            "--tenant",
            &info.tenant_id,
            "--client-id",
            &info.client_id,
            "--client-secret",
            "wrong",
            "--authority",
            &info.authority,
            "--graph-url",
            &info.graph,
        ]);
        assert_eq!(bad.status.code(), Some(1));
        connect(&env, &info, &["--backup-unlicensed"]);
        let grid: serde_json::Value =
            serde_json::from_str(&env.ok(&["mailboxes", "--json"])).unwrap();
        let rows = grid.as_array().unwrap();
        assert!(rows
            .iter()
            .any(|r| r["status"] == "skipped" && r["skipReason"] == "no_mailbox"));
        env.ok(&["activate", "--all"]);

        for delay in kill_points(3) {
            let mut child = env
                .command(&["backup", "--json"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            // Child::kill sends SIGKILL on Unix: no destructor, no cleanup runs.
            let _ = child.kill();
            child.wait().unwrap();
        }
        let out = env.run(&["backup", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["outcome"], "success");
        assert!(report["snapshot"].is_string());

        let verify: serde_json::Value =
            serde_json::from_str(&env.ok(&["verify", "--read-data", "--json"])).unwrap();
        assert_eq!(verify["ok"], true, "{verify}");
        let snapshots: serde_json::Value =
            serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
        assert!(snapshots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "backup"));
        env
    })
    .await
    .unwrap();

    // Every message of every mailbox, byte for byte, exactly once.
    let tenant = emu.tenant();
    let engine = Engine::open(
        &env.archive,
        "cli test passphrase",
        EngineOptions::default(),
    )
    .unwrap();
    let mut secrets = vec![info_secret(&emu)];
    let mut expected = 0;
    for user in tenant.users.iter().filter(|u| u.mailbox.is_some()) {
        secrets.push(user.user_principal_name.clone());
        secrets.push(user.display_name.clone());
        let stored = engine.messages(&user.id, None, None).unwrap();
        let mut ids: Vec<&str> = stored.iter().map(|m| m.entry.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), stored.len(), "duplicated messages");
        for folder in user
            .mailbox
            .as_ref()
            .unwrap()
            .folders
            .iter()
            .filter(|f| !f.search_folder)
        {
            for m in &folder.messages {
                expected += 1;
                let entry = &stored
                    .iter()
                    .find(|s| s.entry.id == m.immutable_id)
                    .expect("message backed up")
                    .entry;
                let got = snapshot_view::message_mime(engine.archive(), entry).unwrap();
                assert!(got == m.mime.as_ref(), "MIME differs");
                secrets.push(m.subject.clone());
            }
            if folder.parent_id.is_some() {
                secrets.push(folder.display_name.clone());
            }
        }
        assert_eq!(stored.len(), folder_total(user));
    }
    assert!(expected > 100);
    drop(engine);

    // Nothing readable under the archive folder or the temp folder the CLI used.
    let mut files = Vec::new();
    files_under(&env.archive, &mut files);
    files_under(&env.tmp, &mut files);
    // Short generic folder names ("Inbox") also occur by chance in random bytes; scan the
    // distinctive ones.
    secrets.retain(|s| s.len() >= 8);
    for path in files {
        // Lossy UTF-8 keeps every valid (ASCII) run intact, and std's substring search is fast.
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{s:?} in plaintext in {}",
                path.display()
            );
        }
    }
}

fn folder_total(user: &m365_emulator::control::UserSnapshot) -> usize {
    user.mailbox
        .as_ref()
        .map(|m| {
            m.folders
                .iter()
                .filter(|f| !f.search_folder)
                .map(|f| f.messages.len())
                .sum()
        })
        .unwrap_or(0)
}

fn info_secret(emu: &Emulator) -> String {
    emu.info().client_secret.clone()
}

#[test]
fn exit_codes_and_json_errors_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        archive: dir.path().join("a"),
        tmp: dir.path().to_owned(),
    };
    // No archive yet: failure, with a JSON error the UI and scripts can match on.
    let out = env.run(&["snapshots", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "no_archive");
    env.ok(&["init"]);
    let out = env
        .command(&["snapshots", "--json"])
        .env("STRONGROOM_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "wrong_passphrase");
    let out = env.run(&["backup", "--json"]);
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "not_found");
    let status: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["taskCount"], 0);
}

/// `connect` task "T" to the emulator's tenant with the app `client_id`/`secret`, plus
/// `extra` flags.
fn connect_as(
    env: &Env,
    info: &m365_emulator::ReadyInfo,
    client_id: &str,
    secret: &str,
    extra: &[&str],
) {
    let mut args = vec![
        "connect",
        "--name",
        "T",
        "--tenant",
        &info.tenant_id,
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        "--authority",
        &info.authority,
        "--graph-url",
        &info.graph,
    ];
    args.extend_from_slice(extra);
    env.ok(&args);
}

/// `connect` task "T" to the emulator's own app (every role), plus `extra` flags.
fn connect(env: &Env, info: &m365_emulator::ReadyInfo, extra: &[&str]) {
    connect_as(env, info, &info.client_id, &info.client_secret, extra);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_backup_killed_half_way_lists_and_reads_its_checkpoint() {
    use m365_emulator::{FaultKind, ScheduledFault};
    let emu = Emulator::start(Config {
        users: 6,
        messages_per_user: 20,
        seed: 23,
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env::in_dir(dir.path());
    let tenant = emu.tenant();
    let mut users = tenant
        .users
        .iter()
        .filter(|u| u.licensed && u.mailbox.is_some());
    let (done, stuck) = (users.next().unwrap().clone(), users.next().unwrap().clone());
    // The second mailbox's inbox times out again and again: its retries (minutes with the
    // CLI's backoff) keep the run from ever finishing, while the first mailbox completes
    // and commits a checkpoint.
    let stuck_inbox = stuck
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .find(|f| f.well_known.as_deref() == Some("inbox"))
        .unwrap()
        .id
        .clone();
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::GatewayTimeout,
            path_contains: Some(format!("mailFolders/{stuck_inbox}/messages/delta")),
        },
        10_000,
    );

    let info = emu.info().clone();
    let (active, parked) = (done.id.clone(), stuck.id.clone());
    let (env, checkpoint) = tokio::task::spawn_blocking(move || {
        env.ok(&["init"]);
        connect(&env, &info, &[]);
        env.ok(&["activate", &active, &parked]);
        let mut child = env
            .command(&["backup", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let checkpoint = loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no checkpoint within a minute"
            );
            let list: serde_json::Value =
                serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
            if let Some(c) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["kind"] == "checkpoint")
            {
                break c["id"].as_str().unwrap().to_owned();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = child.kill(); // SIGKILL: no cleanup runs
        child.wait().unwrap();
        (env, checkpoint)
    })
    .await
    .unwrap();

    let list: serde_json::Value = serde_json::from_str(&env.ok(&["snapshots", "--json"])).unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"backup"), "{kinds:?}");
    // `ls` at the checkpoint: the finished mailbox's folders, with its messages.
    let folders: serde_json::Value =
        serde_json::from_str(&env.ok(&["ls", &done.id, "--at", &checkpoint, "--json"])).unwrap();
    let listed: u64 = folders
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(listed as usize, folder_total(&done));
    assert!(listed > 0);

    // Restorable: every message of it reads back equal to `$value`.
    let engine = Engine::open(
        &env.archive,
        "cli test passphrase",
        EngineOptions::default(),
    )
    .unwrap();
    let stored = engine.messages(&done.id, None, Some(&checkpoint)).unwrap();
    assert_eq!(stored.len(), folder_total(&done));
    for folder in done.mailbox.as_ref().unwrap().folders.iter() {
        for m in &folder.messages {
            let got = engine
                .message_mime(&done.id, &m.immutable_id, Some(&checkpoint))
                .unwrap();
            assert!(got == m.mime.as_ref(), "MIME differs");
        }
    }
}

/// Plays the Global Administrator in the browser: sign in, consent, follow the redirect to
/// the CLI's loopback listener.
async fn admin_signs_in(emu: &Emulator, authorize: &str) {
    let landed = emu.sign_in_as_admin(authorize).await.unwrap();
    let back = reqwest::get(&landed).await.unwrap();
    assert!(back.status().is_success(), "the CLI took the redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_restore_after_granting_the_write_permission() {
    let emu = Emulator::start(Config {
        users: 2,
        messages_per_user: 10,
        seed: 5,
        ..Config::default()
    })
    .await
    .unwrap();
    let tenant = emu.tenant();
    let (admin, other) = (tenant.users[0].id.clone(), tenant.users[1].id.clone());
    // The backup app gets the read roles only, as Strongroom provisions it.
    let app = emu
        .register_app(&m365_emulator::AppSpec {
            roles: ["User.Read.All", "Mail.Read", "MailboxSettings.Read"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env::in_dir(dir.path());
    let info = emu.info().clone();
    let out_dir = dir.path().join("export");
    let inbox_messages: u64 = tenant.users[0]
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .filter(|f| !f.search_folder && (f.path == "Inbox" || f.path.starts_with("Inbox/")))
        .map(|f| f.messages.len() as u64)
        .sum();

    let (env, refused) = tokio::task::spawn_blocking({
        let (admin, other, out_dir) = (admin.clone(), other.clone(), out_dir.clone());
        move || {
            env.ok(&["init"]);
            connect_as(
                &env,
                &info,
                &app.client_id,
                &app.client_secret,
                &["--auto-activate"],
            );
            let report: serde_json::Value =
                serde_json::from_str(&env.ok(&["backup", "--json"])).unwrap();
            assert_eq!(report["outcome"], "success");

            // Export: EML with a manifest; a second export into the same folder is refused.
            let out = out_dir.to_str().unwrap();
            let export: serde_json::Value = serde_json::from_str(&env.ok(&[
                "export",
                "--mailbox",
                &admin,
                "--folder",
                "Inbox",
                "--format",
                "eml",
                "--out",
                out,
                "--json",
            ]))
            .unwrap();
            assert_eq!(export["messages"], inbox_messages);
            assert!(out_dir.join("manifest.json").is_file());
            assert!(out_dir.join("SHA256SUMS").is_file());
            let again = env.run(&[
                "export",
                "--mailbox",
                &admin,
                "--format",
                "mbox",
                "--out",
                out,
                "--json",
            ]);
            assert_eq!(again.status.code(), Some(1));
            let err: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            assert_eq!(err["error"]["code"], "output_not_empty");

            // Restore with read roles only: refused, with the code to act on.
            let refused = env.run(&[
                "restore",
                "--mailbox",
                &admin,
                "--folder",
                "Inbox",
                "--to",
                &other,
                "--new-folder",
                "--json",
            ]);
            (env, refused)
        }
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(err["error"]["code"], "restore_permission_needed", "{err}");

    // grant-restore prints the sign-in address and waits for the browser's redirect.
    let mut child = env
        .command(&["grant-restore", "--client-id", &emu.info().client_id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map(Result::unwrap)
            .find_map(|l| l.trim().starts_with("http").then(|| l.trim().to_owned()))
            .expect("a sign-in address")
    })
    .await
    .unwrap();
    admin_signs_in(&emu, &url).await;
    let granted = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(granted.status.success());
    assert!(String::from_utf8_lossy(&granted.stdout).contains("Mail.ReadWrite"));

    // Now the restore runs, and running it again restores nothing twice.
    tokio::task::spawn_blocking(move || {
        let args = [
            "restore",
            "--mailbox",
            &admin,
            "--folder",
            "Inbox",
            "--to",
            &other,
            "--json",
        ];
        let first: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
        assert_eq!(first["outcome"], "success", "{first}");
        assert_eq!(first["restored"], inbox_messages);
        let second: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
        assert_eq!(second["restored"], 0);
        assert_eq!(second["skipped"], inbox_messages);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_json_finds_a_planted_message_and_pages() {
    let emu = Emulator::start(Config {
        users: 3,
        messages_per_user: 4,
        seed: 33,
        ..Config::default()
    })
    .await
    .unwrap();
    let user = emu
        .tenant()
        .users
        .iter()
        .find(|u| u.mailbox.is_some() && u.licensed)
        .unwrap()
        .user_principal_name
        .clone();
    for n in 0..3 {
        emu.add_message(
            &user,
            "inbox",
            format!("From: Quill <quill@fabrikam.com>\r\nSubject: Zorblax report {n}\r\nContent-Type: text/plain\r\n\r\nThe zorblax figures, part {n}.\r\n").as_bytes(),
        )
        .unwrap();
        emu.advance_clock(Duration::from_secs(60));
    }
    let dir = tempfile::tempdir().unwrap();
    let env = Env::in_dir(dir.path());
    let info = emu.info().clone();
    tokio::task::spawn_blocking(move || {
        env.ok(&["init"]);
        connect(&env, &info, &["--auto-activate"]);
        env.ok(&["backup", "--json"]);
        let page = |n: &str| -> serde_json::Value {
            serde_json::from_str(&env.ok(&[
                "search",
                "zorblax from:quill",
                "--json",
                "--page-size",
                "2",
                "--page",
                n,
            ]))
            .unwrap()
        };
        let first = page("1");
        assert_eq!(first["total"], 3);
        assert_eq!(first["page"], 1);
        let hits = first["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0]["subject"], "Zorblax report 2");
        assert_eq!(hits[0]["mailbox"], user.as_str());
        assert_eq!(hits[0]["folderPath"], "Inbox");
        assert!(hits[0]["snippet"].as_str().unwrap().contains("zorblax"));
        assert!(hits[0]["deletedMs"].is_null());
        assert!(hits[0]["dateMs"].as_i64().unwrap() > hits[1]["dateMs"].as_i64().unwrap());
        for key in [
            "messageId",
            "snapshotId",
            "userId",
            "from",
            "size",
            "hasAttachments",
        ] {
            assert!(!hits[0][key].is_null(), "{key}");
        }
        assert_eq!(page("2")["hits"][0]["subject"], "Zorblax report 0");
        let text = env.ok(&["search", "zorblax"]);
        assert!(text.contains("Zorblax report 1") && text.contains("3 match(es)"));
        let out = env.run(&["search", "before:someday", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(err["error"]["code"], "invalid_argument");
    })
    .await
    .unwrap();
}
