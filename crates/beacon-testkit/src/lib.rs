//! beacon-testkit
