//! Per-guild search indexes and hybrid retrieval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tantivy::directory::OwnedBytes;

use crate::bm25::Bm25Index;
use crate::dense::DenseIndex;
use crate::embed::Embedder;
use crate::error::{KbError, Result};
use crate::fusion::{FusionConfig, fuse};

/// One chunk as the index needs it. `embedding` is `None` when no model was available.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedChunk {
    /// Database id of the chunk.
    pub chunk_id: i64,
    /// Database id of its document.
    pub document_id: i64,
    /// The document's stable key within its source (file path, page id, BEIR `_id`, …).
    pub document_key: String,
    /// The document's title.
    pub title: String,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// The chunk's text.
    pub text: String,
    /// The chunk's embedding (of [`search_text`]), L2-normalised.
    pub embedding: Option<Vec<f32>>,
}

/// The text that is indexed and embedded for a chunk: title and heading path give the chunk its
/// context ("Install" under "Windows" is not "Install" under "Linux").
pub fn search_text(title: &str, heading_path: &[String], text: &str) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(heading_path.len() + 1);
    if !title.trim().is_empty() {
        parts.push(title.trim());
    }
    for h in heading_path {
        // The first heading often repeats the title.
        if parts.last().is_none_or(|p| !p.eq_ignore_ascii_case(h.trim())) && !h.trim().is_empty() {
            parts.push(h.trim());
        }
    }
    if parts.is_empty() { text.to_string() } else { format!("{}\n\n{}", parts.join(" > "), text) }
}

/// A search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Database id of the chunk.
    pub chunk_id: i64,
    /// Database id of its document.
    pub document_id: i64,
    /// The document's key within its source.
    pub document_key: String,
    /// The document's title.
    pub title: String,
    /// Headings above the chunk.
    pub heading_path: Vec<String>,
    /// The chunk's text.
    pub text: String,
    /// Fused score (higher is better; comparable only within one query).
    pub score: f32,
    /// BM25 score, when BM25 returned this chunk.
    pub bm25_score: Option<f32>,
    /// Cosine similarity to the query, when dense retrieval ran.
    pub dense_score: Option<f32>,
    /// The cross-encoder's relevance score (a logit), when a reranker reordered the hits.
    pub rerank_score: Option<f32>,
}

/// The chunks' display data, packed: one byte buffer and an offset per chunk, decoded only for the
/// hits a query returns (so a loaded index holds no per-chunk allocations, and loading one from
/// disk is a copy, not a parse).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChunkTable {
    /// `(chunk_id, document_id)` per chunk.
    pub(crate) ids: Vec<(i64, i64)>,
    /// `ids.len() + 1` offsets into `data`.
    pub(crate) offsets: Vec<u64>,
    /// Per chunk: document key, title, heading count, headings, text; each string as a `u32`
    /// little-endian length and UTF-8 bytes. Shared with the loaded index file's bytes when the
    /// index came from disk.
    pub(crate) data: OwnedBytes,
}

/// A [`ChunkTable`] being filled.
struct ChunkTableBuilder {
    ids: Vec<(i64, i64)>,
    offsets: Vec<u64>,
    data: Vec<u8>,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| KbError::Data(format!("chunk field of {} bytes", s.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Reads length-prefixed fields from one packed record.
struct RecordReader<'a>(&'a [u8]);

impl<'a> RecordReader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*head))
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(s).ok()
    }
}

/// One decoded chunk record.
pub(crate) struct ChunkRecord {
    pub(crate) chunk_id: i64,
    pub(crate) document_id: i64,
    pub(crate) document_key: String,
    pub(crate) title: String,
    pub(crate) heading_path: Vec<String>,
    pub(crate) text: String,
}

impl ChunkTableBuilder {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        ChunkTableBuilder { ids: Vec::with_capacity(n), offsets, data: Vec::new() }
    }

    fn push(&mut self, c: &IndexedChunk) -> Result<()> {
        put_str(&mut self.data, &c.document_key)?;
        put_str(&mut self.data, &c.title)?;
        let n = u32::try_from(c.heading_path.len()).map_err(|_| KbError::Data("too many headings".into()))?;
        self.data.extend_from_slice(&n.to_le_bytes());
        for h in &c.heading_path {
            put_str(&mut self.data, h)?;
        }
        put_str(&mut self.data, &c.text)?;
        self.ids.push((c.chunk_id, c.document_id));
        self.offsets.push(self.data.len() as u64);
        Ok(())
    }

    fn finish(self) -> ChunkTable {
        ChunkTable { ids: self.ids, offsets: self.offsets, data: OwnedBytes::new(self.data) }
    }
}

