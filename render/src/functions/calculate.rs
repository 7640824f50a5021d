//! calculate functions.

use crate::function::FunctionDef;

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[];
