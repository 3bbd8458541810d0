//! The modules every Beacon guild has and cannot switch off:
//!
//! - [`ConfigModule`]: `/config show|set|reset|history|revert` over the typed settings service;
//! - [`AccessModule`]: `/access grant|revoke|list` for delegated authorized users;
//! - [`StatusModule`]: `/status`, an ephemeral health embed, with the LLM's providers (breaker,
//!   errors, calls today) and this server's model and usage against its budget.
//!
//! ```ignore
//! let app = AppBuilder::new(config, store, cache, http)
//!     .module(beacon_admin::ConfigModule)
//!     .module(beacon_admin::AccessModule)
//!     .module(beacon_admin::StatusModule)
//!     .build()
//!     .await?;
//! ```

mod access;
mod config;
mod status;

pub use access::AccessModule;
pub use config::ConfigModule;
pub use status::StatusModule;

use std::sync::Arc;

use beacon_framework::Module;

/// The core modules, in the order they should be registered.
pub fn modules() -> Vec<Arc<dyn Module>> {
    vec![Arc::new(ConfigModule), Arc::new(AccessModule), Arc::new(StatusModule)]
}

/// Brand colour of Beacon's embeds.
pub(crate) const COLOR: u32 = 0x3B82F6;
