//! Beacon's cache and rate-limit layer: an in-process backend for the single-binary deployment
//! and Redis for scale-out, behind one [`Cache`] type.
//!
//! Keys are built with [`CacheKey::guild`] (which always embeds the guild id) or
//! [`CacheKey::global`], so guild data cannot share a key by accident.
//!
//! ```
//! # async fn demo() -> Result<(), beacon_cache::CacheError> {
//! use std::time::Duration;
//! use beacon_cache::{Cache, CacheKey};
//!
//! let cache = Cache::memory(); // or Cache::redis("redis://127.0.0.1:6379").await?
//! let key = CacheKey::guild(81384788765712384, "faq", "index");
//! cache.set(&key, b"cached", Duration::from_secs(60)).await?;
//! assert_eq!(cache.get(&key).await?, Some(b"cached".to_vec()));
//!
//! // 5 `/ask` per user per minute.
//! let limit = CacheKey::guild(81384788765712384, "ask", "user:80351110224678912");
//! let decision = cache.hit(&limit, Duration::from_secs(60), 5).await?;
//! assert!(decision.allowed);
//! # Ok(())
//! # }
//! ```

mod key;
pub mod memory;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use key::CacheKey;
pub use memory::MemoryCache;

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis returned an error or the connection failed.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// The Redis URL could not be parsed (shown with its password redacted).
    #[error("invalid redis URL {0}")]
    InvalidUrl(String),
    /// A rate-limit counter key holds a non-counter value.
    #[error("cache key {0} does not hold a counter")]
    WrongType(String),
}

/// Outcome of [`Cache::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this hit is within the limit.
    pub allowed: bool,
    /// Hits left in the current window after this one.
    pub remaining: u64,
    /// When denied, how long until the window resets; zero when allowed.
    pub retry_after: Duration,
}

impl RateDecision {
    fn from_count(count: u64, limit: u64, window_left: Duration) -> RateDecision {
        let allowed = count <= limit;
        RateDecision {
            allowed,
            remaining: limit.saturating_sub(count),
            retry_after: if allowed { Duration::ZERO } else { window_left },
        }
    }
}

/// Fixed-window counter: INCR, start the window on the first hit, report the time left.
static RATE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
",
    )
});

fn millis(d: Duration) -> u64 {
    // Redis rejects PX 0; 1 ms is the smallest expiry on both backends.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') { format!("{scheme}://{user}:***@{host}{tail}") } else { url.to_owned() }
        }
        None => url.to_owned(),
    }
}

/// Cache handle. Cheap to clone; clones share the same backend.
#[derive(Clone)]
pub enum Cache {
    /// In-process cache (single binary, tests).
    Memory(Arc<MemoryCache>),
    /// Redis via an auto-reconnecting connection manager.
    Redis(ConnectionManager),
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cache").field(&self.kind()).finish()
    }
}

impl Cache {
    /// In-process cache with [`memory::DEFAULT_CAPACITY`] entries.
    pub fn memory() -> Cache {
        Cache::memory_with_capacity(memory::DEFAULT_CAPACITY)
    }

    /// In-process cache holding at most `capacity` entries.
    pub fn memory_with_capacity(capacity: usize) -> Cache {
        Cache::Memory(Arc::new(MemoryCache::new(capacity)))
    }

    /// Connects to Redis (`redis://[:password@]host:port[/db]`), failing if it does not answer.
    /// The connection reconnects on its own after Redis restarts.
    pub async fn redis(url: &str) -> Result<Cache, CacheError> {
        let client =
            redis::Client::open(url).map_err(|e| CacheError::InvalidUrl(format!("{}: {e}", redact_url(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let manager = client.get_connection_manager_with_config(config).await?;
        let cache = Cache::Redis(manager);
        cache.ping().await?;
        // The URL may carry a password, so only the redacted form is logged.
        tracing::info!(url = %redact_url(url), "connected to redis cache");
        Ok(cache)
    }

    /// `"memory"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Cache::Memory(_) => "memory",
            Cache::Redis(_) => "redis",
        }
    }

    /// Checks that the backend answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("PING").query_async::<()>(&mut conn).await?;
                Ok(())
            }
        }
    }

    /// The value at `key`, if present and not expired.
    pub async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Cache::Memory(m) => Ok(m.get(key)),
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                Ok(redis::cmd("GET").arg(key.as_str()).query_async(&mut conn).await?)
            }
        }
    }

    /// Stores `value` at `key` for `ttl` (at least 1 ms), replacing any previous value.
    pub async fn set(&self, key: &CacheKey, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.set(key, value, ttl);
                Ok(())
            }
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("SET")
                    .arg(key.as_str())
                    .arg(value)
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async::<()>(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// Removes `key` (no error if absent).
    pub async fn delete(&self, key: &CacheKey) -> Result<(), CacheError> {
        match self {
            Cache::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("DEL").arg(key.as_str()).query_async::<()>(&mut conn).await?;
                Ok(())
            }
        }
    }

    /// Sets `key` only if absent (a lock or dedup marker); `true` if this call set it.
    pub async fn set_nx(&self, key: &CacheKey, ttl: Duration) -> Result<bool, CacheError> {
        match self {
            Cache::Memory(m) => Ok(m.set_nx(key, ttl)),
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                let reply: Option<String> = redis::cmd("SET")
                    .arg(key.as_str())
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut conn)
                    .await?;
                Ok(reply.is_some())
            }
        }
    }

    /// Counts one hit against a fixed-window rate limit of `limit` hits per `window`, starting
    /// at the first hit. Denied hits also count, so hammering does not shorten the wait.
    pub async fn hit(&self, key: &CacheKey, window: Duration, limit: u64) -> Result<RateDecision, CacheError> {
        match self {
            Cache::Memory(m) => m.hit(key, window, limit),
            Cache::Redis(conn) => {
                let mut conn = conn.clone();
                let (count, ttl_ms): (i64, i64) =
                    RATE_SCRIPT.key(key.as_str()).arg(millis(window)).invoke_async(&mut conn).await?;
                Ok(RateDecision::from_count(
                    u64::try_from(count).unwrap_or(0),
                    limit,
                    Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_math() {
        let d = RateDecision::from_count(3, 5, Duration::from_secs(9));
        assert_eq!(d, RateDecision { allowed: true, remaining: 2, retry_after: Duration::ZERO });
        let d = RateDecision::from_count(6, 5, Duration::from_secs(9));
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Duration::from_secs(9));
        assert!(!RateDecision::from_count(1, 0, Duration::from_secs(1)).allowed);
    }

    #[test]
    fn redacts_redis_password() {
        assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact_url("redis://user:hunter2@cache"), "redis://user:***@cache");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn ttl_never_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
