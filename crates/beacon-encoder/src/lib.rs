//! A BERT-family encoder's forward pass for one sequence.
//!
//! A member's question is a dozen tokens. At that size a general matrix product spends as long
//! repacking each weight matrix as multiplying with it, and every tensor operation allocates; so
//! Beacon's embedder runs its sequences through this pass: the weights are given once (as rows,
//! the way safetensors store them) and packed once into panels of 32 outputs (see `dense.rs`),
//! each dense layer streams its panels once per block of up to eight tokens, and nothing is
//! padded because there is no batch. At a dozen tokens the pass is bound by reading the weights,
//! so [`Encoder::with_precision`] can store the dense layers as bfloat16 (AVX-512 BF16) or int8
//! (AVX-512 VNNI) instead of f32: half or a quarter of the bytes.
//!
//! The f32 kernel is compiled for the x86_64 baseline and, chosen at run time, for AVX-512 and
//! for AVX2 with FMA (release builds target the baseline). BERT (absolute positions from 0,
//! segment embeddings) and MPNet (positions from 2, a relative-position bias) are supported.
//!
//! ```
//! use beacon_encoder::{Dense, Encoder, Layer, Norm, Positions};
//! let (h, ffn) = (4, 8);
//! let dense = |i, o| Dense::new(vec![0.01; i * o], vec![0.0; o], i, o);
//! let norm = || Norm::new(vec![1.0; h], vec![0.0; h], 1e-12);
//! let layer = Layer::new([dense(h, h)?, dense(h, h)?, dense(h, h)?], dense(h, h)?, norm(), dense(h, ffn)?, dense(ffn, h)?, norm())?;
//! let encoder = Encoder::new(vec![0.1; 10 * h], vec![0.2; 16 * h], Positions::Bert { token_type: Some(vec![0.0; h]) }, norm(), vec![layer], 2)?;
//! let hidden = encoder.forward(&[1, 5, 2])?;
//! assert_eq!(hidden.len(), 3 * h);
//! # Ok::<(), beacon_encoder::EncoderError>(())
//! ```

mod dense;

pub use dense::{Dense, Precision};

/// What is wrong with the weights given, or with a sequence.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A weight's length does not match the shape it was given with.
    #[error("{what}: {got} values, expected {expected}")]
    Shape {
        /// Which weight.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length its shape needs.
        expected: usize,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {0} is outside the vocabulary")]
    Token(u32),
    /// A precision name other than `f32`, `bf16` or `int8`.
    #[error("unknown precision {0:?} (f32, bf16 or int8)")]
    Precision(String),
    /// This CPU has no kernel for the precision asked for.
    #[error("this CPU cannot run {0} weights (bf16 needs AVX-512 BF16, int8 AVX-512 VNNI)")]
    Unsupported(Precision),
    /// The sequence is longer than the model's positions.
    #[error("{tokens} tokens exceed the model's {positions} positions")]
    TooLong {
        /// Tokens given.
        tokens: usize,
        /// Positions the model has.
        positions: usize,
    },
}

fn check(what: &'static str, got: usize, expected: usize) -> Result<(), EncoderError> {
    if got == expected { Ok(()) } else { Err(EncoderError::Shape { what, got, expected }) }
}

/// A layer normalisation: `gamma`, `beta` and `eps`.
#[derive(Clone)]
pub struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// A normalisation over `gamma.len()` values.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>, eps: f64) -> Norm {
        Norm { gamma, beta, eps: eps as f32 }
    }
}

/// One transformer layer.
pub struct Layer {
    /// Query, key and value as one `[3·hidden][hidden]` layer: one pass over the tokens.
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    intermediate: Dense,
    output: Dense,
    out_norm: Norm,
}

impl Layer {
    /// A layer from its query, key and value projections, attention output, its norm, the
    /// feed-forward pair and the output norm (the order BERT stores them in).
    pub fn new(
        [q, k, v]: [Dense; 3],
        attn_out: Dense,
        attn_norm: Norm,
        intermediate: Dense,
        output: Dense,
        out_norm: Norm,
    ) -> Result<Layer, EncoderError> {
        let h = q.inputs;
        for d in [&q, &k, &v, &attn_out] {
            check("attention input", d.inputs, h)?;
            check("attention output", d.outputs, h)?;
        }
        check("intermediate input", intermediate.inputs, h)?;
        check("output input", output.inputs, intermediate.outputs)?;
        check("output size", output.outputs, h)?;
        for n in [&attn_norm, &out_norm] {
            check("norm weight", n.gamma.len(), h)?;
            check("norm bias", n.beta.len(), h)?;
        }
        Ok(Layer { qkv: Dense::concat([q, k, v]), attn_out, attn_norm, intermediate, output, out_norm })
    }
}

