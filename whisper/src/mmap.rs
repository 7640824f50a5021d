//! The crate's only `unsafe`: mapping a whisper file read-only.

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// A read-only shared mapping of a whole file.
#[derive(Debug)]
pub(crate) struct Map {
    map: Mmap,
}

impl Map {
    /// Maps `file` read-only; an empty file maps to `None` (a zero-length map is an error).
    pub(crate) fn of(file: &File) -> io::Result<Option<Map>> {
        if file.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: the map is read-only and shared, and we never hand out references that
        // outlive it. The remaining hazard is another process truncating the file while it is
        // mapped: reads of the lost pages would fault (SIGBUS). Whisper files are never
        // truncated in place by whisper, carbon or our own code (resize writes a new file and
        // renames it), and `FileStorage::new` documents the requirement for its callers.
        let map = unsafe { Mmap::map(file)? };
        Ok(Some(Map { map }))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }
}
