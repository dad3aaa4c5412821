//! Pack files: many sealed blobs in one file, followed by a sealed trailer listing them, so
//! a pack can be understood (and the index rebuilt) from the pack alone (FORMAT.md §5).

use std::cell::RefCell;
use std::io::Write;

use crate::backend::{Backend, FileKind, PendingFile};
use crate::blob::{blob_id, BlobKind};
use crate::codec::{put_u32, Reader};
use crate::crypto::{counter_nonce, ObjectKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};

pub(crate) const PACK_MAGIC: &[u8; 4] = b"SRPK";
const PACK_VERSION: u32 = 1;
pub(crate) const PACK_HEADER_LEN: u64 = 4 + 4 + 32;
const TRAILER_AAD: &[u8] = b"strongroom pack trailer";
/// Encoded size of one [`PackEntry`].
pub(crate) const ENTRY_LEN: usize = 32 + 1 + 4 + 4 + 4;
/// Packs never grow past this, so offsets fit in 32 bits.
pub(crate) const MAX_PACK_LEN: u64 = 1 << 31;

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// Where one blob sits in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackEntry {
    pub id: BlobId,
    pub kind: BlobKind,
    /// Byte offset of the sealed record in the pack file (also its nonce counter).
    pub offset: u32,
    /// Length of the sealed record (ciphertext and tag).
    pub length: u32,
    /// Length of the blob's plaintext.
    pub raw_len: u32,
}

impl PackEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.push(self.kind.to_byte());
        put_u32(out, self.offset);
        put_u32(out, self.length);
        put_u32(out, self.raw_len);
    }

    pub fn decode(r: &mut Reader<'_>, what: &str) -> Result<Self> {
        let id = BlobId(r.array()?);
        let kind = BlobKind::from_byte(r.u8()?, what)?;
        let offset = r.u32()?;
        let length = r.u32()?;
        let raw_len = r.u32()?;
        if (length as usize) < 1 + TAG_LEN || raw_len as usize > crate::MAX_BLOB_LEN {
            return Err(Error::corrupt(what, "bad entry length"));
        }
        Ok(PackEntry {
            id,
            kind,
            offset,
            length,
            raw_len,
        })
    }

    fn aad(&self) -> [u8; 33] {
        let mut aad = [0u8; 33];
        aad[..32].copy_from_slice(&self.id.0);
        aad[32] = self.kind.to_byte();
        aad
    }
}

thread_local! {
    // One zstd decompression context per thread: making one per blob cost more than
    // decompressing a small blob. (Compression contexts are made per blob on purpose: at
    // level 3 each holds megabytes, and storing runs on many threads.)
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

fn with_decompressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        f(slot.as_mut().expect("just set"))
    })
}

/// A blob's record before sealing: flag byte (raw or zstd) and body. It does not depend on
/// where the blob lands, so it can be made outside the writer (see `PreparedBlob`).
pub(crate) fn encode_record(plaintext: &[u8], level: i32) -> Vec<u8> {
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    // Store compressed only when it helps (JPEGs, PDFs and zips do not shrink); content
    // whose bytes look random is not even tried, which saves zstd's match search over it.
    let compressed = (!looks_random(plaintext)).then(|| zstd::bulk::compress(plaintext, level));
    match compressed {
        Some(Ok(c)) if c.len() < plaintext.len() => {
            record.push(ZSTD);
            record.extend_from_slice(&c);
        }
        _ => {
            record.push(RAW);
            record.extend_from_slice(plaintext);
        }
    }
    record
}

/// Bytes sampled from each of a blob's start, middle and end by [`looks_random`].
const SAMPLE: usize = 4096;

/// Whether samples of `data` have so even a byte distribution (over 7.9 bits per byte)
/// that entropy coding could save under about 1 %: already-compressed files (JPEG, PNG,
/// ZIP-based Office files, most of a PDF) once their base64 is decoded. Blobs too small to
/// sample are compressed regardless. (Repeats of a random block inside one blob would be
/// missed; chunking deduplicates repeats across blobs.)
fn looks_random(data: &[u8]) -> bool {
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let mid = data.len() / 2 - SAMPLE / 2;
    let mut counts = [0u32; 256];
    for window in [
        &data[..SAMPLE],
        &data[mid..mid + SAMPLE],
        &data[data.len() - SAMPLE..],
    ] {
        for &b in window {
            counts[b as usize] += 1;
        }
    }
    let n = (3 * SAMPLE) as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits > 7.9
}

