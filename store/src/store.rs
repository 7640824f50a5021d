//! [`Store`]: the storage engine's API.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbon_proto::{Datapoint, tags};
use whisper::{AggregationMethod, Header, HeaderCache, OpenOptions, Series};

use crate::cache::{Cache, CachedPoint, dedup_last_wins};
use crate::config::{
    CacheWriteStrategy, CarbonConfig, PatternList, RateLimit, Reloadable, StorageAggregation,
    StorageSchemas,
};
use crate::error::{Error, Result};
use crate::index::{MetricIndex, Node, TagIndex, open_data_dir};
use crate::persister;
use crate::ratelimit::TokenBucket;
use crate::selfmetrics::{Counters, Gauges, Reporter, hostname};
use crate::wal::{Wal, WalConfig};

/// How often the cache drops entries of metrics that stopped sending (after two sweeps).
const CACHE_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Longest file name most filesystems take (ext4, xfs: 255 bytes).
const NAME_MAX_BYTES: usize = 255;
/// Longest path most systems take.
const PATH_MAX_BYTES: usize = 4095;

/// How Whisper files are created and written (carbon's `WHISPER_*` settings).
#[derive(Clone, Copy, Debug, Default)]
pub struct WhisperOptions {
    /// `WHISPER_SPARSE_CREATE`.
    pub sparse: bool,
    /// `WHISPER_FALLOCATE_CREATE`.
    pub fallocate: bool,
    /// `WHISPER_LOCK_WRITES`.
    pub lock: bool,
    /// `WHISPER_AUTOFLUSH`.
    pub autoflush: bool,
    /// `WHISPER_FADVISE_RANDOM`.
    pub fadvise_random: bool,
}

/// Everything the store needs to run. [`StoreOptions::from_carbon`] fills it from carbon's
/// config; [`StoreOptions::new`] gives the defaults for a data directory.
#[derive(Debug)]
pub struct StoreOptions {
    /// The Whisper tree (`LOCAL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The write-ahead log; `None` runs without one (as carbon does: a crash loses the cache).
    pub wal: Option<WalConfig>,
    /// Points the cache holds at most before listeners stop reading.
    pub max_cache_points: usize,
    /// carbon's `USE_FLOW_CONTROL = False`: while the cache is full, [`Store::ingest`] drops
    /// points (counted as `cache.overflow`) instead of taking them. Off by default: listeners
    /// stop reading instead, and nothing is lost.
    pub drop_when_full: bool,
    /// Which metric the persisters write next (`CACHE_WRITE_STRATEGY`).
    pub strategy: CacheWriteStrategy,
    /// `MAX_UPDATES_PER_SECOND`.
    pub max_updates_per_second: RateLimit,
    /// `MAX_UPDATES_PER_SECOND_ON_SHUTDOWN`: the rate while draining at shutdown; `None`
    /// drains as fast as the disk allows.
    pub max_updates_per_second_on_shutdown: Option<RateLimit>,
    /// `MAX_CREATES_PER_MINUTE`. Over the limit, creates wait (carbon drops their points);
    /// `Limited(0)` creates no file at all and drops those points, counted.
    pub max_creates_per_minute: RateLimit,
    /// `MIN_TIMESTAMP_RESOLUTION`.
    pub min_timestamp_resolution: u32,
    /// `MIN_TIMESTAMP_LAG`: with `timesorted`, points younger than this many seconds wait.
    pub min_timestamp_lag: u32,
    /// How files are written.
    pub whisper: WhisperOptions,
    /// `storage-schemas.conf`, re-read every minute when it changes.
    pub schemas: Reloadable<StorageSchemas>,
    /// `storage-aggregation.conf`, re-read every minute when it changes.
    pub aggregation: Reloadable<StorageAggregation>,
    /// White and blacklists (`USE_WHITELIST`), re-read every 10 s when they change.
    pub lists: Option<(Reloadable<PatternList>, Reloadable<PatternList>)>,
    /// `TAG_HASH_FILENAMES`.
    pub tag_hash_filenames: bool,
    /// Persister threads.
    pub persister_threads: usize,
    /// A metric is written once no point came for it this long (or twice the interval its
    /// points came at): a burst of points costs one write per metric, not one per point.
    pub write_quiet: Duration,
    /// ... or once its oldest cached point waited this long, however busy it is.
    pub write_max_delay: Duration,
    /// Self-metrics: `(CARBON_METRIC_PREFIX, interval, instance)`; `None` disables them.
    pub self_metrics: Option<(String, Duration, String)>,
}

