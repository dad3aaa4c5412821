//! Export end to end: generated tenant → backup → EML files byte-identical to the
//! emulator's `$value`, mbox files that Python's `mailbox` module reads back message for
//! message, manifests whose SHA-256s check out, safe names for hostile folder names, and the
//! refusal to write into a non-empty directory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use m365_emulator::{Config, Emulator, TenantSnapshot};
use sha2::{Digest, Sha256};
use strongroom_engine::api::Engine;
use strongroom_engine::cancel::CancelToken;
use strongroom_engine::export::{ExportFormat, ExportRequest, Manifest, MANIFEST_FILE};
use strongroom_engine::progress;
use strongroom_engine::report::MailboxStatus;
use strongroom_engine::ErrorCode;

mod support;
use support::*;

/// A message whose body has lines an mbox reader would take for separators.
const FROM_LINES: &[u8] = b"From: Ann <ann@example.com>\r\nTo: Bob <bob@example.com>\r\n\
Subject: From lines\r\nMessage-ID: <from-lines@example.com>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFrom the top\r\n>From quoted\r\n\
>>From twice\r\nFromage\r\n\r\nFrom the end";

async fn backed_up_tenant(dir: &Path) -> (Emulator, Engine, Vec<String>) {
    let emu = Emulator::start(Config {
        users: 3,
        messages_per_user: 15,
        seed: 61,
        ..Config::default()
    })
    .await
    .unwrap();
    let admin = emu.tenant().users[0].id.clone();
    // Hostile folder names: separators, dot-dot, control characters, a device name, and two
    // names that become the same file name.
    for name in [
        "../escape",
        "a/b",
        "a_b",
        "CON",
        "tab\there",
        "..",
        "Inbox.mbox",
    ] {
        let id = emu.create_folder(&admin, "Inbox", name, false).unwrap();
        emu.add_message(&admin, &id, FROM_LINES).unwrap();
    }
    emu.add_message(&admin, "Inbox", FROM_LINES).unwrap();
    let (engine, task) = setup(&emu, dir, auto_activate()).await;
    let report = backup(&engine, &task).await;
    let mut users: Vec<String> = report
        .mailboxes
        .iter()
        .filter(|m| m.status == MailboxStatus::BackedUp)
        .map(|m| m.user_id.clone())
        .collect();
    users.sort_by_key(|u| *u != admin); // the admin, with the planted folders, first
    (emu, engine, users)
}

fn export(engine: &Engine, user: &str, format: ExportFormat, out: &Path) -> Manifest {
    let report = engine
        .export(
            &ExportRequest {
                mailbox: user.into(),
                folder: None,
                at: None,
                format,
                out: out.to_owned(),
                overwrite: false,
            },
            progress::silent(),
            &CancelToken::new(),
        )
        .unwrap();
    assert!(!report.cancelled);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert!(manifest.complete);
    assert_eq!(manifest.files.len() as u64, report.files);
    assert_eq!(manifest.snapshot, report.snapshot);
    check_manifest(out, &manifest);
    manifest
}

