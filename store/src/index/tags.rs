//! [`TagIndex`]: the tag database of tagged series, with graphite-web's `TagDB` semantics.
//!
//! graphite-web 1.1.8's default tag database is `LocalDatabaseTagDB` (SQL tables of tags,
//! values and series). Its `find_series` splits a query in two, and the split shows in the
//! answers, so it is reproduced here:
//!
//! - an expression that does **not** match the empty value becomes an SQL join: the series
//!   must have the tag, and the value is compared with `=`, `<>`, or SQLite's `REGEXP`, which
//!   Django implements as Python's `re.search`;
//! - an expression that matches the empty value (`tag=`, `tag!=x`, `tag=~.*`, `tag!=~x`) is a
//!   filter on the SQL result: a missing tag reads as `''`, and regexes run with `re.match`;
//! - regexes are anchored by wrapping them in `^(...)` unless they start with `^` (so a
//!   `^a|b` used as a join matches `b` anywhere, as `re.search` does);
//! - at least one expression must not match the empty value.
//!
//! Regexes run on the `regex` crate: Python syntax it lacks (look-around, back-references)
//! is an [`IndexError::InvalidRegex`], and `$` matches only at the very end (Python's also
//! matches before a final newline).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use regex::Regex;

use super::IndexError;
use super::registry::{RegistryLoad, TagRegistry};

/// A tag, as `/tags` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// A number for the tag, stable while the process runs (graphite-web's is a row id).
    pub id: u64,
    /// The tag name (`name` is the metric name's tag).
    pub tag: String,
}

/// A value of a tag, as `/tags/<tag>` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagValue {
    /// A number for the (tag, value) pair, stable while the process runs.
    pub id: u64,
    /// The value.
    pub value: String,
    /// How many series have the tag with this value.
    pub count: usize,
}

/// A tag and its values, as `/tags/<tag>` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagValues {
    /// A number for the tag (as [`TagInfo::id`]).
    pub id: u64,
    /// The tag name.
    pub tag: String,
    /// Its values, sorted.
    pub values: Vec<TagValue>,
}

/// The tag database: every tagged series (normalised `name;tag=value;...`), by tag and value.
///
/// Thread-safe: queries share a read lock, [`insert`](TagIndex::insert) and
/// [`remove`](TagIndex::remove) of a new or known series take the write lock for one update
/// (and one registry append when the index was [`open`](TagIndex::open)ed on a data
/// directory). Inserting a series that is already there takes only the read lock, but
/// normalises the name first (an allocation): on the ingest path, call it for the names
/// [`MetricIndex::insert`](super::MetricIndex::insert) reports as new. When removals have
/// left the registry more than twice the live size, the removal that notices rewrites it
/// under the write lock (a few hundred milliseconds for a million series).
pub struct TagIndex {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for TagIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagIndex").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl Default for TagIndex {
    fn default() -> TagIndex {
        TagIndex::new()
    }
}

/// What the lock protects.
struct Inner {
    /// Series id by normalised name.
    by_path: HashMap<Arc<str>, u32>,
    /// Normalised name by series id (`None` once removed; ids are never reused until
    /// [`Inner::renumber`] packs them).
    series: Vec<Option<Arc<str>>>,
    /// Live series.
    live: usize,
    /// Tag -> its values -> the series that have it, sorted by id.
    tags: BTreeMap<Box<str>, TagEntry>,
    /// The next tag id and value id.
    next_id: u64,
    /// Where new series are persisted, when opened on a data directory.
    registry: Option<TagRegistry>,
}

struct TagEntry {
    id: u64,
    values: BTreeMap<Box<str>, ValueEntry>,
}

struct ValueEntry {
    id: u64,
    /// Series ids, ascending (ids are handed out in increasing order).
    series: Vec<u32>,
}

/// The `(tag, value)` pairs of a normalised name: `name` first, then its `;tag=value`s.
fn tags_of(path: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut segments = path.split(';');
    let name = segments.next().unwrap_or_default();
    std::iter::once(("name", name)).chain(segments.filter_map(|s| s.split_once('=')))
}

