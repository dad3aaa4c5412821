//! Key hierarchy: passphrase --Argon2id--> key-encryption key, which wraps the random
//! 256-bit master key in a key file; purpose subkeys are BLAKE3 `derive_key` of the master
//! key. A recovery code is a second key file wrapping the same master key.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::codec::{put_u32, Reader};
use crate::crypto::{ObjectKey, TAG_LEN};
use crate::error::{Error, Result};

/// Argon2id cost parameters; stored in each key file so they can change over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB (production: at least 65 536 = 64 MiB).
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// Production cost: 64 MiB, 3 passes, 1 lane (about 0.2 s on a 2020 laptop core).
    pub const fn production() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }

    /// Minimal cost for tests only: never use for real archives.
    pub const fn insecure_for_tests() -> Self {
        KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        // Refuse absurd costs from a tampered key file instead of allocating gigabytes.
        if self.memory_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.parallelism > 64 {
            return Err(Error::InvalidKdf(format!("{self:?} exceeds limits")));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| Error::InvalidKdf(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn derive(&self, secret: &[u8], salt: &[u8; 32]) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        self.argon2()?
            .hash_password_into(secret, salt, &mut out)
            .map_err(|e| Error::InvalidKdf(e.to_string()))?;
        Ok(out)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::production()
    }
}

/// Purposes for which the engine may obtain a subkey with [`crate::Archive::subkey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Sealing catalog columns.
    Catalog,
    /// Sealing search index data.
    SearchIndex,
    /// Sealing tenant credentials.
    Secrets,
}

impl Purpose {
    fn context(self) -> &'static str {
        match self {
            Purpose::Catalog => "strongroom archive v1 catalog",
            Purpose::SearchIndex => "strongroom archive v1 search index",
            Purpose::Secrets => "strongroom archive v1 secrets",
        }
    }
}

/// The master key and the subkeys the archive itself uses.
pub(crate) struct Keys {
    master: [u8; 32],
    pub blob_id: [u8; 32],
    pub pack: [u8; 32],
    pub index: [u8; 32],
    pub snapshot: [u8; 32],
    pub file: [u8; 32],
    pub file_name: [u8; 32],
}

impl Keys {
    pub fn from_master(master: [u8; 32]) -> Self {
        let d = |ctx: &str| blake3::derive_key(ctx, &master);
        Keys {
            master,
            blob_id: d("strongroom archive v1 blob id"),
            pack: d("strongroom archive v1 pack"),
            index: d("strongroom archive v1 index"),
            snapshot: d("strongroom archive v1 snapshot"),
            file: d("strongroom archive v1 file"),
            file_name: d("strongroom archive v1 file name"),
        }
    }

    pub fn subkey(&self, purpose: Purpose) -> [u8; 32] {
        blake3::derive_key(purpose.context(), &self.master)
    }

    pub fn master(&self) -> &[u8; 32] {
        &self.master
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// What unlocks a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Passphrase = 1,
    RecoveryCode = 2,
}

const KEY_MAGIC: &[u8; 4] = b"SRKY";
const KEY_VERSION: u32 = 1;
const KDF_ARGON2ID_V13: u8 = 1;
/// Bytes covered by the AAD: everything before the wrapped key.
const KEY_HEADER_LEN: usize = 4 + 4 + 1 + 1 + 12 + 32 + 32 + 12;
pub(crate) const KEY_FILE_LEN: usize = KEY_HEADER_LEN + 32 + TAG_LEN;

/// A parsed key file (its wrapped key still sealed).
#[derive(Debug)]
pub(crate) struct KeyFile {
    pub kind: KeyKind,
    pub kdf: KdfParams,
    salt: [u8; 32],
    archive_id: [u8; 32],
    nonce: [u8; 12],
    bytes: Vec<u8>,
}

impl KeyFile {
    /// Wraps `master` under `secret`: a fresh random salt and nonce per key file, so the
    /// KEK (and thus the (key, nonce) pair) is unique to this file.
    pub fn wrap(
        kind: KeyKind,
        secret: &[u8],
        kdf: KdfParams,
        archive_id: &[u8; 32],
        master: &[u8; 32],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<u8>> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut nonce);
        let kek = kdf.derive(secret, &salt)?;
        let mut out = Vec::with_capacity(KEY_FILE_LEN);
        out.extend_from_slice(KEY_MAGIC);
        put_u32(&mut out, KEY_VERSION);
        out.push(kind as u8);
        out.push(KDF_ARGON2ID_V13);
        put_u32(&mut out, kdf.memory_kib);
        put_u32(&mut out, kdf.iterations);
        put_u32(&mut out, kdf.parallelism);
        out.extend_from_slice(&salt);
        out.extend_from_slice(archive_id);
        out.extend_from_slice(&nonce);
        let wrapped = ObjectKey::from_bytes(&kek).seal(nonce, &out, master);
        out.extend_from_slice(&wrapped);
        Ok(out)
    }

