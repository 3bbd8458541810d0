//! The modules every Beacon guild has and cannot switch off:
//!
//! - [`ConfigModule`]: `/config show|set|reset|history|revert` over the typed settings service;
//! - [`AccessModule`]: `/access grant|revoke|list` for delegated authorized users;
//! - [`StatusModule`]: `/status`, an ephemeral health embed with what every module reports;
//! - [`SetupModule`]: `/setup`, a new server's first run: the essential settings in one command
//!   and a check that the bot can read, post and create threads where it is told to work;
//! - [`LlmModule`]: the LLM's per-guild model setting, its usage tables, and its `/status` field
//!   (each provider's breaker, errors and calls today; this server's model and usage against its
//!   budget).
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<beacon_config::Config>, store: beacon_store::Store,
//! #   cache: beacon_cache::Cache, http: std::sync::Arc<twilight_http::Client>) -> Result<(), beacon_framework::app::BuildError> {
//! let app = beacon_framework::AppBuilder::new(config, store, cache, http)
//!     .modules(beacon_admin::modules())
//!     .build()
//!     .await?;
//! # drop(app);
//! # Ok(())
//! # }
//! ```

mod access;
mod config;
mod llm;
mod setup;
mod status;

pub use access::AccessModule;
pub use config::ConfigModule;
pub use llm::LlmModule;
pub use setup::SetupModule;
pub use status::StatusModule;

use std::sync::Arc;

use beacon_framework::Module;

/// The core modules, in the order they should be registered.
pub fn modules() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(ConfigModule),
        Arc::new(AccessModule),
        Arc::new(StatusModule),
        Arc::new(LlmModule),
        Arc::new(SetupModule),
    ]
}

/// Brand colour of Beacon's embeds.
pub(crate) const COLOR: u32 = 0x3B82F6;
