//! beacon-web
