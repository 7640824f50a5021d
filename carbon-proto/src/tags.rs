//! Graphite 1.1 tagged series: `name;tag1=v1;tag2=v2`, parsed, validated and normalised exactly
//! as carbon's `TaggedSeries` does, and the on-disk path carbon and graphite-web use for them.
//!
//! Normalisation is what carbon-cache applies to every name it receives: the name (with any
//! leading `~` removed) followed by the `;tag=value` strings **sorted as whole strings**, so
//! `;a-b=1` sorts before `;a=1` because `-` < `=`. A later duplicate tag wins. OpenMetrics-style
//! names (`name{tag="value",...}`) are accepted too and come out in carbon form.
//!
//! Tagged series live under `_tagged/` in the data directory, in a folder named after the
//! SHA-256 of the normalised name: `_tagged/e77/640/<sha256>.wsp` (carbon's default
//! `TAG_HASH_FILENAMES = True`) or `_tagged/e77/640/<name with . as _DOT_>.wsp`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Characters a tag name may not contain.
const PROHIBITED_TAG_CHARS: [char; 4] = [';', '!', '^', '='];

/// A tagged name carbon refuses, with carbon's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// Nothing before the first `;` (or `{`).
    #[error("Cannot parse path {path}, no metric found")]
    NoMetric {
        /// The name.
        path: String,
    },
    /// A `;segment` that is not `tag=value` with a non-empty tag, or an OpenMetrics segment
    /// that is not `tag="value"`.
    #[error("Cannot parse path {path}, invalid segment {segment}")]
    InvalidSegment {
        /// The name.
        path: String,
        /// The segment.
        segment: String,
    },
    /// An OpenMetrics name with more than one `{`.
    #[error("Cannot parse path {path}, too many '{{'")]
    TooManyBraces {
        /// The name.
        path: String,
    },
    /// An empty tag name.
    #[error("Tag may not be empty")]
    EmptyTag,
    /// An empty tag value.
    #[error("Value for tag \"{tag}\" may not be empty")]
    EmptyValue {
        /// The tag.
        tag: String,
    },
    /// A tag name with one of `; ! ^ =`.
    #[error("Character \"{character}\" is not allowed in tag \"{tag}\"")]
    TagCharacter {
        /// The character.
        character: char,
        /// The tag.
        tag: String,
    },
    /// A tag value with a `;`.
    #[error("Character \";\" is not allowed in value \"{value}\" of tag {tag}")]
    ValueSemicolon {
        /// The tag.
        tag: String,
        /// The value.
        value: String,
    },
    /// A tag value starting with `~`.
    #[error("Tag values are not allowed to start with \"~\" in tag \"{tag}\"")]
    ValueTilde {
        /// The tag.
        tag: String,
    },
    /// A metric part that is only `~`s (it is used as the `name` tag, which may not be empty).
    #[error("Cannot use metric name {metric} as tag value, results in emptry string")]
    EmptyName {
        /// The metric part.
        metric: String,
    },
    /// A tagged name whose readable on-disk file name would contain `/` (only with
    /// `TAG_HASH_FILENAMES = False`, where carbon would create directories from it).
    #[error("tagged series {name} cannot be stored under its own name: it contains '/'")]
    SlashInFileName {
        /// The name.
        name: String,
    },
}

/// A parsed tagged series: the metric part as given and its tags (`name` among them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedSeries {
    metric: String,
    tags: BTreeMap<String, String>,
}

impl TaggedSeries {
    /// Parses `path` as carbon's `TaggedSeries.parse` does: OpenMetrics form when it ends with
    /// `"}` and contains `{`, carbon form otherwise. A plain name is a series with only the
    /// `name` tag.
    ///
    /// # Errors
    ///
    /// The [`TagError`] carbon would raise, with its message.
    pub fn parse(path: &str) -> Result<TaggedSeries, TagError> {
        if path.ends_with("\"}") && path.contains('{') {
            parse_openmetrics(path)
        } else {
            parse_carbon(path)
        }
    }

