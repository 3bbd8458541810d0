//! `beacon run`: the all-in-one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_cache::Cache;
use beacon_config::Config;
use beacon_framework::{App, AppBuilder, Module};
use beacon_llm::{LlmConfig, LlmService, UsageStore};
use beacon_store::Store;

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
    let mut support = beacon_support::SupportModule::new(kb.clone());
    if let Some(llm) = open_llm(&config, &store, Some(cache.clone())).await? {
        support = support.with_llm(llm);
    }
    let app = AppBuilder::new(config.clone(), store, cache, http)
        .modules(beacon_admin::modules())
        .module(support)
        .module(beacon_support::KbModule::new(kb))
        .module(tickets_module(&config)?)
        .module(beacon_faq::FaqModule::new())
        .modules(extra)
        .build()
        .await?;
    Ok(app)
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

/// A started Beacon: HTTP server bound, gateway connecting (with a token), handlers running.
pub struct Running {
    /// The app: configuration, store, cache, Discord client and modules.
    pub app: Arc<App>,
    /// The address the HTTP server is bound to (useful with port 0).
    pub addr: std::net::SocketAddr,
    web: tokio::task::JoinHandle<Result<(), beacon_web::WebError>>,
    gateway: Option<tokio::task::JoinHandle<Result<(), beacon_discord::gateway::GatewayError>>>,
    /// The modules' jobs and background tasks; they stop on `app.shutdown`.
    background: beacon_framework::Background,
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully. When a part stops for good (Discord
/// refused the token or the intents) it shuts down too and returns the reason, so the process
/// exits non-zero and an orchestrator notices.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let running = start(config).await?;
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
    let background = app.start_background();

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
    Ok(Running { app, addr, web, gateway, background })
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
        let background = self.background.stop(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let handlers = async {
            app.tasks.close();
            if tokio::time::timeout_at(deadline, app.tasks.wait()).await.is_err() {
                tracing::warn!(left = app.tasks.len(), "shutdown grace elapsed with handlers still running");
            }
        };
        tokio::join!(gateway, web, background, handlers);
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
