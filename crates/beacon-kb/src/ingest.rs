//! Ingestion (source → chunks → embeddings → database) and the knowledge-base service that keeps
//! per-guild search indexes derived from the database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_store::Store;
use sha2::{Digest, Sha256};

use crate::chunk::{ChunkerConfig, chunk_markdown};
use crate::embed::Embedder;
use beacon_config::KbCredentials;

use crate::error::{KbError, Result};
use crate::fusion::FusionConfig;
use crate::index_file::{IndexDir, IndexStamp, LoadMiss, Saved};
use crate::rerank::Rerank;
use crate::retriever::{GuildIndex, Hit, Retriever, search_text};
use crate::source::{BuildContext, Credentials, Source, SourceDocument, SourceInput, SourceKind, SourceKinds};
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

/// Where the index a search used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum IndexOrigin {
    /// It was in memory and current.
    Memory,
    /// It was read from the guild's index file (its stamp matched the database).
    Disk,
    /// It was rebuilt from the database (and its index file rewritten, when there is a folder:
    /// in the background, see [`KnowledgeBase::flush_index_writes`]).
    Rebuilt,
}

/// What the knowledge base did with its guild indexes since it was opened (for tests, logs and
/// `/status`-style reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexStats {
    /// Indexes read from their files.
    pub disk_loads: u64,
    /// Indexes rebuilt from the database.
    pub rebuilds: u64,
    /// Index files written.
    pub files_written: u64,
    /// Index files that could not be written (the index then serves from memory only).
    pub write_failures: u64,
    /// Index files found unreadable or corrupt (each then rebuilt).
    pub unusable_files: u64,
    /// Index version look-ups in the database.
    pub version_checks: u64,
    /// Indexes in memory replaced because the database's version moved on (e.g. an ingest by
    /// another process).
    pub reloads: u64,
}

#[derive(Default)]
struct Counters {
    disk_loads: AtomicU64,
    rebuilds: AtomicU64,
    files_written: AtomicU64,
    write_failures: AtomicU64,
    unusable_files: AtomicU64,
    version_checks: AtomicU64,
    reloads: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A loaded guild index's version and when it was last compared with the database.
#[derive(Clone, Copy)]
struct Loaded {
    version: i64,
    checked: Instant,
}

/// Default of [`KnowledgeBase::with_version_check_interval`].
pub const DEFAULT_VERSION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The knowledge base of all guilds: ingestion into the store and hybrid search over per-guild
/// indexes derived from it.
///
/// Each guild has an index version in the database, bumped by every committed change of its
/// chunks. A search first makes sure the guild's index matches it (looked up at most once per
/// [`KnowledgeBase::with_version_check_interval`]), so a process notices an ingest made by
/// another one. With an index folder ([`KnowledgeBase::with_index_dir`]) a missing or outdated
/// index is read from its file when the file's stamp matches, and otherwise rebuilt from the
/// database and written back; without one, indexes live in memory only.
pub struct KnowledgeBase {
    store: Store,
    retriever: Retriever,
    chunker: ChunkerConfig,
    /// Documents embedded and written per transaction.
    batch_documents: usize,
    index_dir: Option<IndexDir>,
    version_check_interval: Duration,
    loaded: Mutex<HashMap<u64, Loaded>>,
    /// One load at a time per guild: concurrent first searches wait for one rebuild.
    load_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Index files being written in the background after a rebuild served its first search.
    writes: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// Credentials configured sources sync with.
    credentials: KbCredentials,
    /// Opens (and seals) the guilds' own source credentials.
    keyring: Option<Arc<beacon_crypto::Keyring>>,
    /// The optional second stage and how many of the fused candidates it reorders.
    reranker: Option<(Arc<dyn Rerank>, usize)>,
    /// The kinds configured sources are built with.
    kinds: SourceKinds,
    /// How large uploaded files may be.
    upload_limits: crate::upload::UploadLimits,
}

impl KnowledgeBase {
    /// Opens the knowledge base on `store`, applying its migrations. Indexes are kept in memory
    /// only until [`KnowledgeBase::with_index_dir`] names a folder for them.
    pub async fn open(
        store: Store,
        embedder: Option<Arc<dyn Embedder>>,
        fusion: FusionConfig,
        chunker: ChunkerConfig,
    ) -> Result<Self> {
        migrate(&store).await?;
        Ok(KnowledgeBase {
            store,
            retriever: Retriever::new(embedder, fusion),
            chunker,
            batch_documents: 64,
            index_dir: None,
            version_check_interval: DEFAULT_VERSION_CHECK_INTERVAL,
            loaded: Mutex::new(HashMap::new()),
            load_locks: Mutex::new(HashMap::new()),
            writes: Mutex::new(Vec::new()),
            counters: Arc::default(),
            credentials: KbCredentials::default(),
            keyring: None,
            reranker: None,
            kinds: SourceKinds::builtin(),
            upload_limits: crate::upload::UploadLimits::default(),
        })
    }

