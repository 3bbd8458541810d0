//! `beacon run`: the all-in-one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_cache::Cache;
use beacon_config::Config;
use beacon_discord::shared::SharedGateway;
use beacon_framework::metrics::{LlmCall, Metrics};
use beacon_framework::{App, AppBuilder, Module};
use beacon_store::Store;
use beacon_streams::{Streams, StreamsConfig};

use crate::backends::{open_keyring, open_knowledge_base, open_llm, open_store, transcript_store};

/// Builds the app with every module; applies their schemas.
pub async fn build_app(config: Arc<Config>, store: Store) -> anyhow::Result<Arc<App>> {
    build_app_with(config, store, Vec::new()).await
}

/// Builds the app with the built-in modules plus `extra` ones (a module author's own build).
/// This is the one list of Beacon's features; each is a module, and they reach each other only
/// through the ports they provide.
pub async fn build_app_with(
    config: Arc<Config>,
    store: Store,
    extra: Vec<Arc<dyn Module>>,
) -> anyhow::Result<Arc<App>> {
    build_app_on(config, store, extra, None).await
}

/// [`build_app_with`], connected to the event streams of the scale-out roles when given.
async fn build_app_on(
    config: Arc<Config>,
    store: Store,
    extra: Vec<Arc<dyn Module>>,
    streams: Option<Streams>,
) -> anyhow::Result<Arc<App>> {
    let cache = match &config.redis_url {
        Some(url) => Cache::redis(url.expose())
            .await
            .with_context(|| format!("connecting to Redis at {}", url.redacted_url()))?,
        None => Cache::memory(),
    };
    let http = Arc::new(
        beacon_discord::rest::client(config.discord.token.as_ref().map(|t| t.expose()), &config.discord.api_url)
            .context("configuring the Discord REST client")?,
    );
    let kb = Arc::new(open_knowledge_base(&config, &store).await?);
    let metrics = Metrics::new();
    let mut support = beacon_support::SupportModule::new(kb.clone());
    if let Some(llm) = open_llm(&config, &store, Some(cache.clone())).await? {
        support = support.with_llm(llm.with_observer(llm_metrics(&metrics)));
    }
    let mut builder = AppBuilder::new(config.clone(), store, cache, http)
        .metrics(metrics)
        .keyring(open_keyring(&config)?)
        .modules(beacon_admin::modules(&config))
        .module(support)
        .module(beacon_support::KbModule::new(kb))
        .module(beacon_tickets::TicketsModule::new(transcript_store(&config)?))
        .module(beacon_faq::FaqModule::new())
        .module(beacon_moderation::ModerationModule::new())
        .module(beacon_reminders::RemindersModule)
        .module(beacon_privacy::PrivacyModule);
    // The agent bridge exists only where the operator points Beacon at an agent service.
    if let Some(agent) = &config.agent {
        builder = builder.module(beacon_agent::AgentModule::new(agent).context("configuring the agent bridge")?);
    }
    if let Some(streams) = streams {
        builder = builder.streams(streams);
    }
    let app = builder.modules(extra).build().await?;
    Ok(app)
}

/// Feeds every LLM call (tokens, cost, outcome, latency) into `/metrics`.
fn llm_metrics(metrics: &Metrics) -> beacon_llm::CallObserver {
    let metrics = metrics.clone();
    Arc::new(move |call: &beacon_llm::ObservedCall<'_>| {
        metrics.llm_call(LlmCall {
            provider: call.provider,
            model: call.model,
            outcome: call.outcome,
            input_tokens: call.input_tokens,
            output_tokens: call.output_tokens,
            cost_micros: call.cost_micros,
            elapsed: Duration::from_millis(call.latency_ms),
        });
    })
}

/// A started Beacon: HTTP server bound, gateway connecting (with a token), handlers running.
pub struct Running {
    /// The app: configuration, store, cache, Discord client and modules.
    pub app: Arc<App>,
    /// The address the HTTP server is bound to (useful with port 0).
    pub addr: std::net::SocketAddr,
    web: tokio::task::JoinHandle<Result<(), beacon_web::WebError>>,
    gateway: Option<tokio::task::JoinHandle<Result<(), beacon_discord::gateway::GatewayError>>>,
    /// The modules' jobs and background tasks (`run` and `worker`); they stop on `app.shutdown`.
    background: Option<beacon_framework::Background>,
    /// A worker's consumer of the event streams.
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// A scale-out role (see `beacon gateway|worker|web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Runs shards (`shards` of `total`; all of them when `None`) and appends their events to
    /// the streams; no handlers, no jobs.
    Gateway {
        /// The shards this process runs.
        shards: Option<std::ops::Range<u32>>,
        /// The bot's total shard count.
        total: Option<u32>,
    },
    /// Handles the streams' events, the durable jobs and the modules' background tasks.
    Worker,
    /// The HTTP interactions endpoint, health, metrics and the web API.
    Web,
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Role::Gateway { .. } => "gateway",
            Role::Worker => "worker",
            Role::Web => "web",
        }
    }
}

