//! GBCS lengths and a bounded reader. A length is one octet below `0x80`, else `0x81 nn` or
//! `0x82 nnnn` (the DER rule), always in its shortest form: a longer form is refused, so that a
//! frame that decodes re-encodes to the same bytes.

use super::FrameError;

/// The longest length this module reads or writes (two length octets).
pub const MAX_LENGTH: usize = 0xFFFF;

/// Appends `len` in its shortest form. Callers keep `len` within [`MAX_LENGTH`] (every frame is
/// bounded by [`super::MAX_FRAME_LEN`], which is smaller).
pub(crate) fn put_length(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len <= MAX_LENGTH);
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// Appends `bytes` with their length in front.
pub(crate) fn put_counted(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a frame front to back. Every read checks what is left first, so a length a peer sent
/// can never make it read past the end or allocate more than the input holds.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, at: 0 }
    }

    /// How many bytes have been read.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.at == self.input.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if n > self.remaining() {
            return Err(FrameError::Truncated { at: self.at });
        }
        let out = &self.input[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    /// Expects exactly `expected` next.
    pub(crate) fn expect(&mut self, expected: &[u8]) -> Result<(), FrameError> {
        let at = self.at;
        if self.take(expected.len())? != expected {
            return Err(FrameError::Unexpected { at });
        }
        Ok(())
    }

    /// A length in its shortest form.
    pub(crate) fn length(&mut self) -> Result<usize, FrameError> {
        let at = self.at;
        let first = self.byte()?;
        let len = match first {
            0x00..=0x7F => return Ok(usize::from(first)),
            0x81 => usize::from(self.byte()?),
            0x82 => usize::from(u16::from_be_bytes(self.array()?)),
            _ => return Err(FrameError::Length { at }),
        };
        let shortest = if first == 0x81 { 0x80 } else { 0x100 };
        if len < shortest {
            return Err(FrameError::Length { at });
        }
        Ok(len)
    }

    /// A length, then that many bytes.
    pub(crate) fn counted(&mut self) -> Result<&'a [u8], FrameError> {
        let len = self.length()?;
        self.take(len)
    }
}
