//! Persisted per-guild index files and index versions: a fresh process reuses the file, a stale,
//! corrupt or half-written file never serves and never fails a search, and a process notices an
//! ingest made by another one (SQLite file, and PostgreSQL when `BEACON_TEST_POSTGRES_URL` is set).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::Embedder;
use beacon_kb::error::Result;
use beacon_kb::fusion::{FusionConfig, FusionMethod};
use beacon_kb::ingest::{IndexOrigin, KnowledgeBase};
use beacon_kb::source::{SourceDocument, StaticSource};
use beacon_kb::store::KbRepo;
use beacon_store::Store;

const GUILD: u64 = 81384788765712384;
const OTHER: u64 = 41771983423143937;

/// A deterministic bag-of-words embedder, so the dense part is persisted too.
struct HashEmbedder(&'static str);

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        self.0
    }
    fn dim(&self) -> usize {
        32
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 32];
                for w in t.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
                    let h = w.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
                    v[(h % 32) as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.into_iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

fn embedder() -> Option<Arc<dyn Embedder>> {
    Some(Arc::new(HashEmbedder("test-hash-32")))
}

fn doc(key: &str, text: &str) -> SourceDocument {
    SourceDocument { key: key.into(), title: key.into(), text: text.into(), url: None }
}

fn v1() -> StaticSource {
    StaticSource::new(
        "docs",
        vec![
            doc("refunds", "Refunds are issued within 14 days to the original card."),
            doc("install", "Run the MSI installer as administrator on Windows."),
        ],
    )
}

fn v2() -> StaticSource {
    StaticSource::new(
        "docs",
        vec![
            doc("refunds", "Refunds are issued within 14 days to the original card."),
            doc("install", "Run the MSI installer as administrator on Windows."),
            doc("webhooks", "Webhooks retry delivery with exponential backoff for a day."),
        ],
    )
}

/// A migrated SQLite database in a file, as `beacon run` and `beacon ingest` share it.
async fn sqlite_store(dir: &Path) -> Store {
    let store = Store::connect(&format!("sqlite://{}/beacon.db", dir.display())).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Another "process": its own connection pool on the same database.
async fn reconnect(dir: &Path) -> Store {
    Store::connect(&format!("sqlite://{}/beacon.db", dir.display())).await.unwrap()
}

async fn open(store: &Store, index_dir: Option<&Path>, embedder: Option<Arc<dyn Embedder>>) -> KnowledgeBase {
    let fusion = FusionConfig { method: FusionMethod::MinMax, dense_weight: 0.5, candidates: 50 };
    let kb = KnowledgeBase::open(store.clone(), embedder, fusion, ChunkerConfig::default())
        .await
        .unwrap()
        .with_version_check_interval(Duration::ZERO);
    match index_dir {
        Some(d) => kb.with_index_dir(d),
        None => kb,
    }
}

#[tokio::test]
async fn persisted_index_is_reused_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    let first = open(&store, Some(&index_dir), embedder()).await;
    first.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    let s = first.index_stats();
    assert_eq!((s.rebuilds, s.files_written, s.disk_loads), (1, 1, 0));
    assert!(index_dir.join(format!("guild-{GUILD}.kbi")).is_file());
    // An unchanged re-sync keeps the index: nothing is rebuilt or written.
    first.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    assert_eq!(first.index_stats().rebuilds, 1);
    drop(first);
    store.close().await;

    // A fresh process over the same database and folder reads the file, rebuilds nothing.
    let store = reconnect(tmp.path()).await;
    let second = open(&store, Some(&index_dir), embedder()).await;
    assert!(second.retriever().guild(GUILD).is_none());
    let hits = second.search(GUILD, "MSI installer administrator", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "install");
    assert_eq!(hits[0].title, "install");
    assert!(hits[0].dense_score.is_some() && hits[0].bm25_score.is_some());
    let s = second.index_stats();
    assert_eq!((s.disk_loads, s.rebuilds, s.files_written, s.unusable_files), (1, 0, 0, 0));
    // Further searches use the index in memory.
    assert_eq!(second.ensure_index(GUILD).await.unwrap().1, IndexOrigin::Memory);
    assert_eq!(second.index_stats().disk_loads, 1);
    // A guild with no file and no chunks is built (empty) and written, not an error.
    assert!(second.search(OTHER, "refunds", 3).await.unwrap().is_empty());
    assert_eq!(second.index_stats().rebuilds, 1);
    second.flush_index_writes().await;
    assert!(index_dir.join(format!("guild-{OTHER}.kbi")).is_file());
}

#[tokio::test]
async fn the_file_serves_the_same_hits_as_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    open(&store, Some(&index_dir), embedder()).await.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let from_file = open(&store, Some(&index_dir), embedder()).await;
    let in_memory = open(&store, None, embedder()).await;
    for q in ["refunds card", "webhooks retry", "windows installer", "nothing zzz"] {
        assert_eq!(from_file.search(GUILD, q, 3).await.unwrap(), in_memory.search(GUILD, q, 3).await.unwrap(), "{q}");
    }
    assert_eq!(from_file.index_stats().disk_loads, 1);
    assert_eq!((in_memory.index_stats().rebuilds, in_memory.index_stats().files_written), (1, 0));
}

