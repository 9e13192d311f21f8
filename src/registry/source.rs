//! Where a registration file's bytes come from. The loader reads ranges of one file in parallel
//! (one per core) and, only when a load fails, the file again from the start to find a line; a
//! [`Source`] gives it those ranges. The files on disk are one source (`state::load`), bytes in
//! memory another.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A file's bytes, readable by range from several threads at once.
pub trait Source: Sync {
    /// The name errors report (the file's path).
    fn name(&self) -> &Path;
    /// The length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Bytes `[start, end)`; `end` is at most [`Source::size`].
    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// A file's bytes held in memory.
pub struct InMemory {
    pub name: PathBuf,
    pub bytes: Vec<u8>,
}

impl Source for InMemory {
    fn name(&self) -> &Path {
        &self.name
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let slice = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(a, b)| self.bytes.get(a..b))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end"))?;
        Ok(Box::new(slice))
    }
}