impl ChunkTable {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Checks the table's shape (offsets ascending, in bounds, one per chunk plus one); records
    /// themselves are checked when decoded.
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = self.offsets.len() == self.ids.len() + 1
            && self.offsets.first() == Some(&0)
            && self.offsets.last() == Some(&(self.data.len() as u64))
            && self.offsets.windows(2).all(|w| w[0] <= w[1]);
        if ok { Ok(()) } else { Err(KbError::Index("chunk table offsets are inconsistent".into())) }
    }

    /// Decodes record `i`.
    pub(crate) fn get(&self, i: usize) -> Result<ChunkRecord> {
        let corrupt = || KbError::Index(format!("chunk record {i} is corrupt"));
        let (chunk_id, document_id) = *self.ids.get(i).ok_or_else(corrupt)?;
        let (from, to) = match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(a), Some(b)) => (*a as usize, *b as usize),
            _ => return Err(corrupt()),
        };
        let mut r = RecordReader(self.data.get(from..to).ok_or_else(corrupt)?);
        let document_key = r.str().ok_or_else(corrupt)?.to_string();
        let title = r.str().ok_or_else(corrupt)?.to_string();
        let n = r.u32().ok_or_else(corrupt)? as usize;
        let mut heading_path = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            heading_path.push(r.str().ok_or_else(corrupt)?.to_string());
        }
        let text = r.str().ok_or_else(corrupt)?.to_string();
        Ok(ChunkRecord { chunk_id, document_id, document_key, title, heading_path, text })
    }
}

/// One guild's derived search indexes: BM25 always, dense when every chunk has an embedding.
pub struct GuildIndex {
    chunks: ChunkTable,
    bm25: Bm25Index,
    dense: Option<DenseIndex>,
}

impl GuildIndex {
    /// Builds the indexes of one guild from its chunks.
    ///
    /// Dense search is enabled only if every chunk carries an embedding of one dimension; a
    /// partial set (e.g. a model change half-way) falls back to BM25 rather than miss chunks.
    pub fn build(chunks: Vec<IndexedChunk>) -> Result<Self> {
        let texts: Vec<String> = chunks.iter().map(|c| search_text(&c.title, &c.heading_path, &c.text)).collect();
        let bm25 = Bm25Index::build(&texts)?;
        drop(texts);
        let dim = chunks.first().and_then(|c| c.embedding.as_ref()).map(Vec::len);
        let mut dense = match dim {
            Some(d) if chunks.iter().all(|c| c.embedding.as_ref().is_some_and(|e| e.len() == d)) => {
                Some(DenseIndex::with_capacity(d, chunks.len()))
            }
            _ => None,
        };
        let mut table = ChunkTableBuilder::with_capacity(chunks.len());
        for c in &chunks {
            if let (Some(idx), Some(e)) = (dense.as_mut(), c.embedding.as_ref()) {
                idx.push(e)?;
            }
            table.push(c)?;
        }
        if dense.as_ref().is_some_and(DenseIndex::is_empty) {
            dense = None;
        }
        Ok(GuildIndex { chunks: table.finish(), bm25, dense })
    }

    /// Reassembles an index from its parts (as read back from disk), checking they agree.
    pub(crate) fn from_parts(chunks: ChunkTable, bm25: Bm25Index, dense: Option<DenseIndex>) -> Result<Self> {
        chunks.validate()?;
        let n = chunks.len();
        if bm25.len() != n || dense.as_ref().is_some_and(|d| d.len() != n) {
            return Err(KbError::Index(format!(
                "index parts disagree: {n} chunks, {} in BM25, {:?} vectors",
                bm25.len(),
                dense.as_ref().map(DenseIndex::len)
            )));
        }
        Ok(GuildIndex { chunks, bm25, dense })
    }

