//! carbon's pickle receiver (`MetricPickleReceiver.stringReceived`): a payload is a list of
//! `(metric, (timestamp, value))`; a malformed item is skipped and the others are kept.
#![warn(clippy::indexing_slicing)]

use super::PickleError;
use super::decode::{Unpickler, ValueRef};
use super::value::NumberError;
use crate::metric::{MetricName, NameError, Point};

/// The points of one payload, and the items that were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datapoints {
    /// The good points, in payload order.
    pub points: Vec<Point>,
    /// The skipped items, in payload order.
    pub skipped: Vec<Skipped>,
}

/// An item of the payload that is not a good point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {index}: {reason}")]
pub struct Skipped {
    /// Its position in the payload's list, from 0.
    pub index: usize,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why an item was skipped. carbon skips the first three silently (`continue`); the name
/// checks are ours (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// The item is not a 2-item list or tuple `(metric, datapoint)`.
    #[error("not a (metric, datapoint) pair: {found}{}", len_note(*.len))]
    NotAPair {
        /// Python's name of its type.
        found: &'static str,
        /// Its length, if it is a list or tuple.
        len: Option<usize>,
    },
    /// The datapoint is not a 2-item list or tuple `(timestamp, value)`.
    #[error("datapoint is not a (timestamp, value) pair: {found}{}", len_note(*.len))]
    NotADatapoint {
        /// Python's name of its type.
        found: &'static str,
        /// Its length, if it is a list or tuple.
        len: Option<usize>,
    },
    /// `float(timestamp)` fails.
    #[error("bad timestamp: {0}")]
    BadTimestamp(NumberError),
    /// `float(value)` fails.
    #[error("bad value: {0}")]
    BadValue(NumberError),
    /// The name is neither a `str` nor a `bytes`.
    #[error("metric name is a {found}, not a string")]
    NameNotText {
        /// Python's name of its type.
        found: &'static str,
    },
    /// The name is a `bytes` that is not UTF-8.
    #[error("metric name is not UTF-8 (invalid byte at {at})")]
    NameNotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The name cannot be stored.
    #[error("bad metric name: {0}")]
    BadName(NameError),
}

fn len_note(len: Option<usize>) -> String {
    len.map(|n| format!(" of {n}")).unwrap_or_default()
}

impl SkipReason {
    /// A short label for counting skips by reason: `not_a_pair`, `not_a_datapoint`,
    /// `bad_timestamp`, `bad_value`, `name_not_text`, `name_not_utf8` or `bad_name`.
    pub fn kind(&self) -> &'static str {
        match self {
            SkipReason::NotAPair { .. } => "not_a_pair",
            SkipReason::NotADatapoint { .. } => "not_a_datapoint",
            SkipReason::BadTimestamp(_) => "bad_timestamp",
            SkipReason::BadValue(_) => "bad_value",
            SkipReason::NameNotText { .. } => "name_not_text",
            SkipReason::NameNotUtf8 { .. } => "name_not_utf8",
            SkipReason::BadName(_) => "bad_name",
        }
    }
}

impl Datapoints {
    /// How many items were skipped for each [`SkipReason::kind`], in order of first
    /// appearance.
    pub fn skipped_by_kind(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for s in &self.skipped {
            let kind = s.reason.kind();
            match counts.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((kind, 1)),
            }
        }
        counts
    }
}

/// The two items of a 2-item list or tuple.
fn pair(v: ValueRef<'_>) -> Result<(ValueRef<'_>, ValueRef<'_>), (&'static str, Option<usize>)> {
    let Some(mut items) = v.seq() else {
        return Err((v.type_name(), None));
    };
    match (items.len(), items.next(), items.next()) {
        (2, Some(a), Some(b)) => Ok((a, b)),
        (n, _, _) => Err((v.type_name(), Some(n))),
    }
}

