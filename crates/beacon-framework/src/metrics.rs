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
    page_seconds: Family<[(&'static str, String); 1], Histogram, fn() -> Histogram>,
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
        let page_seconds =
            Family::<[(&'static str, String); 1], Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            });
        registry.register(
            "page_seconds",
            "Server time of dashboard pages, by route template (no ids)",
            page_seconds.clone(),
        );
        Metrics {
            registry,
            gateway_events,
            interactions,
            handler_errors,
            external_calls,
            external_seconds,
            page_seconds,
        }
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

    /// A dashboard page was served; `route` is its template (`/g/{guild_id}/settings`), never a path with ids.
    pub fn page(&self, route: &str, elapsed: std::time::Duration) {
        self.page_seconds.get_or_create(&[("route", route.to_owned())]).observe(elapsed.as_secs_f64());
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
        m.page("/g/{guild_id}/settings", std::time::Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("beacon_page_seconds_count{route=\"/g/{guild_id}/settings\"} 1"), "{text}");
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
}
