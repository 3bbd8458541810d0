//! Sentence embeddings: the [`Embedder`] trait and local BERT-family encoders run with candle.
//!
//! [`BertEmbedder`] runs BERT models (all-MiniLM-L6-v2, the default; bge-small-en-v1.5 and other
//! BERT exports) and MPNet models (all-mpnet-base-v2) from a folder holding `config.json`,
//! `tokenizer.json` and `model.safetensors`. How a model pools its tokens and which instruction it
//! expects before a query form its [`ModelProfile`], read from the sentence-transformers files
//! beside the weights (`1_Pooling/config.json`, `config_sentence_transformers.json`,
//! `sentence_bert_config.json`) or recognised from the model's name, and overridable.
//!
//! ```no_run
//! use beacon_kb::embed::{BertEmbedder, Embedder, ProfileOverrides};
//!
//! # fn demo() -> Result<(), beacon_kb::KbError> {
//! let model = BertEmbedder::load_with("models/bge-small-en-v1.5", &ProfileOverrides::default())?;
//! let query = model.embed_query("How do I get a refund?")?; // with bge's query instruction
//! let docs = model.embed_documents(&["Refunds are issued within 14 days."])?;
//! let score: f32 = query.iter().zip(&docs[0]).map(|(a, b)| a * b).sum();
//! # let _ = score;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use beacon_encoder::Precision;
use beacon_encoder::relative_bucket;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{KbError, Result};

/// The query instruction of the English bge v1/v1.5 models.
pub const BGE_QUERY_PREFIX: &str = "Represent this sentence for searching relevant passages: ";

/// Turns texts into L2-normalised vectors; one per text, all of [`Embedder::dim`] floats.
///
/// The methods are synchronous and may take a while (a forward pass, a network call): async code
/// calls them through `tokio::task::spawn_blocking`.
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

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the real (unpadded) tokens: sentence-transformers' MiniLM and MPNet models.
    Mean,
    /// The first (`[CLS]`) token's vector: the bge models.
    Cls,
}

impl Pooling {
    /// The name used in configuration and model ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pooling {
    type Err = KbError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(KbError::Model(format!("unknown pooling {other:?} (expected mean or cls)"))),
        }
    }
}

/// How a model is used: pooling, instructions before queries and documents, input length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProfile {
    /// Pooling of token vectors.
    pub pooling: Pooling,
    /// Text put before every query (bge: [`BGE_QUERY_PREFIX`]; e5: `query: `).
    pub query_prefix: String,
    /// Text put before every document (e5: `passage: `).
    pub document_prefix: String,
    /// Longest input in tokens.
    pub max_tokens: usize,
}

/// Explicit choices that replace what [`ModelProfile::detect`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileOverrides {
    /// Pooling to use instead of the model's.
    pub pooling: Option<Pooling>,
    /// Query instruction to use instead of the model's (an empty string means none).
    pub query_prefix: Option<String>,
    /// Precision of the dense layers instead of [`BertEmbedder::default_precision`].
    pub precision: Option<Precision>,
}

/// The parts of `1_Pooling/config.json` that matter here.
#[derive(Debug, serde::Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// The parts of `config_sentence_transformers.json` that matter here.
#[derive(Debug, Default, serde::Deserialize)]
struct SentenceTransformersFile {
    #[serde(default)]
    prompts: HashMap<String, String>,
}

/// The parts of `sentence_bert_config.json` that matter here.
#[derive(Debug, serde::Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

fn read_optional_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| KbError::Json { what: path.display().to_string(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KbError::io(path, e)),
    }
}

impl ModelProfile {
    /// Longest input when the model's files do not say; sentence-transformers uses 256 for
    /// all-MiniLM-L6-v2.
    pub const DEFAULT_MAX_TOKENS: usize = 256;

