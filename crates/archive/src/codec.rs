//! Little-endian binary encoding helpers. Every parser reads through [`Reader`], which
//! turns a short or malformed buffer into `Error::Corrupt` instead of panicking.

use crate::error::{Error, Result};

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'a str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| Error::corrupt(self.what, "truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A count of items of `item_len` bytes each, checked against the bytes left so a
    /// corrupt count cannot make us allocate a huge vector.
    pub fn count(&mut self, item_len: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_len) > self.remaining() {
            return Err(Error::corrupt(self.what, "count exceeds data"));
        }
        Ok(n)
    }

    /// A 4-byte magic and a u32 format version. A wrong magic is corruption; another
    /// version is [`Error::UnsupportedVersion`] of `format`.
    pub fn header(&mut self, magic: &[u8; 4], version: u32, format: &'static str) -> Result<()> {
        if &self.array::<4>()? != magic {
            return Err(Error::corrupt(self.what, "bad magic"));
        }
        let found = self.u32()?;
        if found != version {
            return Err(Error::UnsupportedVersion {
                what: format,
                version: found,
            });
        }
        Ok(())
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed: trailing garbage is corruption too.
    pub fn finish(self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::corrupt(self.what, "trailing bytes"));
        }
        Ok(())
    }
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let mut r = Reader::new(&[1, 2, 3], "test");
        assert!(r.u32().is_err());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff], "test");
        assert!(r.count(1).is_err());
        let r = Reader::new(&[1], "test");
        assert!(r.finish().is_err());
    }
}
