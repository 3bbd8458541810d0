//! The Notion source against the fake Notion API.

use std::time::Duration;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::fusion::FusionConfig;
use beacon_kb::ingest::KnowledgeBase;
use beacon_kb::notion::{NotionConfig, NotionSource};
use beacon_kb::source::Source;
use beacon_store::Store;
use beacon_testkit::notion::{FakeNotion, FakeNotionOptions, NotionBlock};

const GUILD: u64 = 81384788765712384;

fn config(fake: &FakeNotion) -> NotionConfig {
    NotionConfig { base_url: fake.base_url(), max_retry_wait: Duration::from_secs(5), ..NotionConfig::default() }
}

/// A fake that does not rate-limit, for tests about content.
async fn unlimited(max_page_size: usize) -> FakeNotion {
    FakeNotion::start_with(FakeNotionOptions { max_page_size, requests_per_second: 10_000 }).await.unwrap()
}

fn unpaced(fake: &FakeNotion) -> NotionConfig {
    NotionConfig { requests_per_second: 0.0, ..config(fake) }
}

#[tokio::test]
async fn pages_and_nested_blocks_are_read_across_pagination() {
    let fake = unlimited(2).await;
    let guide = fake.add_page(
        "Install guide",
        vec![
            NotionBlock::heading(1, "Windows"),
            NotionBlock::paragraph("Run the MSI installer as administrator."),
            NotionBlock::bullet("Needs Windows 10").with_children(vec![NotionBlock::bullet("or newer")]),
            NotionBlock::numbered("Download"),
            NotionBlock::numbered("Install"),
            NotionBlock::code("shell", "beacon --version"),
            NotionBlock::toggle(
                "Troubleshooting",
                vec![
                    NotionBlock::paragraph("Reboot first."),
                    NotionBlock::paragraph("Then reinstall."),
                    NotionBlock::paragraph("Then call us."),
                ],
            ),
        ],
    );
    fake.add_page("Billing", vec![NotionBlock::paragraph("Refunds within 14 days.")]);
    fake.add_page("Hours", vec![NotionBlock::paragraph("Nine to five.")]);

    let source = NotionSource::new("notion", unpaced(&fake), fake.token()).unwrap();
    let mut docs = source.documents().await.unwrap();
    docs.sort_by(|a, b| a.title.cmp(&b.title));
    let titles: Vec<&str> = docs.iter().map(|d| d.title.as_str()).collect();
    assert_eq!(titles, vec!["Billing", "Hours", "Install guide"], "search results span two pages");

    let install = &docs[2];
    assert_eq!(install.key, format!("notion:{guide}"));
    assert_eq!(install.url.as_deref(), Some(fake.page_url(&guide).as_str()));
    assert_eq!(
        install.text,
        "# Install guide\n\n## Windows\n\nRun the MSI installer as administrator.\n\n- Needs Windows 10\n  - or newer\n\
         1. Download\n2. Install\n```shell\nbeacon --version\n```\n\nTroubleshooting\n\nReboot first.\n\n\
         Then reinstall.\n\nThen call us."
    );

    let reqs = fake.requests();
    let cursors = reqs.iter().filter(|r| r.query.as_deref().is_some_and(|q| q.contains("start_cursor="))).count();
    assert!(cursors >= 4, "block lists of 7 and 3 with pages of 2 need follow-up pages: {reqs:?}");
    assert!(reqs.iter().all(|r| r.status == 200), "{reqs:?}");
    assert!(
        reqs.iter().filter(|r| r.path == "/v1/search").count() >= 2,
        "3 search results in pages of 2 need two calls"
    );
}

#[tokio::test]
async fn database_rows_become_documents() {
    let fake = unlimited(2).await;
    let (db, rows) = fake.add_database(
        "FAQ",
        vec![
            ("Can I pay by card?".into(), vec![NotionBlock::paragraph("Yes, all major cards.")]),
            ("Do you ship abroad?".into(), vec![NotionBlock::paragraph("To the EU only.")]),
            ("Where is my invoice?".into(), vec![NotionBlock::paragraph("In the billing portal.")]),
        ],
    );
    fake.add_page("Unrelated page", vec![NotionBlock::paragraph("not configured")]);
    let cfg = NotionConfig { databases: vec![db], ..unpaced(&fake) };
    let docs = NotionSource::new("notion", cfg, fake.token()).unwrap().documents().await.unwrap();
    let got: Vec<(&str, &str)> = docs.iter().map(|d| (d.key.as_str(), d.title.as_str())).collect();
    let want: Vec<(String, &str)> = rows
        .iter()
        .map(|r| format!("notion:{r}"))
        .zip(["Can I pay by card?", "Do you ship abroad?", "Where is my invoice?"])
        .collect();
    assert_eq!(got, want.iter().map(|(k, t)| (k.as_str(), *t)).collect::<Vec<_>>());
    assert!(docs[1].text.contains("To the EU only."));
    let queries = fake.requests().iter().filter(|r| r.path.ends_with("/query")).count();
    assert_eq!(queries, 2, "3 rows in pages of 2");
    assert!(fake.requests().iter().all(|r| r.path != "/v1/search"), "configured sources do not search");
}

