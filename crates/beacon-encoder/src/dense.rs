//! Dense layers: weights packed once into panels of [`NR`] outputs, and the kernels that multiply
//! a few token rows with them.
//!
//! A panel holds [`NR`] consecutive outputs for every input, input-major (`[input][NR]` for f32,
//! `[input / 2][NR][2]` for bf16, `[input / 4][NR][4]` for int8), so a kernel broadcasts one input
//! value of a token, multiplies it with a whole row of the panel and keeps `tokens × NR` sums in
//! registers: no horizontal reductions, no tails inside the loop, every weight read once per
//! block of up to [`MR`] tokens. Outputs past the layer's width are zero-padded in the last panel.

// The crate's only `unsafe`: the kernels' intrinsics (run only where their CPU features were
// detected) and their raw loads and stores, each inside a slice whose length is asserted first.
#![allow(unsafe_code)]

use crate::{EncoderError, check};

/// Outputs per panel.
const NR: usize = 32;
/// Most tokens one tile multiplies at a time (the f32 AVX-512 kernel's `8 × 2` accumulators).
const MR: usize = 8;

/// How dense layers store their weights and multiply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// `f32` weights and activations: the reference, and the path every x86_64 CPU (and any other
    /// architecture) runs.
    F32,
    /// bfloat16 weights and activations, `f32` sums (AVX-512 BF16 `vdpbf16ps`): half the weight
    /// bytes and twice the products per instruction of f32.
    Bf16,
    /// int8 weights with one scale per output row, activations quantised per token to int8 with one
    /// scale per token, `i32` sums (AVX-512 VNNI `vpdpbusd`): a quarter of the weight bytes.
    Int8,
}

impl Precision {
    /// Whether this CPU runs the precision's kernel (f32 runs everywhere).
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Precision::F32 => true,
                Precision::Bf16 => {
                    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
                }
                Precision::Int8 => {
                    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Precision::F32
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = EncoderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            _ => Err(EncoderError::Precision(s.to_string())),
        }
    }
}

/// The packed weights of one layer.
enum Weights {
    F32(Vec<f32>),
    /// bfloat16 bit patterns.
    Bf16(Vec<u16>),
    Int8 {
        q: Vec<i8>,
        /// Per output: the weight row's scale.
        scale: Vec<f32>,
        /// Per output: the sum of its quantised weights (the activations are stored as `q + 128`,
        /// so `128 × sum` is taken back out).
        sum: Vec<i32>,
    },
}

/// A dense layer: `y = x·Wᵀ + b`, `W` given row-major `[outputs][inputs]` as stored.
pub struct Dense {
    weights: Weights,
    pub(crate) b: Vec<f32>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

fn panels(outputs: usize) -> usize {
    outputs.div_ceil(NR)
}

/// Weight `(out, k)` of row-major `w`, zero past the layer's outputs or inputs (panel padding).
fn at(w: &[f32], inputs: usize, outputs: usize, out: usize, k: usize) -> f32 {
    if out < outputs && k < inputs { w[out * inputs + k] } else { 0.0 }
}

/// `f32` to bfloat16, rounding to nearest even (NaN stays NaN), as `vcvtne2ps2bf16` does.
fn bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

impl Dense {
    /// A layer from its weight rows (`outputs × inputs`) and bias (`outputs`), packed for the f32
    /// kernels.
    pub fn new(w: Vec<f32>, b: Vec<f32>, inputs: usize, outputs: usize) -> Result<Dense, EncoderError> {
        check("dense weight", w.len(), inputs * outputs)?;
        check("dense bias", b.len(), outputs)?;
        Ok(Dense { weights: Weights::F32(pack_f32(&w, inputs, outputs)), b, inputs, outputs })
    }

