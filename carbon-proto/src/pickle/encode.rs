//! The pickler: protocol 2, byte for byte what CPython's C pickler (`_pickle.c`) writes for
//! the same data, which is what carbon's relay (`CarbonPickleClientProtocol`) and its cache
//! (`CacheManagementHandler`) send: `pickle.dumps(obj, protocol=2)`.
//!
//! CPython memoizes by object identity: every `str`, `list`, `dict` and non-empty `tuple` gets
//! a `BINPUT` (memo index) after it is written, and a second reference to the same object is a
//! `BINGET`. Equal strings are usually distinct objects, with one exception that real data
//! hits: the empty string and the 256 one-character strings below U+0100 are singletons in
//! CPython, so a repeated one-letter metric name (or value) is written once and fetched after.
//! This pickler reproduces that; every other string is written in full each time, as distinct
//! objects are.
//!
//! Lists and dicts are written as CPython's C pickler does: nothing for an empty one, the item
//! and `APPEND` (`SETITEM`) for a single one, and otherwise batches of 1000 between `MARK` and
//! `APPENDS` (`SETITEMS`); a dict whose last batch is full gets one more, empty, batch.

use super::opcodes as op;
use super::value::{BigInt, Number, Value};
use crate::metric::Point;

/// Items per `MARK ... APPENDS` batch, as CPython's `BATCHSIZE`.
const BATCH_SIZE: usize = 1000;

/// Writes protocol-2 opcodes, keeping CPython's memo numbering.
pub(crate) struct Pickler<'o> {
    out: &'o mut Vec<u8>,
    /// The next memo index.
    memo: u32,
    /// Memo indices of CPython's string singletons: chars U+0000-U+00FF at their code, the
    /// empty string at 256.
    singletons: [Option<u32>; 257],
}

