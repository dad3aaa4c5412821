//! What the index reads from a message's MIME: addresses, body text (HTML stripped by
//! mail-parser), attachment names, and the text of text-like attachments.

use mail_parser::{Address, MessageParser, MimeHeaders};

/// Text taken from one message, capped so a huge message cannot bloat the index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageText {
    pub subject: Option<String>,
    /// "Name <address>" of each sender.
    pub from: String,
    /// Every To, Cc and Bcc name and address.
    pub to: String,
    pub body: String,
    /// Attachment names, then the text of text-like attachments.
    pub attachment: String,
    pub attachment_count: usize,
    /// The Date header, ms since the epoch.
    pub date_ms: Option<i64>,
}

/// Body text indexed and stored per message.
pub const MAX_BODY_CHARS: usize = 256 * 1024;
/// Text indexed per text-like attachment.
pub const MAX_ATTACHMENT_TEXT: usize = 64 * 1024;

fn push(out: &mut String, text: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
}

fn addresses(out: &mut String, list: Option<&Address<'_>>) {
    for addr in list.into_iter().flat_map(|a| a.iter()) {
        match (addr.name(), addr.address()) {
            (Some(n), Some(a)) => push(out, &format!("{n} <{a}>")),
            (Some(n), None) => push(out, n),
            (None, Some(a)) => push(out, a),
            (None, None) => {}
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Whether an attachment of this `type/subtype` has text the index takes.
pub fn text_like(content_type: &str) -> bool {
    let (ctype, subtype) = content_type.split_once('/').unwrap_or((content_type, ""));
    is_text(ctype, subtype)
}

fn is_text(ctype: &str, subtype: &str) -> bool {
    ctype.eq_ignore_ascii_case("text")
        || ["json", "xml", "csv", "x-csv"]
            .iter()
            .any(|t| subtype.eq_ignore_ascii_case(t))
}

/// Extracts the searchable text of `mime`; unparseable MIME yields empty text.
pub fn extract(mime: &[u8]) -> MessageText {
    let Some(message) = MessageParser::default().parse(mime) else {
        return MessageText::default();
    };
    let mut out = MessageText {
        subject: message.subject().map(str::to_owned),
        date_ms: message.date().map(|d| d.to_timestamp() * 1000),
        ..MessageText::default()
    };
    addresses(&mut out.from, message.from());
    addresses(&mut out.to, message.to());
    addresses(&mut out.to, message.cc());
    addresses(&mut out.to, message.bcc());
    let mut body = String::new();
    for i in 0..message.text_body_count() {
        if let Some(text) = message.body_text(i) {
            push(&mut body, &text);
        }
        if body.len() > MAX_BODY_CHARS * 4 {
            break;
        }
    }
    out.body = truncate(&body, MAX_BODY_CHARS).to_owned();
    let mut texts = String::new();
    for part in message.attachments() {
        out.attachment_count += 1;
        if let Some(name) = part.attachment_name() {
            push(&mut out.attachment, name);
        }
        let text_like = part
            .content_type()
            .is_some_and(|ct| is_text(ct.ctype(), ct.subtype().unwrap_or_default()));
        if text_like && !part.is_message() {
            if let Some(text) = part.text_contents() {
                push(&mut texts, truncate(text, MAX_ATTACHMENT_TEXT));
            }
        }
    }
    push(&mut out.attachment, &texts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_addresses_html_text_and_attachments() {
        let mime = "From: Ann Lee <ann@contoso.com>\r\nTo: bo@contoso.com\r\nCc: Cy <cy@fabrikam.com>\r\nBcc: dee@x.org\r\nSubject: Budget\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hello <b>world</b></p><script>x</script></body></html>\r\n--b\r\nContent-Type: text/csv; name=\"q3.csv\"\r\nContent-Disposition: attachment; filename=\"q3.csv\"\r\n\r\nregion,revenue\r\nnorth,42\r\n--b\r\nContent-Type: application/pdf; name=\"plan.pdf\"\r\nContent-Disposition: attachment; filename=\"plan.pdf\"\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let t = extract(mime.as_bytes());
        assert_eq!(t.subject.as_deref(), Some("Budget"));
        assert_eq!(t.from, "Ann Lee <ann@contoso.com>");
        assert_eq!(t.to, "bo@contoso.com Cy <cy@fabrikam.com> dee@x.org");
        assert!(t.body.contains("Hello") && t.body.contains("world"));
        assert!(!t.body.contains("<b>"), "HTML is stripped: {}", t.body);
        assert_eq!(t.attachment_count, 2);
        assert!(t.attachment.starts_with("q3.csv plan.pdf"));
        assert!(t.attachment.contains("north,42"));
        assert!(!t.attachment.contains("JVBER"));
        assert_eq!(t.date_ms, Some(1_727_776_800_000));
    }

    #[test]
    fn garbage_and_long_bodies_are_bounded() {
        assert_eq!(extract(b""), MessageText::default());
        let long = format!(
            "Subject: x\r\nContent-Type: text/plain\r\n\r\n{}",
            "é".repeat(MAX_BODY_CHARS + 10)
        );
        assert_eq!(
            extract(long.as_bytes()).body.chars().count(),
            MAX_BODY_CHARS
        );
    }
}
