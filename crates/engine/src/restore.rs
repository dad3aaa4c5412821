//! Restore: put backed-up mail back into Microsoft 365 — one message, a folder with its
//! subfolders, or a whole mailbox, from any snapshot, into the original mailbox or another
//! one, at the original folder paths or under a new top-level folder "Restored <date>".
//!
//! Each message is rebuilt from its MIME (parsed with `mail-parser`) as Graph JSON and created
//! with the extended properties that make it a received item, not a draft, with its original
//! sent and received dates (graph-api-notes §4.1, Corso's route); read state, flag and
//! categories come from the backup's metadata. Attachments follow: small ones inside the
//! create request, others by POST, those of 3 MB and more by upload session. A message whose
//! attachments fail is deleted again, so the target never keeps half a message.
//!
//! Re-running a restore skips messages already in the target folder with the same
//! `internetMessageId`, sent and received time. Cancelling stops between messages.
//!
//! Backup connections hold read roles only (least privilege): the first restore write is
//! refused with 403, which this module reports as [`ErrorCode::RestorePermissionNeeded`].
//! [`grant_permission`] grants the write roles with an administrator's token.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mail_parser::{Address, MessageParser, MimeHeaders};
use serde::{Deserialize, Serialize};
use strongroom_archive::{Archive, Clock};
use strongroom_graph::restore::{NewAttachment, OriginalState, LARGE_ATTACHMENT};
use strongroom_graph::{GraphClient, GraphError, WRITE_ROLES};

use crate::backup::manifest::{FolderManifest, MessageEntry};
use crate::cancel::CancelToken;
use crate::error::{Error, ErrorCode, Result};
use crate::progress::{Meter, ProgressEvent, ProgressSink};
use crate::report::Outcome;
use crate::scope;
use crate::snapshot_view::{self, MailboxView};

/// Attachments are sent inside the create request while their base64 stays under this;
/// Graph refuses request bodies over about 4 MB.
const INLINE_ATTACHMENT_BUDGET: usize = 2 << 20;

/// What to restore and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequest {
    /// The backed-up mailbox (address or user id).
    pub mailbox: String,
    /// A folder path or id: that folder and its subfolders. `None`: the whole mailbox
    /// (hidden system folders excepted).
    pub folder: Option<String>,
    /// One message's id (as `ls` shows it); `folder` is then ignored.
    pub message: Option<String>,
    /// A snapshot id or unique prefix; `None`: the newest backup.
    pub at: Option<String>,
    /// The target mailbox (address or user id); `None`: the original one.
    pub to: Option<String>,
    /// Restore under a new top-level folder "Restored <date>" instead of the original paths.
    pub new_folder: bool,
}

/// What happened to one message that could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RestoreFailure {
    pub message_id: String,
    /// Why (an error message without mail content).
    pub error: String,
}

/// The report of a restore, like a backup's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub snapshot: String,
    /// The target mailbox as given (or the source's user id).
    pub target: String,
    pub outcome: Outcome,
    /// The folder "Restored <date>" restored into, when one was asked for.
    pub restore_folder: Option<String>,
    pub folders_created: u64,
    pub restored: u64,
    /// Already in the target folder (same internetMessageId and dates).
    pub skipped: u64,
    pub failed: Vec<RestoreFailure>,
    /// MIME bytes of the restored messages.
    pub bytes: u64,
    pub cancelled: bool,
    pub started_ms: i64,
    pub finished_ms: i64,
}

/// Everything a restore run needs.
pub(crate) struct Job<'a> {
    pub archive: &'a Archive,
    pub graph: GraphClient,
    pub clock: &'a dyn Clock,
}

/// A message to restore, with its source folder.
struct Item<'v> {
    folder: &'v FolderManifest,
    entry: &'v MessageEntry,
}

