use beacon_framework::app::core_settings;
use beacon_framework::reply::components::{button, disabled, row};
use beacon_framework::settings::{SettingKind, SettingView};
use beacon_framework::{
    Access, AutocompleteCtx, Choice, CommandCtx, CommandSpec, ComponentCtx, HandlerError, HandlerResult,
    InteractionCtx, Module, OptionSpec, Reply, async_trait,
};
use beacon_store::SettingChange;
use twilight_model::channel::message::component::ButtonStyle;
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFooterBuilder};

use crate::COLOR;

/// Settings per page of `/config show`.
const PAGE_SIZE: usize = 8;

/// `/config`: view, change, reset, audit and revert the guild's settings.
pub struct ConfigModule;

#[async_trait]
impl Module for ConfigModule {
    fn name(&self) -> &'static str {
        "config"
    }

    fn description(&self) -> &'static str {
        "Per-server settings with history and undo"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let key = || OptionSpec::string("key", "Setting key, e.g. core.staff_roles").required().autocomplete();
        vec![
            CommandSpec::new("config", "View and change Beacon's settings for this server", Access::Authorized)
                .option(OptionSpec::subcommand(
                    "show",
                    "Show every setting and its value",
                    vec![OptionSpec::integer("page", "Page number", Some(1), Some(100))],
                ))
                .option(OptionSpec::subcommand(
                    "set",
                    "Change a setting",
                    vec![
                        key(),
                        OptionSpec::string(
                            "value",
                            "New value (channels as #name, roles as @role, lists comma-separated)",
                        )
                        .required()
                        .autocomplete()
                        .max_length(1000),
                    ],
                ))
                .option(OptionSpec::subcommand("reset", "Put a setting back to its default", vec![key()]))
                .option(OptionSpec::subcommand(
                    "history",
                    "Recent setting changes, newest first",
                    vec![OptionSpec::string("key", "Only this setting").autocomplete()],
                ))
                .option(OptionSpec::subcommand(
                    "revert",
                    "Undo a change from the history",
                    vec![OptionSpec::integer("change", "Change number from /config history", Some(1), None).required()],
                )),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.options.subcommand() {
            Some("show") => {
                let page = ctx.options.int("page").unwrap_or(1).max(1) as usize - 1;
                let reply = show_page(&ctx, page).await?;
                ctx.reply(reply).await
            }
            Some("set") => {
                let key = required(ctx.options.str("key"), "key")?;
                let value = required(ctx.options.str("value"), "value")?;
                let change = ctx.app.settings.set_from_input(&ctx.guild, key, value, ctx.user_id()).await?;
                announce(&ctx, &change).await;
                ctx.reply(Reply::text(change_text(&ctx, &change, "changed")).ephemeral()).await
            }
            Some("reset") => {
                let key = required(ctx.options.str("key"), "key")?;
                let change = ctx.app.settings.reset(&ctx.guild, key, ctx.user_id()).await?;
                announce(&ctx, &change).await;
                ctx.reply(Reply::text(change_text(&ctx, &change, "reset to its default")).ephemeral()).await
            }
            Some("history") => {
                let key = ctx.options.str("key");
                let entries = ctx.app.settings.history(&ctx.guild, key, 15).await?;
                if entries.is_empty() {
                    return ctx.reply(Reply::text("No setting has been changed yet.").ephemeral()).await;
                }
                let lines: Vec<String> = entries
                    .iter()
                    .map(|e| {
                        let kind = ctx.app.settings.spec(&e.key).map(|s| s.kind.clone());
                        let show = |v: &Option<serde_json::Value>| match (&kind, v) {
                            (Some(k), Some(v)) => k.display(v),
                            _ => "default".to_owned(),
                        };
                        let undo = e.reverted_audit_id.map(|r| format!(" (undid #{r})")).unwrap_or_default();
                        format!(
                            "**#{}** <t:{}:R> <@{}> `{}`: {} → {}{}",
                            e.id,
                            e.at / 1000,
                            e.actor_id,
                            e.key,
                            show(&e.old),
                            show(&e.new),
                            undo
                        )
                    })
                    .collect();
                let embed = EmbedBuilder::new()
                    .title("Setting history")
                    .description(lines.join("\n"))
                    .color(COLOR)
                    .footer(EmbedFooterBuilder::new("Undo a change with /config revert change:<number>"))
                    .build();
                ctx.reply(Reply::embed(embed).ephemeral()).await
            }
            Some("revert") => {
                let id = ctx.options.int("change").ok_or_else(|| HandlerError::user("Give the change number."))?;
                let change = ctx.app.settings.revert(&ctx.guild, id, ctx.user_id()).await?;
                announce(&ctx, &change).await;
                ctx.reply(Reply::text(change_text(&ctx, &change, &format!("reverted (undoing #{id})"))).ephemeral())
                    .await
            }
            _ => Err(HandlerError::user("Unknown /config subcommand.")),
        }
    }

    async fn autocomplete(&self, ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        let Some((focused, typed)) = ctx.options.focused() else {
            return Ok(Vec::new());
        };
        let typed_lower = typed.to_lowercase();
        match focused {
            "key" => Ok(ctx
                .app
                .settings
                .specs()
                .filter(|s| typed.is_empty() || s.key.contains(typed_lower.as_str()))
                .map(|s| Choice::new(format!("{} — {}", s.key, s.description), s.key))
                .collect()),
            "value" => {
                let Some(spec) = ctx.options.str("key").and_then(|k| ctx.app.settings.spec(k)) else {
                    return Ok(Vec::new());
                };
                value_choices(&ctx, &spec.kind, &typed_lower).await
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        ctx.require(Access::Authorized)?;
        let page = ctx
            .action()
            .strip_prefix("page:")
            .and_then(|p| p.parse::<usize>().ok())
            .ok_or_else(|| HandlerError::user("This button is out of date; run /config show again."))?;
        let reply = show_page(&ctx, page).await?;
        ctx.responder.update(reply).await
    }
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, HandlerError> {
    value.ok_or_else(|| HandlerError::user(format!("The `{name}` option is required.")))
}

async fn show_page(ctx: &InteractionCtx, page: usize) -> Result<Reply, HandlerError> {
    let all: Vec<SettingView> = ctx.app.settings.all(&ctx.guild).await?;
    let pages = all.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.min(pages - 1);
    let mut embed = EmbedBuilder::new().title("Beacon settings").color(COLOR).footer(EmbedFooterBuilder::new(format!(
        "Page {}/{} · change with /config set · ✎ = changed from default",
        page + 1,
        pages
    )));
    let mut body = String::new();
    for view in all.iter().skip(page * PAGE_SIZE).take(PAGE_SIZE) {
        let marker = if view.overridden { " ✎" } else { "" };
        body.push_str(&format!(
            "**`{}`**{} ({})\n{}\n→ {}\n\n",
            view.spec.key,
            marker,
            view.spec.kind.type_name(),
            view.spec.description,
            view.spec.kind.display(&view.value)
        ));
    }
    embed = embed.description(body);
    let prev = button(format!("config:page:{}", page.saturating_sub(1)), "◀ Previous", ButtonStyle::Secondary);
    let next = button(format!("config:page:{}", page + 1), "Next ▶", ButtonStyle::Secondary);
    let prev = if page == 0 { disabled(prev) } else { prev };
    let next = if page + 1 >= pages { disabled(next) } else { next };
    Ok(Reply::embed(embed.build()).ephemeral().with_components(vec![row(vec![prev, next])]))
}

fn change_text(ctx: &InteractionCtx, change: &SettingChange, verb: &str) -> String {
    let spec = ctx.app.settings.spec(&change.key);
    let show = |v: &Option<serde_json::Value>| match (spec, v) {
        (Some(s), Some(v)) => s.kind.display(v),
        (Some(s), None) => format!("{} (default)", s.kind.display(&s.default)),
        (None, _) => "?".to_owned(),
    };
    format!(
        "`{}` {verb}: {} → {} (change #{}; undo with `/config revert change:{}`).",
        change.key,
        show(&change.old),
        show(&change.new),
        change.audit_id,
        change.audit_id
    )
}

/// Posts the change to the guild's log channel, when one is set. Best effort: the change is
/// already stored and audited.
async fn announce(ctx: &InteractionCtx, change: &SettingChange) {
    let channels = match ctx.app.settings.get_ids(&ctx.guild, core_settings::LOG_CHANNEL).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "reading log channel failed");
            return;
        }
    };
    let Some(channel) = channels.first() else {
        return;
    };
    let text = format!("⚙️ <@{}> {}", ctx.user_id(), change_text(ctx, change, "changed"));
    if let Err(e) = ctx.app.http.create_message(Id::new(*channel)).content(&text).await {
        tracing::warn!(error = %e, channel, "posting to log channel failed");
    }
}

