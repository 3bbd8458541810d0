//! Interactions: signed HTTP delivery (PING, signature check, responses), gateway delivery with
//! twilight (deferred response, `@original` edit, follow-up), the 3 s deadline and double answers.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use beacon_testkit::{CommandInvocation, Delivery, FakeOptions};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twilight_gateway::{ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _};
use twilight_model::application::interaction::Interaction;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};
use twilight_model::id::Id;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Endpoint {
    key: VerifyingKey,
    seen: Arc<Mutex<Vec<Value>>>,
}

fn verify(key: &VerifyingKey, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(sig), Some(ts)) = (headers.get("x-signature-ed25519"), headers.get("x-signature-timestamp")) else {
        return false;
    };
    let Ok(sig) = hex::decode(sig.as_bytes()) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(body);
    key.verify(&msg, &Signature::from_bytes(&sig)).is_ok()
}

async fn bot_endpoint(
    axum::extract::State(ep): axum::extract::State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if !verify(&ep.key, &headers, &body) {
        return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
    }
    // Every payload must be what twilight's model accepts.
    let parsed: Interaction = serde_json::from_slice(&body).expect("twilight deserialises the interaction");
    let raw: Value = serde_json::from_slice(&body).unwrap();
    ep.seen.lock().unwrap().push(raw.clone());
    let answer = match raw["type"].as_u64() {
        Some(1) => json!({"type": 1}),
        Some(2) => {
            let user = parsed.author_id().map(|u| u.get()).unwrap_or_default();
            json!({"type": 4, "data": {"content": format!("pong {} for {user}", raw["data"]["options"][0]["value"].as_str().unwrap_or("-")), "flags": 64}})
        }
        Some(4) => json!({"type": 8, "data": {"choices": [{"name": "Alpha", "value": "alpha"}]}}),
        Some(3) => {
            json!({"type": 7, "data": {"content": format!("clicked {}", raw["data"]["custom_id"].as_str().unwrap()), "components": []}})
        }
        Some(5) => {
            json!({"type": 4, "data": {"content": format!("got {}", raw["data"]["components"][0]["components"][0]["value"].as_str().unwrap())}})
        }
        _ => json!({}),
    };
    axum::Json(answer).into_response()
}

#[tokio::test]
async fn signed_http_interactions() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let key_bytes: [u8; 32] = hex::decode(fake.public_key_hex()).unwrap().try_into().unwrap();
    let ep = Endpoint { key: VerifyingKey::from_bytes(&key_bytes).unwrap(), seen: Arc::default() };
    let app = axum::Router::new().route("/interactions", axum::routing::post(bot_endpoint)).with_state(ep.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake.set_interactions_endpoint(&format!("http://{addr}/interactions"));

    let inv = CommandInvocation {
        guild_id: g.id,
        channel_id: g.channels[0].id,
        user_id: alice,
        name: "ask".into(),
        options: json!([{"name": "question", "type": 3, "value": "hi"}]),
        member_permissions: None,
    };
    let h = fake.invoke_command(inv.clone(), Delivery::Http).await.unwrap();
    let out = fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(out.kind, 4);
    assert_eq!(out.data["content"], format!("pong hi for {alice}"));
    assert_eq!(ep.seen.lock().unwrap()[0]["type"], 1, "PING comes first");

    let mut auto = inv.clone();
    auto.options = json!([{"name": "question", "type": 3, "value": "al", "focused": true}]);
    let h = fake.autocomplete(auto, Delivery::Http).await.unwrap();
    let out = fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!((out.kind, out.data["choices"][0]["value"].as_str()), (8, Some("alpha")));

    let msg = fake.send_message(g.id, g.channels[0].id, alice, "a message with a button").await.unwrap();
    let h = fake.click_button(g.id, g.channels[0].id, alice, msg, "ticket:open", Delivery::Http).await.unwrap();
    let out = fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!((out.kind, out.data["content"].as_str()), (7, Some("clicked ticket:open")));
    assert_eq!(fake.messages(g.channels[0].id)[1]["content"], "clicked ticket:open");

    let h = fake
        .submit_modal(g.id, g.channels[0].id, alice, "ticket:form", &[("topic", "billing")], Delivery::Http)
        .await
        .unwrap();
    let out = fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(out.data["content"], "got billing");
    // The endpoint rejected the bad-signature probe, so nothing was recorded.
    fake.assert_no_violations();
}

async fn next_interaction(shard: &mut Shard) -> Interaction {
    loop {
        match tokio::time::timeout(WAIT, shard.next_event(EventTypeFlags::all())).await {
            Ok(Some(Ok(Event::InteractionCreate(i)))) => return i.0,
            Ok(Some(_)) => {}
            other => panic!("no interaction: {other:?}"),
        }
    }
}

