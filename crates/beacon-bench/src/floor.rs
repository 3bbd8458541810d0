//! The floors the benchmarks compare Beacon with (issue 25): the least a process must do for each
//! scenario, built from the same libraries Beacon uses, so Beacon's own overhead is the distance.
//!
//! - [`interactions`]: a bare axum 0.8 server that verifies each request's Ed25519 signature
//!   (`verify_strict`, as Beacon does), reads the interaction's `type` and answers PONG (type 1)
//!   or a fixed type-4 message. Nothing else: no database, no routing, no logging.
//! - [`gateway`]: twilight's own example loop (one shard, `next_event(EventTypeFlags::all())`, so
//!   every event is deserialised) with the intents the peers use, optionally feeding twilight's
//!   in-memory cache (`DefaultInMemoryCache` with its default configuration). It prints
//!   `READY <guilds>` once every guild READY announced has arrived as GUILD_CREATE and
//!   `COUNT <n>` (MESSAGE_CREATEs received) every 250 ms, the protocol of bench/peers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ed25519_dalek::{Signature, VerifyingKey};
use twilight_cache_inmemory::DefaultInMemoryCache;
use twilight_gateway::{ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _};

/// The one field of an interaction the floor reads.
#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: u8,
}

const PONG: &str = r#"{"type":1}"#;
const MESSAGE: &str = r#"{"type":4,"data":{"content":"ok"}}"#;

/// Why a request was refused: the answer's status and text.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

/// The 64 signature bytes of `x-signature-ed25519`, if present and well-formed.
fn signature(headers: &HeaderMap) -> Option<Signature> {
    let hex_sig = headers.get("x-signature-ed25519")?.to_str().ok()?;
    let bytes: [u8; 64] = hex::decode(hex_sig).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// Verifies, reads the type, answers.
async fn interaction(State(key): State<Arc<VerifyingKey>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sig) = signature(&headers) else {
        return refuse(StatusCode::UNAUTHORIZED, "missing or malformed x-signature-ed25519");
    };
    let Some(timestamp) = headers.get("x-signature-timestamp") else {
        return refuse(StatusCode::UNAUTHORIZED, "missing x-signature-timestamp");
    };
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(&body);
    if key.verify_strict(&message, &sig).is_err() {
        return refuse(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    let answer = match serde_json::from_slice::<Kind>(&body) {
        Ok(Kind { kind: 1 }) => PONG,
        Ok(_) => MESSAGE,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "body is not an interaction (no numeric `type`)"),
    };
    ([(header::CONTENT_TYPE, "application/json")], answer).into_response()
}

/// The interactions floor's router: `POST /interactions` verified with `key`.
pub fn interactions_router(key: VerifyingKey) -> Router {
    Router::new().route("/interactions", post(interaction)).with_state(Arc::new(key))
}

/// Serves the interactions floor on 127.0.0.1:`port` (0 = ephemeral) and prints `LISTENING <port>`.
pub async fn interactions(key: VerifyingKey, port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("binding the floor's port")?;
    let port = listener.local_addr().context("reading the bound address")?.port();
    println!("LISTENING {port}");
    axum::serve(listener, interactions_router(key)).await.context("serving the interactions floor")
}

/// Runs the bare gateway loop against `url` (a `ws://` gateway such as fake-discord's) until the
/// connection ends for good, printing `READY` and `COUNT` lines.
pub async fn gateway(url: String, token: String, cache: bool) -> anyhow::Result<()> {
    let messages = Arc::new(AtomicU64::new(0));
    let counter = messages.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            println!("COUNT {}", counter.load(Ordering::Relaxed));
        }
    });
    let cache = cache.then(DefaultInMemoryCache::new);
    gateway_loop(shard(url, token), cache.as_ref(), &messages, |guilds| println!("READY {guilds}")).await;
    Ok(())
}