    /// Query, key and value as one layer of `3 × outputs` (one pass over the tokens).
    pub(crate) fn concat(parts: [Dense; 3]) -> Dense {
        let (inputs, outputs) = (parts[0].inputs, parts.iter().map(|p| p.outputs).sum());
        let mut w = Vec::with_capacity(inputs * outputs);
        let mut b = Vec::with_capacity(outputs);
        for p in &parts {
            w.extend(p.rows());
            b.extend_from_slice(&p.b);
        }
        Dense { weights: Weights::F32(pack_f32(&w, inputs, outputs)), b, inputs, outputs }
    }

    /// The weight rows back from the packed form (exact for f32; the stored values otherwise).
    fn rows(&self) -> Vec<f32> {
        let (n, o) = (self.inputs, self.outputs);
        let mut w = vec![0f32; n * o];
        for j in 0..o {
            let (p, l) = (j / NR, j % NR);
            for k in 0..n {
                w[j * n + k] = match &self.weights {
                    Weights::F32(v) => v[(p * n + k) * NR + l],
                    Weights::Bf16(v) => {
                        f32::from_bits(u32::from(v[((p * n.div_ceil(2) + k / 2) * NR + l) * 2 + k % 2]) << 16)
                    }
                    Weights::Int8 { q, scale, .. } => {
                        f32::from(q[((p * n.div_ceil(4) + k / 4) * NR + l) * 4 + k % 4]) * scale[j]
                    }
                };
            }
        }
        w
    }

    /// The same layer stored for `precision` (from the f32 weights; converting twice is lossy).
    pub(crate) fn to_precision(&self, precision: Precision) -> Dense {
        let (n, o) = (self.inputs, self.outputs);
        let w = self.rows();
        let weights = match precision {
            Precision::F32 => Weights::F32(pack_f32(&w, n, o)),
            Precision::Bf16 => {
                let n2 = n.div_ceil(2);
                let mut v = vec![0u16; panels(o) * n2 * NR * 2];
                for p in 0..panels(o) {
                    for kk in 0..n2 {
                        for l in 0..NR {
                            for h in 0..2 {
                                v[((p * n2 + kk) * NR + l) * 2 + h] = bf16(at(&w, n, o, p * NR + l, 2 * kk + h));
                            }
                        }
                    }
                }
                Weights::Bf16(v)
            }
            Precision::Int8 => {
                let n4 = n.div_ceil(4);
                let scale: Vec<f32> =
                    (0..o).map(|j| w[j * n..(j + 1) * n].iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0).collect();
                let quant = |j: usize, k: usize| -> i8 {
                    let s = scale.get(j).copied().unwrap_or(0.0);
                    if s == 0.0 { 0 } else { (at(&w, n, o, j, k) / s).round().clamp(-127.0, 127.0) as i8 }
                };
                let mut q = vec![0i8; panels(o) * n4 * NR * 4];
                for p in 0..panels(o) {
                    for kq in 0..n4 {
                        for l in 0..NR {
                            for h in 0..4 {
                                q[((p * n4 + kq) * NR + l) * 4 + h] = quant(p * NR + l, 4 * kq + h);
                            }
                        }
                    }
                }
                let sum = (0..o).map(|j| (0..n).map(|k| i32::from(quant(j, k))).sum()).collect();
                Weights::Int8 { q, scale, sum }
            }
        };
        Dense { weights, b: self.b.clone(), inputs: n, outputs: o }
    }

