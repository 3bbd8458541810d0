//! Beacon's knowledge base: sources → markdown-aware chunks → embeddings → the database (the
//! source of truth) → per-guild search indexes (BM25 with tantivy and exact dense search over a
//! contiguous matrix, fused with settings chosen on evaluation data).
//!
//! The indexes are derived: each guild has an index version in the database, bumped by every
//! committed change of its chunks, and a search first makes sure the guild's index matches it
//! (so a bot notices an ingest made by another process). With an index folder
//! ([`KnowledgeBase::with_index_dir`]) each guild's index is also a file stamped with that
//! version ([`index_file`]): a fresh process reads it instead of rebuilding, and a missing,
//! outdated or corrupt file is rebuilt from the database, never fatal.
//!
//! ```no_run
//! # async fn demo(store: beacon_store::Store) -> Result<(), beacon_kb::KbError> {
//! use std::sync::Arc;
//! use beacon_kb::{BertEmbedder, ChunkerConfig, Embedder, FolderSource, FusionConfig, KnowledgeBase};
//!
//! // `store.migrate()` has run; the knowledge base applies its own module migrations.
//! let model: Arc<dyn Embedder> = Arc::new(BertEmbedder::load("models/all-MiniLM-L6-v2")?);
//! let kb = KnowledgeBase::open(store, Some(model), FusionConfig::default(), ChunkerConfig::default())
//!     .await?
//!     .with_index_dir("data/kb-index");
//! let guild = 81384788765712384;
//! kb.sync(guild, &FolderSource::new("docs"), &mut |p| eprintln!("{p:?}")).await?;
//! for hit in kb.search(guild, "How do I get a refund?", 5).await? {
//!     println!("{:.3} {} > {}: {}", hit.score, hit.title, hit.heading_path.join(" > "), hit.text);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The binary builds the embedder from its configuration (`BEACON_EMBED_*`) and syncs folders
//! (`beacon ingest`), searches (`beacon ask`) and evaluates ([`eval_beir`], `beacon eval`). Without
//! an embedder retrieval is BM25 alone. Remote sources get their credentials through
//! [`KnowledgeBase::with_credentials`].
//!
//! Configured sources (`kb_sources` rows: a kind name and a JSON config) are built by the
//! [`SourceKind`] registered under that name: Beacon's own (`folder`, `notion`, `sheets`,
//! `upload`, `website`) and any another crate adds with [`KnowledgeBase::with_source_kind`].

pub mod bm25;
pub mod chunk;
pub mod dense;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod html;
pub mod index_file;
pub mod ingest;
pub mod model_download;
pub mod pdf;
pub mod rerank;
pub mod retriever;
pub mod robots;
pub mod source;
pub mod store;
pub mod upload;
pub mod web;

pub use chunk::{ChunkDraft, ChunkerConfig, chunk_markdown};
pub use embed::{BertEmbedder, Embedder, ModelProfile, Pooling, Precision, ProfileOverrides};
pub use error::{KbError, Result};
pub use eval::{BeirSet, EvalOptions, EvalReport, PreparedEval, eval_beir};
pub use fusion::{FusionConfig, FusionMethod};
pub use index_file::{IndexDir, IndexStamp};
pub use ingest::{IndexOrigin, IndexStats, KnowledgeBase, Phase, Progress, SyncReport};
pub use model_download::ModelDownload;
pub use provider_embed::LlmEmbedder;
pub use rerank::{CrossEncoder, Rerank};
pub use retriever::{GuildIndex, Hit, IndexedChunk, Retriever};
pub use source::{
    BuildContext, CredentialPrompt, FolderSource, Source, SourceDocument, SourceInput, SourceKind, SourceKinds,
    StaticSource,
};
pub use upload::UploadLimits;
pub use web::CrawlOptions;

pub mod feed;
pub mod notion;
pub mod provider_embed;
pub mod sheets;

pub use feed::GuildSource;
pub use notion::{NotionConfig, NotionSource};
pub use sheets::{ServiceAccountKey, SheetsConfig, SheetsSource};