#[tokio::test]
async fn gateway_interactions_deferred_edit_followup_and_errors() {
    let fake =
        common::start(FakeOptions { interaction_deadline: Duration::from_millis(300), ..FakeOptions::default() }).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let config = ConfigBuilder::new(fake.bot_token(), Intents::GUILDS).proxy_url(fake.gateway_url()).build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    loop {
        match tokio::time::timeout(WAIT, shard.next_event(EventTypeFlags::all())).await {
            Ok(Some(Ok(Event::GuildCreate(_)))) => break,
            Ok(Some(_)) => {}
            other => panic!("no GUILD_CREATE: {other:?}"),
        }
    }
    assert_eq!(fake.connected_shards(), vec![(0, 1)]);
    let client = twilight_http::Client::builder()
        .token(fake.bot_token())
        .proxy(fake.base_url().trim_start_matches("http://").to_owned(), true)
        .build();
    let app = Id::new(fake.application_id());
    let user_option = json!([{"name": "target", "type": 6, "value": alice.to_string()}]);
    let inv = CommandInvocation {
        guild_id: g.id,
        channel_id: g.channels[0].id,
        user_id: alice,
        name: "warn".into(),
        options: user_option,
        member_permissions: None,
    };

    let h = fake.invoke_command(inv.clone(), Delivery::Gateway).await.unwrap();
    let interaction = next_interaction(&mut shard).await;
    assert_eq!(interaction.id.get(), h.id);
    let defer = InteractionResponse { kind: InteractionResponseType::DeferredChannelMessageWithSource, data: None };
    client.interaction(app).create_response(interaction.id, &interaction.token, &defer).await.unwrap();
    client.interaction(app).update_response(&interaction.token).content(Some("done")).await.unwrap();
    client.interaction(app).create_followup(&interaction.token).content("and one more").await.unwrap();
    let out = fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(out.kind, 5);
    assert_eq!(out.data["content"], "done");
    let followups = fake.wait_followups(&h, 1, WAIT).await.unwrap();
    assert_eq!(followups[0]["content"], "and one more");
    fake.assert_no_violations();

    // Answering twice: 40060.
    let again = client.interaction(app).create_response(interaction.id, &interaction.token, &defer).await;
    let status = match again {
        Err(e) => format!("{e:?}"),
        Ok(_) => String::new(),
    };
    assert!(status.contains("40060"), "second answer must fail with 40060: {status}");

    // Too late: 10062.
    let h = fake.invoke_command(inv, Delivery::Gateway).await.unwrap();
    let late = next_interaction(&mut shard).await;
    assert_eq!(late.id.get(), h.id);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData { content: Some("late".into()), ..Default::default() }),
    };
    let err = client
        .interaction(app)
        .create_response(late.id, &late.token, &reply)
        .await
        .err()
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    assert!(err.contains("10062"), "late answer must fail with 10062: {err}");
    let reasons: Vec<String> = fake.violations().into_iter().map(|v| v.reason).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("answered twice"));
    assert!(reasons[1].contains("deadline"));
}

/// A file attached to a command arrives as Discord sends it (`resolved.attachments`, which
/// twilight reads) and is served at its signed CDN address only.
#[tokio::test]
async fn attached_files_are_resolved_and_served_at_their_signed_address() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let key_bytes: [u8; 32] = hex::decode(fake.public_key_hex()).unwrap().try_into().unwrap();
    let ep = Endpoint { key: VerifyingKey::from_bytes(&key_bytes).unwrap(), seen: Arc::default() };
    let app = axum::Router::new().route("/interactions", axum::routing::post(bot_endpoint)).with_state(ep.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake.set_interactions_endpoint(&format!("http://{addr}/interactions"));

    let id = fake.attach_file("guide.md", Some("text/markdown"), b"# Guide".to_vec());
    let inv = CommandInvocation {
        guild_id: g.id,
        channel_id: g.channels[0].id,
        user_id: alice,
        name: "upload".into(),
        options: json!([{"name": "file", "type": 11, "value": id.to_string()}]),
        member_permissions: None,
    };
    let h = fake.invoke_command(inv, Delivery::Http).await.unwrap();
    fake.wait_response(&h, WAIT).await.unwrap();
    let payload = ep.seen.lock().unwrap().iter().find(|p| p["type"] == 2).cloned().unwrap();
    let file = &payload["data"]["resolved"]["attachments"][id.to_string()];
    assert_eq!((file["filename"].as_str(), file["size"].as_u64()), (Some("guide.md"), Some(7)), "{payload}");
    let url = file["url"].as_str().unwrap().to_owned();

    let client = reqwest::Client::new();
    let got = client.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/markdown");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"# Guide");
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(client.get(&unsigned).send().await.unwrap().status(), 404, "the signature is required");
    let renamed = url.replace("guide.md", "other.md");
    assert_eq!(client.get(&renamed).send().await.unwrap().status(), 404);
    fake.assert_no_violations();
}
