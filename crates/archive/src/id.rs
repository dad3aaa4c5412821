//! 32-byte identifiers: blob ids (keyed BLAKE3 of plaintext) and file ids (BLAKE3 of the
//! stored bytes, so a file's name proves its content without any key).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lower-case hex, as used in file names.
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity(64);
                for b in self.0 {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }

            /// The first 8 hex digits, for logs and messages.
            pub fn short(&self) -> String {
                self.to_hex()[..8].to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_hex32(s).map($name).ok_or_else(|| {
                    Error::InvalidArgument(format!("not a 64-digit hex id: {s:?}"))
                })
            }
        }
    };
}

id_type!(
    /// Content id of a blob: keyed BLAKE3 (blob-id subkey) of its plaintext.
    BlobId
);
id_type!(
    /// Id of a pack file: BLAKE3 of the whole file.
    PackId
);
id_type!(
    /// Id of an index file: BLAKE3 of the whole file.
    IndexId
);
id_type!(
    /// Id of a snapshot file: BLAKE3 of the whole file.
    SnapshotId
);

/// Unkeyed BLAKE3 of stored bytes: the id of packs, index and snapshot files.
pub(crate) fn file_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let id = BlobId([0xab; 32]);
        assert_eq!(id.to_hex().parse::<BlobId>().unwrap(), id);
        assert!("zz".parse::<BlobId>().is_err());
        assert!("g".repeat(64).parse::<BlobId>().is_err());
        assert_eq!(id.short(), "abababab");
    }
}
