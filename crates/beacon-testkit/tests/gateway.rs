//! Gateway: a twilight shard (READY, GUILD_CREATE, resume without losing events), a client
//! written by hand from Discord's docs, compression, and identify checks.

mod common;

use beacon_testkit::FakeOptions;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::timeout;
use tokio_websockets::{ClientBuilder, Message};
use twilight_gateway::{ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _};

const WAIT: Duration = Duration::from_secs(15);

async fn next_matching(shard: &mut Shard, mut pred: impl FnMut(&Event) -> bool) -> Event {
    loop {
        match timeout(WAIT, shard.next_event(EventTypeFlags::all())).await {
            Ok(Some(Ok(ev))) if pred(&ev) => return ev,
            Ok(Some(_)) => {}
            Ok(None) => panic!("shard stream ended"),
            Err(_) => panic!("timed out waiting for a gateway event"),
        }
    }
}

#[tokio::test]
async fn twilight_shard_resumes_without_losing_events() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(fake.bot_token(), intents).proxy_url(fake.gateway_url()).build();
    let mut shard = Shard::with_config(ShardId::ONE, config);

    let ready = next_matching(&mut shard, |e| matches!(e, Event::Ready(_))).await;
    let Event::Ready(ready) = ready else { unreachable!() };
    assert_eq!(ready.guilds.len(), 1);
    assert_eq!(ready.application.id.get(), fake.application_id());
    let created = next_matching(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await;
    let Event::GuildCreate(created) = created else { unreachable!() };
    assert_eq!(created.id().get(), g.id);
    assert_eq!(fake.connected_shards(), vec![(0, 1)]);

    // Abrupt TCP drop, then an event while the bot is away.
    fake.gateway_disconnect_all(None).await;
    let sent = fake.send_message(g.id, g.channels[0].id, alice, "sent while you were away").await.unwrap();
    let ev = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await;
    let Event::MessageCreate(msg) = ev else { unreachable!() };
    assert_eq!(msg.id.get(), sent);
    assert_eq!(msg.content, "sent while you were away");
    assert_eq!(fake.resume_count(), 1);
    assert_eq!(fake.identify_count(), 1);

    // A clean close with a resumable code and an op 7 also resume.
    fake.gateway_send_reconnect().await;
    let sent = fake.send_message(g.id, g.channels[0].id, alice, "after reconnect").await.unwrap();
    let ev = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await;
    let Event::MessageCreate(msg) = ev else { unreachable!() };
    assert_eq!(msg.id.get(), sent);
    fake.assert_no_violations();
}

/// As on Discord, a client that closes with 4000 may resume its session from another connection
/// (a gateway process handing its shards to the next one); one that closes with 1000 ended it.
#[tokio::test]
async fn a_session_closed_with_4000_resumes_elsewhere_and_one_closed_with_1000_does_not() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(fake.bot_token(), intents).proxy_url(fake.gateway_url()).build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    next_matching(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await;
    for (code, resumed) in [(4000, true), (1000, false)] {
        let session = shard.session().cloned().expect("a session");
        let resume_url = shard.resume_url().map(str::to_owned);
        shard.close(twilight_gateway::CloseFrame::new(code, "handing over"));
        // The frame is sent while the shard is polled; then the process is gone.
        let _ = timeout(Duration::from_millis(500), shard.next_event(EventTypeFlags::all())).await;
        drop(shard);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = fake.send_message(g.id, g.channels[0].id, alice, "while no process had the shard").await.unwrap();
        let (identifies, resumes) = (fake.identify_count(), fake.resume_count());
        if !resumed {
            // The identify that follows the refused resume keeps Discord's 5 s spacing.
            tokio::time::sleep(Duration::from_millis(5_500)).await;
        }
        let mut next = ConfigBuilder::new(fake.bot_token(), intents).proxy_url(fake.gateway_url()).session(session);
        if let Some(url) = resume_url {
            next = next.resume_url(url);
        }
        shard = Shard::with_config(ShardId::ONE, next.build());
        if resumed {
            let Event::MessageCreate(msg) = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await
            else {
                unreachable!()
            };
            assert_eq!(msg.id.get(), sent, "the event sent meanwhile is replayed on resume");
            assert_eq!((fake.identify_count(), fake.resume_count()), (identifies, resumes + 1));
        } else {
            // Invalid session: the shard identifies again, as a new session.
            next_matching(&mut shard, |e| matches!(e, Event::Ready(_))).await;
            assert_eq!((fake.identify_count(), fake.resume_count()), (identifies + 1, resumes));
        }
    }
    fake.assert_no_violations();
}

