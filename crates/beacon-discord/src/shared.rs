//! What gateway processes share through Redis when the shards are split between them: the
//! identify queue (Discord's `max_concurrency` buckets and 5-second spacing hold for the whole
//! bot, not per process), each shard's resume state (so a restarted gateway resumes instead of
//! identifying again) and each shard's status (read by every process's `/status` and shard
//! monitor).
//!
//! Keys, under the deployment's prefix `P`:
//! - `P:gateway:identify:{bucket}` — held for 5.5 s by the shard that may identify now
//!   (bucket = shard id % `max_concurrency`); a shard waits while another holds it.
//! - `P:gateway:session:{shard}:{total}` — hash `session_id`, `sequence`, `resume_url`, kept
//!   10 minutes after the last update (Discord forgets sessions sooner).
//! - `P:gateway:shards` — hash shard id → `total state latency_ms guilds reconnects updated_ms
//!   process`, one line per shard, written at most every second by the gateway that runs it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use tokio::sync::oneshot;
use twilight_gateway::queue::{InMemoryQueue, Queue};

use crate::gateway::{ShardState, ShardStatus};

/// How long a bucket stays closed after an identify: Discord's 5 s and a margin for the time
/// between the grant and Discord receiving the identify.
pub const IDENTIFY_SPACING: Duration = Duration::from_millis(5_500);

/// A status older than this is shown as disconnected: its gateway stopped reporting (a shard
/// publishes at most every second while events flow, and at least with every heartbeat, ~41 s).
pub const STATUS_STALE_AFTER: Duration = Duration::from_secs(90);

/// How long a saved session is kept.
const SESSION_TTL: Duration = Duration::from_secs(600);

/// A shard's resume state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// Discord's session id.
    pub session_id: String,
    /// The last sequence number received.
    pub sequence: u64,
    /// Where to resume (`resume_gateway_url` of READY).
    pub resume_url: Option<String>,
}

/// The gateway's state in Redis. Cheap to clone.
#[derive(Clone)]
pub struct SharedGateway {
    conn: ConnectionManager,
    prefix: String,
    process: String,
}

impl std::fmt::Debug for SharedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedGateway").field("prefix", &self.prefix).field("process", &self.process).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl SharedGateway {
    /// Shared state under `prefix` (the deployment's key prefix); `process` names this gateway
    /// process in the shard statuses (e.g. its pod name).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, process: impl Into<String>) -> SharedGateway {
        SharedGateway { conn, prefix: prefix.into(), process: process.into() }
    }

    /// The identify queue shared by every gateway process of the bot.
    pub fn identify_queue(&self, max_concurrency: u16) -> IdentifyQueue {
        IdentifyQueue::Shared(RedisQueue {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
            process: self.process.clone(),
            max_concurrency: u32::from(max_concurrency.max(1)),
        })
    }

    fn session_key(&self, shard: u32, total: u32) -> String {
        format!("{}:gateway:session:{shard}:{total}", self.prefix)
    }

    fn shards_key(&self) -> String {
        format!("{}:gateway:shards", self.prefix)
    }

    /// The saved resume state of a shard, if any.
    pub async fn load_session(&self, shard: u32, total: u32) -> Result<Option<SavedSession>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let (session_id, sequence, resume_url): (Option<String>, Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.session_key(shard, total))
            .arg("session_id")
            .arg("sequence")
            .arg("resume_url")
            .query_async(&mut conn)
            .await?;
        Ok(match (session_id, sequence) {
            (Some(session_id), Some(sequence)) => Some(SavedSession { session_id, sequence, resume_url }),
            _ => None,
        })
    }

    /// Saves a shard's resume state (`None`: it has no session; the saved one is removed).
    pub async fn save_session(
        &self,
        shard: u32,
        total: u32,
        session: Option<&SavedSession>,
    ) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let key = self.session_key(shard, total);
        let Some(s) = session else {
            return redis::cmd("DEL").arg(key).query_async::<()>(&mut conn).await;
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("session_id")
            .arg(&s.session_id)
            .arg("sequence")
            .arg(s.sequence)
            .ignore();
        match &s.resume_url {
            Some(url) => pipe.cmd("HSET").arg(&key).arg("resume_url").arg(url).ignore(),
            None => pipe.cmd("HDEL").arg(&key).arg("resume_url").ignore(),
        };
        pipe.cmd("PEXPIRE").arg(&key).arg(SESSION_TTL.as_millis() as u64).ignore();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Publishes this process's shard statuses.
    pub async fn publish_status(&self, statuses: &[ShardStatus]) -> Result<(), redis::RedisError> {
        if statuses.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let now = now_ms();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.shards_key());
        for s in statuses {
            cmd.arg(s.id).arg(encode_status(s, now, &self.process));
        }
        cmd.query_async::<()>(&mut conn).await
    }

    /// Every gateway process's shard statuses, ordered by shard; a status not updated for
    /// [`STATUS_STALE_AFTER`] is shown disconnected, and shards of another total (an earlier
    /// sharding) are left out when a newer total reports.
    pub async fn read_statuses(&self) -> Result<Vec<ShardStatus>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let raw: std::collections::HashMap<u32, String> =
            redis::cmd("HGETALL").arg(self.shards_key()).query_async(&mut conn).await?;
        let now = now_ms();
        let mut out: Vec<(ShardStatus, u64)> =
            raw.iter().filter_map(|(id, line)| decode_status(*id, line, now)).collect();
        let newest_total = out.iter().max_by_key(|(_, updated)| *updated).map(|(s, _)| s.total);
        if let Some(total) = newest_total {
            out.retain(|(s, _)| s.total == total);
        }
        let mut statuses: Vec<ShardStatus> = out.into_iter().map(|(s, _)| s).collect();
        statuses.sort_by_key(|s| s.id);
        Ok(statuses)
    }
}