/// Runs a restore (see the module docs).
pub(crate) async fn run(
    job: &Job<'_>,
    view: &MailboxView,
    request: &RestoreRequest,
    progress: ProgressSink,
    cancel: &CancelToken,
) -> Result<RestoreReport> {
    let started_ms = job.clock.now_ms();
    let target = request
        .to
        .clone()
        .unwrap_or_else(|| view.account.user_id.clone());

    // Folders to recreate (parents first) and the messages to put in them.
    let (folders, items) = selection(view, request)?;
    let meter = Meter::new(progress, job.graph.governor().clone());
    meter.expect_items(items.len() as u64);
    meter.emit(ProgressEvent::MailboxStarted {
        user_id: target.clone(),
        items: items.len() as u64,
    });

    let mut report = RestoreReport {
        snapshot: view.snapshot.id.to_hex(),
        target: target.clone(),
        outcome: Outcome::Success,
        restore_folder: None,
        folders_created: 0,
        restored: 0,
        skipped: 0,
        failed: Vec::new(),
        bytes: 0,
        cancelled: false,
        started_ms,
        finished_ms: started_ms,
    };
    let mut tree = TargetTree::load(&job.graph, &target).await?;
    if request.new_folder {
        let date = DateTime::<Utc>::from_timestamp_millis(started_ms).unwrap_or_default();
        let name = format!("Restored {}", date.format("%Y-%m-%d"));
        let root = tree.root.clone();
        tree.base = tree.child(&job.graph, &root, &name, &mut report).await?;
        report.restore_folder = Some(name);
    }
    for folder in &folders {
        tree.ensure(&job.graph, view, folder, &mut report).await?;
    }

    let mut present: HashMap<String, HashSet<Key>> = HashMap::new();
    for item in items {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let folder_id = tree
            .ensure(&job.graph, view, item.folder, &mut report)
            .await?;
        if !present.contains_key(&folder_id) {
            let keys = existing_keys(&job.graph, &target, &folder_id).await?;
            present.insert(folder_id.clone(), keys);
        }
        let keys = present.get_mut(&folder_id).expect("just inserted");
        let key = Key::of_entry(item.entry);
        if keys.contains(&key) {
            report.skipped += 1;
            meter.add(&target, 1, 0);
            continue;
        }
        match restore_message(job, &target, &folder_id, item.entry).await {
            Ok(bytes) => {
                keys.insert(key);
                report.restored += 1;
                report.bytes += bytes;
                meter.add(&target, 1, bytes);
            }
            Err(e) if e.code == ErrorCode::RestorePermissionNeeded => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "a message could not be restored");
                report.failed.push(RestoreFailure {
                    message_id: item.entry.id.clone(),
                    error: e.message,
                });
                meter.add(&target, 1, 0);
            }
        }
    }
    let done = report.restored + report.skipped;
    report.outcome = match (report.failed.is_empty() && !report.cancelled, done) {
        (true, _) => Outcome::Success,
        (false, 0) if !report.cancelled => Outcome::Failed,
        _ => Outcome::Partial,
    };
    report.finished_ms = job.clock.now_ms();
    meter.emit(ProgressEvent::MailboxFinished {
        user_id: target,
        ok: report.outcome == Outcome::Success,
    });
    Ok(report)
}

/// The folders to recreate and the messages to restore, in a stable order.
fn selection<'v>(
    view: &'v MailboxView,
    request: &RestoreRequest,
) -> Result<(Vec<&'v FolderManifest>, Vec<Item<'v>>)> {
    if let Some(id) = &request.message {
        let (folder, entry) = view
            .folders
            .iter()
            .find_map(|(_, m)| m.messages.iter().find(|e| &e.id == id).map(|e| (m, e)))
            .ok_or_else(|| Error::not_found("no such message in this snapshot"))?;
        return Ok((vec![folder], vec![Item { folder, entry }]));
    }
    let mut folders: Vec<&FolderManifest> = scope::folders(view, request.folder.as_deref())?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    if request.folder.is_none() {
        // Hidden folders are the mailbox's own system folders (Recoverable Items, Sync
        // Issues, ...): Outlook would not show what was put there.
        folders.retain(|m| !m.hidden);
    }
    let mut items = Vec::new();
    for folder in &folders {
        let mut entries: Vec<&MessageEntry> = folder.messages.iter().collect();
        entries.sort_by(|a, b| a.received_ms.cmp(&b.received_ms).then(a.id.cmp(&b.id)));
        items.extend(entries.into_iter().map(|entry| Item { folder, entry }));
    }
    Ok((folders, items))
}

