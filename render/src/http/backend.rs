//! What the HTTP API reads and writes besides series: the metric tree, the tag database,
//! per-file metadata. [`StoreBackend`] is the server's (the store); the in-memory
//! [`MemorySource`] serves tests.

use std::path::PathBuf;

use store::Store;
use store::index::{Node, TagIndex};

use crate::error::{Error, Result};
use crate::eval::{DataSource, Fetched};
use crate::source::MemorySource;

/// A data source with the metric tree and the tag database behind it.
pub trait Backend: DataSource {
    /// The nodes matching a graphite-web glob, sorted by path (a name that is both a metric
    /// and a directory is one node with both flags).
    ///
    /// # Errors
    ///
    /// A pattern the index cannot compile.
    fn find_nodes(&self, pattern: &str) -> Result<Vec<Node>>;

    /// The tag database.
    fn tag_index(&self) -> &TagIndex;

    /// Every plain (untagged) metric name, sorted (`/metrics/index.json`).
    fn leaf_names(&self) -> Vec<String>;

    /// The time intervals a metric has data for (`/metrics/find?format=json`): graphite-web's
    /// `[now - maxRetention, max(mtime, that)]` of the Whisper file; empty when unknown.
    fn intervals(&self, _name: &str) -> Vec<(f64, f64)> {
        Vec::new()
    }

    /// This backend without its cluster peers, for requests with `local=1` (what a peer
    /// federating to us sends, so that two nodes listing each other never loop). `None`: the
    /// backend has no peers and is its own local part.
    fn local_part(&self) -> Option<&dyn Backend> {
        None
    }

    /// carbon's `get-metadata` (the aggregation method).
    ///
    /// # Errors
    ///
    /// The text carbon answers for an unknown key or a missing file.
    fn get_metadata(&self, _name: &str, _key: &str) -> std::result::Result<String, String> {
        Err("metadata is not available from this source".into())
    }

    /// carbon's `set-metadata`; returns the old value.
    ///
    /// # Errors
    ///
    /// As [`Backend::get_metadata`].
    fn set_metadata(
        &self,
        _name: &str,
        _key: &str,
        _value: &str,
    ) -> std::result::Result<String, String> {
        Err("metadata is not available from this source".into())
    }
}

/// The store as the HTTP API's backend; `data_dir` locates Whisper files for `intervals`.
#[derive(Clone)]
pub struct StoreBackend {
    store: Store,
    data_dir: PathBuf,
}

impl StoreBackend {
    /// The backend over `store`, whose Whisper tree is `data_dir`.
    pub fn new(store: Store, data_dir: impl Into<PathBuf>) -> StoreBackend {
        StoreBackend { store, data_dir: data_dir.into() }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl DataSource for StoreBackend {
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>> {
        self.store.find_leaves(pattern)
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>> {
        self.store.find_tagged(exprs)
    }

    fn fetch(&self, name: &str, from: i64, until: i64, now: i64) -> Result<Option<Fetched>> {
        DataSource::fetch(&self.store, name, from, until, now)
    }
}

impl Backend for StoreBackend {
    fn find_nodes(&self, pattern: &str) -> Result<Vec<Node>> {
        Ok(self.store.find(pattern)?)
    }

    fn tag_index(&self) -> &TagIndex {
        self.store.tags()
    }

    fn leaf_names(&self) -> Vec<String> {
        let mut names = self.store.metrics().to_names();
        names.retain(|n| !n.contains(';'));
        names
    }

    fn intervals(&self, name: &str) -> Vec<(f64, f64)> {
        if name.contains(';') || name.split('.').any(|p| p.is_empty() || p == "..") {
            return Vec::new();
        }
        let mut path = self.data_dir.clone();
        for part in name.split('.') {
            path.push(part);
        }
        path.set_extension("wsp");
        let Ok(header) = whisper::info(&path) else { return Vec::new() };
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let start = now - f64::from(header.max_retention());
        vec![(start, mtime.max(start))]
    }

    fn get_metadata(&self, name: &str, key: &str) -> std::result::Result<String, String> {
        self.store.get_metadata(name, key)
    }

    fn set_metadata(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> std::result::Result<String, String> {
        self.store.set_metadata(name, key, value)
    }
}

impl Backend for MemorySource {
    fn find_nodes(&self, pattern: &str) -> Result<Vec<Node>> {
        self.metric_index().find(pattern).map_err(|e| Error::InvalidParameter(e.to_string()))
    }

    fn tag_index(&self) -> &TagIndex {
        self.tag_index_ref()
    }

    fn leaf_names(&self) -> Vec<String> {
        let mut names = self.metric_index().to_names();
        names.retain(|n| !n.contains(';'));
        names
    }
}
