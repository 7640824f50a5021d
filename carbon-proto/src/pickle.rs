//! The pickle protocol (carbon's port 2004). Owned by the pickle work; see the module docs there.

/// A bad pickle frame or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {}
