//! beacon-cache
