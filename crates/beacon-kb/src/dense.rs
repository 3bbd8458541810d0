//! Exact dense search: one contiguous row-major `f32` matrix per guild, dot products, a top-k heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{KbError, Result};

/// Row-major matrix of L2-normalised vectors; row `i` is text `i`.
#[derive(Debug, Clone, Default)]
pub struct DenseIndex {
    dim: usize,
    data: Vec<f32>,
}

/// Dot product with independent lanes so the compiler vectorises it.
#[inline]
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
        DenseIndex { dim, data: Vec::new() }
    }

    /// An empty index with room for `rows` vectors.
    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        DenseIndex { dim, data: Vec::with_capacity(dim * rows) }
    }

    /// Appends a vector; its row number is the previous [`DenseIndex::len`].
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(KbError::Dimension { expected: self.dim, got: v.len() });
        }
        self.data.extend_from_slice(v);
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

    /// The `k` rows most similar to `query` as `(row, score)`, best first. Exact.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u32, f32)>> {
        if query.len() != self.dim {
            return Err(KbError::Dimension { expected: self.dim, got: query.len() });
        }
        if k == 0 || self.dim == 0 {
            return Ok(Vec::new());
        }
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (i, row) in self.data.chunks_exact(self.dim).enumerate() {
            let s = dot(row, query);
            if heap.len() < k {
                heap.push(Scored(s, i as u32));
            } else if heap.peek().is_some_and(|w| s > w.0) {
                heap.pop();
                heap.push(Scored(s, i as u32));
            }
        }
        Ok(heap.into_sorted_vec().into_iter().map(|s| (s.1, s.0)).collect())
    }

    /// Approximate bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * std::mem::size_of::<f32>()
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
    fn rejects_wrong_dimensions() {
        let mut idx = DenseIndex::new(3);
        assert!(idx.push(&[1.0, 2.0]).is_err());
        idx.push(&[1.0, 0.0, 0.0]).unwrap();
        assert!(idx.search(&[1.0], 1).is_err());
        assert_eq!(idx.search(&[1.0, 0.0, 0.0], 1).unwrap(), vec![(0, 1.0)]);
    }
}
