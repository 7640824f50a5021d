//! A `/proc` file kept open and re-read from offset 0 each run.
//!
//! Opening a `/proc` file costs a path walk and a new file description; seq_file-backed files
//! regenerate their content on a read from offset 0, so keeping the descriptor saves that work
//! on every run (tcollector does the same). If a re-read fails (the file went away, e.g. a
//! namespace change), the file is opened again once before the error is reported.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An open `/proc` file and its path (for errors).
#[derive(Debug)]
pub(super) struct ProcFile {
    path: PathBuf,
    file: Option<File>,
}

/// Upper bound on what one read takes from a `/proc` file: the largest ones the collectors
/// read (`/proc/stat` on a 1024-cpu machine, `/proc/net/dev` with thousands of interfaces)
/// stay well below it, and it bounds memory if a path points somewhere unexpected.
const MAX_PROC_FILE_BYTES: u64 = 16 << 20;

impl ProcFile {
    /// A file that is opened on its first read.
    pub(super) fn new(path: PathBuf) -> ProcFile {
        ProcFile { path, file: None }
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file into `buf` (cleared first) and returns it as text.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path when the file cannot be opened or read, and
    /// [`Error::Malformed`] when it is not UTF-8.
    pub(super) fn read<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<&'b str> {
        if self.read_once(buf).is_err() {
            // A kept descriptor can go stale; try a fresh one before giving up.
            self.file = None;
            self.read_once(buf).map_err(|e| Error::io(&self.path, e))?;
        }
        std::str::from_utf8(buf)
            .map_err(|e| Error::Malformed { path: self.path.clone(), what: e.to_string() })
    }

    fn read_once(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        let file = match &mut self.file {
            Some(f) => {
                f.seek(SeekFrom::Start(0))?;
                f
            }
            None => self.file.insert(File::open(&self.path)?),
        };
        file.take(MAX_PROC_FILE_BYTES).read_to_end(buf)?;
        Ok(())
    }
}

/// Reads a file that is not kept open (per-process files) into `buf`.
pub(super) fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    File::open(path)?.take(MAX_PROC_FILE_BYTES).read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_see_in_place_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loadavg");
        std::fs::write(&path, "one").unwrap();
        let mut f = ProcFile::new(path.clone());
        let mut buf = Vec::new();
        assert_eq!(f.read(&mut buf).unwrap(), "one");
        std::fs::write(&path, "two, longer").unwrap();
        assert_eq!(f.read(&mut buf).unwrap(), "two, longer");
    }

    #[test]
    fn a_replaced_file_is_reopened_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(&path, "a").unwrap();
        let mut f = ProcFile::new(path.clone());
        let mut buf = Vec::new();
        f.read(&mut buf).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The open descriptor still reads the unlinked file; that is fine for /proc, where
        // files are never replaced. A file that never existed is an error naming its path.
        let mut missing = ProcFile::new(dir.path().join("nope"));
        let err = missing.read(&mut buf).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn non_utf8_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(ProcFile::new(path).read(&mut buf), Err(Error::Malformed { .. })));
    }
}