#[tokio::test]
async fn stale_stamp_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    open(&store, Some(&index_dir), embedder()).await.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    // A writer without the folder (the file is not updated): the database moves to a new version.
    open(&store, None, embedder()).await.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();

    let kb = open(&store, Some(&index_dir), embedder()).await;
    let (index, origin) = kb.ensure_index(GUILD).await.unwrap();
    assert_eq!(origin, IndexOrigin::Rebuilt);
    assert_eq!(index.len(), 3);
    let hits = kb.search(GUILD, "webhooks exponential backoff", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "webhooks");
    // The file is written in the background, after the index served.
    kb.flush_index_writes().await;
    let s = kb.index_stats();
    // Outdated is expected, not a fault.
    assert_eq!((s.rebuilds, s.files_written, s.disk_loads, s.unusable_files), (1, 1, 0, 0));
    // The rewritten file now serves the next process.
    assert_eq!(
        open(&store, Some(&index_dir), embedder()).await.ensure_index(GUILD).await.unwrap().1,
        IndexOrigin::Disk
    );

    // Another embedding model: the file's vectors do not fit, so it is rebuilt (BM25 only, the
    // stored embeddings are of the old model).
    let other_model = open(&store, Some(&index_dir), Some(Arc::new(HashEmbedder("another-model")))).await;
    let (index, origin) = other_model.ensure_index(GUILD).await.unwrap();
    assert_eq!(origin, IndexOrigin::Rebuilt);
    assert_eq!(index.dense_dim(), None);
    other_model.flush_index_writes().await;
}

#[tokio::test]
async fn corrupt_files_are_rebuilt_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    open(&store, Some(&index_dir), embedder()).await.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let path = index_dir.join(format!("guild-{GUILD}.kbi"));
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let at = good.len() - 100;
    flipped[at] ^= 0xff;
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("flipped byte", flipped),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not an index at all".to_vec()),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&path, &bytes).unwrap();
        let kb = open(&store, Some(&index_dir), embedder()).await;
        let hits = kb.search(GUILD, "webhooks retry delivery", 1).await.unwrap();
        assert_eq!(hits[0].document_key, "webhooks", "{what}");
        kb.flush_index_writes().await;
        let s = kb.index_stats();
        assert_eq!((s.unusable_files, s.rebuilds, s.files_written, s.disk_loads), (1, 1, 1, 0), "{what}");
        // The rebuild rewrote a good file.
        let next = open(&store, Some(&index_dir), embedder()).await;
        assert_eq!(next.ensure_index(GUILD).await.unwrap().1, IndexOrigin::Disk, "{what}");
    }
    // A folder that is not a folder: nothing can be read or written, searches still answer.
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let kb = open(&store, Some(&not_a_dir), embedder()).await;
    let hits = kb.search(GUILD, "refunds card", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "refunds");
    kb.flush_index_writes().await;
    let s = kb.index_stats();
    assert_eq!((s.rebuilds, s.write_failures, s.files_written), (1, 1, 0));
}

