//! Discord's 429s are counted even though twilight-http retries them out of sight: the fake
//! Discord answers one request 429 (with Discord's headers), twilight waits and retries, the
//! caller sees success, and [`rate_limited_total`] has counted the 429.

use beacon_discord::ratelimits::{RateLimitCounter, rate_limited_total};
use beacon_discord::rest;
use beacon_testkit::{FakeDiscord, FakeOptions, Fault, FaultKind, GuildSpec};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};
use twilight_model::id::Id;

#[tokio::test(flavor = "current_thread")]
async fn a_retried_429_is_counted_whatever_the_log_level() {
    // The operator's log level is `warn`: twilight's info event is not printed, yet counted.
    let subscriber = Registry::default()
        .with(tracing_subscriber::fmt::layer().with_test_writer().with_filter(LevelFilter::WARN))
        .with(RateLimitCounter.with_filter(RateLimitCounter::filter()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeDiscord::start(FakeOptions::default()).await.expect("fake Discord");
    let guild = fake.create_guild(GuildSpec {
        name: "Support".into(),
        text_channels: vec!["help".into()],
        ..Default::default()
    });
    let channel = Id::new(guild.channels[0].id);
    let http = rest::client(Some(&fake.bot_token()), &fake.base_url()).expect("client");

    let before = rate_limited_total();
    http.create_message(channel).content("first").await.expect("sent");
    assert_eq!(rate_limited_total(), before, "no 429 yet");

    fake.inject(Fault {
        method: Some("POST".into()),
        path_contains: "/messages".into(),
        kind: FaultKind::Status(429),
        times: 1,
    });
    let sent = http.create_message(channel).content("second").await.expect("sent after the retry");
    assert_eq!(sent.model().await.expect("message").content, "second");
    assert_eq!(rate_limited_total(), before + 1, "the retried 429 is counted once");
    let posts: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [200, 429, 200], "first, the 429, and its retry reached Discord");
}