impl Layer {
    fn to_precision(&self, p: Precision) -> Layer {
        Layer {
            qkv: self.qkv.to_precision(p),
            attn_out: self.attn_out.to_precision(p),
            attn_norm: self.attn_norm.clone(),
            intermediate: self.intermediate.to_precision(p),
            output: self.output.to_precision(p),
            out_norm: self.out_norm.clone(),
        }
    }
}

/// How positions enter the model.
pub enum Positions {
    /// BERT: absolute positions from 0, plus segment 0's embedding when the model has segments.
    Bert {
        /// Segment 0's embedding (`hidden` values).
        token_type: Option<Vec<f32>>,
    },
    /// MPNet: absolute positions from 2 (padding_idx + 1) and a learned bias per relative-position
    /// bucket and head, shared by every layer.
    MpNet {
        /// `[buckets][heads]`.
        relative_bias: Vec<f32>,
        /// Number of buckets.
        buckets: usize,
    },
}

/// A BERT-family encoder; see the crate documentation.
pub struct Encoder {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    positions: Positions,
    norm: Norm,
    layers: Vec<Layer>,
    precision: Precision,
}

impl Encoder {
    /// An encoder from its word embeddings (`[vocabulary][hidden]`), position embeddings
    /// (`[positions][hidden]`), position scheme, embedding norm, layers and attention heads; the
    /// hidden size is the norm's.
    pub fn new(
        word: Vec<f32>,
        position: Vec<f32>,
        positions: Positions,
        norm: Norm,
        layers: Vec<Layer>,
        heads: usize,
    ) -> Result<Encoder, EncoderError> {
        let hidden = norm.gamma.len();
        check("embedding norm bias", norm.beta.len(), hidden)?;
        if hidden == 0 || heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(EncoderError::Shape { what: "hidden size by heads", got: hidden, expected: heads.max(1) });
        }
        check("word embeddings", word.len() % hidden, 0)?;
        check("position embeddings", position.len() % hidden, 0)?;
        match &positions {
            Positions::Bert { token_type: Some(t) } => check("segment embedding", t.len(), hidden)?,
            Positions::Bert { token_type: None } => {}
            Positions::MpNet { relative_bias, buckets } => {
                check("relative attention bias", relative_bias.len(), buckets * heads)?
            }
        }
        for l in &layers {
            check("layer size", l.qkv.inputs, hidden)?;
        }
        Ok(Encoder {
            hidden,
            heads,
            head_dim: hidden / heads,
            max_positions: position.len() / hidden,
            word,
            position,
            positions,
            norm,
            layers,
            precision: Precision::F32,
        })
    }

    /// The same model with its dense layers stored and multiplied in `precision` (the
    /// embeddings, norms and attention stay f32). Converts from the weights as given, so call it
    /// on an f32 encoder; an error if this CPU has no kernel for `precision`
    /// ([`Precision::supported`]).
    pub fn with_precision(self, precision: Precision) -> Result<Encoder, EncoderError> {
        if !precision.supported() {
            return Err(EncoderError::Unsupported(precision));
        }
        let layers = self.layers.iter().map(|l| l.to_precision(precision)).collect();
        Ok(Encoder { layers, precision, ..self })
    }

    /// The precision of the dense layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The last hidden states of one sequence, `[ids.len()][hidden]` row-major. Ids must be below
    /// the vocabulary size and the sequence no longer than the model's positions (the tokenizer
    /// truncates to that); anything else is an error, not a panic.
    pub fn forward(&self, ids: &[u32]) -> Result<Vec<f32>, EncoderError> {
        let (t, h) = (ids.len(), self.hidden);
        // MPNet numbers positions from padding_idx + 1 = 2.
        let first = match self.positions {
            Positions::Bert { .. } => 0,
            Positions::MpNet { .. } => 2,
        };
        if t + first > self.max_positions {
            return Err(EncoderError::TooLong { tokens: t, positions: self.max_positions.saturating_sub(first) });
        }
        let mut x = vec![0f32; t * h];
        for (i, (&id, row)) in ids.iter().zip(x.chunks_exact_mut(h)).enumerate() {
            let word = self.word.get(id as usize * h..(id as usize + 1) * h).ok_or(EncoderError::Token(id))?;
            let pos = &self.position[(i + first) * h..(i + first + 1) * h];
            for (k, out) in row.iter_mut().enumerate() {
                *out = word[k] + pos[k];
            }
            if let Positions::Bert { token_type: Some(types) } = &self.positions {
                for (out, ty) in row.iter_mut().zip(types) {
                    *out += ty;
                }
            }
        }
        layer_norm(&mut x, &self.norm);
        // [heads][t][t]: MPNet's relative-position bias, shared by every layer.
        let bias: Option<Vec<f32>> = match &self.positions {
            Positions::Bert { .. } => None,
            Positions::MpNet { relative_bias: table, buckets } => Some({
                let mut bias = vec![0f32; self.heads * t * t];
                for q in 0..t {
                    for k in 0..t {
                        let bucket = relative_bucket(k as i64 - q as i64, *buckets) as usize;
                        for head in 0..self.heads {
                            bias[(head * t + q) * t + k] = table[bucket * self.heads + head];
                        }
                    }
                }
                bias
            }),
        };
        let scale = 1.0 / (self.head_dim as f32).sqrt();
        let mut qkv = vec![0f32; t * 3 * h];
        let mut ctx = vec![0f32; t * h];
        let mut tmp = vec![0f32; t * h];
        let mut scores = vec![0f32; t];
        let inter_size = self.layers.first().map_or(0, |l| l.intermediate.outputs);
        let mut inter = vec![0f32; t * inter_size];
        let mut scratch = dense::Scratch::default();
        for layer in &self.layers {
            layer.qkv.forward(&x, t, &mut qkv, &mut scratch);
            for head in 0..self.heads {
                let off = head * self.head_dim;
                for q in 0..t {
                    let qv = &qkv[q * 3 * h + off..q * 3 * h + off + self.head_dim];
                    for (k, s) in scores.iter_mut().enumerate() {
                        let kv = &qkv[k * 3 * h + h + off..k * 3 * h + h + off + self.head_dim];
                        *s = dot(qv, kv) * scale;
                    }
                    if let Some(bias) = &bias {
                        for (s, b) in scores.iter_mut().zip(&bias[(head * t + q) * t..(head * t + q + 1) * t]) {
                            *s += b;
                        }
                    }
                    softmax(&mut scores);
                    let out = &mut ctx[q * h + off..q * h + off + self.head_dim];
                    out.fill(0.0);
                    for (k, p) in scores.iter().enumerate() {
                        let vv = &qkv[k * 3 * h + 2 * h + off..k * 3 * h + 2 * h + off + self.head_dim];
                        for (o, v) in out.iter_mut().zip(vv) {
                            *o += p * v;
                        }
                    }
                }
            }
            layer.attn_out.forward(&ctx, t, &mut tmp, &mut scratch);
            for (a, b) in x.iter_mut().zip(&tmp) {
                *a += b;
            }
            layer_norm(&mut x, &layer.attn_norm);
            layer.intermediate.forward(&x, t, &mut inter, &mut scratch);
            gelu(&mut inter);
            layer.output.forward(&inter, t, &mut tmp, &mut scratch);
            for (a, b) in x.iter_mut().zip(&tmp) {
                *a += b;
            }
            layer_norm(&mut x, &layer.out_norm);
        }
        Ok(x)
    }
}