/// [`StoreOptions::write_quiet`]'s default.
pub const DEFAULT_WRITE_QUIET: Duration = Duration::from_millis(100);
/// [`StoreOptions::write_max_delay`]'s default.
pub const DEFAULT_WRITE_MAX_DELAY: Duration = Duration::from_secs(1);

/// The default cache limit when carbon's `MAX_CACHE_SIZE` is `inf`: about 400 MB of points.
pub const DEFAULT_MAX_CACHE_POINTS: usize = 10_000_000;

impl StoreOptions {
    /// Defaults for `data_dir` with no config files: carbon's code defaults, except that
    /// updates are not rate-limited, the cache is bounded ([`DEFAULT_MAX_CACHE_POINTS`]) and a
    /// write-ahead log lives in `<data_dir>/../wal`.
    ///
    /// # Errors
    ///
    /// Never in practice: the built-in schema and aggregation defaults.
    pub fn new(data_dir: impl Into<PathBuf>) -> Result<StoreOptions> {
        let data_dir = data_dir.into();
        let wal_dir = data_dir.parent().map_or_else(|| data_dir.join("wal"), |p| p.join("wal"));
        let missing = data_dir.join(".no-such-config");
        Ok(StoreOptions {
            wal: Some(WalConfig::new(wal_dir)),
            max_cache_points: DEFAULT_MAX_CACHE_POINTS,
            drop_when_full: false,
            strategy: CacheWriteStrategy::Sorted,
            max_updates_per_second: RateLimit::Unlimited,
            max_updates_per_second_on_shutdown: None,
            max_creates_per_minute: RateLimit::Unlimited,
            min_timestamp_resolution: 0,
            min_timestamp_lag: 0,
            whisper: WhisperOptions::default(),
            schemas: Reloadable::open(&missing)?,
            aggregation: Reloadable::open(&missing)?,
            lists: None,
            tag_hash_filenames: true,
            persister_threads: 2,
            write_quiet: DEFAULT_WRITE_QUIET,
            write_max_delay: DEFAULT_WRITE_MAX_DELAY,
            self_metrics: Some(("carbon".into(), Duration::from_secs(60), "a".into())),
            data_dir,
        })
    }

    /// The options carbon's config gives: `LOCAL_DATA_DIR`, the limits, the strategy, the
    /// `WHISPER_*` switches, the schema, aggregation and list files from `CONF_DIR`, the
    /// self-metric settings; the write-ahead log as `WAL_ENABLED`, `WAL_DIR` and `WAL_FSYNC` say
    /// (default `<STORAGE_DIR>/wal`, fsynced every second).
    ///
    /// # Errors
    ///
    /// A config file that cannot be used (naming the file and line).
    pub fn from_carbon(config: &CarbonConfig) -> Result<StoreOptions> {
        let lists = if config.use_whitelist {
            Some((Reloadable::open(&config.whitelist)?, Reloadable::open(&config.blacklist)?))
        } else {
            None
        };
        Ok(StoreOptions {
            data_dir: config.local_data_dir.clone(),
            wal: config.wal_enabled.then(|| {
                let mut wal = WalConfig::new(&config.wal_dir);
                wal.fsync = config.wal_fsync;
                wal
            }),
            max_cache_points: config
                .max_cache_size
                .map_or(DEFAULT_MAX_CACHE_POINTS, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            drop_when_full: !config.use_flow_control,
            strategy: config.cache_write_strategy,
            max_updates_per_second: config.max_updates_per_second,
            max_updates_per_second_on_shutdown: config.max_updates_per_second_on_shutdown,
            max_creates_per_minute: config.max_creates_per_minute,
            min_timestamp_resolution: config.min_timestamp_resolution,
            min_timestamp_lag: config.min_timestamp_lag,
            whisper: WhisperOptions {
                sparse: config.whisper_sparse_create,
                fallocate: config.whisper_fallocate_create,
                lock: config.whisper_lock_writes,
                autoflush: config.whisper_autoflush,
                fadvise_random: config.whisper_fadvise_random,
            },
            schemas: Reloadable::open(config.storage_schemas_path())?,
            aggregation: Reloadable::open(config.storage_aggregation_path())?,
            lists,
            tag_hash_filenames: config.tag_hash_filenames,
            persister_threads: 2,
            write_quiet: DEFAULT_WRITE_QUIET,
            write_max_delay: DEFAULT_WRITE_MAX_DELAY,
            self_metrics: config.carbon_metric_interval.map(|interval| {
                let instance = config.instance.clone().unwrap_or_else(|| "a".into());
                (config.carbon_metric_prefix.clone(), interval, instance)
            }),
        })
    }
}

/// What [`Store::open`] found.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// Metrics found in the data directory (and the tag registry).
    pub metrics: usize,
    /// Points replayed from the write-ahead log into the cache.
    pub replayed_points: u64,
    /// How long opening took.
    pub took: Duration,
}

