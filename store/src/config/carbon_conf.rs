//! `carbon.conf`: carbon-cache's settings, read as `carbon.conf.read_config` reads them for
//! `carbon-cache`, with carbon's code defaults for everything the file leaves out.
//!
//! 1. The directories start from the environment: `CONF_DIR` is `$GRAPHITE_CONF_DIR` or
//!    `$GRAPHITE_ROOT/conf` (the directory of the config file when one is given explicitly),
//!    `STORAGE_DIR` is `$GRAPHITE_STORAGE_DIR` or `$GRAPHITE_ROOT/storage`.
//! 2. The `[cache]` section is read; every key, upper-cased, is typed by its code default:
//!    list defaults are split on `,` and stripped, bool defaults take ConfigParser's booleans,
//!    everything else is tried as `int`, then `float` (so `inf` works), else kept as text.
//!    Keys from `[DEFAULT]` are read too; `%(name)s` interpolation applies.
//! 3. `PID_DIR`, `LOG_DIR` (`STORAGE_DIR/log/carbon-cache`), `LOCAL_DATA_DIR`
//!    (`STORAGE_DIR/whisper`) and `WHITELISTS_DIR` (`STORAGE_DIR/lists`) default from the
//!    `STORAGE_DIR` known at this point.
//! 4. With an instance (default `a`), `[cache:<instance>]` overrides; the pidfile is
//!    `PID_DIR/carbon-cache-<instance>.pid` and the log directory
//!    `LOG_DIR/carbon-cache-<instance>`. Without one, `PID_DIR/carbon-cache.pid` and `LOG_DIR`.
//! 5. The directories are expanded (`~`) and normalised, and the white/blacklists default to
//!    `CONF_DIR/whitelist.conf` and `CONF_DIR/blacklist.conf`.
//!
//! Then the keys a carbon-cache replacement uses are checked against the type and range they
//! need; a value carbon would choke on later (a port of `abc`, a negative rate) is an error
//! naming the file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
use super::ini::Ini;
use super::read_optional;
use super::text::{
    decode, py_dirname, py_expanduser, py_float, py_int, py_join, py_normpath, py_strip,
};

/// The root used when `$GRAPHITE_ROOT` is not set: upstream's install prefix. (carbon refuses
/// to start without a root; its scripts set it to the parent of their own directory.)
pub const DEFAULT_GRAPHITE_ROOT: &str = "/opt/graphite";

/// The instance carbon's `--instance` defaults to.
pub const DEFAULT_INSTANCE: &str = "a";

/// The program name carbon derives the section, pidfile and log directory names from.
const PROGRAM: &str = "carbon-cache";

/// The section carbon-cache reads.
const SECTION: &str = "cache";

/// How carbon types a key's value: by the type of the key's code default.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    List,
    Bool,
    /// `int`, else `float`, else the text.
    Auto,
}

/// Every key of carbon 1.1.7's `defaults` dict whose default is a list or a bool (the others
/// are all typed the same way, as are keys carbon does not know).
const TYPED_KEYS: &[(&str, Kind)] = &[
    ("BIND_PATTERNS", Kind::List),
    ("DESTINATIONS", Kind::List),
    ("ENABLE_UDP_LISTENER", Kind::Bool),
    ("LOG_UPDATES", Kind::Bool),
    ("LOG_CREATES", Kind::Bool),
    ("LOG_CACHE_HITS", Kind::Bool),
    ("LOG_CACHE_QUEUE_SORTS", Kind::Bool),
    ("WHISPER_AUTOFLUSH", Kind::Bool),
    ("WHISPER_SPARSE_CREATE", Kind::Bool),
    ("WHISPER_FALLOCATE_CREATE", Kind::Bool),
    ("WHISPER_LOCK_WRITES", Kind::Bool),
    ("WHISPER_FADVISE_RANDOM", Kind::Bool),
    ("CERES_LOCK_WRITES", Kind::Bool),
    ("FORWARD_ALL", Kind::Bool),
    ("ENABLE_AMQP", Kind::Bool),
    ("AMQP_METRIC_NAME_IN_BODY", Kind::Bool),
    ("AMQP_VERBOSE", Kind::Bool),
    ("ENABLE_TAGS", Kind::Bool),
    ("TAG_HASH_FILENAMES", Kind::Bool),
    ("TAG_RELAY_NORMALIZED", Kind::Bool),
    // Ours (carbon has no write-ahead log).
    ("WAL_ENABLED", Kind::Bool),
    ("ENABLE_MANHOLE", Kind::Bool),
    ("DYNAMIC_ROUTER", Kind::Bool),
    ("DIVERSE_REPLICAS", Kind::Bool),
    ("DESTINATION_POOL_REPLICAS", Kind::Bool),
    ("USE_FLOW_CONTROL", Kind::Bool),
    ("USE_INSECURE_UNPICKLER", Kind::Bool),
    ("USE_WHITELIST", Kind::Bool),
    ("TCP_KEEPALIVE", Kind::Bool),
    ("USE_RATIO_RESET", Kind::Bool),
    ("LOG_LISTENER_CONN_SUCCESS", Kind::Bool),
    ("LOG_AGGREGATOR_MISSES", Kind::Bool),
    ("ENABLE_LOGROTATION", Kind::Bool),
];

/// The other keys carbon knows: the rest of its `defaults` dict and the keys it reads without a
/// default. A key in none of the lists draws an "unknown key" warning.
const OTHER_KNOWN_KEYS: &[&str] = &[
    "USER",
    "MAX_CACHE_SIZE",
    "MAX_UPDATES_PER_SECOND",
    "MAX_CREATES_PER_MINUTE",
    "MIN_TIMESTAMP_RESOLUTION",
    "MIN_TIMESTAMP_LAG",
    "LINE_RECEIVER_INTERFACE",
    "LINE_RECEIVER_PORT",
    "UDP_RECEIVER_INTERFACE",
    "UDP_RECEIVER_PORT",
    "PICKLE_RECEIVER_INTERFACE",
    "PICKLE_RECEIVER_PORT",
    "MAX_RECEIVER_CONNECTIONS",
    "CACHE_QUERY_INTERFACE",
    "CACHE_QUERY_PORT",
    "DATABASE",
    "CERES_MAX_SLICE_GAP",
    "CERES_NODE_CACHING_BEHAVIOR",
    "CERES_SLICE_CACHING_BEHAVIOR",
    "MAX_DATAPOINTS_PER_MESSAGE",
    "MAX_AGGREGATION_INTERVALS",
    "MAX_QUEUE_SIZE",
    "QUEUE_LOW_WATERMARK_PCT",
    "TIME_TO_DEFER_SENDING",
    "AMQP_SPEC",
    "GRAPHITE_URL",
    "TAG_UPDATE_INTERVAL",
    "TAG_BATCH_SIZE",
    "TAG_QUEUE_SIZE",
    "MANHOLE_INTERFACE",
    "MANHOLE_PORT",
    "MANHOLE_USER",
    "MANHOLE_PUBLIC_KEY",
    "MANHOLE_HOST_KEY_DIR",
    "RELAY_METHOD",
    "DYNAMIC_ROUTER_MAX_RETRIES",
    "ROUTER_HASH_TYPE",
    "REPLICATION_FACTOR",
    "DESTINATION_PROTOCOL",
    "DESTINATION_TRANSPORT",
    "DESTINATION_SSL_CA",
    "CARBON_METRIC_PREFIX",
    "CARBON_METRIC_INTERVAL",
    "CACHE_WRITE_STRATEGY",
    "WRITE_BACK_FREQUENCY",
    "MIN_RESET_STAT_FLOW",
    "MIN_RESET_RATIO",
    "MIN_RESET_INTERVAL",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
    "AGGREGATION_RULES",
    "REWRITE_RULES",
    "RELAY_RULES",
    "METRIC_CLIENT_IDLE_TIMEOUT",
    "CACHE_METRIC_NAMES_MAX",
    "CACHE_METRIC_NAMES_TTL",
    "RAVEN_DSN",
    "PICKLE_RECEIVER_MAX_LENGTH",
    // Read without a code default.
    "STORAGE_DIR",
    "LOCAL_DATA_DIR",
    "WHITELISTS_DIR",
    "CONF_DIR",
    "LOG_DIR",
    "PID_DIR",
    "MAX_UPDATES_PER_SECOND_ON_SHUTDOWN",
    "PROTOBUF_RECEIVER_INTERFACE",
    "PROTOBUF_RECEIVER_PORT",
    "AMQP_HOST",
    "AMQP_PORT",
    "AMQP_VHOST",
    "AMQP_USER",
    "AMQP_PASSWORD",
    "AMQP_EXCHANGE",
    "CACHE_SIZE_LOW_WATERMARK",
    // Ours: the write-ahead log (carbon ignores keys it does not know).
    "WAL_DIR",
    "WAL_FSYNC",
    "WAL_FSYNC_INTERVAL",
];