/// Every listed file exists inside `out` with the listed size and SHA-256, `SHA256SUMS`
/// agrees, and nothing else (no temporary file) was left behind.
fn check_manifest(out: &Path, manifest: &Manifest) {
    let root = out.canonicalize().unwrap();
    for f in &manifest.files {
        assert!(!f.path.split('/').any(|c| c == ".." || c.is_empty()));
        let path = out.join(&f.path).canonicalize().unwrap();
        assert!(
            path.starts_with(&root),
            "a file escaped the output directory"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, f.size);
        assert_eq!(hex(&Sha256::digest(&bytes)), f.sha256);
    }
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), manifest.files.len());
    let status = std::process::Command::new("sha256sum")
        .args(["--check", "--quiet", "--strict", "SHA256SUMS"])
        .current_dir(out)
        .status();
    if let Ok(status) = status {
        assert!(status.success(), "sha256sum -c rejects the export");
    }
    let mut all = Vec::new();
    files_under(out, &mut all);
    assert_eq!(
        all.len(),
        manifest.files.len() + 2,
        "only the listed files, the manifest and SHA256SUMS"
    );
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The tenant's messages of one user by immutable id, with their folder path.
fn user_messages(tenant: &TenantSnapshot, user: &str) -> HashMap<String, (String, Vec<u8>)> {
    let u = tenant.users.iter().find(|u| u.id == user).unwrap();
    let mut out = HashMap::new();
    for f in u.mailbox.as_ref().unwrap().folders.iter() {
        if f.search_folder {
            continue;
        }
        for m in &f.messages {
            out.insert(m.immutable_id.clone(), (f.path.clone(), m.mime.to_vec()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eml_export_is_byte_identical_to_the_tenant_with_safe_names() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, engine, users) = backed_up_tenant(&dir.path().join("archive")).await;
    let tenant = emu.tenant();
    assert!(users.len() >= 2);
    for (i, user) in users.iter().enumerate() {
        let out = dir.path().join(format!("eml-{i}"));
        let manifest = export(&engine, user, ExportFormat::Eml, &out);
        let expected = user_messages(&tenant, user);
        assert_eq!(manifest.files.len(), expected.len(), "one file per message");
        for f in &manifest.files {
            let id = f.message_id.as_ref().unwrap();
            let (folder, mime) = &expected[id];
            assert_eq!(&f.folder_path, folder);
            let bytes = std::fs::read(out.join(&f.path)).unwrap();
            assert!(bytes == *mime, "an exported file differs from $value");
        }
    }
    // The hostile names stayed inside, one directory each.
    let admin = dir.path().join("eml-0").join("Inbox");
    for name in [
        "_CON",
        "a_b",
        "a_b (2)",
        "tab_here",
        "_",
        ".._escape",
        "Inbox.mbox",
    ] {
        assert!(admin.join(name).is_dir(), "{name} missing");
    }

    // Into a non-empty directory: refused, unless overwriting is allowed.
    let again = ExportRequest {
        mailbox: users[0].clone(),
        folder: Some("Inbox".into()),
        at: None,
        format: ExportFormat::Eml,
        out: dir.path().join("eml-0"),
        overwrite: false,
    };
    let err = engine
        .export(&again, progress::silent(), &CancelToken::new())
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::OutputNotEmpty);
    let report = engine
        .export(
            &ExportRequest {
                overwrite: true,
                ..again
            },
            progress::silent(),
            &CancelToken::new(),
        )
        .unwrap();
    assert!(report.messages > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbox_export_reads_back_with_python_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, engine, users) = backed_up_tenant(&dir.path().join("archive")).await;
    let tenant = emu.tenant();
    let user = &users[0];
    let out = dir.path().join("mbox");
    let manifest = export(&engine, user, ExportFormat::Mbox, &out);

    // Python reads each file: per message its Message-ID and the SHA-256 of its bytes with
    // the mboxrd quoting undone (LF line endings, trailing newlines trimmed).
    let script = r#"
import hashlib, json, mailbox, re, sys
out = {}
for path in sys.argv[1:]:
    box = mailbox.mbox(path, create=False)
    msgs = []
    for key in box.keys():
        raw = box.get_bytes(key)
        raw = re.sub(rb'(?m)^>(>*From )', rb'\1', raw).rstrip(b'\n')
        msg = box.get_message(key)
        msgs.append({"id": msg["Message-ID"], "sha": hashlib.sha256(raw).hexdigest()})
    out[path] = msgs
print(json.dumps(out))
"#;
    let paths: Vec<String> = manifest
        .files
        .iter()
        .map(|f| out.join(&f.path).to_string_lossy().into_owned())
        .collect();
    let result = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3 runs");
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let read: BTreeMap<String, Vec<serde_json::Value>> =
        serde_json::from_slice(&result.stdout).unwrap();

    let expected = user_messages(&tenant, user);
    let mut total = 0;
    let mut from_lines_seen = false;
    for (f, path) in manifest.files.iter().zip(&paths) {
        let in_folder: Vec<&Vec<u8>> = expected
            .values()
            .filter(|(folder, _)| *folder == f.folder_path)
            .map(|(_, mime)| mime)
            .collect();
        let got = &read[path];
        assert_eq!(got.len(), in_folder.len(), "message count of {}", f.path);
        assert_eq!(f.messages, Some(in_folder.len() as u64));
        let mut want: Vec<String> = in_folder
            .iter()
            .map(|mime| {
                let lf: Vec<u8> = String::from_utf8_lossy(mime)
                    .replace("\r\n", "\n")
                    .trim_end_matches('\n')
                    .into();
                hex(&Sha256::digest(&lf))
            })
            .collect();
        let mut have: Vec<String> = got
            .iter()
            .map(|m| m["sha"].as_str().unwrap().to_owned())
            .collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "content of {}", f.path);
        for m in got {
            let id = m["id"].as_str().unwrap_or_default();
            assert!(id.starts_with('<'), "every message has its Message-ID");
            from_lines_seen |= id == "<from-lines@example.com>";
        }
        total += got.len();
    }
    assert_eq!(total, expected.len());
    assert!(from_lines_seen, "the message with From lines was exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_export_lists_only_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, engine, users) = backed_up_tenant(&dir.path().join("archive")).await;
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let sink: progress::ProgressSink = std::sync::Arc::new(move |e: &progress::ProgressEvent| {
        if let progress::ProgressEvent::Overall(o) = e {
            if o.items >= 3 {
                trigger.cancel();
            }
        }
    });
    let out = dir.path().join("cancelled");
    let report = engine
        .export(
            &ExportRequest {
                mailbox: users[0].clone(),
                folder: None,
                at: None,
                format: ExportFormat::Eml,
                out: out.clone(),
                overwrite: false,
            },
            sink,
            &cancel,
        )
        .unwrap();
    assert!(report.cancelled);
    assert_eq!(report.messages, 3);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert!(!manifest.complete);
    check_manifest(&out, &manifest);
}
