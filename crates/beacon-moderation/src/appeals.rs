//! Ban appeals without outside forms: a banned member's DM carries an Appeal button; its form
//! goes to the appeals channel with Accept and Deny; Accept lifts the ban (a case of its own)
//! and notes the ban case. One open appeal per case, and a cool-down after a denial.

use beacon_framework::reply::components::{button, disabled, row, text_input};
use beacon_framework::{ComponentCtx, HandlerError, HandlerResult, ModalCtx, Reply};
use beacon_store::{GuildStore, now_ms};
use twilight_model::channel::message::Component;
use twilight_model::channel::message::component::{ButtonStyle, TextInputStyle};
use twilight_model::guild::Permissions;
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::flow::{Action, Moderation};
use crate::model::{Appeal, AppealState, Case, CaseKind, Repo, Source};
use crate::{keys, text};

/// Longest appeal text.
const APPEAL_MAX: u16 = 1000;

/// The Appeal button of a ban DM (a DM component names its guild).
pub(crate) fn appeal_button(guild_id: u64, case: &Case) -> Component {
    row(vec![button(format!("moderation:dm:{guild_id}:appeal:{}", case.number), "Appeal", ButtonStyle::Primary)])
}

/// The appeals channel, when appeals are on.
pub(crate) async fn channel(m: &Moderation, guild: &GuildStore) -> HandlerResult<Option<u64>> {
    Ok(m.app.settings.get_ids(guild, keys::APPEALS_CHANNEL).await?.first().copied())
}

/// The ban case `number` if `user` may appeal it now; otherwise why not.
async fn appealable(m: &Moderation, guild: &GuildStore, number: i64, user: u64) -> HandlerResult<Case> {
    let refuse = |why: &str| Err(HandlerError::user(why.to_owned()));
    let case = Repo::new(guild.clone()).get(number).await?;
    let Some(case) = case.filter(|c| c.kind == CaseKind::Ban && c.target_id == user) else {
        return refuse("This appeal button is not yours.");
    };
    if case.ended_at.is_some() || case.failed.is_some() {
        return refuse("This ban is no longer in force.");
    }
    if channel(m, guild).await?.is_none() {
        return refuse("This server does not take appeals at the moment.");
    }
    if let Some(last) = Repo::new(guild.clone()).latest_appeal(number).await? {
        if last.state == AppealState::Open {
            return refuse("You already have an open appeal of this ban; the moderators will decide on it.");
        }
        let cooldown = m.app.settings.get_duration(guild, keys::APPEAL_COOLDOWN).await?;
        let again = last.decided_at.unwrap_or(last.created_at) + crate::duration::millis(cooldown);
        if last.state == AppealState::Denied && again > now_ms() {
            return Err(HandlerError::user(format!(
                "Your last appeal was denied. You can appeal again after {}.",
                text::time(again)
            )));
        }
    }
    Ok(case)
}

fn appeal_embed(appeal: &Appeal, case: &Case, outcome: Option<String>) -> twilight_model::channel::message::Embed {
    let mut b = EmbedBuilder::new()
        .title(format!("Appeal of case {}", case.label()))
        .color(if appeal.state == AppealState::Accepted { 0x22C55E } else { 0x3B82F6 })
        .field(EmbedFieldBuilder::new("Member", format!("<@{0}> ({0})", appeal.user_id)).inline())
        .field(EmbedFieldBuilder::new("Ban reason", case.reason.chars().take(1000).collect::<String>()))
        .field(EmbedFieldBuilder::new("Appeal", appeal.body.clone()));
    if let Some(outcome) = outcome {
        b = b.field(EmbedFieldBuilder::new("Decision", outcome));
    }
    b.build()
}

fn decision_buttons(id: i64, off: bool) -> Vec<Component> {
    let buttons = [
        button(format!("moderation:appeal-accept:{id}"), "Accept (unban)", ButtonStyle::Success),
        button(format!("moderation:appeal-deny:{id}"), "Deny", ButtonStyle::Danger),
    ];
    vec![row(buttons.into_iter().map(|b| if off { disabled(b) } else { b }).collect())]
}

/// The Appeal button: the form, when the member may appeal.
pub(crate) async fn open_form(m: &Moderation, ctx: &ComponentCtx, number: i64) -> HandlerResult {
    appealable(m, &ctx.guild, number, ctx.user_id()).await?;
    ctx.responder.modal(
        format!("moderation:dm:{}:appeal:{number}", ctx.guild_id()),
        format!("Appeal of case #{number}"),
        vec![
            text_input("appeal", "Why should the ban be lifted?", TextInputStyle::Paragraph, APPEAL_MAX)
                .min_length(10)
                .into(),
        ],
    )
}

