//! An INI reader with the semantics of Python's `configparser.ConfigParser()` as carbon uses it
//! (Python 3.11, default arguments), and a writer whose output reads back the same.
//!
//! What it does, as `ConfigParser._read` does:
//! * lines end at `\n`, `\r\n` or `\r`; the file is UTF-8;
//! * a line whose stripped text starts with `#` or `;` is a comment (only whole lines: no inline
//!   comments);
//! * `[name]` starts a section (the name runs to the *last* `]` on the line); `[DEFAULT]` is the
//!   defaults section, whose keys every section inherits;
//! * `key = value` or `key: value`, split at the first `=` or `:`, both sides stripped; keys are
//!   lower-cased (`str.lower`), values kept as written;
//! * a line indented deeper than its key's line continues the value (joined with `\n`), and so
//!   do blank lines between (trailing ones are dropped);
//! * a section or a key given twice, a key before any section, or a line that is none of the
//!   above is an error (Python collects the last kind and raises at the end; we stop at the
//!   first);
//! * values are `%`-interpolated when read through [`Ini::items`]: `%(name)s` is another key of
//!   the section or of `[DEFAULT]`, `%%` is `%`, any other `%` is an error.
//!
//! Carbon reads `storage-schemas.conf` and `storage-aggregation.conf` through a subclass that
//! lists sections by scanning raw lines for `[...]` instead of asking the parser; the scan is
//! kept too ([`Ini::listed_sections`]) because it decides what carbon sees.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{
    ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, InterpolationProblem,
    SyntaxError,
};
use super::text::{decode, is_py_space, lines, py_rstrip, py_strip};

/// The name of the defaults section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// A parsed INI file.
#[derive(Debug, Clone)]
pub struct Ini {
    path: PathBuf,
    defaults: Vec<IniEntry>,
    sections: Vec<IniSection>,
    listed: Vec<(String, usize)>,
}

/// One section: its name, the line of its header and its keys in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSection {
    name: String,
    line: usize,
    entries: Vec<IniEntry>,
}

/// One `key = value`, raw (not interpolated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    key: String,
    value: String,
    line: usize,
}

/// One key of a section as [`Ini::items`] gives it: interpolated, with the defaults merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniItem {
    /// The key, lower-case.
    pub key: String,
    /// The value after `%` interpolation.
    pub value: String,
    /// The line the key is on.
    pub line: usize,
    /// Whether the key comes from `[DEFAULT]` rather than the section itself.
    pub inherited: bool,
}

impl IniSection {
    /// The name between the brackets (case kept).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line of the header.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The section's own keys, in file order.
    pub fn entries(&self) -> &[IniEntry] {
        &self.entries
    }

