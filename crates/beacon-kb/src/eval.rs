//! Retrieval evaluation on BEIR-style folders: `corpus.jsonl` (`_id`, `title`, `text`),
//! `queries.jsonl` (`_id`, `text`) and `qrels.tsv` (`query-id`, `corpus-id`, `score`, with or
//! without a header; a `qrels/test.tsv` layout is accepted too).
//!
//! Chunks are scored for their source document: a document's rank is the rank of its best chunk.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::chunk::{ChunkerConfig, chunk_markdown};
use crate::embed::Embedder;
use crate::error::{KbError, Result};
use crate::fusion::FusionConfig;
use crate::rerank::{Rerank, rerank_hits};
use crate::retriever::{GuildIndex, Hit, IndexedChunk, search_text};

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BeirDoc {
    /// Document id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Title (may be empty).
    #[serde(default)]
    pub title: String,
    /// Body.
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BeirQuery {
    /// Query id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Query text.
    pub text: String,
}

/// A loaded BEIR folder.
#[derive(Debug, Clone, Default)]
pub struct BeirSet {
    /// Corpus documents.
    pub corpus: Vec<BeirDoc>,
    /// Queries, in file order.
    pub queries: Vec<BeirQuery>,
    /// Relevance: query id → document id → grade (> 0 only).
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| KbError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| KbError::Data(format!("{}:{}: {e}", path.display(), i + 1))))
        .collect()
}

fn parse_qrels(text: &str, path: &Path) -> Result<HashMap<String, HashMap<String, u32>>> {
    let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (i == 0 && cols.first() == Some(&"query-id")) {
            continue;
        }
        // BEIR has 3 columns; TREC qrels have 4 (query, iteration, doc, grade).
        let (q, d, g) = match cols.as_slice() {
            [q, d, g] => (*q, *d, *g),
            [q, _, d, g] => (*q, *d, *g),
            _ => {
                return Err(KbError::Data(format!(
                    "{}:{}: expected query-id, corpus-id, score",
                    path.display(),
                    i + 1
                )));
            }
        };
        let grade: f64 =
            g.parse().map_err(|_| KbError::Data(format!("{}:{}: bad score {g:?}", path.display(), i + 1)))?;
        if grade > 0.0 {
            out.entry(q.to_string()).or_default().insert(d.to_string(), grade.round() as u32);
        }
    }
    Ok(out)
}

impl BeirSet {
    /// Loads a BEIR folder.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let corpus = read_jsonl(&dir.join("corpus.jsonl"))?;
        let queries = read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels_path: PathBuf = [dir.join("qrels.tsv"), dir.join("qrels").join("test.tsv")]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| KbError::Data(format!("{}: no qrels.tsv", dir.display())))?;
        let text = std::fs::read_to_string(&qrels_path).map_err(|e| KbError::io(&qrels_path, e))?;
        let qrels = parse_qrels(&text, &qrels_path)?;
        Ok(BeirSet { corpus, queries, qrels })
    }

    /// Queries that have at least one relevant document.
    pub fn judged_queries(&self) -> Vec<&BeirQuery> {
        self.queries.iter().filter(|q| self.qrels.get(&q.id).is_some_and(|r| !r.is_empty())).collect()
    }
}

/// Evaluation settings.
#[derive(Clone, Default)]
pub struct EvalOptions {
    /// Chunk sizes used to index the corpus.
    pub chunker: ChunkerConfig,
    /// Fusion settings.
    pub fusion: FusionConfig,
    /// Embedding model; `None` evaluates BM25 alone.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Only these query ids (e.g. a held-out split); `None` means all judged queries.
    pub query_ids: Option<HashSet<String>>,
    /// A second stage reordering the first `usize` fused candidates of every query.
    pub reranker: Option<(Arc<dyn Rerank>, usize)>,
}

