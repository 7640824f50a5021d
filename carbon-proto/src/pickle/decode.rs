//! The unpickler: a stack machine over the opcodes of plain data, which never builds objects.
//!
//! Containers live in arenas (`lists`, `dicts`, `tuples`) and the stack and memo hold small
//! `Item`s that point into them, so a memo reference shares its list as Python's does (a list
//! fetched with `GET` and then appended to is the same list everywhere), costs O(1), and a
//! pickle that references one big list many times stays small. Strings point into the payload
//! (or, for protocol 0's escaped forms, into a scratch buffer), so the common binary opcodes
//! copy nothing.
//!
//! What it costs is bounded: every pushed value counts against `max_values`, the memo against
//! `max_memo`; lengths read from the input are checked against the bytes that remain and never
//! used to reserve memory. Building an owned [`Value`] from the arenas (where shared parts are
//! copied) counts every produced value against `max_values` again and stops at `max_depth`
//! levels of nesting, so neither a cycle nor a "billion laughs" memo bomb can exhaust memory.
#![warn(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::PickleError;
use super::opcodes::{self as op, display_name};
use super::text::{self, IntArg};
use super::value::{BigInt, NumberError, Value, float_from_bytes, float_from_str};

/// Default nesting limit of [`ValueRef::to_value`]: carbon's payloads nest 3 or 4 levels.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default memo limit (entries).
pub const DEFAULT_MAX_MEMO: usize = 1 << 22;
/// Default value budget: values pushed while unpickling, and values built by
/// [`ValueRef::to_value`]. About 40 bytes each at most.
pub const DEFAULT_MAX_VALUES: usize = 1 << 22;

/// Vectors keep at most this many elements of capacity between payloads.
const RETAINED_CAPACITY: usize = 1 << 14;

/// A string or bytes value: where its bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Span {
    start: u32,
    len: u32,
    /// In the scratch buffer (unescaped protocol-0 text) rather than the payload.
    scratch: bool,
}

/// A value on the stack or in the memo; containers are indices into the arenas.
#[derive(Clone, Copy, Debug)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Big(u32),
    Float(f64),
    Str(Span),
    Bytes(Span),
    List(u32),
    Tuple(u32),
    Dict(u32),
}

impl Item {
    fn type_name(self) -> &'static str {
        match self {
            Item::None => "NoneType",
            Item::Bool(_) => "bool",
            Item::Int(_) | Item::Big(_) => "int",
            Item::Float(_) => "float",
            Item::Str(_) => "str",
            Item::Bytes(_) => "bytes",
            Item::List(_) => "list",
            Item::Tuple(_) => "tuple",
            Item::Dict(_) => "dict",
        }
    }
}

/// A tuple: a range of `tuple_items`, and whether it can be a dict key.
#[derive(Clone, Copy, Debug)]
struct TupleNode {
    start: u32,
    len: u32,
    hashable: bool,
}

/// Sets the limits of an [`Unpickler`].
///
/// ```
/// use carbon_proto::pickle::UnpicklerBuilder;
/// let mut unpickler = UnpicklerBuilder::new().max_depth(8).max_values(10_000).build();
/// assert!(unpickler.loads(b"\x80\x02]q\x00.").is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct UnpicklerBuilder {
    max_depth: usize,
    max_memo: usize,
    max_values: usize,
    classes: Vec<(String, String)>,
}

impl Default for UnpicklerBuilder {
    fn default() -> UnpicklerBuilder {
        UnpicklerBuilder::new()
    }
}

impl UnpicklerBuilder {
    /// The default limits.
    pub fn new() -> UnpicklerBuilder {
        UnpicklerBuilder {
            max_depth: DEFAULT_MAX_DEPTH,
            max_memo: DEFAULT_MAX_MEMO,
            max_values: DEFAULT_MAX_VALUES,
            classes: Vec::new(),
        }
    }

    /// Classes whose instances may appear, read as the dict of their state: `GLOBAL` or
    /// `STACK_GLOBAL` naming one of these `(module, name)` pairs, then `NEWOBJ` and `BUILD`,
    /// give a dict of the attributes `BUILD` sets (nothing is called or constructed). This is
    /// what graphite-web's cluster answers need: `/metrics/find?format=pickle` pickles
    /// `graphite.intervals.IntervalSet` objects, which graphite-web's own safe unpickler
    /// allows by the same kind of list. Any other class stays an error. Default: none.
    pub fn allow_classes<'s>(
        &mut self,
        classes: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> &mut UnpicklerBuilder {
        self.classes.extend(classes.into_iter().map(|(m, n)| (m.to_string(), n.to_string())));
        self
    }

    /// How deeply containers may nest in a [`Value`] built by [`ValueRef::to_value`]. Default
    /// [`DEFAULT_MAX_DEPTH`] (64). The walking API ([`ValueRef`]) needs no limit: it does not
    /// recurse.
    pub fn max_depth(&mut self, depth: usize) -> &mut UnpicklerBuilder {
        self.max_depth = depth;
        self
    }

    /// How many memo entries a pickle may store. Default [`DEFAULT_MAX_MEMO`] (2^22). A payload
    /// cannot store more entries than it has bytes (Python's pickler stores about three per
    /// datapoint), so this matters only for payloads over 4 MiB: raise it with the frame
    /// limit.
    pub fn max_memo(&mut self, entries: usize) -> &mut UnpicklerBuilder {
        self.max_memo = entries;
        self
    }