    /// Reads the profile of the model in `dir`: pooling from `1_Pooling/config.json`, prompts from
    /// `config_sentence_transformers.json`, length from `sentence_bert_config.json`; what those do
    /// not say comes from the model's name (`_name_or_path` in `config.json`, or the folder name):
    /// bge models pool `[CLS]` and take [`BGE_QUERY_PREFIX`], e5 models take `query: `/`passage: `.
    pub fn detect(dir: &Path) -> Result<Self> {
        let name = model_name(dir)?;
        let family = Family::of(&name);
        let pooling = match read_optional_json::<PoolingFile>(&dir.join("1_Pooling").join("config.json"))? {
            Some(p) if p.pooling_mode_cls_token && !p.pooling_mode_mean_tokens => Pooling::Cls,
            Some(p) if p.pooling_mode_mean_tokens => Pooling::Mean,
            _ => family.pooling(),
        };
        let st = read_optional_json::<SentenceTransformersFile>(&dir.join("config_sentence_transformers.json"))?
            .unwrap_or_default();
        let query_prefix = st.prompts.get("query").cloned().unwrap_or_else(|| family.query_prefix().to_owned());
        let document_prefix = ["document", "passage", "corpus"]
            .iter()
            .find_map(|k| st.prompts.get(*k).cloned())
            .unwrap_or_else(|| family.document_prefix().to_owned());
        let max_tokens = read_optional_json::<SentenceBertFile>(&dir.join("sentence_bert_config.json"))?
            .and_then(|s| s.max_seq_length)
            .unwrap_or(Self::DEFAULT_MAX_TOKENS);
        Ok(ModelProfile { pooling, query_prefix, document_prefix, max_tokens })
    }

    /// This profile with `overrides` applied.
    pub fn with(mut self, overrides: &ProfileOverrides) -> Self {
        if let Some(p) = overrides.pooling {
            self.pooling = p;
        }
        if let Some(q) = &overrides.query_prefix {
            // Configuration values lose trailing spaces; the instruction still needs its separator.
            self.query_prefix =
                if q.is_empty() || q.ends_with(char::is_whitespace) { q.clone() } else { format!("{q} ") };
        }
        self
    }
}

/// Model families recognised by name, for exports without sentence-transformers files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    BgeEnglish,
    E5,
    Other,
}

impl Family {
    fn of(name: &str) -> Family {
        let n = name.to_ascii_lowercase();
        if n.contains("bge-") && n.contains("-en") {
            Family::BgeEnglish
        } else if n.contains("e5-") && !n.contains("instruct") {
            Family::E5
        } else {
            Family::Other
        }
    }

    fn pooling(self) -> Pooling {
        match self {
            Family::BgeEnglish => Pooling::Cls,
            Family::E5 | Family::Other => Pooling::Mean,
        }
    }

    fn query_prefix(self) -> &'static str {
        match self {
            Family::BgeEnglish => BGE_QUERY_PREFIX,
            Family::E5 => "query: ",
            Family::Other => "",
        }
    }

    fn document_prefix(self) -> &'static str {
        match self {
            Family::E5 => "passage: ",
            Family::BgeEnglish | Family::Other => "",
        }
    }
}

/// The model's name: `_name_or_path` from `config.json` and the folder's name, joined.
fn model_name(dir: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default, rename = "_name_or_path")]
        name_or_path: String,
    }
    let named = read_optional_json::<Named>(&dir.join("config.json"))?;
    let folder = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let folder = folder.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(format!("{} {folder}", named.map(|n| n.name_or_path).unwrap_or_default()))
}

/// Encoder hyper-parameters read from `config.json` (BERT and MPNet share these names).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct BertConfig {
    vocab_size: usize,
    pub(crate) hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pub(crate) hidden_act: Option<String>,
    #[serde(default)]
    pub(crate) model_type: Option<String>,
    #[serde(default = "default_buckets")]
    relative_attention_num_buckets: usize,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_buckets() -> usize {
    32
}

/// Which encoder the weights belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Architecture {
    Bert,
    MpNet,
}

