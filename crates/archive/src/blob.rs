//! Blobs: the unit of deduplication. A blob's id is the keyed BLAKE3 of its plaintext; its
//! kind says whether the archive itself can parse it (a [`Tree`]) or not (opaque data).

use crate::codec::{put_u32, Reader};
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Largest plaintext accepted by `put_blob`; larger content goes through `put_stream`.
pub const MAX_BLOB_LEN: usize = 32 * 1024 * 1024;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// Opaque bytes supplied by the engine (a MIME message, an attachment, a chunk).
    Data,
    /// A [`Tree`]: references to other blobs plus opaque metadata.
    Tree,
}

impl BlobKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    pub(crate) fn from_byte(b: u8, what: &str) -> Result<Self> {
        match b {
            0 => Ok(BlobKind::Data),
            1 => Ok(BlobKind::Tree),
            _ => Err(Error::corrupt(what, "unknown blob kind")),
        }
    }
}

/// A node of a snapshot's graph: the blobs it references (data or other trees) and
/// metadata the engine supplies (e.g. its JSON manifest of a mail folder). The archive
/// follows `children` for verify and prune; it never interprets `meta`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Referenced blobs, in the engine's order.
    pub children: Vec<BlobId>,
    /// Opaque metadata.
    pub meta: Vec<u8>,
}

const TREE_VERSION: u8 = 1;

impl Tree {
    /// The blob plaintext of this tree (FORMAT.md §7).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 32 * self.children.len() + self.meta.len());
        out.push(TREE_VERSION);
        put_u32(&mut out, self.children.len() as u32);
        for child in &self.children {
            out.extend_from_slice(&child.0);
        }
        put_u32(&mut out, self.meta.len() as u32);
        out.extend_from_slice(&self.meta);
        out
    }

    /// Parses a tree blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let what = "tree";
        let mut r = Reader::new(bytes, what);
        let version = r.u8()?;
        if version != TREE_VERSION {
            return Err(Error::UnsupportedVersion {
                what,
                version: version.into(),
            });
        }
        let n = r.count(32)?;
        let children = (0..n)
            .map(|_| r.array().map(BlobId))
            .collect::<Result<_>>()?;
        let meta_len = r.count(1)?;
        let meta = r.bytes(meta_len)?.to_vec();
        r.finish()?;
        Ok(Tree { children, meta })
    }
}

/// The content id: BLAKE3 keyed with the blob-id subkey, so ids reveal nothing about
/// content to anyone without the key.
pub(crate) fn blob_id(key: &[u8; 32], plaintext: &[u8]) -> BlobId {
    BlobId(*blake3::keyed_hash(key, plaintext).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_round_trip_and_garbage() {
        let tree = Tree {
            children: vec![BlobId([1; 32]), BlobId([2; 32])],
            meta: b"{\"folder\":\"x\"}".to_vec(),
        };
        assert_eq!(Tree::decode(&tree.encode()).unwrap(), tree);
        let enc = tree.encode();
        for cut in 0..enc.len() {
            assert!(Tree::decode(&enc[..cut]).is_err());
        }
        assert!(Tree::decode(&[1, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
