//! BM25 over one guild's chunks, with tantivy, in RAM.
//!
//! The index is derived data: it is built from the chunks (the database is the source of truth).
//! Its files can be exported ([`Bm25Index::files`]) and loaded back ([`Bm25Index::from_files`]),
//! which is how the persisted per-guild index files carry it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tantivy::collector::TopDocs;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer, TokenStream};
use tantivy::{Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::error::{KbError, Result};

const TOKENIZER: &str = "kb_en";

/// Words dropped from queries: function words and the question words that open most support
/// questions ("how do I …"), which would otherwise match rare, unrelated uses in documents.
const QUERY_STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "doe", "does", "did", "i", "me",
    "my", "we", "our", "you", "your", "can", "could", "should", "would", "may", "might", "must", "shall", "am", "been",
    "being", "have", "has", "had", "get", "there", "any", "about", "from", "so", "than", "too", "very",
];

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// A BM25 index of texts numbered `0..n` in the order they were given.
pub struct Bm25Index {
    index: Index,
    searcher: Searcher,
    body: Field,
    analyzer: TextAnalyzer,
    stopwords: &'static HashSet<String>,
    /// Per segment, per tantivy doc id: the position of the text as given to [`Bm25Index::build`].
    ords: Vec<Vec<u32>>,
    len: usize,
    /// The files of an index loaded with [`Bm25Index::from_files`] (tantivy's own list of managed
    /// files is not part of them).
    loaded: Option<SliceDirectory>,
}

/// Tantivy's files served in place from memory that is already there (a loaded index file):
/// read-only, and nothing is copied.
#[derive(Clone, Debug)]
struct SliceDirectory {
    files: Arc<HashMap<PathBuf, OwnedBytes>>,
}

fn read_only() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "a loaded BM25 index is read-only")
}

impl Directory for SliceDirectory {
    fn get_file_handle(&self, path: &Path) -> std::result::Result<Arc<dyn FileHandle>, OpenReadError> {
        match self.files.get(path) {
            Some(bytes) => Ok(Arc::new(bytes.clone())),
            None => Err(OpenReadError::FileDoesNotExist(path.to_path_buf())),
        }
    }

    fn delete(&self, path: &Path) -> std::result::Result<(), DeleteError> {
        Err(DeleteError::IoError { io_error: Arc::new(read_only()), filepath: path.to_path_buf() })
    }

    fn exists(&self, path: &Path) -> std::result::Result<bool, OpenReadError> {
        Ok(self.files.contains_key(path))
    }

    fn open_write(&self, path: &Path) -> std::result::Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::wrap_io_error(read_only(), path.to_path_buf()))
    }

    fn atomic_read(&self, path: &Path) -> std::result::Result<Vec<u8>, OpenReadError> {
        match self.files.get(path) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(OpenReadError::FileDoesNotExist(path.to_path_buf())),
        }
    }

    fn atomic_write(&self, _path: &Path, _data: &[u8]) -> std::io::Result<()> {
        Err(read_only())
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, _lock: &Lock) -> std::result::Result<DirectoryLock, LockError> {
        // Readers take a lock to load the metas; nothing can write here, so any lock is free.
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, _callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        // Nothing ever changes here.
        Ok(WatchHandle::empty())
    }
}

