//! The built-in web UI of graphite-rs: a metric tree browser, a graph composer, dashboards and
//! an alerts view, served from the server's HTTP port with every asset compiled into the
//! binary (so the server stays one file and the UI makes no external requests).
//!
//! Main types: [`router`] (the axum routes: `/`, `/ui/assets/…`, `/ui/api/dashboards…`),
//! [`DashboardStore`] (one JSON file per dashboard, atomic replace) and [`from_graphite_web`]
//! (import of graphite-web's dashboard state). The browser side is `assets/app.js`, drawing
//! charts with the vendored uPlot from `/render?format=json`.
//!
//! Every URL the page uses is relative, so the UI works behind a reverse proxy that serves it
//! under a prefix (`https://host/graphite/`) without configuration.
//!
//! ```no_run
//! # fn main() -> ui::Result<()> {
//! let store = ui::DashboardStore::open("/var/lib/graphite/dashboards")?;
//! let app: axum::Router = ui::router(std::sync::Arc::new(store));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod api;
mod assets;
mod error;
mod import;
mod store;

pub use api::router;
pub use error::{Error, Result};
pub use import::from_graphite_web;
pub use store::{
    Dashboard, DashboardStore, Graph, MAX_DASHBOARD_BYTES, MAX_GRAPHS, MAX_NAME_BYTES, TimeRange,
    Variable, parse, validate, validate_name,
};

/// The dashboards directory's name inside the server's data directory (hidden, so no metric
/// finder takes it for a metric).
pub const DASHBOARDS_DIR: &str = ".dashboards";