    pub fn parse(bytes: &[u8]) -> Result<KeyFile> {
        let what = "key file";
        let mut r = Reader::new(bytes, what);
        r.header(KEY_MAGIC, KEY_VERSION, what)?;
        let kind = match r.u8()? {
            1 => KeyKind::Passphrase,
            2 => KeyKind::RecoveryCode,
            _ => return Err(Error::corrupt(what, "unknown key kind")),
        };
        if r.u8()? != KDF_ARGON2ID_V13 {
            return Err(Error::corrupt(what, "unknown KDF"));
        }
        let kdf = KdfParams {
            memory_kib: r.u32()?,
            iterations: r.u32()?,
            parallelism: r.u32()?,
        };
        let salt = r.array()?;
        let archive_id = r.array()?;
        let nonce = r.array()?;
        r.bytes(32 + TAG_LEN)?;
        r.finish()?;
        Ok(KeyFile {
            kind,
            kdf,
            salt,
            archive_id,
            nonce,
            bytes: bytes.to_vec(),
        })
    }

    /// `Ok(None)` when the secret is wrong (authentication failed).
    pub fn unwrap_with(&self, secret: &[u8], archive_id: &[u8; 32]) -> Result<Option<[u8; 32]>> {
        if &self.archive_id != archive_id {
            return Err(Error::corrupt("key file", "belongs to another archive"));
        }
        let kek = self.kdf.derive(secret, &self.salt)?;
        let (header, wrapped) = self.bytes.split_at(KEY_HEADER_LEN);
        let Some(master) = ObjectKey::from_bytes(&kek).open(self.nonce, header, wrapped) else {
            return Ok(None);
        };
        let master: [u8; 32] = master
            .try_into()
            .map_err(|_| Error::corrupt("key file", "bad master key length"))?;
        Ok(Some(master))
    }
}

/// Crockford base32 alphabet (no I, L, O, U): unambiguous when read aloud or retyped.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A printable recovery code: 160 random bits as 32 Crockford base32 characters in groups
/// of four. Shown once; it unlocks the archive like the passphrase does.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode([u8; 20]);

impl RecoveryCode {
    pub(crate) fn random(rng: &mut dyn RngCore) -> Self {
        let mut b = [0u8; 20];
        rng.fill_bytes(&mut b);
        RecoveryCode(b)
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.0
    }

    /// Parses a code as printed; case, spaces and dashes are ignored, and the easily
    /// confused letters I/L and O are read as 1 and 0.
    pub fn parse(text: &str) -> Result<Self> {
        let mut bits: u64 = 0;
        let mut nbits = 0;
        let mut out = Vec::with_capacity(20);
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let c = match c.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            let v = CROCKFORD
                .iter()
                .position(|&a| a as char == c)
                .ok_or_else(|| {
                    Error::InvalidArgument("recovery code has a bad character".into())
                })?;
            bits = (bits << 5) | v as u64;
            nbits += 5;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        let bytes: [u8; 20] = out
            .try_into()
            .map_err(|_| Error::InvalidArgument("recovery code must have 32 characters".into()))?;
        Ok(RecoveryCode(bytes))
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = Vec::with_capacity(32);
        let mut bits: u64 = 0;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u64;
            nbits += 8;
            while nbits >= 5 {
                nbits -= 5;
                chars.push(CROCKFORD[((bits >> nbits) & 31) as usize]);
            }
        }
        for (i, group) in chars.chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(group).expect("alphabet is ASCII"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn wrap_unwrap_and_wrong_secret() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let kdf = KdfParams::insecure_for_tests();
        let bytes = KeyFile::wrap(
            KeyKind::Passphrase,
            b"pw",
            kdf,
            &[3; 32],
            &[9; 32],
            &mut rng,
        )
        .unwrap();
        assert_eq!(bytes.len(), KEY_FILE_LEN);
        let kf = KeyFile::parse(&bytes).unwrap();
        assert_eq!(kf.kdf, kdf);
        assert_eq!(kf.unwrap_with(b"pw", &[3; 32]).unwrap(), Some([9; 32]));
        assert_eq!(kf.unwrap_with(b"nope", &[3; 32]).unwrap(), None);
        assert!(kf.unwrap_with(b"pw", &[4; 32]).is_err());
    }

    #[test]
    fn recovery_code_prints_and_parses() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let code = RecoveryCode::random(&mut rng);
        let text = code.to_string();
        assert_eq!(text.len(), 32 + 7);
        assert_eq!(RecoveryCode::parse(&text).unwrap(), code);
        assert_eq!(
            RecoveryCode::parse(&text.to_lowercase().replace('-', " ")).unwrap(),
            code
        );
        assert!(RecoveryCode::parse("ABCD").is_err());
        assert!(RecoveryCode::parse("!!!!").is_err());
    }

    #[test]
    fn subkeys_differ_per_purpose() {
        let keys = Keys::from_master([5; 32]);
        assert_ne!(
            keys.subkey(Purpose::Catalog),
            keys.subkey(Purpose::SearchIndex)
        );
        assert_ne!(keys.pack, keys.index);
        assert_ne!(keys.blob_id, keys.file_name);
    }
}