impl Bm25Index {
    /// Indexes `texts`; hits refer to them by position.
    pub fn build<S: AsRef<str>>(texts: &[S]) -> Result<Self> {
        let mut sb = Schema::builder();
        let indexing =
            TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs);
        let body = sb.add_text_field("body", TextOptions::default().set_indexing_options(indexing));
        let ord = sb.add_u64_field("ord", FAST);
        let index = Index::create_in_ram(sb.build());
        index.tokenizers().register(TOKENIZER, analyzer());
        // Small guilds get one thread and tantivy's minimum arena: RAM matters more than speed
        // for thousands of small indexes; big ones get a second thread.
        let threads =
            if texts.len() >= 20_000 { std::thread::available_parallelism().map_or(1, |n| n.get().min(2)) } else { 1 };
        let budget = if texts.len() >= 20_000 { 40_000_000 } else { 15_000_000 };
        let mut writer: IndexWriter<TantivyDocument> = index.writer_with_num_threads(threads, threads * budget)?;
        let len = texts.len();
        for (i, text) in texts.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(body, text.as_ref());
            doc.add_u64(ord, i as u64);
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Self::open(index, len, None)
    }

    /// Wraps a committed index whose documents carry their position in the `ord` fast field.
    fn open(index: Index, len: usize, loaded: Option<SliceDirectory>) -> Result<Self> {
        let schema = index.schema();
        let body = schema.get_field("body")?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher = reader.searcher();
        let mut ords = Vec::with_capacity(searcher.segment_readers().len());
        let mut seen = 0usize;
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("ord")?;
            let seg_ords: Vec<u32> = (0..seg.max_doc()).map(|d| col.first(d).unwrap_or(u64::MAX) as u32).collect();
            seen += seg_ords.len();
            // A position outside 0..len would point past the chunk table: the index is not ours.
            if seg_ords.iter().any(|o| *o != u32::MAX && *o as usize >= len) {
                return Err(KbError::Index("BM25 positions out of range".into()));
            }
            ords.push(seg_ords);
        }
        if seen != len {
            return Err(KbError::Index(format!("BM25 index holds {seen} texts, expected {len}")));
        }
        Ok(Bm25Index { index, searcher, body, analyzer: analyzer(), stopwords: stemmed_stopwords(), ords, len, loaded })
    }

    /// The index's files (tantivy's segment files and `meta.json`), to be written elsewhere and
    /// given back to [`Bm25Index::from_files`].
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        if let Some(loaded) = &self.loaded {
            let mut out: Vec<(String, Vec<u8>)> =
                loaded.files.iter().map(|(n, b)| (n.to_string_lossy().into_owned(), b.to_vec())).collect();
            out.sort();
            return Ok(out);
        }
        let dir = self.index.directory();
        let mut names: Vec<PathBuf> = dir.list_managed_files().into_iter().collect();
        names.push(PathBuf::from("meta.json"));
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // The lock files tantivy manages hold nothing worth keeping.
            if name.to_string_lossy().ends_with(".lock") {
                continue;
            }
            // The raw bytes, footer included, exactly as tantivy wrote them.
            match dir.atomic_read(&name) {
                Ok(bytes) => out.push((name.to_string_lossy().into_owned(), bytes)),
                Err(tantivy::directory::error::OpenReadError::FileDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Loads an index from the files [`Bm25Index::files`] returned; `len` is the number of
    /// texts it must hold.
    pub fn from_files(files: &[(&str, &[u8])], len: usize) -> Result<Self> {
        Self::from_shared_files(files.iter().map(|(n, b)| ((*n).to_string(), OwnedBytes::new(b.to_vec()))), len)
    }

    /// Like [`Bm25Index::from_files`], serving the files in place (a loaded index file's bytes):
    /// tantivy reads them where they are, without a copy.
    pub(crate) fn from_shared_files(files: impl IntoIterator<Item = (String, OwnedBytes)>, len: usize) -> Result<Self> {
        let files: HashMap<PathBuf, OwnedBytes> = files.into_iter().map(|(n, b)| (PathBuf::from(n), b)).collect();
        let dir = SliceDirectory { files: Arc::new(files) };
        let index = Index::open(dir.clone())?;
        index.tokenizers().register(TOKENIZER, analyzer());
        Self::open(index, len, Some(dir))
    }

    /// Number of indexed texts.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The analysed terms of a query, stop words removed, each once.
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(query);
        let mut seen = HashSet::with_capacity(8);
        let mut out = Vec::new();
        while stream.advance() {
            let t = &stream.token().text;
            if !self.stopwords.contains(t) && seen.insert(t.clone()) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The `k` best texts for `query` as `(position, bm25 score)`, best first.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(u32, f32)>> {
        let terms = self.query_terms(query);
        if terms.is_empty() || k == 0 || self.len == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(Term::from_field_text(self.body, t), IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        let top = self.searcher.search(&query, &TopDocs::with_limit(k).order_by_score())?;
        Ok(top
            .into_iter()
            .filter_map(|(score, addr)| {
                let ord = *self.ords.get(addr.segment_ord as usize)?.get(addr.doc_id as usize)?;
                (ord != u32::MAX).then_some((ord, score))
            })
            .collect())
    }
}

/// The query stop words, analysed like query terms (computed once per process).
fn stemmed_stopwords() -> &'static HashSet<String> {
    static STOPWORDS: OnceLock<HashSet<String>> = OnceLock::new();
    STOPWORDS.get_or_init(|| {
        let mut a = analyzer();
        let mut out = HashSet::new();
        for w in QUERY_STOPWORDS {
            let mut s = a.token_stream(w);
            while s.advance() {
                out.insert(s.token().text.clone());
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_term_rarity_and_frequency() {
        let idx = Bm25Index::build(&[
            "the cat sat on the mat",
            "dogs chase cats in the park",
            "the stock market fell today",
            "a cat and another cat",
        ])
        .unwrap();
        assert_eq!(idx.len(), 4);
        let hits = idx.search("cat", 10).unwrap();
        let ords: Vec<u32> = hits.iter().map(|h| h.0).collect();
        // Stemming maps "cats" to "cat"; the text with two mentions wins.
        assert_eq!(ords[0], 3);
        assert_eq!(ords.len(), 3);
        assert!(!ords.contains(&2));
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn question_words_do_not_match() {
        let idx = Bm25Index::build(&["what a day", "reset your password in settings"]).unwrap();
        let hits = idx.search("How do I reset what?", 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        assert!(idx.search("what how", 10).unwrap().is_empty());
        assert_eq!(idx.query_terms("Resetting PASSWORDS"), vec!["reset", "password"]);
    }

    #[test]
    fn empty_index_and_query_syntax_are_harmless() {
        let idx = Bm25Index::build::<&str>(&[]).unwrap();
        assert!(idx.is_empty());
        assert!(idx.search("anything", 5).unwrap().is_empty());
        let idx = Bm25Index::build(&["a (b) c: d -e +f AND OR"]).unwrap();
        assert_eq!(idx.search("(b) AND -e:", 5).unwrap().len(), 1);
    }

    #[test]
    fn files_round_trip_to_the_same_rankings() {
        let texts = ["refunds within 14 days", "install on linux", "refund policy for invoices", "weekday hours"];
        let idx = Bm25Index::build(&texts).unwrap();
        let files = idx.files().unwrap();
        assert!(files.iter().any(|(n, _)| n == "meta.json"));
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let back = Bm25Index::from_files(&refs, texts.len()).unwrap();
        for q in ["refund", "linux install", "hours"] {
            assert_eq!(back.search(q, 10).unwrap(), idx.search(q, 10).unwrap(), "{q}");
        }
        // A loaded index exports the same files again.
        assert_eq!(back.files().unwrap(), files);
        // The wrong size, missing files or garbage are errors, not a wrong index.
        assert!(Bm25Index::from_files(&refs, texts.len() + 1).is_err());
        let no_meta: Vec<(&str, &[u8])> = refs.iter().copied().filter(|(n, _)| *n != "meta.json").collect();
        assert!(Bm25Index::from_files(&no_meta, texts.len()).is_err());
        let garbage: Vec<(&str, &[u8])> = refs.iter().map(|(n, b)| (*n, &b[..b.len() / 2])).collect();
        assert!(Bm25Index::from_files(&garbage, texts.len()).is_err());
    }
}
