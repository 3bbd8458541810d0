//! Beacon's ticket desk: private support tickets (a private thread, or a channel in a category)
//! with a status workflow, limits, SLA clocks that pause while waiting for the member, reminders
//! and escalation on breach, inactivity auto-close, HTML transcripts in object storage, feedback
//! after close, staff stats and CSV exports.
//!
//! Timers (SLA, auto-close, transcript retention) are durable jobs of `beacon-jobs`, so they
//! survive restarts and run once across workers.
//!
//! ```ignore
//! let storage = TranscriptStore::local(&config.data_dir.join("transcripts"))?;
//! let tickets = TicketsModule::new(storage);
//! let app = AppBuilder::new(config, store, cache, http)
//!     .module(tickets.clone())
//!     .build()
//!     .await?;
//! let mut runner = beacon_jobs::Runner::new(app.store.clone(), Default::default());
//! tickets.attach(&app, &mut runner).await?;
//! let jobs = runner.spawn(app.shutdown.clone());
//!
//! // The support module hands a conversation over to a human:
//! let id = beacon_tickets::open_ticket_for(&app, guild_id, user_id, "Refund", Some(&chat)).await?;
//! ```

mod export;
mod flow;
mod model;
mod module;
mod text;
mod timers;
mod transcript;

pub use export::{TICKET_COLUMNS, tickets_csv};
pub use flow::{JOB_AUTOCLOSE, JOB_SLA, JOB_TRANSCRIPT_EXPIRY};
pub use model::{Stats, Status, Ticket};
pub use transcript::{Line, S3Options, StorageError, TranscriptStore, render as render_transcript};

use std::sync::Arc;

use beacon_framework::{App, HandlerError};

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
    /// Setting: ping the member when their ticket changes status.
    pub const PING_ON_STATUS: &str = "tickets.ping_on_status";
    /// Setting: roles pinged when a ticket is escalated.
    pub const ESCALATION_ROLE: &str = "tickets.escalation_role";
    /// Setting: channel told about escalations (default: the ticket itself).
    pub const ESCALATION_CHANNEL: &str = "tickets.escalation_channel";
    /// Setting: how long transcripts are kept (0 = forever).
    pub const TRANSCRIPT_RETENTION: &str = "tickets.transcript_retention";
    /// Setting: ask the member for a 1–5 rating and a comment after close.
    pub const FEEDBACK: &str = "tickets.feedback";
}

/// The tickets module. Cheap to clone (clones share the transcript store).
#[derive(Clone)]
pub struct TicketsModule {
    storage: TranscriptStore,
    drafter: Option<Arc<dyn ReplyDrafter>>,
    /// Each guild's ticket channels: every message in the guild is checked against them.
    channels: Arc<beacon_framework::GuildCache<std::collections::HashSet<u64>>>,
}

/// Drafts a reply for staff from the knowledge base (the support module implements it).
#[beacon_framework::async_trait]
pub trait ReplyDrafter: Send + Sync {
    /// A draft answer to `question` in `guild_id`, or `None` when there is nothing confident to say.
    async fn draft(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        question: &str,
    ) -> Result<Option<String>, HandlerError>;
}

impl TicketsModule {
    /// The ticket desk, storing transcripts in `storage`; "Suggest reply" needs [`TicketsModule::with_drafter`].
    pub fn new(storage: TranscriptStore) -> TicketsModule {
        TicketsModule { storage, drafter: None, channels: Arc::default() }
    }

    /// Enables "Suggest reply" with `drafter`.
    pub fn with_drafter(mut self, drafter: Arc<dyn ReplyDrafter>) -> TicketsModule {
        self.drafter = Some(drafter);
        self
    }

    pub(crate) fn drafter(&self) -> Option<&Arc<dyn ReplyDrafter>> {
        self.drafter.as_ref()
    }

    /// After the app is built: registers the module's tables for guild purges and its timer
    /// handlers on `runner`.
    pub async fn attach(&self, app: &Arc<App>, runner: &mut beacon_jobs::Runner) -> Result<(), TicketError> {
        let jobs = beacon_jobs::Jobs::new(app.store.clone());
        jobs.migrate().await?;
        for table in model::GUILD_TABLES {
            app.store.register_guild_table(table).await?;
        }
        let handler = Arc::new(timers::TicketJobs { desk: self.desk(app) });
        for kind in [JOB_SLA, JOB_AUTOCLOSE, JOB_TRANSCRIPT_EXPIRY] {
            runner.register(kind, handler.clone());
        }
        Ok(())
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

/// A ticket, as returned to other modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketId {
    /// The guild of the ticket.
    pub guild_id: u64,
    /// The per-guild number (`#0001`).
    pub number: i64,
    /// The ticket's thread or channel.
    pub channel_id: u64,
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

/// Opens a ticket on behalf of `user_id` (the support module's "talk to a human"): the member's
/// question as the topic, and the conversation so far (`attachment_text`) posted in the ticket
/// and attached as `conversation.txt`. The guild's limits and required roles apply; the ticket is
/// created under `tickets.channel`, which must be set.
pub async fn open_ticket_for(
    app: &Arc<App>,
    guild_id: u64,
    user_id: u64,
    topic: &str,
    attachment_text: Option<&str>,
) -> Result<TicketId, TicketError> {
    let module = TicketsModule::new(TranscriptStore::local(&app.config.data_dir.join("transcripts"))?);
    let guild = app.guild(guild_id);
    let roles = match app
        .http
        .guild_member(twilight_model::id::Id::new(guild_id), twilight_model::id::Id::new(user_id))
        .await
    {
        Ok(resp) => resp.model().await.map(|m| m.roles.iter().map(|r| r.get()).collect::<Vec<_>>())?,
        Err(e) => return Err(e.into()),
    };
    let t = module.desk(app).open(&guild, user_id, &roles, topic, attachment_text, None).await?;
    Ok(TicketId { guild_id, number: t.number, channel_id: t.channel_id.unwrap_or_default() })
}