#[tokio::test]
async fn configured_pages_are_fetched_by_id() {
    let fake = unlimited(100).await;
    let wanted = fake.add_page("Wanted", vec![NotionBlock::paragraph("here")]);
    fake.add_page("Other", vec![NotionBlock::paragraph("not here")]);
    let cfg = NotionConfig { pages: vec![wanted.clone()], ..unpaced(&fake) };
    let docs = NotionSource::new("notion", cfg, fake.token()).unwrap().documents().await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!((docs[0].key.clone(), docs[0].title.as_str()), (format!("notion:{wanted}"), "Wanted"));
}

#[tokio::test]
async fn paced_client_never_hits_the_rate_limit() {
    // The fake enforces Notion's 3 requests/s; 8 requests at the default pacing stay within it.
    let fake = FakeNotion::start().await.unwrap();
    for i in 0..3 {
        fake.add_page(&format!("Page {i}"), vec![NotionBlock::toggle("t", vec![NotionBlock::paragraph("inner")])]);
    }
    let docs = NotionSource::new("notion", config(&fake), fake.token()).unwrap().documents().await.unwrap();
    assert_eq!(docs.len(), 3);
    assert!(fake.requests().len() >= 7);
    assert_eq!(fake.count_status(429), 0, "{:?}", fake.requests());
}

#[tokio::test]
async fn unpaced_client_is_limited_and_recovers_through_retry_after() {
    let fake = FakeNotion::start().await.unwrap();
    for i in 0..3 {
        fake.add_page(&format!("Page {i}"), vec![NotionBlock::toggle("t", vec![NotionBlock::paragraph("inner")])]);
    }
    let docs = NotionSource::new("notion", unpaced(&fake), fake.token()).unwrap().documents().await.unwrap();
    assert_eq!(docs.len(), 3);
    assert!(docs.iter().all(|d| d.text.contains("inner")));
    assert!(fake.count_status(429) > 0, "a burst of 7 requests exceeds 3/s: {:?}", fake.requests());
}

#[tokio::test]
async fn injected_429_is_retried_and_persistent_errors_fail() {
    let fake = unlimited(100).await;
    fake.add_page("Only", vec![NotionBlock::paragraph("content")]);
    fake.inject_fault(429, 1);
    let source = NotionSource::new("notion", unpaced(&fake), fake.token()).unwrap();
    let docs = source.documents().await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(fake.count_status(429), 1);

    let cfg = NotionConfig { max_retries: 1, ..unpaced(&fake) };
    fake.inject_fault(503, 2);
    let err = NotionSource::new("notion", cfg, fake.token()).unwrap().documents().await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn a_wrong_token_is_an_error_that_does_not_leak_the_token() {
    let fake = unlimited(100).await;
    fake.add_page("Only", vec![]);
    let err = NotionSource::new("notion", unpaced(&fake), "secret_wrong").unwrap().documents().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("401"), "{msg}");
    assert!(!msg.contains("secret_wrong"));
    assert_eq!(fake.count_status(401), 1);
}

#[tokio::test]
async fn synced_notion_content_is_searchable() {
    let fake = unlimited(2).await;
    fake.add_page(
        "Refund policy",
        vec![
            NotionBlock::heading(2, "Timing"),
            NotionBlock::paragraph("Refunds reach the original card within fourteen days."),
        ],
    );
    fake.add_page("Shipping", vec![NotionBlock::paragraph("Parcels leave the warehouse on weekdays.")]);
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let kb = KnowledgeBase::open(store, None, FusionConfig::default(), ChunkerConfig::default()).await.unwrap();
    let source = NotionSource::new("notion", unpaced(&fake), fake.token()).unwrap();
    let report = kb.sync(GUILD, &source, &mut |_| {}).await.unwrap();
    assert_eq!((report.documents, report.written), (2, 2));
    let hits = kb.search(GUILD, "refund card fourteen days", 3).await.unwrap();
    assert_eq!(hits[0].title, "Refund policy");
    assert!(hits[0].document_key.starts_with("notion:"));
    assert!(hits[0].text.contains("fourteen days"));
    let hits = kb.search(GUILD, "warehouse parcels", 1).await.unwrap();
    assert_eq!(hits[0].title, "Shipping");
}
