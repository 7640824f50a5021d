//! Files whose archives, aggregation method or xFilesFactor are not what the config now says,
//! and the migration that rewrites them (carbon#379, go-carbon#267).
//!
//! carbon reads `storage-schemas.conf` and `storage-aggregation.conf` only when it creates a
//! file: changing a retention later changes nothing for existing metrics, and nothing tells
//! the user so. [`audit`] lists every file that differs from what the config would create
//! today; [`migrate`] resizes one (as `whisper-resize` does, optionally aggregating) and sets
//! its method and xFilesFactor.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use whisper::{AggregationMethod, ResizeOptions, Retention};

use crate::config::{StorageAggregation, StorageSchemas};
use crate::error::{Error, Result};
use crate::index::open_data_dir;

/// What a file has, or what the config says it should have.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSettings {
    /// The archives, finest first.
    pub retentions: Vec<Retention>,
    /// The xFilesFactor (a file keeps an `f32`).
    pub x_files_factor: f32,
    /// The aggregation method.
    pub aggregation_method: AggregationMethod,
}

impl FileSettings {
    /// The archives as carbon's config writes them: `60s:1d,5m:7d`.
    pub fn retentions_text(&self) -> String {
        self.retentions.iter().map(retention_text).collect::<Vec<_>>().join(",")
    }
}

/// One file that differs from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The metric.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// What the file has.
    pub file: FileSettings,
    /// What the config would create now.
    pub config: FileSettings,
    /// The `storage-schemas.conf` section that matched.
    pub schema: String,
    /// The `storage-aggregation.conf` section that matched (`default` for the built-in one).
    pub aggregation_rule: String,
}

impl Mismatch {
    /// Whether the archives differ (a resize is needed, not only new metadata).
    pub fn retentions_differ(&self) -> bool {
        self.file.retentions != self.config.retentions
    }

    /// One line per difference: `retentions 60s:1d -> 10s:6h,1m:7d ([schema])`.
    pub fn differences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.retentions_differ() {
            out.push(format!(
                "retentions {} -> {} ([{}])",
                self.file.retentions_text(),
                self.config.retentions_text(),
                self.schema
            ));
        }
        if self.file.aggregation_method != self.config.aggregation_method {
            out.push(format!(
                "aggregationMethod {} -> {} ([{}])",
                self.file.aggregation_method.name(),
                self.config.aggregation_method.name(),
                self.aggregation_rule
            ));
        }
        if self.file.x_files_factor != self.config.x_files_factor {
            out.push(format!(
                "xFilesFactor {} -> {} ([{}])",
                self.file.x_files_factor, self.config.x_files_factor, self.aggregation_rule
            ));
        }
        out
    }
}

/// What [`audit`] found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Files read.
    pub checked: usize,
    /// Files that differ from the config, sorted by name.
    pub mismatches: Vec<Mismatch>,
    /// Files that could not be read, with the reason (the path is in the message).
    pub errors: Vec<(PathBuf, String)>,
}

/// What the config gives `name`: its schema's archives, its aggregation rule's method and
/// xFilesFactor (carbon's defaults, average and 0.5, where the rule leaves them out).
pub fn expected(
    name: &str,
    schemas: &StorageSchemas,
    aggregation: &StorageAggregation,
) -> (FileSettings, String, String) {
    let schema = schemas.matching(name);
    let rule = aggregation.matching(name);
    let settings = FileSettings {
        retentions: schema.retentions().to_vec(),
        // A file keeps an f32, so that is what a comparison must use.
        #[allow(clippy::cast_possible_truncation)]
        x_files_factor: rule.x_files_factor().unwrap_or(0.5) as f32,
        aggregation_method: rule.aggregation_method().unwrap_or(AggregationMethod::Average),
    };
    (settings, schema.name().to_string(), rule.name().to_string())
}

