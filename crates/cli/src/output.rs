//! Human-readable tables and the stable `--json` output (one JSON document on stdout).

use serde::Serialize;
use strongroom_engine::accounts::AccountView;
use strongroom_engine::report::{MailboxStatus, RunReport};
use strongroom_engine::snapshot_view::{FolderInfo, MessageInfo, SnapshotInfo};

pub fn json<T: Serialize>(value: &T) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).expect("engine types serialise")
    );
}

fn time(ms: i64) -> String {
    // Seconds since the epoch, UTC, without a calendar dependency: good enough for a listing.
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn mailboxes(grid: &[AccountView]) {
    out!(
        "{:<40} {:<9} {:<9} {:<9} REASON",
        "ADDRESS",
        "LICENSED",
        "MAILBOX",
        "STATUS"
    );
    for a in grid {
        let reason = a.skip_reason.map(|r| r.to_string()).unwrap_or_default();
        out!(
            "{:<40} {:<9} {:<9} {:<9} {}{}",
            a.address,
            if a.licensed { "yes" } else { "no" },
            serde_json::to_value(a.mailbox)
                .expect("enum")
                .as_str()
                .unwrap_or(""),
            serde_json::to_value(a.status)
                .expect("enum")
                .as_str()
                .unwrap_or(""),
            reason,
            if a.new { " (new)" } else { "" }
        );
    }
}

pub fn report(r: &RunReport) {
    for m in &r.mailboxes {
        match m.status {
            MailboxStatus::BackedUp => out!(
                "{}: {} messages in {} folders; new {}, changed {}, moved {}, deleted {}{}",
                m.address,
                m.messages,
                m.folders,
                m.new,
                m.changed,
                m.moved,
                m.deleted,
                [
                    (m.resynced_folders > 0)
                        .then(|| format!(", {} folder(s) resynced", m.resynced_folders)),
                    (m.throttle_wait_ms > 0).then(|| format!(
                        ", throttled {:.1} s",
                        m.throttle_wait_ms as f64 / 1000.0
                    )),
                ]
                .into_iter()
                .flatten()
                .collect::<String>()
            ),
            MailboxStatus::Skipped => out!(
                "{}: skipped ({})",
                m.address,
                m.skip_reason.map(|s| s.to_string()).unwrap_or_default()
            ),
            MailboxStatus::Failed => out!(
                "{}: FAILED ({})",
                m.address,
                m.error.as_deref().unwrap_or("unknown error")
            ),
        }
    }
    let outcome = serde_json::to_value(r.outcome).expect("enum");
    out!(
        "backup {}: snapshot {}",
        outcome.as_str().unwrap_or(""),
        r.snapshot
            .as_deref()
            .map(|s| &s[..8.min(s.len())])
            .unwrap_or("none")
    );
}

pub fn snapshots(list: &[SnapshotInfo]) {
    out!(
        "{:<10} {:<20} {:<11} {:>9} {:>9}",
        "ID",
        "TIME (UTC)",
        "KIND",
        "MAILBOXES",
        "MESSAGES"
    );
    for s in list {
        out!(
            "{:<10} {:<20} {:<11} {:>9} {:>9}",
            s.short_id,
            time(s.time_ms),
            serde_json::to_value(s.kind)
                .expect("enum")
                .as_str()
                .unwrap_or(""),
            s.mailboxes,
            s.messages
        );
    }
}

pub fn folders(list: &[FolderInfo]) {
    for f in list {
        out!(
            "{:>7}  {}{}",
            f.messages,
            f.path,
            if f.hidden { "  (hidden)" } else { "" }
        );
    }
}

pub fn messages(list: &[MessageInfo]) {
    for m in list {
        let e = &m.entry;
        out!(
            "{:<19}  {:>9}  {:<30}  {}",
            e.received_ms.map(time).unwrap_or_default(),
            e.size,
            e.from.as_deref().unwrap_or(""),
            e.subject.as_deref().unwrap_or("")
        );
    }
}

pub fn restore_report(r: &strongroom_engine::restore::RestoreReport) {
    for f in &r.failed {
        out!("message {}: FAILED ({})", f.message_id, f.error);
    }
    if let Some(folder) = &r.restore_folder {
        out!("restored into the folder {folder:?}");
    }
    let outcome = serde_json::to_value(r.outcome).expect("enum");
    out!(
        "restore {}{}: {} restored, {} already there, {} failed, {} folder(s) created, from snapshot {}",
        outcome.as_str().unwrap_or(""),
        if r.cancelled { " (cancelled)" } else { "" },
        r.restored,
        r.skipped,
        r.failed.len(),
        r.folders_created,
        &r.snapshot[..8.min(r.snapshot.len())]
    );
}

pub fn search(results: &strongroom_engine::search::SearchResults) {
    for h in &results.hits {
        let deleted = h
            .deleted_ms
            .map(|d| format!("  [deleted {}]", time(d)))
            .unwrap_or_default();
        out!(
            "{:<19}  {:<30}  {}  {}/{}{deleted}",
            time(h.date_ms),
            h.from,
            h.subject,
            h.mailbox,
            h.folder_path
        );
        if !h.snippet.is_empty() {
            out!("    {}", h.snippet);
        }
    }
    let shown = results.hits.len() as u64;
    let first = (results.page as u64 - 1) * results.page_size as u64;
    out!(
        "{} match(es); showing {}-{} (page {})",
        results.total,
        if shown == 0 { first } else { first + 1 },
        first + shown,
        results.page
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00");
        assert_eq!(super::time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(super::time(1_763_700_000_000), "2025-11-21 04:40:00");
    }
}
