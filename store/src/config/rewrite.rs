//! `rewrite-rules.conf`, as `carbon.rewrite.RewriteRuleManager` reads it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
use super::pyre::{PyRegex, PyRegexError};
use super::text::{decode, lines, py_strip};
use super::{read_optional, regex_error};

/// One rule: a Python pattern and its replacement, applied with Python's `re.sub`.
#[derive(Debug, Clone)]
pub struct RewriteRule {
    pattern: PyRegex,
    replacement: String,
    template: String,
    line: usize,
}

impl RewriteRule {
    /// The Python pattern as written.
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    /// The replacement as written (Python syntax: `\1`, `\g<name>`).
    pub fn replacement(&self) -> &str {
        &self.replacement
    }

    /// The replacement in the `regex` crate's syntax (`${1}`, `$$`).
    pub fn rust_replacement(&self) -> &str {
        &self.template
    }

    /// The line of the rule.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Replaces every match in `metric`, as Python's `regex.sub(replacement, metric)`.
    pub fn apply<'m>(&self, metric: &'m str) -> Cow<'m, str> {
        self.pattern.sub(&self.template, metric)
    }
}

/// The rules of `rewrite-rules.conf`: `[pre]` rules apply to metrics as they arrive, `[post]`
/// rules after aggregation; within a section, in order, each to the previous one's output.
///
/// Read as carbon reads it: lines are stripped; `#` lines and blank lines are skipped; a line
/// `[name]` starts section `name` (lower-cased) and empties it (so a section given twice keeps
/// only its last rules, and `[]` empties them all); a line with `=` is `regex = replacement`,
/// split at the first `=`, both sides stripped; anything else is ignored with a warning. A
/// pattern Python refuses is skipped with a warning (as carbon does); one that cannot run here,
/// or a replacement Python refuses (carbon would fail on every metric), is an error. Rules
/// outside `[pre]` and `[post]` are never applied (a warning). A missing file has no rules.
///
/// ```
/// use store::config::RewriteRules;
/// use std::path::Path;
///
/// let rules = RewriteRules::parse("[pre]\n^prod\\.(\\w+)\\. = \\1.prod.\n[post]\n_sum$ =\n", Path::new("rewrite-rules.conf"))?;
/// assert_eq!(rules.apply_pre("prod.web1.cpu"), "web1.prod.cpu");
/// assert_eq!(rules.apply_post("requests_sum"), "requests");
/// # Ok::<(), store::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RewriteRules {
    path: PathBuf,
    pre: Vec<RewriteRule>,
    post: Vec<RewriteRule>,
    warnings: Vec<ConfigWarning>,
}

/// Where a rule goes: carbon keeps any section, and rules before the first one.
#[derive(Clone, PartialEq)]
enum Ruleset {
    None,
    Named(String),
}

