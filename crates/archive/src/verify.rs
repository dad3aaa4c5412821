//! `verify`: a structural check of every file, and optionally (`read_data`) decrypting and
//! re-hashing every blob, or a random sample of packs. Corruption becomes typed
//! [`Finding`]s that name the damaged blobs, packs, index files and snapshots; nothing
//! here panics or stops at the first problem.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::archive::Archive;
use crate::backend::FileKind;
use crate::crypto::ObjectKey;
use crate::error::Result;
use crate::file::EncryptedFile;
use crate::id::{file_hash, BlobId, IndexId, PackId, SnapshotId};
use crate::index::{open_index, Index, IndexedPack};
use crate::keys::KeyFile;
use crate::lock::LockInfo;
use crate::pack::{open_record, parse_pack, record, PackEntry};
use crate::snapshot::open_snapshot;
use crate::walk::{snapshots_reaching, walk};

/// How much pack data `verify` reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadData {
    /// Structure only: index, snapshots and trees, and that every pack exists.
    #[default]
    None,
    /// Read, decrypt and re-hash every blob of every pack.
    All,
    /// The same for a random sample of about this percentage of packs (1–100).
    Percent(u8),
}

/// What to check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Whether and how much pack data to read.
    pub read_data: ReadData,
}

/// One problem found by `verify`. `snapshots` lists the snapshots that lose data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A key file does not parse.
    KeyFileUnreadable { name: String, reason: String },
    /// An index file cannot be read, authenticated or parsed; its packs may be unindexed.
    IndexUnreadable { index: IndexId, reason: String },
    /// A snapshot file cannot be read, authenticated or parsed.
    SnapshotUnreadable {
        snapshot: SnapshotId,
        reason: String,
    },
    /// A snapshot references a blob that no index knows.
    BlobMissing {
        blob: BlobId,
        snapshots: Vec<SnapshotId>,
    },
    /// A tree blob cannot be read or parsed: everything below it is unreachable.
    TreeUnreadable {
        tree: BlobId,
        reason: String,
        snapshots: Vec<SnapshotId>,
    },
    /// A pack the index references does not exist.
    PackMissing {
        pack: PackId,
        blobs: Vec<BlobId>,
        snapshots: Vec<SnapshotId>,
    },
    /// A pack's bytes do not match its name, or its trailer is unreadable or disagrees with
    /// the index. Blobs that still decrypt are fine; those that do not are reported as
    /// [`Finding::BlobDamaged`].
    PackDamaged { pack: PackId, reason: String },
    /// A blob does not decrypt or does not hash to its id.
    BlobDamaged {
        blob: BlobId,
        pack: PackId,
        reason: String,
        snapshots: Vec<SnapshotId>,
    },
    /// An encrypted file (named by its on-disk name hash) fails to open or, with
    /// `read_data`, one of its blocks fails to authenticate. Encrypted files hold derived
    /// data that the application can rebuild from snapshots.
    FileDamaged { name_hash: String, reason: String },
    /// A pack no index references (left by an interrupted writer or prune). Harmless;
    /// prune deletes it.
    PackUnreferenced { pack: PackId },
    /// A lock whose holder is dead or silent. Harmless; the next writer removes it.
    StaleLock { lock: LockInfo },
}

