//! A BERT-family encoder's forward pass for one sequence, over plain `f32` rows.
//!
//! A member's question is a dozen tokens. At that size a general matrix product spends as long
//! repacking each weight matrix as multiplying with it, and every tensor operation allocates; so
//! Beacon's embedder runs its sequences through this pass: the weights are given once (as rows,
//! the way safetensors store them), each dense layer reads its weight rows straight from memory,
//! four rows against two tokens at a time, and nothing is padded because there is no batch.
//!
//! The dense kernel is compiled for the x86_64 baseline and, chosen at run time, for AVX-512 and
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

/// A dense layer: `y = x·Wᵀ + b`, `W` row-major `[outputs][inputs]` as stored.
pub struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// A layer from its weight rows (`outputs × inputs`) and bias (`outputs`).
    pub fn new(w: Vec<f32>, b: Vec<f32>, inputs: usize, outputs: usize) -> Result<Dense, EncoderError> {
        check("dense weight", w.len(), inputs * outputs)?;
        check("dense bias", b.len(), outputs)?;
        Ok(Dense { w, b, inputs, outputs })
    }
}

/// A layer normalisation: `gamma`, `beta` and `eps`.
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
        let mut w = Vec::with_capacity(3 * h * h);
        let mut b = Vec::with_capacity(3 * h);
        for part in [q, k, v] {
            w.extend_from_slice(&part.w);
            b.extend_from_slice(&part.b);
        }
        Ok(Layer {
            qkv: Dense { w, b, inputs: h, outputs: 3 * h },
            attn_out,
            attn_norm,
            intermediate,
            output,
            out_norm,
        })
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
        })
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
        for layer in &self.layers {
            linear(&x, t, &layer.qkv, &mut qkv);
            for head in 0..self.heads {
                let off = head * self.head_dim;
                for q in 0..t {
                    let qv = &qkv[q * 3 * h + off..q * 3 * h + off + self.head_dim];
                    for (k, s) in scores.iter_mut().enumerate() {
                        let kv = &qkv[k * 3 * h + h + off..k * 3 * h + h + off + self.head_dim];
                        *s = qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f32>() * scale;
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
            linear(&ctx, t, &layer.attn_out, &mut tmp);
            for (a, b) in x.iter_mut().zip(&tmp) {
                *a += b;
            }
            layer_norm(&mut x, &layer.attn_norm);
            linear(&x, t, &layer.intermediate, &mut inter);
            for v in inter.iter_mut() {
                *v = (libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * *v;
            }
            linear(&inter, t, &layer.output, &mut tmp);
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

/// `y[i] = x[i]·Wᵀ + b` for the `m` rows of `x`.
#[allow(unsafe_code)]
fn linear(x: &[f32], m: usize, d: &Dense, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (which implies FMA), checked just above.
            unsafe { linear_avx512(x, m, d, y) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { linear_avx2(x, m, d, y) };
            return;
        }
    }
    linear_kernel::<8, false>(x, m, d, y);
}

/// One explicit-SIMD dense kernel per instruction set: four weight rows against two input rows
/// per step, eight accumulators in registers, each weight row read once per pair of input rows.
/// (The generic [`linear_kernel`] is left to the compiler's vectoriser, which keeps its
/// accumulators in memory in release builds: ~10× slower, so it serves only CPUs without AVX2.)
macro_rules! simd_kernel {
    ($name:ident, $feature:literal, $lanes:literal, $vec:ty, $zero:ident, $load:ident, $fma:ident, $sum:path) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        #[allow(unsafe_code)]
        fn $name(x: &[f32], m: usize, d: &Dense, y: &mut [f32]) {
            use std::arch::x86_64::*;
            const L: usize = $lanes;
            let (n, o) = (d.inputs, d.outputs);
            let body = n - n % L;
            // SAFETY (every load below): the slice it reads is taken with a bounds-checked range of
            // exactly `L` elements, so the unaligned load of `L` lanes stays inside it.
            let load = |s: &[f32], c: usize| -> $vec { unsafe { $load(s[c..c + L].as_ptr()) } };
            let tail = |a: &[f32], b: &[f32]| -> f32 { a[body..].iter().zip(&b[body..]).map(|(p, q)| p * q).sum() };
            let dot = |xr: &[f32], wr: &[f32]| -> f32 {
                let mut acc: $vec = $zero();
                for c in (0..body).step_by(L) {
                    acc = $fma(load(xr, c), load(wr, c), acc);
                }
                $sum(acc) + tail(xr, wr)
            };
            let mut j = 0;
            while j + 4 <= o {
                let w: [&[f32]; 4] = std::array::from_fn(|r| &d.w[(j + r) * n..(j + r + 1) * n]);
                let mut i = 0;
                while i + 2 <= m {
                    let (x0, x1) = (&x[i * n..(i + 1) * n], &x[(i + 1) * n..(i + 2) * n]);
                    let mut a: [$vec; 8] = [$zero(); 8];
                    for c in (0..body).step_by(L) {
                        let (p, q) = (load(x0, c), load(x1, c));
                        for r in 0..4 {
                            let wc = load(w[r], c);
                            a[r] = $fma(p, wc, a[r]);
                            a[4 + r] = $fma(q, wc, a[4 + r]);
                        }
                    }
                    for r in 0..4 {
                        y[i * o + j + r] = $sum(a[r]) + tail(x0, w[r]) + d.b[j + r];
                        y[(i + 1) * o + j + r] = $sum(a[4 + r]) + tail(x1, w[r]) + d.b[j + r];
                    }
                    i += 2;
                }
                if i < m {
                    for (r, wr) in w.iter().enumerate() {
                        y[i * o + j + r] = dot(&x[i * n..(i + 1) * n], wr) + d.b[j + r];
                    }
                }
                j += 4;
            }
            for j in j..o {
                let wr = &d.w[j * n..(j + 1) * n];
                for i in 0..m {
                    y[i * o + j] = dot(&x[i * n..(i + 1) * n], wr) + d.b[j];
                }
            }
        }
    };
}

simd_kernel!(
    linear_avx512,
    "avx512f,fma",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_reduce_add_ps
);
simd_kernel!(linear_avx2, "avx2,fma", 8, __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, sum256);

/// The sum of an AVX register's eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// `a·b + c`, fused where the caller's target has FMA (`mul_add` without it is a slow call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Four weight rows against two input rows per step, `L` lanes wide: eight accumulators of `L`
/// lanes stay in registers while each weight row is read once per pair of input rows.
#[inline(always)]
fn linear_kernel<const L: usize, const FMA: bool>(x: &[f32], m: usize, d: &Dense, y: &mut [f32]) {
    let (n, o) = (d.inputs, d.outputs);
    let body = n - n % L;
    let dot = |xr: &[f32], wr: &[f32]| -> f32 {
        let mut acc = [0f32; L];
        for (xc, wc) in xr[..body].chunks_exact(L).zip(wr[..body].chunks_exact(L)) {
            for l in 0..L {
                acc[l] = madd::<FMA>(xc[l], wc[l], acc[l]);
            }
        }
        acc.iter().sum::<f32>() + xr[body..].iter().zip(&wr[body..]).map(|(a, b)| a * b).sum::<f32>()
    };
    let mut j = 0;
    while j + 4 <= o {
        let w: [&[f32]; 4] = std::array::from_fn(|r| &d.w[(j + r) * n..(j + r + 1) * n]);
        let mut i = 0;
        while i + 2 <= m {
            let xs = [&x[i * n..(i + 1) * n], &x[(i + 1) * n..(i + 2) * n]];
            let mut acc = [[[0f32; L]; 4]; 2];
            for c in (0..body).step_by(L) {
                for (xi, a) in xs.iter().zip(acc.iter_mut()) {
                    let xc = &xi[c..c + L];
                    for (wr, ar) in w.iter().zip(a.iter_mut()) {
                        let wc = &wr[c..c + L];
                        for l in 0..L {
                            ar[l] = madd::<FMA>(xc[l], wc[l], ar[l]);
                        }
                    }
                }
            }
            for (di, (xi, a)) in xs.iter().zip(&acc).enumerate() {
                for (r, (wr, ar)) in w.iter().zip(a).enumerate() {
                    let tail: f32 = xi[body..].iter().zip(&wr[body..]).map(|(p, q)| p * q).sum();
                    y[(i + di) * o + j + r] = ar.iter().sum::<f32>() + tail + d.b[j + r];
                }
            }
            i += 2;
        }
        if i < m {
            for (r, wr) in w.iter().enumerate() {
                y[i * o + j + r] = dot(&x[i * n..(i + 1) * n], wr) + d.b[j + r];
            }
        }
        j += 4;
    }
    for j in j..o {
        let wr = &d.w[j * n..(j + 1) * n];
        for i in 0..m {
            y[i * o + j] = dot(&x[i * n..(i + 1) * n], wr) + d.b[j];
        }
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

    fn naive(x: &[f32], m: usize, d: &Dense) -> Vec<f32> {
        let mut y = vec![0f32; m * d.outputs];
        for i in 0..m {
            for j in 0..d.outputs {
                let mut s = d.b[j] as f64;
                for k in 0..d.inputs {
                    s += x[i * d.inputs + k] as f64 * d.w[j * d.inputs + k] as f64;
                }
                y[i * d.outputs + j] = s as f32;
            }
        }
        y
    }

    #[test]
    fn every_kernel_matches_the_plain_product_at_every_shape() {
        // Shapes that hit every tail: odd token counts, outputs not a multiple of 4, inputs not
        // a multiple of the lane width.
        for (m, n, o) in [(1, 16, 4), (3, 19, 7), (12, 384, 384), (5, 33, 10), (2, 8, 1)] {
            let x: Vec<f32> = (0..m * n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let d = Dense {
                w: (0..o * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0).collect(),
                b: (0..o).map(|i| i as f32 / 10.0).collect(),
                inputs: n,
                outputs: o,
            };
            let want = naive(&x, m, &d);
            let mut dispatched = vec![0f32; m * o];
            linear(&x, m, &d, &mut dispatched);
            let mut baseline = vec![0f32; m * o];
            linear_kernel::<8, false>(&x, m, &d, &mut baseline);
            for (got, what) in [(&dispatched, "dispatched"), (&baseline, "baseline")] {
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{what} {m}x{n}x{o}: {g} vs {w}");
                }
            }
        }
    }
}
