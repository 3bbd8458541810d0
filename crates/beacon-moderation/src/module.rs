//! The `moderation` module: its declarations and the Discord adapter.

use std::sync::Arc;

use beacon_framework::command::OptionKind;
use beacon_framework::{
    Access, App, CommandCtx, CommandSpec, ComponentCtx, EventCtx, ExportSpec, HandlerError, HandlerResult,
    InteractionCtx, JobKind, ModalCtx, Module, OptionSpec, Reply, SettingKind, SettingSpec, async_trait,
};
use beacon_store::{Schema, now_ms};
use serde_json::json;
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::{Event, EventType};
use twilight_model::guild::Permissions;

use crate::flow::{Action, JOB_TIMEOUT, JOB_UNBAN, Moderation};
use crate::model::{Case, CaseKind, Filter, Repo};
use crate::{ModerationModule, duration, keys, text};

const DAY: u64 = 86_400;

fn dur(min: u64, max: u64) -> SettingKind {
    SettingKind::Duration { min: std::time::Duration::from_secs(min), max: std::time::Duration::from_secs(max) }
}

pub(crate) fn settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            keys::LOG_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "The mod-log channel: one message per case, kept up to date (default: core.log_channel).",
        ),
        SettingSpec::new(
            keys::MODERATOR_ROLES,
            SettingKind::list(SettingKind::Role, 10),
            json!([]),
            "Roles whose members may moderate, besides staff (Discord's own permissions still apply).",
        ),
        SettingSpec::new(
            keys::DM_MEMBERS,
            SettingKind::Bool,
            json!(true),
            "Tell members by DM what was done and why (before a kick or ban).",
        ),
        SettingSpec::new(
            keys::APPEALS_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Where ban appeals go, with Accept and Deny (empty: bans carry no Appeal button).",
        ),
        SettingSpec::new(
            keys::APPEAL_COOLDOWN,
            dur(0, 365 * DAY),
            json!(7 * DAY),
            "How long after a denied appeal the member may appeal the same ban again.",
        ),
        SettingSpec::new(
            keys::ESCALATION_WARNINGS,
            SettingKind::Int { min: 0, max: 50 },
            json!(0),
            "Warnings within moderation.escalation_window that trigger the escalation (0 = off).",
        ),
        SettingSpec::new(
            keys::ESCALATION_WINDOW,
            dur(60, 3650 * DAY),
            json!(30 * DAY),
            "The period in which warnings count towards the escalation.",
        ),
        SettingSpec::new(
            keys::ESCALATION_ACTION,
            SettingKind::Enum(&["timeout", "kick", "ban"]),
            json!("timeout"),
            "What the escalation does, as its own case.",
        ),
        SettingSpec::new(
            keys::ESCALATION_DURATION,
            dur(0, 3650 * DAY),
            json!(3600),
            "How long an escalation's timeout or ban lasts (0 = a permanent ban).",
        ),
    ]
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

fn user(description: &'static str) -> OptionSpec {
    OptionSpec::user("user", description).required()
}

fn reason() -> OptionSpec {
    // Discord's audit log keeps at most 512 characters of a reason.
    OptionSpec::string("reason", "Why (the member and Discord's audit log see it)").max_length(400)
}

fn number() -> OptionSpec {
    OptionSpec::integer("number", "Case number", Some(1), None).required()
}

