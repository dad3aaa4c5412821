//! Content-defined chunking (FastCDC 2020) for large content, so that inserting or removing
//! bytes only changes the chunks around the edit and everything else still deduplicates.
//! Chunk boundaries are not part of the format: a reader only needs the list of chunk ids.

use std::io::Read;

use fastcdc::v2020::{Error as CdcError, FastCDC, StreamCDC};

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

/// Push-based FastCDC: feed content as it arrives (from a network stream, say) and take the
/// chunks that are complete. It cuts exactly the chunks `Writer::put_stream` cuts for the
/// same content, and holds at most `params.max` bytes plus the piece being pushed.
#[derive(Debug)]
pub struct Chunker {
    params: ChunkerParams,
    buffer: Vec<u8>,
}

impl Chunker {
    pub fn new(params: ChunkerParams) -> Chunker {
        Chunker {
            params,
            buffer: Vec::new(),
        }
    }

    /// Adds `data`; returns the chunks it completed, in order.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let max = self.params.max as usize;
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = data.len().min(max.saturating_sub(self.buffer.len()).max(1));
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            // A cut needs `max` bytes of lookahead, as `StreamCDC` fills its buffer first.
            if self.buffer.len() >= max {
                out.push(self.cut());
            }
        }
        out
    }

    /// Ends the content; returns the remaining chunks (none when nothing is left).
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !self.buffer.is_empty() {
            out.push(self.cut());
        }
        out
    }

    fn cut(&mut self) -> Vec<u8> {
        let p = self.params;
        let len = FastCDC::new(&self.buffer, p.min, p.avg, p.max)
            .next()
            .map_or(self.buffer.len(), |c| c.length);
        self.buffer.drain(..len).collect()
    }
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

    #[test]
    fn pushed_pieces_cut_the_same_chunks_as_a_stream() {
        let p = ChunkerParams {
            min: 4096,
            avg: 16384,
            max: 65536,
        };
        let mut data = vec![0u8; 700_000];
        rand::rngs::StdRng::seed_from_u64(9).fill_bytes(&mut data);
        let expected = chunk_all(&data, p);
        for piece in [1, 1000, 65536, 100_000, data.len()] {
            let mut chunker = Chunker::new(p);
            let mut got = Vec::new();
            for part in data.chunks(piece) {
                got.extend(chunker.push(part));
            }
            got.extend(chunker.finish());
            assert_eq!(got, expected, "pieces of {piece} bytes");
        }
        assert!(Chunker::new(p).finish().is_empty());
    }
}
