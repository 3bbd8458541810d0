//! Source kinds: one registered from outside the library, the `website` kind against a local
//! site, and uploads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use beacon_kb::error::{KbError, Result};
use beacon_kb::source::{BuildContext, Source, SourceDocument, SourceInput, SourceKind, StaticSource};
use beacon_kb::store::KbRepo;
use beacon_kb::{ChunkerConfig, CrawlOptions, FusionConfig, KnowledgeBase, UploadLimits};
use beacon_store::Store;

const GUILD: u64 = 81384788765712384;

async fn store() -> Store {
    let s = Store::connect("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    s
}

async fn kb(store: &Store) -> KnowledgeBase {
    KnowledgeBase::open(store.clone(), None, FusionConfig::default(), ChunkerConfig::default()).await.unwrap()
}

/// A kind this crate (not the library) defines: a memo typed into the input.
struct MemoKind;

impl SourceKind for MemoKind {
    fn name(&self) -> &'static str {
        "memo"
    }
    fn guild_may_add(&self) -> bool {
        true
    }
    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value> {
        let text = beacon_kb::source::required_field(input, "text")?;
        Ok(serde_json::json!({ "text": text }))
    }
    fn build(&self, name: &str, config: &serde_json::Value, _: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let text = config["text"].as_str().unwrap_or_default().to_owned();
        let doc = SourceDocument { key: "memo".into(), title: "Memo".into(), text, url: None };
        Ok(Box::new(StaticSource::new(name, vec![doc])))
    }
}

#[tokio::test]
async fn a_crate_outside_the_library_registers_a_source_kind() {
    let store = store().await;
    let plain = kb(&store).await;
    let input: SourceInput = [("text".to_owned(), "The office closes at noon on Fridays.".to_owned())].into();
    let err = plain.add_source_from_input(GUILD, "office", "memo", &input, None).await.err();
    assert!(err.is_some_and(|e| e.to_string().contains("no source kind `memo`")), "unknown before it is registered");

    let kb = kb(&store).await.with_source_kind(Arc::new(MemoKind));
    assert!(kb.kinds().names().contains(&"memo"));
    let missing = kb.add_source_from_input(GUILD, "office", "memo", &SourceInput::new(), None).await.err();
    assert!(matches!(missing, Some(KbError::Rejected(m)) if m.contains("`text` is required")));
    kb.add_source_from_input(GUILD, "office", "memo", &input, None).await.unwrap();
    let report = kb.sync_configured(GUILD, "office", &mut |_| {}).await.unwrap();
    assert_eq!(report.written, 1);
    // The scheduler syncs it like any other kind.
    let runs = kb.sync_due(beacon_store::now_ms() + 3_600_000).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].result.as_ref().map(|r| r.unchanged).ok(), Some(1));
    let hits = kb.search(GUILD, "When does the office close on Friday?", 1).await.unwrap();
    assert!(hits[0].text.contains("noon"), "{hits:?}");
}

