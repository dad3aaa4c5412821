//! Encrypted files for the engine's derived data (sealed catalog, search index segments).
//! A file is a header and a sequence of 64 KiB plaintext blocks, each sealed on its own, so
//! block k can be read without the others (FORMAT.md §9). The last block is sealed with a
//! "final" flag, so truncating a file at a block boundary is detected (the STREAM
//! construction of Hoang, Reyhanitabar, Rogaway and Vizár).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::backend::{Backend, FileKind, PendingFile};
use crate::codec::{put_u32, Reader};
use crate::crypto::{counter_nonce, ObjectKey, TAG_LEN};
use crate::error::{Error, Result};

/// Plaintext bytes per block.
pub const FILE_BLOCK_LEN: usize = 64 * 1024;
const SEALED_BLOCK_LEN: u64 = (FILE_BLOCK_LEN + TAG_LEN) as u64;
const FILE_MAGIC: &[u8; 4] = b"SRFL";
const FILE_VERSION: u32 = 1;
pub(crate) const FILE_HEADER_LEN: u64 = 4 + 4 + 32;

/// The on-disk name of an encrypted file: keyed BLAKE3 of its UTF-8 name, so names (which
/// may hold folder or mailbox names) are never visible.
pub(crate) fn name_hash(file_name_key: &[u8; 32], name: &str) -> [u8; 32] {
    *blake3::keyed_hash(file_name_key, name.as_bytes()).as_bytes()
}

fn hex(bytes: &[u8; 32]) -> String {
    crate::id::PackId(*bytes).to_hex()
}

fn block_aad(name_hash: &[u8; 32], block: u64, last: bool) -> [u8; 41] {
    let mut aad = [0u8; 41];
    aad[..32].copy_from_slice(name_hash);
    aad[32..40].copy_from_slice(&block.to_le_bytes());
    aad[40] = last as u8;
    aad
}

/// Writes an encrypted file; nothing is visible until [`FileWriter::commit`].
pub struct FileWriter {
    file: Box<dyn PendingFile>,
    key: ObjectKey,
    name_hash: [u8; 32],
    buf: Vec<u8>,
    block: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWriter(block {})", self.block)
    }
}

impl FileWriter {
    pub(crate) fn new(
        backend: &dyn Backend,
        file_key: &[u8; 32],
        name_hash: [u8; 32],
        seed: [u8; 32],
    ) -> Result<Self> {
        let mut file = backend.create(FileKind::File)?;
        let mut header = Vec::with_capacity(FILE_HEADER_LEN as usize);
        header.extend_from_slice(FILE_MAGIC);
        put_u32(&mut header, FILE_VERSION);
        header.extend_from_slice(&seed);
        file.write_all(&header)?;
        Ok(FileWriter {
            file,
            key: ObjectKey::derive(file_key, &seed),
            name_hash,
            buf: Vec::with_capacity(2 * FILE_BLOCK_LEN),
            block: 0,
        })
    }

    fn seal_block(&mut self, len: usize, last: bool) -> io::Result<()> {
        let aad = block_aad(&self.name_hash, self.block, last);
        let sealed = self
            .key
            .seal(counter_nonce(self.block), &aad, &self.buf[..len]);
        self.file.write_all(&sealed)?;
        self.buf.drain(..len);
        self.block += 1;
        Ok(())
    }

    /// Seals the final block and makes the file durable and visible, replacing any older
    /// file of the same name.
    pub fn commit(mut self) -> Result<()> {
        let len = self.buf.len();
        self.seal_block(len, true)?;
        let name = hex(&self.name_hash);
        self.file.commit(&name)?;
        Ok(())
    }
}

impl Write for FileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        // Keep at least one byte back: only `commit` knows which block is the last.
        while self.buf.len() > FILE_BLOCK_LEN {
            self.seal_block(FILE_BLOCK_LEN, false)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A readable encrypted file with random access. Cheap to share across threads.
pub struct EncryptedFile {
    backend: Arc<dyn Backend>,
    disk_name: String,
    key: ObjectKey,
    name_hash: [u8; 32],
    blocks: u64,
    len: u64,
    // The last block read: sequential small reads (as a search index does) hit it.
    cache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for EncryptedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedFile({} bytes)", self.len)
    }
}

