use std::time::Duration;

use beacon_framework::app::App;
use beacon_framework::{Access, CommandCtx, CommandSpec, HandlerResult, Module, Reply, async_trait};
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::COLOR;

/// `/status`: version, uptime, guilds, shards and dependency health, for anyone, ephemeral.
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
        let guilds = app.store.guild_count().await?;
        let checks = app.checks().await;
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
        let embed = EmbedBuilder::new()
            .title("Beacon status")
            .color(COLOR)
            .field(EmbedFieldBuilder::new("Version", App::version()).inline())
            .field(EmbedFieldBuilder::new("Uptime", format_uptime(app.uptime())).inline())
            .field(EmbedFieldBuilder::new("Guilds", guilds.to_string()).inline())
            .field(EmbedFieldBuilder::new("Shards", shard_text))
            .field(EmbedFieldBuilder::new("Health", health))
            .build();
        ctx.reply(Reply::embed(embed).ephemeral()).await
    }
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
    fn uptime_is_compact() {
        assert_eq!(format_uptime(Duration::from_secs(59)), "0m 59s");
        assert_eq!(format_uptime(Duration::from_secs(3_700)), "1h 1m");
        assert_eq!(format_uptime(Duration::from_secs(90_061)), "1d 1h 1m");
    }
}
