//! The `tickets` module: `/ticket …`, `/export tickets`, the panel, buttons, modals and the
//! message listener.

use std::sync::Arc;

use beacon_framework::app::Check;
use beacon_framework::command::OptionKind;
use beacon_framework::reply::components::{button, row, text_input};
use beacon_framework::{
    Access, AutocompleteCtx, Choice, CommandCtx, CommandSpec, ComponentCtx, EventCtx, HandlerError, HandlerResult,
    InteractionCtx, ModalCtx, Module, OptionSpec, Reply, SettingKind, SettingSpec, async_trait,
};
use beacon_framework::{
    App, ConversationMessage, DayRange, ExportFile, ExportSpec, Exporter, HumanHandoff, JobKind, Port, ReplyDrafter,
    Speaker,
};
use beacon_store::{GuildStore, Schema, now_ms};
use serde_json::json;
use twilight_model::channel::message::MessageFlags;
use twilight_model::channel::message::component::{ButtonStyle, TextInputStyle};
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::{Event, EventType};
use twilight_model::guild::Permissions;
use twilight_model::http::attachment::Attachment;
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::flow::{self, Desk, Opening};
use crate::model::{Answer, Repo, Status, Ticket};
use crate::text;
use crate::transcript::TranscriptStore;
use crate::{TicketsModule, keys};

/// How long the readiness probe of the transcript store may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

const DAY: u64 = 86_400;

fn dur(min: u64, max: u64) -> SettingKind {
    SettingKind::Duration { min: std::time::Duration::from_secs(min), max: std::time::Duration::from_secs(max) }
}

pub(crate) fn settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            keys::MODE,
            SettingKind::Enum(&["thread", "channel"]),
            json!("thread"),
            "Where a ticket lives: a private thread, or a channel in tickets.category.",
        ),
        SettingSpec::new(
            keys::CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Channel whose private threads hold tickets (default: where the ticket was opened).",
        ),
        SettingSpec::new(
            keys::CATEGORY,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Category for ticket channels (channel mode).",
        ),
        SettingSpec::new(
            keys::MAX_OPEN,
            SettingKind::Int { min: 1, max: 50 },
            json!(3),
            "Open tickets a member may have at once.",
        ),
        SettingSpec::new(
            keys::COOLDOWN,
            dur(0, DAY),
            json!(0),
            "Time a member waits between two new tickets (0 = none).",
        ),
        SettingSpec::new(
            keys::REQUIRED_ROLES,
            SettingKind::list(SettingKind::Role, 10),
            json!([]),
            "Members need one of these roles to open a ticket (empty = everyone).",
        ),
        SettingSpec::new(
            keys::FIRST_RESPONSE_SLA,
            dur(0, 30 * DAY),
            json!(4 * 3600),
            "Target time to the first staff answer (0 = off). Paused while waiting for the user.",
        ),
        SettingSpec::new(
            keys::RESOLUTION_SLA,
            dur(0, 90 * DAY),
            json!(72 * 3600),
            "Target time to close a ticket (0 = off). Paused while waiting for the user.",
        ),
        SettingSpec::new(
            keys::SLA_ESCALATE,
            SettingKind::Bool,
            json!(true),
            "Escalate a ticket when an SLA is breached (a reminder is always posted).",
        ),
        SettingSpec::new(
            keys::AUTO_CLOSE,
            dur(0, 90 * DAY),
            json!(0),
            "Close a ticket after this long without messages (0 = never).",
        ),
        SettingSpec::new(
            keys::PING_ON_STATUS,
            SettingKind::Bool,
            json!(false),
            "Ping the member when staff change their ticket's status (and the claimer when the member does).",
        ),
        SettingSpec::new(
            keys::ESCALATION_ROLE,
            SettingKind::list(SettingKind::Role, 3),
            json!([]),
            "Roles pinged when a ticket is escalated.",
        ),
        SettingSpec::new(
            keys::ESCALATION_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Channel told about escalations (default: the ticket itself).",
        ),
        SettingSpec::new(
            keys::FEEDBACK,
            SettingKind::Bool,
            json!(true),
            "Ask the member for a 1–5 rating and a comment after close.",
        ),
        SettingSpec::new(
            keys::LEARN,
            SettingKind::Bool,
            json!(false),
            "Keep the question and staff's answers of tickets closed as Resolved (PII-redacted) as knowledge Beacon answers from; turning it off removes them.",
        ),
    ]
}

fn status_choices() -> Vec<(&'static str, &'static str)> {
    Status::ALL.iter().map(|s| (s.as_str(), s.as_str())).collect()
}

fn string_choice(
    name: &'static str,
    description: &'static str,
    choices: Vec<(&'static str, &'static str)>,
) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind: OptionKind::String { min_length: None, max_length: None, choices },
        required: false,
        autocomplete: false,
    }
}

