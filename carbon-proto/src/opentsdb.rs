//! OpenTSDB telnet `put` lines.

/// A bad OpenTSDB line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenTsdbError {}