impl EncryptedFile {
    pub(crate) fn open(
        backend: Arc<dyn Backend>,
        file_key: &[u8; 32],
        name_hash: [u8; 32],
    ) -> Result<Self> {
        let disk_name = hex(&name_hash);
        let what = "encrypted file";
        let size = match backend.size(FileKind::File, &disk_name) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::FileNotFound),
            Err(e) => return Err(e.into()),
        };
        if size < FILE_HEADER_LEN + TAG_LEN as u64 {
            return Err(Error::corrupt(what, "truncated"));
        }
        let header = backend.read_at(FileKind::File, &disk_name, 0, FILE_HEADER_LEN as usize)?;
        let mut r = Reader::new(&header, what);
        r.header(FILE_MAGIC, FILE_VERSION, what)?;
        let seed = r.array()?;
        let body = size - FILE_HEADER_LEN;
        let blocks = body.div_ceil(SEALED_BLOCK_LEN);
        let last_sealed = body - (blocks - 1) * SEALED_BLOCK_LEN;
        if last_sealed < TAG_LEN as u64 {
            return Err(Error::corrupt(what, "truncated block"));
        }
        let file = EncryptedFile {
            backend,
            disk_name,
            key: ObjectKey::derive(file_key, &seed),
            name_hash,
            blocks,
            len: (blocks - 1) * FILE_BLOCK_LEN as u64 + last_sealed - TAG_LEN as u64,
            cache: Mutex::new(None),
        };
        // Authenticating the final block proves the length: no truncation, no extension.
        file.block(blocks - 1)?;
        Ok(file)
    }

    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block(&self, k: u64) -> Result<Arc<Vec<u8>>> {
        if let Some((cached, data)) = &*self.cache.lock().expect("file cache") {
            if *cached == k {
                return Ok(data.clone());
            }
        }
        let last = k + 1 == self.blocks;
        let len = if last {
            self.len - k * FILE_BLOCK_LEN as u64 + TAG_LEN as u64
        } else {
            SEALED_BLOCK_LEN
        };
        let offset = FILE_HEADER_LEN + k * SEALED_BLOCK_LEN;
        let sealed = self
            .backend
            .read_at(FileKind::File, &self.disk_name, offset, len as usize)?;
        let aad = block_aad(&self.name_hash, k, last);
        let plain = self
            .key
            .open(counter_nonce(k), &aad, &sealed)
            .ok_or_else(|| {
                Error::corrupt(format!("encrypted file block {k}"), "authentication failed")
            })?;
        let plain = Arc::new(plain);
        *self.cache.lock().expect("file cache") = Some((k, plain.clone()));
        Ok(plain)
    }

    /// Reads `len` bytes at `offset`; reading past the end is an error.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| Error::InvalidArgument("read past end of encrypted file".into()))?;
        let mut out = Vec::with_capacity(len);
        let mut pos = offset;
        while pos < end {
            let k = pos / FILE_BLOCK_LEN as u64;
            let block = self.block(k)?;
            let start = (pos - k * FILE_BLOCK_LEN as u64) as usize;
            let take = (block.len() - start).min((end - pos) as usize);
            out.extend_from_slice(&block[start..start + take]);
            pos += take as u64;
        }
        Ok(out)
    }

    /// The whole plaintext.
    pub fn read_all(&self) -> Result<Vec<u8>> {
        self.read_at(0, self.len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    fn write(b: &MemoryBackend, data: &[u8]) -> [u8; 32] {
        let nh = name_hash(&[1; 32], "segment.idx");
        let mut w = FileWriter::new(b, &[2; 32], nh, [3; 32]).unwrap();
        // Odd write sizes exercise the block buffering.
        for piece in data.chunks(10_007) {
            w.write_all(piece).unwrap();
        }
        w.commit().unwrap();
        nh
    }

    #[test]
    fn random_access_across_block_boundaries() {
        for len in [
            0,
            1,
            FILE_BLOCK_LEN,
            FILE_BLOCK_LEN + 1,
            3 * FILE_BLOCK_LEN + 5,
        ] {
            let b = MemoryBackend::new();
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let nh = write(&b, &data);
            let f = EncryptedFile::open(Arc::new(b.clone()), &[2; 32], nh).unwrap();
            assert_eq!(f.len(), len as u64);
            assert_eq!(f.read_all().unwrap(), data);
            if len > 10 {
                let off = len as u64 / 2 - 3;
                assert_eq!(
                    f.read_at(off, 7).unwrap(),
                    &data[off as usize..off as usize + 7]
                );
            }
            assert!(f.read_at(len as u64, 1).is_err());
        }
    }

    #[test]
    fn truncation_and_tampering_are_detected() {
        let b = MemoryBackend::new();
        let data = vec![9u8; 2 * FILE_BLOCK_LEN + 100];
        let nh = write(&b, &data);
        let disk = hex(&nh);
        let full = b.read(FileKind::File, &disk).unwrap();
        let backend: Arc<dyn Backend> = Arc::new(b.clone());
        // Cut exactly after the first two blocks: the new last block is not "final".
        let cut = (FILE_HEADER_LEN + 2 * SEALED_BLOCK_LEN) as usize;
        b.write(FileKind::File, &disk, &full[..cut]).unwrap();
        assert!(EncryptedFile::open(backend.clone(), &[2; 32], nh).is_err());
        let mut bad = full.clone();
        bad[100] ^= 1;
        b.write(FileKind::File, &disk, &bad).unwrap();
        let f = EncryptedFile::open(backend.clone(), &[2; 32], nh).unwrap();
        assert!(f.read_at(0, 10).is_err());
        assert!(f.read_at(FILE_BLOCK_LEN as u64, 10).is_ok());
        // A file renamed to another name does not open: the name is authenticated.
        b.write(FileKind::File, &disk, &full).unwrap();
        let other = name_hash(&[1; 32], "other");
        b.write(FileKind::File, &hex(&other), &full).unwrap();
        assert!(EncryptedFile::open(backend, &[2; 32], other).is_err());
    }
}
