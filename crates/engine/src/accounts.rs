//! Accounts: discovery of every user of the tenant with its licence state and mailbox type,
//! new-user detection, activation, and archiving of mailboxes that left the tenant.
//!
//! Unlicensed accounts and accounts without a mailbox are *skipped with a reason*, never
//! failed. A mailbox that was backed up and then disappears (user deleted, mailbox removed,
//! licence removed while unlicensed accounts are not backed up) is *archived*: its last
//! backup stays in every new snapshot until the task's retention runs out.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use strongroom_archive::BlobId;
use strongroom_graph::{GraphClient, MailboxKind, User};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::task::{Retention, Task, TaskSettings};

/// Mailbox type as the grid shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxType {
    User,
    Shared,
    Room,
    Equipment,
    Linked,
    Other,
    None,
}

impl From<MailboxKind> for MailboxType {
    fn from(k: MailboxKind) -> MailboxType {
        match k {
            MailboxKind::User => MailboxType::User,
            MailboxKind::Shared => MailboxType::Shared,
            MailboxKind::Room => MailboxType::Room,
            MailboxKind::Equipment => MailboxType::Equipment,
            MailboxKind::Linked => MailboxType::Linked,
            MailboxKind::Other => MailboxType::Other,
            MailboxKind::None => MailboxType::None,
        }
    }
}

/// An account as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub address: String,
    pub display_name: String,
    pub licensed: bool,
    pub mailbox: MailboxType,
    /// Activated for backup by the admin (or automatically).
    pub active: bool,
    pub first_seen_ms: i64,
    /// Set while the account is archived.
    pub gone_since_ms: Option<i64>,
    /// Mailbox tree of the last committed snapshot.
    pub tree: Option<BlobId>,
    pub last_backup_ms: Option<i64>,
}

/// Why an account is not backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No Exchange Online mailbox (no licence with Exchange, or on-premises).
    NoMailbox,
    /// Unlicensed (shared, room, external) and the task does not back up unlicensed accounts.
    Unlicensed,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::NoMailbox => "no mailbox",
            SkipReason::Unlicensed => "unlicensed (task does not back up unlicensed accounts)",
        })
    }
}

impl Account {
    /// Whether the task's settings allow backing this account up at all.
    pub fn skip_reason(&self, settings: &TaskSettings) -> Option<SkipReason> {
        if self.mailbox == MailboxType::None {
            Some(SkipReason::NoMailbox)
        } else if !self.licensed && !settings.backup_unlicensed {
            Some(SkipReason::Unlicensed)
        } else {
            None
        }
    }

    /// Whether the retention of an archived account has run out at `now_ms`.
    pub fn retention_expired(&self, retention: Retention, now_ms: i64) -> bool {
        match (self.gone_since_ms, retention) {
            (Some(since), Retention::Days(days)) => now_ms - since > i64::from(days) * 86_400_000,
            _ => false,
        }
    }
}

/// Backup status of an account, for the grid and `strongroom mailboxes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Inactive,
    Skipped,
    Archived,
}

/// One row of the mailbox grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub user_id: String,
    pub address: String,
    pub display_name: String,
    pub licensed: bool,
    pub mailbox: MailboxType,
    pub status: AccountStatus,
    pub skip_reason: Option<SkipReason>,
    pub new: bool,
    pub last_backup_ms: Option<i64>,
}

impl AccountView {
    pub fn of(account: &Account, settings: &TaskSettings, new: bool) -> AccountView {
        let skip = account.skip_reason(settings);
        let status = if account.gone_since_ms.is_some() {
            AccountStatus::Archived
        } else if skip.is_some() {
            AccountStatus::Skipped
        } else if account.active {
            AccountStatus::Active
        } else {
            AccountStatus::Inactive
        };
        AccountView {
            user_id: account.user_id.clone(),
            address: account.address.clone(),
            display_name: account.display_name.clone(),
            licensed: account.licensed,
            mailbox: account.mailbox,
            status,
            skip_reason: skip.filter(|_| status == AccountStatus::Skipped),
            new,
            last_backup_ms: account.last_backup_ms,
        }
    }
}

/// Users whose mailbox kind is looked up at once. Each is one request on its own mailbox's
/// lane, so no budget limits them; and no mailbox's backup starts before discovery ends, so
/// each round trip of it leaves every mailbox's budget idle.
const DISCOVERY_CONCURRENCY: usize = 32;

