//! The developer team's Shards page: each shard's health and latency, which shard serves each
//! server, and the latency over time — refreshed in place every few seconds by htmx polling
//! the fragment at `/shards/live` (without JavaScript, a Refresh link reloads the page).
//!
//! Data comes from `GET /api/v1/shards` (developer-only there). The latency history is the
//! answers this process's pages have read, kept in memory (the last [`KEEP`] samples, at
//! most one per [`EVERY`]): a view for watching, not a record.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::chart;
use super::view::{Layout, fail, show, time};
use super::{PagesState, html};

/// Samples kept per shard.
pub const KEEP: usize = 60;
/// The shortest time between two samples.
pub const EVERY: Duration = Duration::from_secs(2);

/// One shard's samples: (time in Unix ms, latency in ms), newest last.
type Samples = VecDeque<(i64, f64)>;

/// Latency samples per shard, and when the last was taken.
#[derive(Default)]
pub struct History {
    inner: Mutex<(Option<Instant>, HashMap<u64, Samples>)>,
}

impl History {
    /// Adds the latencies of one answer (unless the last sample is too recent) and returns
    /// every shard's samples.
    fn record(&self, shards: &[Value], now_ms: i64) -> Vec<(u64, Vec<(i64, f64)>)> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (last, samples) = &mut *guard;
        if last.is_none_or(|t| t.elapsed() >= EVERY) {
            *last = Some(Instant::now());
            for s in shards {
                let (Some(id), Some(ms)) = (s["id"].as_u64(), s["latency_ms"].as_f64()) else { continue };
                let q = samples.entry(id).or_default();
                q.push_back((now_ms, ms));
                while q.len() > KEEP {
                    q.pop_front();
                }
            }
        }
        let mut out: Vec<_> = samples.iter().map(|(id, q)| (*id, q.iter().copied().collect())).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

pub struct ShardRow {
    id: String,
    state: String,
    healthy: bool,
    latency: String,
    guilds: String,
    reconnects: String,
    last_event: String,
}

pub struct Live {
    count: String,
    rows: Vec<ShardRow>,
    charts: Vec<String>,
    guilds: Vec<GuildShard>,
    checked: String,
}

/// A server of the guild → shard map: its name (empty when unknown), id and shard.
pub struct GuildShard {
    name: String,
    id: String,
    shard: String,
}

#[derive(Template)]
#[template(path = "shards.html")]
struct ShardsPage {
    layout: Layout,
    live: Live,
}

#[derive(Template)]
#[template(path = "shards_live.html")]
struct ShardsLive {
    live: Live,
}

fn live(state: &PagesState, answer: &Value) -> Live {
    let now = beacon_store::now_ms();
    let shards: Vec<Value> = answer["shards"].as_array().cloned().unwrap_or_default();
    let history = state.shard_history.record(&shards, now);
    let rows = shards
        .iter()
        .map(|s| {
            let state = s["state"].as_str().unwrap_or("unknown").to_owned();
            ShardRow {
                id: show(&s["id"], beacon_framework::pages::Format::Text),
                healthy: state == "ready",
                state,
                latency: s["latency_ms"].as_u64().map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms")),
                guilds: show(&s["guilds"], beacon_framework::pages::Format::Text),
                reconnects: show(&s["reconnects"], beacon_framework::pages::Format::Text),
                last_event: s["last_event_at"].as_i64().map_or_else(|| "—".to_owned(), time),
            }
        })
        .collect();
    let charts = history
        .iter()
        .filter(|(_, samples)| !samples.is_empty())
        .map(|(id, samples)| {
            let points: Vec<(String, f64)> = samples
                .iter()
                .map(|(at, ms)| {
                    let label = jiff::Timestamp::from_millisecond(*at)
                        .map_or_else(|_| at.to_string(), |t| t.strftime("%H:%M:%S").to_string());
                    (label, *ms)
                })
                .collect();
            chart::line(
                &format!("Shard {id}: heartbeat latency"),
                &points,
                |v| format!("{v:.0} ms"),
                "No heartbeat measured yet.",
            )
        })
        .collect();
    let guilds = answer["guilds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| GuildShard {
            name: g["name"].as_str().unwrap_or_default().to_owned(),
            id: g["guild_id"].as_str().unwrap_or_default().to_owned(),
            shard: show(&g["shard"], beacon_framework::pages::Format::Text),
        })
        .collect();
    Live {
        count: show(&answer["shard_count"], beacon_framework::pages::Format::Text),
        rows,
        charts,
        guilds,
        checked: jiff::Timestamp::from_millisecond(now)
            .map_or_else(|_| now.to_string(), |t| t.strftime("%H:%M:%S UTC").to_string()),
    }
}

/// `GET /shards`: the page (developer team only: the API refuses anyone else).
pub async fn page(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    let api = state.api(&headers);
    let answer = match api.get("/api/v1/shards").await {
        Ok(a) => a,
        Err(f) => return fail(f),
    };
    let layout = match Layout::user(&api, "Shards").await {
        Ok(l) => l,
        Err(f) => return fail(f),
    };
    html(StatusCode::OK, &ShardsPage { layout, live: live(&state, &answer) })
}

/// `GET /shards/live`: the part of the page that refreshes.
pub async fn fragment(State(state): State<PagesState>, headers: HeaderMap) -> Response {
    match state.api(&headers).get("/api/v1/shards").await {
        Ok(answer) => html(StatusCode::OK, &ShardsLive { live: live(&state, &answer) }),
        Err(f) => fail(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_history_keeps_the_last_samples_at_most_one_per_interval() {
        let h = History::default();
        let shard = |ms: u64| vec![json!({"id": 0, "latency_ms": ms})];
        let first = h.record(&shard(40), 1_000);
        assert_eq!(first, vec![(0, vec![(1_000, 40.0)])]);
        // Too soon: not recorded again.
        assert_eq!(h.record(&shard(50), 1_500), first);
        let no_latency = h.record(&[json!({"id": 1, "latency_ms": null})], 2_000);
        assert_eq!(no_latency.len(), 1, "a shard without a heartbeat yet has no sample");
    }
}
