//! Gateway shards against the fake Discord from `beacon-testkit` (a real
//! websocket server on 127.0.0.1).

use std::{sync::Arc, time::Duration};

use beacon_discord::{
    gateway::{self, GatewayConfig, GatewayError, GatewayEvent, ShardBoard, ShardState},
    rest,
};
use beacon_testkit::{FakeDiscord, FakeOptions, GuildInfo, GuildSpec, MemberSpec};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use twilight_gateway::Event;
use twilight_model::gateway::Intents;

/// Upper bound for anything that should happen promptly; only guards against
/// hangs, never asserted as a duration.
const PATIENCE: Duration = Duration::from_secs(20);

struct Bot {
    events: mpsc::Receiver<GatewayEvent>,
    board: ShardBoard,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), GatewayError>>,
}

fn guild_spec() -> GuildSpec {
    GuildSpec {
        name: "Support".into(),
        text_channels: vec!["help".into()],
        members: vec![MemberSpec { username: "alice".into(), ..Default::default() }],
        ..Default::default()
    }
}

fn start_bot(fake: &FakeDiscord, token: String, intents: Intents, gateway_url: Option<String>, capacity: usize) -> Bot {
    let http = Arc::new(rest::client(Some(&fake.bot_token()), &fake.base_url()).expect("client"));
    let (tx, events) = mpsc::channel(capacity);
    let board = ShardBoard::default();
    let shutdown = CancellationToken::new();
    let config = GatewayConfig {
        token,
        intents,
        shard_count: None,
        shard_ids: None,
        gateway_url,
        events: beacon_discord::EventTypeFlags::all(),
    };
    let task = tokio::spawn(gateway::run(config, http, tx, board.clone(), shutdown.clone()));
    Bot { events, board, shutdown, task }
}

/// Receives events until one matches, returning it.
async fn next_matching(
    events: &mut mpsc::Receiver<GatewayEvent>,
    mut wanted: impl FnMut(&Event) -> bool,
) -> GatewayEvent {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.expect("gateway stopped sending");
            if wanted(&event.event) {
                return event;
            }
        }
    })
    .await
    .expect("expected event did not arrive")
}

fn is_message(event: &Event, id: u64) -> bool {
    matches!(event, Event::MessageCreate(m) if m.id.get() == id)
}

async fn stop(bot: Bot) -> Result<(), GatewayError> {
    bot.shutdown.cancel();
    tokio::time::timeout(PATIENCE, bot.task)
        .await
        .expect("run() did not return after shutdown")
        .expect("run() panicked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_guild_create_resume_and_shutdown() {
    // Short heartbeats so a latency sample exists soon.
    let fake =
        FakeDiscord::start(FakeOptions { heartbeat_interval: Duration::from_millis(200), ..FakeOptions::default() })
            .await
            .expect("fake");
    let guild: GuildInfo = fake.create_guild(guild_spec());
    let channel = guild.channels[0].id;
    let alice = guild.members.iter().find(|m| m.username == "alice").expect("alice").user_id;

    // No override: the URL comes from GET /gateway/bot.
    let mut bot = start_bot(&fake, fake.bot_token(), Intents::GUILDS | Intents::GUILD_MESSAGES, None, 16);

    let ready = next_matching(&mut bot.events, |e| matches!(e, Event::Ready(_))).await;
    assert_eq!(ready.shard_id, 0);
    next_matching(&mut bot.events, |e| matches!(e, Event::GuildCreate(g) if g.id().get() == guild.id)).await;

    let board = bot.board.snapshot();
    assert_eq!(board.len(), 1);
    assert_eq!((board[0].id, board[0].total), (0, 1));
    assert_eq!(board[0].state, ShardState::Ready);
    assert_eq!(board[0].guilds, 1);
    assert!(board[0].last_event_at.is_some());
    assert_eq!(bot.board.connected(), 1);
    tokio::time::timeout(PATIENCE, async {
        while bot.board.snapshot()[0].latency_ms.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no heartbeat latency recorded");

    // Drop the TCP connection; twilight must resume, not re-identify, and the
    // message sent meanwhile must still arrive.
    fake.gateway_disconnect_all(None).await;
    let message = fake.send_message(guild.id, channel, alice, "sent while disconnected").await.expect("send");
    next_matching(&mut bot.events, |e| is_message(e, message)).await;
    assert!(fake.resume_count() >= 1, "no resume happened");
    assert_eq!(fake.identify_count(), 1, "shard re-identified instead of resuming");
    let status = &bot.board.snapshot()[0];
    assert!(status.reconnects >= 1);
    assert_eq!(status.guilds, 1);

    let board = bot.board.clone();
    assert!(matches!(stop(bot).await, Ok(())));
    assert_eq!(board.snapshot()[0].state, ShardState::Disconnected);
    assert_eq!(board.connected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_gets_every_event_in_order() {
    let fake = FakeDiscord::start(FakeOptions::default()).await.expect("fake");
    let guild = fake.create_guild(guild_spec());
    let channel = guild.channels[0].id;
    let alice = guild.members.iter().find(|m| m.username == "alice").expect("alice").user_id;

    // Explicit URL override and a channel of one: the shard must wait.
    let mut bot = start_bot(
        &fake,
        fake.bot_token(),
        Intents::GUILDS | Intents::GUILD_MESSAGES,
        Some(format!("{}/", fake.gateway_url())),
        1,
    );
    next_matching(&mut bot.events, |e| matches!(e, Event::GuildCreate(_))).await;

    let mut sent = Vec::new();
    for i in 0..8 {
        let id = fake.send_message(guild.id, channel, alice, &format!("message {i}")).await.expect("send");
        sent.push(id);
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let event = next_matching(&mut bot.events, |e| matches!(e, Event::MessageCreate(_))).await;
        if let Event::MessageCreate(m) = event.event {
            received.push(m.id.get());
        }
    }
    assert_eq!(received, sent);
    assert!(matches!(stop(bot).await, Ok(())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_intents_end_with_a_typed_error() {
    let fake =
        FakeDiscord::start(FakeOptions { denied_intents: Intents::MESSAGE_CONTENT.bits(), ..FakeOptions::default() })
            .await
            .expect("fake");
    let bot =
        start_bot(&fake, fake.bot_token(), Intents::GUILDS | Intents::MESSAGE_CONTENT, Some(fake.gateway_url()), 16);
    let result =
        tokio::time::timeout(PATIENCE, bot.task).await.expect("run() kept going after 4014").expect("run() panicked");
    assert!(matches!(result, Err(GatewayError::Intents { shard_id: 0, code: 4014 })), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_token_ends_with_a_typed_error() {
    let fake = FakeDiscord::start(FakeOptions::default()).await.expect("fake");
    let bot = start_bot(&fake, "not-the-token".into(), Intents::GUILDS, Some(fake.gateway_url()), 16);
    let result =
        tokio::time::timeout(PATIENCE, bot.task).await.expect("run() kept going after 4004").expect("run() panicked");
    assert!(matches!(result, Err(GatewayError::Authentication { shard_id: 0 })), "{result:?}");
}
