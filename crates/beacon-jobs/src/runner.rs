//! The worker loop: claim due jobs, run their handlers under a heartbeated lease, record the
//! outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beacon_store::{Store, now_ms};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::Jobs;
use crate::{Job, JobError, JobHandler};

/// How a [`Runner`] behaves.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Names this worker in leases and logs (a random suffix is added per claim).
    pub worker_id: String,
    /// How long a claim is valid without a heartbeat; a dead worker's job is re-run after this.
    pub lease: Duration,
    /// How often to look for due jobs.
    pub poll_interval: Duration,
    /// Jobs run at the same time by this worker.
    pub concurrency: usize,
    /// Delay before the first retry; doubles each attempt up to `backoff_max`.
    pub backoff_base: Duration,
    /// Longest delay between retries.
    pub backoff_max: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            worker_id: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            concurrency: 8,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// A worker: handlers by job kind, and the loop that runs them.
pub struct Runner {
    jobs: Jobs,
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
    opts: RunnerOptions,
}

/// The delay before retry number `attempt` (1-based): `base · 2^(attempt-1)`, capped, with up to
/// 20 % jitter so a burst of failures does not retry in lockstep.
pub(crate) fn backoff(opts: &RunnerOptions, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let raw = opts.backoff_base.saturating_mul(1u32 << exp);
    let capped = raw.min(opts.backoff_max);
    let jitter = capped.mul_f64(fastrand::f64() * 0.2);
    capped.saturating_add(jitter).min(opts.backoff_max)
}

impl Runner {
    /// A runner over the jobs table of `store`, with no handlers yet.
    pub fn new(store: Store, opts: RunnerOptions) -> Runner {
        Runner { jobs: Jobs::new(store), handlers: BTreeMap::new(), opts }
    }

    /// Handles jobs of `kind` with `handler` (replacing an earlier registration).
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_owned(), handler);
    }

    /// The kinds this runner handles.
    pub fn kinds(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    /// The jobs table, for scheduling and inspection.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    fn owner_token(&self) -> String {
        format!("{}:{:016x}", self.opts.worker_id, fastrand::u64(..))
    }

    /// Claims due jobs (up to the concurrency) and runs them to the end; returns how many ran.
    /// The loop in [`Runner::spawn`] does this continuously; tests call it directly.
    pub async fn run_once(&self) -> Result<usize, JobError> {
        let owner = self.owner_token();
        let lease_until = now_ms() + self.opts.lease.as_millis() as i64;
        let claimed = self.jobs.claim(&owner, &self.kinds(), self.opts.concurrency, lease_until).await?;
        let n = claimed.len();
        let mut set = tokio::task::JoinSet::new();
        for job in claimed {
            let ctx = self.exec_ctx(owner.clone());
            set.spawn(async move { ctx.execute(job).await });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    fn exec_ctx(&self, owner: String) -> Exec {
        Exec { jobs: self.jobs.clone(), handlers: self.handlers.clone(), opts: self.opts.clone(), owner }
    }

    /// Runs the worker loop until `shutdown`; then waits for the jobs in flight. A job cut off by
    /// a crash is re-run by some worker once its lease expires.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run_loop(shutdown).await })
    }

    async fn run_loop(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        let mut last_prune = 0i64;
        tracing::info!(worker = %self.opts.worker_id, kinds = ?self.kinds(), "job runner started");
        loop {
            let free = in_flight.available_permits();
            if free > 0 {
                let owner = self.owner_token();
                let lease_until = now_ms() + self.opts.lease.as_millis() as i64;
                match self.jobs.claim(&owner, &self.kinds(), free, lease_until).await {
                    Ok(claimed) => {
                        for job in claimed {
                            // At most `free` jobs are claimed; should there be more, run them
                            // anyway rather than sit on their leases.
                            let permit = in_flight.clone().try_acquire_owned().ok();
                            let ctx = self.exec_ctx(owner.clone());
                            tracker.spawn(async move {
                                ctx.execute(job).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
                }
            }
            let now = now_ms();
            if now - last_prune > 3_600_000 {
                last_prune = now;
                match self.jobs.prune_finished(now - 7 * 86_400_000).await {
                    Ok(n) if n > 0 => tracing::info!(pruned = n, "finished jobs pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.opts.poll_interval) => {}
            }
        }
        tracker.close();
        tracker.wait().await;
        tracing::info!(worker = %self.opts.worker_id, "job runner stopped");
    }
}

/// What one job execution needs.
struct Exec {
    jobs: Jobs,
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
    opts: RunnerOptions,
    owner: String,
}

impl Exec {
    async fn execute(&self, job: Job) {
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            // Claims filter by kind, so this only happens on a corrupt row.
            self.record_failure(&job, "no handler for this kind", false).await;
            return;
        };
        let outcome = tokio::select! {
            result = handler.run(&job) => Some(result),
            () = self.heartbeat(job.id) => None,
        };
        match outcome {
            Some(Ok(())) => match self.jobs.complete(job.id, &self.owner).await {
                Ok(true) => {
                    tracing::debug!(job_id = job.id, kind = %job.kind, "job done")
                }
                Ok(false) => {
                    tracing::warn!(job_id = job.id, "job finished after its lease was lost; another worker owns it")
                }
                Err(e) => {
                    tracing::warn!(job_id = job.id, error = %e, "recording job completion failed")
                }
            },
            Some(Err(failure)) => self.record_failure(&job, &failure.message, failure.retry).await,
            None => tracing::warn!(job_id = job.id, "lease lost while running; the handler was stopped"),
        }
    }

    async fn record_failure(&self, job: &Job, message: &str, retry: bool) {
        let retry_at = retry.then(|| now_ms() + backoff(&self.opts, job.attempt).as_millis() as i64);
        tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempt, retry, error = %message, "job failed");
        if let Err(e) = self.jobs.fail(job.id, &self.owner, message, retry_at).await {
            tracing::warn!(job_id = job.id, error = %e, "recording job failure failed");
        }
    }

    /// Extends the lease every third of its length; returns only when the lease is lost.
    async fn heartbeat(&self, id: i64) {
        let every = (self.opts.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            let until = now_ms() + self.opts.lease.as_millis() as i64;
            match self.jobs.heartbeat(id, &self.owner, until).await {
                Ok(true) => {}
                Ok(false) => return,
                // A database hiccup: keep the handler running; the next beat may succeed.
                Err(e) => tracing::warn!(job_id = id, error = %e, "lease heartbeat failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let opts = RunnerOptions {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(100),
            ..RunnerOptions::default()
        };
        let first = backoff(&opts, 1);
        assert!(first >= Duration::from_secs(10) && first <= Duration::from_secs(12));
        let third = backoff(&opts, 3);
        assert!(third >= Duration::from_secs(40) && third <= Duration::from_secs(48));
        assert_eq!(backoff(&opts, 30), Duration::from_secs(100));
    }
}
