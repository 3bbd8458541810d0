//! Slash commands in a member's DM with Beacon. Discord offers there only the global commands
//! whose `contexts` include `BOT_DM` ([`crate::CommandSpec::in_dms`]); such an interaction has no
//! guild, no member, no roles and no permissions, so it reaches its module's
//! [`crate::Module::dm_command`] with the user alone. A module answers only about that user's
//! own data (it has no server to check permissions in); any other command is refused as Discord
//! would.

use std::sync::Arc;

use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};

use crate::app::App;
use crate::command::Options;
use crate::error::{HandlerError, HandlerResult};
use crate::reply::Reply;
use crate::responder::Responder;

/// A slash command used in the member's DM with Beacon.
pub struct DmCommandCtx {
    /// The shared app.
    pub app: Arc<App>,
    /// The interaction as Discord sent it.
    pub interaction: Arc<Interaction>,
    /// The user who used it (in a DM, Discord's `user`).
    pub user_id: u64,
    /// The command's name.
    pub name: String,
    /// Its options (the subcommand and its values).
    pub options: Options,
    /// Answers the interaction (defer, reply, edits, follow-ups).
    pub responder: Responder,
}

impl DmCommandCtx {
    /// Replies (the first reply is the interaction's response; later ones follow up).
    pub async fn reply(&self, reply: Reply) -> HandlerResult {
        self.responder.reply(reply).await
    }
}

/// Runs an application command that came from a DM (no guild).
pub(crate) async fn run_command(app: &Arc<App>, interaction: Arc<Interaction>, responder: Responder) -> HandlerResult {
    let Some(InteractionData::ApplicationCommand(data)) = &interaction.data else {
        return Err(HandlerError::internal("a DM command without command data"));
    };
    let spec = app.module_for_command(&data.name).map(|(module, spec)| (module, spec.works_in_dms()));
    let module = match spec {
        Some((module, true)) => module,
        Some((_, false)) => {
            return Err(HandlerError::user(format!("/{} works only in a server: use it there.", data.name)));
        }
        None => return Err(HandlerError::user(format!("/{} is not a Beacon command any more.", data.name))),
    };
    if interaction.kind == InteractionType::ApplicationCommandAutocomplete {
        return responder.choices(Vec::new());
    }
    let user_id =
        interaction.author_id().map(|u| u.get()).ok_or_else(|| HandlerError::internal("a DM without a user"))?;
    tracing::info!(command = %data.name, "command in a DM");
    let ctx = DmCommandCtx {
        app: app.clone(),
        interaction: interaction.clone(),
        user_id,
        name: data.name.clone(),
        options: Options::from_data(&data.options).with_resolved(data.resolved.as_ref()),
        responder,
    };
    crate::router::metered(app, module.name(), "dm_command", module.dm_command(ctx)).await
}
