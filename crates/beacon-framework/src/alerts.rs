//! Beacon's own alerts for single-binary installs (no Prometheus): posts to the operator's
//! Discord webhook (`BEACON_ALERT_WEBHOOK_URL`) when handlers keep failing
//! (`BEACON_ALERT_HANDLER_FAILURES` within five minutes) or the gateway has had no session for
//! `BEACON_ALERT_GATEWAY_AFTER`. At most one alert of each kind per `BEACON_ALERT_MIN_INTERVAL`;
//! the message is Discord's execute-webhook payload with no mentions allowed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_config::AlertConfig;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::id::Id;

use crate::metrics::Metrics;

/// The window handler failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The alerts of one process; cheap to clone. Does nothing without a webhook.
#[derive(Clone)]
pub struct Alerts {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    http: Arc<twilight_http::Client>,
    webhook_id: u64,
    token: String,
    options: AlertConfig,
    metrics: Metrics,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: VecDeque<(Instant, &'static str)>,
    last_sent: HashMap<&'static str, Instant>,
}

impl Alerts {
    /// Alerts posted to `config`'s webhook through `http`, or none when no webhook is set.
    pub fn new(config: &AlertConfig, http: Arc<twilight_http::Client>, metrics: Metrics) -> Alerts {
        let inner = config.webhook_url.as_ref().map(|hook| {
            Arc::new(Inner {
                http,
                webhook_id: hook.id,
                token: hook.token.expose().to_owned(),
                options: config.clone(),
                metrics,
                state: Mutex::new(State::default()),
            })
        });
        Alerts { inner }
    }

    /// Whether a webhook is configured.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// A module's handler failed with an internal error; enough of them within
    /// [`FAILURE_WINDOW`] make an alert.
    pub fn handler_failed(&self, module: &'static str) {
        let Some(inner) = &self.inner else { return };
        let now = Instant::now();
        let text = {
            let Ok(mut state) = inner.state.lock() else { return };
            state.failures.push_back((now, module));
            while state.failures.front().is_some_and(|(at, _)| now.duration_since(*at) > FAILURE_WINDOW) {
                state.failures.pop_front();
            }
            if state.failures.len() < inner.options.handler_failures {
                return;
            }
            let mut modules: Vec<&str> = state.failures.iter().map(|(_, m)| *m).collect();
            modules.sort_unstable();
            modules.dedup();
            let text = format!(
                "⚠️ Beacon: {} handler failures in the last 5 minutes (modules: {}). The logs have each error with its reference.",
                state.failures.len(),
                modules.join(", ")
            );
            state.failures.clear();
            text
        };
        self.send("handler_failures", text);
    }

    /// The gateway has had no session for `down_for`.
    pub fn gateway_down(&self, down_for: Duration, detail: &str) {
        let text = format!(
            "🔌 Beacon: the gateway has not had a session for {}s ({detail}). Members' messages are not being answered.",
            down_for.as_secs()
        );
        self.send("gateway", text);
    }

    /// Posts `text` unless an alert of `kind` went out within the minimum interval.
    fn send(&self, kind: &'static str, text: String) {
        let Some(inner) = &self.inner else { return };
        {
            let Ok(mut state) = inner.state.lock() else { return };
            let now = Instant::now();
            if state.last_sent.get(kind).is_some_and(|at| now.duration_since(*at) < inner.options.min_interval) {
                tracing::info!(kind, "alert not posted again within BEACON_ALERT_MIN_INTERVAL");
                return;
            }
            state.last_sent.insert(kind, now);
        }
        let Some(id) = Id::new_checked(inner.webhook_id) else { return };
        let inner = inner.clone();
        tokio::spawn(async move {
            let none = AllowedMentions::default();
            let request = inner
                .http
                .execute_webhook(id, &inner.token)
                .username("Beacon alerts")
                .allowed_mentions(Some(&none))
                .content(&text);
            match request.await {
                Ok(_) => {
                    inner.metrics.alert_sent(kind);
                    tracing::warn!(kind, "alert posted to BEACON_ALERT_WEBHOOK_URL");
                }
                Err(e) => tracing::error!(error = %e, kind, "alert could not be posted to BEACON_ALERT_WEBHOOK_URL"),
            }
        });
    }
}
