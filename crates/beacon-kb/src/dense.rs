//! Exact dense search: one contiguous row-major `f32` matrix per guild, dot products, a top-k heap.
//!
//! Large indexes are first scanned over an int8 copy of the matrix (a quarter of the memory
//! traffic, which is what bounds a scan this size), and the best candidates of that pass are
//! re-scored with the `f32` rows, so the scores returned are exact.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tantivy::directory::OwnedBytes;

use crate::error::{KbError, Result};

/// `f32` values, owned or read in place from a loaded index file's bytes (no copy).
#[derive(Debug, Clone)]
enum F32s {
    Owned(Vec<f32>),
    /// Little-endian `f32`s, aligned for `f32` (checked by [`F32s::from_le_bytes`]).
    Shared(OwnedBytes),
}

impl F32s {
    /// Views `bytes` as `f32`s in place when the target is little-endian and they are aligned;
    /// otherwise converts them.
    fn from_le_bytes(bytes: OwnedBytes) -> Result<Self> {
        if !bytes.len().is_multiple_of(4) {
            return Err(KbError::Index(format!("{} bytes of f32", bytes.len())));
        }
        if cfg!(target_endian = "little") && (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>()) {
            return Ok(F32s::Shared(bytes));
        }
        Ok(F32s::Owned(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }

    #[inline]
    #[allow(unsafe_code)]
    fn as_slice(&self) -> &[f32] {
        match self {
            F32s::Owned(v) => v,
            // SAFETY: `from_le_bytes` admits only aligned bytes of a length divisible by 4 on a
            // little-endian target, every bit pattern is a valid f32, and `OwnedBytes` keeps the
            // (immutable) bytes alive as long as `self`.
            F32s::Shared(b) => unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) },
        }
    }

    /// The values as a vector to append to (copied once if they were shared).
    fn owned(&mut self) -> &mut Vec<f32> {
        if let F32s::Shared(_) = self {
            *self = F32s::Owned(self.as_slice().to_vec());
        }
        match self {
            F32s::Owned(v) => v,
            F32s::Shared(_) => unreachable!("made owned just above"),
        }
    }
}

/// Int8 codes, owned or read in place from a loaded index file's bytes.
#[derive(Debug, Clone)]
enum I8s {
    Owned(Vec<i8>),
    Shared(OwnedBytes),
}

impl I8s {
    #[inline]
    #[allow(unsafe_code)]
    fn as_slice(&self) -> &[i8] {
        match self {
            I8s::Owned(v) => v,
            // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid.
            I8s::Shared(b) => unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) },
        }
    }

    fn owned(&mut self) -> &mut Vec<i8> {
        if let I8s::Shared(_) = self {
            *self = I8s::Owned(self.as_slice().to_vec());
        }
        match self {
            I8s::Owned(v) => v,
            I8s::Shared(_) => unreachable!("made owned just above"),
        }
    }
}

/// Row-major matrix of L2-normalised vectors; row `i` is text `i`.
#[derive(Debug, Clone)]
pub struct DenseIndex {
    dim: usize,
    data: F32s,
    /// Int8 codes of `data`, row-major, and each row's scale (`x ≈ code * scale`).
    codes: I8s,
    scales: Vec<f32>,
}

impl Default for DenseIndex {
    fn default() -> Self {
        DenseIndex { dim: 0, data: F32s::Owned(Vec::new()), codes: I8s::Owned(Vec::new()), scales: Vec::new() }
    }
}

/// Below this many rows the `f32` scan is cheap enough on its own.
const QUANTIZED_MIN_ROWS: usize = 4096;

/// Quantises a vector to int8 with one scale; returns the scale.
fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

/// Integer dot product with independent lanes so the compiler vectorises it.
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let mut acc = [0i32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let tail: i32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += i32::from(x[l]) * i32::from(y[l]);
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// Keeps the `k` best `(row, score)` pairs seen.
struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    #[inline(always)]
    fn offer(&mut self, row: u32, score: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Scored(score, row));
        } else if self.heap.peek().is_some_and(|w| score > w.0) {
            self.heap.pop();
            self.heap.push(Scored(score, row));
        }
    }

    fn into_sorted(self) -> Vec<(u32, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|s| (s.1, s.0)).collect()
    }
}

