//! `/privacy`: the Discord adapter of members' export and erasure, and the owner's purge.

use std::sync::Arc;

use beacon_framework::privacy::MemberExport;
use beacon_framework::reply::components::{button, row};
use beacon_framework::responder::Responder;
use beacon_framework::{
    Access, App, CommandCtx, CommandSpec, ComponentCtx, DmCommandCtx, HandlerError, HandlerResult, InteractionCtx,
    Module, OptionSpec, Reply, async_trait,
};
use twilight_model::channel::message::AllowedMentions;
use twilight_model::channel::message::component::ButtonStyle;
use twilight_model::http::attachment::Attachment;
use twilight_model::id::Id;

use crate::flow::{ExportFile, MAX_FILE_BYTES, export_files, receipt_text};

/// `/privacy export|delete|purge-guild`. A member's right, so it cannot be switched off.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrivacyModule;

#[async_trait]
impl Module for PrivacyModule {
    fn name(&self) -> &'static str {
        "privacy"
    }

    fn description(&self) -> &'static str {
        "Members see and delete their data; the owner purges the server's"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("privacy", "Your data in Beacon: see it or delete it", Access::Everyone)
                .option(OptionSpec::subcommand(
                    "export",
                    "Every record Beacon holds about you in this server, as JSON files",
                    vec![OptionSpec::boolean("everywhere", "Every server you share with Beacon, sent to you by DM")],
                ))
                .option(OptionSpec::subcommand("delete", "Erase what Beacon holds about you in this server", vec![]))
                .option(OptionSpec::subcommand(
                    "purge-guild",
                    "Remove all of this server's data from Beacon (server owner only)",
                    vec![],
                ))
                // In a DM, `/privacy export` exports every server's records (the others need a server).
                .in_dms(),
        ]
    }

    async fn dm_command(&self, ctx: DmCommandCtx) -> HandlerResult {
        match ctx.options.subcommand() {
            Some("export") => {
                ctx.responder.defer()?;
                let guilds = ctx.app.store.active_guild_ids().await?;
                let (summary, files) = build_export(&ctx.app, ctx.user_id, &guilds, None).await?;
                send_files(&ctx.responder, summary, files).await
            }
            Some(_) => Err(HandlerError::user(
                "In a DM only `/privacy export` works (it covers every server). Run `/privacy delete` or \
                 `/privacy purge-guild` in the server concerned.",
            )),
            None => Err(HandlerError::user("Use `/privacy export`.")),
        }
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.options.subcommand() {
            Some("export") => export(&ctx, ctx.options.bool("everywhere").unwrap_or(false)).await,
            Some("delete") => {
                let user = ctx.user_id();
                ctx.reply(
                    Reply::text(
                        "This erases or anonymises what Beacon holds about you in this server, in every module — \
                         as each declares. Some records are kept for a stated reason (for example a moderation \
                         case keeps the action and your id); the receipt lists them. This cannot be undone.",
                    )
                    .with_components(vec![row(vec![
                        button(format!("privacy:delete:{user}"), "Erase my data", ButtonStyle::Danger),
                        button(format!("privacy:cancel:{user}"), "Cancel", ButtonStyle::Secondary),
                    ])])
                    .ephemeral(),
                )
                .await
            }
            Some("purge-guild") => {
                require_owner(&ctx).await?;
                let user = ctx.user_id();
                ctx.reply(
                    Reply::text(
                        "This removes **all** of this server's data from Beacon — settings, tickets and their \
                         transcripts, cases, FAQ, knowledge base, logs — as the operator's `beacon guild purge` \
                         does. Step 1 of 2.",
                    )
                    .with_components(vec![row(vec![
                        button(format!("privacy:purge1:{user}"), "Continue", ButtonStyle::Danger),
                        button(format!("privacy:cancel:{user}"), "Cancel", ButtonStyle::Secondary),
                    ])])
                    .ephemeral(),
                )
                .await
            }
            _ => Err(HandlerError::user("Use `/privacy export`, `/privacy delete` or `/privacy purge-guild`.")),
        }
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        let (action, owner) = ctx.action().split_once(':').unwrap_or((ctx.action(), ""));
        if owner.parse::<u64>().ok() != Some(ctx.user_id()) {
            return Err(HandlerError::user("These buttons are for the member who asked."));
        }
        match action {
            "cancel" => ctx.responder.update(Reply::text("Cancelled: nothing was changed.").ephemeral()).await,
            "delete" => {
                ctx.responder.defer()?;
                let receipt = ctx.app.erase_member(ctx.guild_id(), ctx.user_id()).await?;
                tracing::info!(guild_id = ctx.guild_id(), lines = receipt.len(), "member data erased on request");
                ctx.responder.update(Reply::text(receipt_text(&receipt)).ephemeral()).await
            }
            "purge1" => {
                require_owner(&ctx).await?;
                ctx.responder
                    .update(
                        Reply::text(
                            "Last step: purge everything Beacon holds for this server now? Beacon stays in the \
                             server and starts afresh with default settings.",
                        )
                        .with_components(vec![row(vec![
                            button(format!("privacy:purge2:{owner}"), "Purge this server's data", ButtonStyle::Danger),
                            button(format!("privacy:cancel:{owner}"), "Cancel", ButtonStyle::Secondary),
                        ])])
                        .ephemeral(),
                    )
                    .await
            }
            "purge2" => {
                require_owner(&ctx).await?;
                ctx.responder.defer()?;
                let report = ctx.app.purge_guild(ctx.guild_id()).await?;
                tracing::info!(guild_id = ctx.guild_id(), by = ctx.user_id(), "guild purged by its owner");
                let mut text = String::from("**This server's data was purged.**\n");
                for line in &report {
                    text.push_str(&format!("• {line}\n"));
                }
                ctx.responder.update(Reply::text(text).ephemeral()).await
            }
            _ => Err(HandlerError::user("This button is no longer valid.")),
        }
    }
}