pub(crate) fn commands() -> Vec<CommandSpec> {
    let moderate = Permissions::MODERATE_MEMBERS;
    let cmd =
        |name, description, perms| CommandSpec::new(name, description, Access::Everyone).default_permissions(perms);
    let kinds = CaseKind::ALL.iter().map(|k| (k.title(), k.as_str())).collect();
    vec![
        cmd("warn", "Warn a member (moderators)", moderate)
            .option(user("The member to warn"))
            .option(reason().required()),
        cmd("timeout", "Time a member out (moderators)", moderate)
            .option(user("The member to time out"))
            .option(OptionSpec::string("duration", "How long, e.g. 10m, 2h, 7d, 1h30m").required().max_length(40))
            .option(reason()),
        cmd("untimeout", "Lift a member's timeout (moderators)", moderate).option(user("The member")).option(reason()),
        cmd("kick", "Kick a member (moderators)", Permissions::KICK_MEMBERS)
            .option(user("The member to kick"))
            .option(reason()),
        cmd("ban", "Ban a user, for good or for a while (moderators)", Permissions::BAN_MEMBERS)
            .option(user("The user to ban"))
            .option(OptionSpec::string("duration", "For how long, e.g. 7d (default: for good)").max_length(40))
            .option(reason())
            .option(string_choice(
                "delete_messages",
                "Delete their recent messages",
                vec![
                    ("Don't delete any", "0"),
                    ("Previous hour", "3600"),
                    ("Previous 6 hours", "21600"),
                    ("Previous 24 hours", "86400"),
                    ("Previous 3 days", "259200"),
                    ("Previous 7 days", "604800"),
                ],
            )),
        cmd("unban", "Lift a user's ban (moderators)", Permissions::BAN_MEMBERS)
            .option(user("The user to unban"))
            .option(reason()),
        cmd("note", "Keep a note on a member; they are not told (moderators)", moderate)
            .option(user("The member"))
            .option(OptionSpec::string("text", "The note").required().max_length(1000)),
        cmd("case", "Moderation cases (moderators)", moderate)
            .option(OptionSpec::subcommand("view", "Show a case and its history", vec![number()]))
            .option(OptionSpec::subcommand(
                "edit",
                "Change a case's reason (the old one stays in its history)",
                vec![number(), reason().required()],
            ))
            .option(OptionSpec::subcommand(
                "list",
                "The latest cases",
                vec![
                    OptionSpec::user("user", "Only this user's cases"),
                    string_choice("type", "Only this kind", kinds),
                ],
            )),
        cmd("history", "A member's cases (moderators)", moderate).option(user("The member")),
        CommandSpec::user_menu(MENU_WARN, Access::Everyone).default_permissions(moderate),
        CommandSpec::user_menu(MENU_TIMEOUT, Access::Everyone).default_permissions(moderate),
        CommandSpec::user_menu(MENU_BAN, Access::Everyone).default_permissions(Permissions::BAN_MEMBERS),
    ]
}

/// The user context-menu entries (right click on a member → Apps).
const MENU_WARN: &str = "Warn";
const MENU_TIMEOUT: &str = "Timeout";
const MENU_BAN: &str = "Ban";

/// A context-menu entry: its form (reason, and a duration for timeouts and bans).
fn menu_form(ctx: &CommandCtx, kind: CaseKind) -> HandlerResult {
    use beacon_framework::reply::components::text_input;
    use twilight_model::channel::message::component::TextInputStyle;
    let target = ctx.target_id.ok_or_else(|| HandlerError::user("Pick a member."))?;
    let mut inputs = Vec::new();
    match kind {
        CaseKind::Timeout => {
            inputs.push(text_input("duration", "How long? e.g. 10m, 2h, 7d", TextInputStyle::Short, 40).into())
        }
        CaseKind::Ban => inputs.push(
            text_input("duration", "For how long? (empty: for good)", TextInputStyle::Short, 40).optional().into(),
        ),
        _ => {}
    }
    let reason = text_input("reason", "Reason (the member sees it)", TextInputStyle::Paragraph, 400);
    inputs.push(if kind == CaseKind::Warn { reason } else { reason.optional() }.into());
    ctx.responder.modal(format!("moderation:menu:{}:{target}", kind.as_str()), kind.title(), inputs)
}

/// Staff, and members with one of the moderator roles, may moderate.
async fn require_moderator(ctx: &InteractionCtx) -> HandlerResult {
    if ctx.access >= Access::Staff {
        return Ok(());
    }
    let roles = ctx.app.settings.get_ids(&ctx.guild, keys::MODERATOR_ROLES).await?;
    if ctx.caller.roles.iter().any(|r| roles.contains(r)) {
        return Ok(());
    }
    Err(HandlerError::Forbidden(
        "Only staff and moderators can use this. An admin can add a moderator role with `/config set key:moderation.moderator_roles`.".into(),
    ))
}

/// What a moderator asked for, from a command's options or a form's fields.
struct Input<'a> {
    target: u64,
    reason: Option<&'a str>,
    duration: Option<&'a str>,
    delete_message_seconds: u32,
}

/// What the moderator is told once the action is done.
fn done(case: &Case) -> String {
    let how_long = case.duration_ms.map(|d| format!(" for {}", duration::format_ms(d))).unwrap_or_default();
    let what = match case.kind {
        CaseKind::Note => format!("Note added to <@{}>.", case.target_id),
        kind => format!("<@{}> {}{how_long}.", case.target_id, text::verb(kind)),
    };
    let dm = if case.kind == CaseKind::Note { String::new() } else { format!(" DM: {}.", text::dm_line(case)) };
    format!("Case {}: {what}{dm}", case.label())
}

impl ModerationModule {
    pub(crate) fn service(&self, app: &Arc<App>) -> Moderation {
        Moderation::new(app.clone(), self.bot.clone())
    }