    /// How many values a pickle may push, and how many a built [`Value`] may hold (shared
    /// parts count each time they appear). Default [`DEFAULT_MAX_VALUES`] (2^22). A payload
    /// cannot push more values than it has bytes, so this matters only for payloads larger
    /// than the limit, and for [`Value`]s built from pickles that share containers.
    pub fn max_values(&mut self, values: usize) -> &mut UnpicklerBuilder {
        self.max_values = values;
        self
    }

    /// The unpickler.
    pub fn build(&self) -> Unpickler {
        Unpickler {
            max_depth: self.max_depth,
            max_memo: self.max_memo,
            max_values: self.max_values,
            classes: self.classes.clone(),
            class_dicts: std::collections::HashSet::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Vec::new(),
            sparse_memo: HashMap::new(),
            memo_len: 0,
            lists: Vec::new(),
            dicts: Vec::new(),
            tuples: Vec::new(),
            tuple_items: Vec::new(),
            bigs: Vec::new(),
            scratch: Vec::new(),
            values: 0,
        }
    }
}

/// Reads pickles of plain data (see the [module docs](super)), reusing its buffers from one
/// payload to the next.
#[derive(Debug, Clone)]
pub struct Unpickler {
    max_depth: usize,
    max_memo: usize,
    max_values: usize,
    /// Classes allowed as objects (see [`UnpicklerBuilder::allow_classes`]).
    classes: Vec<(String, String)>,
    /// Dicts that stand for an allowed class (pushed by `GLOBAL`/`STACK_GLOBAL`).
    class_dicts: std::collections::HashSet<u32>,
    /// The value stack.
    stack: Vec<Item>,
    /// Stack lengths at each open `MARK`; the last one is the fence nothing may pop below.
    marks: Vec<usize>,
    /// Memo entries under small keys (keys are dense in practice: 0, 1, 2...).
    memo: Vec<Option<Item>>,
    /// Memo entries under keys beyond the dense part.
    sparse_memo: HashMap<u64, Item>,
    /// How many distinct keys are set (`len(memo)`, the key `MEMOIZE` uses).
    memo_len: usize,
    lists: Vec<Vec<Item>>,
    dicts: Vec<Vec<(Item, Item)>>,
    tuples: Vec<TupleNode>,
    tuple_items: Vec<Item>,
    bigs: Vec<BigInt>,
    /// Unescaped text of protocol 0's `STRING` and `UNICODE`.
    scratch: Vec<u8>,
    /// Values pushed so far.
    values: usize,
}

impl Default for Unpickler {
    fn default() -> Unpickler {
        Unpickler::new()
    }
}

/// The payload being read, with Python's framing rule (pure-Python `pickle._Unframer`, which
/// CPython's C unpickler only half follows): inside a `FRAME`, an opcode and its argument must
/// end by the frame's end.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// The end of the current frame.
    frame_end: Option<usize>,
    /// The last failed read crossed the end of a frame (rather than the end of the data).
    overran: bool,
}

impl<'a> Reader<'a> {
    /// Whether `n` bytes may be read here; leaves an exhausted frame.
    fn frame_allows(&mut self, n: usize) -> bool {
        match self.frame_end {
            Some(end) if self.pos >= end && n != 0 => {
                self.frame_end = None;
                true
            }
            Some(end) if self.pos.saturating_add(n) > end => {
                self.overran = true;
                false
            }
            _ => true,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if !self.frame_allows(n) {
            return None;
        }
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|s| s.try_into().ok())
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).and_then(|s| s.first().copied())
    }

    /// A line, without its `\n`; `None` if there is no `\n` (in the frame).
    fn line(&mut self) -> Option<&'a [u8]> {
        self.frame_allows(1);
        let limit = self.frame_end.unwrap_or(self.data.len());
        let rest = self.data.get(self.pos..limit)?;
        let Some(n) = memchr::memchr(b'\n', rest) else {
            self.overran = self.frame_end.is_some();
            return None;
        };
        let line = rest.get(..n)?;
        self.pos += n + 1;
        Some(line)
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// `FRAME`: a frame may not start inside another.
    fn start_frame(&mut self, len: usize, at: At) -> Result<(), PickleError> {
        if self.frame_end.is_some_and(|end| self.pos < end) {
            return Err(PickleError::FrameOverrun { offset: at.offset });
        }
        self.frame_end = None;
        match self.pos.checked_add(len) {
            Some(end) if end <= self.data.len() => {
                self.frame_end = Some(end);
                Ok(())
            }
            _ => Err(at.truncated()),
        }
    }
}

/// The opcode being run, for errors.
#[derive(Clone, Copy)]
struct At {
    op: u8,
    offset: usize,
}

impl At {
    fn truncated(self) -> PickleError {
        PickleError::Truncated { offset: self.offset }
    }
    /// A read failed: past the end of the data, or of the frame.
    fn short(self, r: &Reader<'_>) -> PickleError {
        if r.overran { PickleError::FrameOverrun { offset: self.offset } } else { self.truncated() }
    }
    fn underflow(self) -> PickleError {
        PickleError::StackUnderflow { opcode: display_name(self.op), offset: self.offset }
    }
    fn bad(self, reason: &'static str) -> PickleError {
        PickleError::BadArgument { opcode: display_name(self.op), offset: self.offset, reason }
    }
}