fn kind_of(key: &str) -> Kind {
    TYPED_KEYS.iter().find(|(k, _)| *k == key).map_or(Kind::Auto, |(_, kind)| *kind)
}

fn is_known(key: &str) -> bool {
    TYPED_KEYS.iter().any(|(k, _)| *k == key) || OTHER_KNOWN_KEYS.contains(&key)
}

/// A `carbon.conf` value, typed as carbon types it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A key whose default is a list: the value split on `,`, each part stripped (an empty
    /// value is a list of one empty string, as in carbon).
    List(Vec<String>),
    /// A key whose default is a bool.
    Bool(bool),
    /// An integer (Python's `int()` accepted it). Integers past `i64` are kept as [`Value::Float`]
    /// (Python keeps them exact; no key carbon-cache uses takes such numbers).
    Int(i64),
    /// A number Python's `float()` accepted (`inf`, `1e3`, `0.5`).
    Float(f64),
    /// Anything else, as written.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::List(items) => write!(f, "{}", items.join(", ")),
            Value::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// Types a value by its key, as `Settings.readFrom` does; `None` for a bool key whose value is
/// not a ConfigParser boolean (carbon raises there).
fn typed(key: &str, raw: &str) -> Option<Value> {
    Some(match kind_of(key) {
        Kind::List => Value::List(raw.split(',').map(|p| py_strip(p).to_string()).collect()),
        Kind::Bool => match raw.to_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Value::Bool(true),
            "0" | "no" | "false" | "off" => Value::Bool(false),
            _ => return None,
        },
        Kind::Auto => match py_int(raw) {
            Some(Ok(i)) => Value::Int(i),
            Some(Err(())) => {
                py_float(raw).map_or_else(|| Value::Str(raw.to_string()), Value::Float)
            }
            None => py_float(raw).map_or_else(|| Value::Str(raw.to_string()), Value::Float),
        },
    })
}

/// One key read from `carbon.conf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    value: Value,
    raw: String,
    line: usize,
    section: String,
}

impl Setting {
    /// The value, typed as carbon types it.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The value as written (after interpolation).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The line of the key.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The section that set it last (`cache`, `cache:a`); a key inherited from `[DEFAULT]`
    /// names the section that inherited it.
    pub fn section(&self) -> &str {
        &self.section
    }
}

/// The environment variables carbon reads, passed in explicitly so tests need not touch the
/// process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEnv {
    /// `$GRAPHITE_ROOT`; [`DEFAULT_GRAPHITE_ROOT`] when unset.
    pub graphite_root: Option<String>,
    /// `$GRAPHITE_CONF_DIR`: overrides `$GRAPHITE_ROOT/conf`.
    pub graphite_conf_dir: Option<String>,
    /// `$GRAPHITE_STORAGE_DIR`: overrides `$GRAPHITE_ROOT/storage`.
    pub graphite_storage_dir: Option<String>,
    /// `$HOME`, for `~` in directories.
    pub home: Option<String>,
}

impl ConfigEnv {
    /// Reads the variables from the process environment (a value that is not UTF-8 is taken
    /// with replacement characters).
    pub fn from_process() -> ConfigEnv {
        let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        ConfigEnv {
            graphite_root: var("GRAPHITE_ROOT"),
            graphite_conf_dir: var("GRAPHITE_CONF_DIR"),
            graphite_storage_dir: var("GRAPHITE_STORAGE_DIR"),
            home: var("HOME"),
        }
    }
}

/// A rate limit from `carbon.conf`; the unit is in the key's name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// `inf`: no limit.
    Unlimited,
    /// At most this many per unit of time.
    Limited(f64),
}

/// How the writer picks the next metric to flush (`CACHE_WRITE_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheWriteStrategy {
    /// `sorted`: metrics with the most points first, the order re-computed per pass.
    #[default]
    Sorted,
    /// `timesorted`: metrics with the oldest points first.
    TimeSorted,
    /// `max`: always the metric with the most points.
    Max,
    /// `naive`: any metric.
    Naive,
    /// `random`: a random metric (carbon's cache accepts it though its config check warns).
    Random,
}

impl CacheWriteStrategy {
    /// carbon's name for it.
    pub fn name(self) -> &'static str {
        match self {
            CacheWriteStrategy::Sorted => "sorted",
            CacheWriteStrategy::TimeSorted => "timesorted",
            CacheWriteStrategy::Max => "max",
            CacheWriteStrategy::Naive => "naive",
            CacheWriteStrategy::Random => "random",
        }
    }
}

