//! `aggregation-rules.conf`, as `carbon.aggregator.rules.RuleManager` reads it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::fmt_at;
use crate::config::pyre::{PyRegex, PyRegexError};
use crate::config::text::{decode, is_py_space, lines, py_int, py_strip};

/// How the values an output metric received in one interval become one value.
///
/// carbon 1.1.7's `AGGREGATION_METHODS`, plus `last` (see [`Method::Last`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// `sum`: Python's `sum(values)`, added left to right in arrival order.
    Sum,
    /// `avg`: `float(sum(values)) / len(values)`.
    Avg,
    /// `min`: Python's `min(values)` (the first value, replaced by each later one that is
    /// smaller).
    Min,
    /// `max`: Python's `max(values)`.
    Max,
    /// `count`: the number of values.
    Count,
    /// `last`: the value received last. Not in carbon 1.1.7 (which refuses a rules file that
    /// uses it); an extension here.
    Last,
    /// `p50` .. `p999`: carbon's percentile, linear between the two closest ranks with
    /// `rank = factor * (n - 1)` over the sorted values.
    Percentile(f64),
}

/// The method names and what they mean.
const METHODS: &[(&str, Method)] = &[
    ("sum", Method::Sum),
    ("avg", Method::Avg),
    ("min", Method::Min),
    ("max", Method::Max),
    ("p50", Method::Percentile(0.50)),
    ("p75", Method::Percentile(0.75)),
    ("p80", Method::Percentile(0.80)),
    ("p90", Method::Percentile(0.90)),
    ("p95", Method::Percentile(0.95)),
    ("p99", Method::Percentile(0.99)),
    ("p999", Method::Percentile(0.999)),
    ("count", Method::Count),
    ("last", Method::Last),
];

impl Method {
    /// The method called `name` in a rules file.
    pub fn from_name(name: &str) -> Option<Method> {
        METHODS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// Its name in a rules file.
    pub fn name(self) -> &'static str {
        METHODS.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// Whether the method needs every value (the percentiles) rather than a running total.
    pub(crate) fn keeps_values(self) -> bool {
        matches!(self, Method::Percentile(_))
    }
}

/// A part of an output template: carbon turns `<field>` into `%(field)s` and formats the
/// template with Python's `%` and the captured fields.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(String),
}

/// One rule: `output_template (frequency) = method input_pattern`.
#[derive(Debug, Clone)]
pub struct AggregationRule {
    input: String,
    output: String,
    method: Method,
    frequency: u32,
    regex: PyRegex,
    template: Vec<Part>,
    line: usize,
}

impl AggregationRule {
    /// Builds a rule from its four parts, as `AggregationRule(input, output, method,
    /// frequency)` does.
    ///
    /// # Errors
    ///
    /// An unknown method, a frequency that is not a positive integer, an input pattern whose
    /// regular expression Python refuses (or that cannot run here), or an output template that
    /// carbon could not format with the input's fields.
    pub fn new(
        output: &str,
        frequency: &str,
        method: &str,
        input: &str,
    ) -> Result<AggregationRule, RuleErrorKind> {
        // carbon: `int(frequency.lstrip('(').rstrip(')'))`, so the parentheses are optional.
        let number = frequency.trim_start_matches('(').trim_end_matches(')');
        let frequency = match py_int(number) {
            Some(Ok(n)) if n > 0 => u32::try_from(n).ok(),
            _ => None,
        }
        .ok_or_else(|| RuleErrorKind::Frequency { text: frequency.to_string() })?;
        let method = Method::from_name(method)
            .ok_or_else(|| RuleErrorKind::Method { name: method.to_string() })?;
        let pattern = input_regex(input);
        let regex = PyRegex::new(&pattern).map_err(|e| match e {
            PyRegexError::Invalid(message) => RuleErrorKind::InvalidRegex { pattern, message },
            PyRegexError::Unsupported(feature) => {
                RuleErrorKind::UnsupportedRegex { pattern, feature }
            }
        })?;
        let template = parse_template(output)
            .map_err(|message| RuleErrorKind::Template { template: output.to_string(), message })?;
        // carbon raises KeyError for every metric the rule matches; refuse the rule instead.
        let fields: Vec<String> = regex.group_names().into_iter().map(str::to_string).collect();
        let unknown = template.iter().find_map(|part| match part {
            Part::Field(name) if !fields.contains(name) => Some(name),
            _ => None,
        });
        if let Some(name) = unknown {
            return Err(RuleErrorKind::Template {
                template: output.to_string(),
                message: format!(
                    "field {name:?} is not captured by the input pattern (an output names a field <f>, also one the input captures with <<f>>)"
                ),
            });
        }
        Ok(AggregationRule {
            input: input.to_string(),
            output: output.to_string(),
            method,
            frequency,
            regex,
            template,
            line: 0,
        })
    }

    /// The input pattern as written.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The output template as written.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The frequency in seconds: the length of an interval, and how often the buffers of this
    /// rule's outputs are computed.
    pub fn frequency(&self) -> u32 {
        self.frequency
    }

