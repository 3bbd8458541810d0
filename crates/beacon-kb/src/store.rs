//! Persistence of documents, chunks and embeddings (the source of truth; search indexes are
//! derived from it). Every row carries `guild_id`, and every query binds the guild id of a
//! [`beacon_store::GuildStore`].

use beacon_store::{Backend, GuildStore, Schema, Store};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::error::{KbError, Result};
use crate::retriever::IndexedChunk;

/// Module name under which the knowledge base's migrations are recorded.
pub const MODULE: &str = "kb";

/// Schema of the knowledge base.
pub const SCHEMA: Schema = Schema {
    name: MODULE,
    migrations: &[
        beacon_store::migration!(1, "knowledge base sources, documents and chunks", "0001_kb.sql"),
        beacon_store::migration!(
            2,
            "knowledge base index versions (stamp of the derived per-guild search indexes)",
            "0002_index_versions.sql"
        ),
        beacon_store::migration!(3, "knowledge base chunking per guild", "0003_chunking.sql"),
        beacon_store::migration!(4, "knowledge base uploaded files", "0004_uploads.sql"),
        beacon_store::migration!(5, "knowledge base upload quota turns", "0005_upload_quota.sql"),
    ],
    // Children first: chunks go before their documents.
    guild_tables: &[
        "kb_chunks",
        "kb_documents",
        "kb_sources",
        "kb_index_versions",
        "kb_chunking",
        "kb_uploads",
        "kb_upload_quota",
    ],
};

/// Applies the knowledge base's schema (idempotent).
pub async fn migrate(store: &Store) -> Result<()> {
    store.migrate_schema(&SCHEMA).await.map_err(store_err)
}

pub(crate) fn store_err(e: beacon_store::StoreError) -> KbError {
    KbError::Store(e)
}

/// A stored document's identity and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Row id.
    pub id: i64,
    /// Key within its source.
    pub key: String,
    /// Hash of what was chunked and embedded.
    pub content_hash: String,
}

/// A chunk ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    /// Position in the document.
    pub ordinal: usize,
    /// Headings above it.
    pub heading_path: Vec<String>,
    /// Its text.
    pub text: String,
    /// Its embedding and the model that made it.
    pub embedding: Option<(String, Vec<f32>)>,
}

/// A document with its chunks, ready to replace the stored version.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentWrite {
    /// Key within its source.
    pub key: String,
    /// Title.
    pub title: String,
    /// Link to the original, if any.
    pub url: Option<String>,
    /// Content hash.
    pub content_hash: String,
    /// Its chunks.
    pub chunks: Vec<NewChunk>,
}

fn f32s_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_f32s(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// A document and the ids of its chunks ([`KbRepo::document_chunks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChunks {
    /// Database id of the document.
    pub id: i64,
    /// The source it came from.
    pub source: String,
    /// Its key within the source.
    pub key: String,
    /// Its title.
    pub title: String,
    /// Its chunks' database ids.
    pub chunk_ids: Vec<i64>,
}

/// Repository of one guild's knowledge-base rows.
pub struct KbRepo {
    guild: GuildStore,
}

impl KbRepo {
    /// The repository of `guild`'s rows.
    pub fn new(guild: GuildStore) -> Self {
        KbRepo { guild }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.guild.store().pool()
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>> {
        // On SQLite take the write lock up front so concurrent writers wait instead of failing.
        Ok(match self.guild.store().backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        })
    }