/// One item as carbon reads it: `(metric, (value, timestamp)) = raw` (its names; the first
/// number is the timestamp), `float()` of both numbers, then the name.
fn point(item: ValueRef<'_>) -> Result<Point, SkipReason> {
    let (metric, datapoint) =
        pair(item).map_err(|(found, len)| SkipReason::NotAPair { found, len })?;
    let (timestamp, value) =
        pair(datapoint).map_err(|(found, len)| SkipReason::NotADatapoint { found, len })?;
    let timestamp = timestamp.py_float().map_err(SkipReason::BadTimestamp)?;
    let value = value.py_float().map_err(SkipReason::BadValue)?;
    let name = match (metric.as_str(), metric.as_bytes()) {
        (Some(s), _) => s,
        (None, Some(b)) => {
            std::str::from_utf8(b).map_err(|e| SkipReason::NameNotUtf8 { at: e.valid_up_to() })?
        }
        (None, None) => return Err(SkipReason::NameNotText { found: metric.type_name() }),
    };
    let name = MetricName::new(name).map_err(SkipReason::BadName)?;
    Ok(Point::new(name, timestamp, value))
}

impl Unpickler {
    /// Reads a payload of carbon's pickle protocol and hands each item, as a [`Point`] or as
    /// a [`Skipped`] item, to `sink`.
    ///
    /// # Errors
    ///
    /// A [`PickleError`] if the payload does not unpickle (carbon logs it and ignores the
    /// frame), or [`PickleError::NotDatapoints`] if it is not a list or tuple. `sink` is then
    /// not called.
    pub fn decode_datapoints_with<F>(
        &mut self,
        payload: &[u8],
        mut sink: F,
    ) -> Result<(), PickleError>
    where
        F: FnMut(Result<Point, Skipped>),
    {
        let top = self.loads_ref(payload)?;
        let Some(items) = top.seq() else {
            return Err(PickleError::NotDatapoints { found: top.type_name() });
        };
        for (index, item) in items.enumerate() {
            sink(point(item).map_err(|reason| Skipped { index, reason }));
        }
        Ok(())
    }

    /// Reads a payload of carbon's pickle protocol: the good points and the skipped items
    /// (see [`decode_datapoints_with`](Self::decode_datapoints_with)).
    ///
    /// ```
    /// use carbon_proto::pickle::{SkipReason, Unpickler};
    /// // pickle.dumps([('a.b', (1700000000, '1.5')), ('c', None)], protocol=2)
    /// let payload = b"\x80\x02]q\x00(X\x03\x00\x00\x00a.bq\x01J\x00\xf1SeX\x03\x00\x00\x001.5q\x02\x86q\x03\x86q\x04X\x01\x00\x00\x00cq\x05N\x86q\x06e.";
    /// let decoded = Unpickler::new().decode_datapoints(payload)?;
    /// assert_eq!(decoded.points.len(), 1);
    /// assert_eq!(decoded.points[0].datapoint.value, 1.5);
    /// assert!(matches!(decoded.skipped[0].reason, SkipReason::NotADatapoint { .. }));
    /// # Ok::<(), carbon_proto::pickle::PickleError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`decode_datapoints_with`](Self::decode_datapoints_with).
    pub fn decode_datapoints(&mut self, payload: &[u8]) -> Result<Datapoints, PickleError> {
        let top = self.loads_ref(payload)?;
        let Some(items) = top.seq() else {
            return Err(PickleError::NotDatapoints { found: top.type_name() });
        };
        let mut out = Datapoints { points: Vec::with_capacity(items.len()), skipped: Vec::new() };
        for (index, item) in items.enumerate() {
            match point(item) {
                Ok(p) => out.points.push(p),
                Err(reason) => out.skipped.push(Skipped { index, reason }),
            }
        }
        Ok(out)
    }
}

/// [`Unpickler::decode_datapoints`] with the default limits. A server should keep one
/// [`Unpickler`] per connection instead, to reuse its buffers.
///
/// # Errors
///
/// As [`Unpickler::decode_datapoints_with`].
pub fn decode_datapoints(payload: &[u8]) -> Result<Datapoints, PickleError> {
    Unpickler::new().decode_datapoints(payload)
}
