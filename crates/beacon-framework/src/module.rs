//! The module contract: everything a feature declares to plug into Beacon.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use beacon_store::{GuildStore, Schema};
use twilight_model::application::interaction::Interaction;
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::{Event, EventType};
use twilight_model::guild::Permissions;

use crate::access::{Access, Caller};
use crate::app::{App, Check};
use crate::command::{CommandSpec, Options};
use crate::error::{HandlerError, HandlerResult};
use crate::export::ExportSpec;
use crate::lifecycle::{BackgroundTask, JobKind};
use crate::ports::Port;
use crate::privacy::{ErasureLine, ExportPart, PersonalData};
use crate::reply::{Choice, Reply};
use crate::responder::Responder;
use crate::retention::Retention;
use crate::settings::{SettingChanged, SettingSpec};

/// A feature of Beacon, declared whole: everything it needs from the app is named here, and the
/// binary only lists the module.
///
/// - Discord: [`commands`](Module::commands), [`component`](Module::component) and
///   [`modal`](Module::modal) handlers (routed by a `custom_id` starting with `"{name}:"`),
///   gateway [`event`](Module::event)s of the kinds it lists in [`events`](Module::events),
///   the [`intents`](Module::intents) those need and the
///   [`permissions`](Module::permissions) the bot needs (both feed the invite link).
/// - Per guild: typed [`settings`](Module::settings) (keys start with `"{name}."`; each
///   module that can be switched off also gets `{name}.enabled`).
/// - Data: its [`schemas`](Module::schemas) (migrations as SQL files and every guild-owned
///   table, so a purge leaves nothing), files it keeps per guild ([`purge_guild`](Module::purge_guild)),
///   and CSV [`exports`](Module::exports) served by the framework's `/export`.
/// - Privacy: what each guild table holds about members ([`personal_data`](Module::personal_data)),
///   and one member's [`export`](Module::export_member) and [`erasure`](Module::erase_member).
/// - Work: durable [`jobs`](Module::jobs) and [`background`](Module::background) tasks, which
///   the app starts and stops under its own shutdown.
/// - Health: [`status`](Module::status) fields for `/status` and [`readiness`](Module::readiness) checks.
/// - Web: [`routes`](Module::routes) on Beacon's HTTP server (links start at [`App::public_url`]).
/// - Other features: [`provides`](Module::provides) ports; they are looked up with
///   [`App::port`]. Features never depend on each other.
///
/// Handlers only run in guilds where the module is enabled, and commands only for callers with
/// the declared [`Access`]. A complete module is in `crates/beacon/examples/notes_module.rs`.
///
/// ```
/// use beacon_framework::{Access, CommandCtx, CommandSpec, HandlerResult, Module, Reply, async_trait};
///
/// struct Hello;
///
/// #[async_trait]
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
    /// One line for humans (`/config`, logs).
    fn description(&self) -> &'static str;

    /// Slash and context-menu commands.
    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }

    /// Typed per-guild settings.
    fn settings(&self) -> Vec<SettingSpec> {
        Vec::new()
    }

    /// The schemas the module's data lives in, migrated in this order when the app is built. A
    /// library's schema that several modules use (e.g. the LLM usage tables) may be declared by
    /// each of them; it is migrated once.
    fn schemas(&self) -> Vec<Schema> {
        Vec::new()
    }

    /// Gateway intents the module's event handlers need.
    fn intents(&self) -> Intents {
        Intents::empty()
    }

    /// The gateway events [`Module::event`] handles: only these reach it. The gateway does not
    /// even deserialize an event that neither a module nor the framework wants (it is only
    /// counted in `beacon_gateway_events_total`).
    fn events(&self) -> &'static [EventType] {
        &[]
    }

    /// Discord permissions the bot needs in a guild for this module to work (the invite link
    /// asks for the union of the modules' permissions, nothing more).
    fn permissions(&self) -> Permissions {
        Permissions::empty()
    }

    /// Durable job kinds the module schedules, with their handlers.
    fn jobs(&self, _app: &Arc<App>) -> Vec<JobKind> {
        Vec::new()
    }

    /// Long-running tasks (a feed, a scheduler). The app starts them once it is built and
    /// drops them at shutdown; a task does not need to watch for shutdown itself.
    fn background(&self, _app: &Arc<App>) -> Vec<BackgroundTask> {
        Vec::new()
    }

    /// Ports the module provides to other features (see [`crate::ports`]).
    fn provides(&self) -> Vec<Port> {
        Vec::new()
    }

    /// HTTP routes the module serves on Beacon's web server (under paths it owns, e.g.
    /// `/transcripts/…`); each checks its own authorization. Links to them start with
    /// [`App::public_url`].
    fn routes(&self, _app: &Arc<App>) -> Option<axum::Router> {
        None
    }

    /// Per-guild endpoints of the web API, mounted under `/api/v1/guilds/{guild_id}` behind
    /// the login, CSRF and access checks; a handler takes [`crate::ApiGuild`] (its guild, the
    /// user, their level) and never sees another guild. Paths should start with `/{name}`.
    fn api_routes(&self, _app: &Arc<App>) -> Vec<crate::api::ApiRoute> {
        Vec::new()
    }

    /// Dashboard pages, described as data over the module's own [`Module::api_routes`]
    /// (see [`crate::pages`]); `beacon-web` renders them for guilds where the module is on.
    fn pages(&self) -> Vec<crate::pages::PageSpec> {
        Vec::new()
    }

    /// CSV exports, served as subcommands of the framework's `/export`.
    fn exports(&self) -> Vec<ExportSpec> {
        Vec::new()
    }

    /// Fields of `/status` in `guild` (e.g. the LLM's providers and this server's usage).
    async fn status(&self, _app: &Arc<App>, _guild: &GuildStore) -> Vec<StatusField> {
        Vec::new()
    }

    /// Fields of `/status` about the member who asked (e.g. their own usage); `/status` is
    /// ephemeral, so only they see them.
    async fn member_status(&self, _app: &Arc<App>, _guild: &GuildStore, _user_id: u64) -> Vec<StatusField> {
        Vec::new()
    }

    /// Checks `/health/ready` and `/status` run besides the database and cache.
    async fn readiness(&self, _app: &Arc<App>) -> Vec<Check> {
        Vec::new()
    }

    /// Removes what the module keeps for `guild_id` outside its tables (files, objects, indexes)
    /// when the guild is purged; runs before the rows go. Returns what was removed, for the
    /// operator.
    async fn purge_guild(&self, _app: &Arc<App>, _guild_id: u64) -> Result<Vec<String>, HandlerError> {
        Ok(Vec::new())
    }

    /// What each guild table of [`Module::schemas`] holds about members (see
    /// [`crate::privacy`]): every guild table must be declared, or the app is not built.
    fn personal_data(&self) -> Vec<PersonalData> {
        Vec::new()
    }

    /// The module's records about `user_id` in `guild`, for `/privacy export`: by default the
    /// declared rows of [`Module::personal_data`]; a module that keeps member data elsewhere
    /// (files, the cache) adds it, with what it withheld and why.
    async fn export_member(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        user_id: u64,
    ) -> Result<Vec<ExportPart>, HandlerError> {
        crate::privacy::export_declared(&self.personal_data(), guild, user_id).await
    }

    /// Erases or anonymises the module's records about `user_id` in `guild`, for `/privacy
    /// delete`: by default the declared statements of [`Module::personal_data`]; returns what
    /// was changed and what was kept and why.
    async fn erase_member(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        user_id: u64,
    ) -> Result<Vec<ErasureLine>, HandlerError> {
        crate::privacy::erase_declared(&self.personal_data(), guild, user_id).await
    }

    /// Kinds of data the module keeps for a limited time (see [`crate::retention`]): each gets a
    /// per-guild duration setting shown in `/config`, and housekeeping expires what is older.
    fn retention(&self) -> Vec<Retention> {
        Vec::new()
    }

    /// Expires what `rule` (one of [`Module::retention`]) keeps of `guild` from before
    /// `cutoff_ms`; returns how many records went. By default the rule's statements; a module
    /// that keeps that kind outside the database too (files, objects) overrides this to remove
    /// them with the rows.
    async fn expire(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        rule: &Retention,
        cutoff_ms: i64,
    ) -> Result<u64, HandlerError> {
        Ok(guild.expire_rows(rule.expire, cutoff_ms).await?.iter().sum())
    }

    /// Core modules cannot be switched off.
    fn can_disable(&self) -> bool {
        true
    }

    /// On in a new guild unless the module needs configuration first.
    fn enabled_by_default(&self) -> bool {
        true
    }

    /// Handles one of [`Module::commands`].
    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("module {} declares /{} but does not handle it", self.name(), ctx.name)))
    }

    /// Handles one of [`Module::commands`] declared [`CommandSpec::in_dms`] when it is used in
    /// the member's DM with Beacon: no server, only the user.
    async fn dm_command(&self, ctx: crate::dm::DmCommandCtx) -> HandlerResult {
        Err(HandlerError::user(format!("/{} works only in a server: use it there.", ctx.name)))
    }

    /// Suggestions while a member types an autocomplete option.
    async fn autocomplete(&self, _ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        Ok(Vec::new())
    }

    /// A button or select menu of this module. A component the module sends by DM names its
    /// guild in its custom id, `{module}:dm:{guild_id}:…`: it then arrives as an interaction of
    /// that guild from an outsider (no roles, no permissions).
    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("unhandled component {}", ctx.custom_id)))
    }

    /// A submitted modal of this module.
    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        Err(HandlerError::internal(format!("unhandled modal {}", ctx.custom_id)))
    }

    /// A gateway event of [`Module::events`] in a guild where the module is enabled (and
    /// guild-less events of those kinds).
    async fn event(&self, _ctx: EventCtx) -> HandlerResult {
        Ok(())
    }

    /// A setting changed in some guild (any module's setting).
    async fn setting_changed(&self, _app: &Arc<App>, _change: &SettingChanged) {}
}

