//! Graphite events (graphite-reference §3.7): annotations with a time, a title (`what`), free
//! text (`data`) and tags, created by `POST /events/` and read by `/events/get_data` (Grafana's
//! annotations) and the `events()` render function.
//!
//! graphite-web keeps them in its SQL database. Here they live in memory and in an
//! append-only file of JSON lines (one event per line, written and synced before the creating
//! request is answered), read back at start, so a restart keeps them. Ids are assigned in
//! creation order from 1, as the database's row ids are.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id (1, 2, ...).
    pub id: u64,
    /// When it happened (epoch seconds; fractions kept as graphite-web's datetime keeps them).
    pub when: f64,
    /// Its title.
    pub what: String,
    /// Free text.
    pub data: String,
    /// Its tags, in the order given.
    pub tags: Vec<String>,
}

/// How `/events/get_data` combines several tags (`set=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSet {
    /// The default: an event must have every tag.
    All,
    /// `set=union`: an event needs any of the tags.
    Union,
    /// `set=intersection`: every tag, as the default (graphite-web filters django-tagging's
    /// intersection down to exactly that).
    Intersection,
}

impl TagSet {
    /// graphite-web's reading of `set=`: `union`, `intersection`, anything else is "all".
    pub fn parse(set: Option<&str>) -> TagSet {
        match set {
            Some("union") => TagSet::Union,
            Some("intersection") => TagSet::Intersection,
            _ => TagSet::All,
        }
    }
}

/// An error of the event store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The events file could not be read or written.
    #[error("events file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

struct Inner {
    /// Every event, by id (ids are dense from 1, so the event with id `n` is at `n - 1`
    /// unless lines were lost; [`EventStore::get`] searches when they were).
    events: Vec<Event>,
    next_id: u64,
    file: Option<File>,
}

/// The events: in memory, persisted to an append-only JSON-lines file when opened on one.
///
/// One mutex guards the list; creating an event holds it for one line write and its sync,
/// queries for a scan of the list (events are few: thousands, not millions).
pub struct EventStore {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Default for EventStore {
    fn default() -> EventStore {
        EventStore::in_memory()
    }
}

impl EventStore {
    /// A store that keeps nothing on disk (tests).
    pub fn in_memory() -> EventStore {
        EventStore {
            path: None,
            inner: Mutex::new(Inner { events: Vec::new(), next_id: 1, file: None }),
        }
    }

    /// Opens (or creates) the events file at `path` and loads it. A line that does not parse
    /// (a torn last write after a crash) is skipped with a warning.
    ///
    /// # Errors
    ///
    /// [`EventError::Io`] when the file cannot be read or opened for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<EventStore, EventError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| EventError::Io { path: path.clone(), source };
        let mut events: Vec<Event> = Vec::new();
        let mut ends_with_newline = true;
        match File::open(&path) {
            Ok(f) => {
                let mut reader = BufReader::new(f);
                let mut line = String::new();
                let mut number = 0usize;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).map_err(io)? == 0 {
                        break;
                    }
                    number += 1;
                    ends_with_newline = line.ends_with('\n');
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Event>(text) {
                        Ok(e) => events.push(e),
                        Err(e) => tracing::warn!(
                            path = %path.display(),
                            line = number,
                            error = %e,
                            "skipping an unreadable event"
                        ),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        if !ends_with_newline {
            // A torn last line: end it so the next event starts on a line of its own.
            file.write_all(b"\n").map_err(io)?;
        }
        let next_id = events.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        events.sort_by_key(|e| e.id);
        Ok(EventStore {
            path: Some(path),
            inner: Mutex::new(Inner { events, next_id, file: Some(file) }),
        })
    }

    /// Where the events are kept, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Records a new event and returns it (with its id).
    ///
    /// # Errors
    ///
    /// [`EventError::Io`] when the line cannot be written and synced; the event is then not
    /// kept.
    pub fn add(
        &self,
        when: f64,
        what: String,
        data: String,
        tags: Vec<String>,
    ) -> Result<Event, EventError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let event = Event { id: inner.next_id, when, what, data, tags };
        if let Some(file) = inner.file.as_mut() {
            // Serialising a struct of strings and numbers cannot fail.
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            let path = self.path.clone().unwrap_or_default();
            file.write_all(&line)
                .and_then(|()| file.sync_data())
                .map_err(|source| EventError::Io { path, source })?;
        }
        inner.next_id += 1;
        inner.events.push(event.clone());
        Ok(event)
    }

    /// The event with id `id`.
    pub fn get(&self, id: u64) -> Option<Event> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let at = usize::try_from(id).ok().and_then(|i| i.checked_sub(1));
        match at.and_then(|i| inner.events.get(i)) {
            Some(e) if e.id == id => Some(e.clone()),
            _ => inner.events.iter().find(|e| e.id == id).cloned(),
        }
    }

    /// The events with `from <= when <= until` carrying `tags` (combined as `set` says; no
    /// tags: every event), ordered by time (then id).
    pub fn find(&self, from: f64, until: f64, tags: Option<&[String]>, set: TagSet) -> Vec<Event> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Event> = inner
            .events
            .iter()
            .filter(|e| e.when >= from && e.when <= until)
            .filter(|e| match tags {
                None => true,
                Some(wanted) => match set {
                    TagSet::Union => wanted.iter().any(|t| e.tags.contains(t)),
                    TagSet::All | TagSet::Intersection => wanted.iter().all(|t| e.tags.contains(t)),
                },
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.when.total_cmp(&b.when).then(a.id.cmp(&b.id)));
        out
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).events.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn events_survive_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        {
            let store = EventStore::open(&path).unwrap();
            store.add(100.0, "deploy".into(), "v1".into(), tags(&["web", "deploy"])).unwrap();
            store.add(50.0, "restart".into(), String::new(), tags(&["db"])).unwrap();
        }
        // A crash in the middle of a write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":3,\"wh").unwrap();
        drop(f);
        let store = EventStore::open(&path).unwrap();
        assert_eq!(store.len(), 2);
        let e = store.add(75.0, "x".into(), String::new(), Vec::new()).unwrap();
        assert_eq!(e.id, 3);
        let again = EventStore::open(&path).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again.get(1).unwrap().what, "deploy");
        assert_eq!(again.get(3).unwrap().when, 75.0);
        assert!(again.get(4).is_none());
    }

    #[test]
    fn find_filters_by_time_and_tags_in_time_order() {
        let store = EventStore::in_memory();
        store.add(100.0, "a".into(), String::new(), tags(&["web", "deploy"])).unwrap();
        store.add(50.0, "b".into(), String::new(), tags(&["db"])).unwrap();
        store.add(75.0, "c".into(), String::new(), tags(&["web"])).unwrap();
        let whats = |v: Vec<Event>| v.into_iter().map(|e| e.what).collect::<Vec<_>>();
        assert_eq!(whats(store.find(0.0, 1000.0, None, TagSet::All)), ["b", "c", "a"]);
        assert_eq!(whats(store.find(60.0, 100.0, None, TagSet::All)), ["c", "a"]);
        let wd = tags(&["web", "deploy"]);
        assert_eq!(whats(store.find(0.0, 1e9, Some(&wd), TagSet::All)), ["a"]);
        assert_eq!(whats(store.find(0.0, 1e9, Some(&wd), TagSet::Union)), ["c", "a"]);
        assert_eq!(whats(store.find(0.0, 1e9, Some(&wd), TagSet::Intersection)), ["a"]);
    }
}
