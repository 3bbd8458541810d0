//! Chooses the fusion method and weights on a tuning split of a BEIR folder and reports them on the
//! held-out split, next to dense alone, BM25 alone and equal-weight RRF.
//!
//! `cargo run --release -p beacon-kb --example tune_fusion -- DIR [HELD_OUT_SHARE]`
//! (set `BEACON_EMBED_MODEL_DIR`; `ENCODER_PRECISION` picks f32, bf16 or int8). The last line is a JSON object.

use std::sync::Arc;

use beacon_kb::embed::{BertEmbedder, Embedder, Precision, ProfileOverrides};
use beacon_kb::eval::{BeirSet, EvalOptions, EvalReport, PreparedEval, split_queries};
use beacon_kb::fusion::{FusionConfig, FusionMethod};

fn objective(r: &EvalReport) -> f64 {
    // nDCG@10 first; hit@5 and MRR@10 break ties between close settings.
    r.ndcg_at_10 + 0.5 * r.hit_at_5 + 0.5 * r.mrr_at_10
}

/// `ENCODER_PRECISION` (f32, bf16 or int8); unset or empty means the default.
fn precision_from_env() -> Result<Option<Precision>, Box<dyn std::error::Error>> {
    match std::env::var("ENCODER_PRECISION") {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.parse()?)),
        _ => Ok(None),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: tune_fusion DIR [HELD_OUT_SHARE]")?;
    let share: f64 = args.next().map_or(Ok(0.5), |s| s.parse())?;
    let embedder: Arc<dyn Embedder> = Arc::new(BertEmbedder::load_with(
        std::env::var("BEACON_EMBED_MODEL_DIR").map_err(|_| "set BEACON_EMBED_MODEL_DIR")?,
        &ProfileOverrides { precision: precision_from_env()?, ..ProfileOverrides::default() },
    )?);
    let set = BeirSet::load(&dir)?;
    let ids: Vec<String> = set.judged_queries().iter().map(|q| q.id.clone()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (tune, held) = split_queries(&refs, share);
    let options = EvalOptions { embedder: Some(embedder), ..EvalOptions::default() };
    let t = std::time::Instant::now();
    let prepared = PreparedEval::new(set, &options)?;
    eprintln!("prepared in {:.1}s; tune {} / held-out {} queries", t.elapsed().as_secs_f64(), tune.len(), held.len());

    let mut grid = Vec::new();
    for candidates in [20, 50, 100] {
        for w in 0..=20 {
            let dense_weight = w as f32 / 20.0;
            for method in [
                FusionMethod::MinMax,
                FusionMethod::ZScore,
                FusionMethod::Rrf { k: 10.0 },
                FusionMethod::Rrf { k: 30.0 },
                FusionMethod::Rrf { k: 60.0 },
            ] {
                grid.push(FusionConfig { method, dense_weight, candidates });
            }
        }
    }
    let mut best: Option<(f64, FusionConfig, EvalReport)> = None;
    for cfg in &grid {
        let r = prepared.evaluate(cfg, Some(&tune))?;
        let o = objective(&r);
        if best.as_ref().is_none_or(|b| o > b.0 + 1e-9) {
            best = Some((o, *cfg, r));
        }
    }
    let (_, best_cfg, best_tune) = best.ok_or("empty grid")?;
    let named = [
        ("dense", FusionConfig { method: FusionMethod::MinMax, dense_weight: 1.0, candidates: 50 }),
        ("bm25", FusionConfig { method: FusionMethod::MinMax, dense_weight: 0.0, candidates: 50 }),
        ("rrf_equal", FusionConfig { method: FusionMethod::Rrf { k: 60.0 }, dense_weight: 0.5, candidates: 50 }),
        ("default", FusionConfig::default()),
        ("tuned", best_cfg),
    ];
    let mut rows = serde_json::Map::new();
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | all p50/p99 ms",
        "config", "hit@5", "R@5", "MRR@10", "nDCG@10", "hit@5", "R@5", "MRR@10", "nDCG@10"
    );
    for (name, cfg) in named {
        let t = prepared.evaluate(&cfg, Some(&tune))?;
        let h = prepared.evaluate(&cfg, Some(&held))?;
        let a = prepared.evaluate(&cfg, None)?;
        println!(
            "{name:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} | {:>8.3} {:>8.3} {:>8.3} {:>8.3} | all {:.3} {:.3} {:.3} {:.3} {:.3}/{:.3}",
            t.hit_at_5,
            t.recall_at_5,
            t.mrr_at_10,
            t.ndcg_at_10,
            h.hit_at_5,
            h.recall_at_5,
            h.mrr_at_10,
            h.ndcg_at_10,
            a.hit_at_5,
            a.recall_at_5,
            a.mrr_at_10,
            a.ndcg_at_10,
            a.query_p50_ms,
            a.query_p99_ms
        );
        rows.insert(name.to_string(), serde_json::json!({"config": cfg, "tune": t, "held_out": h, "all": a}));
    }
    eprintln!("tuned on tuning split: {best_cfg:?} -> {best_tune:?}");
    println!("{}", serde_json::Value::Object(rows));
    Ok(())
}
