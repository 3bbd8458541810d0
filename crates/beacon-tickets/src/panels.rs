//! Ticket panels: `/ticket panel create|edit|delete|list|post`, the check of what admins give
//! (Discord's limits for a form: at most 5 questions, labels of at most 45 characters, a title
//! of at most 45), and the form a panel's button opens.

use beacon_framework::command::OptionKind;
use beacon_framework::reply::components::{button, row};
use beacon_framework::{Access, CommandCtx, HandlerError, HandlerResult, OptionSpec, Reply};
use beacon_store::now_ms;
use twilight_model::channel::ChannelType;
use twilight_model::channel::message::component::ButtonStyle;
use twilight_model::id::Id;
use twilight_util::builder::embed::EmbedBuilder;

use crate::model::{Panel, Repo, Status};

/// Discord's limit on a modal's text inputs.
pub(crate) const MAX_QUESTIONS: usize = 5;
/// Discord's limit on a text input's label (and on a modal's title).
pub(crate) const MAX_LABEL: usize = 45;
/// Longest panel name.
const MAX_NAME: usize = 32;
/// Most panels a guild may have.
const MAX_PANELS: usize = 25;
/// Longest panel text.
const MAX_DESCRIPTION: usize = 1000;

/// The default panel message's title and text (also of panels that do not set their own).
pub(crate) const DEFAULT_TITLE: &str = "Need help?";
pub(crate) const DEFAULT_DESCRIPTION: &str = "Press **Open ticket** to talk privately with the staff team.";

/// The `/ticket panel` group.
pub(crate) fn command_group() -> OptionSpec {
    let name = || {
        OptionSpec::string("name", "The panel's name (lowercase letters, digits, - and _)")
            .max_length(MAX_NAME as u16)
            .required()
            .autocomplete()
    };
    let settable = || {
        vec![
            OptionSpec::string("title", "Title of the panel message and of its form (max 45)")
                .max_length(MAX_LABEL as u16),
            OptionSpec::string("description", "Text of the panel message").max_length(MAX_DESCRIPTION as u16),
            OptionSpec::channel(
                "channel",
                "Tickets become private threads under this channel",
                vec![ChannelType::GuildText],
            ),
            OptionSpec::channel(
                "category",
                "Tickets become channels in this category",
                vec![ChannelType::GuildCategory],
            ),
            OptionSpec::role("staff_role", "The staff of this panel's tickets (default: core.staff_roles)"),
            OptionSpec::string("questions", "Form questions separated by | (up to 5, each up to 45 characters)")
                .max_length(300),
        ]
    };
    let mut create = vec![name()];
    create.extend(settable());
    let mut edit = vec![name(), OptionSpec::string("rename", "A new name").max_length(MAX_NAME as u16)];
    edit.extend(settable());
    edit.push(OptionSpec {
        name: "reset",
        description: "Go back to the guild's setting for one part",
        kind: OptionKind::String {
            min_length: None,
            max_length: None,
            choices: vec![
                ("destination (tickets.* settings)", "destination"),
                ("staff role (core.staff_roles)", "staff_role"),
                ("questions (just the topic)", "questions"),
            ],
        },
        required: false,
        autocomplete: false,
    });
    let mut post_name = name();
    post_name.required = false;
    post_name.description = "The panel to post (default: the guild's default panel)";
    OptionSpec {
        name: "panel",
        description: "Ticket panels: their own place, staff role and form (admins)",
        kind: OptionKind::SubCommandGroup(vec![
            OptionSpec::subcommand("create", "Create a ticket panel", create),
            OptionSpec::subcommand("edit", "Change a ticket panel", edit),
            OptionSpec::subcommand("delete", "Delete a ticket panel (its tickets stay)", vec![name()]),
            OptionSpec::subcommand("list", "List the ticket panels", vec![]),
            OptionSpec::subcommand("post", "Post a panel's \"Open ticket\" button in this channel", vec![post_name]),
        ]),
        required: false,
        autocomplete: false,
    }
}

/// A panel name as stored, or why it is not one.
fn valid_name(raw: &str) -> HandlerResult<String> {
    let name = raw.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(HandlerError::user(format!(
            "`{}` is not a panel name: use 1–{MAX_NAME} lowercase letters, digits, `-` or `_`.",
            crate::flow::truncate(raw.trim(), 40)
        )))
    }
}

/// The form questions in `raw` (separated by `|`), or why they cannot be a Discord form.
pub(crate) fn parse_questions(raw: &str) -> HandlerResult<Vec<String>> {
    let questions: Vec<String> = raw.split('|').map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()).collect();
    if questions.is_empty() {
        return Err(HandlerError::user(
            "Give at least one question (separate them with `|`), or `reset:questions` for just the topic.",
        ));
    }
    if questions.len() > MAX_QUESTIONS {
        return Err(HandlerError::user(format!(
            "A form has at most {MAX_QUESTIONS} questions (Discord's limit); you gave {}.",
            questions.len()
        )));
    }
    for (i, q) in questions.iter().enumerate() {
        let n = q.chars().count();
        if n > MAX_LABEL {
            return Err(HandlerError::user(format!(
                "Question {} is {n} characters long; Discord allows at most {MAX_LABEL}: \"{}\"",
                i + 1,
                crate::flow::truncate(q, 60)
            )));
        }
    }
    Ok(questions)
}

