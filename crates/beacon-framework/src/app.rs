//! The shared state of a running Beacon process and how it is assembled.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use beacon_cache::Cache;
use beacon_config::Config;
use beacon_discord::gateway::ShardBoard;
use beacon_store::{GuildStore, Store, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use twilight_model::gateway::Intents;
use twilight_model::id::Id;
use twilight_model::id::marker::ApplicationMarker;

use crate::access::PermissionService;
use crate::alerts::Alerts;
use crate::command::CommandSpec;
use crate::export::ExportModule;
use crate::metrics::Metrics;
use crate::module::Module;
use crate::ports::{Port, Ports};
use crate::settings::{SettingKind, SettingSpec, SettingsService};

/// Setting keys the framework itself owns.
pub mod core_settings {
    /// Roles whose members count as staff.
    pub const STAFF_ROLES: &str = "core.staff_roles";
    /// Channel where Beacon posts its own logs (setting changes, transcripts…).
    pub const LOG_CHANNEL: &str = "core.log_channel";
}

/// Everything a handler can reach. One per process, shared behind an `Arc`.
pub struct App {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The cache and rate limits (in-process or Redis).
    pub cache: Cache,
    /// Discord's REST API.
    pub http: Arc<twilight_http::Client>,
    /// Typed per-guild settings.
    pub settings: SettingsService,
    /// Who may do what (access levels).
    pub permissions: PermissionService,
    /// Every module, in registration order.
    pub modules: Vec<Arc<dyn Module>>,
    /// What the modules provide each other (see [`crate::ports`]).
    pub ports: Ports,
    /// The shards: this process's own and those other gateway processes publish.
    pub shards: ShardBoard,
    /// The event streams between gateway and worker processes (scale-out roles only).
    pub streams: Option<beacon_streams::Streams>,
    /// The `/metrics` counters.
    pub metrics: Metrics,
    /// Alerts to the operator's Discord webhook (`BEACON_ALERT_WEBHOOK_URL`).
    pub alerts: Alerts,
    /// When the process started.
    pub started_at: Instant,
    /// In-flight handlers; shutdown waits for them.
    pub tasks: TaskTracker,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Whether this process runs gateway shards (a token was configured).
    pub gateway_enabled: bool,
    /// Cancelled when a part of the process stopped for good (the gateway refused by Discord):
    /// readiness fails and `beacon run` exits with an error.
    pub fatal: CancellationToken,
    /// Why [`App::fatal`] was cancelled, for the operator.
    fatal_reason: OnceLock<String>,
    /// Seals stored credentials and signs the links Beacon posts.
    pub keyring: Option<Arc<beacon_crypto::Keyring>>,
    /// The address the web server is bound to, once it is (see [`App::public_url`]).
    http_addr: OnceLock<std::net::SocketAddr>,
    application_id: OnceLock<Id<ApplicationMarker>>,
    /// The last database guild count and when it was taken (see [`App::guild_count`]).
    guild_count: std::sync::Mutex<Option<(Instant, i64)>>,
    /// The last dependency checks and when they ran (see [`App::recent_checks`]).
    last_checks: std::sync::Mutex<Option<(Instant, Vec<Check>)>>,
}

/// How old the checks `/status` shows may be.
const CHECKS_TTL: Duration = Duration::from_secs(1);

/// How long a guild count from the database is reused by [`App::guild_count`].
const GUILD_COUNT_TTL: Duration = Duration::from_secs(10);

/// Why the app could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("module {module}: {reason}")]
    /// A module's declaration is unusable.
    Module {
        /// The module.
        module: &'static str,
        /// What is wrong.
        reason: String,
    },
    #[error(transparent)]
    /// The database failed while migrating.
    Store(#[from] StoreError),
}

/// Assembles an [`App`] from configuration, backends and modules.
pub struct AppBuilder {
    config: Arc<Config>,
    store: Store,
    cache: Cache,
    http: Arc<twilight_http::Client>,
    shards: ShardBoard,
    streams: Option<beacon_streams::Streams>,
    modules: Vec<Arc<dyn Module>>,
    gateway_enabled: bool,
    keyring: Option<Arc<beacon_crypto::Keyring>>,
    metrics: Metrics,
}

impl AppBuilder {
    /// A builder over the backends, with no module yet.
    pub fn new(config: Arc<Config>, store: Store, cache: Cache, http: Arc<twilight_http::Client>) -> AppBuilder {
        let gateway_enabled = config.discord.token.is_some() && config.discord.gateway_enabled;
        AppBuilder {
            config,
            store,
            cache,
            http,
            shards: ShardBoard::default(),
            streams: None,
            modules: Vec::new(),
            gateway_enabled,
            keyring: None,
            metrics: Metrics::new(),
        }
    }

    /// Uses `metrics` for `/metrics` (shared with a backend built before the app, such as the
    /// LLM service, which reports its calls there).
    pub fn metrics(mut self, metrics: Metrics) -> AppBuilder {
        self.metrics = metrics;
        self
    }

    /// Adds a module.
    pub fn module(mut self, module: impl Module) -> AppBuilder {
        self.modules.push(Arc::new(module));
        self
    }

    /// Adds several modules.
    pub fn modules(mut self, modules: impl IntoIterator<Item = Arc<dyn Module>>) -> AppBuilder {
        self.modules.extend(modules);
        self
    }

    /// Seals credentials and signs links with `keyring`.
    pub fn keyring(mut self, keyring: Arc<beacon_crypto::Keyring>) -> AppBuilder {
        self.keyring = Some(keyring);
        self
    }

    /// Connects the app to the event streams of the scale-out roles (`/status` and readiness
    /// check them; a gateway appends to them, a worker consumes them).
    pub fn streams(mut self, streams: beacon_streams::Streams) -> AppBuilder {
        self.streams = Some(streams);
        self
    }

    /// Uses `shards` as the shard board (shared with a gateway started elsewhere).
    pub fn shards(mut self, shards: ShardBoard) -> AppBuilder {
        self.shards = shards;
        self
    }

    /// Checks the declarations, migrates the modules' schemas (the job table first: the app
    /// runs the jobs), adds `/export` when a module declares exports, and builds the app.
    pub async fn build(mut self) -> Result<Arc<App>, BuildError> {
        let exports: Vec<_> =
            self.modules.iter().flat_map(|m| m.exports().into_iter().map(move |e| (m.name(), e))).collect();
        if !exports.is_empty() {
            self.modules.push(Arc::new(ExportModule { exports }));
        }
        self.store.migrate_schema(&beacon_jobs::SCHEMA).await?;
        let mut specs = core_setting_specs();
        specs.extend(crate::retention::core_retention().iter().map(crate::retention::Retention::setting_spec));
        let mut names = BTreeSet::new();
        let mut commands = BTreeSet::new();
        for module in &self.modules {
            let name = module.name();
            let fail = |reason: String| BuildError::Module { module: name, reason };
            if !names.insert(name) {
                return Err(fail("two modules have this name".into()));
            }
            for spec in module.settings() {
                if !spec.key.starts_with(&format!("{name}.")) {
                    return Err(fail(format!("setting {} must start with `{name}.`", spec.key)));
                }
                spec.kind.validate(&spec.default).map_err(|r| fail(format!("default of {} {r}", spec.key)))?;
                specs.push(spec);
            }
            for rule in module.retention() {
                if !rule.setting.starts_with(&format!("{name}.")) {
                    return Err(fail(format!("retention setting {} must start with `{name}.`", rule.setting)));
                }
                specs.push(rule.setting_spec());
            }
            if module.can_disable() {
                specs.push(SettingSpec::new(
                    leak(format!("{name}.enabled")),
                    SettingKind::Bool,
                    json!(module.enabled_by_default()),
                    leak(format!("Whether the {name} module is on in this server.")),
                ));
            }
            for command in module.commands() {
                if !command.valid_name() {
                    return Err(fail(format!("command name `{}` is not valid for Discord", command.name)));
                }
                if !commands.insert(command.name) {
                    return Err(fail(format!("command /{} is declared twice", command.name)));
                }
            }
            for schema in module.schemas() {
                self.store.migrate_schema(&schema).await.map_err(|e| fail(e.to_string()))?;
            }
            let undeclared = crate::privacy::undeclared_tables(module.as_ref());
            if !undeclared.is_empty() {
                return Err(fail(format!(
                    "guild tables {undeclared:?} do not say what they hold about members (Module::personal_data)"
                )));
            }
        }
        match self.store.undeclared_guild_tables().await {
            Ok(tables) if !tables.is_empty() => tracing::warn!(
                ?tables,
                "tables with a guild_id column that no module declares: a guild purge leaves their rows"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not list the database's guild tables"),
        }
        let ports: Vec<Port> = self.modules.iter().flat_map(|m| m.provides()).collect();
        for port in &ports {
            tracing::debug!(port = port.type_name(), provider = port.provider(), "port provided");
        }
        let permissions = PermissionService::new(self.cache.clone(), self.http.clone(), self.config.developers);
        let application_id = OnceLock::new();
        if let Some(id) = self.config.discord.application_id {
            let _ = application_id.set(Id::new(id));
        }
        let alerts = Alerts::new(&self.config.alerts, self.http.clone(), self.metrics.clone());
        Ok(Arc::new(App {
            settings: SettingsService::new(specs),
            permissions,
            config: self.config,
            store: self.store,
            cache: self.cache,
            http: self.http,
            modules: self.modules,
            ports: Ports::new(ports),
            shards: self.shards,
            alerts,
            streams: self.streams,
            metrics: self.metrics,
            started_at: Instant::now(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            gateway_enabled: self.gateway_enabled,
            fatal: CancellationToken::new(),
            fatal_reason: OnceLock::new(),
            keyring: self.keyring,
            http_addr: OnceLock::new(),
            application_id,
            guild_count: std::sync::Mutex::new(None),
            last_checks: std::sync::Mutex::new(None),
        }))
    }
}

// Setting specs hold `&'static str`; generated keys live for the whole process, created once at
// start-up, so leaking them is bounded by the number of modules.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn core_setting_specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            core_settings::STAFF_ROLES,
            SettingKind::list(SettingKind::Role, 10),
            json!([]),
            "Roles whose members count as staff (tickets, moderation, FAQ edits).",
        ),
        SettingSpec::new(
            core_settings::LOG_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Channel where Beacon posts its log (setting changes, transcripts).",
        ),
    ]
}