/// What identifies a message in a folder across restores: its `Message-ID` and its sent and
/// received times to the second (Graph's precision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    internet_message_id: Option<String>,
    sent_s: Option<i64>,
    received_s: Option<i64>,
}

impl Key {
    fn of_entry(e: &MessageEntry) -> Key {
        Key {
            internet_message_id: e.internet_message_id.clone(),
            sent_s: e.sent_ms.map(|t| t.div_euclid(1000)),
            received_s: e.received_ms.map(|t| t.div_euclid(1000)),
        }
    }
}

/// The keys of the messages a target folder holds now.
async fn existing_keys(graph: &GraphClient, user: &str, folder_id: &str) -> Result<HashSet<Key>> {
    let mut keys = HashSet::new();
    let mut pages = graph.messages(user, folder_id, 500);
    while let Some(page) = pages.try_next().await.map_err(write_error)? {
        for m in page.value {
            keys.insert(Key {
                internet_message_id: m.internet_message_id,
                sent_s: m.sent_date_time.map(|t| t.timestamp()),
                received_s: m.received_date_time.map(|t| t.timestamp()),
            });
        }
    }
    Ok(keys)
}

/// The target mailbox's folders, found by (parent id, name) and created when missing.
struct TargetTree {
    root: String,
    /// Where top-level source folders go: the root, or "Restored <date>".
    base: String,
    children: HashMap<(String, String), String>,
    /// Source folder id → target folder id.
    mapped: HashMap<String, String>,
}

impl TargetTree {
    async fn load(graph: &GraphClient, user: &str) -> Result<TargetTree> {
        let root = graph
            .mail_folder(user, "msgfolderroot")
            .await
            .map_err(write_error)?
            .id;
        let mut children = HashMap::new();
        for f in graph.folder_tree(user).await.map_err(write_error)? {
            if let (Some(parent), Some(name)) = (f.parent_folder_id, f.display_name) {
                children.insert((parent, name.to_lowercase()), f.id);
            }
        }
        Ok(TargetTree {
            base: root.clone(),
            root,
            children,
            mapped: HashMap::new(),
        })
    }

    /// The folder `name` under `parent`, created if missing. Matching by name maps the
    /// well-known folders (Inbox, Sent Items, …) to themselves.
    async fn child(
        &mut self,
        graph: &GraphClient,
        parent: &str,
        name: &str,
        report: &mut RestoreReport,
    ) -> Result<String> {
        let key = (parent.to_owned(), name.to_lowercase());
        if let Some(id) = self.children.get(&key) {
            return Ok(id.clone());
        }
        let parent_arg = (parent != self.root).then_some(parent);
        let created = graph
            .create_mail_folder(&report.target, parent_arg, name)
            .await
            .map_err(write_error)?;
        report.folders_created += 1;
        self.children.insert(key, created.id.clone());
        Ok(created.id)
    }