impl<'o> Pickler<'o> {
    /// Starts a pickle (writes `PROTO 2`).
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Pickler<'o> {
        out.extend_from_slice(&[op::PROTO, 2]);
        Pickler { out, memo: 0, singletons: [None; 257] }
    }

    /// Ends the pickle (writes `STOP`).
    pub(crate) fn finish(self) {
        self.out.push(op::STOP);
    }

    fn memoize(&mut self) {
        let i = self.memo;
        self.memo = self.memo.wrapping_add(1);
        match u8::try_from(i) {
            Ok(b) => self.out.extend_from_slice(&[op::BINPUT, b]),
            Err(_) => {
                self.out.push(op::LONG_BINPUT);
                self.out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }

    fn get(&mut self, i: u32) {
        match u8::try_from(i) {
            Ok(b) => self.out.extend_from_slice(&[op::BINGET, b]),
            Err(_) => {
                self.out.push(op::LONG_BINGET);
                self.out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }

    pub(crate) fn none(&mut self) {
        self.out.push(op::NONE);
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.out.push(if b { op::NEWTRUE } else { op::NEWFALSE });
    }

    pub(crate) fn int(&mut self, v: i64) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[op::BININT1, b]);
        } else if let Ok(h) = u16::try_from(v) {
            self.out.push(op::BININT2);
            self.out.extend_from_slice(&h.to_le_bytes());
        } else if let Ok(w) = i32::try_from(v) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&w.to_le_bytes());
        } else {
            self.long(&BigInt::from(v));
        }
    }

    fn long(&mut self, b: &BigInt) {
        if let Some(i) = b.to_i64().filter(|&i| i32::try_from(i).is_ok()) {
            return self.int(i);
        }
        let bytes = b.as_signed_bytes_le();
        match (u8::try_from(bytes.len()), i32::try_from(bytes.len())) {
            (Ok(n), _) => self.out.extend_from_slice(&[op::LONG1, n]),
            (Err(_), Ok(n)) => {
                self.out.push(op::LONG4);
                self.out.extend_from_slice(&n.to_le_bytes());
            }
            // Over 2 GiB of two's complement: LONG4 cannot say it (CPython raises "int too
            // large to pickle"); no int from a pickle or a datapoint comes near.
            (Err(_), Err(_)) => return self.none(),
        }
        self.out.extend_from_slice(bytes);
    }

    pub(crate) fn float(&mut self, f: f64) {
        self.out.push(op::BINFLOAT);
        self.out.extend_from_slice(&f.to_be_bytes());
    }

    pub(crate) fn number(&mut self, n: Number) {
        match n {
            Number::Int(i) => self.int(i),
            Number::Float(f) => self.float(f),
        }
    }

    /// A `str`: `BINUNICODE` (protocol 2 has no short form), memoized; CPython's singletons are
    /// fetched from the memo when they repeat.
    pub(crate) fn str(&mut self, s: &str) {
        let singleton = singleton_slot(s);
        if let Some(i) = singleton.and_then(|slot| self.singletons.get(slot).copied().flatten()) {
            return self.get(i);
        }
        match u32::try_from(s.len()) {
            Ok(n) => {
                self.out.push(op::BINUNICODE);
                self.out.extend_from_slice(&n.to_le_bytes());
            }
            Err(_) => {
                // CPython refuses a str over 4 GiB in protocol 2; protocol 4's opcode reads.
                self.out.push(op::BINUNICODE8);
                self.out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            }
        }
        self.out.extend_from_slice(s.as_bytes());
        if let Some(slot) = singleton.and_then(|slot| self.singletons.get_mut(slot)) {
            *slot = Some(self.memo);
        }
        self.memoize();
    }

    /// A `bytes`, with protocol 3's opcodes (see [`dumps`]).
    fn bytes(&mut self, b: &[u8]) {
        if let Ok(n) = u8::try_from(b.len()) {
            self.out.extend_from_slice(&[op::SHORT_BINBYTES, n]);
        } else if let Ok(n) = u32::try_from(b.len()) {
            self.out.push(op::BINBYTES);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else {
            self.out.push(op::BINBYTES8);
            self.out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        }
        self.out.extend_from_slice(b);
        self.memoize();
    }

    /// `[]`, memoized; follow with [`list_items`](Self::list_items).
    pub(crate) fn empty_list(&mut self) {
        self.out.push(op::EMPTY_LIST);
        self.memoize();
    }

    /// `{}`, memoized; follow with [`dict_items`](Self::dict_items).
    pub(crate) fn empty_dict(&mut self) {
        self.out.push(op::EMPTY_DICT);
        self.memoize();
    }

    /// Ends a tuple of 1 to 3 items already written (`TUPLEn`), memoized.
    pub(crate) fn tuple_of(&mut self, n: u8) {
        debug_assert!((1..=3).contains(&n));
        self.out.push(op::TUPLE1 + n.clamp(1, 3) - 1);
        self.memoize();
    }

    /// Appends items to the list just written, as CPython batches them.
    pub(crate) fn list_items<I, F>(&mut self, items: I, save: F)
    where
        I: IntoIterator,
        F: FnMut(&mut Self, I::Item),
    {
        self.batched(items, save, op::APPEND, op::APPENDS, false);
    }

    /// Sets items of the dict just written, as CPython batches them; `save` writes a key and
    /// its value.
    pub(crate) fn dict_items<I, F>(&mut self, items: I, save: F)
    where
        I: IntoIterator,
        F: FnMut(&mut Self, I::Item),
    {
        self.batched(items, save, op::SETITEM, op::SETITEMS, true);
    }

    /// `full_batch_continues`: CPython's `batch_dict_exact` starts another batch after a full
    /// one even when nothing is left (a dict of 1000 items ends in an empty `MARK SETITEMS`);
    /// `batch_list_exact` does not.
    fn batched<I, F>(
        &mut self,
        items: I,
        mut save: F,
        one: u8,
        many: u8,
        full_batch_continues: bool,
    ) where
        I: IntoIterator,
        F: FnMut(&mut Self, I::Item),
    {
        let mut it = items.into_iter().peekable();
        let Some(first) = it.next() else { return };
        if it.peek().is_none() {
            save(self, first);
            self.out.push(one);
            return;
        }
        let mut pending = Some(first);
        loop {
            self.out.push(op::MARK);
            let mut n = 0;
            while n < BATCH_SIZE {
                let Some(item) = pending.take().or_else(|| it.next()) else { break };
                save(self, item);
                n += 1;
            }
            self.out.push(many);
            let more = if full_batch_continues { n == BATCH_SIZE } else { it.peek().is_some() };
            if !more {
                break;
            }
        }
    }

    /// Any value.
    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::None => self.none(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::BigInt(b) => self.long(b),
            Value::Float(f) => self.float(*f),
            Value::Str(s) => self.str(s),
            Value::Bytes(b) => self.bytes(b),
            Value::List(items) => {
                self.empty_list();
                self.list_items(items, |p, v| p.value(v));
            }
            Value::Tuple(items) => match u8::try_from(items.len()) {
                Ok(0) => self.out.push(op::EMPTY_TUPLE),
                Ok(n @ 1..=3) => {
                    for v in items {
                        self.value(v);
                    }
                    self.tuple_of(n);
                }
                _ => {
                    self.out.push(op::MARK);
                    for v in items {
                        self.value(v);
                    }
                    self.out.push(op::TUPLE);
                    self.memoize();
                }
            },
            Value::Dict(entries) => {
                self.empty_dict();
                self.dict_items(entries, |p, (k, v)| {
                    p.value(k);
                    p.value(v);
                });
            }
        }
    }
}

/// The singleton slot of `s` if CPython shares it: 256 for `""`, the code point for a single
/// character below U+0100.
fn singleton_slot(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Some(256),
        (Some(c), None) if (c as u32) < 256 => Some(c as usize),
        _ => None,
    }
}