/// Opens one sealed record and checks that the plaintext hashes to the entry's id.
pub(crate) fn open_record(
    key: &ObjectKey,
    blob_key: &[u8; 32],
    entry: &PackEntry,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let what = format!("blob {}", entry.id);
    let record = key
        .open(counter_nonce(entry.offset.into()), &entry.aad(), sealed)
        .ok_or_else(|| Error::corrupt(&what, "authentication failed"))?;
    let (flag, body) = record
        .split_first()
        .ok_or_else(|| Error::corrupt(&what, "empty record"))?;
    let plaintext = match *flag {
        RAW => body.to_vec(),
        ZSTD => with_decompressor(|d| d.decompress(body, entry.raw_len as usize))
            .map_err(|_| Error::corrupt(&what, "bad zstd data"))?,
        _ => return Err(Error::corrupt(&what, "unknown compression")),
    };
    if plaintext.len() != entry.raw_len as usize {
        return Err(Error::corrupt(&what, "length mismatch"));
    }
    if blob_id(blob_key, &plaintext) != entry.id {
        return Err(Error::corrupt(&what, "content does not match id"));
    }
    Ok(plaintext)
}

/// Writes one pack, streaming blobs to a pending backend file.
pub(crate) struct PackWriter {
    file: Box<dyn PendingFile>,
    key: ObjectKey,
    seed: [u8; 32],
    hasher: blake3::Hasher,
    len: u64,
    entries: Vec<PackEntry>,
    level: i32,
}

/// A pack that is durable under its final name.
#[derive(Debug)]
pub(crate) struct FinishedPack {
    pub id: PackId,
    pub seed: [u8; 32],
    pub entries: Vec<PackEntry>,
    pub len: u64,
}

