//! The types every format decodes into: [`MetricName`], [`Datapoint`], [`Point`].

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A metric name that is safe to store: it can become a file path under the data directory and
/// cannot leave it.
///
/// carbon accepts nearly any byte string and turns dots into directories, so a name with an
/// empty component (`a..b`, `.a`, `a.`) makes odd paths and one with `/` or NUL can point
/// outside the data directory or be cut short. `MetricName::new` refuses those with a typed
/// error instead. It checks, in this order:
///
/// - the name is not empty;
/// - it has no NUL and no other control character (`0x00`-`0x1f`, `0x7f`);
/// - the metric part (before the first `;` of a tagged name) has no `/`, and no empty
///   dot-separated component;
/// - tag values may contain `/`: the on-disk layout of tagged series hashes the whole name
///   ([`tags::disk_path`](crate::tags::disk_path)).
///
/// It does not normalise tags: [`tags::normalize`](crate::tags::normalize) does, as
/// carbon-cache does before storing.
///
/// Cloning is cheap (a reference count): the name is shared by the cache, the index and the
/// write-ahead log.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName(Arc<str>);

/// Why a name cannot be a [`MetricName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("empty metric name")]
    Empty,
    /// The name has a NUL or another control character.
    #[error("metric name has control character {byte:#04x} at byte {at}")]
    ControlCharacter {
        /// The character.
        byte: u8,
        /// Its byte offset in the name.
        at: usize,
    },
    /// The metric part has a `/`, which would make a directory (or leave the data directory).
    #[error("metric name has '/' at byte {at}, which would make a directory")]
    Slash {
        /// Its byte offset in the name.
        at: usize,
    },
    /// A dot-separated component is empty (`a..b`, a leading or trailing dot).
    #[error("metric name has an empty component (number {index}, counting from 0)")]
    EmptyComponent {
        /// Which component, counting from 0.
        index: usize,
    },
}

impl MetricName {
    /// Checks `name` (see the type's docs) and makes it a `MetricName`.
    ///
    /// ```
    /// use carbon_proto::{MetricName, NameError};
    /// assert!(MetricName::new("servers.web01.cpu.user").is_ok());
    /// assert!(MetricName::new("disk.used;host=web01;path=/var").is_ok());
    /// assert_eq!(MetricName::new("a..b"), Err(NameError::EmptyComponent { index: 1 }));
    /// assert_eq!(MetricName::new("a/../../etc"), Err(NameError::Slash { at: 1 }));
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`NameError`] that applies.
    pub fn new(name: &str) -> Result<MetricName, NameError> {
        check_name(name)?;
        Ok(MetricName(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is a tagged name (`name;tag=value...`).
    pub fn is_tagged(&self) -> bool {
        self.0.contains(';')
    }

    /// The metric part: the whole name, or the part before the first `;` of a tagged name.
    pub fn metric(&self) -> &str {
        self.0.split(';').next().unwrap_or_default()
    }
}

/// The checks of [`MetricName::new`], without building one.
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let bytes = name.as_bytes();
    if let Some(at) = bytes.iter().position(|&b| b < 0x20 || b == 0x7f) {
        return Err(NameError::ControlCharacter { byte: bytes[at], at });
    }
    let metric_len = memchr::memchr(b';', bytes).unwrap_or(bytes.len());
    let metric = &bytes[..metric_len];
    if let Some(at) = memchr::memchr(b'/', metric) {
        return Err(NameError::Slash { at });
    }
    for (index, component) in metric.split(|&b| b == b'.').enumerate() {
        if component.is_empty() {
            return Err(NameError::EmptyComponent { index });
        }
    }
    Ok(())
}

impl Deref for MetricName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MetricName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for MetricName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl TryFrom<&str> for MetricName {
    type Error = NameError;
    fn try_from(name: &str) -> Result<MetricName, NameError> {
        MetricName::new(name)
    }
}

impl TryFrom<String> for MetricName {
    type Error = NameError;
    fn try_from(name: String) -> Result<MetricName, NameError> {
        check_name(&name)?;
        Ok(MetricName(Arc::from(name)))
    }
}

/// One measurement: a timestamp (seconds since the epoch) and a value.
///
/// Both are `f64`, as carbon keeps them: a timestamp may be fractional (carbon's code default
/// `MIN_TIMESTAMP_RESOLUTION = 0` keeps it so; Whisper truncates when it writes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Datapoint {
    /// Seconds since the epoch.
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

impl Datapoint {
    /// A datapoint.
    pub const fn new(timestamp: f64, value: f64) -> Datapoint {
        Datapoint { timestamp, value }
    }

    /// What carbon's receivers do with every point before it enters the pipeline
    /// (`MetricReceiver.metricReceived`): a NaN value is dropped (`None`); a timestamp whose
    /// integer part is -1 means "now"; with a resolution `res > 0` the timestamp becomes
    /// `int(ts) // res * res`. Infinite values are kept, as carbon keeps them.
    ///
    /// ```
    /// use carbon_proto::Datapoint;
    /// let now = 1_700_000_000.25;
    /// assert_eq!(Datapoint::new(-1.0, 5.0).received(now, 0), Some(Datapoint::new(now, 5.0)));
    /// assert_eq!(Datapoint::new(1_700_000_059.9, 5.0).received(now, 60).unwrap().timestamp, 1_700_000_040.0);
    /// assert_eq!(Datapoint::new(1.0, f64::NAN).received(now, 0), None);
    /// ```
    pub fn received(self, now: f64, min_resolution: u32) -> Option<Datapoint> {
        if self.value.is_nan() {
            return None;
        }
        let mut timestamp = self.timestamp;
        if timestamp.trunc() == -1.0 {
            timestamp = now;
        }
        if min_resolution > 0 && timestamp.is_finite() {
            let res = i64::from(min_resolution);
            // Saturates for absurd timestamps, which Whisper refuses later anyway.
            let t = timestamp.trunc() as i64;
            timestamp = (t.div_euclid(res) * res) as f64;
        }
        Some(Datapoint { timestamp, value: self.value })
    }
}

/// A named datapoint: what every decoder produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The metric.
    pub name: MetricName,
    /// Its timestamp and value.
    pub datapoint: Datapoint,
}

