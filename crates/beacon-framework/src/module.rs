//! The module contract: everything a feature declares to plug into Beacon.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use beacon_store::{GuildStore, ModuleMigration};
use twilight_model::application::interaction::Interaction;
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::Event;

use crate::access::{Access, Caller};
use crate::app::App;
use crate::command::{CommandSpec, Options};
use crate::error::{HandlerError, HandlerResult};
use crate::reply::{Choice, Reply};
use crate::responder::Responder;
use crate::settings::{SettingChanged, SettingSpec};

/// A feature of Beacon: its commands, components, events, settings and tables.
///
/// Components and modals are routed by `custom_id`, which must start with `"{name}:"`.
/// Settings keys must start with `"{name}."`. Handlers only run in guilds where the module is
/// enabled (`{name}.enabled`), and commands only for callers with the declared [`Access`].
///
/// ```ignore
/// struct Hello;
///
/// #[async_trait::async_trait]
/// impl Module for Hello {
///     fn name(&self) -> &'static str { "hello" }
///     fn description(&self) -> &'static str { "Says hello" }
///     fn commands(&self) -> Vec<CommandSpec> {
///         vec![CommandSpec::new("hello", "Say hello", Access::Everyone)]
///     }
///     async fn command(&self, ctx: CommandCtx) -> HandlerResult {
///         ctx.reply(Reply::text("Hello!")).await
///     }
/// }
/// ```
#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// Short lowercase name; prefixes settings keys and custom ids.
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;

    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }

    fn settings(&self) -> Vec<SettingSpec> {
        Vec::new()
    }

    fn migrations(&self) -> Vec<ModuleMigration> {
        Vec::new()
    }

    /// Tables (created by [`Module::migrations`]) that hold guild-owned rows in a `guild_id`
    /// column; they are purged with the guild when its retention period ends.
    fn guild_tables(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Gateway intents the module's event handlers need.
    fn intents(&self) -> Intents {
        Intents::empty()
    }

    /// Core modules cannot be switched off.
    fn can_disable(&self) -> bool {
        true
    }

    /// On in a new guild unless the module needs configuration first.
    fn enabled_by_default(&self) -> bool {
        true
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("module {} declares /{} but does not handle it", self.name(), ctx.name)))
    }

    async fn autocomplete(&self, _ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        Ok(Vec::new())
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("unhandled component {}", ctx.custom_id)))
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("unhandled modal {}", ctx.custom_id)))
    }

    /// Any gateway event in a guild where the module is enabled (and guild-less events).
    async fn event(&self, _ctx: EventCtx) -> HandlerResult {
        Ok(())
    }

    /// A setting changed in some guild (any module's setting).
    async fn setting_changed(&self, _app: &Arc<App>, _change: &SettingChanged) {}
}

/// What every interaction handler gets.
pub struct InteractionCtx {
    pub app: Arc<App>,
    pub interaction: Arc<Interaction>,
    pub guild: GuildStore,
    pub caller: Caller,
    /// The caller's level, already computed.
    pub access: Access,
    pub responder: Responder,
}

impl InteractionCtx {
    pub fn guild_id(&self) -> u64 {
        self.guild.id()
    }

    pub fn user_id(&self) -> u64 {
        self.caller.user_id
    }

    pub fn channel_id(&self) -> Option<u64> {
        self.interaction.channel.as_ref().map(|c| c.id.get())
    }

    /// Refuses unless the caller holds `level`.
    pub fn require(&self, level: Access) -> HandlerResult {
        if self.access >= level { Ok(()) } else { Err(HandlerError::Forbidden(level.refusal().to_owned())) }
    }

    pub async fn reply(&self, reply: Reply) -> HandlerResult {
        self.responder.reply(reply).await
    }

    /// The member's locale (e.g. `en-US`), when Discord sent one.
    pub fn locale(&self) -> Option<&str> {
        self.interaction.locale.as_deref()
    }
}

/// A slash command invocation.
pub struct CommandCtx {
    pub base: InteractionCtx,
    pub name: String,
    pub options: Options,
}

/// A member typing in an autocomplete option.
pub struct AutocompleteCtx {
    pub base: InteractionCtx,
    pub name: String,
    pub options: Options,
}

/// A button click or select menu choice.
pub struct ComponentCtx {
    pub base: InteractionCtx,
    pub custom_id: String,
    pub values: Vec<String>,
    pub message_id: Option<u64>,
}

impl ComponentCtx {
    /// The part of the custom id after `"{module}:"`.
    pub fn action(&self) -> &str {
        self.custom_id.split_once(':').map(|(_, rest)| rest).unwrap_or("")
    }
}

/// A submitted modal form.
pub struct ModalCtx {
    pub base: InteractionCtx,
    pub custom_id: String,
    /// Text inputs by custom id.
    pub fields: BTreeMap<String, String>,
}

impl ModalCtx {
    pub fn action(&self) -> &str {
        self.custom_id.split_once(':').map(|(_, rest)| rest).unwrap_or("")
    }

    pub fn field(&self, id: &str) -> Option<&str> {
        self.fields.get(id).map(String::as_str)
    }
}

macro_rules! deref_base {
    ($($t:ty),*) => {$(
        impl Deref for $t {
            type Target = InteractionCtx;
            fn deref(&self) -> &InteractionCtx {
                &self.base
            }
        }
    )*};
}
deref_base!(CommandCtx, AutocompleteCtx, ComponentCtx, ModalCtx);

/// A gateway event.
pub struct EventCtx {
    pub app: Arc<App>,
    pub shard_id: Option<u32>,
    pub guild_id: Option<u64>,
    pub event: Arc<Event>,
}

impl EventCtx {
    /// Claims one side effect of an event, once across redeliveries (a resumed session replays
    /// events) and across processes: `true` for the first caller of `(what, id)`. Call it right
    /// before the side effect, e.g. `ctx.claim("support-answer", message.id)`. When the database
    /// cannot be reached the claim is granted (a member's question is not dropped) and logged.
    pub async fn claim(&self, what: &str, id: u64) -> bool {
        claim_event(&self.app, what, id).await
    }
}

/// [`EventCtx::claim`] for code that holds the [`App`] rather than the context.
pub async fn claim_event(app: &App, what: &str, id: u64) -> bool {
    match app.store.claim_once(&format!("event:{what}"), id).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(error = %e, what, id, "event claim failed; handling anyway");
            true
        }
    }
}