async fn value_choices(ctx: &AutocompleteCtx, kind: &SettingKind, typed: &str) -> HandlerResult<Vec<Choice>> {
    let matches = |s: &str| typed.is_empty() || s.to_lowercase().contains(typed);
    let kind = match kind {
        SettingKind::List { of, .. } => of.as_ref(),
        other => other,
    };
    Ok(match kind {
        SettingKind::Bool => ["true", "false"].iter().filter(|s| matches(s)).map(|s| Choice::new(*s, *s)).collect(),
        SettingKind::Enum(options) => options.iter().filter(|s| matches(s)).map(|s| Choice::new(*s, *s)).collect(),
        SettingKind::OneOf(options) => {
            options.iter().filter(|s| matches(&s.to_lowercase())).map(|s| Choice::new(s.clone(), s.clone())).collect()
        }
        SettingKind::Duration { .. } => ["5m", "15m", "30m", "1h", "4h", "1day", "7days"]
            .iter()
            .filter(|s| matches(s))
            .map(|s| Choice::new(*s, *s))
            .collect(),
        SettingKind::Int { min, max } => {
            let mut v: Vec<Choice> = typed
                .parse::<i64>()
                .ok()
                .filter(|n| (*min..=*max).contains(n))
                .map(|n| Choice::new(n.to_string(), n.to_string()))
                .into_iter()
                .collect();
            v.push(Choice::new(format!("a whole number from {min} to {max}"), min.to_string()));
            v
        }
        SettingKind::Channel => {
            let channels = ctx.app.http.guild_channels(Id::new(ctx.guild_id())).await?.models().await?;
            channels
                .into_iter()
                .filter_map(|c| c.name.map(|n| (n, c.id)))
                .filter(|(n, _)| matches(n))
                .map(|(n, id)| Choice::new(format!("#{n}"), id.to_string()))
                .collect()
        }
        SettingKind::Role => {
            let roles = ctx.app.http.roles(Id::new(ctx.guild_id())).await?.models().await?;
            roles
                .into_iter()
                .filter(|r| r.name != "@everyone" && matches(&r.name))
                .map(|r| Choice::new(format!("@{}", r.name), r.id.to_string()))
                .collect()
        }
        SettingKind::String { .. } | SettingKind::List { .. } => Vec::new(),
    })
}