/// A tiny site whose pages a test can change.
#[derive(Clone, Default)]
struct Site {
    pages: Arc<Mutex<BTreeMap<String, (String, String)>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn set(&self, path: &str, content_type: &str, body: &str) {
        self.pages.lock().unwrap().insert(path.to_owned(), (content_type.to_owned(), body.to_owned()));
    }
    fn remove(&self, path: &str) {
        self.pages.lock().unwrap().remove(path);
    }
    fn requested(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    async fn serve(&self) -> String {
        let site = self.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let site = site.clone();
            async move {
                let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
                site.hits.lock().unwrap().push(path.clone());
                match site.pages.lock().unwrap().get(&path).cloned() {
                    Some((ct, body)) => ([(axum::http::header::CONTENT_TYPE, ct)], body).into_response(),
                    None => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

fn page(title: &str, body: &str, links: &[&str]) -> String {
    let links: String = links.iter().map(|l| format!("<a href=\"{l}\">link</a> ")).collect();
    format!(
        "<html><head><title>{title}</title><script>var hidden = 1;</script></head><body><nav>{links}</nav><h1>{title}</h1><p>{body}</p></body></html>"
    )
}

const HTML: &str = "text/html; charset=utf-8";

fn crawler(delay: Duration) -> Arc<beacon_kb::web::WebsiteKind> {
    Arc::new(beacon_kb::web::WebsiteKind::new(CrawlOptions {
        delay,
        max_pages: 10,
        allow_private: true,
        ..CrawlOptions::default()
    }))
}

#[tokio::test]
async fn a_website_is_crawled_on_its_own_site_within_robots_txt_and_kept_current() {
    beacon_http::install_crypto_provider();
    let site = Site::default();
    let base = site.serve().await;
    site.set("/robots.txt", "text/plain", "User-agent: *\nDisallow: /private/\n");
    site.set(
        "/",
        HTML,
        &page(
            "Home",
            "Welcome to the docs.",
            &["/guide", "/private/secret", "http://elsewhere.invalid/page", "/missing", "#top"],
        ),
    );
    site.set("/guide", HTML, &page("Install guide", "Run the installer and restart twice.", &["/"]));
    site.set("/private/secret", HTML, &page("Secret", "The vault code is 1234.", &[]));
    let store = store().await;

    // By default a guild may not point Beacon at a private address.
    let input: SourceInput = [("url".to_owned(), format!("{base}/"))].into();
    let err = kb(&store).await.add_source_from_input(GUILD, "docs", "website", &input, None).await.err();
    assert!(matches!(err, Some(KbError::Rejected(m)) if m.contains("not a public address")));

    let kb = kb(&store).await.with_source_kind(crawler(Duration::ZERO));
    kb.add_source_from_input(GUILD, "docs", "website", &input, None).await.unwrap();
    let report = kb.sync_configured(GUILD, "docs", &mut |_| {}).await.unwrap();
    assert_eq!((report.documents, report.written), (2, 2), "{report:?}");
    let requested = site.requested();
    assert!(!requested.iter().any(|p| p.starts_with("/private")), "robots.txt was not obeyed: {requested:?}");
    let docs = KbRepo::new(store.guild(GUILD)).document_chunks().await.unwrap();
    let titles: Vec<&str> = docs.iter().map(|d| d.title.as_str()).collect();
    assert_eq!(titles, vec!["Home", "Install guide"]);
    let hits = kb.search(GUILD, "how do I install it", 5).await.unwrap();
    assert!(hits.iter().any(|h| h.text.contains("restart twice")), "{hits:?}");
    assert!(!hits.iter().any(|h| h.text.contains("hidden")), "script text was indexed: {hits:?}");

    // A changed page is re-indexed; a page gone (404) drops out; the rest is unchanged.
    site.set("/guide", HTML, &page("Install guide", "Run the installer and restart once.", &["/"]));
    let again = kb.sync_configured(GUILD, "docs", &mut |_| {}).await.unwrap();
    assert_eq!((again.written, again.unchanged, again.deleted), (1, 1, 0), "{again:?}");
    site.remove("/guide");
    let gone = kb.sync_configured(GUILD, "docs", &mut |_| {}).await.unwrap();
    assert_eq!((gone.documents, gone.deleted), (1, 1), "{gone:?}");
    // The start page gone (the site down or moved): the sync fails and keeps what it read.
    site.remove("/");
    assert!(kb.sync_configured(GUILD, "docs", &mut |_| {}).await.is_err());
    assert_eq!(KbRepo::new(store.guild(GUILD)).documents("docs").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_sitemap_lists_the_pages_and_off_site_entries_are_skipped() {
    beacon_http::install_crypto_provider();
    let site = Site::default();
    let base = site.serve().await;
    site.set("/robots.txt", "text/plain", "User-agent: beacon\nDisallow: /hidden\n");
    site.set(
        "/sitemap.xml",
        "application/xml",
        &format!(
            "<?xml version=\"1.0\"?><urlset><url><loc>{base}/a</loc></url><url><loc>{base}/hidden</loc></url>\
             <url><loc>http://elsewhere.invalid/b</loc></url><url><loc>{base}/plain.txt</loc></url></urlset>"
        ),
    );
    site.set("/a", HTML, &page("Pricing", "The pro plan costs nine euros.", &["/not-followed"]));
    site.set("/hidden", HTML, &page("Hidden", "Not for crawlers.", &[]));
    site.set("/plain.txt", "text/plain", "Support answers within a day.");
    site.set("/not-followed", HTML, &page("Elsewhere", "Only linked.", &[]));
    let store = store().await;
    let kb = kb(&store).await.with_source_kind(crawler(Duration::from_millis(1)));
    let input: SourceInput = [("url".to_owned(), format!("{base}/sitemap.xml"))].into();
    kb.add_source_from_input(GUILD, "site", "website", &input, None).await.unwrap();
    let report = kb.sync_configured(GUILD, "site", &mut |_| {}).await.unwrap();
    assert_eq!(report.documents, 2, "{report:?}");
    let keys: Vec<String> =
        KbRepo::new(store.guild(GUILD)).documents("site").await.unwrap().into_iter().map(|d| d.key).collect();
    assert_eq!(keys, vec!["/a".to_owned(), "/plain.txt".to_owned()]);
    assert!(!site.requested().iter().any(|p| p == "/hidden" || p == "/not-followed"), "{:?}", site.requested());

    // The sitemap itself gone: the sync fails and keeps the pages.
    site.remove("/sitemap.xml");
    assert!(kb.sync_configured(GUILD, "site", &mut |_| {}).await.is_err());
    assert_eq!(KbRepo::new(store.guild(GUILD)).documents("site").await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_are_limited_stored_per_guild_and_removed_with_their_source() {
    uploads_on(store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_uploads_are_limited_stored_per_guild_and_removed_with_their_source() {
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    uploads_on(store.clone()).await;
    store.close().await;
    db.drop_database().await;
}

async fn uploads_on(store: Store) {
    let kb = Arc::new(kb(&store).await.with_upload_limits(UploadLimits { max_file_bytes: 200, max_guild_bytes: 250 }));
    let guide = b"# Returns\n\nReturns are accepted within 30 days with the receipt.";
    let report = kb.upload(GUILD, "returns", "returns.md", guide).await.unwrap();
    assert_eq!(report.written, 1);
    let hits = kb.search(GUILD, "how long do I have to return", 1).await.unwrap();
    assert!(hits[0].text.contains("30 days") && hits[0].title == "Returns", "{hits:?}");

    let refused = |r: Result<beacon_kb::SyncReport>| match r {
        Err(KbError::Rejected(m)) => m,
        other => panic!("not refused: {other:?}"),
    };
    assert!(refused(kb.upload(GUILD, "big", "big.txt", &[b'a'; 201]).await).contains("at most"));
    assert!(refused(kb.upload(GUILD, "more", "more.txt", &[b'a'; 190]).await).contains("would take"));
    // Replacing a file counts it once.
    kb.upload(GUILD, "returns", "returns.md", &[b'b'; 190]).await.unwrap();
    // Another guild has its own quota and never sees this guild's files.
    kb.upload(7, "returns", "other.txt", &[b'c'; 190]).await.unwrap();
    assert_eq!(KbRepo::new(store.guild(7)).documents("returns").await.unwrap()[0].key, "other.txt");
    // A name taken by another kind stays that kind.
    kb.add_source(GUILD, "memo", "folder", &serde_json::json!({"path": "/nonexistent"}), None).await.unwrap();
    assert!(refused(kb.upload(GUILD, "memo", "memo.txt", b"x").await).contains("already a folder source"));

    assert!(KbRepo::new(store.guild(GUILD)).remove_source("returns").await.unwrap());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kb_uploads WHERE guild_id = $1")
        .bind(GUILD as i64)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(KbRepo::new(store.guild(GUILD)).documents("returns").await.unwrap().len(), 0);

    // Uploads at once cannot pass the quota together: of eight 100-byte files, two fit in 250.
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..8 {
        let kb = kb.clone();
        racers.spawn(async move { kb.upload(GUILD, &format!("race-{i}"), "race.txt", &[b'r'; 100]).await });
    }
    let mut stored = 0;
    while let Some(result) = racers.join_next().await {
        match result.unwrap() {
            Ok(_) => stored += 1,
            Err(e) => assert!(refused(Err(e)).contains("would take")),
        }
    }
    let used: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM kb_uploads WHERE guild_id = $1")
            .bind(GUILD as i64)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((stored, used), (2, 200), "within the guild's 250 bytes");
}
