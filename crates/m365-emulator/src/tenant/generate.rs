//! Deterministic tenant generation: the same seed gives the same users, folders and MIME bytes.
//!
//! Users cycle through every kind (see `KIND_CYCLE`); each mailbox is filled by
//! [`generated_mail`](super::generated_mail).

use super::generated_mail::fill_mailbox;
use super::message::Recipient;
use super::{Mailbox, Tenant, User, UserKind, PLAN_EXCHANGE, SKU_E3, SKU_POWER_BI};
use crate::config::Attachments;
use crate::identity::roles;
use crate::tenant::{Application, ChangeLog, ServicePrincipal};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// User kinds by index: user 0 is the Global Admin; eight consecutive users cover every kind.
pub const KIND_CYCLE: [UserKind; 10] = [
    UserKind::Licensed,
    UserKind::Licensed,
    UserKind::Shared,
    UserKind::Unlicensed,
    UserKind::Room,
    UserKind::Licensed,
    UserKind::Disabled,
    UserKind::NoMailbox,
    UserKind::Licensed,
    UserKind::Licensed,
];

const FIRST: [&str; 24] = [
    "Adele",
    "Alex",
    "Megan",
    "Lynne",
    "Diego",
    "Zoë",
    "Jürgen",
    "Søren",
    "François",
    "Małgorzata",
    "Yūki",
    "Chloé",
    "Åsa",
    "José",
    "Björn",
    "Mei",
    "Olumide",
    "Priya",
    "Isaiah",
    "Nestor",
    "Grady",
    "Lee",
    "Miriam",
    "Pradeep",
];
const LAST: [&str; 20] = [
    "Vance",
    "Wilber",
    "Bowen",
    "Robbins",
    "Siciliani",
    "Müller",
    "Øster",
    "Lefèvre",
    "Wójcik",
    "Tanaka",
    "Dupré",
    "Ångström",
    "García",
    "Sørensen",
    "Chen",
    "Adeyemi",
    "Patel",
    "Langer",
    "Archambault",
    "Gupta",
];
const SHARED: [&str; 5] = ["Support Desk", "Billing", "Info", "Recrutement", "Empfang"];
const ROOMS: [&str; 5] = [
    "Conf Room Adams",
    "Conf Room Baker",
    "Salle Cézanne",
    "Raum Dürer",
    "Conf Room Stevens",
];
fn uuid_from(rng: &mut StdRng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'à'..='å' => 'a',
                'Å' => 'a',
                'ç' => 'c',
                'è'..='ë' => 'e',
                'ì'..='ï' => 'i',
                'ł' => 'l',
                'ñ' => 'n',
                'ò'..='ö' | 'ø' | 'Ø' => 'o',
                'ù'..='ü' | 'ū' => 'u',
                'ß' => 's',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            };
            Some(folded)
        })
        .collect()
}

/// The default app registration every tenant has (its credentials are in the ready line).
pub fn default_app(rng: &mut StdRng) -> (Application, ServicePrincipal) {
    let app_id = uuid_from(rng);
    let secret: String = (0..40)
        .map(|_| {
            const CHARS: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
            CHARS[rng.gen_range(0..CHARS.len())] as char
        })
        .collect();
    let app = Application {
        id: uuid_from(rng),
        app_id: app_id.clone(),
        display_name: "Strongroom".into(),
        secrets: vec![secret],
        certificates: Vec::new(),
        public_redirect_uris: vec!["http://localhost".into(), "http://127.0.0.1".into()],
        web_redirect_uris: Vec::new(),
        required_roles: roles::DEFAULT_APP_ROLES
            .iter()
            .map(|r| r.to_string())
            .collect(),
        mailbox_scope: None,
    };
    let sp = ServicePrincipal {
        id: uuid_from(rng),
        app_id,
        display_name: "Strongroom".into(),
        roles: roles::DEFAULT_APP_ROLES
            .iter()
            .map(|r| r.to_string())
            .collect(),
        assignments: Vec::new(),
        consented_scopes: Vec::new(),
    };
    (app, sp)
}

/// Generates the whole tenant for `users` users with `messages` messages per mailbox.
pub fn tenant(seed: u64, users: usize, messages: usize, attachments: Attachments) -> Tenant {
    tenant_in(
        seed,
        "contoso.onmicrosoft.com",
        users,
        messages,
        attachments,
    )
}

