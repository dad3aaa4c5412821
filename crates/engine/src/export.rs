//! Export: a mailbox (or one folder with its subfolders) at a point in time, written to a
//! directory the user chose, as standard files an auditor or another mail program can open.
//!
//! - **EML**: one `.eml` file per message holding exactly the MIME that was backed up, in a
//!   directory per folder (the folder tree is kept).
//! - **mbox**: one mboxrd file per folder (`Inbox.mbox`, and `Inbox/Projects.mbox` for a
//!   subfolder), LF line endings, `From ` lines quoted the mboxrd way.
//!
//! Next to the data, `manifest.json` lists every file (path, size, SHA-256, and which
//! message or folder it holds) and `SHA256SUMS` holds the same hashes for `sha256sum -c`.
//!
//! Safety: folder names and subjects become file names only through [`safe_name`] (no
//! separators, `..`, control characters or reserved Windows names; collisions get a
//! ` (2)` suffix, case-insensitively). Every file is written to a temporary file in its
//! directory and renamed into place when complete, so no half-written file ever carries a
//! final name. A non-empty output directory is refused unless `overwrite` is set.
//!
//! Export output is the one place Strongroom writes mailbox content in plaintext: the user
//! asked for it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strongroom_archive::Archive;

use crate::backup::manifest::{FolderManifest, MessageEntry};
use crate::cancel::CancelToken;
use crate::error::{Error, ErrorCode, Result};
use crate::progress::{Meter, ProgressEvent, ProgressSink};
use crate::scope;
use crate::snapshot_view::{self, MailboxView};

/// The name of the manifest written next to the exported files.
pub const MANIFEST_FILE: &str = "manifest.json";
/// `sha256sum -c SHA256SUMS` checks every exported file.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// Longest file name component written (bytes), well under every file system's limit.
const MAX_NAME: usize = 100;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One `.eml` file per message.
    Eml,
    /// One mboxrd file per folder.
    Mbox,
}

/// What to export and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    /// The mailbox's address or user id.
    pub mailbox: String,
    /// A folder path (or id); its subfolders are included. `None`: the whole mailbox.
    pub folder: Option<String>,
    /// A snapshot id or unique prefix; `None`: the newest backup.
    pub at: Option<String>,
    pub format: ExportFormat,
    /// The output directory (created if missing).
    pub out: PathBuf,
    /// Write into a non-empty directory, replacing files of the same name.
    pub overwrite: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    pub snapshot: String,
    pub format: ExportFormat,
    pub out: PathBuf,
    pub folders: u64,
    pub messages: u64,
    /// Data files written (the manifest and the sums file not counted).
    pub files: u64,
    /// Bytes of the data files.
    pub bytes: u64,
    /// The job was cancelled; the manifest lists what was written before that.
    pub cancelled: bool,
}

/// `manifest.json`: what was handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub format: ExportFormat,
    pub mailbox: String,
    pub folder: Option<String>,
    pub snapshot: String,
    pub snapshot_time_ms: i64,
    pub complete: bool,
    pub files: Vec<ManifestFile>,
}

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Relative to the output directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// The folder's path in the mailbox.
    pub folder_path: String,
    /// EML: the message's id in the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// EML: the message's `Message-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
    /// mbox: how many messages the file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
}

