//! Restore writes: folders, messages (as sent items with their original dates, or from
//! MIME), attachments (small by POST, large by upload session), deletes. Restore needs the
//! write roles ([`crate::WRITE_ROLES`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::Deserialize;

use crate::client::{Call, CallBody, GraphClient};
use crate::error::{ErrorCode, GraphError};
use crate::governor::Lane;
use crate::mail::IMMUTABLE_IDS;
use crate::paging::Page;
use crate::resources::{MailFolder, Message};

/// File attachments from this size on go through an upload session (Corso's threshold).
pub const LARGE_ATTACHMENT: usize = 3 * 1024 * 1024;
/// Bytes per upload-session PUT (the service takes at most 4 MB per request).
pub const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;

/// PidTagMessageFlags bit: read.
const MSGFLAG_READ: u32 = 0x1;

/// An attachment to add to a restored message.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub is_inline: bool,
    pub content_id: Option<&'a str>,
}

/// The original dates, read state and threading a restored message keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginalState {
    pub received: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub is_read: bool,
    /// The `In-Reply-To` header's value (message ids in angle brackets).
    pub in_reply_to: Option<String>,
    /// The `References` header's value.
    pub references: Option<String>,
}

impl OriginalState {
    /// `singleValueExtendedProperties` that make a JSON-created message a non-draft with these
    /// dates: PidTagMessageFlags (0x0E07) without MSGFLAG_UNSENT, PidTagMessageDeliveryTime
    /// (0x0E06) and PidTagClientSubmitTime (0x0039); and keep its thread for mail clients
    /// that follow headers: PidTagInReplyToId (0x1042) and PidTagInternetReferences (0x1039),
    /// which Exchange writes out as `In-Reply-To` and `References` (MS-OXCMAIL).
    pub fn extended_properties(&self) -> serde_json::Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let flags = if self.is_read { MSGFLAG_READ } else { 0 };
        let mut props = vec![
            serde_json::json!({"id": "Integer 0x0E07", "value": flags.to_string()}),
            serde_json::json!({"id": "SystemTime 0x0E06", "value": time(&self.received)}),
        ];
        if let Some(sent) = &self.sent {
            props.push(serde_json::json!({"id": "SystemTime 0x0039", "value": time(sent)}));
        }
        for (id, value) in [
            ("String 0x1042", &self.in_reply_to),
            ("String 0x1039", &self.references),
        ] {
            if let Some(v) = value {
                props.push(serde_json::json!({"id": id, "value": v}));
            }
        }
        serde_json::Value::Array(props)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadSession {
    upload_url: String,
}

impl GraphClient {
    /// Create a folder named `name` under `parent` (an id or well-known name; `None` for the
    /// top level). If it already exists (`ErrorFolderExists`), the existing one is returned.
    pub async fn create_mail_folder(
        &self,
        user: &str,
        parent: Option<&str>,
        name: &str,
    ) -> Result<MailFolder, GraphError> {
        let lane = Lane::mailbox(user);
        let url = match parent {
            Some(p) => self.url(&["users", user, "mailFolders", p, "childFolders"]),
            None => self.url(&["users", user, "mailFolders"]),
        };
        let body = serde_json::json!({"displayName": name, "isHidden": false});
        match self
            .json::<MailFolder>(&Call::post_json(url.clone(), lane.clone(), body))
            .await
        {
            Err(GraphError::Service(e))
                if e.code == ErrorCode::Other("ErrorFolderExists".into()) =>
            {
                let mut find = url;
                let quoted = name.replace('\'', "''");
                find.query_pairs_mut()
                    .append_pair("$filter", &format!("displayName eq '{quoted}'"));
                let page: Page<MailFolder> = self.json(&Call::get(find, lane)).await?;
                page.value
                    .into_iter()
                    .find(|f| f.display_name.as_deref() == Some(name))
                    .ok_or(GraphError::Service(e))
            }
            other => other,
        }
    }

    /// Create a message from its JSON representation (`subject`, `body`, `from`,
    /// `toRecipients`, ...) as a sent/received item, not a draft, with its original dates.
    pub async fn create_message(
        &self,
        user: &str,
        folder_id: &str,
        mut message: serde_json::Value,
        original: &OriginalState,
    ) -> Result<Message, GraphError> {
        let obj = message
            .as_object_mut()
            .ok_or_else(|| GraphError::InvalidRequest("a message is a JSON object".into()))?;
        obj.insert(
            "singleValueExtendedProperties".into(),
            original.extended_properties(),
        );
        let url = self.url(&["users", user, "mailFolders", folder_id, "messages"]);
        self.json(&Call::post_json(url, Lane::mailbox(user), message).prefer(IMMUTABLE_IDS))
            .await
    }