    /// The raw value of a key of this section (not interpolated, defaults not consulted).
    pub fn get(&self, key: &str) -> Option<&IniEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

impl IniEntry {
    /// The key, lower-case.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The raw value: continuation lines joined with `\n`, not interpolated.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The line of the key.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// Where keys go while parsing.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Defaults,
    Section(usize),
}

impl Ini {
    /// Parses an INI text; `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Syntax`] at the first line that breaks the syntax.
    pub fn parse(text: &str, path: &Path) -> Result<Ini, ConfigError> {
        let syntax = |line, e| ConfigError::at(path, line, ConfigErrorKind::Syntax(e));
        if text.starts_with('\u{feff}') {
            return Err(syntax(1, SyntaxError::ByteOrderMark));
        }
        let mut ini = Ini {
            path: path.to_path_buf(),
            defaults: Vec::new(),
            sections: Vec::new(),
            listed: Vec::new(),
        };
        // Each value as its list of lines until the end, as Python joins them at the end.
        let mut pending: Vec<Vec<String>> = Vec::new();
        let mut seen_sections: HashSet<String> = HashSet::new();
        let mut seen_keys: HashSet<(String, String)> = HashSet::new();
        let mut target: Option<Target> = None;
        let mut section_name = String::new();
        // The value being continued: where its entry is and its index in `pending`.
        let mut current: Option<usize> = None;
        let mut indent_level = 0usize;
        let mut entry_slots: Vec<(Target, usize)> = Vec::new();

        for (number, line) in lines(text) {
            let stripped = py_strip(line);
            if stripped.starts_with('[') && stripped.ends_with(']') {
                let name = stripped.get(1..stripped.len() - 1).unwrap_or_default();
                ini.listed.push((name.to_string(), number));
            }
            let comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if comment { "" } else { stripped };
            if value.is_empty() {
                if !comment
                    && target.is_some()
                    && let Some(lines) = current.and_then(|slot| pending.get_mut(slot))
                {
                    lines.push(String::new());
                }
                continue;
            }
            let indent = line.chars().take_while(|&c| is_py_space(c)).count();
            if target.is_some()
                && indent > indent_level
                && let Some(lines) = current.and_then(|slot| pending.get_mut(slot))
            {
                lines.push(value.to_string());
                continue;
            }
            indent_level = indent;
            if let Some(name) = section_header(value) {
                if name == DEFAULT_SECTION {
                    target = Some(Target::Defaults);
                } else if !seen_sections.insert(name.to_string()) {
                    return Err(syntax(
                        number,
                        SyntaxError::DuplicateSection { name: name.to_string() },
                    ));
                } else {
                    ini.sections.push(IniSection {
                        name: name.to_string(),
                        line: number,
                        entries: Vec::new(),
                    });
                    target = Some(Target::Section(ini.sections.len() - 1));
                }
                section_name = name.to_string();
                current = None;
                continue;
            }
            let Some(into) = target else {
                return Err(syntax(number, SyntaxError::MissingSectionHeader));
            };
            let Some(split) = value.find(['=', ':']) else {
                return Err(syntax(number, SyntaxError::NotKeyValue { text: value.to_string() }));
            };
            let raw_key = py_rstrip(value.get(..split).unwrap_or_default());
            if raw_key.is_empty() {
                return Err(syntax(number, SyntaxError::EmptyKey { text: value.to_string() }));
            }
            let key = raw_key.to_lowercase();
            if !seen_keys.insert((section_name.clone(), key.clone())) {
                return Err(syntax(
                    number,
                    SyntaxError::DuplicateKey { section: section_name.clone(), key },
                ));
            }
            let first = py_strip(value.get(split + 1..).unwrap_or_default()).to_string();
            let entries = match into {
                Target::Defaults => &mut ini.defaults,
                Target::Section(i) => match ini.sections.get_mut(i) {
                    Some(s) => &mut s.entries,
                    None => continue,
                },
            };
            entries.push(IniEntry { key, value: String::new(), line: number });
            entry_slots.push((into, entries.len() - 1));
            pending.push(vec![first]);
            current = Some(pending.len() - 1);
        }

        for ((into, index), value_lines) in entry_slots.into_iter().zip(pending) {
            let joined = value_lines.join("\n");
            let entries = match into {
                Target::Defaults => &mut ini.defaults,
                Target::Section(i) => match ini.sections.get_mut(i) {
                    Some(s) => &mut s.entries,
                    None => continue,
                },
            };
            if let Some(entry) = entries.get_mut(index) {
                entry.value = py_rstrip(&joined).to_string();
            }
        }
        Ok(ini)
    }

    /// Parses an INI file's bytes (UTF-8); `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NotUtf8`], or as [`Ini::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Ini, ConfigError> {
        Ini::parse(decode(bytes, path)?, path)
    }

