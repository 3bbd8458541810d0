//! The one router: every interaction and gateway event goes through here, whichever transport
//! delivered it. Interactions are handled once (claimed by id in the database before the
//! handler runs). Gateway events are not claimed here: most messages cause nothing, and a
//! database write per event would cap ingest at the database's write rate. A module claims an
//! event itself, with [`crate::module::EventCtx::claim`], right before a side effect that must
//! not happen twice (a support answer), and keeps its other reactions idempotent (a ticket's
//! last-activity time).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beacon_discord::gateway::GatewayEvent;
use tokio::sync::oneshot;
use tracing::Instrument;
use twilight_model::application::interaction::modal::ModalInteractionComponent;
use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};
use twilight_model::channel::message::MessageFlags;
use twilight_model::gateway::event::Event;
use twilight_model::gateway::payload::incoming::GuildCreate;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};

use crate::access::Caller;
use crate::app::{App, core_settings};
use crate::command::Options;
use crate::error::HandlerError;
use crate::module::{
    AutocompleteCtx, ClaimScope, CommandCtx, ComponentCtx, EVENT_CLAIMS, EventCtx, InteractionCtx, ModalCtx, Module,
};
use crate::reply::Reply;
use crate::responder::{DeferStyle, Responder};

/// How long the transport waits for a handler's first answer before deferring. Discord allows
/// 3 s from its side; this leaves room for the network and the defer itself.
pub const INITIAL_RESPONSE_BUDGET: Duration = Duration::from_millis(2300);

/// How long an interaction's duplicate check may take before it is handled as new.
const CLAIM_BUDGET: Duration = Duration::from_millis(800);

/// An interaction accepted for handling: its handler is running.
pub struct Dispatched {
    /// Where the handler's answers go.
    pub responder: Responder,
    initial: oneshot::Receiver<InteractionResponse>,
    /// When the interaction reached [`dispatch_interaction`]: the budget counts from here.
    received: tokio::time::Instant,
}

impl Dispatched {
    /// Waits for the handler's initial response, deferring when `budget` (counted from the
    /// interaction's arrival, so a slow claim counts too) runs out.
    pub async fn initial_response(&mut self, budget: Duration) -> InteractionResponse {
        match tokio::time::timeout_at(self.received + budget, &mut self.initial).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => failure_response(),
            Err(_) => match self.responder.try_defer() {
                Some(defer) => defer,
                // The handler answered at the same moment; its answer is in the channel.
                None => (&mut self.initial).await.unwrap_or_else(|_| failure_response()),
            },
        }
    }
}

fn failure_response() -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            content: Some("Something went wrong on our side. Please try again.".into()),
            flags: Some(MessageFlags::EPHEMERAL),
            allowed_mentions: Some(Default::default()),
            ..Default::default()
        }),
    }
}

/// Starts handling an interaction. Returns `None` when this interaction id was already handled
/// (a redelivery), in which case nothing must be answered.
pub async fn dispatch_interaction(app: &Arc<App>, interaction: Interaction) -> Option<Dispatched> {
    let received = tokio::time::Instant::now();
    let kind = kind_label(interaction.kind);
    // Availability over strictness: a claim that fails, or that the database has not answered
    // within CLAIM_BUDGET (a pool still connecting, a database restarting), must not drop a
    // member's command or miss Discord's 3 s; the rare duplicate it lets through is refused by
    // Discord (an interaction is acknowledged once).
    match tokio::time::timeout(CLAIM_BUDGET, app.store.claim_once("interaction", interaction.id.get())).await {
        Ok(Ok(true)) => app.metrics.interaction(kind, "handled"),
        Ok(Ok(false)) => {
            app.metrics.interaction(kind, "duplicate");
            tracing::info!(interaction_id = interaction.id.get(), "duplicate interaction ignored");
            return None;
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "interaction claim failed; handling anyway"),
        Err(_) => tracing::warn!(budget = ?CLAIM_BUDGET, "interaction claim too slow; handling anyway"),
    }
    app.set_application_id(interaction.application_id);
    let defer_style = match interaction.kind {
        InteractionType::MessageComponent => DeferStyle::Update,
        InteractionType::ApplicationCommandAutocomplete => DeferStyle::EmptyChoices,
        // A slow answer is deferred as what it will be: public for a public command.
        InteractionType::ApplicationCommand => {
            let public = match &interaction.data {
                Some(InteractionData::ApplicationCommand(data)) => {
                    app.module_for_command(&data.name).is_some_and(|(_, spec)| spec.public)
                }
                _ => false,
            };
            DeferStyle::Message { ephemeral: !public }
        }
        _ => DeferStyle::Message { ephemeral: true },
    };
    let (responder, initial) = Responder::new(
        app.http.clone(),
        interaction.application_id,
        interaction.id,
        interaction.token.clone(),
        defer_style,
    );
    let span = tracing::info_span!(
        "interaction",
        interaction_id = interaction.id.get(),
        guild_id = interaction.guild_id.map(|g| g.get()),
        kind = ?interaction.kind,
    );
    let task_app = app.clone();
    let task_responder = responder.clone();
    app.tasks.spawn(
        async move {
            let interaction = Arc::new(interaction);
            let result = run_interaction(&task_app, interaction.clone(), task_responder.clone()).await;
            record_activity(&task_app, &interaction, &result).await;
            finish(&task_responder, result).await;
        }
        .instrument(span),
    );
    Some(Dispatched { responder, initial, received })
}

