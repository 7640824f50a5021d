//! Where a whisper file's bytes live: a file on disk, optionally mapped, or a `Vec` in memory.
//!
//! All I/O is positioned (`pread`/`pwrite`), so a handle has no seek state and every read or
//! write is one system call. The algorithms in [`crate::Whisper`] only see this trait, which is
//! what lets tests run them on [`MemStorage`] and compare against a model.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::mmap::Map;

/// Positioned byte storage for one whisper file.
pub trait Storage {
    /// The current length in bytes.
    ///
    /// # Errors
    ///
    /// When the length cannot be read (`fstat` failed).
    fn size(&self) -> io::Result<u64>;

    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` when the storage ends before `buf` is full; other I/O errors as they come.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    ///
    /// I/O errors as they come (a full disk, a read-only handle).
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// The whole content, when it is already in memory (a map or a `Vec`), so reads can borrow
    /// instead of copying.
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }

    /// Makes written data durable (`fsync`).
    ///
    /// # Errors
    ///
    /// When the operating system cannot flush.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Takes an exclusive advisory lock (`flock(LOCK_EX)`), waiting for it.
    ///
    /// # Errors
    ///
    /// When locking fails.
    fn lock(&self) -> io::Result<()> {
        Ok(())
    }

    /// Releases the lock taken by [`lock`](Self::lock).
    ///
    /// # Errors
    ///
    /// When unlocking fails.
    fn unlock(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `len` bytes at `offset`, borrowing from memory when possible, else into `scratch`.
pub(crate) fn read_at<'a, S: Storage + ?Sized>(
    storage: &'a S,
    offset: u64,
    len: usize,
    scratch: &'a mut Vec<u8>,
) -> io::Result<&'a [u8]> {
    if let Some(bytes) = storage.as_bytes() {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(len).ok_or_else(eof)?;
        return bytes.get(start..end).ok_or_else(eof);
    }
    // Grow only: bytes past `len` left from an earlier read are never looked at, and not
    // zeroing the buffer before every read saves a pass over it.
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    let buf = &mut scratch[..len];
    storage.read_exact_at(buf, offset)?;
    Ok(buf)
}

/// A read buffer that goes back to a small per-thread pool when its handle is dropped.
///
/// Opening a file for one fetch (as the path functions and whisper.py do) would otherwise
/// allocate and zero a fresh 17 KB buffer for every 24-hour read; profiling showed that zeroing
/// as a third of a fetch's instructions.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf(Vec<u8>);

/// Buffers kept per thread, and the largest kept.
const POOL_BUFFERS: usize = 4;
const POOL_BUFFER_BYTES: usize = 64 * 1024;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ReadBuf {
    /// A buffer from the pool, or a new empty one.
    pub(crate) fn new() -> ReadBuf {
        let pooled = POOL.try_with(|p| p.borrow_mut().pop()).ok().flatten();
        ReadBuf(pooled.unwrap_or_default())
    }
}

impl std::ops::Deref for ReadBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for ReadBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.capacity() == 0 || buf.capacity() > POOL_BUFFER_BYTES {
            return;
        }
        // During thread teardown the pool may be gone; then the buffer is simply freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_BUFFERS {
                p.push(buf);
            }
        });
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the whisper file")
}

/// A whisper file on disk, read with `pread` or through a read-only map.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    /// Present when the handle was opened with `mmap(true)` and the file is not empty.
    map: Option<Map>,
}

impl FileStorage {
    /// Wraps an open file. With `mmap`, reads go through a shared read-only mapping.
    ///
    /// The map is of the file's length at open time; whisper files never grow or shrink in
    /// place, which is what makes this safe to use. A file truncated by another program while
    /// it is mapped makes reads of the lost pages fault, so only map files nobody truncates.
    ///
    /// # Errors
    ///
    /// When the map cannot be created.
    pub fn new(file: File, mmap: bool) -> io::Result<FileStorage> {
        let map = if mmap { Map::of(&file)? } else { None };
        Ok(FileStorage { file, map })
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Storage for FileStorage {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if let Some(map) = &self.map {
            let start = usize::try_from(offset).map_err(|_| eof())?;
            let src = start
                .checked_add(buf.len())
                .and_then(|end| map.bytes().get(start..end))
                .ok_or_else(eof)?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        self.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        // A shared map sees this write: on Linux both go through the same page cache.
        self.file.write_all_at(buf, offset)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        self.map.as_ref().map(Map::bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn lock(&self) -> io::Result<()> {
        self.file.lock()
    }

    fn unlock(&self) -> io::Result<()> {
        self.file.unlock()
    }
}

/// A whisper file held in memory, for tests, fixtures and caches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStorage {
    bytes: Vec<u8>,
}

impl MemStorage {
    /// Storage holding `bytes` (for example a whole file read from disk).
    pub fn new(bytes: Vec<u8>) -> MemStorage {
        MemStorage { bytes }
    }

    /// The content.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the content out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Storage for MemStorage {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(start..end))
            .ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let too_far = || io::Error::new(io::ErrorKind::InvalidInput, "offset out of range");
        let start = usize::try_from(offset).map_err(|_| too_far())?;
        let end = start.checked_add(buf.len()).ok_or_else(too_far)?;
        if end > self.bytes.len() {
            // Like a file: writing past the end extends it, with zeros in any gap.
            self.bytes.resize(end, 0);
        }
        if let Some(dst) = self.bytes.get_mut(start..end) {
            dst.copy_from_slice(buf);
        }
        Ok(())
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_storage_reads_writes_and_reports_eof() {
        let mut s = MemStorage::new(vec![0; 4]);
        s.write_all_at(&[1, 2], 3).unwrap();
        assert_eq!(s.bytes(), &[0, 0, 0, 1, 2]);
        let mut buf = [0u8; 2];
        s.read_exact_at(&mut buf, 3).unwrap();
        assert_eq!(buf, [1, 2]);
        let err = s.read_exact_at(&mut buf, 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut scratch = Vec::new();
        assert_eq!(read_at(&s, 1, 2, &mut scratch).unwrap(), &[0, 0]);
        assert!(read_at(&s, u64::MAX, 2, &mut scratch).is_err());
    }
}
