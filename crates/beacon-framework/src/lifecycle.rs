//! What runs besides the handlers, started and stopped by the app: the modules' background
//! tasks and durable jobs, housekeeping (old claims, guilds past retention), the setting-change
//! listener, and the dispatcher that hands gateway events to the router.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use beacon_discord::gateway::{self, GatewayConfig, GatewayEvent};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::router::{handle_gateway_event, spawn_setting_listener};

/// A module's long-running task (see [`crate::Module::background`]).
pub struct BackgroundTask {
    /// Shown in logs.
    pub name: &'static str,
    future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl BackgroundTask {
    /// A task running `future` until it ends or the app shuts down.
    pub fn new(name: &'static str, future: impl Future<Output = ()> + Send + 'static) -> BackgroundTask {
        BackgroundTask { name, future: Box::pin(future) }
    }
}

/// A durable job kind and its handler (see [`crate::Module::jobs`]).
pub struct JobKind {
    /// The kind stored with each job, e.g. `tickets.sla`.
    pub kind: &'static str,
    /// Runs one job of this kind.
    pub handler: Arc<dyn beacon_jobs::JobHandler>,
}

impl JobKind {
    /// Handles jobs of `kind` with `handler`.
    pub fn new(kind: &'static str, handler: Arc<dyn beacon_jobs::JobHandler>) -> JobKind {
        JobKind { kind, handler }
    }
}

/// What [`App::start_background`] started; [`Background::stop`] waits for it.
pub struct Background {
    jobs: JoinHandle<()>,
}

impl App {
    /// Starts everything that runs besides the handlers: the setting-change listener,
    /// housekeeping, every module's background tasks, and the job runner with every module's
    /// job kinds. All of it stops when [`App::shutdown`] is cancelled.
    pub fn start_background(self: &Arc<Self>) -> Background {
        spawn_setting_listener(self);
        spawn_housekeeping(self);
        for module in &self.modules {
            for task in module.background(self) {
                let shutdown = self.shutdown.clone();
                let (module, name) = (module.name(), task.name);
                self.tasks.spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = task.future => tracing::debug!(module, task = name, "background task ended"),
                    }
                });
            }
        }
        let options =
            beacon_jobs::RunnerOptions { lease: self.config.job_lease, ..beacon_jobs::RunnerOptions::default() };
        let mut runner = beacon_jobs::Runner::new(self.store.clone(), options);
        for module in &self.modules {
            for job in module.jobs(self) {
                let metered = MeteredJob { kind: job.kind, handler: job.handler, metrics: self.metrics.clone() };
                runner.register(job.kind, Arc::new(metered));
            }
        }
        Background { jobs: runner.spawn(self.shutdown.clone()) }
    }
}

/// A job kind's handler, timed and counted in `/metrics` (`beacon_jobs_run_total`).
struct MeteredJob {
    kind: &'static str,
    handler: Arc<dyn beacon_jobs::JobHandler>,
    metrics: crate::metrics::Metrics,
}

#[async_trait::async_trait]
impl beacon_jobs::JobHandler for MeteredJob {
    async fn run(&self, job: &beacon_jobs::Job) -> Result<(), beacon_jobs::Failure> {
        let started = std::time::Instant::now();
        let result = self.handler.run(job).await;
        let outcome = match &result {
            Ok(()) => "ok",
            // Failed, and asked to be tried again (the runner does while attempts are left).
            Err(f) if f.retry => "retry",
            Err(_) => "failed",
        };
        self.metrics.job(self.kind, outcome, started.elapsed());
        result
    }
}

/// While the gateway runs: when its shards have had no session for `BEACON_ALERT_GATEWAY_AFTER`,
/// tell the operator's webhook (the alerts limit how often).
fn spawn_gateway_watchdog(app: &Arc<App>) {
    let app = app.clone();
    let tracker = app.tasks.clone();
    tracker.spawn(async move {
        let after = app.config.alerts.gateway_after;
        let every = (after / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
        let mut down_since: Option<std::time::Instant> = Some(std::time::Instant::now());
        // One alert per outage (and the alerts' own interval on top).
        let mut alerted = false;
        loop {
            tokio::select! {
                () = app.shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let shards = app.shards.snapshot();
            let ready = shards.iter().filter(|s| s.state == beacon_discord::gateway::ShardState::Ready).count();
            if !shards.is_empty() && ready == shards.len() {
                (down_since, alerted) = (None, false);
                continue;
            }
            let since = *down_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= after && !alerted {
                alerted = true;
                let detail = format!("{ready} of {} shards connected", shards.len());
                app.alerts.gateway_down(since.elapsed(), &detail);
            }
        }
    });
}

impl Background {
    /// Waits (up to `grace`) for the job runner to finish its jobs in flight, after shutdown.
    /// Jobs cut off are re-run by another worker (or after restart) once their lease expires.
    pub async fn stop(self, grace: Duration) {
        match tokio::time::timeout(grace, self.jobs).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "job runner task failed"),
            Err(_) => tracing::warn!("job runner did not stop within the grace period"),
        }
    }
}