fn kind_label(kind: InteractionType) -> &'static str {
    match kind {
        InteractionType::Ping => "ping",
        InteractionType::ApplicationCommand => "command",
        InteractionType::MessageComponent => "component",
        InteractionType::ApplicationCommandAutocomplete => "autocomplete",
        InteractionType::ModalSubmit => "modal",
        _ => "other",
    }
}

/// Counts a command run in its guild (`command_usage`: the command and how it ended, nothing
/// about the member) and records a handler failure (`handler_errors`: the module, the reference
/// the member is shown, the message with personal data redacted), for `/status`. Recording is
/// best effort: a failure to record is logged and the member's answer does not wait on it.
async fn record_activity(app: &App, interaction: &Interaction, result: &Result<(), HandlerError>) {
    let Some(guild_id) = interaction.guild_id.map(|g| g.get()) else {
        return;
    };
    let guild = app.guild(guild_id);
    let now = beacon_store::now_ms();
    let prefix_module = |custom_id: &str| app.module_named(custom_id.split(':').next().unwrap_or_default());
    let (command, module) = match &interaction.data {
        Some(InteractionData::ApplicationCommand(data)) if interaction.kind == InteractionType::ApplicationCommand => {
            (Some(data.name.as_str()), app.module_for_command(&data.name).map(|(m, _)| m))
        }
        Some(InteractionData::MessageComponent(data)) => (None, prefix_module(&data.custom_id)),
        Some(InteractionData::ModalSubmit(data)) => (None, prefix_module(&data.custom_id)),
        _ => return,
    };
    if let Some(command) = command {
        let outcome = match result {
            Ok(()) => beacon_store::Outcome::Ok,
            Err(e) if e.is_for_member() => beacon_store::Outcome::Refused,
            Err(_) => beacon_store::Outcome::Failed,
        };
        if let Err(e) = guild.record_command(command, outcome, now).await {
            tracing::warn!(error = %e, "recording command usage failed");
        }
    }
    if let Err(err) = result
        && !err.is_for_member()
    {
        let module = module.map_or(crate::privacy::CORE, |m| m.name());
        let message = beacon_pii::redact(&err.to_string());
        if let Err(e) = guild.record_error(module, interaction.id.get(), &message, now).await {
            tracing::warn!(error = %e, "recording a handler error failed");
        }
    }
}

/// Reports a handler's error to the member, and makes sure every interaction gets an answer.
async fn finish(responder: &Responder, result: Result<(), HandlerError>) {
    match result {
        Ok(()) if responder.is_acknowledged() => {}
        Ok(()) => {
            // A handler that said nothing: acknowledge so Discord does not show a failure.
            if let Err(e) = responder.defer() {
                tracing::warn!(error = %e, "could not acknowledge a silent handler");
            }
        }
        Err(err) => {
            let text = if err.is_for_member() {
                err.to_string()
            } else {
                let reference = responder.interaction_id().get();
                tracing::error!(error = %err, reference, "handler failed");
                format!(
                    "Something went wrong on our side (ref `{reference}`). Please try again; if it keeps happening, tell a server admin."
                )
            };
            if let Err(e) = responder.reply(Reply::text(text).ephemeral()).await {
                tracing::warn!(error = %e, "could not report a handler error to the member");
            }
        }
    }
}