    async fn action(&self, ctx: &CommandCtx, kind: CaseKind) -> HandlerResult {
        let target = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a user."))?;
        let text_option = if kind == CaseKind::Note { "text" } else { "reason" };
        let delete_message_seconds =
            ctx.options.str("delete_messages").and_then(|s| s.parse().ok()).unwrap_or(0u32).min(604_800);
        let input = Input {
            target,
            reason: ctx.options.str(text_option),
            duration: ctx.options.str("duration"),
            delete_message_seconds,
        };
        self.act(ctx, kind, input).await
    }

    /// Carries out one action asked for by a command, a context menu's form or a button.
    async fn act(&self, ctx: &InteractionCtx, kind: CaseKind, input: Input<'_>) -> HandlerResult {
        require_moderator(ctx).await?;
        let reason = input.reason.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("No reason given.");
        let duration = input
            .duration
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(duration::parse)
            .transpose()
            .map_err(|e| HandlerError::user(e.0))?;
        if kind == CaseKind::Timeout && duration.is_none() {
            return Err(HandlerError::user("Give the timeout's duration, e.g. `10m` or `2h`."));
        }
        let perms = ctx.caller.permissions.unwrap_or(Permissions::empty());
        let action = Action {
            actor: Some((&ctx.caller.roles, perms)),
            duration,
            delete_message_seconds: input.delete_message_seconds,
            ..Action::new(kind, input.target, ctx.user_id(), reason)
        };
        let m = self.service(&ctx.app);
        let case = m.act(&ctx.guild, &action).await?;
        let mut answer = done(&case);
        if let Some(escalated) = m.escalate(&ctx.guild, &case).await? {
            answer.push_str(&format!("\nEscalation: {}", done(&escalated)));
        }
        ctx.reply(Reply::text(answer).ephemeral()).await
    }

    async fn case_command(&self, ctx: &CommandCtx) -> HandlerResult {
        require_moderator(ctx).await?;
        let repo = Repo::new(ctx.guild.clone());
        let m = self.service(&ctx.app);
        match ctx.options.subcommand() {
            Some("view") => {
                let case = m.case(&ctx.guild, ctx.options.int("number").unwrap_or(0)).await?;
                let events = repo.events(case.number).await?;
                ctx.reply(Reply::embed(text::embed(&case, &events)).ephemeral()).await
            }
            Some("edit") => {
                let number = ctx.options.int("number").unwrap_or(0);
                let reason = ctx.options.str("reason").map(str::trim).filter(|r| !r.is_empty());
                let reason = reason.ok_or_else(|| HandlerError::user("Give the new reason."))?;
                let case = repo
                    .edit_reason(number, ctx.user_id(), reason, now_ms())
                    .await?
                    .ok_or_else(|| HandlerError::user(format!("There is no case #{number} in this server.")))?;
                m.publish(&ctx.guild, &case).await;
                ctx.reply(Reply::text(format!("Case {} now reads: {}", case.label(), case.reason)).ephemeral()).await
            }
            Some("list") => {
                let filter = Filter {
                    target_id: ctx.options.user("user"),
                    kind: ctx.options.str("type").and_then(CaseKind::parse),
                };
                self.list(ctx, filter, "Cases").await
            }
            _ => Err(HandlerError::user("Unknown /case subcommand.")),
        }
    }

    async fn list(&self, ctx: &CommandCtx, filter: Filter, title: &str) -> HandlerResult {
        let repo = Repo::new(ctx.guild.clone());
        let cases = repo.list(filter, 15).await?;
        let counts = repo.counts(filter).await?;
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return ctx.reply(Reply::text("No cases match.").ephemeral()).await;
        }
        let summary = counts.iter().map(|(k, n)| format!("{} {n}", k.title())).collect::<Vec<_>>().join(" · ");
        let mut body = format!("**{title}** — {total} in all ({summary})\n");
        for case in &cases {
            body.push_str(&text::list_line(case));
            body.push('\n');
        }
        if total > cases.len() as i64 {
            body.push_str(&format!("-# The latest {} are shown; /export cases has them all.", cases.len()));
        }
        ctx.reply(Reply::text(body).ephemeral()).await
    }
}

#[async_trait]
impl Module for ModerationModule {
    fn api_routes(&self, _app: &Arc<App>) -> Vec<beacon_framework::ApiRoute> {
        crate::api::routes()
    }

