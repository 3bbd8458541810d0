//! The cross-encoder's loading and scoring code, on the smallest BERT cross-encoder there is: one
//! written here (one layer, 8 hidden units, a 14-word vocabulary), in the layout Hugging Face
//! exports (`bert.`-prefixed encoder and pooler, a one-label `classifier`). No registry package
//! ships a real cross-encoder's weights (see BENCHMARKS.md), so this checks the plumbing —
//! tensor names, the pair template, segment ids, padding — not relevance.

use std::collections::HashMap;
use std::path::Path;

use beacon_kb::rerank::{CrossEncoder, Rerank, rerank_hits};
use beacon_kb::{Hit, KbError};
use candle_core::{Device, Tensor};

const HIDDEN: usize = 8;
const WORDS: [&str; 14] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "how", "long", "do", "refunds", "take", "are", "issued", "within", "days",
    "office",
];

fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> =
        WORDS.iter().enumerate().map(|(i, w)| ((*w).to_owned(), i.into())).collect();
    let special = |id: usize, w: &str| serde_json::json!({"id": id, "content": w, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
    let tok = |id: &str, t: u32| serde_json::json!({"SpecialToken": {"id": id, "type_id": t}});
    let seq = |id: &str, t: u32| serde_json::json!({"Sequence": {"id": id, "type_id": t}});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
            "pair": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// Writes a tiny random cross-encoder into `dir`; `with_head: false` leaves out the classifier.
fn write_model(dir: &Path, with_head: bool) {
    let config = serde_json::json!({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_act": "gelu",
        "vocab_size": WORDS.len(), "hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.f32() - 0.5).collect();
        tensors.insert(name.to_owned(), Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
    };
    let (h, i) = (HIDDEN, 16);
    put("bert.embeddings.word_embeddings.weight", &[WORDS.len(), h]);
    put("bert.embeddings.position_embeddings.weight", &[64, h]);
    put("bert.embeddings.token_type_embeddings.weight", &[2, h]);
    for n in [
        "bert.embeddings.LayerNorm",
        "bert.encoder.layer.0.attention.output.LayerNorm",
        "bert.encoder.layer.0.output.LayerNorm",
    ] {
        put(&format!("{n}.weight"), &[h]);
        put(&format!("{n}.bias"), &[h]);
    }
    for (n, out, inp) in [
        ("bert.encoder.layer.0.attention.self.query", h, h),
        ("bert.encoder.layer.0.attention.self.key", h, h),
        ("bert.encoder.layer.0.attention.self.value", h, h),
        ("bert.encoder.layer.0.attention.output.dense", h, h),
        ("bert.encoder.layer.0.intermediate.dense", i, h),
        ("bert.encoder.layer.0.output.dense", h, i),
        ("bert.pooler.dense", h, h),
    ] {
        put(&format!("{n}.weight"), &[out, inp]);
        put(&format!("{n}.bias"), &[out]);
    }
    if with_head {
        put("classifier.weight", &[1, h]);
        put("classifier.bias", &[1]);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

fn hit(id: i64, text: &str) -> Hit {
    Hit {
        chunk_id: id,
        document_id: id,
        document_key: format!("doc-{id}"),
        title: String::new(),
        heading_path: Vec::new(),
        text: text.to_owned(),
        score: 1.0 / (id as f32 + 1.0),
        bm25_score: None,
        dense_score: None,
        rerank_score: None,
    }
}

#[test]
fn a_cross_encoder_folder_loads_and_scores_pairs() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), true);
    let model = CrossEncoder::load(dir.path()).unwrap();
    let passages = ["refunds are issued within days", "office", "how long do refunds take refunds take"];
    let scores = model.score("how long do refunds take", &passages).unwrap();
    assert_eq!(scores.len(), 3);
    assert!(scores.iter().all(|s| s.is_finite()));
    // Each pair is scored on its own: padding to the batch's longest changes nothing.
    for (p, want) in passages.iter().zip(&scores) {
        let alone = model.score("how long do refunds take", &[*p]).unwrap()[0];
        assert!((alone - want).abs() < 1e-4, "{p}: {alone} alone, {want} in the batch");
    }
    // The passage is the second segment: swapping the two texts is a different input.
    let swapped = model.score("refunds are issued within days", &["how long do refunds take"]).unwrap()[0];
    assert!((swapped - scores[0]).abs() > 1e-6);
    assert!(model.score("anything", &[]).unwrap().is_empty());

    // Reranking reorders the top of the list by the model's scores and leaves the rest.
    let mut hits: Vec<Hit> = passages.iter().enumerate().map(|(i, p)| hit(i as i64, p)).collect();
    hits.push(hit(9, "office"));
    rerank_hits(&model, "how long do refunds take", &mut hits, 3).unwrap();
    let reranked: Vec<f32> = hits[..3].iter().map(|h| h.rerank_score.unwrap()).collect();
    assert!(reranked.windows(2).all(|w| w[0] >= w[1]), "{reranked:?}");
    assert_eq!((hits[3].chunk_id, hits[3].rerank_score), (9, None));
}

#[test]
fn a_folder_without_a_classification_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), false);
    let err = CrossEncoder::load(dir.path()).err().unwrap();
    assert!(matches!(err, KbError::Model(_)) && err.to_string().contains("classifier"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    assert!(CrossEncoder::load(empty.path()).is_err());
}
