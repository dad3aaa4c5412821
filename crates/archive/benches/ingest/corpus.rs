//! The generated corpus: Exchange-style MIME messages with shared attachments, written as
//! one `.eml` file per mailbox copy.

use std::fs;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::base64::base64_lines;

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "for",
    "is",
    "on",
    "that",
    "by",
    "this",
    "with",
    "you",
    "it",
    "not",
    "or",
    "be",
    "are",
    "from",
    "at",
    "as",
    "your",
    "all",
    "have",
    "new",
    "more",
    "an",
    "was",
    "we",
    "will",
    "can",
    "about",
    "if",
    "my",
    "has",
    "but",
    "our",
    "one",
    "other",
    "do",
    "no",
    "information",
    "time",
    "they",
    "he",
    "up",
    "may",
    "what",
    "which",
    "their",
    "news",
    "out",
    "use",
    "any",
    "there",
    "see",
    "only",
    "so",
    "his",
    "when",
    "contact",
    "here",
    "business",
    "who",
    "also",
    "now",
    "help",
    "get",
    "view",
    "online",
    "first",
    "am",
    "been",
    "would",
    "how",
    "were",
    "me",
    "services",
    "some",
    "these",
    "click",
    "its",
    "like",
    "service",
    "than",
    "find",
    "price",
    "date",
    "back",
    "top",
    "people",
    "had",
    "list",
    "name",
    "just",
    "over",
    "state",
    "year",
    "day",
    "into",
    "email",
    "two",
    "health",
    "world",
    "next",
    "used",
    "go",
    "work",
    "last",
    "most",
    "products",
    "music",
    "buy",
    "data",
    "make",
    "them",
    "should",
    "product",
    "system",
    "post",
    "her",
    "city",
    "add",
    "policy",
    "number",
    "such",
    "please",
    "available",
    "copyright",
    "support",
    "message",
    "after",
    "best",
    "software",
    "then",
    "jan",
    "good",
    "video",
    "well",
    "where",
    "info",
    "rights",
    "public",
    "books",
    "high",
    "school",
    "through",
    "each",
    "links",
    "she",
    "review",
    "years",
    "order",
    "very",
    "privacy",
    "book",
    "items",
    "company",
    "read",
    "group",
    "need",
    "many",
    "user",
    "said",
    "does",
    "set",
    "under",
    "general",
    "research",
    "university",
    "january",
    "mail",
    "full",
    "map",
    "reviews",
    "program",
    "life",
    "know",
    "games",
    "way",
    "days",
    "management",
    "part",
    "could",
    "great",
    "united",
    "hotel",
    "real",
    "item",
    "international",
    "center",
    "must",
    "store",
    "travel",
    "comments",
    "made",
    "development",
    "report",
    "off",
    "member",
    "details",
    "line",
    "terms",
    "before",
    "did",
    "send",
    "right",
    "type",
    "because",
    "local",
    "those",
    "using",
    "results",
    "office",
    "education",
    "national",
    "car",
    "design",
    "take",
    "posted",
    "internet",
    "address",
    "community",
    "within",
    "states",
    "area",
    "want",
    "phone",
    "shipping",
    "reserved",
    "subject",
    "between",
    "forum",
    "family",
    "long",
    "based",
    "code",
    "show",
    "even",
    "black",
    "check",
    "special",
    "prices",
    "website",
    "index",
    "being",
    "women",
    "much",
    "sign",
    "file",
    "link",
    "open",
    "today",
    "technology",
    "south",
    "case",
    "project",
    "same",
    "pages",
    "version",
    "section",
    "own",
    "found",
    "sports",
    "house",
    "related",
    "security",
    "both",
    "county",
    "american",
    "photo",
    "game",
    "members",
    "power",
    "while",
    "care",
    "network",
    "down",
    "computer",
    "systems",
    "three",
    "total",
    "place",
    "end",
    "following",
    "download",
    "him",
    "without",
    "per",
    "access",
    "think",
    "north",
    "budget",
    "quarterly",
    "forecast",
    "invoice",
    "contract",
    "meeting",
    "agenda",
    "deadline",
    "proposal",
    "review",
    "approval",
    "renewal",
    "licence",
    "tenant",
    "mailbox",
    "schedule",
];

