//! The candle BERT embedder reproduces sentence-transformers' all-MiniLM-L6-v2 vectors.

mod common;

use beacon_kb::embed::{BertEmbedder, Embedder};

#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn matches_sentence_transformers_reference() {
    let Some(dir) = common::model_dir("matches_sentence_transformers_reference") else {
        return;
    };
    let reference: Reference = serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let model = BertEmbedder::load(&dir).unwrap();
    assert_eq!(model.dim(), 384);
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    // Embedded together (padded batch) and one by one: both must match the reference.
    let batch = model.embed_documents(&texts).unwrap();
    for (i, (got, want)) in batch.iter().zip(&reference.embeddings).enumerate() {
        let norm = dot(got, got).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "vector {i} not normalised: {norm}");
        let cos = dot(got, want);
        assert!(cos > 0.9999, "sentence {i}: cosine to reference {cos}");
        let single = model.embed_query(texts[i]).unwrap();
        let cos = dot(&single, want);
        assert!(cos > 0.9999, "sentence {i} alone: cosine to reference {cos}");
    }
}

#[test]
fn related_texts_are_closer_than_unrelated() {
    let Some(dir) = common::model_dir("related_texts_are_closer_than_unrelated") else {
        return;
    };
    let model = BertEmbedder::load(&dir).unwrap();
    let v = model
        .embed_documents(&[
            "How do I reset my password?",
            "To reset your password, open Settings and choose Reset password.",
            "Our office is closed on public holidays.",
        ])
        .unwrap();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2);
}