/// One field of the `/status` embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusField {
    /// The field's title, e.g. `LLM`.
    pub name: String,
    /// Its text (Discord limits a field to 1,024 characters; longer text is cut).
    pub value: String,
}

impl StatusField {
    /// A field.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> StatusField {
        StatusField { name: name.into(), value: value.into() }
    }
}

/// What every interaction handler gets.
pub struct InteractionCtx {
    /// The shared app.
    pub app: Arc<App>,
    /// The interaction as Discord sent it.
    pub interaction: Arc<Interaction>,
    /// The guild's data (every query bound to it).
    pub guild: GuildStore,
    /// Who invoked it: user, roles, permissions.
    pub caller: Caller,
    /// The caller's level, already computed.
    pub access: Access,
    /// Answers the interaction (defer, reply, edits, follow-ups).
    pub responder: Responder,
}

impl InteractionCtx {
    /// The guild's id.
    pub fn guild_id(&self) -> u64 {
        self.guild.id()
    }

    /// The invoking user's id.
    pub fn user_id(&self) -> u64 {
        self.caller.user_id
    }

    /// The channel it came from, if any.
    pub fn channel_id(&self) -> Option<u64> {
        self.interaction.channel.as_ref().map(|c| c.id.get())
    }

    /// Refuses unless the caller holds `level`.
    pub fn require(&self, level: Access) -> HandlerResult {
        if self.access >= level { Ok(()) } else { Err(HandlerError::Forbidden(level.refusal().to_owned())) }
    }

