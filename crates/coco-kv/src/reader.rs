//! A bounds-checked little-endian reader over untrusted bytes. Every length is checked
//! against the bytes that remain before anything is allocated, so a hostile length field
//! cannot make the decoder allocate more than its input's size.

use crate::error::DecodeError;

/// A cursor over untrusted input.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Bytes consumed so far, for error reports.
    pub(crate) fn offset(&self) -> u64 {
        self.offset as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        let truncated = DecodeError::Truncated { needed: len, remaining: remaining as u64 };
        let len = usize::try_from(len).map_err(|_| truncated.clone())?;
        if len > remaining {
            return Err(truncated);
        }
        let slice = self.bytes.get(self.offset..self.offset + len).ok_or(truncated)?;
        self.offset += len;
        Ok(slice)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().expect("take(8) returns 8 bytes");
        Ok(u64::from_le_bytes(bytes))
    }

    /// A `u64` length followed by that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u64()?;
        self.take(len)
    }

    /// A count of elements that each take at least `element_bytes_min` bytes: refused
    /// unless that many elements could fit in what remains.
    pub(crate) fn count(&mut self, element_bytes_min: u64) -> Result<u64, DecodeError> {
        assert!(element_bytes_min > 0, "every element takes some bytes");
        let count = self.u64()?;
        let remaining = self.remaining() as u64;
        if count > remaining / element_bytes_min {
            return Err(DecodeError::CountTooLarge { count, remaining });
        }
        Ok(count)
    }
}

/// Appends a `u64` little-endian.
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a `u64` length then the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_lengths_past_the_end_without_allocating() {
        let mut input = Vec::new();
        put_u64(&mut input, u64::MAX);
        let mut reader = Reader::new(&input);
        assert_eq!(reader.bytes(), Err(DecodeError::Truncated { needed: u64::MAX, remaining: 0 }));
        let mut reader = Reader::new(&input);
        assert_eq!(
            reader.count(8),
            Err(DecodeError::CountTooLarge { count: u64::MAX, remaining: 0 })
        );
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u64(), Err(DecodeError::Truncated { needed: 8, remaining: 3 }));
    }

    #[test]
    fn reads_what_was_written() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"abc");
        put_u64(&mut out, 7);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.bytes().unwrap(), b"abc");
        assert_eq!(reader.u64().unwrap(), 7);
        assert!(reader.is_empty());
        assert_eq!(reader.offset(), 19);
    }
}