    pub(crate) fn parts(&self) -> (&ChunkTable, &Bm25Index, Option<&DenseIndex>) {
        (&self.chunks, &self.bm25, self.dense.as_ref())
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether the guild has no chunks.
    pub fn is_empty(&self) -> bool {
        self.chunks.len() == 0
    }

    /// Dimension of the dense index, if there is one.
    pub fn dense_dim(&self) -> Option<usize> {
        self.dense.as_ref().map(DenseIndex::dim)
    }

    /// Hybrid search with a precomputed query vector (`None`: BM25 only).
    pub fn search(
        &self,
        fusion: &FusionConfig,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        let n = fusion.candidates.max(k);
        let bm25 = self.bm25.search(query, n)?;
        let fused = match (&self.dense, query_vector) {
            (Some(dense), Some(q)) => {
                let mut dl = dense.search(q, n)?;
                // BM25's candidates get their exact dense score too, so fusion sees both
                // signals for every candidate.
                let mut seen: std::collections::HashSet<u32> = dl.iter().map(|x| x.0).collect();
                for (ord, _) in &bm25 {
                    if seen.insert(*ord)
                        && let Some(s) = dense.score(*ord as usize, q)
                    {
                        dl.push((*ord, s));
                    }
                }
                dl.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                fuse(fusion, &bm25, &dl)
            }
            _ => {
                let bm25_only = FusionConfig { dense_weight: 0.0, ..*fusion };
                fuse(&bm25_only, &bm25, &[])
            }
        };
        fused
            .into_iter()
            .take(k)
            .map(|f| {
                let c = self.chunks.get(f.ord as usize)?;
                Ok(Hit {
                    chunk_id: c.chunk_id,
                    document_id: c.document_id,
                    document_key: c.document_key,
                    title: c.title,
                    heading_path: c.heading_path,
                    text: c.text,
                    score: f.score,
                    bm25_score: f.bm25,
                    dense_score: f.dense,
                    rerank_score: None,
                })
            })
            .collect()
    }
}

/// Hybrid retriever over per-guild indexes. Cheap to share (`Arc`), safe to use from many threads.
pub struct Retriever {
    embedder: Option<Arc<dyn Embedder>>,
    fusion: FusionConfig,
    guilds: RwLock<HashMap<u64, Arc<GuildIndex>>>,
}

impl Retriever {
    /// A retriever with no guild loaded. `embedder: None` means BM25-only retrieval.
    pub fn new(embedder: Option<Arc<dyn Embedder>>, fusion: FusionConfig) -> Self {
        Retriever { embedder, fusion, guilds: RwLock::new(HashMap::new()) }
    }

    /// The embedder, if any.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// The fusion settings.
    pub fn fusion(&self) -> &FusionConfig {
        &self.fusion
    }

    /// Installs (or replaces) a guild's index and returns it; searches in flight keep the old one.
    pub fn set_guild(&self, guild_id: u64, index: GuildIndex) -> Arc<GuildIndex> {
        let index = Arc::new(index);
        let mut g = self.guilds.write().unwrap_or_else(|p| p.into_inner());
        g.insert(guild_id, index.clone());
        index
    }

    /// Drops a guild's index (it is rebuilt from the database on next use).
    pub fn remove_guild(&self, guild_id: u64) {
        let mut g = self.guilds.write().unwrap_or_else(|p| p.into_inner());
        g.remove(&guild_id);
    }

    /// The guild's index, if loaded.
    pub fn guild(&self, guild_id: u64) -> Option<Arc<GuildIndex>> {
        let g = self.guilds.read().unwrap_or_else(|p| p.into_inner());
        g.get(&guild_id).cloned()
    }

    /// Embeds the query (when a model is present) for [`Retriever::search_with_vector`].
    pub fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
        self.embedder.as_ref().map(|e| e.embed_query(query)).transpose()
    }

    /// The `k` best chunks of `guild_id`'s knowledge base for `query`. An unloaded guild has no hits.
    pub fn search(&self, guild_id: u64, query: &str, k: usize) -> Result<Vec<Hit>> {
        let Some(index) = self.guild(guild_id) else {
            return Ok(Vec::new());
        };
        let v = if index.dense_dim().is_some() { self.embed_query(query)? } else { None };
        index.search(&self.fusion, query, v.as_deref(), k)
    }

    /// Like [`Retriever::search`] with a query vector computed by the caller.
    pub fn search_with_vector(
        &self,
        guild_id: u64,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        let Some(index) = self.guild(guild_id) else {
            return Ok(Vec::new());
        };
        if let (Some(d), Some(q)) = (index.dense_dim(), query_vector)
            && d != q.len()
        {
            return Err(KbError::Dimension { expected: d, got: q.len() });
        }
        index.search(&self.fusion, query, query_vector, k)
    }
}