/// The value of `tag` in a normalised name.
fn tag_value<'a>(path: &'a str, tag: &str) -> Option<&'a str> {
    tags_of(path).find(|&(t, _)| t == tag).map(|(_, v)| v)
}

/// Splits `tag<op>spec` as graphite-web's `parse_tagspec` regex `^([^;!=]+)(!?=~?)([^;]*)$`.
fn parse_tagspec(expr: &str) -> Result<(&str, Op, &str), IndexError> {
    let invalid = || IndexError::InvalidTagExpression { expr: expr.to_string() };
    let tag_len = expr.find([';', '!', '=']).unwrap_or(expr.len());
    if tag_len == 0 {
        return Err(invalid());
    }
    let (tag, rest) = expr.split_at(tag_len);
    let (negated, rest) = match rest.strip_prefix("!=") {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix('=').ok_or_else(invalid)?),
    };
    let (regex, spec) = match rest.strip_prefix('~') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if spec.contains(';') {
        return Err(invalid());
    }
    let op = match (negated, regex) {
        (false, false) => Op::Eq,
        (true, false) => Op::Ne,
        (false, true) => Op::Match,
        (true, true) => Op::NotMatch,
    };
    Ok((tag, op, spec))
}

/// A tag expression operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
}

/// Compiles a regex, as a typed error when the `regex` crate cannot run it.
fn regex(pattern: String) -> Result<Regex, IndexError> {
    Regex::new(&pattern)
        .map_err(|source| IndexError::InvalidRegex { pattern, source: Box::new(source) })
}

/// graphite-web's anchoring of user regexes: `^(...)` unless it starts with `^`.
fn anchored(spec: &str) -> String {
    if spec.starts_with('^') { spec.to_string() } else { format!("^({spec})") }
}

/// A compiled tag expression.
struct Expr {
    tag: String,
    op: Op,
    spec: String,
    /// The anchored regex, for `=~` and `!=~`.
    regex: Option<Regex>,
    matches_empty: bool,
}

impl Expr {
    fn compile(expr: &str) -> Result<Expr, IndexError> {
        let (tag, op, spec) = parse_tagspec(expr)?;
        let regex = match op {
            Op::Match | Op::NotMatch => Some(regex(anchored(spec))?),
            Op::Eq | Op::Ne => None,
        };
        let matches_empty = match op {
            Op::Eq => spec.is_empty(),
            Op::Ne => !spec.is_empty(),
            Op::Match => regex.as_ref().is_some_and(|r| r.is_match("")),
            Op::NotMatch => !regex.as_ref().is_some_and(|r| r.is_match("")),
        };
        Ok(Expr { tag: tag.to_string(), op, spec: spec.to_string(), regex, matches_empty })
    }

    /// Whether a series whose value for the tag is `value` (`None`: it lacks the tag)
    /// passes, as `LocalDatabaseTagDB` decides it.
    fn test(&self, value: Option<&str>) -> bool {
        // The SQL side (`REGEXP`) is `re.search`; the filter side is `re.match`, a match
        // that starts at 0, which exists exactly when the leftmost match starts there.
        let (value, search) = if self.matches_empty {
            (value.unwrap_or(""), false)
        } else {
            match value {
                Some(v) => (v, true),
                None => return false,
            }
        };
        let hit = |r: &Regex| {
            if search { r.is_match(value) } else { r.find(value).is_some_and(|m| m.start() == 0) }
        };
        match self.op {
            Op::Eq => value == self.spec,
            Op::Ne => value != self.spec,
            Op::Match => self.regex.as_ref().is_some_and(hit),
            Op::NotMatch => !self.regex.as_ref().is_some_and(hit),
        }
    }
}

/// A `/tags` filter: anchored as graphite-web anchors it, run as SQL `REGEXP` (`re.search`).
fn filter_regex(filter: Option<&str>) -> Result<Option<Regex>, IndexError> {
    match filter {
        Some(f) if !f.is_empty() => regex(anchored(f)).map(Some),
        _ => Ok(None),
    }
}