    /// Replies (the first reply is the interaction's response; later ones follow up).
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
    /// What every interaction gets.
    pub base: InteractionCtx,
    /// The command's name.
    pub name: String,
    /// Its options (the subcommand and its values).
    pub options: Options,
    /// The member a user context-menu command was used on.
    pub target_id: Option<u64>,
}

/// A member typing in an autocomplete option.
pub struct AutocompleteCtx {
    /// What every interaction gets.
    pub base: InteractionCtx,
    /// The command's name.
    pub name: String,
    /// The options typed so far (one is focused).
    pub options: Options,
}

/// A button click or select menu choice.
pub struct ComponentCtx {
    /// What every interaction gets.
    pub base: InteractionCtx,
    /// The clicked component's `custom_id`.
    pub custom_id: String,
    /// The chosen values of a select menu.
    pub values: Vec<String>,
    /// The message the component is on.
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
    /// What every interaction gets.
    pub base: InteractionCtx,
    /// The modal's `custom_id`.
    pub custom_id: String,
    /// Text inputs by custom id.
    pub fields: BTreeMap<String, String>,
}

impl ModalCtx {
    /// The part of the custom id after `"{module}:"`.
    pub fn action(&self) -> &str {
        self.custom_id.split_once(':').map(|(_, rest)| rest).unwrap_or("")
    }