impl Unpickler {
    /// An unpickler with the default limits (see [`UnpicklerBuilder`]).
    pub fn new() -> Unpickler {
        UnpicklerBuilder::new().build()
    }

    /// Unpickles `payload` into an owned [`Value`].
    ///
    /// ```
    /// use carbon_proto::pickle::{Unpickler, Value};
    /// let v = Unpickler::new().loads(b"\x80\x02X\x03\x00\x00\x00a.bq\x00K\x07\x86q\x01.")?;
    /// assert_eq!(v, Value::Tuple(vec![Value::str("a.b"), Value::Int(7)]));
    /// # Ok::<(), carbon_proto::pickle::PickleError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`PickleError`] if the payload is not a pickle of plain data, or exceeds a limit.
    pub fn loads(&mut self, payload: &[u8]) -> Result<Value, PickleError> {
        self.loads_ref(payload)?.to_value()
    }

    /// Unpickles `payload` and returns a view of the result that borrows it, without building
    /// owned values (see [`ValueRef`]).
    ///
    /// # Errors
    ///
    /// A [`PickleError`] if the payload is not a pickle of plain data, or exceeds a limit.
    pub fn loads_ref<'a>(&'a mut self, payload: &'a [u8]) -> Result<ValueRef<'a>, PickleError> {
        let item = self.run(payload)?;
        Ok(ValueRef { doc: Doc { u: self, input: payload }, item })
    }

    fn reset(&mut self) {
        fn clear<T>(v: &mut Vec<T>) {
            v.clear();
            v.shrink_to(RETAINED_CAPACITY);
        }
        clear(&mut self.stack);
        clear(&mut self.marks);
        clear(&mut self.memo);
        self.sparse_memo.clear();
        self.sparse_memo.shrink_to(RETAINED_CAPACITY);
        self.memo_len = 0;
        clear(&mut self.lists);
        clear(&mut self.dicts);
        clear(&mut self.tuples);
        clear(&mut self.tuple_items);
        clear(&mut self.bigs);
        clear(&mut self.scratch);
        self.class_dicts.clear();
        self.values = 0;
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, item: Item) -> Result<(), PickleError> {
        self.values += 1;
        if self.values > self.max_values {
            return Err(PickleError::TooManyValues { max: self.max_values });
        }
        self.stack.push(item);
        Ok(())
    }

