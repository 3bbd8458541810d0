//! beacon-admin