/// Dot product with independent lanes so the compiler vectorises it.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// What a scan runs over: `f32` rows and the query, or int8 rows, their scales and the int8 query.
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32(&'a [f32], &'a [f32]),
    I8(&'a [i8], &'a [f32], &'a [i8]),
}

/// Offers every row's score to `top`. The loop is compiled twice: for the baseline target and,
/// chosen at run time, with AVX2 (twice the lanes; most x86_64 servers have it), since release
/// builds target the x86_64 baseline.
#[allow(unsafe_code)]
fn scan(rows: Rows<'_>, dim: usize, top: &mut TopK) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { scan_avx2(rows, dim, top) };
        return;
    }
    scan_generic(rows, dim, top);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(rows: Rows<'_>, dim: usize, top: &mut TopK) {
    scan_generic(rows, dim, top);
}

#[inline(always)]
fn scan_generic(rows: Rows<'_>, dim: usize, top: &mut TopK) {
    match rows {
        Rows::F32(data, q) => {
            for (i, row) in data.chunks_exact(dim).enumerate() {
                top.offer(i as u32, dot(row, q));
            }
        }
        Rows::I8(codes, scales, q) => {
            for (i, (row, scale)) in codes.chunks_exact(dim).zip(scales).enumerate() {
                top.offer(i as u32, dot_i8(row, q) as f32 * scale);
            }
        }
    }
}