/// Only the server's owner (as Discord says) may purge it.
async fn require_owner(ctx: &InteractionCtx) -> HandlerResult {
    let owner = ctx.guild.get().await?.and_then(|g| g.owner_id);
    if owner == Some(ctx.user_id()) {
        Ok(())
    } else {
        Err(HandlerError::Forbidden("Only the server owner can purge the server's data.".into()))
    }
}

async fn export(ctx: &CommandCtx, everywhere: bool) -> HandlerResult {
    // Files travel as multipart only in REST edits, so answer through a defer.
    ctx.responder.defer()?;
    let user = ctx.user_id();
    let guilds = if everywhere { ctx.app.store.active_guild_ids().await? } else { vec![ctx.guild_id()] };
    let (summary, files) = build_export(&ctx.app, user, &guilds, Some(ctx.guild_id())).await?;
    if everywhere {
        match send_by_dm(&ctx.app, user, &summary, &files).await {
            Ok(()) => ctx.reply(Reply::text(format!("Sent to you by DM: {summary}")).ephemeral()).await,
            Err(e) => {
                tracing::info!(error = %e, "export DM refused");
                Err(HandlerError::user(
                    "Discord refused the DM: allow direct messages from this server's members, then try again \
                     (or run `/privacy export` without `everywhere` for this server only).",
                ))
            }
        }
    } else {
        send_files(&ctx.responder, summary, files).await
    }
}

/// `user`'s records in `guilds` (those with none left out, except `here`, the server asked
/// from, which is always listed): the summary line and the files.
async fn build_export(
    app: &Arc<App>,
    user: u64,
    guilds: &[u64],
    here: Option<u64>,
) -> Result<(String, Vec<ExportFile>), HandlerError> {
    let mut guilds = guilds.to_vec();
    if let Some(here) = here
        && !guilds.contains(&here)
    {
        guilds.push(here);
    }
    let mut exports: Vec<MemberExport> = Vec::new();
    for guild in guilds {
        let export = app.export_member(guild, user).await?;
        if !export.parts.is_empty() || Some(guild) == here {
            exports.push(export);
        }
    }
    let now = jiff::Timestamp::now().to_string();
    let files = export_files(&exports, user, &now, MAX_FILE_BYTES).map_err(HandlerError::internal)?;
    let records: usize = exports.iter().flat_map(|e| &e.parts).map(|p| p.records.len()).sum();
    let summary = format!(
        "{records} record(s) from {} module part(s) in {} server(s), in {} file(s). Each file's `manifest` says what \
         each part is and what was withheld and why.",
        exports.iter().map(|e| e.parts.len()).sum::<usize>(),
        exports.len(),
        files.len()
    );
    Ok((summary, files))
}

/// Answers with the summary and the files, one file per message (ephemeral in a server).
async fn send_files(responder: &Responder, summary: String, files: Vec<ExportFile>) -> HandlerResult {
    let mut files = files.into_iter();
    let mut reply = Reply::text(summary).ephemeral();
    if let Some(first) = files.next() {
        reply = reply.with_attachment(Attachment::from_bytes(first.name, first.bytes, 0));
    }
    responder.reply(reply).await?;
    for file in files {
        responder
            .reply(Reply::text("").with_attachment(Attachment::from_bytes(file.name, file.bytes, 0)).ephemeral())
            .await?;
    }
    Ok(())
}

/// Sends the files by DM, one per message.
async fn send_by_dm(app: &Arc<App>, user: u64, summary: &str, files: &[ExportFile]) -> Result<(), HandlerError> {
    let channel = app.http.create_private_channel(Id::new(user)).await?.model().await?;
    let none = AllowedMentions::default();
    for (n, file) in files.iter().enumerate() {
        let attachment = [Attachment::from_bytes(file.name.clone(), file.bytes.clone(), 0)];
        let request = app.http.create_message(channel.id).attachments(&attachment).allowed_mentions(Some(&none));
        if n == 0 {
            request.content(summary).await?
        } else {
            request.await?
        };
    }
    Ok(())
}