/// carbon-cache's settings.
///
/// Every field has carbon 1.1.7's code default (not the Debian file's). Build one with
/// [`CarbonConfigBuilder`]; [`CarbonConfig::default`] is what it gives with no file and no
/// environment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CarbonConfig {
    /// The `carbon.conf` read, if one was.
    pub config_file: Option<PathBuf>,
    /// The instance (`--instance`, default `a`); `None` when run without one.
    pub instance: Option<String>,
    /// `CONF_DIR`: where the other config files are.
    pub conf_dir: PathBuf,
    /// `STORAGE_DIR`: the base of the other directories.
    pub storage_dir: PathBuf,
    /// `LOCAL_DATA_DIR`: the Whisper tree (`STORAGE_DIR/whisper`).
    pub local_data_dir: PathBuf,
    /// `WHITELISTS_DIR` (`STORAGE_DIR/lists`; carbon does not use it).
    pub whitelists_dir: PathBuf,
    /// `LOG_DIR`, instance part included (`STORAGE_DIR/log/carbon-cache/carbon-cache-a`).
    pub log_dir: PathBuf,
    /// `PID_DIR` (`STORAGE_DIR`).
    pub pid_dir: PathBuf,
    /// The pidfile (`PID_DIR/carbon-cache-a.pid`).
    pub pidfile: PathBuf,
    /// The whitelist file (`CONF_DIR/whitelist.conf`).
    pub whitelist: PathBuf,
    /// The blacklist file (`CONF_DIR/blacklist.conf`).
    pub blacklist: PathBuf,
    /// `USER`: drop privileges to this user; empty for none.
    pub user: String,

    /// `LINE_RECEIVER_INTERFACE` (`0.0.0.0`).
    pub line_receiver_interface: String,
    /// `LINE_RECEIVER_PORT` (2003); 0 disables the listener.
    pub line_receiver_port: u16,
    /// `ENABLE_UDP_LISTENER` (false).
    pub enable_udp_listener: bool,
    /// `UDP_RECEIVER_INTERFACE` (`0.0.0.0`).
    pub udp_receiver_interface: String,
    /// `UDP_RECEIVER_PORT` (2003); 0 disables the listener.
    pub udp_receiver_port: u16,
    /// `PICKLE_RECEIVER_INTERFACE` (`0.0.0.0`).
    pub pickle_receiver_interface: String,
    /// `PICKLE_RECEIVER_PORT` (2004); 0 disables the listener.
    pub pickle_receiver_port: u16,
    /// `PICKLE_RECEIVER_MAX_LENGTH`: the largest pickle frame in bytes (1 MiB).
    pub pickle_receiver_max_length: usize,
    /// `CACHE_QUERY_INTERFACE` (`0.0.0.0`).
    pub cache_query_interface: String,
    /// `CACHE_QUERY_PORT` (7002).
    pub cache_query_port: u16,
    /// `MAX_RECEIVER_CONNECTIONS`: `None` for `inf` (the default).
    pub max_receiver_connections: Option<usize>,
    /// `METRIC_CLIENT_IDLE_TIMEOUT`: close idle receiver connections; `None` (default) never.
    pub metric_client_idle_timeout: Option<Duration>,
    /// `TCP_KEEPALIVE` (true).
    pub tcp_keepalive: bool,
    /// `TCP_KEEPIDLE` in seconds (10).
    pub tcp_keepidle: u32,
    /// `TCP_KEEPINTVL` in seconds (30).
    pub tcp_keepintvl: u32,
    /// `TCP_KEEPCNT` (2).
    pub tcp_keepcnt: u32,
    /// `USE_INSECURE_UNPICKLER` (false).
    pub use_insecure_unpickler: bool,
    /// `LOG_LISTENER_CONN_SUCCESS` (true).
    pub log_listener_conn_success: bool,

    /// `MAX_CACHE_SIZE` in points: `None` for `inf` (the default).
    pub max_cache_size: Option<u64>,
    /// `MAX_UPDATES_PER_SECOND`: Whisper `update_many` calls per second (500).
    pub max_updates_per_second: RateLimit,
    /// `MAX_UPDATES_PER_SECOND_ON_SHUTDOWN`: the rate while draining at shutdown; `None`
    /// (default) keeps the normal rates.
    pub max_updates_per_second_on_shutdown: Option<RateLimit>,
    /// `MAX_CREATES_PER_MINUTE`: new Whisper files per minute (`inf`); 0 creates none.
    pub max_creates_per_minute: RateLimit,
    /// `MIN_TIMESTAMP_RESOLUTION` in seconds: timestamps are truncated to a multiple; 0 (the
    /// default) leaves them.
    pub min_timestamp_resolution: u32,
    /// `MIN_TIMESTAMP_LAG` in seconds: with `timesorted`, points younger than this wait (0).
    pub min_timestamp_lag: u32,
    /// `CACHE_WRITE_STRATEGY` (`sorted`).
    pub cache_write_strategy: CacheWriteStrategy,
    /// `USE_FLOW_CONTROL`: pause receivers when the cache is full instead of dropping (true).
    pub use_flow_control: bool,
    /// `WHISPER_AUTOFLUSH` (false).
    pub whisper_autoflush: bool,
    /// `WHISPER_SPARSE_CREATE` (false).
    pub whisper_sparse_create: bool,
    /// `WHISPER_FALLOCATE_CREATE` (false).
    pub whisper_fallocate_create: bool,
    /// `WHISPER_LOCK_WRITES` (false).
    pub whisper_lock_writes: bool,
    /// `WHISPER_FADVISE_RANDOM` (false).
    pub whisper_fadvise_random: bool,

    /// `USE_WHITELIST`: apply the white and blacklists (false).
    pub use_whitelist: bool,
    /// `ENABLE_TAGS`: accept tagged names and register them (true).
    pub enable_tags: bool,
    /// `TAG_HASH_FILENAMES`: store tagged series under a hash (true).
    pub tag_hash_filenames: bool,
    /// `TAG_UPDATE_INTERVAL`: re-register a series' tags every this many updates (100).
    pub tag_update_interval: u64,
    /// `TAG_BATCH_SIZE`: series per registration request (100).
    pub tag_batch_size: usize,
    /// `TAG_QUEUE_SIZE`: series waiting for registration; 0 for no bound (10000).
    pub tag_queue_size: usize,
    /// `GRAPHITE_URL`: where tags are registered (`http://127.0.0.1:80`).
    pub graphite_url: String,

    /// `LOG_UPDATES` (true).
    pub log_updates: bool,
    /// `LOG_CREATES` (true).
    pub log_creates: bool,
    /// `LOG_CACHE_HITS` (true).
    pub log_cache_hits: bool,
    /// `LOG_CACHE_QUEUE_SORTS` (true).
    pub log_cache_queue_sorts: bool,
    /// `ENABLE_LOGROTATION` (true).
    pub enable_logrotation: bool,

    /// `WAL_ENABLED` (ours, true): keep a write-ahead log of received points, so a crash
    /// loses at most the fsync interval instead of the whole cache.
    pub wal_enabled: bool,
    /// `WAL_DIR` (ours): the log's directory (`STORAGE_DIR/wal`).
    pub wal_dir: PathBuf,
    /// `WAL_FSYNC` (`interval`, `always` or `never`) and `WAL_FSYNC_INTERVAL` (seconds, 1):
    /// when the log is fsynced. `always` acknowledges points only once they are on disk.
    pub wal_fsync: crate::wal::FsyncPolicy,

    /// `CARBON_METRIC_PREFIX` (`carbon`).
    pub carbon_metric_prefix: String,
    /// `CARBON_METRIC_INTERVAL` (60 s); `None` when 0, which disables the self-metrics.
    pub carbon_metric_interval: Option<Duration>,

    settings: BTreeMap<String, Setting>,
    warnings: Vec<ConfigWarning>,
}

impl CarbonConfig {
    /// The key as read from the file (upper-case name), after the instance section.
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.get(key)
    }

    /// Every key the file set, by upper-case name, including those this implementation does
    /// not use.
    pub fn settings(&self) -> &BTreeMap<String, Setting> {
        &self.settings
    }

    /// Unknown keys and settings for carbon features this implementation does not have.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// `CACHE_SIZE_LOW_WATERMARK`: 95 % of `MAX_CACHE_SIZE`, where a paused receiver resumes.
    pub fn cache_size_low_watermark(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        self.max_cache_size.map(|m| m as f64 * 0.95)
    }

    /// `CONF_DIR/storage-schemas.conf`.
    pub fn storage_schemas_path(&self) -> PathBuf {
        self.conf_dir.join("storage-schemas.conf")
    }

    /// `CONF_DIR/storage-aggregation.conf`.
    pub fn storage_aggregation_path(&self) -> PathBuf {
        self.conf_dir.join("storage-aggregation.conf")
    }
}

impl Default for CarbonConfig {
    /// carbon's code defaults, no file, no environment, instance `a`.
    fn default() -> CarbonConfig {
        // Without a file nothing is parsed and every field takes its default, which passes its
        // own checks: this cannot fail.
        CarbonConfigBuilder::new()
            .resolve(None)
            .unwrap_or_else(|_| unreachable!("the defaults need no file and are valid"))
    }
}

