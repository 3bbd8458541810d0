//! Ticket transcripts in an S3-compatible store chosen by configuration: moto's server mode
//! (`moto_server`, from PyPI) plays S3. Fails when BEACON_TEST_REQUIRE_SERVICES=1 and moto is missing.

use beacon_testkit::Delivery;
use beacon_testkit::services::MotoServer;

use crate::harness::*;

#[tokio::test]
async fn closed_tickets_store_their_transcript_in_the_configured_bucket() {
    beacon_testkit::install_tls_provider();
    let Some(moto) = MotoServer::start().await else { return };
    let endpoint = moto.endpoint().to_owned();
    let http = reqwest::Client::new();
    assert!(http.put(format!("{endpoint}/transcripts")).send().await.unwrap().status().is_success());
    let t = TestApp::spawn_with(Options {
        env: vec![
            ("BEACON_TRANSCRIPTS_S3_BUCKET".into(), "transcripts".into()),
            ("BEACON_TRANSCRIPTS_S3_ENDPOINT".into(), endpoint.clone()),
            ("BEACON_TRANSCRIPTS_S3_ACCESS_KEY_ID".into(), "test".into()),
            ("BEACON_TRANSCRIPTS_S3_SECRET_ACCESS_KEY".into(), "test".into()),
            ("BEACON_TRANSCRIPTS_PUBLIC_URL".into(), "https://files.example/transcripts".into()),
        ],
        ..Options::default()
    })
    .await;
    let bob = t.member("bob");
    let thread = t.open_ticket(bob, "Parcel never arrived").await;
    t.fake.send_message(t.guild.id, thread, bob, "It was due last Monday.").await.unwrap();
    let panel = t
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| serde_json::to_string(&m["components"]).unwrap_or_default().contains("tickets:close:1"))
        .and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .expect("ticket panel");
    let h = t.fake.click_button(t.guild.id, thread, bob, panel, "tickets:close:1", Delivery::Gateway).await.unwrap();
    t.fake.wait_response(&h, WAIT).await.unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    let key = loop {
        let key: Option<String> =
            sqlx::query_scalar("SELECT transcript_key FROM tickets WHERE guild_id = $1 AND number = 1")
                .bind(t.guild.id as i64)
                .fetch_one(t.app().store.pool())
                .await
                .unwrap();
        if let Some(k) = key {
            break k;
        }
        assert!(tokio::time::Instant::now() < deadline, "no transcript stored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The object is in the bucket: another client (another worker) with the same credentials reads it.
    let other = beacon_tickets::TranscriptStore::s3(&beacon_tickets::S3Options {
        bucket: "transcripts".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint.clone()),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        public_base_url: None,
    })
    .unwrap();
    let html = String::from_utf8(other.get(&key).await.expect("transcript in the bucket")).unwrap();
    assert!(html.contains("Parcel never arrived") && html.contains("It was due last Monday."), "{html}");
    assert!(
        !std::path::Path::new(&t.app().config.data_dir.join("transcripts").join(&key)).exists(),
        "not stored locally"
    );
    // A guild purge removes its transcripts from the bucket too.
    let report = t.app().purge_guild(t.guild.id).await.unwrap();
    assert!(
        report.iter().any(|l| l.starts_with("tickets: 1 transcript(s) removed from s3://transcripts")),
        "{report:?}"
    );
    assert!(other.get(&key).await.is_err(), "the transcript is gone from the bucket");
    t.stop().await;
}
