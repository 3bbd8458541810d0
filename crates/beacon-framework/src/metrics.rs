//! Process metrics in the Prometheus text format, served at `GET /metrics` by `beacon-web`.
//!
//! Names follow Prometheus' conventions: the `beacon_` prefix, base units in the name
//! (`_seconds`, `_dollars`, `_messages`), `_total` on counters. Labels are fixed names (event
//! types, interaction kinds, module, job kind, provider and model names, outcomes), never guild,
//! user or channel ids: the endpoint reveals how busy the process is, not who uses it.
//! `deploy/grafana/beacon.json` and `deploy/prometheus/alerts.yml` use these names; a test scrapes
//! the real binary and checks every name they use is exported.
//!
//! ```
//! let metrics = beacon_framework::metrics::Metrics::new();
//! metrics.gateway_event("MESSAGE_CREATE");
//! assert!(metrics.render().contains("beacon_gateway_events_total"));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type Labels3 = [(&'static str, &'static str); 3];
/// Labels whose values are configuration (provider and model names), not fixed strings.
type OwnedLabels = Vec<(&'static str, String)>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// One LLM call as the LLM service reports it to [`Metrics::llm_call`].
#[derive(Debug, Clone, Copy)]
pub struct LlmCall<'a> {
    /// Provider name (`openai`, `anthropic`, …).
    pub provider: &'a str,
    /// Model id.
    pub model: &'a str,
    /// `ok`, `error`, `budget_exhausted`, …
    pub outcome: &'static str,
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: u64,
    /// How long the call took.
    pub elapsed: Duration,
}

/// One shard's state for the gauges (see [`Metrics::set_shards`]).
#[derive(Debug, Clone, Copy)]
pub struct ShardGauge {
    /// Shard number.
    pub id: u32,
    /// Whether the shard has a session (READY or RESUMED).
    pub up: bool,
    /// Last heartbeat round trip.
    pub latency: Option<Duration>,
}