/// MPNet's relative-position bucket (T5-style, bidirectional), as in Hugging Face's
/// `MPNetEncoder.relative_position_bucket` with `max_distance` 128.
pub fn relative_bucket(relative: i64, buckets: usize) -> u32 {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let mut bucket = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    bucket += if n < max_exact {
        n
    } else {
        let scaled =
            ((n as f64 / max_exact as f64).ln() / (128.0 / max_exact as f64).ln() * (half - max_exact) as f64) as i64;
        (max_exact + scaled).min(half - 1)
    };
    bucket as u32
}

fn layer_norm(x: &mut [f32], n: &Norm) {
    let h = n.gamma.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + n.eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&n.gamma).zip(&n.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// BERT's GELU, `x·(1 + erf(x/√2))/2`, in place. erf is Abramowitz & Stegun 7.1.28
/// (`1 − 1/(1 + a₁z + … + a₆z⁶)¹⁶`, |error| ≤ 3·10⁻⁷): arithmetic only, so the loop vectorises,
/// where a libm `erff` call per value took half of the non-matrix time of a query.
fn gelu(v: &mut [f32]) {
    const A: [f32; 6] = [0.070_523_08, 0.042_282_01, 0.009_270_527, 0.000_152_014_3, 0.000_276_567_2, 0.000_043_063_8];
    for x in v.iter_mut() {
        // erf(6/√2) is 1 in f32; the cap keeps p¹⁶ finite.
        let z = (x.abs() * std::f32::consts::FRAC_1_SQRT_2).min(6.0);
        let p = 1.0 + z * (A[0] + z * (A[1] + z * (A[2] + z * (A[3] + z * (A[4] + z * A[5])))));
        let p2 = p * p;
        let p4 = p2 * p2;
        let p8 = p4 * p4;
        let erf = (1.0 - 1.0 / (p8 * p8)).copysign(*x);
        *x = 0.5 * *x * (1.0 + erf);
    }
}

/// A dot product in eight independent partial sums, so the compiler vectorises it (a single
/// running `f32` sum must stay in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_buckets_match_hugging_face() {
        // Values of transformers' MPNetEncoder.relative_position_bucket(num_buckets=32, max_distance=128).
        let cases = [
            (0, 0),
            (1, 17),
            (-1, 1),
            (7, 23),
            (-5, 5),
            (8, 24),
            (-9, 8),
            (16, 26),
            (-16, 10),
            (-20, 10),
            (20, 26),
            (-200, 15),
            (200, 31),
        ];
        for (relative, want) in cases {
            assert_eq!(relative_bucket(relative, 32), want, "relative {relative}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        let xs: Vec<f32> =
            (-12_000..=12_000).map(|i| i as f32 / 1000.0).chain([0.0, -0.0, 1e-8, 40.0, -40.0]).collect();
        let mut got = xs.clone();
        gelu(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            let want = 0.5 * f64::from(*x) * (1.0 + libm::erf(f64::from(*x) / std::f64::consts::SQRT_2));
            assert!((f64::from(*g) - want).abs() <= 1e-6 * (1.0 + want.abs()), "gelu({x}) = {g}, want {want}");
        }
    }

    #[test]
    fn precisions_parse_and_print() {
        for p in [Precision::F32, Precision::Bf16, Precision::Int8] {
            assert_eq!(p.to_string().parse::<Precision>().ok(), Some(p));
        }
        assert_eq!(" INT8 ".parse::<Precision>().ok(), Some(Precision::Int8));
        let err = "fp16".parse::<Precision>().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown precision \"fp16\" (f32, bf16 or int8)"));
        assert!(Precision::F32.supported());
    }

    fn encoder(seed: u64) -> Encoder {
        let (h, ffn, heads) = (64, 128, 4);
        let mut state = seed;
        let mut values = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
                })
                .collect()
        };
        let mut layers = Vec::new();
        for _ in 0..2 {
            let mut dense = |i: usize, o: usize| Dense::new(values(i * o, 0.3), values(o, 0.1), i, o);
            let (q, k, v, out, up, down) =
                (dense(h, h), dense(h, h), dense(h, h), dense(h, h), dense(h, ffn), dense(ffn, h));
            let norm = || Norm::new(vec![1.0; h], vec![0.0; h], 1e-12);
            let layer = Layer::new(
                [q.unwrap(), k.unwrap(), v.unwrap()],
                out.unwrap(),
                norm(),
                up.unwrap(),
                down.unwrap(),
                norm(),
            );
            layers.push(layer.unwrap());
        }
        let (word, pos) = (values(50 * h, 1.0), values(32 * h, 1.0));
        let norm = Norm::new(vec![1.0; h], vec![0.0; h], 1e-12);
        Encoder::new(word, pos, Positions::Bert { token_type: None }, norm, layers, heads).unwrap()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
    }

    #[test]
    fn quantised_encoders_track_the_f32_one_or_refuse() {
        let ids = [1u32, 7, 3, 19, 42, 5, 11, 2, 9, 30, 4];
        let want = encoder(7).forward(&ids).unwrap();
        for p in [Precision::Bf16, Precision::Int8] {
            match encoder(7).with_precision(p) {
                Ok(e) => {
                    assert_eq!(e.precision(), p);
                    let got = e.forward(&ids).unwrap();
                    for (t, (g, w)) in got.chunks_exact(64).zip(want.chunks_exact(64)).enumerate() {
                        let c = cosine(g, w);
                        assert!(c > 0.99, "{p} token {t}: cosine {c}");
                    }
                }
                Err(e) => {
                    assert!(!p.supported());
                    assert!(matches!(e, EncoderError::Unsupported(q) if q == p));
                }
            }
        }
    }
}
