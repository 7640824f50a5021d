//! Creating whisper files: whisper.py's `create`, and a failed create leaves nothing behind.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use crate::aggregation::AggregationMethod;
use crate::cache::HeaderCache;
use crate::error::{Error, Result};
use crate::format::Header;
use crate::handle::Whisper;
use crate::retention::Retention;
use crate::storage::{FileStorage, MemStorage};

/// How the data region of a new file is allocated. Every choice gives the same bytes: all
/// points read as zero until written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Allocation {
    /// Fully allocated, non-sparse (whisper.py's default). The blocks are reserved with
    /// `fallocate(2)`, which on Linux filesystems that support it reserves them and reads back
    /// as zeros without writing 1 MB of zeros through the page cache; where it is not supported
    /// the zeros are written, as whisper.py does.
    #[default]
    Zeroed,
    /// Zeros written through the page cache in every case, as whisper.py does.
    WriteZeros,
    /// A sparse file: only the last byte is written, blocks are allocated on first write
    /// (whisper.py's `sparse=True`, carbon's `WHISPER_SPARSE_CREATE`).
    Sparse,
    /// `posix_fallocate(3)` (whisper.py's `useFallocate=True`, carbon's
    /// `WHISPER_FALLOCATE_CREATE`), which the C library emulates where the filesystem cannot.
    Fallocate,
}

/// Options for a new whisper file: see [`CreateOptions::create`].
#[derive(Clone, Debug)]
pub struct CreateOptions {
    x_files_factor: f64,
    aggregation_method: AggregationMethod,
    allocation: Allocation,
    lock: bool,
    autoflush: bool,
    fadvise_random: bool,
    noatime: bool,
    header_cache: Option<Arc<HeaderCache>>,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            x_files_factor: 0.5,
            aggregation_method: AggregationMethod::Average,
            allocation: Allocation::Zeroed,
            lock: false,
            autoflush: false,
            fadvise_random: false,
            noatime: false,
            header_cache: None,
        }
    }
}

impl CreateOptions {
    /// whisper.py's defaults: xFilesFactor 0.5, `average`, zero-filled.
    pub fn new() -> CreateOptions {
        CreateOptions::default()
    }

    /// Fraction of known points needed to propagate, in `[0, 1]`. Default: 0.5.
    pub fn x_files_factor(&mut self, x: f64) -> &mut CreateOptions {
        self.x_files_factor = x;
        self
    }

    /// How values propagate to coarser archives. Default: `average`.
    pub fn aggregation_method(&mut self, method: AggregationMethod) -> &mut CreateOptions {
        self.aggregation_method = method;
        self
    }

    /// How the data region is allocated. Default: [`Allocation::Zeroed`].
    pub fn allocation(&mut self, allocation: Allocation) -> &mut CreateOptions {
        self.allocation = allocation;
        self
    }

    /// Hold an exclusive `flock` while creating (whisper.py's `LOCK`). Default: `false`.
    /// The returned handle also locks around its writes.
    pub fn lock(&mut self, yes: bool) -> &mut CreateOptions {
        self.lock = yes;
        self
    }

    /// `fsync` the new file before returning (whisper.py's `AUTOFLUSH`). Default: `false`.
    /// The returned handle also syncs after its writes.
    pub fn autoflush(&mut self, yes: bool) -> &mut CreateOptions {
        self.autoflush = yes;
        self
    }

    /// `posix_fadvise(RANDOM)` on the new file (whisper.py's `FADVISE_RANDOM`). Default: `false`.
    pub fn fadvise_random(&mut self, yes: bool) -> &mut CreateOptions {
        self.fadvise_random = yes;
        self
    }

    /// Reads through the returned handle do not update the file's access time, as with
    /// [`OpenOptions::noatime`](crate::OpenOptions::noatime). Default: `false`.
    ///
    /// The flag is set on the new file's descriptor after it is created (`fcntl(F_SETFL)`),
    /// not passed to `open`: `open(O_CREAT | O_EXCL | O_NOATIME)` can create the file and then
    /// fail with `EPERM` where the filesystem gives new files another owner (a `uid=` mount),
    /// and a retry would then find the file it just created. Where the flag is refused, the
    /// handle simply goes without it.
    pub fn noatime(&mut self, yes: bool) -> &mut CreateOptions {
        self.noatime = yes;
        self
    }

