//! Beacon's ticket desk: private support tickets (a private thread, or a channel in a category)
//! with a status workflow, limits, SLA clocks that pause while waiting for the member, reminders
//! and escalation on breach, inactivity auto-close, HTML transcripts in object storage, feedback
//! after close, staff stats and CSV exports.
//!
//! Timers (SLA, auto-close, transcript retention) are durable jobs the module declares, so they
//! survive restarts and run once across workers. The desk provides the `HumanHandoff` port
//! (support's "Talk to a human" opens a ticket) and uses the `ReplyDrafter` port ("Suggest
//! reply"), without knowing which feature is on the other side. With `tickets.learn_from_resolved`
//! on, tickets closed as resolved become knowledge-base documents (it provides
//! `dyn beacon_kb::GuildSource`, see `knowledge.rs`).
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<beacon_config::Config>, store: beacon_store::Store,
//! #   cache: beacon_cache::Cache, http: std::sync::Arc<twilight_http::Client>) -> Result<(), Box<dyn std::error::Error>> {
//! use beacon_tickets::{TicketsModule, TranscriptStore};
//!
//! let storage = TranscriptStore::local(&config.data_dir.join("transcripts"))?;
//! let app = beacon_framework::AppBuilder::new(config, store, cache, http)
//!     .module(TicketsModule::new(storage))
//!     .build()
//!     .await?;
//! let background = app.start_background(); // the ticket timers run here
//! # drop(background);
//! # Ok(())
//! # }
//! ```

mod api;
mod export;
mod flow;
mod knowledge;
mod model;
mod module;
mod panels;
mod privacy;
mod text;
mod timers;
mod transcript;

pub use export::{PANEL_COLUMNS, TICKET_COLUMNS, panels_csv, tickets_csv};
pub use flow::{JOB_AUTOCLOSE, JOB_SLA};
pub use knowledge::{Learned, TICKET_SOURCE_ID, TicketSource};
pub use model::{Answer, Knowledge, Panel, Stats, Status, Ticket};
pub use transcript::{Line, S3Options, StorageError, TranscriptStore, render as render_transcript};

use std::sync::Arc;

use beacon_framework::{App, HandlerError, HumanHandoff};

/// Setting keys of the module.
pub mod keys {
    /// Setting: `thread` (private thread) or `channel` (a channel in [`CATEGORY`]).
    pub const MODE: &str = "tickets.mode";
    /// Setting: channel whose private threads hold tickets (default: where the ticket was opened).
    pub const CHANNEL: &str = "tickets.channel";
    /// Setting: category for ticket channels (channel mode).
    pub const CATEGORY: &str = "tickets.category";
    /// Setting: open tickets a member may have at once.
    pub const MAX_OPEN: &str = "tickets.max_open";
    /// Setting: time a member waits between two new tickets (0 = none).
    pub const COOLDOWN: &str = "tickets.cooldown";
    /// Setting: roles of which a member needs one to open a ticket (empty = everyone).
    pub const REQUIRED_ROLES: &str = "tickets.required_roles";
    /// Setting: target time to the first staff answer (0 = off), paused while waiting for the member.
    pub const FIRST_RESPONSE_SLA: &str = "tickets.first_response_sla";
    /// Setting: target time to close a ticket (0 = off), paused while waiting for the member.
    pub const RESOLUTION_SLA: &str = "tickets.resolution_sla";
    /// Setting: escalate a ticket when an SLA is breached (a reminder is always posted).
    pub const SLA_ESCALATE: &str = "tickets.sla_escalate";
    /// Setting: close a ticket after this long without messages (0 = never).
    pub const AUTO_CLOSE: &str = "tickets.auto_close_after";
    /// Setting: ping the member when staff change their ticket's status (and the claiming staff
    /// member when the member changes it: reopens, answers a wait).
    pub const PING_ON_STATUS: &str = "tickets.ping_on_status";
    /// Setting: roles pinged when a ticket is escalated.
    pub const ESCALATION_ROLE: &str = "tickets.escalation_role";
    /// Setting: channel told about escalations (default: the ticket itself).
    pub const ESCALATION_CHANNEL: &str = "tickets.escalation_channel";
    /// Setting: how long transcripts are kept (0 = forever).
    pub const TRANSCRIPT_RETENTION: &str = "tickets.transcript_retention";
    /// Setting: ask the member for a 1–5 rating and a comment after close.
    pub const FEEDBACK: &str = "tickets.feedback";
    /// Setting: keep the question and staff's answers of tickets closed as resolved as
    /// knowledge Beacon answers from (off by default; turning it off removes them).
    pub const LEARN: &str = "tickets.learn_from_resolved";
}

