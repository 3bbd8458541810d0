//! [`GuildCache`]: per-guild data kept in memory while the database says it is current.
//!
//! The hot paths (every gateway event, every interaction) read a guild's settings, its record and
//! access list, and module lookups such as "is this channel a ticket". Each entry remembers the
//! guild's [`beacon_store::Generation`] it was loaded under and serves while the generation is
//! unchanged: a write in this process moves it at once, a write in another process within
//! [`beacon_store::POLL_EVERY`]. Entries also expire after a maximum age, a backstop for a
//! change notice that could not be written.
//!
//! ```no_run
//! # use std::collections::HashSet;
//! # async fn thread_ids(_guild: &beacon_store::GuildStore) -> Result<HashSet<u64>, beacon_store::StoreError> { Ok(HashSet::new()) }
//! # async fn demo(guild: beacon_store::GuildStore, channel_id: u64) -> Result<(), beacon_store::StoreError> {
//! // a field of the module:
//! let threads: beacon_framework::GuildCache<HashSet<u64>> = Default::default();
//! let ids = threads.get_or_load(&guild, || thread_ids(&guild)).await?;
//! if ids.contains(&channel_id) { /* … */ }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_store::{Generation, GuildStore};

/// The default backstop age of an entry.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// Guilds kept at most; beyond it the older half is dropped.
const CAPACITY: usize = 50_000;

struct Entry<V> {
    generation: Generation,
    loaded: Instant,
    value: Arc<V>,
}

/// Per-guild values, loaded on first use and dropped when the guild's data changes.
pub struct GuildCache<V> {
    entries: Mutex<HashMap<u64, Entry<V>>>,
    max_age: Duration,
}

impl<V> Default for GuildCache<V> {
    fn default() -> Self {
        GuildCache::new(MAX_AGE)
    }
}

impl<V> GuildCache<V> {
    /// A cache whose entries live at most `max_age` (zero: nothing is kept).
    pub fn new(max_age: Duration) -> GuildCache<V> {
        GuildCache { entries: Mutex::new(HashMap::new()), max_age }
    }

    /// The guild's value: cached when current, else loaded with `load` and kept.
    pub async fn get_or_load<F, Fut, E>(&self, guild: &GuildStore, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // Read before loading: a change that lands while loading moves it, so the value kept
        // below is already stale and is not served.
        let generation = guild.generation();
        if let Some(value) = self.current(guild.id(), generation) {
            return Ok(value);
        }
        let value = Arc::new(load().await?);
        if !self.max_age.is_zero() {
            self.keep(guild.id(), generation, value.clone());
        }
        Ok(value)
    }

    /// The cached value, if it is still current.
    pub fn current(&self, guild_id: u64, generation: Generation) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&guild_id)
            .filter(|e| e.generation == generation && e.loaded.elapsed() < self.max_age)
            .map(|e| e.value.clone())
    }

    fn keep(&self, guild_id: u64, generation: Generation, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&guild_id) {
            let mut ages: Vec<Instant> = entries.values().map(|e| e.loaded).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            entries.retain(|_, e| e.loaded > cutoff);
        }
        entries.insert(guild_id, Entry { generation, loaded: Instant::now(), value });
    }

    /// Drops the guild's entry (e.g. after its data was purged).
    pub fn invalidate(&self, guild_id: u64) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&guild_id);
    }

    /// Number of guilds with an entry (current or not).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no guild has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn store() -> beacon_store::Store {
        let store = beacon_store::Store::connect("sqlite::memory:").await.expect("store");
        store.migrate().await.expect("migrate");
        store
    }

    #[tokio::test]
    async fn serves_until_the_guild_changes() {
        let store = store().await;
        let (g, other) = (store.guild(1), store.guild(2));
        let cache: GuildCache<u32> = GuildCache::default();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(7)
        };
        assert_eq!(*cache.get_or_load(&g, load).await.expect("load"), 7);
        assert_eq!(*cache.get_or_load(&g, load).await.expect("cached"), 7);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.get_or_load(&other, load).await.expect("other guild");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        g.mark_changed().await.expect("change");
        cache.get_or_load(&g, load).await.expect("reloaded");
        assert_eq!(loads.load(Ordering::SeqCst), 3, "a change reloads");
        cache.get_or_load(&other, load).await.expect("other guild still cached");
        assert_eq!(loads.load(Ordering::SeqCst), 3, "only the changed guild reloads");
        cache.invalidate(1);
        cache.get_or_load(&g, load).await.expect("after invalidate");
        assert_eq!(loads.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_change_during_the_load_is_not_cached() {
        let store = store().await;
        let g = store.guild(1);
        let cache: GuildCache<u32> = GuildCache::default();
        let value = cache
            .get_or_load(&g, || async {
                g.mark_changed().await.expect("change while loading");
                Ok::<_, beacon_store::StoreError>(1)
            })
            .await
            .expect("load");
        assert_eq!(*value, 1);
        let again = cache.get_or_load(&g, || async { Ok::<_, beacon_store::StoreError>(2) }).await.expect("reload");
        assert_eq!(*again, 2, "the value loaded across a change was not served");
    }

    #[tokio::test]
    async fn entries_expire_and_zero_age_keeps_nothing() {
        let store = store().await;
        let g = store.guild(1);
        let short: GuildCache<u32> = GuildCache::new(Duration::from_millis(20));
        short.get_or_load(&g, || async { Ok::<_, std::convert::Infallible>(1) }).await.expect("load");
        tokio::time::sleep(Duration::from_millis(40)).await;
        let v = short.get_or_load(&g, || async { Ok::<_, std::convert::Infallible>(2) }).await.expect("expired");
        assert_eq!(*v, 2);
        let none: GuildCache<u32> = GuildCache::new(Duration::ZERO);
        none.get_or_load(&g, || async { Ok::<_, std::convert::Infallible>(1) }).await.expect("load");
        assert!(none.is_empty());
    }
}
