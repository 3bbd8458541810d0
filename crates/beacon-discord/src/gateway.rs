//! Gateway shards: connecting, identifying within Discord's session limits,
//! forwarding dispatch events, and reporting per-shard status.
//!
//! Each shard runs in its own task. twilight handles heartbeats, resumes and
//! reconnects; this module adds identify pacing from `GET /gateway/bot`,
//! back-pressure towards the consumer, fatal-close handling, a clean shutdown
//! and the [`ShardBoard`].
//!
//! Back-pressure note: while the `events` channel is full a shard is not
//! polled, so it sends no heartbeats. If the consumer stalls for longer than
//! the heartbeat interval (~41 s) the connection is treated as zombied and
//! twilight resumes it; Discord replays the missed events, so none are lost.

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    ops::Range,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use twilight_gateway::{
    CloseFrame, ConfigBuilder, Event, EventTypeFlags, Shard, ShardId, StreamExt as _, error::ReceiveMessageErrorType,
    queue::InMemoryQueue,
};
use twilight_model::gateway::{CloseCode, Intents};

/// How long a shard waits for the gateway to answer its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`run`] connects with.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Bot token, with or without the `Bot ` prefix.
    pub token: String,
    /// Gateway intents to identify with.
    pub intents: Intents,
    /// Total shard count; `None` uses Discord's recommendation from
    /// `GET /gateway/bot`.
    pub shard_count: Option<u32>,
    /// Which shards this process runs; `None` runs all of them.
    pub shard_ids: Option<Range<u32>>,
    /// Gateway URL override (e.g. `ws://127.0.0.1:9000`); `None` uses the URL
    /// from `GET /gateway/bot`. twilight appends `/?v=10&encoding=json&…`.
    pub gateway_url: Option<String>,
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("token", &"<redacted>")
            .field("intents", &self.intents)
            .field("shard_count", &self.shard_count)
            .field("shard_ids", &self.shard_ids)
            .field("gateway_url", &self.gateway_url)
            .finish()
    }
}

/// A dispatch event and the shard that received it.
#[derive(Debug)]
pub struct GatewayEvent {
    /// Shard number the event arrived on.
    pub shard_id: u32,
    /// The event; only dispatch events (READY, GUILD_CREATE, MESSAGE_CREATE,
    /// INTERACTION_CREATE, …) are forwarded, never gateway control events.
    pub event: Event,
}

/// Connection state of one shard, as shown in `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Not connected yet.
    Connecting,
    /// Connected, waiting for the identify queue or READY.
    Identifying,
    /// Session established (READY or RESUMED received).
    Ready,
    /// Resuming a previous session.
    Resuming,
    /// Connection lost or closed; twilight reconnects unless shutting down.
    Disconnected,
}

/// Status of one shard of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// Shard number.
    pub id: u32,
    /// Total number of shards of the bot (all processes).
    pub total: u32,
    /// Connection state.
    pub state: ShardState,
    /// Most recent heartbeat round trip.
    pub latency_ms: Option<u64>,
    /// Guilds this shard currently serves.
    pub guilds: u32,
    /// When the last dispatch event arrived.
    pub last_event_at: Option<SystemTime>,
    /// How many times the connection was lost since start.
    pub reconnects: u32,
}

/// Shared status of the shards of this process; cheap to clone.
#[derive(Clone, Default)]
pub struct ShardBoard {
    inner: Arc<Mutex<BTreeMap<u32, Entry>>>,
}

struct Entry {
    status: ShardStatus,
    guild_ids: HashSet<u64>,
    /// Connections opened (Hello received).
    hellos: u32,
}

impl fmt::Debug for ShardBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

impl ShardBoard {
    /// Status of every shard of this process, ordered by shard number.
    pub fn snapshot(&self) -> Vec<ShardStatus> {
        self.lock().values().map(|e| e.status.clone()).collect()
    }

    /// Number of shards with an established session.
    pub fn connected(&self) -> usize {
        self.lock().values().filter(|e| e.status.state == ShardState::Ready).count()
    }

