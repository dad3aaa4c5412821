//! Content-defined chunking (FastCDC 2020) for large content, so that inserting or removing
//! bytes only changes the chunks around the edit and everything else still deduplicates.
//! Chunk boundaries are not part of the format: a reader only needs the list of chunk ids.

use std::io::Read;

use fastcdc::v2020::{Error as CdcError, StreamCDC};

use crate::error::{Error, Result};

/// Chunk size limits in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkerParams {
    /// No chunk is smaller (except the last).
    pub min: u32,
    /// Target average.
    pub avg: u32,
    /// No chunk is larger.
    pub max: u32,
}

impl Default for ChunkerParams {
    /// 256 KiB / 1 MiB / 4 MiB: small enough that an edited attachment shares most chunks,
    /// large enough that per-blob overhead (49 bytes of index, 17 of sealing) stays < 0.01%.
    fn default() -> Self {
        ChunkerParams {
            min: 256 * 1024,
            avg: 1024 * 1024,
            max: 4 * 1024 * 1024,
        }
    }
}

/// Splits `reader` into chunks and hands each to `sink`, in order.
pub(crate) fn for_each_chunk(
    reader: impl Read,
    params: ChunkerParams,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut empty = true;
    for chunk in StreamCDC::new(reader, params.min, params.avg, params.max) {
        match chunk {
            Ok(c) => {
                empty = false;
                sink(&c.data)?;
            }
            Err(CdcError::Empty) => break,
            Err(CdcError::IoError(e)) => return Err(Error::Io(e)),
            Err(CdcError::Other(e)) => return Err(Error::InvalidArgument(e)),
        }
    }
    // Empty content is one empty chunk, so every stream has at least one id.
    if empty {
        sink(&[])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn chunk_all(data: &[u8], p: ChunkerParams) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_chunk(data, p, |c| {
            out.push(c.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn shifted_data_shares_most_chunks() {
        let p = ChunkerParams {
            min: 4096,
            avg: 16384,
            max: 65536,
        };
        let mut data = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut data);
        let a = chunk_all(&data, p);
        assert_eq!(a.concat(), data);
        let mut shifted = b"a few inserted bytes".to_vec();
        shifted.extend_from_slice(&data);
        let b = chunk_all(&shifted, p);
        let shared = b.iter().filter(|c| a.contains(c)).count();
        assert!(
            shared + 2 >= a.len(),
            "{shared} of {} chunks shared",
            a.len()
        );
        assert_eq!(chunk_all(&[], p), vec![Vec::<u8>::new()]);
    }
}
