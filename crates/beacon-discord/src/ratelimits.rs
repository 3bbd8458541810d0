//! Counting Discord's 429 answers.
//!
//! twilight-http retries a request answered 429 by itself (after the wait Discord names), so a
//! rate-limited request never reaches the caller as an error: the only trace of it is the event
//! twilight logs before retrying. [`RateLimitCounter`] is a tracing layer that counts those
//! events, whatever the log level the operator chose; [`rate_limited_total`] reads the count
//! (`beacon_discord_rest_rate_limited_total` in `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::layer::{Context, Layer};

/// Where twilight-http logs a 429 it is about to retry, and what it says.
const TARGET: &str = "twilight_http::response::future";
const MESSAGE: &str = "rate limited; retrying";

static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);

/// Discord REST requests answered 429 in this process so far.
pub fn rate_limited_total() -> u64 {
    RATE_LIMITED.load(Ordering::Relaxed)
}

/// The tracing layer that counts twilight-http's retried 429s. Install it beside the log
/// output, unfiltered by the log level: it carries its own filter ([`RateLimitCounter::filter`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct RateLimitCounter;

impl RateLimitCounter {
    /// Only twilight-http's response events reach the layer, at any configured log level.
    pub fn filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
        tracing_subscriber::filter::filter_fn(is_candidate)
    }
}

fn is_candidate(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.target() == TARGET && *meta.level() == Level::INFO
}

impl<S: Subscriber> Layer<S> for RateLimitCounter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !is_candidate(event.metadata()) {
            return;
        }
        let mut message = MessageIs { wanted: MESSAGE, matched: false };
        event.record(&mut message);
        if message.matched {
            RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether an event's `message` field is the one twilight logs before a retry.
struct MessageIs {
    wanted: &'static str,
    matched: bool,
}

impl Visit for MessageIs {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.matched = format!("{value:?}") == self.wanted;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.matched = value == self.wanted;
        }
    }
}