    /// Records the new file's header in `cache`, so that the next opens through
    /// [`OpenOptions::header_cache`](crate::OpenOptions::header_cache) need not read it, and
    /// ties the returned handle to it. Default: `None`.
    pub fn header_cache(&mut self, cache: Option<&Arc<HeaderCache>>) -> &mut CreateOptions {
        self.header_cache = cache.cloned();
        self
    }

    /// Creates a whisper file at `path` and returns it open for reading and writing.
    ///
    /// The archives are validated and sorted as whisper.py does, and the file is written with
    /// the same bytes. The file must not exist. It appears whole: it is written under a
    /// temporary name beside `path` and then linked into place, so a reader opening `path`
    /// never sees a header without its archives (whisper.py writes in place, and a reader
    /// racing it gets a corrupt-file error). If anything fails (a full disk, say), the
    /// temporary file is removed: no empty or half-written file is left behind.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchiveList`], [`Error::InvalidXFilesFactor`], [`Error::AlreadyExists`],
    /// or the I/O error that stopped it.
    pub fn create(&self, path: impl AsRef<Path>, archives: &[Retention]) -> Result<Whisper> {
        let path = path.as_ref();
        let header = self.header_for(archives)?;
        if path.exists() {
            return Err(Error::AlreadyExists { path: path.to_path_buf() });
        }
        let tmp = creating_name(path);
        let file = fs::OpenOptions::new().read(true).write(true).create_new(true).open(&tmp);
        let file = match file {
            Ok(f) => f,
            Err(e) => return Err(Error::io(path, e)),
        };
        let published = self.fill_new_file(&file, &header).and_then(|()| publish(&tmp, path));
        if let Err(e) = published {
            drop(file);
            // Best effort: the error that matters is the one that stopped the create.
            let _ = fs::remove_file(&tmp);
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(Error::AlreadyExists { path: path.to_path_buf() });
            }
            return Err(Error::io(path, e));
        }
        if self.noatime {
            set_noatime(&file);
        }
        let bytes = header.encode();
        let storage = FileStorage::new(file, false).map_err(|e| Error::io(path, e))?;
        let mut w = Whisper::with_header(storage, path.to_path_buf(), header, bytes);
        w.set_lock(self.lock);
        w.set_autoflush(self.autoflush);
        if let Some(cache) = &self.header_cache {
            w.link_new_file(cache);
        }
        Ok(w)
    }

    /// Creates a whisper file in memory, with the same bytes `create` writes to disk.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchiveList`], [`Error::InvalidXFilesFactor`].
    pub fn create_in_memory(&self, archives: &[Retention]) -> Result<Whisper<MemStorage>> {
        let header = self.header_for(archives)?;
        let bytes = header.encode();
        let mut content = vec![0u8; header.file_size() as usize];
        content[..bytes.len()].copy_from_slice(&bytes);
        let storage = MemStorage::new(content);
        Ok(Whisper::with_header(storage, "<memory>".into(), header, bytes))
    }

    fn header_for(&self, archives: &[Retention]) -> Result<Header> {
        Header::new(archives, self.x_files_factor, self.aggregation_method)
    }

    /// Writes the header and allocates the data region of a freshly created, empty file.
    fn fill_new_file(&self, file: &File, header: &Header) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.lock {
            file.lock()?;
        }
        if self.fadvise_random {
            fadvise_random(file);
        }
        let head = header.encode();
        file.write_all_at(&head, 0)?;
        let start = head.len() as u64;
        let size = header.file_size();
        let data = size - start;
        match self.allocation {
            Allocation::Fallocate => posix_fallocate(file, start, data)?,
            Allocation::Sparse => file.write_all_at(&[0], size - 1)?,
            Allocation::WriteZeros => write_zeros(file, start, data)?,
            Allocation::Zeroed => {
                if !reserve_zeroed(file, start, data)? {
                    write_zeros(file, start, data)?;
                }
            }
        }
        if self.autoflush {
            file.sync_all()?;
        }
        if self.lock {
            // whisper.py holds the lock until it closes the file; our handle stays open, so
            // release it here or other writers would wait for as long as the handle lives.
            file.unlock()?;
        }
        Ok(())
    }
}

/// Creates a whisper file with whisper.py's defaults. See [`CreateOptions::create`].
///
/// # Errors
///
/// As [`CreateOptions::create`].
pub fn create(path: impl AsRef<Path>, archives: &[Retention]) -> Result<Whisper> {
    CreateOptions::new().create(path, archives)
}

