//! `storage-schemas.conf`: which archives a new Whisper file gets, as
//! `carbon.storage.loadStorageSchemas` reads it.

use std::path::{Path, PathBuf};

use whisper::Retention;

use super::error::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
use super::ini::Ini;
use super::pyre::PyRegex;
use super::read_optional;
use super::retention::parse_retention;
use super::text::decode;

/// The name of the built-in schema that ends every list.
pub const DEFAULT_SCHEMA_NAME: &str = "default";

/// The built-in schema's archive: one point a minute for a week (carbon's `defaultArchive`).
pub const DEFAULT_RETENTION: Retention = Retention::new(60, 60 * 24 * 7);

/// One schema: a name, a pattern and the archives of the files it creates.
#[derive(Debug, Clone)]
pub struct Schema {
    name: String,
    pattern: Option<PyRegex>,
    retentions: Vec<Retention>,
    line: Option<usize>,
}

impl Schema {
    /// The section name (`default` for the built-in one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Python pattern as written; `None` for the built-in default, which matches all.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(PyRegex::as_str)
    }

    /// The archives in the order the file gives them (whisper sorts them when it creates the
    /// file); checked with [`whisper::validate_archive_list`].
    pub fn retentions(&self) -> &[Retention] {
        &self.retentions
    }

    /// The line of the section header; `None` for the built-in default.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Whether this is the built-in default appended after the file's schemas.
    pub fn is_default(&self) -> bool {
        self.pattern.is_none()
    }

    /// Whether the pattern is found anywhere in `metric` (Python's `re.search`).
    pub fn matches(&self, metric: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(metric))
    }

    fn builtin() -> Schema {
        Schema {
            name: DEFAULT_SCHEMA_NAME.to_string(),
            pattern: None,
            retentions: vec![DEFAULT_RETENTION],
            line: None,
        }
    }
}

/// The schemas of `storage-schemas.conf` in file order, then the built-in default; the first
/// that matches a metric decides its archives.
///
/// Read as carbon reads it:
/// * sections come in the order carbon's own scan of `[...]` lines finds them, so a
///   `[DEFAULT]` section is a schema too (and lends its keys to all others), and a header with
///   text after its `]` is not seen (a [`ConfigWarningKind::HiddenSection`] warning);
/// * a section without `retentions` is skipped, then its retentions are parsed (a bad one is an
///   error: carbon exits), then a section without `pattern` (or with an empty one) is skipped,
///   then the pattern is compiled (an error if Python or this implementation cannot), then an
///   archive list whisper refuses skips the section: each skip is a warning;
/// * names are not special: a section called `[default]` or `[carbon]` is an ordinary schema,
///   and the built-in default comes after all of them.
///
/// ```
/// use store::config::StorageSchemas;
/// use std::path::Path;
///
/// let text = "[carbon]\npattern = ^carbon\\.\nretentions = 60:90d\n\n\
///             [default]\npattern = .*\nretentions = 60s:1d,5m:30d,1h:3y\n";
/// let schemas = StorageSchemas::parse(text, Path::new("storage-schemas.conf"))?;
/// let s = schemas.matching("carbon.agents.a.cpuUsage");
/// assert_eq!((s.name(), s.retentions()[0].points()), ("carbon", 129_600));
/// assert_eq!(schemas.matching("servers.web1.load").name(), "default");
/// assert!(schemas.warnings().is_empty());
/// # Ok::<(), store::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StorageSchemas {
    path: PathBuf,
    schemas: Vec<Schema>,
    warnings: Vec<ConfigWarning>,
}

impl Default for StorageSchemas {
    /// Only the built-in default schema, as if the file had no sections.
    fn default() -> StorageSchemas {
        StorageSchemas {
            path: PathBuf::from("storage-schemas.conf"),
            schemas: vec![Schema::builtin()],
            warnings: Vec::new(),
        }
    }
}