/// graphite-web's SQL `LIMIT`: applied only when non-zero.
fn limit_of(limit: Option<usize>) -> usize {
    match limit {
        Some(n) if n > 0 => n,
        _ => usize::MAX,
    }
}

/// The intersection of two ascending id lists. A much shorter list is looked up in the
/// longer one by binary search.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len().saturating_mul(16) < long.len() {
        return short.iter().copied().filter(|x| long.binary_search(x).is_ok()).collect();
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn normalize(name: &str) -> Result<String, IndexError> {
    carbon_proto::tags::normalize(name)
        .map_err(|source| IndexError::InvalidSeries { name: name.to_string(), source })
}

impl Inner {
    fn new(registry: Option<TagRegistry>) -> Inner {
        Inner {
            by_path: HashMap::new(),
            series: Vec::new(),
            live: 0,
            tags: BTreeMap::new(),
            next_id: 1,
            registry,
        }
    }

    fn path(&self, id: u32) -> Option<&Arc<str>> {
        self.series.get(id as usize).and_then(Option::as_ref)
    }

    /// Adds a normalised name known to be absent.
    fn add(&mut self, path: &str) {
        if self.series.len() >= u32::MAX as usize {
            self.renumber();
        }
        let Ok(id) = u32::try_from(self.series.len()) else { return };
        let path: Arc<str> = Arc::from(path);
        for (tag, value) in tags_of(&path) {
            let next_id = &mut self.next_id;
            let entry = self.tags.entry(tag.into()).or_insert_with(|| {
                *next_id += 1;
                TagEntry { id: *next_id - 1, values: BTreeMap::new() }
            });
            let value = entry.values.entry(value.into()).or_insert_with(|| {
                *next_id += 1;
                ValueEntry { id: *next_id - 1, series: Vec::new() }
            });
            value.series.push(id);
        }
        self.series.push(Some(path.clone()));
        self.by_path.insert(path, id);
        self.live += 1;
    }

    /// Removes a normalised name; true if it was there.
    fn drop_series(&mut self, path: &str) -> bool {
        let Some(id) = self.by_path.remove(path) else { return false };
        for (tag, value) in tags_of(path) {
            let Some(entry) = self.tags.get_mut(tag) else { continue };
            if let Some(v) = entry.values.get_mut(value) {
                if let Ok(at) = v.series.binary_search(&id) {
                    v.series.remove(at);
                }
                if v.series.is_empty() {
                    entry.values.remove(value);
                }
            }
            if entry.values.is_empty() {
                self.tags.remove(tag);
            }
        }
        if let Some(slot) = self.series.get_mut(id as usize) {
            *slot = None;
        }
        self.live -= 1;
        // Pack the ids once most of them are holes.
        if self.series.len() > 1024 && self.series.len() > 2 * self.live {
            self.renumber();
        }
        true
    }

    /// Gives the live series ids 0..live again (keeping tag and value ids).
    fn renumber(&mut self) {
        let mut new_id = vec![u32::MAX; self.series.len()];
        let mut series = Vec::with_capacity(self.live);
        for (old, path) in self.series.drain(..).enumerate() {
            if let (Some(path), Some(slot)) = (path, new_id.get_mut(old)) {
                *slot = series.len() as u32;
                series.push(Some(path));
            }
        }
        self.series = series;
        for (path, id) in &mut self.by_path {
            let _ = path;
            *id = new_id.get(*id as usize).copied().unwrap_or(u32::MAX);
        }
        for entry in self.tags.values_mut() {
            for value in entry.values.values_mut() {
                for id in &mut value.series {
                    *id = new_id.get(*id as usize).copied().unwrap_or(u32::MAX);
                }
            }
        }
    }