/// Result of one dependency check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked (`database`, `cache`, `gateway`, …).
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// How long the check took.
    pub latency: Duration,
    /// The backend's name, or what went wrong.
    pub detail: String,
}

impl App {
    /// Beacon's version.
    pub fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// The scope of one guild's data.
    pub fn guild(&self, guild_id: u64) -> GuildStore {
        self.store.guild(guild_id)
    }

    /// The application's id, once known (configured, or learned from Discord).
    pub fn application_id(&self) -> Option<Id<ApplicationMarker>> {
        self.application_id.get().copied()
    }

    /// Learns the application id (from an interaction or from Discord) when it was not configured.
    pub fn set_application_id(&self, id: Id<ApplicationMarker>) {
        let _ = self.application_id.set(id);
    }

    /// How long the process has run.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Gateway intents: what the enabled modules need, plus guild events for registration.
    pub fn intents(&self) -> Intents {
        self.modules.iter().fold(Intents::GUILDS, |acc, m| acc | m.intents())
    }

    /// The gateway events this process handles: the router's own (interactions, guild joins
    /// and leaves, the session's start) and every module's [`Module::events`]. The shards drop
    /// any other dispatch before deserializing it.
    pub fn gateway_events(&self) -> beacon_discord::EventTypeFlags {
        use beacon_discord::EventTypeFlags as F;
        let router = F::INTERACTION_CREATE | F::GUILD_CREATE | F::GUILD_DELETE | F::READY;
        self.modules.iter().flat_map(|m| m.events().iter().copied()).fold(router, |acc, kind| acc | F::from(kind))
    }