/// Hourly: forget old idempotency claims, expire each kind of data past its retention, purge
/// guilds whose retention has passed.
fn spawn_housekeeping(app: &Arc<App>) {
    let app = app.clone();
    let tracker = app.tasks.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = beacon_store::now_ms();
            match app.store.prune_claims(now - 86_400_000).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old idempotency claims pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning claims failed"),
            }
            match app.enforce_retention(now).await {
                Ok(expired) => {
                    for e in expired {
                        tracing::info!(
                            guild_id = e.guild_id,
                            module = e.module,
                            kind = e.kind,
                            rows = e.rows,
                            "expired past retention"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "enforcing retention failed"),
            }
            let cutoff = now - i64::try_from(app.config.guild_retention.as_millis()).unwrap_or(i64::MAX);
            match app.purge_left_guilds(cutoff).await {
                Ok(ids) if !ids.is_empty() => tracing::info!(guilds = ?ids, "purged guilds past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging left guilds failed"),
            }
        }
    });
}

/// Gateway events handled at once; more wait in the shard channel.
const MAX_EVENTS_IN_FLIGHT: usize = 512;

/// Events after which an idle moment is used to hand freed memory back to the OS.
const RELEASE_AFTER_EVENTS: u64 = 1_000;

impl App {
    /// Connects the gateway shards with `token` and dispatches their events to the router.
    /// The returned task ends when the shards close: at shutdown, or when Discord refuses the
    /// token or the intents, which [`App::fail`]s the app with what the operator must change.
    pub fn start_gateway(self: &Arc<Self>, token: String) -> JoinHandle<Result<(), gateway::GatewayError>> {
        let (tx, mut rx) = mpsc::channel::<GatewayEvent>(1024);
        let config = GatewayConfig {
            token,
            intents: self.intents(),
            shard_count: self.config.discord.shard_count,
            shard_ids: None,
            gateway_url: self.config.discord.gateway_url.clone(),
            events: self.gateway_events(),
        };
        let dispatcher_app = self.clone();
        // Bounded: when handlers fall behind, the dispatcher stops taking events, the shard
        // channel fills, the shards stop reading their sockets and TCP pushes back on Discord,
        // instead of tasks (each holding its event) piling up without limit.
        let in_flight = Arc::new(Semaphore::new(MAX_EVENTS_IN_FLIGHT));
        let dispatched = Arc::new(AtomicU64::new(0));
        spawn_memory_release(self, in_flight.clone(), dispatched.clone());
        if self.alerts.enabled() {
            spawn_gateway_watchdog(self);
        }
        self.tasks.spawn(async move {
            while let Some(event) = rx.recv().await {
                dispatched.fetch_add(1, Ordering::Relaxed);
                let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                let app = dispatcher_app.clone();
                dispatcher_app.tasks.spawn(async move {
                    // In one process a failed handler is logged and counted; the event is not
                    // delivered again (a worker of the scale-out roles retries it).
                    let _ = handle_gateway_event(&app, event).await;
                    drop(permit);
                });
            }
        });
        let app = self.clone();
        tokio::spawn(async move {
            let intents = config.intents;
            let sink = LocalSink { events: tx, metrics: app.metrics.clone() };
            let result = gateway::run(config, app.http.clone(), sink, app.shards.clone(), app.shutdown.clone()).await;
            if let Err(e) = &result
                && !app.shutdown.is_cancelled()
            {
                // A refused token or intents do not get better by retrying: say what to change.
                app.fail(e.advice(intents));
            }
            result
        })
    }
}

/// The shards' sink in `beacon run`: the dispatcher's channel, and the events nobody wants
/// counted as handled (there is nothing to handle).
#[derive(Clone)]
struct LocalSink {
    events: mpsc::Sender<GatewayEvent>,
    metrics: crate::metrics::Metrics,
}

impl gateway::EventSink for LocalSink {
    async fn send(&self, event: GatewayEvent) -> Result<(), gateway::SinkClosed> {
        self.events.send(event).await.map_err(|_| gateway::SinkClosed)
    }

    fn skipped(&self, kind: twilight_model::gateway::event::EventType) {
        if let Some(name) = kind.name() {
            self.metrics.gateway_event(name);
        }
    }
}

/// After a burst of gateway events (the GUILD_CREATEs of start-up, a flood), glibc keeps the
/// freed heap of up to 512 large events in flight and the process stays at its peak RSS. Once
/// a burst of at least [`RELEASE_AFTER_EVENTS`] is over (no event in flight), `malloc_trim`
/// returns that memory; checked every second, a few milliseconds of work per burst.
fn spawn_memory_release(app: &Arc<App>, in_flight: Arc<Semaphore>, dispatched: Arc<AtomicU64>) {
    let shutdown = app.shutdown.clone();
    app.tasks.spawn(async move {
        let mut released_at = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = dispatched.load(Ordering::Relaxed);
            if now - released_at >= RELEASE_AFTER_EVENTS && in_flight.available_permits() == MAX_EVENTS_IN_FLIGHT {
                released_at = now;
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks glibc's own heap under its locks; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}
