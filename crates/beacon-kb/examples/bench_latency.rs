//! Index build rate, query latency and memory at a given number of chunks, with precomputed
//! embeddings (query embedding timed apart).
//!
//! `cargo run --release -p beacon-kb --example bench_latency -- BEIR_DIR TOTAL_CHUNKS GUILDS [VECTORS.f32]`
//!
//! Chunk texts are the BEIR corpus's chunks repeated (so BM25 sees real term statistics); chunk
//! vectors are the corpus's embeddings when `VECTORS.f32` (little-endian f32 rows, one per chunk of
//! `chunk_corpus` order) is given, else random unit vectors. Chunks are dealt round-robin to
//! `GUILDS` guilds: "filtered" queries search one guild (per-guild index), "unfiltered" ones a
//! single index holding all chunks. Prints one JSON object.

use std::time::Instant;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::{BertEmbedder, Embedder};
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

fn unit(rng: &mut fastrand::Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, total, guilds, rest @ ..] = args.as_slice() else {
        return Err("usage: bench_latency BEIR_DIR TOTAL_CHUNKS GUILDS [VECTORS.f32]".into());
    };
    let total: usize = total.parse()?;
    let guilds: usize = guilds.parse::<usize>()?.max(1);
    let dim = 384;
    let set = BeirSet::load(dir)?;
    let base = chunk_corpus(&set.corpus, &ChunkerConfig::default());
    let base_vectors: Option<Vec<Vec<f32>>> = match rest.first() {
        Some(p) => {
            let bytes = std::fs::read(p)?;
            let floats: Vec<f32> =
                bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Some(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
        }
        None => None,
    };
    let mut rng = fastrand::Rng::with_seed(42);
    let mut per_guild: Vec<Vec<IndexedChunk>> = vec![Vec::new(); guilds];
    let mut all = Vec::with_capacity(total);
    for i in 0..total {
        let b = &base[i % base.len()];
        // Repeated chunks get a perturbed vector so no two rows are identical.
        let embedding = match &base_vectors {
            Some(vs) if i < vs.len() => vs[i].clone(),
            Some(vs) => {
                let noise = unit(&mut rng, dim);
                let v: Vec<f32> = vs[i % vs.len()].iter().zip(&noise).map(|(a, n)| a + 0.3 * n).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / n).collect()
            }
            None => unit(&mut rng, dim),
        };
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
    let unfiltered = GuildIndex::build(all)?;
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let indexes: Vec<GuildIndex> = per_guild.into_iter().map(GuildIndex::build).collect::<Result<_, _>>()?;
    let build_guilds_s = t.elapsed().as_secs_f64();
    let rss_after = rss_mb();

    // Queries: the BEIR questions, embedded by the model if present (timed apart), else random.
    let embedder = BertEmbedder::from_env().transpose()?;
    let mut embed_ms = Vec::new();
    let queries: Vec<(String, Vec<f32>)> = set
        .queries
        .iter()
        .take(300)
        .map(|q| {
            let v = match &embedder {
                Some(e) => {
                    let t = Instant::now();
                    let v = e.embed_query(&q.text)?;
                    embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
                    v
                }
                None => unit(&mut rng, dim),
            };
            Ok((q.text.clone(), v))
        })
        .collect::<Result<_, beacon_kb::error::KbError>>()?;
    let fusion = FusionConfig::default();
    let time = |targets: &[&GuildIndex]| -> Result<(f64, f64), beacon_kb::error::KbError> {
        let mut ms = Vec::new();
        for round in 0..3 {
            for (i, (text, v)) in queries.iter().enumerate() {
                let t = Instant::now();
                let hits = targets[i % targets.len()].search(&fusion, text, Some(v), 5)?;
                let e = t.elapsed().as_secs_f64() * 1e3;
                if round > 0 {
                    ms.push(e);
                }
                std::hint::black_box(hits);
            }
        }
        Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
    };
    let (u50, u99) = time(&[&unfiltered])?;
    let refs: Vec<&GuildIndex> = indexes.iter().collect();
    let (f50, f99) = time(&refs)?;
    let out = serde_json::json!({
        "chunks": total,
        "guilds": guilds,
        "real_vectors": base_vectors.is_some(),
        "build_chunks_per_s": total as f64 / build_s,
        "build_per_guild_chunks_per_s": total as f64 / build_guilds_s,
        "unfiltered_p50_ms": u50, "unfiltered_p99_ms": u99,
        "filtered_p50_ms": f50, "filtered_p99_ms": f99,
        "query_embed_p50_ms": percentile(&embed_ms, 0.5),
        "query_embed_p99_ms": percentile(&embed_ms, 0.99),
        "rss_mb_before_index": rss_before,
        "rss_mb_after_index": rss_after,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    println!("{out}");
    Ok(())
}