/// `pickle.dumps(value, protocol=2)`, byte for byte as CPython writes it, with two exceptions:
/// a `bytes` is written with protocol 3's `SHORT_BINBYTES`/`BINBYTES` (CPython's protocol 2
/// calls `_codecs.encode` through `REDUCE`, which no safe unpickler accepts; every Python 3
/// reads these), and a `dict` with a repeated key keeps both entries.
///
/// ```
/// use carbon_proto::pickle::{dumps, Value};
/// let v = Value::Dict(vec![(Value::str("value"), Value::str("average"))]);
/// assert_eq!(dumps(&v), b"\x80\x02}q\x00X\x05\x00\x00\x00valueq\x01X\x07\x00\x00\x00averageq\x02s.");
/// ```
pub fn dumps(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = Pickler::new(&mut out);
    p.value(value);
    p.finish();
    out
}

/// What carbon's relay sends for `points` (`pickle.dumps([(metric, (timestamp, value)), ...],
/// protocol=2)`), without the length prefix ([`encode_frame`](super::encode_frame) adds it).
///
/// Timestamps and values are written as floats, as carbon's relay writes them: its receivers
/// turn both into floats. A relay whose `MIN_TIMESTAMP_RESOLUTION` is set sends int
/// timestamps; [`encode_datapoints_into`] takes [`Number`]s for that.
///
/// ```
/// use carbon_proto::{MetricName, Point};
/// use carbon_proto::pickle::{encode_datapoints, Unpickler};
/// let points = [Point::new(MetricName::new("a.b")?, 1_700_000_000.0, 1.5)];
/// let payload = encode_datapoints(&points);
/// assert_eq!(Unpickler::new().decode_datapoints(&payload)?.points, points);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_datapoints(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + points.len() * 48);
    encode_datapoints_into(
        &mut out,
        points.iter().map(|p| {
            (
                p.name.as_str(),
                Number::Float(p.datapoint.timestamp),
                Number::Float(p.datapoint.value),
            )
        }),
    );
    out
}

/// Appends the pickle of `[(name, (timestamp, value)), ...]` to `out`, with each number an int
/// or a float as given (see [`encode_datapoints`]).
pub fn encode_datapoints_into<'a, I>(out: &mut Vec<u8>, items: I)
where
    I: IntoIterator<Item = (&'a str, Number, Number)>,
{
    let mut p = Pickler::new(out);
    p.empty_list();
    p.list_items(items, |p, (name, timestamp, value)| {
        p.str(name);
        p.number(timestamp);
        p.number(value);
        p.tuple_of(2);
        p.tuple_of(2);
    });
    p.finish();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn writes_what_cpython_writes() {
        // pickle.dumps([('a.b', (1700000000.0, 1.5)), ('a', (1.0, 2.0)), ('a', (1, 2))], 2)
        let mut out = Vec::new();
        encode_datapoints_into(
            &mut out,
            [
                ("a.b", Number::Float(1_700_000_000.0), Number::Float(1.5)),
                ("a", Number::Float(1.0), Number::Float(2.0)),
                ("a", Number::Int(1), Number::Int(2)),
            ],
        );
        let expected = b"\x80\x02]q\x00(X\x03\x00\x00\x00a.bq\x01GA\xd9T\xfc@\x00\x00\x00G?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03X\x01\x00\x00\x00aq\x04G?\xf0\x00\x00\x00\x00\x00\x00G@\x00\x00\x00\x00\x00\x00\x00\x86q\x05\x86q\x06h\x04K\x01K\x02\x86q\x07\x86q\x08e.";
        assert_eq!(out, expected);
    }

    #[test]
    fn ints_take_the_smallest_opcode() {
        let enc = |i: i64| {
            let v = dumps(&Value::Int(i));
            v[2..v.len() - 1].to_vec()
        };
        assert_eq!(enc(0), b"K\x00");
        assert_eq!(enc(256), b"M\x00\x01");
        assert_eq!(enc(65536), b"J\x00\x00\x01\x00");
        assert_eq!(enc(-1), b"J\xff\xff\xff\xff");
        assert_eq!(enc(1 << 31), b"\x8a\x05\x00\x00\x00\x80\x00");
        assert_eq!(enc(-(1 << 31) - 1), b"\x8a\x05\xff\xff\xff\x7f\xff");
        assert_eq!(enc(i64::MIN), b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80");
    }

    #[test]
    fn empty_and_single_strings_are_singletons() {
        let v = Value::List(vec![Value::str(""), Value::str(""), Value::str("é"), Value::str("é")]);
        let out = dumps(&v);
        assert_eq!(
            out,
            b"\x80\x02]q\x00(X\x00\x00\x00\x00q\x01h\x01X\x02\x00\x00\x00\xc3\xa9q\x02h\x02e."
        );
    }
}
