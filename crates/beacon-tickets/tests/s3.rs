//! Transcripts in an S3-compatible store: moto's server mode (`moto_server`, from PyPI) on a
//! local port. Skipped when moto is not installed, unless BEACON_TEST_REQUIRE_SERVICES=1.

use beacon_testkit::services::MotoServer;
use beacon_tickets::{Line, S3Options, Status, Ticket, TranscriptStore, render_transcript};

fn ticket() -> Ticket {
    Ticket {
        guild_id: 77,
        number: 12,
        opener_id: 5,
        channel_id: Some(6),
        message_id: None,
        topic: "Invoice missing".into(),
        status: Status::Closed,
        claimed_by: None,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_100_000,
        updated_by: 5,
        last_activity_at: 1_700_000_100_000,
        first_response_at: None,
        first_responder_id: None,
        closed_at: Some(1_700_000_100_000),
        closed_by: Some(5),
        paused_ms: 0,
        paused_since: None,
        first_response_breached: false,
        resolution_breached: false,
        transcript_key: None,
        rating: None,
        feedback: None,
        reopened_count: 0,
        panel_id: None,
        answers: Vec::new(),
    }
}

/// A store on moto's bucket `bucket` (moto takes any credentials).
fn moto_store(moto: &MotoServer, bucket: &str, public_base_url: Option<&str>) -> TranscriptStore {
    TranscriptStore::s3(&S3Options {
        bucket: bucket.into(),
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint().to_owned()),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        public_base_url: public_base_url.map(str::to_owned),
    })
    .expect("s3 store")
}

#[tokio::test]
async fn transcripts_round_trip_through_s3() {
    let Some(moto) = MotoServer::start().await else {
        return;
    };
    // moto accepts unsigned requests: create the bucket directly.
    beacon_http::install_crypto_provider();
    let http = beacon_http::client(&beacon_http::ClientOptions::default()).expect("http client");
    let created = http.put(format!("{}/transcripts", moto.endpoint())).send().await.expect("create bucket");
    assert!(created.status().is_success(), "{}", created.status());
    let store = moto_store(&moto, "transcripts", Some("https://files.example/transcripts"));
    assert_eq!(store.location(), "s3://transcripts");
    store.probe().await.expect("the bucket answers");
    let lines = vec![Line {
        author_id: 5,
        author: "carol".into(),
        bot: false,
        at_ms: 1_700_000_050_000,
        content: "Where is my invoice?".into(),
        attachments: vec![("scan.png".into(), "https://cdn.example/scan.png".into())],
        embeds: vec![],
    }];
    let page = render_transcript("Shop", &ticket(), &lines);
    let key = "guilds/77/tickets/000012-1700000100000.html";
    store.put(key, page.clone()).await.expect("put");
    let back = store.get(key).await.expect("get");
    assert_eq!(String::from_utf8(back).unwrap(), page);
    assert!(page.contains("Where is my invoice?") && page.contains("scan.png"));
    assert_eq!(store.link(key), "https://files.example/transcripts/guilds/77/tickets/000012-1700000100000.html");
    // Another client (another worker) reads the same object from the bucket.
    let other = moto_store(&moto, "transcripts", None);
    assert_eq!(other.get(key).await.expect("visible to others"), page.as_bytes());
    assert_eq!(other.link(key), format!("s3://transcripts/{key}"));
    store.delete(key).await.expect("delete");
    assert!(store.get(key).await.is_err(), "deleted by retention");
    store.delete(key).await.expect("deleting twice is fine");
}

#[tokio::test]
async fn the_probe_fails_on_a_missing_bucket_and_passes_on_an_empty_folder() {
    let Some(moto) = MotoServer::start().await else {
        return;
    };
    beacon_http::install_crypto_provider();
    let store = moto_store(&moto, "no-such-bucket", None);
    let err = store.probe().await.expect_err("a missing bucket is not ready");
    assert!(err.to_string().to_lowercase().contains("bucket") || err.to_string().contains("404"), "{err}");

    let folder = tempfile::tempdir().expect("tempdir");
    let local = TranscriptStore::local(folder.path()).expect("folder store");
    local.probe().await.expect("an empty folder is ready");
}
