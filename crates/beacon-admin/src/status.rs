use std::time::Duration;

use beacon_framework::app::App;
use beacon_framework::{Access, CommandCtx, CommandSpec, HandlerResult, Module, Reply, async_trait};
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::COLOR;

/// `/status`: version, uptime, guilds, shards, dependency health and the LLM (each provider's
/// breaker, errors and calls today; this server's usage against its budget and its model), for
/// anyone, ephemeral.
pub struct StatusModule;

#[async_trait]
impl Module for StatusModule {
    fn name(&self) -> &'static str {
        "status"
    }

    fn description(&self) -> &'static str {
        "Health of this Beacon deployment"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("status", "Beacon's version, uptime, shards and health", Access::Everyone)]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let app = &ctx.app;
        let guilds = app.guild_count().await?;
        let checks = app.recent_checks().await;
        let shards = app.shards.snapshot();
        let shard_text = if !app.gateway_enabled {
            "not connected (no bot token; HTTP interactions only)".to_owned()
        } else if shards.is_empty() {
            "starting".to_owned()
        } else {
            shards
                .iter()
                .take(20)
                .map(|s| {
                    let latency = s.latency_ms.map(|l| format!("{l} ms")).unwrap_or_else(|| "–".into());
                    format!("#{} {:?} · {latency} · {} guilds", s.id, s.state, s.guilds)
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let health = checks
            .iter()
            .map(|c| {
                let icon = if c.ok { "🟢" } else { "🔴" };
                format!("{icon} {} ({}, {} ms)", c.name, c.detail, c.latency.as_millis())
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut embed = EmbedBuilder::new()
            .title("Beacon status")
            .color(COLOR)
            .field(EmbedFieldBuilder::new("Version", App::version()).inline())
            .field(EmbedFieldBuilder::new("Uptime", format_uptime(app.uptime())).inline())
            .field(EmbedFieldBuilder::new("Guilds", guilds.to_string()).inline())
            .field(EmbedFieldBuilder::new("Shards", shard_text))
            .field(EmbedFieldBuilder::new("Health", health));
        let week_ago = beacon_store::now_ms() - 7 * 86_400_000;
        let usage = usage_text(&ctx.guild.command_counts(week_ago).await?);
        embed = embed.field(EmbedFieldBuilder::new("Commands here (7 days)", fit_field(&usage)));
        let mut fields = 6;
        // Handler errors are for staff: they name modules and carry (redacted) error text.
        if ctx.access >= Access::Staff {
            let errors = errors_text(&ctx.guild.recent_errors(5).await?);
            embed = embed.field(EmbedFieldBuilder::new("Latest errors here (staff)", fit_field(&errors)));
            fields += 1;
        }
        // What each module reports (the LLM's providers and this server's usage, …); Discord
        // allows 25 fields per embed.
        for module in &app.modules {
            if !app.module_enabled(&ctx.guild, module.as_ref()).await.unwrap_or(false) {
                continue;
            }
            let mut reported = module.status(app, &ctx.guild).await;
            reported.extend(module.member_status(app, &ctx.guild, ctx.user_id()).await);
            for field in reported {
                if fields < 25 {
                    embed = embed.field(EmbedFieldBuilder::new(field.name, fit_field(&field.value)));
                    fields += 1;
                }
            }
        }
        ctx.reply(Reply::embed(embed.build()).ephemeral()).await
    }
}

/// Command runs per command: `/ask 12 (1 refused, 1 failed)`, most used first.
fn usage_text(counts: &[beacon_store::CommandCount]) -> String {
    let mut per: Vec<(String, i64, i64, i64)> = Vec::new();
    for c in counts {
        let at = match per.iter().position(|p| p.0 == c.command) {
            Some(at) => at,
            None => {
                per.push((c.command.clone(), 0, 0, 0));
                per.len() - 1
            }
        };
        if let Some(entry) = per.get_mut(at) {
            entry.1 += c.count;
            match c.outcome.as_str() {
                "refused" => entry.2 += c.count,
                "failed" => entry.3 += c.count,
                _ => {}
            }
        }
    }
    if per.is_empty() {
        return "none".to_owned();
    }
    per.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    per.iter()
        .map(|(command, runs, refused, failed)| {
            let mut line = format!("/{command} {runs}");
            let notes: Vec<String> = [(*refused, "refused"), (*failed, "failed")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            if !notes.is_empty() {
                line.push_str(&format!(" ({})", notes.join(", ")));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The latest handler errors: when, which module, the reference members were shown, the message.
fn errors_text(errors: &[beacon_store::ErrorRecord]) -> String {
    if errors.is_empty() {
        return "none".to_owned();
    }
    errors
        .iter()
        .map(|e| {
            let message: String = e.message.chars().take(150).collect();
            format!("<t:{}:R> {} (ref `{}`): {message}", e.at / 1000, e.module, e.reference)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Discord's limit on an embed field's value, in characters.
const FIELD_LIMIT: usize = 1024;

/// `text` cut to fit an embed field (a long fallback chain must not make `/status` fail).
pub(crate) fn fit_field(text: &str) -> String {
    if text.chars().count() <= FIELD_LIMIT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(FIELD_LIMIT - 1).collect();
    cut.push('…');
    cut
}

fn format_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_llm_reports_fit_an_embed_field() {
        assert_eq!(fit_field("short"), "short");
        let long = "é".repeat(2000);
        let cut = fit_field(&long);
        assert_eq!(cut.chars().count(), FIELD_LIMIT);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn usage_is_summed_per_command() {
        let count = |command: &str, outcome: &str, count| beacon_store::CommandCount {
            command: command.into(),
            outcome: outcome.into(),
            count,
        };
        let text = usage_text(&[count("ask", "ok", 10), count("faq", "ok", 3), count("ask", "failed", 2)]);
        assert_eq!(text, "/ask 12 (2 failed)\n/faq 3");
        assert_eq!(usage_text(&[]), "none");
    }

    #[test]
    fn uptime_is_compact() {
        assert_eq!(format_uptime(Duration::from_secs(59)), "0m 59s");
        assert_eq!(format_uptime(Duration::from_secs(3_700)), "1h 1m");
        assert_eq!(format_uptime(Duration::from_secs(90_061)), "1d 1h 1m");
    }
}
