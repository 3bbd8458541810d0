//! Beacon's event transport between processes: Redis Streams, partitioned so that one guild's
//! events stay in order.
//!
//! A gateway process [`Streams::publish`]es each dispatch event to the stream of its partition
//! (`{prefix}:events:{guild_id % partitions}`; events without a guild go to partition 0). Worker
//! processes run a [`Consumer`]: each partition is leased to **one** worker at a time (a Redis key
//! with a time-to-live the holder renews), which reads it through the consumer group `workers`
//! and handles its entries one after another, acknowledging each after the handler succeeds — so
//! a guild's events are handled in the order the gateway saw them, and an entry is acknowledged
//! only once it was handled. Partitions are shared fairly between the live workers (each
//! announces itself in `{prefix}:workers`).
//!
//! When a worker dies its leases expire; the worker that takes a partition over first moves the
//! dead worker's pending entries to itself with `XAUTOCLAIM` (once they have been idle for
//! [`StreamsConfig::claim_idle`]) and handles them before anything newer. An entry whose handler
//! keeps failing, or that was delivered [`StreamsConfig::max_deliveries`] times without
//! completing (it stopped every worker that took it), goes to the dead-letter stream
//! `{prefix}:events:dead` with the error and is acknowledged, so one bad event never blocks its
//! partition for good.
//!
//! Redelivery means a handler can see an event twice (a worker killed after the side effect and
//! before the acknowledgement): handlers claim their side effects (Beacon's idempotency claims)
//! so the second delivery causes nothing. The transport is **at least once, in order per
//! partition**; exactly-once effects are the handlers' claims.
//!
//! The crate knows nothing of Discord: an entry is a kind (e.g. `MESSAGE_CREATE`) and bytes.

mod consumer;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use consumer::{Consumer, ConsumerStats, Delivery, HandleError, Handler};

/// How the streams are laid out and consumed. Every gateway and worker of one deployment must
/// use the same `prefix` and `partitions`.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// Prefix of every key (`beacon` by default); deployments sharing a Redis use different ones.
    pub prefix: String,
    /// Number of partition streams. A guild always maps to the same one.
    pub partitions: u32,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_deliveries: u32,
    /// How long another worker's pending entry must have been idle before it is taken over.
    pub claim_idle: Duration,
    /// Time-to-live of a worker's lease on a partition (renewed every third of it).
    pub lease: Duration,
    /// Approximate length each partition stream is trimmed to (`XADD … MAXLEN ~`).
    pub max_len: u64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            prefix: "beacon".into(),
            partitions: 16,
            max_deliveries: 5,
            claim_idle: Duration::from_secs(15),
            lease: Duration::from_secs(10),
            max_len: 100_000,
        }
    }
}

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// Redis refused a command or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The Redis URL could not be parsed (shown with its password redacted).
    #[error("invalid redis URL {0}")]
    InvalidUrl(String),
    /// The configuration cannot work.
    #[error("invalid streams configuration: {0}")]
    Config(&'static str),
}

/// One entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter entry's own id.
    pub id: String,
    /// The partition stream it came from.
    pub stream: String,
    /// Its id in that stream.
    pub entry_id: String,
    /// The event kind.
    pub kind: String,
    /// The event's bytes, to replay it by hand.
    pub data: Vec<u8>,
    /// Why it was given up: the handler's last error, or that it never completed.
    pub error: String,
    /// How many times it was delivered.
    pub deliveries: u32,
}

/// Figures for `/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Entries delivered to a worker and not yet acknowledged, over every partition.
    pub pending: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
}

/// The consumer group every worker joins.
pub(crate) const GROUP: &str = "workers";

