//! Generated message bodies: a `MessageRecipe` is the few facts a generated message is made
//! from; `build` turns it into the same MIME bytes every time (text, HTML, alternative,
//! inline image, attachments), so the mailbox stores the recipe instead of the bytes.

use super::message::{self, MimeFacts, Recipient};
use super::mime::{self, MimeMessage, Part};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const SENTENCES: [&str; 16] = [
    "Please find the latest figures below and let me know if anything looks off.",
    "We arranged to have the press gather at 2pm outside the main entrance.",
    "Can we move the review to Thursday morning?",
    "The vendor confirmed the delivery window for next week.",
    "I have attached the signed copy for your records.",
    "Thanks for the quick turnaround on this.",
    "Bitte schicken Sie mir die Unterlagen bis Freitag.",
    "Merci de confirmer votre présence à la réunion de lundi.",
    "Los números del trimestre están en la hoja adjunta.",
    "会議の資料を添付しました。ご確認ください。",
    "Let's keep the scope small and revisit in the next sprint.",
    "The client asked for a revised quote including support hours.",
    "Reminder: expense reports are due at the end of the month.",
    "I'll be out of office until Monday; Lynne is covering.",
    "Our numbers for Q3 came in 4% above forecast — great work, everyone.",
    "Could you double-check the shipping address on the order?",
];
/// (name stem, content type, magic bytes)
pub(super) const ATTACHMENT_KINDS: [(&str, &str, &[u8]); 6] = [
    ("report.pdf", "application/pdf", b"%PDF-1.7\n"),
    (
        "Budget.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04",
    ),
    (
        "Contract.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
    ),
    ("photos.zip", "application/zip", b"PK\x03\x04"),
    ("scan.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("Übersicht.pdf", "application/pdf", b"%PDF-1.5\n"),
];

/// Text attachments of `Attachments::Small` (name, content type, no signature): their
/// content is sentences or CSV rows, which a search indexes.
pub(super) const TEXT_ATTACHMENT_KINDS: [(&str, &str, &[u8]); 3] = [
    ("notes.txt", "text/plain", b""),
    ("orders.csv", "text/csv", b""),
    ("Protokoll.txt", "text/plain", b""),
];

/// The shape of a generated message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    Html,
    Alternative,
    /// multipart/related: HTML with an inline image referenced by cid.
    InlineImage,
}

/// Everything needed to rebuild a generated message's MIME byte for byte.
#[derive(Debug, Clone)]
pub struct MessageRecipe {
    pub seed: u64,
    pub from: Recipient,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub date: DateTime<Utc>,
    pub subject: String,
    pub message_id: String,
    /// Message-ID this replies to (thread), if any.
    pub in_reply_to: Option<String>,
    pub shape: Shape,
    pub paragraphs: usize,
    /// (file name, content type, size in bytes)
    pub attachments: Vec<(String, String, usize)>,
    pub importance: &'static str,
}

impl MessageRecipe {
    pub fn build(&self) -> Vec<u8> {
        self.build_with_facts().0
    }