    /// `y[i] = x[i]·Wᵀ + b` for the `m` rows of `x`; `scratch` holds the quantised activations.
    pub(crate) fn forward(&self, x: &[f32], m: usize, y: &mut [f32], scratch: &mut Scratch) {
        match &self.weights {
            Weights::F32(w) => linear_f32(x, m, self, w, y),
            #[cfg(target_arch = "x86_64")]
            Weights::Bf16(w) => {
                scratch.pack_bf16(x, m, self.inputs);
                // SAFETY: bf16 weights exist only after `Encoder::with_precision` checked the CPU's
                // AVX-512 BF16 support (`Precision::supported`).
                unsafe { linear_bf16(&scratch.packed, m, self, w, y) }
            }
            #[cfg(target_arch = "x86_64")]
            Weights::Int8 { q, scale, sum } => {
                scratch.pack_int8(x, m, self.inputs);
                // SAFETY: int8 weights exist only after `Encoder::with_precision` checked the CPU's
                // AVX-512 VNNI support (`Precision::supported`).
                unsafe { linear_int8(&scratch.packed, &scratch.scales, m, self, q, scale, sum, y) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Weights::Bf16(_) | Weights::Int8 { .. } => {
                let _ = scratch;
                unreachable!("Encoder::with_precision refuses bf16 and int8 off x86_64")
            }
        }
    }
}

fn pack_f32(w: &[f32], n: usize, o: usize) -> Vec<f32> {
    let mut v = vec![0f32; panels(o) * n * NR];
    for p in 0..panels(o) {
        for k in 0..n {
            for l in 0..NR {
                v[(p * n + k) * NR + l] = at(w, n, o, p * NR + l, k);
            }
        }
    }
    v
}

/// Activations in the quantised kernels' form, reused across layers.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Per token: bf16 pairs or int8 quads (as `u8 + 128`), one `u32` per broadcast.
    packed: Vec<u32>,
    /// Per token: the int8 activation scale.
    scales: Vec<f32>,
}

impl Scratch {
    fn pack_bf16(&mut self, x: &[f32], m: usize, n: usize) {
        let n2 = n.div_ceil(2);
        self.packed.clear();
        for row in x.chunks_exact(n).take(m) {
            self.packed.extend((0..n2).map(|kk| {
                let hi = row.get(2 * kk + 1).copied().unwrap_or(0.0);
                u32::from(bf16(row[2 * kk])) | (u32::from(bf16(hi)) << 16)
            }));
        }
    }

    fn pack_int8(&mut self, x: &[f32], m: usize, n: usize) {
        let n4 = n.div_ceil(4);
        self.packed.clear();
        self.scales.clear();
        for row in x.chunks_exact(n).take(m) {
            let s = row.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
            self.scales.push(s);
            // `q + 128` rounded to nearest: in 1.5..=255.5 before the cast, where truncation is
            // the floor (`f32::round` is a libm call on the x86_64 baseline).
            let byte =
                |k: usize| -> u32 { row.get(k).map_or(128, |v| ((v * inv).clamp(-127.0, 127.0) + 128.5) as u32) };
            self.packed.extend(
                (0..n4).map(|q| byte(4 * q) | byte(4 * q + 1) << 8 | byte(4 * q + 2) << 16 | byte(4 * q + 3) << 24),
            );
        }
    }
}

/// Runs `tile(first token, tokens, panel, out)` over every block of up to `step` tokens and every
/// panel (panel-major, so a panel stays in cache across token blocks), and copies each tile's
/// `tokens × NR` results into `y` (the last panel's padding is dropped).
#[inline(always)]
fn tiles(m: usize, o: usize, step: usize, y: &mut [f32], mut tile: impl FnMut(usize, usize, usize, &mut [[f32; NR]])) {
    let mut out = [[0f32; NR]; MR];
    for p in 0..panels(o) {
        let (j0, width) = (p * NR, (o - p * NR).min(NR));
        for i0 in (0..m).step_by(step) {
            let rows = (m - i0).min(step);
            tile(i0, rows, p, &mut out[..rows]);
            for (r, res) in out.iter().enumerate().take(rows) {
                y[(i0 + r) * o + j0..(i0 + r) * o + j0 + width].copy_from_slice(&res[..width]);
            }
        }
    }
}

/// Calls `$tile::<R>($args…, out)` with `out` as `&mut [_; R]` for the runtime row count `$rows`,
/// one arm per tile size listed, so each size gets its own fully unrolled accumulators.
macro_rules! by_rows {
    ($rows:expr, $out:expr, [$($r:literal),+], |$o:ident| $call:expr) => {
        match $rows {
            $($r => {
                let $o: &mut [_; $r] = match $out.try_into() {
                    Ok(o) => o,
                    Err(_) => unreachable!("a tile of {} rows", $r),
                };
                $call
            })+
            _ => unreachable!("tiles are at most the largest size listed"),
        }
    };
}

/// One instruction set's `f32` vector: what the shared f32 tile needs.
trait Lanes {
    type V: Copy;
    /// `f32`s per vector.
    const LANES: usize;
    /// # Safety
    /// The CPU supports the instruction set; `p` points at `LANES` readable `f32`s.
    unsafe fn load(p: *const f32) -> Self::V;
    /// # Safety
    /// The CPU supports the instruction set.
    unsafe fn splat(v: f32) -> Self::V;
    /// `a·b + c`.
    /// # Safety
    /// The CPU supports the instruction set.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// # Safety
    /// The CPU supports the instruction set; `p` points at `LANES` writable `f32`s.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// A hint to fetch the cache line at `p` (any address: a hint never faults).
    #[inline(always)]
    fn prefetch(p: *const f32) {
        let _ = p;
    }
}

/// Bytes ahead of the panel row being multiplied that the kernels ask the cache for: eight rows
/// of 128 bytes (every panel row is 128 bytes: 32 f32, 32 bf16 pairs or 32 int8 quads). The
/// weights stream from L3 or memory once per query; the hint keeps the loads ahead of the FMAs.
const PREFETCH: usize = 1024;

/// Hints the two cache lines of the panel row `PREFETCH` bytes after `row`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_row(row: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let ahead = row.wrapping_add(PREFETCH);
    // SAFETY: prefetching is a hint that never faults, whatever the address; SSE is baseline.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64).cast());
    }
}

