//! The modules every Beacon guild has and cannot switch off:
//!
//! - [`ConfigModule`]: `/config show|set|reset|history|revert` over the typed settings service;
//! - [`AccessModule`]: `/access grant|revoke|list` for delegated authorized users;
//! - [`StatusModule`]: `/status`, an ephemeral health embed with what every module reports;
//! - [`SetupModule`]: `/setup`, a new server's first run: the essential settings in one command
//!   and a check that the bot can read, post and create threads where it is told to work;
//! - [`LlmModule`]: the LLM's per-guild model setting (among the models the operator allows),
//!   its usage tables, `/usage show|limit` (today and the last 30 days by feature and model
//!   against the budget; a server lowers, never raises, its budget) and its `/status` field (each
//!   provider's breaker, errors and calls today; this server's model and usage against its budget).
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<beacon_config::Config>, store: beacon_store::Store,
//! #   cache: beacon_cache::Cache, http: std::sync::Arc<twilight_http::Client>) -> Result<(), beacon_framework::app::BuildError> {
//! let app = beacon_framework::AppBuilder::new(config.clone(), store, cache, http)
//!     .modules(beacon_admin::modules(&config))
//!     .build()
//!     .await?;
//! # drop(app);
//! # Ok(())
//! # }
//! ```

mod access;
mod config;
mod llm;
mod privacy;
mod setup;
mod status;

pub use access::AccessModule;
pub use config::ConfigModule;
pub use llm::LlmModule;
pub use setup::SetupModule;
pub use status::StatusModule;

use std::sync::Arc;

use beacon_framework::Module;

/// The core modules, in the order they should be registered, for the deployment's `config`.
pub fn modules(config: &beacon_config::Config) -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(ConfigModule),
        Arc::new(AccessModule),
        Arc::new(StatusModule),
        Arc::new(LlmModule::new(&config.llm)),
        Arc::new(SetupModule),
    ]
}

/// Brand colour of Beacon's embeds.
pub(crate) const COLOR: u32 = 0x3B82F6;
