//! The Google Sheets source against the fake token endpoint and values API.

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::fusion::FusionConfig;
use beacon_kb::ingest::KnowledgeBase;
use beacon_kb::sheets::{SHEETS_SCOPE, ServiceAccountKey, SheetsConfig, SheetsSource};
use beacon_kb::source::Source;
use beacon_store::Store;
use beacon_testkit::sheets::FakeSheets;

const GUILD: u64 = 81384788765712384;
const SHEET: &str = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms";

fn cells(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

async fn fake_with_faq() -> FakeSheets {
    let fake = FakeSheets::start().await.unwrap();
    fake.set_values(
        SHEET,
        cells(&[
            &["Topic", "Question", "Answer"],
            &["billing", "How do refunds work?", "Refunds reach the original card within fourteen days."],
            &["shipping", "Do you ship abroad?", "Parcels go to the EU only."],
        ]),
    );
    fake
}

fn source(fake: &FakeSheets, title_column: Option<&str>) -> SheetsSource {
    let key = ServiceAccountKey::from_base64(&fake.service_account_base64()).unwrap();
    let mut cfg = SheetsConfig::new(SHEET, "FAQ!A1:C");
    cfg.base_url = fake.base_url();
    cfg.title_column = title_column.map(str::to_owned);
    SheetsSource::new("sheet", cfg, key).unwrap()
}

#[tokio::test]
async fn token_exchange_signs_a_jwt_the_fake_accepts_and_caches_the_token() {
    let fake = fake_with_faq().await;
    let src = source(&fake, None);
    src.documents().await.unwrap();
    src.documents().await.unwrap();
    assert_eq!(fake.token_requests(), 1, "the token is cached while valid");
    let statuses: Vec<(String, u16)> = fake.requests().into_iter().map(|r| (r.path, r.status)).collect();
    assert_eq!(statuses[0], ("/token".to_string(), 200));
    assert_eq!(statuses.len(), 3);
}

#[tokio::test]
async fn a_tampered_or_foreign_assertion_is_refused() {
    let fake = fake_with_faq().await;
    let key = ServiceAccountKey::from_json(&fake.service_account_json()).unwrap();
    let jwt = key.assertion(SHEETS_SCOPE, 1_900_000_000).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    // The fake checks the RS256 signature: the genuine assertion is accepted, one with a swapped
    // payload (same signature) is not.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let fresh = key.assertion(SHEETS_SCOPE, now).unwrap();
    let other_payload = key.assertion(SHEETS_SCOPE, now + 1).unwrap();
    let fp: Vec<&str> = fresh.split('.').collect();
    let op: Vec<&str> = other_payload.split('.').collect();
    let forged = format!("{}.{}.{}", fp[0], op[1], fp[2]);
    beacon_testkit::install_tls_provider();
    let http = reqwest::Client::new();
    let post = |jwt: String| {
        http.post(fake.token_uri())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"))
            .send()
    };
    assert_eq!(post(forged).await.unwrap().status().as_u16(), 400);
    assert_eq!(post(fresh).await.unwrap().status().as_u16(), 200);
    assert_eq!(fake.token_requests(), 1);
    // A key with another e-mail signs validly but is not the account the fake knows.
    let mut other = key.clone();
    other.client_email = "intruder@example.iam.gserviceaccount.com".into();
    let mut cfg = SheetsConfig::new(SHEET, "A1:C");
    cfg.base_url = fake.base_url();
    let err = SheetsSource::new("sheet", cfg.clone(), other).unwrap().documents().await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    // A corrupted private key cannot sign at all.
    let mut broken = key;
    broken.private_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    assert!(SheetsSource::new("sheet", cfg, broken).unwrap().documents().await.is_err());
    assert_eq!(fake.token_requests(), 1, "nothing more was issued");
}

#[tokio::test]
async fn rows_become_documents() {
    let fake = fake_with_faq().await;
    let docs = source(&fake, Some("Question")).documents().await.unwrap();
    let got: Vec<(&str, &str)> = docs.iter().map(|d| (d.key.as_str(), d.title.as_str())).collect();
    assert_eq!(got, vec![("row:2", "How do refunds work?"), ("row:3", "Do you ship abroad?")]);
    assert_eq!(
        docs[0].text,
        "Topic: billing\nQuestion: How do refunds work?\nAnswer: Refunds reach the original card within fourteen days.\n"
    );
    let docs = source(&fake, None).documents().await.unwrap();
    assert_eq!(docs[1].title, "shipping", "without a title column the first cell titles the row");
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refreshed() {
    let fake = fake_with_faq().await;
    // Tokens that expire within the renewal margin are renewed on every use.
    fake.set_token_lifetime(30);
    let src = source(&fake, None);
    src.documents().await.unwrap();
    src.documents().await.unwrap();
    assert_eq!(fake.token_requests(), 2);

    // A cached token the API no longer accepts is replaced once.
    fake.set_token_lifetime(3600);
    let src = source(&fake, None);
    src.documents().await.unwrap();
    assert_eq!(fake.token_requests(), 3);
    fake.revoke_tokens();
    let docs = src.documents().await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(fake.token_requests(), 4);
    assert_eq!(fake.requests().iter().filter(|r| r.status == 401).count(), 1);
}

#[tokio::test]
async fn synced_rows_are_searchable_and_removed_rows_disappear() {
    let fake = fake_with_faq().await;
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let kb = KnowledgeBase::open(store, None, FusionConfig::default(), ChunkerConfig::default()).await.unwrap();
    let src = source(&fake, Some("Question"));
    let report = kb.sync(GUILD, &src, &mut |_| {}).await.unwrap();
    assert_eq!((report.documents, report.written), (2, 2));
    let hits = kb.search(GUILD, "refunds original card", 2).await.unwrap();
    assert_eq!(hits[0].title, "How do refunds work?");
    assert!(kb.search(GUILD, "parcels EU", 1).await.unwrap()[0].text.contains("EU only"));

    fake.set_values(
        SHEET,
        cells(&[
            &["Topic", "Question", "Answer"],
            &["billing", "How do refunds work?", "Refunds reach the original card within fourteen days."],
        ]),
    );
    kb.sync(GUILD, &src, &mut |_| {}).await.unwrap();
    let hits = kb.search(GUILD, "parcels EU", 5).await.unwrap();
    assert!(hits.iter().all(|h| h.title != "Do you ship abroad?"), "{hits:?}");
}