    /// The series matching all expressions (at least one of which does not match empty),
    /// sorted by name.
    ///
    /// Plan: the `tag=value` lists are intersected first (smallest first). Each other
    /// expression that needs its tag then either selects from the tag's values (a regex run
    /// once per distinct value) and is intersected too, or, when there are already fewer
    /// candidates than the tag has values, is checked on each candidate, like the expressions
    /// that match the empty value.
    fn find(&self, exprs: &[Expr]) -> Vec<String> {
        let values_of = |e: &Expr| self.tags.get(e.tag.as_str()).map(|t| &t.values);
        let mut lists: Vec<&[u32]> = Vec::new();
        for e in exprs.iter().filter(|e| e.op == Op::Eq && !e.matches_empty) {
            match values_of(e).and_then(|v| v.get(e.spec.as_str())) {
                Some(v) => lists.push(&v.series),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let mut candidates: Option<Vec<u32>> = None;
        for list in lists {
            candidates = Some(match candidates {
                None => list.to_vec(),
                Some(c) => intersect(&c, list),
            });
        }
        let mut others: Vec<&Expr> =
            exprs.iter().filter(|e| e.op != Op::Eq && !e.matches_empty).collect();
        others.sort_by_key(|e| values_of(e).map_or(0, BTreeMap::len));
        let mut per_series: Vec<&Expr> = exprs.iter().filter(|e| e.matches_empty).collect();
        for e in others {
            let Some(values) = values_of(e) else { return Vec::new() };
            if candidates.as_ref().is_some_and(|c| c.len() < values.len()) {
                per_series.push(e);
                continue;
            }
            let mut ids: Vec<u32> = values
                .iter()
                .filter(|(v, _)| e.test(Some(v)))
                .flat_map(|(_, v)| v.series.iter().copied())
                .collect();
            ids.sort_unstable();
            candidates = Some(match candidates {
                None => ids,
                Some(c) => intersect(&c, &ids),
            });
        }
        let mut out: Vec<String> = candidates
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| self.path(id))
            .filter(|path| per_series.iter().all(|e| e.test(tag_value(path, &e.tag))))
            .map(|p| p.to_string())
            .collect();
        out.sort_unstable();
        out
    }

    /// Persists an insertion or removal, compacting the registry when it has grown past
    /// twice its live size.
    fn log(&mut self, path: &str, added: bool) -> Result<(), IndexError> {
        let Some(registry) = self.registry.as_mut() else { return Ok(()) };
        if !path.contains(';') {
            return Ok(());
        }
        if added { registry.append(path) } else { registry.append_removal(path) }
    }

    fn maybe_compact(&mut self) -> Result<(), IndexError> {
        let Some(registry) = self.registry.as_mut() else { return Ok(()) };
        if registry.should_compact() {
            let live = self.series.iter().flatten().filter(|p| p.contains(';'));
            registry.compact(live.map(|p| &**p))?;
        }
        Ok(())
    }
}

impl TagIndex {
    /// An empty, in-memory tag index.
    pub fn new() -> TagIndex {
        TagIndex { inner: RwLock::new(Inner::new(None)) }
    }

