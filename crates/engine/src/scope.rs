//! Which folders of a mailbox a restore or an export covers: the whole mailbox, or one
//! folder (by path or id) with everything below it. Folder trees are followed by parent ids,
//! not by splitting paths, because a folder name may itself contain `/`.

use std::collections::HashSet;

use crate::backup::manifest::FolderManifest;
use crate::error::{Error, Result};
use crate::snapshot_view::{FolderInfo, MailboxView};

/// The folders in scope, parents before children (then by path, for a stable order).
pub fn folders<'v>(
    view: &'v MailboxView,
    folder: Option<&str>,
) -> Result<Vec<&'v (FolderInfo, FolderManifest)>> {
    let mut chosen: Vec<&(FolderInfo, FolderManifest)> = match folder {
        None => view.folders.iter().collect(),
        Some(wanted) => {
            let wanted = wanted.trim_matches('/');
            let top = view
                .folders
                .iter()
                .find(|(f, _)| f.path.eq_ignore_ascii_case(wanted) || f.id == wanted)
                .ok_or_else(|| Error::not_found("no such folder in this snapshot"))?;
            let mut ids: HashSet<&str> = HashSet::from([top.1.id.as_str()]);
            // Grow the set until no folder's parent is newly inside it.
            loop {
                let before = ids.len();
                for (_, m) in &view.folders {
                    if m.parent_id.as_deref().is_some_and(|p| ids.contains(p)) {
                        ids.insert(m.id.as_str());
                    }
                }
                if ids.len() == before {
                    break;
                }
            }
            view.folders
                .iter()
                .filter(|(_, m)| ids.contains(m.id.as_str()))
                .collect()
        }
    };
    chosen.sort_by(|a, b| {
        depth(view, &a.1)
            .cmp(&depth(view, &b.1))
            .then_with(|| a.0.path.cmp(&b.0.path))
            .then_with(|| a.0.id.cmp(&b.0.id))
    });
    Ok(chosen)
}

/// The manifest of a folder's parent, when the parent is a folder of the view (top-level
/// folders have the mailbox root as parent, which is not one).
pub fn parent<'v>(view: &'v MailboxView, folder: &FolderManifest) -> Option<&'v FolderManifest> {
    let pid = folder.parent_id.as_deref()?;
    view.folders.iter().map(|(_, m)| m).find(|m| m.id == pid)
}

/// Number of ancestors inside the view.
pub fn depth(view: &MailboxView, folder: &FolderManifest) -> usize {
    let mut d = 0;
    let mut cursor = parent(view, folder);
    while let Some(p) = cursor {
        d += 1;
        if d > 64 {
            break; // a cycle in damaged data; the path builder caps depth as well
        }
        cursor = parent(view, p);
    }
    d
}
