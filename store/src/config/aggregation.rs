//! `storage-aggregation.conf`: the xFilesFactor and aggregation method of a new Whisper file,
//! as `carbon.storage.loadAggregationSchemas` reads it.

use std::path::{Path, PathBuf};

use whisper::AggregationMethod;

use super::error::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
use super::ini::Ini;
use super::pyre::PyRegex;
use super::read_optional;
use super::text::{decode, py_float};

/// One rule: a pattern and what it sets. `None` leaves whisper's default (0.5, `average`).
#[derive(Debug, Clone)]
pub struct AggregationRule {
    name: String,
    pattern: Option<PyRegex>,
    x_files_factor: Option<f64>,
    aggregation_method: Option<AggregationMethod>,
    line: Option<usize>,
}

impl AggregationRule {
    /// The section name (`default` for the built-in rule).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Python pattern as written; `None` for the built-in default, which matches all.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(PyRegex::as_str)
    }

    /// The `xFilesFactor`, in `[0, 1]`; `None` for whisper's default.
    pub fn x_files_factor(&self) -> Option<f64> {
        self.x_files_factor
    }

    /// The `aggregationMethod`; `None` for whisper's default.
    pub fn aggregation_method(&self) -> Option<AggregationMethod> {
        self.aggregation_method
    }

    /// The line of the section header; `None` for the built-in default.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Whether this is the built-in default appended after the file's rules.
    pub fn is_default(&self) -> bool {
        self.pattern.is_none()
    }

    /// Whether the pattern is found anywhere in `metric` (Python's `re.search`).
    pub fn matches(&self, metric: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(metric))
    }

    fn builtin() -> AggregationRule {
        AggregationRule {
            name: "default".to_string(),
            pattern: None,
            x_files_factor: None,
            aggregation_method: None,
            line: None,
        }
    }
}

/// The rules of `storage-aggregation.conf` in file order, then a built-in default that sets
/// nothing; the first that matches a metric decides.
///
/// Read as carbon reads it (sections in the order of carbon's own `[...]` scan, as for
/// [`StorageSchemas`](super::StorageSchemas)): an `xFilesFactor` that is not a number skips
/// the section (a warning); one outside `[0, 1]` (NaN included) or an `aggregationMethod`
/// whisper does not know is an error, since carbon's assertion stops it at startup; then a
/// section without `pattern` (or with an empty one) is skipped (a warning).
///
/// ```
/// use store::config::StorageAggregation;
/// use whisper::AggregationMethod;
/// use std::path::Path;
///
/// let text = "[max]\npattern = \\.max$\nxFilesFactor = 0.1\naggregationMethod = max\n";
/// let rules = StorageAggregation::parse(text, Path::new("storage-aggregation.conf"))?;
/// let r = rules.matching("servers.web1.latency.max");
/// assert_eq!((r.x_files_factor(), r.aggregation_method()), (Some(0.1), Some(AggregationMethod::Max)));
/// assert_eq!(rules.matching("servers.web1.load").aggregation_method(), None);
/// # Ok::<(), store::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StorageAggregation {
    path: PathBuf,
    rules: Vec<AggregationRule>,
    warnings: Vec<ConfigWarning>,
}

impl Default for StorageAggregation {
    /// Only the built-in default rule (whisper's defaults for every metric).
    fn default() -> StorageAggregation {
        StorageAggregation {
            path: PathBuf::from("storage-aggregation.conf"),
            rules: vec![AggregationRule::builtin()],
            warnings: Vec::new(),
        }
    }
}

impl StorageAggregation {
    /// Reads the rules from the file's text; `path` names the file in errors and warnings.
    ///
    /// # Errors
    ///
    /// INI syntax and interpolation errors, an `xFilesFactor` out of range, an unknown
    /// `aggregationMethod`, a pattern Python refuses or that cannot run here: each names the
    /// file and line.
    pub fn parse(text: &str, path: &Path) -> Result<StorageAggregation, ConfigError> {
        let ini = Ini::parse(text, path)?;
        let (sections, mut warnings) = ini.ordered_sections()?;
        let mut rules = Vec::new();
        for section in sections {
            let name = section.name.clone();
            let mut x_files_factor = None;
            if let Some(item) = section.get("xfilesfactor") {
                let Some(value) = py_float(&item.value) else {
                    warnings.push(ConfigWarning::new(
                        path,
                        Some(item.line),
                        ConfigWarningKind::XFilesFactorNotANumber {
                            section: name,
                            value: item.value.clone(),
                        },
                    ));
                    continue;
                };
                if !(0.0..=1.0).contains(&value) {
                    return Err(ConfigError::at(
                        path,
                        item.line,
                        ConfigErrorKind::XFilesFactor { section: name, value: item.value.clone() },
                    ));
                }
                x_files_factor = Some(value);
            }
            let mut aggregation_method = None;
            if let Some(item) = section.get("aggregationmethod") {
                let Ok(method) = item.value.parse::<AggregationMethod>() else {
                    return Err(ConfigError::at(
                        path,
                        item.line,
                        ConfigErrorKind::AggregationMethod {
                            section: name,
                            name: item.value.clone(),
                        },
                    ));
                };
                aggregation_method = Some(method);
            }
            let pattern = match section.get("pattern") {
                Some(p) if !p.value.is_empty() => p,
                _ => {
                    warnings.push(ConfigWarning::new(
                        path,
                        Some(section.line),
                        ConfigWarningKind::MissingPattern { section: name },
                    ));
                    continue;
                }
            };
            let regex = super::compile(&pattern.value, path, pattern.line)?;
            rules.push(AggregationRule {
                name,
                pattern: Some(regex),
                x_files_factor,
                aggregation_method,
                line: Some(section.line),
            });
        }
        rules.push(AggregationRule::builtin());
        Ok(StorageAggregation { path: path.to_path_buf(), rules, warnings })
    }