const FIRST: &[&str] = &[
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Karin",
    "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
];
const LAST: &[&str] = &[
    "Meyer", "Novak", "Rossi", "Silva", "Jensen", "Kowalski", "Dubois", "Smith", "Tanaka",
    "Okafor", "Larsen", "Garcia", "Weber", "Costa", "Ivanova",
];

const DISCLAIMER: &str = "This e-mail and any attachments are confidential and may be \
privileged. If you are not the intended recipient, please notify the sender immediately \
and delete this e-mail. Any unauthorised copying, disclosure or distribution of the \
material in this e-mail is strictly forbidden. Contoso Ltd, registered in England and \
Wales, company number 01234567, registered office 1 Example Street, London.";

struct Attachment {
    name: String,
    mime: &'static str,
    data: Vec<u8>,
}

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.gen_range(6..20);
    let mut s: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect();
    let first = s[0].to_string();
    let cap = first[..1].to_uppercase() + &first[1..];
    s[0] = "";
    format!("{cap}{}.", s.join(" "))
}

fn paragraph(rng: &mut StdRng) -> String {
    (0..rng.gen_range(2..7))
        .map(|_| sentence(rng))
        .collect::<Vec<_>>()
        .join(" ")
}

fn guid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.gen();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn attachment_pool(rng: &mut StdRng, n: usize) -> Vec<Attachment> {
    (0..n)
        .map(|i| {
            // Sizes from 10 KB to 3 MB, median about 40 KB, mean about 200 KB.
            let size = (10_000.0 * (300.0f64).powf(rng.gen::<f64>().powi(2))) as usize;
            let (ext, mime, compressible) = match i % 4 {
                0 => ("pdf", "application/pdf", 0.4),
                1 => ("jpg", "image/jpeg", 0.0),
                2 => (
                    "docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    0.1,
                ),
                _ => ("csv", "text/csv", 1.0),
            };
            let mut data = Vec::with_capacity(size);
            while data.len() < size {
                if rng.gen::<f64>() < compressible {
                    data.extend_from_slice(paragraph(rng).as_bytes());
                    data.extend_from_slice(b"\n");
                } else {
                    let mut chunk = [0u8; 512];
                    rng.fill(&mut chunk[..]);
                    data.extend_from_slice(&chunk);
                }
            }
            data.truncate(size);
            Attachment {
                name: format!(
                    "{}-{}.{ext}",
                    WORDS[rng.gen_range(0..WORDS.len())],
                    1000 + i
                ),
                mime,
                data,
            }
        })
        .collect()
}