/// The f32 tile for every instruction set: `R` tokens × one panel, `R × V` vector accumulators
/// (`V · LANES = NR`) started from the bias.
///
/// # Safety
/// The CPU supports `S`'s instruction set.
#[inline(always)]
unsafe fn tile_f32<S: Lanes, const R: usize, const V: usize>(
    x: &[f32],
    n: usize,
    panel: &[f32],
    bias: &[f32; NR],
    out: &mut [[f32; NR]; R],
) {
    assert!(x.len() >= R * n && panel.len() >= n * NR && V * S::LANES == NR);
    // SAFETY: every pointer below stays inside `x` (`r * n + k < R * n`), `panel`
    // (`k * NR + v * LANES + LANES <= n * NR`), `bias` or `out` (`v * LANES + LANES <= NR`), by
    // the lengths asserted above; the caller vouches for the instruction set.
    unsafe {
        let mut acc: [[S::V; V]; R] = [std::array::from_fn(|v| S::load(bias.as_ptr().add(v * S::LANES))); R];
        let (xp, wp) = (x.as_ptr(), panel.as_ptr());
        for k in 0..n {
            S::prefetch(wp.wrapping_add(k * NR));
            let w: [S::V; V] = std::array::from_fn(|v| S::load(wp.add(k * NR + v * S::LANES)));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = S::splat(*xp.add(r * n + k));
                for v in 0..V {
                    a[v] = S::fma(xv, w[v], a[v]);
                }
            }
        }
        for (a, o) in acc.iter().zip(out.iter_mut()) {
            for (v, av) in a.iter().enumerate() {
                S::store(o.as_mut_ptr().add(v * S::LANES), *av);
            }
        }
    }
}

/// The bias of panel `p`, zero-padded.
fn panel_bias(d: &Dense, p: usize) -> [f32; NR] {
    std::array::from_fn(|l| d.b.get(p * NR + l).copied().unwrap_or(0.0))
}