impl Architecture {
    fn name(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::MpNet => "mpnet",
        }
    }
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

/// The encoder as candle tensors: what loading produces, and what the cross-encoder runs in
/// batches. The embedder copies it into a [`beacon_encoder::Encoder`] (see [`Encoder::to_rows`]).
pub(crate) struct Encoder {
    arch: Architecture,
    word: Embedding,
    position: Embedding,
    /// BERT only; MPNet has no segment embeddings.
    token_type: Option<Embedding>,
    /// MPNet only: a learned bias per relative-position bucket and head, shared by all layers.
    relative_bias: Option<Embedding>,
    buckets: usize,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    eps: f64,
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    let weight = vb.get(size, "weight")?;
    let bias = vb.get(size, "bias")?;
    Ok(LayerNorm::new(weight, bias, eps))
}

fn rows(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

fn dense_rows(l: &Linear) -> Result<beacon_encoder::Dense> {
    let (outputs, inputs) = l.weight().dims2()?;
    let b = match l.bias() {
        Some(b) => rows(b)?,
        None => vec![0.0; outputs],
    };
    Ok(beacon_encoder::Dense::new(rows(l.weight())?, b, inputs, outputs)?)
}

fn norm_rows(n: &LayerNorm, eps: f64) -> Result<beacon_encoder::Norm> {
    let gamma = rows(n.weight())?;
    let beta = match n.bias() {
        Some(b) => rows(b)?,
        None => vec![0.0; gamma.len()],
    };
    Ok(beacon_encoder::Norm::new(gamma, beta, eps))
}

impl Encoder {
    /// The same weights as plain rows for [`beacon_encoder::Encoder`] (the candle model can then
    /// be dropped).
    pub(crate) fn to_rows(&self) -> Result<beacon_encoder::Encoder> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            layers.push(beacon_encoder::Layer::new(
                [dense_rows(&l.query)?, dense_rows(&l.key)?, dense_rows(&l.value)?],
                dense_rows(&l.attn_out)?,
                norm_rows(&l.attn_norm, self.eps)?,
                dense_rows(&l.intermediate)?,
                dense_rows(&l.output)?,
                norm_rows(&l.out_norm, self.eps)?,
            )?);
        }
        let positions = match (&self.relative_bias, &self.token_type) {
            (Some(bias), _) => {
                beacon_encoder::Positions::MpNet { relative_bias: rows(bias.embeddings())?, buckets: self.buckets }
            }
            (None, Some(types)) => {
                beacon_encoder::Positions::Bert { token_type: Some(rows(&types.embeddings().narrow(0, 0, 1)?)?) }
            }
            (None, None) => beacon_encoder::Positions::Bert { token_type: None },
        };
        Ok(beacon_encoder::Encoder::new(
            rows(self.word.embeddings())?,
            rows(self.position.embeddings())?,
            positions,
            norm_rows(&self.norm, self.eps)?,
            layers,
            self.heads,
        )?)
    }
}

