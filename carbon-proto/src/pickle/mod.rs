//! The pickle protocol (carbon's port 2004) and the pickle codec the cache-query protocol
//! shares.
//!
//! A frame is a 4-byte big-endian length and a pickled list of `(metric, (timestamp, value))`.
//! Python clients write it with any protocol from 0 to 5 (Python 2 clients with 0 to 2, where
//! `str` is bytes). This module reads exactly the opcodes those protocols use for `None`,
//! bools, ints, floats, `str`, `bytes`, lists, tuples and dicts, the memo and framing; any
//! opcode that would build or call an object (`GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`,
//! `NEWOBJ`, `STACK_GLOBAL`, `PERSID`, ...) is a [`PickleError::UnsupportedOpcode`] naming it
//! and its offset. Nothing is ever constructed or imported.
//!
//! The main entry points:
//!
//! - [`FrameDecoder`] cuts frames out of a stream; [`encode_frame`] and [`framed`] write them.
//! - [`Unpickler::decode_datapoints`] reads a payload as carbon's receiver does, into
//!   [`Point`](crate::Point)s and [`Skipped`] items.
//! - [`encode_datapoints`] writes what carbon's relay writes, byte for byte.
//! - [`Unpickler::loads`] / [`loads`] read any pickle of plain data into a [`Value`];
//!   [`Unpickler::loads_ref`] reads it into a borrowed [`ValueRef`] without copying;
//!   [`dumps`] writes a [`Value`] as CPython's protocol 2 does.
//!
//! ```
//! use bytes::BytesMut;
//! use carbon_proto::{MetricName, Point};
//! use carbon_proto::pickle::{encode_datapoints, framed, FrameDecoder, Unpickler};
//!
//! // A relay's frame...
//! let points = vec![Point::new(MetricName::new("servers.web01.load")?, 1_700_000_000.0, 0.5)];
//! let mut wire = Vec::new();
//! framed(&mut wire, |out| out.extend(encode_datapoints(&points)))?;
//!
//! // ...read by a receiver.
//! let mut buf = BytesMut::from(&wire[..]);
//! let mut frames = FrameDecoder::new();
//! let mut unpickler = Unpickler::new();
//! while let Some(payload) = frames.decode(&mut buf)? {
//!     let decoded = unpickler.decode_datapoints(&payload)?;
//!     assert_eq!(decoded.points, points);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where this differs from carbon 1.1.7
//!
//! | input | carbon (`USE_INSECURE_UNPICKLER=False`) | here |
//! |---|---|---|
//! | frame over the limit | connection closed | [`PickleError::FrameTooLong`]; the caller closes, or keeps reading and the frame is skipped |
//! | payload that does not unpickle | logged, frame ignored | one [`PickleError`] for the frame |
//! | payload that is not a list | iterated anyway (a dict's keys, a string's characters), or the connection dies | [`PickleError::NotDatapoints`] |
//! | item that is not `(metric, (ts, value))` of lists or tuples | skipped (a 2-character string passes carbon's unpacking) | skipped: [`SkipReason::NotAPair`] |
//! | number `float()` refuses | skipped | skipped: [`SkipReason::BadTimestamp`] / [`SkipReason::BadValue`] |
//! | int too large for a float | `OverflowError`: the rest of the frame is lost | skipped: [`NumberError::TooLarge`] |
//! | name that is `bytes` (Python 3 clients) | `AttributeError`: the connection dies | decoded as UTF-8 |
//! | name that is neither `str` nor `bytes` | `AttributeError`: the connection dies | skipped: [`SkipReason::NameNotText`] |
//! | name unsafe on disk (`a..b`, `/`, NUL) | stored under an odd path | skipped: [`SkipReason::BadName`] |
//! | `str` with a lone surrogate (`\ud800`) | kept | error for the frame: a Rust string cannot hold it |
//! | sets, frozensets, bytearrays | unpickled | [`PickleError::UnsupportedOpcode`] (no client sends them) |
//! | a `bytes` in protocols 0 to 2 (`_codecs.encode` through `REDUCE`) | refused by the safe unpickler | refused alike |
//! | memo bombs, deep nesting, huge lengths | memory grows (CPython even resizes its memo to twice a `LONG_BINPUT` key) | bounded: see [`UnpicklerBuilder`] |
//!
//! NaN values and the timestamp `-1` are passed on: carbon's receivers drop the first and
//! replace the second after decoding, which [`Datapoint::received`](crate::Datapoint::received)
//! does. A Python 2 `str` is decoded as UTF-8 (carbon passes `encoding='utf-8'`), so one that
//! is not UTF-8 fails the frame, as in carbon. Protocol 0's text arguments are read as
//! CPython's C unpickler reads them, quirks included (`I010` is 8, `I01` is `True`).
#![warn(clippy::indexing_slicing)]

mod datapoints;
mod decode;
mod encode;
mod frame;
mod opcodes;
mod text;
mod value;

pub use datapoints::{Datapoints, SkipReason, Skipped, decode_datapoints};
pub use decode::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_MEMO, DEFAULT_MAX_VALUES, Entries, Seq, Unpickler,
    UnpicklerBuilder, ValueRef,
};
pub(crate) use encode::Pickler;
pub use encode::{dumps, encode_datapoints, encode_datapoints_into};
pub use frame::{FRAME_HEADER_BYTES, FrameDecoder, MAX_FRAME_BYTES, encode_frame, framed};
pub use value::{BigInt, Number, NumberError, Value};