/// An f32 dense product for one instruction set: its [`Lanes`], vectors per panel row, the
/// target features and the tile sizes it runs (the largest first).
macro_rules! f32_kernel {
    ($name:ident, $lanes:ty, $v:literal, $feature:literal, [$max:literal $(, $r:literal)*]) => {
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
                fn $name(x: &[f32], m: usize, d: &Dense, w: &[f32], y: &mut [f32]) {
            let n = d.inputs;
            tiles(m, d.outputs, $max, y, |i0, rows, p, out| {
                let (xs, panel, bias) = (&x[i0 * n..(i0 + rows) * n], &w[p * n * NR..(p + 1) * n * NR], panel_bias(d, p));
                // SAFETY: this function runs only where its target features are enabled.
                by_rows!(rows, out, [$max $(, $r)*], |o| unsafe { tile_f32::<$lanes, _, $v>(xs, n, panel, &bias, o) })
            });
        }
    };
}

#[cfg(target_arch = "x86_64")]
struct Avx512;
#[cfg(target_arch = "x86_64")]
impl Lanes for Avx512 {
    #[inline(always)]
    fn prefetch(p: *const f32) {
        prefetch_row(p.cast());
    }
    type V = std::arch::x86_64::__m512;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm512_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(p, v) }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;
#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    #[inline(always)]
    fn prefetch(p: *const f32) {
        prefetch_row(p.cast());
    }
    type V = std::arch::x86_64::__m256;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm256_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        // SAFETY: see the trait.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(p, v) }
    }
}

/// Plain Rust, four lanes at a time (what the x86_64 baseline's SSE holds), for CPUs without
/// AVX2 and other architectures.
struct Portable;
impl Lanes for Portable {
    type V = [f32; 4];
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        // SAFETY: see the trait.
        unsafe { std::array::from_fn(|l| *p.add(l)) }
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self::V {
        [v; 4]
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] * b[l] + c[l])
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        for (l, x) in v.iter().enumerate() {
            // SAFETY: see the trait.
            unsafe { *p.add(l) = *x };
        }
    }
}

#[cfg(target_arch = "x86_64")]
f32_kernel!(linear_avx512, Avx512, 2, "avx512f", [8, 7, 6, 5, 4, 3, 2, 1]);
#[cfg(target_arch = "x86_64")]
f32_kernel!(linear_avx2, Avx2, 4, "avx2,fma", [3, 2, 1]);
f32_kernel!(linear_portable, Portable, 8, "sse2", [2, 1]);

/// The f32 product on the best instruction set this CPU has.
fn linear_f32(x: &[f32], m: usize, d: &Dense, w: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { linear_avx512(x, m, d, w, y) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { linear_avx2(x, m, d, w, y) };
            return;
        }
    }
    #[allow(unused_unsafe)]
    // SAFETY: SSE2 is part of the x86_64 baseline; elsewhere the function has no target features.
    unsafe {
        linear_portable(x, m, d, w, y)
    };
}

/// The bf16 product (AVX-512 BF16): per input pair, one broadcast of the token's two bf16 values
/// and one `vdpbf16ps` per 16 outputs; tiles of up to 8 tokens.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512 BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn linear_bf16(x: &[u32], m: usize, d: &Dense, w: &[u16], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let n2 = d.inputs.div_ceil(2);
    /// # Safety
    /// As the enclosing function's.
    #[inline(always)]
    unsafe fn tile<const R: usize>(x: &[u32], n2: usize, panel: &[u16], bias: &[f32; NR], out: &mut [[f32; NR]; R]) {
        assert!(x.len() >= R * n2 && panel.len() >= n2 * NR * 2);
        // SAFETY: pointers stay inside `x` (`r * n2 + kk < R * n2`), `panel` (`kk * 64 + 64 <=
        // n2 * NR * 2`), `bias` and `out` (16 lanes at 0 and 16 of `NR = 32`), by the lengths
        // asserted above; the enclosing function has the target features.
        unsafe {
            let mut acc: [[__m512; 2]; R] =
                [[_mm512_loadu_ps(bias.as_ptr()), _mm512_loadu_ps(bias.as_ptr().add(16))]; R];
            let (xp, wp) = (x.as_ptr(), panel.as_ptr());
            for kk in 0..n2 {
                prefetch_row(wp.wrapping_add(kk * 64).cast());
                let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(kk * 64).cast()));
                let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(kk * 64 + 32).cast()));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(*xp.add(r * n2 + kk) as i32));
                    a[0] = _mm512_dpbf16_ps(a[0], xv, w0);
                    a[1] = _mm512_dpbf16_ps(a[1], xv, w1);
                }
            }
            for (a, o) in acc.iter().zip(out.iter_mut()) {
                _mm512_storeu_ps(o.as_mut_ptr(), a[0]);
                _mm512_storeu_ps(o.as_mut_ptr().add(16), a[1]);
            }
        }
    }
    tiles(m, d.outputs, MR, y, |i0, rows, p, out| {
        let (xs, panel, bias) =
            (&x[i0 * n2..(i0 + rows) * n2], &w[p * n2 * NR * 2..(p + 1) * n2 * NR * 2], panel_bias(d, p));
        by_rows!(rows, out, [8, 7, 6, 5, 4, 3, 2, 1], |o| unsafe { tile(xs, n2, panel, &bias, o) })
    });
}

