//! Ingestion (source → chunks → embeddings → database) and the knowledge-base service that keeps
//! per-guild search indexes derived from the database.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use beacon_store::Store;
use sha2::{Digest, Sha256};

use crate::chunk::{ChunkerConfig, chunk_markdown};
use crate::embed::{Embedder, default_embedder};
use crate::error::{KbError, Result};
use crate::fusion::FusionConfig;
use crate::retriever::{GuildIndex, Hit, Retriever, search_text};
use crate::source::{FolderSource, Source, SourceConfig, SourceDocument};
use crate::store::{DEFAULT_SYNC_INTERVAL_MS, DocumentWrite, KbRepo, NewChunk, guilds_with_sources, migrate};

/// Stage of a sync, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listing the source's documents.
    Listing,
    /// Chunking, embedding and writing changed documents (`done`/`total` documents).
    Documents,
    /// Removing documents the source no longer has.
    Deleting,
    /// Rebuilding the guild's search index.
    Indexing,
    /// Finished.
    Done,
}

/// A progress report: `done` of `total` units in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Current stage.
    pub phase: Phase,
    /// Units finished.
    pub done: usize,
    /// Units in this stage.
    pub total: usize,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct SyncReport {
    /// Documents the source listed.
    pub documents: usize,
    /// Documents whose hash was unchanged (not re-chunked or re-embedded).
    pub unchanged: usize,
    /// Documents added or changed.
    pub written: usize,
    /// Documents deleted because the source no longer lists them.
    pub deleted: usize,
    /// Chunks written.
    pub chunks: usize,
    /// Whether chunks were embedded (a model was present).
    pub embedded: bool,
}

