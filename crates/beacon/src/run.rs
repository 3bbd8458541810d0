//! `beacon run`: the all-in-one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_cache::Cache;
use beacon_config::Config;
use beacon_discord::gateway::{self, GatewayConfig, GatewayEvent};
use beacon_framework::router::{handle_gateway_event, spawn_setting_listener};
use beacon_framework::{App, AppBuilder, Module, SettingKind, SettingSpec};
use beacon_llm::{LlmConfig, LlmService, UsageStore};
use beacon_store::Store;
use tokio::sync::mpsc;

/// Opens the database and applies the core migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if let Some(path) = config.sqlite_path()
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let store = Store::connect(config.database_url.expose())
        .await
        .with_context(|| format!("connecting to {}", config.database_url.redacted_url()))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// The knowledge base with the configured embedder (BM25 alone, announced by one log line, when
/// there is no model or it fails to load).
pub async fn open_knowledge_base(config: &Config, store: &Store) -> anyhow::Result<beacon_kb::KnowledgeBase> {
    // Guild indexes are persisted under `<data dir>/kb-index`, shared by `beacon run` and
    // `beacon ingest` (each notices the other's syncs through the index version in the database).
    Ok(beacon_kb::KnowledgeBase::open(
        store.clone(),
        embedder(config, Some(store)).await,
        beacon_kb::FusionConfig::default(),
        beacon_kb::ChunkerConfig::default(),
    )
    .await
    .context("opening the knowledge base")?
    .with_index_dir(config.data_dir.join("kb-index"))
    .with_credentials(config.kb_credentials.clone()))
}

/// Set when [`prepare_embedding_model`] has already said why there is no local model.
static DOWNLOAD_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where the one-time model download goes: `<data dir>/models/<owner>--<name>`.
fn model_download(config: &Config, hub_url: &str) -> beacon_kb::ModelDownload {
    beacon_kb::ModelDownload::new(hub_url, &config.embed.model_repo, config.data_dir.join("models"))
}

/// For `beacon run`, `ingest`, `ask` and `eval`: with a local embedder and no
/// `BEACON_EMBED_MODEL_DIR`, downloads `BEACON_EMBED_MODEL_REPO` once from `BEACON_EMBED_HUB_URL`
/// into the data folder (nothing is fetched when it is already there) and points the config at
/// it. Offline, one log line says so and retrieval is BM25 alone.
pub async fn prepare_embedding_model(mut config: Config) -> Config {
    let (beacon_config::EmbedProvider::Local, None, Some(hub)) =
        (config.embed.provider, &config.embed_model_dir, config.embed.hub_url.as_deref())
    else {
        return config;
    };
    let download = model_download(&config, hub);
    let cached = download.is_cached();
    match download.ensure().await {
        Ok(dir) => {
            if !cached {
                tracing::info!(repo = %config.embed.model_repo, hub, dir = %dir.display(), "embedding model downloaded (once)");
            }
            config.embed_model_dir = Some(dir);
        }
        Err(e) => {
            DOWNLOAD_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(error = %e, repo = %config.embed.model_repo, "no embedding model (BEACON_EMBED_MODEL_DIR unset, download failed): retrieval uses BM25 only");
        }
    }
    config
}

