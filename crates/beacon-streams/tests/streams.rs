//! The transport against a real Redis: order per guild, acknowledgement, takeover of a stopped
//! worker's entries, dead letters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_streams::{Consumer, Delivery, HandleError, Handler, Streams, StreamsConfig};
use tokio_util::sync::CancellationToken;

fn config(partitions: u32) -> StreamsConfig {
    StreamsConfig {
        prefix: format!("beacon-test-{:016x}", fastrand::u64(..)),
        partitions,
        max_deliveries: 3,
        claim_idle: Duration::from_millis(500),
        lease: Duration::from_millis(600),
        max_len: 10_000,
    }
}

async fn streams(partitions: u32) -> Option<Streams> {
    let url = beacon_testkit::services::redis_url()?;
    Some(Streams::connect(&url, config(partitions)).await.expect("redis answers"))
}

async fn cleanup(streams: &Streams) {
    let mut conn = streams.connection();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:*", streams.config().prefix)).query_async(&mut conn).await.expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.expect("DEL");
    }
}

/// Waits until `check` holds, polling; panics with `what` after 30 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Records every delivery as (guild, sequence number); fails `fail_kind` always; hangs forever on
/// `hang_kind`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, u64, u64, u32)>>,
    fail_kind: Option<&'static str>,
    hang_kind: Option<&'static str>,
    /// Entries a hanging handler holds.
    handling: Mutex<Vec<String>>,
}