/// Runs an export (see the module docs).
pub fn run(
    archive: &Archive,
    request: &ExportRequest,
    progress: ProgressSink,
    cancel: &CancelToken,
) -> Result<ExportReport> {
    let view = MailboxView::open(archive, request.at.as_deref(), &request.mailbox)?;
    let folders = scope::folders(&view, request.folder.as_deref())?;
    prepare_out(&request.out, request.overwrite)?;

    let meter = Meter::without_graph(progress);
    let user_id = view.account.user_id.clone();
    let total: u64 = folders.iter().map(|(_, m)| m.messages.len() as u64).sum();
    meter.expect_items(total);
    meter.emit(ProgressEvent::MailboxStarted {
        user_id: user_id.clone(),
        items: total,
    });

    let mut names = Names::default();
    let mut dirs: HashMap<&str, PathBuf> = HashMap::new();
    let mut files = Vec::new();
    let mut report = ExportReport {
        snapshot: view.snapshot.id.to_hex(),
        format: request.format,
        out: request.out.clone(),
        folders: 0,
        messages: 0,
        files: 0,
        bytes: 0,
        cancelled: false,
    };
    'folders: for (info, manifest) in &folders {
        let parent_rel = scope::parent(&view, manifest)
            .and_then(|p| dirs.get(p.id.as_str()).cloned())
            .unwrap_or_default();
        let dir_name = names.folder(&parent_rel, &manifest.name, request.format);
        let rel = parent_rel.join(&dir_name);
        dirs.insert(manifest.id.as_str(), rel.clone());
        report.folders += 1;
        match request.format {
            ExportFormat::Eml => {
                std::fs::create_dir_all(request.out.join(&rel))?;
                for entry in sorted(manifest) {
                    if cancel.is_cancelled() {
                        report.cancelled = true;
                        break 'folders;
                    }
                    let mime = snapshot_view::message_mime(archive, entry)?;
                    let file_name = names.unique(&rel, &eml_name(entry));
                    let path = rel.join(file_name);
                    let (size, sha256) =
                        write_atomic(&request.out, &path, request.overwrite, |w| {
                            w.write_all(&mime)
                        })?;
                    files.push(ManifestFile {
                        path: slash_path(&path),
                        size,
                        sha256,
                        folder_path: info.path.clone(),
                        message_id: Some(entry.id.clone()),
                        internet_message_id: entry.internet_message_id.clone(),
                        messages: None,
                    });
                    report.messages += 1;
                    report.files += 1;
                    report.bytes += size;
                    meter.add(&user_id, 1, size);
                }
            }
            ExportFormat::Mbox => {
                let path = parent_rel.join(format!("{dir_name}.mbox"));
                std::fs::create_dir_all(request.out.join(&parent_rel))?;
                let mut count = 0u64;
                let (size, sha256) = write_atomic(&request.out, &path, request.overwrite, |w| {
                    for entry in sorted(manifest) {
                        if cancel.is_cancelled() {
                            break;
                        }
                        let mime = snapshot_view::message_mime(archive, entry)
                            .map_err(std::io::Error::other)?;
                        write_mbox_message(w, entry, &mime)?;
                        count += 1;
                        meter.add(&user_id, 1, mime.len() as u64);
                    }
                    Ok(())
                })?;
                // A cancelled folder's file holds whole messages only; the manifest says how many.
                files.push(ManifestFile {
                    path: slash_path(&path),
                    size,
                    sha256,
                    folder_path: info.path.clone(),
                    message_id: None,
                    internet_message_id: None,
                    messages: Some(count),
                });
                report.messages += count;
                report.files += 1;
                report.bytes += size;
                if cancel.is_cancelled() {
                    report.cancelled = true;
                    break 'folders;
                }
            }
        }
    }

    let manifest = Manifest {
        version: 1,
        format: request.format,
        mailbox: view.account.address.clone(),
        folder: request.folder.clone(),
        snapshot: report.snapshot.clone(),
        snapshot_time_ms: view.snapshot.time_ms,
        complete: !report.cancelled,
        files,
    };
    let sums: String = manifest
        .files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect();
    write_atomic(&request.out, Path::new(SUMS_FILE), true, |w| {
        w.write_all(sums.as_bytes())
    })?;
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_atomic(&request.out, Path::new(MANIFEST_FILE), true, |w| {
        w.write_all(&json)
    })?;
    meter.emit(ProgressEvent::MailboxFinished {
        user_id,
        ok: !report.cancelled,
    });
    Ok(report)
}

/// Creates `out`, or checks that it is empty (unless `overwrite`).
fn prepare_out(out: &Path, overwrite: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::invalid(
                "the output path exists and is not a directory",
            ));
        }
        let not_empty = std::fs::read_dir(out)?.next().is_some();
        if not_empty && !overwrite {
            return Err(Error::new(
                ErrorCode::OutputNotEmpty,
                "the output directory is not empty: choose an empty one, or allow overwriting",
            ));
        }
    }
    std::fs::create_dir_all(out)?;
    Ok(())
}