impl Encoder {
    pub(crate) fn load(cfg: &BertConfig, arch: Architecture, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let emb = vb.pp("embeddings");
        let word = candle_nn::embedding(cfg.vocab_size, h, emb.pp("word_embeddings"))?;
        let position = candle_nn::embedding(cfg.max_position_embeddings, h, emb.pp("position_embeddings"))?;
        let norm = layer_norm(h, eps, emb.pp("LayerNorm"))?;
        let (token_type, relative_bias) = match arch {
            Architecture::Bert => {
                (Some(candle_nn::embedding(cfg.type_vocab_size, h, emb.pp("token_type_embeddings"))?), None)
            }
            Architecture::MpNet => (
                None,
                Some(candle_nn::embedding(
                    cfg.relative_attention_num_buckets,
                    cfg.num_attention_heads,
                    vb.pp("encoder.relative_attention_bias"),
                )?),
            ),
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            let (q, k, v, o, n) = match arch {
                Architecture::Bert => ("self.query", "self.key", "self.value", "output.dense", "output.LayerNorm"),
                Architecture::MpNet => ("attn.q", "attn.k", "attn.v", "attn.o", "LayerNorm"),
            };
            layers.push(Layer {
                query: candle_nn::linear(h, h, att.pp(q))?,
                key: candle_nn::linear(h, h, att.pp(k))?,
                value: candle_nn::linear(h, h, att.pp(v))?,
                attn_out: candle_nn::linear(h, h, att.pp(o))?,
                attn_norm: layer_norm(h, eps, att.pp(n))?,
                intermediate: candle_nn::linear(h, cfg.intermediate_size, l.pp("intermediate.dense"))?,
                output: candle_nn::linear(cfg.intermediate_size, h, l.pp("output.dense"))?,
                out_norm: layer_norm(h, eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Encoder {
            arch,
            word,
            position,
            token_type,
            relative_bias,
            buckets: cfg.relative_attention_num_buckets,
            norm,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            eps,
        })
    }

    /// Returns the last hidden states, `[batch, seq, hidden]`. `type_ids` are BERT's segment ids
    /// (all 0 when `None`: one text; a cross-encoder's pair gives its second text 1).
    pub(crate) fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        type_ids: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let device = ids.device();
        // MPNet (like RoBERTa) numbers positions from padding_idx + 1 = 2; inputs are right-padded,
        // so real tokens sit at 2..t+2 and padding is masked out below.
        let first = match self.arch {
            Architecture::Bert => 0u32,
            Architecture::MpNet => 2u32,
        };
        let positions = Tensor::arange(first, first + t as u32, device)?;
        let mut x = self.word.forward(ids)?.broadcast_add(&self.position.forward(&positions)?)?;
        if let Some(token_type) = &self.token_type {
            x = match type_ids {
                Some(types) => (x + token_type.forward(types)?)?,
                // Segment 0 everywhere: one row, broadcast.
                None => x.broadcast_add(&token_type.embeddings().narrow(0, 0, 1)?)?,
            };
        }
        let mut x = self.norm.forward(&x)?;
        // Padding positions get a large negative score so attention ignores them.
        let mut bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, t))?;
        if let Some(relative) = &self.relative_bias {
            let buckets: Vec<u32> = (0..t as i64)
                .flat_map(|q| (0..t as i64).map(move |k| (q, k)))
                .map(|(q, k)| relative_bucket(k - q, self.buckets))
                .collect();
            let table = Tensor::from_vec(buckets, (t, t), device)?;
            // [t, t, heads] -> [1, heads, t, t]
            let position_bias = relative.forward(&table)?.permute((2, 0, 1))?.unsqueeze(0)?;
            bias = bias.broadcast_add(&position_bias)?;
        }
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

/// A local sentence-embedding model (all-MiniLM-L6-v2 by default; any BERT or MPNet export),
/// run on the CPU with the pooling and instructions of its [`ModelProfile`]: one sequence at a
/// time through [`beacon_encoder::Encoder`] (no padding), a query on the caller's thread, documents spread
/// over the cores.
pub struct BertEmbedder {
    model: beacon_encoder::Encoder,
    tokenizer: Tokenizer,
    dim: usize,
    model_id: String,
    profile: ModelProfile,
}

/// Files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

impl BertEmbedder {
    /// Longest input in tokens when the model does not say; sentence-transformers uses 256 for
    /// all-MiniLM-L6-v2.
    pub const MAX_TOKENS: usize = ModelProfile::DEFAULT_MAX_TOKENS;

    /// The default precision where the CPU has its kernel (see BENCHMARKS.md, "beacon-encoder:
    /// quantised weights").
    const GATED_PRECISION: Precision = Precision::Bf16;

    /// Loads a model directory holding `config.json`, `tokenizer.json` and `model.safetensors`,
    /// with the profile its files describe.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(dir, &ProfileOverrides::default())
    }

    /// Like [`BertEmbedder::load`], with `overrides` applied to the detected profile.
    pub fn load_with(dir: impl AsRef<Path>, overrides: &ProfileOverrides) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| KbError::io(dir.join(name), e));
        let cfg: BertConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|source| KbError::Json { what: "config.json".into(), source })?;
        if let Some(act) = cfg.hidden_act.as_deref()
            && act != "gelu"
        {
            return Err(KbError::Model(format!("unsupported activation {act}")));
        }
        let arch = match cfg.model_type.as_deref() {
            None | Some("bert") => Architecture::Bert,
            Some("mpnet") => Architecture::MpNet,
            Some(other) => return Err(KbError::Model(format!("unsupported model type {other} (bert or mpnet)"))),
        };
        let profile = ModelProfile::detect(dir)?.with(overrides);
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|source| KbError::Tokenizer { what: "tokenizer.json", source })?;
        // Packaged tokenizers often pad every input to 128 tokens; sequences run one at a time,
        // so nothing is padded. Truncate where sentence-transformers does.
        tokenizer.with_padding(None);
        // MPNet's positions start at 2, so two position slots are never used by tokens.
        let reserved = if arch == Architecture::MpNet { 2 } else { 0 };
        let max_tokens = profile.max_tokens.min(cfg.max_position_embeddings.saturating_sub(reserved)).max(1);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|source| KbError::Tokenizer { what: "truncation", source })?;
        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(&weights_path, &device)?;
        // Some exports prefix every name with the architecture ("bert.", "mpnet.").
        let prefix = format!("{}.", arch.name());
        if tensors.keys().filter(|k| !k.ends_with("position_ids")).all(|k| k.starts_with(&prefix)) {
            tensors =
                tensors.into_iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_string(), v))).collect();
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = Encoder::load(&cfg, arch, vb)?.to_rows()?;
        let precision = overrides.precision.unwrap_or_else(Self::default_precision);
        let model = if precision == Precision::F32 { model } else { model.with_precision(precision)? };
        // Identify the model by its files, not its folder name, so swapping models re-embeds.
        let weights_len = std::fs::metadata(&weights_path).map_err(|e| KbError::io(&weights_path, e))?.len();
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(read("config.json")?);
            h.update(read("tokenizer.json")?);
            h.update(weights_len.to_le_bytes());
            // Only what changes stored document vectors; MiniLM's id stays what it always was.
            if !profile.document_prefix.is_empty() {
                h.update(b"document-prefix:");
                h.update(profile.document_prefix.as_bytes());
            }
            if max_tokens != Self::MAX_TOKENS {
                h.update(b"max-tokens:");
                h.update((max_tokens as u64).to_le_bytes());
            }
            hex::encode(&h.finalize()[..6])
        };
        let model_id = match arch {
            Architecture::Bert => format!("bert-{}-{}:{fingerprint}", profile.pooling, cfg.hidden_size),
            Architecture::MpNet => format!("mpnet-{}-{}:{fingerprint}", profile.pooling, cfg.hidden_size),
        };
        Ok(BertEmbedder { model, tokenizer, dim: cfg.hidden_size, model_id, profile })
    }

    /// The precision a model runs at unless configured otherwise: the quantised precision that
    /// passed the quality gate in BENCHMARKS.md where this CPU runs it, f32 elsewhere.
    pub fn default_precision() -> Precision {
        if Self::GATED_PRECISION.supported() { Self::GATED_PRECISION } else { Precision::F32 }
    }

    /// The precision of the dense layers.
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// The profile the model runs with.
    pub fn profile(&self) -> &ModelProfile {
        &self.profile
    }

    /// One text's embedding: tokens, the forward pass, pooling, unit length.
    fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let encoding =
            self.tokenizer.encode(text, true).map_err(|source| KbError::Tokenizer { what: "tokenize", source })?;
        let ids = encoding.get_ids();
        let hidden = self.model.forward(ids)?;
        let h = self.dim;
        let mut pooled = match self.profile.pooling {
            Pooling::Cls => hidden.get(..h).map(<[f32]>::to_vec).unwrap_or_else(|| vec![0.0; h]),
            Pooling::Mean => {
                let mut sum = vec![0f32; h];
                for row in hidden.chunks_exact(h) {
                    for (s, v) in sum.iter_mut().zip(row) {
                        *s += v;
                    }
                }
                let n = ids.len().max(1) as f32;
                sum.iter_mut().for_each(|s| *s /= n);
                sum
            }
        };
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        pooled.iter_mut().for_each(|v| *v /= norm);
        Ok(pooled)
    }

    fn embed_prefixed(&self, texts: &[&str], prefix: &str) -> Result<Vec<Vec<f32>>> {
        use rayon::prelude::*;
        texts.par_iter().map(|text| self.embed_one(&format!("{prefix}{text}"))).collect()
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
        self.embed_prefixed(texts, &self.profile.document_prefix)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.embed_one(&format!("{}{text}", self.profile.query_prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_detection_by_name() {
        assert_eq!(Family::of("BAAI/bge-small-en-v1.5 model"), Family::BgeEnglish);
        assert_eq!(Family::of("/root/.cache/BAAI_bge-base-en/ x"), Family::BgeEnglish);
        assert_eq!(Family::of("intfloat/e5-small-v2"), Family::E5);
        assert_eq!(Family::of("sentence-transformers/all-MiniLM-L6-v2 model"), Family::Other);
        assert_eq!(Family::of("BAAI/bge-small-zh-v1.5"), Family::Other);
    }

    #[test]
    fn profile_reads_sentence_transformers_files_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("config.json"), r#"{"_name_or_path": "BAAI/bge-small-en-v1.5"}"#).unwrap();
        // Name alone: bge → CLS and the bge instruction.
        let p = ModelProfile::detect(d).unwrap();
        assert_eq!(p.pooling, Pooling::Cls);
        assert_eq!(p.query_prefix, BGE_QUERY_PREFIX);
        assert_eq!(p.max_tokens, ModelProfile::DEFAULT_MAX_TOKENS);
        // Files win over the name.
        std::fs::create_dir(d.join("1_Pooling")).unwrap();
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("config_sentence_transformers.json"),
            r#"{"prompts": {"query": "q: ", "document": "d: "}, "default_prompt_name": null}"#,
        )
        .unwrap();
        std::fs::write(d.join("sentence_bert_config.json"), r#"{"max_seq_length": 512}"#).unwrap();
        let p = ModelProfile::detect(d).unwrap();
        assert_eq!(
            p,
            ModelProfile {
                pooling: Pooling::Mean,
                query_prefix: "q: ".into(),
                document_prefix: "d: ".into(),
                max_tokens: 512
            }
        );
        let o = ProfileOverrides { pooling: Some(Pooling::Cls), query_prefix: Some(String::new()), precision: None };
        let p = p.with(&o);
        assert_eq!((p.pooling, p.query_prefix.as_str()), (Pooling::Cls, ""));
        let o = ProfileOverrides { pooling: None, query_prefix: Some("search_query:".into()), precision: None };
        assert_eq!(p.with(&o).query_prefix, "search_query: ");
        // A broken file is an error that names it, not a silent default.
        std::fs::write(d.join("1_Pooling/config.json"), "{").unwrap();
        let e = ModelProfile::detect(d).unwrap_err().to_string();
        assert!(e.contains("1_Pooling"), "{e}");
    }

    #[test]
    fn pooling_parses() {
        assert_eq!("CLS".parse::<Pooling>().unwrap(), Pooling::Cls);
        assert_eq!(" mean ".parse::<Pooling>().unwrap(), Pooling::Mean);
        assert!("max".parse::<Pooling>().is_err());
    }
}