/// As `tenant`, with another primary domain.
pub fn tenant_in(
    seed: u64,
    domain: &str,
    users: usize,
    messages: usize,
    attachments: Attachments,
) -> Tenant {
    let mut rng = StdRng::seed_from_u64(seed);
    let id = uuid_from(&mut rng);
    let domain = domain.to_string();
    let (app, sp) = default_app(&mut rng);
    let graph_sp = ServicePrincipal {
        id: uuid_from(&mut rng),
        app_id: roles::GRAPH_APP_ID.into(),
        display_name: "Microsoft Graph".into(),
        roles: Vec::new(),
        assignments: Vec::new(),
        consented_scopes: Vec::new(),
    };
    let mut tenant = Tenant {
        id,
        domain: domain.clone(),
        display_name: "Contoso".into(),
        users: Vec::new(),
        apps: vec![app],
        service_principals: vec![sp, graph_sp],
        seq: 0,
        user_log: ChangeLog::default(),
        purged: Default::default(),
    };
    for i in 0..users {
        let kind = KIND_CYCLE[i % KIND_CYCLE.len()];
        let user = new_user(&mut rng, i, kind, &domain, &mut tenant.seq);
        tenant.users.push(user);
        tenant.seq += 1;
        let seq = tenant.seq;
        tenant.users[i].seq = seq;
        tenant
            .user_log
            .record(seq, super::Change::Upsert(tenant.users[i].id.clone()));
    }
    let people: Vec<Recipient> = tenant
        .users
        .iter()
        .filter(|u| u.kind == UserKind::Licensed)
        .map(|u| Recipient {
            name: u.display_name.clone(),
            address: u.user_principal_name.clone(),
        })
        .collect();
    // Mailboxes are filled in parallel: each has its own seeded generator, and sequence numbers
    // only need to be unique inside one mailbox, so every mailbox counts on from the same base.
    let base = tenant.seq;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = tenant.users.len().div_ceil(threads).max(1);
    let people = &people;
    let highest: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = tenant
            .users
            .chunks_mut(chunk)
            .enumerate()
            .map(|(c, users)| {
                scope.spawn(move || {
                    let mut highest = base;
                    for (j, user) in users.iter_mut().enumerate() {
                        let i = (c * chunk + j) as u64;
                        let owner = Recipient {
                            name: user.display_name.clone(),
                            address: user.user_principal_name.clone(),
                        };
                        if let Some(mailbox) = user.mailbox.as_mut() {
                            let mut seq = base;
                            let mut rng =
                                StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i));
                            fill_mailbox(
                                &mut rng,
                                mailbox,
                                &owner,
                                people,
                                messages,
                                attachments,
                                &mut seq,
                            );
                            highest = highest.max(seq);
                        }
                    }
                    highest
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    tenant.seq = highest.into_iter().max().unwrap_or(base);
    tenant
}

fn new_user(rng: &mut StdRng, i: usize, kind: UserKind, domain: &str, seq: &mut u64) -> User {
    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    let (display, given, surname, local) = match kind {
        _ if i == 0 => (
            "MOD Administrator".to_string(),
            Some("MOD".to_string()),
            Some("Administrator".to_string()),
            "admin".to_string(),
        ),
        UserKind::Shared => {
            let name = SHARED[(i / 10) % SHARED.len()];
            (
                name.to_string(),
                None,
                None,
                format!("{}{}", ascii_fold(name), i),
            )
        }
        UserKind::Room => {
            let name = ROOMS[(i / 10) % ROOMS.len()];
            (
                name.to_string(),
                None,
                None,
                format!("{}{}", ascii_fold(name), i),
            )
        }
        _ => (
            format!("{first} {last}"),
            Some(first.to_string()),
            Some(last.to_string()),
            format!("{}.{}{}", ascii_fold(first), ascii_fold(last), i),
        ),
    };
    let licenses = match kind {
        UserKind::Licensed | UserKind::Disabled => vec![SKU_E3.to_string()],
        UserKind::NoMailbox => vec![SKU_POWER_BI.to_string()],
        _ => Vec::new(),
    };
    let password: String = format!(
        "Pw-{}-{:06}!",
        ascii_fold(first),
        rng.gen_range(0..1_000_000)
    );
    let salt = rng.next_u32();
    let id = uuid_from(rng);
    let mailbox = kind
        .has_mailbox()
        .then(|| Mailbox::new(kind.purpose(), salt, seq));
    let person = !matches!(kind, UserKind::Shared | UserKind::Room);
    User {
        id,
        user_principal_name: format!("{local}@{domain}"),
        display_name: display,
        given_name: given,
        surname,
        job_title: person.then(|| {
            [
                "Sales Manager",
                "Accountant",
                "Developer",
                "Directeur commercial",
                "Office Manager",
            ][i % 5]
                .to_string()
        }),
        mobile_phone: person.then(|| format!("+1 425 555 {:04}", rng.gen_range(0..10_000))),
        office_location: person
            .then(|| ["18/2111", "131/1104", "Paris", "Berlin"][i % 4].to_string()),
        business_phones: if person {
            vec![format!("+1 425 555 {:04}", rng.gen_range(0..10_000))]
        } else {
            Vec::new()
        },
        preferred_language: person.then(|| "en-US".to_string()),
        account_enabled: matches!(
            kind,
            UserKind::Licensed | UserKind::Unlicensed | UserKind::NoMailbox
        ),
        kind,
        licenses,
        password,
        is_global_admin: i == 0,
        mailbox,
        seq: 0,
    }
}

/// Exchange service plan id, for assignedPlans.
pub fn exchange_plan() -> &'static str {
    PLAN_EXCHANGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::message::{self, MimeSource};

    #[test]
    fn same_seed_same_bytes() {
        let a = tenant(7, 3, 10, Attachments::Realistic);
        let b = tenant(7, 3, 10, Attachments::Realistic);
        let ma = a.users[0].mailbox.as_ref().unwrap();
        let mb = b.users[0].mailbox.as_ref().unwrap();
        assert_eq!(a.id, b.id);
        for (x, y) in ma.messages.values().zip(mb.messages.values()) {
            assert_eq!(x.rest_id, y.rest_id);
            assert_eq!(x.mime_bytes(), y.mime_bytes());
            assert_eq!(x.size, x.mime_bytes().len() as u64);
        }
        assert_ne!(tenant(8, 3, 10, Attachments::Realistic).id, a.id);
    }

    #[test]
    fn facts_known_at_generation_match_parsing_the_mime() {
        let realistic = tenant(5, 2, 80, Attachments::Realistic);
        let small = tenant(5, 2, 80, Attachments::Small);
        let messages = [realistic, small].into_iter().flat_map(|t| {
            t.users
                .into_iter()
                .next()
                .unwrap()
                .mailbox
                .unwrap()
                .messages
        });
        for (_, m) in messages {
            let MimeSource::Generated(recipe) = &m.mime else {
                panic!("generated")
            };
            let (bytes, known) = recipe.build_with_facts();
            let parsed = message::facts_from_mime(&bytes);
            assert_eq!(known.subject, parsed.subject);
            assert_eq!(known.from, parsed.from);
            assert_eq!(known.to, parsed.to);
            assert_eq!(known.cc, parsed.cc);
            assert_eq!(known.sent, parsed.sent);
            assert_eq!(known.internet_message_id, parsed.internet_message_id);
            assert_eq!(known.thread_root, parsed.thread_root);
            assert_eq!(known.importance, parsed.importance);
            let strip = |a: &[(String, String, u64, bool, Option<String>)]| {
                a.iter()
                    .map(|x| (x.0.clone(), x.1.clone(), x.2, x.3))
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&known.attachments), strip(&parsed.attachments));
            let names = |h: &[(String, String)]| h.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            assert_eq!(names(&known.headers), names(&parsed.headers));
        }
    }

    #[test]
    fn small_attachments_are_small_and_some_are_searchable_text() {
        let t = tenant(3, 2, 300, Attachments::Small);
        let mb = t.users[0].mailbox.as_ref().unwrap();
        let files: Vec<_> = mb
            .messages
            .values()
            .flat_map(|m| m.attachments.iter().filter(|a| !a.is_inline))
            .collect();
        assert!(files.len() > 40, "{} attachments", files.len());
        assert!(files.iter().all(|a| a.size < 30_000));
        let text = files
            .iter()
            .filter(|a| a.content_type.starts_with("text/"))
            .count();
        assert!(
            text > files.len() / 5 && text < files.len() / 2,
            "{text} text"
        );
        let csv = mb
            .messages
            .values()
            .find(|m| m.attachments.iter().any(|a| a.name == "orders.csv"))
            .expect("a CSV attachment");
        let mime = String::from_utf8(csv.mime_bytes().to_vec()).unwrap();
        assert!(mime.contains("text/csv; charset=\"utf-8\"; name=\"orders.csv\""));
    }

    #[test]
    fn every_kind_appears_in_eight_users() {
        let t = tenant(1, 8, 0, Attachments::Realistic);
        for kind in [
            UserKind::Licensed,
            UserKind::Unlicensed,
            UserKind::Shared,
            UserKind::Room,
            UserKind::NoMailbox,
            UserKind::Disabled,
        ] {
            assert!(t.users.iter().any(|u| u.kind == kind), "{kind:?} missing");
        }
        assert!(t.users.iter().filter(|u| u.mailbox.is_some()).all(|u| u
            .mailbox
            .as_ref()
            .unwrap()
            .folders
            .iter()
            .any(|f| f.is_hidden)));
    }

    #[test]
    fn messages_have_realistic_variety() {
        let t = tenant(3, 2, 200, Attachments::Realistic);
        let mb = t.users[0].mailbox.as_ref().unwrap();
        let with_attachments = mb.messages.values().filter(|m| m.has_attachments()).count();
        let inline = mb
            .messages
            .values()
            .filter(|m| m.attachments.iter().any(|a| a.is_inline))
            .count();
        let threads = mb
            .messages
            .values()
            .filter(|m| m.subject.starts_with("RE: "))
            .count();
        let non_ascii = mb
            .messages
            .values()
            .filter(|m| !m.subject.is_ascii())
            .count();
        assert!(with_attachments > 5 && inline > 5 && threads > 10 && non_ascii > 5);
        let sizes: Vec<u64> = mb.messages.values().map(|m| m.size).collect();
        assert!(sizes.iter().any(|&s| s < 10_000) && sizes.iter().any(|&s| s > 200_000));
    }
}