/// Messages in a stable order: received date, then id.
fn sorted(manifest: &FolderManifest) -> Vec<&MessageEntry> {
    let mut v: Vec<&MessageEntry> = manifest.messages.iter().collect();
    v.sort_by(|a, b| a.received_ms.cmp(&b.received_ms).then(a.id.cmp(&b.id)));
    v
}

/// `2024-03-05 101500 Subject.eml`: sorts by date in a file browser.
fn eml_name(entry: &MessageEntry) -> String {
    let date = entry
        .received_ms
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%d %H%M%S").to_string())
        .unwrap_or_else(|| "undated".into());
    let subject = entry.subject.as_deref().unwrap_or("").trim();
    let base = if subject.is_empty() {
        date
    } else {
        format!("{date} {subject}")
    };
    format!("{}.eml", truncate(&safe_name(&base), MAX_NAME - 4))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_end_matches([' ', '.'])
}

/// A name that is one safe path component on Linux, macOS and Windows: separators, control
/// characters and `<>:"|?*` become `_`, trailing dots and spaces go, `.`/`..`/empty become
/// `_`, and reserved Windows device names (`CON`, `com1.txt`, …) get a leading `_`.
pub fn safe_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    s = truncate(s.trim(), MAX_NAME).to_owned();
    let s = s.trim_end_matches(['.', ' ']).to_owned();
    if s.is_empty() || s == "." || s == ".." {
        return "_".into();
    }
    let stem = s
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem[3..]
            .chars()
            .all(|c| c.is_ascii_digit() || "¹²³".contains(c)));
    if reserved {
        format!("_{s}")
    } else {
        s
    }
}

/// Names taken per output directory, compared case-insensitively (Windows and macOS file
/// systems usually are).
#[derive(Default)]
struct Names(HashMap<PathBuf, HashSet<String>>);