    /// The target folder for a source folder, creating it and its missing ancestors.
    async fn ensure(
        &mut self,
        graph: &GraphClient,
        view: &MailboxView,
        folder: &FolderManifest,
        report: &mut RestoreReport,
    ) -> Result<String> {
        if let Some(id) = self.mapped.get(&folder.id) {
            return Ok(id.clone());
        }
        // The source ancestors, outermost first.
        let mut chain = vec![folder];
        while let Some(p) = scope::parent(view, chain[chain.len() - 1]) {
            if chain.len() > 64 || chain.iter().any(|c| c.id == p.id) {
                break;
            }
            chain.push(p);
        }
        chain.reverse();
        let mut parent = self.base.clone();
        for f in chain {
            parent = match self.mapped.get(&f.id) {
                Some(id) => id.clone(),
                None => {
                    let id = self.child(graph, &parent, &f.name, report).await?;
                    self.mapped.insert(f.id.clone(), id.clone());
                    id
                }
            };
        }
        Ok(parent)
    }
}

/// A header's raw value, unfolded onto one line (message-id lists are ASCII); `None` when
/// absent or empty.
fn header_text(parsed: &mail_parser::Message<'_>, name: &'static str) -> Option<String> {
    let raw = parsed.header_raw(name)?;
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// Restores one message into `folder_id`; returns its MIME size.
async fn restore_message(
    job: &Job<'_>,
    user: &str,
    folder_id: &str,
    entry: &MessageEntry,
) -> Result<u64> {
    let mime = snapshot_view::message_mime(job.archive, entry)?;
    let parsed = MessageParser::default()
        .parse(&mime)
        .ok_or_else(|| Error::invalid("the backed-up MIME does not parse"))?;
    let mime_date = parsed
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
    let original = OriginalState {
        received: entry
            .received_ms
            .and_then(DateTime::from_timestamp_millis)
            .or(mime_date)
            .unwrap_or_else(|| {
                DateTime::from_timestamp_millis(job.clock.now_ms()).unwrap_or_default()
            }),
        sent: entry
            .sent_ms
            .and_then(DateTime::from_timestamp_millis)
            .or(mime_date),
        is_read: entry.is_read.unwrap_or(true),
        in_reply_to: header_text(&parsed, "In-Reply-To"),
        references: header_text(&parsed, "References"),
    };

    let attachments = attachments_of(&parsed);
    let mut body = message_json(&parsed, entry);
    let mut budget = INLINE_ATTACHMENT_BUDGET;
    let mut later = Vec::new();
    let mut inline = Vec::new();
    for a in &attachments {
        let encoded = a.bytes.len().div_ceil(3) * 4;
        if a.bytes.len() < LARGE_ATTACHMENT && encoded <= budget {
            budget -= encoded;
            inline.push(attachment_json(a));
        } else {
            later.push(a);
        }
    }
    if !inline.is_empty() {
        body["attachments"] = serde_json::Value::Array(inline);
    }
    let created = job
        .graph
        .create_message(user, folder_id, body, &original)
        .await
        .map_err(write_error)?;
    for a in later {
        let new = NewAttachment {
            name: &a.name,
            content_type: &a.content_type,
            bytes: &a.bytes,
            is_inline: a.is_inline,
            content_id: a.content_id.as_deref(),
        };
        if let Err(e) = job.graph.add_attachment(user, &created.id, &new).await {
            // Never leave a message without its attachments behind.
            if let Err(cleanup) = job.graph.delete_message(user, &created.id).await {
                tracing::warn!(error = %cleanup, "could not delete a half-restored message");
            }
            return Err(write_error(e));
        }
    }
    Ok(mime.len() as u64)
}

/// A file attachment taken from the MIME.
struct MimeAttachment {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
    is_inline: bool,
    content_id: Option<String>,
}

fn attachments_of(parsed: &mail_parser::Message<'_>) -> Vec<MimeAttachment> {
    parsed
        .attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = part
                .attachment_name()
                .map(str::to_owned)
                .or_else(|| {
                    part.message()
                        .and_then(|m| m.subject())
                        .map(|s| format!("{s}.eml"))
                })
                .unwrap_or_else(|| "attachment".into());
            let is_inline = part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
            MimeAttachment {
                name,
                content_type,
                bytes: part.contents().to_vec(),
                is_inline,
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_owned()),
            }
        })
        .collect()
}

