//! Snapshots: small sealed files naming a root tree, a time and the engine's metadata.
//! A snapshot is written only after every blob it reaches is in a persisted index.

use crate::codec::{put_i64, put_u32, Reader};
use crate::crypto::{open_object, seal_object};
use crate::error::Result;
use crate::id::{BlobId, SnapshotId};

pub(crate) const SNAPSHOT_MAGIC: &[u8; 4] = b"SRSN";

/// A committed point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshot's id (BLAKE3 of its file).
    pub id: SnapshotId,
    /// Creation time, milliseconds since the Unix epoch (from the injected clock).
    pub time_ms: i64,
    /// The root [`crate::Tree`] blob.
    pub root: BlobId,
    /// Opaque metadata supplied by the engine.
    pub meta: Vec<u8>,
}

pub(crate) fn encode_snapshot(time_ms: i64, root: &BlobId, meta: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + meta.len());
    put_i64(&mut out, time_ms);
    out.extend_from_slice(&root.0);
    put_u32(&mut out, meta.len() as u32);
    out.extend_from_slice(meta);
    out
}

pub(crate) fn decode_snapshot(id: SnapshotId, payload: &[u8], what: &str) -> Result<Snapshot> {
    let mut r = Reader::new(payload, what);
    let time_ms = r.i64()?;
    let root = BlobId(r.array()?);
    let n = r.count(1)?;
    let meta = r.bytes(n)?.to_vec();
    r.finish()?;
    Ok(Snapshot {
        id,
        time_ms,
        root,
        meta,
    })
}

pub(crate) fn seal_snapshot(
    subkey: &[u8; 32],
    seed: [u8; 32],
    time_ms: i64,
    root: &BlobId,
    meta: &[u8],
) -> (SnapshotId, Vec<u8>) {
    let bytes = seal_object(
        SNAPSHOT_MAGIC,
        subkey,
        seed,
        &encode_snapshot(time_ms, root, meta),
    );
    (SnapshotId(crate::id::file_hash(&bytes)), bytes)
}

pub(crate) fn open_snapshot(subkey: &[u8; 32], id: SnapshotId, bytes: &[u8]) -> Result<Snapshot> {
    let what = format!("snapshot {id}");
    let payload = open_object(SNAPSHOT_MAGIC, subkey, bytes, &what)?;
    decode_snapshot(id, &payload, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trip() {
        let (id, bytes) = seal_snapshot(&[1; 32], [2; 32], 1234, &BlobId([3; 32]), b"meta");
        let s = open_snapshot(&[1; 32], id, &bytes).unwrap();
        assert_eq!(
            (s.time_ms, s.root, s.meta.as_slice()),
            (1234, BlobId([3; 32]), &b"meta"[..])
        );
        assert!(open_snapshot(&[0; 32], id, &bytes).is_err());
        let payload = encode_snapshot(1, &BlobId([0; 32]), b"abc");
        for cut in 0..payload.len() {
            assert!(decode_snapshot(id, &payload[..cut], "s").is_err());
        }
    }
}
