//! The run report: what a backup did to each mailbox, and its overall outcome, which the
//! CLI maps to its exit code and the desktop app to its notification.

use serde::Serialize;

use crate::accounts::SkipReason;

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every mailbox to back up was backed up.
    Success,
    /// Some mailboxes failed; the others (and the snapshot) are complete.
    Partial,
    /// Nothing could be backed up.
    Failed,
}

/// What happened to one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxStatus {
    BackedUp,
    Skipped,
    Failed,
}

/// One mailbox's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxReport {
    pub user_id: String,
    pub address: String,
    pub status: MailboxStatus,
    pub skip_reason: Option<SkipReason>,
    /// Why it failed (an error message without mailbox content).
    pub error: Option<String>,
    pub folders: u64,
    pub messages: u64,
    pub new: u64,
    pub changed: u64,
    pub moved: u64,
    pub deleted: u64,
    /// MIME bytes downloaded.
    pub bytes: u64,
    /// Folders whose delta state had expired and were enumerated again.
    pub resynced_folders: u64,
    /// Time its requests waited on throttling (Retry-After fences and backoffs; concurrent
    /// waits count once), in milliseconds.
    pub throttle_wait_ms: u64,
}

impl MailboxReport {
    pub fn new(user_id: &str, address: &str, status: MailboxStatus) -> MailboxReport {
        MailboxReport {
            user_id: user_id.to_owned(),
            address: address.to_owned(),
            status,
            skip_reason: None,
            error: None,
            folders: 0,
            messages: 0,
            new: 0,
            changed: 0,
            moved: 0,
            deleted: 0,
            bytes: 0,
            resynced_folders: 0,
            throttle_wait_ms: 0,
        }
    }
}

/// The report of one backup run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub task: String,
    pub outcome: Outcome,
    /// The run's final snapshot (absent when the run failed before writing one).
    pub snapshot: Option<String>,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub mailboxes: Vec<MailboxReport>,
    /// Why the whole run failed, when it did.
    pub error: Option<String>,
    /// The mailboxes' throttle waits summed, in milliseconds.
    pub throttle_wait_ms: u64,
}

impl RunReport {
    pub fn outcome_of(mailboxes: &[MailboxReport]) -> Outcome {
        let failed = mailboxes
            .iter()
            .filter(|m| m.status == MailboxStatus::Failed)
            .count();
        let done = mailboxes
            .iter()
            .filter(|m| m.status == MailboxStatus::BackedUp)
            .count();
        match (failed, done) {
            (0, _) => Outcome::Success,
            (_, 0) => Outcome::Failed,
            _ => Outcome::Partial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_tells_success_partial_and_failure_apart() {
        let ok = MailboxReport::new("a", "a@x", MailboxStatus::BackedUp);
        let bad = MailboxReport::new("b", "b@x", MailboxStatus::Failed);
        let skip = MailboxReport::new("c", "c@x", MailboxStatus::Skipped);
        assert_eq!(
            RunReport::outcome_of(&[ok.clone(), skip.clone()]),
            Outcome::Success
        );
        assert_eq!(RunReport::outcome_of(&[ok, bad.clone()]), Outcome::Partial);
        assert_eq!(RunReport::outcome_of(&[bad, skip]), Outcome::Failed);
    }
}