/// Writes the corpus: one sent message is delivered to each recipient's Inbox (with its own
/// Received and Exchange headers) and kept in the sender's Sent Items.
pub(crate) fn generate(dir: &Path, sends: usize, distinct: bool) -> (usize, u64) {
    let mut rng = StdRng::seed_from_u64(2026);
    // By default one distinct file per four messages, and popular ones (a newsletter, a
    // price list) are attached again and again. With `distinct`, every attachment of every
    // sent message is different.
    let pool = attachment_pool(
        &mut rng,
        if distinct {
            sends * 3
        } else {
            (sends / 4).max(10)
        },
    );
    let mut next_distinct = 0;
    let people: Vec<(String, String)> = (0..40)
        .map(|i| {
            let f = FIRST[i % FIRST.len()];
            let l = LAST[(i * 7) % LAST.len()];
            (
                format!("{f} {l}"),
                format!("{}.{}@contoso.example", f.to_lowercase(), l.to_lowercase()),
            )
        })
        .collect();
    let mut files = 0;
    let mut bytes = 0u64;
    for m in 0..sends {
        let from = rng.gen_range(0..people.len());
        let to: Vec<usize> = (0..rng.gen_range(1..5))
            .map(|_| rng.gen_range(0..people.len()))
            .filter(|&t| t != from)
            .collect();
        let subject = format!(
            "{}{}",
            if rng.gen_bool(0.3) { "RE: " } else { "" },
            sentence(&mut rng).trim_end_matches('.')
        );
        let paras: Vec<String> = (0..rng.gen_range(1..8))
            .map(|_| paragraph(&mut rng))
            .collect();
        let text = format!(
            "{}\r\n\r\n--\r\n{}\r\n{}\r\n",
            paras.join("\r\n\r\n"),
            people[from].0,
            DISCLAIMER
        );
        let html = format!(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n<style>p.MsoNormal{{margin:0cm;font-size:11.0pt;font-family:\"Calibri\",sans-serif;}}</style></head>\r\n<body lang=\"EN-GB\"><div class=\"WordSection1\">\r\n{}\r\n<p class=\"MsoNormal\">{}</p><p style=\"font-size:8pt;color:#888\">{}</p></div></body></html>\r\n",
            paras.iter().map(|p| format!("<p class=\"MsoNormal\">{p}</p>")).collect::<Vec<_>>().join("\r\n"),
            people[from].0,
            DISCLAIMER
        );
        let attachments: Vec<&Attachment> = if rng.gen_bool(0.35) {
            (0..rng.gen_range(1..4))
                .map(|_| {
                    if distinct {
                        next_distinct += 1;
                        &pool[next_distinct - 1]
                    } else {
                        &pool[(pool.len() as f64 * rng.gen::<f64>().powi(2)) as usize]
                    }
                })
                .collect()
        } else {
            vec![]
        };
        let alt = format!("_alt_{}_", guid(&mut rng));
        let mut body = format!(
            "--{alt}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{text}\r\n--{alt}\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{html}\r\n--{alt}--\r\n"
        );
        let mut content_type = format!("multipart/alternative; boundary=\"{alt}\"");
        if !attachments.is_empty() {
            let mixed = format!("_mixed_{}_", guid(&mut rng));
            let mut b = format!("--{mixed}\r\nContent-Type: {content_type}\r\n\r\n{body}\r\n");
            for a in &attachments {
                b.push_str(&format!(
                    "--{mixed}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Description: {}\r\nContent-Disposition: attachment; filename=\"{}\"; size={}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                    a.mime, a.name, a.name, a.name, a.data.len(), base64_lines(&a.data)
                ));
            }
            b.push_str(&format!("--{mixed}--\r\n"));
            body = b;
            content_type = format!("multipart/mixed; boundary=\"{mixed}\"");
        }
        let date = format!(
            "Mon, {} Mar 2026 {:02}:{:02}:{:02} +0000",
            1 + m % 28,
            m % 24,
            m % 60,
            (m * 7) % 60
        );
        let msgid = format!(
            "<{}@EX1P123MB4567.eurprd01.prod.exchangelabs.com>",
            guid(&mut rng)
        );
        let common = format!(
            "From: {} <{}>\r\nTo: {}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {msgid}\r\nContent-Language: en-GB\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n",
            people[from].0,
            people[from].1,
            to.iter().map(|&t| format!("{} <{}>", people[t].0, people[t].1)).collect::<Vec<_>>().join(", ")
        );
        let mut copies: Vec<(String, &str)> =
            to.iter().map(|&t| (people[t].1.clone(), "Inbox")).collect();
        copies.push((people[from].1.clone(), "Sent Items"));
        for (mailbox, folder) in copies {
            let delivery = format!(
                "Received: from EX1P123MB4567.eurprd01.prod.exchangelabs.com ({}) by EX1P123MB8910.eurprd01.prod.exchangelabs.com with HTTPS; {date}\r\nX-MS-Exchange-Organization-Network-Message-Id: {}\r\nX-MS-Exchange-CrossTenant-Id: 9f2a1c3e-0000-4000-8000-5c1d2e3f4a5b\r\nX-MS-Has-Attach: {}\r\nX-MS-Exchange-Organization-SCL: -1\r\nX-MS-Office365-Filtering-Correlation-Id: {}\r\n",
                guid(&mut rng),
                guid(&mut rng),
                if attachments.is_empty() { "" } else { "yes" },
                guid(&mut rng)
            );
            let eml = format!("{delivery}{common}\r\n{body}");
            let folder_dir = dir.join(&mailbox).join(folder);
            fs::create_dir_all(&folder_dir).unwrap();
            fs::write(folder_dir.join(format!("{m:06}.eml")), &eml).unwrap();
            files += 1;
            bytes += eml.len() as u64;
        }
    }
    (files, bytes)
}
