//! FAQ entries as knowledge-base documents (the FAQ's `GuildSource`): adds, edits and removals
//! reach search.

use std::sync::Arc;

use beacon_faq::{EntryInput, FaqRepo, FaqSource, Feeds, SCHEMA};
use beacon_kb::GuildSource;
use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::fusion::FusionConfig;
use beacon_kb::ingest::KnowledgeBase;
use beacon_store::Store;

const GUILD: u64 = 81384788765712384;
const OTHER: u64 = 41771983423143937;

fn input(q: &str, a: &str) -> EntryInput {
    EntryInput::new(q, a, &[], false).unwrap()
}

#[tokio::test]
async fn faq_changes_propagate_through_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("kb.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate_schema(&SCHEMA).await.unwrap();
    let feeds = Feeds::default();
    let repo = FaqRepo::with_feeds(store.clone(), feeds.clone());
    let kb = KnowledgeBase::open(store.clone(), None, FusionConfig::default(), ChunkerConfig::default()).await.unwrap();
    let guild = store.guild(GUILD);
    let source = FaqSource::new(feeds);

    let refunds = repo
        .add(&guild, &input("How do refunds work?", "Refunds reach your card within fourteen days."), 1)
        .await
        .unwrap();
    let hours = repo.add(&guild, &input("When are you open?", "Weekdays from nine to five."), 1).await.unwrap();
    repo.add(&store.guild(OTHER), &input("Secret other guild question?", "Other guild answer about warehouses."), 1)
        .await
        .unwrap();

    let docs = source.documents(guild.clone()).await.unwrap();
    let keys: Vec<String> = docs.iter().map(|d| d.key.clone()).collect();
    assert_eq!(keys, vec![format!("faq:{}", refunds.id), format!("faq:{}", hours.id)]);
    assert_eq!(docs[0].title, "How do refunds work?");

    // Add.
    kb.sync_guild_source(GUILD, &source).await.unwrap();
    let hits = kb.search(GUILD, "refunds card", 3).await.unwrap();
    assert_eq!(hits[0].document_key, format!("faq:{}", refunds.id));
    assert_eq!(hits[0].title, "How do refunds work?");
    assert!(kb.search(GUILD, "warehouses", 3).await.unwrap().is_empty(), "another guild's FAQ stays out");

    // Edit.
    repo.update(&guild, hours.id, &input("When are you open?", "Every day including weekends, around the clock."), 1)
        .await
        .unwrap();
    let report = kb.sync_guild_source(GUILD, &source).await.unwrap();
    assert_eq!((report.written, report.unchanged), (1, 1));
    let hits = kb.search(GUILD, "weekends clock", 3).await.unwrap();
    assert_eq!(hits[0].document_key, format!("faq:{}", hours.id));
    assert!(kb.search(GUILD, "nine five", 3).await.unwrap().iter().all(|h| !h.text.contains("nine to five")));

    // Remove.
    repo.remove(&guild, refunds.id, 1).await.unwrap();
    let report = kb.sync_guild_source(GUILD, &source).await.unwrap();
    assert_eq!((report.documents, report.deleted), (1, 1));
    let hits = kb.search(GUILD, "refunds card fourteen", 3).await.unwrap();
    assert!(hits.iter().all(|h| h.document_key != format!("faq:{}", refunds.id)), "{hits:?}");
}

/// Polls `search` until `done` holds for its hits (the follower runs in the background).
async fn eventually(kb: &KnowledgeBase, query: &str, done: impl Fn(&[beacon_kb::Hit]) -> bool) {
    for _ in 0..400 {
        if done(&kb.search(GUILD, query, 5).await.unwrap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("search for {query:?} never reached the expected state");
}

#[tokio::test]
async fn the_follower_keeps_the_knowledge_base_current() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("kb.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate_schema(&SCHEMA).await.unwrap();
    let feeds = Feeds::default();
    let repo = FaqRepo::with_feeds(store.clone(), feeds.clone());
    let kb = Arc::new(
        KnowledgeBase::open(store.clone(), None, FusionConfig::default(), ChunkerConfig::default()).await.unwrap(),
    );
    let source: Arc<dyn GuildSource> = Arc::new(FaqSource::new(feeds));
    let follower = {
        let kb = kb.clone();
        tokio::spawn(async move { kb.follow(source).await })
    };
    // The follower subscribes when it starts; give it that moment.
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let guild = store.guild(GUILD);
    let entry = repo
        .add(&guild, &input("Can I pay by invoice?", "Yes, invoices are payable within thirty days."), 1)
        .await
        .unwrap();
    let key = format!("faq:{}", entry.id);
    eventually(&kb, "invoice thirty days", |hits| hits.first().is_some_and(|h| h.document_key == key)).await;
    repo.remove(&guild, entry.id, 1).await.unwrap();
    eventually(&kb, "invoice thirty days", |hits| hits.iter().all(|h| h.document_key != key)).await;
    follower.abort();
}