#[derive(PartialEq)]
struct Scored(f32, u32);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    // Reversed so that BinaryHeap's top is the worst kept score; ties keep the lower row.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl DenseIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        DenseIndex { dim, ..DenseIndex::default() }
    }

    /// An empty index with room for `rows` vectors.
    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        DenseIndex {
            dim,
            data: F32s::Owned(Vec::with_capacity(dim * rows)),
            codes: I8s::Owned(Vec::with_capacity(dim * rows)),
            scales: Vec::with_capacity(rows),
        }
    }

    /// Appends a vector; its row number is the previous [`DenseIndex::len`].
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(KbError::Dimension { expected: self.dim, got: v.len() });
        }
        self.data.owned().extend_from_slice(v);
        let scale = quantize(v, self.codes.owned());
        self.scales.push(scale);
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.as_slice().len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s vector.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.data.as_slice().get(i * self.dim..(i + 1) * self.dim)
    }

    /// Similarity of row `i` to `query` (cosine for normalised vectors).
    pub fn score(&self, i: usize, query: &[f32]) -> Option<f32> {
        self.row(i).map(|r| dot(r, query))
    }

    /// Reassembles an index from its stored parts ([`DenseIndex::parts`]), checking their sizes.
    pub fn from_parts(dim: usize, data: Vec<f32>, codes: Vec<i8>, scales: Vec<f32>) -> Result<Self> {
        let rows = scales.len();
        if dim == 0 || data.len() != rows * dim || codes.len() != rows * dim {
            return Err(KbError::Index(format!(
                "dense index parts disagree: dim {dim}, {} floats, {} codes, {rows} rows",
                data.len(),
                codes.len()
            )));
        }
        Ok(DenseIndex { dim, data: F32s::Owned(data), codes: I8s::Owned(codes), scales })
    }

    /// Like [`DenseIndex::from_parts`] over a loaded index file's bytes: little-endian `f32` rows
    /// and int8 codes, used in place (a fresh process then copies nothing).
    pub(crate) fn from_shared_parts(dim: usize, data: OwnedBytes, codes: OwnedBytes, scales: Vec<f32>) -> Result<Self> {
        let data = F32s::from_le_bytes(data)?;
        let rows = scales.len();
        let (n_data, n_codes) = (data.as_slice().len(), codes.len());
        if dim == 0 || Some(n_data) != rows.checked_mul(dim) || n_codes != n_data {
            return Err(KbError::Index(format!(
                "dense index parts disagree: dim {dim}, {n_data} floats, {n_codes} codes, {rows} rows"
            )));
        }
        Ok(DenseIndex { dim, data, codes: I8s::Shared(codes), scales })
    }

    /// The stored parts: `f32` rows, their int8 codes and each row's scale.
    pub fn parts(&self) -> (&[f32], &[i8], &[f32]) {
        (self.data.as_slice(), self.codes.as_slice(), &self.scales)
    }

    /// The `k` rows most similar to `query` as `(row, score)`, best first. Exact.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u32, f32)>> {
        if query.len() != self.dim {
            return Err(KbError::Dimension { expected: self.dim, got: query.len() });
        }
        if k == 0 || self.dim == 0 {
            return Ok(Vec::new());
        }
        if self.len() < QUANTIZED_MIN_ROWS {
            let mut top = TopK::new(k);
            scan(Rows::F32(self.data.as_slice(), query), self.dim, &mut top);
            return Ok(top.into_sorted());
        }
        // Int8 pass over every row, then exact re-scoring of a generous candidate set: int8
        // error on unit vectors is ~1e-3, far below the gap the extra candidates cover.
        let mut q = Vec::with_capacity(self.dim);
        // The query's scale does not change the ranking.
        quantize(query, &mut q);
        let mut coarse = TopK::new((k * 4).max(64));
        scan(Rows::I8(self.codes.as_slice(), &self.scales, &q), self.dim, &mut coarse);
        let mut top = TopK::new(k);
        for (i, _) in coarse.into_sorted() {
            if let Some(s) = self.score(i as usize, query) {
                top.offer(i, s);
            }
        }
        Ok(top.into_sorted())
    }

    /// Approximate bytes held.
    pub fn heap_bytes(&self) -> usize {
        // Shared parts live in the loaded file's bytes, not in this index's allocations.
        let data = match &self.data {
            F32s::Owned(v) => v.capacity(),
            F32s::Shared(_) => 0,
        };
        let codes = match &self.codes {
            I8s::Owned(v) => v.capacity(),
            I8s::Shared(_) => 0,
        };
        (data + self.scales.capacity()) * std::mem::size_of::<f32>() + codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(idx: &DenseIndex, q: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<(u32, f32)> = (0..idx.len()).map(|i| (i as u32, idx.score(i, q).unwrap())).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.into_iter().take(k).map(|x| x.0).collect()
    }

    #[test]
    fn dot_matches_naive_for_odd_lengths() {
        for n in [0, 1, 15, 16, 17, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn top_k_equals_brute_force() {
        let dim = 24;
        let mut idx = DenseIndex::new(dim);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
            idx.push(&v).unwrap();
        }
        for _ in 0..20 {
            let q: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
            let got: Vec<u32> = idx.search(&q, 7).unwrap().into_iter().map(|x| x.0).collect();
            assert_eq!(got, brute(&idx, &q, 7));
        }
        assert_eq!(idx.search(&vec![0.0; dim], 1000).unwrap().len(), 500);
    }

    #[test]
    fn quantized_search_returns_the_exact_top_k() {
        let dim = 384;
        let mut rng = fastrand::Rng::with_seed(11);
        let mut unit = || {
            let v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let mut idx = DenseIndex::new(dim);
        for _ in 0..QUANTIZED_MIN_ROWS + 500 {
            idx.push(&unit()).unwrap();
        }
        for _ in 0..20 {
            let q = unit();
            let got = idx.search(&q, 10).unwrap();
            let ids: Vec<u32> = got.iter().map(|x| x.0).collect();
            assert_eq!(ids, brute(&idx, &q, 10));
            // Scores are the exact f32 ones.
            for (i, s) in got {
                assert_eq!(s, idx.score(i as usize, &q).unwrap());
            }
        }
    }

    #[test]
    fn int8_dot_matches_naive() {
        let a: Vec<i8> = (0..70).map(|i| (i * 37 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..70).map(|i| (i * 11 % 255 - 127) as i8).collect();
        let naive: i32 = a.iter().zip(&b).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
        assert_eq!(dot_i8(&a, &b), naive);
    }

    #[test]
    fn parts_round_trip_and_are_checked() {
        let mut idx = DenseIndex::new(4);
        idx.push(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        idx.push(&[0.0, 0.6, 0.8, 0.0]).unwrap();
        let (d, c, s) = idx.parts();
        let back = DenseIndex::from_parts(4, d.to_vec(), c.to_vec(), s.to_vec()).unwrap();
        assert_eq!(back.search(&[0.0, 0.0, 1.0, 0.0], 2).unwrap(), idx.search(&[0.0, 0.0, 1.0, 0.0], 2).unwrap());
        assert!(DenseIndex::from_parts(4, d[..4].to_vec(), c.to_vec(), s.to_vec()).is_err());
        assert!(DenseIndex::from_parts(4, d.to_vec(), c[..7].to_vec(), s.to_vec()).is_err());
        assert!(DenseIndex::from_parts(0, Vec::new(), Vec::new(), Vec::new()).is_err());

        // The same parts as little-endian bytes, used in place; misaligned bytes are copied.
        let le: Vec<u8> = d.iter().flat_map(|x| x.to_le_bytes()).collect();
        let codes = OwnedBytes::new(c.iter().map(|x| *x as u8).collect::<Vec<u8>>());
        let q = [0.0, 0.0, 1.0, 0.0];
        for skew in [0, 1] {
            let mut buf = vec![0u8; skew];
            buf.extend_from_slice(&le);
            let bytes = OwnedBytes::new(buf).slice(skew..skew + le.len());
            let mut shared = DenseIndex::from_shared_parts(4, bytes, codes.clone(), s.to_vec()).unwrap();
            assert_eq!(shared.parts(), idx.parts());
            assert_eq!(shared.search(&q, 2).unwrap(), idx.search(&q, 2).unwrap());
            // Appending to a loaded index works on its own copy.
            shared.push(&[0.0, 0.0, 0.0, 1.0]).unwrap();
            assert_eq!(shared.len(), 3);
        }
        let short = OwnedBytes::new(le[..le.len() - 4].to_vec());
        assert!(DenseIndex::from_shared_parts(4, short, codes.clone(), s.to_vec()).is_err());
        assert!(DenseIndex::from_shared_parts(4, OwnedBytes::new(le[..7].to_vec()), codes, s.to_vec()).is_err());
    }

    #[test]
    fn baseline_and_dispatched_scans_agree() {
        let dim = 40;
        let mut rng = fastrand::Rng::with_seed(3);
        let data: Vec<f32> = (0..dim * 300).map(|_| rng.f32() - 0.5).collect();
        let q: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
        let mut codes = Vec::new();
        let scales: Vec<f32> = data.chunks_exact(dim).map(|r| quantize(r, &mut codes)).collect();
        let mut qc = Vec::new();
        quantize(&q, &mut qc);
        for rows in [Rows::F32(&data, &q), Rows::I8(&codes, &scales, &qc)] {
            let (mut a, mut b) = (TopK::new(9), TopK::new(9));
            scan(rows, dim, &mut a);
            scan_generic(rows, dim, &mut b);
            let (a, b) = (a.into_sorted(), b.into_sorted());
            assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), b.iter().map(|x| x.0).collect::<Vec<_>>());
            assert!(a.iter().zip(&b).all(|(x, y)| (x.1 - y.1).abs() < 1e-5));
        }
    }

    #[test]
    fn rejects_wrong_dimensions() {
        let mut idx = DenseIndex::new(3);
        assert!(idx.push(&[1.0, 2.0]).is_err());
        idx.push(&[1.0, 0.0, 0.0]).unwrap();
        assert!(idx.search(&[1.0], 1).is_err());
        assert_eq!(idx.search(&[1.0, 0.0, 0.0], 1).unwrap(), vec![(0, 1.0)]);
    }
}