    fn pop(&mut self, at: At) -> Result<Item, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(at.underflow());
        }
        self.stack.pop().ok_or_else(|| at.underflow())
    }

    fn top(&self, at: At) -> Result<Item, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(at.underflow());
        }
        self.stack.last().copied().ok_or_else(|| at.underflow())
    }

    fn pop_mark(&mut self, at: At) -> Result<usize, PickleError> {
        self.marks
            .pop()
            .ok_or(PickleError::MissingMark { opcode: display_name(at.op), offset: at.offset })
    }

    fn index(n: usize) -> Result<u32, PickleError> {
        // Arenas hold fewer entries than the payload has bytes, which is below 2^32.
        u32::try_from(n).map_err(|_| PickleError::PayloadTooLong { length: n })
    }

    fn hashable(&self, item: Item) -> bool {
        match item {
            Item::List(_) | Item::Dict(_) => false,
            Item::Tuple(i) => self.tuples.get(i as usize).is_some_and(|t| t.hashable),
            _ => true,
        }
    }

    fn new_tuple(&mut self, from: usize) -> Result<Item, PickleError> {
        let start = Self::index(self.tuple_items.len())?;
        let items = self.stack.get(from..).unwrap_or_default();
        let hashable = items.iter().all(|&i| self.hashable(i));
        self.tuple_items.extend_from_slice(items);
        self.stack.truncate(from);
        let len = Self::index(self.tuple_items.len())? - start;
        let id = Self::index(self.tuples.len())?;
        self.tuples.push(TupleNode { start, len, hashable });
        Ok(Item::Tuple(id))
    }

    fn new_list(&mut self, from: usize) -> Result<Item, PickleError> {
        let id = Self::index(self.lists.len())?;
        let items = self.stack.split_off(from.min(self.stack.len()));
        self.lists.push(items);
        Ok(Item::List(id))
    }

    /// The pairs of `stack[from..]` for a dict, checking that keys are hashable.
    fn take_pairs(&mut self, from: usize, at: At) -> Result<Vec<(Item, Item)>, PickleError> {
        let items = self.stack.get(from..).unwrap_or_default();
        if !items.len().is_multiple_of(2) {
            return Err(PickleError::OddItems { opcode: display_name(at.op), offset: at.offset });
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            if let [k, v] = *pair {
                if !self.hashable(k) {
                    return Err(PickleError::UnhashableKey {
                        found: k.type_name(),
                        offset: at.offset,
                    });
                }
                pairs.push((k, v));
            }
        }
        self.stack.truncate(from);
        Ok(pairs)
    }

    /// `APPEND`/`APPENDS`: appends `stack[x..]` to the list at `stack[x - 1]` (CPython's
    /// `do_append`, with its checks in its order).
    fn do_append(&mut self, x: usize, at: At) -> Result<(), PickleError> {
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(at.underflow());
        }
        if x == len {
            return Ok(());
        }
        let target = self.stack.get(x - 1).copied().ok_or_else(|| at.underflow())?;
        let Item::List(id) = target else {
            return Err(PickleError::WrongTarget {
                opcode: display_name(at.op),
                offset: at.offset,
                expected: "list",
                found: target.type_name(),
            });
        };
        if let Some(list) = self.lists.get_mut(id as usize) {
            list.extend(self.stack.drain(x..));
        }
        self.stack.truncate(x);
        Ok(())
    }

    /// `SETITEM`/`SETITEMS`: sets the pairs of `stack[x..]` in the dict at `stack[x - 1]`.
    fn do_setitems(&mut self, x: usize, at: At) -> Result<(), PickleError> {
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(at.underflow());
        }
        if x == len {
            return Ok(());
        }
        if !(len - x).is_multiple_of(2) {
            return Err(PickleError::OddItems { opcode: display_name(at.op), offset: at.offset });
        }
        let target = self.stack.get(x - 1).copied().ok_or_else(|| at.underflow())?;
        let Item::Dict(id) = target else {
            return Err(PickleError::WrongTarget {
                opcode: display_name(at.op),
                offset: at.offset,
                expected: "dict",
                found: target.type_name(),
            });
        };
        let pairs = self.take_pairs(x, at)?;
        if let Some(dict) = self.dicts.get_mut(id as usize) {
            dict.extend(pairs);
        }
        Ok(())
    }

    fn memo_put(&mut self, key: u64, item: Item, at: At) -> Result<(), PickleError> {
        let dense = usize::try_from(key).ok().filter(|&k| k <= self.memo.len());
        let new = match dense {
            Some(k) if k < self.memo.len() => {
                self.memo.get_mut(k).and_then(|slot| slot.replace(item)).is_none()
            }
            Some(_) => {
                self.memo.push(Some(item));
                self.sparse_memo.remove(&key).is_none()
            }
            None => self.sparse_memo.insert(key, item).is_none(),
        };
        if new {
            self.memo_len += 1;
            if self.memo_len > self.max_memo {
                return Err(PickleError::MemoFull { max: self.max_memo, offset: at.offset });
            }
        }
        Ok(())
    }

    fn memo_get(&self, key: i64, at: At) -> Result<Item, PickleError> {
        let found = u64::try_from(key).ok().and_then(|k| match usize::try_from(k) {
            Ok(i) if i < self.memo.len() => self.memo.get(i).copied().flatten(),
            _ => self.sparse_memo.get(&k).copied(),
        });
        found.ok_or(PickleError::MemoMissing { key, offset: at.offset })
    }

    fn span(&self, start: usize, len: usize, scratch: bool) -> Result<Span, PickleError> {
        Ok(Span { start: Self::index(start)?, len: Self::index(len)?, scratch })
    }

    /// A `str` from the payload: checks that it is UTF-8.
    fn text_item(&self, r: &Reader<'_>, len: usize, at: At) -> Result<Item, PickleError> {
        let start = r.pos - len;
        let bytes = r.data.get(start..r.pos).unwrap_or_default();
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(PickleError::InvalidUtf8 { offset: at.offset, at: e.valid_up_to() });
        }
        Ok(Item::Str(self.span(start, len, false)?))
    }

    /// A `str` unescaped into the scratch buffer from `scratch_start` on.
    fn scratch_text_item(&self, scratch_start: usize, at: At) -> Result<Item, PickleError> {
        let bytes = self.scratch.get(scratch_start..).unwrap_or_default();
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(PickleError::InvalidUtf8 { offset: at.offset, at: e.valid_up_to() });
        }
        Ok(Item::Str(self.span(scratch_start, bytes.len(), true)?))
    }

    fn int_item(&mut self, arg: IntArg) -> Result<Item, PickleError> {
        Ok(match arg {
            IntArg::Bool(b) => Item::Bool(b),
            IntArg::Int(i) => Item::Int(i),
            IntArg::Big(b) => {
                let id = Self::index(self.bigs.len())?;
                self.bigs.push(b);
                Item::Big(id)
            }
        })
    }

    fn long_item(&mut self, le: &[u8]) -> Result<Item, PickleError> {
        let big = BigInt::from_signed_bytes_le(le);
        let arg = match big.to_i64() {
            Some(i) => IntArg::Int(i),
            None => IntArg::Big(big),
        };
        self.int_item(arg)
    }

    /// `GLOBAL`, `STACK_GLOBAL`, `NEWOBJ` and `BUILD` for allowed classes: a class is a
    /// marked empty dict, `NEWOBJ` replaces it with a fresh dict (the instance) and `BUILD`
    /// adds the state's items to it.
    fn object_op(&mut self, r: &mut Reader<'_>, at: At) -> Result<(), PickleError> {
        let unsupported = || PickleError::UnsupportedOpcode {
            opcode: at.op,
            name: display_name(at.op),
            offset: at.offset,
        };
        match at.op {
            op::GLOBAL | op::STACK_GLOBAL => {
                let (module, name) = if at.op == op::GLOBAL {
                    let module = r.line().ok_or_else(|| at.short(r))?;
                    let name = r.line().ok_or_else(|| at.short(r))?;
                    (
                        String::from_utf8_lossy(module).into_owned(),
                        String::from_utf8_lossy(name).into_owned(),
                    )
                } else {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    let doc = Doc { u: self, input: r.data };
                    match (module, name) {
                        (Item::Str(m), Item::Str(n)) => {
                            (doc.str(m).to_string(), doc.str(n).to_string())
                        }
                        _ => return Err(at.bad("module and name must be strings")),
                    }
                };
                if !self.classes.iter().any(|(m, n)| *m == module && *n == name) {
                    return Err(unsupported());
                }
                let id = Self::index(self.dicts.len())?;
                self.dicts.push(Vec::new());
                self.class_dicts.insert(id);
                self.push(Item::Dict(id))
            }
            op::NEWOBJ => {
                let args = self.pop(at)?;
                let class = self.pop(at)?;
                match (class, args) {
                    (Item::Dict(c), Item::Tuple(_)) if self.class_dicts.contains(&c) => {
                        let id = Self::index(self.dicts.len())?;
                        self.dicts.push(Vec::new());
                        self.push(Item::Dict(id))
                    }
                    _ => Err(unsupported()),
                }
            }
            _ => {
                // BUILD: the state is a dict, or a (dict or None, slots dict) pair.
                let state = self.pop(at)?;
                let target = self.top(at)?;
                let Item::Dict(id) = target else { return Err(unsupported()) };
                if self.class_dicts.contains(&id) {
                    return Err(unsupported());
                }
                let mut parts = Vec::new();
                match state {
                    Item::Dict(s) => parts.push(s),
                    Item::Tuple(t) => {
                        let doc = Doc { u: self, input: r.data };
                        for item in doc.items(Item::Tuple(t)).unwrap_or_default() {
                            match *item {
                                Item::Dict(s) => parts.push(s),
                                Item::None => {}
                                _ => return Err(at.bad("object state must be dicts")),
                            }
                        }
                    }
                    _ => return Err(at.bad("object state must be a dict")),
                }
                for s in parts {
                    let pairs = self.dicts.get(s as usize).cloned().unwrap_or_default();
                    if let Some(dict) = self.dicts.get_mut(id as usize) {
                        dict.extend(pairs);
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs the machine to `STOP` and returns the top of the stack.
    fn run(&mut self, input: &[u8]) -> Result<Item, PickleError> {
        self.reset();
        if u32::try_from(input.len()).is_err() {
            return Err(PickleError::PayloadTooLong { length: input.len() });
        }
        let mut r = Reader { data: input, pos: 0, frame_end: None, overran: false };
        loop {
            let offset = r.pos;
            let Some(code) = r.byte() else {
                return Err(if r.overran {
                    PickleError::FrameOverrun { offset }
                } else {
                    PickleError::Truncated { offset }
                });
            };
            let at = At { op: code, offset };
            match code {
                op::STOP => return self.pop(at),
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop(at)?;
                    }
                }
                op::POP_MARK => {
                    let mark = self.pop_mark(at)?;
                    self.stack.truncate(mark);
                }
                op::DUP => {
                    let top = self.top(at)?;
                    self.push(top)?;
                }
                op::PROTO => {
                    let version = r.byte().ok_or_else(|| at.short(&r))?;
                    if version > op::HIGHEST_PROTOCOL {
                        return Err(PickleError::UnsupportedProtocol { version, offset });
                    }
                }
                op::FRAME => {
                    if r.frame_end.is_some_and(|end| r.pos < end) {
                        return Err(PickleError::FrameOverrun { offset });
                    }
                    let len = u64::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?);
                    let len = usize::try_from(len).map_err(|_| at.truncated())?;
                    r.start_frame(len, at)?;
                }
                op::NONE => self.push(Item::None)?,
                op::NEWTRUE => self.push(Item::Bool(true))?,
                op::NEWFALSE => self.push(Item::Bool(false))?,
                op::INT => {
                    let line = r.line().ok_or_else(|| at.short(&r))?;
                    let arg = text::int_arg(line).map_err(|e| at.bad(e))?;
                    let item = self.int_item(arg)?;
                    self.push(item)?;
                }
                op::BININT => {
                    let v = i32::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?);
                    self.push(Item::Int(i64::from(v)))?;
                }
                op::BININT1 => {
                    let v = r.byte().ok_or_else(|| at.short(&r))?;
                    self.push(Item::Int(i64::from(v)))?;
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?);
                    self.push(Item::Int(i64::from(v)))?;
                }
                op::LONG => {
                    let line = r.line().ok_or_else(|| at.short(&r))?;
                    let arg = text::long_arg(line).map_err(|e| at.bad(e))?;
                    let item = self.int_item(arg)?;
                    self.push(item)?;
                }
                op::LONG1 | op::LONG4 => {
                    let n = if code == op::LONG1 {
                        usize::from(r.byte().ok_or_else(|| at.short(&r))?)
                    } else {
                        let n = i32::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?);
                        usize::try_from(n).map_err(|_| at.bad("negative length"))?
                    };
                    let le = r.take(n).ok_or_else(|| at.short(&r))?;
                    let item = self.long_item(le)?;
                    self.push(item)?;
                }
                op::FLOAT => {
                    let line = r.line().ok_or_else(|| at.short(&r))?;
                    let v = text::float_arg(line).map_err(|e| at.bad(e))?;
                    self.push(Item::Float(v))?;
                }
                op::BINFLOAT => {
                    let v = f64::from_be_bytes(r.array().ok_or_else(|| at.short(&r))?);
                    self.push(Item::Float(v))?;
                }
                op::STRING | op::UNICODE => {
                    let line = r.line().ok_or_else(|| at.short(&r))?;
                    let start = self.scratch.len();
                    let res = if code == op::STRING {
                        text::string_arg(line, &mut self.scratch)
                    } else {
                        text::unicode_arg(line, &mut self.scratch)
                    };
                    res.map_err(|e| at.bad(e))?;
                    let item = self.scratch_text_item(start, at)?;
                    self.push(item)?;
                }
                op::BINSTRING
                | op::SHORT_BINSTRING
                | op::BINUNICODE
                | op::SHORT_BINUNICODE
                | op::BINUNICODE8
                | op::BINBYTES
                | op::SHORT_BINBYTES
                | op::BINBYTES8 => {
                    let n = read_length(&mut r, code, at)?;
                    r.take(n).ok_or_else(|| at.short(&r))?;
                    let item = if matches!(code, op::BINBYTES | op::SHORT_BINBYTES | op::BINBYTES8)
                    {
                        Item::Bytes(self.span(r.pos - n, n, false)?)
                    } else {
                        self.text_item(&r, n, at)?
                    };
                    self.push(item)?;
                }
                op::EMPTY_LIST => {
                    let item = self.new_list(self.stack.len())?;
                    self.push(item)?;
                }
                op::LIST => {
                    let mark = self.pop_mark(at)?;
                    let item = self.new_list(mark)?;
                    self.push(item)?;
                }
                op::APPEND => {
                    let x = self.stack.len().checked_sub(1).ok_or_else(|| at.underflow())?;
                    self.do_append(x, at)?;
                }
                op::APPENDS => {
                    let mark = self.pop_mark(at)?;
                    self.do_append(mark, at)?;
                }
                op::EMPTY_TUPLE => {
                    let item = self.new_tuple(self.stack.len())?;
                    self.push(item)?;
                }
                op::TUPLE => {
                    let mark = self.pop_mark(at)?;
                    let item = self.new_tuple(mark)?;
                    self.push(item)?;
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1) + 1;
                    let from = self.stack.len().checked_sub(n).ok_or_else(|| at.underflow())?;
                    if from < self.fence() {
                        return Err(at.underflow());
                    }
                    let item = self.new_tuple(from)?;
                    self.push(item)?;
                }
                op::EMPTY_DICT => {
                    let id = Self::index(self.dicts.len())?;
                    self.dicts.push(Vec::new());
                    self.push(Item::Dict(id))?;
                }
                op::DICT => {
                    let mark = self.pop_mark(at)?;
                    let pairs = self.take_pairs(mark, at)?;
                    let id = Self::index(self.dicts.len())?;
                    self.dicts.push(pairs);
                    self.push(Item::Dict(id))?;
                }
                op::SETITEM => {
                    let x = self.stack.len().checked_sub(2).ok_or_else(|| at.underflow())?;
                    self.do_setitems(x, at)?;
                }
                op::SETITEMS => {
                    let mark = self.pop_mark(at)?;
                    self.do_setitems(mark, at)?;
                }
                op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => {
                    let key = match code {
                        op::PUT => {
                            let line = r.line().ok_or_else(|| at.short(&r))?;
                            let key = text::memo_key_arg(line).map_err(|e| at.bad(e))?;
                            u64::try_from(key).map_err(|_| at.bad("negative PUT argument"))?
                        }
                        op::BINPUT => u64::from(r.byte().ok_or_else(|| at.short(&r))?),
                        op::LONG_BINPUT => {
                            u64::from(u32::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?))
                        }
                        _ => self.memo_len as u64,
                    };
                    let top = self.top(at)?;
                    self.memo_put(key, top, at)?;
                }
                op::GET | op::BINGET | op::LONG_BINGET => {
                    let key = match code {
                        op::GET => {
                            let line = r.line().ok_or_else(|| at.short(&r))?;
                            text::memo_key_arg(line).map_err(|e| at.bad(e))?
                        }
                        op::BINGET => i64::from(r.byte().ok_or_else(|| at.short(&r))?),
                        _ => i64::from(u32::from_le_bytes(r.array().ok_or_else(|| at.short(&r))?)),
                    };
                    let item = self.memo_get(key, at)?;
                    self.push(item)?;
                }
                op::GLOBAL | op::STACK_GLOBAL | op::NEWOBJ | op::BUILD
                    if !self.classes.is_empty() =>
                {
                    self.object_op(&mut r, at)?;
                }
                _ => {
                    return Err(match op::name(code) {
                        Some(name) => PickleError::UnsupportedOpcode { opcode: code, name, offset },
                        None => PickleError::UnknownOpcode { opcode: code, offset },
                    });
                }
            }
        }
    }
}