    /// The MIME and what Exchange would derive from it, known without parsing it back
    /// (generation is then about twice as fast; a test checks both agree).
    pub fn build_with_facts(&self) -> (Vec<u8>, MimeFacts) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut text = String::new();
        for _ in 0..self.paragraphs {
            let n = rng.gen_range(2..6);
            let para: Vec<&str> = (0..n)
                .map(|_| SENTENCES[rng.gen_range(0..SENTENCES.len())])
                .collect();
            text.push_str(&para.join(" "));
            text.push_str("\n\n");
        }
        text.push_str(&format!("Regards,\n{}\n", self.from.name));
        let html_of = |t: &str| {
            let paras: String = t
                .split("\n\n")
                .filter(|p| !p.is_empty())
                .map(|p| format!("<p>{}</p>\r\n", escape_html(p).replace('\n', "<br>")))
                .collect();
            format!("<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body dir=\"ltr\">\r\n{paras}</body>\r\n</html>\r\n")
        };
        let boundary = |tag: &str| format!("_{tag}_{:016x}_", self.seed);
        let mut attachments = Vec::new();
        let mut body = match self.shape {
            Shape::Plain => Part::text(&text, "plain"),
            Shape::Html => Part::text(&html_of(&text), "html"),
            Shape::Alternative => Part::Multi {
                subtype: "alternative",
                boundary: boundary("000"),
                parts: vec![
                    Part::text(&text, "plain"),
                    Part::text(&html_of(&text), "html"),
                ],
            },
            Shape::InlineImage => {
                let cid = format!("image001.png@{:08x}", self.seed as u32);
                let html = html_of(&text).replace(
                    "</body>",
                    &format!("<img src=\"cid:{cid}\" width=\"120\" height=\"40\"></body>"),
                );
                let image = fill(
                    &mut rng,
                    b"\x89PNG\r\n\x1a\n",
                    rng_size(self.seed, 2_000, 40_000),
                );
                Part::Multi {
                    subtype: "related",
                    boundary: boundary("004"),
                    parts: vec![
                        Part::Multi {
                            subtype: "alternative",
                            boundary: boundary("005"),
                            parts: vec![Part::text(&text, "plain"), Part::text(&html, "html")],
                        },
                        {
                            attachments.push((
                                "image001.png".to_string(),
                                "image/png".to_string(),
                                image.len() as u64,
                                true,
                                Some(cid.clone()),
                            ));
                            Part::attachment("image001.png", "image/png", image, Some(&cid))
                        },
                    ],
                }
            }
        };
        if !self.attachments.is_empty() {
            let mut parts = vec![body];
            for (name, ctype, size) in &self.attachments {
                let bytes = match ctype.as_str() {
                    "text/plain" => text_file(&mut rng, *size, false),
                    "text/csv" => text_file(&mut rng, *size, true),
                    _ => {
                        let magic = ATTACHMENT_KINDS
                            .iter()
                            .find(|k| k.1 == ctype)
                            .map(|k| k.2)
                            .unwrap_or(b"");
                        fill(&mut rng, magic, *size)
                    }
                };
                attachments.push((name.clone(), ctype.clone(), bytes.len() as u64, false, None));
                let declared = if ctype.starts_with("text/") {
                    format!("{ctype}; charset=\"utf-8\"")
                } else {
                    ctype.clone()
                };
                parts.push(Part::attachment(name, &declared, bytes, None));
            }
            body = Part::Multi {
                subtype: "mixed",
                boundary: boundary("010"),
                parts,
            };
        }
        let list = |rs: &[Recipient]| {
            rs.iter()
                .map(|r| mime::mailbox(&r.name, &r.address))
                .collect::<Vec<_>>()
                .join(",\r\n\t")
        };
        let mut headers = vec![
            (
                "From".to_string(),
                mime::mailbox(&self.from.name, &self.from.address),
            ),
            ("To".to_string(), list(&self.to)),
        ];
        if !self.cc.is_empty() {
            headers.push(("Cc".into(), list(&self.cc)));
        }
        headers.push(("Subject".into(), mime::encode_word(&self.subject)));
        headers.push((
            "Thread-Topic".into(),
            mime::encode_word(self.subject.trim_start_matches("RE: ")),
        ));
        headers.push((
            "Date".into(),
            self.date.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        ));
        headers.push(("Message-ID".into(), self.message_id.clone()));
        if let Some(parent) = &self.in_reply_to {
            headers.push(("In-Reply-To".into(), parent.clone()));
            headers.push(("References".into(), parent.clone()));
        }
        if self.importance != "normal" {
            headers.push(("Importance".into(), self.importance.to_string()));
        }
        headers.push(("Content-Language".into(), "en-US".into()));
        headers.push((
            "X-MS-Has-Attach".into(),
            if self.attachments.is_empty() {
                String::new()
            } else {
                "yes".into()
            },
        ));
        let mut header_list = headers.clone();
        header_list.push(("MIME-Version".into(), "1.0".into()));
        match &body {
            Part::Leaf {
                content_type,
                encoding,
                ..
            } => {
                header_list.push(("Content-Type".into(), content_type.clone()));
                let cte = match encoding {
                    mime::TransferEncoding::SevenBit => "7bit",
                    mime::TransferEncoding::QuotedPrintable => "quoted-printable",
                    mime::TransferEncoding::Base64 => "base64",
                };
                header_list.push(("Content-Transfer-Encoding".into(), cte.into()));
            }
            Part::Multi {
                subtype, boundary, ..
            } => {
                header_list.push((
                    "Content-Type".into(),
                    format!("multipart/{subtype};\tboundary=\"{boundary}\""),
                ));
            }
        }
        for (_, value) in header_list.iter_mut() {
            *value = value.replace("\r\n", "");
        }
        let facts = MimeFacts {
            subject: self.subject.clone(),
            from: Some(self.from.clone()),
            to: self.to.clone(),
            cc: self.cc.clone(),
            bcc: Vec::new(),
            reply_to: Vec::new(),
            sent: Some(self.date),
            internet_message_id: self.message_id.clone(),
            thread_root: self
                .in_reply_to
                .clone()
                .unwrap_or_else(|| self.message_id.clone()),
            body_preview: message::preview(&text),
            headers: header_list,
            attachments,
            importance: self.importance.to_string(),
        };
        (MimeMessage { headers, body }.to_bytes(), facts)
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rng_size(seed: u64, min: usize, max: usize) -> usize {
    StdRng::seed_from_u64(seed ^ 0x5EED).gen_range(min..max)
}

/// Incompressible bytes behind a file-type signature, like real documents.
fn fill(rng: &mut StdRng, magic: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size.max(magic.len())];
    rng.fill_bytes(&mut bytes);
    bytes[..magic.len()].copy_from_slice(magic);
    bytes
}