    /// Create a message from raw MIME. The service always makes such a message a draft.
    pub async fn create_message_from_mime(
        &self,
        user: &str,
        folder_id: &str,
        mime: &[u8],
    ) -> Result<Message, GraphError> {
        let url = self.url(&["users", user, "mailFolders", folder_id, "messages"]);
        let mut call = Call::get(url, Lane::mailbox(user))
            .with_method(Method::POST)
            .prefer(IMMUTABLE_IDS);
        call.body = Some(CallBody::Text(STANDARD.encode(mime)));
        self.json(&call).await
    }

    /// Add a file attachment: by POST below [`LARGE_ATTACHMENT`] bytes, else through an
    /// upload session in [`UPLOAD_CHUNK`] pieces.
    pub async fn add_attachment(
        &self,
        user: &str,
        message_id: &str,
        attachment: &NewAttachment<'_>,
    ) -> Result<(), GraphError> {
        let lane = Lane::mailbox(user);
        if attachment.bytes.len() < LARGE_ATTACHMENT {
            let url = self.url(&["users", user, "messages", message_id, "attachments"]);
            let mut body = serde_json::json!({
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": attachment.name,
                "contentType": attachment.content_type,
                "contentBytes": STANDARD.encode(attachment.bytes),
                "isInline": attachment.is_inline,
            });
            if let Some(cid) = attachment.content_id {
                body["contentId"] = cid.into();
            }
            self.json::<serde_json::Value>(&Call::post_json(url, lane, body))
                .await?;
            return Ok(());
        }
        let url = self.url(&[
            "users",
            user,
            "messages",
            message_id,
            "attachments",
            "createUploadSession",
        ]);
        let mut item = serde_json::json!({
            "attachmentType": "file",
            "name": attachment.name,
            "size": attachment.bytes.len(),
            "contentType": attachment.content_type,
            "isInline": attachment.is_inline,
        });
        if let Some(cid) = attachment.content_id {
            item["contentId"] = cid.into();
        }
        let session: UploadSession = self
            .json(&Call::post_json(
                url,
                lane.clone(),
                serde_json::json!({ "AttachmentItem": item }),
            ))
            .await?;
        let upload_url = url::Url::parse(&session.upload_url)
            .map_err(|e| GraphError::Decode(format!("uploadUrl: {e}")))?;
        let total = attachment.bytes.len();
        for (i, chunk) in attachment.bytes.chunks(UPLOAD_CHUNK).enumerate() {
            let start = i * UPLOAD_CHUNK;
            let end = start + chunk.len() - 1;
            let mut call = Call::get(upload_url.clone(), lane.clone()).with_method(Method::PUT);
            call.anonymous = true; // pre-authenticated URL: never send the bearer elsewhere
            call.headers
                .push(("Content-Range", format!("bytes {start}-{end}/{total}")));
            call.body = Some(CallBody::Bytes(Bytes::copy_from_slice(chunk)));
            self.bytes(&call, 1 << 20).await?;
        }
        Ok(())
    }

    pub async fn delete_message(&self, user: &str, message_id: &str) -> Result<(), GraphError> {
        let url = self.url(&["users", user, "messages", message_id]);
        let call = Call::get(url, Lane::mailbox(user)).with_method(Method::DELETE);
        self.bytes(&call, 1 << 20).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_properties_make_a_non_draft_with_original_dates_and_thread() {
        let received = DateTime::parse_from_rfc3339("2023-11-16T05:42:47Z")
            .unwrap()
            .with_timezone(&Utc);
        let sent = DateTime::parse_from_rfc3339("2023-11-16T05:42:46Z")
            .unwrap()
            .with_timezone(&Utc);
        let props = OriginalState {
            received,
            sent: Some(sent),
            is_read: true,
            in_reply_to: Some("<a@x>".into()),
            references: Some("<root@x> <a@x>".into()),
        }
        .extended_properties();
        assert_eq!(
            props,
            serde_json::json!([
                {"id": "Integer 0x0E07", "value": "1"},
                {"id": "SystemTime 0x0E06", "value": "2023-11-16T05:42:47Z"},
                {"id": "SystemTime 0x0039", "value": "2023-11-16T05:42:46Z"},
                {"id": "String 0x1042", "value": "<a@x>"},
                {"id": "String 0x1039", "value": "<root@x> <a@x>"},
            ])
        );
        let unread = OriginalState {
            received,
            ..OriginalState::default()
        }
        .extended_properties();
        let flags: u32 = unread[0]["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(flags & 0x8, 0, "never MSGFLAG_UNSENT");
        assert_eq!(unread.as_array().unwrap().len(), 2);
    }
}
