//! REST: validation against the OpenAPI description, auth, rate limits, injected faults, and
//! twilight-http's real requests passing validation.

mod common;

use beacon_testkit::{FakeOptions, Fault, FaultKind};
use serde_json::{Value, json};
use std::time::Duration;
use twilight_model::id::Id;

#[tokio::test]
async fn spec_violations_are_caught_with_their_reason() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let channel = g.channels[0].id;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v10/channels/{channel}/messages", fake.base_url());
    let auth = format!("Bot {}", fake.bot_token());

    let resp = http
        .post(&url)
        .header("authorization", &auth)
        .json(&json!({"content": "x".repeat(2001)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 50035);
    assert_eq!(body["message"], "Invalid Form Body");
    assert_eq!(body["errors"]["content"]["_errors"][0]["code"], "BASE_TYPE_MAX_LENGTH");

    // Wrong type: the OpenAPI schema says `tts` is a boolean.
    let resp = http
        .post(&url)
        .header("authorization", &auth)
        .json(&json!({"content": "hi", "tts": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"]["tts"].is_object(), "errors: {body}");

    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert_eq!(violations[0].operation_id.as_deref(), Some("create_message"));
    assert!(
        violations[0].reason.contains("content") && violations[0].reason.contains("2000"),
        "{}",
        violations[0].reason
    );
    assert!(violations[1].reason.contains("tts"), "{}", violations[1].reason);
    assert!(fake.messages(channel).is_empty());

    // A valid message goes through and is stored.
    let resp = http.post(&url).header("authorization", &auth).json(&json!({"content": "hello"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.messages(channel).len(), 1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_no_violations()));
    assert!(result.is_err(), "assert_no_violations must panic when violations exist");
}

#[tokio::test]
async fn unknown_routes_and_missing_auth_are_rejected() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let http = reqwest::Client::new();
    let resp = http.get(format!("{}/api/v10/guilds/{}", fake.base_url(), g.id)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(format!("{}/api/v10/guilds/{}", fake.base_url(), g.id))
        .header("authorization", "Bot wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(format!("{}/api/v10/definitely/not/a/route", fake.base_url()))
        .header("authorization", format!("Bot {}", fake.bot_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"message": "404: Not Found", "code": 0}));
    let v = fake.violations();
    assert_eq!(v.len(), 3);
    assert!(v[0].reason.contains("Authorization"));
    assert!(v[2].reason.contains("no Discord operation"));
}

#[tokio::test]
async fn rate_limit_headers_and_injected_faults() {
    let fake =
        common::start(FakeOptions { route_limit: 2, route_window: Duration::from_secs(60), ..FakeOptions::default() })
            .await;
    let g = common::guild(&fake);
    let http = reqwest::Client::new();
    let url = format!("{}/api/v10/guilds/{}", fake.base_url(), g.id);
    let auth = format!("Bot {}", fake.bot_token());
    let resp = http.get(&url).header("authorization", &auth).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(resp.headers().contains_key(h), "missing {h}");
    }
    assert_eq!(resp.headers()["x-ratelimit-limit"], "2");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "1");
    http.get(&url).header("authorization", &auth).send().await.unwrap();
    let limited = http.get(&url).header("authorization", &auth).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "user");
    let body: Value = limited.json().await.unwrap();
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
    assert_eq!(body["global"], false);

    // Injected faults on a chosen route.
    fake.inject(Fault {
        method: Some("GET".into()),
        path_contains: "/roles".into(),
        kind: FaultKind::Status(429),
        times: 1,
    });
    fake.inject(Fault { method: None, path_contains: "/channels".into(), kind: FaultKind::Status(502), times: 1 });
    let roles = format!("{}/api/v10/guilds/{}/roles", fake.base_url(), g.id);
    let resp = http.get(&roles).header("authorization", &auth).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert!(body["retry_after"].as_f64().is_some());
    assert_eq!(http.get(&roles).header("authorization", &auth).send().await.unwrap().status(), 200);
    let channels = format!("{}/api/v10/guilds/{}/channels", fake.base_url(), g.id);
    assert_eq!(http.get(&channels).header("authorization", &auth).send().await.unwrap().status(), 502);
    assert_eq!(http.get(&channels).header("authorization", &auth).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn twilight_http_requests_pass_validation() {
    use twilight_model::application::command::{CommandOptionType, CommandType};
    use twilight_util_free::command;

    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let client = twilight_http::Client::builder()
        .token(fake.bot_token())
        .proxy(fake.base_url().trim_start_matches("http://").to_owned(), true)
        .build();
    let channel = Id::new(g.channels[0].id);
    let guild = Id::new(g.id);
    let msg = client.create_message(channel).content("hello from twilight").await.unwrap().model().await.unwrap();
    assert_eq!(msg.content, "hello from twilight");
    let fetched = client.guild(guild).await.unwrap().model().await.unwrap();
    assert_eq!(fetched.name, "Test Guild");
    let member = client.guild_member(guild, Id::new(common::member(&g, "alice"))).await.unwrap().model().await.unwrap();
    assert_eq!(member.user.name, "alice");
    let me = client.current_user().await.unwrap().model().await.unwrap();
    assert_eq!(me.id.get(), fake.application_id());
    let gateway = client.gateway().authed().await.unwrap().model().await.unwrap();
    assert_eq!(gateway.url, fake.gateway_url());

    let app = Id::new(fake.application_id());
    let commands = [
        command("ping", "Check the bot", CommandType::ChatInput, vec![]),
        command("ask", "Ask a question", CommandType::ChatInput, vec![(CommandOptionType::String, "question", true)]),
    ];
    let set = client.interaction(app).set_global_commands(&commands).await.unwrap().models().await.unwrap();
    assert_eq!(set.len(), 2);
    client.interaction(app).set_guild_commands(guild, &commands[..1]).await.unwrap();
    assert_eq!(fake.commands(Some(g.id)).len(), 1);
    fake.assert_no_violations();
}

/// Minimal command builder (twilight-util is not a dependency).
mod twilight_util_free {
    use twilight_model::application::command::{Command, CommandOption, CommandOptionType, CommandType};

    #[allow(deprecated)]
    pub fn command(
        name: &str,
        description: &str,
        kind: CommandType,
        options: Vec<(CommandOptionType, &str, bool)>,
    ) -> Command {
        Command {
            application_id: None,
            contexts: None,
            default_member_permissions: None,
            description: description.into(),
            description_localizations: None,
            dm_permission: None,
            guild_id: None,
            id: None,
            integration_types: None,
            kind,
            name: name.into(),
            name_localizations: None,
            nsfw: None,
            options: options
                .into_iter()
                .map(|(kind, name, required)| CommandOption {
                    autocomplete: None,
                    channel_types: None,
                    file_types: None,
                    choices: None,
                    description: format!("The {name}"),
                    description_localizations: None,
                    kind,
                    max_length: None,
                    max_value: None,
                    min_length: None,
                    min_value: None,
                    name: name.into(),
                    name_localizations: None,
                    options: None,
                    required: Some(required),
                })
                .collect(),
            version: Id::new(1),
        }
    }
    use twilight_model::id::Id;
}

/// `enforce_nonce` as Discord documents it: the same author's nonce within the past few minutes
/// returns the message already created and creates nothing; without `enforce_nonce` a nonce
/// deduplicates nothing; a nonce over 25 characters is refused. `DelayAfter` acts first, then
/// answers late (a client killed meanwhile finds the message created).
#[tokio::test]
async fn enforced_nonces_return_the_existing_message() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let (channel, other) = (g.channels[0].id, g.channels[1].id);
    let http = reqwest::Client::new();
    let auth = format!("Bot {}", fake.bot_token());
    let post = |channel: u64, body: Value| {
        let request = http
            .post(format!("{}/api/v10/channels/{channel}/messages", fake.base_url()))
            .header("authorization", &auth)
            .json(&body);
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = post(channel, json!({"content": "once", "nonce": "r1.abc", "enforce_nonce": true})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["nonce"], "r1.abc");
    let (status, again) = post(channel, json!({"content": "once", "nonce": "r1.abc", "enforce_nonce": true})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"], "the existing message is returned");
    // Per author, not per channel: the same nonce elsewhere returns the first message too.
    let (_, elsewhere) = post(other, json!({"content": "once", "nonce": "r1.abc", "enforce_nonce": true})).await;
    assert_eq!(elsewhere["id"], first["id"]);
    assert_eq!(fake.messages(channel).len(), 1);
    assert!(fake.messages(other).is_empty());
    // A nonce without enforce_nonce deduplicates nothing.
    post(channel, json!({"content": "twice", "nonce": "r2"})).await;
    post(channel, json!({"content": "twice", "nonce": "r2"})).await;
    assert_eq!(fake.messages(channel).len(), 3);
    fake.assert_no_violations();
    let (status, _) = post(channel, json!({"content": "x", "nonce": "n".repeat(26), "enforce_nonce": true})).await;
    assert_eq!(status, 400, "a nonce is at most 25 characters");
    assert_eq!(fake.violations().len(), 1);

    // DelayAfter: the message exists before the answer arrives.
    fake.inject(Fault {
        method: Some("POST".into()),
        path_contains: format!("/channels/{other}/messages"),
        kind: FaultKind::DelayAfter(Duration::from_secs(30)),
        times: 1,
    });
    let slow = tokio::spawn(post(other, json!({"content": "slow", "nonce": "r3", "enforce_nonce": true})));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake.messages(other).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the delayed message was never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slow.abort();
    let (status, retried) = post(other, json!({"content": "slow", "nonce": "r3", "enforce_nonce": true})).await;
    assert_eq!(status, 200);
    assert_eq!(fake.messages(other).len(), 1, "the retry created nothing");
    assert_eq!(retried["id"], fake.messages(other)[0]["id"]);
}
