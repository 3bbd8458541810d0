//! The job facility on SQLite and PostgreSQL: scheduling, dedupe keys, retries, two workers
//! racing on one database, and a worker killed with SIGKILL in the middle of a job.

// The store's own fixtures: one copy of the SQLite/PostgreSQL setup for every store-backed crate.
#[path = "../../beacon-store/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beacon_jobs::{Failure, Job, JobHandler, JobState, Jobs, Runner, RunnerOptions};
use beacon_store::{Store, now_ms};
use common::Fixture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const GUILD: u64 = 1234;
const WAIT: Duration = Duration::from_secs(30);

fn fast(worker: &str) -> RunnerOptions {
    RunnerOptions {
        worker_id: worker.into(),
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        concurrency: 4,
        backoff_base: Duration::ZERO,
        backoff_max: Duration::ZERO,
    }
}

async fn setup(f: &Fixture) -> Jobs {
    let jobs = Jobs::new(f.store.clone());
    jobs.migrate().await.expect("migrate jobs");
    jobs.migrate().await.expect("migrating twice is a no-op");
    sqlx::raw_sql("CREATE TABLE job_effects (job_id BIGINT NOT NULL, worker TEXT NOT NULL, phase TEXT NOT NULL)")
        .execute(f.store.pool())
        .await
        .expect("effects table");
    jobs
}

/// Records each run in `job_effects`, then succeeds (or fails as told by the payload).
struct Record {
    store: Store,
    worker: &'static str,
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl JobHandler for Record {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO job_effects (job_id, worker, phase) VALUES ($1, $2, 'done')")
            .bind(job.id)
            .bind(self.worker)
            .execute(self.store.pool())
            .await
            .map_err(|e| Failure::retry(e.to_string()))?;
        match job.payload["fail"].as_str() {
            Some("retry") => Err(Failure::retry("try again")),
            Some("permanent") => Err(Failure::permanent("bad payload")),
            _ => Ok(()),
        }
    }
}

fn recorder(store: &Store, worker: &'static str) -> (Arc<Record>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    (Arc::new(Record { store: store.clone(), worker, calls: calls.clone() }), calls)
}

async fn effects(store: &Store, job_id: i64, worker: &str, phase: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE job_id = $1 AND worker = $2 AND phase = $3")
        .bind(job_id)
        .bind(worker)
        .bind(phase)
        .fetch_one(store.pool())
        .await
        .expect("count effects")
}

async fn state(jobs: &Jobs, id: i64) -> beacon_jobs::JobRecord {
    jobs.get(id).await.expect("get job").expect("job exists")
}

// ---------------------------------------------------------------------------------------------

async fn completed_jobs_never_rerun(f: Fixture) {
    let jobs = setup(&f).await;
    let id = jobs.schedule(GUILD, "work", &json!({"n": 1}), now_ms() - 1, None).await.unwrap();
    let later = jobs.schedule(GUILD, "work", &json!({"n": 2}), now_ms() + 3_600_000, None).await.unwrap();
    let other_kind = jobs.schedule(GUILD, "unknown", &json!({}), now_ms() - 1, None).await.unwrap();
    let mut runner = Runner::new(f.store.clone(), fast("a"));
    let (handler, calls) = recorder(&f.store, "a");
    runner.register("work", handler);
    assert_eq!(runner.run_once().await.unwrap(), 1);
    assert_eq!(runner.run_once().await.unwrap(), 0, "a done job is not claimed again");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let rec = state(&jobs, id).await;
    assert_eq!(rec.state, JobState::Done);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.payload, json!({"n": 1}));
    assert_eq!(state(&jobs, later).await.state, JobState::Pending);
    assert_eq!(
        state(&jobs, other_kind).await.state,
        JobState::Pending,
        "kinds without a handler here are left for other workers"
    );
    f.finish().await;
}

async fn dedupe_keys_reschedule_and_cancel(f: Fixture) {
    let jobs = setup(&f).await;
    let far = now_ms() + 3_600_000;
    let a = jobs.schedule(GUILD, "work", &json!({"v": 1}), far, Some("ticket:1:sla")).await.unwrap();
    let b = jobs.schedule(GUILD, "work", &json!({"v": 2}), far + 5, Some("ticket:1:sla")).await.unwrap();
    assert_eq!(a, b, "same key, same pending job");
    let rec = state(&jobs, a).await;
    assert_eq!(rec.run_at, far + 5);
    assert_eq!(rec.payload, json!({"v": 2}));
    // Same key in another guild is another job.
    let other = jobs.schedule(GUILD + 1, "work", &json!({}), far, Some("ticket:1:sla")).await.unwrap();
    assert_ne!(other, a);
    assert!(jobs.cancel(GUILD, "ticket:1:sla").await.unwrap());
    assert!(!jobs.cancel(GUILD, "ticket:1:sla").await.unwrap());
    assert_eq!(state(&jobs, a).await.state, JobState::Cancelled);
    assert_eq!(state(&jobs, other).await.state, JobState::Pending);
    let c = jobs.schedule(GUILD, "work", &json!({}), far, Some("ticket:1:sla")).await.unwrap();
    assert_ne!(c, a, "after a cancel the key is free again");
    jobs.schedule(GUILD, "work", &json!({}), far, Some("ticket:1:close")).await.unwrap();
    assert_eq!(jobs.cancel_prefix(GUILD, "ticket:1:").await.unwrap(), 2);
    f.finish().await;
}