/// The configured embedder: the LLM provider's embedding model (`BEACON_EMBED_PROVIDER=llm`), or
/// the local model in `BEACON_EMBED_MODEL_DIR` (or downloaded earlier into the data folder) with
/// the `BEACON_EMBED_POOLING`/`BEACON_EMBED_QUERY_PREFIX` overrides. `None`, announced by one log
/// line, means BM25 retrieval only.
///
/// With `store`, provider embedding calls are recorded in the LLM usage tables and checked
/// against the budgets like chat calls (`beacon eval`'s scratch runs pass none).
pub async fn embedder(config: &Config, store: Option<&Store>) -> Option<Arc<dyn beacon_kb::Embedder>> {
    match config.embed.provider {
        beacon_config::EmbedProvider::Llm => {
            let llm = match llm_config(config) {
                Ok(llm) => llm,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "provider embeddings unavailable: retrieval uses BM25 only"
                    );
                    return None;
                }
            };
            let usage = match store {
                Some(store) => match UsageStore::open(store.clone()).await {
                    Ok(usage) => Some(usage),
                    Err(e) => {
                        tracing::warn!(error = %e, "provider embeddings unavailable: retrieval uses BM25 only");
                        return None;
                    }
                },
                None => None,
            };
            // The probe request blocks; keep it off the async workers.
            let built = tokio::task::spawn_blocking(move || match usage {
                Some(usage) => beacon_kb::LlmEmbedder::from_config_with_usage(&llm, usage),
                None => beacon_kb::LlmEmbedder::from_config(&llm),
            });
            match built.await {
                Ok(Ok(e)) => {
                    tracing::info!(
                        model = beacon_kb::Embedder::model_id(&e),
                        "knowledge base embeddings from the LLM provider"
                    );
                    Some(Arc::new(e))
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "provider embeddings unavailable: retrieval uses BM25 only");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "provider embeddings unavailable: retrieval uses BM25 only");
                    None
                }
            }
        }
        beacon_config::EmbedProvider::Local => {
            let cached =
                config.embed.hub_url.as_deref().map(|hub| model_download(config, hub)).filter(|d| d.is_cached());
            let Some(dir) = config.embed_model_dir.clone().or_else(|| cached.map(|d| d.model_dir())) else {
                if !DOWNLOAD_FAILED.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!("no embedding model (BEACON_EMBED_MODEL_DIR unset): retrieval uses BM25 only");
                }
                return None;
            };
            let overrides = beacon_kb::ProfileOverrides {
                pooling: config.embed.pooling.as_deref().and_then(|p| p.parse().ok()),
                query_prefix: config.embed.query_prefix.clone(),
            };
            match beacon_kb::BertEmbedder::load_with(&dir, &overrides) {
                Ok(model) => {
                    tracing::info!(model = beacon_kb::Embedder::model_id(&model), dir = %dir.display(), pooling = %model.profile().pooling, "embedding model loaded");
                    Some(Arc::new(model))
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "embedding model failed to load: retrieval uses BM25 only");
                    None
                }
            }
        }
    }
}

/// The LLM configuration from `BEACON_LLM_*` (provider `none`, the default, is a disabled chain).
pub fn llm_config(config: &Config) -> anyhow::Result<LlmConfig> {
    LlmConfig::from_settings(&config.llm).context("configuring the LLM (BEACON_LLM_*)")
}

/// The LLM service, when a provider is configured: usage, budgets and prices in `store`,
/// responses cached in `cache` when given. `None` for provider `none`.
pub async fn open_llm(config: &Config, store: &Store, cache: Option<Cache>) -> anyhow::Result<Option<LlmService>> {
    let llm = llm_config(config)?;
    if !llm.is_enabled() {
        return Ok(None);
    }
    let usage = UsageStore::open(store.clone()).await.context("opening the LLM usage tables")?;
    let mut service = LlmService::new(&llm)
        .context("configuring the LLM providers")?
        .with_usage_store(usage)
        .await
        .context("loading LLM prices")?;
    if let Some(cache) = cache {
        service = service.with_cache(cache);
    }
    tracing::info!(llm = ?service, "LLM answers enabled");
    Ok(Some(service))
}

/// Declares the LLM's per-guild settings (`llm.model`, read by `beacon-llm` itself).
struct LlmModule;

#[beacon_framework::async_trait]
impl Module for LlmModule {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn description(&self) -> &'static str {
        "LLM provider settings of this server"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn settings(&self) -> Vec<SettingSpec> {
        vec![SettingSpec::new(
            beacon_llm::MODEL_SETTING,
            SettingKind::String { max_len: 100 },
            serde_json::json!(""),
            "Chat model for this server's LLM answers (empty: the deployment's BEACON_LLM_MODEL).",
        )]
    }
}

