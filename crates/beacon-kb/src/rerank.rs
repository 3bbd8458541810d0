//! A second stage that puts the right passage first: a cross-encoder (a BERT model with a
//! sequence-classification head, such as ms-marco-MiniLM-L-6-v2) reads the question and each
//! candidate passage together and scores their relevance; the retriever's top candidates are
//! reordered by that score.
//!
//! Optional: it costs one forward pass per candidate (see BENCHMARKS.md for what it buys), and
//! it is loaded like the embedding model, from a local folder holding `config.json`,
//! `tokenizer.json` and `model.safetensors`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use tokenizers::{EncodeInput, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::embed::{Architecture, BertConfig, Encoder};
use crate::error::{KbError, Result};
use crate::retriever::{Hit, search_text};

/// Scores (question, passage) pairs; higher is more relevant. Logits, not probabilities.
pub trait Rerank: Send + Sync {
    /// One score per passage, in the order given.
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>>;
}

/// A BERT cross-encoder run with candle on the CPU.
pub struct CrossEncoder {
    encoder: Encoder,
    pooler: Linear,
    classifier: Linear,
    tokenizer: Tokenizer,
}

impl CrossEncoder {
    /// Longest (question, passage) input in tokens; the ms-marco cross-encoders were trained
    /// with 512, and a support passage is far shorter.
    pub const MAX_TOKENS: usize = 512;

    /// Loads a cross-encoder folder: `config.json` (a BERT model), `tokenizer.json` (with the
    /// `[CLS] A [SEP] B [SEP]` pair template) and `model.safetensors` holding the encoder
    /// (`bert.`-prefixed or not), `bert.pooler.dense` and a one-label `classifier`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| KbError::io(dir.join(name), e));
        let cfg: BertConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|source| KbError::Json { what: "config.json".into(), source })?;
        if !matches!(cfg.model_type.as_deref(), None | Some("bert")) {
            return Err(KbError::Model("a cross-encoder must be a BERT model".into()));
        }
        if let Some(act) = cfg.hidden_act.as_deref()
            && act != "gelu"
        {
            return Err(KbError::Model(format!("unsupported activation {act}")));
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|source| KbError::Tokenizer { what: "tokenizer.json", source })?;
        let mut padding = tokenizer.get_padding().cloned().unwrap_or(PaddingParams::default());
        padding.strategy = PaddingStrategy::BatchLongest;
        tokenizer.with_padding(Some(padding));
        let max_length = Self::MAX_TOKENS.min(cfg.max_position_embeddings).max(4);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..TruncationParams::default() }))
            .map_err(|source| KbError::Tokenizer { what: "truncation", source })?;
        let device = Device::Cpu;
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(dir.join("model.safetensors"), &device)?;
        let tensors = tensors.into_iter().map(|(k, v)| (k.strip_prefix("bert.").unwrap_or(&k).to_owned(), v)).collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let h = cfg.hidden_size;
        let missing = |what: &str, e: candle_core::Error| KbError::Model(format!("not a cross-encoder: {what}: {e}"));
        let classifier = candle_nn::linear(h, 1, vb.pp("classifier")).map_err(|e| missing("classifier", e))?;
        let pooler = candle_nn::linear(h, h, vb.pp("pooler.dense")).map_err(|e| missing("pooler", e))?;
        let encoder = Encoder::load(&cfg, Architecture::Bert, vb)?;
        Ok(CrossEncoder { encoder, pooler, classifier, tokenizer })
    }
}

impl Rerank for CrossEncoder {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<EncodeInput> = passages.iter().map(|p| (query, *p).into()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|source| KbError::Tokenizer { what: "tokenize", source })?;
        let t = encodings.first().map_or(0, |e| e.len());
        let b = encodings.len();
        let mut ids = Vec::with_capacity(b * t);
        let mut types = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend(e.get_attention_mask().iter().map(|m| *m as f32));
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (b, t), &device)?;
        let types = Tensor::from_vec(types, (b, t), &device)?;
        let mask = Tensor::from_vec(mask, (b, t), &device)?;
        let hidden = self.encoder.forward(&ids, &mask, Some(&types))?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        Ok(self.classifier.forward(&pooled)?.squeeze(1)?.to_vec1::<f32>()?)
    }
}

/// Reorders `hits` (best first) by the cross-encoder's score of each against `query`, setting
/// [`Hit::rerank_score`]; only the first `depth` hits are scored and reordered, the rest keep
/// their place after them.
pub fn rerank_hits(reranker: &dyn Rerank, query: &str, hits: &mut [Hit], depth: usize) -> Result<()> {
    let n = depth.min(hits.len());
    let texts: Vec<String> = hits[..n].iter().map(|h| search_text(&h.title, &h.heading_path, &h.text)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let scores = reranker.score(query, &refs)?;
    for (hit, s) in hits.iter_mut().zip(scores) {
        hit.rerank_score = Some(s);
    }
    hits[..n].sort_by(|a, b| b.rerank_score.unwrap_or(f32::MIN).total_cmp(&a.rerank_score.unwrap_or(f32::MIN)));
    Ok(())
}