/// Builds a [`CarbonConfig`] as carbon-cache's command line and environment would.
///
/// ```
/// use store::config::{CarbonConfigBuilder, ConfigEnv, RateLimit};
///
/// let mut builder = CarbonConfigBuilder::new();
/// builder.env(ConfigEnv { graphite_root: Some("/srv/graphite".into()), ..ConfigEnv::default() });
/// let config = builder.build_from_text(
///     "[cache]\nMAX_CREATES_PER_MINUTE = 50\nLINE_RECEIVER_PORT = 2103\n\n\
///      [cache:a]\nLINE_RECEIVER_PORT = 2003\n",
/// )?;
/// assert_eq!(config.line_receiver_port, 2003);
/// assert_eq!(config.max_creates_per_minute, RateLimit::Limited(50.0));
/// assert_eq!(config.local_data_dir, std::path::Path::new("/srv/graphite/storage/whisper"));
/// assert_eq!(config.pidfile, std::path::Path::new("/srv/graphite/storage/carbon-cache-a.pid"));
/// # Ok::<(), store::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CarbonConfigBuilder {
    env: ConfigEnv,
    config_file: Option<PathBuf>,
    instance: String,
    pidfile: Option<PathBuf>,
    logdir: Option<PathBuf>,
    whitelist: Option<PathBuf>,
    blacklist: Option<PathBuf>,
}

impl Default for CarbonConfigBuilder {
    fn default() -> CarbonConfigBuilder {
        CarbonConfigBuilder::new()
    }
}

impl CarbonConfigBuilder {
    /// A builder with no environment, no explicit file and instance `a`.
    pub fn new() -> CarbonConfigBuilder {
        CarbonConfigBuilder {
            env: ConfigEnv::default(),
            config_file: None,
            instance: DEFAULT_INSTANCE.to_string(),
            pidfile: None,
            logdir: None,
            whitelist: None,
            blacklist: None,
        }
    }

    /// The environment (default: no variables set; pass [`ConfigEnv::from_process`] for the
    /// real one).
    pub fn env(&mut self, env: ConfigEnv) -> &mut CarbonConfigBuilder {
        self.env = env;
        self
    }

    /// carbon's `--config`: the file to read; `CONF_DIR` becomes its directory. Default:
    /// `CONF_DIR/carbon.conf`, read if it exists (carbon requires it; here a missing default
    /// file means carbon's code defaults). A file given here must exist.
    pub fn config_file(&mut self, path: impl Into<PathBuf>) -> &mut CarbonConfigBuilder {
        self.config_file = Some(path.into());
        self
    }

    /// carbon's `--instance` (default `a`); an empty name runs without an instance.
    pub fn instance(&mut self, name: &str) -> &mut CarbonConfigBuilder {
        self.instance = name.to_string();
        self
    }

    /// carbon's `--pidfile` (default: under `PID_DIR`).
    pub fn pidfile(&mut self, path: impl Into<PathBuf>) -> &mut CarbonConfigBuilder {
        self.pidfile = Some(path.into());
        self
    }

    /// carbon's `--logdir`: replaces the whole log directory (default: under `LOG_DIR`).
    pub fn logdir(&mut self, path: impl Into<PathBuf>) -> &mut CarbonConfigBuilder {
        self.logdir = Some(path.into());
        self
    }

    /// carbon's `--whitelist` (default `CONF_DIR/whitelist.conf`).
    pub fn whitelist(&mut self, path: impl Into<PathBuf>) -> &mut CarbonConfigBuilder {
        self.whitelist = Some(path.into());
        self
    }

    /// carbon's `--blacklist` (default `CONF_DIR/blacklist.conf`).
    pub fn blacklist(&mut self, path: impl Into<PathBuf>) -> &mut CarbonConfigBuilder {
        self.blacklist = Some(path.into());
        self
    }

    /// Where the config file is looked for: the explicit one, or `CONF_DIR/carbon.conf`.
    pub fn config_path(&self) -> PathBuf {
        match &self.config_file {
            Some(path) => path.clone(),
            None => PathBuf::from(py_join(&self.start_dirs().0, "carbon.conf")),
        }
    }

    /// Reads the config file and builds the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] if an explicit file is missing or a file cannot be read; INI
    /// syntax and interpolation errors; a value of the wrong type or out of range
    /// ([`ConfigErrorKind::Value`]). Each names the file and, but for I/O, the line.
    pub fn build(&self) -> Result<CarbonConfig, ConfigError> {
        let path = self.config_path();
        let bytes = if self.config_file.is_some() {
            Some(
                std::fs::read(&path)
                    .map_err(|e| ConfigError::new(&path, None, ConfigErrorKind::Io(e)))?,
            )
        } else {
            read_optional(&path)?
        };
        match bytes {
            Some(bytes) => self.resolve(Some((&path, decode(&bytes, &path)?))),
            None => self.resolve(None),
        }
    }

    /// Builds the settings from `text` as the config file's content (no file is read; errors
    /// name [`CarbonConfigBuilder::config_path`]).
    ///
    /// # Errors
    ///
    /// As [`CarbonConfigBuilder::build`], I/O aside.
    pub fn build_from_text(&self, text: &str) -> Result<CarbonConfig, ConfigError> {
        self.resolve(Some((&self.config_path(), text)))
    }

    /// `(CONF_DIR, STORAGE_DIR)` before the file is read.
    fn start_dirs(&self) -> (String, String) {
        let root = self.env.graphite_root.as_deref().unwrap_or(DEFAULT_GRAPHITE_ROOT);
        let conf_dir = match &self.config_file {
            Some(path) => py_dirname(&py_normpath(&path.to_string_lossy())),
            None => self.env.graphite_conf_dir.clone().unwrap_or_else(|| py_join(root, "conf")),
        };
        let storage_dir =
            self.env.graphite_storage_dir.clone().unwrap_or_else(|| py_join(root, "storage"));
        (conf_dir, storage_dir)
    }

