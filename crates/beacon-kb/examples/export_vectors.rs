//! Writes the chunks of a BEIR corpus and the embeddings of its chunks and queries, exactly as
//! beacon-kb makes them, so a peer (ChromaDB) can be benchmarked on the same chunks and vectors.
//!
//! `cargo run --release -p beacon-kb --example export_vectors -- BEIR_DIR OUT_DIR`
//! (needs `BEACON_EMBED_MODEL_DIR`; `ENCODER_PRECISION` picks f32, bf16 or int8). Writes `chunks.jsonl` (`doc`, `text`), `chunk_vectors.f32`,
//! `queries.jsonl` (`_id`, `text`) and `query_vectors.f32` (little-endian f32 rows), and prints
//! one JSON object with the embedding rates and the CPU time per chunk and per query (every
//! thread, so it is the work done whatever else runs on the machine).

use std::io::Write;
use std::time::Instant;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::{BertEmbedder, Embedder, Precision, ProfileOverrides};
use beacon_kb::eval::{BeirSet, chunk_corpus, percentile};
use beacon_kb::retriever::search_text;

fn write_f32(path: &std::path::Path, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rows {
        for x in r {
            f.write_all(&x.to_le_bytes())?;
        }
    }
    f.flush()
}

/// CPU seconds this process has used (user + system, every thread), from `/proc/self/stat`:
/// wall time on a shared machine counts other processes' work too, CPU time does not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (which may hold spaces) start at ") ".
    let Some((_, rest)) = stat.rsplit_once(") ") else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in ticks of 1/100 s.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// `ENCODER_PRECISION` (f32, bf16 or int8); unset or empty means the default.
fn precision_from_env() -> Result<Option<Precision>, Box<dyn std::error::Error>> {
    match std::env::var("ENCODER_PRECISION") {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.parse()?)),
        _ => Ok(None),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        return Err("usage: export_vectors BEIR_DIR OUT_DIR".into());
    };
    let out = std::path::Path::new(out);
    std::fs::create_dir_all(out)?;
    let t = Instant::now();
    let model = BertEmbedder::load_with(
        std::env::var("BEACON_EMBED_MODEL_DIR").map_err(|_| "set BEACON_EMBED_MODEL_DIR")?,
        &ProfileOverrides { precision: precision_from_env()?, ..ProfileOverrides::default() },
    )?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let set = BeirSet::load(dir)?;
    let chunks = chunk_corpus(&set.corpus, &ChunkerConfig::default());
    let texts: Vec<String> = chunks.iter().map(|c| search_text(&c.title, &c.heading_path, &c.text)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    let cpu = cpu_seconds();
    let vectors = model.embed_documents(&refs)?;
    let embed_s = t.elapsed().as_secs_f64();
    let chunk_cpu_s = cpu_seconds() - cpu;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("chunks.jsonl"))?);
    for (c, text) in chunks.iter().zip(&texts) {
        writeln!(f, "{}", serde_json::json!({"doc": c.document_key, "text": text}))?;
    }
    f.flush()?;
    write_f32(&out.join("chunk_vectors.f32"), &vectors)?;
    let queries = set.judged_queries();
    let mut qv = Vec::with_capacity(queries.len());
    let mut ms = Vec::with_capacity(queries.len());
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("queries.jsonl"))?);
    let cpu = cpu_seconds();
    for q in &queries {
        let t = Instant::now();
        qv.push(model.embed_query(&q.text)?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        writeln!(f, "{}", serde_json::json!({"_id": q.id, "text": q.text}))?;
    }
    let query_cpu_s = cpu_seconds() - cpu;
    f.flush()?;
    write_f32(&out.join("query_vectors.f32"), &qv)?;
    println!(
        "{}",
        serde_json::json!({
            "precision": model.precision().to_string(),
            "model_load_ms": load_ms,
            "chunks": chunks.len(),
            "chunk_embed_per_s": chunks.len() as f64 / embed_s,
            "chunk_embed_cpu_ms": chunk_cpu_s * 1e3 / chunks.len().max(1) as f64,
            "query_embed_p50_ms": percentile(&ms, 0.5),
            "query_embed_p99_ms": percentile(&ms, 0.99),
            "query_embed_cpu_ms": query_cpu_s * 1e3 / queries.len().max(1) as f64,
        })
    );
    Ok(())
}
