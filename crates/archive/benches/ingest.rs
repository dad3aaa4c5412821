//! Ingest benchmark: Strongroom vs restic and borg on the same folder of `.eml` files.
//!
//! ```text
//! cargo bench -p strongroom-archive --bench ingest -- [--quick] [--messages N] [--eml DIR]
//!                                                    [--distinct-attachments]
//! ```
//!
//! Without `--eml` it generates a realistic corpus: MIME messages with Exchange-style
//! headers, text and HTML bodies, base64 attachments drawn from a shared pool (the same
//! PDF sent to many people), and one copy per recipient mailbox with its own delivery
//! headers. Strongroom ingests the way the engine does: each attachment becomes its own
//! blob, the message without its attachment bodies another, one tree per folder, one
//! snapshot. restic and borg (if installed) back up the same folder; the run prints
//! throughput and size ratios. `--quick` keeps the whole run under a minute on 2 cores.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strongroom_archive::{Archive, BlobId, BlobKind, KdfParams, Tree};

const PASSWORD: &str = "benchmark passphrase";

struct Args {
    quick: bool,
    /// No attachment is shared between sent messages (only per-recipient copies remain).
    distinct: bool,
    messages: usize,
    eml: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        quick: false,
        distinct: false,
        messages: 0,
        eml: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--distinct-attachments" => a.distinct = true,
            "--messages" => a.messages = it.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--eml" => a.eml = it.next().map(PathBuf::from),
            _ => {} // `cargo bench` adds `--bench`.
        }
    }
    if a.messages == 0 {
        a.messages = if a.quick { 250 } else { 2500 };
    }
    a
}

// ---------------------------------------------------------------- corpus generation

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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in 76-character CRLF lines, as Exchange writes attachment bodies.
fn base64_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            let c = if k <= chunk.len() {
                B64[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
        col += 4;
        if col == 76 {
            out.push_str("\r\n");
            col = 0;
        }
    }
    if col > 0 {
        out.push_str("\r\n");
    }
    out
}

/// Decodes base64 written exactly as [`base64_lines`] writes it (76-character CRLF lines,
/// canonical padding); anything else is `None`, so re-encoding the result is bit-exact.
fn base64_decode_canonical(text: &str) -> Option<Vec<u8>> {
    let mut table = [255u8; 256];
    for (i, &c) in B64.iter().enumerate() {
        table[c as usize] = i as u8;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 78 * 57 + 57);
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last_piece = lines.peek().is_none();
        if is_last_piece {
            // Text must end with CRLF: the piece after the last LF is empty.
            return line.is_empty().then_some(out);
        }
        let line = line.strip_suffix(b"\r")?;
        let last_line = lines.peek().is_some_and(|next| next.is_empty());
        if line.len() % 4 != 0
            || line.is_empty()
            || (!last_line && line.len() != 76)
            || line.len() > 76
        {
            return None;
        }
        for quad in line.chunks(4) {
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last_line) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                let v = table[c as usize];
                if v == 255 {
                    return None;
                }
                n = n << 6 | v as u32;
            }
            n <<= 6 * pad as u32;
            let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&got[..3 - pad]);
            // Non-zero unused bits would not survive re-encoding.
            if (pad == 1 && n & 0xff != 0) || (pad == 2 && n & 0xffff != 0) {
                return None;
            }
        }
    }
    Some(out)
}

/// Writes the corpus: one sent message is delivered to each recipient's Inbox (with its own
/// Received and Exchange headers) and kept in the sender's Sent Items.
fn generate(dir: &Path, sends: usize, distinct: bool) -> (usize, u64) {
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

// ---------------------------------------------------------------- strongroom ingest

/// Splits base64 attachment bodies out of a message: returns the message with each such
/// body replaced by a reference line, and the decoded attachments. A body is split out
/// only if re-encoding reproduces it exactly, so restore is bit-exact.
fn split_attachments(eml: &str) -> (String, Vec<Vec<u8>>) {
    let mut skeleton = String::with_capacity(eml.len().min(64 * 1024));
    let mut attachments = Vec::new();
    let mut rest = eml;
    const MARK: &str = "Content-Transfer-Encoding: base64\r\n\r\n";
    while let Some(pos) = rest.find(MARK) {
        let start = pos + MARK.len();
        let end = rest[start..]
            .find("\r\n--")
            .map_or(rest.len(), |e| start + e + 2);
        let body = &rest[start..end];
        skeleton.push_str(&rest[..start]);
        match base64_decode_canonical(body) {
            Some(data) => {
                skeleton.push_str(&format!(
                    "X-Strongroom-Attachment: {}\r\n",
                    attachments.len()
                ));
                attachments.push(data);
            }
            _ => skeleton.push_str(body),
        }
        rest = &rest[end..];
    }
    skeleton.push_str(rest);
    (skeleton, attachments)
}

fn eml_files(dir: &Path) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut folders: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                folders.entry(d.clone()).or_default().push(p);
            }
        }
    }
    for files in folders.values_mut() {
        files.sort();
    }
    folders
}