pub(crate) fn commands() -> Vec<CommandSpec> {
    let id = || OptionSpec::integer("id", "Ticket number", Some(1), None).required();
    vec![
        CommandSpec::new("ticket", "Support tickets", Access::Everyone)
            .option(OptionSpec::subcommand(
                "open",
                "Open a ticket with staff",
                vec![OptionSpec::string("topic", "What do you need help with?").max_length(1000)],
            ))
            .option(OptionSpec::subcommand(
                "status",
                "Change a ticket's status (staff)",
                vec![id(), string_choice("status", "New status", status_choices()).required()],
            ))
            .option(OptionSpec::subcommand(
                "stats",
                "Claims, first response and resolution times (staff)",
                vec![
                    OptionSpec::user("member", "Only this staff member"),
                    string_choice(
                        "period",
                        "Time span (default 30 days)",
                        vec![("7 days", "7d"), ("30 days", "30d"), ("90 days", "90d"), ("all time", "all")],
                    ),
                ],
            ))
            .option(crate::panels::command_group())
            .option(OptionSpec::subcommand("transcript", "Get a closed ticket's transcript (staff)", vec![id()]))
            .option(OptionSpec::subcommand(
                "add",
                "Add a member to a ticket (staff)",
                vec![id(), OptionSpec::user("user", "The member to add").required()],
            ))
            .option(OptionSpec::subcommand(
                "remove",
                "Take a member out of a ticket (staff)",
                vec![id(), OptionSpec::user("user", "The member to take out").required()],
            ))
            .option(OptionSpec::subcommand(
                "block",
                "Stop a member from opening tickets (staff)",
                vec![
                    OptionSpec::user("user", "The member").required(),
                    OptionSpec::string("reason", "Why (the member sees it when they try)").max_length(200),
                ],
            ))
            .option(OptionSpec::subcommand(
                "forget",
                "Remove a resolved ticket's answer from the knowledge base (staff)",
                vec![id()],
            ))
            .option(OptionSpec::subcommand(
                "unblock",
                "Let a blocked member open tickets again (staff)",
                vec![OptionSpec::user("user", "The member").required()],
            )),
    ]
}

fn topic_modal(ctx: &beacon_framework::InteractionCtx) -> HandlerResult {
    ctx.responder.modal(
        "tickets:open",
        "Open a ticket",
        vec![text_input("topic", "What do you need help with?", TextInputStyle::Paragraph, 1000).into()],
    )
}

/// Splits `action:number` from a custom id's action part.
fn action_number(action: &str) -> Option<(&str, i64)> {
    let (a, n) = action.split_once(':')?;
    Some((a, n.parse().ok()?))
}

fn opened_reply(t: &Ticket) -> Reply {
    let place = t.channel_id.map(|c| format!("<#{c}>")).unwrap_or_else(|| "its channel".into());
    Reply::text(format!("Your ticket {} is open: {place}. Staff will answer there.", t.label())).ephemeral()
}

/// What staff are told after removing ticket `number`'s answer from the knowledge base.
fn forgotten(number: i64, removed: bool) -> String {
    if removed {
        format!("Ticket #{number:04}'s answer was removed from the knowledge base; Beacon no longer answers from it.")
    } else {
        format!("Ticket #{number:04} has no answer in the knowledge base.")
    }
}

/// Longest answer to a panel's form question.
const ANSWER_MAX: usize = 1000;

fn panel_gone() -> HandlerError {
    HandlerError::user("This ticket panel was deleted. Ask an admin for the current one.")
}

/// A panel button: the panel's form (its questions, or the topic when it has none).
async fn panel_form(ctx: &ComponentCtx, id: i64) -> HandlerResult {
    let panel = Repo::new(ctx.guild.clone()).panel(id).await?.ok_or_else(panel_gone)?;
    let inputs = if panel.questions.is_empty() {
        vec![text_input("topic", "What do you need help with?", TextInputStyle::Paragraph, 1000).into()]
    } else {
        panel
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| text_input(format!("q{i}"), q, TextInputStyle::Paragraph, ANSWER_MAX as u16).into())
            .collect()
    };
    ctx.responder.modal(format!("tickets:open:{id}"), panel.title, inputs)
}

/// Why the caller is not staff of ticket `t` (`None` when they are): holders of its panel's
/// staff role (and the server's admins) for a panel with one, else the guild's staff
/// (`core.staff_roles`).
async fn staff_refusal(ctx: &InteractionCtx, t: &Ticket) -> HandlerResult<Option<String>> {
    if let Some(id) = t.panel_id
        && let Some(role) = Repo::new(ctx.guild.clone()).panel(id).await?.and_then(|p| p.staff_role_id)
    {
        let staff = ctx.caller.roles.contains(&role) || ctx.access >= Access::Authorized;
        return Ok((!staff).then(|| format!("Only this ticket's staff (<@&{role}>) can use this.")));
    }
    Ok((ctx.access < Access::Staff).then(|| Access::Staff.refusal().to_owned()))
}