/// Retrieval quality and latency. Quality is averaged over judged queries; latency excludes the
/// query embedding, which is reported apart.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct EvalReport {
    /// Share of queries whose first result is relevant: the passage an extractive answer quotes.
    pub hit_at_1: f64,
    /// Share of queries with a relevant document in the top 5.
    pub hit_at_5: f64,
    /// Mean share of relevant documents found in the top 5.
    pub recall_at_5: f64,
    /// Mean reciprocal rank of the first relevant document within the top 10.
    pub mrr_at_10: f64,
    /// Mean nDCG at 10 (linear gains, as trec_eval).
    pub ndcg_at_10: f64,
    /// Median search time per query, ms, without the query embedding.
    pub query_p50_ms: f64,
    /// 99th percentile search time per query, ms, without the query embedding.
    pub query_p99_ms: f64,
    /// Median query-embedding time, ms (0 without a model).
    pub embed_p50_ms: f64,
    /// Median reranking time per query, ms (0 without a reranker); included in `query_p50_ms`.
    pub rerank_p50_ms: f64,
    /// Number of queries scored.
    pub queries: usize,
    /// Number of chunks indexed.
    pub chunks: usize,
}

/// Quality of one ranked list of document ids against graded relevance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueryScores {
    /// 1 if the first document is relevant.
    pub hit_at_1: f64,
    /// 1 if a relevant document is in the top 5.
    pub hit_at_5: f64,
    /// Relevant documents in the top 5 over all relevant documents.
    pub recall_at_5: f64,
    /// 1 / rank of the first relevant document in the top 10, else 0.
    pub rr_at_10: f64,
    /// nDCG at 10.
    pub ndcg_at_10: f64,
}

/// Scores a best-first list of distinct document ids.
pub fn score_ranking(ranked: &[&str], relevant: &HashMap<String, u32>) -> QueryScores {
    let rel = |d: &str| relevant.get(d).copied().unwrap_or(0);
    let total = relevant.values().filter(|g| **g > 0).count();
    if total == 0 {
        return QueryScores::default();
    }
    let top5 = &ranked[..ranked.len().min(5)];
    let found5 = top5.iter().filter(|d| rel(d) > 0).count();
    let rr = ranked.iter().take(10).position(|d| rel(d) > 0).map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
    let dcg: f64 = ranked.iter().take(10).enumerate().map(|(i, d)| rel(d) as f64 / (i as f64 + 2.0).log2()).sum();
    let mut ideal: Vec<u32> = relevant.values().copied().filter(|g| *g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(10).enumerate().map(|(i, g)| *g as f64 / (i as f64 + 2.0).log2()).sum();
    QueryScores {
        hit_at_1: if ranked.first().is_some_and(|d| rel(d) > 0) { 1.0 } else { 0.0 },
        hit_at_5: if found5 > 0 { 1.0 } else { 0.0 },
        recall_at_5: found5 as f64 / total as f64,
        rr_at_10: rr,
        ndcg_at_10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
    }
}

/// The `q`-quantile (0..=1) of `values` by nearest rank.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Collapses chunk hits to distinct document keys, keeping the first (best) occurrence.
pub fn documents_in_order<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    keys.into_iter().filter(|k| seen.insert(*k)).collect()
}

/// A corpus chunked, embedded and indexed once, with its query vectors, ready to score under
/// different fusion settings.
pub struct PreparedEval {
    set: BeirSet,
    index: GuildIndex,
    query_vectors: HashMap<String, Vec<f32>>,
    embed_ms: Vec<f64>,
    reranker: Option<(Arc<dyn Rerank>, usize)>,
}

/// Chunks BEIR documents as the knowledge base would (document key = `_id`).
pub fn chunk_corpus(corpus: &[BeirDoc], chunker: &ChunkerConfig) -> Vec<IndexedChunk> {
    let mut out = Vec::new();
    for (doc_no, doc) in corpus.iter().enumerate() {
        for c in chunk_markdown(&doc.text, chunker) {
            out.push(IndexedChunk {
                chunk_id: out.len() as i64,
                document_id: doc_no as i64,
                document_key: doc.id.clone(),
                title: doc.title.clone(),
                heading_path: c.heading_path,
                text: c.text,
                embedding: None,
            });
        }
    }
    out
}