/// Writes `len` zero bytes at `start` in 1 MiB writes.
fn write_zeros(file: &File, start: u64, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len as usize)];
    let mut at = start;
    let end = start + len;
    while at < end {
        let n = ((end - at) as usize).min(CHUNK);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The temporary name a file is written under before it is linked to `path`: hidden, in the
/// same directory (so the link stays on one file system), not ending in `.wsp` (so nothing
/// that lists metrics takes it for one), and unique to this process and call.
fn creating_name(path: &Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{file}.creating.{}.{n}", std::process::id()))
}

/// Gives the finished file at `tmp` its name `path` (failing with `AlreadyExists` if `path`
/// appeared meanwhile: `link(2)` never replaces), then drops the temporary name. Where the
/// file system has no hard links, a rename does it, after checking `path` is still free.
fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => {
            // The file is in place; a stale temporary name is only clutter.
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if !path.exists() => fs::rename(tmp, path),
        Err(e) => Err(e),
    }
}

/// Reserves `len` bytes at `start` as zeros with `fallocate(2)`. Returns `false` where the
/// filesystem does not support it (the caller then writes zeros).
fn reserve_zeroed(file: &File, start: u64, len: u64) -> io::Result<bool> {
    let (Ok(off), Ok(n)) = (i64::try_from(start), i64::try_from(len)) else {
        return Ok(false);
    };
    // SAFETY: plain system call on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, n) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(err),
    }
}

fn posix_fallocate(file: &File, start: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(n)) = (i64::try_from(start), i64::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "file too large"));
    };
    // SAFETY: plain system call on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, n) };
    if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
}

/// Adds `O_NOATIME` to an open file's status flags; where that is refused (`EPERM`: we do not
/// own the file), the file stays as it is.
fn set_noatime(file: &File) {
    let fd = file.as_raw_fd();
    // SAFETY: plain system calls on a file descriptor we own; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NOATIME);
        }
    }
}

/// `posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)`; advice only, so failures are ignored.
pub(crate) fn fadvise_random(file: &File) {
    // SAFETY: plain system call on a file descriptor we own; no memory is passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_appears_whole_and_no_temporary_name_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wsp");
        let archives = [Retention::new(60, 1440)];
        let w = CreateOptions::new().create(&path, &archives).unwrap();
        let size = w.header().file_size();
        drop(w);
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        let e = CreateOptions::new().create(&path, &archives).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
        // A missing directory is still NotFound (the store creates it and tries again).
        let e = CreateOptions::new().create(dir.path().join("no/b.wsp"), &archives).unwrap_err();
        assert!(matches!(&e, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound));
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.wsp"]);
    }

    #[test]
    fn every_allocation_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let archives = [Retention::new(60, 1440), Retention::new(300, 2016)];
        let mut contents = Vec::new();
        for (i, a) in
            [Allocation::Zeroed, Allocation::WriteZeros, Allocation::Sparse, Allocation::Fallocate]
                .into_iter()
                .enumerate()
        {
            let path = dir.path().join(format!("{i}.wsp"));
            CreateOptions::new().allocation(a).create(&path, &archives).unwrap();
            contents.push(fs::read(&path).unwrap());
        }
        let mem = CreateOptions::new().create_in_memory(&archives).unwrap();
        contents.push(mem.into_storage().into_bytes());
        assert_eq!(contents[0].len(), 16 + 24 + 12 * (1440 + 2016));
        for c in &contents[1..] {
            assert_eq!(c, &contents[0]);
        }
    }

    #[test]
    fn refuses_existing_file_and_bad_options_without_touching_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wsp");
        fs::write(&path, b"keep").unwrap();
        let err = create(&path, &[Retention::new(60, 10)]).unwrap_err();
        assert_eq!(err.to_string(), format!("File {} already exists!", path.display()));
        assert_eq!(fs::read(&path).unwrap(), b"keep");

        let other = dir.path().join("y.wsp");
        let err =
            CreateOptions::new().x_files_factor(1.5).create(&other, &[Retention::new(60, 10)]);
        assert!(matches!(err, Err(Error::InvalidXFilesFactor { .. })));
        let err =
            CreateOptions::new().x_files_factor(f64::NAN).create(&other, &[Retention::new(60, 10)]);
        assert!(matches!(err, Err(Error::InvalidXFilesFactor { .. })));
        assert!(create(&other, &[]).is_err());
        assert!(!other.exists());
    }
}