impl Names {
    /// `wanted`, or `wanted (2)`, `wanted (3)`, … — the first not taken in `dir`.
    fn unique(&mut self, dir: &Path, wanted: &str) -> String {
        let taken = self.0.entry(dir.to_owned()).or_default();
        let (stem, ext) = match wanted.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() && e.len() <= 5 => (s, format!(".{e}")),
            _ => (wanted, String::new()),
        };
        let mut candidate = wanted.to_owned();
        let mut n = 2;
        while taken.contains(&candidate.to_lowercase()) {
            candidate = format!("{stem} ({n}){ext}");
            n += 1;
        }
        taken.insert(candidate.to_lowercase());
        candidate
    }

    /// A folder's directory name in `parent`; for mbox the `NAME.mbox` file is reserved with it.
    fn folder(&mut self, parent: &Path, name: &str, format: ExportFormat) -> String {
        let base = safe_name(name);
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base} ({n})")
            };
            let taken = self.0.entry(parent.to_owned()).or_default();
            let mbox = format!("{candidate}.mbox").to_lowercase();
            let free = !taken.contains(&candidate.to_lowercase())
                && (format == ExportFormat::Eml || !taken.contains(&mbox));
            if free {
                taken.insert(candidate.to_lowercase());
                if format == ExportFormat::Mbox {
                    taken.insert(mbox);
                }
                return candidate;
            }
            n += 1;
        }
    }
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `out/rel` through a temporary file in the same directory, synced and then renamed
/// into place; returns its size and SHA-256. Without `overwrite` an existing file is an error.
fn write_atomic(
    out: &Path,
    rel: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(u64, String)> {
    let target = out.join(rel);
    let dir = target.parent().unwrap_or(out);
    let temp = tempfile::Builder::new()
        .prefix(".strongroom-export-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    let (size, hash) = {
        let mut w = Hashing {
            inner: std::io::BufWriter::new(temp.as_file()),
            hash: Sha256::new(),
            size: 0,
        };
        fill(&mut w)?;
        w.flush()?;
        (w.size, w.hash.finalize())
    };
    temp.as_file().sync_all()?;
    if overwrite {
        temp.persist(&target).map_err(|e| e.error)?;
    } else {
        temp.persist_noclobber(&target).map_err(|e| e.error)?;
    }
    Ok((size, hex(&hash)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One message in mboxrd: a `From ` separator line, the MIME with LF line endings and every
/// line matching `^>*From ` quoted with one more `>`, then an empty line.
fn write_mbox_message(w: &mut dyn Write, entry: &MessageEntry, mime: &[u8]) -> std::io::Result<()> {
    let when = entry
        .received_ms
        .or(entry.sent_ms)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_default();
    writeln!(
        w,
        "From {} {}",
        envelope_sender(entry.from.as_deref()),
        when.format("%a %b %e %H:%M:%S %Y")
    )?;
    let mut lines: Vec<&[u8]> = mime.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop(); // the MIME ended with a newline
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let unquoted = line.iter().position(|&b| b != b'>').map(|i| &line[i..]);
        if unquoted.is_some_and(|rest| rest.starts_with(b"From ")) {
            w.write_all(b">")?;
        }
        w.write_all(line)?;
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

/// The address for the `From ` line: the sender's address when it is one plain token.
fn envelope_sender(from: Option<&str>) -> String {
    let from = from.unwrap_or("");
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from,
    };
    let addr = addr.trim();
    if !addr.is_empty() && addr.contains('@') && addr.bytes().all(|b| b.is_ascii_graphic()) {
        addr.to_owned()
    } else {
        "MAILER-DAEMON".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_one_harmless_component() {
        assert_eq!(safe_name("Inbox"), "Inbox");
        assert_eq!(safe_name("a/b\\c"), "a_b_c");
        assert_eq!(safe_name(".."), "_");
        assert_eq!(safe_name("."), "_");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("   "), "_");
        assert_eq!(safe_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(safe_name("tab\there\u{7}\n"), "tab_here__");
        assert_eq!(safe_name("CON"), "_CON");
        assert_eq!(safe_name("com1.txt"), "_com1.txt");
        assert_eq!(safe_name("lpt9"), "_lpt9");
        assert_eq!(safe_name("Console"), "Console");
        assert_eq!(safe_name("trailing. . "), "trailing");
        assert_eq!(safe_name("what? *now*"), "what_ _now_");
        assert_eq!(safe_name("Ünïcödé 📨"), "Ünïcödé 📨");
        let long = "é".repeat(300);
        let s = safe_name(&long);
        assert!(s.len() <= MAX_NAME && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn colliding_names_get_numbered_case_insensitively() {
        let mut names = Names::default();
        let d = Path::new("Inbox");
        assert_eq!(names.unique(d, "a.eml"), "a.eml");
        assert_eq!(names.unique(d, "A.eml"), "A (2).eml");
        assert_eq!(names.unique(d, "a.eml"), "a (3).eml");
        assert_eq!(names.unique(Path::new("Other"), "a.eml"), "a.eml");
        // "x/y" and "x_y" are different folders whose safe names collide.
        assert_eq!(names.folder(d, "x/y", ExportFormat::Mbox), "x_y");
        assert_eq!(names.folder(d, "x_y", ExportFormat::Mbox), "x_y (2)");
        // A folder literally named "z.mbox" and a folder "z" (whose file is z.mbox).
        assert_eq!(names.folder(d, "z.mbox", ExportFormat::Mbox), "z.mbox");
        assert_eq!(names.folder(d, "z", ExportFormat::Mbox), "z (2)");
    }

    #[test]
    fn mboxrd_quotes_from_lines_and_uses_lf() {
        let entry: MessageEntry = serde_json::from_value(serde_json::json!({
            "id": "m1", "changeKey": null, "blobs": [], "size": 0, "subject": null,
            "from": "Ann <ann@example.com>", "receivedMs": 0, "sentMs": null, "isRead": null,
            "flagStatus": null, "categories": [], "internetMessageId": null,
            "hasAttachments": null
        }))
        .unwrap();
        let mime = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nFromage\r\nend";
        let mut out = Vec::new();
        write_mbox_message(&mut out, &entry, mime).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From ann@example.com Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From here\n>>From there\nFromage\nend\n\n"
        );
        assert_eq!(envelope_sender(Some("two words")), "MAILER-DAEMON");
        assert_eq!(envelope_sender(None), "MAILER-DAEMON");
    }
}
