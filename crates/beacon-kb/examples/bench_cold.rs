//! Cold start: time from a fresh process's start to its first query's hits, with the chunks and
//! embeddings in SQLite and the guild's index either read from its persisted file or rebuilt
//! from the database (the model load is not counted: the query vector is precomputed).
//!
//! `bench_cold prepare DB BEIR_DIR VECTORS.f32 N INDEX_DIR` writes N chunks (one guild), prints
//! the database write rate, then builds the guild's index and writes its file into INDEX_DIR.
//! `bench_cold query DB BEIR_DIR QUERY_VECTORS.f32 INDEX_DIR` is the fresh process: it opens the
//! database and the knowledge base, loads the index (from INDEX_DIR when its stamp matches, else
//! rebuilt: pass an empty folder to measure that path) and prints the first-query time.

use std::sync::Arc;
use std::time::Instant;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::Embedder;
use beacon_kb::error::{KbError, Result};
use beacon_kb::eval::{BeirSet, chunk_corpus};
use beacon_kb::fusion::FusionConfig;
use beacon_kb::ingest::KnowledgeBase;
use beacon_kb::store::{DocumentWrite, KbRepo, NewChunk, migrate};
use beacon_store::Store;

const GUILD: u64 = 1;
const MODEL: &str = "bench";

/// Stands for the model that made the stored vectors: queries come precomputed, so it never runs.
struct Precomputed;

impl Embedder for Precomputed {
    fn model_id(&self) -> &str {
        MODEL
    }
    fn dim(&self) -> usize {
        384
    }
    fn embed_documents(&self, _: &[&str]) -> Result<Vec<Vec<f32>>> {
        Err(KbError::Model("bench_cold embeds nothing; vectors are precomputed".into()))
    }
}

fn read_rows(path: &str, dim: usize) -> std::io::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path)?;
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

async fn open_kb(db: &str, index_dir: &str) -> Result<KnowledgeBase, Box<dyn std::error::Error>> {
    let store = Store::connect(&format!("sqlite://{db}")).await?;
    let kb = KnowledgeBase::open(store, Some(Arc::new(Precomputed)), FusionConfig::default(), ChunkerConfig::default())
        .await?
        .with_index_dir(index_dir);
    Ok(kb)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, db, dir, vectors, n, index_dir] if cmd == "prepare" => {
            let n: usize = n.parse()?;
            let _ = std::fs::remove_file(db);
            let _ = std::fs::remove_dir_all(index_dir);
            let store = Store::connect(&format!("sqlite://{db}")).await?;
            store.migrate().await?;
            migrate(&store).await?;
            let base = chunk_corpus(&BeirSet::load(dir)?.corpus, &ChunkerConfig::default());
            let vectors = read_rows(vectors, 384)?;
            let repo = KbRepo::new(store.guild(GUILD));
            let t = Instant::now();
            let writes: Vec<DocumentWrite> = vectors
                .into_iter()
                .take(n)
                .enumerate()
                .map(|(i, v)| {
                    let b = &base[i % base.len()];
                    DocumentWrite {
                        key: format!("{}#{i}", b.document_key),
                        title: b.title.clone(),
                        url: None,
                        content_hash: String::new(),
                        chunks: vec![NewChunk {
                            ordinal: 0,
                            heading_path: b.heading_path.clone(),
                            text: b.text.clone(),
                            embedding: Some((MODEL.to_string(), v)),
                        }],
                    }
                })
                .collect();
            for batch in writes.chunks(1000) {
                repo.write_documents("bench", batch, 0).await?;
            }
            let s = t.elapsed().as_secs_f64();
            store.close().await;
            let kb = open_kb(db, index_dir).await?;
            let t = Instant::now();
            kb.rebuild_index(GUILD).await?;
            let rebuild_s = t.elapsed().as_secs_f64();
            let stats = kb.index_stats();
            let file = kb.index_dir().map(|d| d.path(GUILD)).ok_or("no index folder")?;
            println!(
                "{}",
                serde_json::json!({
                    "chunks": n,
                    "db_write_chunks_per_s": n as f64 / s,
                    "index_rebuild_and_write_ms": rebuild_s * 1e3,
                    "index_file_mb": std::fs::metadata(&file)?.len() as f64 / 1e6,
                    "files_written": stats.files_written,
                })
            );
        }
        [cmd, db, dir, query_vectors, index_dir] if cmd == "query" => {
            // Inputs of the query (not part of a real first query: the bot gets the text from
            // Discord and embeds it with the model, whose load is reported apart).
            let set = BeirSet::load(dir)?;
            let q = set.judged_queries().first().map(|q| q.text.clone()).unwrap_or_default();
            let v = read_rows(query_vectors, 384)?.into_iter().next().unwrap_or_default();
            let inputs = start.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let kb = open_kb(db, index_dir).await?;
            let opened = t.elapsed().as_secs_f64() * 1e3;
            let (index, origin) = kb.ensure_index(GUILD).await?;
            let loaded = t.elapsed().as_secs_f64() * 1e3;
            let hits = index.search(kb.retriever().fusion(), &q, Some(&v), 5)?;
            let done = t.elapsed().as_secs_f64() * 1e3;
            println!(
                "{}",
                serde_json::json!({
                    "chunks": index.len(), "hits": hits.len(), "origin": origin,
                    "process_start_to_inputs_ms": inputs,
                    "open_ms": opened,
                    "index_load_ms": loaded - opened,
                    "search_ms": done - loaded,
                    "first_query_ms": done,
                    "process_ms": start.elapsed().as_secs_f64() * 1e3,
                })
            );
        }
        _ => {
            return Err(
                "usage: bench_cold prepare DB BEIR_DIR VECTORS N INDEX_DIR | query DB BEIR_DIR QUERY_VECTORS INDEX_DIR"
                    .into(),
            );
        }
    }
    Ok(())
}
