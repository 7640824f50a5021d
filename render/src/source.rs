//! Data sources: the store (what the server reads) and an in-memory source (tests, examples).

use std::collections::BTreeMap;

use store::Store;
use store::index::{MetricIndex, TagIndex};

use crate::error::{Error, Result};
use crate::eval::{DataSource, Fetched};

impl DataSource for Store {
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>> {
        Ok(self.find(pattern)?.into_iter().filter(|n| n.is_leaf).map(|n| n.path).collect())
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>> {
        let exprs: Vec<&str> = exprs.iter().map(String::as_str).collect();
        self.tags().find_series(&exprs).map_err(|e| Error::InvalidParameter(e.to_string()))
    }

    fn fetch(&self, name: &str, from: i64, until: i64, now: i64) -> Result<Option<Fetched>> {
        Ok(Store::fetch(self, name, from, Some(until), now)?.map(|s| Fetched {
            start: s.from,
            end: s.until,
            step: i64::from(s.step),
            values: s.values,
        }))
    }
}

/// Series held in memory, read the way a single-archive Whisper file reads: `fetch` returns
/// the slots in `(from, until]` aligned to the step. The index and glob matching are the
/// store's own, so patterns behave exactly as they do on disk.
#[derive(Default)]
pub struct MemorySource {
    metrics: MetricIndex,
    tags: TagIndex,
    series: BTreeMap<String, (i64, i64, Vec<Option<f64>>)>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Adds `name` with `values[i]` at `start + i * step` (`start` aligned to `step`).
    /// A tagged name (`a.b;k=v`) is normalized and made findable by `seriesByTag`.
    pub fn insert(&mut self, name: &str, start: i64, step: i64, values: Vec<Option<f64>>) {
        let name = if name.contains(';') {
            carbon_proto::tags::normalize(name).unwrap_or_else(|_| name.to_string())
        } else {
            name.to_string()
        };
        if name.contains(';') {
            // The tag index rejects nothing that normalize accepted.
            let _ = self.tags.insert(&name);
        }
        self.metrics.insert(&name);
        self.series.insert(name, (start - start.rem_euclid(step), step, values));
    }

    /// The metric index (the HTTP API's `/metrics/find` over this source).
    pub fn metric_index(&self) -> &MetricIndex {
        &self.metrics
    }

    /// The tag index (the HTTP API's `/tags/*` over this source).
    pub fn tag_index_ref(&self) -> &TagIndex {
        &self.tags
    }
}

impl DataSource for MemorySource {
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>> {
        let nodes =
            self.metrics.find(pattern).map_err(|e| Error::InvalidParameter(e.to_string()))?;
        Ok(nodes.into_iter().filter(|n| n.is_leaf).map(|n| n.path).collect())
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>> {
        let exprs: Vec<&str> = exprs.iter().map(String::as_str).collect();
        self.tags.find_series(&exprs).map_err(|e| Error::InvalidParameter(e.to_string()))
    }

    fn fetch(&self, name: &str, from: i64, until: i64, _now: i64) -> Result<Option<Fetched>> {
        let Some((start, step, values)) = self.series.get(name) else { return Ok(None) };
        let (start, step) = (*start, *step);
        // Whisper's window: (floor(from), floor(until)] in whole steps.
        let first = from - from.rem_euclid(step) + step;
        let end = until - until.rem_euclid(step) + step;
        let out = (first..end)
            .step_by(usize::try_from(step).unwrap_or(1))
            .map(|t| {
                let i = (t - start).div_euclid(step);
                usize::try_from(i).ok().and_then(|i| values.get(i).copied().flatten())
            })
            .collect();
        Ok(Some(Fetched { start: first, end, step, values: out }))
    }
}
