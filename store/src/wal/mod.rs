//! The write-ahead log: points are logged before they enter the cache, so a crash loses at
//! most the configured window instead of the whole cache (carbon and go-carbon lose it all).
//!
//! [`Wal::append`] encodes a batch into an in-memory buffer under a short lock; a writer thread
//! writes the buffer to segment files and fsyncs them as the [`FsyncPolicy`] says:
//! `Interval(d)` (default 1 s: appends return at once, a crash loses at most the last `d`),
//! `Always` (appends return once fsynced; concurrent appenders share one fsync) or `Never`.
//! The buffer is capped ([`WalConfig::buffer_bytes`]): when the writer falls behind, appenders
//! wait. [`Wal::open`] replays every segment, and the caller trims the log with
//! [`Wal::release_before`] once the points of older segments are in Whisper.
//!
//! # Example
//!
//! ```
//! use store::wal::{FsyncPolicy, Wal, WalConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut config = WalConfig::new(dir.path());
//! config.fsync = FsyncPolicy::Always;
//!
//! let wal = Wal::open(config.clone(), |_, _, _, _| {})?;
//! let segment = wal.append(&[("servers.host001.cpu.user", 1_700_000_000, 12.5)])?;
//! wal.shutdown()?; // a crash here would lose nothing: Always mode
//!
//! let mut replayed = Vec::new();
//! let wal = Wal::open(config, |seg, name, ts, value| replayed.push((seg, name.to_owned(), ts, value)))?;
//! assert_eq!(replayed, [(segment, "servers.host001.cpu.user".to_owned(), 1_700_000_000, 12.5)]);
//! // Once those points are in Whisper:
//! wal.release_before(wal.current_segment())?;
//! # Ok(()) }
//! ```
//!
//! # Files
//!
//! ```text
//! <dir>/LOCK                           locked (flock) while a Wal has the directory open
//! <dir>/00000000000000000001.wal       segments, numbered from 1 in the order written: 20
//! <dir>/00000000000000000002.wal       digits (all of u64), so names sort as numbers do
//! <dir>/00000000000000000003.wal.tmp   a segment being created (removed by open)
//! ```
//!
//! A segment is created under a temporary name, its header written and fsynced, then renamed
//! and the directory fsynced: a segment file always has a whole header. Every `open` starts a
//! new segment after the highest one; records are only ever appended to the newest one.
//!
//! # Format (version 1)
//!
//! Integers are little-endian; varints are unsigned LEB128 (7 bits a byte, low first); zigzag
//! maps signed to unsigned (`0, -1, 1, -2, ...` to `0, 1, 2, 3, ...`); CRC-32 is the IEEE one
//! (`crc32fast`).
//!
//! ```text
//! segment = header record*
//! header  = "GRAPHWAL"            8 bytes, magic
//!           version: u32          1
//!           segment id: u64       as in the file name
//!           crc: u32              CRC-32 of the 20 bytes before it
//! record  = F7 57 52 1E           4 bytes, marker (lets replay find the next record after damage)
//!           len: u32              payload bytes, 5 ..= 16 MiB
//!           crc: u32              CRC-32 of the 4 length bytes and the payload
//!           payload
//! payload = first new id: varint  the dictionary id the first name defined here gets
//!           base ts: u32          the first point's timestamp
//!           point*                up to the payload's end
//! point   = tag: varint           (ref << 1) | int; ref 0: a new name follows and gets the
//!                                 next id; ref k > 0: the name with id k - 1
//!           [name len: varint, name: UTF-8 bytes]     only when ref = 0
//!           ts delta: varint      zigzag of ts - the previous point's ts (the first: base ts)
//!           value                 int = 1: zigzag varint of the value, an integer of at most
//!                                 49 bits (-0.0 excluded); int = 0: the f64's 8 bytes
//! ```
//!
//! The name dictionary is per segment: the first time a segment sees a name it writes it, later
//! points refer to its id. So a point of a known name costs its tag (1 to 3 bytes for up to
//! a million names), a timestamp delta (1 byte when a batch shares a timestamp or moves by
//! less than a minute) and the value (8 bytes, or 1 to 7 for integers): 10 to 12 bytes for
//! `servers.hostNNN.cpu.cpuN.user`-like names where carbon's plaintext line is ~45. A batch
//! is one record (split at 256 KiB), so the 12-byte frame is shared. The dictionary's memory is
//! bounded by the segment: it holds the names of the current segment only.
//!
//! A reader that finds another version stops with [`WalError::UnsupportedVersion`], naming the
//! file; a file named like a segment without the magic is [`WalError::BadMagic`].
//!
//! # Replay and damage
//!
//! Records are checked by their frame (marker, length bounds, CRC) and then decoded in full
//! before any point of theirs is replayed, so a damaged record never replays a point.
//!
//! - A **torn tail** (a crash mid-write: the last record of the last segment cut short or
//!   failing its checksum, with no whole record after it) is cut off the file and counted in
//!   [`ReplayStats::torn_bytes`]; the open succeeds.
//! - **Damage inside a segment** is skipped up to the next whole record (found by its marker
//!   and checksum), and reported in [`ReplayStats::corruptions`]. Records after it replay,
//!   except points whose name was defined in the damaged bytes
//!   ([`ReplayStats::points_without_name`]): each record says which dictionary id its first
//!   new name gets, so later ids stay right. Damage at the end of an older segment stops that
//!   segment; a damaged header skips the whole segment.
//!
//! # Durability, in order
//!
//! 1. `append` encodes into the buffer (and, in `Always` mode, waits for step 3).
//! 2. The writer takes the whole buffer (appenders go on filling a second one) and writes it
//!    with `write(2)`: from here a crash of the process (`kill -9`) loses nothing; in
//!    `Interval` mode this happens when the interval is up or a megabyte is buffered.
//! 3. The writer fsyncs (`fdatasync`) the segment: from here a crash of the machine loses
//!    nothing. A full segment is fsynced when closed, so one fsync of the newest covers all.
//! 4. Once the caller has the points in Whisper, `release_before` removes old segments, oldest
//!    first, fsyncing the directory after each.
//!
//! A failed write (a full disk) is kept and retried every 200 ms; meanwhile `append` and
//! `sync` fail with the I/O error, so the caller can apply backpressure; nothing is dropped.
//! A failed fsync stops the log for good (the kernel may have dropped the dirty pages, so what
//! is on disk is unknown): every call fails until a restart replays what is there.

mod codec;
mod error;
mod handle;
mod segment;
mod writer;

pub use codec::MAX_NAME_BYTES;
pub use error::{WalError, WalOp};
pub use handle::{
    DEFAULT_BUFFER_BYTES, DEFAULT_FSYNC_INTERVAL, DEFAULT_SEGMENT_BYTES, FsyncPolicy, LOCK_FILE,
    Wal, WalConfig, WalStats,
};
pub use segment::{
    Corruption, CorruptionKind, MAX_REPORTED_CORRUPTIONS, ReplayStats, SegmentId, replay_dir,
};
