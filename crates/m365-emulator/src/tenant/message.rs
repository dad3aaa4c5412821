//! A message as the mailbox stores it: Graph-visible properties plus where its MIME comes from.

use super::mime::{self, MimeMessage, Part};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub name: String,
    pub address: String,
}

/// Where `$value` bytes come from.
#[derive(Debug, Clone)]
pub enum MimeSource {
    /// Rebuilt on demand from the seed, so large generated tenants cost no memory.
    Generated(Box<super::recipe::MessageRecipe>),
    /// Imported or restored MIME, served byte for byte.
    Stored(Bytes),
    /// Created from JSON: Exchange synthesises MIME from the item's properties.
    Composed,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentMeta {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub is_inline: bool,
    pub content_id: Option<String>,
    pub last_modified: DateTime<Utc>,
    /// Bytes for attachments added through Graph; MIME attachments are read from the MIME.
    #[serde(skip)]
    pub bytes: Option<Bytes>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub num: u64,
    pub rest_id: String,
    pub immutable_id: String,
    pub folder_id: String,
    pub change_count: u32,
    /// Sequence number of the message's creation (delta's changeType=created).
    pub created_seq: u64,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub is_read: bool,
    pub is_draft: bool,
    pub importance: String,
    pub flag_status: String,
    pub categories: Vec<String>,
    pub subject: String,
    pub from: Option<Recipient>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Recipient>,
    pub reply_to: Vec<Recipient>,
    pub internet_message_id: String,
    pub conversation_id: String,
    pub body_preview: String,
    /// Set for JSON-created messages; otherwise the body is read from the MIME.
    pub body: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// `In-Reply-To` and `References` of a JSON-created message, set through
    /// PidTagInReplyToId / PidTagInternetReferences; the MIME it composes carries them.
    pub thread_headers: Vec<(String, String)>,
    pub attachments: Vec<AttachmentMeta>,
    pub mime: MimeSource,
    /// Size of the MIME in bytes, as `$value` returns it.
    pub size: u64,
}

impl Message {
    /// `W/"..."` etag and changeKey: both change whenever the item changes.
    pub fn change_key(&self) -> String {
        use base64::Engine as _;
        let raw = format!("CQAAABYAAA{}{:08}", self.num, self.change_count);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    pub fn has_attachments(&self) -> bool {
        self.attachments.iter().any(|a| !a.is_inline)
    }

    pub fn mime_bytes(&self) -> Bytes {
        match &self.mime {
            MimeSource::Generated(recipe) => Bytes::from(recipe.build()),
            MimeSource::Stored(bytes) => bytes.clone(),
            MimeSource::Composed => Bytes::from(self.compose()),
        }
    }

    /// The body as Graph returns it: (contentType, content).
    pub fn body(&self) -> (String, String) {
        if let Some(body) = &self.body {
            return body.clone();
        }
        let bytes = self.mime_bytes();
        let parsed = MessageParser::default().parse(&bytes[..]);
        match parsed {
            Some(m) => match (m.html_body_count(), m.body_html(0), m.body_text(0)) {
                (n, Some(html), _) if n > 0 => ("html".into(), html.into_owned()),
                (_, _, Some(text)) => ("text".into(), text.into_owned()),
                _ => ("text".into(), String::new()),
            },
            None => ("text".into(), String::new()),
        }
    }

    /// An attachment's bytes, from the Graph upload or from the MIME part.
    pub fn attachment_bytes(&self, id: &str) -> Option<Bytes> {
        let index = self.attachments.iter().position(|a| a.id == id)?;
        if let Some(bytes) = &self.attachments[index].bytes {
            return Some(bytes.clone());
        }
        let mime = self.mime_bytes();
        let parsed = MessageParser::default().parse(&mime[..])?;
        let part = parsed.attachments().nth(index)?;
        Some(Bytes::copy_from_slice(part.contents()))
    }

    /// Synthesised MIME for a JSON-created message, attachments included.
    fn compose(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        if let Some(from) = &self.from {
            headers.push(("From".to_string(), mime::mailbox(&from.name, &from.address)));
        }
        let list = |rs: &[Recipient]| {
            rs.iter()
                .map(|r| mime::mailbox(&r.name, &r.address))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.to.is_empty() {
            headers.push(("To".into(), list(&self.to)));
        }
        if !self.cc.is_empty() {
            headers.push(("Cc".into(), list(&self.cc)));
        }
        headers.push(("Subject".into(), mime::encode_word(&self.subject)));
        let date = self.sent.unwrap_or(self.received);
        headers.push(("Date".into(), date.to_rfc2822()));
        headers.push(("Message-ID".into(), self.internet_message_id.clone()));
        headers.extend(self.thread_headers.iter().cloned());
        let (kind, content) = self.body();
        let text = Part::text(&content, if kind == "html" { "html" } else { "plain" });
        let body = if self.attachments.is_empty() {
            text
        } else {
            let mut parts = vec![text];
            for a in &self.attachments {
                let bytes = a.bytes.clone().unwrap_or_default().to_vec();
                let cid = a.content_id.as_deref().filter(|_| a.is_inline);
                parts.push(Part::attachment(&a.name, &a.content_type, bytes, cid));
            }
            Part::Multi {
                subtype: "mixed",
                boundary: format!("_composed_{}_", self.num),
                parts,
            }
        };
        MimeMessage { headers, body }.to_bytes()
    }
}

/// What Exchange derives from a MIME message when it is delivered, imported or restored.
#[derive(Debug, Clone, Default)]
pub struct MimeFacts {
    pub subject: String,
    pub from: Option<Recipient>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Recipient>,
    pub reply_to: Vec<Recipient>,
    pub sent: Option<DateTime<Utc>>,
    pub internet_message_id: String,
    /// The first Message-ID of the thread (References, else In-Reply-To, else own).
    pub thread_root: String,
    pub body_preview: String,
    pub headers: Vec<(String, String)>,
    /// (name, content type, size, inline, content id)
    pub attachments: Vec<(String, String, u64, bool, Option<String>)>,
    pub importance: String,
}

/// Parses MIME leniently: garbage still becomes a message, as Exchange would accept it.
pub fn facts_from_mime(bytes: &[u8]) -> MimeFacts {
    let Some(m) = MessageParser::default().parse(bytes) else {
        return MimeFacts {
            importance: "normal".into(),
            ..Default::default()
        };
    };
    let list = |a: Option<&mail_parser::Address>| -> Vec<Recipient> {
        a.map(|a| {
            a.iter()
                .map(|x| Recipient {
                    name: x.name().unwrap_or_default().to_string(),
                    address: x.address().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let message_id = m
        .message_id()
        .map(|id| format!("<{id}>"))
        .unwrap_or_default();
    let first_text = |v: &mail_parser::HeaderValue| match v {
        mail_parser::HeaderValue::Text(t) => Some(t.to_string()),
        mail_parser::HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    };
    let thread_root = first_text(m.references())
        .or_else(|| first_text(m.in_reply_to()))
        .map(|id| format!("<{id}>"))
        .unwrap_or_else(|| message_id.clone());
    let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let attachments = m
        .attachments()
        .map(|p| {
            let ct = p
                .content_type()
                .map(|c| match &c.c_subtype {
                    Some(s) => format!("{}/{}", c.c_type, s),
                    None => c.c_type.to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let inline = p
                .content_disposition()
                .is_some_and(|d| d.ctype() == "inline");
            let name = p.attachment_name().unwrap_or("attachment").to_string();
            let cid = p.content_id().map(str::to_string);
            (name, ct, p.contents().len() as u64, inline, cid)
        })
        .collect();
    let importance = match m
        .header_raw("Importance")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        Some(v) if v == "high" || v == "low" => v,
        _ => "normal".into(),
    };
    MimeFacts {
        subject: m.subject().unwrap_or_default().to_string(),
        from: list(m.from()).into_iter().next(),
        to: list(m.to()),
        cc: list(m.cc()),
        bcc: list(m.bcc()),
        reply_to: list(m.reply_to()),
        sent: m
            .date()
            .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single()),
        internet_message_id: message_id,
        thread_root,
        body_preview: preview(&text),
        headers: m
            .headers()
            .iter()
            .map(|h| {
                let raw = &bytes[h.offset_start() as usize..h.offset_end() as usize];
                let value = String::from_utf8_lossy(raw).trim().replace("\r\n", "");
                (h.name().to_string(), value)
            })
            .collect(),
        attachments,
        importance,
    }
}

/// Graph's bodyPreview: the first 255 characters of the text body, whitespace collapsed.
pub fn preview(text: &str) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(255).collect()
}

/// A message as Exchange stores delivered MIME (ids are assigned by `Mailbox::insert_message`).
pub fn from_mime_facts(bytes: &[u8], received: DateTime<Utc>) -> Message {
    let mut m = from_facts(facts_from_mime(bytes), bytes.len() as u64, received);
    m.mime = MimeSource::Stored(bytes::Bytes::copy_from_slice(bytes));
    m
}

/// A message from derived facts; the caller sets where its MIME comes from.
pub(super) fn from_facts(facts: MimeFacts, size: u64, received: DateTime<Utc>) -> Message {
    let conversation_id = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(facts.thread_root.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&digest[..18])
    };
    Message {
        num: 0,
        rest_id: String::new(),
        immutable_id: String::new(),
        folder_id: String::new(),
        change_count: 0,
        created_seq: 0,
        created: received,
        last_modified: received,
        received,
        sent: facts.sent.or(Some(received)),
        is_read: true,
        is_draft: false,
        importance: facts.importance,
        flag_status: "notFlagged".into(),
        categories: Vec::new(),
        subject: facts.subject,
        from: facts.from,
        to: facts.to,
        cc: facts.cc,
        bcc: facts.bcc,
        reply_to: facts.reply_to,
        internet_message_id: facts.internet_message_id,
        conversation_id,
        body_preview: facts.body_preview,
        body: None,
        headers: facts.headers,
        thread_headers: Vec::new(),
        attachments: facts
            .attachments
            .into_iter()
            .map(
                |(name, content_type, size, is_inline, content_id)| AttachmentMeta {
                    id: String::new(),
                    name,
                    content_type,
                    size,
                    is_inline,
                    content_id,
                    last_modified: received,
                    bytes: None,
                },
            )
            .collect(),
        mime: MimeSource::Composed,
        size,
    }
}
