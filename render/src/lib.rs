//! graphite-web's render API: the target language ([`parse`]), the function library
//! ([`function`], `functions/`), series and their consolidation ([`series`]), evaluation
//! ([`eval`]) and the data sources it reads ([`source`]).
//!
//! The crate reproduces graphite-web 1.1.8's results number for number and name for name:
//! dashboards key on series names, and alerting compares values, so "close" is not enough.
//! Where graphite-web has a quirk, the module that reproduces it says so.

pub mod aggfunc;
pub mod cluster;
pub mod error;
pub mod eval;
pub mod events;
pub mod expr;
pub mod format;
pub mod function;
pub(crate) mod functions;
pub mod http;
pub mod image;
pub mod parse;
pub mod pyfmt;
pub mod series;
pub mod source;
#[cfg(test)]
pub(crate) mod testutil;
pub mod time;

pub use error::{Error, Result};
pub use eval::{Context, DataSource, Fetched, Limits, Query, UsageCell, Value};
pub use expr::{Arg, Call, Expr, Literal};
pub use functions::pie::{PieMode, pie_value};
pub use series::{Consolidation, Series};
pub use source::MemorySource;
