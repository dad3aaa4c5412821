//! Sealing and opening with AES-256-GCM, and the "sealed object" envelope shared by index
//! and snapshot files. See FORMAT.md §4 for the nonce scheme: every object gets a fresh
//! random 32-byte seed, its key is BLAKE3-keyed(purpose subkey, seed), and nonces within
//! one object are distinct counters (byte offsets or block numbers).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::codec::{put_u32, put_u64, Reader};
use crate::error::{Error, Result};

/// Length of the AES-GCM authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// A 256-bit AES key bound to one object (pack, index file, snapshot, encrypted file).
pub(crate) struct ObjectKey(Aes256Gcm);

impl ObjectKey {
    /// K_obj = BLAKE3-keyed(key = purpose subkey, message = seed).
    pub fn derive(subkey: &[u8; 32], seed: &[u8; 32]) -> Self {
        let key = blake3::keyed_hash(subkey, seed);
        Self::from_bytes(key.as_bytes())
    }

    pub fn from_bytes(key: &[u8; 32]) -> Self {
        ObjectKey(Aes256Gcm::new(key.into()))
    }

    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers below 64 GiB")
    }

    pub fn open(&self, nonce: [u8; 12], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        self.0
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

/// The 96-bit nonce for counter `n`: n as 64-bit little endian, then four zero bytes.
pub(crate) fn counter_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&n.to_le_bytes());
    nonce
}

/// Sealed objects larger than this (decompressed) are rejected as corrupt.
pub(crate) const MAX_OBJECT_LEN: u64 = 1 << 31;
const OBJECT_VERSION: u32 = 1;
pub(crate) const OBJECT_HEADER_LEN: usize = 4 + 4 + 32 + 8;

/// Seals `payload` as a whole-file object: header (magic, version, seed, plaintext length),
/// then AES-GCM(K_obj, nonce 0, zstd(payload), aad = header).
pub(crate) fn seal_object(
    magic: &[u8; 4],
    subkey: &[u8; 32],
    seed: [u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJECT_HEADER_LEN + payload.len() / 2 + TAG_LEN);
    out.extend_from_slice(magic);
    put_u32(&mut out, OBJECT_VERSION);
    out.extend_from_slice(&seed);
    put_u64(&mut out, payload.len() as u64);
    let compressed = zstd::bulk::compress(payload, 3).expect("zstd compression of a buffer");
    let sealed = ObjectKey::derive(subkey, &seed).seal(counter_nonce(0), &out, &compressed);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a sealed object; any tampering, truncation or wrong key is `Error::Corrupt`.
pub(crate) fn open_object(
    magic: &[u8; 4],
    subkey: &[u8; 32],
    bytes: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    let mut r = Reader::new(bytes, what);
    r.header(magic, OBJECT_VERSION, "sealed object")?;
    let seed = r.array::<32>()?;
    let plain_len = r.u64()?;
    if plain_len > MAX_OBJECT_LEN {
        return Err(Error::corrupt(what, "declared length too large"));
    }
    let header = &bytes[..OBJECT_HEADER_LEN];
    let sealed = r.bytes(r.remaining())?;
    let compressed = ObjectKey::derive(subkey, &seed)
        .open(counter_nonce(0), header, sealed)
        .ok_or_else(|| Error::corrupt(what, "authentication failed"))?;
    let payload = zstd::bulk::decompress(&compressed, plain_len as usize)
        .map_err(|_| Error::corrupt(what, "bad zstd data"))?;
    if payload.len() as u64 != plain_len {
        return Err(Error::corrupt(what, "length mismatch"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_round_trip_and_tamper_detection() {
        let key = [7u8; 32];
        let sealed = seal_object(b"TEST", &key, [1; 32], b"hello world");
        assert_eq!(
            open_object(b"TEST", &key, &sealed, "t").unwrap(),
            b"hello world"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(
                open_object(b"TEST", &key, &bad, "t").is_err(),
                "flip at {i}"
            );
        }
        assert!(open_object(b"TEST", &[8u8; 32], &sealed, "t").is_err());
        assert!(open_object(b"TEST", &key, &sealed[..sealed.len() - 1], "t").is_err());
    }

    #[test]
    fn different_seeds_give_different_ciphertexts() {
        let key = [7u8; 32];
        let a = seal_object(b"TEST", &key, [1; 32], b"same");
        let b = seal_object(b"TEST", &key, [2; 32], b"same");
        assert_ne!(a[OBJECT_HEADER_LEN..], b[OBJECT_HEADER_LEN..]);
    }
}