    /// Reorders the first `depth` fused candidates of every search with `reranker` (a
    /// cross-encoder) before the best `k` are returned.
    pub fn with_reranker(mut self, reranker: Arc<dyn Rerank>, depth: usize) -> Self {
        self.reranker = Some((reranker, depth.max(1)));
        self
    }

    /// Persists guild indexes as files in `dir` (`<data dir>/kb-index` in `beacon run`), so a
    /// fresh process reads them instead of rebuilding. The folder is created on first write.
    pub fn with_index_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.index_dir = Some(IndexDir::new(dir));
        self
    }

    /// Registers a source kind (replacing a kind of the same name, e.g. the website kind with the
    /// deployment's crawl options): configured sources of that kind then build and sync.
    pub fn with_source_kind(mut self, kind: Arc<dyn SourceKind>) -> Self {
        self.kinds = self.kinds.with(kind);
        self
    }

    /// The registered source kinds.
    pub fn kinds(&self) -> &SourceKinds {
        &self.kinds
    }

    /// Limits uploaded files (per file and per guild).
    pub fn with_upload_limits(mut self, limits: crate::upload::UploadLimits) -> Self {
        self.upload_limits = limits;
        self
    }

    /// How large uploaded files may be.
    pub fn upload_limits(&self) -> crate::upload::UploadLimits {
        self.upload_limits
    }

