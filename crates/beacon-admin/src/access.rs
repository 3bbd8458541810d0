use beacon_framework::{
    Access, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, OptionSpec, Reply, async_trait,
};
use twilight_util::builder::embed::EmbedBuilder;

use crate::COLOR;

/// `/access`: delegate Beacon admin access to members who are not server admins.
pub struct AccessModule;

#[async_trait]
impl Module for AccessModule {
    fn name(&self) -> &'static str {
        "access"
    }

    fn description(&self) -> &'static str {
        "Who may configure Beacon in this server"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let user = || OptionSpec::user("user", "The member").required();
        vec![
            CommandSpec::new("access", "Who may configure Beacon in this server", Access::Authorized)
                .option(OptionSpec::subcommand("grant", "Let a member configure Beacon", vec![user()]))
                .option(OptionSpec::subcommand("revoke", "Take a member's Beacon access away", vec![user()]))
                .option(OptionSpec::subcommand("list", "Who has been given access", vec![])),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.options.subcommand() {
            Some("grant") => {
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a member."))?;
                let text = if ctx.guild.grant(user, Some(ctx.user_id())).await? {
                    tracing::info!(target_user = user, "access granted");
                    format!("<@{user}> can now configure Beacon here.")
                } else {
                    format!("<@{user}> already had access.")
                };
                ctx.reply(Reply::text(text).ephemeral()).await
            }
            Some("revoke") => {
                let user = ctx.options.user("user").ok_or_else(|| HandlerError::user("Pick a member."))?;
                let owner = ctx.guild.get().await?.and_then(|g| g.owner_id);
                if owner == Some(user) {
                    return Err(HandlerError::user("The server owner always has access; it cannot be revoked."));
                }
                let text = if ctx.guild.revoke(user).await? {
                    tracing::info!(target_user = user, "access revoked");
                    format!("<@{user}> no longer has Beacon access (server admins keep theirs through their role).")
                } else {
                    format!("<@{user}> had no delegated access.")
                };
                ctx.reply(Reply::text(text).ephemeral()).await
            }
            Some("list") => {
                let users = ctx.guild.authorized_users().await?;
                let body = if users.is_empty() {
                    "Nobody has delegated access. The owner and members with Administrator or Manage Server always do."
                        .to_owned()
                } else {
                    users
                        .iter()
                        .map(|u| match u.granted_by {
                            Some(by) => format!("<@{}> — granted by <@{by}> <t:{}:R>", u.user_id, u.granted_at / 1000),
                            None => format!("<@{}> — server owner at install <t:{}:R>", u.user_id, u.granted_at / 1000),
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let embed = EmbedBuilder::new().title("Beacon access").description(body).color(COLOR).build();
                ctx.reply(Reply::embed(embed).ephemeral()).await
            }
            _ => Err(HandlerError::user("Unknown /access subcommand.")),
        }
    }
}