/// One shard with the peers' intents, connecting to `url`.
fn shard(url: String, token: String) -> Shard {
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(token, intents).proxy_url(url.trim_end_matches('/').to_owned()).build();
    Shard::with_config(ShardId::ONE, config)
}

/// twilight's example loop: every event deserialised, fed to the cache if there is one; counts
/// MESSAGE_CREATEs in `messages` and calls `on_ready` once every announced guild has arrived.
async fn gateway_loop(
    mut shard: Shard,
    cache: Option<&DefaultInMemoryCache>,
    messages: &AtomicU64,
    mut on_ready: impl FnMut(usize),
) {
    let mut announced: Option<usize> = None;
    let mut guilds = 0usize;
    let mut ready = false;
    while let Some(item) = shard.next_event(EventTypeFlags::all()).await {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                eprintln!("floor-gateway: {e}");
                continue;
            }
        };
        if let Some(cache) = cache {
            cache.update(&event);
        }
        match &event {
            Event::Ready(r) => announced = Some(r.guilds.len()),
            Event::GuildCreate(_) => guilds += 1,
            Event::MessageCreate(_) => {
                messages.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if !ready && announced.is_some_and(|n| guilds >= n) {
            ready = true;
            on_ready(guilds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use ed25519_dalek::{Signer, SigningKey};
    use tower::ServiceExt as _;

    fn request(key: &SigningKey, body: &str, tamper: bool) -> Request<Body> {
        let ts = "1700000000";
        let sig = key.sign(format!("{ts}{body}").as_bytes());
        let body = if tamper { format!("{body} ") } else { body.to_owned() };
        Request::post("/interactions")
            .header("x-signature-ed25519", hex::encode(sig.to_bytes()))
            .header("x-signature-timestamp", ts)
            .body(Body::from(body))
            .expect("request")
    }

    async fn answer(router: Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn the_floor_verifies_and_answers_by_type() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let router = interactions_router(key.verifying_key());
        assert_eq!(answer(router.clone(), request(&key, r#"{"type":1}"#, false)).await, (StatusCode::OK, PONG.into()));
        assert_eq!(
            answer(router.clone(), request(&key, r#"{"type":2,"id":"1"}"#, false)).await,
            (StatusCode::OK, MESSAGE.into())
        );
        assert_eq!(answer(router.clone(), request(&key, r#"{"type":2}"#, true)).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(answer(router.clone(), request(&key, r#"{"id":"1"}"#, false)).await.0, StatusCode::BAD_REQUEST);
        let unsigned = Request::post("/interactions").body(Body::from(r#"{"type":1}"#)).expect("request");
        assert_eq!(answer(router, unsigned).await.0, StatusCode::UNAUTHORIZED);
    }

    /// The gateway floor against the testkit's fake: every guild arrives (and is cached), then a
    /// flood's MESSAGE_CREATEs are all counted.
    #[tokio::test]
    async fn the_gateway_floor_sees_every_guild_and_message_of_the_fake() {
        let fake = beacon_testkit::FakeDiscord::start(beacon_testkit::FakeOptions::default()).await.expect("fake");
        for n in 0..3 {
            fake.create_guild(beacon_testkit::GuildSpec { name: format!("g{n}"), ..Default::default() });
        }
        let cache = Arc::new(DefaultInMemoryCache::new());
        let messages = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let shard = shard(fake.gateway_url(), fake.bot_token());
        let (c, m) = (cache.clone(), messages.clone());
        let task = tokio::spawn(async move {
            gateway_loop(shard, Some(&c), &m, |n| {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(n);
                }
            })
            .await;
        });
        let guilds =
            tokio::time::timeout(Duration::from_secs(30), ready_rx).await.expect("ready in time").expect("ready");
        assert_eq!(guilds, 3);
        assert_eq!(cache.stats().guilds(), 3);
        assert_eq!(fake.flood_messages(50), 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while messages.load(Ordering::Relaxed) < 50 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(messages.load(Ordering::Relaxed), 50);
        task.abort();
    }
}