fn attachment_json(a: &MimeAttachment) -> serde_json::Value {
    let mut v = serde_json::json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": a.name,
        "contentType": a.content_type,
        "contentBytes": base64::engine::general_purpose::STANDARD.encode(&a.bytes),
        "isInline": a.is_inline,
    });
    if let Some(cid) = &a.content_id {
        v["contentId"] = cid.clone().into();
    }
    v
}

fn recipients(address: Option<&Address<'_>>) -> serde_json::Value {
    let list: Vec<serde_json::Value> = address
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|addr| {
            let email = addr.address()?;
            let mut e = serde_json::json!({ "address": email });
            if let Some(name) = addr.name() {
                e["name"] = name.into();
            }
            Some(serde_json::json!({ "emailAddress": e }))
        })
        .collect();
    serde_json::Value::Array(list)
}

/// The Graph JSON of a message: headers and body from the MIME, state from the backup.
fn message_json(parsed: &mail_parser::Message<'_>, entry: &MessageEntry) -> serde_json::Value {
    let html = parsed.html_bodies().any(|p| p.is_text_html());
    let (content_type, content) = if html {
        ("html", parsed.body_html(0).unwrap_or_default())
    } else {
        ("text", parsed.body_text(0).unwrap_or_default())
    };
    let importance = match (
        parsed.header_raw("Importance").map(str::trim),
        parsed.header_raw("X-Priority").map(str::trim),
    ) {
        (Some(i), _) if i.eq_ignore_ascii_case("high") => "high",
        (Some(i), _) if i.eq_ignore_ascii_case("low") => "low",
        (_, Some(p)) if p.starts_with('1') || p.starts_with('2') => "high",
        (_, Some(p)) if p.starts_with('4') || p.starts_with('5') => "low",
        _ => "normal",
    };
    let mut v = serde_json::json!({
        "subject": parsed.subject().unwrap_or_default(),
        "body": { "contentType": content_type, "content": content },
        "toRecipients": recipients(parsed.to()),
        "ccRecipients": recipients(parsed.cc()),
        "bccRecipients": recipients(parsed.bcc()),
        "replyTo": recipients(parsed.reply_to()),
        "importance": importance,
        "isRead": entry.is_read.unwrap_or(true),
        "categories": entry.categories,
    });
    if let Some(from) = recipients(parsed.from()).as_array().and_then(|a| a.first()) {
        v["from"] = from.clone();
        v["sender"] = from.clone();
    }
    if let Some(id) = entry
        .internet_message_id
        .clone()
        .or_else(|| parsed.message_id().map(|id| format!("<{id}>")))
    {
        v["internetMessageId"] = id.into();
    }
    if let Some(flag) = &entry.flag_status {
        v["flag"] = serde_json::json!({ "flagStatus": flag });
    }
    v
}

/// A Graph error of a restore call: 403 means the app may not write.
fn write_error(e: GraphError) -> Error {
    match &e {
        GraphError::Service(s) if s.status == 403 => Error::new(
            ErrorCode::RestorePermissionNeeded,
            "the tenant refused the restore (HTTP 403): the app has read-only access. Grant it \
             the restore permission once (strongroom grant-restore, or Engine::\
             grant_restore_permission, signed in as a Global Administrator), then run the \
             restore again",
        ),
        _ => e.into(),
    }
}

/// Grants the task's application the write roles ([`WRITE_ROLES`]) a restore needs, with
/// `admin` tokens of a Global Administrator (delegated, with AppRoleAssignment.ReadWrite.All)
/// or of an app allowed to assign roles. Returns the roles granted.
pub(crate) async fn grant_permission(admin: GraphClient, client_id: &str) -> Result<Vec<String>> {
    let principal = admin.service_principal_id(client_id).await?;
    admin.grant_app_roles(&principal, WRITE_ROLES).await?;
    Ok(WRITE_ROLES.iter().map(|r| (*r).to_owned()).collect())
}