    fn pages(&self) -> Vec<beacon_framework::pages::PageSpec> {
        crate::api::pages()
    }

    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::personal_data()
    }

    fn name(&self) -> &'static str {
        "moderation"
    }

    fn description(&self) -> &'static str {
        "Cases, timed bans and timeouts, appeals and the mod log"
    }

    fn settings(&self) -> Vec<SettingSpec> {
        settings()
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![crate::model::SCHEMA]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        commands()
    }

    fn exports(&self) -> Vec<ExportSpec> {
        vec![
            ExportSpec::new(
                "cases",
                "Moderation cases created between two dates (YYYY-MM-DD, UTC)",
                Arc::new(crate::export::CaseExport),
            )
            .with_range(),
        ]
    }

    fn jobs(&self, app: &Arc<App>) -> Vec<JobKind> {
        let handler = Arc::new(crate::timers::ModerationJobs { moderation: self.service(app) });
        vec![JobKind::new(JOB_UNBAN, handler.clone()), JobKind::new(JOB_TIMEOUT, handler)]
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        let m = self.service(&ctx.app);
        let parts: Vec<&str> = ctx.action().split(':').collect();
        match parts.as_slice() {
            ["dm", _, "appeal", n] => crate::appeals::open_form(&m, &ctx, n.parse().unwrap_or(0)).await,
            [verb @ ("appeal-accept" | "appeal-deny"), id] => {
                require_moderator(&ctx).await?;
                crate::appeals::decide(&m, &ctx, id.parse().unwrap_or(0), *verb == "appeal-accept").await
            }
            _ => Err(HandlerError::user("This button is out of date.")),
        }
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        let m = self.service(&ctx.app);
        let parts: Vec<&str> = ctx.action().split(':').collect();
        match parts.as_slice() {
            ["dm", _, "appeal", n] => crate::appeals::submit(&m, &ctx, n.parse().unwrap_or(0)).await,
            ["menu", kind, target] => {
                let kind =
                    CaseKind::parse(kind).filter(|k| matches!(k, CaseKind::Warn | CaseKind::Timeout | CaseKind::Ban));
                let (Some(kind), Ok(target)) = (kind, target.parse::<u64>()) else {
                    return Err(HandlerError::user("This form is out of date."));
                };
                let input = Input {
                    target,
                    reason: ctx.field("reason"),
                    duration: ctx.field("duration"),
                    delete_message_seconds: 0,
                };
                self.act(&ctx, kind, input).await
            }
            _ => Err(HandlerError::user("This form is out of date.")),
        }
    }

    async fn event(&self, ctx: EventCtx) -> HandlerResult {
        if let Event::GuildAuditLogEntryCreate(entry) = ctx.event.as_ref() {
            let m = self.service(&ctx.app);
            return crate::audit::on_entry(&m, &ctx, &entry.0).await;
        }
        Ok(())
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.name.as_str() {
            "warn" => self.action(&ctx, CaseKind::Warn).await,
            "timeout" => self.action(&ctx, CaseKind::Timeout).await,
            "untimeout" => self.action(&ctx, CaseKind::Untimeout).await,
            "kick" => self.action(&ctx, CaseKind::Kick).await,
            "ban" => self.action(&ctx, CaseKind::Ban).await,
            "unban" => self.action(&ctx, CaseKind::Unban).await,
            "note" => self.action(&ctx, CaseKind::Note).await,
            MENU_WARN | MENU_TIMEOUT | MENU_BAN => {
                require_moderator(&ctx).await?;
                let kind = match ctx.name.as_str() {
                    MENU_WARN => CaseKind::Warn,
                    MENU_TIMEOUT => CaseKind::Timeout,
                    _ => CaseKind::Ban,
                };
                menu_form(&ctx, kind)
            }
            "case" => self.case_command(&ctx).await,
            "history" => {
                require_moderator(&ctx).await?;
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a user."))?;
                let filter = Filter { target_id: Some(user), kind: None };
                self.list(&ctx, filter, &format!("History of <@{user}>")).await
            }
            other => Err(HandlerError::internal(format!("moderation does not handle /{other}"))),
        }
    }

    fn intents(&self) -> Intents {
        // GUILD_AUDIT_LOG_ENTRY_CREATE: actions made in Discord's own UI become cases.
        Intents::GUILD_MODERATION
    }

    fn events(&self) -> &'static [EventType] {
        &[EventType::GuildAuditLogEntryCreate]
    }

    fn permissions(&self) -> Permissions {
        Permissions::BAN_MEMBERS
            | Permissions::KICK_MEMBERS
            | Permissions::MODERATE_MEMBERS
            | Permissions::VIEW_AUDIT_LOG
            | Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::EMBED_LINKS
    }
}