impl StorageSchemas {
    /// Reads the schemas from the file's text; `path` names the file in errors and warnings.
    ///
    /// # Errors
    ///
    /// INI syntax and interpolation errors, a retention definition carbon refuses, a pattern
    /// Python refuses or that cannot run here: each names the file and line.
    pub fn parse(text: &str, path: &Path) -> Result<StorageSchemas, ConfigError> {
        let ini = Ini::parse(text, path)?;
        let (sections, mut warnings) = ini.ordered_sections()?;
        let warn = |line, kind| ConfigWarning::new(path, Some(line), kind);
        let mut schemas = Vec::new();
        for section in sections {
            let name = section.name.clone();
            let Some(retentions) = section.get("retentions") else {
                warnings.push(warn(
                    section.line,
                    ConfigWarningKind::MissingRetentions { section: name },
                ));
                continue;
            };
            let mut archives = Vec::new();
            let mut too_large = None;
            for definition in retentions.value.split(',') {
                match parse_retention(definition) {
                    Ok(Some(archive)) => archives.push(archive),
                    Ok(None) => {
                        too_large.get_or_insert_with(|| definition.trim().to_string());
                    }
                    Err(problem) => {
                        return Err(ConfigError::at(
                            path,
                            retentions.line,
                            ConfigErrorKind::Retention {
                                section: name,
                                definition: definition.to_string(),
                                problem,
                            },
                        ));
                    }
                }
            }
            let pattern = match section.get("pattern") {
                Some(p) if !p.value.is_empty() => p,
                _ => {
                    warnings.push(warn(
                        section.line,
                        ConfigWarningKind::MissingPattern { section: name },
                    ));
                    continue;
                }
            };
            let regex = super::compile(&pattern.value, path, pattern.line)?;
            if let Some(definition) = too_large {
                warnings.push(warn(
                    retentions.line,
                    ConfigWarningKind::RetentionTooLarge { section: name, definition },
                ));
                continue;
            }
            let mut sorted = archives.clone();
            if let Err(source) = whisper::validate_archive_list(&mut sorted) {
                warnings.push(warn(
                    retentions.line,
                    ConfigWarningKind::InvalidArchiveList { section: name, source },
                ));
                continue;
            }
            schemas.push(Schema {
                name,
                pattern: Some(regex),
                retentions: archives,
                line: Some(section.line),
            });
        }
        schemas.push(Schema::builtin());
        Ok(StorageSchemas { path: path.to_path_buf(), schemas, warnings })
    }