/// A handle on the deployment's event streams. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    client: redis::Client,
    conn: ConnectionManager,
    config: Arc<StreamsConfig>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Streams {
    /// Connects to Redis (`redis://[:password@]host:port[/db]`), failing if it does not answer.
    /// Connections reconnect on their own after Redis restarts.
    pub async fn connect(url: &str, config: StreamsConfig) -> Result<Streams, StreamsError> {
        if config.partitions == 0 {
            return Err(StreamsError::Config("partitions must be at least 1"));
        }
        if config.max_deliveries == 0 {
            return Err(StreamsError::Config("max_deliveries must be at least 1"));
        }
        if config.lease < Duration::from_millis(300) {
            return Err(StreamsError::Config("the partition lease must be at least 300 ms"));
        }
        let client = redis::Client::open(url).map_err(|e| StreamsError::InvalidUrl(format!("{}: {e}", redact(url))))?;
        let conn = connection(&client).await?;
        let streams = Streams { client, conn, config: Arc::new(config) };
        let mut conn = streams.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(streams)
    }

    /// The configuration.
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// A connection that reconnects on its own, shared by every clone of this handle.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The partition of an event with partition key `key` (a guild id); partition 0 without one.
    pub fn partition(&self, key: Option<u64>) -> u32 {
        key.map_or(0, |k| u32::try_from(k % u64::from(self.config.partitions)).unwrap_or(0))
    }

    /// The stream key of `partition`.
    pub fn stream_key(&self, partition: u32) -> String {
        format!("{}:events:{partition}", self.config.prefix)
    }

    /// The dead-letter stream's key.
    pub fn dead_letter_key(&self) -> String {
        format!("{}:events:dead", self.config.prefix)
    }

    pub(crate) fn lease_key(&self, partition: u32) -> String {
        format!("{}:events:lease:{partition}", self.config.prefix)
    }

    pub(crate) fn workers_key(&self) -> String {
        format!("{}:workers", self.config.prefix)
    }

    pub(crate) async fn dedicated_connection(&self) -> Result<ConnectionManager, StreamsError> {
        connection(&self.client).await
    }

    /// Appends an event to its partition's stream; returns the entry id. Events of one key are
    /// appended (and so handled) in the order of the calls.
    pub async fn publish(&self, key: Option<u64>, kind: &str, data: &[u8]) -> Result<String, StreamsError> {
        let mut conn = self.conn.clone();
        let id = redis::cmd("XADD")
            .arg(self.stream_key(self.partition(key)))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.max_len)
            .arg("*")
            .arg("kind")
            .arg(kind)
            .arg("data")
            .arg(data)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    /// The newest `count` dead letters, newest first.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, StreamsError> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.dead_letter_key())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| DeadLetter {
                stream: e.get("stream").unwrap_or_default(),
                entry_id: e.get("entry").unwrap_or_default(),
                kind: e.get("kind").unwrap_or_default(),
                data: e.get("data").unwrap_or_default(),
                error: e.get("error").unwrap_or_default(),
                deliveries: e.get("deliveries").unwrap_or_default(),
                id: e.id,
            })
            .collect())
    }

    /// Pending entries over every partition and the dead-letter stream's length.
    pub async fn stats(&self) -> Result<StreamStats, StreamsError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(self.dead_letter_key());
        for p in 0..self.config.partitions {
            // XPENDING fails on a stream without the group; XINFO GROUPS too, so count from
            // the summary of streams that exist.
            pipe.cmd("EXISTS").arg(self.stream_key(p));
        }
        let replies: Vec<u64> = pipe.query_async(&mut conn).await?;
        let dead_letters = replies.first().copied().unwrap_or(0);
        let mut pending = 0;
        for (p, exists) in (0..self.config.partitions).zip(replies.iter().skip(1)) {
            if *exists == 0 {
                continue;
            }
            let summary: Result<redis::streams::StreamPendingReply, _> =
                redis::cmd("XPENDING").arg(self.stream_key(p)).arg(GROUP).query_async(&mut conn).await;
            match summary {
                Ok(s) => pending += s.count() as u64,
                Err(e) if e.code() == Some("NOGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(StreamStats { pending, dead_letters })
    }
}

async fn connection(client: &redis::Client) -> Result<ConnectionManager, StreamsError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        // Longer than the blocking reads (1 s) so a quiet stream is not a timeout.
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    Ok(client.get_connection_manager_with_config(config).await?)
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:hunter2@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact("redis://u:p@h"), "redis://u:***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }
}