/// Ticket `number`, for its staff only (`/ticket status|transcript|add|remove`). Members below
/// staff learn nothing of tickets that do not exist.
async fn staff_ticket(desk: &Desk, ctx: &InteractionCtx, number: i64) -> HandlerResult<Ticket> {
    let t = match desk.ticket(&ctx.guild, number).await {
        Ok(t) => t,
        Err(HandlerError::User(_)) if ctx.access < Access::Staff => {
            return Err(HandlerError::Forbidden(Access::Staff.refusal().to_owned()));
        }
        Err(e) => return Err(e),
    };
    match staff_refusal(ctx, &t).await? {
        None => Ok(t),
        Some(refusal) => Err(HandlerError::Forbidden(refusal)),
    }
}

impl TicketsModule {
    pub(crate) fn desk(&self, app: &Arc<beacon_framework::App>) -> Desk {
        Desk {
            app: app.clone(),
            storage: self.storage.clone(),
            jobs: beacon_jobs::Jobs::new(app.store.clone()),
            learned: self.learned.clone(),
        }
    }

    pub(crate) fn storage(&self) -> &TranscriptStore {
        &self.storage
    }

    async fn stats(&self, ctx: &CommandCtx) -> HandlerResult {
        ctx.require(Access::Staff)?;
        let member = ctx.options.user("member");
        let (since, label) = match ctx.options.str("period").unwrap_or("30d") {
            "7d" => (now_ms() - 7 * 86_400_000, "last 7 days"),
            "90d" => (now_ms() - 90 * 86_400_000, "last 90 days"),
            "all" => (0, "all time"),
            _ => (now_ms() - 30 * 86_400_000, "last 30 days"),
        };
        let s = Repo::new(ctx.guild.clone()).stats(member, since).await?;
        let avg = |v: Option<i64>| v.map_or_else(|| "—".to_owned(), text::duration);
        let who = member.map_or_else(|| "everyone".to_owned(), |m| format!("<@{m}>"));
        let mut b = EmbedBuilder::new()
            .title("Ticket stats")
            .description(format!("{who}, {label}"))
            .color(Status::Claimed.color())
            .field(EmbedFieldBuilder::new("Claims", s.claims.to_string()).inline())
            .field(
                EmbedFieldBuilder::new(
                    "First response",
                    format!("{} avg over {}", avg(s.avg_first_response_ms), s.responded),
                )
                .inline(),
            )
            .field(
                EmbedFieldBuilder::new("Resolution", format!("{} avg over {}", avg(s.avg_resolution_ms), s.resolved))
                    .inline(),
            );
        if member.is_none() {
            b = b.field(EmbedFieldBuilder::new("Opened", s.opened.to_string()).inline());
        }
        if let Some(r) = s.avg_rating {
            b = b.field(EmbedFieldBuilder::new("Feedback", format!("{r:.1}/5")).inline());
        }
        ctx.reply(Reply::embed(b.build()).ephemeral()).await
    }

    /// "Suggest reply": an ephemeral draft from the knowledge base, answering the member's latest
    /// message in the light of the whole ticket so far (its topic, the member's messages and
    /// staff's), with a button to send it. Nothing is sent without that click.
    async fn suggest(&self, ctx: &ComponentCtx, number: i64) -> HandlerResult {
        let Some(drafter) = ctx.app.port::<dyn ReplyDrafter>() else {
            return ctx.reply(Reply::text("Suggested replies are not available in this deployment.").ephemeral()).await;
        };
        ctx.responder.defer()?;
        let desk = self.desk(&ctx.app);
        let t = desk.ticket(&ctx.guild, number).await?;
        let mut conversation = vec![ConversationMessage { speaker: Speaker::Member, text: t.topic.clone() }];
        if let Some(channel) = t.channel_id {
            let messages = ctx.app.http.channel_messages(Id::new(channel)).limit(50).await?.models().await?;
            // Newest first from Discord; the drafter reads the conversation oldest first. Beacon's
            // own messages in a ticket (its opening, sent drafts) speak for staff.
            let shown = |m: &&twilight_model::channel::Message| {
                !m.content.trim().is_empty() && !m.flags.is_some_and(|f| f.contains(MessageFlags::EPHEMERAL))
            };
            for m in messages.iter().rev().filter(shown) {
                let speaker = if m.author.id.get() == t.opener_id { Speaker::Member } else { Speaker::Staff };
                conversation.push(ConversationMessage { speaker, text: m.content.clone() });
            }
        }
        let Some(draft) = drafter.draft(&ctx.app, ctx.guild_id(), ctx.user_id(), &conversation).await? else {
            return ctx
                .reply(Reply::text("The knowledge base has nothing confident to suggest for this ticket.").ephemeral())
                .await;
        };
        let key =
            beacon_cache::CacheKey::guild(ctx.guild_id(), "tickets", &format!("draft:{number}:{}", ctx.user_id()));
        ctx.app.cache.set(&key, draft.as_bytes(), std::time::Duration::from_secs(3600)).await?;
        ctx.reply(
            Reply::text(format!(
                "Suggested reply (only you see this; nothing is sent until you click Send):\n\n{draft}"
            ))
            .with_components(vec![row(vec![button(
                format!("tickets:send:{number}"),
                "Send this reply",
                ButtonStyle::Success,
            )])])
            .ephemeral(),
        )
        .await
    }