    fn resolve(&self, file: Option<(&Path, &str)>) -> Result<CarbonConfig, ConfigError> {
        let (conf_dir, storage_dir) = self.start_dirs();
        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        let mut warnings = Vec::new();
        let ini = match file {
            Some((path, text)) => Some((path, Ini::parse(text, path)?)),
            None => None,
        };
        let read = |section: &str,
                    settings: &mut BTreeMap<String, Setting>,
                    warnings: &mut Vec<ConfigWarning>|
         -> Result<(), ConfigError> {
            let Some((path, ini)) = &ini else { return Ok(()) };
            let Some(items) = ini.items(section) else { return Ok(()) };
            for item in items? {
                let key = item.key.to_uppercase();
                let value = typed(&key, &item.value).ok_or_else(|| {
                    ConfigError::at(
                        path,
                        item.line,
                        ConfigErrorKind::value(
                            &key,
                            &item.value,
                            "a boolean (1, yes, true, on, 0, no, false, off)",
                        ),
                    )
                })?;
                if !item.inherited && !is_known(&key) {
                    warnings.push(ConfigWarning::new(
                        path,
                        Some(item.line),
                        ConfigWarningKind::UnknownKey { key: key.clone() },
                    ));
                }
                let setting = Setting {
                    value,
                    raw: item.value,
                    line: item.line,
                    section: section.to_string(),
                };
                settings.insert(key, setting);
            }
            Ok(())
        };

        read(SECTION, &mut settings, &mut warnings)?;
        let text_of = |settings: &BTreeMap<String, Setting>, key: &str, default: &str| {
            settings.get(key).map_or_else(|| default.to_string(), |s| s.raw.clone())
        };
        // carbon's update_STORAGE_DIR_deps, run once the base section is read.
        let storage = text_of(&settings, "STORAGE_DIR", &storage_dir);
        let pid_dir_default = storage.clone();
        let log_dir_default = py_join(&py_join(&storage, "log"), PROGRAM);
        let local_data_default = py_join(&storage, "whisper");
        let whitelists_default = py_join(&storage, "lists");

        let instance = (!self.instance.is_empty()).then(|| self.instance.clone());
        if let Some(name) = &instance {
            read(&format!("{SECTION}:{name}"), &mut settings, &mut warnings)?;
        }
        let pid_dir = text_of(&settings, "PID_DIR", &pid_dir_default);
        let log_dir = text_of(&settings, "LOG_DIR", &log_dir_default);
        let lossy = |p: &Path| p.to_string_lossy().into_owned();
        let (pidfile, log_dir) = match &instance {
            Some(name) => (
                self.pidfile
                    .as_deref()
                    .map_or_else(|| py_join(&pid_dir, &format!("{PROGRAM}-{name}.pid")), lossy),
                self.logdir
                    .as_deref()
                    .map_or_else(|| py_join(&log_dir, &format!("{PROGRAM}-{name}")), lossy),
            ),
            None => (
                self.pidfile
                    .as_deref()
                    .map_or_else(|| py_join(&pid_dir, &format!("{PROGRAM}.pid")), lossy),
                self.logdir.as_deref().map_or(log_dir, lossy),
            ),
        };
        let home = self.env.home.as_deref();
        let clean = |p: &str| PathBuf::from(py_normpath(&py_expanduser(p, home)));
        let conf_dir = text_of(&settings, "CONF_DIR", &conf_dir);
        let list_file = |explicit: &Option<PathBuf>, name: &str| {
            explicit.clone().unwrap_or_else(|| PathBuf::from(py_join(&conf_dir, name)))
        };

        let path = ini.as_ref().map(|(p, _)| p.to_path_buf());
        let v = Values { settings: &settings, path: path.as_deref().unwrap_or(Path::new("")) };
        let config = CarbonConfig {
            config_file: path.clone(),
            instance,
            storage_dir: clean(&text_of(&settings, "STORAGE_DIR", &storage)),
            local_data_dir: clean(&text_of(&settings, "LOCAL_DATA_DIR", &local_data_default)),
            whitelists_dir: clean(&text_of(&settings, "WHITELISTS_DIR", &whitelists_default)),
            log_dir: clean(&log_dir),
            pid_dir: clean(&pid_dir),
            pidfile: clean(&pidfile),
            whitelist: list_file(&self.whitelist, "whitelist.conf"),
            blacklist: list_file(&self.blacklist, "blacklist.conf"),
            conf_dir: PathBuf::from(conf_dir.clone()),
            user: v.text("USER", ""),

            line_receiver_interface: v.text("LINE_RECEIVER_INTERFACE", "0.0.0.0"),
            line_receiver_port: v.port("LINE_RECEIVER_PORT", 2003)?,
            enable_udp_listener: v.flag("ENABLE_UDP_LISTENER", false),
            udp_receiver_interface: v.text("UDP_RECEIVER_INTERFACE", "0.0.0.0"),
            udp_receiver_port: v.port("UDP_RECEIVER_PORT", 2003)?,
            pickle_receiver_interface: v.text("PICKLE_RECEIVER_INTERFACE", "0.0.0.0"),
            pickle_receiver_port: v.port("PICKLE_RECEIVER_PORT", 2004)?,
            pickle_receiver_max_length: v.whole("PICKLE_RECEIVER_MAX_LENGTH", 1 << 20, 1)?,
            cache_query_interface: v.text("CACHE_QUERY_INTERFACE", "0.0.0.0"),
            cache_query_port: v.port("CACHE_QUERY_PORT", 7002)?,
            max_receiver_connections: v.limit("MAX_RECEIVER_CONNECTIONS")?,
            metric_client_idle_timeout: v.seconds("METRIC_CLIENT_IDLE_TIMEOUT", None, false)?,
            tcp_keepalive: v.flag("TCP_KEEPALIVE", true),
            tcp_keepidle: v.whole("TCP_KEEPIDLE", 10, 1)?,
            tcp_keepintvl: v.whole("TCP_KEEPINTVL", 30, 1)?,
            tcp_keepcnt: v.whole("TCP_KEEPCNT", 2, 1)?,
            use_insecure_unpickler: v.flag("USE_INSECURE_UNPICKLER", false),
            log_listener_conn_success: v.flag("LOG_LISTENER_CONN_SUCCESS", true),

            max_cache_size: v.limit("MAX_CACHE_SIZE")?,
            max_updates_per_second: v
                .rate("MAX_UPDATES_PER_SECOND", false)?
                .unwrap_or(RateLimit::Limited(500.0)),
            max_updates_per_second_on_shutdown: v
                .rate("MAX_UPDATES_PER_SECOND_ON_SHUTDOWN", false)?,
            max_creates_per_minute: v
                .rate("MAX_CREATES_PER_MINUTE", true)?
                .unwrap_or(RateLimit::Unlimited),
            min_timestamp_resolution: v.whole("MIN_TIMESTAMP_RESOLUTION", 0, 0)?,
            min_timestamp_lag: v.whole("MIN_TIMESTAMP_LAG", 0, 0)?,
            cache_write_strategy: v.strategy()?,
            use_flow_control: v.flag("USE_FLOW_CONTROL", true),
            whisper_autoflush: v.flag("WHISPER_AUTOFLUSH", false),
            whisper_sparse_create: v.flag("WHISPER_SPARSE_CREATE", false),
            whisper_fallocate_create: v.flag("WHISPER_FALLOCATE_CREATE", false),
            whisper_lock_writes: v.flag("WHISPER_LOCK_WRITES", false),
            whisper_fadvise_random: v.flag("WHISPER_FADVISE_RANDOM", false),

            use_whitelist: v.flag("USE_WHITELIST", false),
            enable_tags: v.flag("ENABLE_TAGS", true),
            tag_hash_filenames: v.flag("TAG_HASH_FILENAMES", true),
            tag_update_interval: v.whole("TAG_UPDATE_INTERVAL", 100, 1)?,
            tag_batch_size: v.whole("TAG_BATCH_SIZE", 100, 1)?,
            tag_queue_size: v.whole("TAG_QUEUE_SIZE", 10_000, 0)?,
            graphite_url: v.text("GRAPHITE_URL", "http://127.0.0.1:80"),

            log_updates: v.flag("LOG_UPDATES", true),
            log_creates: v.flag("LOG_CREATES", true),
            log_cache_hits: v.flag("LOG_CACHE_HITS", true),
            log_cache_queue_sorts: v.flag("LOG_CACHE_QUEUE_SORTS", true),
            enable_logrotation: v.flag("ENABLE_LOGROTATION", true),

            wal_enabled: v.flag("WAL_ENABLED", true),
            wal_dir: clean(&text_of(&settings, "WAL_DIR", &py_join(&storage, "wal"))),
            wal_fsync: v.wal_fsync()?,

            carbon_metric_prefix: v.text("CARBON_METRIC_PREFIX", "carbon"),
            carbon_metric_interval: v.seconds(
                "CARBON_METRIC_INTERVAL",
                Some(Duration::from_secs(60)),
                true,
            )?,

            settings: BTreeMap::new(),
            warnings: Vec::new(),
        };
        v.database()?;
        if let Some(p) = &path {
            warnings.extend(v.unsupported(p));
        }
        Ok(CarbonConfig { settings, warnings, ..config })
    }
}