    /// Reads and parses an INI file.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] if it cannot be read, or as [`Ini::from_bytes`].
    pub fn open(path: impl AsRef<Path>) -> Result<Ini, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| ConfigError::new(path, None, ConfigErrorKind::Io(e)))?;
        Ini::from_bytes(&bytes, path)
    }

    /// The file this was read from (as given).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sections in file order, without `[DEFAULT]`.
    pub fn sections(&self) -> &[IniSection] {
        &self.sections
    }

    /// A section by name (case matters, as in Python).
    pub fn section(&self, name: &str) -> Option<&IniSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The keys of `[DEFAULT]`, raw.
    pub fn defaults(&self) -> &[IniEntry] {
        &self.defaults
    }

    /// The keys and values of `[DEFAULT]` and of each section, raw, without line numbers:
    /// what a round trip through [`Display`](fmt::Display) and [`Ini::parse`] keeps.
    #[allow(clippy::type_complexity)]
    pub fn content(&self) -> (Vec<(String, String)>, Vec<(String, Vec<(String, String)>)>) {
        let pairs = |entries: &[IniEntry]| -> Vec<(String, String)> {
            entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
        };
        let sections = self.sections.iter().map(|s| (s.name.clone(), pairs(&s.entries))).collect();
        (pairs(&self.defaults), sections)
    }

    /// The section names carbon's `OrderedConfigParser` lists, with their lines: every line
    /// whose stripped text starts with `[` and ends with `]`, in file order, `[DEFAULT]` and
    /// indented continuation lines included, duplicates kept.
    pub(crate) fn listed_sections(&self) -> &[(String, usize)] {
        &self.listed
    }

    /// Python's `parser.items(section)`: the `[DEFAULT]` keys first, then the section's own
    /// keys (a key of both keeps its default's place and takes the section's value), every
    /// value interpolated. `items("DEFAULT")` gives the defaults alone; `None` if there is no
    /// such section.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Interpolation`] at the line of the first value that cannot be
    /// interpolated.
    pub fn items(&self, section: &str) -> Option<Result<Vec<IniItem>, ConfigError>> {
        let own: &[IniEntry] =
            if section == DEFAULT_SECTION { &[] } else { &self.section(section)?.entries };
        let mut merged: Vec<(&IniEntry, bool)> = self.defaults.iter().map(|e| (e, true)).collect();
        for entry in own {
            match merged.iter_mut().find(|(e, _)| e.key == entry.key) {
                Some(slot) => *slot = (entry, false),
                None => merged.push((entry, false)),
            }
        }
        let lookup =
            |name: &str| merged.iter().find(|(e, _)| e.key == name).map(|(e, _)| e.value.as_str());
        let mut items = Vec::with_capacity(merged.len());
        for &(entry, inherited) in &merged {
            let mut value = String::new();
            if let Err(problem) = interpolate(&mut value, &entry.value, &lookup, 1) {
                return Some(Err(ConfigError::at(
                    &self.path,
                    entry.line,
                    ConfigErrorKind::Interpolation { key: entry.key.clone(), problem },
                )));
            }
            items.push(IniItem { key: entry.key.clone(), value, line: entry.line, inherited });
        }
        Some(Ok(items))
    }
}

/// A section as carbon's `OrderedConfigParser` hands it out.
#[derive(Debug)]
pub(crate) struct OrderedSection {
    /// The name.
    pub(crate) name: String,
    /// The header line carbon's scan found it on.
    pub(crate) line: usize,
    /// `items(name)`.
    pub(crate) items: Vec<IniItem>,
}

impl OrderedSection {
    /// An interpolated value by key (lower-case).
    pub(crate) fn get(&self, key: &str) -> Option<&IniItem> {
        self.items.iter().find(|i| i.key == key)
    }
}

impl Ini {
    /// The sections the way `carbon.storage` walks them: carbon's scan order
    /// ([`Ini::listed_sections`]), each with its interpolated items. A section the parser has
    /// but the scan misses (text after `]`) is a warning; a scanned name the parser does not
    /// have (an indented continuation line) is an error, as carbon fails on it.
    pub(crate) fn ordered_sections(
        &self,
    ) -> Result<(Vec<OrderedSection>, Vec<ConfigWarning>), ConfigError> {
        let warnings = self
            .sections
            .iter()
            .filter(|s| !self.listed_sections().iter().any(|(name, _)| *name == s.name))
            .map(|s| {
                ConfigWarning::new(
                    &self.path,
                    Some(s.line),
                    ConfigWarningKind::HiddenSection { section: s.name.clone() },
                )
            })
            .collect();
        let mut sections = Vec::with_capacity(self.listed.len());
        for (name, line) in self.listed_sections() {
            let Some(items) = self.items(name) else {
                return Err(ConfigError::at(
                    &self.path,
                    *line,
                    ConfigErrorKind::NotASection { name: name.clone() },
                ));
            };
            sections.push(OrderedSection { name: name.clone(), line: *line, items: items? });
        }
        Ok((sections, warnings))
    }
}

/// Python's `SECTCRE.match(value)`: `[`, then a name of at least one character up to the last
/// `]` on the line.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = rest.get(..end)?;
    (!name.is_empty()).then_some(name)
}

/// Python's `BasicInterpolation._interpolate_some`.
fn interpolate<'a>(
    out: &mut String,
    mut rest: &str,
    lookup: &impl Fn(&str) -> Option<&'a str>,
    depth: usize,
) -> Result<(), InterpolationProblem> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err(InterpolationProblem::TooDeep);
    }
    while !rest.is_empty() {
        let Some(p) = rest.find('%') else {
            out.push_str(rest);
            return Ok(());
        };
        out.push_str(rest.get(..p).unwrap_or_default());
        rest = rest.get(p..).unwrap_or_default();
        let after = rest.get(1..).unwrap_or_default();
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            // `%\(([^)]+)\)s`
            let close = inner.find(')').filter(|&c| c > 0);
            let Some(close) =
                close.filter(|&c| inner.get(c + 1..).is_some_and(|t| t.starts_with('s')))
            else {
                return Err(InterpolationProblem::Syntax { rest: rest.to_string() });
            };
            let name = inner.get(..close).unwrap_or_default().to_lowercase();
            rest = inner.get(close + 2..).unwrap_or_default();
            let Some(value) = lookup(&name) else {
                return Err(InterpolationProblem::Missing { name });
            };
            if value.contains('%') {
                interpolate(out, value, lookup, depth + 1)?;
            } else {
                out.push_str(value);
            }
        } else {
            return Err(InterpolationProblem::Syntax { rest: rest.to_string() });
        }
    }
    Ok(())
}