/// The length argument of a string or bytes opcode, checked against what remains.
fn read_length(r: &mut Reader<'_>, code: u8, at: At) -> Result<usize, PickleError> {
    let n: u64 = match code {
        op::SHORT_BINSTRING | op::SHORT_BINUNICODE | op::SHORT_BINBYTES => {
            u64::from(r.byte().ok_or_else(|| at.short(r))?)
        }
        op::BINSTRING => {
            let n = i32::from_le_bytes(r.array().ok_or_else(|| at.short(r))?);
            u64::try_from(n).map_err(|_| at.bad("negative length"))?
        }
        op::BINUNICODE | op::BINBYTES => {
            u64::from(u32::from_le_bytes(r.array().ok_or_else(|| at.short(r))?))
        }
        _ => u64::from_le_bytes(r.array().ok_or_else(|| at.short(r))?),
    };
    match usize::try_from(n) {
        Ok(n) if n <= r.remaining() => Ok(n),
        _ => Err(at.truncated()),
    }
}

/// The unpickler's arenas and the payload they point into.
#[derive(Clone, Copy)]
struct Doc<'a> {
    u: &'a Unpickler,
    input: &'a [u8],
}

impl<'a> Doc<'a> {
    fn bytes(self, span: Span) -> &'a [u8] {
        let source: &'a [u8] = if span.scratch { &self.u.scratch } else { self.input };
        let start = span.start as usize;
        source.get(start..start + span.len as usize).unwrap_or_default()
    }

    fn str(self, span: Span) -> &'a str {
        // Checked when the string was read.
        std::str::from_utf8(self.bytes(span)).unwrap_or_default()
    }

    fn items(self, item: Item) -> Option<&'a [Item]> {
        match item {
            Item::List(i) => self.u.lists.get(i as usize).map(Vec::as_slice),
            Item::Tuple(i) => {
                let t = self.u.tuples.get(i as usize)?;
                let start = t.start as usize;
                self.u.tuple_items.get(start..start + t.len as usize)
            }
            _ => None,
        }
    }

    fn entries(self, item: Item) -> Option<&'a [(Item, Item)]> {
        match item {
            Item::Dict(i) => self.u.dicts.get(i as usize).map(Vec::as_slice),
            _ => None,
        }
    }
}