    /// The metric part as it was given (before `~` removal).
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The tags, `name` included, by tag name.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// The normalised name (carbon's `TaggedSeries.path`).
    pub fn path(&self) -> String {
        format(&self.tags)
    }
}

/// Normalises a name as carbon-cache does before storing it (`TaggedSeries.parse(m).path`).
///
/// ```
/// use carbon_proto::tags::normalize;
/// assert_eq!(normalize("test.tagged;z=1;a=2").unwrap(), "test.tagged;a=2;z=1");
/// assert_eq!(normalize("cpu;a=1;a-b=2").unwrap(), "cpu;a-b=2;a=1");
/// assert_eq!(normalize("~plain.name").unwrap(), "plain.name");
/// assert_eq!(normalize(r#"http_requests{code="200",method="get"}"#).unwrap(),
///            "http_requests;code=200;method=get");
/// ```
///
/// # Errors
///
/// The [`TagError`] carbon would raise; carbon-cache then logs it and keeps the raw name.
pub fn normalize(path: &str) -> Result<String, TagError> {
    // Fast path: a plain name without a leading `~` is its own normal form.
    if !path.contains(';') && !path.starts_with('~') && !path.ends_with("\"}") {
        return if path.is_empty() {
            Err(TagError::NoMetric { path: String::new() })
        } else {
            Ok(path.to_string())
        };
    }
    TaggedSeries::parse(path).map(|s| s.path())
}

fn parse_carbon(path: &str) -> Result<TaggedSeries, TagError> {
    let mut segments = path.split(';');
    let metric = segments.next().unwrap_or_default();
    if metric.is_empty() {
        return Err(TagError::NoMetric { path: path.to_string() });
    }
    let mut tags = BTreeMap::new();
    for segment in segments {
        let Some((tag, value)) = segment.split_once('=').filter(|(t, _)| !t.is_empty()) else {
            return Err(TagError::InvalidSegment {
                path: path.to_string(),
                segment: segment.to_string(),
            });
        };
        validate_tag_and_value(tag, value)?;
        tags.insert(tag.to_string(), value.to_string());
    }
    tags.insert("name".to_string(), name_as_tag_value(metric)?);
    Ok(TaggedSeries { metric: metric.to_string(), tags })
}

fn parse_openmetrics(path: &str) -> Result<TaggedSeries, TagError> {
    // `path[0:-1].split('{', 2)` unpacked into two parts.
    let body = &path[..path.len() - 1];
    let mut parts = body.splitn(3, '{');
    let metric = parts.next().unwrap_or_default();
    let mut raw = parts.next().unwrap_or_default();
    if parts.next().is_some() {
        return Err(TagError::TooManyBraces { path: path.to_string() });
    }
    if metric.is_empty() {
        return Err(TagError::NoMetric { path: path.to_string() });
    }
    let mut tags = BTreeMap::new();
    while !raw.is_empty() {
        let Some((tag, value, used)) = match_openmetrics_segment(raw) else {
            return Err(TagError::InvalidSegment {
                path: path.to_string(),
                segment: raw.to_string(),
            });
        };
        let value = value.replace("\\\"", "\"").replace("\\\\", "\\");
        validate_tag_and_value(tag, &value)?;
        tags.insert(tag.to_string(), value);
        raw = &raw[used..];
    }
    tags.insert("name".to_string(), name_as_tag_value(metric)?);
    Ok(TaggedSeries { metric: metric.to_string(), tags })
}

