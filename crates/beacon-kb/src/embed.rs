//! Sentence embeddings: the [`Embedder`] trait and a local BERT (all-MiniLM-L6-v2) run with candle.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{KbError, Result};

/// Environment variable naming the local model directory.
pub const MODEL_DIR_ENV: &str = "BEACON_EMBED_MODEL_DIR";

/// Turns texts into L2-normalised vectors; one per text, all of [`Embedder::dim`] floats.
pub trait Embedder: Send + Sync {
    /// A stable name of the model, stored beside embeddings so a model change re-embeds.
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Embeds documents (chunks).
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Embeds a search query.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.embed_documents(&[text])?.pop().ok_or_else(|| KbError::Model("no embedding returned".into()))
    }
}

/// BERT hyper-parameters read from `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    let weight = vb.get(size, "weight")?;
    let bias = vb.get(size, "bias")?;
    Ok(LayerNorm::new(weight, bias, eps))
}

impl Bert {
    fn load(cfg: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let emb = vb.pp("embeddings");
        let word = candle_nn::embedding(cfg.vocab_size, h, emb.pp("word_embeddings"))?;
        let position = candle_nn::embedding(cfg.max_position_embeddings, h, emb.pp("position_embeddings"))?;
        let token_type = candle_nn::embedding(cfg.type_vocab_size, h, emb.pp("token_type_embeddings"))?;
        let norm = layer_norm(h, cfg.layer_norm_eps, emb.pp("LayerNorm"))?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            layers.push(Layer {
                query: candle_nn::linear(h, h, att.pp("self.query"))?,
                key: candle_nn::linear(h, h, att.pp("self.key"))?,
                value: candle_nn::linear(h, h, att.pp("self.value"))?,
                attn_out: candle_nn::linear(h, h, att.pp("output.dense"))?,
                attn_norm: layer_norm(h, cfg.layer_norm_eps, att.pp("output.LayerNorm"))?,
                intermediate: candle_nn::linear(h, cfg.intermediate_size, l.pp("intermediate.dense"))?,
                output: candle_nn::linear(cfg.intermediate_size, h, l.pp("output.dense"))?,
                out_norm: layer_norm(h, cfg.layer_norm_eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type,
            norm,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    /// Returns the last hidden states, `[batch, seq, hidden]`.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?;
        let types = ids.zeros_like()?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&self.token_type.forward(&types)?)?;
        let mut x = self.norm.forward(&x)?;
        // Padding positions get a large negative score so attention ignores them.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let split = |y: Tensor| -> candle_core::Result<Tensor> {
                y.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
            };
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, self.heads * self.head_dim))?;
            x = layer.attn_norm.forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let inter = layer.intermediate.forward(&x)?.gelu_erf()?;
            x = layer.out_norm.forward(&(layer.output.forward(&inter)? + &x)?)?;
        }
        Ok(x)
    }
}

/// A BERT sentence-embedding model (all-MiniLM-L6-v2 by default) with mean pooling, run on the CPU.
pub struct BertEmbedder {
    model: Bert,
    tokenizer: Tokenizer,
    dim: usize,
    model_id: String,
    batch_size: usize,
}

/// Files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

impl BertEmbedder {
    /// Longest input in tokens; sentence-transformers uses 256 for all-MiniLM-L6-v2.
    pub const MAX_TOKENS: usize = 256;

    /// Loads a model directory holding `config.json`, `tokenizer.json` and `model.safetensors`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| KbError::io(dir.join(name), e));
        let cfg: BertConfig =
            serde_json::from_slice(&read("config.json")?).map_err(|e| KbError::Model(format!("config.json: {e}")))?;
        if let Some(act) = cfg.hidden_act.as_deref()
            && act != "gelu"
        {
            return Err(KbError::Model(format!("unsupported activation {act}")));
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| KbError::Model(format!("tokenizer.json: {e}")))?;
        // The packaged tokenizer pads every input to 128 tokens; pad to the batch's longest instead
        // (padding is masked out anyway) and truncate where sentence-transformers does.
        let mut padding = tokenizer.get_padding().cloned().unwrap_or(PaddingParams::default());
        padding.strategy = PaddingStrategy::BatchLongest;
        tokenizer.with_padding(Some(padding));
        let max_tokens = Self::MAX_TOKENS.min(cfg.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|e| KbError::Model(format!("truncation: {e}")))?;
        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(&weights_path, &device)?;
        // Some exports prefix every name with "bert.".
        if tensors.keys().all(|k| k.starts_with("bert.")) {
            tensors = tensors.into_iter().map(|(k, v)| (k["bert.".len()..].to_string(), v)).collect();
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = Bert::load(&cfg, vb)?;
        // Identify the model by its files, not its folder name, so swapping models re-embeds.
        let weights_len = std::fs::metadata(&weights_path).map_err(|e| KbError::io(&weights_path, e))?.len();
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(read("config.json")?);
            h.update(read("tokenizer.json")?);
            h.update(weights_len.to_le_bytes());
            hex::encode(&h.finalize()[..6])
        };
        Ok(BertEmbedder {
            model,
            tokenizer,
            dim: cfg.hidden_size,
            model_id: format!("bert-mean-{}:{fingerprint}", cfg.hidden_size),
            batch_size: 32,
        })
    }

    /// Loads the model named by `BEACON_EMBED_MODEL_DIR`, if set and complete.
    pub fn from_env() -> Option<Result<Self>> {
        let dir = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from)?;
        Some(Self::load(dir))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| KbError::Model(format!("tokenize: {e}")))?;
        let t = encodings.first().map_or(0, |e| e.len());
        let b = encodings.len();
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend(e.get_attention_mask().iter().map(|m| *m as f32));
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (b, t), &device)?;
        let mask = Tensor::from_vec(mask, (b, t), &device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        // Mean over real tokens only: padding must not dilute the average.
        let m = mask.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        // Batch texts of similar length together so little time goes into padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for group in order.chunks(self.batch_size.max(1)) {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            for (&i, v) in group.iter().zip(self.embed_batch(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// Loads the default local embedder, or logs one line and returns `None` (BM25-only retrieval).
pub fn default_embedder() -> Option<Arc<dyn Embedder>> {
    match BertEmbedder::from_env() {
        Some(Ok(m)) => Some(Arc::new(m)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "embedding model failed to load; retrieval uses BM25 only");
            None
        }
        None => {
            tracing::warn!("no embedding model ({MODEL_DIR_ENV} unset); retrieval uses BM25 only");
            None
        }
    }
}
