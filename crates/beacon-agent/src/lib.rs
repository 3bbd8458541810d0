//! Beacon's agent bridge: members of a team server drive an external AI coding-agent service —
//! projects (each a workspace the service runs in a pod), sessions inside a project, and
//! messages to the agent — from Discord.
//!
//! - `/agent register|whoami|unregister|use|ask|ask-session`, `/projects
//!   list|create|delete|activate|deactivate|info`, `/sessions list|create|delete`; names resolve
//!   to ids, project and session options autocomplete from the member's own data, destructive
//!   commands ask first, and an inactive project offers an Activate button.
//! - Each member's API key comes through a private form, is checked against the service, and is
//!   stored sealed with the deployment's secret key, bound to the guild and the member (a key
//!   version inside allows rotation; keys sealed with an older key are re-sealed on use). A key
//!   never appears in Discord, logs or errors.
//! - A new session gets a thread (per guild, on by default) where its owner's plain messages
//!   continue it; the thread ↔ session map is in the database, so any worker serves a thread.
//!   Messages are sent once (never retried after a timeout: the agent may have acted), one at a
//!   time per member and session, with the elapsed time shown while the agent works; long
//!   answers are split without breaking code blocks, and very long ones also come as a file.
//! - Every call is logged (calls, errors, latency) for `/status`, `/agent whoami` and the
//!   `beacon_external_calls_total` metrics.
//!
//! The module is off until a guild admin enables it, and offered only where the operator set
//! `BEACON_AGENT_API_URL`.
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<beacon_config::Config>, store: beacon_store::Store,
//! #   cache: beacon_cache::Cache, http: std::sync::Arc<twilight_http::Client>) -> Result<(), Box<dyn std::error::Error>> {
//! let mut builder = beacon_framework::AppBuilder::new(config.clone(), store, cache, http);
//! if let Some(agent) = &config.agent {
//!     builder = builder.module(beacon_agent::AgentModule::new(agent)?);
//! }
//! let app = builder.build().await?;
//! # drop(app);
//! # Ok(())
//! # }
//! ```

mod client;
mod flow;
mod model;
mod module;
mod privacy;

pub use client::{AgentClient, AgentError, Project, Session, answer_of, read_list, read_response};

use std::time::Duration;

/// Setting keys of the module.
pub mod keys {
    /// Setting: give each new session a thread, continued by its owner's messages.
    pub const THREADS: &str = "agent.threads";
    /// Setting: roles allowed to use the bridge (empty: every member).
    pub const ROLES: &str = "agent.roles";
}

/// The agent bridge module.
pub struct AgentModule {
    client: AgentClient,
    progress_every: Duration,
}

impl AgentModule {
    /// The module for the service the operator configured.
    pub fn new(settings: &beacon_config::AgentSettings) -> Result<AgentModule, AgentError> {
        Ok(AgentModule {
            client: AgentClient::new(&settings.api_url, settings.timeout)?,
            progress_every: Duration::from_secs(10),
        })
    }

    /// How often the elapsed time is shown while the agent works (10 s by default: well
    /// inside Discord's edit limits; tests use less).
    pub fn with_progress_interval(mut self, every: Duration) -> AgentModule {
        self.progress_every = every.max(Duration::from_millis(100));
        self
    }
}
