//! Exact dense search: one contiguous row-major `f32` matrix per guild, dot products, a top-k heap.
//!
//! Large indexes are first scanned over an int8 copy of the matrix (a quarter of the memory
//! traffic, which is what bounds a scan this size), and the best candidates of that pass are
//! re-scored with the `f32` rows, so the scores returned are exact.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{KbError, Result};

/// Row-major matrix of L2-normalised vectors; row `i` is text `i`.
#[derive(Debug, Clone, Default)]
pub struct DenseIndex {
    dim: usize,
    data: Vec<f32>,
    /// Int8 codes of `data`, row-major, and each row's scale (`x ≈ code * scale`).
    codes: Vec<i8>,
    scales: Vec<f32>,
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
            data: Vec::with_capacity(dim * rows),
            codes: Vec::with_capacity(dim * rows),
            scales: Vec::with_capacity(rows),
        }
    }

    /// Appends a vector; its row number is the previous [`DenseIndex::len`].
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(KbError::Dimension { expected: self.dim, got: v.len() });
        }
        self.data.extend_from_slice(v);
        let scale = quantize(v, &mut self.codes);
        self.scales.push(scale);
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s vector.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.data.get(i * self.dim..(i + 1) * self.dim)
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
        Ok(DenseIndex { dim, data, codes, scales })
    }

    /// The stored parts: `f32` rows, their int8 codes and each row's scale.
    pub fn parts(&self) -> (&[f32], &[i8], &[f32]) {
        (&self.data, &self.codes, &self.scales)
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
            scan(Rows::F32(&self.data, query), self.dim, &mut top);
            return Ok(top.into_sorted());
        }
        // Int8 pass over every row, then exact re-scoring of a generous candidate set: int8
        // error on unit vectors is ~1e-3, far below the gap the extra candidates cover.
        let mut q = Vec::with_capacity(self.dim);
        // The query's scale does not change the ranking.
        quantize(query, &mut q);
        let mut coarse = TopK::new((k * 4).max(64));
        scan(Rows::I8(&self.codes, &self.scales, &q), self.dim, &mut coarse);
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
        (self.data.capacity() + self.scales.capacity()) * std::mem::size_of::<f32>() + self.codes.capacity()
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
