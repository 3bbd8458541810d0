//! One contract suite for every cache backend: each check is written once as an async function
//! over a `Cache` and instantiated for the in-process backend and for Redis.
//!
//! Redis runs when `BEACON_TEST_REDIS_URL` is set; with `BEACON_TEST_REQUIRE_SERVICES=1` a
//! missing URL fails the Redis tests instead of skipping them. Every test uses its own random
//! module name, so tests can share one Redis and run in parallel.

use std::time::Duration;

use beacon_cache::{Cache, CacheKey};

/// A key namespace unique to one test run.
fn unique_module(test: &str) -> String {
    format!("test-{test}-{:016x}", fastrand::u64(..))
}

async fn redis_cache() -> Option<Cache> {
    let url = beacon_testkit::services::redis_url()?;
    Some(Cache::redis(&url).await.expect("BEACON_TEST_REDIS_URL is set but Redis is unreachable"))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(beacon_cache::Cache::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(cache) = super::redis_cache().await {
                        super::$name(cache).await;
                    }
                }
            )*
        }
    };
}

contract!(
    ping_and_kind,
    set_get_delete,
    values_are_binary_safe,
    guild_keys_are_isolated,
    entries_expire,
    set_nx_once,
    set_nx_concurrent_single_winner,
    rate_limit_counts_and_denies,
    rate_limit_window_resets,
    rate_limits_are_per_key,
);

async fn ping_and_kind(cache: Cache) {
    cache.ping().await.expect("ping");
    assert!(matches!(cache.kind(), "memory" | "redis"));
    let expected = match &cache {
        Cache::Memory(_) => "memory",
        Cache::Redis(_) => "redis",
    };
    assert_eq!(cache.kind(), expected);
}

async fn set_get_delete(cache: Cache) {
    let m = unique_module("sgd");
    let key = CacheKey::guild(1, &m, "a");
    assert_eq!(cache.get(&key).await.expect("get"), None);
    cache.set(&key, b"one", Duration::from_secs(60)).await.expect("set");
    assert_eq!(cache.get(&key).await.expect("get"), Some(b"one".to_vec()));
    cache.set(&key, b"two", Duration::from_secs(60)).await.expect("overwrite");
    assert_eq!(cache.get(&key).await.expect("get"), Some(b"two".to_vec()));
    cache.delete(&key).await.expect("delete");
    assert_eq!(cache.get(&key).await.expect("get"), None);
    cache.delete(&key).await.expect("delete of absent key is fine");
}

async fn values_are_binary_safe(cache: Cache) {
    let m = unique_module("bin");
    let key = CacheKey::global(&m, "blob");
    let value: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    cache.set(&key, &value, Duration::from_secs(60)).await.expect("set");
    assert_eq!(cache.get(&key).await.expect("get"), Some(value));
    let empty = CacheKey::global(&m, "empty");
    cache.set(&empty, b"", Duration::from_secs(60)).await.expect("set empty");
    assert_eq!(cache.get(&empty).await.expect("get"), Some(Vec::new()));
}

async fn guild_keys_are_isolated(cache: Cache) {
    let m = unique_module("iso");
    let a = CacheKey::guild(100, &m, "settings");
    let b = CacheKey::guild(200, &m, "settings");
    let g = CacheKey::global(&m, "settings");
    cache.set(&a, b"guild-a", Duration::from_secs(60)).await.expect("set a");
    assert_eq!(cache.get(&b).await.expect("get b"), None);
    assert_eq!(cache.get(&g).await.expect("get global"), None);
    cache.set(&b, b"guild-b", Duration::from_secs(60)).await.expect("set b");
    cache.delete(&a).await.expect("delete a");
    assert_eq!(cache.get(&b).await.expect("get b"), Some(b"guild-b".to_vec()));
}

async fn entries_expire(cache: Cache) {
    let m = unique_module("ttl");
    let short = CacheKey::guild(1, &m, "short");
    let long = CacheKey::guild(1, &m, "long");
    cache.set(&short, b"x", Duration::from_millis(50)).await.expect("set");
    cache.set(&long, b"y", Duration::from_secs(600)).await.expect("set");
    // Only asserts that an entry is gone well after its TTL, never how fast anything ran.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&short).await.expect("get"), None);
    assert_eq!(cache.get(&long).await.expect("get"), Some(b"y".to_vec()));
    // An expired set_nx marker can be taken again.
    let lock = CacheKey::guild(1, &m, "lock");
    assert!(cache.set_nx(&lock, Duration::from_millis(50)).await.expect("nx"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(cache.set_nx(&lock, Duration::from_secs(60)).await.expect("nx"));
}

async fn set_nx_once(cache: Cache) {
    let m = unique_module("nx");
    let key = CacheKey::guild(7, &m, "event:1");
    assert!(cache.set_nx(&key, Duration::from_secs(60)).await.expect("nx"));
    assert!(!cache.set_nx(&key, Duration::from_secs(60)).await.expect("nx"));
    // Another guild's identical marker is independent.
    let other = CacheKey::guild(8, &m, "event:1");
    assert!(cache.set_nx(&other, Duration::from_secs(60)).await.expect("nx"));
    cache.delete(&key).await.expect("delete");
    assert!(cache.set_nx(&key, Duration::from_secs(60)).await.expect("nx"));
}

async fn set_nx_concurrent_single_winner(cache: Cache) {
    let m = unique_module("nxc");
    let key = CacheKey::global(&m, "claim");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.set_nx(&key, Duration::from_secs(60)).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("join").expect("set_nx") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn rate_limit_counts_and_denies(cache: Cache) {
    let m = unique_module("rl");
    let key = CacheKey::guild(1, &m, "user:5");
    let window = Duration::from_secs(60);
    for expected_remaining in [2, 1, 0] {
        let d = cache.hit(&key, window, 3).await.expect("hit");
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert_eq!(d.retry_after, Duration::ZERO);
    }
    let denied = cache.hit(&key, window, 3).await.expect("hit");
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert!(denied.retry_after > Duration::ZERO);
    assert!(denied.retry_after <= window);
    // A limit of zero never allows.
    let zero = CacheKey::guild(1, &m, "user:6");
    assert!(!cache.hit(&zero, window, 0).await.expect("hit").allowed);
}

async fn rate_limit_window_resets(cache: Cache) {
    let m = unique_module("rlw");
    let key = CacheKey::global(&m, "ip");
    let window = Duration::from_millis(100);
    assert!(cache.hit(&key, window, 1).await.expect("hit").allowed);
    assert!(!cache.hit(&key, window, 1).await.expect("hit").allowed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = cache.hit(&key, window, 1).await.expect("hit");
    assert!(d.allowed, "a new window starts after the old one expired");
}

async fn rate_limits_are_per_key(cache: Cache) {
    let m = unique_module("rlk");
    let window = Duration::from_secs(60);
    let a = CacheKey::guild(1, &m, "user:1");
    let b = CacheKey::guild(2, &m, "user:1");
    assert!(cache.hit(&a, window, 1).await.expect("hit").allowed);
    assert!(!cache.hit(&a, window, 1).await.expect("hit").allowed);
    assert!(cache.hit(&b, window, 1).await.expect("hit").allowed);
}

#[tokio::test]
async fn redis_errors_hide_the_password() {
    // Port 1 on localhost refuses connections; the error must not echo the URL's password.
    let err = Cache::redis("redis://:hunter2-secret@127.0.0.1:1/0").await.expect_err("nothing listens on port 1");
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
    let err = Cache::redis("notredis://:hunter2-secret@host").await.expect_err("bad scheme");
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
}
