//! Ingestion into the store and search over indexes rebuilt from it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::Embedder;
use beacon_kb::error::{KbError, Result};
use beacon_kb::fusion::{FusionConfig, FusionMethod};
use beacon_kb::ingest::{KnowledgeBase, Phase, Progress};
use beacon_kb::source::{FolderSource, SourceDocument, StaticSource};
use beacon_kb::store::KbRepo;
use beacon_store::Store;

const GUILD: u64 = 81384788765712384;
const OTHER: u64 = 41771983423143937;

async fn store() -> Store {
    let s = Store::connect("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    s
}

/// A deterministic bag-of-words embedder: lets tests exercise the dense path without a model.
struct HashEmbedder {
    fail_on: Option<&'static str>,
    tripped: AtomicBool,
}

impl HashEmbedder {
    fn new() -> Self {
        HashEmbedder { fail_on: None, tripped: AtomicBool::new(false) }
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "test-hash-64"
    }
    fn dim(&self) -> usize {
        64
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| {
                if self.fail_on.is_some_and(|f| t.contains(f)) {
                    self.tripped.store(true, Ordering::SeqCst);
                    return Err(KbError::Model("injected failure".into()));
                }
                let mut v = vec![0f32; 64];
                for w in t.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
                    let h = w.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
                    v[(h % 64) as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                Ok(v.into_iter().map(|x| x / n).collect())
            })
            .collect()
    }
}

fn write_docs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("guides")).unwrap();
    std::fs::write(
        dir.join("billing.md"),
        "# Billing\n\n## Refunds\n\nRefunds are issued within 14 days to the original card.\n\n## Invoices\n\nInvoices are emailed monthly.",
    )
    .unwrap();
    std::fs::write(
        dir.join("guides/install.md"),
        "# Installation\n\n## Windows\n\nRun the MSI installer as administrator.\n\n## Linux\n\nUse the tarball and systemd unit.",
    )
    .unwrap();
    std::fs::write(dir.join("guides/notes.txt"), "Support hours are nine to five on weekdays.").unwrap();
}

async fn kb(store: &Store, embedder: Option<Arc<dyn Embedder>>) -> KnowledgeBase {
    // Balanced fusion: the toy embedder is weak, and these tests are about ingestion.
    let fusion = FusionConfig { method: FusionMethod::MinMax, dense_weight: 0.5, candidates: 50 };
    KnowledgeBase::open(store.clone(), embedder, fusion, ChunkerConfig::default()).await.unwrap()
}

#[tokio::test]
async fn ingest_search_resync_and_delete() {
    let store = store().await;
    let dir = tempfile::tempdir().unwrap();
    write_docs(dir.path());
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new());
    let kb = kb(&store, Some(embedder.clone())).await;
    let source = FolderSource::with_id(dir.path(), "docs");
    let mut phases = Vec::new();
    let report = kb.sync(GUILD, &source, &mut |p: Progress| phases.push(p.phase)).await.unwrap();
    assert_eq!((report.documents, report.written, report.unchanged), (3, 3, 0));
    assert_eq!(report.chunks, 5);
    assert!(report.embedded);
    assert_eq!(phases.first(), Some(&Phase::Listing));
    assert_eq!(phases.last(), Some(&Phase::Done));

    let hits = kb.search(GUILD, "how long do refunds take", 3).await.unwrap();
    assert_eq!(hits[0].document_key, "billing.md");
    assert_eq!(hits[0].title, "Billing");
    assert_eq!(hits[0].heading_path, vec!["Billing", "Refunds"]);
    assert!(hits[0].bm25_score.is_some() && hits[0].dense_score.is_some());
    let hits = kb.search(GUILD, "linux systemd", 1).await.unwrap();
    assert_eq!(hits[0].heading_path, vec!["Installation", "Linux"]);

    // Another guild sees nothing.
    assert!(kb.search(OTHER, "refunds", 3).await.unwrap().is_empty());

    // Unchanged re-sync touches nothing.
    let repo = KbRepo::new(store.guild(GUILD));
    let before = repo.chunks(Some("test-hash-64")).await.unwrap();
    let report = kb.sync(GUILD, &source, &mut |_| {}).await.unwrap();
    assert_eq!((report.written, report.unchanged, report.deleted), (0, 3, 0));
    assert_eq!(repo.chunks(Some("test-hash-64")).await.unwrap(), before);

    // One change, one deletion.
    std::fs::write(dir.path().join("guides/notes.txt"), "Support hours are now around the clock.").unwrap();
    std::fs::remove_file(dir.path().join("billing.md")).unwrap();
    let report = kb.sync(GUILD, &source, &mut |_| {}).await.unwrap();
    assert_eq!((report.written, report.unchanged, report.deleted), (1, 1, 1));
    assert_eq!(repo.counts().await.unwrap(), (2, 3));
    let hits = kb.search(GUILD, "refunds invoices", 5).await.unwrap();
    assert!(hits.iter().all(|h| h.document_key != "billing.md"));
    let hits = kb.search(GUILD, "support clock", 1).await.unwrap();
    assert!(hits[0].text.contains("around the clock"));
}

#[tokio::test]
async fn index_is_rebuilt_from_the_database() {
    let store = store().await;
    let dir = tempfile::tempdir().unwrap();
    write_docs(dir.path());
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new());
    let first = kb(&store, Some(embedder.clone())).await;
    first.sync(GUILD, &FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    drop(first);
    // A fresh process: no index in memory, the store is the source of truth.
    let second = kb(&store, Some(embedder)).await;
    assert!(second.retriever().guild(GUILD).is_none());
    let hits = second.search(GUILD, "MSI installer administrator", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "guides/install.md");
    assert!(hits[0].dense_score.is_some());
    // Without a model the same data is searched with BM25 alone.
    let bm25 = kb(&store, None).await;
    let hits = bm25.search(GUILD, "MSI installer administrator", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "guides/install.md");
    assert!(hits[0].dense_score.is_none());
}

