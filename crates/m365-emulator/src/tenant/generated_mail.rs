//! A generated mailbox's content: its folder tree and messages, deterministic per seed.
//!
//! Messages mix plain text, HTML, multipart/alternative, inline images, attachments and
//! replies in threads, with non-ASCII names, subjects and bodies; sizes follow a long-tailed
//! distribution (most mail is a few KB, about one in eight messages carries attachments, a
//! few reach several MB). Dates fall in the three years before [`epoch`].

use super::message::{from_facts, MimeSource, Recipient};
use super::recipe::{
    attachment_size, small_attachment_size, MessageRecipe, Shape, ATTACHMENT_KINDS,
    TEXT_ATTACHMENT_KINDS,
};
use super::{Mailbox, Message};
use crate::config::Attachments;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, RngCore};

const EXTERNAL: [(&str, &str); 6] = [
    ("Fabrikam Billing", "billing@fabrikam.com"),
    ("Northwind Traders", "orders@northwindtraders.com"),
    ("Tailspin Toys", "news@tailspintoys.com"),
    ("Wide World Importers", "sales@wideworldimporters.com"),
    ("Société Générale Événements", "evenements@example.fr"),
    ("山田 太郎", "t.yamada@example.jp"),
];
const TOPICS: [&str; 16] = [
    "Quarterly budget review",
    "Press conference",
    "Holiday hours update",
    "Contract renewal",
    "Invoice 2024-{n}",
    "Team offsite planning",
    "Réunion budgétaire",
    "Größenordnung der Anfrage",
    "Café meeting ☕",
    "日本出張の件",
    "Security training reminder",
    "Candidate interview feedback",
    "Weekly digest #{n}",
    "Shipment delayed",
    "Board deck draft v{n}",
    "Lunch on Friday?",
];

/// Where the emulator's tenant clock starts: generated mail is dated before this instant.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

const USER_FOLDERS: [&str; 10] = [
    "Projects",
    "Clients",
    "Receipts",
    "Newsletters",
    "Team",
    "Travel",
    "Équipe",
    "Rechnungen",
    "Legal",
    "Hiring",
];