    /// The guild's own chunking, if it set one.
    pub async fn chunker(&self) -> Result<Option<crate::ChunkerConfig>> {
        let row = sqlx::query("SELECT max_chars, overlap_chars FROM kb_chunking WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(crate::ChunkerConfig {
                max_chars: r.try_get::<i64, _>("max_chars")?.max(1) as usize,
                overlap_chars: r.try_get::<i64, _>("overlap_chars")?.max(0) as usize,
            })
        })
        .transpose()
    }

    /// Sets the guild's chunking (`None`: back to the deployment's) and, when it changed, marks
    /// every source of the guild due, so the scheduler re-syncs — and re-chunks — them on its next
    /// pass. Returns whether it changed.
    pub async fn set_chunker(&self, chunker: Option<crate::ChunkerConfig>, now_ms: i64) -> Result<bool> {
        if self.chunker().await? == chunker {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        match chunker {
            Some(c) => {
                sqlx::query(
                    "INSERT INTO kb_chunking (guild_id, max_chars, overlap_chars, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (guild_id) DO UPDATE SET max_chars = excluded.max_chars, \
                     overlap_chars = excluded.overlap_chars, updated_at = excluded.updated_at",
                )
                .bind(self.guild.sql_id())
                .bind(c.max_chars as i64)
                .bind(c.overlap_chars as i64)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM kb_chunking WHERE guild_id = $1")
                    .bind(self.guild.sql_id())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE kb_sources SET last_sync_at = NULL WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every document of the guild, in every source, with the ids of its chunks (for reports of
    /// which documents answers drew on).
    pub async fn document_chunks(&self) -> Result<Vec<DocumentChunks>> {
        let rows = sqlx::query(
            "SELECT d.id, d.source, d.doc_key, d.title, c.id AS chunk_id FROM kb_documents d \
             LEFT JOIN kb_chunks c ON c.document_id = d.id AND c.guild_id = d.guild_id \
             WHERE d.guild_id = $1 ORDER BY d.id, c.id",
        )
        .bind(self.guild.sql_id())
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<DocumentChunks> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let chunk: Option<i64> = r.try_get("chunk_id")?;
            match out.last_mut() {
                Some(doc) if doc.id == id => doc.chunk_ids.extend(chunk),
                _ => out.push(DocumentChunks {
                    id,
                    source: r.try_get("source")?,
                    key: r.try_get("doc_key")?,
                    title: r.try_get("title")?,
                    chunk_ids: chunk.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    /// Documents stored for one source.
    pub async fn documents(&self, source: &str) -> Result<Vec<StoredDocument>> {
        let rows = sqlx::query(
            "SELECT id, doc_key, content_hash FROM kb_documents \
             WHERE guild_id = $1 AND source = $2 ORDER BY id",
        )
        .bind(self.guild.sql_id())
        .bind(source)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredDocument {
                    id: r.try_get("id")?,
                    key: r.try_get("doc_key")?,
                    content_hash: r.try_get("content_hash")?,
                })
            })
            .collect()
    }

    /// Replaces documents (inserting new ones) with their chunks, all in one transaction: a crash
    /// leaves every document at its previous version.
    pub async fn write_documents(&self, source: &str, docs: &[DocumentWrite], now_ms: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let gid = self.guild.sql_id();
        for d in docs {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO kb_documents (guild_id, source, doc_key, title, url, content_hash, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (guild_id, source, doc_key) DO UPDATE SET \
                 title = excluded.title, url = excluded.url, content_hash = excluded.content_hash, \
                 updated_at = excluded.updated_at \
                 RETURNING id",
            )
            .bind(gid)
            .bind(source)
            .bind(&d.key)
            .bind(&d.title)
            .bind(d.url.as_deref())
            .bind(&d.content_hash)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM kb_chunks WHERE guild_id = $1 AND document_id = $2")
                .bind(gid)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for c in &d.chunks {
                let path = serde_json::to_string(&c.heading_path)
                    .map_err(|source| KbError::Json { what: "chunk heading_path".into(), source })?;
                sqlx::query(
                    "INSERT INTO kb_chunks (guild_id, document_id, ordinal, heading_path, text, embed_model, embedding) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(gid)
                .bind(id)
                .bind(c.ordinal as i64)
                .bind(path)
                .bind(&c.text)
                .bind(c.embedding.as_ref().map(|e| e.0.clone()))
                .bind(c.embedding.as_ref().map(|e| f32s_to_bytes(&e.1)))
                .execute(&mut *tx)
                .await?;
            }
        }
        if !docs.is_empty() {
            bump_index_version(&mut tx, gid).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes documents (and their chunks) of one source by key, in one transaction.
    pub async fn delete_documents(&self, source: &str, keys: &[String]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let gid = self.guild.sql_id();
        let mut n = 0;
        for key in keys {
            // Chunks first: SQLite only cascades with foreign keys on, and PostgreSQL always does.
            sqlx::query(
                "DELETE FROM kb_chunks WHERE guild_id = $1 AND document_id IN \
                 (SELECT id FROM kb_documents WHERE guild_id = $1 AND source = $2 AND doc_key = $3)",
            )
            .bind(gid)
            .bind(source)
            .bind(key)
            .execute(&mut *tx)
            .await?;
            n += sqlx::query("DELETE FROM kb_documents WHERE guild_id = $1 AND source = $2 AND doc_key = $3")
                .bind(gid)
                .bind(source)
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if n > 0 {
            bump_index_version(&mut tx, gid).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The guild's index version: bumped in the same transaction as every committed change of its
    /// documents or chunks, so an index stamped with it is current. 0 when nothing was ever written.
    /// One primary-key lookup.
    pub async fn index_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT version FROM kb_index_versions WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .fetch_optional(self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// All chunks of the guild, in document order, for building its search indexes. Embeddings
    /// made by another model than `embed_model` are left out (the chunk is then BM25-only until
    /// it is re-embedded).
    pub async fn chunks(&self, embed_model: Option<&str>) -> Result<Vec<IndexedChunk>> {
        let rows = sqlx::query(
            "SELECT c.id, c.document_id, d.doc_key, d.title, c.heading_path, c.text, c.embed_model, c.embedding \
             FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id AND d.guild_id = c.guild_id \
             WHERE c.guild_id = $1 ORDER BY c.document_id, c.ordinal",
        )
        .bind(self.guild.sql_id())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| chunk_row(r, embed_model)).collect()
    }

    /// Number of documents and chunks stored for the guild.
    pub async fn counts(&self) -> Result<(i64, i64)> {
        let docs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kb_documents WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .fetch_one(self.pool())
            .await?;
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kb_chunks WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .fetch_one(self.pool())
            .await?;
        Ok((docs, chunks))
    }
}

/// Bumps the guild's index version inside `tx`. The new version is greater than the old one and
/// at least the current unix time in ms, so a guild whose rows were purged and written again never
/// reuses a version that an index left on disk may carry.
async fn bump_index_version(tx: &mut Transaction<'static, Any>, gid: i64) -> Result<()> {
    let now = beacon_store::now_ms();
    sqlx::query(
        "INSERT INTO kb_index_versions (guild_id, version, updated_at) VALUES ($1, $2, $2) \
         ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at, version = CASE \
         WHEN kb_index_versions.version + 1 > excluded.version THEN kb_index_versions.version + 1 \
         ELSE excluded.version END",
    )
    .bind(gid)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn chunk_row(r: &AnyRow, embed_model: Option<&str>) -> Result<IndexedChunk> {
    let path: String = r.try_get("heading_path")?;
    let heading_path: Vec<String> =
        serde_json::from_str(&path).map_err(|source| KbError::Json { what: "chunk heading_path".into(), source })?;
    let model: Option<String> = r.try_get("embed_model")?;
    let bytes: Option<Vec<u8>> = r.try_get("embedding")?;
    let embedding = match (embed_model, model, bytes) {
        (Some(want), Some(have), Some(b)) if want == have => bytes_to_f32s(&b),
        _ => None,
    };
    Ok(IndexedChunk {
        chunk_id: r.try_get("id")?,
        document_id: r.try_get("document_id")?,
        document_key: r.try_get("doc_key")?,
        title: r.try_get("title")?,
        heading_path,
        text: r.try_get("text")?,
        embedding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_bytes_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-8, f32::MAX];
        assert_eq!(bytes_to_f32s(&f32s_to_bytes(&v)), Some(v));
        assert_eq!(bytes_to_f32s(&[1, 2, 3]), None);
    }
}

/// A source configured for a guild (row of `kb_sources`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// Row id.
    pub id: i64,
    /// Kind, e.g. `folder` (see [`crate::source::SourceKind`]).
    pub kind: String,
    /// Unique name within the guild; documents are stored under it.
    pub name: String,
    /// Kind-specific settings (JSON).
    pub config: serde_json::Value,
    /// Whether scheduled syncs run.
    pub enabled: bool,
    /// Interval between scheduled syncs, ms.
    pub sync_interval_ms: i64,
    /// Last sync attempt, unix ms.
    pub last_sync_at: Option<i64>,
    /// Error of the last sync, if it failed.
    pub last_error: Option<String>,
}

/// Default interval between scheduled syncs: one hour.
pub const DEFAULT_SYNC_INTERVAL_MS: i64 = 3_600_000;

fn source_row(r: &AnyRow) -> Result<SourceRow> {
    let config: String = r.try_get("config")?;
    Ok(SourceRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        config: serde_json::from_str(&config)
            .map_err(|source| KbError::Json { what: "source config".into(), source })?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        sync_interval_ms: r.try_get("sync_interval_ms")?,
        last_sync_at: r.try_get("last_sync_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl KbRepo {
    /// Adds (or reconfigures) a source named `name`.
    pub async fn upsert_source(
        &self,
        kind: &str,
        name: &str,
        config: &serde_json::Value,
        sync_interval_ms: i64,
        now_ms: i64,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO kb_sources (guild_id, kind, name, config, enabled, sync_interval_ms, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6) \
             ON CONFLICT (guild_id, name) DO UPDATE SET kind = excluded.kind, config = excluded.config, \
             sync_interval_ms = excluded.sync_interval_ms \
             RETURNING id",
        )
        .bind(self.guild.sql_id())
        .bind(kind)
        .bind(name)
        .bind(config.to_string())
        .bind(sync_interval_ms)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?)
    }

    /// The guild's configured sources.
    pub async fn sources(&self) -> Result<Vec<SourceRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, name, config, enabled, sync_interval_ms, last_sync_at, last_error \
             FROM kb_sources WHERE guild_id = $1 ORDER BY name",
        )
        .bind(self.guild.sql_id())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(source_row).collect()
    }

    /// Records the outcome of a sync of source `id`.
    pub async fn record_sync(&self, id: i64, at_ms: i64, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE kb_sources SET last_sync_at = $1, last_error = $2 WHERE guild_id = $3 AND id = $4")
            .bind(at_ms)
            .bind(error)
            .bind(self.guild.sql_id())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes a source and all its documents (and its uploaded file, if it is an upload).
    pub async fn remove_source(&self, name: &str) -> Result<bool> {
        let keys: Vec<String> = self.documents(name).await?.into_iter().map(|d| d.key).collect();
        self.delete_documents(name, &keys).await?;
        sqlx::query("DELETE FROM kb_uploads WHERE guild_id = $1 AND source = $2")
            .bind(self.guild.sql_id())
            .bind(name)
            .execute(self.pool())
            .await?;
        let n = sqlx::query("DELETE FROM kb_sources WHERE guild_id = $1 AND name = $2")
            .bind(self.guild.sql_id())
            .bind(name)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}

/// Guild ids having at least one enabled source (for the scheduler).
pub async fn guilds_with_sources(store: &Store) -> Result<Vec<u64>> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT guild_id FROM kb_sources WHERE enabled = 1 ORDER BY guild_id")
            .fetch_all(store.pool())
            .await?;
    Ok(ids.into_iter().map(|i| i as u64).collect())
}
