//! The backup engine end to end against the emulator, one file per concern: completeness
//! byte for byte and incremental exactness (`complete`), faults, throttling and crashes
//! (`faults`), no plaintext on disk (`privacy`), accounts and `rebuild` (`accounts`),
//! attachments (`attachments`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use m365_emulator::{Config, Emulator, FaultKind, MessageUpdate, ScheduledFault, TenantSnapshot};
use strongroom_engine::accounts::{AccountStatus, Selection, SkipReason};
use strongroom_engine::api::{Engine, EngineOptions};
use strongroom_engine::report::{MailboxStatus, Outcome, RunReport};
use strongroom_engine::task::TaskSettings;

#[path = "../support/mod.rs"]
mod support;
use support::*;

mod accounts;
mod attachments;
mod complete;
mod faults;
mod privacy;

/// Every message of every backed-up mailbox (search folders hold none of their own).
fn tenant_messages(
    tenant: &TenantSnapshot,
    user_ids: &[String],
) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for user in tenant.users.iter().filter(|u| user_ids.contains(&u.id)) {
        let Some(mailbox) = &user.mailbox else {
            continue;
        };
        for folder in mailbox.folders.iter().filter(|f| !f.search_folder) {
            for m in &folder.messages {
                out.insert(m.immutable_id.clone(), (user.id.clone(), m.mime.to_vec()));
            }
        }
    }
    out
}

/// Asserts the archive's newest snapshot holds exactly the tenant's messages, byte for byte.
fn assert_complete(engine: &Engine, tenant: &TenantSnapshot, user_ids: &[String]) {
    let expected = tenant_messages(tenant, user_ids);
    let mut seen = HashMap::new();
    for user in user_ids {
        for m in engine.messages(user, None, None).unwrap() {
            assert!(
                seen.insert(m.entry.id.clone(), ()).is_none(),
                "duplicate message"
            );
            let (owner, mime) = expected
                .get(&m.entry.id)
                .unwrap_or_else(|| panic!("archive holds a message the tenant does not"));
            assert_eq!(owner, user);
            let stored = engine.message_mime(user, &m.entry.id, None).unwrap();
            assert!(stored == *mime, "MIME differs for a message");
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "messages missing from the archive"
    );
}

fn backed_up(report: &RunReport) -> Vec<String> {
    report
        .mailboxes
        .iter()
        .filter(|m| m.status == MailboxStatus::BackedUp)
        .map(|m| m.user_id.clone())
        .collect()
}