/// A Global Administrator's sign-in in progress, started to grant the restore permission:
/// open `url` (in the sign-in window or a browser) and hand the URL the browser is
/// redirected to (it starts with `redirect_uri`) to `Engine::finish_grant_restore`.
pub struct GrantSignIn {
    pub url: String,
    pub redirect_uri: String,
    pub(crate) sign_in: strongroom_graph::SignIn,
    pub(crate) task_id: i64,
}

impl std::fmt::Debug for GrantSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantSignIn")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIME: &[u8] = b"From: Ann Lee <ann@example.com>\r\nTo: Bob <bob@example.com>, c@example.com\r\n\
Cc: Dee <dee@example.com>\r\nSubject: Quarterly =?utf-8?q?r=C3=A9sum=C3=A9?=\r\nMessage-ID: <q1@example.com>\r\n\
Date: Tue, 2 Jan 2024 09:30:00 +0000\r\nImportance: High\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>Hello</p>\r\n--b\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\
Content-ID: <img1>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--b--\r\n";

    fn entry() -> MessageEntry {
        serde_json::from_value(serde_json::json!({
            "id": "m1", "changeKey": null, "blobs": [], "size": 0, "subject": null,
            "from": null, "receivedMs": 1704187805000i64, "sentMs": 1704187800000i64,
            "isRead": false, "flagStatus": "flagged", "categories": ["Red"],
            "internetMessageId": "<q1@example.com>", "hasAttachments": true
        }))
        .unwrap()
    }

    #[test]
    fn message_json_carries_headers_body_and_backed_up_state() {
        let parsed = MessageParser::default().parse(MIME).unwrap();
        let v = message_json(&parsed, &entry());
        assert_eq!(v["subject"], "Quarterly résumé");
        assert_eq!(v["body"]["contentType"], "html");
        assert!(v["body"]["content"]
            .as_str()
            .unwrap()
            .contains("<p>Hello</p>"));
        assert_eq!(v["from"]["emailAddress"]["address"], "ann@example.com");
        assert_eq!(v["from"]["emailAddress"]["name"], "Ann Lee");
        assert_eq!(v["toRecipients"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["ccRecipients"][0]["emailAddress"]["address"],
            "dee@example.com"
        );
        assert_eq!(v["importance"], "high");
        assert_eq!(v["isRead"], false);
        assert_eq!(v["flag"]["flagStatus"], "flagged");
        assert_eq!(v["categories"], serde_json::json!(["Red"]));
        assert_eq!(v["internetMessageId"], "<q1@example.com>");

        let atts = attachments_of(&parsed);
        assert_eq!(atts.len(), 2);
        assert_eq!(atts[0].name, "r.pdf");
        assert_eq!(atts[0].content_type, "application/pdf");
        assert_eq!(atts[0].bytes, b"%PDF-");
        assert!(!atts[0].is_inline);
        assert!(atts[1].is_inline);
        assert_eq!(atts[1].content_id.as_deref(), Some("img1"));
    }

    #[test]
    fn keys_compare_to_the_second() {
        let mut a = entry();
        let k = Key::of_entry(&a);
        a.received_ms = Some(1704187805999);
        assert_eq!(Key::of_entry(&a), k);
        a.sent_ms = Some(1704187801000);
        assert_ne!(Key::of_entry(&a), k);
    }

    #[test]
    fn a_refused_write_asks_for_the_restore_permission() {
        let e = write_error(GraphError::Service(strongroom_graph::ServiceError {
            status: 403,
            code: strongroom_graph::ErrorCode::Other("ErrorAccessDenied".into()),
            message: "Access is denied.".into(),
            request_id: None,
            retry_after: None,
        }));
        assert_eq!(e.code, ErrorCode::RestorePermissionNeeded);
        assert!(e.message.contains("grant-restore"));
    }
}