/// The tickets module. Cheap to clone (clones share the transcript store).
#[derive(Clone)]
pub struct TicketsModule {
    storage: TranscriptStore,
    /// Each guild's ticket channels: every message in the guild is checked against them.
    channels: Arc<beacon_framework::GuildCache<std::collections::HashSet<u64>>>,
    /// Where changes of the resolved tickets kept as knowledge are announced.
    learned: Learned,
}

impl TicketsModule {
    /// The desk, keeping transcripts in `storage`.
    pub fn new(storage: TranscriptStore) -> TicketsModule {
        TicketsModule { storage, channels: Arc::default(), learned: Learned::default() }
    }

    /// Where transcripts are stored.
    pub fn transcripts(&self) -> &TranscriptStore {
        self.storage()
    }
}

/// The CSV of `/export tickets`: tickets of `guild` opened in `[from_ms, to_ms)`.
pub async fn export_tickets(
    guild: &beacon_store::GuildStore,
    from_ms: i64,
    to_ms: i64,
) -> Result<(usize, String), beacon_store::StoreError> {
    let tickets = model::Repo::new(guild.clone()).opened_between(from_ms, to_ms).await?;
    Ok((tickets.len(), tickets_csv(&tickets)))
}

/// Why a ticket could not be opened (or the module not attached).
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// A limit, a missing role, missing configuration: the text is for the member.
    #[error("{0}")]
    Refused(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] beacon_store::StoreError),
    /// Scheduling the ticket's timers failed.
    #[error(transparent)]
    Jobs(#[from] beacon_jobs::JobError),
    /// Storing the transcript failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A framework call failed (other than a refusal).
    #[error(transparent)]
    Handler(HandlerError),
    /// A Discord request failed.
    #[error("discord: {0}")]
    Discord(#[from] twilight_http::Error),
    /// A Discord answer could not be read.
    #[error("discord: {0}")]
    DiscordBody(#[from] twilight_http::response::DeserializeBodyError),
}

impl From<HandlerError> for TicketError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::User(m) | HandlerError::Forbidden(m) => TicketError::Refused(m),
            HandlerError::Store(s) => TicketError::Store(s),
            other => TicketError::Handler(other),
        }
    }
}

impl From<TicketError> for HandlerError {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::Refused(m) => HandlerError::User(m),
            TicketError::Store(s) => HandlerError::Store(s),
            TicketError::Handler(h) => h,
            other => HandlerError::internal(other),
        }
    }
}

/// "Talk to a human": a ticket opened for the member with the conversation so far, posted in the
/// ticket and attached as `conversation.txt`. The guild's limits and required roles apply; the
/// ticket opens under `tickets.channel`, or, on a default install, in the channel where the
/// member asked.
#[beacon_framework::async_trait]
impl HumanHandoff for TicketsModule {
    async fn available(&self, app: &Arc<App>, guild_id: u64) -> bool {
        app.module_enabled(&app.guild(guild_id), self).await.unwrap_or(false)
    }

    async fn open(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        channel_id: Option<u64>,
        user_id: u64,
        topic: &str,
        conversation: &str,
    ) -> Result<String, HandlerError> {
        let guild = app.guild(guild_id);
        let member = app
            .http
            .guild_member(twilight_model::id::Id::new(guild_id), twilight_model::id::Id::new(user_id))
            .await?
            .model()
            .await?;
        let roles: Vec<u64> = member.roles.iter().map(|r| r.get()).collect();
        // Under `tickets.channel` when it is set, else where the member asked.
        let opening = flow::Opening {
            conversation: Some(conversation),
            ..flow::Opening::new(user_id, &roles, topic, channel_id)
        };
        let t = self.desk(app).open(&guild, opening).await?;
        Ok(format!("<#{}> (ticket #{:04})", t.channel_id.unwrap_or_default(), t.number))
    }
}
