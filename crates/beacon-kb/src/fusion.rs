//! Fusion of BM25 and dense rankings.
//!
//! Which method and weights to use is an empirical question (equal-weight RRF is worse than dense
//! alone on the zaragoza FAQ set), so both are configurable and [`FusionConfig::default`] holds the
//! setting chosen on the tuning split by `bench/retrieval` (see BENCHMARKS.md).

use std::collections::HashMap;

/// How the two rankings are combined.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum FusionMethod {
    /// Weighted reciprocal rank fusion: `Σ w / (k + rank)`, ranks from 1.
    Rrf {
        /// RRF's rank offset.
        k: f32,
    },
    /// Weighted sum of min-max normalised scores over each list's candidates.
    MinMax,
    /// Weighted sum of z-scores over each list's candidates.
    ZScore,
}

/// Fusion settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FusionConfig {
    /// The combination method.
    #[serde(flatten)]
    pub method: FusionMethod,
    /// Weight of the dense list in `[0, 1]`; BM25 gets `1 - dense_weight`.
    pub dense_weight: f32,
    /// How many candidates each retriever contributes before fusion.
    pub candidates: usize,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig { method: FusionMethod::ZScore, dense_weight: 0.95, candidates: 100 }
    }
}

/// A fused candidate: its fused score and the raw score from each list it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// Position of the text in the index.
    pub ord: u32,
    /// Fused score (higher is better).
    pub score: f32,
    /// Raw BM25 score, if BM25 returned it.
    pub bm25: Option<f32>,
    /// Raw dense similarity, if known.
    pub dense: Option<f32>,
}

fn normalise(method: FusionMethod, scores: &[f32]) -> Vec<f32> {
    match method {
        FusionMethod::Rrf { k } => (0..scores.len()).map(|r| 1.0 / (k + r as f32 + 1.0)).collect(),
        FusionMethod::MinMax => {
            let max = scores.iter().copied().fold(f32::MIN, f32::max);
            let min = scores.iter().copied().fold(f32::MAX, f32::min);
            let span = max - min;
            scores.iter().map(|s| if span > 0.0 { (s - min) / span } else { 1.0 }).collect()
        }
        FusionMethod::ZScore => {
            let n = scores.len().max(1) as f32;
            let mean = scores.iter().sum::<f32>() / n;
            let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f32>() / n;
            let sd = var.sqrt();
            scores.iter().map(|s| if sd > 0.0 { (s - mean) / sd } else { 0.0 }).collect()
        }
    }
}

/// Fuses two best-first lists of `(ord, raw score)` into one best-first list.
///
/// A candidate missing from a list gets that list's floor (0 for RRF and min-max, the lowest
/// z-score seen for z-scores), so it is never ranked above one the list did return.
pub fn fuse(config: &FusionConfig, bm25: &[(u32, f32)], dense: &[(u32, f32)]) -> Vec<Fused> {
    let wd = config.dense_weight.clamp(0.0, 1.0);
    let wb = 1.0 - wd;
    let nb = normalise(config.method, &bm25.iter().map(|x| x.1).collect::<Vec<_>>());
    let nd = normalise(config.method, &dense.iter().map(|x| x.1).collect::<Vec<_>>());
    let floor = |n: &[f32]| match config.method {
        FusionMethod::ZScore => n.iter().copied().fold(0.0f32, f32::min),
        _ => 0.0,
    };
    let (fb, fd) = (floor(&nb), floor(&nd));
    // Per candidate: (raw, normalised) from BM25 and from dense.
    type Pair = Option<(f32, f32)>;
    let mut by_ord: HashMap<u32, (Pair, Pair)> = HashMap::new();
    for ((ord, raw), n) in bm25.iter().zip(&nb) {
        by_ord.entry(*ord).or_default().0 = Some((*raw, *n));
    }
    for ((ord, raw), n) in dense.iter().zip(&nd) {
        by_ord.entry(*ord).or_default().1 = Some((*raw, *n));
    }
    let mut out: Vec<Fused> = by_ord
        .into_iter()
        .map(|(ord, (b, d))| Fused {
            ord,
            score: wb * b.map_or(fb, |x| x.1) + wd * d.map_or(fd, |x| x.1),
            bm25: b.map(|x| x.0),
            dense: d.map(|x| x.0),
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ord.cmp(&b.ord)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: FusionMethod, dense_weight: f32) -> FusionConfig {
        FusionConfig { method, dense_weight, candidates: 10 }
    }

    #[test]
    fn rrf_by_hand() {
        // bm25: 1, 2 ; dense: 2, 3. With k = 60 and equal weights:
        // 1: 0.5/61; 2: 0.5/62 + 0.5/61; 3: 0.5/62.
        let out = fuse(&cfg(FusionMethod::Rrf { k: 60.0 }, 0.5), &[(1, 9.0), (2, 3.0)], &[(2, 0.8), (3, 0.7)]);
        let ords: Vec<u32> = out.iter().map(|f| f.ord).collect();
        assert_eq!(ords, vec![2, 1, 3]);
        assert!((out[0].score - (0.5 / 62.0 + 0.5 / 61.0)).abs() < 1e-7);
        assert!((out[1].score - 0.5 / 61.0).abs() < 1e-7);
        assert_eq!(out[0].bm25, Some(3.0));
        assert_eq!(out[0].dense, Some(0.8));
        assert_eq!(out[2].bm25, None);
    }

    #[test]
    fn min_max_by_hand() {
        // bm25 normalised: 1 -> 1, 2 -> 0.5, 3 -> 0; dense: 3 -> 1, 1 -> 0.
        let out = fuse(&cfg(FusionMethod::MinMax, 0.75), &[(1, 10.0), (2, 6.0), (3, 2.0)], &[(3, 0.9), (1, 0.5)]);
        let got: Vec<(u32, f32)> = out.iter().map(|f| (f.ord, f.score)).collect();
        assert_eq!(got[0].0, 3);
        assert!((got[0].1 - 0.75).abs() < 1e-6);
        assert_eq!(got[1].0, 1);
        assert!((got[1].1 - 0.25).abs() < 1e-6);
        assert_eq!(got[2].0, 2);
        assert!((got[2].1 - 0.125).abs() < 1e-6);
    }

    #[test]
    fn weights_at_the_extremes_follow_one_list() {
        let bm25 = [(1, 5.0), (2, 4.0), (3, 3.0)];
        let dense = [(3, 0.9), (2, 0.8), (1, 0.7)];
        for method in [FusionMethod::MinMax, FusionMethod::ZScore, FusionMethod::Rrf { k: 60.0 }] {
            let d: Vec<u32> = fuse(&cfg(method, 1.0), &bm25, &dense).iter().map(|f| f.ord).collect();
            assert_eq!(d, vec![3, 2, 1], "{method:?}");
            let b: Vec<u32> = fuse(&cfg(method, 0.0), &bm25, &dense).iter().map(|f| f.ord).collect();
            assert_eq!(b, vec![1, 2, 3], "{method:?}");
        }
    }

    #[test]
    fn z_score_missing_gets_floor() {
        let out = fuse(&cfg(FusionMethod::ZScore, 0.5), &[(1, 3.0), (2, 1.0)], &[(3, 0.5)]);
        // 3 is only in dense (z = 0 for a single value), bm25 floor is -1 → -0.5.
        let three = out.iter().find(|f| f.ord == 3).unwrap();
        assert!((three.score + 0.5).abs() < 1e-6);
    }
}
