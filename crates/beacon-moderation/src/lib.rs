//! Beacon's moderation: cases numbered per guild, timed actions that run exactly once, appeals.
//!
//! Every action — `/warn`, `/timeout`, `/untimeout`, `/kick`, `/ban`, `/unban`, `/note`, the user
//! context menus, an escalation, an accepted appeal, and bans, kicks and timeouts made in
//! Discord's own UI (read from its audit log) — becomes a case: a number allocated under the
//! guild's counter in the same transaction as the case (no gaps, no duplicates, whichever
//! worker acts), the moderator, target, reason and duration, and an append-only history. The
//! mod-log channel gets one message per case, edited in place when the case changes, and the
//! reason travels to Discord's audit log in `X-Audit-Log-Reason`.
//!
//! The member is told by DM before a kick or ban (a DM after one fails); the case records
//! whether it was sent or why not, and a failed DM never blocks the action. Temporary bans and
//! timeouts longer than Discord's 28 days are durable jobs (`beacon-jobs`) that run once across
//! workers and restarts; the case records when they ran.
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<beacon_config::Config>, store: beacon_store::Store,
//! #   cache: beacon_cache::Cache, http: std::sync::Arc<twilight_http::Client>) -> Result<(), Box<dyn std::error::Error>> {
//! let app = beacon_framework::AppBuilder::new(config, store, cache, http)
//!     .module(beacon_moderation::ModerationModule::new())
//!     .build()
//!     .await?;
//! let background = app.start_background(); // temporary bans are lifted here
//! # drop(background);
//! # Ok(())
//! # }
//! ```

mod api;
mod appeals;
mod audit;
pub mod duration;
mod export;
mod flow;
mod model;
mod module;
mod privacy;
mod text;
mod timers;

pub use export::{COLUMNS as CASE_COLUMNS, cases_csv};
pub use flow::{JOB_TIMEOUT, JOB_UNBAN, MAX_TIMEOUT_MS, Moderation, RENEW_AHEAD_MS};
pub use model::{Appeal, AppealState, Case, CaseEvent, CaseKind, DmStatus, Filter, NewCase, Repo, SCHEMA, Source};

/// Setting keys of the module.
pub mod keys {
    /// Setting: the mod-log channel (default: `core.log_channel`).
    pub const LOG_CHANNEL: &str = "moderation.log_channel";
    /// Setting: roles whose members may moderate, besides staff.
    pub const MODERATOR_ROLES: &str = "moderation.moderator_roles";
    /// Setting: tell members by DM what was done and why.
    pub const DM_MEMBERS: &str = "moderation.dm_members";
    /// Setting: where ban appeals go (empty: bans carry no Appeal button).
    pub const APPEALS_CHANNEL: &str = "moderation.appeals_channel";
    /// Setting: how long after a denied appeal the member may appeal again.
    pub const APPEAL_COOLDOWN: &str = "moderation.appeal_cooldown";
    /// Setting: warnings that trigger the escalation (0 = off).
    pub const ESCALATION_WARNINGS: &str = "moderation.escalation_warnings";
    /// Setting: the period in which those warnings count.
    pub const ESCALATION_WINDOW: &str = "moderation.escalation_window";
    /// Setting: what the escalation does: `timeout`, `kick` or `ban`.
    pub const ESCALATION_ACTION: &str = "moderation.escalation_action";
    /// Setting: how long an escalation's timeout or ban lasts (0 = a permanent ban).
    pub const ESCALATION_DURATION: &str = "moderation.escalation_duration";
}

/// The moderation module.
#[derive(Clone, Default)]
pub struct ModerationModule {
    /// The bot's user id, asked of Discord once.
    bot: std::sync::Arc<tokio::sync::OnceCell<u64>>,
}

impl ModerationModule {
    /// The module.
    pub fn new() -> ModerationModule {
        ModerationModule::default()
    }
}
