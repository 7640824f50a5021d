//! The seam between the scheduler and whatever carries points away.
//!
//! The agent hands every run's points to a [`PointSink`]; the real one is the buffered
//! [`Sender`] (memory queue, spool, reconnect). Tests use [`MemorySink`], which keeps what it
//! was given.

use std::sync::Mutex;
use std::time::Duration;

use carbon_proto::Point;

use crate::sender::Sender;

/// Counters of one destination, as the self metrics publish them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// The destination's name (its address, or `archive`/`stdout`).
    pub name: String,
    /// Points written to the destination, since start.
    pub sent: u64,
    /// Points waiting in memory now.
    pub queued: u64,
    /// Points waiting in the spool on disk now.
    pub spooled: u64,
    /// Points given up (queue and spool full), since start.
    pub dropped: u64,
    /// Connection or write errors, since start.
    pub errors: u64,
}

/// Where the scheduler's points go. `send` must return within a bounded time whatever the
/// destination does (a slow carbon must not hold a collector's thread).
pub trait PointSink: Send + Sync {
    /// Takes one run's points.
    fn send(&self, points: Vec<Point>);
    /// Each destination's counters.
    fn stats(&self) -> Vec<SinkStats>;
    /// Flushes what is queued (to the destination or the spool), waiting at most `deadline`.
    fn shutdown(&self, deadline: Duration);
}

/// A sink that keeps every point, for tests and `--once`.
#[derive(Debug, Default)]
pub struct MemorySink {
    points: Mutex<Vec<Point>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Takes the points received so far.
    pub fn take(&self) -> Vec<Point> {
        std::mem::take(&mut *self.points.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl PointSink for MemorySink {
    fn send(&self, points: Vec<Point>) {
        self.points.lock().unwrap_or_else(|p| p.into_inner()).extend(points);
    }

    fn stats(&self) -> Vec<SinkStats> {
        let n = self.points.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        vec![SinkStats { name: "memory".into(), sent: n, ..SinkStats::default() }]
    }

    fn shutdown(&self, _deadline: Duration) {}
}

impl PointSink for Sender {
    fn send(&self, points: Vec<Point>) {
        Sender::send(self, points);
    }

    fn stats(&self) -> Vec<SinkStats> {
        Sender::stats(self)
            .into_iter()
            .map(|d| SinkStats {
                name: d.name,
                sent: d.sent,
                queued: d.queued,
                spooled: d.spooled,
                dropped: d.dropped,
                errors: d.send_errors,
            })
            .collect()
    }

    fn shutdown(&self, deadline: Duration) {
        if let Err(e) = Sender::shutdown(self, deadline) {
            tracing::warn!(error = %e, "sender shutdown");
        }
    }
}
