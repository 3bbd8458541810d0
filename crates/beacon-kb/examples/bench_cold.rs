//! Cold start: time from a fresh process's start to its first query's hits, with the chunks and
//! embeddings in SQLite and the guild index rebuilt from them (the model load is not counted:
//! the query vector is precomputed).
//!
//! `bench_cold prepare DB BEIR_DIR VECTORS.f32 N` writes N chunks (one guild) and prints the
//! database write rate; `bench_cold query DB BEIR_DIR QUERY_VECTORS.f32` prints the first-query time.

use std::time::Instant;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::eval::{BeirSet, chunk_corpus};
use beacon_kb::fusion::FusionConfig;
use beacon_kb::retriever::GuildIndex;
use beacon_kb::store::{DocumentWrite, KbRepo, NewChunk, migrate};
use beacon_store::Store;

const GUILD: u64 = 1;
const MODEL: &str = "bench";

fn read_rows(path: &str, dim: usize) -> std::io::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path)?;
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, db, dir, vectors, n] if cmd == "prepare" => {
            let n: usize = n.parse()?;
            let _ = std::fs::remove_file(db);
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
            println!("{}", serde_json::json!({"chunks": n, "db_write_chunks_per_s": n as f64 / s}));
        }
        [cmd, db, dir, query_vectors] if cmd == "query" => {
            let store = Store::connect(&format!("sqlite://{db}")).await?;
            let repo = KbRepo::new(store.guild(GUILD));
            let chunks = repo.chunks(Some(MODEL)).await?;
            let loaded = start.elapsed().as_secs_f64() * 1e3;
            let n = chunks.len();
            let index = GuildIndex::build(chunks)?;
            let built = start.elapsed().as_secs_f64() * 1e3;
            let set = BeirSet::load(dir)?;
            let q = set.judged_queries().first().map(|q| q.text.clone()).unwrap_or_default();
            let v = read_rows(query_vectors, 384)?.into_iter().next().unwrap_or_default();
            let read = start.elapsed().as_secs_f64() * 1e3;
            let hits = index.search(&FusionConfig::default(), &q, Some(&v), 5)?;
            let done = start.elapsed().as_secs_f64() * 1e3;
            println!(
                "{}",
                serde_json::json!({
                    "chunks": n, "hits": hits.len(),
                    "db_load_ms": loaded, "index_build_ms": built - loaded,
                    "first_query_ms": done - (read - built),
                    "search_ms": done - read,
                })
            );
        }
        _ => return Err("usage: bench_cold prepare DB BEIR_DIR VECTORS N | query DB BEIR_DIR QUERY_VECTORS".into()),
    }
    Ok(())
}