    /// Posts a draft the staff member chose to send into the ticket.
    async fn send_draft(&self, ctx: &ComponentCtx, number: i64) -> HandlerResult {
        let key =
            beacon_cache::CacheKey::guild(ctx.guild_id(), "tickets", &format!("draft:{number}:{}", ctx.user_id()));
        let Some(bytes) = ctx.app.cache.get(&key).await? else {
            return Err(HandlerError::user("This draft has expired; press Suggest reply again."));
        };
        let draft = String::from_utf8_lossy(&bytes).into_owned();
        let t = self.desk(&ctx.app).ticket(&ctx.guild, number).await?;
        let Some(channel) = t.channel_id else {
            return Err(HandlerError::user("This ticket has no channel to post in."));
        };
        let text = format!("{draft}\n-# Sent by <@{}> with Beacon's suggestion", ctx.user_id());
        ctx.app.http.create_message(Id::new(channel)).content(&text).await?;
        ctx.app.cache.delete(&key).await?;
        ctx.reply(Reply::text("Sent.").ephemeral()).await
    }

    async fn transcript(&self, ctx: &CommandCtx) -> HandlerResult {
        let number = ctx.options.int("id").unwrap_or(0);
        let t = staff_ticket(&self.desk(&ctx.app), ctx, number).await?;
        let Some(key) = t.transcript_key.clone() else {
            return Err(HandlerError::user(format!(
                "Ticket {} has no stored transcript (it is not closed, or storing failed).",
                t.label()
            )));
        };
        ctx.responder.defer()?;
        let body = self.storage.get(&key).await.map_err(|e| {
            HandlerError::user(format!(
                "The transcript of {} is no longer available ({e}). It may be past the retention period.",
                t.label()
            ))
        })?;
        let file = Attachment::from_bytes(format!("ticket-{:04}.html", t.number), body, 1);
        ctx.reply(
            Reply::text(format!(
                "Transcript of ticket {}: {}",
                t.label(),
                crate::transcript::link_for(&ctx.app, &self.storage, &key)
            ))
            .with_attachment(file)
            .ephemeral(),
        )
        .await
    }

    async fn status_command(&self, ctx: &CommandCtx) -> HandlerResult {
        let number = ctx.options.int("id").unwrap_or(0);
        let desk = self.desk(&ctx.app);
        let current = staff_ticket(&desk, ctx, number).await?;
        let status = ctx
            .options
            .str("status")
            .and_then(Status::parse)
            .ok_or_else(|| HandlerError::user("Pick a status from the list."))?;
        let t = if current.status == Status::Closed && status != Status::Closed {
            let t = desk.reopen(&ctx.guild, number, ctx.user_id()).await?;
            if t.status == status { t } else { desk.set_status(&ctx.guild, number, status, ctx.user_id()).await? }
        } else {
            desk.set_status(&ctx.guild, number, status, ctx.user_id()).await?
        };
        desk.refresh(&t).await?;
        ctx.reply(Reply::text(format!("Ticket {} is now {}.", t.label(), t.status.chip())).ephemeral()).await
    }
}