    /// A tag index loaded from, and persisted to, the [`TagRegistry`] of `data_dir`.
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if the registry cannot be read or written,
    /// [`IndexError::RegistryVersion`] if another version wrote it.
    pub fn open(data_dir: &Path) -> Result<(TagIndex, RegistryLoad), IndexError> {
        let (registry, names, mut load) = TagRegistry::open(data_dir)?;
        let mut inner = Inner::new(None);
        for name in names {
            // The registry holds names it was given normalised; normalise again in case it
            // was edited by hand, and skip what no longer parses.
            match normalize(&name) {
                Ok(n) if !inner.by_path.contains_key(n.as_str()) => inner.add(&n),
                Ok(_) => {}
                Err(_) => load.invalid_names += 1,
            }
        }
        inner.registry = Some(registry);
        Ok((TagIndex { inner: RwLock::new(inner) }, load))
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a series (normalised first, as graphite-web's `tag_series` does); true if new.
    /// A plain name is a series whose only tag is `name`.
    ///
    /// # Errors
    ///
    /// [`IndexError::InvalidSeries`] with carbon's message for a name that does not parse;
    /// with a registry, [`IndexError::Io`] or [`IndexError::UnregistrableName`] if the name
    /// cannot be persisted (it is then not added, so a later insert tries again).
    pub fn insert(&self, name: &str) -> Result<bool, IndexError> {
        let path = normalize(name)?;
        if self.read().by_path.contains_key(path.as_str()) {
            return Ok(false);
        }
        let mut inner = self.write();
        if inner.by_path.contains_key(path.as_str()) {
            return Ok(false);
        }
        inner.log(&path, true)?;
        inner.add(&path);
        inner.maybe_compact()?;
        Ok(true)
    }

    /// Removes a series (normalised first); true if it was there.
    ///
    /// # Errors
    ///
    /// As [`TagIndex::insert`].
    pub fn remove(&self, name: &str) -> Result<bool, IndexError> {
        let path = normalize(name)?;
        let mut inner = self.write();
        if !inner.by_path.contains_key(path.as_str()) {
            return Ok(false);
        }
        inner.log(&path, false)?;
        inner.drop_series(&path);
        inner.maybe_compact()?;
        Ok(true)
    }

    /// Whether the series (given normalised) is indexed.
    pub fn contains(&self, normalized: &str) -> bool {
        self.read().by_path.contains_key(normalized)
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.read().live
    }

    /// Whether there is no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every series name, sorted.
    pub fn to_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.read().by_path.keys().map(|k| k.to_string()).collect();
        out.sort_unstable();
        out
    }

    /// Forces the registry's appended lines to disk (`fdatasync`); a no-op without one.
    ///
    /// Appends reach the operating system at once (they survive a crash of the process);
    /// call this for them to survive a crash of the machine. Series lost that way come back
    /// when their points are received again.
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if the sync fails.
    pub fn sync(&self) -> Result<(), IndexError> {
        match &self.read().registry {
            Some(r) => r.sync(),
            None => Ok(()),
        }
    }

    /// The series matching every tag expression, sorted by name (`/tags/findSeries`,
    /// `seriesByTag`). Expressions are `tag=value`, `tag!=value`, `tag=~regex`,
    /// `tag!=~regex`; see the module docs for how each is evaluated.
    ///
    /// # Errors
    ///
    /// [`IndexError::InvalidTagExpression`] for an expression that does not parse,
    /// [`IndexError::InvalidRegex`] for a regex that does not compile, and
    /// [`IndexError::AllExpressionsMatchEmpty`] when every expression matches the empty
    /// value (an empty list included), all with graphite-web's messages.
    pub fn find_series(&self, exprs: &[&str]) -> Result<Vec<String>, IndexError> {
        let exprs = exprs.iter().map(|e| Expr::compile(e)).collect::<Result<Vec<_>, _>>()?;
        if exprs.iter().all(|e| e.matches_empty) {
            return Err(IndexError::AllExpressionsMatchEmpty);
        }
        Ok(self.read().find(&exprs))
    }

    /// The tags, sorted (`/tags`): those matching `filter` (a regex anchored at the start,
    /// as graphite-web anchors it), at most `limit` (`None` or 0: all, as graphite-web).
    ///
    /// # Errors
    ///
    /// [`IndexError::InvalidRegex`] for a filter that does not compile.
    pub fn tags(
        &self,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<TagInfo>, IndexError> {
        let filter = filter_regex(filter)?;
        Ok(self
            .read()
            .tags
            .iter()
            .filter(|(tag, _)| filter.as_ref().is_none_or(|f| f.is_match(tag)))
            .take(limit_of(limit))
            .map(|(tag, e)| TagInfo { id: e.id, tag: tag.to_string() })
            .collect())
    }

    /// A tag and its values with their series counts, sorted by value (`/tags/<tag>`);
    /// `None` for a tag no series has. `filter` and `limit` apply to the values, as in
    /// [`TagIndex::tags`].
    ///
    /// # Errors
    ///
    /// [`IndexError::InvalidRegex`] for a filter that does not compile.
    pub fn tag_values(
        &self,
        tag: &str,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Option<TagValues>, IndexError> {
        let filter = filter_regex(filter)?;
        let inner = self.read();
        let Some(entry) = inner.tags.get(tag) else { return Ok(None) };
        let values = entry
            .values
            .iter()
            .filter(|(v, _)| filter.as_ref().is_none_or(|f| f.is_match(v)))
            .take(limit_of(limit))
            .map(|(v, e)| TagValue { id: e.id, value: v.to_string(), count: e.series.len() })
            .collect();
        Ok(Some(TagValues { id: entry.id, tag: tag.to_string(), values }))
    }

    /// Tag names for auto-completion (`/tags/autoComplete/tags`), sorted, at most `limit`
    /// (graphite-web's default is `TAGDB_AUTOCOMPLETE_LIMIT` = 100).
    ///
    /// Without expressions: every tag starting with `prefix`. With expressions: the tags of
    /// the series they match, except the tags the expressions name. As in graphite-web, a
    /// `limit` of 0 means all tags without expressions and none with them.
    ///
    /// # Errors
    ///
    /// As [`TagIndex::find_series`].
    pub fn auto_complete_tags(
        &self,
        exprs: &[&str],
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let prefix = prefix.unwrap_or("");
        if exprs.is_empty() {
            let inner = self.read();
            return Ok(inner
                .tags
                .keys()
                .filter(|t| t.starts_with(prefix))
                .take(limit_of(Some(limit)))
                .map(|t| t.to_string())
                .collect());
        }
        let searched: BTreeSet<&str> =
            exprs.iter().map(|e| parse_tagspec(e).map(|(t, _, _)| t)).collect::<Result<_, _>>()?;
        let mut found = BTreeSet::new();
        for path in self.find_series(exprs)? {
            for (tag, _) in tags_of(&path) {
                if !searched.contains(tag) && tag.starts_with(prefix) {
                    found.insert(tag.to_string());
                }
            }
        }
        Ok(found.into_iter().take(limit).collect())
    }

    /// Values of `tag` for auto-completion (`/tags/autoComplete/values`), sorted, at most
    /// `limit` (0 as in [`TagIndex::auto_complete_tags`]).
    ///
    /// Without expressions: every value of the tag starting with `prefix`. With
    /// expressions: the tag's values among the series they match (graphite-web adds the
    /// expression `<tag>!=` to them).
    ///
    /// # Errors
    ///
    /// As [`TagIndex::find_series`] (the added expression included: a tag with `;`, `!` or
    /// `=` makes it invalid).
    pub fn auto_complete_values(
        &self,
        tag: &str,
        exprs: &[&str],
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let prefix = prefix.unwrap_or("");
        if exprs.is_empty() {
            let inner = self.read();
            let Some(entry) = inner.tags.get(tag) else { return Ok(Vec::new()) };
            return Ok(entry
                .values
                .keys()
                .filter(|v| v.starts_with(prefix))
                .take(limit_of(Some(limit)))
                .map(|v| v.to_string())
                .collect());
        }
        let has_tag = format!("{tag}!=");
        let mut all: Vec<&str> = exprs.to_vec();
        all.push(&has_tag);
        let mut found = BTreeSet::new();
        for path in self.find_series(&all)? {
            if let Some(value) = tag_value(&path, tag)
                && value.starts_with(prefix)
            {
                found.insert(value.to_string());
            }
        }
        Ok(found.into_iter().take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> TagIndex {
        let idx = TagIndex::new();
        for n in names {
            idx.insert(n).unwrap();
        }
        idx
    }

    #[test]
    fn parses_tagspecs_like_graphite_web() {
        assert_eq!(parse_tagspec("a=b").unwrap(), ("a", Op::Eq, "b"));
        assert_eq!(parse_tagspec("a!=b").unwrap(), ("a", Op::Ne, "b"));
        assert_eq!(parse_tagspec("a=~b").unwrap(), ("a", Op::Match, "b"));
        assert_eq!(parse_tagspec("a!=~").unwrap(), ("a", Op::NotMatch, ""));
        assert_eq!(parse_tagspec("a=~~b").unwrap(), ("a", Op::Match, "~b"));
        assert_eq!(parse_tagspec("a==b").unwrap(), ("a", Op::Eq, "=b"));
        for bad in ["", "=b", "a", "a;b=c", "a=b;c", "a!b", "!=b", "a!~b"] {
            let e = parse_tagspec(bad).unwrap_err();
            assert_eq!(e.to_string(), format!("Invalid tagspec {bad}"));
        }
    }

    #[test]
    fn finds_series_like_local_database_tagdb() {
        let idx = index(&["a.b;x=1;y=2", "a.c;x=2", "plain.name", "q;y=3"]);
        assert_eq!(idx.find_series(&["x=~1|2"]).unwrap(), ["a.b;x=1;y=2", "a.c;x=2"]);
        assert_eq!(idx.find_series(&["name=~a", "y="]).unwrap(), ["a.c;x=2"]);
        assert_eq!(idx.find_series(&["name=plain.name"]).unwrap(), ["plain.name"]);
        assert_eq!(idx.find_series(&["y!=", "x!=1"]).unwrap(), ["q;y=3"]);
        assert_eq!(idx.find_series(&["x=1", "x=2"]).unwrap(), Vec::<String>::new());
        assert_eq!(
            idx.find_series(&["x="]).unwrap_err().to_string(),
            "At least one tagspec must not match the empty string"
        );
        assert!(matches!(idx.find_series(&[]), Err(IndexError::AllExpressionsMatchEmpty)));
        assert!(matches!(idx.find_series(&["x=~("]), Err(IndexError::InvalidRegex { .. })));
        assert!(matches!(idx.find_series(&["x=~(?=a)"]), Err(IndexError::InvalidRegex { .. })));
        // A regex starting with `^` is not wrapped: as an SQL REGEXP it is `re.search`.
        assert_eq!(idx.find_series(&["name=~^z|c"]).unwrap(), ["a.c;x=2"]);
    }

    #[test]
    fn lists_tags_and_values() {
        let idx = index(&["a.b;x=1;y=2", "a.c;x=2", "d;x=2"]);
        let tags: Vec<String> = idx.tags(None, None).unwrap().into_iter().map(|t| t.tag).collect();
        assert_eq!(tags, ["name", "x", "y"]);
        let tags: Vec<String> =
            idx.tags(Some("x|y"), Some(1)).unwrap().into_iter().map(|t| t.tag).collect();
        assert_eq!(tags, ["x"]);
        let x = idx.tag_values("x", None, None).unwrap().unwrap();
        let values: Vec<(String, usize)> =
            x.values.into_iter().map(|v| (v.value, v.count)).collect();
        assert_eq!(values, [("1".to_string(), 1), ("2".to_string(), 2)]);
        assert_eq!(idx.tag_values("nope", None, None).unwrap(), None);
        assert_eq!(idx.auto_complete_tags(&[], Some("n"), 100).unwrap(), ["name"]);
        assert_eq!(idx.auto_complete_tags(&["name=~a"], None, 100).unwrap(), ["x", "y"]);
        assert_eq!(idx.auto_complete_tags(&["name=~a"], None, 0).unwrap(), Vec::<String>::new());
        assert_eq!(idx.auto_complete_values("x", &["name=~a"], None, 100).unwrap(), ["1", "2"]);
        assert_eq!(idx.auto_complete_values("x", &[], Some("2"), 100).unwrap(), ["2"]);
        assert!(idx.remove("d;x=2").unwrap());
        assert!(idx.remove("a.b;y=2;x=1").unwrap());
        let tags: Vec<String> = idx.tags(None, None).unwrap().into_iter().map(|t| t.tag).collect();
        assert_eq!(tags, ["name", "x"]);
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn renumbers_after_many_removals() {
        let idx = TagIndex::new();
        for i in 0..3000 {
            idx.insert(&format!("m;i={i};k={}", i % 7)).unwrap();
        }
        for i in 0..2500 {
            assert!(idx.remove(&format!("m;i={i};k={}", i % 7)).unwrap());
        }
        assert!(idx.read().series.len() < 3000);
        let found = idx.find_series(&["k=3"]).unwrap();
        let expected: Vec<String> = {
            let mut v: Vec<String> =
                (2500..3000).filter(|i| i % 7 == 3).map(|i| format!("m;i={i};k=3")).collect();
            v.sort();
            v
        };
        assert_eq!(found, expected);
        assert_eq!(idx.tag_values("k", None, None).unwrap().unwrap().values.len(), 7);
    }
}