impl RewriteRules {
    /// Reads the rules from the file's text; `path` names the file in errors and warnings.
    ///
    /// # Errors
    ///
    /// A pattern that cannot run here, or a replacement Python refuses, with its line.
    pub fn parse(text: &str, path: &Path) -> Result<RewriteRules, ConfigError> {
        // A rule that cannot run only matters if it is still there at the end and applied:
        // carbon compiles the replacement when it applies the rule, and a later `[name]` or
        // `[]` may drop it first.
        type Pending = (usize, String, Result<RewriteRule, ConfigError>);
        let mut sets: Vec<(Ruleset, Vec<Pending>)> = Vec::new();
        let mut warnings = Vec::new();
        let mut current = Ruleset::None;
        for (number, line) in lines(text) {
            let line = py_strip(line);
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                let name = line.get(1..line.len() - 1).unwrap_or_default().to_lowercase();
                if name.is_empty() {
                    // carbon's `clear('')` clears every ruleset.
                    sets.clear();
                } else {
                    sets.retain(|(set, _)| *set != Ruleset::Named(name.clone()));
                }
                current = Ruleset::Named(name);
                continue;
            }
            let Some((pattern, replacement)) = line.split_once('=') else {
                warnings.push(ConfigWarning::new(
                    path,
                    Some(number),
                    ConfigWarningKind::NotARule { text: line.to_string() },
                ));
                continue;
            };
            let (pattern, replacement) = (py_strip(pattern), py_strip(replacement));
            let rule = match PyRegex::new(pattern) {
                Ok(regex) => regex
                    .template(replacement)
                    .map(|template| RewriteRule {
                        pattern: regex,
                        replacement: replacement.to_string(),
                        template,
                        line: number,
                    })
                    .map_err(|message| {
                        ConfigError::at(
                            path,
                            number,
                            ConfigErrorKind::InvalidReplacement {
                                replacement: replacement.to_string(),
                                message,
                            },
                        )
                    }),
                Err(PyRegexError::Invalid(message)) => {
                    warnings.push(ConfigWarning::new(
                        path,
                        Some(number),
                        ConfigWarningKind::InvalidRegex { pattern: pattern.to_string(), message },
                    ));
                    continue;
                }
                Err(e) => Err(ConfigError::at(path, number, regex_error(pattern, e))),
            };
            let pending = (number, pattern.to_string(), rule);
            match sets.iter_mut().find(|(set, _)| *set == current) {
                Some((_, rules)) => rules.push(pending),
                None => sets.push((current.clone(), vec![pending])),
            }
        }
        let mut rules = RewriteRules { path: path.to_path_buf(), ..RewriteRules::default() };
        for (set, list) in sets {
            let applied = match &set {
                Ruleset::Named(name) if name == "pre" => Some(&mut rules.pre),
                Ruleset::Named(name) if name == "post" => Some(&mut rules.post),
                _ => None,
            };
            match applied {
                Some(target) => {
                    for (_, _, rule) in list {
                        target.push(rule?);
                    }
                }
                None => {
                    let section = match set {
                        Ruleset::Named(name) => format!("[{name}]"),
                        Ruleset::None => "no section".to_string(),
                    };
                    for (line, pattern, _) in list {
                        warnings.push(ConfigWarning::new(
                            path,
                            Some(line),
                            ConfigWarningKind::UnusedRule { pattern, section: section.clone() },
                        ));
                    }
                }
            }
        }
        warnings.sort_by_key(ConfigWarning::line);
        rules.warnings = warnings;
        Ok(rules)
    }

    /// Reads the rules from the file's bytes (UTF-8).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NotUtf8`], or as [`RewriteRules::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<RewriteRules, ConfigError> {
        RewriteRules::parse(decode(bytes, path)?, path)
    }

    /// Reads `rewrite-rules.conf`; a missing file has no rules.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`] if the file exists but cannot be read, or as
    /// [`RewriteRules::from_bytes`].
    pub fn open(path: impl AsRef<Path>) -> Result<RewriteRules, ConfigError> {
        let path = path.as_ref();
        match read_optional(path)? {
            Some(bytes) => RewriteRules::from_bytes(&bytes, path),
            None => Ok(RewriteRules { path: path.to_path_buf(), ..RewriteRules::default() }),
        }
    }

    /// The `[pre]` rules in order.
    pub fn pre(&self) -> &[RewriteRule] {
        &self.pre
    }

    /// The `[post]` rules in order.
    pub fn post(&self) -> &[RewriteRule] {
        &self.post
    }

    /// Applies the `[pre]` rules in order.
    pub fn apply_pre<'m>(&self, metric: &'m str) -> Cow<'m, str> {
        apply_all(&self.pre, metric)
    }

    /// Applies the `[post]` rules in order.
    pub fn apply_post<'m>(&self, metric: &'m str) -> Cow<'m, str> {
        apply_all(&self.post, metric)
    }

    /// What was skipped or is never applied, in file order.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn apply_all<'m>(rules: &[RewriteRule], metric: &'m str) -> Cow<'m, str> {
    let mut name = Cow::Borrowed(metric);
    for rule in rules {
        if let Cow::Owned(changed) = rule.apply(&name) {
            name = Cow::Owned(changed);
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RewriteRules, ConfigError> {
        RewriteRules::parse(text, Path::new("rewrite.conf"))
    }

    #[test]
    fn example_rules() {
        let r = parse("# strip suffixes\n[post]\n_sum$ =\n_avg$ =\n").unwrap();
        assert_eq!(r.post().len(), 2);
        assert_eq!(r.apply_post("a.b_sum"), "a.b");
        assert_eq!(r.apply_post("a.b_avg"), "a.b");
        assert_eq!(r.apply_post("a.b"), "a.b");
        assert!(matches!(r.apply_post("a.b"), Cow::Borrowed(_)));
        assert!(r.pre().is_empty());
    }

    #[test]
    fn rules_chain_in_order_and_replace_all() {
        let r = parse("[PRE]\n\\.\\. = .\nx = y\n(?P<first>\\w+)\\.(\\w+) = \\g<2>.\\g<first>\n")
            .unwrap();
        assert_eq!(r.apply_pre("ax..bx"), "by.ay");
        assert_eq!(r.pre()[2].rust_replacement(), "${2}.${1}");
        assert_eq!(r.pre()[2].replacement(), r"\g<2>.\g<first>");
        assert_eq!(r.pre()[0].line(), 2);
    }

    #[test]
    fn split_at_the_first_equals() {
        let r = parse("[pre]\na=b = c=d\n").unwrap();
        assert_eq!(r.pre()[0].pattern(), "a");
        assert_eq!(r.pre()[0].replacement(), "b = c=d");
    }

    #[test]
    fn a_repeated_section_replaces_the_earlier_one() {
        let r = parse("[pre]\na = b\n[post]\nc = d\n[pre]\ne = f\n").unwrap();
        assert_eq!(r.pre().iter().map(RewriteRule::pattern).collect::<Vec<_>>(), ["e"]);
        assert_eq!(r.post().len(), 1);
        let r = parse("[pre]\na = b\n[post]\nc = d\n[]\n").unwrap();
        assert!(r.pre().is_empty() && r.post().is_empty());
    }

    #[test]
    fn warnings_for_what_carbon_ignores() {
        let r = parse("a = b\n[pre]\n(x = y\njunk\n[other]\nc = d\n").unwrap();
        let kinds: Vec<_> = r.warnings().iter().map(|w| (w.line(), w.kind().clone())).collect();
        assert_eq!(
            kinds,
            [
                (
                    Some(1),
                    ConfigWarningKind::UnusedRule {
                        pattern: "a".into(),
                        section: "no section".into()
                    }
                ),
                (
                    Some(3),
                    ConfigWarningKind::InvalidRegex {
                        pattern: "(x".into(),
                        message: "missing ), unterminated subpattern".into()
                    }
                ),
                (Some(4), ConfigWarningKind::NotARule { text: "junk".into() }),
                (
                    Some(6),
                    ConfigWarningKind::UnusedRule {
                        pattern: "c".into(),
                        section: "[other]".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_rule_that_cannot_run_only_matters_if_it_is_applied() {
        let r = parse("[pre]\n(a) = \\2\nb(?!c) = d\n[]\n[pre]\nx = y\n").unwrap();
        assert_eq!(r.pre().len(), 1);
        let r = parse("[other]\n(a) = \\2\n").unwrap();
        assert!(matches!(r.warnings()[0].kind(), ConfigWarningKind::UnusedRule { .. }));
    }

    #[test]
    fn errors() {
        let e = parse("[pre]\na(?!b) = c\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = parse("[pre]\n(a) = \\2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rewrite.conf:2: invalid replacement \"\\\\2\": invalid group reference 2"
        );
    }
}