    /// Total guilds across this process's shards.
    pub fn guilds(&self) -> u64 {
        self.lock().values().map(|e| u64::from(e.status.guilds)).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Entry>> {
        // The map stays consistent even if a holder panicked mid-update.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, id: u32, total: u32) {
        self.lock().insert(
            id,
            Entry {
                status: ShardStatus {
                    id,
                    total,
                    state: ShardState::Connecting,
                    latency_ms: None,
                    guilds: 0,
                    last_event_at: None,
                    reconnects: 0,
                },
                guild_ids: HashSet::new(),
                hellos: 0,
            },
        );
    }

    fn update(&self, id: u32, f: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.lock().get_mut(&id) {
            f(entry);
            entry.status.guilds = u32::try_from(entry.guild_ids.len()).unwrap_or(u32::MAX);
        }
    }
}

/// The gateway could not be run, or stopped for a reason that reconnecting
/// cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// TLS is not usable (no crypto provider installed).
    #[error("TLS: {0}")]
    Tls(#[source] beacon_http::HttpError),
    /// `GET /gateway/bot` failed.
    #[error("GET /gateway/bot failed")]
    GatewayInfo(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Shard count or range is unusable.
    #[error("invalid shard configuration: shards {ids:?} of {total}")]
    InvalidShards {
        /// Shards requested for this process.
        ids: Range<u32>,
        /// Total shard count.
        total: u32,
    },
    /// The gateway URL is not a `ws://` or `wss://` URL without query.
    #[error("invalid gateway URL {0:?}")]
    InvalidGatewayUrl(String),
    /// Close code 4004: the token was rejected.
    #[error("shard {shard_id}: gateway rejected the token (4004)")]
    Authentication {
        /// Shard that received the close.
        shard_id: u32,
    },
    /// Close code 4013/4014: invalid or not-enabled privileged intents.
    #[error("shard {shard_id}: intents rejected ({code})")]
    Intents {
        /// Shard that received the close.
        shard_id: u32,
        /// 4013 (invalid) or 4014 (disallowed).
        code: u16,
    },
    /// Close code 4010/4011: invalid shard or more shards required.
    #[error("shard {shard_id}: sharding rejected ({code})")]
    Sharding {
        /// Shard that received the close.
        shard_id: u32,
        /// 4010 (invalid shard) or 4011 (sharding required).
        code: u16,
    },
    /// Another close code after which twilight will not reconnect.
    #[error("shard {shard_id}: fatal gateway close ({code})")]
    FatalClose {
        /// Shard that received the close.
        shard_id: u32,
        /// The close code.
        code: u16,
    },
    /// A shard task panicked or was cancelled.
    #[error("shard task failed: {0}")]
    ShardTask(#[source] tokio::task::JoinError),
    /// A shard's event stream ended without a close.
    #[error("shard task failed: shard {shard_id}: event stream ended")]
    StreamEnded {
        /// The shard whose stream ended.
        shard_id: u32,
    },
}

impl GatewayError {
    /// One line for the operator: what went wrong and exactly what to change where. `intents`
    /// are the ones the process asked for (to name the privileged ones).
    pub fn advice(&self, intents: Intents) -> String {
        const PORTAL: &str =
            "the Developer Portal (https://discord.com/developers/applications) → your application → Bot";
        match self {
            GatewayError::Intents { code, .. } => {
                let mut asked = Vec::new();
                if intents.contains(Intents::MESSAGE_CONTENT) {
                    asked.push("Message Content Intent");
                }
                if intents.contains(Intents::GUILD_MEMBERS) {
                    asked.push("Server Members Intent");
                }
                if intents.contains(Intents::GUILD_PRESENCES) {
                    asked.push("Presence Intent");
                }
                let which = if asked.is_empty() { "the privileged intents".to_owned() } else { asked.join(" and ") };
                format!(
                    "Discord refused the gateway intents ({code}): enable {which} under Privileged Gateway Intents in \
                     {PORTAL}, then start Beacon again"
                )
            }
            GatewayError::Authentication { .. } => {
                format!(
                    "Discord refused the bot token (4004): copy BEACON_DISCORD_TOKEN again from {PORTAL} → Reset Token"
                )
            }
            GatewayError::GatewayInfo(source) if is_unauthorized(source.as_ref()) => {
                format!(
                    "Discord refused the bot token (401): copy BEACON_DISCORD_TOKEN again from {PORTAL} → Reset Token"
                )
            }
            GatewayError::GatewayInfo(source) => {
                format!(
                    "cannot reach Discord's gateway information (GET /gateway/bot: {source}); check BEACON_DISCORD_API_URL and the network"
                )
            }
            GatewayError::Sharding { code, .. } => {
                format!(
                    "Discord refused the shard configuration ({code}): unset BEACON_DISCORD_SHARD_COUNT to use the recommended count"
                )
            }
            other => format!("the gateway stopped: {other}"),
        }
    }

    /// Maps a close code to an error when twilight will not reconnect.
    fn from_close(shard_id: u32, code: u16) -> Option<Self> {
        let close = CloseCode::try_from(code).ok()?;
        if close.can_reconnect() {
            return None;
        }
        Some(match close {
            CloseCode::AuthenticationFailed => Self::Authentication { shard_id },
            CloseCode::InvalidIntents | CloseCode::DisallowedIntents => Self::Intents { shard_id, code },
            CloseCode::InvalidShard | CloseCode::ShardingRequired => Self::Sharding { shard_id, code },
            _ => Self::FatalClose { shard_id, code },
        })
    }
}

/// Whether a REST error is Discord's 401 (the token was refused).
fn is_unauthorized(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    match error.downcast_ref::<twilight_http::Error>().map(twilight_http::Error::kind) {
        Some(twilight_http::error::ErrorType::Response { status, .. }) => status.get() == 401,
        _ => false,
    }
}

/// Runs the shards until `shutdown` is cancelled, sending every dispatch
/// event to `events` (awaiting when it is full).
///
/// Identify is paced by twilight's [`InMemoryQueue`] configured from
/// `session_start_limit` of `GET /gateway/bot` (max_concurrency, remaining,
/// reset). The queue is per process: processes splitting the shards with
/// `shard_ids` each pace themselves. Resume and reconnect are handled by
/// twilight; non-fatal receive errors are logged and the shard continues.
/// Fatal close codes end all shards and return a typed [`GatewayError`]. On
/// shutdown every connected shard sends a close frame with code 1000 (ending
/// its session), waits up to 5 s for the reply, and `run` returns `Ok(())`.
pub async fn run(
    config: GatewayConfig,
    http: Arc<twilight_http::Client>,
    events: mpsc::Sender<GatewayEvent>,
    board: ShardBoard,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    // tokio-websockets' TLS setup panics without a process-wide crypto provider.
    beacon_http::require_crypto_provider().map_err(GatewayError::Tls)?;
    let fetch = async {
        http.gateway()
            .authed()
            .await
            .map_err(|e| GatewayError::GatewayInfo(Box::new(e)))?
            .model()
            .await
            .map_err(|e| GatewayError::GatewayInfo(Box::new(e)))
    };
    let info = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        info = fetch => info?,
    };

    let total = config.shard_count.unwrap_or(info.shards).max(1);
    let ids = config.shard_ids.clone().unwrap_or(0..total);
    if config.shard_count == Some(0) || ids.is_empty() || ids.end > total {
        return Err(GatewayError::InvalidShards { ids, total });
    }
    let url = gateway_base_url(config.gateway_url.as_deref().unwrap_or(&info.url))?;

    let limit = info.session_start_limit;
    if (limit.remaining as usize) < ids.len() {
        tracing::warn!(
            remaining = limit.remaining,
            reset_after_ms = limit.reset_after,
            "fewer session starts left than shards; identifies will wait for the reset"
        );
    }
    let queue = InMemoryQueue::new(
        limit.max_concurrency,
        limit.remaining.min(limit.total),
        Duration::from_millis(limit.reset_after),
        limit.total,
    );
    let shard_config =
        ConfigBuilder::new(config.token.clone(), config.intents).queue(queue).proxy_url(url.clone()).build();
    tracing::info!(
        %url,
        total,
        first = ids.start,
        last = ids.end - 1,
        max_concurrency = limit.max_concurrency,
        "starting gateway shards"
    );

    // Cancelled on shutdown or when any shard fails fatally.
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    for id in ids {
        board.register(id, total);
        let shard = Shard::with_config(ShardId::new(id, total), shard_config.clone());
        let runner = ShardRunner { id, shard, events: events.clone(), board: board.clone(), stop: stop.clone() };
        tasks.spawn(runner.run());
    }
    drop(events);

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(GatewayError::ShardTask);
        if let Err(error) = result.and_then(|r| r) {
            tracing::error!(%error, "gateway shard stopped");
            stop.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Normalises a gateway URL for twilight, which appends `/?v=10&…` itself.
fn gateway_base_url(url: &str) -> Result<String, GatewayError> {
    let invalid = || GatewayError::InvalidGatewayUrl(url.to_owned());
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("wss://").or_else(|| lower.strip_prefix("ws://")).ok_or_else(invalid)?;
    if rest.trim_end_matches('/').is_empty()
        || rest.starts_with('/')
        || url.contains(['?', '#', '@'])
        || url.contains(char::is_whitespace)
    {
        return Err(invalid());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Drives one shard.
struct ShardRunner {
    id: u32,
    shard: Shard,
    events: mpsc::Sender<GatewayEvent>,
    board: ShardBoard,
    stop: CancellationToken,
}

impl ShardRunner {
    async fn run(mut self) -> Result<(), GatewayError> {
        let id = self.id;
        loop {
            let item = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                item = self.shard.next_event(EventTypeFlags::all()) => item,
            };
            let event = match item {
                Some(Ok(event)) => event,
                Some(Err(error)) => {
                    log_receive_error(id, &error);
                    self.sync_state();
                    continue;
                }
                None => {
                    return Err(GatewayError::StreamEnded { shard_id: id });
                }
            };
            if let Event::GatewayClose(frame) = &event {
                let code = frame.as_ref().map(|f| f.code);
                self.board.update(id, |e| e.status.state = ShardState::Disconnected);
                if let Some(error) = code.and_then(|c| GatewayError::from_close(id, c)) {
                    return Err(error);
                }
                tracing::info!(shard = id, ?code, "gateway connection closed; reconnecting");
                continue;
            }
            self.record(&event);
            if event.kind().name().is_none() {
                continue;
            }
            let send = self.events.send(GatewayEvent { shard_id: id, event });
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                sent = send => if sent.is_err() {
                    tracing::info!(shard = id, "event receiver dropped; stopping shard");
                    break;
                },
            }
        }
        self.close().await;
        Ok(())
    }

    /// Updates the board from an event.
    fn record(&self, event: &Event) {
        let latency = self.shard.latency().recent().first().copied();
        let state = map_state(self.shard.state());
        let dispatch = event.kind().name().is_some();
        self.board.update(self.id, |e| {
            e.status.state = state;
            if let Some(latency) = latency {
                e.status.latency_ms = Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
            }
            if dispatch {
                e.status.last_event_at = Some(SystemTime::now());
            }
            match event {
                // Every connection starts with Hello; all but the first are
                // reconnects (twilight reconnects silently after a TCP drop).
                Event::GatewayHello(_) => {
                    e.hellos += 1;
                    e.status.reconnects = e.hellos.saturating_sub(1);
                }
                Event::Ready(ready) => {
                    e.guild_ids = ready.guilds.iter().map(|g| g.id.get()).collect();
                }
                Event::GuildCreate(guild) => {
                    e.guild_ids.insert(guild.id().get());
                }
                // `unavailable: Some(true)` is an outage, not a removal.
                Event::GuildDelete(guild) if guild.unavailable != Some(true) => {
                    e.guild_ids.remove(&guild.id.get());
                }
                _ => {}
            }
        });
    }

    fn sync_state(&self) {
        let state = map_state(self.shard.state());
        self.board.update(self.id, |e| e.status.state = state);
    }

    /// Sends a normal close frame and waits briefly for the gateway's reply.
    async fn close(&mut self) {
        let id = self.id;
        let state = self.shard.state();
        self.board.update(id, |e| e.status.state = ShardState::Disconnected);
        // Without a live connection there is nothing to close; polling would
        // only reconnect first.
        if matches!(
            state,
            twilight_gateway::ShardState::Disconnected { .. } | twilight_gateway::ShardState::FatallyClosed
        ) {
            return;
        }
        self.shard.close(CloseFrame::NORMAL);
        // Wait for the gateway's close reply. A server that drops the TCP
        // connection instead makes twilight reconnect at once; the Hello of
        // that new connection proves the old one is gone, so stop there too.
        let drain = async {
            while let Some(item) = self.shard.next_event(EventTypeFlags::GATEWAY_HELLO).await {
                if matches!(item, Ok(Event::GatewayClose(_) | Event::GatewayHello(_))) {
                    break;
                }
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, drain).await.is_err() {
            tracing::warn!(shard = id, "gateway did not answer the close frame in time");
        } else {
            tracing::info!(shard = id, "shard closed");
        }
    }
}

const fn map_state(state: twilight_gateway::ShardState) -> ShardState {
    use twilight_gateway::ShardState as S;
    match state {
        S::Active => ShardState::Ready,
        S::Identifying => ShardState::Identifying,
        S::Resuming => ShardState::Resuming,
        S::Disconnected { .. } | S::FatallyClosed => ShardState::Disconnected,
    }
}

/// Logs a non-fatal receive error without payloads (they may hold user
/// content).
fn log_receive_error(shard: u32, error: &twilight_gateway::error::ReceiveMessageError) {
    let source = std::error::Error::source(error).map(ToString::to_string);
    match error.kind() {
        ReceiveMessageErrorType::Deserializing { event } => {
            tracing::warn!(shard, bytes = event.len(), ?source, "undecodable gateway event skipped");
        }
        ReceiveMessageErrorType::Reconnect => {
            tracing::warn!(shard, ?source, "gateway reconnect failed; retrying with backoff");
        }
        _ => tracing::warn!(shard, ?source, "gateway receive error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_gateway_urls() {
        assert_eq!(gateway_base_url("wss://gateway.discord.gg").ok().as_deref(), Some("wss://gateway.discord.gg"));
        assert_eq!(gateway_base_url("ws://127.0.0.1:9000/").ok().as_deref(), Some("ws://127.0.0.1:9000"));
        for bad in ["", "http://x", "ws://", "ws:///x", "wss://g?v=10", "ws://a b"] {
            assert!(gateway_base_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn classifies_close_codes() {
        assert!(matches!(GatewayError::from_close(3, 4004), Some(GatewayError::Authentication { shard_id: 3 })));
        for code in [4013, 4014] {
            assert!(matches!(
                GatewayError::from_close(0, code),
                Some(GatewayError::Intents { code: c, .. }) if c == code
            ));
        }
        for code in [4010, 4011] {
            assert!(matches!(
                GatewayError::from_close(0, code),
                Some(GatewayError::Sharding { code: c, .. }) if c == code
            ));
        }
        assert!(matches!(GatewayError::from_close(0, 4012), Some(GatewayError::FatalClose { code: 4012, .. })));
        for code in [1000, 1001, 4000, 4007, 4009, 4999] {
            assert!(GatewayError::from_close(0, code).is_none(), "{code}");
        }
    }

    #[test]
    fn board_counts_guilds_and_ready_shards() {
        let board = ShardBoard::default();
        board.register(0, 2);
        board.register(1, 2);
        board.update(0, |e| {
            e.status.state = ShardState::Ready;
            e.guild_ids.extend([1, 2, 3]);
        });
        board.update(1, |e| {
            e.guild_ids.insert(4);
            e.guild_ids.remove(&4);
        });
        let snap = board.snapshot();
        assert_eq!(snap.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(snap[0].guilds, 3);
        assert_eq!(snap[1].state, ShardState::Connecting);
        assert_eq!(board.connected(), 1);
        assert_eq!(board.guilds(), 3);
    }

    #[test]
    fn config_debug_redacts_token() {
        let config = GatewayConfig {
            token: "secret-token".into(),
            intents: Intents::GUILDS,
            shard_count: None,
            shard_ids: None,
            gateway_url: None,
        };
        assert!(!format!("{config:?}").contains("secret-token"));
    }
}