/// Lists every user of the tenant, records them, archives accounts that left, and activates
/// new mailboxes when the task says so. Returns the grid, new users flagged.
pub async fn discover(
    graph: &GraphClient,
    catalog: &Catalog,
    task: &Task,
    now_ms: i64,
) -> Result<Vec<AccountView>> {
    let users: Vec<User> = graph
        .users()
        .map_ok(|page| {
            futures::stream::iter(
                page.value
                    .into_iter()
                    .map(Ok::<User, strongroom_graph::GraphError>),
            )
        })
        .try_flatten()
        .try_collect()
        .await?;
    let kinds: Vec<(User, MailboxKind)> = futures::stream::iter(users)
        .map(|user| async move {
            let kind = graph.mailbox_kind(&user.id).await?;
            Ok::<_, Error>((user, kind))
        })
        .buffered(DISCOVERY_CONCURRENCY)
        .try_collect()
        .await?;

    let known = catalog.accounts(task.id)?;
    let mut seen = HashSet::new();
    let mut new_ids = HashSet::new();
    for (user, kind) in &kinds {
        seen.insert(user.id.clone());
        let previous = known.iter().find(|a| a.user_id == user.id);
        let mut account = Account {
            user_id: user.id.clone(),
            address: user
                .mail
                .clone()
                .or_else(|| user.user_principal_name.clone())
                .unwrap_or_default(),
            display_name: user.display_name.clone().unwrap_or_default(),
            licensed: user.is_licensed(),
            mailbox: MailboxType::from(*kind),
            active: previous.is_some_and(|p| p.active),
            first_seen_ms: now_ms,
            gone_since_ms: None,
            tree: previous.and_then(|p| p.tree),
            last_backup_ms: previous.and_then(|p| p.last_backup_ms),
        };
        let skip = account.skip_reason(&task.settings);
        if previous.is_none() && skip.is_none() && task.settings.auto_activate_new {
            account.active = true;
        }
        // A backed-up mailbox that can no longer be backed up is archived, not dropped.
        if skip.is_some() && account.tree.is_some() {
            account.gone_since_ms = previous.and_then(|p| p.gone_since_ms).or(Some(now_ms));
        }
        if catalog.upsert_account(task.id, &account, now_ms)? {
            new_ids.insert(account.user_id.clone());
            if account.active {
                catalog.set_active(task.id, &account.user_id, true)?;
            }
        }
    }
    for gone in known.iter().filter(|a| !seen.contains(&a.user_id)) {
        catalog.mark_gone(task.id, &gone.user_id, now_ms)?;
    }
    Ok(catalog
        .accounts(task.id)?
        .iter()
        .map(|a| AccountView::of(a, &task.settings, new_ids.contains(&a.user_id)))
        .collect())
}

/// Which accounts to activate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every account the task's settings allow.
    All,
    /// These addresses (or user ids).
    Addresses(Vec<String>),
}

/// Activates accounts; returns how many changed. Skipped accounts named explicitly are an
/// error (the admin asked for something the settings forbid); `All` passes over them.
pub fn activate(catalog: &Catalog, task: &Task, selection: &Selection) -> Result<usize> {
    let accounts = catalog.accounts(task.id)?;
    let chosen: Vec<&Account> = match selection {
        Selection::All => accounts
            .iter()
            .filter(|a| a.skip_reason(&task.settings).is_none() && a.gone_since_ms.is_none())
            .collect(),
        Selection::Addresses(list) => {
            let mut out = Vec::new();
            for wanted in list {
                let id = catalog
                    .account_by_address(task.id, wanted)?
                    .unwrap_or_else(|| wanted.clone());
                let account = accounts.iter().find(|a| a.user_id == id).ok_or_else(|| {
                    Error::not_found(format!("no account {wanted:?}; run mailboxes first"))
                })?;
                if let Some(reason) = account.skip_reason(&task.settings) {
                    return Err(Error::invalid(format!(
                        "{wanted:?} cannot be activated: {reason}"
                    )));
                }
                out.push(account);
            }
            out
        }
    };
    let mut changed = 0;
    for account in chosen {
        if !account.active {
            catalog.set_active(task.id, &account.user_id, true)?;
            changed += 1;
        }
    }
    Ok(changed)
}