impl Recorder {
    fn seen(&self) -> Vec<(String, u64, u64, u32)> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Handler for Recorder {
    async fn handle(&self, d: Delivery) -> Result<(), HandleError> {
        if Some(d.kind.as_str()) == self.hang_kind {
            self.handling.lock().expect("lock").push(d.id.clone());
            std::future::pending::<()>().await;
        }
        let text = String::from_utf8(d.data.clone())?;
        let (guild, seq) = text.split_once(':').ok_or("no colon")?;
        self.seen.lock().expect("lock").push((d.kind.clone(), guild.parse()?, seq.parse()?, d.deliveries));
        if Some(d.kind.as_str()) == self.fail_kind {
            return Err(format!("refusing {text}").into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn each_guilds_events_are_handled_once_in_order_by_several_workers() {
    let Some(streams) = streams(4).await else { return };
    let shutdown = CancellationToken::new();
    let recorders: Vec<Arc<Recorder>> = (0..3).map(|_| Arc::new(Recorder::default())).collect();
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    for (i, r) in recorders.iter().enumerate() {
        let consumer = Consumer::new(streams.clone(), format!("worker-{i}"), r.clone());
        stats.push(consumer.stats());
        tasks.push(tokio::spawn(consumer.run(shutdown.clone())));
    }
    // Each takes its fair share (at most 2 of 4 partitions with 3 workers) before the flood.
    until("the partitions shared", || {
        let held: Vec<u64> = stats.iter().map(|s| s.partitions.load(Ordering::Relaxed)).collect();
        held.iter().sum::<u64>() == 4 && held.iter().all(|h| *h <= 2)
    })
    .await;
    let guilds = [11u64, 12, 13, 14, 15, 16, 17];
    for seq in 0..60u64 {
        for g in guilds {
            streams.publish(Some(g), "MESSAGE_CREATE", format!("{g}:{seq}").as_bytes()).await.expect("publish");
        }
    }
    let total = guilds.len() * 60;
    until("every event handled", || recorders.iter().map(|r| r.seen().len()).sum::<usize>() >= total).await;
    let mut per_guild: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &recorders {
        for (_, g, seq, _) in r.seen() {
            per_guild.entry(g).or_default().push(seq);
        }
    }
    for (g, seqs) in &per_guild {
        // A guild lives on one partition, held by one worker: its events are in order, each once.
        assert_eq!(seqs, &(0..60).collect::<Vec<_>>(), "guild {g}");
    }
    // The partitions were shared: more than one worker handled events.
    assert!(recorders.iter().filter(|r| !r.seen().is_empty()).count() > 1, "one worker took every partition");
    shutdown.cancel();
    for t in tasks {
        t.await.expect("consumer stops");
    }
    let stats = streams.stats().await.expect("stats");
    assert_eq!(stats.pending, 0, "everything acknowledged");
    assert_eq!(stats.dead_letters, 0);
    cleanup(&streams).await;
}

#[tokio::test]
async fn a_stopped_workers_entries_are_taken_over_and_handled_before_newer_ones() {
    let Some(streams) = streams(1).await else { return };
    // The first worker hangs on its first event, then "dies": its lease is no longer renewed.
    let stuck = Arc::new(Recorder { hang_kind: Some("HANG"), ..Recorder::default() });
    let first = Consumer::new(streams.clone(), "worker-dies", stuck.clone());
    let first_stats = first.stats();
    let first_task = tokio::spawn(first.run(CancellationToken::new()));
    until("the first worker holds the partition", || first_stats.partitions.load(Ordering::Relaxed) == 1).await;
    streams.publish(Some(7), "HANG", b"7:0").await.expect("publish");
    streams.publish(Some(7), "MESSAGE_CREATE", b"7:1").await.expect("publish");
    until("the first worker is handling its entry", || !stuck.handling.lock().expect("lock").is_empty()).await;
    first_task.abort();

    // The second worker handles the hanging entry (a different handler: it completes) first.
    let healthy = Arc::new(Recorder::default());
    let second = Consumer::new(streams.clone(), "worker-lives", healthy.clone());
    let second_stats = second.stats();
    let shutdown = CancellationToken::new();
    let second_task = tokio::spawn(second.run(shutdown.clone()));
    until("both entries handled by the second worker", || healthy.seen().len() >= 2).await;
    let seen = healthy.seen();
    assert_eq!(seen[0].0, "HANG", "the taken-over entry comes first");
    assert_eq!(seen[0].3, 2, "its second delivery");
    assert_eq!(seen[1].2, 1);
    assert!(second_stats.taken_over.load(Ordering::Relaxed) >= 1);
    assert!(stuck.seen().is_empty());
    shutdown.cancel();
    second_task.await.expect("consumer stops");
    assert_eq!(streams.stats().await.expect("stats").pending, 0);
    cleanup(&streams).await;
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_with_its_error_and_the_partition_moves_on() {
    let Some(streams) = streams(1).await else { return };
    let recorder = Arc::new(Recorder { fail_kind: Some("BAD"), ..Recorder::default() });
    let consumer = Consumer::new(streams.clone(), "worker-0", recorder.clone());
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    streams.publish(Some(3), "BAD", b"3:0").await.expect("publish");
    streams.publish(Some(3), "MESSAGE_CREATE", b"3:1").await.expect("publish");
    until("the good event after the bad one", || recorder.seen().iter().any(|s| s.0 == "MESSAGE_CREATE")).await;
    let seen = recorder.seen();
    // Three deliveries of the bad event (max_deliveries), then the next one.
    assert_eq!(
        seen.iter().map(|s| (s.0.as_str(), s.3)).collect::<Vec<_>>(),
        [("BAD", 1), ("BAD", 2), ("BAD", 3), ("MESSAGE_CREATE", 1)]
    );
    let dead = streams.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].kind, "BAD");
    assert_eq!(dead[0].error, "refusing 3:0");
    assert_eq!(dead[0].deliveries, 3);
    assert_eq!(dead[0].data, b"3:0");
    assert_eq!(stats.dead_lettered.load(Ordering::Relaxed), 1);
    shutdown.cancel();
    task.await.expect("consumer stops");
    let totals = streams.stats().await.expect("stats");
    assert_eq!((totals.pending, totals.dead_letters), (0, 1));
    cleanup(&streams).await;
}