    /// Records that a part of the process stopped for good and why: logged once, shown by
    /// readiness and `/status`, and [`App::fatal`] is cancelled.
    pub fn fail(&self, reason: String) {
        tracing::error!("{reason}");
        let _ = self.fatal_reason.set(reason);
        self.fatal.cancel();
    }

    /// Why the process can no longer work, if it cannot.
    pub fn fatal_reason(&self) -> Option<&str> {
        self.fatal_reason.get().map(String::as_str)
    }

    /// The base of every link Beacon posts: `BEACON_PUBLIC_URL`, else the address the web
    /// server is bound to.
    pub fn public_url(&self) -> String {
        let addr = self.http_addr.get().copied().unwrap_or(self.config.http_addr);
        self.config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"))
    }

    /// Records the address the web server was bound to (with port 0, the one the OS chose).
    pub fn set_http_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.http_addr.set(addr);
    }

    /// Discord permissions the bot needs: the union of what the modules declare.
    pub fn permissions(&self) -> twilight_model::guild::Permissions {
        self.modules.iter().fold(twilight_model::guild::Permissions::empty(), |acc, m| acc | m.permissions())
    }

    /// The link that adds the bot to a server, asking for [`App::permissions`] and nothing more.
    pub fn invite_url(&self, client_id: u64) -> String {
        format!(
            "https://discord.com/oauth2/authorize?client_id={client_id}&scope=bot%20applications.commands&permissions={}",
            self.permissions().bits()
        )
    }

    /// The first provider of the port `T` (see [`crate::ports`]), if any module provides it.
    pub fn port<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.ports.get::<T>()
    }

    /// Removes everything of `guild_id`: first what each module keeps outside its tables (files,
    /// objects, indexes), then every row of every declared guild-owned table (the guild record
    /// last). Returns what was removed, one line each, for the operator.
    pub async fn purge_guild(self: &Arc<Self>, guild_id: u64) -> Result<Vec<String>, crate::error::HandlerError> {
        let mut report = Vec::new();
        for module in &self.modules {
            for line in module.purge_guild(self, guild_id).await? {
                report.push(format!("{}: {line}", module.name()));
            }
        }
        for (table, rows) in self.store.purge_guild(guild_id).await? {
            report.push(format!("{table}: {rows} row(s)"));
        }
        Ok(report)
    }

    /// Retention: purges (as [`App::purge_guild`]) every guild marked left before the unix-ms
    /// `left_before_ms`; a guild that rejoined meanwhile keeps its data. Returns the purged ids.
    pub async fn purge_left_guilds(
        self: &Arc<Self>,
        left_before_ms: i64,
    ) -> Result<Vec<u64>, crate::error::HandlerError> {
        let mut purged = Vec::new();
        for guild_id in self.store.guilds_left_before(left_before_ms).await? {
            for module in &self.modules {
                if let Err(e) = module.purge_guild(self, guild_id).await {
                    tracing::warn!(error = %e, guild_id, module = module.name(), "purging the module's files failed");
                }
            }
            if self.store.purge_guild_if_left(guild_id, left_before_ms).await?.is_some() {
                tracing::info!(guild_id, "purged data of guild past retention");
                purged.push(guild_id);
            }
        }
        Ok(purged)
    }

    /// All command declarations, for `beacon commands sync`.
    pub fn command_specs(&self) -> Vec<CommandSpec> {
        self.modules.iter().flat_map(|m| m.commands()).collect()
    }

    /// The module that declares `/name`, with the declaration.
    pub fn module_for_command(&self, name: &str) -> Option<(Arc<dyn Module>, CommandSpec)> {
        self.modules.iter().find_map(|m| m.commands().into_iter().find(|c| c.name == name).map(|c| (m.clone(), c)))
    }

    /// The module called `name`.
    pub fn module_named(&self, name: &str) -> Option<Arc<dyn Module>> {
        self.modules.iter().find(|m| m.name() == name).cloned()
    }

    /// Whether `module` is on in this guild.
    pub async fn module_enabled(
        &self,
        guild: &GuildStore,
        module: &dyn Module,
    ) -> Result<bool, crate::settings::SettingError> {
        if !module.can_disable() {
            return Ok(true);
        }
        self.settings.get_bool(guild, &format!("{}.enabled", module.name())).await
    }

    /// Guilds the bot is in, across every process (the shards of this one may hold only some),
    /// from the database, counted at most every 10 s: a scan of the guild table is not worth
    /// repeating for every `/status`.
    pub async fn guild_count(&self) -> Result<i64, StoreError> {
        if let Ok(memo) = self.guild_count.lock()
            && let Some((at, count)) = *memo
            && at.elapsed() < GUILD_COUNT_TTL
        {
            return Ok(count);
        }
        let count = self.store.guild_count().await?;
        if let Ok(mut memo) = self.guild_count.lock() {
            *memo = Some((Instant::now(), count));
        }
        Ok(count)
    }

    /// The dependency checks, run again when the last ones are over a second old: `/status` is
    /// for everyone, and a burst of it should not become a burst of database pings.
    pub async fn recent_checks(self: &Arc<Self>) -> Vec<Check> {
        if let Ok(last) = self.last_checks.lock()
            && let Some((at, checks)) = last.as_ref()
            && at.elapsed() < CHECKS_TTL
        {
            return checks.clone();
        }
        let checks = self.checks().await;
        if let Ok(mut last) = self.last_checks.lock() {
            *last = Some((Instant::now(), checks.clone()));
        }
        checks
    }

    /// Database and cache health and the modules' own checks, for `/status` and readiness
    /// (always checked live).
    pub async fn checks(self: &Arc<Self>) -> Vec<Check> {
        let started = Instant::now();
        let db = self.store.ping().await;
        let db_check = Check {
            name: "database",
            ok: db.is_ok(),
            latency: started.elapsed(),
            detail: match db {
                Ok(()) => format!("{:?}", self.store.backend()).to_lowercase(),
                Err(e) => e.to_string(),
            },
        };
        let started = Instant::now();
        let cache = self.cache.ping().await;
        let cache_check = Check {
            name: "cache",
            ok: cache.is_ok(),
            latency: started.elapsed(),
            detail: match cache {
                Ok(()) => self.cache.kind().to_owned(),
                Err(e) => e.to_string(),
            },
        };
        let mut checks = vec![db_check, cache_check];
        if let Some(streams) = &self.streams {
            let started = Instant::now();
            let stats = streams.stats().await;
            checks.push(Check {
                name: "event streams",
                ok: stats.is_ok(),
                latency: started.elapsed(),
                detail: match stats {
                    Ok(s) => format!("redis, {} pending, {} dead letters", s.pending, s.dead_letters),
                    Err(e) => e.to_string(),
                },
            });
        }
        if let Some(reason) = self.fatal_reason() {
            checks.push(Check { name: "gateway", ok: false, latency: Duration::ZERO, detail: reason.to_owned() });
        }
        for module in &self.modules {
            checks.extend(module.readiness(self).await);
        }
        checks
    }

    /// Bulk-overwrites the commands: globally, or in one guild (instant, for development; the
    /// commands that also work in DMs are then the global list, since a guild's commands never
    /// show in DMs).
    pub async fn sync_commands(&self, guild_id: Option<u64>) -> Result<usize, crate::error::HandlerError> {
        let app_id = match self.application_id() {
            Some(id) => id,
            None => {
                let app = self.http.current_user_application().await?.model().await?;
                self.set_application_id(app.id);
                app.id
            }
        };
        let specs = self.command_specs();
        let commands: Vec<_> = specs.iter().map(CommandSpec::to_command).collect();
        let client = self.http.interaction(app_id);
        match guild_id {
            Some(g) => {
                // Guild commands never show in DMs: the DM-capable ones are global even then.
                let (dm, guild): (Vec<_>, Vec<_>) = specs.iter().partition(|s| s.works_in_dms());
                let guild: Vec<_> = guild.into_iter().map(CommandSpec::to_command).collect();
                let dm: Vec<_> = dm.into_iter().map(CommandSpec::to_command).collect();
                client.set_guild_commands(Id::new(g), &guild).await?;
                client.set_global_commands(&dm).await?
            }
            None => client.set_global_commands(&commands).await?,
        };
        Ok(commands.len())
    }
}
