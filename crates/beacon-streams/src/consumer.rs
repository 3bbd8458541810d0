//! The worker side: partition leases, in-order handling, acknowledgement, takeover of a dead
//! worker's entries and the dead-letter stream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{GROUP, Streams, StreamsError};

/// Entries read at once from a partition.
const BATCH: usize = 32;
/// How long a read waits for new entries.
const BLOCK_MS: u64 = 1_000;

/// One delivery of an event to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The entry id in its partition stream (unique per partition).
    pub id: String,
    /// The partition.
    pub partition: u32,
    /// The event kind given to [`Streams::publish`].
    pub kind: String,
    /// The event's bytes.
    pub data: Vec<u8>,
    /// How many times Redis has delivered it, this time included.
    pub deliveries: u32,
}

/// Why a handler did not complete; stored in the dead-letter stream.
pub type HandleError = Box<dyn std::error::Error + Send + Sync>;

/// Handles one event; `Ok` acknowledges it.
pub trait Handler: Send + Sync + 'static {
    /// Handles `delivery`. An error leaves the entry pending: it is delivered again after a
    /// back-off, before anything newer of its partition, until
    /// [`crate::StreamsConfig::max_deliveries`].
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// What a worker did, for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Entries handled and acknowledged.
    pub handled: AtomicU64,
    /// Handler failures that will be retried.
    pub retried: AtomicU64,
    /// Entries this worker moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Entries taken over from a worker that stopped (`XAUTOCLAIM`).
    pub taken_over: AtomicU64,
    /// Partitions this worker holds now.
    pub partitions: AtomicU64,
}

/// A worker's consumer: takes its fair share of partitions and handles their events.
pub struct Consumer<H> {
    streams: Streams,
    name: String,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
}

/// Extends the lease when this worker still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives the lease up when this worker still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

struct Owned {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl<H: Handler> Consumer<H> {
    /// A consumer named `name` (unique per worker process, e.g. host name and pid).
    pub fn new(streams: Streams, name: impl Into<String>, handler: Arc<H>) -> Consumer<H> {
        Consumer { streams, name: name.into(), handler, stats: Arc::new(ConsumerStats::default()) }
    }

