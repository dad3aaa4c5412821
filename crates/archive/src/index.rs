//! The index: blob id → (pack, offset, length). Stored as sealed index files, each listing
//! the packs one flush (or prune) wrote; in memory it is the union of all index files.

use std::collections::HashMap;

use crate::codec::{put_u32, Reader};
use crate::crypto::{open_object, seal_object};
use crate::error::Result;
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::{PackEntry, ENTRY_LEN};

pub(crate) const INDEX_MAGIC: &[u8; 4] = b"SRIX";

/// One pack as recorded in an index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexedPack {
    pub id: PackId,
    /// Copy of the pack header's seed, so reading a blob needs one read, not two.
    pub seed: [u8; 32],
    pub entries: Vec<PackEntry>,
}

/// The payload of one index file.
pub(crate) fn encode_index(packs: &[IndexedPack]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, packs.len() as u32);
    for p in packs {
        out.extend_from_slice(&p.id.0);
        out.extend_from_slice(&p.seed);
        put_u32(&mut out, p.entries.len() as u32);
        for e in &p.entries {
            e.encode(&mut out);
        }
    }
    out
}

pub(crate) fn decode_index(payload: &[u8], what: &str) -> Result<Vec<IndexedPack>> {
    let mut r = Reader::new(payload, what);
    let n = r.count(68)?;
    let mut packs = Vec::with_capacity(n);
    for _ in 0..n {
        let id = PackId(r.array()?);
        let seed = r.array()?;
        let m = r.count(ENTRY_LEN)?;
        let entries = (0..m)
            .map(|_| PackEntry::decode(&mut r, what))
            .collect::<Result<_>>()?;
        packs.push(IndexedPack { id, seed, entries });
    }
    r.finish()?;
    Ok(packs)
}

/// Seals an index file; returns its id and bytes.
pub(crate) fn seal_index(
    subkey: &[u8; 32],
    seed: [u8; 32],
    packs: &[IndexedPack],
) -> (IndexId, Vec<u8>) {
    let bytes = seal_object(INDEX_MAGIC, subkey, seed, &encode_index(packs));
    (IndexId(crate::id::file_hash(&bytes)), bytes)
}

/// Opens an index file's bytes.
pub(crate) fn open_index(
    subkey: &[u8; 32],
    id: &IndexId,
    bytes: &[u8],
) -> Result<Vec<IndexedPack>> {
    let what = format!("index {id}");
    let payload = open_object(INDEX_MAGIC, subkey, bytes, &what)?;
    decode_index(&payload, &what)
}

/// A blob's location, as the in-memory index keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub pack: PackId,
    pub seed: [u8; 32],
    pub entry: PackEntry,
}

/// The union of all loaded index files.
#[derive(Debug, Default)]
pub(crate) struct Index {
    blobs: HashMap<BlobId, (u32, PackEntry)>,
    packs: Vec<(PackId, [u8; 32])>,
    pack_slots: HashMap<PackId, u32>,
}

impl Index {
    pub fn add_pack(&mut self, pack: &IndexedPack) {
        let slot = *self.pack_slots.entry(pack.id).or_insert_with(|| {
            self.packs.push((pack.id, pack.seed));
            (self.packs.len() - 1) as u32
        });
        for e in &pack.entries {
            // The first location wins; a duplicate copy (e.g. from a crash) is redundant.
            self.blobs.entry(e.id).or_insert((slot, *e));
        }
    }

    pub fn get(&self, id: &BlobId) -> Option<Location> {
        self.blobs.get(id).map(|&(slot, entry)| {
            let (pack, seed) = self.packs[slot as usize];
            Location { pack, seed, entry }
        })
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.blobs.contains_key(id)
    }

    /// The index grouped by pack (each blob once, at its chosen location).
    pub fn to_packs(&self) -> Vec<IndexedPack> {
        let mut by_slot: Vec<Vec<PackEntry>> = vec![Vec::new(); self.packs.len()];
        for &(slot, entry) in self.blobs.values() {
            by_slot[slot as usize].push(entry);
        }
        let mut out: Vec<IndexedPack> = self
            .packs
            .iter()
            .zip(by_slot)
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(&(id, seed), mut entries)| {
                entries.sort_by_key(|e| e.offset);
                IndexedPack { id, seed, entries }
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobKind;

    fn sample() -> Vec<IndexedPack> {
        vec![IndexedPack {
            id: PackId([1; 32]),
            seed: [2; 32],
            entries: vec![PackEntry {
                id: BlobId([3; 32]),
                kind: BlobKind::Tree,
                offset: 40,
                length: 100,
                raw_len: 90,
            }],
        }]
    }

    #[test]
    fn index_round_trip_and_tamper() {
        let (id, bytes) = seal_index(&[9; 32], [8; 32], &sample());
        assert_eq!(open_index(&[9; 32], &id, &bytes).unwrap(), sample());
        let mut bad = bytes.clone();
        bad[60] ^= 4;
        assert!(open_index(&[9; 32], &id, &bad).is_err());
        let payload = encode_index(&sample());
        for cut in 0..payload.len() {
            assert!(decode_index(&payload[..cut], "x").is_err());
        }
    }

    #[test]
    fn in_memory_union_keeps_first_location() {
        let mut index = Index::default();
        index.add_pack(&sample()[0]);
        let mut other = sample()[0].clone();
        other.id = PackId([5; 32]);
        index.add_pack(&other);
        assert_eq!(index.get(&BlobId([3; 32])).unwrap().pack, PackId([1; 32]));
        assert_eq!(index.pack_count(), 2);
        assert_eq!(index.blob_count(), 1);
    }
}
