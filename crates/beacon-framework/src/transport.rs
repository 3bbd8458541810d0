//! The event transport between the roles: how a gateway process hands dispatch events to the
//! workers, and how a worker hands them to the router.
//!
//! `beacon run` keeps the in-process channel ([`App::start_gateway`]). With the scale-out roles
//! the shards' [`EventSink`] is a [`StreamSink`]: each event is appended to the Redis stream of
//! its guild's partition (see `beacon-streams`), as its shard number and the dispatch payload in
//! Discord's own JSON; a worker ([`App::start_worker`]) decodes it and runs
//! [`crate::router::handle_gateway_event`], and the entry is acknowledged only when every module
//! handled it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use beacon_discord::gateway::{self, EventSink, GatewayConfig, GatewayEvent, SinkClosed};
use beacon_discord::shared::SharedGateway;
use beacon_streams::{Consumer, ConsumerStats, Delivery, HandleError, Handler, Streams};
use serde::de::DeserializeSeed;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use twilight_model::gateway::event::{DispatchEvent, DispatchEventWithTypeDeserializer, Event};

use crate::app::App;
use crate::router::handle_gateway_event;

/// An event that cannot cross the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Not a dispatch event (only those are forwarded).
    #[error("{0:?} is not a dispatch event")]
    NotDispatch(twilight_model::gateway::event::EventType),
    /// serde could not write it.
    #[error("encoding {kind}")]
    Encode {
        /// The event kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The entry is not `shard\njson`.
    #[error("stream entry is not an event: {0}")]
    Malformed(&'static str),
    /// The payload is not an event of its kind.
    #[error("decoding {kind}")]
    Decode {
        /// The event kind.
        kind: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// An event as a stream entry: its guild (the partition key), its kind and `shard\n` followed by
/// the dispatch payload's JSON.
pub fn encode(event: GatewayEvent) -> Result<(Option<u64>, &'static str, Vec<u8>), TransportError> {
    let kind_type = event.event.kind();
    let kind = kind_type.name().ok_or(TransportError::NotDispatch(kind_type))?;
    let guild = event.event.guild_id().map(|g| g.get());
    let dispatch = DispatchEvent::try_from(event.event).map_err(|_| TransportError::NotDispatch(kind_type))?;
    let mut data = format!("{}\n", event.shard_id).into_bytes();
    serde_json::to_writer(&mut data, &dispatch).map_err(|source| TransportError::Encode { kind, source })?;
    Ok((guild, kind, data))
}

/// The event of a stream entry written by [`encode`].
pub fn decode(kind: &str, data: &[u8]) -> Result<GatewayEvent, TransportError> {
    let newline = data.iter().position(|b| *b == b'\n').ok_or(TransportError::Malformed("no shard line"))?;
    let shard_id = std::str::from_utf8(&data[..newline])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(TransportError::Malformed("the shard line is not a number"))?;
    let mut json = serde_json::Deserializer::from_slice(&data[newline + 1..]);
    let dispatch = DispatchEventWithTypeDeserializer::new(kind)
        .deserialize(&mut json)
        .map_err(|source| TransportError::Decode { kind: kind.to_owned(), source })?;
    Ok(GatewayEvent { shard_id, event: Event::from(dispatch) })
}

/// The shards' sink in a gateway process: appends each event to its partition's stream. While
/// Redis is unreachable it retries (the shard waits, and Discord replays what it could not
/// send), so no event is dropped; it gives up only at shutdown.
#[derive(Clone)]
pub struct StreamSink {
    streams: Streams,
    shutdown: CancellationToken,
    /// Where the events no worker wants are counted (they never reach a stream).
    metrics: crate::metrics::Metrics,
}

impl StreamSink {
    /// A sink into `streams` that stops retrying at `shutdown`.
    pub fn new(streams: Streams, shutdown: CancellationToken, metrics: crate::metrics::Metrics) -> StreamSink {
        StreamSink { streams, shutdown, metrics }
    }
}

impl EventSink for StreamSink {
    async fn send(&self, event: GatewayEvent) -> Result<(), SinkClosed> {
        let (guild, kind, data) = match encode(event) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::warn!(error = %e, "gateway event not forwarded");
                return Ok(());
            }
        };
        let mut wait = Duration::from_millis(100);
        loop {
            match self.streams.publish(guild, kind, &data).await {
                Ok(_) => return Ok(()),
                Err(e) => tracing::warn!(error = %e, kind, "cannot append the event to its stream; retrying"),
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(SinkClosed),
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    fn skipped(&self, kind: twilight_model::gateway::event::EventType) {
        if let Some(name) = kind.name() {
            self.metrics.gateway_event(name);
        }
    }
}

/// A worker's handler: the router, with an error when a module failed.
struct Dispatch {
    app: Arc<App>,
}

impl Handler for Dispatch {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        let event = decode(&delivery.kind, &delivery.data)?;
        handle_gateway_event(&self.app, event).await?;
        Ok(())
    }
}

/// How often a worker refreshes the stream figures of `/metrics`, and every process the shard
/// statuses other gateways publish.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

impl App {
    /// Runs this process's shards (`shard_ids` of `total`) with their events going to
    /// `streams` instead of the in-process handlers, sharing the identify queue, resume state
    /// and shard status through `shared`. Ends like [`App::start_gateway`].
    pub fn start_gateway_to_streams(
        self: &Arc<Self>,
        token: String,
        shards: Option<std::ops::Range<u32>>,
        total: Option<u32>,
        shared: SharedGateway,
    ) -> Option<JoinHandle<Result<(), gateway::GatewayError>>> {
        let streams = self.streams.clone()?;
        let config = GatewayConfig {
            token,
            intents: self.intents(),
            shard_count: total.or(self.config.discord.shard_count),
            shard_ids: shards,
            gateway_url: self.config.discord.gateway_url.clone(),
            events: self.gateway_events(),
        };
        let sink = StreamSink::new(streams, self.shutdown.clone(), self.metrics.clone());
        let app = self.clone();
        Some(tokio::spawn(async move {
            let intents = config.intents;
            let result =
                gateway::run_shared(config, app.http.clone(), sink, app.shards.clone(), app.shutdown.clone(), shared)
                    .await;
            if let Err(e) = &result
                && !app.shutdown.is_cancelled()
            {
                app.fail(e.advice(intents));
            }
            result
        }))
    }

    /// Handles the events of [`App::streams`] as the worker `name` until shutdown (see
    /// `beacon-streams`: a fair share of the partitions, in order, acknowledged after
    /// handling); `None` without streams.
    pub fn start_worker(self: &Arc<Self>, name: String) -> Option<JoinHandle<()>> {
        let streams = self.streams.clone()?;
        let consumer = Consumer::new(streams.clone(), name, Arc::new(Dispatch { app: self.clone() }));
        self.spawn_stream_metrics(streams, consumer.stats());
        Some(tokio::spawn(consumer.run(self.shutdown.clone())))
    }

    /// Keeps the `/metrics` stream figures current: this worker's counts and the deployment's
    /// pending entries and dead letters.
    fn spawn_stream_metrics(self: &Arc<Self>, streams: Streams, stats: Arc<ConsumerStats>) {
        self.every_refresh(move |app| {
            let (streams, stats) = (streams.clone(), stats.clone());
            async move {
                app.metrics.stream_worker(
                    stats.handled.load(Ordering::Relaxed),
                    stats.retried.load(Ordering::Relaxed),
                    stats.dead_lettered.load(Ordering::Relaxed),
                    stats.taken_over.load(Ordering::Relaxed),
                );
                match streams.stats().await {
                    Ok(s) => app.metrics.stream_backlog(s.pending, s.dead_letters),
                    Err(e) => tracing::debug!(error = %e, "stream figures unavailable"),
                }
            }
        });
    }

    /// Runs `refresh` every [`REFRESH_EVERY`] until shutdown, as one of the app's tasks.
    fn every_refresh<F, Fut>(self: &Arc<Self>, mut refresh: F)
    where
        F: FnMut(Arc<App>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let app = self.clone();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            loop {
                tokio::select! {
                    () = app.shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                refresh(app.clone()).await;
            }
        });
    }

    /// Shows the shards every gateway process publishes in `shared` on this process's board
    /// (`/status`, the shard monitor), refreshed every 2 s until shutdown.
    pub fn follow_shards(self: &Arc<Self>, shared: SharedGateway) {
        self.every_refresh(move |app| {
            let shared = shared.clone();
            async move {
                match shared.read_statuses().await {
                    Ok(statuses) => app.shards.set_remote(statuses),
                    Err(e) => tracing::debug!(error = %e, "shard statuses unavailable"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilight_model::gateway::payload::incoming::MessageCreate;

    #[test]
    fn events_cross_the_transport_unchanged() {
        let json = serde_json::json!({
            "id": "1100000000000000001", "channel_id": "1200000000000000002", "guild_id": "1300000000000000003",
            "author": {"id": "1400000000000000004", "username": "member", "discriminator": "0", "avatar": null},
            "content": "how do I reset my password?", "timestamp": "2026-01-01T00:00:00.000000+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": 0,
        });
        let message: MessageCreate = serde_json::from_value(json).expect("a message");
        let event = GatewayEvent { shard_id: 3, event: Event::MessageCreate(Box::new(message)) };
        let original = event.event.clone();
        let (guild, kind, data) = encode(event).expect("encodes");
        assert_eq!((guild, kind), (Some(1_300_000_000_000_000_003), "MESSAGE_CREATE"));
        let back = decode(kind, &data).expect("decodes");
        assert_eq!(back.shard_id, 3);
        assert_eq!(back.event, original);
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert!(matches!(decode("MESSAGE_CREATE", b"no newline"), Err(TransportError::Malformed(_))));
        assert!(matches!(decode("MESSAGE_CREATE", b"x\n{}"), Err(TransportError::Malformed(_))));
        assert!(matches!(decode("MESSAGE_CREATE", b"0\n{}"), Err(TransportError::Decode { .. })));
    }
}