/// A view of an unpickled value, borrowing the [`Unpickler`] and the payload: reading a
/// pickle this way copies no strings and builds no containers.
///
/// ```
/// use carbon_proto::pickle::Unpickler;
/// // pickle.dumps({'type': 'cache-query', 'metric': 'a.b'}, protocol=2)
/// let payload = b"\x80\x02}q\x00(X\x04\x00\x00\x00typeq\x01X\x0b\x00\x00\x00cache-queryq\x02X\x06\x00\x00\x00metricq\x03X\x03\x00\x00\x00a.bq\x04u.";
/// let mut unpickler = Unpickler::new();
/// let request = unpickler.loads_ref(payload)?;
/// assert_eq!(request.get("metric").and_then(|m| m.as_str()), Some("a.b"));
/// # Ok::<(), carbon_proto::pickle::PickleError>(())
/// ```
#[derive(Clone, Copy)]
pub struct ValueRef<'a> {
    doc: Doc<'a>,
    item: Item,
}

impl std::fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_value() {
            Ok(v) => v.fmt(f),
            Err(e) => write!(f, "ValueRef(<{e}>)"),
        }
    }
}

impl<'a> ValueRef<'a> {
    fn at(&self, item: Item) -> ValueRef<'a> {
        ValueRef { doc: self.doc, item }
    }

    /// Python's name of the value's type (`"NoneType"`, `"int"`, `"str"`, ...).
    pub fn type_name(&self) -> &'static str {
        self.item.type_name()
    }

    /// Whether it is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self.item, Item::None)
    }

    /// A `bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.item {
            Item::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An `int` that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self.item {
            Item::Int(i) => Some(i),
            _ => None,
        }
    }

    /// An `int` that does not fit an `i64`.
    pub fn as_big_int(&self) -> Option<&'a BigInt> {
        match self.item {
            Item::Big(i) => self.doc.u.bigs.get(i as usize),
            _ => None,
        }
    }

    /// A `float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self.item {
            Item::Float(f) => Some(f),
            _ => None,
        }
    }

    /// A `str`.
    pub fn as_str(&self) -> Option<&'a str> {
        match self.item {
            Item::Str(s) => Some(self.doc.str(s)),
            _ => None,
        }
    }

    /// A `bytes`.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.item {
            Item::Bytes(s) => Some(self.doc.bytes(s)),
            _ => None,
        }
    }

    /// Whether it is a `list`.
    pub fn is_list(&self) -> bool {
        matches!(self.item, Item::List(_))
    }

    /// Whether it is a `tuple`.
    pub fn is_tuple(&self) -> bool {
        matches!(self.item, Item::Tuple(_))
    }

    /// The items of a `list` or a `tuple`.
    pub fn seq(&self) -> Option<Seq<'a>> {
        self.doc.items(self.item).map(|items| Seq { doc: self.doc, items: items.iter() })
    }

    /// The entries of a `dict`, in insertion order.
    pub fn entries(&self) -> Option<Entries<'a>> {
        self.doc
            .entries(self.item)
            .map(|entries| Entries { doc: self.doc, entries: entries.iter() })
    }

    /// The value of a `dict` under the `str` key `key` (the last one if the key repeats).
    pub fn get(&self, key: &str) -> Option<ValueRef<'a>> {
        let entries = self.doc.entries(self.item)?;
        entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(*k, Item::Str(s) if self.doc.str(s) == key))
            .map(|&(_, v)| self.at(v))
    }

    /// Python's `float(value)`; see [`Value::py_float`].
    ///
    /// # Errors
    ///
    /// A [`NumberError`] where Python raises.
    pub fn py_float(&self) -> Result<f64, NumberError> {
        match self.item {
            Item::Bool(b) => Ok(f64::from(u8::from(b))),
            Item::Int(i) => Ok(i as f64),
            Item::Big(_) => self.as_big_int().and_then(BigInt::to_f64).ok_or(NumberError::TooLarge),
            Item::Float(f) => Ok(f),
            Item::Str(s) => float_from_str(self.doc.str(s)),
            Item::Bytes(s) => float_from_bytes(self.doc.bytes(s)),
            other => Err(NumberError::Type { found: other.type_name() }),
        }
    }

    /// An owned copy. Parts the pickle shares are copied each time they appear, and count
    /// against the unpickler's value budget each time.
    ///
    /// # Errors
    ///
    /// [`PickleError::TooDeep`], [`PickleError::TooManyValues`] or [`PickleError::Cycle`].
    pub fn to_value(&self) -> Result<Value, PickleError> {
        let u = self.doc.u;
        let mut b = Builder {
            doc: self.doc,
            count: 0,
            visiting_lists: vec![false; u.lists.len()],
            visiting_dicts: vec![false; u.dicts.len()],
            strs: HashMap::new(),
            bytes: HashMap::new(),
        };
        b.build(self.item, 0)
    }
}

