//! The target parser (graphite-reference §5).

use crate::error::{Error, Result};
use crate::expr::Expr;

/// Parses one target.
///
/// # Errors
///
/// Invalid syntax.
pub fn parse(target: &str) -> Result<Expr> {
    Err(Error::Parse { position: 0, expected: "a target".into(), found: target.into() })
}