/// carbon's `re.match(r'([^=]+)="((?:[\\]["\\]|[^"\\])+)"(:?,|$)', raw)`: returns the tag, the
/// raw (still escaped) value and how many bytes the match used.
///
/// The expression leaves no real choice to backtracking: the tag runs to the first `=`, the
/// value to the first unescaped `"`, and what follows the quote must be `,`, `:,` or the end
/// (the `(:?,|$)` is a typo for `(?:,|$)` in carbon, kept here).
fn match_openmetrics_segment(raw: &str) -> Option<(&str, &str, usize)> {
    let b = raw.as_bytes();
    let eq = memchr::memchr(b'=', b)?;
    if eq == 0 || b.get(eq + 1) != Some(&b'"') {
        return None;
    }
    let start = eq + 2;
    let mut i = start;
    loop {
        match b.get(i)? {
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' => i += 2,
                _ => return None,
            },
            b'"' => break,
            _ => i += 1,
        }
    }
    if i == start {
        return None;
    }
    let end_value = i;
    let mut used = i + 1;
    match b.get(used) {
        None => {}
        Some(b',') => used += 1,
        Some(b':') if b.get(used + 1) == Some(&b',') => used += 2,
        Some(_) => return None,
    }
    Some((&raw[..eq], &raw[start..end_value], used))
}

/// carbon's `validateTagAndValue`, in its order of checks.
fn validate_tag_and_value(tag: &str, value: &str) -> Result<(), TagError> {
    if tag.is_empty() {
        return Err(TagError::EmptyTag);
    }
    if value.is_empty() {
        return Err(TagError::EmptyValue { tag: tag.to_string() });
    }
    for character in PROHIBITED_TAG_CHARS {
        if tag.contains(character) {
            return Err(TagError::TagCharacter { character, tag: tag.to_string() });
        }
    }
    if value.contains(';') {
        return Err(TagError::ValueSemicolon { tag: tag.to_string(), value: value.to_string() });
    }
    if value.starts_with('~') {
        return Err(TagError::ValueTilde { tag: tag.to_string() });
    }
    Ok(())
}

/// carbon's `sanitize_name_as_tag_value`: the metric without leading `~`.
fn name_as_tag_value(metric: &str) -> Result<String, TagError> {
    let name = metric.trim_start_matches('~');
    if name.is_empty() {
        return Err(TagError::EmptyName { metric: metric.to_string() });
    }
    Ok(name.to_string())
}

/// carbon's `TaggedSeries.format`: the `name` tag, then the sorted `;tag=value` strings.
fn format(tags: &BTreeMap<String, String>) -> String {
    let mut rest: Vec<String> = tags
        .iter()
        .filter(|(tag, _)| tag.as_str() != "name")
        .map(|(tag, value)| format!(";{tag}={value}"))
        .collect();
    rest.sort_unstable();
    let mut out = tags.get("name").cloned().unwrap_or_default();
    for r in rest {
        out.push_str(&r);
    }
    out
}

/// The path of a metric's Whisper file, relative to the data directory, as carbon's
/// `TaggedSeries.encode(metric, '/', hash_only) + '.wsp'` gives it.
///
/// A plain name's dots become directories (leading ones dropped). A tagged name (one with `;`;
/// pass it normalised) goes under `_tagged/<h[0:3]>/<h[3:6]>/`, where `h` is the hex SHA-256 of
/// the name, in a file named `h` (`hash_filenames`, carbon's default) or the name with `.` as
/// `_DOT_`.
///
/// ```
/// use carbon_proto::tags::disk_path;
/// assert_eq!(disk_path("servers.web01.cpu", true).unwrap().to_str(), Some("servers/web01/cpu.wsp"));
/// let p = disk_path("test.tagged;a=2;z=1", true).unwrap();
/// assert!(p.to_str().unwrap().starts_with("_tagged/e77/640/e7764083"));
/// ```
///
/// # Errors
///
/// [`TagError::SlashInFileName`] when `hash_filenames` is false and the tagged name contains
/// `/`, which would create directories (and could leave the data directory).
pub fn disk_path(metric: &str, hash_filenames: bool) -> Result<PathBuf, TagError> {
    if metric.contains(';') {
        let hash = hex(&Sha256::digest(metric.as_bytes()));
        let file = if hash_filenames {
            hash.clone()
        } else {
            if metric.contains('/') {
                return Err(TagError::SlashInFileName { name: metric.to_string() });
            }
            metric.replace('.', "_DOT_")
        };
        return Ok(PathBuf::from(format!("_tagged/{}/{}/{file}.wsp", &hash[0..3], &hash[3..6])));
    }
    let mut path = metric.replace('.', "/");
    let trimmed = path.trim_start_matches('/').len();
    path.drain(..path.len() - trimmed);
    path.push_str(".wsp");
    Ok(PathBuf::from(path))
}