    /// The Python regular expression carbon builds from the input pattern.
    pub fn regex(&self) -> &str {
        self.regex.as_str()
    }

    /// The line of the rule in its file (0 for a rule built with [`AggregationRule::new`]).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The output metric for `metric`, or `None` if the rule does not match it: carbon's
    /// `get_aggregate_metric`.
    pub fn output_for(&self, metric: &str) -> Option<String> {
        let groups = self.regex.match_groups(metric)?;
        let mut out = String::with_capacity(self.output.len() + metric.len());
        for part in &self.template {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name) => {
                    let value = groups.iter().find(|(n, _)| n == name).and_then(|(_, v)| *v);
                    // Python's `'%s' % None`.
                    out.push_str(value.unwrap_or("None"));
                }
            }
        }
        Some(out)
    }
}

/// The regular expression carbon's `build_regex` makes of an input pattern: per `.`-separated
/// part, `<<f>>` is `(?P<f>.+?)`, `<f>` is `(?P<f>[^.]+?)` (text around either kept as it is),
/// a part that is exactly `*` is `[^.]+`, any other `*` is `[^.]*`, and the rest passes
/// through as regular expression syntax; the parts are joined with `\.` and `$` ends it.
pub fn input_regex(input: &str) -> String {
    let mut parts = Vec::new();
    for part in input.split('.') {
        // Python slicing: an end before the start is empty.
        let slice = |from: usize, to: usize| part.get(from..to.max(from)).unwrap_or_default();
        let tail = |from: usize| part.get(from.min(part.len())..).unwrap_or_default();
        let regex = match (part.find("<<"), part.find(">>")) {
            (Some(i), Some(j)) => {
                format!("{}(?P<{}>.+?){}", &part[..i], slice(i + 2, j), tail(j + 2))
            }
            _ => match (part.find('<'), part.find('>')) {
                (Some(i), Some(j)) if j > i => {
                    format!("{}(?P<{}>[^.]+?){}", &part[..i], slice(i + 1, j), tail(j + 1))
                }
                _ if part == "*" => "[^.]+".to_string(),
                _ => part.replace('*', "[^.]*"),
            },
        };
        parts.push(regex);
    }
    let mut pattern = parts.join("\\.");
    pattern.push('$');
    pattern
}

/// Parses an output template the way Python's `%` reads `template.replace('<', '%(')
/// .replace('>', ')s')` with a dict: `%(key)s` is a field and `%%` a `%`. Every other
/// conversion is refused (carbon would raise or print the dict).
fn parse_template(output: &str) -> Result<Vec<Part>, String> {
    let python = output.replace('<', "%(").replace('>', ")s");
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = python.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => text.push('%'),
            Some('(') => {
                // Python counts nested parentheses to find the key's end.
                let mut depth = 1usize;
                let mut key = String::new();
                loop {
                    let Some(k) = chars.next() else {
                        return Err("incomplete format key".into());
                    };
                    match k {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    key.push(k);
                }
                match chars.next() {
                    Some('s') => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Field(key));
                    }
                    Some(other) => {
                        return Err(format!("unsupported conversion {other:?} after %({key})"));
                    }
                    None => return Err("incomplete format".into()),
                }
            }
            Some(other) => {
                return Err(format!("unsupported format character {other:?} after %"));
            }
            None => return Err("incomplete format".into()),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// The rules of an `aggregation-rules.conf`, in file order.
///
/// Read as carbon reads it: lines are stripped; `#` lines and blank lines are skipped; every
/// other line is a rule, split at its first `=`; the left side must be two words (the output
/// template and the frequency, `(60)` or `60`), the right side two words (the method and the
/// input pattern). carbon stops reading at the first bad line, and so does this: the error
/// names the file and the line.
///
/// ```
/// use store::aggregator::AggregationRules;
/// use std::path::Path;
///
/// let rules = AggregationRules::parse(
///     "# requests per app\n<env>.applications.<app>.all.requests (60) = sum <env>.applications.<app>.*.requests\n",
///     Path::new("aggregation-rules.conf"),
/// )?;
/// let rule = &rules.rules()[0];
/// assert_eq!(rule.output_for("prod.applications.shop.web1.requests").as_deref(), Some("prod.applications.shop.all.requests"));
/// assert_eq!(rule.output_for("prod.applications.shop.requests"), None);
/// # Ok::<(), store::aggregator::RulesError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AggregationRules {
    path: PathBuf,
    rules: Vec<AggregationRule>,
}

impl AggregationRules {
    /// Reads the rules from the file's text; `path` names the file in errors.
    ///
    /// # Errors
    ///
    /// The first line carbon would refuse, with its number.
    pub fn parse(text: &str, path: &Path) -> Result<AggregationRules, RulesError> {
        let mut rules = Vec::new();
        for (number, line) in lines(text) {
            let line = py_strip(line);
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut rule = parse_line(line).map_err(|kind| RulesError {
                path: path.to_path_buf(),
                line: Some(number),
                kind,
            })?;
            rule.line = number;
            rules.push(rule);
        }
        Ok(AggregationRules { path: path.to_path_buf(), rules })
    }