fn valid_title(raw: &str) -> HandlerResult<String> {
    let title = raw.trim();
    let n = title.chars().count();
    if n == 0 || n > MAX_LABEL {
        return Err(HandlerError::user(format!(
            "A panel's title is 1–{MAX_LABEL} characters (it is also its form's title); this one has {n}."
        )));
    }
    Ok(title.to_owned())
}

/// Checks that `id` is a channel of `kind` in this guild (Discord's picker usually ensures it;
/// a stale client or a hand-made request may not).
async fn check_channel(ctx: &CommandCtx, id: u64, kind: ChannelType, what: &str) -> HandlerResult {
    let channel = ctx.app.http.channel(Id::new(id)).await?.model().await?;
    if channel.guild_id.map(|g| g.get()) != Some(ctx.guild_id()) || channel.kind != kind {
        return Err(HandlerError::user(format!("<#{id}> is not {what} of this server.")));
    }
    Ok(())
}

/// Applies the options of `create` or `edit` to `p`.
async fn apply_options(ctx: &CommandCtx, p: &mut Panel) -> HandlerResult<bool> {
    let o = &ctx.options;
    let mut changed = false;
    if let (Some(_), Some(_)) = (o.channel("channel"), o.channel("category")) {
        return Err(HandlerError::user(
            "Give a panel either a `channel` (tickets as private threads under it) or a `category` \
             (tickets as channels in it), not both.",
        ));
    }
    if let Some(title) = o.str("title") {
        p.title = valid_title(title)?;
        changed = true;
    }
    if let Some(description) = o.str("description") {
        let d = description.trim();
        if d.is_empty() || d.chars().count() > MAX_DESCRIPTION {
            return Err(HandlerError::user(format!("A panel's description is 1–{MAX_DESCRIPTION} characters.")));
        }
        p.description = d.to_owned();
        changed = true;
    }
    if let Some(channel) = o.channel("channel") {
        check_channel(ctx, channel, ChannelType::GuildText, "a text channel").await?;
        p.channel_id = Some(channel);
        p.category_id = None;
        changed = true;
    }
    if let Some(category) = o.channel("category") {
        check_channel(ctx, category, ChannelType::GuildCategory, "a category").await?;
        p.category_id = Some(category);
        p.channel_id = None;
        changed = true;
    }
    if let Some(role) = o.role("staff_role") {
        if role == ctx.guild_id() {
            return Err(HandlerError::user("@everyone cannot be a panel's staff role: pick a role staff hold."));
        }
        p.staff_role_id = Some(role);
        changed = true;
    }
    if let Some(questions) = o.str("questions") {
        p.questions = parse_questions(questions)?;
        changed = true;
    }
    Ok(changed)
}

fn describe(p: &Panel) -> String {
    let place = match (p.channel_id, p.category_id) {
        (Some(c), _) => format!("threads under <#{c}>"),
        (_, Some(c)) => format!("channels in <#{c}>"),
        _ => "the tickets.* settings".to_owned(),
    };
    let staff = p.staff_role_id.map_or_else(|| "core.staff_roles".to_owned(), |r| format!("<@&{r}>"));
    let form = if p.questions.is_empty() {
        "asks for the topic".to_owned()
    } else {
        format!("asks {}", p.questions.iter().map(|q| format!("\"{q}\"")).collect::<Vec<_>>().join(", "))
    };
    format!("**{}** — {place}; staff {staff}; {form}", p.name)
}

