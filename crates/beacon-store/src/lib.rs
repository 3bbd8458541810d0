//! beacon-store