#[tokio::test]
async fn failed_ingestion_keeps_the_previous_version() {
    let store = store().await;
    let doc =
        |key: &str, text: &str| SourceDocument { key: key.into(), title: key.into(), text: text.into(), url: None };
    let v1 = StaticSource::new("s", vec![doc("a", "apples are red"), doc("b", "bananas are yellow")]);
    let ok: Arc<dyn Embedder> = Arc::new(HashEmbedder::new());
    kb(&store, Some(ok.clone())).await.sync(GUILD, &v1, &mut |_| {}).await.unwrap();

    let failing = Arc::new(HashEmbedder { fail_on: Some("poison"), tripped: AtomicBool::new(false) });
    let kb2 = kb(&store, Some(failing.clone() as Arc<dyn Embedder>)).await;
    let v2 = StaticSource::new("s", vec![doc("a", "apples are green poison"), doc("b", "bananas are brown")]);
    let err = kb2.sync(GUILD, &v2, &mut |_| {}).await;
    assert!(err.is_err());
    assert!(failing.tripped.load(Ordering::SeqCst));
    // Both documents still have their previous text (the batch was never written).
    let chunks = KbRepo::new(store.guild(GUILD)).chunks(None).await.unwrap();
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, vec!["apples are red", "bananas are yellow"]);
    let hits = kb(&store, Some(ok)).await.search(GUILD, "bananas", 1).await.unwrap();
    assert_eq!(hits[0].text, "bananas are yellow");
}

#[tokio::test]
async fn duplicate_keys_are_rejected() {
    let store = store().await;
    let d = SourceDocument { key: "k".into(), title: "t".into(), text: "x".into(), url: None };
    let src = StaticSource::new("s", vec![d.clone(), d]);
    let err = kb(&store, None).await.sync(GUILD, &src, &mut |_| {}).await;
    assert!(matches!(err, Err(KbError::Source { .. })));
}

#[tokio::test]
async fn folder_sync_with_the_real_model() {
    let Some(dir) = common::model_dir("folder_sync_with_the_real_model") else {
        return;
    };
    let model: Arc<dyn Embedder> = Arc::new(beacon_kb::BertEmbedder::load(&dir).unwrap());
    let store = store().await;
    let docs = tempfile::tempdir().unwrap();
    write_docs(docs.path());
    let kb = kb(&store, Some(model)).await;
    let mut last = None;
    let report = kb.sync(GUILD, &FolderSource::new(docs.path()), &mut |p| last = Some(p)).await.unwrap();
    assert!(report.embedded);
    assert_eq!(report.written, 3);
    assert_eq!(last.map(|p| p.phase), Some(Phase::Done));
    let hits = kb.search(GUILD, "Can I get my money back?", 3).await.unwrap();
    assert_eq!(hits[0].document_key, "billing.md");
    assert!(hits[0].dense_score.is_some_and(|s| s > 0.2));
}

#[tokio::test]
async fn configured_sources_sync_when_due() {
    let store = store().await;
    let dir = tempfile::tempdir().unwrap();
    write_docs(dir.path());
    let kb = kb(&store, None).await;
    // Stored as before source kinds were a trait: the row is read by the `folder` kind.
    sqlx::query(
        "INSERT INTO kb_sources (guild_id, kind, name, config, enabled, sync_interval_ms, created_at) \
         VALUES ($1, 'folder', 'handbook', $2, 1, 3600000, 0)",
    )
    .bind(GUILD as i64)
    .bind(serde_json::json!({ "path": dir.path() }).to_string())
    .execute(store.pool())
    .await
    .unwrap();
    let missing = serde_json::json!({ "path": dir.path().join("missing") });
    kb.add_source(OTHER, "broken", "folder", &missing, Some(1000)).await.unwrap();
    assert!(kb.add_source(OTHER, "odd", "gopher", &missing, None).await.is_err(), "no such kind");

    let now = beacon_store::now_ms();
    let runs = kb.sync_due(now).await.unwrap();
    assert_eq!(runs.len(), 2);
    let ok = runs.iter().find(|r| r.guild_id == GUILD).unwrap();
    assert_eq!(ok.result.as_ref().unwrap().written, 3);
    assert!(runs.iter().find(|r| r.guild_id == OTHER).unwrap().result.is_err());
    let rows = KbRepo::new(store.guild(OTHER)).sources().await.unwrap();
    assert!(rows[0].last_error.as_deref().is_some_and(|e| e.contains("missing")));

    // Within the hour nothing is due for the handbook; the broken source (1 s) is due again.
    let runs = kb.sync_due(beacon_store::now_ms() + 2_000).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(), vec!["broken"]);
    let runs = kb.sync_due(beacon_store::now_ms() + 3_600_000).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs.iter().find(|r| r.guild_id == GUILD).unwrap().result.as_ref().unwrap().unchanged, 3);
    // Documents are stored under the source's name, and searchable.
    let hits = kb.search(GUILD, "refunds card", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "billing.md");
    assert!(KbRepo::new(store.guild(GUILD)).remove_source("handbook").await.unwrap());
    assert_eq!(KbRepo::new(store.guild(GUILD)).counts().await.unwrap(), (0, 0));
}
