//! In-process cache backend: a mutex-guarded map with lazy expiry and a bounded size.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::{CacheError, CacheKey, RateDecision};

/// Default maximum number of live entries of [`MemoryCache`].
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug)]
enum Stored {
    Bytes(Vec<u8>),
    Counter(u64),
}

#[derive(Debug)]
struct Entry {
    value: Stored,
    expires_at: Instant,
}

/// Expiring in-process key/value store used by [`crate::Cache::Memory`].
///
/// Entries expire lazily (checked on access) and are swept when the map is full; if it is still
/// full after the sweep, the entries closest to expiry are evicted (about 1/16 of capacity at a
/// time, so the cost is amortised).
#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

fn deadline(ttl: Duration) -> Instant {
    // Same minimum as Redis `PX`: 1 ms.
    Instant::now() + ttl.max(Duration::from_millis(1))
}

impl MemoryCache {
    /// A cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> MemoryCache {
        MemoryCache { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// Number of stored entries, including expired ones not swept yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // No operation leaves the map inconsistent mid-way, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes room for one new key.
    fn reserve(map: &mut HashMap<String, Entry>, capacity: usize, now: Instant) {
        if map.len() < capacity {
            return;
        }
        map.retain(|_, e| e.expires_at > now);
        if map.len() < capacity {
            return;
        }
        let evict = (capacity / 16).max(1).min(map.len());
        let mut by_expiry: Vec<(Instant, String)> = map.iter().map(|(k, e)| (e.expires_at, k.clone())).collect();
        by_expiry.select_nth_unstable_by_key(evict - 1, |(at, _)| *at);
        for (_, key) in by_expiry.into_iter().take(evict) {
            map.remove(&key);
        }
    }

    fn insert(&self, key: &CacheKey, value: Stored, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.lock();
        if !map.contains_key(key.as_str()) {
            Self::reserve(&mut map, self.capacity, now);
        }
        map.insert(key.as_str().to_owned(), Entry { value, expires_at: deadline(ttl) });
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let now = Instant::now();
        let mut map = self.lock();
        match map.get(key.as_str()) {
            Some(e) if e.expires_at > now => Some(match &e.value {
                Stored::Bytes(b) => b.clone(),
                // Mirrors Redis, where a counter reads back as its decimal text.
                Stored::Counter(n) => n.to_string().into_bytes(),
            }),
            Some(_) => {
                map.remove(key.as_str());
                None
            }
            None => None,
        }
    }

    pub(crate) fn set(&self, key: &CacheKey, value: &[u8], ttl: Duration) {
        self.insert(key, Stored::Bytes(value.to_vec()), ttl);
    }

    pub(crate) fn delete(&self, key: &CacheKey) {
        self.lock().remove(key.as_str());
    }

    pub(crate) fn set_nx(&self, key: &CacheKey, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        if map.get(key.as_str()).is_some_and(|e| e.expires_at > now) {
            return false;
        }
        if !map.contains_key(key.as_str()) {
            Self::reserve(&mut map, self.capacity, now);
        }
        map.insert(key.as_str().to_owned(), Entry { value: Stored::Bytes(b"1".to_vec()), expires_at: deadline(ttl) });
        true
    }

    pub(crate) fn hit(&self, key: &CacheKey, window: Duration, limit: u64) -> Result<RateDecision, CacheError> {
        let now = Instant::now();
        let mut map = self.lock();
        let live = map.get_mut(key.as_str()).filter(|e| e.expires_at > now);
        let (count, expires_at) = match live {
            Some(entry) => {
                let n = match &entry.value {
                    Stored::Counter(n) => *n,
                    Stored::Bytes(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| CacheError::WrongType(key.to_string()))?,
                };
                let n = n.saturating_add(1);
                entry.value = Stored::Counter(n);
                (n, entry.expires_at)
            }
            None => {
                if !map.contains_key(key.as_str()) {
                    Self::reserve(&mut map, self.capacity, now);
                }
                let expires_at = deadline(window);
                map.insert(key.as_str().to_owned(), Entry { value: Stored::Counter(1), expires_at });
                (1, expires_at)
            }
        };
        Ok(RateDecision::from_count(count, limit, expires_at.saturating_duration_since(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> CacheKey {
        CacheKey::guild(1, "t", &n.to_string())
    }

    #[test]
    fn size_is_bounded() {
        let cache = MemoryCache::new(32);
        for i in 0..1_000 {
            cache.set(&key(i), b"v", Duration::from_secs(60));
            assert!(cache.len() <= 32, "len {} after {i} inserts", cache.len());
        }
        // The newest entry survives eviction.
        assert_eq!(cache.get(&key(999)), Some(b"v".to_vec()));
    }

    #[test]
    fn eviction_prefers_soonest_expiry() {
        let cache = MemoryCache::new(16);
        cache.set(&key(0), b"short", Duration::from_secs(1));
        for i in 1..16 {
            cache.set(&key(i), b"long", Duration::from_secs(3600));
        }
        cache.set(&key(100), b"new", Duration::from_secs(3600));
        assert_eq!(cache.get(&key(0)), None);
        assert_eq!(cache.get(&key(1)), Some(b"long".to_vec()));
        assert_eq!(cache.get(&key(100)), Some(b"new".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_lazily() {
        let cache = MemoryCache::new(8);
        cache.set(&key(1), b"v", Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(cache.get(&key(1)), Some(b"v".to_vec()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.len(), 1, "expired entry is still stored until accessed");
        assert_eq!(cache.get(&key(1)), None);
        assert!(cache.is_empty(), "access removed the expired entry");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_window_resets() {
        let cache = MemoryCache::new(8);
        let k = key(5);
        let window = Duration::from_secs(60);
        assert!(cache.hit(&k, window, 1).expect("hit").allowed);
        let denied = cache.hit(&k, window, 1).expect("hit");
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, window);
        tokio::time::advance(Duration::from_secs(20)).await;
        let denied = cache.hit(&k, window, 1).expect("hit");
        assert_eq!(denied.retry_after, Duration::from_secs(40));
        tokio::time::advance(Duration::from_secs(41)).await;
        assert!(cache.hit(&k, window, 1).expect("hit").allowed);
    }

    #[test]
    fn hit_on_non_counter_is_an_error() {
        let cache = MemoryCache::new(8);
        cache.set(&key(1), b"not a number", Duration::from_secs(60));
        assert!(matches!(cache.hit(&key(1), Duration::from_secs(1), 5), Err(CacheError::WrongType(_))));
    }
}