pub fn fill_mailbox(
    rng: &mut StdRng,
    mb: &mut Mailbox,
    owner: &Recipient,
    people: &[Recipient],
    count: usize,
    attachments: Attachments,
    seq: &mut u64,
) {
    // Folder tree: nested user folders under Inbox and Archive, a hidden one, a search folder.
    let mut targets: Vec<(String, u32)> = Vec::new();
    let inbox = mb.folder("inbox").map(|f| f.id.clone()).unwrap_or_default();
    let archive = mb
        .folder("archive")
        .map(|f| f.id.clone())
        .unwrap_or_default();
    let sent = mb
        .folder("sentitems")
        .map(|f| f.id.clone())
        .unwrap_or_default();
    let deleted = mb
        .folder("deleteditems")
        .map(|f| f.id.clone())
        .unwrap_or_default();
    let drafts = mb
        .folder("drafts")
        .map(|f| f.id.clone())
        .unwrap_or_default();
    let history = mb
        .folder("conversationhistory")
        .map(|f| f.id.clone())
        .unwrap_or_default();
    targets.push((inbox.clone(), 45));
    targets.push((sent.clone(), 18));
    targets.push((archive.clone(), 8));
    targets.push((deleted.clone(), 4));
    for _ in 0..rng.gen_range(2..5) {
        let name = USER_FOLDERS[rng.gen_range(0..USER_FOLDERS.len())];
        let Ok(top) = mb.create_folder(&inbox, name, false, seq) else {
            continue;
        };
        targets.push((top.clone(), 5));
        if rng.gen_bool(0.6) {
            let year = format!("{}", rng.gen_range(2022..2026));
            if let Ok(sub) = mb.create_folder(&top, &year, false, seq) {
                targets.push((sub.clone(), 3));
                if rng.gen_bool(0.5) {
                    if let Ok(q) = mb.create_folder(&sub, "Q1", false, seq) {
                        targets.push((q, 2));
                    }
                }
            }
        }
    }
    if let Ok(y) = mb.create_folder(&archive, "2023", false, seq) {
        targets.push((y, 4));
    }
    if let Ok(hidden) = mb.create_folder(&history, "Team Chat", true, seq) {
        targets.push((hidden, 2));
    }
    if let Ok(search) = mb.create_folder(&inbox, "Weekly digests", false, seq) {
        if let Some(f) = mb.folder_mut(&search) {
            f.search_query = Some("contains(subject, 'weekly digest')".into());
        }
    }
    let total_weight: u32 = targets.iter().map(|t| t.1).sum();
    let start = epoch() - Duration::days(3 * 365);
    let mut thread_ids: Vec<(String, String)> = Vec::new();
    let mut dates: Vec<i64> = (0..count)
        .map(|_| rng.gen_range(0..3 * 365 * 86_400))
        .collect();
    dates.sort_unstable();
    for (n, offset) in dates.into_iter().enumerate() {
        let mut pick = rng.gen_range(0..total_weight.max(1));
        let mut folder = inbox.clone();
        for (id, w) in &targets {
            if pick < *w {
                folder = id.clone();
                break;
            }
            pick -= w;
        }
        if n % 17 == 16 {
            folder = drafts.clone();
        }
        let outgoing = folder == sent || folder == drafts;
        let other = if rng.gen_bool(0.6) && !people.is_empty() {
            people[rng.gen_range(0..people.len())].clone()
        } else {
            let (name, address) = EXTERNAL[rng.gen_range(0..EXTERNAL.len())];
            Recipient {
                name: name.into(),
                address: address.into(),
            }
        };
        let (from, to) = if outgoing {
            (owner.clone(), other)
        } else {
            (other, owner.clone())
        };
        let reply = !thread_ids.is_empty() && rng.gen_bool(0.3);
        let (subject, in_reply_to) = if reply {
            let (s, id) = thread_ids[rng.gen_range(0..thread_ids.len())].clone();
            (format!("RE: {}", s.trim_start_matches("RE: ")), Some(id))
        } else {
            let topic = TOPICS[rng.gen_range(0..TOPICS.len())]
                .replace("{n}", &rng.gen_range(1..400).to_string());
            (topic, None)
        };
        let shape = match rng.gen_range(0..100) {
            0..=29 => Shape::Plain,
            30..=54 => Shape::Html,
            55..=89 => Shape::Alternative,
            _ => Shape::InlineImage,
        };
        let files = if rng.gen_range(0..100) < 13 {
            (0..rng.gen_range(1..4))
                .map(|_| match attachments {
                    Attachments::Realistic => {
                        let (name, ctype, _) =
                            ATTACHMENT_KINDS[rng.gen_range(0..ATTACHMENT_KINDS.len())];
                        (name.to_string(), ctype.to_string(), attachment_size(rng))
                    }
                    Attachments::Small => {
                        let kinds = ATTACHMENT_KINDS.len() + TEXT_ATTACHMENT_KINDS.len();
                        let k = rng.gen_range(0..kinds);
                        let (name, ctype, _) = match k.checked_sub(ATTACHMENT_KINDS.len()) {
                            None => ATTACHMENT_KINDS[k],
                            Some(text) => TEXT_ATTACHMENT_KINDS[text],
                        };
                        (
                            name.to_string(),
                            ctype.to_string(),
                            small_attachment_size(rng),
                        )
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let cc = if rng.gen_bool(0.2) && !people.is_empty() {
            vec![people[rng.gen_range(0..people.len())].clone()]
        } else {
            Vec::new()
        };
        let date = start + Duration::seconds(offset);
        let message_id = format!(
            "<{:016X}{:04}@{}.prod.outlook.com>",
            rng.next_u64(),
            n,
            "MWHPR22MB1007"
        );
        let recipe = MessageRecipe {
            seed: rng.next_u64(),
            from,
            to: vec![to],
            cc,
            date,
            subject: subject.clone(),
            message_id: message_id.clone(),
            in_reply_to,
            shape,
            paragraphs: rng.gen_range(1..8),
            attachments: files,
            importance: ["normal", "normal", "normal", "normal", "high", "low"]
                [rng.gen_range(0..6)],
        };
        thread_ids.push((subject, message_id));
        let is_read = rng.gen_bool(0.7);
        let is_draft = folder == drafts;
        let flagged = rng.gen_bool(0.05);
        let message = message_from_recipe(recipe, date, is_read, is_draft, flagged);
        mb.insert_message(message, &folder, seq);
    }
}

fn message_from_recipe(
    recipe: MessageRecipe,
    received: DateTime<Utc>,
    is_read: bool,
    is_draft: bool,
    flagged: bool,
) -> Message {
    let (bytes, facts) = recipe.build_with_facts();
    let mut m = from_facts(facts, bytes.len() as u64, received);
    m.is_read = is_read;
    m.is_draft = is_draft;
    if flagged {
        m.flag_status = "flagged".into();
    }
    m.mime = MimeSource::Generated(Box::new(recipe));
    m
}