impl Point {
    /// A point.
    pub fn new(name: MetricName, timestamp: f64, value: f64) -> Point {
        Point { name, datapoint: Datapoint { timestamp, value } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_misbehave_on_disk_are_refused() {
        assert_eq!(MetricName::new(""), Err(NameError::Empty));
        assert_eq!(MetricName::new(".a"), Err(NameError::EmptyComponent { index: 0 }));
        assert_eq!(MetricName::new("a."), Err(NameError::EmptyComponent { index: 1 }));
        assert_eq!(MetricName::new("/etc/passwd"), Err(NameError::Slash { at: 0 }));
        assert_eq!(MetricName::new("a\0b"), Err(NameError::ControlCharacter { byte: 0, at: 1 }));
        assert_eq!(MetricName::new("a\nb"), Err(NameError::ControlCharacter { byte: 10, at: 1 }));
        assert!(MetricName::new("..;a=b").is_err());
    }

    #[test]
    fn ordinary_and_tagged_names_are_accepted() {
        for name in
            ["a", "a.b.c", "a-b_c:d", "héllo.wörld", "disk.used;path=/var/log;host=x", "a b"]
        {
            let n = MetricName::new(name).unwrap();
            assert_eq!(n.as_str(), name);
        }
        let n = MetricName::new("cpu;host=a").unwrap();
        assert!(n.is_tagged());
        assert_eq!(n.metric(), "cpu");
    }

    #[test]
    fn received_follows_carbon() {
        let now = 100.5;
        // int(-1.7) == -1 in Python: replaced; int(-0.5) == 0: kept.
        assert_eq!(Datapoint::new(-1.7, 1.0).received(now, 0).unwrap().timestamp, now);
        assert_eq!(Datapoint::new(-0.5, 1.0).received(now, 0).unwrap().timestamp, -0.5);
        // int(-61.5) // 60 * 60 == -120 (floor division).
        assert_eq!(Datapoint::new(-61.5, 1.0).received(now, 60).unwrap().timestamp, -120.0);
        assert!(Datapoint::new(1.0, f64::INFINITY).received(now, 0).is_some());
    }
}
