//! Discord-style rate limits: per-route buckets keyed by the major parameter, the global
//! 50 requests/s, and the headers Discord sends with every answer.

use crate::state::Window;
use crate::validate::Matched;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Rate-limit headers to attach, or the 429 to answer with.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Headers for the response (`X-RateLimit-*`, and on 429 `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    /// `Some(retry_after_secs, global)` when the request is limited.
    pub limited: Option<(f64, bool)>,
}

/// Bucket configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per bucket window.
    pub route_limit: u32,
    /// Bucket window.
    pub route_window: Duration,
    /// Requests per second across bot-token routes.
    pub global_limit: u32,
}

/// The bucket's major parameter (Discord keys buckets by channel, guild or webhook).
fn major(m: &Matched) -> String {
    for key in ["channel_id", "guild_id", "webhook_id", "interaction_id"] {
        if let Some(v) = m.params.get(key) {
            let token = m
                .params
                .get("webhook_token")
                .or_else(|| m.params.get("interaction_token"))
                .map(String::as_str)
                .unwrap_or_default();
            return format!("{key}={v}{token}");
        }
    }
    String::new()
}

/// A stable opaque bucket hash for a route template (shared across major parameters).
fn bucket_hash(m: &Matched) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{} {}", m.op.method, m.op.template).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn unix_secs_f64() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Count a request against its buckets.
pub fn check(
    buckets: &mut HashMap<String, Window>,
    global: &mut Option<Window>,
    limits: Limits,
    m: &Matched,
    bot_auth: bool,
) -> Verdict {
    let now = Instant::now();
    // Interaction callbacks and webhook-token routes are not bound by the global limit.
    if bot_auth && !m.op.token_route {
        let g = global.get_or_insert(Window { start: now, count: 0 });
        if now.duration_since(g.start) >= Duration::from_secs(1) {
            *g = Window { start: now, count: 0 };
        }
        if g.count >= limits.global_limit {
            let retry = (Duration::from_secs(1).saturating_sub(now.duration_since(g.start))).as_secs_f64().max(0.001);
            return Verdict {
                headers: vec![
                    ("x-ratelimit-global", "true".into()),
                    ("x-ratelimit-scope", "global".into()),
                    ("retry-after", format!("{}", retry.ceil() as u64)),
                ],
                limited: Some((retry, true)),
            };
        }
        g.count += 1;
    }
    let hash = bucket_hash(m);
    let key = format!("{hash}:{}", major(m));
    let w = buckets.entry(key).or_insert(Window { start: now, count: 0 });
    if now.duration_since(w.start) >= limits.route_window {
        *w = Window { start: now, count: 0 };
    }
    let reset_after = limits.route_window.saturating_sub(now.duration_since(w.start)).as_secs_f64();
    let mut headers = vec![
        ("x-ratelimit-bucket", hash),
        ("x-ratelimit-limit", limits.route_limit.to_string()),
        ("x-ratelimit-reset", format!("{:.3}", unix_secs_f64() + reset_after)),
        ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
    ];
    if w.count >= limits.route_limit {
        headers.push(("x-ratelimit-remaining", "0".into()));
        headers.push(("x-ratelimit-scope", "user".into()));
        headers.push(("retry-after", format!("{}", reset_after.ceil() as u64)));
        return Verdict { headers, limited: Some((reset_after.max(0.001), false)) };
    }
    w.count += 1;
    headers.push(("x-ratelimit-remaining", (limits.route_limit - w.count).to_string()));
    Verdict { headers, limited: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Routes;

    #[test]
    fn bucket_exhausts_and_reports_retry_after() {
        let routes = Routes::builtin();
        let m = routes.find("POST", "/channels/1/messages").unwrap();
        let limits = Limits { route_limit: 2, route_window: Duration::from_secs(60), global_limit: 50 };
        let mut buckets = HashMap::new();
        let mut global = None;
        let a = check(&mut buckets, &mut global, limits, &m, true);
        assert!(a.limited.is_none());
        assert!(a.headers.iter().any(|(k, v)| *k == "x-ratelimit-remaining" && v == "1"));
        check(&mut buckets, &mut global, limits, &m, true);
        let c = check(&mut buckets, &mut global, limits, &m, true);
        let (retry, global_hit) = c.limited.unwrap();
        assert!(retry > 0.0 && !global_hit);
        // Another channel has its own bucket.
        let other = routes.find("POST", "/channels/2/messages").unwrap();
        assert!(check(&mut buckets, &mut global, limits, &other, true).limited.is_none());
    }
}