/// Writes the file back: `[DEFAULT]` first if it has keys, then the sections in order; a
/// multi-line value continues on lines indented by four spaces (blank lines stay blank).
/// Parsing the output gives the same sections, keys and values.
impl fmt::Display for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn entries(f: &mut fmt::Formatter<'_>, entries: &[IniEntry]) -> fmt::Result {
            for entry in entries {
                let mut value_lines = entry.value.split('\n');
                write!(f, "{} = {}", entry.key, value_lines.next().unwrap_or_default())?;
                for line in value_lines {
                    if line.is_empty() {
                        writeln!(f)?;
                    } else {
                        write!(f, "\n    {line}")?;
                    }
                }
                writeln!(f)?;
            }
            Ok(())
        }
        if !self.defaults.is_empty() {
            writeln!(f, "[{DEFAULT_SECTION}]")?;
            entries(f, &self.defaults)?;
        }
        for section in &self.sections {
            writeln!(f, "[{}]", section.name)?;
            entries(f, &section.entries)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, ConfigError> {
        Ini::parse(text, Path::new("t.conf"))
    }

    fn items(ini: &Ini, section: &str) -> Vec<(String, String)> {
        ini.items(section).unwrap().unwrap().into_iter().map(|i| (i.key, i.value)).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn syntax_error(text: &str) -> (usize, SyntaxError) {
        let e = parse(text).unwrap_err();
        match e.kind() {
            ConfigErrorKind::Syntax(s) => (e.line().unwrap(), s.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_and_values_with_either_delimiter() {
        let ini = parse("[a]\nKey = v 1 \nother: x = y\nurl = http://h:80\n  # c\n; c\n").unwrap();
        assert_eq!(
            items(&ini, "a"),
            pairs(&[("key", "v 1"), ("other", "x = y"), ("url", "http://h:80")])
        );
        // The first delimiter of either kind splits.
        let ini = parse("[a]\nhttp://h = 1\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("http", "//h = 1")]));
    }

    #[test]
    fn continuation_lines_and_blank_lines_in_values() {
        let ini = parse("[a]\nk = one\n  two\n\n    three\n\n\nj =\n  x\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("k", "one\ntwo\n\nthree"), ("j", "\nx")]));
        // A comment line neither ends a value nor adds a blank line to it.
        let ini = parse("[a]\nk = one\n# c\n  two\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("k", "one\ntwo")]));
        // Indented deeper than the previous key line: a continuation, even if it looks like a key.
        let ini = parse("[a]\n  k = 1\n  j = 2\n    i = 3\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("k", "1"), ("j", "2\ni = 3")]));
        // An indented header continues a value, and carbon's scan still lists it.
        let ini = parse("[a]\nk = 1\n  [b]\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("k", "1\n[b]")]));
        assert!(ini.section("b").is_none());
        assert_eq!(ini.listed_sections(), [("a".to_string(), 1), ("b".to_string(), 3)]);
    }

    #[test]
    fn header_names_run_to_the_last_bracket() {
        let ini = parse("[a] ; x\n[b]]\n[c] [d]\n").unwrap();
        let names: Vec<_> = ini.sections().iter().map(IniSection::name).collect();
        assert_eq!(names, ["a", "b]", "c] [d"]);
        // carbon's scan misses the first (it does not end with `]`).
        let listed: Vec<_> = ini.listed_sections().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(listed, ["b]", "c] [d"]);
    }

    #[test]
    fn defaults_are_inherited_first_and_overridden_in_place() {
        let ini = parse("[DEFAULT]\nroot = /r\nx = 1\n[a]\ny = %(root)s/y\nx = 2\n[b]\n").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("root", "/r"), ("x", "2"), ("y", "/r/y")]));
        assert_eq!(items(&ini, "b"), pairs(&[("root", "/r"), ("x", "1")]));
        assert_eq!(items(&ini, "DEFAULT"), pairs(&[("root", "/r"), ("x", "1")]));
        assert!(ini.items("c").is_none());
        let inherited: Vec<_> =
            ini.items("a").unwrap().unwrap().iter().map(|i| i.inherited).collect();
        assert_eq!(inherited, [true, false, false]);
        // `[DEFAULT]` may come back; its keys still may not repeat.
        assert!(parse("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n").is_ok());
        assert_eq!(
            syntax_error("[DEFAULT]\na=1\n[DEFAULT]\na=2\n"),
            (4, SyntaxError::DuplicateKey { section: "DEFAULT".into(), key: "a".into() })
        );
    }

    #[test]
    fn interpolation() {
        let ini =
            parse("[a]\npct = 100%%\nname = Web\nref = %(NAME)s-%(pct)s\nchain = <%(ref)s>\n")
                .unwrap();
        assert_eq!(
            items(&ini, "a"),
            pairs(&[
                ("pct", "100%"),
                ("name", "Web"),
                ("ref", "Web-100%"),
                ("chain", "<Web-100%>")
            ])
        );
        let problem = |text: &str| {
            let e = parse(text).unwrap().items("a").unwrap().unwrap_err();
            match e.kind() {
                ConfigErrorKind::Interpolation { problem, .. } => {
                    (e.line().unwrap(), problem.clone())
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(problem("[a]\nx = 1\ny = 5%\n").0, 3);
        assert!(matches!(problem("[a]\ny = %d\n").1, InterpolationProblem::Syntax { .. }));
        assert!(matches!(problem("[a]\ny = %()s\n").1, InterpolationProblem::Syntax { .. }));
        assert!(matches!(problem("[a]\ny = %(x)d\n").1, InterpolationProblem::Syntax { .. }));
        assert_eq!(
            problem("[a]\ny = %(nope)s\n").1,
            InterpolationProblem::Missing { name: "nope".into() }
        );
        assert_eq!(problem("[a]\ny = %(y)s\n").1, InterpolationProblem::TooDeep);
        // Ten levels are fine, eleven are not.
        let mut text = String::from("[a]\nk0 = end\n");
        for i in 1..=10 {
            text.push_str(&format!("k{i} = %(k{})s\n", i - 1));
        }
        assert!(parse(&text).unwrap().items("a").unwrap().is_ok());
        text.push_str("k11 = %(k10)s%%\n");
        assert_eq!(problem(&text).1, InterpolationProblem::TooDeep);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(syntax_error("# c\nk = v\n"), (2, SyntaxError::MissingSectionHeader));
        assert_eq!(
            syntax_error("[a]\nk = v\njunk\n"),
            (3, SyntaxError::NotKeyValue { text: "junk".into() })
        );
        assert_eq!(syntax_error("[a]\n = v\n"), (2, SyntaxError::EmptyKey { text: "= v".into() }));
        assert_eq!(
            syntax_error("[a]\n[b]\n[a]\n"),
            (3, SyntaxError::DuplicateSection { name: "a".into() })
        );
        assert_eq!(
            syntax_error("[a]\nK = 1\nk: 2\n"),
            (3, SyntaxError::DuplicateKey { section: "a".into(), key: "k".into() })
        );
        assert_eq!(syntax_error("\u{feff}[a]\n"), (1, SyntaxError::ByteOrderMark));
        assert_eq!(syntax_error("[a]\n[]\n"), (2, SyntaxError::NotKeyValue { text: "[]".into() }));
        let e = parse("[a]\njunk\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.conf:2: expected [section], key = value or key: value, found \"junk\""
        );
    }

    #[test]
    fn old_mac_line_ends() {
        let ini = parse("[a]\rk = 1\r\n  2\rj = 3").unwrap();
        assert_eq!(items(&ini, "a"), pairs(&[("k", "1\n2"), ("j", "3")]));
        assert_eq!(ini.section("a").unwrap().get("j").unwrap().line(), 4);
    }

    #[test]
    fn writes_what_it_reads() {
        let text = "[DEFAULT]\nr = /x\n[b]\nk = one\n  two\n\n  three\nj =\n  x\n[c]\n";
        let ini = parse(text).unwrap();
        let again = parse(&ini.to_string()).unwrap();
        assert_eq!(again.content(), ini.content());
        assert_eq!(ini.content().1[0].1[1], ("j".to_string(), "\nx".to_string()));
    }
}