async fn run_interaction(
    app: &Arc<App>,
    interaction: Arc<Interaction>,
    responder: Responder,
) -> Result<(), HandlerError> {
    if interaction.kind == InteractionType::Ping {
        return Ok(());
    }
    if interaction.guild_id.is_none() && matches!(interaction.data, Some(InteractionData::ApplicationCommand(_))) {
        return crate::dm::run_command(app, interaction, responder).await;
    }
    let guild = match interaction.guild_id.map(|g| g.get()) {
        Some(guild_id) => ensure_guild(app, guild_id).await?,
        None => dm_guild(app, &interaction).await?,
    };
    let member = interaction.member.as_ref();
    let caller = Caller {
        user_id: interaction.author_id().map(|u| u.get()).unwrap_or(0),
        roles: member.map(|m| m.roles.iter().map(|r| r.get()).collect()).unwrap_or_default(),
        permissions: member.and_then(|m| m.permissions),
    };
    let staff_roles = app.settings.get_ids(&guild, core_settings::STAFF_ROLES).await?;
    let access = app.permissions.level(&guild, &caller, &staff_roles).await?;
    let base = InteractionCtx {
        app: app.clone(),
        interaction: interaction.clone(),
        guild,
        caller,
        access,
        responder: responder.clone(),
    };
    match &interaction.data {
        Some(InteractionData::ApplicationCommand(data)) => {
            let Some((module, spec)) = app.module_for_command(&data.name) else {
                return Err(HandlerError::user(format!("/{} is not a Beacon command any more.", data.name)));
            };
            let options = Options::from_data(&data.options).with_resolved(data.resolved.as_ref());
            if interaction.kind == InteractionType::ApplicationCommandAutocomplete {
                // Suggestions are harmless to show but not to compute for everyone: same checks.
                if access < spec.access || !enabled(app, &base, module.as_ref()).await? {
                    return responder.choices(Vec::new());
                }
                let ctx = AutocompleteCtx { base, name: data.name.clone(), options };
                let choices = metered(app, module.name(), "autocomplete", module.autocomplete(ctx)).await?;
                return responder.choices(choices);
            }
            if !enabled(app, &base, module.as_ref()).await? {
                return Err(HandlerError::user(disabled_text(module.as_ref())));
            }
            if access < spec.access {
                tracing::info!(command = %data.name, user_id = base.caller.user_id, "refused: missing access");
                return Err(HandlerError::Forbidden(spec.access.refusal().to_owned()));
            }
            tracing::info!(command = %data.name, path = ?options.path, "command");
            let target_id = data.target_id.map(|t| t.get());
            let ctx = CommandCtx { base, name: data.name.clone(), options, target_id };
            metered(app, module.name(), "command", module.command(ctx)).await
        }
        Some(InteractionData::MessageComponent(data)) => {
            let module = module_for_custom_id(app, &data.custom_id)?;
            if !enabled(app, &base, module.as_ref()).await? {
                return Err(HandlerError::user(disabled_text(module.as_ref())));
            }
            let ctx = ComponentCtx {
                base,
                custom_id: data.custom_id.clone(),
                values: data.values.clone(),
                message_id: interaction.message.as_ref().map(|m| m.id.get()),
            };
            metered(app, module.name(), "component", module.component(ctx)).await
        }
        Some(InteractionData::ModalSubmit(data)) => {
            let module = module_for_custom_id(app, &data.custom_id)?;
            if !enabled(app, &base, module.as_ref()).await? {
                return Err(HandlerError::user(disabled_text(module.as_ref())));
            }
            let mut fields = BTreeMap::new();
            collect_fields(&data.components, &mut fields);
            let ctx = ModalCtx { base, custom_id: data.custom_id.clone(), fields };
            metered(app, module.name(), "modal", module.modal(ctx)).await
        }
        _ => Err(HandlerError::internal("interaction without data")),
    }
}