impl PreparedEval {
    /// Chunks, embeds (when `options.embedder` is set) and indexes the corpus, and embeds the queries.
    pub fn new(set: BeirSet, options: &EvalOptions) -> Result<Self> {
        let mut chunks = chunk_corpus(&set.corpus, &options.chunker);
        let mut query_vectors = HashMap::new();
        let mut embed_ms = Vec::new();
        if let Some(e) = &options.embedder {
            let texts: Vec<String> = chunks.iter().map(|c| search_text(&c.title, &c.heading_path, &c.text)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            for (c, v) in chunks.iter_mut().zip(e.embed_documents(&refs)?) {
                c.embedding = Some(v);
            }
            for q in set.judged_queries() {
                let t = Instant::now();
                let v = e.embed_query(&q.text)?;
                embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
                query_vectors.insert(q.id.clone(), v);
            }
        }
        let index = GuildIndex::build(chunks)?;
        Ok(PreparedEval { set, index, query_vectors, embed_ms, reranker: options.reranker.clone() })
    }

    /// Searches the prepared corpus with any text (for example out-of-corpus questions when
    /// measuring abstention), embedding it with `embedder` when the index has vectors.
    pub fn search_any(
        &self,
        fusion: &FusionConfig,
        text: &str,
        embedder: Option<&Arc<dyn Embedder>>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        let vector = match embedder {
            Some(e) if self.index.dense_dim().is_some() => Some(e.embed_query(text)?),
            _ => None,
        };
        self.search_vector(fusion, text, vector.as_deref(), k).map(|(hits, _)| hits)
    }

    /// Fused search, then the reranker when there is one; returns the hits and the reranking time
    /// in ms.
    fn search_vector(
        &self,
        fusion: &FusionConfig,
        text: &str,
        vector: Option<&[f32]>,
        k: usize,
    ) -> Result<(Vec<Hit>, f64)> {
        let Some((reranker, depth)) = &self.reranker else {
            return Ok((self.index.search(fusion, text, vector, k)?, 0.0));
        };
        let mut hits = self.index.search(fusion, text, vector, k.max(*depth))?;
        let t = Instant::now();
        rerank_hits(reranker.as_ref(), text, &mut hits, *depth)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        hits.truncate(k);
        Ok((hits, ms))
    }

    /// The loaded set.
    pub fn set(&self) -> &BeirSet {
        &self.set
    }

    /// Scores retrieval under `fusion` on the judged queries (restricted to `query_ids` if given).
    pub fn evaluate(&self, fusion: &FusionConfig, query_ids: Option<&HashSet<String>>) -> Result<EvalReport> {
        let mut sums = QueryScores::default();
        let mut times = Vec::new();
        let mut rerank_times = Vec::new();
        let mut n = 0usize;
        for q in self.set.judged_queries() {
            if query_ids.is_some_and(|ids| !ids.contains(&q.id)) {
                continue;
            }
            let Some(relevant) = self.set.qrels.get(&q.id) else {
                continue;
            };
            let v = self.query_vectors.get(&q.id).map(Vec::as_slice);
            let t = Instant::now();
            // Enough chunks that ten distinct documents survive collapsing.
            let (hits, rerank_ms) = self.search_vector(fusion, &q.text, v, 50)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            rerank_times.push(rerank_ms);
            let docs = documents_in_order(hits.iter().map(|h| h.document_key.as_str()));
            let s = score_ranking(&docs, relevant);
            sums.hit_at_1 += s.hit_at_1;
            sums.hit_at_5 += s.hit_at_5;
            sums.recall_at_5 += s.recall_at_5;
            sums.rr_at_10 += s.rr_at_10;
            sums.ndcg_at_10 += s.ndcg_at_10;
            n += 1;
        }
        let d = n.max(1) as f64;
        Ok(EvalReport {
            hit_at_1: sums.hit_at_1 / d,
            hit_at_5: sums.hit_at_5 / d,
            recall_at_5: sums.recall_at_5 / d,
            mrr_at_10: sums.rr_at_10 / d,
            ndcg_at_10: sums.ndcg_at_10 / d,
            query_p50_ms: percentile(&times, 0.5),
            query_p99_ms: percentile(&times, 0.99),
            embed_p50_ms: percentile(&self.embed_ms, 0.5),
            rerank_p50_ms: percentile(&rerank_times, 0.5),
            queries: n,
            chunks: self.index.len(),
        })
    }
}

/// Indexes a BEIR folder's corpus into a scratch (in-memory) guild and scores retrieval.
pub fn eval_beir(dir: impl AsRef<Path>, options: &EvalOptions) -> Result<EvalReport> {
    let set = BeirSet::load(dir)?;
    let prepared = PreparedEval::new(set, options)?;
    prepared.evaluate(&options.fusion, options.query_ids.as_ref())
}

/// Splits query ids deterministically into (tuning, held-out) halves by a hash of the id, so the
/// split does not depend on file order.
pub fn split_queries(ids: &[&str], held_out_share: f64) -> (HashSet<String>, HashSet<String>) {
    use sha2::{Digest, Sha256};
    let mut tune = HashSet::new();
    let mut held = HashSet::new();
    for id in ids {
        let h = Sha256::digest(id.as_bytes());
        let x = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as f64 / u32::MAX as f64;
        if x < held_out_share {
            held.insert((*id).to_string());
        } else {
            tune.insert((*id).to_string());
        }
    }
    (tune, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    #[test]
    fn metrics_single_relevant_document() {
        let r = rel(&[("d3", 1)]);
        // Relevant at rank 3.
        let s = score_ranking(&["d1", "d2", "d3", "d4"], &r);
        assert_eq!(s.hit_at_1, 0.0);
        assert_eq!(s.hit_at_5, 1.0);
        assert_eq!(s.recall_at_5, 1.0);
        assert!((s.rr_at_10 - 1.0 / 3.0).abs() < 1e-12);
        // DCG = 1/log2(4) = 0.5, IDCG = 1.
        assert!((s.ndcg_at_10 - 0.5).abs() < 1e-12);
        // Relevant at rank 6: no hit@5, but MRR@10 and nDCG@10 count it.
        let s = score_ranking(&["a", "b", "c", "d", "e", "d3"], &r);
        assert_eq!(s.hit_at_5, 0.0);
        assert_eq!(s.recall_at_5, 0.0);
        assert!((s.rr_at_10 - 1.0 / 6.0).abs() < 1e-12);
        assert!((s.ndcg_at_10 - 1.0 / 7f64.log2()).abs() < 1e-12);
        // Rank 11 counts for nothing.
        let far: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
        let mut ranked: Vec<&str> = far.iter().map(String::as_str).collect();
        ranked.push("d3");
        assert_eq!(score_ranking(&ranked, &r), QueryScores::default());
    }

    #[test]
    fn metrics_graded_multiple_relevant() {
        let r = rel(&[("a", 2), ("b", 1), ("c", 1)]);
        let s = score_ranking(&["b", "x", "a", "y", "z", "c"], &r);
        assert_eq!(s.hit_at_1, 1.0);
        assert_eq!(s.hit_at_5, 1.0);
        assert!((s.recall_at_5 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.rr_at_10, 1.0);
        // DCG = 1/1 + 2/log2(4) + 1/log2(7); IDCG = 2/1 + 1/log2(3) + 1/log2(4).
        let dcg = 1.0 + 2.0 / 2.0 + 1.0 / 7f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((s.ndcg_at_10 - dcg / idcg).abs() < 1e-12);
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn chunks_collapse_to_documents() {
        assert_eq!(documents_in_order(["a", "b", "a", "c", "b"]), vec!["a", "b", "c"]);
    }

    #[test]
    fn qrels_with_and_without_header() {
        let p = Path::new("q.tsv");
        let a = parse_qrels("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n", p).unwrap();
        assert_eq!(a["q1"].len(), 1);
        let b = parse_qrels("q1\t0\td1\t2\n", p).unwrap();
        assert_eq!(b["q1"]["d1"], 2);
        assert!(parse_qrels("q1 d1\n", p).is_err());
    }

    #[test]
    fn split_is_deterministic_and_disjoint() {
        let ids: Vec<String> = (0..1000).map(|i| format!("q{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (t1, h1) = split_queries(&refs, 0.5);
        let (t2, h2) = split_queries(&refs, 0.5);
        assert_eq!((t1.clone(), h1.clone()), (t2, h2));
        assert!(t1.is_disjoint(&h1));
        assert_eq!(t1.len() + h1.len(), 1000);
        assert!(h1.len() > 400 && h1.len() < 600);
    }
}