    /// A text input's value by its custom id.
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
    /// The shared app.
    pub app: Arc<App>,
    /// The shard that received it (`None` for synthetic events).
    pub shard_id: Option<u32>,
    /// The guild it belongs to, if any.
    pub guild_id: Option<u64>,
    /// The event.
    pub event: Arc<Event>,
}

impl EventCtx {
    /// Claims one side effect of an event, once across redeliveries (a resumed session replays
    /// events, a worker's stream entry is delivered again) and across processes: `true` for the
    /// first caller of `(what, id)`. Call it right before the side effect, e.g.
    /// `ctx.claim("support-answer", message.id)`. When the handler then fails, the claim is
    /// released so the redelivered event does it (see [`claim_event`]).
    pub async fn claim(&self, what: &str, id: u64) -> bool {
        claim_event(&self.app, what, id).await
    }
}

/// The claims one module's handler made for the event in hand; set by the router around each
/// handler (see [`EVENT_CLAIMS`]).
#[derive(Debug, Default)]
pub(crate) struct ClaimScope {
    /// The event came from a worker's stream: it is delivered again until a handler run
    /// succeeds, so a claim is recorded only once that run succeeded (`deferred`), and a claim
    /// that cannot be checked fails the event instead of being granted.
    pub(crate) strict: bool,
    /// Released when the handler fails (`beacon run`).
    pub(crate) made: std::sync::Mutex<Vec<(String, u64)>>,
    /// Granted and recorded by the router when the handler succeeds (a worker): a worker killed
    /// mid-handler leaves nothing recorded, so the redelivered event does the effect.
    pub(crate) deferred: std::sync::Mutex<Vec<(String, u64)>>,
    /// A claim could not be checked (strict only).
    pub(crate) failed: std::sync::atomic::AtomicBool,
}

tokio::task_local! {
    pub(crate) static EVENT_CLAIMS: Arc<ClaimScope>;
}

/// [`EventCtx::claim`] for code that holds the [`App`] rather than the context.
///
/// Inside an event handler the claim is provisional. In `beacon run` it is recorded at once and
/// released when the handler returns an error (its side effect did not happen: Discord answered
/// 5xx, the database went away), so the event delivered again does the effect then. In a worker
/// it is checked now and recorded only when the handler succeeds: a worker killed mid-handler
/// (its partition's events are handled one at a time, so no second run races it) records
/// nothing, and the redelivered event does the effect — which is why the effect itself should
/// be idempotent where Discord allows it (a message posted with an enforced nonce). After a
/// successful side effect a handler should not fail on bookkeeping. When the database cannot be
/// reached, `beacon run` grants the claim (a member's question is not dropped) and a worker
/// fails the event instead (it is delivered again).
pub async fn claim_event(app: &App, what: &str, id: u64) -> bool {
    claim(app, what, id, true).await
}

/// A claim for an effect that cannot be made idempotent (a message to an external agent): taken
/// before it starts and never released, so a redelivered event never starts it again; the
/// handler tells the member it may not have completed instead.
pub async fn claim_event_final(app: &App, what: &str, id: u64) -> bool {
    claim(app, what, id, false).await
}

async fn claim(app: &App, what: &str, id: u64, provisional: bool) -> bool {
    let kind = format!("event:{what}");
    let scope = EVENT_CLAIMS.try_with(Arc::clone).ok();
    let strict = scope.as_ref().is_some_and(|s| s.strict);
    if provisional
        && strict
        && let Some(scope) = &scope
    {
        let key = (kind, id);
        let lock = || scope.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if lock().contains(&key) {
            return false;
        }
        return match app.store.is_claimed(&key.0, id).await {
            Ok(true) => false,
            Ok(false) => {
                lock().push(key);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, what, id, "event claim failed; the event is delivered again");
                scope.failed.store(true, std::sync::atomic::Ordering::Relaxed);
                false
            }
        };
    }
    match app.store.claim_once(&kind, id).await {
        Ok(true) => {
            if provisional && let Some(scope) = &scope {
                scope.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((kind, id));
            }
            true
        }
        Ok(false) => false,
        Err(e) if strict => {
            tracing::warn!(error = %e, what, id, "event claim failed; the event is delivered again");
            if let Some(scope) = &scope {
                scope.failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, what, id, "event claim failed; handling anyway");
            true
        }
    }
}