impl Finding {
    /// Whether this finding means data is damaged or missing (as opposed to harmless
    /// leftovers of an interrupted process).
    pub fn is_damage(&self) -> bool {
        !matches!(
            self,
            Finding::PackUnreferenced { .. } | Finding::StaleLock { .. }
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snaps = |s: &[SnapshotId]| {
            s.iter()
                .map(SnapshotId::short)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Finding::KeyFileUnreadable { name, reason } => {
                write!(f, "key file {name} unreadable: {reason}")
            }
            Finding::IndexUnreadable { index, reason } => {
                write!(f, "index {} unreadable: {reason}", index.short())
            }
            Finding::SnapshotUnreadable { snapshot, reason } => {
                write!(f, "snapshot {} unreadable: {reason}", snapshot.short())
            }
            Finding::BlobMissing { blob, snapshots } => write!(
                f,
                "blob {} missing (snapshots {})",
                blob.short(),
                snaps(snapshots)
            ),
            Finding::TreeUnreadable {
                tree,
                reason,
                snapshots,
            } => write!(
                f,
                "tree {} unreadable: {reason} (snapshots {})",
                tree.short(),
                snaps(snapshots)
            ),
            Finding::PackMissing {
                pack,
                blobs,
                snapshots,
            } => write!(
                f,
                "pack {} missing with {} blobs (snapshots {})",
                pack.short(),
                blobs.len(),
                snaps(snapshots)
            ),
            Finding::PackDamaged { pack, reason } => {
                write!(f, "pack {} damaged: {reason}", pack.short())
            }
            Finding::BlobDamaged {
                blob,
                pack,
                reason,
                snapshots,
            } => write!(
                f,
                "blob {} in pack {} damaged: {reason} (snapshots {})",
                blob.short(),
                pack.short(),
                snaps(snapshots)
            ),
            Finding::FileDamaged { name_hash, reason } => {
                write!(
                    f,
                    "encrypted file {} damaged: {reason}",
                    &name_hash[..8.min(name_hash.len())]
                )
            }
            Finding::PackUnreferenced { pack } => {
                write!(f, "pack {} is not referenced by any index", pack.short())
            }
            Finding::StaleLock { lock } => write!(f, "stale lock: {lock}"),
        }
    }
}

/// Index files as found on disk, merged per pack.
pub(crate) struct DiskIndex {
    pub files: Vec<IndexId>,
    pub index: Index,
    pub packs: HashMap<PackId, ([u8; 32], Vec<PackEntry>)>,
    pub unreadable: Vec<(IndexId, String)>,
}

pub(crate) fn load_disk_index(archive: &Archive) -> Result<DiskIndex> {
    let inner = &archive.inner;
    let mut out = DiskIndex {
        files: Vec::new(),
        index: Index::default(),
        packs: HashMap::new(),
        unreadable: Vec::new(),
    };
    let mut names = inner.backend.list(FileKind::Index)?;
    names.sort();
    for name in names {
        let Ok(id) = name.parse::<IndexId>() else {
            continue;
        };
        let opened = inner
            .backend
            .read(FileKind::Index, &name)
            .map_err(crate::Error::from)
            .and_then(|bytes| {
                if file_hash(&bytes) != id.0 {
                    return Err(crate::Error::corrupt("index", "content hash mismatch"));
                }
                open_index(&inner.keys.index, &id, &bytes)
            });
        match opened {
            Ok(packs) => {
                out.files.push(id);
                for p in packs {
                    out.index.add_pack(&p);
                    merge(&mut out.packs, p);
                }
            }
            Err(e) => out.unreadable.push((id, e.to_string())),
        }
    }
    Ok(out)
}

fn merge(packs: &mut HashMap<PackId, ([u8; 32], Vec<PackEntry>)>, p: IndexedPack) {
    let slot = packs.entry(p.id).or_insert((p.seed, Vec::new()));
    for e in p.entries {
        if !slot.1.iter().any(|x| x.id == e.id) {
            slot.1.push(e);
        }
    }
}

pub(crate) fn list_ids<T: std::str::FromStr>(archive: &Archive, kind: FileKind) -> Result<Vec<T>> {
    Ok(archive
        .inner
        .backend
        .list(kind)?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect())
}

pub(crate) fn verify(archive: &Archive, options: &VerifyOptions) -> Result<Vec<Finding>> {
    let inner = &archive.inner;
    let mut findings = Vec::new();

    for name in inner.backend.list(FileKind::Key)? {
        let bytes = inner.backend.read(FileKind::Key, &name)?;
        if let Err(e) = KeyFile::parse(&bytes) {
            findings.push(Finding::KeyFileUnreadable {
                name,
                reason: e.to_string(),
            });
        }
    }

    let disk = load_disk_index(archive)?;
    for (index, reason) in &disk.unreadable {
        findings.push(Finding::IndexUnreadable {
            index: *index,
            reason: reason.clone(),
        });
    }

    let mut snapshots = Vec::new();
    let mut snap_ids: Vec<SnapshotId> = list_ids(archive, FileKind::Snapshot)?;
    snap_ids.sort();
    for id in snap_ids {
        let opened = inner
            .backend
            .read(FileKind::Snapshot, &id.to_hex())
            .map_err(crate::Error::from)
            .and_then(|bytes| {
                if file_hash(&bytes) != id.0 {
                    return Err(crate::Error::corrupt("snapshot", "content hash mismatch"));
                }
                open_snapshot(&inner.keys.snapshot, id, &bytes)
            });
        match opened {
            Ok(s) => snapshots.push((id, s.root)),
            Err(e) => findings.push(Finding::SnapshotUnreadable {
                snapshot: id,
                reason: e.to_string(),
            }),
        }
    }

    let walked = walk(snapshots.iter().map(|s| s.1), &disk.index, |loc| {
        archive.read_location(loc)
    });

    let on_disk: HashSet<PackId> = list_ids(archive, FileKind::Pack)?.into_iter().collect();
    let mut missing_packs: Vec<PackId> = disk
        .packs
        .keys()
        .filter(|p| !on_disk.contains(p))
        .copied()
        .collect();
    missing_packs.sort();
    let mut unreferenced: Vec<PackId> = on_disk
        .iter()
        .filter(|p| !disk.packs.contains_key(p))
        .copied()
        .collect();
    unreferenced.sort();

    // Read pack data, collecting damaged blobs.
    let mut to_read: Vec<PackId> = disk
        .packs
        .keys()
        .filter(|p| on_disk.contains(p))
        .copied()
        .collect();
    to_read.sort();
    match options.read_data {
        ReadData::None => to_read.clear(),
        ReadData::All => {}
        ReadData::Percent(p) => {
            let p = u64::from(p.min(100));
            let n = to_read.len();
            to_read.retain(|_| inner.options.rng.below(100) < p);
            if to_read.is_empty() && p > 0 && n > 0 {
                let mut all: Vec<PackId> = disk.packs.keys().copied().collect();
                all.sort();
                let pick = inner.options.rng.below(n as u64) as usize;
                to_read.push(
                    all.into_iter()
                        .filter(|p| on_disk.contains(p))
                        .nth(pick)
                        .expect("n > 0"),
                );
            }
        }
    }
    let mut damaged: Vec<(BlobId, PackId, String)> = Vec::new();
    for pack in &to_read {
        let (seed, entries) = &disk.packs[pack];
        check_pack(archive, *pack, seed, entries, &mut findings, &mut damaged)?;
    }

    // Attribute damage to snapshots.
    let mut targets: HashSet<BlobId> = walked.missing.iter().copied().collect();
    targets.extend(walked.bad_trees.iter().map(|t| t.0));
    targets.extend(damaged.iter().map(|d| d.0));
    let mut missing_pack_blobs = Vec::new();
    for pack in &missing_packs {
        let mut blobs: Vec<BlobId> = disk.packs[pack].1.iter().map(|e| e.id).collect();
        blobs.sort();
        targets.extend(blobs.iter().copied());
        missing_pack_blobs.push((*pack, blobs));
    }
    let reach = snapshots_reaching(&targets, &snapshots, &walked.children);
    let of = |b: &BlobId| reach.get(b).cloned().unwrap_or_default();

    for blob in &walked.missing {
        findings.push(Finding::BlobMissing {
            blob: *blob,
            snapshots: of(blob),
        });
    }
    for (tree, reason) in &walked.bad_trees {
        findings.push(Finding::TreeUnreadable {
            tree: *tree,
            reason: reason.clone(),
            snapshots: of(tree),
        });
    }
    for (pack, blobs) in missing_pack_blobs {
        let mut snaps: Vec<SnapshotId> = blobs.iter().flat_map(&of).collect();
        snaps.sort();
        snaps.dedup();
        findings.push(Finding::PackMissing {
            pack,
            blobs,
            snapshots: snaps,
        });
    }
    for (blob, pack, reason) in damaged {
        findings.push(Finding::BlobDamaged {
            snapshots: of(&blob),
            blob,
            pack,
            reason,
        });
    }
    check_files(archive, options.read_data != ReadData::None, &mut findings)?;
    for pack in unreferenced {
        findings.push(Finding::PackUnreferenced { pack });
    }
    for lock in archive.locks()? {
        if lock.stale {
            findings.push(Finding::StaleLock { lock });
        }
    }
    Ok(findings)
}

fn check_pack(
    archive: &Archive,
    pack: PackId,
    seed: &[u8; 32],
    entries: &[PackEntry],
    findings: &mut Vec<Finding>,
    damaged: &mut Vec<(BlobId, PackId, String)>,
) -> Result<()> {
    let inner = &archive.inner;
    let bytes = match inner.backend.read(FileKind::Pack, &pack.to_hex()) {
        Ok(b) => b,
        Err(e) => {
            findings.push(Finding::PackDamaged {
                pack,
                reason: format!("unreadable: {e}"),
            });
            return Ok(());
        }
    };
    let what = format!("pack {pack}");
    if file_hash(&bytes) != pack.0 {
        findings.push(Finding::PackDamaged {
            pack,
            reason: "content hash mismatch".into(),
        });
    }
    match parse_pack(&bytes, &inner.keys.pack, &what) {
        Ok((header_seed, trailer)) => {
            let agrees = header_seed == *seed && entries.iter().all(|e| trailer.contains(e));
            if !agrees {
                findings.push(Finding::PackDamaged {
                    pack,
                    reason: "trailer disagrees with index".into(),
                });
            }
        }
        Err(e) => findings.push(Finding::PackDamaged {
            pack,
            reason: e.to_string(),
        }),
    }
    let key = ObjectKey::derive(&inner.keys.pack, seed);
    let mut sorted: Vec<&PackEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.offset);
    for e in sorted {
        let result = record(&bytes, e, &what)
            .and_then(|sealed| open_record(&key, &inner.keys.blob_id, e, sealed));
        if let Err(err) = result {
            damaged.push((e.id, pack, err.to_string()));
        }
    }
    Ok(())
}

/// Opens every encrypted file (authenticating its last block, hence its length) and, when
/// reading data, every block.
fn check_files(archive: &Archive, read_data: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let inner = &archive.inner;
    let mut names = inner.backend.list(FileKind::File)?;
    names.sort();
    for name in names {
        let Some(hash) = crate::id::parse_hex32(&name) else {
            continue;
        };
        let checked =
            EncryptedFile::open(inner.backend.clone(), &inner.keys.file, hash).and_then(|f| {
                if read_data {
                    f.read_all().map(drop)
                } else {
                    Ok(())
                }
            });
        if let Err(e) = checked {
            findings.push(Finding::FileDamaged {
                name_hash: name,
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

impl Archive {
    /// Checks the archive and returns what is wrong (empty when healthy). Errors only when
    /// the backend cannot be listed or read at all.
    pub fn verify(&self, options: &VerifyOptions) -> Result<Vec<Finding>> {
        verify(self, options)
    }
}