#[async_trait]
impl Module for TicketsModule {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn description(&self) -> &'static str {
        "Private support tickets with SLA, transcripts and feedback"
    }

    fn commands(&self) -> Vec<CommandSpec> {
        commands()
    }

    fn settings(&self) -> Vec<SettingSpec> {
        settings()
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![crate::model::SCHEMA]
    }

    fn permissions(&self) -> Permissions {
        // Private threads (or channels in a category) with the member, their history for
        // transcripts, and the panel's messages.
        Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::SEND_MESSAGES_IN_THREADS
            | Permissions::CREATE_PRIVATE_THREADS
            | Permissions::MANAGE_THREADS
            | Permissions::MANAGE_CHANNELS
            | Permissions::READ_MESSAGE_HISTORY
            | Permissions::EMBED_LINKS
            | Permissions::ATTACH_FILES
    }

    fn jobs(&self, app: &Arc<App>) -> Vec<JobKind> {
        let handler = Arc::new(crate::timers::TicketJobs { desk: self.desk(app) });
        [crate::JOB_SLA, crate::JOB_AUTOCLOSE].into_iter().map(|kind| JobKind::new(kind, handler.clone())).collect()
    }

    fn provides(&self) -> Vec<Port> {
        vec![
            Port::new::<dyn HumanHandoff>("tickets", Arc::new(self.clone())),
            Port::new::<dyn beacon_kb::GuildSource>(
                "tickets",
                Arc::new(crate::knowledge::TicketSource::new(self.learned.clone())),
            ),
        ]
    }

    /// Turning `tickets.learn_from_resolved` off removes every resolved ticket from the
    /// knowledge base (every process runs this; the first one deletes the rows, and each
    /// announces the guild so its knowledge base re-syncs).
    async fn setting_changed(&self, app: &Arc<App>, change: &beacon_framework::settings::SettingChanged) {
        if change.key != keys::LEARN || change.new.as_bool() != Some(false) {
            return;
        }
        let guild = app.guild(change.guild_id);
        match self.desk(app).forget_all(&guild).await {
            Ok(removed) => {
                tracing::info!(guild_id = change.guild_id, removed, "resolved tickets removed from the knowledge base");
            }
            Err(e) => {
                tracing::warn!(guild_id = change.guild_id, error = %e, "removing resolved tickets from the knowledge base failed")
            }
        }
    }

    fn routes(&self, app: &Arc<App>) -> Option<axum::Router> {
        let state = TranscriptRoute { app: app.clone(), storage: self.storage.clone() };
        Some(axum::Router::new().route("/transcripts/{*key}", axum::routing::get(serve_transcript)).with_state(state))
    }

    fn api_routes(&self, _app: &Arc<App>) -> Vec<beacon_framework::ApiRoute> {
        crate::api::routes(self.storage.clone())
    }

    fn pages(&self) -> Vec<beacon_framework::pages::PageSpec> {
        crate::api::pages()
    }

    fn exports(&self) -> Vec<ExportSpec> {
        vec![
            ExportSpec::new("tickets", "Tickets opened between two dates (YYYY-MM-DD, UTC)", Arc::new(TicketExport))
                .with_range(),
            ExportSpec::new("ticket-panels", "Ticket panels: place, staff role and form", Arc::new(PanelExport)),
        ]
    }

    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::personal_data()
    }

    fn retention(&self) -> Vec<beacon_framework::retention::Retention> {
        vec![crate::privacy::TRANSCRIPTS]
    }

    /// Transcripts of tickets closed before the cut-off: the stored files go, then the tickets
    /// forget their keys.
    async fn expire(
        &self,
        _app: &Arc<App>,
        guild: &beacon_store::GuildStore,
        rule: &beacon_framework::retention::Retention,
        cutoff_ms: i64,
    ) -> Result<u64, HandlerError> {
        if rule.setting != keys::TRANSCRIPT_RETENTION {
            return Ok(guild.expire_rows(rule.expire, cutoff_ms).await?.iter().sum());
        }
        let repo = crate::model::Repo::new(guild.clone());
        let expired = repo.transcripts_closed_before(cutoff_ms).await?;
        for (number, key) in &expired {
            // Keys are built by this module as guilds/{guild}/…; never another guild's file.
            if !key.starts_with(&format!("guilds/{}/", guild.id())) {
                continue;
            }
            self.storage.delete(key).await.map_err(HandlerError::internal)?;
            repo.forget_transcript(*number).await?;
            tracing::info!(guild_id = guild.id(), ticket = number, "transcript past retention deleted");
        }
        Ok(expired.len() as u64)
    }

    async fn export_member(
        &self,
        _app: &Arc<App>,
        guild: &beacon_store::GuildStore,
        user_id: u64,
    ) -> Result<Vec<beacon_framework::privacy::ExportPart>, HandlerError> {
        let mut parts = beacon_framework::privacy::export_declared(&self.personal_data(), guild, user_id).await?;
        parts.extend(crate::privacy::export_transcripts(guild, user_id).await?);
        Ok(parts)
    }

    async fn erase_member(
        &self,
        _app: &Arc<App>,
        guild: &beacon_store::GuildStore,
        user_id: u64,
    ) -> Result<Vec<beacon_framework::privacy::ErasureLine>, HandlerError> {
        let transcripts = crate::privacy::erase_transcripts(&self.storage, guild, user_id).await?;
        let mut lines = beacon_framework::privacy::erase_declared(&self.personal_data(), guild, user_id).await?;
        // The knowledge their resolved tickets added leaves the guild's search index now, not at
        // the next scheduled sync.
        if lines.iter().any(|l| l.part == "ticket_knowledge" && l.changed > 0) {
            self.learned.announce(guild.id());
        }
        lines.push(transcripts);
        Ok(lines)
    }

    async fn readiness(&self, _app: &Arc<App>) -> Vec<Check> {
        // Where transcripts go must answer: a wrong bucket, key or endpoint shows at start, not
        // when the first ticket closes.
        let started = std::time::Instant::now();
        let probe = tokio::time::timeout(PROBE_TIMEOUT, self.storage.probe()).await;
        let (ok, detail) = match probe {
            Ok(Ok(())) => (true, self.storage.location().to_owned()),
            Ok(Err(e)) => (false, format!("{}: {e}", self.storage.location())),
            Err(_) => (false, format!("{}: no answer within {PROBE_TIMEOUT:?}", self.storage.location())),
        };
        vec![Check { name: "transcripts", ok, latency: started.elapsed(), detail }]
    }

    async fn purge_guild(&self, _app: &Arc<App>, guild_id: u64) -> Result<Vec<String>, HandlerError> {
        let removed = self.storage.purge_guild(guild_id).await.map_err(HandlerError::internal)?;
        Ok(vec![format!("{removed} transcript(s) removed from {}", self.storage.location())])
    }

    fn intents(&self) -> Intents {
        // Message content is needed for transcripts, which copy what was written; a ticket's
        // deleted thread or channel removes its answer from the knowledge base.
        Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT | Intents::GUILDS
    }

    fn events(&self) -> &'static [EventType] {
        &[EventType::MessageCreate, EventType::ThreadDelete, EventType::ChannelDelete]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.options.subcommand() {
            Some("open") => match ctx.options.str("topic").filter(|t| !t.trim().is_empty()) {
                None => topic_modal(&ctx),
                Some(topic) => {
                    let opening = Opening::new(ctx.user_id(), &ctx.caller.roles, topic, ctx.channel_id());
                    let t = self.desk(&ctx.app).open(&ctx.guild, opening).await?;
                    ctx.reply(opened_reply(&t)).await
                }
            },
            Some("status") => self.status_command(&ctx).await,
            Some("stats") => self.stats(&ctx).await,
            Some("panel") => crate::panels::command(&ctx).await,
            Some("transcript") => self.transcript(&ctx).await,
            Some("forget") => {
                let number = ctx.options.int("id").unwrap_or(0);
                let desk = self.desk(&ctx.app);
                staff_ticket(&desk, &ctx, number).await?;
                ctx.reply(Reply::text(forgotten(number, desk.forget(&ctx.guild, number).await?)).ephemeral()).await
            }
            Some("block") => {
                ctx.require(Access::Staff)?;
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a member."))?;
                let reason = ctx.options.str("reason").unwrap_or_default().trim().to_owned();
                Repo::new(ctx.guild.clone()).block(user, ctx.user_id(), &reason, now_ms()).await?;
                ctx.reply(Reply::text(format!("<@{user}> can no longer open tickets here.")).ephemeral()).await
            }
            Some("unblock") => {
                ctx.require(Access::Staff)?;
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a member."))?;
                let text = if Repo::new(ctx.guild.clone()).unblock(user).await? {
                    format!("<@{user}> can open tickets again.")
                } else {
                    format!("<@{user}> was not blocked.")
                };
                ctx.reply(Reply::text(text).ephemeral()).await
            }
            Some(sub @ ("add" | "remove")) => {
                let number = ctx.options.int("id").unwrap_or(0);
                let desk = self.desk(&ctx.app);
                staff_ticket(&desk, &ctx, number).await?;
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a member."))?;
                let add = sub == "add";
                desk.set_member(&ctx.guild, number, user, add, ctx.user_id()).await?;
                let done = if add { "added to" } else { "taken out of" };
                ctx.reply(Reply::text(format!("<@{user}> {done} ticket #{number:04}.")).ephemeral()).await
            }
            _ => Err(HandlerError::user("Unknown /ticket subcommand.")),
        }
    }

    /// Panel names for `/ticket panel … name`.
    async fn autocomplete(&self, ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        let Some(("name", typed)) = ctx.options.focused() else {
            return Ok(Vec::new());
        };
        if ctx.base.access < Access::Authorized {
            return Ok(Vec::new());
        }
        let typed = typed.trim().to_lowercase();
        let panels = Repo::new(ctx.base.guild.clone()).panels().await?;
        Ok(panels
            .into_iter()
            .filter(|p| p.name.contains(&typed))
            .take(25)
            .map(|p| Choice::new(&p.name, &p.name))
            .collect())
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        let action = ctx.action().to_owned();
        if action == "open" {
            return topic_modal(&ctx);
        }
        let Some((verb, number)) = action_number(&action) else {
            return Err(HandlerError::user("This button is out of date."));
        };
        if verb == "open" {
            return panel_form(&ctx, number).await;
        }
        let desk = self.desk(&ctx.app);
        let current = desk.ticket(&ctx.guild, number).await?;
        let is_opener = current.opener_id == ctx.user_id();
        let refusal = staff_refusal(&ctx, &current).await?;
        let staff = refusal.is_none();
        let require_staff = || match &refusal {
            None => Ok(()),
            Some(m) => Err(HandlerError::Forbidden(m.clone())),
        };
        let status = match verb {
            "claim" => Some(Status::Claimed),
            "wait" => Some(Status::WaitingForUser),
            "escalate" => Some(Status::Escalated),
            _ => None,
        };
        let t = match (verb, status) {
            (_, Some(status)) => {
                require_staff()?;
                desk.set_status(&ctx.guild, number, status, ctx.user_id()).await?
            }
            ("close", _) => {
                if !(staff || is_opener) {
                    return Err(HandlerError::Forbidden(
                        "Only staff or the member who opened this ticket can close it.".into(),
                    ));
                }
                // Closing fetches the transcript and posts several messages: acknowledge first.
                ctx.responder.defer()?;
                desk.close(&ctx.guild, number, ctx.user_id(), None).await?
            }
            ("resolve", _) => {
                require_staff()?;
                ctx.responder.defer()?;
                desk.resolve(&ctx.guild, number, ctx.user_id()).await?
            }
            ("forget", _) => {
                require_staff()?;
                let text = forgotten(number, desk.forget(&ctx.guild, number).await?);
                return ctx.reply(Reply::text(text).ephemeral()).await;
            }
            ("reopen", _) => {
                if !(staff || is_opener) {
                    return Err(HandlerError::Forbidden(
                        "Only staff or the member who opened this ticket can reopen it.".into(),
                    ));
                }
                desk.reopen(&ctx.guild, number, ctx.user_id()).await?
            }
            ("suggest", _) => {
                require_staff()?;
                return self.suggest(&ctx, number).await;
            }
            ("send", _) => {
                require_staff()?;
                return self.send_draft(&ctx, number).await;
            }
            ("feedback", _) => {
                if !is_opener {
                    return Err(HandlerError::Forbidden("Only the member who opened this ticket can rate it.".into()));
                }
                return ctx.responder.modal(
                    format!("tickets:feedback:{number}"),
                    format!("Rate ticket {}", current.label()),
                    vec![
                        text_input("rating", "Rating from 1 (bad) to 5 (great)", TextInputStyle::Short, 1).into(),
                        text_input("comment", "Anything to add?", TextInputStyle::Paragraph, 1000).optional().into(),
                    ],
                );
            }
            _ => return Err(HandlerError::user("This button is out of date.")),
        };
        if ctx.message_id == current.message_id {
            ctx.responder.update(Reply::embed(flow::embed(&t)).with_components(flow::buttons(&t))).await
        } else {
            desk.refresh(&t).await?;
            ctx.reply(Reply::text(format!("Ticket {} is now {}.", t.label(), t.status.chip())).ephemeral()).await
        }
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        let action = ctx.action().to_owned();
        let desk = self.desk(&ctx.app);
        if action == "open" {
            let topic = ctx.field("topic").unwrap_or_default().to_owned();
            let t =
                desk.open(&ctx.guild, Opening::new(ctx.user_id(), &ctx.caller.roles, &topic, ctx.channel_id())).await?;
            return ctx.reply(opened_reply(&t)).await;
        }
        match action_number(&action) {
            Some(("open", id)) => {
                let panel = Repo::new(ctx.guild.clone()).panel(id).await?.ok_or_else(panel_gone)?;
                let (topic, answers) = if panel.questions.is_empty() {
                    (ctx.field("topic").unwrap_or_default().to_owned(), Vec::new())
                } else {
                    let answers: Vec<Answer> = panel
                        .questions
                        .iter()
                        .enumerate()
                        .map(|(i, q)| Answer {
                            question: q.clone(),
                            answer: flow::truncate(ctx.field(&format!("q{i}")).unwrap_or_default().trim(), ANSWER_MAX),
                        })
                        .collect();
                    (answers.first().map(|a| a.answer.clone()).unwrap_or_default(), answers)
                };
                let opening = Opening {
                    panel: Some(&panel),
                    answers: &answers,
                    ..Opening::new(ctx.user_id(), &ctx.caller.roles, &topic, ctx.channel_id())
                };
                let t = desk.open(&ctx.guild, opening).await?;
                ctx.reply(opened_reply(&t)).await
            }
            Some(("feedback", number)) => {
                let t = desk.ticket(&ctx.guild, number).await?;
                if t.opener_id != ctx.user_id() {
                    return Err(HandlerError::Forbidden("Only the member who opened this ticket can rate it.".into()));
                }
                let rating = ctx
                    .field("rating")
                    .and_then(|r| r.trim().parse::<i64>().ok())
                    .filter(|r| (1..=5).contains(r))
                    .ok_or_else(|| HandlerError::user("The rating must be a number from 1 to 5."))?;
                let comment =
                    ctx.field("comment").map(str::trim).filter(|c| !c.is_empty()).map(|c| flow::truncate(c, 1000));
                Repo::new(ctx.guild.clone()).set_feedback(number, rating, comment.as_deref()).await?;
                let log = desk.ids(&ctx.guild, beacon_framework::app::core_settings::LOG_CHANNEL).await?;
                if let Some(log) = log.first() {
                    let stars = "★".repeat(rating as usize) + &"☆".repeat(5 - rating as usize);
                    let text = format!(
                        "Feedback on ticket {} from <@{}>: {stars} ({rating}/5){}",
                        t.label(),
                        t.opener_id,
                        comment.map(|c| format!("\n> {c}")).unwrap_or_default()
                    );
                    ctx.app.http.create_message(Id::new(*log)).content(&text).await?;
                }
                ctx.reply(Reply::text("Thank you for your feedback!").ephemeral()).await
            }
            _ => Err(HandlerError::user("This form is out of date.")),
        }
    }

    async fn event(&self, ctx: EventCtx) -> HandlerResult {
        // A ticket's thread or channel deleted in Discord: its answer leaves the knowledge base.
        let deleted = match ctx.event.as_ref() {
            Event::ThreadDelete(t) => Some((t.guild_id, t.id)),
            Event::ChannelDelete(c) => c.0.guild_id.map(|g| (g, c.0.id)),
            _ => None,
        };
        if let Some((guild_id, channel)) = deleted {
            let guild = ctx.app.guild(guild_id.get());
            if let Some(t) = Repo::new(guild.clone()).by_channel(channel.get()).await? {
                self.desk(&ctx.app).forget(&guild, t.number).await?;
            }
            return Ok(());
        }
        let Event::MessageCreate(m) = ctx.event.as_ref() else {
            return Ok(());
        };
        let Some(guild_id) = m.guild_id else {
            return Ok(());
        };
        if m.author.bot {
            return Ok(());
        }
        let guild = ctx.app.guild(guild_id.get());
        let repo = Repo::new(guild.clone());
        let channels = self.channels.get_or_load(&guild, || repo.channel_ids()).await?;
        if !channels.contains(&m.channel_id.get()) {
            return Ok(());
        }
        let at = m.timestamp.as_micros() / 1000;
        self.desk(&ctx.app).on_message(&guild, m.channel_id.get(), m.author.id.get(), at).await
    }
}

