//! `/setup`: a new server's first run. It sets the essentials in one command — the support
//! channel, where tickets open (private threads in a channel, or channels), the staff role — and
//! checks that the bot can actually do its work there (read, post, create threads), naming any
//! missing permission and where to give it. Run without options, it only checks.
//!
//! Settings are written through the settings service (validated and audited like `/config`);
//! a step whose module is not installed is skipped.

use std::sync::Arc;

use beacon_framework::app::App;
use beacon_framework::{
    Access, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, OptionSpec, Reply, async_trait,
};
use serde_json::{Value, json};
use twilight_model::channel::ChannelType;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};
use twilight_util::permission_calculator::PermissionCalculator;

use crate::COLOR;

/// The settings `/setup` writes (owned by the support, ticket and core modules).
mod keys {
    pub const SUPPORT_CHANNELS: &str = "support.channels";
    pub const SUPPORT_THREADS: &str = "support.reply_in_thread";
    pub const TICKETS_ENABLED: &str = "tickets.enabled";
    pub const TICKETS_MODE: &str = "tickets.mode";
    pub const TICKETS_CHANNEL: &str = "tickets.channel";
    pub const STAFF_ROLES: &str = "core.staff_roles";
}

/// `/setup`: the guided first run.
pub struct SetupModule;

/// What the bot needs in a support channel.
fn support_needs(threads: bool) -> Permissions {
    let base = Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::READ_MESSAGE_HISTORY
        | Permissions::EMBED_LINKS
        | Permissions::ADD_REACTIONS;
    if threads { base | Permissions::CREATE_PUBLIC_THREADS | Permissions::SEND_MESSAGES_IN_THREADS } else { base }
}

/// What the bot needs where tickets open as private threads.
fn ticket_thread_needs() -> Permissions {
    Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::CREATE_PRIVATE_THREADS
        | Permissions::SEND_MESSAGES_IN_THREADS
        | Permissions::MANAGE_THREADS
        | Permissions::READ_MESSAGE_HISTORY
        | Permissions::EMBED_LINKS
        | Permissions::ATTACH_FILES
}

/// Discord's names for the permissions, as an admin sees them in the client.
fn names(missing: Permissions) -> String {
    const NAMES: [(Permissions, &str); 12] = [
        (Permissions::VIEW_CHANNEL, "View Channel"),
        (Permissions::SEND_MESSAGES, "Send Messages"),
        (Permissions::READ_MESSAGE_HISTORY, "Read Message History"),
        (Permissions::EMBED_LINKS, "Embed Links"),
        (Permissions::ADD_REACTIONS, "Add Reactions"),
        (Permissions::CREATE_PUBLIC_THREADS, "Create Public Threads"),
        (Permissions::CREATE_PRIVATE_THREADS, "Create Private Threads"),
        (Permissions::SEND_MESSAGES_IN_THREADS, "Send Messages in Threads"),
        (Permissions::MANAGE_THREADS, "Manage Threads"),
        (Permissions::ATTACH_FILES, "Attach Files"),
        (Permissions::MANAGE_CHANNELS, "Manage Channels"),
        (Permissions::MANAGE_ROLES, "Manage Permissions"),
    ];
    NAMES.iter().filter(|(p, _)| missing.contains(*p)).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

/// The bot's permissions in a guild: its guild-wide ones and, per channel, the effective ones.
struct BotPermissions {
    everyone: Permissions,
    roles: Vec<(Id<twilight_model::id::marker::RoleMarker>, Permissions)>,
    guild_id: u64,
    bot_id: u64,
}

impl BotPermissions {
    async fn load(app: &App, guild_id: u64) -> Result<BotPermissions, HandlerError> {
        let bot = app.http.current_user().await?.model().await?;
        let roles = app.http.roles(Id::new(guild_id)).await?.models().await?;
        let member = app.http.guild_member(Id::new(guild_id), bot.id).await?.model().await?;
        let everyone = roles.iter().find(|r| r.id.get() == guild_id).map_or(Permissions::empty(), |r| r.permissions);
        let roles = roles.iter().filter(|r| member.roles.contains(&r.id)).map(|r| (r.id, r.permissions)).collect();
        Ok(BotPermissions { everyone, roles, guild_id, bot_id: bot.id.get() })
    }

    fn calculator(&self) -> PermissionCalculator<'_> {
        PermissionCalculator::new(Id::new(self.guild_id), Id::new(self.bot_id), self.everyone, &self.roles)
    }

    /// What the bot lacks of `needed` in `channel_id`.
    async fn missing_in(&self, app: &App, channel_id: u64, needed: Permissions) -> Result<Permissions, HandlerError> {
        let channel = app.http.channel(Id::new(channel_id)).await?.model().await?;
        let overwrites = channel.permission_overwrites.unwrap_or_default();
        let have = self.calculator().in_channel(channel.kind, &overwrites);
        Ok(needed - have)
    }
}

/// One line of the check: what was checked and whether the bot can work there.
fn verdict(place: &str, missing: Permissions, doing: &str) -> String {
    if missing.is_empty() {
        format!("✅ {place}: the bot can {doing}.")
    } else {
        format!(
            "❌ {place}: the bot is missing **{}**. Give Beacon's role these in the channel's (or its category's) permissions.",
            names(missing)
        )
    }
}