/// Builds the app with every module; applies module migrations.
pub async fn build_app(config: Arc<Config>, store: Store) -> anyhow::Result<Arc<App>> {
    build_app_with(config, store, Vec::new()).await
}

/// Builds the app with the built-in modules plus `extra` ones (a module author's own build).
pub async fn build_app_with(
    config: Arc<Config>,
    store: Store,
    extra: Vec<Arc<dyn Module>>,
) -> anyhow::Result<Arc<App>> {
    Ok(assemble(config, store, extra).await?.app)
}

/// The app and the shared pieces that background tasks of `beacon run` need.
struct Assembled {
    app: Arc<App>,
    kb: Arc<beacon_kb::KnowledgeBase>,
    faq_changes: tokio::sync::broadcast::Receiver<beacon_faq::FaqChanged>,
}

async fn assemble(config: Arc<Config>, store: Store, extra: Vec<Arc<dyn Module>>) -> anyhow::Result<Assembled> {
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
    let mut support = beacon_support::SupportModule::new(kb.clone(), Some(Arc::new(TicketHandoff)));
    if let Some(llm) = open_llm(&config, &store, Some(cache.clone())).await? {
        support = support.with_llm(llm);
    }
    let support = Arc::new(support);
    let tickets = tickets_module(&config)?.with_drafter(Arc::new(SupportDrafter(support.clone())));
    let faq = beacon_faq::FaqModule::new();
    let faq_changes = faq.subscribe();
    let app = AppBuilder::new(config, store, cache, http)
        .modules(beacon_admin::modules())
        .module(LlmModule)
        .modules([support as Arc<dyn Module>])
        .module(beacon_support::KbModule::new(kb.clone()))
        .module(tickets)
        .module(faq)
        .modules(extra)
        .build()
        .await?;
    Ok(Assembled { app, kb, faq_changes })
}

/// FAQ entries are a knowledge-base source: every add, edit and removal re-syncs that guild's
/// FAQ documents at once, so support answers see them immediately. Configured sources (`/kb`)
/// are synced on their schedule.
fn spawn_knowledge_tasks(assembled: Assembled) -> Arc<App> {
    let Assembled { app, kb, faq_changes } = assembled;
    let store = app.store.clone();
    let repo = beacon_faq::FaqRepo::new(store.clone());
    let shutdown = app.shutdown.clone();
    let feed_kb = kb.clone();
    app.tasks.spawn(async move {
        beacon_kb::follow_faq_changes(&feed_kb, &repo, &store, faq_changes, shutdown.cancelled_owned()).await;
    });
    // Configured sources re-sync on their interval (hourly by default); checked every minute.
    let shutdown = app.shutdown.clone();
    app.tasks.spawn(async move {
        kb.run_scheduler(std::time::Duration::from_secs(60), shutdown.cancelled_owned()).await;
    });
    app
}

/// "Suggest reply" in a ticket drafts from the knowledge base (and the LLM) like a support answer.
struct SupportDrafter(Arc<beacon_support::SupportModule>);

#[beacon_framework::async_trait]
impl beacon_tickets::ReplyDrafter for SupportDrafter {
    async fn draft(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        question: &str,
    ) -> Result<Option<String>, beacon_framework::HandlerError> {
        self.0.draft_reply(app, &app.guild(guild_id), staff_id, question).await
    }
}

/// "Talk to a human" from a support answer opens a ticket with the question and the bot's attempt.
struct TicketHandoff;