/// Hash of everything that determines a document's chunks and embeddings: content, chunk sizes
/// and embedding model. An equal hash means the stored chunks are still right.
pub fn content_hash(doc: &SourceDocument, chunker: &ChunkerConfig, model_id: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [
        doc.title.as_bytes(),
        doc.text.as_bytes(),
        doc.url.as_deref().unwrap_or("").as_bytes(),
        chunker.max_chars.to_string().as_bytes(),
        chunker.overlap_chars.to_string().as_bytes(),
        model_id.unwrap_or("none").as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The knowledge base of all guilds: ingestion into the store and hybrid search over per-guild
/// indexes rebuilt from it.
pub struct KnowledgeBase {
    store: Store,
    retriever: Retriever,
    chunker: ChunkerConfig,
    /// Documents embedded and written per transaction.
    batch_documents: usize,
}

impl KnowledgeBase {
    /// Opens the knowledge base on `store`, applying its migrations.
    pub async fn open(
        store: Store,
        embedder: Option<Arc<dyn Embedder>>,
        fusion: FusionConfig,
        chunker: ChunkerConfig,
    ) -> Result<Self> {
        migrate(&store).await?;
        Ok(KnowledgeBase { store, retriever: Retriever::new(embedder, fusion), chunker, batch_documents: 64 })
    }

    /// The retriever holding the loaded guild indexes.
    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    fn repo(&self, guild_id: u64) -> KbRepo {
        KbRepo::new(self.store.guild(guild_id))
    }

    fn model_id(&self) -> Option<String> {
        self.retriever.embedder().map(|e| e.model_id().to_string())
    }

    /// Brings `guild_id`'s copy of `source` up to date: unchanged documents are skipped, changed
    /// and new ones re-chunked, re-embedded and replaced, missing ones deleted; then the guild's
    /// index is rebuilt. Each batch is one transaction, so a crash leaves earlier versions serving.
    pub async fn sync(
        &self,
        guild_id: u64,
        source: &dyn Source,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        progress(Progress { phase: Phase::Listing, done: 0, total: 0 });
        let docs = source.documents().await?;
        let repo = self.repo(guild_id);
        let stored: HashMap<String, String> =
            repo.documents(source.id()).await?.into_iter().map(|d| (d.key, d.content_hash)).collect();
        let model_id = self.model_id();
        let mut report = SyncReport { documents: docs.len(), embedded: model_id.is_some(), ..SyncReport::default() };
        let mut seen = HashSet::new();
        let mut changed = Vec::new();
        for d in docs {
            if !seen.insert(d.key.clone()) {
                return Err(KbError::Source {
                    source_name: source.id().to_string(),
                    message: format!("duplicate document key {:?}", d.key),
                });
            }
            let hash = content_hash(&d, &self.chunker, model_id.as_deref());
            if stored.get(&d.key) == Some(&hash) {
                report.unchanged += 1;
            } else {
                changed.push((d, hash));
            }
        }
        let total = changed.len();
        progress(Progress { phase: Phase::Documents, done: 0, total });
        let mut done = 0;
        while !changed.is_empty() {
            let rest = changed.split_off(changed.len().min(self.batch_documents));
            let batch = std::mem::replace(&mut changed, rest);
            let writes = self.prepare(batch).await?;
            report.chunks += writes.iter().map(|w| w.chunks.len()).sum::<usize>();
            repo.write_documents(source.id(), &writes, beacon_store::now_ms()).await?;
            done += writes.len();
            report.written += writes.len();
            progress(Progress { phase: Phase::Documents, done, total });
        }
        let gone: Vec<String> = stored.into_keys().filter(|k| !seen.contains(k)).collect();
        progress(Progress { phase: Phase::Deleting, done: 0, total: gone.len() });
        if !gone.is_empty() {
            report.deleted = repo.delete_documents(source.id(), &gone).await? as usize;
        }
        progress(Progress { phase: Phase::Deleting, done: gone.len(), total: gone.len() });
        progress(Progress { phase: Phase::Indexing, done: 0, total: 1 });
        self.rebuild_index(guild_id).await?;
        progress(Progress { phase: Phase::Indexing, done: 1, total: 1 });
        progress(Progress { phase: Phase::Done, done: report.written, total: report.documents });
        Ok(report)
    }

    /// Chunks and embeds a batch of documents (embedding runs on a blocking thread).
    async fn prepare(&self, batch: Vec<(SourceDocument, String)>) -> Result<Vec<DocumentWrite>> {
        let chunker = self.chunker;
        let embedder = self.retriever.embedder().cloned();
        let task = move || -> Result<Vec<DocumentWrite>> {
            let mut writes: Vec<DocumentWrite> = batch
                .into_iter()
                .map(|(d, hash)| DocumentWrite {
                    chunks: chunk_markdown(&d.text, &chunker)
                        .into_iter()
                        .map(|c| NewChunk {
                            ordinal: c.ordinal,
                            heading_path: c.heading_path,
                            text: c.text,
                            embedding: None,
                        })
                        .collect(),
                    key: d.key,
                    title: d.title,
                    url: d.url,
                    content_hash: hash,
                })
                .collect();
            if let Some(e) = embedder {
                let texts: Vec<String> = writes
                    .iter()
                    .flat_map(|w| w.chunks.iter().map(|c| search_text(&w.title, &c.heading_path, &c.text)))
                    .collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let mut vectors = e.embed_documents(&refs)?.into_iter();
                let model = e.model_id().to_string();
                for c in writes.iter_mut().flat_map(|w| w.chunks.iter_mut()) {
                    c.embedding = vectors.next().map(|v| (model.clone(), v));
                }
            }
            Ok(writes)
        };
        tokio::task::spawn_blocking(task).await.map_err(|e| KbError::Model(format!("embedding task: {e}")))?
    }

    /// Rebuilds `guild_id`'s search index from the database and installs it; returns its size.
    pub async fn rebuild_index(&self, guild_id: u64) -> Result<usize> {
        let chunks = self.repo(guild_id).chunks(self.model_id().as_deref()).await?;
        let missing = chunks.iter().filter(|c| c.embedding.is_none()).count();
        if missing > 0 && self.retriever.embedder().is_some() {
            tracing::warn!(
                guild_id,
                missing,
                "chunks without a current embedding; this guild is BM25-only until re-synced"
            );
        }
        let index = tokio::task::spawn_blocking(move || GuildIndex::build(chunks))
            .await
            .map_err(|e| KbError::Index(format!("index task: {e}")))??;
        let n = index.len();
        self.retriever.set_guild(guild_id, index);
        Ok(n)
    }

    /// The `k` best chunks for `query` in `guild_id`'s knowledge base, loading its index from the
    /// database first if it is not in memory.
    pub async fn search(&self, guild_id: u64, query: &str, k: usize) -> Result<Vec<Hit>> {
        if self.retriever.guild(guild_id).is_none() {
            self.rebuild_index(guild_id).await?;
        }
        let Some(index) = self.retriever.guild(guild_id) else {
            return Ok(Vec::new());
        };
        let vector = match (index.dense_dim(), self.retriever.embedder().cloned()) {
            (Some(_), Some(e)) => {
                let q = query.to_string();
                Some(
                    tokio::task::spawn_blocking(move || e.embed_query(&q))
                        .await
                        .map_err(|e| KbError::Model(format!("embedding task: {e}")))??,
                )
            }
            _ => None,
        };
        index.search(self.retriever.fusion(), query, vector.as_deref(), k)
    }
}

/// Outcome of one scheduled sync.
#[derive(Debug)]
pub struct ScheduledSync {
    /// The guild.
    pub guild_id: u64,
    /// The source's configured name.
    pub source: String,
    /// What the sync did, or why it failed.
    pub result: Result<SyncReport>,
}

impl KnowledgeBase {
    /// Configures (or reconfigures) a source for a guild; `interval_ms` defaults to hourly.
    pub async fn add_source(
        &self,
        guild_id: u64,
        name: &str,
        config: &SourceConfig,
        interval_ms: Option<i64>,
    ) -> Result<i64> {
        self.repo(guild_id)
            .upsert_source(
                config.kind(),
                name,
                &config.to_config_json(),
                interval_ms.unwrap_or(DEFAULT_SYNC_INTERVAL_MS),
                beacon_store::now_ms(),
            )
            .await
    }

    /// Syncs a configured source now (`/kb sync`, CLI) and records the outcome on its row.
    pub async fn sync_configured(
        &self,
        guild_id: u64,
        name: &str,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SyncReport> {
        let repo = self.repo(guild_id);
        let row = repo
            .sources()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| KbError::Source { source_name: name.to_string(), message: "no such source".into() })?;
        let result = match SourceConfig::from_row(&row.kind, &row.config) {
            Ok(cfg) => match cfg.build(&row.name) {
                Ok(source) => self.sync(guild_id, source.as_ref(), progress).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let error = result.as_ref().err().map(ToString::to_string);
        repo.record_sync(row.id, beacon_store::now_ms(), error.as_deref()).await?;
        result
    }

    /// Syncs every enabled source whose interval has elapsed since its last sync (never-synced
    /// sources are due). One failing source does not stop the others.
    pub async fn sync_due(&self, now_ms: i64) -> Result<Vec<ScheduledSync>> {
        let mut out = Vec::new();
        for guild_id in guilds_with_sources(&self.store).await? {
            for row in self.repo(guild_id).sources().await? {
                let due =
                    row.enabled && row.last_sync_at.is_none_or(|t| now_ms.saturating_sub(t) >= row.sync_interval_ms);
                if !due {
                    continue;
                }
                let result = self.sync_configured(guild_id, &row.name, &mut |_| {}).await;
                if let Err(e) = &result {
                    tracing::warn!(guild_id, source = %row.name, error = %e, "scheduled knowledge-base sync failed");
                }
                out.push(ScheduledSync { guild_id, source: row.name, result });
            }
        }
        Ok(out)
    }

    /// Runs [`KnowledgeBase::sync_due`] every `tick` until `shutdown` resolves.
    pub async fn run_scheduler(&self, tick: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = interval.tick() => {
                    if let Err(e) = self.sync_due(beacon_store::now_ms()).await {
                        tracing::warn!(error = %e, "knowledge-base scheduler pass failed");
                    }
                }
            }
        }
    }
}

/// Ingests a folder (or one file) of markdown/text into `guild_id`'s knowledge base with the
/// default embedder (BM25 only, with one log line, when there is none). For `beacon ingest`.
pub async fn ingest_path(
    store: &Store,
    guild_id: u64,
    path: &Path,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<SyncReport> {
    let kb = KnowledgeBase::open(store.clone(), default_embedder(), FusionConfig::default(), ChunkerConfig::default())
        .await?;
    let source = FolderSource::new(path);
    kb.sync(guild_id, &source, &mut progress).await
}

/// Answers `question` from `guild_id`'s knowledge base: the `k` best chunks with their sources
/// and scores. For `beacon ask`.
pub async fn ask(store: &Store, guild_id: u64, question: &str, k: usize) -> Result<Vec<Hit>> {
    let kb = KnowledgeBase::open(store.clone(), default_embedder(), FusionConfig::default(), ChunkerConfig::default())
        .await?;
    kb.search(guild_id, question, k).await
}