/// Runs `/ticket panel …` (admins).
pub(crate) async fn command(ctx: &CommandCtx) -> HandlerResult {
    ctx.require(Access::Authorized)?;
    let repo = Repo::new(ctx.guild.clone());
    let sub = ctx.options.path.get(1).map(String::as_str);
    let named = || ctx.options.str("name").map(valid_name).transpose();
    let existing = |name: String| {
        let repo = repo.clone();
        async move {
            repo.panel_by_name(&name).await?.ok_or_else(|| {
                HandlerError::user(format!("There is no panel named `{name}`. `/ticket panel list` shows them."))
            })
        }
    };
    match sub {
        Some("create") => {
            let name = named()?.ok_or_else(|| HandlerError::user("Give the panel a name."))?;
            if repo.panel_by_name(&name).await?.is_some() {
                return Err(HandlerError::user(format!(
                    "There is already a panel named `{name}`; change it with `/ticket panel edit`."
                )));
            }
            if repo.panels().await?.len() >= MAX_PANELS {
                return Err(HandlerError::user(format!(
                    "A server can have at most {MAX_PANELS} panels; delete one first."
                )));
            }
            let mut p = Panel {
                id: 0,
                name,
                title: DEFAULT_TITLE.to_owned(),
                description: DEFAULT_DESCRIPTION.to_owned(),
                channel_id: None,
                category_id: None,
                staff_role_id: None,
                questions: Vec::new(),
            };
            apply_options(ctx, &mut p).await?;
            let p = repo.create_panel(&p, now_ms()).await?;
            ctx.reply(
                Reply::text(format!(
                    "Panel created: {}\nPost it with `/ticket panel post name:{}`.",
                    describe(&p),
                    p.name
                ))
                .ephemeral(),
            )
            .await
        }
        Some("edit") => {
            let name = named()?.ok_or_else(|| HandlerError::user("Name the panel to change."))?;
            let mut p = existing(name).await?;
            let mut changed = apply_options(ctx, &mut p).await?;
            if let Some(rename) = ctx.options.str("rename") {
                let rename = valid_name(rename)?;
                if rename != p.name && repo.panel_by_name(&rename).await?.is_some() {
                    return Err(HandlerError::user(format!("There is already a panel named `{rename}`.")));
                }
                p.name = rename;
                changed = true;
            }
            match ctx.options.str("reset") {
                Some("destination") => {
                    p.channel_id = None;
                    p.category_id = None;
                    changed = true;
                }
                Some("staff_role") => {
                    p.staff_role_id = None;
                    changed = true;
                }
                Some("questions") => {
                    p.questions.clear();
                    changed = true;
                }
                _ => {}
            }
            if !changed {
                return Err(HandlerError::user("Nothing to change: give at least one option besides the name."));
            }
            repo.save_panel(&p).await?;
            ctx.reply(
                Reply::text(format!("Panel changed: {}\nButtons already posted use it at once.", describe(&p)))
                    .ephemeral(),
            )
            .await
        }
        Some("delete") => {
            let name = named()?.ok_or_else(|| HandlerError::user("Name the panel to delete."))?;
            let p = existing(name).await?;
            repo.delete_panel(p.id).await?;
            ctx.reply(
                Reply::text(format!(
                    "Panel `{}` deleted. Its tickets stay; its posted buttons now say it is gone.",
                    p.name
                ))
                .ephemeral(),
            )
            .await
        }
        Some("list") => {
            let panels = repo.panels().await?;
            let text = if panels.is_empty() {
                "No panels yet: the default panel (`/ticket panel post`) follows the tickets.* settings. \
                 Create one with `/ticket panel create`."
                    .to_owned()
            } else {
                panels.iter().map(describe).collect::<Vec<_>>().join("\n")
            };
            ctx.reply(Reply::text(text).ephemeral()).await
        }
        Some("post") => post(ctx, &repo).await,
        _ => Err(HandlerError::user("Unknown /ticket panel subcommand.")),
    }
}

/// Posts a panel message in this channel: the named panel's, or the default panel (as it always
/// was: `tickets:open`, following the `tickets.*` settings).
async fn post(ctx: &CommandCtx, repo: &Repo) -> HandlerResult {
    let Some(channel) = ctx.channel_id() else {
        return Err(HandlerError::user("Run this in the channel for the panel."));
    };
    let (title, description, custom_id, done) = match ctx.options.str("name").map(valid_name).transpose()? {
        None => (DEFAULT_TITLE.to_owned(), DEFAULT_DESCRIPTION.to_owned(), "tickets:open".to_owned(), String::new()),
        Some(name) => {
            let p = repo.panel_by_name(&name).await?.ok_or_else(|| {
                HandlerError::user(format!("There is no panel named `{name}`. `/ticket panel list` shows them."))
            })?;
            (p.title, p.description, format!("tickets:open:{}", p.id), format!(" `{}`", p.name))
        }
    };
    let embed = EmbedBuilder::new().title(title).description(description).color(Status::Open.color()).build();
    let components = [row(vec![button(custom_id, "Open ticket", ButtonStyle::Success)])];
    ctx.app.http.create_message(Id::new(channel)).embeds(&[embed]).components(&components).await?;
    ctx.reply(Reply::text(format!("Ticket panel{done} posted.")).ephemeral()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_follow_discords_form_limits() {
        assert_eq!(parse_questions(" Order? |  | Why? ").ok(), Some(vec!["Order?".to_owned(), "Why?".to_owned()]));
        assert!(parse_questions(" | ").is_err());
        assert!(parse_questions("a|b|c|d|e").is_ok());
        assert!(parse_questions("a|b|c|d|e|f").is_err());
        assert!(parse_questions(&"é".repeat(MAX_LABEL)).is_ok(), "characters, not bytes");
        assert!(parse_questions(&"q".repeat(MAX_LABEL + 1)).is_err());
    }

    #[test]
    fn names_and_titles() {
        assert_eq!(valid_name(" Billing-EU_2 ").ok().as_deref(), Some("billing-eu_2"));
        assert!(valid_name("two words").is_err());
        assert!(valid_name("").is_err());
        assert!(valid_name(&"n".repeat(MAX_NAME + 1)).is_err());
        assert!(valid_title(&"t".repeat(MAX_LABEL)).is_ok());
        assert!(valid_title(&"t".repeat(MAX_LABEL + 1)).is_err());
        assert!(valid_title("  ").is_err());
    }
}