#[tokio::test]
async fn files_of_an_older_layout_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    open(&store, Some(&index_dir), embedder()).await.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let path = index_dir.join(format!("guild-{GUILD}.kbi"));
    let mut bytes = std::fs::read(&path).unwrap();
    let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    assert_eq!(format, beacon_kb::index_file::FORMAT);
    // The file as the previous release wrote it (format 1): recognised by its format field.
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let kb = open(&store, Some(&index_dir), embedder()).await;
    let (index, origin) = kb.ensure_index(GUILD).await.unwrap();
    assert_eq!((origin, index.len()), (IndexOrigin::Rebuilt, 3));
    assert_eq!(kb.search(GUILD, "webhooks retry delivery", 1).await.unwrap()[0].document_key, "webhooks");
    kb.flush_index_writes().await;
    let s = kb.index_stats();
    // An upgrade is expected, not a fault.
    assert_eq!((s.unusable_files, s.rebuilds, s.files_written), (0, 1, 1));
    let rewritten = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(rewritten[8..12].try_into().unwrap()), format);
    let next = open(&store, Some(&index_dir), embedder()).await;
    assert_eq!(next.ensure_index(GUILD).await.unwrap().1, IndexOrigin::Disk);
}

#[tokio::test]
async fn a_rebuild_serves_before_its_file_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    // Chunks in the database, no index file yet.
    open(&store, None, embedder()).await.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let kb = open(&store, Some(&index_dir), embedder()).await;
    let (_, origin) = kb.ensure_index(GUILD).await.unwrap();
    assert_eq!(origin, IndexOrigin::Rebuilt);
    // The write runs on its own; once it is done the file serves the next process.
    kb.flush_index_writes().await;
    assert_eq!(kb.index_stats().files_written, 1);
    let next = open(&store, Some(&index_dir), embedder()).await;
    assert_eq!(next.ensure_index(GUILD).await.unwrap().1, IndexOrigin::Disk);
    // A rebuild asked for explicitly (sync, `rebuild_index`) has written its file when it returns.
    std::fs::remove_file(index_dir.join(format!("guild-{GUILD}.kbi"))).unwrap();
    kb.rebuild_index(GUILD).await.unwrap();
    assert!(index_dir.join(format!("guild-{GUILD}.kbi")).is_file());
    assert_eq!(kb.index_stats().files_written, 2);
}

#[tokio::test]
async fn crash_mid_write_leaves_the_previous_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    open(&store, Some(&index_dir), embedder()).await.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    let path = index_dir.join(format!("guild-{GUILD}.kbi"));
    let previous = std::fs::read(&path).unwrap();
    // A writer killed half-way through its temporary file (it never got to the rename): the
    // partial file sits beside the real one.
    let partial = index_dir.join(format!(".guild-{GUILD}.kbi.tmp-4242-0"));
    std::fs::write(&partial, &previous[..previous.len() / 3]).unwrap();

    let kb = open(&store, Some(&index_dir), embedder()).await;
    assert_eq!(kb.ensure_index(GUILD).await.unwrap().1, IndexOrigin::Disk);
    assert_eq!(kb.search(GUILD, "refunds card", 1).await.unwrap()[0].document_key, "refunds");
    assert_eq!(std::fs::read(&path).unwrap(), previous);
    let s = kb.index_stats();
    assert_eq!((s.rebuilds, s.unusable_files), (0, 0));
}

/// Sync through one knowledge base, search through another one with its own connection pool
/// over the same database: the second notices the new version and serves the new document.
async fn ingest_elsewhere_is_noticed(bot_store: Store, cli_store: Store, index_dir: Option<&Path>) {
    let bot = open(&bot_store, index_dir, embedder()).await;
    let cli = open(&cli_store, index_dir, embedder()).await;
    cli.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    let hits = bot.search(GUILD, "webhooks retry delivery", 5).await.unwrap();
    assert!(hits.iter().all(|h| h.document_key != "webhooks"));

    cli.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let hits = bot.search(GUILD, "webhooks retry delivery", 1).await.unwrap();
    assert_eq!(hits[0].document_key, "webhooks");
    let s = bot.index_stats();
    assert_eq!(s.reloads, 1);
    if index_dir.is_some() {
        // The CLI wrote the file for the new version; the bot read it instead of rebuilding.
        assert_eq!((s.disk_loads, s.rebuilds), (2, 0));
    } else {
        assert_eq!((s.disk_loads, s.rebuilds), (0, 2));
    }

    // Deletions are versions too.
    cli.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    let hits = bot.search(GUILD, "webhooks retry delivery", 5).await.unwrap();
    assert!(hits.iter().all(|h| h.document_key != "webhooks"));
    assert_eq!(bot.index_stats().reloads, 2);

    // Within the check interval the loaded index is trusted without asking the database.
    let patient = open(&bot_store, index_dir, embedder()).await.with_version_check_interval(Duration::from_secs(3600));
    patient.search(GUILD, "refunds", 1).await.unwrap();
    let checks = patient.index_stats().version_checks;
    cli.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let hits = patient.search(GUILD, "webhooks retry delivery", 5).await.unwrap();
    assert!(hits.iter().all(|h| h.document_key != "webhooks"));
    assert_eq!(patient.index_stats().version_checks, checks);
}