    /// Reads the rules from the file's bytes (UTF-8, as Python opens it).
    ///
    /// # Errors
    ///
    /// [`RuleErrorKind::NotUtf8`], or as [`AggregationRules::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<AggregationRules, RulesError> {
        let text = decode(bytes, path).map_err(|_| {
            // The line of the first bad byte: the line ends before it, plus one.
            let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), str::len);
            let before = bytes.get(..valid).unwrap_or_default();
            let ends = before.iter().filter(|&&b| b == b'\n').count()
                + before.windows(2).filter(|w| w[0] == b'\r' && w[1] != b'\n').count()
                + usize::from(before.last() == Some(&b'\r'));
            RulesError {
                path: path.to_path_buf(),
                line: Some(ends + 1),
                kind: RuleErrorKind::NotUtf8,
            }
        })?;
        AggregationRules::parse(text, path)
    }

    /// Reads the file. A missing file has no rules, as in carbon.
    ///
    /// # Errors
    ///
    /// [`RuleErrorKind::Io`] if it exists but cannot be read, or as
    /// [`AggregationRules::from_bytes`].
    pub fn open(path: impl AsRef<Path>) -> Result<AggregationRules, RulesError> {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => AggregationRules::from_bytes(&bytes, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(AggregationRules { path: path.to_path_buf(), rules: Vec::new() })
            }
            Err(e) => Err(RulesError::io(path, e)),
        }
    }

    /// Rules built in code (their lines are 0).
    pub fn from_rules(rules: Vec<AggregationRule>) -> AggregationRules {
        AggregationRules { path: PathBuf::new(), rules }
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[AggregationRule] {
        &self.rules
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `other` has the same rules in the same order (output, frequency, method and
    /// input of each), wherever they are written.
    pub(crate) fn same_rules(&self, other: &AggregationRules) -> bool {
        self.rules.len() == other.rules.len()
            && self.rules.iter().zip(&other.rules).all(|(a, b)| {
                a.output == b.output
                    && a.frequency == b.frequency
                    && a.method == b.method
                    && a.input == b.input
            })
    }
}

/// carbon's `parse_definition`.
fn parse_line(line: &str) -> Result<AggregationRule, RuleErrorKind> {
    let syntax = || RuleErrorKind::Syntax { text: line.to_string() };
    let (left, right) = line.split_once('=').ok_or_else(syntax)?;
    let left: Vec<&str> = py_split(left);
    let right: Vec<&str> = py_split(right);
    let ([output, frequency], [method, input]) = (left.as_slice(), right.as_slice()) else {
        return Err(syntax());
    };
    AggregationRule::new(output, frequency, method, input)
}

/// Python's `s.split()`: words between runs of whitespace.
fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|w| !w.is_empty()).collect()
}

/// An `aggregation-rules.conf` that cannot be used, naming the file and line.
#[derive(Debug)]
pub struct RulesError {
    path: PathBuf,
    line: Option<usize>,
    kind: RuleErrorKind,
}

impl RulesError {
    /// A file that exists but cannot be read or looked at.
    pub(crate) fn io(path: &Path, error: io::Error) -> RulesError {
        RulesError { path: path.to_path_buf(), line: None, kind: RuleErrorKind::Io(error) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line (1-based), when the error is about one line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong.
    pub fn kind(&self) -> &RuleErrorKind {
        &self.kind
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_at(f, &self.path, self.line, &self.kind)
    }
}

impl std::error::Error for RulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            RuleErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// What is wrong with a rule (see [`RulesError`] for where).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// The file could not be read.
    #[error("{0}")]
    Io(io::Error),
    /// The file is not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// Not `output (frequency) = method input`.
    #[error("expected `output_template (frequency) = method input_pattern`, found {text:?}")]
    Syntax {
        /// The line, stripped.
        text: String,
    },
    /// A frequency that is not a positive integer (carbon takes 0 or a negative number and
    /// then fails on every point or at once).
    #[error("frequency {text:?}: expected a positive number of seconds")]
    Frequency {
        /// The frequency as written.
        text: String,
    },
    /// A method carbon does not know.
    #[error(
        "invalid aggregation method {name:?} (sum, avg, min, max, count, last, p50, p75, p80, p90, p95, p99, p999)"
    )]
    Method {
        /// The method as written.
        name: String,
    },
    /// The regular expression built from the input pattern is one Python refuses.
    #[error("invalid regular expression {pattern:?} built from the input pattern: {message}")]
    InvalidRegex {
        /// The regular expression.
        pattern: String,
        /// Python's objection.
        message: String,
    },
    /// The regular expression is one Python takes but this implementation cannot run.
    #[error("regular expression {pattern:?} uses {feature}, which is not supported here")]
    UnsupportedRegex {
        /// The regular expression.
        pattern: String,
        /// The construct.
        feature: String,
    },
    /// An output template carbon could not fill in (it fails on every matching metric).
    #[error("output template {template:?}: {message}")]
    Template {
        /// The template as written.
        template: String,
        /// What is wrong.
        message: String,
    },
}