async fn failures_are_retried_then_marked_failed(f: Fixture) {
    let jobs = setup(&f).await;
    let retry = jobs.schedule_with(GUILD, "work", &json!({"fail": "retry"}), now_ms() - 1, None, 2).await.unwrap();
    let permanent = jobs.schedule(GUILD, "work", &json!({"fail": "permanent"}), now_ms() - 1, None).await.unwrap();
    let mut runner = Runner::new(f.store.clone(), fast("a"));
    let (handler, calls) = recorder(&f.store, "a");
    runner.register("work", handler);
    assert_eq!(runner.run_once().await.unwrap(), 2);
    let rec = state(&jobs, retry).await;
    assert_eq!(rec.state, JobState::Pending, "first failure is retried");
    assert_eq!(rec.last_error.as_deref(), Some("try again"));
    let rec = state(&jobs, permanent).await;
    assert_eq!(rec.state, JobState::Failed);
    assert_eq!(rec.last_error.as_deref(), Some("bad payload"));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let rec = state(&jobs, retry).await;
    assert_eq!(rec.state, JobState::Failed, "out of attempts");
    assert_eq!(rec.attempts, 2);
    assert_eq!(runner.run_once().await.unwrap(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    f.finish().await;
}

async fn two_runners_racing_run_each_job_once(f: Fixture) {
    let jobs = setup(&f).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(jobs.schedule(GUILD, "work", &json!({"i": i}), now_ms() - 1, None).await.unwrap());
    }
    // Two workers, each with its own connection pool, as two processes would have.
    let second = Store::connect(&f.url).await.expect("second pool");
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    let mut counters = Vec::new();
    for (name, store) in [("a", f.store.clone()), ("b", second.clone())] {
        let mut runner = Runner::new(store.clone(), fast(name));
        let (handler, calls) = recorder(&store, name);
        runner.register("work", handler);
        counters.push(calls);
        handles.push(runner.spawn(shutdown.clone()));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM beacon_jobs WHERE state = 'done'")
            .fetch_one(f.store.pool())
            .await
            .unwrap();
        if done == 40 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {done}/40 jobs done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for h in handles {
        h.await.unwrap();
    }
    for id in ids {
        let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE job_id = $1")
            .bind(id)
            .fetch_one(f.store.pool())
            .await
            .unwrap();
        assert_eq!(runs, 1, "job {id} ran {runs} times");
        let rec = state(&jobs, id).await;
        assert_eq!(rec.attempts, 1, "{rec:?}");
    }
    let total: usize = counters.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(total, 40);
    second.close().await;
    f.finish().await;
}

/// The child process's handler: records that it started, then never finishes.
struct Hang {
    store: Store,
}

#[async_trait::async_trait]
impl JobHandler for Hang {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        sqlx::query("INSERT INTO job_effects (job_id, worker, phase) VALUES ($1, 'child', 'started')")
            .bind(job.id)
            .execute(self.store.pool())
            .await
            .map_err(|e| Failure::retry(e.to_string()))?;
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Not a test on its own: the worker process that `killed_worker_*` starts and kills.
#[tokio::test]
#[ignore = "helper process for the kill -9 tests"]
async fn child_worker() {
    let Ok(url) = std::env::var("BEACON_JOBS_CHILD_URL") else {
        return;
    };
    let store = Store::connect(&url).await.expect("child connects");
    let mut runner = Runner::new(store.clone(), RunnerOptions { lease: Duration::from_secs(1), ..fast("child") });
    runner.register("work", Arc::new(Hang { store }));
    let _ = runner.spawn(CancellationToken::new()).await;
}

async fn killed_worker_job_is_rerun_exactly_once(f: Fixture) {
    let jobs = setup(&f).await;
    let id = jobs.schedule(GUILD, "work", &json!({}), now_ms() - 1, Some("k")).await.unwrap();
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = tokio::process::Command::new(exe)
        .args(["child_worker", "--exact", "--ignored", "--nocapture"])
        .env("BEACON_JOBS_CHILD_URL", &f.url)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child worker");
    let deadline = tokio::time::Instant::now() + WAIT;
    while effects(&f.store, id, "child", "started").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "child never started the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rec = state(&jobs, id).await;
    assert_eq!(rec.state, JobState::Running);
    assert!(rec.lease_owner.as_deref().is_some_and(|o| o.starts_with("child:")));
    child.kill().await.expect("kill -9 the child");
    let mut runner = Runner::new(f.store.clone(), fast("parent"));
    let (handler, calls) = recorder(&f.store, "parent");
    runner.register("work", handler);
    // The child's lease (1 s) must expire before the job is claimable again.
    while state(&jobs, id).await.state != JobState::Done {
        assert!(tokio::time::Instant::now() < deadline, "job was never re-run");
        runner.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        assert_eq!(runner.run_once().await.unwrap(), 0);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "re-run exactly once");
    assert_eq!(effects(&f.store, id, "parent", "done").await, 1);
    assert_eq!(effects(&f.store, id, "child", "started").await, 1);
    let rec = state(&jobs, id).await;
    assert_eq!(rec.attempts, 2);
    assert!(rec.lease_owner.as_deref().is_some_and(|o| o.starts_with("parent:")));
    f.finish().await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(f) = super::common::postgres().await {
                        super::$name(f).await;
                    }
                }
            )*
        }
    };
}

on_both!(
    completed_jobs_never_rerun,
    dedupe_keys_reschedule_and_cancel,
    failures_are_retried_then_marked_failed,
    two_runners_racing_run_each_job_once,
    killed_worker_job_is_rerun_exactly_once,
);
