//! beacon-discord
