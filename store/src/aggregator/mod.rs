//! carbon-aggregator as a library: `aggregation-rules.conf` ([`AggregationRules`]) and the
//! buffering engine ([`Aggregator`]) with carbon 1.1.7's semantics.
//!
//! A rule `output_template (frequency) = method input_pattern` sends every received metric
//! that matches `input_pattern` into the buffer of the output metric its captured fields make
//! of `output_template`. Each buffer keeps one running aggregate per interval
//! (`timestamp - timestamp % frequency`) and, every `frequency` seconds after its first
//! point, emits each interval that received values since its last emission, timestamped with
//! the interval's start. The caller feeds points with [`Aggregator::push`] and calls
//! [`Aggregator::tick`] about once a second to collect what is due; both take the current
//! time, so the engine is deterministic under test.
//!
//! [`RulesFile`] re-reads the rules file when it changes, as carbon-aggregator does every 10
//! seconds, and [`Aggregator::update_rules`] puts the new rules in use.
//!
//! The server runs it as a role (`graphite-rs --aggregation-rules FILE`): aggregated points
//! go into the same store as received ones. The relay can call it the same way.
//!
//! See store/README.md ("Aggregator") for the exact semantics and where they differ from
//! carbon's.

mod engine;
mod reload;
mod rules;

pub use engine::{
    Aggregator, AggregatorConfig, AggregatorStats, DEFAULT_MAX_AGGREGATION_INTERVALS,
    DEFAULT_MAX_INTERVALS, DEFAULT_MAX_VALUES_PER_INTERVAL, Pushed,
};
pub use reload::{RULES_RELOAD_INTERVAL, RulesFile, RulesReload, RulesUpdate};
pub use rules::{
    AggregationRule, AggregationRules, Method, RuleErrorKind, RulesError, input_regex,
};

#[cfg(test)]
mod tests;
