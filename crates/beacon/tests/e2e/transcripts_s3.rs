//! Ticket transcripts in an S3-compatible store chosen by configuration: moto's server mode
//! (`moto_server`, from PyPI) plays S3. Fails when BEACON_TEST_REQUIRE_SERVICES=1 and moto is missing.

use std::process::Stdio;
use std::time::Duration;

use beacon_testkit::Delivery;

use crate::support::*;

async fn moto() -> Option<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let child = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("BEACON_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "BEACON_TEST_REQUIRE_SERVICES=1 but moto_server cannot start: {e}"
            );
            eprintln!("skipping: moto_server not available ({e})");
            return None;
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some((child, format!("http://127.0.0.1:{port}")))
}

#[tokio::test]
async fn closed_tickets_store_their_transcript_in_the_configured_bucket() {
    beacon_testkit::install_tls_provider();
    let Some((mut moto, endpoint)) = moto().await else { return };
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
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    t.stop().await;
    let _ = moto.kill().await;
}
