//! The ticket workflow shared by buttons, commands, timers and the support handoff: opening,
//! status changes (with SLA clock pauses), closing with a transcript, reopening, feedback.

use std::sync::Arc;
use std::time::Duration;

use beacon_framework::app::core_settings;
use beacon_framework::reply::components::{button, row};
use beacon_framework::{App, HandlerError, HandlerResult};
use beacon_jobs::Jobs;
use beacon_store::{GuildStore, now_ms};
use serde_json::json;
use twilight_model::channel::ChannelType;
use twilight_model::channel::message::component::ButtonStyle;
use twilight_model::channel::message::{AllowedMentions, Component, Embed, MessageFlags};
use twilight_model::guild::Permissions;
use twilight_model::http::attachment::Attachment;
use twilight_model::http::permission_overwrite::{PermissionOverwrite, PermissionOverwriteType};
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::keys;
use crate::knowledge::{self, Learned};
use crate::model::{Answer, Panel, Repo, Status, Ticket};
use crate::transcript::{self, Line, TranscriptStore};

/// Job kinds this module schedules.
pub const JOB_SLA: &str = "tickets.sla";
/// Job kind: close a ticket that has been quiet for `tickets.auto_close_after`.
pub const JOB_AUTOCLOSE: &str = "tickets.autoclose";

/// Who acts when Beacon itself changes a ticket (timers).
pub const SYSTEM: u64 = 0;

/// Most messages copied into a transcript.
const TRANSCRIPT_MAX_MESSAGES: usize = 5000;

/// What opening a ticket needs to know.
pub struct Opening<'a> {
    /// The member it is for.
    pub user: u64,
    /// Their roles (for `tickets.required_roles`).
    pub roles: &'a [u64],
    /// What they need help with.
    pub topic: &'a str,
    /// The conversation before the ticket (support's hand-off), posted and attached.
    pub conversation: Option<&'a str>,
    /// Where to open a thread when neither the panel nor `tickets.channel` says.
    pub fallback_channel: Option<u64>,
    /// The panel it was opened from.
    pub panel: Option<&'a Panel>,
    /// The member's answers to the panel's form.
    pub answers: &'a [Answer],
}

impl<'a> Opening<'a> {
    /// A ticket about `topic` for `user`, from no panel.
    pub fn new(user: u64, roles: &'a [u64], topic: &'a str, fallback_channel: Option<u64>) -> Opening<'a> {
        Opening { user, roles, topic, conversation: None, fallback_channel, panel: None, answers: &[] }
    }
}

/// Where a new ticket is made.
enum Destination {
    /// A private thread under this channel.
    Thread(u64),
    /// A channel, in this category if any.
    Channel(Option<u64>),
}

/// Everything the workflow needs. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    pub app: Arc<App>,
    pub storage: TranscriptStore,
    pub jobs: Jobs,
    /// Where changes of the tickets kept as knowledge are announced (the knowledge base follows).
    pub learned: Learned,
}

fn who(id: u64) -> String {
    if id == SYSTEM { "Beacon (automatic)".into() } else { format!("<@{id}>") }
}

/// The ticket embed: status chip, opener, claimer, last update.
pub fn embed(t: &Ticket) -> Embed {
    let mut status = t.status.chip().to_owned();
    if let (Status::Claimed | Status::Escalated | Status::WaitingForUser, Some(by)) = (t.status, t.claimed_by) {
        status.push_str(&format!(" · claimed by <@{by}>"));
    }
    let mut b = EmbedBuilder::new()
        .title(format!("Ticket {} — {}", t.label(), truncate(&t.topic, 200)))
        .description(truncate(&t.topic, 2000))
        .color(t.status.color())
        .field(EmbedFieldBuilder::new("Status", status).inline())
        .field(EmbedFieldBuilder::new("Opened by", format!("<@{}>", t.opener_id)).inline())
        .field(EmbedFieldBuilder::new(
            "Last update",
            format!("<t:{}:R> by {}", t.updated_at / 1000, who(t.updated_by)),
        ));
    // The panel form's answers; at most 5 × 800 characters keeps the embed under Discord's 6,000.
    for a in &t.answers {
        let answer = if a.answer.trim().is_empty() { "—".to_owned() } else { truncate(&a.answer, 800) };
        b = b.field(EmbedFieldBuilder::new(truncate(&a.question, 256), answer));
    }
    if let Some(r) = t.rating {
        b = b.field(EmbedFieldBuilder::new("Feedback", format!("{}/5", r)).inline());
    }
    b.build()
}