#[tokio::test]
async fn sqlite_ingest_by_another_process_is_noticed() {
    for persisted in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let index_dir = tmp.path().join("kb-index");
        let bot = sqlite_store(tmp.path()).await;
        let cli = reconnect(tmp.path()).await;
        ingest_elsewhere_is_noticed(bot, cli, persisted.then_some(index_dir.as_path())).await;
    }
}

#[tokio::test]
async fn postgres_ingest_by_another_process_is_noticed() {
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let bot = Store::connect(&db.url).await.unwrap();
    bot.migrate().await.unwrap();
    let cli = Store::connect(&db.url).await.unwrap();
    ingest_elsewhere_is_noticed(bot.clone(), cli.clone(), Some(&index_dir)).await;
    // The version is one row per guild, bumped in the writing transaction.
    let v = KbRepo::new(bot.guild(GUILD)).index_version().await.unwrap();
    assert!(v > 0);
    assert_eq!(KbRepo::new(bot.guild(OTHER)).index_version().await.unwrap(), 0);
    bot.close().await;
    cli.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn every_committed_change_bumps_the_version() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(tmp.path()).await;
    let kb = open(&store, None, None).await;
    let repo = KbRepo::new(store.guild(GUILD));
    assert_eq!(repo.index_version().await.unwrap(), 0);
    kb.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    let a = repo.index_version().await.unwrap();
    assert!(a > 0);
    kb.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    assert_eq!(repo.index_version().await.unwrap(), a, "an unchanged sync writes nothing");
    kb.sync(GUILD, &v2(), &mut |_| {}).await.unwrap();
    let b = repo.index_version().await.unwrap();
    assert!(b > a);
    assert_eq!(repo.delete_documents("docs", &["webhooks".to_string()]).await.unwrap(), 1);
    let c = repo.index_version().await.unwrap();
    assert!(c > b);
    // Deleting nothing changes nothing.
    assert_eq!(repo.delete_documents("docs", &["webhooks".to_string()]).await.unwrap(), 0);
    assert_eq!(repo.index_version().await.unwrap(), c);
    // Other guilds are untouched.
    assert_eq!(KbRepo::new(store.guild(OTHER)).index_version().await.unwrap(), 0);
}

#[tokio::test]
async fn a_purged_guilds_index_file_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let index_dir = tmp.path().join("kb-index");
    let store = sqlite_store(tmp.path()).await;
    let kb = open(&store, Some(&index_dir), embedder()).await;
    kb.sync(GUILD, &v1(), &mut |_| {}).await.unwrap();
    kb.sync(OTHER, &v2(), &mut |_| {}).await.unwrap();
    assert!(kb.forget_purged_guilds().await.unwrap().is_empty(), "both guilds are live");

    // The guild leaves and its retention passes: the store purges its rows.
    store.guild(GUILD).upsert("gone", None).await.unwrap();
    store.guild(GUILD).mark_left().await.unwrap();
    assert_eq!(store.purge_left_guilds(beacon_store::now_ms() + 1).await.unwrap(), vec![GUILD]);

    assert_eq!(kb.forget_purged_guilds().await.unwrap(), vec![GUILD]);
    assert!(!index_dir.join(format!("guild-{GUILD}.kbi")).exists());
    assert!(index_dir.join(format!("guild-{OTHER}.kbi")).is_file());
    assert!(kb.retriever().guild(GUILD).is_none());
    assert!(kb.search(GUILD, "MSI installer administrator", 3).await.unwrap().is_empty());
    assert!(!kb.search(OTHER, "refunds", 3).await.unwrap().is_empty());
}