/// Runs a module's handler, timing it and counting its outcome (`/metrics`); an internal error
/// also goes to the operator's alert webhook when one is configured.
pub(crate) async fn metered<T>(
    app: &Arc<App>,
    module: &'static str,
    kind: &'static str,
    handler: impl std::future::Future<Output = Result<T, HandlerError>>,
) -> Result<T, HandlerError> {
    let started = std::time::Instant::now();
    let result = handler.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_for_member() => "refused",
        Err(_) => "error",
    };
    app.metrics.handler(module, kind, outcome, started.elapsed());
    if outcome == "error" {
        app.alerts.handler_failed(module);
    }
    result
}

/// The guild of a button or form in a direct message: a module that sends one by DM names
/// its guild in the custom id, `{module}:dm:{guild_id}:…` (the member may have left it, e.g.
/// a banned member appealing). The guild must be one the bot is in; the caller is then an
/// outsider there (no roles, no permissions), and the module checks who may do what.
async fn dm_guild(app: &App, interaction: &Interaction) -> Result<beacon_store::GuildStore, HandlerError> {
    let custom_id = match &interaction.data {
        Some(InteractionData::MessageComponent(data)) => Some(data.custom_id.as_str()),
        Some(InteractionData::ModalSubmit(data)) => Some(data.custom_id.as_str()),
        _ => None,
    };
    let guild_id = custom_id
        .and_then(dm_custom_id_guild)
        .ok_or_else(|| HandlerError::user("Beacon's commands work inside a server, not in direct messages."))?;
    let guild = app.guild(guild_id);
    if !app.permissions.facts(&guild).await?.is_active() {
        return Err(HandlerError::user("This server no longer uses Beacon."));
    }
    Ok(guild)
}

/// The guild id of a DM custom id `{module}:dm:{guild_id}:…`.
pub fn dm_custom_id_guild(custom_id: &str) -> Option<u64> {
    let mut parts = custom_id.split(':');
    let (_module, dm, guild) = (parts.next()?, parts.next()?, parts.next()?);
    if dm != "dm" {
        return None;
    }
    guild.parse::<u64>().ok().filter(|g| *g > 0)
}

async fn enabled(app: &App, base: &InteractionCtx, module: &dyn Module) -> Result<bool, HandlerError> {
    Ok(app.module_enabled(&base.guild, module).await?)
}

fn disabled_text(module: &dyn Module) -> String {
    format!(
        "The {0} module is turned off in this server. An admin can turn it on with `/config set key:{0}.enabled value:true`.",
        module.name()
    )
}

fn module_for_custom_id(app: &App, custom_id: &str) -> Result<Arc<dyn Module>, HandlerError> {
    let prefix = custom_id.split(':').next().unwrap_or_default();
    app.module_named(prefix)
        .ok_or_else(|| HandlerError::user("This button belongs to a feature that no longer exists."))
}

fn collect_fields(components: &[ModalInteractionComponent], out: &mut BTreeMap<String, String>) {
    for c in components {
        match c {
            ModalInteractionComponent::ActionRow(row) => collect_fields(&row.components, out),
            ModalInteractionComponent::Label(label) => collect_fields(std::slice::from_ref(&label.component), out),
            ModalInteractionComponent::TextInput(input) => {
                out.insert(input.custom_id.clone(), input.value.clone());
            }
            _ => {}
        }
    }
}

/// Records a guild the first time it is seen (gateway or interaction), making its owner the
/// first authorized user.
pub async fn ensure_guild(app: &App, guild_id: u64) -> Result<beacon_store::GuildStore, HandlerError> {
    let guild = app.guild(guild_id);
    if app.permissions.facts(&guild).await?.is_active() {
        return Ok(guild);
    }
    // Seen only through an HTTP interaction so far: ask Discord who owns it, when we can.
    let (name, owner) = if app.config.discord.token.is_some() {
        match app.http.guild(twilight_model::id::Id::new(guild_id)).await {
            Ok(resp) => match resp.model().await {
                Ok(g) => (g.name, Some(g.owner_id.get())),
                Err(e) => {
                    tracing::warn!(error = %e, guild_id, "guild lookup: bad body");
                    (String::new(), None)
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, guild_id, "guild lookup failed");
                (String::new(), None)
            }
        }
    } else {
        (String::new(), None)
    };
    register_guild(app, guild_id, &name, owner).await?;
    Ok(guild)
}