#[derive(Clone)]
struct Families {
    gateway_events: Family<Labels1, Counter>,
    interactions: Family<Labels2, Counter>,
    handler_errors: Family<Labels1, Counter>,
    handler_calls: Family<Labels3, Counter>,
    handler_seconds: Histograms<Labels2>,
    answers: Family<Labels1, Counter>,
    llm_calls: Family<OwnedLabels, Counter>,
    llm_tokens: Family<OwnedLabels, Counter>,
    llm_cost: Family<OwnedLabels, Counter<f64, AtomicU64>>,
    llm_seconds: Histograms<OwnedLabels>,
    jobs_run: Family<Labels2, Counter>,
    job_seconds: Histograms<Labels1>,
    jobs_due: Gauge,
    rest_rate_limited: Counter,
    shard_up: Family<Vec<(&'static str, String)>, Gauge>,
    shard_latency: Family<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>,
    guilds: Gauge,
    alerts_sent: Family<Labels1, Counter>,
    external_calls: Family<Labels3, Counter>,
    external_seconds: Histograms<Labels2>,
    page_seconds: Histograms<OwnedLabels>,
    stream_entries: Family<Labels1, Counter>,
    stream_pending: Gauge,
    stream_dead_letters: Gauge,
}

/// The metrics of one process; cheap to clone (clones share the values).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    f: Families,
    /// Every family registered, as `(name, help, type)`: [`Metrics::render`] describes the ones
    /// with no sample yet too, so a dashboard's metric names can be checked against `/metrics`.
    declared: Arc<Vec<(String, &'static str, &'static str)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `metric` under `beacon_{name}` and remembers its description for [`Metrics::render`].
fn declare(
    r: &mut Registry,
    declared: &mut Vec<(String, &'static str, &'static str)>,
    name: &'static str,
    help: &'static str,
    metric: impl prometheus_client::registry::Metric,
) {
    let kind = match prometheus_client::encoding::EncodeMetric::metric_type(&metric) {
        prometheus_client::metrics::MetricType::Counter => "counter",
        prometheus_client::metrics::MetricType::Gauge => "gauge",
        prometheus_client::metrics::MetricType::Histogram => "histogram",
        prometheus_client::metrics::MetricType::Info => "info",
        _ => "unknown",
    };
    declared.push((format!("beacon_{name}"), help, kind));
    r.register(name, help, metric);
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn page_histogram() -> Histogram {
    // 1 ms .. ~8 s
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

fn slow_histogram() -> Histogram {
    // 50 ms .. ~200 s
    Histogram::new(exponential_buckets(0.05, 2.0, 13))
}

impl Metrics {
    /// Empty metrics registered under the `beacon` prefix, plus the process' start time.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        let start = Gauge::<f64, AtomicU64>::default();
        start.set(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0));
        root.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            start,
        );
        let r = root.sub_registry_with_prefix("beacon");
        let mut declared = Vec::new();
        let build = Family::<Labels1, Gauge>::default();
        build.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))]).set(1);
        declare(r, &mut declared, "build_info", "Beacon's version (the value is always 1)", build);
        let f = Families {
            gateway_events: Family::default(),
            interactions: Family::default(),
            handler_errors: Family::default(),
            handler_calls: Family::default(),
            handler_seconds: Family::new_with_constructor(latency_histogram),
            answers: Family::default(),
            llm_calls: Family::default(),
            llm_tokens: Family::default(),
            llm_cost: Family::default(),
            llm_seconds: Family::new_with_constructor(slow_histogram),
            jobs_run: Family::default(),
            job_seconds: Family::new_with_constructor(latency_histogram),
            jobs_due: Gauge::default(),
            rest_rate_limited: Counter::default(),
            shard_up: Family::default(),
            shard_latency: Family::default(),
            guilds: Gauge::default(),
            alerts_sent: Family::default(),
            external_calls: Family::default(),
            external_seconds: Family::new_with_constructor(slow_histogram),
            page_seconds: Family::new_with_constructor(page_histogram),
            stream_entries: Family::default(),
            stream_pending: Gauge::default(),
            stream_dead_letters: Gauge::default(),
        };
        declare(
            r,
            &mut declared,
            "gateway_events",
            "Gateway events handled (every module has seen them), by event type",
            f.gateway_events.clone(),
        );
        declare(
            r,
            &mut declared,
            "interactions",
            "Interactions received, by kind and outcome (handled, duplicate, bad_signature, stale)",
            f.interactions.clone(),
        );
        declare(
            r,
            &mut declared,
            "handler_errors",
            "Module handlers that failed with an internal error, by module",
            f.handler_errors.clone(),
        );
        declare(
            r,
            &mut declared,
            "handler_calls",
            "Module handler runs, by module, kind (command, component, modal, autocomplete, event) and outcome (ok, refused, error)",
            f.handler_calls.clone(),
        );
        declare(
            r,
            &mut declared,
            "handler_duration_seconds",
            "How long module handlers ran, by module and kind",
            f.handler_seconds.clone(),
        );
        declare(
            r,
            &mut declared,
            "answers",
            "Support answers, by outcome (llm, quoted, abstained, refused)",
            f.answers.clone(),
        );
        declare(r, &mut declared, "llm_calls", "LLM calls, by provider, model and outcome", f.llm_calls.clone());
        declare(
            r,
            &mut declared,
            "llm_tokens",
            "LLM tokens, by provider, model and direction (input, output)",
            f.llm_tokens.clone(),
        );
        declare(
            r,
            &mut declared,
            "llm_cost_dollars",
            "LLM spending in US dollars, by provider and model",
            f.llm_cost.clone(),
        );
        declare(r, &mut declared, "llm_call_duration_seconds", "LLM call latency, by provider", f.llm_seconds.clone());
        declare(
            r,
            &mut declared,
            "jobs_run",
            "Durable jobs run, by kind and outcome (ok, retry, failed)",
            f.jobs_run.clone(),
        );
        declare(r, &mut declared, "job_duration_seconds", "How long durable jobs ran, by kind", f.job_seconds.clone());
        declare(
            r,
            &mut declared,
            "jobs_due",
            "Durable jobs due and not running (pending past their time, or with an expired lease)",
            f.jobs_due.clone(),
        );
        declare(
            r,
            &mut declared,
            "discord_rest_rate_limited",
            "Discord REST requests answered 429 Too Many Requests",
            f.rest_rate_limited.clone(),
        );
        declare(
            r,
            &mut declared,
            "shard_up",
            "1 when the shard has a gateway session, 0 otherwise",
            f.shard_up.clone(),
        );
        declare(
            r,
            &mut declared,
            "shard_latency_seconds",
            "The shard's last heartbeat round trip, in seconds",
            f.shard_latency.clone(),
        );
        declare(r, &mut declared, "guilds", "Guilds served by this process' shards", f.guilds.clone());
        declare(
            r,
            &mut declared,
            "alerts_sent",
            "Alerts posted to BEACON_ALERT_WEBHOOK_URL, by kind (handler_failures, gateway)",
            f.alerts_sent.clone(),
        );
        declare(
            r,
            &mut declared,
            "external_calls",
            "Calls to external services modules drive (e.g. the agent service), by service, operation and outcome",
            f.external_calls.clone(),
        );
        declare(
            r,
            &mut declared,
            "external_call_seconds",
            "Latency of calls to external services, by service and operation",
            f.external_seconds.clone(),
        );
        declare(
            r,
            &mut declared,
            "page_seconds",
            "Server time of dashboard pages, by route template (no ids)",
            f.page_seconds.clone(),
        );
        declare(
            r,
            &mut declared,
            "stream_entries",
            "Event stream entries this worker handled, retried, dead-lettered or took over from a stopped worker",
            f.stream_entries.clone(),
        );
        declare(
            r,
            &mut declared,
            "stream_pending",
            "Event stream entries delivered to a worker and not yet acknowledged (every partition)",
            f.stream_pending.clone(),
        );
        declare(
            r,
            &mut declared,
            "stream_dead_letters",
            "Entries in the event dead-letter stream (events given up after their deliveries)",
            f.stream_dead_letters.clone(),
        );
        Metrics { registry: Arc::new(root), f, declared: Arc::new(declared) }
    }

    /// A worker's running totals of stream entries by outcome (counters follow the totals).
    pub fn stream_worker(&self, handled: u64, retried: u64, dead_lettered: u64, taken_over: u64) {
        for (outcome, total) in
            [("handled", handled), ("retried", retried), ("dead_lettered", dead_lettered), ("taken_over", taken_over)]
        {
            let counter = self.f.stream_entries.get_or_create(&[("outcome", outcome)]);
            let now = counter.get();
            if total > now {
                counter.inc_by(total - now);
            }
        }
    }

    /// The deployment's pending stream entries and dead letters, as Redis reports them.
    pub fn stream_backlog(&self, pending: u64, dead_letters: u64) {
        self.f.stream_pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.f.stream_dead_letters.set(i64::try_from(dead_letters).unwrap_or(i64::MAX));
    }

    /// One gateway event went through every module.
    pub fn gateway_event(&self, event: &'static str) {
        self.f.gateway_events.get_or_create(&[("event", event)]).inc();
    }

    /// One interaction arrived; `outcome` is `handled`, `duplicate`, or why it was refused.
    pub fn interaction(&self, kind: &'static str, outcome: &'static str) {
        self.f.interactions.get_or_create(&[("kind", kind), ("outcome", outcome)]).inc();
    }

    /// A module's handler failed with an internal error.
    pub fn handler_error(&self, module: &'static str) {
        self.f.handler_errors.get_or_create(&[("module", module)]).inc();
    }

    /// A module's handler ran: `kind` is what it handled, `outcome` `ok`, `refused` (a message
    /// for the member) or `error` (which also counts in `beacon_handler_errors_total`).
    pub fn handler(&self, module: &'static str, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        self.f.handler_calls.get_or_create(&[("module", module), ("kind", kind), ("outcome", outcome)]).inc();
        self.f.handler_seconds.get_or_create(&[("module", module), ("kind", kind)]).observe(elapsed.as_secs_f64());
        if outcome == "error" {
            self.handler_error(module);
        }
    }

    /// A support answer was given (or not): `llm`, `quoted`, `abstained`, `refused`.
    pub fn answer(&self, outcome: &'static str) {
        self.f.answers.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// An LLM call finished (or was refused before it was made).
    pub fn llm_call(&self, call: LlmCall<'_>) {
        let pm = || vec![("provider", call.provider.to_owned()), ("model", call.model.to_owned())];
        let mut labels = pm();
        labels.push(("outcome", call.outcome.to_string()));
        self.f.llm_calls.get_or_create(&labels).inc();
        for (direction, n) in [("input", call.input_tokens), ("output", call.output_tokens)] {
            let mut labels = pm();
            labels.push(("direction", direction.to_owned()));
            self.f.llm_tokens.get_or_create(&labels).inc_by(n);
        }
        self.f.llm_cost.get_or_create(&pm()).inc_by(call.cost_micros as f64 / 1_000_000.0);
        self.f
            .llm_seconds
            .get_or_create(&vec![("provider", call.provider.to_owned())])
            .observe(call.elapsed.as_secs_f64());
    }

    /// A durable job ran: `outcome` is `ok`, `retry` or `failed`.
    pub fn job(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        self.f.jobs_run.get_or_create(&[("kind", kind), ("outcome", outcome)]).inc();
        self.f.job_seconds.get_or_create(&[("kind", kind)]).observe(elapsed.as_secs_f64());
    }

    /// How many durable jobs are due and not running (read before each scrape).
    pub fn set_jobs_due(&self, due: i64) {
        self.f.jobs_due.set(due);
    }

    /// The shards of this process and the guilds they serve (read before each scrape).
    pub fn set_shards(&self, shards: &[ShardGauge], guilds: u64) {
        for s in shards {
            let labels = vec![("shard", s.id.to_string())];
            self.f.shard_up.get_or_create(&labels).set(i64::from(s.up));
            match s.latency {
                Some(l) => {
                    self.f.shard_latency.get_or_create(&labels).set(l.as_secs_f64());
                }
                None => {
                    self.f.shard_latency.remove(&labels);
                }
            }
        }
        self.f.guilds.set(i64::try_from(guilds).unwrap_or(i64::MAX));
    }

    /// An alert was posted to the operator's webhook.
    pub fn alert_sent(&self, kind: &'static str) {
        self.f.alerts_sent.get_or_create(&[("kind", kind)]).inc();
    }

    /// A module called an external service; `outcome` is `ok` or an error kind.
    pub fn external_call(&self, service: &'static str, op: &'static str, outcome: &'static str, elapsed: Duration) {
        self.f.external_calls.get_or_create(&[("service", service), ("op", op), ("outcome", outcome)]).inc();
        self.f.external_seconds.get_or_create(&[("service", service), ("op", op)]).observe(elapsed.as_secs_f64());
    }

    /// A dashboard page was served; `route` is its template (`/g/{guild_id}/settings`), never a path with ids.
    pub fn page(&self, route: &str, elapsed: Duration) {
        self.f.page_seconds.get_or_create(&vec![("route", route.to_owned())]).observe(elapsed.as_secs_f64());
    }

    /// Everything, in the OpenMetrics text exposition format.
    pub fn render(&self) -> String {
        // twilight-http retries 429s itself; the count comes from the tracing layer that sees them.
        self.f.rest_rate_limited.inner().fetch_max(beacon_discord::ratelimits::rate_limited_total(), Ordering::Relaxed);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        // The registry leaves out families with no sample yet; describe them (HELP and TYPE, no
        // sample, as the text format allows) so every name Beacon can export is visible.
        let missing: String = self
            .declared
            .iter()
            .filter(|(name, _, _)| !out.contains(&format!("# TYPE {name} ")))
            .map(|(name, help, kind)| format!("# HELP {name} {help}.\n# TYPE {name} {kind}\n"))
            .collect();
        match out.rfind("# EOF") {
            Some(at) => out.insert_str(at, &missing),
            None => out.push_str(&missing),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Metrics::new();
        m.gateway_event("MESSAGE_CREATE");
        m.gateway_event("MESSAGE_CREATE");
        m.interaction("command", "handled");
        m.handler_error("support");
        m.external_call("agent", "send", "timeout", Duration::from_secs(150));
        m.page("/g/{guild_id}/settings", Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("beacon_page_seconds_count{route=\"/g/{guild_id}/settings\"} 1"), "{text}");
        // A family with no sample yet is still described.
        assert!(text.contains("# TYPE beacon_llm_calls counter\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("beacon_external_calls_total{service=\"agent\",op=\"send\",outcome=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("beacon_external_call_seconds_count{service=\"agent\",op=\"send\"} 1"), "{text}");
        assert!(text.contains("beacon_gateway_events_total{event=\"MESSAGE_CREATE\"} 2"), "{text}");
        assert!(text.contains("beacon_interactions_total{kind=\"command\",outcome=\"handled\"} 1"), "{text}");
        assert!(text.contains("beacon_handler_errors_total{module=\"support\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn handlers_llm_jobs_and_shards_use_base_units() {
        let m = Metrics::new();
        m.handler("faq", "command", "error", Duration::from_millis(3));
        m.llm_call(LlmCall {
            provider: "openai",
            model: "gpt-4o-mini",
            outcome: "ok",
            input_tokens: 1200,
            output_tokens: 300,
            cost_micros: 2_500,
            elapsed: Duration::from_millis(800),
        });
        m.job("reminders.fire", "ok", Duration::from_millis(2));
        m.set_jobs_due(4);
        m.set_shards(&[ShardGauge { id: 0, up: true, latency: Some(Duration::from_millis(42)) }], 7);
        let text = m.render();
        for line in [
            "beacon_handler_calls_total{module=\"faq\",kind=\"command\",outcome=\"error\"} 1",
            "beacon_handler_errors_total{module=\"faq\"} 1",
            "beacon_handler_duration_seconds_count{module=\"faq\",kind=\"command\"} 1",
            "beacon_llm_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",direction=\"input\"} 1200",
            "beacon_llm_cost_dollars_total{provider=\"openai\",model=\"gpt-4o-mini\"} 0.0025",
            "beacon_jobs_run_total{kind=\"reminders.fire\",outcome=\"ok\"} 1",
            "beacon_jobs_due 4",
            "beacon_shard_up{shard=\"0\"} 1",
            "beacon_shard_latency_seconds{shard=\"0\"} 0.042",
            "beacon_guilds 7",
            "beacon_build_info{version=",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn stream_figures_follow_the_workers_totals() {
        let m = Metrics::new();
        m.stream_worker(5, 1, 0, 2);
        m.stream_worker(7, 1, 1, 2);
        m.stream_backlog(3, 1);
        let text = m.render();
        assert!(text.contains("beacon_stream_entries_total{outcome=\"handled\"} 7"), "{text}");
        assert!(text.contains("beacon_stream_entries_total{outcome=\"dead_lettered\"} 1"), "{text}");
        assert!(text.contains("beacon_stream_entries_total{outcome=\"taken_over\"} 2"), "{text}");
        assert!(text.contains("beacon_stream_pending 3"), "{text}");
        assert!(text.contains("beacon_stream_dead_letters 1"), "{text}");
    }
}