/// The storage engine. Cheap to clone; every clone is the same store. When the last clone is
/// dropped without [`Store::shutdown`], the threads stop at once (unwritten points stay in the
/// write-ahead log for the next start).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    _stop: Arc<StopOnDrop>,
}

/// Stops the store's threads when the last user handle goes.
struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop_threads();
    }
}

/// The state shared by the API, the persisters and the maintenance thread.
pub(crate) struct Inner {
    pub(crate) data_dir: PathBuf,
    pub(crate) cache: Cache,
    pub(crate) wal: Option<Wal>,
    /// Cache entries (pending or in flight) holding each log segment: a segment can go once
    /// no entry holds it or an older one.
    pub(crate) segment_refs: Mutex<BTreeMap<u64, usize>>,
    /// Headers and archive bases of recently opened files, shared by persisters and reads:
    /// an update skips reading them (whisper's `HeaderCache`, safe against replaced files).
    pub(crate) headers: Arc<HeaderCache>,
    pub(crate) metrics: MetricIndex,
    pub(crate) tags: TagIndex,
    pub(crate) counters: Counters,
    pub(crate) max_cache_points: usize,
    pub(crate) drop_when_full: bool,
    pub(crate) strategy: CacheWriteStrategy,
    pub(crate) min_timestamp_resolution: u32,
    pub(crate) min_timestamp_lag: u32,
    pub(crate) write_quiet_ms: u32,
    pub(crate) write_max_delay_ms: u32,
    pub(crate) whisper: WhisperOptions,
    pub(crate) tag_hash_filenames: bool,
    pub(crate) schemas: Mutex<Reloadable<StorageSchemas>>,
    pub(crate) aggregation: Mutex<Reloadable<StorageAggregation>>,
    pub(crate) lists: Option<Mutex<(Reloadable<PatternList>, Reloadable<PatternList>)>>,
    pub(crate) updates: TokenBucket,
    pub(crate) updates_on_shutdown: Option<TokenBucket>,
    pub(crate) creates: TokenBucket,
    /// `MAX_CREATES_PER_MINUTE = 0`: no file is ever created; points of metrics without one
    /// are dropped and counted (`droppedCreates`), as in carbon.
    pub(crate) creates_disabled: bool,
    /// Metrics in the order the strategy picked, shared by the persisters.
    pub(crate) queue: Mutex<persister::Queue>,
    /// Wakes idle persisters when points arrive.
    pub(crate) work: (Mutex<u64>, Condvar),
    /// Set at shutdown: persisters write everything left and stop.
    pub(crate) draining: AtomicBool,
    /// Set when the persisters must stop at once.
    pub(crate) stopped: AtomicBool,
    /// [`Store::flush`] calls under way: every cached metric is due at once.
    pub(crate) flushing: AtomicUsize,
    /// Points written since the store opened (the self-metrics' counters are per interval).
    pub(crate) total_committed: AtomicU64,
    /// Open connections, reported by the server for the self-metrics.
    pub(crate) active_connections: AtomicU64,
    /// The cache reached its limit and has not yet gone below the low watermark.
    pub(crate) full: AtomicBool,
    /// Further self-metrics, reported with the store's own ([`Store::add_self_metrics`]).
    pub(crate) extra_metrics: Mutex<Vec<SelfMetricsSource>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A component's self-metrics for one interval, as `(name, value)` with names relative to
/// the store's `<CARBON_METRIC_PREFIX>.agents.<host>-<instance>` (see
/// [`Store::add_self_metrics`]).
pub type SelfMetricsSource = Box<dyn FnMut() -> Vec<(String, f64)> + Send>;

impl Store {
    /// Opens the store: loads the index from the data directory (creating it if needed),
    /// replays the write-ahead log into the cache, and starts the persisters and the
    /// maintenance thread (self-metrics, config reloads, log trimming).
    ///
    /// # Errors
    ///
    /// The data directory cannot be created or read, or the log cannot be opened.
    pub fn open(options: StoreOptions) -> Result<(Store, OpenReport)> {
        let started = Instant::now();
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|source| Error::Io { path: options.data_dir.clone(), source })?;
        let (metrics, tags, _report) = open_data_dir(&options.data_dir)?;
        let cache = Cache::new(64);
        let mut refs: BTreeMap<u64, usize> = BTreeMap::new();
        let mut replayed = 0u64;
        let wal = match options.wal {
            Some(config) => Some(Wal::open(config, |segment, name, ts, value| {
                replayed += 1;
                let seg = segment.get();
                let point = [(name, CachedPoint::new(ts, value))];
                let inserted = cache.insert_batch(&point, seg, |n| index_name(&metrics, &tags, n));
                if inserted.new_pending > 0 {
                    *refs.entry(seg).or_default() += inserted.new_pending;
                }
            })?),
            None => None,
        };
        let updates_on_shutdown = options.max_updates_per_second_on_shutdown.map(bucket_per_second);
        let metrics_len = metrics.len();
        let inner = Arc::new(Inner {
            data_dir: options.data_dir,
            cache,
            wal,
            segment_refs: Mutex::new(refs),
            headers: Arc::new(HeaderCache::new(header_cache_capacity(metrics_len))),
            metrics,
            tags,
            counters: Counters::default(),
            max_cache_points: options.max_cache_points.max(1),
            drop_when_full: options.drop_when_full,
            strategy: options.strategy,
            min_timestamp_resolution: options.min_timestamp_resolution,
            min_timestamp_lag: options.min_timestamp_lag,
            write_quiet_ms: u32::try_from(options.write_quiet.as_millis()).unwrap_or(u32::MAX / 4),
            write_max_delay_ms: u32::try_from(options.write_max_delay.as_millis())
                .unwrap_or(u32::MAX / 4),
            whisper: options.whisper,
            tag_hash_filenames: options.tag_hash_filenames,
            schemas: Mutex::new(options.schemas),
            aggregation: Mutex::new(options.aggregation),
            lists: options.lists.map(Mutex::new),
            updates: bucket_per_second(options.max_updates_per_second),
            updates_on_shutdown,
            creates_disabled: options.max_creates_per_minute == RateLimit::Limited(0.0),
            creates: match options.max_creates_per_minute {
                RateLimit::Unlimited => TokenBucket::per_minute(f64::INFINITY),
                RateLimit::Limited(n) => TokenBucket::per_minute(n),
            },
            queue: Mutex::new(persister::Queue::default()),
            work: (Mutex::new(0), Condvar::new()),
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            flushing: AtomicUsize::new(0),
            active_connections: AtomicU64::new(0),
            total_committed: AtomicU64::new(0),
            full: AtomicBool::new(false),
            extra_metrics: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for i in 0..options.persister_threads.max(1) {
            let inner = Arc::clone(&inner);
            threads.push(spawn(format!("persister-{i}"), move || persister::run(&inner))?);
        }
        {
            let inner = Arc::clone(&inner);
            let self_metrics = options.self_metrics;
            threads.push(spawn("maintenance".into(), move || maintenance(inner, self_metrics))?);
        }
        *inner.threads.lock().unwrap_or_else(PoisonError::into_inner) = threads;
        let report = OpenReport {
            metrics: inner.metrics.len(),
            replayed_points: replayed,
            took: started.elapsed(),
        };
        let stop = Arc::new(StopOnDrop(Arc::clone(&inner)));
        Ok((Store { inner, _stop: stop }, report))
    }

    /// Takes received points `(name, timestamp, value)`, as carbon's receivers and cache do:
    /// white/blacklists, NaN values dropped, a `-1` timestamp means now,
    /// `MIN_TIMESTAMP_RESOLUTION`, tagged names normalised. Then the points are logged,
    /// cached and indexed: from here they are readable. Returns how many were accepted; the
    /// others are counted by reason in the self-metrics.
    ///
    /// With `FsyncPolicy::Always`, returns once the points are fsynced in the log.
    ///
    /// # Errors
    ///
    /// The log cannot be written (a full disk): nothing of the batch was accepted, and the
    /// caller should stop reading and retry (backpressure).
    pub fn ingest<'a, I>(&self, points: I) -> Result<usize>
    where
        I: IntoIterator<Item = (&'a str, f64, f64)>,
    {
        self.inner.ingest(points)
    }

    /// Whether the cache is at its limit: listeners should stop reading until it is not.
    /// Once full, it stays full until it is down to 95 % (carbon's low watermark).
    pub fn is_full(&self) -> bool {
        let inner = &*self.inner;
        if inner.drop_when_full {
            // No flow control: listeners never wait; ingest drops and counts instead.
            return false;
        }
        let size = inner.cache.size();
        if inner.full.load(Ordering::Relaxed) {
            // carbon's CACHE_SIZE_LOW_WATERMARK: resume only well below the limit, so readers
            // do not flap around it one batch at a time.
            let low = inner.max_cache_points - inner.max_cache_points / 20;
            if size < low {
                inner.full.store(false, Ordering::Relaxed);
                return false;
            }
            return true;
        }
        if size >= inner.max_cache_points {
            inner.full.store(true, Ordering::Relaxed);
            Counters::add(&inner.counters.cache_full_events, 1);
            return true;
        }
        false
    }

    /// Reads `name` between `from` and `until` (default `now`) as graphite-web reads a
    /// Whisper file and merges carbon's cache into it. A metric whose file does not exist yet
    /// reads as that file would, from the cache alone.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or the range is invalid (`from > until`).
    pub fn fetch(
        &self,
        name: &str,
        from: i64,
        until: Option<i64>,
        now: i64,
    ) -> Result<Option<Series>> {
        let inner = &*self.inner;
        let Some(name) = storable_name(name, inner.tag_hash_filenames) else {
            return Ok(None);
        };
        let path = inner.path_of(&name)?;
        let cached = inner.cache.points(&name);
        match OpenOptions::new().noatime(true).header_cache(Some(&inner.headers)).open(&path) {
            Ok(mut file) => {
                let raw_step =
                    file.header().archives().first().map_or(1, |a| a.seconds_per_point());
                let method = file.header().aggregation_method();
                let Some(mut series) = file.fetch(from, until, now)? else {
                    return Ok(None);
                };
                crate::merge::merge_with_cache(&mut series, &cached, raw_step, method);
                Ok(Some(series))
            }
            Err(whisper::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if cached.is_empty() {
                    return Ok(None);
                }
                let header = inner.header_for(&name)?;
                let raw_step = header.archives().first().map_or(1, |a| a.seconds_per_point());
                let Some(mut series) = header.empty_fetch(from, until, now)? else {
                    return Ok(None);
                };
                crate::merge::merge_with_cache(
                    &mut series,
                    &cached,
                    raw_step,
                    header.aggregation_method(),
                );
                Ok(Some(series))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The metrics matching a graphite-web glob (`servers.*.cpu.{user,system}`), sorted.
    ///
    /// # Errors
    ///
    /// A pattern the index cannot compile.
    pub fn find(&self, pattern: &str) -> Result<Vec<Node>> {
        Ok(self.inner.metrics.find(pattern)?)
    }

    /// The tag index (`seriesByTag`, `/tags/*`).
    pub fn tags(&self) -> &TagIndex {
        &self.inner.tags
    }

    /// The metric index.
    pub fn metrics(&self) -> &MetricIndex {
        &self.inner.metrics
    }

    /// The cached points of `name`, one per timestamp (the last received) in the order
    /// timestamps first arrived: carbon's `cache-query` answer.
    pub fn cache_points(&self, name: &str) -> Vec<(u32, f64)> {
        let name = storable_name(name, self.inner.tag_hash_filenames);
        let Some(name) = name else { return Vec::new() };
        dedup_last_wins(&self.inner.cache.points(&name))
            .iter()
            .map(|p| (p.timestamp(), p.value()))
            .collect()
    }

    /// carbon's `get-metadata`: the aggregation method of `name`'s file.
    ///
    /// # Errors
    ///
    /// The text carbon answers: an unsupported key, or the file's error.
    pub fn get_metadata(&self, name: &str, key: &str) -> std::result::Result<String, String> {
        if key != "aggregationMethod" {
            return Err(format!("Unsupported metadata key \"{key}\""));
        }
        let path = self.metadata_path(name)?;
        whisper::info(&path)
            .map(|h| h.aggregation_method().name().to_string())
            .map_err(|e| e.to_string())
    }

    /// carbon's `set-metadata`: changes the aggregation method of `name`'s file; returns the
    /// old one.
    ///
    /// # Errors
    ///
    /// The text carbon answers.
    pub fn set_metadata(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> std::result::Result<String, String> {
        if key != "aggregationMethod" {
            return Err(format!("Unsupported metadata key \"{key}\""));
        }
        let method: AggregationMethod = value.parse().map_err(|e: whisper::Error| e.to_string())?;
        let path = self.metadata_path(name)?;
        // Through the shared header cache, so the persisters see the new method at once.
        OpenOptions::new()
            .write(true)
            .lock(self.inner.whisper.lock)
            .header_cache(Some(&self.inner.headers))
            .open(&path)
            .and_then(|mut f| f.set_aggregation(Some(method), None))
            .map(|(old, _)| old.name().to_string())
            .map_err(|e| e.to_string())
    }

    fn metadata_path(&self, name: &str) -> std::result::Result<PathBuf, String> {
        let name = storable_name(name, self.inner.tag_hash_filenames)
            .ok_or_else(|| format!("invalid metric name {name:?}"))?;
        self.inner.path_of(&name).map_err(|e| e.to_string())
    }

    /// The self-metric counters (the server adds its own).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Reports `source`'s points with the store's self-metrics, every
    /// `CARBON_METRIC_INTERVAL`, under the same prefix: a name `alert.rounds` is written as
    /// `carbon.agents.<host>-<instance>.alert.rounds`, with the same timestamp. The source is
    /// called on the store's maintenance thread (keep it quick); it is never called when
    /// self-metrics are off.
    pub fn add_self_metrics(&self, source: SelfMetricsSource) {
        self.inner.extra_metrics.lock().unwrap_or_else(PoisonError::into_inner).push(source);
    }

    /// Tells the self-metrics how many connections are open.
    pub fn set_active_connections(&self, n: u64) {
        self.inner.active_connections.store(n, Ordering::Relaxed);
    }

    /// Points in the cache.
    pub fn cache_size(&self) -> usize {
        self.inner.cache.size()
    }

    /// Bytes the cache's points, entries and names use (the index's are counted apart).
    pub fn cache_bytes(&self) -> usize {
        self.inner.cache.allocated_bytes()
    }

    /// Writes every cached point and waits until they are on disk (the write-ahead log is
    /// then trimmed). For tests and tools; a running server lets the persisters work.
    pub fn flush(&self) {
        self.inner.flushing.fetch_add(1, Ordering::SeqCst);
        self.inner.wake_persisters();
        while self.inner.cache.size() > 0 && !self.inner.stopped.load(Ordering::Relaxed) {
            self.inner.wake_persisters();
            std::thread::sleep(Duration::from_millis(2));
        }
        self.inner.flushing.fetch_sub(1, Ordering::SeqCst);
        self.inner.trim_wal();
    }

    /// Stops the store: the persisters write everything left (at
    /// `MAX_UPDATES_PER_SECOND_ON_SHUTDOWN` if set, without the create limit), the log is
    /// trimmed and fsynced, the tag registry synced. Call after the listeners stopped.
    /// Points still unwritten when `deadline` passes stay in the log for the next start.
    ///
    /// # Errors
    ///
    /// The log could not be fsynced.
    pub fn shutdown(self, deadline: Duration) -> Result<()> {
        let inner = &*self.inner;
        inner.draining.store(true, Ordering::SeqCst);
        let until = Instant::now() + deadline;
        while inner.cache.size() > 0 && Instant::now() < until {
            inner.wake_persisters();
            std::thread::sleep(Duration::from_millis(5));
        }
        inner.stop_threads();
        if let Some(wal) = &inner.wal {
            if inner.cache.size() == 0 {
                // Everything is in Whisper: the whole log can go, the current segment too.
                let next = wal.rotate()?;
                wal.sync()?;
                wal.release_before(next)?;
            } else {
                inner.trim_wal();
                wal.sync()?;
            }
        }
        inner.tags.sync()?;
        Ok(())
    }
}

impl Inner {
    pub(crate) fn ingest<'a, I>(&self, points: I) -> Result<usize>
    where
        I: IntoIterator<Item = (&'a str, f64, f64)>,
    {
        let inner = self;
        let now = unix_now();
        let lists = inner.lists.as_ref().map(|l| l.lock().unwrap_or_else(PoisonError::into_inner));
        let mut accepted: Vec<(Cow<'a, str>, u32, f64)> = Vec::new();
        let mut received = 0u64;
        for (name, timestamp, value) in points {
            received += 1;
            if let Some(lists) = &lists {
                if lists.1.get().is_match(name) {
                    Counters::add(&inner.counters.blacklist_matches, 1);
                    continue;
                }
                if !lists.0.get().is_empty() && !lists.0.get().is_match(name) {
                    Counters::add(&inner.counters.whitelist_rejects, 1);
                    continue;
                }
            }
            let Some(point) =
                Datapoint::new(timestamp, value).received(now, inner.min_timestamp_resolution)
            else {
                Counters::add(&inner.counters.nan_values, 1);
                continue;
            };
            let Some(ts) = whisper_timestamp(point.timestamp) else {
                Counters::add(&inner.counters.bad_timestamps, 1);
                continue;
            };
            let Some(name) = storable_name(name, inner.tag_hash_filenames) else {
                Counters::add(&inner.counters.bad_names, 1);
                continue;
            };
            accepted.push((name, ts, point.value));
        }
        drop(lists);
        Counters::add(&inner.counters.metrics_received, received);
        if accepted.is_empty() {
            return Ok(0);
        }
        if inner.drop_when_full && inner.cache.size() >= inner.max_cache_points {
            Counters::add(&inner.counters.overflow, accepted.len() as u64);
            return Ok(0);
        }
        let segment = match &inner.wal {
            Some(wal) => {
                let batch: Vec<(&str, u32, f64)> =
                    accepted.iter().map(|(n, t, v)| (n.as_ref(), *t, *v)).collect();
                wal.append(&batch)?.get()
            }
            None => 0,
        };
        let batch: Vec<(&str, CachedPoint)> =
            accepted.iter().map(|(n, t, v)| (n.as_ref(), CachedPoint::new(*t, *v))).collect();
        // A name the cache already has an entry for is in the index too.
        let inserted = inner
            .cache
            .insert_batch(&batch, segment, |name| index_name(&inner.metrics, &inner.tags, name));
        if inserted.new_pending > 0 {
            *inner
                .segment_refs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(segment)
                .or_default() += inserted.new_pending;
        }
        inner.wake_persisters();
        Ok(accepted.len())
    }

    /// Stops every thread now (no drain).
    fn stop_threads(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_persisters();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in &threads {
            t.thread().unpark();
        }
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }

    pub(crate) fn wake_persisters(&self) {
        let (lock, cvar) = &self.work;
        let mut generation = lock.lock().unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        cvar.notify_all();
    }

    /// The file of a stored name.
    pub(crate) fn path_of(&self, name: &str) -> Result<PathBuf> {
        let relative = tags::disk_path(name, self.tag_hash_filenames).map_err(|e| Error::Io {
            path: PathBuf::from(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        Ok(self.data_dir.join(relative))
    }

    /// The header a new file for `name` gets from the schema and aggregation rules.
    pub(crate) fn header_for(&self, name: &str) -> Result<Header> {
        let schemas = self.schemas.lock().unwrap_or_else(PoisonError::into_inner);
        let aggregation = self.aggregation.lock().unwrap_or_else(PoisonError::into_inner);
        let (wanted, _, _) = crate::audit::expected(name, schemas.get(), aggregation.get());
        drop((schemas, aggregation));
        Ok(Header::new(
            &wanted.retentions,
            f64::from(wanted.x_files_factor),
            wanted.aggregation_method,
        )?)
    }

    /// A segment reference of a cache entry is gone.
    pub(crate) fn release_segment(&self, segment: u64) {
        let mut refs = self.segment_refs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = refs.get_mut(&segment) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                refs.remove(&segment);
            }
        }
    }

    /// Removes log segments older than every segment a cache entry still needs.
    pub(crate) fn trim_wal(&self) {
        let Some(wal) = &self.wal else { return };
        let current = wal.current_segment();
        let oldest_needed = {
            let refs = self.segment_refs.lock().unwrap_or_else(PoisonError::into_inner);
            refs.keys().next().copied()
        };
        let keep_from = oldest_needed.map_or(current.get(), |s| s.min(current.get()));
        if let Err(e) = wal.release_before(crate::wal::SegmentId::new(keep_from)) {
            tracing::warn!(error = %e, "cannot trim the write-ahead log");
        }
    }
}

/// Indexes a stored name: the metric index, and the tag index for tagged series. A tagged
/// series whose registration failed (a registry write error) leaves the metric index again,
/// so its next point retries. Returns whether the name was new to the index (found in no
/// file at start and not received since).
fn index_name(metrics: &MetricIndex, tags: &TagIndex, name: &str) -> bool {
    let new = metrics.insert(name);
    if new
        && name.contains(';')
        && let Err(e) = tags.insert(name)
    {
        metrics.remove(name);
        tracing::warn!(name, error = %e, "cannot register tagged series; retrying with its next point");
    }
    new
}

/// The name as carbon-cache stores it (tags normalised; a name carbon cannot parse is kept as
/// it came, as carbon does), if it is safe and fits the filesystem.
pub(crate) fn storable_name(name: &str, hash_filenames: bool) -> Option<Cow<'_, str>> {
    let needs_parse = name.contains(';') || name.starts_with('~') || name.ends_with("\"}");
    let name: Cow<'_, str> = if needs_parse {
        match tags::normalize(name) {
            Ok(n) => Cow::Owned(n),
            Err(_) => Cow::Borrowed(name),
        }
    } else {
        Cow::Borrowed(name)
    };
    carbon_proto::MetricName::new(&name).ok()?;
    // The cache holds names up to 1 GiB; no file could have a longer one anyway.
    let fits_cache = name.len() <= crate::cache::MAX_NAME_BYTES;
    (fits_cache && fits_filesystem(&name, hash_filenames)).then_some(name)
}

/// Whether the name's file path fits the filesystem's limits (each name at most 255 bytes,
/// the path at most 4095).
fn fits_filesystem(name: &str, hash_filenames: bool) -> bool {
    if name.contains(';') {
        // `_tagged/xxx/yyy/<sha256>.wsp` always fits; the readable form is one file name.
        return hash_filenames || name.replace('.', "_DOT_").len() + 4 <= NAME_MAX_BYTES;
    }
    let mut components = name.split('.').peekable();
    while let Some(c) = components.next() {
        let limit = if components.peek().is_none() { NAME_MAX_BYTES - 4 } else { NAME_MAX_BYTES };
        if c.len() > limit {
            return false;
        }
    }
    name.len() + 4 <= PATH_MAX_BYTES
}

/// A timestamp Whisper can store: finite, truncated, within `0..2^32`.
fn whisper_timestamp(ts: f64) -> Option<u32> {
    if !ts.is_finite() {
        return None;
    }
    let t = ts.trunc();
    (0.0..=f64::from(u32::MAX)).contains(&t).then_some(t as u32)
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Files whose headers are kept: the metrics found at start and a quarter more for new ones,
/// between 16k and 256k (about 150 bytes each).
fn header_cache_capacity(metrics: usize) -> usize {
    (metrics + metrics / 4).clamp(16_384, 262_144)
}

fn bucket_per_second(limit: RateLimit) -> TokenBucket {
    match limit {
        RateLimit::Unlimited => TokenBucket::per_second(f64::INFINITY),
        RateLimit::Limited(n) => TokenBucket::per_second(n),
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|source| Error::Io { path: PathBuf::from(format!("<thread {name}>")), source })
}

/// Self-metrics, config reloads, log trimming: once a second.
fn maintenance(inner: Arc<Inner>, self_metrics: Option<(String, Duration, String)>) {
    let mut reporter = self_metrics
        .as_ref()
        .map(|(prefix, _, instance)| Reporter::new(prefix, &hostname(), instance));
    let interval = self_metrics.as_ref().map(|(_, i, _)| *i);
    let mut last_report = Instant::now();
    let mut last_schema_check = Instant::now();
    let mut last_list_check = Instant::now();
    let mut last_sweep = Instant::now();
    let tick = Duration::from_millis(250);
    while !inner.stopped.load(Ordering::Relaxed) {
        // Woken early by `stop_threads`.
        std::thread::park_timeout(tick);
        if inner.stopped.load(Ordering::Relaxed) {
            break;
        }
        inner.trim_wal();
        if last_list_check.elapsed() >= Duration::from_secs(10) {
            last_list_check = Instant::now();
            if let Some(lists) = &inner.lists {
                let mut guard = lists.lock().unwrap_or_else(PoisonError::into_inner);
                let (white, black) = &mut *guard;
                for list in [white, black] {
                    if let Err(e) = list.reload_if_changed() {
                        tracing::warn!(error = %e, "keeping the old list");
                    }
                }
            }
        }
        if last_sweep.elapsed() >= CACHE_SWEEP_INTERVAL {
            last_sweep = Instant::now();
            inner.cache.sweep();
        }
        if last_schema_check.elapsed() >= Duration::from_secs(60) {
            last_schema_check = Instant::now();
            if let Err(e) =
                inner.schemas.lock().unwrap_or_else(PoisonError::into_inner).reload_if_changed()
            {
                tracing::warn!(error = %e, "keeping the old storage schemas");
            }
            if let Err(e) =
                inner.aggregation.lock().unwrap_or_else(PoisonError::into_inner).reload_if_changed()
            {
                tracing::warn!(error = %e, "keeping the old aggregation rules");
            }
        }
        if let (Some(r), Some(interval)) = (reporter.as_mut(), interval)
            && last_report.elapsed() >= interval
        {
            last_report = Instant::now();
            let gauges = Gauges {
                cache_size: inner.cache.size(),
                cache_queues: inner.cache.metrics(),
                active_connections: inner.active_connections.load(Ordering::Relaxed),
            };
            let mut points = r.report(&inner.counters, gauges);
            for source in
                inner.extra_metrics.lock().unwrap_or_else(PoisonError::into_inner).iter_mut()
            {
                points
                    .extend(source().into_iter().map(|(n, v)| (format!("{}.{n}", r.prefix()), v)));
            }
            let now = unix_now();
            if let Err(e) = inner.ingest(points.iter().map(|(n, v)| (n.as_str(), now, *v))) {
                tracing::warn!(error = %e, "cannot store self-metrics");
            }
        }
    }
}
