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
    time::{Duration, Instant, SystemTime},
};

use futures_util::StreamExt as _;
use serde::Deserialize as _;
use serde::de::value::{Error as ValueError, StrDeserializer};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
pub use twilight_gateway::EventTypeFlags;
use twilight_gateway::{
    CloseFrame, ConfigBuilder, Event, Message, Session, Shard, ShardId, StreamExt as _,
    error::{ReceiveMessageError, ReceiveMessageErrorType},
    queue::InMemoryQueue,
};
use twilight_model::gateway::event::{EventType, GatewayEventDeserializer};
use twilight_model::gateway::{CloseCode, Intents, OpCode};

use crate::shared::{IdentifyQueue, SavedSession, SharedGateway};

/// How often a shard saves its resume state and publishes its status when gateways share Redis.
const SHARE_EVERY: Duration = Duration::from_secs(1);

/// Where a shard hands its dispatch events: the in-process channel of `beacon run`, or a
/// transport to other processes (Redis Streams for `beacon gateway`).
pub trait EventSink: Clone + Send + Sync + 'static {
    /// Hands one event over, waiting while the receiver is full or unreachable. An error means
    /// the receiver is gone for good and the shard stops.
    fn send(&self, event: GatewayEvent) -> impl Future<Output = Result<(), SinkClosed>> + Send;

    /// A dispatch event no consumer wants ([`GatewayConfig::events`]) arrived and was dropped
    /// without being deserialized; a sink that counts events counts it here.
    fn skipped(&self, _kind: EventType) {}
}

/// The receiver of a shard's events is gone.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the gateway event receiver is gone")]
pub struct SinkClosed;

impl EventSink for mpsc::Sender<GatewayEvent> {
    async fn send(&self, event: GatewayEvent) -> Result<(), SinkClosed> {
        mpsc::Sender::send(self, event).await.map_err(|_| SinkClosed)
    }
}

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
    /// The dispatch events the consumers handle. The shards also always take what they need
    /// themselves ([`SHARD_EVENTS`]); any other dispatch is only counted
    /// ([`EventSink::skipped`]), never deserialized.
    pub events: EventTypeFlags,
}

/// The events a shard handles itself whatever its consumers want: the gateway's own opcodes,
/// and the dispatches that keep the [`ShardBoard`]'s guild list.
pub const SHARD_EVENTS: EventTypeFlags = EventTypeFlags::GATEWAY_HEARTBEAT
    .union(EventTypeFlags::GATEWAY_HEARTBEAT_ACK)
    .union(EventTypeFlags::GATEWAY_HELLO)
    .union(EventTypeFlags::GATEWAY_INVALIDATE_SESSION)
    .union(EventTypeFlags::GATEWAY_RECONNECT)
    .union(EventTypeFlags::READY)
    .union(EventTypeFlags::RESUMED)
    .union(EventTypeFlags::GUILD_CREATE)
    .union(EventTypeFlags::GUILD_DELETE);

