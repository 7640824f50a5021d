//! The render functions, one file per family (graphite-reference §4.4). Each file exports
//! `FUNCTIONS`, the definitions it owns; [`FAMILIES`] lists the files for the registry. The pie
//! functions (`pie.rs`) are not render functions and stay out of it.

use crate::function::FunctionDef;

pub(crate) mod alias;
pub(crate) mod calculate;
pub(crate) mod combine;
pub(crate) mod common;
pub(crate) mod filter;
pub(crate) mod graph;
pub(crate) mod pie;
pub(crate) mod sort;
pub(crate) mod special;
pub(crate) mod transform;

/// Every family's definitions.
pub(crate) const FAMILIES: &[&[FunctionDef]] = &[
    alias::FUNCTIONS,
    calculate::FUNCTIONS,
    combine::FUNCTIONS,
    filter::FUNCTIONS,
    graph::FUNCTIONS,
    sort::FUNCTIONS,
    special::FUNCTIONS,
    transform::FUNCTIONS,
];