/// `/export tickets from to`: tickets opened in the range, as CSV.
struct TicketExport;

#[async_trait]
impl Exporter for TicketExport {
    async fn export(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        range: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError> {
        let range = range.ok_or_else(|| HandlerError::user("Give the days to export: `from` and `to`."))?;
        let (count, csv) = crate::export_tickets(guild, range.from_ms, range.to_ms).await?;
        Ok(ExportFile {
            name: format!("tickets-{}-{}.csv", range.from, range.to),
            bytes: csv.into_bytes(),
            summary: format!("{count} ticket(s) opened from {} to {}.", range.from, range.to),
        })
    }
}

/// What the transcript route needs.
#[derive(Clone)]
struct TranscriptRoute {
    app: Arc<App>,
    storage: TranscriptStore,
}

/// The query of a signed transcript link.
#[derive(serde::Deserialize)]
struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

/// `GET /transcripts/{key}?expires=…&sig=…`: the transcript page, for whoever holds a valid,
/// unexpired link Beacon posted (to staff, in the log channel or `/ticket transcript`).
async fn serve_transcript(
    axum::extract::State(route): axum::extract::State<TranscriptRoute>,
    axum::extract::Path(key): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<LinkQuery>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let refuse = |status: StatusCode, code: &str, message: &str| {
        (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
    };
    let (Some(keyring), Some(expires), Some(sig)) = (route.app.keyring.as_ref(), query.expires, query.sig.as_deref())
    else {
        return refuse(StatusCode::FORBIDDEN, "unsigned", "This page needs the signed link Beacon posted.");
    };
    if !crate::transcript::valid_key(&key) {
        return refuse(StatusCode::NOT_FOUND, "not_found", "No such transcript.");
    }
    if let Err(message) = crate::transcript::check_link(keyring, &key, expires, sig, now_ms() / 1000) {
        return refuse(StatusCode::FORBIDDEN, "invalid_link", message);
    }
    match route.storage.get(&key).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            body,
        )
            .into_response(),
        Err(_) => {
            refuse(StatusCode::NOT_FOUND, "not_found", "This transcript is no longer stored (past its retention).")
        }
    }
}

/// `/export ticket-panels`: every panel, as CSV.
struct PanelExport;

#[async_trait]
impl Exporter for PanelExport {
    async fn export(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        _: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError> {
        let panels = Repo::new(guild.clone()).panels().await?;
        Ok(ExportFile {
            name: "ticket-panels.csv".into(),
            bytes: crate::export::panels_csv(&panels).into_bytes(),
            summary: format!("{} ticket panel(s).", panels.len()),
        })
    }
}
