//! The agent's sender: batches points to one or more destinations and does not lose them
//! while a destination is down.
//!
//! Diamond's handlers lose the batch whose send fails, stall every handler behind a slow
//! one, retry the connection per metric and log per metric (reference A1). Here:
//!
//! - **Independent destinations.** Each destination (carbon plaintext, pickle or UDP, an
//!   archive file, stdout) has its own thread, memory queue and spool; a slow or dead one
//!   never delays another. [`Sender::send`] only queues.
//! - **Batching** by size (`batch_size`) and time (`batch_delay`), over one connection
//!   with TCP keepalive.
//! - **Reconnect** with exponential backoff and jitter between `reconnect_min` and
//!   `reconnect_max`, never per point; one log line when a destination goes down, one when
//!   it is back.
//! - **At-least-once.** A batch whose write fails is written again after the reconnect,
//!   so a batch that partly reached carbon before the error arrives twice; carbon keeps the
//!   last value written for a timestamp, so the duplicate is harmless. Before each write the
//!   connection is checked for a close by carbon, so a restarted carbon is noticed before
//!   a batch is handed to a dead socket. Carbon's protocols have no acknowledgement: points
//!   that the kernel accepted and carbon then discarded unread (carbon killed with data in
//!   its socket buffer) cannot be known and are lost.
//! - **Spool.** When the memory queue (`queue_points`) is full, or the destination is down,
//!   points go to `spool_dir/<name>/` on disk (bounded by `spool_max_bytes`: the oldest
//!   segment is dropped and counted when it is full). When the destination is back, the
//!   spool is replayed oldest first, before newer points in memory, so carbon sees the
//!   points in time order. The spool survives a restart. Format and limits:
//!   `collect/README.md`, section "Sender".
//! - **Order.** For each destination, points are written in the order `send` got them,
//!   except that a retried batch repeats (see above). Without a spool, an overflowing
//!   memory queue drops its oldest points (counted).
//! - **UDP** is fire-and-forget: several lines per datagram of at most 1432 bytes; a
//!   failed send is counted as dropped, never retried or spooled.
//!
//! ```no_run
//! use std::time::Duration;
//! use carbon_proto::{MetricName, Point};
//! use collect::sender::{DestinationConfig, Sender, SenderConfig};
//!
//! let config = SenderConfig {
//!     destinations: vec![DestinationConfig {
//!         address: "127.0.0.1:2003".into(),
//!         spool_dir: Some("/var/spool/graphite-agent".into()),
//!         ..Default::default()
//!     }],
//! };
//! let sender = Sender::start(config)?;
//! sender.send(vec![Point::new(MetricName::new("servers.web01.loadavg.01")?, 1.7e9, 0.5)]);
//! for s in sender.stats() {
//!     println!("{}: {} sent, {} spooled", s.name, s.sent, s.spooled);
//! }
//! sender.shutdown(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod config;
mod error;
pub mod record;
mod spool;
mod transport;
mod worker;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use carbon_proto::Point;

pub use archive::ArchiveWriter;
pub use config::{
    DEFAULT_PICKLE_PORT, DEFAULT_PLAINTEXT_PORT, DestinationConfig, DestinationKind, Protocol,
    SenderConfig,
};
pub use error::SenderError;
pub use transport::MAX_DATAGRAM_BYTES;

use spool::Spool;
use transport::Transport;
use worker::{Shared, Timing};

/// Time the workers get past the shutdown deadline to finish spooling before
/// [`Sender::shutdown`] gives up waiting for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A destination's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestinationStats {
    /// The destination's name.
    pub name: String,
    /// Points written (a retried batch counts each time it is written).
    pub sent: u64,
    /// Points in memory (queued, or in a batch being written).
    pub queued: u64,
    /// Points in the spool on disk, not yet written.
    pub spooled: u64,
    /// Points dropped: memory overflow without a spool, a full spool's oldest segment, the
    /// damaged part of a spool segment, failed UDP sends, points sent after shutdown.
    pub dropped: u64,
    /// Failed connects and writes.
    pub send_errors: u64,
    /// Successful connects after the first.
    pub reconnects: u64,
    /// Whether a connection is open now.
    pub connected: bool,
    /// Damaged spool segments found (at start or while replaying); each is logged with its
    /// path and the offset of the damage.
    pub spool_damaged: u64,
}

