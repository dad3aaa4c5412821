//! A small RFC 5322 / MIME writer: the generator and JSON-created messages need exact, repeatable
//! bytes (fixed boundaries, CRLF, 76-column encodings, RFC 2047 words for non-ASCII headers).

use base64::Engine as _;

/// How a leaf part's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    SevenBit,
    QuotedPrintable,
    Base64,
}

#[derive(Debug, Clone)]
pub enum Part {
    Leaf {
        /// Full Content-Type value, parameters included.
        content_type: String,
        encoding: TransferEncoding,
        disposition: Option<String>,
        content_id: Option<String>,
        body: Vec<u8>,
    },
    Multi {
        /// `alternative`, `mixed` or `related`.
        subtype: &'static str,
        boundary: String,
        parts: Vec<Part>,
    },
}

impl Part {
    pub fn text(content: &str, subtype: &str) -> Part {
        let ascii = content.is_ascii() && content.lines().all(|l| l.len() <= 76);
        Part::Leaf {
            content_type: format!("text/{subtype}; charset=\"utf-8\""),
            encoding: if ascii {
                TransferEncoding::SevenBit
            } else {
                TransferEncoding::QuotedPrintable
            },
            disposition: None,
            content_id: None,
            body: content.as_bytes().to_vec(),
        }
    }

    pub fn attachment(
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        inline_cid: Option<&str>,
    ) -> Part {
        let name = encode_word(name);
        Part::Leaf {
            content_type: format!("{content_type}; name=\"{name}\""),
            encoding: TransferEncoding::Base64,
            disposition: Some(match inline_cid {
                Some(_) => format!("inline; filename=\"{name}\"; size={}", bytes.len()),
                None => format!("attachment; filename=\"{name}\"; size={}", bytes.len()),
            }),
            content_id: inline_cid.map(|cid| format!("<{cid}>")),
            body: bytes,
        }
    }
}

/// A whole message: top-level headers in order, then the body part.
#[derive(Debug, Clone)]
pub struct MimeMessage {
    pub headers: Vec<(String, String)>,
    pub body: Part,
}

impl MimeMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        for (name, value) in &self.headers {
            write_header(&mut out, name, value);
        }
        write_header(&mut out, "MIME-Version", "1.0");
        write_part(&mut out, &self.body);
        out
    }
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_part(out: &mut Vec<u8>, part: &Part) {
    match part {
        Part::Leaf {
            content_type,
            encoding,
            disposition,
            content_id,
            body,
        } => {
            write_header(out, "Content-Type", content_type);
            let cte = match encoding {
                TransferEncoding::SevenBit => "7bit",
                TransferEncoding::QuotedPrintable => "quoted-printable",
                TransferEncoding::Base64 => "base64",
            };
            write_header(out, "Content-Transfer-Encoding", cte);
            if let Some(d) = disposition {
                write_header(out, "Content-Disposition", d);
            }
            if let Some(cid) = content_id {
                write_header(out, "Content-ID", cid);
            }
            out.extend_from_slice(b"\r\n");
            match encoding {
                TransferEncoding::SevenBit => out.extend_from_slice(&crlf(body)),
                TransferEncoding::QuotedPrintable => out.extend_from_slice(&quoted_printable(body)),
                TransferEncoding::Base64 => out.extend_from_slice(&base64_lines(body)),
            }
            out.extend_from_slice(b"\r\n");
        }
        Part::Multi {
            subtype,
            boundary,
            parts,
        } => {
            write_header(
                out,
                "Content-Type",
                &format!("multipart/{subtype};\r\n\tboundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\n");
            for p in parts {
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                write_part(out, p);
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
    }
}

/// Normalises bare LF to CRLF (message bodies on the wire are CRLF).
fn crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 40);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// RFC 2045 quoted-printable with soft breaks at 76 columns; line breaks stay hard CRLFs.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 3 / 2);
    let text = crlf(body);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let plain = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece: Vec<u8> = if plain {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if col + piece.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            col += piece.len();
            out.extend_from_slice(&piece);
        }
    }
    out
}

/// Base64 in 76-character CRLF lines.
pub fn base64_lines(body: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38);
    for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// A header text: ASCII as is, anything else as an RFC 2047 UTF-8 B encoded word.
pub fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }
}

/// `Display Name <address>` with the name encoded or quoted as needed.
pub fn mailbox(name: &str, address: &str) -> String {
    if name.is_ascii() {
        format!("\"{}\" <{address}>", name.replace('"', ""))
    } else {
        format!("{} <{address}>", encode_word(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_escapes_and_wraps() {
        let qp = quoted_printable("café = ok ".repeat(12).as_bytes());
        let text = String::from_utf8(qp).unwrap();
        assert!(text.contains("caf=C3=A9 =3D ok"));
        assert!(text.lines().all(|l| l.trim_end_matches('\r').len() <= 76));
        assert!(text.ends_with("=20") || text.ends_with("ok"));
    }

    #[test]
    fn non_ascii_words_are_encoded() {
        assert_eq!(encode_word("plain"), "plain");
        assert_eq!(encode_word("Zoë"), "=?utf-8?B?Wm/Dqw==?=");
    }

    #[test]
    fn message_round_trips_through_a_parser() {
        let msg = MimeMessage {
            headers: vec![
                ("From".into(), mailbox("Jürgen Weiß", "jw@example.com")),
                ("Subject".into(), encode_word("Grüße")),
            ],
            body: Part::Multi {
                subtype: "mixed",
                boundary: "b1".into(),
                parts: vec![
                    Part::text("Hallo Welt, schöne Grüße", "plain"),
                    Part::attachment(
                        "a.bin",
                        "application/octet-stream",
                        vec![0, 1, 2, 255],
                        None,
                    ),
                ],
            },
        };
        let bytes = msg.to_bytes();
        let parsed = mail_parser::MessageParser::default()
            .parse(&bytes[..])
            .unwrap();
        assert_eq!(parsed.subject(), Some("Grüße"));
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            "Hallo Welt, schöne Grüße"
        );
        let att = parsed.attachments().next().unwrap();
        assert_eq!(att.contents(), &[0, 1, 2, 255]);
    }
}