/// The submitted form: the appeal goes to the appeals channel.
pub(crate) async fn submit(m: &Moderation, ctx: &ModalCtx, number: i64) -> HandlerResult {
    let case = appealable(m, &ctx.guild, number, ctx.user_id()).await?;
    let body: String = ctx.field("appeal").unwrap_or_default().trim().chars().take(APPEAL_MAX as usize).collect();
    if body.is_empty() {
        return Err(HandlerError::user("Write why the ban should be lifted."));
    }
    let repo = Repo::new(ctx.guild.clone());
    let Some(appeal) = repo.open_appeal(number, ctx.user_id(), &body, now_ms()).await? else {
        return Err(HandlerError::user(
            "You already have an open appeal of this ban; the moderators will decide on it.",
        ));
    };
    let Some(channel) = channel(m, &ctx.guild).await? else {
        return Err(HandlerError::user("This server does not take appeals at the moment."));
    };
    let embeds = [appeal_embed(&appeal, &case, None)];
    let message = m
        .app
        .http
        .create_message(Id::new(channel))
        .embeds(&embeds)
        .components(&decision_buttons(appeal.id, false))
        .await?
        .model()
        .await?;
    repo.set_appeal_message(appeal.id, channel, message.id.get()).await?;
    repo.add_event(number, ctx.user_id(), "appeal", &format!("appeal {} filed", appeal.id), now_ms()).await?;
    m.publish(&ctx.guild, &m.case(&ctx.guild, number).await?).await;
    ctx.reply(
        Reply::text(
            "Your appeal was sent to the server's moderators. You will hear from them here if I can reach you.",
        )
        .ephemeral(),
    )
    .await
}

/// Accept or Deny in the appeals channel (moderators), decided once.
pub(crate) async fn decide(m: &Moderation, ctx: &ComponentCtx, id: i64, accept: bool) -> HandlerResult {
    let repo = Repo::new(ctx.guild.clone());
    let appeal = repo.appeal(id).await?.ok_or_else(|| HandlerError::user("This appeal no longer exists."))?;
    let case = m.case(&ctx.guild, appeal.case_number).await?;
    let perms = ctx.caller.permissions.unwrap_or(Permissions::empty());
    if accept && !(perms.contains(Permissions::BAN_MEMBERS) || perms.contains(Permissions::ADMINISTRATOR)) {
        return Err(HandlerError::Forbidden(
            "Accepting an appeal lifts the ban: you need Discord's **Ban Members** permission.".into(),
        ));
    }
    let state = if accept { AppealState::Accepted } else { AppealState::Denied };
    if !repo.decide_appeal(id, state, ctx.user_id(), now_ms()).await? {
        return Err(HandlerError::user("This appeal was already decided."));
    }
    let who = format!("<@{}>", ctx.user_id());
    let outcome = if accept {
        let reason = format!("Appeal accepted (case {})", case.label());
        let action = Action {
            actor: Some((&ctx.caller.roles, perms)),
            source: Source::Appeal,
            related: Some(case.number),
            ..Action::new(CaseKind::Unban, appeal.user_id, ctx.user_id(), &reason)
        };
        match m.act(&ctx.guild, &action).await {
            Ok(unban) => {
                let line = format!("appeal {id} accepted by {who}: unbanned in case {}", unban.label());
                repo.add_event(case.number, ctx.user_id(), "appeal", &line, now_ms()).await?;
                format!("Accepted by {who}: unbanned in case {}.", unban.label())
            }
            Err(HandlerError::User(why)) => {
                let line = format!("appeal {id} accepted by {who}; the unban was not made: {why}");
                repo.add_event(case.number, ctx.user_id(), "appeal", &line, now_ms()).await?;
                format!("Accepted by {who}, but the unban was not made: {why}")
            }
            Err(e) => return Err(e),
        }
    } else {
        repo.add_event(case.number, ctx.user_id(), "appeal", &format!("appeal {id} denied by {who}"), now_ms()).await?;
        format!("Denied by {who}.")
    };
    m.publish(&ctx.guild, &m.case(&ctx.guild, case.number).await?).await;
    let decided = repo.appeal(id).await?.unwrap_or(appeal);
    // The member hears of it where a DM still reaches them (after a ban it usually does not).
    let news = if accept { "Your appeal was accepted: the ban is lifted." } else { "Your appeal was denied." };
    if let Err(e) = tell(m, decided.user_id, news).await {
        tracing::info!(error = %e, appeal = id, "appeal outcome not delivered by DM");
    }
    let reply = Reply::embed(appeal_embed(&decided, &case, Some(outcome))).with_components(decision_buttons(id, true));
    ctx.responder.update(reply).await
}

async fn tell(m: &Moderation, user: u64, text: &str) -> HandlerResult {
    let channel = m.app.http.create_private_channel(Id::new(user)).await?.model().await?;
    m.app.http.create_message(channel.id).content(text).await?;
    Ok(())
}