/// Records the guild as joined and, the first time it is seen, its owner as the first
/// authorized user, in one transaction shared with the other registrations waiting (a
/// GUILD_CREATE burst at start-up writes a few hundred guilds per transaction).
async fn register_guild(app: &App, guild_id: u64, name: &str, owner: Option<u64>) -> Result<(), HandlerError> {
    let upsert = app.guild(guild_id).register(name, owner).await?;
    if upsert.created || upsert.rejoined {
        tracing::info!(guild_id, created = upsert.created, "guild joined");
    }
    if upsert.owner_granted {
        tracing::info!(guild_id, "owner recorded as first authorized user");
    }
    Ok(())
}

/// Handles one gateway event: interactions, guild membership, then the modules.
///
/// The branches are boxed futures of their own: an event task is moved a few times on its way
/// into the runtime, and one future holding every branch's state (REST requests, queries) made
/// those moves the largest cost of a message flood.
///
/// Returns which modules' handlers failed (each already logged and counted), so a worker can
/// leave the event to be delivered again: modules claim their side effects, so a second
/// delivery repeats none of what the first did.
pub async fn handle_gateway_event(app: &Arc<App>, event: GatewayEvent) -> Result<(), EventFailed> {
    let shard_id = event.shard_id;
    let event = event.event;
    match &event {
        Event::InteractionCreate(create) => {
            Box::pin(answer_gateway_interaction(app, create.0.clone())).await;
            return Ok(());
        }
        Event::GuildCreate(create) => {
            if let GuildCreate::Available(g) = create.as_ref()
                && let Err(e) = Box::pin(register_guild(app, g.id.get(), &g.name, Some(g.owner_id.get()))).await
            {
                tracing::error!(error = %e, guild_id = g.id.get(), "guild registration failed");
                return Err(EventFailed { failed: vec![("core", e.to_string())] });
            }
        }
        Event::GuildDelete(delete) if delete.unavailable != Some(true) => {
            if let Err(e) = Box::pin(app.guild(delete.id.get()).mark_left()).await {
                tracing::error!(error = %e, guild_id = delete.id.get(), "marking guild left failed");
                return Err(EventFailed { failed: vec![("core", e.to_string())] });
            } else {
                tracing::info!(guild_id = delete.id.get(), "guild left; data kept for the retention period");
            }
        }
        _ => {}
    }
    let kind = event.kind();
    let failed = if app.modules.iter().any(|m| m.events().contains(&kind)) {
        Box::pin(run_modules(app, shard_id, Arc::new(event))).await
    } else {
        Vec::new()
    };
    app.metrics.gateway_event(kind.name().unwrap_or("OTHER"));
    if failed.is_empty() { Ok(()) } else { Err(EventFailed { failed }) }
}

/// Modules whose handlers failed on a gateway event, with their errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFailed {
    /// Module name and error, in the order the modules ran.
    pub failed: Vec<(&'static str, String)>,
}

impl std::fmt::Display for EventFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.failed.iter().map(|(m, e)| format!("{m}: {e}")).collect();
        write!(f, "event handlers failed: {}", parts.join("; "))
    }
}

impl std::error::Error for EventFailed {}

async fn answer_gateway_interaction(app: &Arc<App>, interaction: Interaction) {
    let (application_id, id, token) = (interaction.application_id, interaction.id, interaction.token.clone());
    if let Some(mut dispatched) = dispatch_interaction(app, interaction).await {
        let response = dispatched.initial_response(INITIAL_RESPONSE_BUDGET).await;
        let client = app.http.interaction(application_id);
        if let Err(e) = client.create_response(id, &token, &response).await {
            tracing::warn!(error = %e, interaction_id = id.get(), "initial response failed");
        }
        dispatched.responder.mark_delivered();
    }
}

