//! Index build rate, query latency and memory at a given number of chunks, with precomputed
//! embeddings (query embedding timed apart).
//!
//! `cargo run --release -p beacon-kb --example bench_latency -- BEIR_DIR TOTAL_CHUNKS GUILDS VECTORS.f32 QUERY_VECTORS.f32`
//!
//! Chunk texts are the BEIR corpus's chunks repeated (so BM25 sees real term statistics); chunk
//! vectors are read from `VECTORS.f32` (little-endian f32 rows, as `chroma_bench.py scale` writes
//! them) and query vectors from `export_vectors`' `query_vectors.f32`, so ChromaDB and beacon-kb
//! search the same vectors. Query embedding time is reported by `export_vectors`. Chunks are dealt round-robin to
//! `GUILDS` guilds: "filtered" queries search one guild (per-guild index), "unfiltered" ones a
//! single index holding all chunks. Prints one JSON object.

use std::time::Instant;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::eval::{BeirSet, chunk_corpus, percentile};
use beacon_kb::fusion::FusionConfig;
use beacon_kb::retriever::{GuildIndex, IndexedChunk};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn read_rows(path: &str, dim: usize) -> std::io::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path)?;
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, total, guilds, vectors, query_vectors] = args.as_slice() else {
        return Err("usage: bench_latency BEIR_DIR TOTAL_CHUNKS GUILDS VECTORS.f32 QUERY_VECTORS.f32".into());
    };
    let total: usize = total.parse()?;
    let guilds: usize = guilds.parse::<usize>()?.max(1);
    let dim = 384;
    let set = BeirSet::load(dir)?;
    let base = chunk_corpus(&set.corpus, &ChunkerConfig::default());
    let vectors = read_rows(vectors, dim)?;
    if vectors.len() < total {
        return Err(format!("{} holds {} vectors, need {total}", args[3], vectors.len()).into());
    }
    let query_vectors = read_rows(query_vectors, dim)?;
    let mut per_guild: Vec<Vec<IndexedChunk>> = vec![Vec::new(); guilds];
    let mut all = Vec::with_capacity(total);
    for (i, embedding) in vectors.into_iter().take(total).enumerate() {
        let b = &base[i % base.len()];
        let c = IndexedChunk {
            chunk_id: i as i64,
            document_id: i as i64,
            document_key: format!("{}#{}", b.document_key, i / base.len()),
            title: b.title.clone(),
            heading_path: b.heading_path.clone(),
            text: b.text.clone(),
            embedding: Some(embedding),
        };
        per_guild[i % guilds].push(c.clone());
        all.push(c);
    }
    let rss_before = rss_mb();

    let t = Instant::now();
    let indexes: Vec<GuildIndex> = per_guild.into_iter().map(GuildIndex::build).collect::<Result<_, _>>()?;
    let build_guilds_s = t.elapsed().as_secs_f64();
    let rss_guilds = rss_mb();
    let t = Instant::now();
    let unfiltered = GuildIndex::build(all)?;
    let build_s = t.elapsed().as_secs_f64();
    let rss_after = rss_mb();

    // The judged queries in the order export_vectors wrote their vectors.
    let queries: Vec<(String, Vec<f32>)> =
        set.judged_queries().iter().map(|q| q.text.clone()).zip(query_vectors).collect();
    let fusion = FusionConfig::default();
    let time = |targets: &[&GuildIndex]| -> Result<(f64, f64), beacon_kb::error::KbError> {
        for (i, (text, v)) in queries.iter().take(20).enumerate() {
            std::hint::black_box(targets[i % targets.len()].search(&fusion, text, Some(v), 5)?);
        }
        let mut ms = Vec::with_capacity(queries.len());
        for (i, (text, v)) in queries.iter().enumerate() {
            let t = Instant::now();
            let hits = targets[i % targets.len()].search(&fusion, text, Some(v), 5)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(hits);
        }
        Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
    };
    let (u50, u99) = time(&[&unfiltered])?;
    let refs: Vec<&GuildIndex> = indexes.iter().collect();
    let (f50, f99) = time(&refs)?;
    let out = serde_json::json!({
        "chunks": total,
        "guilds": guilds,
        "build_chunks_per_s": total as f64 / build_s,
        "build_per_guild_chunks_per_s": total as f64 / build_guilds_s,
        "unfiltered_p50_ms": u50, "unfiltered_p99_ms": u99,
        "filtered_p50_ms": f50, "filtered_p99_ms": f99,
        "rss_mb_before_index": rss_before,
        "rss_mb_per_guild_indexes": rss_guilds,
        "rss_mb_after_index": rss_after,
    });
    println!("{out}");
    Ok(())
}
