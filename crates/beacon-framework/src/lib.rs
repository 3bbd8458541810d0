//! beacon-framework
