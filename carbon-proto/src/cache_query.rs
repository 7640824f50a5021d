//! carbon's cache-query protocol (port 7002).

/// A bad cache-query request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheQueryError {}