#[tokio::test]
async fn message_content_is_empty_without_the_intent() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let config = ConfigBuilder::new(fake.bot_token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .proxy_url(fake.gateway_url())
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    next_matching(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await;
    fake.send_message(g.id, g.channels[0].id, common::member(&g, "alice"), "secret").await.unwrap();
    let Event::MessageCreate(msg) = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await else {
        unreachable!()
    };
    assert_eq!(msg.content, "");
    // Guilds created later reach the connected bot.
    let later = common::guild(&fake);
    let Event::GuildCreate(created) = next_matching(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await else {
        unreachable!()
    };
    assert_eq!(created.id().get(), later.id);
}

type Ws = tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    let (ws, _) = ClientBuilder::new().uri(url).unwrap().connect().await.unwrap();
    ws
}

async fn recv_json(ws: &mut Ws) -> Value {
    let msg = timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").expect("ok");
    serde_json::from_str(msg.as_text().expect("text frame")).unwrap()
}

async fn recv_close(ws: &mut Ws) -> u16 {
    loop {
        let msg = timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").expect("ok");
        if let Some((code, _)) = msg.as_close() {
            return code.into();
        }
    }
}

async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// A bot written from Discord's gateway documentation, without any Discord library.
#[tokio::test]
async fn hand_written_client_from_the_docs() {
    let fake =
        common::start(FakeOptions { heartbeat_interval: Duration::from_millis(500), ..FakeOptions::default() }).await;
    let g = common::guild(&fake);
    let mut ws = connect(&format!("{}/?v=10&encoding=json", fake.gateway_url())).await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["d"]["heartbeat_interval"], 500);
    send_json(&mut ws, json!({"op": 2, "d": {"token": fake.bot_token(), "intents": 513, "properties": {"os": "linux", "browser": "docs-bot", "device": "docs-bot"}}})).await;
    let ready = recv_json(&mut ws).await;
    assert_eq!((ready["op"].as_u64(), ready["t"].as_str(), ready["s"].as_u64()), (Some(0), Some("READY"), Some(1)));
    assert_eq!(ready["d"]["resume_gateway_url"], fake.gateway_url());
    assert_eq!(ready["d"]["guilds"][0]["unavailable"], true);
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let guild = recv_json(&mut ws).await;
    assert_eq!(guild["t"], "GUILD_CREATE");
    assert_eq!(guild["s"], 2);
    assert_eq!(guild["d"]["id"], g.id.to_string());
    assert!(guild["d"]["channels"].as_array().unwrap().len() >= 2);
    send_json(&mut ws, json!({"op": 1, "d": 2})).await;
    assert_eq!(recv_json(&mut ws).await["op"], 11);

    // REST with the same token works; without it, it does not.
    let http = reqwest::Client::new();
    let ok = http
        .get(format!("{}/api/v10/gateway/bot", fake.base_url()))
        .header("authorization", format!("Bot {}", fake.bot_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["url"], fake.gateway_url());
    assert_eq!(body["session_start_limit"]["max_concurrency"], 1);
    assert_eq!(http.get(format!("{}/api/v10/gateway/bot", fake.base_url())).send().await.unwrap().status(), 401);

    // Resume on a new connection replays what was missed.
    drop(ws);
    fake.send_message(g.id, g.channels[0].id, common::member(&g, "alice"), "missed").await.unwrap();
    let mut ws = connect(&format!("{}/?v=10&encoding=json", fake.gateway_url())).await;
    recv_json(&mut ws).await;
    send_json(&mut ws, json!({"op": 6, "d": {"token": fake.bot_token(), "session_id": session_id, "seq": 2}})).await;
    let replay = recv_json(&mut ws).await;
    assert_eq!((replay["t"].as_str(), replay["s"].as_u64()), (Some("MESSAGE_CREATE"), Some(3)));
    assert_eq!(recv_json(&mut ws).await["t"], "RESUMED");
}

#[tokio::test]
async fn identify_is_checked() {
    let fake =
        common::start(FakeOptions { denied_intents: 1 << 15, max_concurrency: 1, ..FakeOptions::default() }).await;
    let url = format!("{}/?v=10&encoding=json", fake.gateway_url());
    let cases = [
        (json!({"token": "wrong", "intents": 1, "properties": {}}), 4004),
        (json!({"token": fake.bot_token(), "intents": 1u64 << 40, "properties": {}}), 4013),
        (json!({"token": fake.bot_token(), "intents": 1 | (1 << 15), "properties": {}}), 4014),
        (json!({"token": fake.bot_token(), "intents": 1, "properties": {}, "shard": [2, 2]}), 4010),
    ];
    for (d, code) in cases {
        let mut ws = connect(&url).await;
        recv_json(&mut ws).await;
        send_json(&mut ws, json!({"op": 2, "d": d})).await;
        assert_eq!(recv_close(&mut ws).await, code, "identify {d}");
    }
    // Two identifies in the same max_concurrency bucket within 5 s: the second is refused.
    let mut first = connect(&url).await;
    recv_json(&mut first).await;
    send_json(&mut first, json!({"op": 2, "d": {"token": fake.bot_token(), "intents": 1, "properties": {}}})).await;
    assert_eq!(recv_json(&mut first).await["t"], "READY");
    let mut second = connect(&url).await;
    recv_json(&mut second).await;
    send_json(
        &mut second,
        json!({"op": 2, "d": {"token": fake.bot_token(), "intents": 1, "properties": {}, "shard": [0, 1]}}),
    )
    .await;
    let invalid = recv_json(&mut second).await;
    assert_eq!((invalid["op"].as_u64(), invalid["d"].as_bool()), (Some(9), Some(false)));
    assert!(fake.violations().iter().any(|v| v.reason.contains("max_concurrency")));
}

async fn compressed_frames(compress: &str) -> Vec<String> {
    let fake = common::start(FakeOptions::default()).await;
    common::guild(&fake);
    let mut ws = connect(&format!("{}/?v=10&encoding=json&compress={compress}", fake.gateway_url())).await;
    let mut zlib = flate2::Decompress::new(true);
    let mut zstd = zstd_safe::DCtx::create();
    let mut decode = |bytes: &[u8]| -> String {
        if compress == "zlib-stream" {
            assert!(bytes.ends_with(&[0, 0, 0xff, 0xff]), "zlib-stream frames end with Z_SYNC_FLUSH");
            let mut out = Vec::with_capacity(1 << 20);
            zlib.decompress_vec(bytes, &mut out, flate2::FlushDecompress::Sync).unwrap();
            String::from_utf8(out).unwrap()
        } else {
            let mut buf = vec![0u8; 1 << 20];
            let mut input = zstd_safe::InBuffer::around(bytes);
            let mut output = zstd_safe::OutBuffer::around(&mut buf[..]);
            zstd.decompress_stream(&mut output, &mut input).unwrap();
            String::from_utf8(output.as_slice().to_vec()).unwrap()
        }
    };
    let mut texts = Vec::new();
    let hello = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(hello.is_binary());
    texts.push(decode(&hello.as_payload()[..]));
    send_json(&mut ws, json!({"op": 2, "d": {"token": fake.bot_token(), "intents": 1, "properties": {}}})).await;
    for _ in 0..2 {
        let frame = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        texts.push(decode(&frame.as_payload()[..]));
    }
    texts
}

#[tokio::test]
async fn zlib_and_zstd_stream_frames_decode() {
    for compress in ["zlib-stream", "zstd-stream"] {
        let texts = compressed_frames(compress).await;
        let parsed: Vec<Value> = texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        assert_eq!(parsed[0]["op"], 10, "{compress}");
        assert_eq!(parsed[1]["t"], "READY", "{compress}");
        assert_eq!(parsed[2]["t"], "GUILD_CREATE", "{compress}");
    }
}

#[tokio::test]
async fn a_flood_streams_distinct_message_creates_then_normal_events_continue() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(fake.bot_token(), intents).proxy_url(fake.gateway_url()).build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    next_matching(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await;

    assert_eq!(fake.flood_messages(300), 1);
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < 300 {
        let Event::MessageCreate(msg) = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await
        else {
            unreachable!()
        };
        assert_eq!(msg.guild_id.map(|id| id.get()), Some(g.id));
        assert!(g.channels.iter().any(|c| c.id == msg.channel_id.get()));
        assert!(!msg.content.is_empty());
        assert!(ids.insert(msg.id.get()), "flood message ids are distinct");
    }
    assert_eq!(fake.flood_sent(), 300);

    // Events after the flood still arrive (sequence numbers were reserved, not reused).
    let sent = fake.send_message(g.id, g.channels[0].id, common::member(&g, "alice"), "after the flood").await.unwrap();
    let Event::MessageCreate(msg) = next_matching(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await else {
        unreachable!()
    };
    assert_eq!(msg.id.get(), sent);
    fake.assert_no_violations();
}