/// One destination as the sender holds it.
#[derive(Debug)]
struct Destination {
    /// State shared with the worker.
    shared: Arc<Shared>,
    /// The worker thread, until joined.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The running sender: one worker thread per destination. `Send + Sync`; share it with an
/// `Arc` between collectors and the statsd flush.
#[derive(Debug)]
pub struct Sender {
    destinations: Vec<Destination>,
}

impl Sender {
    /// Validates `config`, opens the spools (scanning what a previous run left, which is
    /// sent first) and starts one thread per destination.
    ///
    /// # Errors
    ///
    /// [`SenderError`] (wrapped in [`crate::Error::Sender`]) for a setting that cannot work,
    /// two destinations with one name, a spool directory that cannot be opened, or a
    /// thread that cannot be started; nothing is left running then.
    pub fn start(config: SenderConfig) -> crate::Result<Sender> {
        if config.destinations.is_empty() {
            return Err(SenderError::NoDestination.into());
        }
        let mut names = HashSet::new();
        for d in &config.destinations {
            d.validate()?;
            let name = d.resolved_name();
            if !names.insert(name.clone()) {
                return Err(SenderError::DuplicateName { name }.into());
            }
        }
        let mut sender = Sender { destinations: Vec::new() };
        for d in &config.destinations {
            match start_destination(d) {
                Ok(dest) => sender.destinations.push(dest),
                Err(e) => {
                    // `sender` is dropped here, which stops what was started.
                    return Err(e.into());
                }
            }
        }
        Ok(sender)
    }

    /// Queues `points` for every destination. Never waits for a destination: at most for
    /// one spool write per destination when its memory queue is full.
    pub fn send(&self, points: Vec<Point>) {
        let Some((last, others)) = self.destinations.split_last() else { return };
        for d in others {
            d.shared.enqueue(points.clone());
        }
        last.shared.enqueue(points);
    }

    /// The counters of every destination, in configuration order.
    pub fn stats(&self) -> Vec<DestinationStats> {
        self.destinations
            .iter()
            .map(|d| {
                let c = &d.shared.counters;
                let st = d.shared.lock();
                let (spooled, spool_dropped, spool_damaged) = st
                    .spool
                    .as_ref()
                    .map_or((0, 0, 0), |s| (s.pending_points(), s.dropped(), s.damaged()));
                DestinationStats {
                    name: d.shared.name.clone(),
                    sent: c.sent.load(Ordering::Relaxed),
                    queued: (st.queue.len() + st.in_flight) as u64,
                    spooled,
                    dropped: c.dropped.load(Ordering::Relaxed) + spool_dropped,
                    send_errors: c.send_errors.load(Ordering::Relaxed),
                    reconnects: c.reconnects.load(Ordering::Relaxed),
                    connected: c.connected.load(Ordering::Relaxed),
                    spool_damaged,
                }
            })
            .collect()
    }

    /// Stops: each destination writes what it can within `deadline` (spool first, then
    /// memory), then puts the rest in its spool (without a spool the rest is counted as
    /// dropped), fsyncs it and exits. Points sent afterwards are dropped (counted).
    /// Calling it again returns at once.
    ///
    /// # Errors
    ///
    /// [`SenderError::ShutdownTimeout`] if a worker is still running a second after the
    /// deadline (stuck in a connect or a DNS lookup); it exits on its own later.
    pub fn shutdown(&self, deadline: Duration) -> crate::Result<()> {
        let stop_at = Instant::now() + deadline;
        for d in &self.destinations {
            d.shared.stop(stop_at);
        }
        let give_up = stop_at + SHUTDOWN_GRACE;
        let mut stuck = Vec::new();
        for d in &self.destinations {
            let mut slot = d.thread.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(handle) = slot.take() else { continue };
            // Bounded: every wait is at most 10 ms, until `give_up`.
            while !handle.is_finished() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                if handle.join().is_err() {
                    tracing::error!(destination = %d.shared.name, "sender worker panicked");
                }
            } else {
                stuck.push(d.shared.name.clone());
            }
        }
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(SenderError::ShutdownTimeout { destinations: stuck }.into())
        }
    }
}

impl Drop for Sender {
    /// Stops the workers at once (memory goes to the spools) and waits for them a moment;
    /// call [`Sender::shutdown`] to give them time to flush.
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::ZERO);
    }
}

fn start_destination(d: &DestinationConfig) -> Result<Destination, SenderError> {
    let name = d.resolved_name();
    let transport = Transport::from_config(d);
    let spool = match (&d.spool_dir, transport.fire_and_forget()) {
        (Some(dir), false) => {
            let dir = dir.join(&name);
            let (spool, damage) =
                Spool::open(&dir, d.spool_max_bytes, d.batch_size).map_err(|source| {
                    SenderError::Spool { destination: name.clone(), path: dir.clone(), source }
                })?;
            for d in damage {
                tracing::warn!(
                    destination = %name, path = %d.path.display(), offset = d.offset,
                    kept_records = d.kept_records, error = %d.error,
                    "damaged spool segment: keeping the records before the damage"
                );
            }
            Some(spool)
        }
        _ => None,
    };
    let shared = Arc::new(Shared::new(name.clone(), spool, d.batch_size, d.queue_points));
    let timing = Timing {
        batch_delay: d.batch_delay,
        reconnect_min: d.reconnect_min,
        reconnect_max: d.reconnect_max,
        timeout: d.timeout,
    };
    let worker_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name(format!("sender-{name}"))
        .spawn(move || worker::run(&worker_shared, &transport, timing))
        .map_err(|source| SenderError::Spawn { destination: name, source })?;
    Ok(Destination { shared, thread: Mutex::new(Some(thread)) })
}
