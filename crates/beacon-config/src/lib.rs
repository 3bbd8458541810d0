//! beacon-config
