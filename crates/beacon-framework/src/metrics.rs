//! Process metrics in the Prometheus text format, served at `GET /metrics` by `beacon-web`.
//!
//! Labels are fixed names (event types, interaction kinds, module names), never guild, user or
//! channel ids: the endpoint reveals how busy the process is, not who uses it.
//!
//! ```
//! let metrics = beacon_framework::metrics::Metrics::new();
//! metrics.gateway_event("MESSAGE_CREATE");
//! assert!(metrics.render().contains("beacon_gateway_events_total"));
//! ```

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type Labels3 = [(&'static str, &'static str); 3];

/// The counters of one process.
pub struct Metrics {
    registry: Registry,
    gateway_events: Family<Labels1, Counter>,
    interactions: Family<Labels2, Counter>,
    handler_errors: Family<Labels1, Counter>,
    external_calls: Family<Labels3, Counter>,
    external_seconds: Family<Labels2, Histogram, fn() -> Histogram>,
    stream_entries: Family<Labels1, Counter>,
    stream_pending: Gauge,
    stream_dead_letters: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty counters registered under the `beacon` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("beacon");
        let gateway_events = Family::<Labels1, Counter>::default();
        registry.register(
            "gateway_events",
            "Gateway events handled (every module has seen them), by event type",
            gateway_events.clone(),
        );
        let interactions = Family::<Labels2, Counter>::default();
        registry.register(
            "interactions",
            "Interactions received, by kind and outcome (handled, duplicate)",
            interactions.clone(),
        );
        let handler_errors = Family::<Labels1, Counter>::default();
        registry.register(
            "handler_errors",
            "Module handlers that returned an internal error, by module",
            handler_errors.clone(),
        );
        let external_calls = Family::<Labels3, Counter>::default();
        registry.register(
            "external_calls",
            "Calls to external services modules drive (e.g. the agent service), by service, operation and outcome",
            external_calls.clone(),
        );
        let external_seconds = Family::<Labels2, Histogram, fn() -> Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 13))
        });
        registry.register(
            "external_call_seconds",
            "Latency of calls to external services, by service and operation",
            external_seconds.clone(),
        );
        let stream_entries = Family::<Labels1, Counter>::default();
        registry.register(
            "stream_entries",
            "Event stream entries this worker handled, retried, dead-lettered or took over from a stopped worker",
            stream_entries.clone(),
        );
        let stream_pending = Gauge::default();
        registry.register(
            "stream_pending",
            "Event stream entries delivered to a worker and not yet acknowledged (every partition)",
            stream_pending.clone(),
        );
        let stream_dead_letters = Gauge::default();
        registry.register(
            "stream_dead_letters",
            "Entries in the event dead-letter stream (events given up after their deliveries)",
            stream_dead_letters.clone(),
        );
        Metrics {
            registry,
            gateway_events,
            interactions,
            handler_errors,
            external_calls,
            external_seconds,
            stream_entries,
            stream_pending,
            stream_dead_letters,
        }
    }

    /// A worker's running totals of stream entries by outcome (counters follow the totals).
    pub fn stream_worker(&self, handled: u64, retried: u64, dead_lettered: u64, taken_over: u64) {
        for (outcome, total) in
            [("handled", handled), ("retried", retried), ("dead_lettered", dead_lettered), ("taken_over", taken_over)]
        {
            let counter = self.stream_entries.get_or_create(&[("outcome", outcome)]);
            let now = counter.get();
            if total > now {
                counter.inc_by(total - now);
            }
        }
    }

    /// The deployment's pending stream entries and dead letters, as Redis reports them.
    pub fn stream_backlog(&self, pending: u64, dead_letters: u64) {
        self.stream_pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.stream_dead_letters.set(i64::try_from(dead_letters).unwrap_or(i64::MAX));
    }

    /// One gateway event went through every module.
    pub fn gateway_event(&self, event: &'static str) {
        self.gateway_events.get_or_create(&[("event", event)]).inc();
    }

    /// One interaction arrived; `outcome` is `handled` or `duplicate`.
    pub fn interaction(&self, kind: &'static str, outcome: &'static str) {
        self.interactions.get_or_create(&[("kind", kind), ("outcome", outcome)]).inc();
    }

    /// A module's handler failed with an internal error.
    pub fn handler_error(&self, module: &'static str) {
        self.handler_errors.get_or_create(&[("module", module)]).inc();
    }

    /// A module called an external service; `outcome` is `ok` or an error kind.
    pub fn external_call(
        &self,
        service: &'static str,
        op: &'static str,
        outcome: &'static str,
        elapsed: std::time::Duration,
    ) {
        self.external_calls.get_or_create(&[("service", service), ("op", op), ("outcome", outcome)]).inc();
        self.external_seconds.get_or_create(&[("service", service), ("op", op)]).observe(elapsed.as_secs_f64());
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
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
        m.external_call("agent", "send", "timeout", std::time::Duration::from_secs(150));
        let text = m.render();
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