#[beacon_framework::async_trait]
impl beacon_support::HumanHandoff for TicketHandoff {
    async fn open(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        user_id: u64,
        question: &str,
        attempt: &str,
    ) -> Result<String, beacon_framework::HandlerError> {
        let topic: String =
            if question.is_empty() { "Question for staff".into() } else { question.chars().take(90).collect() };
        let conversation = format!("Question:\n{question}\n\nBeacon's answer:\n{attempt}\n");
        let ticket = beacon_tickets::open_ticket_for(app, guild_id, user_id, &topic, Some(&conversation)).await?;
        Ok(format!("<#{}> (ticket #{:04})", ticket.channel_id, ticket.number))
    }
}

/// The ticket desk, with transcripts in `{data_dir}/transcripts` or the configured S3 bucket.
fn tickets_module(config: &Config) -> anyhow::Result<beacon_tickets::TicketsModule> {
    let storage = match &config.transcripts_s3 {
        Some(s3) => beacon_tickets::TranscriptStore::s3(&beacon_tickets::S3Options {
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            endpoint: s3.endpoint.clone(),
            access_key_id: s3.access_key_id.expose().to_owned(),
            secret_access_key: s3.secret_access_key.expose().to_owned(),
            public_base_url: config.transcripts_public_url.clone(),
        })
        .context("configuring the S3 transcript store")?,
        None => beacon_tickets::TranscriptStore::local(&config.data_dir.join("transcripts"))
            .context("preparing the transcript folder")?,
    };
    Ok(beacon_tickets::TicketsModule::new(storage))
}

/// Starts the durable job runner with the handlers of the modules that schedule jobs.
async fn start_jobs(app: &Arc<App>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut runner = beacon_jobs::Runner::new(app.store.clone(), beacon_jobs::RunnerOptions::default());
    tickets_module(&app.config)?.attach(app, &mut runner).await.context("starting the ticket timers")?;
    Ok(runner.spawn(app.shutdown.clone()))
}

/// A started Beacon: HTTP server bound, gateway connecting (with a token), handlers running.
pub struct Running {
    /// The app: configuration, store, cache, Discord client and modules.
    pub app: Arc<App>,
    /// The address the HTTP server is bound to (useful with port 0).
    pub addr: std::net::SocketAddr,
    web: tokio::task::JoinHandle<Result<(), beacon_web::WebError>>,
    gateway: Option<tokio::task::JoinHandle<Result<(), gateway::GatewayError>>>,
    /// The durable job runner (timers); stops on `app.shutdown` after its jobs in flight.
    jobs: tokio::task::JoinHandle<()>,
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let running = start(config).await?;
    wait_for_signal().await;
    running.shutdown().await;
    Ok(())
}

/// Starts every part of the all-in-one process and returns once the HTTP server is bound.
pub async fn start(config: Arc<Config>) -> anyhow::Result<Running> {
    start_with(config, Vec::new()).await
}

/// [`start`] with extra modules.
pub async fn start_with(config: Arc<Config>, extra: Vec<Arc<dyn Module>>) -> anyhow::Result<Running> {
    let store = open_store(&config).await?;
    let app = spawn_knowledge_tasks(assemble(config.clone(), store, extra).await?);
    spawn_setting_listener(&app);
    spawn_housekeeping(&app);
    let jobs = start_jobs(&app).await?;

    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding BEACON_HTTP_ADDR {}", config.http_addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let router = beacon_web::router(app.clone())?;
    let web = tokio::spawn(beacon_web::serve(listener, router, app.shutdown.clone()));
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
        Some(token) if app.gateway_enabled => Some(start_gateway(&app, token.expose().to_owned())),
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
    Ok(Running { app, addr, web, gateway, jobs })
}

