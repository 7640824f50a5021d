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

pub mod ack;
pub mod api;
mod dispatcher;
mod error;
pub mod model;
pub mod notify;
mod route;
pub mod silence;

pub use dispatcher::{AckRequest, Dispatcher, Marks, ReceiverStatus, SentRecord};
pub use error::{Error, Result};