    /// The figures this consumer keeps.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown`: every third of the lease it announces itself, renews its leases,
    /// gives up partitions beyond its fair share and takes free ones up to it. At shutdown it
    /// finishes the entry in hand of each partition and releases its leases, so another
    /// worker continues at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let config = self.streams.config().clone();
        let mut conn = self.streams.connection();
        let renew = redis::Script::new(RENEW);
        let release = redis::Script::new(RELEASE);
        let lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
        let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
        let mut tick = tokio::time::interval(config.lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Workers start their search at different partitions so they do not race for the same.
        let start =
            u32::try_from(self.name.bytes().map(u64::from).sum::<u64>() % u64::from(config.partitions)).unwrap_or(0);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            owned.retain(|_, o| !o.task.is_finished());
            let workers = match self.announce(&mut conn, lease_ms).await {
                Ok(n) => n.max(1),
                Err(e) => {
                    tracing::warn!(error = %e, "event streams: cannot reach Redis; retrying");
                    continue;
                }
            };
            let share = config.partitions.div_ceil(u32::try_from(workers).unwrap_or(u32::MAX)) as usize;
            // Renew what we hold; a lease lost (expired while Redis was away) stops its partition.
            let mut lost = Vec::new();
            for (&p, o) in &owned {
                let renewed: Result<i64, _> =
                    renew.key(self.streams.lease_key(p)).arg(&self.name).arg(lease_ms).invoke_async(&mut conn).await;
                match renewed {
                    Ok(1) => {}
                    Ok(_) => {
                        tracing::warn!(partition = p, "event streams: lease lost; stopping the partition");
                        o.stop.cancel();
                        lost.push(p);
                    }
                    Err(e) => tracing::warn!(partition = p, error = %e, "event streams: renewing a lease failed"),
                }
            }
            for p in lost {
                if let Some(o) = owned.remove(&p) {
                    let _ = o.task.await;
                }
            }
            // Give up the partitions beyond our share (a worker joined).
            while owned.len() > share {
                let Some((p, o)) = owned.pop_last() else { break };
                o.stop.cancel();
                let _ = o.task.await;
                self.release(&release, &mut conn, p).await;
                tracing::info!(partition = p, share, workers, "event streams: partition handed over");
            }
            // Take free partitions up to our share.
            for i in 0..config.partitions {
                if owned.len() >= share {
                    break;
                }
                let p = (start + i) % config.partitions;
                if owned.contains_key(&p) {
                    continue;
                }
                let taken: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(self.streams.lease_key(p))
                    .arg(&self.name)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease_ms)
                    .query_async(&mut conn)
                    .await;
                match taken {
                    Ok(Some(_)) => {
                        let stop = shutdown.child_token();
                        let partition = Partition {
                            streams: self.streams.clone(),
                            name: self.name.clone(),
                            partition: p,
                            handler: self.handler.clone(),
                            stats: self.stats.clone(),
                            stop: stop.clone(),
                        };
                        tracing::info!(partition = p, share, workers, "event streams: partition taken");
                        owned.insert(p, Owned { stop, task: tokio::spawn(partition.run()) });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "event streams: taking a lease failed");
                        break;
                    }
                }
            }
            self.stats.partitions.store(owned.len() as u64, Ordering::Relaxed);
        }
        for o in owned.values() {
            o.stop.cancel();
        }
        for (p, o) in std::mem::take(&mut owned) {
            let _ = o.task.await;
            self.release(&release, &mut conn, p).await;
        }
        let _: Result<i64, _> =
            redis::cmd("ZREM").arg(self.streams.workers_key()).arg(&self.name).query_async(&mut conn).await;
        self.stats.partitions.store(0, Ordering::Relaxed);
    }

    /// Announces this worker until one lease from now; returns how many workers are alive.
    async fn announce(&self, conn: &mut ConnectionManager, lease_ms: u64) -> Result<u64, redis::RedisError> {
        let now = now_ms();
        let key = self.streams.workers_key();
        let (_, _, count): (i64, i64, u64) = redis::pipe()
            .cmd("ZADD")
            .arg(&key)
            .arg(now + lease_ms)
            .arg(&self.name)
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now)
            .cmd("ZCARD")
            .arg(&key)
            .query_async(conn)
            .await?;
        Ok(count)
    }

    async fn release(&self, release: &redis::Script, conn: &mut ConnectionManager, partition: u32) {
        let released: Result<i64, _> =
            release.key(self.streams.lease_key(partition)).arg(&self.name).invoke_async(conn).await;
        if let Err(e) = released {
            tracing::warn!(partition, error = %e, "event streams: releasing a lease failed; it expires on its own");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One leased partition, handled in order.
struct Partition<H> {
    streams: Streams,
    name: String,
    partition: u32,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
    stop: CancellationToken,
}

enum Outcome {
    Done,
    Retry,
}

impl<H: Handler> Partition<H> {
    async fn run(self) {
        // A blocking read holds its connection, so each partition has its own.
        let mut conn = loop {
            match self.streams.dedicated_connection().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(partition = self.partition, error = %e, "event streams: cannot connect; retrying");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        let mut failures = 0u32;
        // Whether the group exists and no other worker's entry waits before ours; checked again
        // after any error (a restarted Redis may have lost the group).
        let mut ready = false;
        let mut queue = VecDeque::new();
        while !self.stop.is_cancelled() {
            match self.step(&mut conn, &mut ready, &mut queue).await {
                Ok(Outcome::Done) => failures = 0,
                Ok(Outcome::Retry) => {
                    failures += 1;
                    if self.pause(backoff(failures)).await {
                        return;
                    }
                }
                Err(e) => {
                    failures += 1;
                    ready = false;
                    tracing::warn!(partition = self.partition, error = %e, "event streams: Redis error; retrying");
                    if self.pause(backoff(failures)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sleeps `d`; true when the partition must stop.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => true,
            () = tokio::time::sleep(d) => false,
        }
    }

    fn key(&self) -> String {
        self.streams.stream_key(self.partition)
    }

    /// One round: take over what a stopped worker left, then handle the entries in hand in
    /// order; when none are in hand, this worker's own pending entries (taken over, or left by
    /// a Redis error) come before new ones.
    async fn step(
        &self,
        conn: &mut ConnectionManager,
        ready: &mut bool,
        queue: &mut VecDeque<(StreamId, u32)>,
    ) -> Result<Outcome, StreamsError> {
        let key = self.key();
        if !*ready {
            queue.clear();
            self.ensure_group(conn).await?;
            if !self.take_over(conn).await? {
                // Another worker's entries are not idle long enough yet: they come first.
                return Ok(Outcome::Retry);
            }
            *ready = true;
        }
        if queue.is_empty() {
            self.fill(conn, queue).await?;
        }
        while let Some((entry, deliveries)) = queue.front() {
            if self.stop.is_cancelled() {
                // In hand but not handled: pending for this worker, taken over by the next owner.
                return Ok(Outcome::Done);
            }
            match self.process(conn, entry, *deliveries).await? {
                Outcome::Done => {
                    queue.pop_front();
                }
                Outcome::Retry => {
                    // Claiming it again counts the next delivery in Redis too; the entries
                    // behind it wait, in order.
                    redis::cmd("XCLAIM")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(&self.name)
                        .arg(0)
                        .arg(&entry.id)
                        .query_async::<redis::Value>(conn)
                        .await?;
                    if let Some(front) = queue.front_mut() {
                        front.1 += 1;
                    }
                    return Ok(Outcome::Retry);
                }
            }
        }
        Ok(Outcome::Done)
    }

    /// Puts this worker's own pending entries in hand, or else reads new ones (waiting up to a
    /// second for them).
    async fn fill(
        &self,
        conn: &mut ConnectionManager,
        queue: &mut VecDeque<(StreamId, u32)>,
    ) -> Result<(), StreamsError> {
        let key = self.key();
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&key)
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(BATCH)
            .arg(&self.name)
            .query_async(conn)
            .await?;
        if !pending.ids.is_empty() {
            // Claiming them again counts this delivery.
            let mut claim = redis::cmd("XCLAIM");
            claim.arg(&key).arg(GROUP).arg(&self.name).arg(0);
            for p in &pending.ids {
                claim.arg(&p.id);
            }
            let claimed: StreamClaimReply = claim.query_async(conn).await?;
            let mut entries: BTreeMap<String, StreamId> = claimed.ids.into_iter().map(|e| (e.id.clone(), e)).collect();
            for p in pending.ids {
                match entries.remove(&p.id) {
                    Some(entry) => queue.push_back((entry, u32::try_from(p.times_delivered + 1).unwrap_or(u32::MAX))),
                    None => {
                        // Trimmed away before it was handled: nothing left to do.
                        redis::cmd("XACK").arg(&key).arg(GROUP).arg(&p.id).query_async::<i64>(conn).await?;
                    }
                }
            }
            return Ok(());
        }
        let read: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(conn)
            .await?;
        queue.extend(read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).map(|e| (e, 1)));
        Ok(())
    }

    async fn ensure_group(&self, conn: &mut ConnectionManager) -> Result<(), StreamsError> {
        let created: Result<(), _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.key())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves other workers' entries idle for `claim_idle` to this worker; true when no other
    /// worker holds any entry of this partition any more.
    async fn take_over(&self, conn: &mut ConnectionManager) -> Result<bool, StreamsError> {
        let key = self.key();
        let idle = u64::try_from(self.streams.config().claim_idle.as_millis()).unwrap_or(u64::MAX);
        let summary: redis::streams::StreamPendingReply =
            redis::cmd("XPENDING").arg(&key).arg(GROUP).query_async(conn).await?;
        let redis::streams::StreamPendingReply::Data(data) = summary else { return Ok(true) };
        if data.consumers.iter().all(|c| c.name == self.name) {
            return Ok(true);
        }
        let mut cursor = "0-0".to_owned();
        loop {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(GROUP)
                .arg(&self.name)
                .arg(idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(100)
                .arg("JUSTID")
                .query_async(conn)
                .await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    partition = self.partition,
                    entries = reply.claimed.len(),
                    "event streams: took over a stopped worker's entries"
                );
                self.stats.taken_over.fetch_add(reply.claimed.len() as u64, Ordering::Relaxed);
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            cursor = reply.next_stream_id;
        }
        let summary: redis::streams::StreamPendingReply =
            redis::cmd("XPENDING").arg(&key).arg(GROUP).query_async(conn).await?;
        Ok(match summary {
            redis::streams::StreamPendingReply::Data(d) => d.consumers.iter().all(|c| c.name == self.name),
            _ => true,
        })
    }

    async fn process(
        &self,
        conn: &mut ConnectionManager,
        entry: &StreamId,
        deliveries: u32,
    ) -> Result<Outcome, StreamsError> {
        let max = self.streams.config().max_deliveries;
        let kind: Option<String> = entry.get("kind");
        let data: Option<Vec<u8>> = entry.get("data");
        let (Some(kind), Some(data)) = (kind, data) else {
            self.dead_letter(conn, &entry.id, "", &[], "malformed entry: no kind or data field", deliveries).await?;
            return Ok(Outcome::Done);
        };
        if deliveries > max {
            let error = format!("delivered {deliveries} times without completing (it stopped the workers handling it)");
            self.dead_letter(conn, &entry.id, &kind, &data, &error, deliveries).await?;
            return Ok(Outcome::Done);
        }
        let delivery = Delivery {
            id: entry.id.clone(),
            partition: self.partition,
            kind: kind.clone(),
            data: data.clone(),
            deliveries,
        };
        match self.handler.handle(delivery).await {
            Ok(()) => {
                redis::cmd("XACK").arg(self.key()).arg(GROUP).arg(&entry.id).query_async::<i64>(conn).await?;
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                Ok(Outcome::Done)
            }
            Err(error) if deliveries >= max => {
                self.dead_letter(conn, &entry.id, &kind, &data, &error.to_string(), deliveries).await?;
                Ok(Outcome::Done)
            }
            Err(error) => {
                tracing::warn!(
                    partition = self.partition,
                    entry = entry.id,
                    kind,
                    deliveries,
                    error = %error,
                    "event handler failed; it is delivered again"
                );
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                Ok(Outcome::Retry)
            }
        }
    }

    /// Moves an entry to the dead-letter stream and acknowledges it, in one transaction.
    async fn dead_letter(
        &self,
        conn: &mut ConnectionManager,
        id: &str,
        kind: &str,
        data: &[u8],
        error: &str,
        deliveries: u32,
    ) -> Result<(), StreamsError> {
        let key = self.key();
        tracing::error!(partition = self.partition, entry = id, kind, deliveries, error, "event dead-lettered");
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(self.streams.dead_letter_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(10_000)
            .arg("*")
            .arg("stream")
            .arg(&key)
            .arg("entry")
            .arg(id)
            .arg("kind")
            .arg(kind)
            .arg("data")
            .arg(data)
            .arg("error")
            .arg(error)
            .arg("deliveries")
            .arg(deliveries)
            .ignore()
            .cmd("XACK")
            .arg(&key)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .query_async::<()>(conn)
            .await?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// 100 ms, doubling, at most 3.2 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6).saturating_sub(1))).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(6), Duration::from_millis(3_200));
        assert_eq!(backoff(60), Duration::from_millis(3_200));
    }
}