/// Gives the event to every module that handles its kind and is enabled in its guild; returns
/// the modules that failed.
async fn run_modules(app: &Arc<App>, shard_id: u32, event: Arc<Event>) -> Vec<(&'static str, String)> {
    let mut failed = Vec::new();
    let guild_id = event.guild_id().map(|g| g.get());
    let kind = event.kind();
    for module in app.modules.iter().filter(|m| m.events().contains(&kind)) {
        if let Some(g) = guild_id {
            match app.module_enabled(&app.guild(g), module.as_ref()).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, module = module.name(), "module state unknown; skipping event");
                    failed.push((module.name(), format!("module state unknown: {e}")));
                    continue;
                }
            }
        }
        let ctx = EventCtx { app: app.clone(), shard_id: Some(shard_id), guild_id, event: event.clone() };
        // The claims the handler makes are provisional: released when it fails, so the event
        // delivered again does what did not happen.
        let scope = Arc::new(ClaimScope { strict: app.streams.is_some(), ..ClaimScope::default() });
        let result = EVENT_CLAIMS.scope(scope.clone(), metered(app, module.name(), "event", module.event(ctx))).await;
        let error = match result {
            // `metered` has counted it.
            Err(e) => Some(e.to_string()),
            Ok(()) if scope.failed.load(std::sync::atomic::Ordering::Relaxed) => {
                app.metrics.handler_error(module.name());
                Some("a side effect's claim could not be recorded".to_owned())
            }
            Ok(()) => {
                record_deferred_claims(app, &scope).await;
                None
            }
        };
        if let Some(error) = error {
            tracing::error!(error, module = module.name(), kind = ?event.kind(), "event handler failed");
            let made = std::mem::take(&mut *scope.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            for (kind, id) in made {
                if let Err(e) = app.store.release_claim(&kind, id).await {
                    tracing::warn!(error = %e, kind, id, "releasing a claim failed; its effect is not retried");
                }
            }
            failed.push((module.name(), error));
        }
    }
    failed
}

/// Records the claims a worker's handler made once it succeeded (see `claim_event`). Its effects
/// happened, so a claim that cannot be recorded is logged rather than failing the event: a
/// failed event is delivered again and would repeat them.
async fn record_deferred_claims(app: &App, scope: &ClaimScope) {
    let deferred = std::mem::take(&mut *scope.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for (kind, id) in deferred {
        if let Err(e) = app.store.claim_once(&kind, id).await {
            tracing::warn!(error = %e, kind, id, "an effect happened but its claim was not recorded; a replay may repeat it");
        }
    }
}

/// Runs every module's `setting_changed` for each change, until shutdown: the changes made in this
/// process at once, and those other processes sharing the database made, read from the settings
/// audit trail every [`beacon_store::POLL_EVERY`] (so every process's listeners fire, not only
/// the one that made the change).
pub fn spawn_setting_listener(app: &Arc<App>) {
    let mut changes = app.settings.subscribe();
    let listening = app.clone();
    app.tasks.spawn(async move {
        let app = listening;
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                change = changes.recv() => match change {
                    Ok(change) => {
                        for module in &app.modules {
                            module.setting_changed(&app, &change).await;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "setting listeners fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
    let following = app.clone();
    app.tasks.spawn(async move {
        let app = following;
        tokio::select! {
            _ = app.shutdown.cancelled() => {}
            _ = follow_setting_changes(&app) => {}
        }
    });
}

/// Announces the other processes' setting changes to this process's listeners, each once.
async fn follow_setting_changes(app: &App) {
    let now = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    };
    // Audit ids announced, with their time, for as long as a poll can see them again.
    let mut announced: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    let mut since = now();
    let mut failing = false;
    let mut tick = tokio::time::interval(beacon_store::POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = now();
        match app.store.setting_changes_elsewhere(since - beacon_store::OVERLAP_MS).await {
            Ok(elsewhere) => {
                for change in elsewhere {
                    if announced.insert(change.audit_id, change.at).is_none() {
                        app.settings.announce_elsewhere(&change);
                    }
                }
                failing = false;
                since = started;
                announced.retain(|_, at| *at >= since - 2 * beacon_store::OVERLAP_MS);
            }
            Err(e) => {
                // Polled again from the same point once the database answers: nothing is missed.
                if !failing {
                    tracing::warn!(error = %e, "cannot read other processes' setting changes; retrying");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dm_custom_id_guild;

    #[test]
    fn dm_custom_ids_name_their_guild() {
        assert_eq!(dm_custom_id_guild("moderation:dm:42:appeal:7"), Some(42));
        assert_eq!(dm_custom_id_guild("moderation:appeal:42"), None);
        assert_eq!(dm_custom_id_guild("moderation:dm:0:appeal"), None);
        assert_eq!(dm_custom_id_guild("moderation:dm:x"), None);
    }
}