    /// Seals and opens the credentials guilds give their own sources.
    pub fn with_keyring(mut self, keyring: Arc<beacon_crypto::Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Seals `credential` (a token, a service-account key) for `guild_id`'s source `name`: the
    /// stored value opens only for that source of that guild.
    pub fn seal_credential(&self, guild_id: u64, name: &str, credential: &str) -> Result<String> {
        let keyring = self.keyring.as_ref().ok_or_else(|| KbError::Source {
            source_name: name.into(),
            message: "this deployment has no secret key to store credentials with".into(),
        })?;
        keyring.seal(credential, &crate::source::Credentials::aad(guild_id, name)).map_err(|e| KbError::Source {
            source_name: name.into(),
            message: format!("sealing its credential failed: {e}"),
        })
    }

    /// The deployment's credentials for remote sources (Notion, Google Sheets), used only by the
    /// guilds they are shared with; other guilds' sources sync with their own sealed ones.
    pub fn with_credentials(mut self, credentials: KbCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// How long a loaded index is trusted before a search compares its version with the
    /// database again (default one second; zero checks on every search).
    pub fn with_version_check_interval(mut self, interval: Duration) -> Self {
        self.version_check_interval = interval;
        self
    }

    /// Drops the indexes (in memory and on disk) of guilds whose knowledge base no longer exists
    /// in the database — purged after their retention period — and returns their ids. A guild
    /// that never had a document has no version row either; its empty index is cheap to rebuild.
    pub async fn forget_purged_guilds(&self) -> Result<Vec<u64>> {
        let Some(dir) = &self.index_dir else { return Ok(Vec::new()) };
        // A write still in flight would bring a removed file back.
        self.flush_index_writes().await;
        let on_disk = dir.guilds();
        if on_disk.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT guild_id FROM kb_index_versions").fetch_all(self.store.pool()).await?;
        let live: std::collections::HashSet<u64> = rows.into_iter().map(|g| g as u64).collect();
        let gone: Vec<u64> = on_disk.into_iter().filter(|g| !live.contains(g)).collect();
        for guild_id in &gone {
            self.retriever.remove_guild(*guild_id);
            self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(guild_id);
            dir.remove(*guild_id)?;
        }
        if !gone.is_empty() {
            tracing::info!(guilds = ?gone, "index files of purged guilds removed");
        }
        Ok(gone)
    }

    /// Forgets `guild_id`'s index, in memory and on disk (its rows are purged by the store).
    /// Returns whether a file was removed.
    pub async fn purge_guild(&self, guild_id: u64) -> Result<bool> {
        // A write still in flight would bring a removed file back.
        self.flush_index_writes().await;
        self.retriever.remove_guild(guild_id);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(&guild_id);
        match &self.index_dir {
            Some(dir) if dir.guilds().contains(&guild_id) => {
                dir.remove(guild_id)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The store the knowledge base reads and writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The index folder, if indexes are persisted.
    pub fn index_dir(&self) -> Option<&IndexDir> {
        self.index_dir.as_ref()
    }

    /// What happened to the guild indexes so far.
    pub fn index_stats(&self) -> IndexStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IndexStats {
            disk_loads: get(&c.disk_loads),
            rebuilds: get(&c.rebuilds),
            files_written: get(&c.files_written),
            write_failures: get(&c.write_failures),
            unusable_files: get(&c.unusable_files),
            version_checks: get(&c.version_checks),
            reloads: get(&c.reloads),
        }
    }

    /// The retriever holding the loaded guild indexes.
    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    fn repo(&self, guild_id: u64) -> KbRepo {
        KbRepo::new(self.store.guild(guild_id))
    }

    /// The version of `guild_id`'s knowledge as every process sees it: the index version in the
    /// database (moved by every committed sync, here or in another process) and the embedding
    /// model. Answers and LLM responses are cached under it, so a change of either is never
    /// answered from a stale cache, and workers sharing a cache share answers.
    pub async fn current_version(&self, guild_id: u64) -> Result<String> {
        self.ensure_index(guild_id).await?;
        let version = match self.loaded(guild_id) {
            Some(loaded) => loaded.version,
            None => self.version(guild_id).await?,
        };
        Ok(format!("v{version}-{}", self.model_id().unwrap_or_else(|| "bm25".into())))
    }

    fn model_id(&self) -> Option<String> {
        self.retriever.embedder().map(|e| e.model_id().to_string())
    }

    /// The deployment's chunking, used where a guild has not set its own.
    pub fn default_chunker(&self) -> ChunkerConfig {
        self.chunker
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
        // The guild's own chunking when it set one; it is part of every content hash.
        let chunker = repo.chunker().await?.unwrap_or(self.chunker);
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
            let hash = content_hash(&d, &chunker, model_id.as_deref());
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
            let writes = self.prepare(batch, chunker).await?;
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
        // Rebuilt (and its file rewritten before this returns, so a CLI ingest leaves the file for
        // the bot) when this sync changed anything; an unchanged sync keeps the current index.
        self.refresh_index(guild_id, true, true).await?;
        progress(Progress { phase: Phase::Indexing, done: 1, total: 1 });
        progress(Progress { phase: Phase::Done, done: report.written, total: report.documents });
        Ok(report)
    }

    /// Chunks and embeds a batch of documents (embedding runs on a blocking thread).
    async fn prepare(
        &self,
        batch: Vec<(SourceDocument, String)>,
        chunker: ChunkerConfig,
    ) -> Result<Vec<DocumentWrite>> {
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
        tokio::task::spawn_blocking(task).await.map_err(|source| KbError::Task { what: "embedding", source })?
    }

    /// Rebuilds `guild_id`'s search index from the database (rewriting its file when indexes are
    /// persisted, before this returns) and installs it; returns its size.
    pub async fn rebuild_index(&self, guild_id: u64) -> Result<usize> {
        let lock = self.load_lock(guild_id);
        let _guard = lock.lock().await;
        let version = self.version(guild_id).await?;
        Ok(self.rebuild_at(guild_id, version, true).await?.len())
    }

    /// Waits for the index files that rebuilds are writing in the background (a rebuild installs
    /// and serves its index first, then writes the file).
    pub async fn flush_index_writes(&self) {
        let pending = std::mem::take(&mut *self.writes.lock().unwrap_or_else(|p| p.into_inner()));
        for write in pending {
            if let Err(e) = write.await {
                tracing::warn!(error = %e, "knowledge-base index file write task failed");
            }
        }
    }

    /// Makes sure `guild_id`'s index in memory matches the database (its version is compared at
    /// most once per check interval) and returns it with where it came from: memory, its file,
    /// or a rebuild. A missing, outdated or unreadable file is never fatal: the index is rebuilt.
    pub async fn ensure_index(&self, guild_id: u64) -> Result<(Arc<GuildIndex>, IndexOrigin)> {
        self.refresh_index(guild_id, false, false).await
    }

    /// [`KnowledgeBase::ensure_index`]; `force_check` compares the version even within the
    /// check interval; `wait_for_file`: a rebuild's file is written before this returns (else in
    /// the background).
    async fn refresh_index(
        &self,
        guild_id: u64,
        force_check: bool,
        wait_for_file: bool,
    ) -> Result<(Arc<GuildIndex>, IndexOrigin)> {
        if let (Some(index), Some(loaded)) = (self.retriever.guild(guild_id), self.loaded(guild_id)) {
            if !force_check && loaded.checked.elapsed() < self.version_check_interval {
                return Ok((index, IndexOrigin::Memory));
            }
            if self.version(guild_id).await? == loaded.version {
                self.mark_checked(guild_id, loaded.version);
                return Ok((index, IndexOrigin::Memory));
            }
        }
        self.load(guild_id, wait_for_file).await
    }

    fn loaded(&self, guild_id: u64) -> Option<Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&guild_id).copied()
    }

    fn mark_checked(&self, guild_id: u64, version: i64) {
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        l.insert(guild_id, Loaded { version, checked: Instant::now() });
    }

    fn load_lock(&self, guild_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.load_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(guild_id).or_default().clone()
    }

    async fn version(&self, guild_id: u64) -> Result<i64> {
        bump(&self.counters.version_checks);
        self.repo(guild_id).index_version().await
    }

    fn stamp(&self, guild_id: u64, version: i64) -> IndexStamp {
        IndexStamp { guild_id, version, model: self.model_id() }
    }

    /// Loads the index at the database's current version: from memory if another task just did,
    /// else from its file, else by a rebuild.
    async fn load(&self, guild_id: u64, wait_for_file: bool) -> Result<(Arc<GuildIndex>, IndexOrigin)> {
        let lock = self.load_lock(guild_id);
        let _guard = lock.lock().await;
        let version = self.version(guild_id).await?;
        if let (Some(index), Some(loaded)) = (self.retriever.guild(guild_id), self.loaded(guild_id))
            && loaded.version == version
        {
            self.mark_checked(guild_id, version);
            return Ok((index, IndexOrigin::Memory));
        }
        if let Some(dir) = self.index_dir.clone() {
            let stamp = self.stamp(guild_id, version);
            let path = dir.path(guild_id);
            match tokio::task::spawn_blocking(move || dir.load(&stamp)).await {
                Ok(Ok(Ok(index))) => {
                    bump(&self.counters.disk_loads);
                    return Ok((self.install(guild_id, version, index), IndexOrigin::Disk));
                }
                Ok(Ok(Err(LoadMiss::Missing))) => {
                    tracing::debug!(guild_id, "no knowledge-base index file yet; building it from the database");
                }
                Ok(Ok(Err(LoadMiss::Stale(found)))) => {
                    tracing::debug!(
                        guild_id,
                        file_version = found.version,
                        version,
                        "knowledge-base index file is outdated; rebuilding it from the database"
                    );
                }
                Ok(Ok(Err(LoadMiss::Format(format)))) => {
                    tracing::debug!(
                        guild_id,
                        format,
                        "knowledge-base index file has another layout (written by another release); rebuilding it"
                    );
                }
                Ok(Err(e)) => {
                    bump(&self.counters.unusable_files);
                    tracing::warn!(guild_id, path = %path.display(), error = %e,
                        "knowledge-base index file unusable; rebuilding it from the database");
                }
                Err(e) => {
                    bump(&self.counters.unusable_files);
                    tracing::warn!(guild_id, path = %path.display(), error = %e,
                        "reading the knowledge-base index file failed; rebuilding it from the database");
                }
            }
        }
        Ok((self.rebuild_at(guild_id, version, wait_for_file).await?, IndexOrigin::Rebuilt))
    }

    /// Builds the index from the chunks in the database, which must be read after `version`
    /// (so the index is never older than its stamp), installs it and writes its file: before
    /// returning when `wait_for_file`, else in the background (the first search does not wait
    /// for the encoding and fsync).
    async fn rebuild_at(&self, guild_id: u64, version: i64, wait_for_file: bool) -> Result<Arc<GuildIndex>> {
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
            .map_err(|source| KbError::Task { what: "index", source })??;
        bump(&self.counters.rebuilds);
        let index = self.install(guild_id, version, index);
        if let Some(dir) = self.index_dir.clone() {
            let write = self.spawn_write(dir, self.stamp(guild_id, version), index.clone());
            if wait_for_file {
                if let Err(e) = write.await {
                    tracing::warn!(guild_id, error = %e, "knowledge-base index file write task failed");
                }
            } else {
                let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
                writes.retain(|w| !w.is_finished());
                writes.push(write);
            }
        }
        Ok(index)
    }

    /// Writes `index`'s file on a blocking thread. A failure is logged and counted, never fatal:
    /// the index serves from memory and the next process rebuilds it.
    fn spawn_write(&self, dir: IndexDir, stamp: IndexStamp, index: Arc<GuildIndex>) -> tokio::task::JoinHandle<()> {
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || match dir.save(&stamp, &index) {
            Ok(Saved::Written) => bump(&counters.files_written),
            Ok(Saved::KeptNewer(found)) => tracing::debug!(
                guild_id = stamp.guild_id,
                version = stamp.version,
                file_version = found.version,
                "a newer knowledge-base index file was written meanwhile; kept it"
            ),
            Err(e) => {
                bump(&counters.write_failures);
                tracing::warn!(guild_id = stamp.guild_id, error = %e,
                    "could not write the knowledge-base index file; serving from memory");
            }
        })
    }

    fn install(&self, guild_id: u64, version: i64, index: GuildIndex) -> Arc<GuildIndex> {
        if self.loaded(guild_id).is_some_and(|l| l.version != version) && self.retriever.guild(guild_id).is_some() {
            bump(&self.counters.reloads);
        }
        let index = self.retriever.set_guild(guild_id, index);
        self.mark_checked(guild_id, version);
        index
    }

    /// The `k` best chunks for `query` in `guild_id`'s knowledge base, loading or refreshing its
    /// index first when it is missing or behind the database ([`KnowledgeBase::ensure_index`]).
    pub async fn search(&self, guild_id: u64, query: &str, k: usize) -> Result<Vec<Hit>> {
        let (index, _) = self.ensure_index(guild_id).await?;
        let vector = match (index.dense_dim(), self.retriever.embedder().cloned()) {
            (Some(_), Some(e)) => {
                let q = query.to_string();
                Some(
                    tokio::task::spawn_blocking(move || e.embed_query(&q))
                        .await
                        .map_err(|source| KbError::Task { what: "embedding", source })??,
                )
            }
            _ => None,
        };
        let Some((reranker, depth)) = self.reranker.clone() else {
            return index.search(self.retriever.fusion(), query, vector.as_deref(), k);
        };
        let mut hits = index.search(self.retriever.fusion(), query, vector.as_deref(), k.max(depth))?;
        let q = query.to_string();
        let mut hits = tokio::task::spawn_blocking(move || {
            crate::rerank::rerank_hits(reranker.as_ref(), &q, &mut hits, depth).map(|()| hits)
        })
        .await
        .map_err(|source| KbError::Task { what: "reranking", source })??;
        hits.truncate(k);
        Ok(hits)
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
    /// Configures (or reconfigures) a source of a registered `kind` for a guild, with a config
    /// the kind wrote ([`SourceKind::parse`], plus a sealed `credential`); `interval_ms`
    /// defaults to hourly.
    pub async fn add_source(
        &self,
        guild_id: u64,
        name: &str,
        kind: &str,
        config: &serde_json::Value,
        interval_ms: Option<i64>,
    ) -> Result<i64> {
        self.kinds.require(kind)?;
        if kind != "upload" {
            // A name that held an uploaded file now names another kind of source.
            sqlx::query("DELETE FROM kb_uploads WHERE guild_id = $1 AND source = $2")
                .bind(self.store.guild(guild_id).sql_id())
                .bind(name)
                .execute(self.store.pool())
                .await?;
        }
        self.repo(guild_id)
            .upsert_source(kind, name, config, interval_ms.unwrap_or(DEFAULT_SYNC_INTERVAL_MS), beacon_store::now_ms())
            .await
    }

    /// [`KnowledgeBase::add_source`] from a guild's input, parsed and validated by the kind.
    pub async fn add_source_from_input(
        &self,
        guild_id: u64,
        name: &str,
        kind: &str,
        input: &SourceInput,
        interval_ms: Option<i64>,
    ) -> Result<i64> {
        let config = self.kinds.require(kind)?.parse(input)?;
        self.add_source(guild_id, name, kind, &config, interval_ms).await
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
        let context = BuildContext {
            guild: self.store.guild(guild_id),
            credentials: Credentials { guild_id, deployment: &self.credentials, keyring: self.keyring.as_deref() },
        };
        let built = self.kinds.require(&row.kind).and_then(|kind| kind.build(&row.name, &row.config, &context));
        let result = match built {
            Ok(source) => self.sync(guild_id, source.as_ref(), progress).await,
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
                    if let Err(e) = self.forget_purged_guilds().await {
                        tracing::warn!(error = %e, "removing purged guilds' index files failed");
                    }
                }
            }
        }
    }
}
