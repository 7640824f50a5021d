//! Evaluating 10,000 rules over in-process data: one round, as the engine runs it each minute.
//! The budget is 10% of one core, i.e. under 6,000 ms of CPU per round of 10k rules.
//!
//! Data: 10,000 series `servers.hNNNNN.cpu` of two hours of one-minute points in a
//! `render::MemorySource` (the store's own index and glob matching), values spread so that
//! about a tenth of the rules fire (events and annotations are rendered for those). Each rule
//! targets one series with `avg` over 5 minutes and warn/crit thresholds.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use alert::engine::{Engine, EngineConfig};
use alert::source::Sources;
use criterion::{Criterion, criterion_group, criterion_main};

const RULES: usize = 10_000;
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 60;

fn setup(workers: usize, state: Option<std::path::PathBuf>) -> Engine {
    let mut m = render::MemorySource::new();
    let mut text = String::new();
    for i in 0..RULES {
        let values = (0..120).map(|k| Some(((i * 7 + k) % 100) as f64)).collect();
        m.insert(&format!("servers.h{i:05}.cpu"), T0, 60, values);
        let _ = write!(
            text,
            "[[rule]]\nname = \"cpu_{i}\"\ntarget = \"servers.h{i:05}.cpu\"\nreduce = \"avg\"\nop = \">\"\n\
             warn = 85\ncrit = 95\nlabels = {{ host = \"{{node:1}}\" }}\n\
             annotations = {{ summary = \"{{host}} at {{value}}\" }}\n\n"
        );
    }
    let rules = alert::rules::parse(&text, Path::new("bench.toml")).expect("bench rules parse");
    let config = EngineConfig { workers, ..EngineConfig::default() };
    Engine::with_config(rules, Sources::local(Arc::new(m)), state, config).expect("engine")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("alert/evaluate_round");
    group.sample_size(10);
    for (name, workers) in [("10k_rules/1_thread", 1), ("10k_rules/4_threads", 4)] {
        let mut engine = setup(workers, None);
        let mut now = T0 + 3600;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += 60;
                engine.evaluate_round(now)
            })
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = setup(1, Some(dir.path().join("alert.state")));
    let mut now = T0 + 3600;
    group.bench_function("10k_rules/1_thread_with_state_file", |b| {
        b.iter(|| {
            now += 60;
            engine.evaluate_round(now)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
