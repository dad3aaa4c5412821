//! Archive maintenance: verify (delegated to the archive, findings as text plus whether any
//! means damage) and prune (drop superseded snapshots, then the data only they reached).
//!
//! Prune keeps every *backup* snapshot, drops *checkpoint* snapshots of runs that have since
//! finished (a later backup snapshot of the same task supersedes them), and drops *task*
//! snapshots once the task has any later snapshot. Mailboxes whose retention ran out are
//! already left out of new snapshots by the backup job.

use std::collections::HashMap;

use serde::Serialize;
use strongroom_archive::{Archive, ReadData, SnapshotId, VerifyOptions};

use crate::backup::manifest::SnapshotKind;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::snapshot_view;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// True when no finding means missing or damaged data.
    pub ok: bool,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub damage: bool,
    pub description: String,
}

pub fn verify(archive: &Archive, read_data: bool) -> Result<VerifyReport> {
    let options = VerifyOptions {
        read_data: if read_data {
            ReadData::All
        } else {
            ReadData::None
        },
    };
    let findings: Vec<Finding> = archive
        .verify(&options)?
        .iter()
        .map(|f| Finding {
            damage: f.is_damage(),
            description: f.to_string(),
        })
        .collect();
    Ok(VerifyReport {
        ok: !findings.iter().any(|f| f.damage),
        findings,
    })
}

/// What `prune` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneSummary {
    pub snapshots_kept: usize,
    pub snapshots_removed: usize,
    pub packs_deleted: usize,
    pub packs_written: usize,
}

/// The snapshots prune keeps.
pub fn snapshots_to_keep(archive: &Archive) -> Result<Vec<SnapshotId>> {
    let all = snapshot_view::snapshots(archive)?;
    let mut last_backup: HashMap<i64, i64> = HashMap::new();
    let mut last_any: HashMap<i64, i64> = HashMap::new();
    for s in &all {
        if s.kind == SnapshotKind::Backup {
            let t = last_backup.entry(s.task_id).or_insert(s.time_ms);
            *t = (*t).max(s.time_ms);
        }
        let t = last_any.entry(s.task_id).or_insert(s.time_ms);
        *t = (*t).max(s.time_ms);
    }
    let mut keep = Vec::new();
    for s in &all {
        let superseded = match s.kind {
            SnapshotKind::Backup => false,
            SnapshotKind::Checkpoint => last_backup.get(&s.task_id).is_some_and(|t| *t > s.time_ms),
            SnapshotKind::Task => last_any.get(&s.task_id).is_some_and(|t| *t > s.time_ms),
        };
        if !superseded {
            keep.push(
                s.id.parse()
                    .map_err(|_| Error::internal("snapshot id does not parse"))?,
            );
        }
    }
    Ok(keep)
}

pub fn prune(archive: &Archive, catalog: &Catalog) -> Result<PruneSummary> {
    let keep = snapshots_to_keep(archive)?;
    let total = archive.snapshots()?.len();
    let plan = archive.prune(&keep)?;
    let report = plan.execute()?;
    let kept: Vec<String> = keep.iter().map(SnapshotId::to_hex).collect();
    for row in catalog.snapshots()? {
        if !kept.contains(&row.id) {
            catalog.remove_snapshot(&row.id)?;
        }
    }
    Ok(PruneSummary {
        snapshots_kept: keep.len(),
        snapshots_removed: total - keep.len(),
        packs_deleted: report.packs_deleted,
        packs_written: report.packs_written,
    })
}