/// The metric name stored at `path` (relative to the data directory, without `.wsp`), as
/// carbon's `TaggedSeries.decode` gives it. For a tagged series stored under its hash this is
/// the hash: the name itself is only in the tag database.
pub fn name_from_disk_path(path: &str) -> String {
    if path.starts_with("_tagged") {
        let last = path.splitn(4, '/').last().unwrap_or_default();
        return last.replace("_DOT_", ".");
    }
    path.replace('/', ".")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_carbon() {
        assert_eq!(normalize("test.tagged;z=1;a=2").unwrap(), "test.tagged;a=2;z=1");
        assert_eq!(normalize("a;x=1;x=2").unwrap(), "a;x=2");
        assert_eq!(normalize("a;name=foo").unwrap(), "a");
        assert_eq!(normalize("~~a;b=c").unwrap(), "a;b=c");
        assert_eq!(normalize("a;b=c=d").unwrap(), "a;b=c=d");
        assert_eq!(normalize("plain").unwrap(), "plain");
    }

    #[test]
    fn refuses_with_carbon_messages() {
        let e = |p: &str| normalize(p).unwrap_err().to_string();
        assert_eq!(e(";a=b"), "Cannot parse path ;a=b, no metric found");
        assert_eq!(e("a;b"), "Cannot parse path a;b, invalid segment b");
        assert_eq!(e("a;=b"), "Cannot parse path a;=b, invalid segment =b");
        assert_eq!(e("a;"), "Cannot parse path a;, invalid segment ");
        assert_eq!(e("a;b="), "Value for tag \"b\" may not be empty");
        assert_eq!(e("a;b!c=d"), "Character \"!\" is not allowed in tag \"b!c\"");
        assert_eq!(e("a;b=~c"), "Tag values are not allowed to start with \"~\" in tag \"b\"");
        assert_eq!(e("~~;b=c"), "Cannot use metric name ~~ as tag value, results in emptry string");
    }

    #[test]
    fn openmetrics_segments() {
        assert_eq!(normalize(r#"m{a="1",b="x\"y"}"#).unwrap(), "m;a=1;b=x\"y");
        assert_eq!(normalize(r#"m{a="1":,b="2"}"#).unwrap(), "m;a=1;b=2");
        assert_eq!(normalize(r#"m{a="b\\"}"#).unwrap(), "m;a=b\\");
        assert!(normalize(r#"m{a="1"x,b="2"}"#).is_err());
        assert!(normalize(r#"m{a=""}"#).is_err());
        assert!(matches!(normalize(r#"m{{a="1"}"#), Err(TagError::TooManyBraces { .. })));
    }

    #[test]
    fn disk_paths() {
        assert_eq!(disk_path("a.b.c", true).unwrap(), PathBuf::from("a/b/c.wsp"));
        assert_eq!(disk_path("..a.b", true).unwrap(), PathBuf::from("a/b.wsp"));
        let p = disk_path("test.tagged;a=2;z=1", false).unwrap();
        assert!(p.to_str().unwrap().ends_with("/test_DOT_tagged;a=2;z=1.wsp"));
        assert!(disk_path("a;p=/x", false).is_err());
        assert!(disk_path("a;p=/x", true).is_ok());
        assert_eq!(name_from_disk_path("a/b/c"), "a.b.c");
        assert_eq!(name_from_disk_path("_tagged/e77/640/test_DOT_tagged;a=2"), "test.tagged;a=2");
    }
}