    /// Reads the rules from the file's bytes (UTF-8).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NotUtf8`], or as [`StorageAggregation::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<StorageAggregation, ConfigError> {
        StorageAggregation::parse(decode(bytes, path)?, path)
    }

    /// Reads `storage-aggregation.conf`; a missing file gives the built-in default alone, as in
    /// carbon (the file is optional), with a [`ConfigWarningKind::MissingFile`] warning, the
    /// message carbon logs.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] if the file exists but cannot be read, or as
    /// [`StorageAggregation::parse`].
    pub fn open(path: impl AsRef<Path>) -> Result<StorageAggregation, ConfigError> {
        let path = path.as_ref();
        match read_optional(path)? {
            Some(bytes) => StorageAggregation::from_bytes(&bytes, path),
            None => Ok(StorageAggregation {
                path: path.to_path_buf(),
                warnings: vec![ConfigWarning::new(path, None, ConfigWarningKind::MissingFile)],
                ..StorageAggregation::default()
            }),
        }
    }

    /// The first rule whose pattern is found in `metric`; the built-in default if none is.
    pub fn matching(&self, metric: &str) -> &AggregationRule {
        self.rules.iter().find(|r| r.matches(metric)).unwrap_or_else(|| {
            // The built-in default is always last and matches everything.
            self.rules.last().unwrap_or_else(|| unreachable!("the default is always there"))
        })
    }

    /// All rules in order, the built-in default last.
    pub fn rules(&self) -> &[AggregationRule] {
        &self.rules
    }

    /// What was skipped while reading, in file order.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StorageAggregation, ConfigError> {
        StorageAggregation::parse(text, Path::new("agg.conf"))
    }

    const EXAMPLE: &str = "[min]\npattern = \\.min$\nxFilesFactor = 0.1\naggregationMethod = min\n\n\
        [max]\npattern = \\.max$\nxFilesFactor = 0.1\naggregationMethod = max\n\n\
        [sum]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = max\n\n\
        [default_average]\npattern = .*\nxFilesFactor = 0.5\naggregationMethod = average\n";

    #[test]
    fn the_example_file() {
        let a = parse(EXAMPLE).unwrap();
        let got = |m: &str| {
            let r = a.matching(m);
            (r.name().to_string(), r.x_files_factor(), r.aggregation_method())
        };
        assert_eq!(got("a.min"), ("min".into(), Some(0.1), Some(AggregationMethod::Min)));
        assert_eq!(got("a.count"), ("sum".into(), Some(0.0), Some(AggregationMethod::Max)));
        assert_eq!(
            got("a.b"),
            ("default_average".into(), Some(0.5), Some(AggregationMethod::Average))
        );
        assert_eq!(a.rules().len(), 5);
        assert!(a.rules()[4].is_default());
        assert!(a.warnings().is_empty());
    }

    #[test]
    fn missing_keys_are_none() {
        let a = parse("[a]\npattern = ^a\n[b]\npattern = ^b\nxfilesfactor = 1\n").unwrap();
        assert_eq!(a.matching("a").x_files_factor(), None);
        assert_eq!(a.matching("a").aggregation_method(), None);
        assert_eq!(a.matching("b").x_files_factor(), Some(1.0));
        assert_eq!(a.matching("c").name(), "default");
        assert_eq!(a.matching("c").pattern(), None);
    }

    #[test]
    fn carbon_skips_and_stops() {
        let a = parse("[a]\npattern = ^a\nxFilesFactor = half\n[b]\nxFilesFactor = 0.5\n").unwrap();
        assert_eq!(a.rules().len(), 1);
        assert_eq!(
            a.warnings()[0].kind(),
            &ConfigWarningKind::XFilesFactorNotANumber {
                section: "a".into(),
                value: "half".into()
            }
        );
        assert_eq!(a.warnings()[0].line(), Some(3));
        assert_eq!(
            a.warnings()[1].kind(),
            &ConfigWarningKind::MissingPattern { section: "b".into() }
        );
        // A non-number skips the section before the method is looked at.
        assert!(parse("[a]\nxFilesFactor = x\naggregationMethod = median\n").is_ok());
        for (text, line) in [
            ("[a]\npattern = a\nxFilesFactor = 1.5\n", 3),
            ("[a]\nxFilesFactor = nan\n", 2),
            ("[a]\nxFilesFactor = -inf\n", 2),
            ("[a]\n\naggregationMethod = Average\n", 3),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line(), Some(line), "{text}");
        }
        let e = parse("[a]\naggregationMethod = median\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "agg.conf:2: [a] aggregationMethod = \"median\": not one of whisper's methods"
        );
        // Python's float(): underscores and surrounding text rules.
        assert_eq!(
            parse("[a]\npattern=x\nxFilesFactor = 0_5e-1\n").unwrap().rules()[0].x_files_factor(),
            Some(0.5)
        );
    }
}