/// The kind of a dispatch frame that `wanted` does not include, read without deserializing the
/// frame (the opcode and `t` only, with twilight's own scan, which is also what decides how
/// twilight deserializes it). `None` for a wanted dispatch, any other opcode, an event type
/// twilight does not know, or text that is not a gateway frame: those go to twilight's parser
/// as before.
pub fn unwanted_dispatch(frame: &str, wanted: EventTypeFlags) -> Option<EventType> {
    let peek = GatewayEventDeserializer::from_json(frame)?;
    if OpCode::from(peek.op()) != Some(OpCode::Dispatch) {
        return None;
    }
    let kind = EventType::deserialize(StrDeserializer::<ValueError>::new(peek.event_type()?))
        .ok()
        .filter(|k: &EventType| k.name().is_some())?;
    (!wanted.contains(EventTypeFlags::from(kind))).then_some(kind)
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("token", &"<redacted>")
            .field("intents", &self.intents)
            .field("shard_count", &self.shard_count)
            .field("shard_ids", &self.shard_ids)
            .field("gateway_url", &self.gateway_url)
            .field("events", &self.events)
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
    /// Shards other gateway processes run, as they last published them.
    remote: Arc<Mutex<Vec<ShardStatus>>>,
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
    /// Status of every shard, ordered by shard number: this process's own, and those other
    /// gateway processes published (see [`ShardBoard::set_remote`]).
    pub fn snapshot(&self) -> Vec<ShardStatus> {
        let mut all: BTreeMap<u32, ShardStatus> =
            self.remote.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|s| (s.id, s.clone())).collect();
        all.extend(self.lock().values().map(|e| (e.status.id, e.status.clone())));
        all.into_values().collect()
    }

    /// Number of shards with an established session.
    pub fn connected(&self) -> usize {
        self.snapshot().iter().filter(|s| s.state == ShardState::Ready).count()
    }

    /// Total guilds across the shards.
    pub fn guilds(&self) -> u64 {
        self.snapshot().iter().map(|s| u64::from(s.guilds)).sum()
    }

    /// Replaces the shards other processes run (read from Redis by a process without shards
    /// of its own, or with only some of them).
    pub fn set_remote(&self, statuses: Vec<ShardStatus>) {
        *self.remote.lock().unwrap_or_else(PoisonError::into_inner) = statuses;
    }

    /// This process's own shards only.
    pub fn local(&self) -> Vec<ShardStatus> {
        self.lock().values().map(|e| e.status.clone()).collect()
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
pub async fn run<S: EventSink>(
    config: GatewayConfig,
    http: Arc<twilight_http::Client>,
    events: S,
    board: ShardBoard,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    run_with(config, http, events, board, shutdown, None).await
}

/// [`run`] for one of several gateway processes sharing `shared` (Redis): identifies wait in
/// the queue all processes share, each shard starts from its saved resume state and saves it
/// every second, statuses are published every second, and at shutdown the shards close with
/// code 4000 so the next process resumes their sessions.
pub async fn run_shared<S: EventSink>(
    config: GatewayConfig,
    http: Arc<twilight_http::Client>,
    events: S,
    board: ShardBoard,
    shutdown: CancellationToken,
    shared: SharedGateway,
) -> Result<(), GatewayError> {
    run_with(config, http, events, board, shutdown, Some(shared)).await
}

async fn run_with<S: EventSink>(
    config: GatewayConfig,
    http: Arc<twilight_http::Client>,
    events: S,
    board: ShardBoard,
    shutdown: CancellationToken,
    shared: Option<SharedGateway>,
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
    let queue = match &shared {
        Some(shared) => shared.identify_queue(limit.max_concurrency),
        None => IdentifyQueue::Local(InMemoryQueue::new(
            limit.max_concurrency,
            limit.remaining.min(limit.total),
            Duration::from_millis(limit.reset_after),
            limit.total,
        )),
    };
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
        let mut builder = ConfigBuilder::from(shard_config.clone());
        if let Some(shared) = &shared {
            match shared.load_session(id, total).await {
                Ok(Some(saved)) => {
                    tracing::info!(shard = id, sequence = saved.sequence, "resuming the saved gateway session");
                    builder = builder.session(Session::new(saved.sequence, saved.session_id));
                    if let Some(url) = saved.resume_url {
                        builder = builder.resume_url(url);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(shard = id, error = %e, "cannot read the saved session; identifying"),
            }
        }
        let shard = Shard::with_config(ShardId::new(id, total), builder.build());
        let runner = ShardRunner {
            id,
            total,
            wanted: config.events | SHARD_EVENTS,
            shard,
            events: events.clone(),
            board: board.clone(),
            stop: stop.clone(),
            shared: shared.clone(),
            shared_at: None,
            shared_state: None,
        };
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

/// A shard range the operator gave that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardRangeError {
    /// Not `A-B` or `A` with whole numbers.
    #[error("shard range {0:?} is not A-B (first and last shard, e.g. 0-15)")]
    Syntax(String),
    /// Empty, or beyond the total.
    #[error("shard range {first}-{last} does not fit in {total} shards (numbered 0 to {total} - 1)")]
    OutOfRange {
        /// First shard.
        first: u32,
        /// Last shard.
        last: u32,
        /// Total shards.
        total: u32,
    },
    /// More processes than shards, or an ordinal beyond the replicas.
    #[error("pod ordinal {ordinal} of {replicas} replicas cannot share {total} shards")]
    Ordinal {
        /// The pod's ordinal.
        ordinal: u32,
        /// StatefulSet replicas.
        replicas: u32,
        /// Total shards.
        total: u32,
    },
    /// The pod name does not end in `-N`.
    #[error("POD_NAME {0:?} does not end in -N (a StatefulSet ordinal)")]
    PodName(String),
}

/// Parses `A-B` (first and last shard, inclusive) or `A` against `total` shards.
pub fn parse_shard_range(text: &str, total: u32) -> Result<Range<u32>, ShardRangeError> {
    let syntax = || ShardRangeError::Syntax(text.to_owned());
    let (first, last) = match text.trim().split_once('-') {
        Some((a, b)) => {
            (a.trim().parse::<u32>().map_err(|_| syntax())?, b.trim().parse::<u32>().map_err(|_| syntax())?)
        }
        None => {
            let a = text.trim().parse::<u32>().map_err(|_| syntax())?;
            (a, a)
        }
    };
    if first > last || last >= total {
        return Err(ShardRangeError::OutOfRange { first, last, total });
    }
    Ok(first..last + 1)
}

/// The shards of pod `ordinal` of `replicas`: the `ordinal`-th of `replicas` equal ranges of
/// `total` (sizes differ by at most one).
pub fn ordinal_shard_range(ordinal: u32, replicas: u32, total: u32) -> Result<Range<u32>, ShardRangeError> {
    if replicas == 0 || ordinal >= replicas || total < replicas {
        return Err(ShardRangeError::Ordinal { ordinal, replicas, total });
    }
    let at = |k: u32| u32::try_from(u64::from(k) * u64::from(total) / u64::from(replicas)).unwrap_or(total);
    Ok(at(ordinal)..at(ordinal + 1))
}

/// The ordinal of a StatefulSet pod named `name-N`.
pub fn pod_ordinal(pod_name: &str) -> Result<u32, ShardRangeError> {
    pod_name
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| ShardRangeError::PodName(pod_name.to_owned()))
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
struct ShardRunner<S> {
    id: u32,
    total: u32,
    /// Events deserialized and handed on; other dispatches are only counted.
    wanted: EventTypeFlags,
    shard: Shard<IdentifyQueue>,
    events: S,
    board: ShardBoard,
    stop: CancellationToken,
    /// Where the resume state and status go when gateways share Redis.
    shared: Option<SharedGateway>,
    /// When they were last shared, and the state then.
    shared_at: Option<Instant>,
    shared_state: Option<ShardState>,
}

impl<S: EventSink> ShardRunner<S> {
    async fn run(mut self) -> Result<(), GatewayError> {
        let id = self.id;
        loop {
            let item = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                item = next_wanted(&mut self.shard, &self.events, self.wanted) => item,
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
                // Heartbeat acknowledgements keep a quiet shard's published status fresh.
                self.share(false).await;
                continue;
            }
            let send = self.events.send(GatewayEvent { shard_id: id, event });
            // The resume state is saved after the event is handed over, so a gateway restarted
            // from it never skips an event (at worst Discord replays a few).
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                sent = send => if sent.is_err() {
                    tracing::info!(shard = id, "event receiver dropped; stopping shard");
                    break;
                },
            }
            self.share(false).await;
        }
        self.close().await;
        Ok(())
    }

    /// Saves the resume state and publishes the status, at most every [`SHARE_EVERY`] unless
    /// `now`.
    async fn share(&mut self, now: bool) {
        let Some(shared) = &self.shared else { return };
        // A new state (ready, resuming…) is published at once; otherwise at most every second.
        let state = map_state(self.shard.state());
        if !now && self.shared_state == Some(state) && self.shared_at.is_some_and(|at| at.elapsed() < SHARE_EVERY) {
            return;
        }
        self.shared_at = Some(Instant::now());
        self.shared_state = Some(state);
        let session = self.shard.session().map(|s| SavedSession {
            session_id: s.id().to_owned(),
            sequence: s.sequence(),
            resume_url: self.shard.resume_url().map(str::to_owned),
        });
        let status: Vec<ShardStatus> = self.board.local().into_iter().filter(|s| s.id == self.id).collect();
        let (shared, id, total) = (shared.clone(), self.id, self.total);
        let save = async move {
            if let Err(e) = shared.save_session(id, total, session.as_ref()).await {
                tracing::warn!(shard = id, error = %e, "cannot save the resume state");
            }
            if let Err(e) = shared.publish_status(&status).await {
                tracing::warn!(shard = id, error = %e, "cannot publish the shard status");
            }
        };
        // In the background while events flow, so a slow Redis never stalls the shard (a save
        // overtaken by an older one only makes Discord replay a few events more).
        if now {
            save.await;
        } else {
            tokio::spawn(save);
        }
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
        // A gateway sharing its sessions closes so that the next process resumes them;
        // `beacon run` ends its sessions.
        if self.shared.is_some() {
            self.share(true).await;
            self.shard.close(CloseFrame::RESUME);
        } else {
            self.shard.close(CloseFrame::NORMAL);
        }
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

/// The next event of `wanted` from `shard`; the dispatches nobody wants are counted in `sink`
/// and dropped before deserialization. Cancel safe: nothing is awaited once a message is taken.
async fn next_wanted<S: EventSink>(
    shard: &mut Shard<IdentifyQueue>,
    sink: &S,
    wanted: EventTypeFlags,
) -> Option<Result<Event, ReceiveMessageError>> {
    loop {
        match shard.next().await? {
            Err(error) => return Some(Err(error)),
            Ok(Message::Close(frame)) => return Some(Ok(Event::GatewayClose(frame))),
            Ok(Message::Text(frame)) => {
                if let Some(kind) = unwanted_dispatch(&frame, wanted) {
                    sink.skipped(kind);
                    continue;
                }
                if let Some(event) = twilight_gateway::parse(frame, wanted).transpose() {
                    return Some(event.map(Event::from));
                }
            }
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
mod peek_tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use twilight_model::gateway::event::Event as ModelEvent;

    use super::*;

    /// A dispatch frame Discord could send: `t`, `s` and `op` in any order before `d`, and a
    /// payload whose text may itself look like a frame's keys.
    fn frame(kind: &str, text: &str, order: &[usize], seq: u64) -> String {
        let d = match kind {
            "MESSAGE_CREATE" => json!({
                "id": "1100000000000000001", "channel_id": "1200000000000000002", "guild_id": "1300000000000000003",
                "author": {"id": "1400000000000000004", "username": text, "discriminator": "0", "avatar": null},
                "content": text, "timestamp": "2026-01-01T00:00:00.000000+00:00", "edited_timestamp": null,
                "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": false, "type": 0, "flags": 0,
            }),
            "MESSAGE_DELETE" => json!({"id": "5", "channel_id": "6", "guild_id": "7"}),
            "GUILD_DELETE" => json!({"id": "7", "unavailable": false}),
            "TYPING_START" => json!({"channel_id": "6", "guild_id": "7", "user_id": "8", "timestamp": 1}),
            _ => json!({"text": text}),
        };
        let keys = [format!(r#""t":"{kind}""#), format!(r#""s":{seq}"#), r#""op":0"#.to_owned()];
        let head: Vec<&str> = order.iter().map(|&i| keys[i].as_str()).collect();
        format!("{{{},\"d\":{}}}", head.join(","), d)
    }

    const KINDS: [&str; 5] = ["MESSAGE_CREATE", "MESSAGE_DELETE", "GUILD_DELETE", "TYPING_START", "NOT_AN_EVENT"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The peek agrees with full deserialization: it skips exactly the known dispatches
        /// not wanted, and names the kind serde and twilight find in the frame.
        #[test]
        fn peek_agrees_with_deserialization(
            kind in 0..KINDS.len(),
            text in r#"[a-z "{}:,\\]{0,40}|"t":"GUILD_DELETE""#,
            order in Just(vec![0usize, 1, 2]).prop_shuffle(),
            seq in any::<u32>(),
            wanted_bits in any::<u8>(),
        ) {
            let kind = KINDS[kind];
            let frame = frame(kind, &text, &order, u64::from(seq));
            let flags = [EventTypeFlags::MESSAGE_CREATE, EventTypeFlags::MESSAGE_DELETE, EventTypeFlags::GUILD_DELETE, EventTypeFlags::TYPING_START];
            let wanted = flags.iter().enumerate().filter(|(i, _)| wanted_bits & (1 << i) != 0).fold(EventTypeFlags::empty(), |acc, (_, f)| acc | *f);
            let json: Value = serde_json::from_str(&frame).expect("frames are JSON");
            prop_assert_eq!(json["t"].as_str(), Some(kind));
            let full = twilight_gateway::parse(frame.clone(), EventTypeFlags::all()).expect("twilight parses the frame");
            let skipped = unwanted_dispatch(&frame, wanted);
            match full.map(ModelEvent::from) {
                Some(event) => {
                    prop_assert_eq!(event.kind().name(), Some(kind));
                    let is_wanted = wanted.contains(EventTypeFlags::from(event.kind()));
                    prop_assert_eq!(skipped, (!is_wanted).then_some(event.kind()));
                    // What is not skipped is deserialized as before.
                    let parsed = twilight_gateway::parse(frame, wanted).expect("parses").map(ModelEvent::from);
                    prop_assert_eq!(parsed.is_some(), is_wanted);
                }
                // An event type twilight does not know is never skipped here (the parser drops it).
                None => prop_assert_eq!(skipped, None),
            }
        }
    }

    #[test]
    fn gateway_opcodes_and_garbage_are_never_skipped() {
        let none = EventTypeFlags::empty();
        assert_eq!(unwanted_dispatch(r#"{"op":10,"d":{"heartbeat_interval":41250}}"#, none), None);
        assert_eq!(unwanted_dispatch(r#"{"op":11,"d":null}"#, none), None);
        assert_eq!(unwanted_dispatch("not json", none), None);
        assert_eq!(unwanted_dispatch(r#"{"t":"MESSAGE_CREATE","op":0,"d":{}}"#, none), Some(EventType::MessageCreate));
        let wanted = EventTypeFlags::MESSAGE_CREATE;
        assert_eq!(unwanted_dispatch(r#"{"t":"MESSAGE_CREATE","op":0,"d":{}}"#, wanted), None);
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
    fn shard_ranges_parse_and_split_by_ordinal() {
        assert_eq!(parse_shard_range("0-15", 64), Ok(0..16));
        assert_eq!(parse_shard_range(" 7 ", 8), Ok(7..8));
        assert!(matches!(parse_shard_range("3-2", 8), Err(ShardRangeError::OutOfRange { .. })));
        assert!(matches!(parse_shard_range("0-8", 8), Err(ShardRangeError::OutOfRange { .. })));
        assert!(matches!(parse_shard_range("a-b", 8), Err(ShardRangeError::Syntax(_))));
        // Pod k of M takes the k-th of M equal ranges, covering every shard once.
        let ranges: Vec<_> = (0..3).map(|k| ordinal_shard_range(k, 3, 10).expect("fits")).collect();
        assert_eq!(ranges, [0..3, 3..6, 6..10]);
        assert_eq!(ordinal_shard_range(1, 4, 64), Ok(16..32));
        assert!(ordinal_shard_range(4, 4, 64).is_err());
        assert!(ordinal_shard_range(0, 5, 4).is_err());
        assert_eq!(pod_ordinal("beacon-gateway-12"), Ok(12));
        assert!(pod_ordinal("gateway").is_err());
    }

    #[test]
    fn board_merges_other_processes_shards() {
        let board = ShardBoard::default();
        board.register(1, 4);
        let remote = |id| ShardStatus {
            id,
            total: 4,
            state: ShardState::Ready,
            latency_ms: Some(5),
            guilds: 2,
            last_event_at: None,
            reconnects: 0,
        };
        board.set_remote(vec![remote(0), remote(1), remote(3)]);
        let snap = board.snapshot();
        assert_eq!(snap.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1, 3]);
        // Its own shard wins over a published copy.
        assert_eq!(snap[1].state, ShardState::Connecting);
        assert_eq!(board.connected(), 2);
        assert_eq!(board.guilds(), 4);
        assert_eq!(board.local().len(), 1);
    }

    #[test]
    fn config_debug_redacts_token() {
        let config = GatewayConfig {
            token: "secret-token".into(),
            intents: Intents::GUILDS,
            shard_count: None,
            shard_ids: None,
            gateway_url: None,
            events: EventTypeFlags::MESSAGE_CREATE,
        };
        assert!(!format!("{config:?}").contains("secret-token"));
    }
}