/// The int8 product (AVX-512 VNNI): per four inputs, one broadcast of the token's four bytes and
/// one `vpdpbusd` per 16 outputs into `i32` sums, then `(sum − 128·Σq) · token scale · row scale
/// + bias`; tiles of up to 8 tokens.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn linear_int8(
    x: &[u32],
    token_scale: &[f32],
    m: usize,
    d: &Dense,
    q: &[i8],
    row_scale: &[f32],
    sum: &[i32],
    y: &mut [f32],
) {
    use std::arch::x86_64::*;
    let n4 = d.inputs.div_ceil(4);
    /// # Safety
    /// As the enclosing function's.
    #[inline(always)]
    unsafe fn tile<const R: usize>(x: &[u32], n4: usize, panel: &[i8], out: &mut [[i32; NR]; R]) {
        assert!(x.len() >= R * n4 && panel.len() >= n4 * NR * 4);
        // SAFETY: pointers stay inside `x` (`r * n4 + kq < R * n4`), `panel` (`kq * 128 + 128 <=
        // n4 * NR * 4`) and `out` (16 lanes at 0 and 16 of `NR = 32`), by the lengths asserted
        // above; the enclosing function has the target features.
        unsafe {
            let mut acc: [[__m512i; 2]; R] = [[_mm512_setzero_si512(); 2]; R];
            let (xp, wp) = (x.as_ptr(), panel.as_ptr());
            for kq in 0..n4 {
                prefetch_row(wp.wrapping_add(kq * 128).cast());
                let w0 = _mm512_loadu_si512(wp.add(kq * 128).cast());
                let w1 = _mm512_loadu_si512(wp.add(kq * 128 + 64).cast());
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_epi32(*xp.add(r * n4 + kq) as i32);
                    a[0] = _mm512_dpbusd_epi32(a[0], xv, w0);
                    a[1] = _mm512_dpbusd_epi32(a[1], xv, w1);
                }
            }
            for (a, o) in acc.iter().zip(out.iter_mut()) {
                _mm512_storeu_si512(o.as_mut_ptr().cast(), a[0]);
                _mm512_storeu_si512(o.as_mut_ptr().add(16).cast(), a[1]);
            }
        }
    }
    let o = d.outputs;
    tiles(m, o, MR, y, |i0, rows, p, out| {
        let (xs, panel) = (&x[i0 * n4..(i0 + rows) * n4], &q[p * n4 * NR * 4..(p + 1) * n4 * NR * 4]);
        let mut sums = [[0i32; NR]; MR];
        by_rows!(rows, &mut sums[..rows], [8, 7, 6, 5, 4, 3, 2, 1], |s| unsafe { tile(xs, n4, panel, s) });
        for (r, (res, s)) in out.iter_mut().zip(&sums).enumerate() {
            for (l, (v, acc)) in res.iter_mut().zip(s).enumerate() {
                let j = (p * NR + l).min(o - 1);
                *v = (acc - 128 * sum[j]) as f32 * token_scale[i0 + r] * row_scale[j] + d.b[j];
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], m: usize, w: &[f32], b: &[f32], n: usize) -> Vec<f32> {
        let o = b.len();
        let mut y = vec![0f32; m * o];
        for i in 0..m {
            for j in 0..o {
                let s: f64 = (0..n).map(|k| f64::from(x[i * n + k]) * f64::from(w[j * n + k])).sum();
                y[i * o + j] = (s + f64::from(b[j])) as f32;
            }
        }
        y
    }

    /// Shapes that hit every edge: 1 to 17 tokens (every tile size and a remainder), outputs not a
    /// multiple of the panel, inputs not a multiple of 2, 4 or the vector width.
    const SHAPES: [(usize, usize, usize); 7] =
        [(1, 16, 4), (3, 19, 7), (12, 384, 384), (5, 33, 70), (2, 8, 1), (17, 21, 33), (9, 130, 96)];

    fn case(m: usize, n: usize, o: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = (0..m * n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let w = (0..o * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0).collect();
        let b = (0..o).map(|i| i as f32 / 10.0).collect();
        (x, w, b)
    }

    #[test]
    fn every_f32_kernel_matches_the_plain_product_at_every_shape() {
        for (m, n, o) in SHAPES {
            let (x, w, b) = case(m, n, o);
            let want = naive(&x, m, &w, &b, n);
            let d = Dense::new(w.clone(), b, n, o).unwrap();
            assert_eq!(d.rows(), w, "packing round trip {n}x{o}");
            let Weights::F32(packed) = &d.weights else { unreachable!("Dense::new packs f32") };
            let mut runs: Vec<(&str, Vec<f32>)> = Vec::new();
            let mut y = vec![0f32; m * o];
            d.forward(&x, m, &mut y, &mut Scratch::default());
            runs.push(("dispatched", y));
            let mut y = vec![0f32; m * o];
            // SAFETY: SSE2 is part of the x86_64 baseline.
            #[allow(unused_unsafe)]
            unsafe {
                linear_portable(&x, m, &d, packed, &mut y)
            };
            runs.push(("portable", y));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                let mut y = vec![0f32; m * o];
                // SAFETY: AVX2 and FMA are present, checked just above.
                unsafe { linear_avx2(&x, m, &d, packed, &mut y) };
                runs.push(("avx2", y));
            }
            for (what, got) in &runs {
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{what} {m}x{n}x{o}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn quantised_kernels_stay_near_the_plain_product() {
        for precision in [Precision::Bf16, Precision::Int8] {
            if !precision.supported() {
                eprintln!("note: {precision} kernel not tested: this CPU lacks its instructions");
                continue;
            }
            for (m, n, o) in SHAPES {
                let (x, w, b) = case(m, n, o);
                let want = naive(&x, m, &w, &b, n);
                let d = Dense::new(w, b, n, o).unwrap().to_precision(precision);
                let mut got = vec![0f32; m * o];
                d.forward(&x, m, &mut got, &mut Scratch::default());
                // Error bound: each product's relative error (bf16: 2^-8 per operand; int8: half a
                // step of 1/127 of the row's and the token's largest value) over `n` products.
                let (xmax, wmax) = (2.0f32, 1.2f32);
                let bound = match precision {
                    Precision::Bf16 => 2.0 * (n as f32) * xmax * wmax / 256.0,
                    _ => (n as f32) * xmax * wmax / 127.0,
                };
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= bound, "{precision} {m}x{n}x{o}: {g} vs {w} (bound {bound})");
                }
                let err: f32 = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).sum::<f32>() / got.len() as f32;
                let scale: f32 = want.iter().map(|w| w.abs()).sum::<f32>() / want.len() as f32;
                assert!(err <= 0.02 * scale.max(1.0), "{precision} {m}x{n}x{o}: mean error {err} at scale {scale}");
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties to the even one (1.0).
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert!(f32::from_bits(u32::from(bf16(f32::NAN)) << 16).is_nan());
    }
}