/// The items of a `list` or `tuple` (see [`ValueRef::seq`]).
#[derive(Clone, Debug)]
pub struct Seq<'a> {
    doc: Doc<'a>,
    items: std::slice::Iter<'a, Item>,
}

impl std::fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Doc")
    }
}

impl<'a> Iterator for Seq<'a> {
    type Item = ValueRef<'a>;
    fn next(&mut self) -> Option<ValueRef<'a>> {
        self.items.next().map(|&item| ValueRef { doc: self.doc, item })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for Seq<'_> {}

/// The entries of a `dict` (see [`ValueRef::entries`]).
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    doc: Doc<'a>,
    entries: std::slice::Iter<'a, (Item, Item)>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (ValueRef<'a>, ValueRef<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next().map(|&(k, v)| {
            (ValueRef { doc: self.doc, item: k }, ValueRef { doc: self.doc, item: v })
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Entries<'_> {}

/// Builds owned values from the arenas.
struct Builder<'a> {
    doc: Doc<'a>,
    count: usize,
    /// Containers being built, to refuse cycles (only lists and dicts can close one).
    visiting_lists: Vec<bool>,
    visiting_dicts: Vec<bool>,
    /// One allocation per distinct string, however often the pickle refers to it.
    strs: HashMap<Span, Arc<str>>,
    bytes: HashMap<Span, Bytes>,
}

impl Builder<'_> {
    fn build(&mut self, item: Item, depth: usize) -> Result<Value, PickleError> {
        let u = self.doc.u;
        self.count += 1;
        if self.count > u.max_values {
            return Err(PickleError::TooManyValues { max: u.max_values });
        }
        let is_container = matches!(item, Item::List(_) | Item::Tuple(_) | Item::Dict(_));
        if is_container && depth >= u.max_depth {
            return Err(PickleError::TooDeep { max: u.max_depth });
        }
        Ok(match item {
            Item::None => Value::None,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(i) => Value::Int(i),
            Item::Big(i) => Value::BigInt(u.bigs.get(i as usize).cloned().unwrap_or_default()),
            Item::Float(f) => Value::Float(f),
            Item::Str(s) => {
                let doc = self.doc;
                Value::Str(self.strs.entry(s).or_insert_with(|| Arc::from(doc.str(s))).clone())
            }
            Item::Bytes(s) => {
                let doc = self.doc;
                let b = self.bytes.entry(s).or_insert_with(|| Bytes::copy_from_slice(doc.bytes(s)));
                Value::Bytes(b.clone())
            }
            Item::Tuple(_) => {
                let items = self.doc.items(item).unwrap_or_default();
                Value::Tuple(self.build_all(items, depth)?)
            }
            Item::List(i) => {
                let i = i as usize;
                self.enter(true, i)?;
                let items = self.doc.items(item).unwrap_or_default();
                let built = self.build_all(items, depth)?;
                self.leave(true, i);
                Value::List(built)
            }
            Item::Dict(i) => {
                let i = i as usize;
                self.enter(false, i)?;
                let entries = self.doc.entries(item).unwrap_or_default();
                let mut out = Vec::with_capacity(entries.len());
                for &(k, v) in entries {
                    out.push((self.build(k, depth + 1)?, self.build(v, depth + 1)?));
                }
                self.leave(false, i);
                Value::Dict(out)
            }
        })
    }

    fn build_all(&mut self, items: &[Item], depth: usize) -> Result<Vec<Value>, PickleError> {
        let mut out = Vec::with_capacity(items.len());
        for &i in items {
            out.push(self.build(i, depth + 1)?);
        }
        Ok(out)
    }

    fn enter(&mut self, list: bool, i: usize) -> Result<(), PickleError> {
        let flags = if list { &mut self.visiting_lists } else { &mut self.visiting_dicts };
        match flags.get_mut(i) {
            Some(true) => Err(PickleError::Cycle),
            Some(flag) => {
                *flag = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn leave(&mut self, list: bool, i: usize) {
        let flags = if list { &mut self.visiting_lists } else { &mut self.visiting_dicts };
        if let Some(flag) = flags.get_mut(i) {
            *flag = false;
        }
    }
}
