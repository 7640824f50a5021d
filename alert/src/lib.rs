//! Alerting on Graphite data.
//!
//! A rule is a render target plus a reducer and thresholds; each series the target returns is
//! its own alert instance with a state machine (Normal, Pending, Firing, Recovering, NoData,
//! Error). The engine evaluates rules in-process through the `render` crate or against a
//! remote graphite-web; the notifier routes what fires to webhooks (Alertmanager's JSON),
//! email and commands, honouring grouping, repeats, silences, acknowledgements and
//! escalation. State survives restarts in one file.
//!
//! The boundary between the two halves is [`model`]: the engine hands the notifier
//! [`model::AlertEvent`]s, the notifier never looks inside rules.
//!
//! Engine side: [`rules`] (the rules file), [`source`] (local and remote queries), [`reduce`],
//! [`engine`] (rounds and the state machine), [`state`] (the state file), [`checks`] (HTTP,
//! TCP), [`backtest`] and [`ruletest`].
//!
//! Notifier side: [`notify`] (receivers, templates, the webhook body), [`silence`],
//! [`inhibit`], [`timeinterval`] (the route's mute and active times), [`ack`], the [`Dispatcher`] (grouping, repeats, escalation, delivery threads
//! with retries) and [`api`] (the status page and JSON API).
//!
//! Both: [`service`] runs them together (reloading the rules file on request), and
//! [`metrics`] is what they count about themselves.

pub mod ack;
pub mod api;
pub mod backtest;
pub mod checks;
mod dispatcher;
pub mod engine;
mod error;
pub mod inhibit;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod reduce;
mod route;
pub mod rules;
pub mod ruletest;
pub mod service;
pub mod silence;
pub mod source;
pub mod state;
pub mod template;
pub mod timeinterval;

pub use dispatcher::{AckRequest, Dispatcher, Marks, ReceiverStatus, SentRecord};
pub use error::{Error, Result, RulesError};
pub use service::AlertService;
