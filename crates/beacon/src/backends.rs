//! The backends Beacon's features run on, built from the configuration: the database, the
//! knowledge base with its embedding model (downloaded once when needed), the LLM service and
//! the transcript store. `run.rs` composes them with the modules.

use std::sync::Arc;

use anyhow::Context;
use beacon_cache::Cache;
use beacon_config::Config;
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
    let kb = beacon_kb::KnowledgeBase::open(
        store.clone(),
        embedder(config, Some(store)).await,
        beacon_kb::FusionConfig::default(),
        beacon_kb::ChunkerConfig::default(),
    )
    .await
    .context("opening the knowledge base")?
    .with_index_dir(config.data_dir.join("kb-index"))
    .with_credentials(config.kb_credentials.clone())
    .with_keyring(open_keyring(config)?)
    .with_upload_limits(beacon_kb::UploadLimits {
        max_file_bytes: config.kb_sources.upload_max_file_bytes,
        max_guild_bytes: config.kb_sources.upload_max_guild_bytes,
    })
    .with_source_kind(Arc::new(beacon_kb::web::WebsiteKind::new(beacon_kb::CrawlOptions {
        delay: config.kb_sources.crawl_delay,
        max_pages: config.kb_sources.crawl_max_pages,
        allow_private: config.kb_sources.crawl_allow_private,
        ..beacon_kb::CrawlOptions::default()
    })));
    Ok(match reranker(config) {
        Some(r) => kb.with_reranker(r, RERANK_DEPTH),
        None => kb,
    })
}

/// How many fused candidates the cross-encoder reorders.
pub const RERANK_DEPTH: usize = 20;

/// The cross-encoder of `BEACON_RERANK_MODEL_DIR`, if one is configured and loads (a folder that
/// fails to load is logged and skipped: answers still come from the fused ranking).
pub fn reranker(config: &Config) -> Option<Arc<dyn beacon_kb::Rerank>> {
    let dir = config.rerank_model_dir.as_ref()?;
    match beacon_kb::CrossEncoder::load(dir) {
        Ok(model) => {
            tracing::info!(dir = %dir.display(), depth = RERANK_DEPTH, "reranker loaded");
            Some(Arc::new(model))
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "reranker failed to load: passages keep the fused order");
            None
        }
    }
}

/// The keys stored credentials are sealed with: `BEACON_SECRET_KEY` (and the previous keys of a
/// rotation), or on the embedded default a key generated once into `<data dir>/secret.key`.
pub fn open_keyring(config: &Config) -> anyhow::Result<Arc<beacon_crypto::Keyring>> {
    let previous: Vec<&str> = config.secret_key_previous.iter().map(|k| k.expose()).collect();
    if let Some(key) = &config.secret_key {
        let keyring = beacon_crypto::Keyring::from_text(key.expose(), &previous)
            .context("BEACON_SECRET_KEY / BEACON_SECRET_KEY_PREVIOUS")?;
        return Ok(Arc::new(keyring));
    }
    let path = config.data_dir.join("secret.key");
    let (keyring, created) = beacon_crypto::Keyring::load_or_create(&path, &previous)
        .with_context(|| format!("the secret key in {}", path.display()))?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated the secret key that seals stored credentials: back it up with the database \
             (without it they cannot be read), or set BEACON_SECRET_KEY"
        );
    }
    Ok(Arc::new(keyring))
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
                precision: config.embed.precision.as_deref().and_then(|p| p.parse().ok()),
            };
            let loaded = match beacon_kb::BertEmbedder::load_with(&dir, &overrides) {
                // A precision this CPU cannot run: the default one still gives dense retrieval.
                Err(e) if overrides.precision.is_some() => {
                    tracing::warn!(error = %e, "BEACON_EMBED_PRECISION cannot be used here; using the default precision");
                    beacon_kb::BertEmbedder::load_with(
                        &dir,
                        &beacon_kb::ProfileOverrides { precision: None, ..overrides },
                    )
                }
                loaded => loaded,
            };
            match loaded {
                Ok(model) => {
                    tracing::info!(model = beacon_kb::Embedder::model_id(&model), dir = %dir.display(), pooling = %model.profile().pooling, precision = %model.precision(), "embedding model loaded");
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

/// Where the ticket desk keeps transcripts: `{data_dir}/transcripts`, or the configured S3 bucket.
pub fn transcript_store(config: &Config) -> anyhow::Result<beacon_tickets::TranscriptStore> {
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
    Ok(storage)
}