/// About `size` bytes of text: meeting notes, or CSV rows of a small order table. Their words
/// are not the bodies' ones, so a word search tells whether attachment text is indexed.
fn text_file(rng: &mut StdRng, size: usize, csv: bool) -> Vec<u8> {
    const ITEMS: [&str; 5] = ["paper", "toner", "laptop stand", "Bürostuhl", "headset"];
    const NOTES: [&str; 6] = [
        "Minutes of the weekly planning meeting.",
        "Action items are listed at the end of this note.",
        "Attendees agreed to revisit the onboarding checklist.",
        "Die nächste Sitzung findet am Mittwoch statt.",
        "Open question: who owns the supplier onboarding?",
        "Notes taken by the project office.",
    ];
    let mut text = String::new();
    if csv {
        text.push_str("order,item,quantity,price\r\n");
    }
    while text.len() < size {
        if csv {
            let item = ITEMS[rng.gen_range(0..ITEMS.len())];
            let (quantity, cents) = (rng.gen_range(1..50), rng.gen_range(100..99_999));
            let order = rng.gen_range(10_000..99_999);
            text.push_str(&format!(
                "{order},{item},{quantity},{}.{:02}\r\n",
                cents / 100,
                cents % 100
            ));
        } else {
            text.push_str(NOTES[rng.gen_range(0..NOTES.len())]);
            text.push_str("\r\n");
        }
    }
    text.into_bytes()
}

/// A small attachment (`Attachments::Small`): 2–30 KB.
pub(super) fn small_attachment_size(rng: &mut StdRng) -> usize {
    rng.gen_range(2_000..30_000)
}

/// Attachment size: long-tailed, median around 100 KB, rarely several MB.
pub(super) fn attachment_size(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..100) {
        0..=59 => rng.gen_range(8_000..200_000),
        60..=89 => rng.gen_range(200_000..1_500_000),
        90..=98 => rng.gen_range(1_500_000..5_000_000),
        _ => rng.gen_range(5_000_000..9_000_000),
    }
}