impl PackWriter {
    pub fn new(
        backend: &dyn Backend,
        pack_subkey: &[u8; 32],
        seed: [u8; 32],
        level: i32,
    ) -> Result<Self> {
        let mut w = PackWriter {
            file: backend.create(FileKind::Pack)?,
            key: ObjectKey::derive(pack_subkey, &seed),
            seed,
            hasher: blake3::Hasher::new(),
            len: 0,
            entries: Vec::new(),
            level,
        };
        let mut header = Vec::with_capacity(PACK_HEADER_LEN as usize);
        header.extend_from_slice(PACK_MAGIC);
        put_u32(&mut header, PACK_VERSION);
        header.extend_from_slice(&seed);
        w.append(&header)?;
        Ok(w)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// Appends a blob; the caller has computed `id` from `plaintext`.
    pub fn add(&mut self, id: BlobId, kind: BlobKind, plaintext: &[u8]) -> Result<PackEntry> {
        let record = encode_record(plaintext, self.level);
        self.add_record(id, kind, plaintext.len() as u32, &record)
    }

    /// Appends a blob given its record (`encode_record` of its `raw_len` plaintext bytes),
    /// sealed here with the nonce of its offset.
    pub fn add_record(
        &mut self,
        id: BlobId,
        kind: BlobKind,
        raw_len: u32,
        record: &[u8],
    ) -> Result<PackEntry> {
        let mut entry = PackEntry {
            id,
            kind,
            offset: self.len as u32,
            length: 0,
            raw_len,
        };
        let sealed = self
            .key
            .seal(counter_nonce(entry.offset.into()), &entry.aad(), record);
        entry.length = sealed.len() as u32;
        self.append(&sealed)?;
        self.entries.push(entry);
        Ok(entry)
    }

    /// Writes the trailer and commits the file under the hash of its bytes.
    pub fn finish(mut self) -> Result<FinishedPack> {
        let mut trailer = Vec::with_capacity(4 + ENTRY_LEN * self.entries.len());
        put_u32(&mut trailer, self.entries.len() as u32);
        for e in &self.entries {
            e.encode(&mut trailer);
        }
        let sealed = self
            .key
            .seal(counter_nonce(self.len), TRAILER_AAD, &trailer);
        let sealed_len = sealed.len() as u32;
        let mut tail = sealed;
        put_u32(&mut tail, sealed_len);
        self.append(&tail)?;
        let id = PackId(*self.hasher.finalize().as_bytes());
        self.file.commit(&id.to_hex())?;
        Ok(FinishedPack {
            id,
            seed: self.seed,
            entries: self.entries,
            len: self.len,
        })
    }
}

/// Reads the header seed of a pack.
pub(crate) fn parse_header(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    let mut r = Reader::new(bytes, what);
    r.header(PACK_MAGIC, PACK_VERSION, "pack")?;
    r.array()
}

/// Parses a whole pack file: checks the header, opens the trailer and validates that the
/// listed records tile the space between header and trailer. Does not open the records.
pub(crate) fn parse_pack(
    bytes: &[u8],
    pack_subkey: &[u8; 32],
    what: &str,
) -> Result<([u8; 32], Vec<PackEntry>)> {
    let seed = parse_header(bytes, what)?;
    let len = bytes.len();
    if len < PACK_HEADER_LEN as usize + 4 {
        return Err(Error::corrupt(what, "truncated"));
    }
    let trailer_len = u32::from_le_bytes(bytes[len - 4..].try_into().expect("4 bytes")) as usize;
    let trailer_start = (len - 4)
        .checked_sub(trailer_len)
        .filter(|&s| s >= PACK_HEADER_LEN as usize)
        .ok_or_else(|| Error::corrupt(what, "bad trailer length"))?;
    let key = ObjectKey::derive(pack_subkey, &seed);
    let trailer = key
        .open(
            counter_nonce(trailer_start as u64),
            TRAILER_AAD,
            &bytes[trailer_start..len - 4],
        )
        .ok_or_else(|| Error::corrupt(what, "trailer authentication failed"))?;
    let mut r = Reader::new(&trailer, what);
    let n = r.count(ENTRY_LEN)?;
    let mut entries = Vec::with_capacity(n);
    let mut expected = PACK_HEADER_LEN;
    for _ in 0..n {
        let e = PackEntry::decode(&mut r, what)?;
        if u64::from(e.offset) != expected {
            return Err(Error::corrupt(what, "records do not tile the pack"));
        }
        expected += u64::from(e.length);
        entries.push(e);
    }
    r.finish()?;
    if expected != trailer_start as u64 {
        return Err(Error::corrupt(what, "records do not tile the pack"));
    }
    Ok((seed, entries))
}

/// Slices one record out of a whole pack held in memory.
pub(crate) fn record<'a>(bytes: &'a [u8], entry: &PackEntry, what: &str) -> Result<&'a [u8]> {
    let start = entry.offset as usize;
    bytes
        .get(start..start + entry.length as usize)
        .ok_or_else(|| Error::corrupt(what, "record out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;

    #[test]
    fn random_looking_content_is_stored_raw_and_the_rest_compressed() {
        use rand::{RngCore, SeedableRng};
        let mut random = vec![0u8; 100_000];
        rand::rngs::StdRng::seed_from_u64(4).fill_bytes(&mut random);
        let six_bit = six_bit_text(&random);
        let text = "Quarterly figures attached, see the notes. ".repeat(2000);
        let flag = |data: &[u8]| encode_record(data, 3)[0];
        assert!(looks_random(&random));
        assert_eq!(flag(&random), RAW);
        for compressible in [&six_bit[..], text.as_bytes(), &random[..10_000]] {
            assert!(!looks_random(compressible));
        }
        assert_eq!(flag(&six_bit), ZSTD);
        assert_eq!(flag(text.as_bytes()), ZSTD);
        // Random bytes with every fourth one zero: not random enough to skip.
        let skewed: Vec<u8> = random
            .iter()
            .enumerate()
            .map(|(i, &b)| if i % 4 == 0 { 0 } else { b })
            .collect();
        assert!(!looks_random(&skewed));
        assert_eq!(flag(&skewed), ZSTD);
    }

    /// Text over base64's 64 symbols (6 bits per byte), as an attachment's text is.
    fn six_bit_text(data: &[u8]) -> Vec<u8> {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        data.iter().map(|&b| ALPHABET[(b & 63) as usize]).collect()
    }

    #[test]
    fn pack_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        let (pk, bk) = ([1u8; 32], [2u8; 32]);
        let mut w = PackWriter::new(&backend, &pk, [3; 32], 3).unwrap();
        let blobs: Vec<Vec<u8>> = vec![b"hello".to_vec(), vec![7u8; 10_000], vec![]];
        for b in &blobs {
            w.add(blob_id(&bk, b), BlobKind::Data, b).unwrap();
        }
        let done = w.finish().unwrap();
        let bytes = backend.read(FileKind::Pack, &done.id.to_hex()).unwrap();
        assert_eq!(PackId(crate::id::file_hash(&bytes)), done.id);
        let (seed, entries) = parse_pack(&bytes, &pk, "pack").unwrap();
        assert_eq!(entries, done.entries);
        let key = ObjectKey::derive(&pk, &seed);
        for (e, b) in entries.iter().zip(&blobs) {
            let rec = record(&bytes, e, "pack").unwrap();
            assert_eq!(&open_record(&key, &bk, e, rec).unwrap(), b);
        }
        // The 10 000 equal bytes were compressed.
        assert!(entries[1].length < 1000);
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            let ok = parse_pack(&bad, &pk, "pack").and_then(|(_, es)| {
                es.iter()
                    .map(|e| open_record(&key, &bk, e, record(&bad, e, "pack")?))
                    .collect::<Result<Vec<_>>>()
            });
            assert!(ok.is_err(), "flip at {i} undetected");
        }
    }
}