/// Unpickles `payload` with the default limits (see [`Unpickler::loads`]).
///
/// ```
/// use carbon_proto::pickle::{loads, Value};
/// // pickle.dumps([1, 2.5, None], protocol=0)
/// assert_eq!(
///     loads(b"(lp0\nI1\naF2.5\naNa.")?,
///     Value::List(vec![Value::Int(1), Value::Float(2.5), Value::None]),
/// );
/// # Ok::<(), carbon_proto::pickle::PickleError>(())
/// ```
///
/// # Errors
///
/// As [`Unpickler::loads`].
pub fn loads(payload: &[u8]) -> Result<Value, PickleError> {
    Unpickler::new().loads(payload)
}

/// A bad pickle frame or payload. Offsets count bytes from the start of the payload (the byte
/// after the frame's length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The payload ends before `STOP`, or inside an opcode's argument.
    #[error("pickle data is truncated (opcode at offset {offset} needs more bytes)")]
    Truncated {
        /// Where the incomplete opcode starts (the payload's length if `STOP` is missing).
        offset: usize,
    },
    /// An opcode or its argument crosses the end of its `FRAME`, or a `FRAME` starts inside
    /// another. Python's own pickler never writes that; CPython reads such a pickle one way in
    /// `pickle.loads` and another when reading a file (as carbon does), so it is refused, as
    /// pure-Python `pickle` refuses it.
    #[error("opcode at offset {offset} crosses the end of its FRAME")]
    FrameOverrun {
        /// The opcode's offset.
        offset: usize,
    },
    /// An opcode that builds, imports or calls objects (or a set, frozenset or bytearray),
    /// which this decoder never does.
    #[error(
        "unsupported opcode {name} ({opcode:#04x}) at offset {offset}: only plain data is read"
    )]
    UnsupportedOpcode {
        /// The opcode.
        opcode: u8,
        /// Its name in Python's `pickletools`.
        name: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// A byte that is no pickle opcode.
    #[error("unknown opcode {opcode:#04x} at offset {offset}")]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// Its offset.
        offset: usize,
    },
    /// `PROTO` with a version above 5.
    #[error("unsupported pickle protocol {version} at offset {offset}")]
    UnsupportedProtocol {
        /// The version.
        version: u8,
        /// The offset of the `PROTO` opcode.
        offset: usize,
    },
    /// An opcode needs more values than the stack holds above the last `MARK`.
    #[error("stack underflow at {opcode} (offset {offset})")]
    StackUnderflow {
        /// The opcode's name.
        opcode: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// An opcode that pops to a `MARK` when there is none.
    #[error("{opcode} at offset {offset} finds no MARK")]
    MissingMark {
        /// The opcode's name.
        opcode: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// `APPEND(S)` to something that is not a list, or `SETITEM(S)` to something that is not
    /// a dict.
    #[error("{opcode} at offset {offset} needs a {expected}, found a {found}")]
    WrongTarget {
        /// The opcode's name.
        opcode: &'static str,
        /// Its offset.
        offset: usize,
        /// The type it needs.
        expected: &'static str,
        /// The type it found.
        found: &'static str,
    },
    /// `DICT` or `SETITEMS` with an odd number of items.
    #[error("odd number of items for {opcode} at offset {offset}")]
    OddItems {
        /// The opcode's name.
        opcode: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// A list, a dict, or a tuple holding one, used as a dict key (Python's `TypeError`).
    #[error("unhashable {found} used as a dict key at offset {offset}")]
    UnhashableKey {
        /// The key's type.
        found: &'static str,
        /// The offset of the opcode that sets it.
        offset: usize,
    },
    /// `GET` of a memo key that was never `PUT`.
    #[error("memo key {key} at offset {offset} was never stored")]
    MemoMissing {
        /// The key.
        key: i64,
        /// The offset of the `GET`.
        offset: usize,
    },
    /// A malformed argument: protocol 0's text (`INT`, `LONG`, `FLOAT`, `STRING`, `UNICODE`,
    /// `PUT`, `GET`) or a negative length.
    #[error("bad {opcode} argument at offset {offset}: {reason}")]
    BadArgument {
        /// The opcode's name.
        opcode: &'static str,
        /// Its offset.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string that is not UTF-8 (a Python 2 `str` is decoded as UTF-8, as carbon does).
    #[error("string at offset {offset} is not UTF-8 (invalid byte at {at} of it)")]
    InvalidUtf8 {
        /// The offset of its opcode.
        offset: usize,
        /// The offset of the first invalid byte in the string.
        at: usize,
    },
    /// The memo holds more entries than the limit.
    #[error("memo holds more than {max} entries (offset {offset})")]
    MemoFull {
        /// The limit.
        max: usize,
        /// The offset of the opcode that went over.
        offset: usize,
    },
    /// More values than the limit, while unpickling or while building a [`Value`] (where
    /// shared parts count every time they appear).
    #[error("more than {max} values")]
    TooManyValues {
        /// The limit.
        max: usize,
    },
    /// Containers nested deeper than the limit, while building a [`Value`].
    #[error("containers nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A list or dict that contains itself, which a [`Value`] cannot hold.
    #[error("a list or dict contains itself")]
    Cycle,
    /// A payload of 4 GiB or more.
    #[error("payload of {length} bytes is too long")]
    PayloadTooLong {
        /// Its length.
        length: usize,
    },
    /// The payload unpickles, but not to a list or tuple of datapoints.
    #[error("expected a list of (metric, (timestamp, value)), found a {found}")]
    NotDatapoints {
        /// Python's name of what it found.
        found: &'static str,
    },
    /// A frame header declares more bytes than the limit (carbon closes the connection).
    #[error("frame of {length} bytes is longer than the limit of {max}")]
    FrameTooLong {
        /// The declared length.
        length: u64,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {received} of {expected} bytes received")]
    TruncatedFrame {
        /// The bytes the frame needs, header included.
        expected: u64,
        /// The bytes received.
        received: u64,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<PickleError>() <= 64);
        assert!(std::mem::size_of::<crate::Error>() <= 128);
    }
}