fn ingest_strongroom(eml: &Path, repo: &Path) -> f64 {
    let archive = Archive::init_local(repo, PASSWORD, KdfParams::production()).unwrap();
    let started = Instant::now();
    let mut w = archive.writer().unwrap();
    let mut folder_trees = Vec::new();
    for (folder, files) in eml_files(eml) {
        let mut children: Vec<BlobId> = Vec::new();
        let mut manifest = String::from("[");
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            let (skeleton, attachments) = split_attachments(&text);
            let message = w.put_blob(BlobKind::Data, skeleton.as_bytes()).unwrap();
            children.push(message);
            let mut refs = Vec::new();
            for a in attachments {
                let ids = if a.len() > 4 << 20 {
                    w.put_stream(&a[..]).unwrap()
                } else {
                    vec![w.put_blob(BlobKind::Data, &a).unwrap()]
                };
                refs.push(children.len());
                children.extend(ids);
            }
            manifest.push_str(&format!(
                "{{\"file\":{:?},\"message\":{},\"attachments\":{:?}}},",
                f.file_name().unwrap().to_string_lossy(),
                children.len() - 1 - refs.len(),
                refs
            ));
        }
        manifest.push(']');
        let meta = format!(
            "{{\"folder\":{:?},\"items\":{manifest}}}",
            folder.display().to_string()
        );
        folder_trees.push(
            w.put_tree(&Tree {
                children,
                meta: meta.into_bytes(),
            })
            .unwrap(),
        );
    }
    let root = w
        .put_tree(&Tree {
            children: folder_trees,
            meta: b"{}".to_vec(),
        })
        .unwrap();
    w.commit_snapshot(root, b"{\"kind\":\"benchmark\"}")
        .unwrap();
    w.finish().unwrap();
    started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------- peers

fn tool(name: &str, version_arg: &str) -> bool {
    Command::new(name)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ingest_restic(eml: &Path, repo: &Path, scratch: &Path) -> f64 {
    let env = |c: &mut Command| {
        c.env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", scratch.join("restic-cache"));
    };
    let mut init = Command::new("restic");
    init.args(["init", "--repository-version", "2", "-r"])
        .arg(repo);
    env(&mut init);
    run(&mut init);
    let mut backup = Command::new("restic");
    backup.args(["backup", "--quiet", "-r"]).arg(repo).arg(eml);
    env(&mut backup);
    let started = Instant::now();
    run(&mut backup);
    started.elapsed().as_secs_f64()
}

fn ingest_borg(eml: &Path, repo: &Path, scratch: &Path) -> f64 {
    let env = |c: &mut Command| {
        c.env("BORG_PASSPHRASE", PASSWORD)
            .env("BORG_BASE_DIR", scratch.join("borg-home"));
    };
    let mut init = Command::new("borg");
    init.args(["init", "--encryption=repokey-blake2"]).arg(repo);
    env(&mut init);
    run(&mut init);
    let mut create = Command::new("borg");
    create
        .arg("create")
        .arg(format!("{}::bench", repo.display()))
        .arg(".")
        .current_dir(eml);
    env(&mut create);
    let started = Instant::now();
    run(&mut create);
    started.elapsed().as_secs_f64()
}

fn du(path: &Path) -> u64 {
    if path.is_file() {
        return path.metadata().map(|m| m.len()).unwrap_or(0);
    }
    fs::read_dir(path)
        .map(|rd| rd.filter_map(Result::ok).map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// The attachment splitter must be exact, or the benchmark would measure a lossy ingest.
fn check_base64_round_trips() {
    for len in [0usize, 1, 2, 3, 56, 57, 58, 1000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let text = base64_lines(&data);
        assert_eq!(base64_decode_canonical(&text), Some(data));
    }
    assert_eq!(base64_decode_canonical("QQ==\r\n"), Some(b"A".to_vec()));
    assert_eq!(base64_decode_canonical("QR==\r\n"), None);
}

fn main() {
    check_base64_round_trips();
    let args = args();
    let scratch = tempfile::tempdir().unwrap();
    let (eml, files, input) = match &args.eml {
        Some(dir) => {
            let files: usize = eml_files(dir).values().map(Vec::len).sum();
            (dir.clone(), files, du(dir))
        }
        None => {
            let dir = scratch.path().join("eml");
            let started = Instant::now();
            let (files, bytes) = generate(&dir, args.messages, args.distinct);
            eprintln!(
                "generated {files} .eml files, {:.1} MB, in {:.1} s",
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            (dir, files, bytes)
        }
    };
    let mb = input as f64 / 1e6;
    println!(
        "input: {files} .eml files, {mb:.1} MB ({}{})",
        if args.quick { "quick" } else { "full" },
        if args.distinct {
            ", distinct attachments"
        } else {
            ""
        }
    );
    println!(
        "{:<12} {:>9} {:>10} {:>11} {:>12} {:>11}",
        "tool", "seconds", "MB/s", "repo MB", "repo/input", "speed ×"
    );

    let mut results: Vec<(&str, f64, u64)> = Vec::new();
    let repo = scratch.path().join("strongroom");
    let t = ingest_strongroom(&eml, &repo);
    results.push(("strongroom", t, du(&repo)));
    if tool("restic", "version") {
        let repo = scratch.path().join("restic");
        let t = ingest_restic(&eml, &repo, scratch.path());
        results.push(("restic", t, du(&repo)));
    } else {
        println!("restic not installed: skipped (apt-get install restic)");
    }
    if tool("borg", "--version") {
        let repo = scratch.path().join("borg");
        let t = ingest_borg(&eml, &repo, scratch.path());
        results.push(("borg", t, du(&repo)));
    } else {
        println!("borg not installed: skipped (apt-get install borgbackup)");
    }
    let ours = results[0];
    for (name, secs, size) in &results {
        println!(
            "{name:<12} {secs:>9.2} {:>10.1} {:>11.1} {:>12.3} {:>11.2}",
            mb / secs,
            *size as f64 / 1e6,
            *size as f64 / input as f64,
            secs / ours.1,
        );
    }
    for (name, secs, size) in &results[1..] {
        println!(
            "vs {name}: throughput ratio {:.2} (strongroom MB/s ÷ {name} MB/s), size ratio {:.3} (strongroom repo ÷ {name} repo)",
            secs / ours.1,
            ours.2 as f64 / *size as f64
        );
    }
}
