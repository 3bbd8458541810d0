//! Beacon's knowledge base: sources → markdown-aware chunks → embeddings → the database (the
//! source of truth) → per-guild search indexes (BM25 with tantivy and exact dense search over a
//! contiguous matrix, fused with settings chosen on evaluation data).
//!
//! ```no_run
//! # async fn demo(store: beacon_store::Store) -> Result<(), beacon_kb::KbError> {
//! use beacon_kb::{ChunkerConfig, FolderSource, FusionConfig, KnowledgeBase, default_embedder};
//!
//! // `store.migrate()` has run; the knowledge base applies its own module migrations.
//! let kb = KnowledgeBase::open(store, default_embedder(), FusionConfig::default(), ChunkerConfig::default()).await?;
//! let guild = 81384788765712384;
//! kb.sync(guild, &FolderSource::new("docs"), &mut |p| eprintln!("{p:?}")).await?;
//! for hit in kb.search(guild, "How do I get a refund?", 5).await? {
//!     println!("{:.3} {} > {}: {}", hit.score, hit.title, hit.heading_path.join(" > "), hit.text);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Entry points for the CLI: [`ingest_path`] (`beacon ingest`), [`ask`] (`beacon ask`) and
//! [`eval_beir`] (`beacon eval`). Without a model (`BEACON_EMBED_MODEL_DIR` unset) retrieval is
//! BM25 alone, announced by one log line.

pub mod bm25;
pub mod chunk;
pub mod dense;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod ingest;
pub mod retriever;
pub mod source;
pub mod store;

pub use chunk::{ChunkDraft, ChunkerConfig, chunk_markdown};
pub use embed::{BertEmbedder, Embedder, MODEL_DIR_ENV, default_embedder};
pub use error::{KbError, Result};
pub use eval::{BeirSet, EvalOptions, EvalReport, PreparedEval, eval_beir};
pub use fusion::{FusionConfig, FusionMethod};
pub use ingest::{KnowledgeBase, Phase, Progress, SyncReport, ask, ingest_path};
pub use retriever::{GuildIndex, Hit, IndexedChunk, Retriever};
pub use source::{FolderSource, Source, SourceDocument, StaticSource};

pub mod faq_source;
pub mod notion;
pub mod sheets;

pub use faq_source::{FAQ_SOURCE_ID, FaqSource, faq_document, follow_faq_changes};
pub use notion::{NOTION_TOKEN_ENV, NOTION_TOKEN_FILE_ENV, NotionConfig, NotionSource};
pub use sheets::{GOOGLE_SA_ENV, ServiceAccountKey, SheetsConfig, SheetsSource};