fn state_name(state: ShardState) -> &'static str {
    match state {
        ShardState::Connecting => "connecting",
        ShardState::Identifying => "identifying",
        ShardState::Ready => "ready",
        ShardState::Resuming => "resuming",
        ShardState::Disconnected => "disconnected",
    }
}

fn encode_status(s: &ShardStatus, now: u64, process: &str) -> String {
    let latency = s.latency_ms.map_or_else(|| "-".to_owned(), |l| l.to_string());
    format!("{} {} {latency} {} {} {now} {process}", s.total, state_name(s.state), s.guilds, s.reconnects)
}

/// A status line and when it was written; `None` when it is not one.
fn decode_status(id: u32, line: &str, now: u64) -> Option<(ShardStatus, u64)> {
    let mut parts = line.split(' ');
    let total = parts.next()?.parse().ok()?;
    let state = match parts.next()? {
        "connecting" => ShardState::Connecting,
        "identifying" => ShardState::Identifying,
        "ready" => ShardState::Ready,
        "resuming" => ShardState::Resuming,
        _ => ShardState::Disconnected,
    };
    let latency_ms = parts.next()?.parse().ok();
    let guilds = parts.next()?.parse().ok()?;
    let reconnects = parts.next()?.parse().ok()?;
    let updated: u64 = parts.next()?.parse().ok()?;
    let stale = now.saturating_sub(updated) > STATUS_STALE_AFTER.as_millis() as u64;
    let status = ShardStatus {
        id,
        total,
        state: if stale { ShardState::Disconnected } else { state },
        latency_ms,
        guilds,
        last_event_at: None,
        reconnects,
    };
    Some((status, updated))
}

/// The identify queue a process's shards wait in: twilight's own (one process runs every
/// shard) or the one shared through Redis.
#[derive(Debug, Clone)]
pub enum IdentifyQueue {
    /// In this process only.
    Local(InMemoryQueue),
    /// Shared by every gateway process through Redis.
    Shared(RedisQueue),
}

impl Queue for IdentifyQueue {
    fn enqueue(&self, shard: u32) -> oneshot::Receiver<()> {
        match self {
            IdentifyQueue::Local(q) => q.enqueue(shard),
            IdentifyQueue::Shared(q) => q.enqueue(shard),
        }
    }
}

/// Identify permission through Redis: a shard may identify when it sets its bucket's key
/// (`SET NX PX 5500`); otherwise it waits for the key to expire.
#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    prefix: String,
    process: String,
    max_concurrency: u32,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

impl RedisQueue {
    fn enqueue(&self, shard: u32) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut conn = self.conn.clone();
        let bucket = shard % self.max_concurrency;
        let key = format!("{}:gateway:identify:{bucket}", self.prefix);
        let holder = format!("{} shard {shard}", self.process);
        tokio::spawn(async move {
            loop {
                if tx.is_closed() {
                    return;
                }
                let granted: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&holder)
                    .arg("NX")
                    .arg("PX")
                    .arg(IDENTIFY_SPACING.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
                let wait = match granted {
                    Ok(Some(_)) => {
                        tracing::debug!(shard, bucket, "identify granted");
                        let _ = tx.send(());
                        return;
                    }
                    Ok(None) => {
                        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap_or(100);
                        Duration::from_millis(u64::try_from(ttl).unwrap_or(0).clamp(20, 5_500))
                    }
                    Err(e) => {
                        tracing::warn!(shard, error = %e, "identify queue: Redis unreachable; waiting");
                        Duration::from_secs(1)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_round_trip_and_go_stale() {
        let s = ShardStatus {
            id: 3,
            total: 8,
            state: ShardState::Ready,
            latency_ms: Some(42),
            guilds: 17,
            last_event_at: None,
            reconnects: 2,
        };
        let line = encode_status(&s, 1_000_000, "gateway-1");
        let (back, updated) = decode_status(3, &line, 1_000_500).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(updated, 1_000_000);
        let (stale, _) = decode_status(3, &line, 1_000_000 + 91_000).expect("decodes");
        assert_eq!(stale.state, ShardState::Disconnected);
        let no_latency = ShardStatus { latency_ms: None, ..s };
        let line = encode_status(&no_latency, 5, "p");
        assert_eq!(decode_status(3, &line, 5).map(|(s, _)| s.latency_ms), Some(None));
        assert!(decode_status(3, "garbage", 5).is_none());
    }
}
