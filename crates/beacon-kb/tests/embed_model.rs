//! The candle BERT embedder reproduces sentence-transformers' all-MiniLM-L6-v2 vectors.

mod common;

use beacon_kb::embed::{BertEmbedder, Embedder, Precision, ProfileOverrides};

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
    let f32_only = ProfileOverrides { precision: Some(Precision::F32), ..ProfileOverrides::default() };
    let model = BertEmbedder::load_with(&dir, &f32_only).unwrap();
    assert_eq!((model.dim(), model.precision()), (384, Precision::F32));
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

/// The quantised precisions against the f32 model on the same sentences: the quality gate's cosine
/// (≥ 0.99 for every query; BENCHMARKS.md measures it on all zaragoza questions), and the default
/// precision is one of them or f32.
#[test]
fn quantised_precisions_track_the_f32_model() {
    let Some(dir) = common::model_dir("quantised_precisions_track_the_f32_model") else {
        return;
    };
    let reference: Reference = serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let load = |p: Precision| {
        BertEmbedder::load_with(&dir, &ProfileOverrides { precision: Some(p), ..ProfileOverrides::default() })
    };
    let f32_model = load(Precision::F32).unwrap();
    let mut texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    texts.extend(["How long do refunds take?", "can i bring my dog to the office", "Wi-Fi password?"]);
    let want: Vec<Vec<f32>> = texts.iter().map(|t| f32_model.embed_query(t).unwrap()).collect();
    for precision in [Precision::Bf16, Precision::Int8] {
        let Ok(model) = load(precision) else {
            assert!(!precision.supported(), "{precision} is supported but did not load");
            eprintln!("note: {precision} not tested: this CPU lacks its instructions");
            continue;
        };
        assert_eq!(model.precision(), precision);
        assert_eq!(model.model_id(), f32_model.model_id(), "precision does not change the stored vectors' model");
        for (text, w) in texts.iter().zip(&want) {
            let got = model.embed_query(text).unwrap();
            let cos = dot(&got, w);
            assert!(cos >= 0.99, "{precision} {text:?}: cosine to f32 {cos}");
        }
        let docs = model.embed_documents(&texts).unwrap();
        for ((text, got), w) in texts.iter().zip(&docs).zip(&want) {
            assert!(dot(got, w) >= 0.99, "{precision} document {text:?}");
        }
    }
    assert!(BertEmbedder::default_precision().supported());
    assert_eq!(BertEmbedder::load(&dir).unwrap().precision(), BertEmbedder::default_precision());
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