impl SetupModule {
    /// Writes a setting when its module is installed; returns what was done, for the reply.
    async fn set(ctx: &CommandCtx, key: &str, value: Value) -> Result<Option<String>, HandlerError> {
        if ctx.app.settings.spec(key).is_none() {
            return Ok(None);
        }
        ctx.app.settings.set_value(&ctx.guild, key, &value, ctx.user_id()).await?;
        Ok(Some(format!("`{key}` set")))
    }

    /// Checks the support channels and the ticket channel as configured now.
    async fn check(app: &Arc<App>, guild: &beacon_store::GuildStore) -> Result<Vec<String>, HandlerError> {
        let bot = BotPermissions::load(app, guild.id()).await?;
        let mut lines = Vec::new();
        if app.settings.spec(keys::SUPPORT_CHANNELS).is_some() {
            let threads = app.settings.get_bool(guild, keys::SUPPORT_THREADS).await.unwrap_or(true);
            let channels = app.settings.get_ids(guild, keys::SUPPORT_CHANNELS).await?;
            if channels.is_empty() {
                lines.push("⚪ No support channel yet: questions are answered only through /ask and mentions.".into());
            }
            for channel in channels {
                let missing = bot.missing_in(app, channel, support_needs(threads)).await?;
                let doing =
                    if threads { "read questions, answer and open threads" } else { "read questions and answer" };
                lines.push(verdict(&format!("<#{channel}> (support)"), missing, doing));
            }
        }
        if app.settings.spec(keys::TICKETS_CHANNEL).is_some() {
            let enabled = app.settings.get_bool(guild, keys::TICKETS_ENABLED).await.unwrap_or(true);
            let mode = app.settings.get_string(guild, keys::TICKETS_MODE).await.unwrap_or_default();
            let channel = app.settings.get_ids(guild, keys::TICKETS_CHANNEL).await?.first().copied();
            match (enabled, channel) {
                (false, _) => lines.push("⚪ Tickets are off.".into()),
                (true, None) => lines.push("⚪ No ticket channel yet: members cannot open tickets.".into()),
                (true, Some(channel)) if mode == "channel" => {
                    let root = bot.calculator().root();
                    let missing = (Permissions::MANAGE_CHANNELS | Permissions::MANAGE_ROLES) - root;
                    lines.push(verdict(
                        &format!("<#{channel}> (tickets as channels)"),
                        missing,
                        "create ticket channels",
                    ));
                }
                (true, Some(channel)) => {
                    let missing = bot.missing_in(app, channel, ticket_thread_needs()).await?;
                    lines.push(verdict(
                        &format!("<#{channel}> (tickets)"),
                        missing,
                        "open private ticket threads and post transcripts",
                    ));
                }
            }
        }
        Ok(lines)
    }
}

#[async_trait]
impl Module for SetupModule {
    fn name(&self) -> &'static str {
        "setup"
    }

    fn description(&self) -> &'static str {
        "The first run in a new server"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("setup", "Set Beacon up in this server and check its permissions", Access::Authorized)
                .option(OptionSpec::channel(
                    "support_channel",
                    "Where every message is a question Beacon answers",
                    vec![ChannelType::GuildText],
                ))
                .option(OptionSpec::channel(
                    "ticket_channel",
                    "Where tickets open as private threads",
                    vec![ChannelType::GuildText],
                ))
                .option(OptionSpec::role("staff_role", "Members of this role answer tickets"))
                .option(OptionSpec::boolean("tickets", "Whether members may open tickets (default: on)")),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        ctx.responder.defer()?;
        let mut done = Vec::new();
        if let Some(channel) = ctx.options.channel("support_channel") {
            done.extend(Self::set(&ctx, keys::SUPPORT_CHANNELS, json!([channel.to_string()])).await?);
        }
        if let Some(channel) = ctx.options.channel("ticket_channel") {
            done.extend(Self::set(&ctx, keys::TICKETS_CHANNEL, json!([channel.to_string()])).await?);
            done.extend(Self::set(&ctx, keys::TICKETS_MODE, json!("thread")).await?);
        }
        if let Some(role) = ctx.options.role("staff_role") {
            done.extend(Self::set(&ctx, keys::STAFF_ROLES, json!([role.to_string()])).await?);
        }
        if let Some(on) = ctx.options.bool("tickets") {
            done.extend(Self::set(&ctx, keys::TICKETS_ENABLED, json!(on)).await?);
        }
        let checks = Self::check(&ctx.app, &ctx.guild).await?;
        let mut embed = EmbedBuilder::new().title("Beacon setup").color(COLOR);
        if !done.is_empty() {
            embed = embed.field(EmbedFieldBuilder::new("Done", done.join("\n")));
        }
        let all_good = checks.iter().all(|l| !l.starts_with('❌'));
        embed = embed.field(EmbedFieldBuilder::new("Checks", checks.join("\n")));
        let next = if all_good {
            "Everything Beacon needs is in place. Add knowledge with `/kb`, then try `/ask`."
        } else {
            "Fix the ❌ above, then run `/setup` again to check."
        };
        embed = embed.field(EmbedFieldBuilder::new("Next", next));
        ctx.reply(Reply::embed(embed.build()).ephemeral()).await
    }
}