    /// Reads the schemas from the file's bytes (UTF-8).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NotUtf8`], or as [`StorageSchemas::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<StorageSchemas, ConfigError> {
        StorageSchemas::parse(decode(bytes, path)?, path)
    }

    /// Reads `storage-schemas.conf`. A missing file gives the built-in default alone, with a
    /// [`ConfigWarningKind::MissingFile`] warning (carbon refuses to start without the file).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] if the file exists but cannot be read, or as
    /// [`StorageSchemas::parse`].
    pub fn open(path: impl AsRef<Path>) -> Result<StorageSchemas, ConfigError> {
        let path = path.as_ref();
        match read_optional(path)? {
            Some(bytes) => StorageSchemas::from_bytes(&bytes, path),
            None => Ok(StorageSchemas {
                path: path.to_path_buf(),
                warnings: vec![ConfigWarning::new(path, None, ConfigWarningKind::MissingFile)],
                ..StorageSchemas::default()
            }),
        }
    }

    /// The first schema whose pattern is found in `metric`; the built-in default if none is.
    pub fn matching(&self, metric: &str) -> &Schema {
        self.schemas.iter().find(|s| s.matches(metric)).unwrap_or_else(|| {
            // The built-in default is always last and matches everything.
            self.schemas.last().unwrap_or_else(|| unreachable!("the default is always there"))
        })
    }

    /// All schemas in order, the built-in default last.
    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// What was skipped while reading, in file order (log them; carbon does).
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
    use crate::config::RetentionProblem;

    fn parse(text: &str) -> Result<StorageSchemas, ConfigError> {
        StorageSchemas::parse(text, Path::new("schemas.conf"))
    }

    fn names(s: &StorageSchemas) -> Vec<&str> {
        s.schemas().iter().map(Schema::name).collect()
    }

    fn kinds(s: &StorageSchemas) -> Vec<(Option<usize>, ConfigWarningKind)> {
        s.warnings().iter().map(|w| (w.line(), w.kind().clone())).collect()
    }

    #[test]
    fn debian_file_first_match_wins() {
        let s = parse(
            "# comment\n[carbon]\npattern = ^carbon\\.\nretentions = 60:90d\n\n\
             [default]\npattern = .*\nretentions = 60s:1d,5m:30d,1h:3y\n",
        )
        .unwrap();
        assert_eq!(names(&s), ["carbon", "default", "default"]);
        assert!(!s.schemas()[1].is_default());
        assert!(s.schemas()[2].is_default());
        assert_eq!(s.matching("carbon.x").retentions(), [Retention::new(60, 129_600)]);
        assert_eq!(s.matching("xcarbon.x").line(), Some(6));
        assert_eq!(
            s.matching("a").retentions(),
            [Retention::new(60, 1440), Retention::new(300, 8640), Retention::new(3600, 26280)]
        );
    }

    #[test]
    fn no_sections_is_the_builtin_default() {
        for s in [parse("").unwrap(), StorageSchemas::default()] {
            assert_eq!(s.schemas().len(), 1);
            let d = s.matching("anything");
            assert!(d.is_default());
            assert_eq!((d.name(), d.pattern(), d.line()), ("default", None, None));
            assert_eq!(d.retentions(), [Retention::new(60, 10080)]);
        }
    }

    #[test]
    fn skipped_sections_are_warnings() {
        let s = parse(
            "[noret]\npattern = a\n\
             [nopat]\nretentions = 1m:1d\n\
             [emptypat]\npattern =\nretentions = 1m:1d\n\
             [uneven]\npattern = b\nretentions = 7s:1d,60s:7d\n\
             [huge]\npattern = c\nretentions = 1s:200y\n\
             [ok]\npattern = d\nretentions = 1m:1d\n",
        )
        .unwrap();
        assert_eq!(names(&s), ["ok", "default"]);
        let k = kinds(&s);
        assert_eq!(
            k[0],
            (Some(1), ConfigWarningKind::MissingRetentions { section: "noret".into() })
        );
        assert_eq!(k[1], (Some(3), ConfigWarningKind::MissingPattern { section: "nopat".into() }));
        assert_eq!(
            k[2],
            (Some(5), ConfigWarningKind::MissingPattern { section: "emptypat".into() })
        );
        assert!(
            matches!(&k[3], (Some(10), ConfigWarningKind::InvalidArchiveList { section, .. }) if section == "uneven")
        );
        assert!(
            matches!(&k[4], (Some(13), ConfigWarningKind::RetentionTooLarge { section, definition }) if section == "huge" && definition == "1s:200y")
        );
        assert_eq!(
            s.warnings()[3].to_string(),
            "schemas.conf:10: schema [uneven] skipped: Higher precision archives' precision must \
             evenly divide all lower precision archives' precision (archive0: 7, archive1: 60)"
        );
    }

    #[test]
    fn a_bad_retention_is_an_error_even_without_a_pattern() {
        let e = parse("[a]\nretentions = 1m:1d,\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(matches!(
            e.kind(),
            ConfigErrorKind::Retention { problem: RetentionProblem::Parts, definition, .. } if definition.is_empty()
        ));
        let e = parse("[x]\npattern = a\n\nretentions = 1min:1d\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "schemas.conf:4: [x] retentions: \"1min:1d\": Invalid unit 'min'"
        );
    }

    #[test]
    fn pattern_errors_name_the_line() {
        let e = parse("[a]\npattern = (x\nretentions = 1m:1d\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(matches!(e.kind(), ConfigErrorKind::InvalidRegex { .. }));
        let e = parse("[a]\npattern = ^(?!carbon)\nretentions = 1m:1d\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "schemas.conf:2: regular expression \"^(?!carbon)\" uses look-ahead, which is not supported here"
        );
    }

    #[test]
    fn default_section_is_a_schema_and_lends_its_keys() {
        let s = parse(
            "[DEFAULT]\nretentions = 10s:1d\npattern = ^x\n[a]\npattern = ^a\n[b]\nretentions = 1m:1d\n",
        )
        .unwrap();
        assert_eq!(names(&s), ["DEFAULT", "a", "b", "default"]);
        assert_eq!(s.matching("a1").retentions(), [Retention::new(10, 8640)]);
        assert_eq!(s.matching("x1").name(), "DEFAULT");
        assert_eq!(s.schemas()[2].pattern(), Some("^x"));
    }

    #[test]
    fn hidden_and_phantom_sections() {
        let s = parse("[a] # comment\npattern = .*\nretentions = 1m:1d\n").unwrap();
        assert_eq!(names(&s), ["default"]);
        assert_eq!(
            kinds(&s),
            [(Some(1), ConfigWarningKind::HiddenSection { section: "a".into() })]
        );
        let e = parse("[a]\npattern = .*\n  [b]\nretentions = 1m:1d\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(matches!(e.kind(), ConfigErrorKind::NotASection { name } if name == "b"));
    }

    #[test]
    fn interpolation_in_values() {
        let s = parse("[a]\nbase = 60s\npattern = ^a%%\nretentions = %(base)s:1d\n").unwrap();
        assert_eq!(s.schemas()[0].pattern(), Some("^a%"));
        assert_eq!(s.schemas()[0].retentions(), [Retention::new(60, 1440)]);
        let e = parse("[a]\npattern = 100%\nretentions = 1m:1d\n").unwrap_err();
        assert!(matches!(e.kind(), ConfigErrorKind::Interpolation { .. }));
    }
}
