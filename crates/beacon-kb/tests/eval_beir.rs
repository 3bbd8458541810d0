//! `eval_beir` on a small BEIR folder.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use beacon_kb::embed::{BertEmbedder, Embedder};
use beacon_kb::eval::{EvalOptions, eval_beir};

fn mini() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini_beir")
}

#[test]
fn bm25_only_scores_by_hand() {
    let report = eval_beir(mini(), &EvalOptions::default()).unwrap();
    // q5 has no judgement and is not scored; q4 shares no term with any document.
    assert_eq!(report.queries, 4);
    assert_eq!(report.chunks, 6);
    assert!((report.hit_at_5 - 0.75).abs() < 1e-12, "{report:?}");
    assert!((report.recall_at_5 - 0.75).abs() < 1e-12);
    // q1–q3 find their document first.
    assert!((report.mrr_at_10 - 0.75).abs() < 1e-12);
    assert!((report.ndcg_at_10 - 0.75).abs() < 1e-12);
    assert!(report.query_p99_ms >= report.query_p50_ms);
}

#[test]
fn restricting_to_a_split_scores_only_it() {
    let options = EvalOptions { query_ids: Some(["q4".to_string()].into_iter().collect()), ..EvalOptions::default() };
    let report = eval_beir(mini(), &options).unwrap();
    assert_eq!(report.queries, 1);
    assert_eq!(report.hit_at_5, 0.0);
}

#[test]
fn missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(eval_beir(dir.path(), &EvalOptions::default()).is_err());
}

#[test]
fn with_the_model_the_paraphrase_is_found() {
    let Some(dir) = common::model_dir("with_the_model_the_paraphrase_is_found") else {
        return;
    };
    let embedder: Arc<dyn Embedder> = Arc::new(BertEmbedder::load(dir).unwrap());
    let options = EvalOptions { embedder: Some(embedder), ..EvalOptions::default() };
    let report = eval_beir(mini(), &options).unwrap();
    assert_eq!(report.queries, 4);
    // Dense retrieval always returns something, so q4 is ranked somewhere in 5 documents.
    assert_eq!(report.hit_at_5, 1.0);
    assert!(report.mrr_at_10 > 0.75);
    assert!(report.embed_p50_ms > 0.0);
}