/// Reads the header of every file under `data_dir` (plain and tagged series) on `threads`
/// threads and compares it with what the config would create today.
///
/// # Errors
///
/// The data directory cannot be scanned.
pub fn audit(
    data_dir: &Path,
    schemas: &StorageSchemas,
    aggregation: &StorageAggregation,
    tag_hash_filenames: bool,
    threads: usize,
) -> Result<AuditReport> {
    let (metrics, _tags, _report) = open_data_dir(data_dir)?;
    let names = metrics.to_names();
    let report = Mutex::new(AuditReport::default());
    let chunk = names.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for part in names.chunks(chunk) {
            let report = &report;
            scope.spawn(move || {
                let mut local = AuditReport::default();
                for name in part {
                    check_one(data_dir, name, schemas, aggregation, tag_hash_filenames, &mut local);
                }
                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                r.checked += local.checked;
                r.mismatches.extend(local.mismatches);
                r.errors.extend(local.errors);
            });
        }
    });
    let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    report.mismatches.sort_by(|a, b| a.name.cmp(&b.name));
    report.errors.sort();
    Ok(report)
}

fn check_one(
    data_dir: &Path,
    name: &str,
    schemas: &StorageSchemas,
    aggregation: &StorageAggregation,
    tag_hash_filenames: bool,
    out: &mut AuditReport,
) {
    let path = match carbon_proto::tags::disk_path(name, tag_hash_filenames) {
        Ok(relative) => data_dir.join(relative),
        Err(e) => {
            out.errors.push((data_dir.join(name), format!("{name}: {e}")));
            return;
        }
    };
    let header = match whisper::info(&path) {
        Ok(h) => h,
        // A tagged series registered but never written has no file: nothing to check.
        Err(whisper::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return;
        }
        Err(e) => {
            out.errors.push((path, e.to_string()));
            return;
        }
    };
    out.checked += 1;
    let file = FileSettings {
        retentions: header.archives().iter().map(whisper::ArchiveInfo::retention_def).collect(),
        x_files_factor: header.x_files_factor(),
        aggregation_method: header.aggregation_method(),
    };
    let (config, schema, aggregation_rule) = expected(name, schemas, aggregation);
    if file != config {
        out.mismatches.push(Mismatch {
            name: name.to_string(),
            path,
            file,
            config,
            schema,
            aggregation_rule,
        });
    }
}

/// How [`migrate`] rewrites a file.
#[derive(Clone, Copy, Debug, Default)]
pub struct MigrateOptions {
    /// Aggregate old points into the new archives' intervals (`whisper-resize --aggregate`)
    /// instead of copying them as they are.
    pub aggregate: bool,
    /// Keep the old file as `<path>.bak` (`whisper-resize` does unless `--nobackup`).
    pub keep_backup: bool,
}

/// Rewrites one file to what the config says: a resize when the archives differ (which also
/// sets the method and xFilesFactor), else only the metadata. The file must not be written
/// meanwhile: run it with the server stopped (its writes to the old file would be lost).
///
/// # Errors
///
/// The file cannot be read, created or renamed (a failed rename puts the original back).
pub fn migrate(m: &Mismatch, options: MigrateOptions, now: i64) -> Result<()> {
    if m.retentions_differ() {
        let mut resize = ResizeOptions::new();
        resize
            .x_files_factor(Some(f64::from(m.config.x_files_factor)))
            .aggregation_method(Some(m.config.aggregation_method))
            .keep_backup(options.keep_backup)
            .aggregate(options.aggregate);
        whisper::resize(&m.path, &m.config.retentions, &resize, now, &mut |_| {})?;
    } else {
        whisper::set_aggregation_method(
            &m.path,
            m.config.aggregation_method,
            Some(f64::from(m.config.x_files_factor)),
        )
        .map_err(Error::from)?;
    }
    Ok(())
}

/// `60s:1d` style, with the largest unit that divides evenly (as people write them).
fn retention_text(r: &Retention) -> String {
    let step = u64::from(r.seconds_per_point());
    format!("{}:{}", duration_text(step), duration_text(step * u64::from(r.points())))
}

fn duration_text(seconds: u64) -> String {
    const UNITS: [(u64, &str); 5] =
        [(31_536_000, "y"), (604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")];
    for (size, unit) in UNITS {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_text_uses_the_largest_even_unit() {
        assert_eq!(retention_text(&Retention::new(60, 1440)), "1m:1d");
        assert_eq!(retention_text(&Retention::new(10, 2160)), "10s:6h");
        assert_eq!(retention_text(&Retention::new(300, 2016)), "5m:1w");
        assert_eq!(retention_text(&Retention::new(7, 3)), "7s:21s");
        assert_eq!(retention_text(&Retention::new(86_400, 365 * 5)), "1d:5y");
    }
}