/// Typed access to the settings, with errors at the key's line.
struct Values<'a> {
    settings: &'a BTreeMap<String, Setting>,
    path: &'a Path,
}

impl Values<'_> {
    fn error(&self, key: &str, s: &Setting, expected: &'static str) -> ConfigError {
        ConfigError::at(self.path, s.line, ConfigErrorKind::value(key, &s.raw, expected))
    }

    fn text(&self, key: &str, default: &str) -> String {
        self.settings.get(key).map_or_else(|| default.to_string(), |s| s.raw.clone())
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        match self.settings.get(key).map(|s| &s.value) {
            Some(Value::Bool(b)) => *b,
            // Bool keys are typed as bools or refused when read.
            _ => default,
        }
    }

    fn port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        let Some(s) = self.settings.get(key) else { return Ok(default) };
        match s.value {
            Value::Int(i) => u16::try_from(i).ok(),
            _ => None,
        }
        .ok_or_else(|| self.error(key, s, "a port number (0 to 65535)"))
    }

    /// A whole number at least `min`.
    fn whole<T: TryFrom<i64>>(&self, key: &str, default: T, min: i64) -> Result<T, ConfigError> {
        let Some(s) = self.settings.get(key) else { return Ok(default) };
        let expected =
            if min == 0 { "a whole number (0 or more)" } else { "a whole number (1 or more)" };
        match s.value {
            Value::Int(i) if i >= min => T::try_from(i).ok(),
            _ => None,
        }
        .ok_or_else(|| self.error(key, s, expected))
    }

    /// A positive count or `inf` (`None`); a fraction rounds up (carbon compares with `>=`).
    fn limit<T: TryFrom<u64>>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(s) = self.settings.get(key) else { return Ok(None) };
        let expected = "a positive number or inf";
        let bad = || self.error(key, s, expected);
        #[allow(clippy::cast_precision_loss)]
        let x = match s.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => return Err(bad()),
        };
        if x == f64::INFINITY {
            return Ok(None);
        }
        if x.is_nan() || x <= 0.0 || x >= 1.8e19 {
            return Err(bad());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = x.ceil() as u64;
        T::try_from(n).map(Some).map_err(|_| bad())
    }

    /// A rate: `inf`, or a positive number (or zero if `zero_ok`).
    fn rate(&self, key: &str, zero_ok: bool) -> Result<Option<RateLimit>, ConfigError> {
        let Some(s) = self.settings.get(key) else { return Ok(None) };
        let expected =
            if zero_ok { "a number (0 or more) or inf" } else { "a positive number or inf" };
        #[allow(clippy::cast_precision_loss)]
        let x = match s.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => return Err(self.error(key, s, expected)),
        };
        if x == f64::INFINITY {
            Ok(Some(RateLimit::Unlimited))
        } else if x > 0.0 || (zero_ok && x == 0.0) {
            Ok(Some(RateLimit::Limited(x)))
        } else {
            Err(self.error(key, s, expected))
        }
    }

    /// Seconds: positive, or zero for `None` if `zero_disables`.
    fn seconds(
        &self,
        key: &str,
        default: Option<Duration>,
        zero_disables: bool,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(s) = self.settings.get(key) else { return Ok(default) };
        let expected =
            if zero_disables { "seconds (0 to disable)" } else { "seconds (more than 0)" };
        #[allow(clippy::cast_precision_loss)]
        let x = match s.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => return Err(self.error(key, s, expected)),
        };
        if zero_disables && x == 0.0 {
            return Ok(None);
        }
        if x.is_nan() || x <= 0.0 {
            return Err(self.error(key, s, expected));
        }
        Duration::try_from_secs_f64(x).map(Some).map_err(|_| self.error(key, s, expected))
    }

    fn strategy(&self) -> Result<CacheWriteStrategy, ConfigError> {
        let key = "CACHE_WRITE_STRATEGY";
        let Some(s) = self.settings.get(key) else { return Ok(CacheWriteStrategy::default()) };
        Ok(match s.raw.as_str() {
            "sorted" => CacheWriteStrategy::Sorted,
            "timesorted" => CacheWriteStrategy::TimeSorted,
            "max" => CacheWriteStrategy::Max,
            "naive" => CacheWriteStrategy::Naive,
            "random" => CacheWriteStrategy::Random,
            _ => return Err(self.error(key, s, "sorted, timesorted, max, naive or random")),
        })
    }

    fn wal_fsync(&self) -> Result<crate::wal::FsyncPolicy, ConfigError> {
        use crate::wal::FsyncPolicy;
        let interval = self
            .seconds("WAL_FSYNC_INTERVAL", Some(Duration::from_secs(1)), false)?
            .unwrap_or(Duration::from_secs(1));
        let key = "WAL_FSYNC";
        let Some(s) = self.settings.get(key) else { return Ok(FsyncPolicy::Interval(interval)) };
        Ok(match s.raw.as_str() {
            "interval" => FsyncPolicy::Interval(interval),
            "always" => FsyncPolicy::Always,
            "never" => FsyncPolicy::Never,
            _ => return Err(self.error(key, s, "interval, always or never")),
        })
    }

    fn database(&self) -> Result<(), ConfigError> {
        let key = "DATABASE";
        match self.settings.get(key) {
            Some(s) if s.raw != "whisper" => {
                Err(self.error(key, s, "whisper (the only database supported here)"))
            }
            _ => Ok(()),
        }
    }

    /// Warnings for carbon features that are switched on but do not exist here.
    fn unsupported(&self, path: &Path) -> Vec<ConfigWarning> {
        let on =
            |key: &str| matches!(self.settings.get(key).map(|s| &s.value), Some(Value::Bool(true)));
        let mut keys: Vec<&str> =
            ["ENABLE_AMQP", "ENABLE_MANHOLE"].into_iter().filter(|k| on(k)).collect();
        if self
            .settings
            .get("PROTOBUF_RECEIVER_PORT")
            .is_some_and(|s| !matches!(s.value, Value::Int(0)))
        {
            keys.push("PROTOBUF_RECEIVER_PORT");
        }
        keys.into_iter()
            .filter_map(|key| {
                let s = self.settings.get(key)?;
                Some(ConfigWarning::new(
                    path,
                    Some(s.line),
                    ConfigWarningKind::Unsupported { key: key.to_string(), value: s.raw.clone() },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(root: &str) -> ConfigEnv {
        ConfigEnv { graphite_root: Some(root.into()), ..ConfigEnv::default() }
    }

    fn build(text: &str) -> Result<CarbonConfig, ConfigError> {
        let mut b = CarbonConfigBuilder::new();
        b.env(env("/g"));
        b.build_from_text(text)
    }

    fn value_error(text: &str) -> (usize, String) {
        let e = build(text).unwrap_err();
        match e.kind() {
            ConfigErrorKind::Value { key, .. } => (e.line().unwrap(), key.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn code_defaults_without_a_file() {
        let c = CarbonConfig::default();
        assert_eq!(c.config_file, None);
        assert_eq!(c.instance.as_deref(), Some("a"));
        assert_eq!(c.conf_dir, Path::new("/opt/graphite/conf"));
        assert_eq!(c.storage_dir, Path::new("/opt/graphite/storage"));
        assert_eq!(c.local_data_dir, Path::new("/opt/graphite/storage/whisper"));
        assert_eq!(c.whitelists_dir, Path::new("/opt/graphite/storage/lists"));
        assert_eq!(c.log_dir, Path::new("/opt/graphite/storage/log/carbon-cache/carbon-cache-a"));
        assert_eq!(c.pid_dir, Path::new("/opt/graphite/storage"));
        assert_eq!(c.pidfile, Path::new("/opt/graphite/storage/carbon-cache-a.pid"));
        assert_eq!(c.whitelist, Path::new("/opt/graphite/conf/whitelist.conf"));
        assert_eq!(c.storage_schemas_path(), Path::new("/opt/graphite/conf/storage-schemas.conf"));
        assert_eq!(
            (c.line_receiver_port, c.pickle_receiver_port, c.cache_query_port),
            (2003, 2004, 7002)
        );
        assert_eq!(c.udp_receiver_port, 2003);
        assert!(!c.enable_udp_listener);
        assert_eq!(c.pickle_receiver_max_length, 1_048_576);
        assert_eq!(c.max_cache_size, None);
        assert_eq!(c.cache_size_low_watermark(), None);
        assert_eq!(c.max_updates_per_second, RateLimit::Limited(500.0));
        assert_eq!(c.max_updates_per_second_on_shutdown, None);
        assert_eq!(c.max_creates_per_minute, RateLimit::Unlimited);
        assert_eq!(c.max_receiver_connections, None);
        assert_eq!(c.metric_client_idle_timeout, None);
        assert_eq!((c.tcp_keepidle, c.tcp_keepintvl, c.tcp_keepcnt), (10, 30, 2));
        assert_eq!(c.cache_write_strategy, CacheWriteStrategy::Sorted);
        assert!(c.use_flow_control && c.enable_tags && c.tag_hash_filenames && c.tcp_keepalive);
        assert!(c.log_updates && c.log_creates && c.log_cache_hits && c.log_cache_queue_sorts);
        assert!(!c.use_whitelist && !c.whisper_fallocate_create && !c.use_insecure_unpickler);
        assert_eq!(c.carbon_metric_prefix, "carbon");
        assert_eq!(c.carbon_metric_interval, Some(Duration::from_secs(60)));
        assert!(c.settings().is_empty() && c.warnings().is_empty());
    }

    #[test]
    fn environment_sets_the_directories() {
        let mut b = CarbonConfigBuilder::new();
        b.env(ConfigEnv {
            graphite_root: Some("/r".into()),
            graphite_conf_dir: Some("/etc/c".into()),
            graphite_storage_dir: Some("/var/s/".into()),
            home: None,
        });
        let c = b.build_from_text("").unwrap();
        assert_eq!(c.conf_dir, Path::new("/etc/c"));
        assert_eq!(c.local_data_dir, Path::new("/var/s/whisper"));
        assert_eq!(c.storage_dir, Path::new("/var/s"));
        assert_eq!(b.config_path(), Path::new("/etc/c/carbon.conf"));
        // An explicit file moves CONF_DIR to its directory.
        b.config_file("/x/y/../my.conf");
        assert_eq!(b.build_from_text("").unwrap().conf_dir, Path::new("/x"));
    }

    #[test]
    fn debian_layout() {
        let c = build(
            "[cache]\nSTORAGE_DIR    = /var/lib/graphite/\nLOCAL_DATA_DIR = /var/lib/graphite/whisper/\n\
             CONF_DIR       = /etc/carbon/\nLOG_DIR        = /var/log/carbon/\nPID_DIR        = /var/run/\n\
             USER = _graphite\nMAX_CREATES_PER_MINUTE = 50\nMIN_TIMESTAMP_RESOLUTION = 1\n\
             WHISPER_FALLOCATE_CREATE = True\nLOG_UPDATES = False\nMAX_CACHE_SIZE = inf\n",
        )
        .unwrap();
        assert_eq!(c.storage_dir, Path::new("/var/lib/graphite"));
        assert_eq!(c.local_data_dir, Path::new("/var/lib/graphite/whisper"));
        assert_eq!(c.conf_dir, Path::new("/etc/carbon/"));
        assert_eq!(c.log_dir, Path::new("/var/log/carbon/carbon-cache-a"));
        assert_eq!(c.pidfile, Path::new("/var/run/carbon-cache-a.pid"));
        assert_eq!(c.whitelist, Path::new("/etc/carbon/whitelist.conf"));
        assert_eq!(c.user, "_graphite");
        assert_eq!(c.max_creates_per_minute, RateLimit::Limited(50.0));
        assert_eq!(c.min_timestamp_resolution, 1);
        assert!(c.whisper_fallocate_create && !c.log_updates);
        assert_eq!(c.setting("MAX_CACHE_SIZE").unwrap().value(), &Value::Float(f64::INFINITY));
        assert_eq!(c.setting("USER").unwrap().line(), 7);
    }

    #[test]
    fn instance_sections_override_after_the_directories_are_set() {
        let text = "[cache]\nSTORAGE_DIR = /s\nLINE_RECEIVER_PORT = 2103\n\
                    [cache:b]\nLINE_RECEIVER_PORT = 2203\nSTORAGE_DIR = /t\nLOG_DIR = /l\n";
        let mut b = CarbonConfigBuilder::new();
        b.env(env("/g")).instance("b");
        let c = b.build_from_text(text).unwrap();
        assert_eq!(c.line_receiver_port, 2203);
        assert_eq!(c.setting("LINE_RECEIVER_PORT").unwrap().section(), "cache:b");
        // The instance's STORAGE_DIR comes too late for the directories derived from it.
        assert_eq!(c.storage_dir, Path::new("/t"));
        assert_eq!(c.local_data_dir, Path::new("/s/whisper"));
        assert_eq!(c.log_dir, Path::new("/l/carbon-cache-b"));
        assert_eq!(c.pidfile, Path::new("/s/carbon-cache-b.pid"));
        // Instance a has no section: the base values stay.
        b.instance("a");
        assert_eq!(b.build_from_text(text).unwrap().line_receiver_port, 2103);
        // No instance.
        b.instance("");
        let c = b.build_from_text(text).unwrap();
        assert_eq!(c.instance, None);
        assert_eq!(c.pidfile, Path::new("/s/carbon-cache.pid"));
        assert_eq!(c.log_dir, Path::new("/s/log/carbon-cache"));
        // Command-line overrides.
        b.instance("b")
            .pidfile("/p.pid")
            .logdir("~/logs")
            .whitelist("/w")
            .env(ConfigEnv { home: Some("/home/u".into()), ..env("/g") });
        let c = b.build_from_text(text).unwrap();
        assert_eq!(c.pidfile, Path::new("/p.pid"));
        assert_eq!(c.log_dir, Path::new("/home/u/logs"));
        assert_eq!(c.whitelist, Path::new("/w"));
    }

    #[test]
    fn carbon_typing() {
        let c = build(
            "[cache]\nMAX_CACHE_SIZE = 1e6\nDESTINATIONS = a:1, b:2 ,\nENABLE_TAGS = oN\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nCARBON_METRIC_PREFIX = 10\nX_CUSTOM = 1_000\n\
             BIND_PATTERNS =\nTIME_TO_DEFER_SENDING = 1e-4\n",
        )
        .unwrap();
        let v = |k: &str| c.setting(k).unwrap().value().clone();
        assert_eq!(v("MAX_CACHE_SIZE"), Value::Float(1e6));
        assert_eq!(c.max_cache_size, Some(1_000_000));
        assert_eq!(c.cache_size_low_watermark(), Some(950_000.0));
        assert_eq!(v("DESTINATIONS"), Value::List(vec!["a:1".into(), "b:2".into(), String::new()]));
        assert_eq!(v("BIND_PATTERNS"), Value::List(vec![String::new()]));
        assert_eq!(v("ENABLE_TAGS"), Value::Bool(true));
        assert_eq!(v("LINE_RECEIVER_INTERFACE"), Value::Str("127.0.0.1".into()));
        assert_eq!(v("CARBON_METRIC_PREFIX"), Value::Int(10));
        assert_eq!(c.carbon_metric_prefix, "10");
        assert_eq!(v("X_CUSTOM"), Value::Int(1000));
        assert_eq!(v("TIME_TO_DEFER_SENDING"), Value::Float(1e-4));
        assert_eq!(c.warnings().len(), 1);
        assert_eq!(
            c.warnings()[0].kind(),
            &ConfigWarningKind::UnknownKey { key: "X_CUSTOM".into() }
        );
        assert_eq!(typed("X", "99999999999999999999"), Some(Value::Float(1e20)));
    }

    #[test]
    fn values_out_of_range_name_the_line() {
        assert_eq!(
            value_error("[cache]\n\nLINE_RECEIVER_PORT = 70000\n"),
            (3, "LINE_RECEIVER_PORT".into())
        );
        assert_eq!(
            value_error("[cache]\nPICKLE_RECEIVER_PORT = 2004.0\n").1,
            "PICKLE_RECEIVER_PORT"
        );
        assert_eq!(value_error("[cache]\nCACHE_QUERY_PORT = abc\n").1, "CACHE_QUERY_PORT");
        assert_eq!(value_error("[cache]\nUSE_FLOW_CONTROL = maybe\n").1, "USE_FLOW_CONTROL");
        assert_eq!(value_error("[cache]\nMAX_CACHE_SIZE = 0\n").1, "MAX_CACHE_SIZE");
        assert_eq!(value_error("[cache]\nMAX_CACHE_SIZE = nan\n").1, "MAX_CACHE_SIZE");
        assert_eq!(value_error("[cache]\nMAX_CACHE_SIZE = -inf\n").1, "MAX_CACHE_SIZE");
        assert_eq!(
            value_error("[cache]\nMAX_UPDATES_PER_SECOND = 0\n").1,
            "MAX_UPDATES_PER_SECOND"
        );
        assert_eq!(
            value_error("[cache]\nMAX_CREATES_PER_MINUTE = -1\n").1,
            "MAX_CREATES_PER_MINUTE"
        );
        assert_eq!(
            value_error("[cache]\nMIN_TIMESTAMP_RESOLUTION = 1.5\n").1,
            "MIN_TIMESTAMP_RESOLUTION"
        );
        assert_eq!(value_error("[cache]\nTCP_KEEPCNT = 0\n").1, "TCP_KEEPCNT");
        assert_eq!(
            value_error("[cache]\nCACHE_WRITE_STRATEGY = Sorted\n").1,
            "CACHE_WRITE_STRATEGY"
        );
        assert_eq!(value_error("[cache]\nDATABASE = ceres\n").1, "DATABASE");
        assert_eq!(
            value_error("[cache]\nCARBON_METRIC_INTERVAL = -1\n").1,
            "CARBON_METRIC_INTERVAL"
        );
        assert_eq!(
            value_error("[cache]\nMETRIC_CLIENT_IDLE_TIMEOUT = 0\n").1,
            "METRIC_CLIENT_IDLE_TIMEOUT"
        );
        // The instance section is checked too, at its own line.
        assert_eq!(
            value_error("[cache]\n[cache:a]\nUDP_RECEIVER_PORT = -1\n"),
            (3, "UDP_RECEIVER_PORT".into())
        );
        let e = build("[cache]\nLINE_RECEIVER_PORT = 99999\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/g/conf/carbon.conf:2: LINE_RECEIVER_PORT = \"99999\": expected a port number (0 to 65535)"
        );
    }

    #[test]
    fn accepted_values() {
        let c = build(
            "[cache]\nMAX_CREATES_PER_MINUTE = 0\nMAX_UPDATES_PER_SECOND = inf\n\
             MAX_UPDATES_PER_SECOND_ON_SHUTDOWN = 1000\nCARBON_METRIC_INTERVAL = 0\n\
             METRIC_CLIENT_IDLE_TIMEOUT = 1.5\nMAX_RECEIVER_CONNECTIONS = 2.5\n\
             CACHE_WRITE_STRATEGY = timesorted\nDATABASE = whisper\nMAX_CACHE_SIZE = 10\n",
        )
        .unwrap();
        assert_eq!(c.max_creates_per_minute, RateLimit::Limited(0.0));
        assert_eq!(c.max_updates_per_second, RateLimit::Unlimited);
        assert_eq!(c.max_updates_per_second_on_shutdown, Some(RateLimit::Limited(1000.0)));
        assert_eq!(c.carbon_metric_interval, None);
        assert_eq!(c.metric_client_idle_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(c.max_receiver_connections, Some(3));
        assert_eq!(c.cache_write_strategy, CacheWriteStrategy::TimeSorted);
        assert_eq!(c.cache_write_strategy.name(), "timesorted");
        assert_eq!(c.cache_size_low_watermark(), Some(9.5));
    }

    #[test]
    fn defaults_section_and_interpolation() {
        let c = build(
            "[DEFAULT]\nroot = /srv\nENABLE_UDP_LISTENER = yes\n[cache]\nSTORAGE_DIR = %(root)s/storage\n",
        )
        .unwrap();
        assert_eq!(c.local_data_dir, Path::new("/srv/storage/whisper"));
        assert!(c.enable_udp_listener);
        // `root` is a helper variable from [DEFAULT]: no unknown-key warning.
        assert!(c.warnings().is_empty());
        assert_eq!(c.setting("ROOT").unwrap().raw(), "/srv");
        // Without a [cache] section, [DEFAULT] is not read either (as in carbon).
        assert!(!build("[DEFAULT]\nENABLE_UDP_LISTENER = yes\n").unwrap().enable_udp_listener);
    }

    #[test]
    fn unsupported_features_are_warnings() {
        let c = build(
            "[cache]\nENABLE_AMQP = True\nENABLE_MANHOLE = False\nPROTOBUF_RECEIVER_PORT = 2005\n",
        )
        .unwrap();
        let keys: Vec<_> = c
            .warnings()
            .iter()
            .map(|w| match w.kind() {
                ConfigWarningKind::Unsupported { key, .. } => key.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(keys, ["ENABLE_AMQP", "PROTOBUF_RECEIVER_PORT"]);
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        let mut b = CarbonConfigBuilder::new();
        b.env(ConfigEnv { graphite_conf_dir: Some(conf.to_string_lossy().into()), ..env("/g") });
        // No carbon.conf: the defaults.
        assert_eq!(b.build().unwrap().config_file, None);
        std::fs::write(conf.join("carbon.conf"), "[cache]\nCACHE_QUERY_PORT = 7102\n").unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.cache_query_port, 7102);
        assert_eq!(c.config_file, Some(conf.join("carbon.conf")));
        // An explicit file must exist.
        b.config_file(dir.path().join("nope.conf"));
        assert!(matches!(b.build().unwrap_err().kind(), ConfigErrorKind::Io(_)));
        std::fs::write(dir.path().join("bad.conf"), b"[cache]\nUSER = \xff\n").unwrap();
        b.config_file(dir.path().join("bad.conf"));
        assert_eq!(b.build().unwrap_err().line(), Some(2));
    }
}