impl Running {
    /// Stops taking work, closes the shards, and waits (up to the grace period) for in-flight handlers.
    pub async fn shutdown(self) {
        let app = self.app;
        tracing::info!("shutting down: no new work; finishing in-flight handlers");
        app.shutdown.cancel();
        if let Some(gateway) = self.gateway {
            match tokio::time::timeout(Duration::from_secs(5), gateway).await {
                Ok(Ok(Ok(()))) => tracing::info!("gateway closed"),
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gateway ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "gateway task failed"),
                Err(_) => tracing::warn!("gateway did not close in time"),
            }
        }
        match self.web.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
        }
        // Jobs cut off here are re-run by another worker (or after restart) once their lease expires.
        match tokio::time::timeout(app.config.shutdown_grace, self.jobs).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "job runner task failed"),
            Err(_) => tracing::warn!("job runner did not stop within the grace period"),
        }
        app.tasks.close();
        if tokio::time::timeout(app.config.shutdown_grace, app.tasks.wait()).await.is_err() {
            tracing::warn!(left = app.tasks.len(), "shutdown grace elapsed with handlers still running");
        }
        tracing::info!("stopped");
    }
}

/// Gateway events handled at once; more wait in the shard channel.
const MAX_EVENTS_IN_FLIGHT: usize = 512;

fn start_gateway(app: &Arc<App>, token: String) -> tokio::task::JoinHandle<Result<(), gateway::GatewayError>> {
    let (tx, mut rx) = mpsc::channel::<GatewayEvent>(1024);
    let config = GatewayConfig {
        token,
        intents: app.intents(),
        shard_count: app.config.discord.shard_count,
        shard_ids: None,
        gateway_url: app.config.discord.gateway_url.clone(),
    };
    let dispatcher_app = app.clone();
    // Bounded: when handlers fall behind, the dispatcher stops taking events, the shard channel
    // fills, the shards stop reading their sockets and TCP pushes back on Discord, instead of
    // tasks (each holding its event) piling up without limit.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_EVENTS_IN_FLIGHT));
    let dispatched = Arc::new(std::sync::atomic::AtomicU64::new(0));
    spawn_memory_release(app, in_flight.clone(), dispatched.clone());
    app.tasks.spawn(async move {
        while let Some(event) = rx.recv().await {
            dispatched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
            let app = dispatcher_app.clone();
            dispatcher_app.tasks.spawn(async move {
                handle_gateway_event(&app, event).await;
                drop(permit);
            });
        }
    });
    tokio::spawn(gateway::run(config, app.http.clone(), tx, app.shards.clone(), app.shutdown.clone()))
}

/// Events after which an idle moment is used to hand freed memory back to the OS.
const RELEASE_AFTER_EVENTS: u64 = 1_000;

/// After a burst of gateway events (the GUILD_CREATEs of start-up, a flood), glibc keeps the
/// freed heap of up to 512 large events in flight and the process stays at its peak RSS. Once
/// a burst of at least [`RELEASE_AFTER_EVENTS`] is over (no event in flight), `malloc_trim`
/// returns that memory; checked every second, a few milliseconds of work per burst.
fn spawn_memory_release(
    app: &Arc<App>,
    in_flight: Arc<tokio::sync::Semaphore>,
    dispatched: Arc<std::sync::atomic::AtomicU64>,
) {
    let shutdown = app.shutdown.clone();
    app.tasks.spawn(async move {
        let mut released_at = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = dispatched.load(std::sync::atomic::Ordering::Relaxed);
            if now - released_at >= RELEASE_AFTER_EVENTS && in_flight.available_permits() == MAX_EVENTS_IN_FLIGHT {
                released_at = now;
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks glibc's own heap under its locks; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

/// Hourly: forget old idempotency claims, purge guilds whose retention has passed.
fn spawn_housekeeping(app: &Arc<App>) {
    let app = app.clone();
    let tracker = app.tasks.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            match app.store.prune_claims(now - 86_400_000).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old idempotency claims pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning claims failed"),
            }
            let cutoff = now - app.config.guild_retention.as_millis() as i64;
            match app.store.purge_left_guilds(cutoff).await {
                // The purge moves each guild's cache generation, in this process and the others.
                Ok(ids) if !ids.is_empty() => tracing::info!(guilds = ?ids, "purged guilds past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging left guilds failed"),
            }
        }
    });
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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
