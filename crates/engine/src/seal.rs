//! Column sealing: AES-256-GCM under an archive subkey, with a random 96-bit nonce per value
//! (`nonce ‖ ciphertext+tag`). The column's name is the associated data, so a sealed address
//! cannot be moved into, say, the folder-name column undetected. Random nonces are safe here:
//! a catalog holds far fewer than 2^32 sealed values per key.
//!
//! [`Sealer::lookup`] gives a keyed BLAKE3 of a value, for equality lookups (a task by name,
//! an account by address) without storing the value in the clear.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;

/// Seals and opens values under one subkey.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    lookup_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer {
            cipher: Aes256Gcm::new(&key.into()),
            lookup_key: blake3::derive_key("strongroom engine lookup v1", &key),
        }
    }

    /// Seals `plaintext` for the column `column`.
    pub fn seal(&self, column: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: column.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn seal_str(&self, column: &str, plaintext: &str) -> Vec<u8> {
        self.seal(column, plaintext.as_bytes())
    }

    /// Opens a value sealed for `column`; fails on any tampering or a wrong key.
    pub fn open(&self, column: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::new(
                crate::ErrorCode::Catalog,
                format!("sealed {column} is truncated"),
            ));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::new(
                    crate::ErrorCode::Catalog,
                    format!("sealed {column} does not authenticate"),
                )
            })
    }

    pub fn open_string(&self, column: &str, sealed: &[u8]) -> Result<String> {
        String::from_utf8(self.open(column, sealed)?)
            .map_err(|_| Error::internal(format!("sealed {column} is not UTF-8")))
    }

    /// Keyed hash for equality lookups (case-sensitive; normalise first if needed).
    pub fn lookup(&self, value: &str) -> Vec<u8> {
        blake3::keyed_hash(&self.lookup_key, value.as_bytes())
            .as_bytes()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_column_binding() {
        let s = Sealer::new([7; 32]);
        let sealed = s.seal_str("address", "alice@contoso.com");
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert_eq!(
            s.open_string("address", &sealed).unwrap(),
            "alice@contoso.com"
        );
        assert!(s.open("folder_name", &sealed).is_err());
        assert!(Sealer::new([8; 32]).open("address", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open("address", &tampered).is_err());
        assert_eq!(s.lookup("x"), s.lookup("x"));
        assert_ne!(s.lookup("x"), Sealer::new([8; 32]).lookup("x"));
    }
}