/// The status buttons under the ticket embed.
pub fn buttons(t: &Ticket) -> Vec<Component> {
    let n = t.number;
    if t.status == Status::Closed {
        return vec![row(vec![button(format!("tickets:reopen:{n}"), "Reopen", ButtonStyle::Secondary)])];
    }
    vec![
        row(vec![
            button(format!("tickets:claim:{n}"), "Claim", ButtonStyle::Primary),
            button(format!("tickets:wait:{n}"), "Wait for user", ButtonStyle::Secondary),
            button(format!("tickets:escalate:{n}"), "Escalate", ButtonStyle::Danger),
            button(format!("tickets:suggest:{n}"), "Suggest reply", ButtonStyle::Secondary),
        ]),
        row(vec![
            button(format!("tickets:resolve:{n}"), "Resolved", ButtonStyle::Success),
            button(format!("tickets:close:{n}"), "Close", ButtonStyle::Danger),
        ]),
    ]
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// What a member or role needs to take part in a ticket channel.
fn talk() -> Permissions {
    Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::READ_MESSAGE_HISTORY
        | Permissions::ATTACH_FILES
}

fn role_mentions(roles: &[u64]) -> AllowedMentions {
    AllowedMentions { roles: roles.iter().map(|r| Id::new(*r)).collect(), ..AllowedMentions::default() }
}

impl Desk {
    fn repo(&self, guild: &GuildStore) -> Repo {
        Repo::new(guild.clone())
    }

    pub(crate) async fn ids(&self, guild: &GuildStore, key: &str) -> HandlerResult<Vec<u64>> {
        Ok(self.app.settings.get_ids(guild, key).await?)
    }

    async fn duration(&self, guild: &GuildStore, key: &str) -> HandlerResult<Duration> {
        Ok(self.app.settings.get_duration(guild, key).await?)
    }

    /// The staff roles of ticket `t`: its panel's staff role, else the guild's staff roles.
    pub(crate) async fn staff_roles(&self, guild: &GuildStore, t: &Ticket) -> HandlerResult<Vec<u64>> {
        if let Some(id) = t.panel_id
            && let Some(role) = self.repo(guild).panel(id).await?.and_then(|p| p.staff_role_id)
        {
            return Ok(vec![role]);
        }
        self.ids(guild, core_settings::STAFF_ROLES).await
    }

    /// Loads a ticket or explains that there is none.
    pub async fn ticket(&self, guild: &GuildStore, number: i64) -> HandlerResult<Ticket> {
        self.repo(guild)
            .get(number)
            .await?
            .ok_or_else(|| HandlerError::user(format!("There is no ticket #{number:04} here.")))
    }

    /// Opens a ticket for `req.user` (who holds `req.roles`): where its panel says, else in
    /// `tickets.channel` (or `req.fallback_channel`) or, in channel mode, `tickets.category`.
    /// Checks the blocklist, the required roles, the open-ticket limit and the cooldown.
    pub async fn open(&self, guild: &GuildStore, req: Opening<'_>) -> HandlerResult<Ticket> {
        let Opening { user, roles, topic, conversation: attachment_text, fallback_channel, panel, answers } = req;
        let settings = &self.app.settings;
        let repo = self.repo(guild);
        if let Some(reason) = repo.block_reason(user).await? {
            let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
            return Err(HandlerError::user(format!(
                "You can't open tickets in this server{why}. If you think this is a mistake, ask a moderator."
            )));
        }
        let required = self.ids(guild, keys::REQUIRED_ROLES).await?;
        if !required.is_empty() && !roles.iter().any(|r| required.contains(r)) {
            let list: Vec<String> = required.iter().map(|r| format!("<@&{r}>")).collect();
            return Err(HandlerError::user(format!(
                "You need one of these roles to open a ticket: {}.",
                list.join(", ")
            )));
        }
        let max_open = settings.get_i64(guild, keys::MAX_OPEN).await?;
        let open = repo.open_count(user).await?;
        if open >= max_open {
            return Err(HandlerError::user(format!(
                "You already have {open} open ticket(s), the most allowed here is {max_open}. Please continue in your open ticket."
            )));
        }
        let now = now_ms();
        let cooldown = ms(self.duration(guild, keys::COOLDOWN).await?);
        if cooldown > 0
            && let Some(last) = repo.last_opened_at(user).await?
            && now - last < cooldown
        {
            return Err(HandlerError::user(format!(
                "You opened a ticket recently. You can open another <t:{}:R>.",
                (last + cooldown) / 1000 + 1
            )));
        }
        let destination = self.destination(guild, panel, fallback_channel).await?;
        let topic = truncate(topic.trim(), 1000);
        let topic = if topic.is_empty() { "No topic given".to_owned() } else { topic };
        let mut ticket = repo.create(user, &topic, panel.map(|p| p.id), answers, now).await?;
        // The panel's staff role, else the guild's staff roles.
        let staff = match panel.and_then(|p| p.staff_role_id) {
            Some(role) => vec![role],
            None => self.ids(guild, core_settings::STAFF_ROLES).await?,
        };
        let created = match destination {
            Destination::Channel(category) => self.create_channel(guild, &ticket, user, &staff, category).await,
            Destination::Thread(parent) => self.create_thread(&ticket, user, parent).await,
        };
        let channel_id = match created {
            Ok(id) => id,
            Err(e) => {
                // No place to talk: the ticket must not count against the member's limit.
                ticket.status = Status::Closed;
                ticket.closed_at = Some(now);
                ticket.closed_by = Some(SYSTEM);
                repo.save(&ticket).await?;
                return Err(e);
            }
        };
        let http = &self.app.http;
        let mut mention = format!("<@{user}>");
        for r in &staff {
            mention.push_str(&format!(" <@&{r}>"));
        }
        // Mentioning the member and the staff roles is what adds them to a private thread.
        let mut allowed = role_mentions(&staff);
        allowed.users = vec![Id::new(user)];
        let embeds = [embed(&ticket)];
        let components = buttons(&ticket);
        let message = http
            .create_message(Id::new(channel_id))
            .content(&mention)
            .embeds(&embeds)
            .components(&components)
            .allowed_mentions(Some(&allowed))
            .await?
            .model()
            .await?;
        repo.set_channel(ticket.number, channel_id, Some(message.id.get())).await?;
        ticket.channel_id = Some(channel_id);
        ticket.message_id = Some(message.id.get());
        if let Some(text) = attachment_text.filter(|t| !t.trim().is_empty()) {
            let excerpt = truncate(text.trim(), 1500);
            let quoted: String = excerpt.lines().map(|l| format!("> {l}\n")).collect::<String>();
            let attachment = Attachment::from_bytes("conversation.txt".into(), text.as_bytes().to_vec(), 1);
            http.create_message(Id::new(channel_id))
                .content(&format!("**Conversation before this ticket:**\n{}", truncate(&quoted, 1900)))
                .attachments(&[attachment])
                .await?;
        }
        repo.record_event(ticket.number, user, "open", None, Some(Status::Open), now).await?;
        self.schedule_sla(guild, &ticket).await?;
        self.schedule_autoclose(guild, &ticket, now).await?;
        tracing::info!(guild_id = guild.id(), ticket = ticket.number, "ticket opened");
        Ok(ticket)
    }

    /// Where a new ticket goes: the panel's own channel or category, else the guild's settings.
    async fn destination(
        &self,
        guild: &GuildStore,
        panel: Option<&Panel>,
        fallback_channel: Option<u64>,
    ) -> HandlerResult<Destination> {
        if let Some(p) = panel {
            if let Some(category) = p.category_id {
                return Ok(Destination::Channel(Some(category)));
            }
            if let Some(channel) = p.channel_id {
                return Ok(Destination::Thread(channel));
            }
        }
        if self.app.settings.get_string(guild, keys::MODE).await? == "channel" {
            return Ok(Destination::Channel(self.ids(guild, keys::CATEGORY).await?.first().copied()));
        }
        let parent = self.ids(guild, keys::CHANNEL).await?.first().copied().or(fallback_channel).ok_or_else(|| {
            HandlerError::user("Tickets need a channel: an admin can set one with `/config set key:tickets.channel`.")
        })?;
        Ok(Destination::Thread(parent))
    }

    async fn create_thread(&self, t: &Ticket, user: u64, parent: u64) -> HandlerResult<u64> {
        let name = format!("ticket-{:04}", t.number);
        let thread = self
            .app
            .http
            .create_thread(Id::new(parent), &name, ChannelType::PrivateThread)
            .invitable(false)
            .await?
            .model()
            .await?;
        self.app.http.add_thread_member(thread.id, Id::new(user)).await?;
        Ok(thread.id.get())
    }

    async fn create_channel(
        &self,
        guild: &GuildStore,
        t: &Ticket,
        user: u64,
        staff: &[u64],
        category: Option<u64>,
    ) -> HandlerResult<u64> {
        let talk = talk();
        use twilight_model::channel::permission_overwrite::{
            PermissionOverwrite as Overwrite, PermissionOverwriteType as Target,
        };
        let mut overwrites = vec![
            Overwrite {
                allow: Permissions::empty(),
                deny: Permissions::VIEW_CHANNEL,
                id: Id::new(guild.id()),
                kind: Target::Role,
            },
            Overwrite { allow: talk, deny: Permissions::empty(), id: Id::new(user), kind: Target::Member },
        ];
        if let Some(app_id) = self.app.application_id() {
            overwrites.push(Overwrite {
                allow: talk | Permissions::MANAGE_CHANNELS | Permissions::EMBED_LINKS,
                deny: Permissions::empty(),
                id: app_id.cast(),
                kind: Target::Member,
            });
        }
        for r in staff {
            overwrites.push(Overwrite { allow: talk, deny: Permissions::empty(), id: Id::new(*r), kind: Target::Role });
        }
        let name = format!("ticket-{:04}", t.number);
        let mut req = self
            .app
            .http
            .create_guild_channel(Id::new(guild.id()), &name)
            .kind(ChannelType::GuildText)
            .permission_overwrites(&overwrites);
        if let Some(c) = category {
            req = req.parent_id(Id::new(c));
        }
        let channel = req.await?.model().await?;
        Ok(channel.id.get())
    }

    async fn schedule_sla(&self, guild: &GuildStore, t: &Ticket) -> HandlerResult {
        let now = now_ms();
        for (clock, key) in [("first_response", keys::FIRST_RESPONSE_SLA), ("resolution", keys::RESOLUTION_SLA)] {
            let sla = ms(self.duration(guild, key).await?);
            let needed = match clock {
                "first_response" => t.first_response_at.is_none() && !t.first_response_breached,
                _ => !t.resolution_breached,
            };
            if sla == 0 || !needed {
                continue;
            }
            let due = now + (sla - t.sla_elapsed(now)).max(0);
            self.jobs
                .schedule(
                    guild.id(),
                    JOB_SLA,
                    &json!({"ticket": t.number, "clock": clock}),
                    due,
                    Some(&format!("ticket:{}:sla:{clock}", t.number)),
                )
                .await
                .map_err(HandlerError::internal)?;
        }
        Ok(())
    }

    async fn cancel_sla(&self, guild: &GuildStore, t: &Ticket) -> HandlerResult {
        self.jobs
            .cancel_prefix(guild.id(), &format!("ticket:{}:sla:", t.number))
            .await
            .map_err(HandlerError::internal)?;
        Ok(())
    }

    /// (Re)schedules the inactivity auto-close, counted from `from`.
    pub(crate) async fn schedule_autoclose(&self, guild: &GuildStore, t: &Ticket, from: i64) -> HandlerResult {
        let after = ms(self.duration(guild, keys::AUTO_CLOSE).await?);
        if after == 0 {
            return Ok(());
        }
        self.jobs
            .schedule(
                guild.id(),
                JOB_AUTOCLOSE,
                &json!({"ticket": t.number}),
                from + after,
                Some(&format!("ticket:{}:autoclose", t.number)),
            )
            .await
            .map_err(HandlerError::internal)?;
        Ok(())
    }

    /// Moves a ticket to `to` (not `closed`: see [`Desk::close`]). Returns the updated ticket;
    /// the caller shows it (a button updates its own message, others call [`Desk::refresh`]).
    pub async fn set_status(&self, guild: &GuildStore, number: i64, to: Status, actor: u64) -> HandlerResult<Ticket> {
        if to == Status::Closed {
            return self.close(guild, number, actor, None).await;
        }
        let mut t = self.ticket(guild, number).await?;
        let from = t.status;
        if from == Status::Closed {
            return Err(HandlerError::user(format!("Ticket {} is closed. Reopen it first.", t.label())));
        }
        if from == to && to != Status::Claimed {
            return Err(HandlerError::user(format!("Ticket {} is already {}.", t.label(), to.chip())));
        }
        let now = now_ms();
        if from == Status::WaitingForUser
            && let Some(since) = t.paused_since.take()
        {
            t.paused_ms += (now - since).max(0);
        }
        // The member answering a wait returns the ticket to its claimer; only staff claim.
        let claim = to == Status::Claimed && !(actor == t.opener_id && t.claimed_by.is_some());
        match to {
            Status::Claimed if claim => {
                if t.claimed_by == Some(actor) && from == Status::Claimed {
                    return Err(HandlerError::user(format!("You already claimed ticket {}.", t.label())));
                }
                t.claimed_by = Some(actor);
            }
            Status::WaitingForUser => t.paused_since = Some(now),
            _ => {}
        }
        t.status = to;
        t.updated_at = now;
        t.updated_by = actor;
        let repo = self.repo(guild);
        repo.save(&t).await?;
        let kind = if claim { "claim" } else { "status" };
        repo.record_event(t.number, actor, kind, Some(from), Some(to), now).await?;
        if to == Status::WaitingForUser {
            self.cancel_sla(guild, &t).await?;
        } else if from == Status::WaitingForUser {
            self.schedule_sla(guild, &t).await?;
        }
        if claim
            && actor != SYSTEM
            && let Some(c) = t.channel_id
            && self.is_thread(c).await?
            && let Err(e) = self.app.http.add_thread_member(Id::new(c), Id::new(actor)).await
        {
            tracing::warn!(error = %e, "adding the claimer to the ticket thread failed");
        }
        self.announce(guild, &t, from, actor).await?;
        if to == Status::Escalated {
            self.escalate(guild, &t, actor).await?;
        }
        Ok(t)
    }

    /// Whom a status change made by `actor` notifies when `tickets.ping_on_status` is on: the
    /// member, unless they made the change themselves; then the staff member who claimed the
    /// ticket. Nobody is pinged about their own change.
    fn status_ping(t: &Ticket, actor: u64) -> Option<u64> {
        let target = if actor == t.opener_id { t.claimed_by } else { Some(t.opener_id) };
        target.filter(|&u| u != actor)
    }

    /// `text` prefixed with the mention of whom the change notifies (see [`Desk::status_ping`]),
    /// and the allowed mentions that ping exactly them (nobody when the guild does not want it).
    async fn with_status_ping(
        &self,
        guild: &GuildStore,
        t: &Ticket,
        actor: u64,
        text: String,
    ) -> HandlerResult<(String, AllowedMentions)> {
        let mut allowed = AllowedMentions::default();
        if !self.app.settings.get_bool(guild, keys::PING_ON_STATUS).await? {
            return Ok((text, allowed));
        }
        match Self::status_ping(t, actor) {
            Some(user) => {
                allowed.users = vec![Id::new(user)];
                Ok((format!("<@{user}> {text}"), allowed))
            }
            None => Ok((text, allowed)),
        }
    }

    /// Posts the status change in the ticket, pinging whom it concerns when the guild wants that.
    async fn announce(&self, guild: &GuildStore, t: &Ticket, from: Status, actor: u64) -> HandlerResult {
        let Some(channel) = t.channel_id else {
            return Ok(());
        };
        let text = format!("{} → **{}** by {}", from.chip(), t.status.chip(), who(actor));
        let (text, allowed) = self.with_status_ping(guild, t, actor, text).await?;
        self.app.http.create_message(Id::new(channel)).content(&text).allowed_mentions(Some(&allowed)).await?;
        Ok(())
    }

    /// Tells the escalation roles (in `tickets.escalation_channel`, else in the ticket) and
    /// lets them into the ticket: an overwrite on a ticket channel; in a private thread, a
    /// silent mention (which is what adds a role's members to a private thread) when the ping
    /// itself went to the escalation channel.
    async fn escalate(&self, guild: &GuildStore, t: &Ticket, actor: u64) -> HandlerResult {
        let roles = self.ids(guild, keys::ESCALATION_ROLE).await?;
        let channel = self.ids(guild, keys::ESCALATION_CHANNEL).await?.first().copied();
        let role_text: String = roles.iter().map(|r| format!("<@&{r}> ")).collect();
        let link = t.channel_id.map(|c| format!(" in <#{c}>")).unwrap_or_default();
        let text = format!(
            "{role_text}Ticket {} was escalated by {}{link}: {}",
            t.label(),
            who(actor),
            truncate(&t.topic, 200)
        );
        let http = &self.app.http;
        if let Some(target) = channel.or(t.channel_id) {
            http.create_message(Id::new(target)).content(&text).allowed_mentions(Some(&role_mentions(&roles))).await?;
        }
        let Some(ticket_channel) = t.channel_id else {
            return Ok(());
        };
        if roles.is_empty() {
            return Ok(());
        }
        if self.is_thread(ticket_channel).await? {
            if channel.is_some_and(|c| c != ticket_channel) {
                http.create_message(Id::new(ticket_channel))
                    .content(&format!("{role_text}joined this ticket for the escalation."))
                    .flags(MessageFlags::SUPPRESS_NOTIFICATIONS)
                    .allowed_mentions(Some(&role_mentions(&roles)))
                    .await?;
            }
        } else {
            for r in &roles {
                let overwrite = PermissionOverwrite {
                    allow: Some(talk()),
                    deny: None,
                    id: Id::new(*r),
                    kind: PermissionOverwriteType::Role,
                };
                http.update_channel_permission(Id::new(ticket_channel), &overwrite).await?;
            }
        }
        Ok(())
    }

    /// Whether a ticket lives in a private thread (else it is a channel). Asked of Discord: the
    /// guild's mode may have changed since, and a panel may use another mode than the guild.
    pub(crate) async fn is_thread(&self, channel: u64) -> HandlerResult<bool> {
        let kind = self.app.http.channel(Id::new(channel)).await?.model().await?.kind;
        Ok(kind.is_thread())
    }

    /// Re-renders the ticket's embed message (after a change not made by its own buttons).
    pub async fn refresh(&self, t: &Ticket) -> HandlerResult {
        let (Some(channel), Some(message)) = (t.channel_id, t.message_id) else {
            return Ok(());
        };
        let embeds = [embed(t)];
        let components = buttons(t);
        self.app
            .http
            .update_message(Id::new(channel), Id::new(message))
            .embeds(Some(&embeds))
            .components(Some(&components))
            .await?;
        Ok(())
    }

    /// Closes a ticket: stores the transcript, links it in the log channel, asks for feedback,
    /// then archives the thread (or stops the member writing in a ticket channel).
    pub async fn close(
        &self,
        guild: &GuildStore,
        number: i64,
        actor: u64,
        reason: Option<&str>,
    ) -> HandlerResult<Ticket> {
        self.close_as(guild, number, actor, reason, false).await
    }

    /// Closes a ticket as resolved (staff): as [`Desk::close`], and with
    /// `tickets.learn_from_resolved` on, its question and staff's answers become knowledge
    /// (see [`crate::knowledge`]), with a staff button in the ticket to remove it.
    pub async fn resolve(&self, guild: &GuildStore, number: i64, actor: u64) -> HandlerResult<Ticket> {
        self.close_as(guild, number, actor, Some("Resolved"), true).await
    }

    /// Removes ticket `number`'s answer from the knowledge base; `false` when it had none there.
    pub async fn forget(&self, guild: &GuildStore, number: i64) -> HandlerResult<bool> {
        let removed = self.repo(guild).forget(number).await?;
        if removed {
            self.learned.announce(guild.id());
            tracing::info!(guild_id = guild.id(), ticket = number, "resolved ticket removed from the knowledge base");
        }
        Ok(removed)
    }

    /// Removes every resolved ticket of `guild` from the knowledge base (the setting was turned
    /// off) and announces the guild even when another process already removed them, so this
    /// process's knowledge base re-syncs too; returns how many there were.
    pub async fn forget_all(&self, guild: &GuildStore) -> HandlerResult<u64> {
        let removed = self.repo(guild).forget_all().await?;
        self.learned.announce(guild.id());
        Ok(removed)
    }

    async fn close_as(
        &self,
        guild: &GuildStore,
        number: i64,
        actor: u64,
        reason: Option<&str>,
        resolved: bool,
    ) -> HandlerResult<Ticket> {
        let mut t = self.ticket(guild, number).await?;
        if t.status == Status::Closed {
            return Err(HandlerError::user(format!("Ticket {} is already closed.", t.label())));
        }
        let from = t.status;
        let now = now_ms();
        if let Some(since) = t.paused_since.take() {
            t.paused_ms += (now - since).max(0);
        }
        t.status = Status::Closed;
        t.closed_at = Some(now);
        t.closed_by = Some(actor);
        t.updated_at = now;
        t.updated_by = actor;
        self.jobs.cancel_prefix(guild.id(), &format!("ticket:{}:", t.number)).await.map_err(HandlerError::internal)?;
        let lines = match t.channel_id {
            Some(c) => Some(self.fetch_lines(c).await?),
            None => None,
        };
        let html = match &lines {
            Some(lines) => {
                let name = guild.get().await?.map(|g| g.name).unwrap_or_default();
                Some(transcript::render(&name, &t, lines))
            }
            None => None,
        };
        let mut link = None;
        if let Some(html) = &html {
            let key = transcript::key_for(&t, now);
            match self.storage.put(&key, html.clone()).await {
                Ok(()) => {
                    link = Some(transcript::link_for(&self.app, &self.storage, &key));
                    // Expired with its ticket's close time by the retention kind `ticket
                    // transcripts` (`tickets.transcript_retention`, hourly housekeeping).
                    t.transcript_key = Some(key);
                }
                // The ticket still closes; the log message says the transcript is missing.
                Err(e) => tracing::error!(error = %e, ticket = t.number, "storing transcript failed"),
            }
        }
        let repo = self.repo(guild);
        repo.save(&t).await?;
        repo.record_event(t.number, actor, "close", Some(from), Some(Status::Closed), now).await?;
        self.log_close(guild, &t, actor, reason, link.as_deref(), html).await?;
        let learned = match (resolved, &lines) {
            (true, Some(lines)) if self.app.settings.get_bool(guild, keys::LEARN).await? => {
                match knowledge::compose(&t, lines) {
                    Some(k) => {
                        repo.learn(&k, actor, now).await?;
                        self.learned.announce(guild.id());
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if let Some(c) = t.channel_id {
            let http = &self.app.http;
            if learned {
                let forget = [row(vec![button(
                    format!("tickets:forget:{}", t.number),
                    "Remove from knowledge base",
                    ButtonStyle::Secondary,
                )])];
                http.create_message(Id::new(c))
                    .content("📚 Staff's answer here is now in the knowledge base (personal data removed), so Beacon can give it to the next member who asks the same question.")
                    .components(&forget)
                    .await?;
            }
            let mut text = format!("{} Ticket closed by {}.", Status::Closed.chip(), who(actor));
            if let Some(r) = reason {
                text.push_str(&format!(" Reason: {}", truncate(r, 300)));
            }
            let (text, allowed) = self.with_status_ping(guild, &t, actor, text).await?;
            http.create_message(Id::new(c)).content(&text).allowed_mentions(Some(&allowed)).await?;
            if self.app.settings.get_bool(guild, keys::FEEDBACK).await? {
                let rate = [row(vec![button(
                    format!("tickets:feedback:{}", t.number),
                    "Rate this ticket",
                    ButtonStyle::Primary,
                )])];
                let allowed = AllowedMentions { users: vec![Id::new(t.opener_id)], ..AllowedMentions::default() };
                http.create_message(Id::new(c))
                    .content(&format!("<@{}> how did we do? Rate your experience from 1 to 5.", t.opener_id))
                    .components(&rate)
                    .allowed_mentions(Some(&allowed))
                    .await?;
            }
            self.set_open_for_member(&t, false).await?;
        }
        tracing::info!(guild_id = guild.id(), ticket = t.number, "ticket closed");
        Ok(t)
    }

    /// Archives/unarchives the thread, or takes/gives the member's right to write in a channel.
    async fn set_open_for_member(&self, t: &Ticket, open: bool) -> HandlerResult {
        let Some(c) = t.channel_id else {
            return Ok(());
        };
        let http = &self.app.http;
        if !self.is_thread(c).await? {
            let talk = Permissions::SEND_MESSAGES;
            let view = Permissions::VIEW_CHANNEL | Permissions::READ_MESSAGE_HISTORY;
            let overwrite = PermissionOverwrite {
                allow: Some(if open { view | talk } else { view }),
                deny: (!open).then_some(talk),
                id: Id::new(t.opener_id),
                kind: PermissionOverwriteType::Member,
            };
            http.update_channel_permission(Id::new(c), &overwrite).await?;
        } else {
            http.update_thread(Id::new(c)).archived(!open).locked(!open).await?;
        }
        Ok(())
    }

    async fn fetch_lines(&self, channel: u64) -> HandlerResult<Vec<Line>> {
        let http = &self.app.http;
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = match before {
                Some(b) => {
                    http.channel_messages(Id::new(channel)).before(Id::new(b)).limit(100).await?.models().await?
                }
                None => http.channel_messages(Id::new(channel)).limit(100).await?.models().await?,
            };
            let n = page.len();
            for m in page {
                before = Some(m.id.get());
                let mut embeds = Vec::new();
                for e in &m.embeds {
                    let mut parts = Vec::new();
                    parts.extend(e.title.clone());
                    parts.extend(e.description.clone());
                    for f in &e.fields {
                        parts.push(format!("{}: {}", f.name, f.value));
                    }
                    if !parts.is_empty() {
                        embeds.push(parts.join("\n"));
                    }
                }
                out.push(Line {
                    author_id: m.author.id.get(),
                    author: m.author.global_name.clone().unwrap_or(m.author.name.clone()),
                    bot: m.author.bot,
                    at_ms: m.timestamp.as_micros() / 1000,
                    content: m.content.clone(),
                    attachments: m.attachments.iter().map(|a| (a.filename.clone(), a.url.clone())).collect(),
                    embeds,
                });
            }
            if n < 100 || out.len() >= TRANSCRIPT_MAX_MESSAGES {
                break;
            }
        }
        out.sort_by_key(|l| l.at_ms);
        Ok(out)
    }

    async fn log_close(
        &self,
        guild: &GuildStore,
        t: &Ticket,
        actor: u64,
        reason: Option<&str>,
        link: Option<&str>,
        html: Option<String>,
    ) -> HandlerResult {
        let Some(log) = self.ids(guild, core_settings::LOG_CHANNEL).await?.first().copied() else {
            return Ok(());
        };
        let open_for = t.closed_at.unwrap_or(t.updated_at) - t.created_at;
        let mut b = EmbedBuilder::new()
            .title(format!("Ticket {} closed", t.label()))
            .description(truncate(&t.topic, 500))
            .color(Status::Closed.color())
            .field(EmbedFieldBuilder::new("Opened by", format!("<@{}>", t.opener_id)).inline())
            .field(EmbedFieldBuilder::new("Closed by", who(actor)).inline())
            .field(EmbedFieldBuilder::new("Open for", crate::text::duration(open_for)).inline())
            .field(EmbedFieldBuilder::new(
                "Transcript",
                link.map_or_else(
                    || "not stored (see the logs)".to_owned(),
                    |l| format!("{l}\nAuthorized staff: `/ticket transcript id:{}`", t.number),
                ),
            ));
        if let Some(r) = reason {
            b = b.field(EmbedFieldBuilder::new("Reason", truncate(r, 500)));
        }
        let embeds = [b.build()];
        let mut req = self.app.http.create_message(Id::new(log)).embeds(&embeds);
        let files;
        if let Some(html) = html {
            files = [Attachment::from_bytes(format!("ticket-{:04}.html", t.number), html.into_bytes(), 1)];
            req = req.attachments(&files);
        }
        req.await?;
        Ok(())
    }

    /// Adds `user` to ticket `number` (a private thread's member, or a channel overwrite that
    /// lets them read and write), or with `add = false` takes them out again. The member who
    /// opened the ticket always stays. Announced in the ticket, pinging only `user`.
    pub async fn set_member(&self, guild: &GuildStore, number: i64, user: u64, add: bool, actor: u64) -> HandlerResult {
        let t = self.ticket(guild, number).await?;
        if t.status == Status::Closed {
            return Err(HandlerError::user(format!("Ticket {} is closed; reopen it first.", t.label())));
        }
        if !add && user == t.opener_id {
            return Err(HandlerError::user("The member who opened the ticket stays in it."));
        }
        let channel =
            t.channel_id.ok_or_else(|| HandlerError::user(format!("Ticket {} has no channel.", t.label())))?;
        if self.is_thread(channel).await? {
            if add {
                self.app.http.add_thread_member(Id::new(channel), Id::new(user)).await?;
            } else {
                self.app.http.remove_thread_member(Id::new(channel), Id::new(user)).await?;
            }
        } else if add {
            let overwrite = PermissionOverwrite {
                allow: Some(talk()),
                deny: None,
                id: Id::new(user),
                kind: PermissionOverwriteType::Member,
            };
            self.app.http.update_channel_permission(Id::new(channel), &overwrite).await?;
        } else {
            self.app.http.delete_channel_permission(Id::new(channel)).member(Id::new(user)).await?;
        }
        let now = now_ms();
        let kind = if add { "member_added" } else { "member_removed" };
        self.repo(guild).record_event(t.number, actor, kind, None, None, now).await?;
        let text = if add {
            format!("<@{actor}> added <@{user}> to this ticket.")
        } else {
            format!("<@{actor}> removed <@{user}> from this ticket.")
        };
        let allowed = AllowedMentions { users: vec![Id::new(user)], ..AllowedMentions::default() };
        self.app.http.create_message(Id::new(channel)).content(&text).allowed_mentions(Some(&allowed)).await?;
        Ok(())
    }

    /// Reopens a closed ticket.
    pub async fn reopen(&self, guild: &GuildStore, number: i64, actor: u64) -> HandlerResult<Ticket> {
        let mut t = self.ticket(guild, number).await?;
        if t.status != Status::Closed {
            return Err(HandlerError::user(format!("Ticket {} is not closed.", t.label())));
        }
        let now = now_ms();
        t.status = if t.claimed_by.is_some() { Status::Claimed } else { Status::Open };
        t.closed_at = None;
        t.closed_by = None;
        t.updated_at = now;
        t.updated_by = actor;
        t.last_activity_at = now;
        t.reopened_count += 1;
        // The clocks start over for the reopened problem: the time it spent closed (and before)
        // is set aside as paused time, so a reopen never fires a breach for time nobody could act
        // on. `created_at` stays what it was, for stats and exports.
        t.paused_ms = (now - t.created_at).max(0);
        t.paused_since = None;
        t.resolution_breached = false;
        let repo = self.repo(guild);
        // Unarchive before anything is posted in the thread.
        self.set_open_for_member(&t, true).await?;
        repo.save(&t).await?;
        repo.record_event(t.number, actor, "reopen", Some(Status::Closed), Some(t.status), now).await?;
        // A reopened ticket is not resolved: its answer leaves the knowledge base until it is again.
        self.forget(guild, t.number).await?;
        self.schedule_sla(guild, &t).await?;
        self.schedule_autoclose(guild, &t, now).await?;
        self.announce(guild, &t, Status::Closed, actor).await?;
        Ok(t)
    }

    /// A message in a ticket: activity for auto-close, the first response when staff write,
    /// and the end of a wait when the member answers.
    pub async fn on_message(&self, guild: &GuildStore, channel: u64, author: u64, at: i64) -> HandlerResult {
        let repo = self.repo(guild);
        let Some(t) = repo.by_channel(channel).await? else {
            return Ok(());
        };
        if t.status == Status::Closed {
            return Ok(());
        }
        repo.touch(t.number, at).await?;
        self.schedule_autoclose(guild, &t, at).await?;
        if author == t.opener_id {
            if t.status == Status::WaitingForUser {
                let to = if t.claimed_by.is_some() { Status::Claimed } else { Status::Open };
                let t = self.set_status(guild, t.number, to, author).await?;
                self.refresh(&t).await?;
            }
        } else if repo.first_response(t.number, author, at).await? {
            self.jobs
                .cancel(guild.id(), &format!("ticket:{}:sla:first_response", t.number))
                .await
                .map_err(HandlerError::internal)?;
        }
        Ok(())
    }
}