/// This process's name among the roles' processes: the pod name under Kubernetes, else the
/// host name and process id (a restarted worker is a new consumer; the old one's entries are
/// taken over).
pub fn process_name(pod_name: Option<&str>) -> String {
    match pod_name {
        Some(pod) if !pod.is_empty() => format!("{pod}-{}", std::process::id()),
        _ => {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
            let host = if host.is_empty() { "beacon".to_owned() } else { host };
            format!("{host}-{}", std::process::id())
        }
    }
}

/// Runs one scale-out role until SIGTERM or SIGINT (see [`run`]).
pub async fn run_role(config: Arc<Config>, role: Role, name: String) -> anyhow::Result<()> {
    until_stopped(start_role(config, role, name, Vec::new()).await?).await
}

/// Starts one scale-out role named `name` (with `extra` modules) and returns once its HTTP
/// server (health, metrics; the API and interactions on every role) is bound.
pub async fn start_role(
    config: Arc<Config>,
    role: Role,
    name: String,
    extra: Vec<Arc<dyn Module>>,
) -> anyhow::Result<Running> {
    let Some(redis_url) = &config.redis_url else {
        anyhow::bail!("beacon {} needs BEACON_REDIS_URL: the roles share their events and state in Redis", role.name());
    };
    if matches!(role, Role::Gateway { .. }) && config.discord.token.is_none() {
        anyhow::bail!("beacon gateway needs BEACON_DISCORD_TOKEN");
    }
    if config.database_url.expose().starts_with("sqlite:") {
        tracing::warn!(
            role = role.name(),
            "the roles share one database: use PostgreSQL (BEACON_DATABASE_URL) unless every process runs on this machine"
        );
    }
    let streams_config = StreamsConfig {
        prefix: config.scale.key_prefix.clone(),
        partitions: config.scale.partitions,
        max_deliveries: config.scale.max_deliveries,
        claim_idle: config.scale.claim_idle,
        ..StreamsConfig::default()
    };
    let streams = Streams::connect(redis_url.expose(), streams_config)
        .await
        .with_context(|| format!("connecting to the event streams at {}", redis_url.redacted_url()))?;
    let shared = SharedGateway::new(streams.connection(), config.scale.key_prefix.clone(), name.clone());
    let store = open_store(&config).await?;
    let app = build_app_on(config.clone(), store, extra, Some(streams)).await?;
    let background = match role {
        Role::Worker => Some(app.start_background()),
        // A web process answers interactions: it follows setting changes like every process.
        Role::Web => {
            beacon_framework::router::spawn_setting_listener(&app);
            None
        }
        Role::Gateway { .. } => None,
    };
    let (addr, web) = serve_http(&app).await?;
    app.follow_shards(shared.clone());
    let gateway = match (&role, &config.discord.token) {
        (Role::Gateway { shards, total }, Some(token)) => {
            app.start_gateway_to_streams(token.expose().to_owned(), shards.clone(), *total, shared)
        }
        _ => None,
    };
    let worker = if role == Role::Worker { app.start_worker(name.clone()) } else { None };
    tracing::info!(role = role.name(), name, addr = %addr, version = App::version(), "beacon role started");
    Ok(Running { app, addr, web, gateway, background, worker })
}

