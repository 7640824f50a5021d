//! Helpers shared by the engine's integration tests: a scripted source whose answer the test
//! sets before each round, and shorthands for rules and series.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alert::engine::{Engine, EngineConfig};
use alert::model::{AlertEvent, Status};
use alert::rules::RulesFile;
use alert::source::{SeriesData, Source, SourceError, Sources};

/// A source that answers whatever the test put in it last.
#[derive(Default)]
pub struct Scripted {
    answer: Mutex<Option<Result<Vec<SeriesData>, SourceError>>>,
    pub queries: Mutex<Vec<(i64, i64, i64)>>,
}

impl Scripted {
    pub fn new() -> Arc<Scripted> {
        Arc::new(Scripted::default())
    }

    pub fn set(&self, series: Vec<SeriesData>) {
        *self.answer.lock().unwrap() = Some(Ok(series));
    }

    pub fn fail(&self) {
        *self.answer.lock().unwrap() = Some(Err(SourceError::Render("boom".into())));
    }
}

impl Source for Scripted {
    fn query(
        &self,
        _t: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<SeriesData>, SourceError> {
        self.queries.lock().unwrap().push((from, until, now));
        self.answer.lock().unwrap().clone().unwrap_or(Ok(Vec::new()))
    }
}

/// A series named `name` whose window is `values` (one per minute, ending at `end`).
pub fn series(name: &str, values: &[Option<f64>]) -> SeriesData {
    SeriesData {
        name: name.to_owned(),
        tags: BTreeMap::from([("name".to_owned(), name.to_owned())]),
        start: 0,
        step: 60,
        values: values.to_vec(),
    }
}

/// One series with one value (`None`: null).
pub fn one(name: &str, v: Option<f64>) -> Vec<SeriesData> {
    vec![series(name, &[v])]
}

pub fn rules(text: &str) -> RulesFile {
    alert::rules::parse(text, Path::new("test.toml")).unwrap()
}

pub fn engine(text: &str, src: &Arc<Scripted>, state: Option<PathBuf>) -> Engine {
    let config = EngineConfig { workers: 1, ..EngineConfig::default() };
    Engine::with_config(rules(text), Sources::fixed(src.clone()), state, config).unwrap()
}

/// The status of the instance whose `name` label is `series` (Normal when untracked).
pub fn status(e: &Engine, series: &str) -> Status {
    e.instances()
        .into_iter()
        .find(|i| i.labels.get("name").map(String::as_str) == Some(series))
        .map_or(Status::Normal, |i| i.status)
}

/// The status of the rule-level instance (no `name` label) of `rule`.
pub fn rule_status(e: &Engine, rule: &str) -> Status {
    e.instances()
        .into_iter()
        .find(|i| i.rule == rule && !i.labels.contains_key("name"))
        .map_or(Status::Normal, |i| i.status)
}

/// Statuses of a round's events, by `name` label (or `-` for rule-level).
pub fn summary(events: &[AlertEvent]) -> Vec<(String, Status, bool)> {
    events
        .iter()
        .map(|e| {
            (e.labels.get("name").cloned().unwrap_or_else(|| "-".into()), e.status, e.is_active())
        })
        .collect()
}

pub const RULE: &str = r#"
[[rule]]
name = "cpu"
target = "servers.*.cpu"
op = ">"
warn = 80
crit = 95
lag = 0
"#;
