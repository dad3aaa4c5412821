//! Walking the blob graph: from snapshot roots through tree blobs to every reachable blob.
//! Verify uses it to find what is referenced; prune to find what is live.

use std::collections::{HashMap, HashSet};

use crate::blob::{BlobKind, Tree};
use crate::error::Result;
use crate::id::{BlobId, SnapshotId};
use crate::index::{Index, Location};

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Every reachable blob that the index knows.
    pub reached: HashSet<BlobId>,
    /// Children of every tree that could be read.
    pub children: HashMap<BlobId, Vec<BlobId>>,
    /// Referenced blobs missing from the index.
    pub missing: Vec<BlobId>,
    /// Trees that could not be read or parsed, with the reason.
    pub bad_trees: Vec<(BlobId, String)>,
}

pub(crate) fn walk(
    roots: impl IntoIterator<Item = BlobId>,
    index: &Index,
    read: impl Fn(&Location) -> Result<Vec<u8>>,
) -> Walk {
    let mut w = Walk::default();
    let mut seen = HashSet::new();
    let mut stack: Vec<BlobId> = roots.into_iter().collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(loc) = index.get(&id) else {
            w.missing.push(id);
            continue;
        };
        w.reached.insert(id);
        if loc.entry.kind != BlobKind::Tree {
            continue;
        }
        match read(&loc).and_then(|bytes| Tree::decode(&bytes)) {
            Ok(tree) => {
                stack.extend(tree.children.iter().copied());
                w.children.insert(id, tree.children);
            }
            Err(e) => w.bad_trees.push((id, e.to_string())),
        }
    }
    w.missing.sort();
    w.bad_trees.sort();
    w
}

/// For each target blob, the snapshots from which it is reachable (using the children
/// recorded by a walk, without further reads).
pub(crate) fn snapshots_reaching(
    targets: &HashSet<BlobId>,
    snapshots: &[(SnapshotId, BlobId)],
    children: &HashMap<BlobId, Vec<BlobId>>,
) -> HashMap<BlobId, Vec<SnapshotId>> {
    let mut out: HashMap<BlobId, Vec<SnapshotId>> = HashMap::new();
    if targets.is_empty() {
        return out;
    }
    for &(snap, root) in snapshots {
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if targets.contains(&id) {
                out.entry(id).or_default().push(snap);
            }
            if let Some(kids) = children.get(&id) {
                stack.extend(kids.iter().copied());
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}