/// Binds `BEACON_HTTP_ADDR` and serves the web router on it.
async fn serve_http(
    app: &Arc<App>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<Result<(), beacon_web::WebError>>)> {
    let config = &app.config;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding BEACON_HTTP_ADDR {}", config.http_addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    app.set_http_addr(addr);
    app.store.migrate_schema(&beacon_web::api::SCHEMA).await.context("migrating the web API's tables")?;
    let router = beacon_web::router(app.clone())?;
    Ok((addr, tokio::spawn(beacon_web::serve(listener, router, app.shutdown.clone()))))
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully. When a part stops for good (Discord
/// refused the token or the intents) it shuts down too and returns the reason, so the process
/// exits non-zero and an orchestrator notices.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    until_stopped(start(config).await?).await
}

/// Waits for SIGTERM, SIGINT or a part that stopped for good, then shuts down; the reason of a
/// part that stopped is the error.
async fn until_stopped(running: Running) -> anyhow::Result<()> {
    let fatal = running.app.fatal.clone();
    tokio::select! {
        () = wait_for_signal() => {}
        () = fatal.cancelled() => {}
    }
    let reason = running.app.fatal_reason().map(str::to_owned);
    running.shutdown().await;
    match reason {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

/// Starts every part of the all-in-one process and returns once the HTTP server is bound.
pub async fn start(config: Arc<Config>) -> anyhow::Result<Running> {
    start_with(config, Vec::new()).await
}

/// [`start`] with extra modules.
pub async fn start_with(config: Arc<Config>, extra: Vec<Arc<dyn Module>>) -> anyhow::Result<Running> {
    let store = open_store(&config).await?;
    let app = build_app_with(config.clone(), store, extra).await?;
    let background = Some(app.start_background());
    let (addr, web) = serve_http(&app).await?;
    tracing::info!(
        addr = %addr,
        version = App::version(),
        database = %config.database_url.redacted_url(),
        interactions_endpoint = config.discord.public_key.is_some(),
        "beacon listening"
    );
    if config.discord.public_key.is_none() {
        tracing::info!("POST /interactions is disabled: set BEACON_DISCORD_PUBLIC_KEY to receive HTTP interactions");
    }
    let gateway = match &config.discord.token {
        Some(token) if app.gateway_enabled => Some(app.start_gateway(token.expose().to_owned())),
        Some(_) => {
            tracing::warn!("gateway not connected: BEACON_DISCORD_GATEWAY_ENABLED=false (HTTP interactions only)");
            None
        }
        None => {
            tracing::warn!(
                "gateway not connected: BEACON_DISCORD_TOKEN is not set (HTTP interactions, storage and modules still run)"
            );
            None
        }
    };
    Ok(Running { app, addr, web, gateway, background, worker: None })
}

impl Running {
    /// Stops taking work, closes the shards, and waits (up to the grace period) for in-flight handlers.
    pub async fn shutdown(self) {
        let app = self.app;
        tracing::info!("shutting down: no new work; finishing in-flight handlers");
        app.shutdown.cancel();
        // One deadline for everything (BEACON_SHUTDOWN_GRACE, 8 s by default), so the process
        // is gone within the promised 10 s whatever is slow: the shards' close handshakes, the
        // HTTP connections, the jobs and the handlers all finish side by side.
        let deadline = tokio::time::Instant::now() + app.config.shutdown_grace;
        let gateway = async {
            let Some(gateway) = self.gateway else { return };
            let close_by = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
            match tokio::time::timeout_at(close_by, gateway).await {
                Ok(Ok(Ok(()))) => tracing::info!("gateway closed"),
                // A refusal was already reported, with what to change.
                Ok(Ok(Err(e))) if app.fatal_reason().is_some() => tracing::debug!(error = %e, "gateway ended"),
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gateway ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "gateway task failed"),
                Err(_) => tracing::warn!("gateway did not close in time"),
            }
        };
        let web = async {
            match tokio::time::timeout_at(deadline, self.web).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
                Err(_) => tracing::warn!("HTTP connections still open at the end of the grace period"),
            }
        };
        let background = async {
            if let Some(background) = self.background {
                background.stop(deadline.saturating_duration_since(tokio::time::Instant::now())).await;
            }
        };
        // The consumer finishes the event in hand of each partition and releases its leases.
        let worker = async {
            let Some(worker) = self.worker else { return };
            match tokio::time::timeout_at(deadline, worker).await {
                Ok(Ok(())) => tracing::info!("event consumer stopped"),
                Ok(Err(e)) => tracing::warn!(error = %e, "event consumer task failed"),
                Err(_) => tracing::warn!("event consumer still busy at the end of the grace period"),
            }
        };
        let handlers = async {
            app.tasks.close();
            if tokio::time::timeout_at(deadline, app.tasks.wait()).await.is_err() {
                tracing::warn!(left = app.tasks.len(), "shutdown grace elapsed with handlers still running");
            }
        };
        tokio::join!(gateway, web, background, worker, handlers);
        tracing::info!("stopped");
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
