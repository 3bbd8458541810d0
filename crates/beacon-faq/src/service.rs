//! The FAQ as the module uses it: the repository plus each guild's search index, kept in step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use beacon_store::{GuildStore, now_ms};

use crate::error::FaqError;
use crate::index::{FaqIndex, Hit, Listed};
use crate::model::{EntryInput, FaqEntry, ImportReport};
use crate::repo::FaqRepo;

/// How often a guild's index catches up with changes other processes made in the database.
const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Changes this close to the last catch-up are read again (clocks of workers differ a little).
const CLOCK_SKEW_MS: i64 = 5_000;

struct Slot {
    index: Option<Arc<RwLock<FaqIndex>>>,
    /// Bumped on every local change, so a load that raced with a change is not installed.
    generation: u64,
    synced_at: Instant,
    /// Changes after this (unix ms) may be missing from the index.
    watermark: i64,
    refreshing: bool,
}

impl Slot {
    fn new() -> Slot {
        Slot { index: None, generation: 0, synced_at: Instant::now(), watermark: 0, refreshing: false }
    }
}

/// Per-guild search indexes built lazily from the database.
#[derive(Default)]
pub struct Indexes {
    guilds: Mutex<HashMap<u64, Slot>>,
}

fn read(index: &RwLock<FaqIndex>) -> std::sync::RwLockReadGuard<'_, FaqIndex> {
    // A poisoned lock means a panic mid-update; the index is derived data and still usable for
    // reading (the worst case is a stale entry until the next rebuild).
    index.read().unwrap_or_else(|p| p.into_inner())
}

fn write(index: &RwLock<FaqIndex>) -> std::sync::RwLockWriteGuard<'_, FaqIndex> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

impl Indexes {
    fn slots(&self) -> MutexGuard<'_, HashMap<u64, Slot>> {
        self.guilds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a stored change to the guild's index (if it is loaded).
    pub fn apply(&self, guild_id: u64, entry: &FaqEntry) {
        let mut slots = self.slots();
        let slot = slots.entry(guild_id).or_insert_with(Slot::new);
        slot.generation += 1;
        if let Some(index) = &slot.index {
            write(index).upsert(entry);
        }
    }

    /// Drops the guild's index; the next search rebuilds it from the database.
    pub fn invalidate(&self, guild_id: u64) {
        let mut slots = self.slots();
        let slot = slots.entry(guild_id).or_insert_with(Slot::new);
        slot.generation += 1;
        slot.index = None;
    }

    fn loaded(&self, guild_id: u64) -> Option<(Arc<RwLock<FaqIndex>>, bool)> {
        let mut slots = self.slots();
        let slot = slots.get_mut(&guild_id)?;
        let index = slot.index.clone()?;
        let stale = !slot.refreshing && slot.synced_at.elapsed() >= REFRESH_EVERY;
        if stale {
            slot.refreshing = true;
        }
        Some((index, stale))
    }
}

/// The repository and the indexes, kept in step: every write goes to the database first, then
/// into the index, so a search right after a change sees it.
pub struct FaqService {
    /// The database side (entries, search log).
    pub repo: FaqRepo,
    indexes: Indexes,
}

impl FaqService {
    /// A service over `repo` with no index loaded yet (each guild's is built on first use).
    pub fn new(repo: FaqRepo) -> FaqService {
        FaqService { repo, indexes: Indexes::default() }
    }

    /// The guild's index, loading it from the database the first time. Every 30 s a search also
    /// starts a background catch-up with changes made by other processes.
    pub async fn index(self: &Arc<Self>, guild: &GuildStore) -> Result<Arc<RwLock<FaqIndex>>, FaqError> {
        if let Some((index, stale)) = self.indexes.loaded(guild.id()) {
            if stale {
                let service = self.clone();
                let guild = guild.clone();
                tokio::spawn(async move { service.catch_up(&guild).await });
            }
            return Ok(index);
        }
        let mut built = None;
        for _ in 0..3 {
            let generation = self.indexes.slots().get(&guild.id()).map_or(0, |s| s.generation);
            let started = now_ms();
            let entries = self.repo.all(guild).await?;
            let index = Arc::new(RwLock::new(FaqIndex::build(&entries)));
            let mut slots = self.indexes.slots();
            let slot = slots.entry(guild.id()).or_insert_with(Slot::new);
            if slot.generation == generation {
                slot.index = Some(index.clone());
                slot.synced_at = Instant::now();
                slot.watermark = started - CLOCK_SKEW_MS;
                return Ok(index);
            }
            // A change landed while loading; the loaded copy may miss it. Load again.
            built = Some(index);
        }
        // Changes keep landing: answer from the last load without caching it.
        built.ok_or_else(|| FaqError::Invalid("The FAQ is busy; try again.".into()))
    }

    async fn catch_up(&self, guild: &GuildStore) {
        let (watermark, generation) =
            self.indexes.slots().get(&guild.id()).map_or((0, 0), |s| (s.watermark, s.generation));
        let started = now_ms();
        let result = self.repo.entries_since(guild, watermark).await;
        let mut slots = self.indexes.slots();
        let Some(slot) = slots.get_mut(&guild.id()) else {
            return;
        };
        slot.refreshing = false;
        match result {
            // A local change landed meanwhile and may be newer than what was read: try again
            // at the next search.
            Ok(_) if slot.generation != generation => {}
            Ok(changed) => {
                if let Some(index) = &slot.index {
                    let mut index = write(index);
                    for entry in &changed {
                        index.upsert(entry);
                    }
                }
                slot.synced_at = Instant::now();
                slot.watermark = started - CLOCK_SKEW_MS;
            }
            Err(e) => {
                tracing::warn!(error = %e, guild_id = guild.id(), "faq index catch-up failed")
            }
        }
    }

    /// The best `limit` entries for a query.
    pub async fn search(self: &Arc<Self>, guild: &GuildStore, query: &str, limit: usize) -> Result<Vec<Hit>, FaqError> {
        let index = self.index(guild).await?;
        Ok(read(&index).search(query, limit))
    }

    /// Pinned, then recent entries, from the index.
    pub async fn featured(self: &Arc<Self>, guild: &GuildStore, limit: usize) -> Result<Vec<Listed>, FaqError> {
        let index = self.index(guild).await?;
        Ok(read(&index).featured(limit))
    }

    /// Adds an entry and puts it in the guild's index.
    pub async fn add(&self, guild: &GuildStore, input: &EntryInput, actor: u64) -> Result<FaqEntry, FaqError> {
        let entry = self.repo.add(guild, input, actor).await?;
        self.indexes.apply(guild.id(), &entry);
        Ok(entry)
    }

    /// Replaces entry `id`'s question, answer, tags and pin.
    pub async fn update(
        &self,
        guild: &GuildStore,
        id: u64,
        input: &EntryInput,
        actor: u64,
    ) -> Result<FaqEntry, FaqError> {
        let entry = self.repo.update(guild, id, input, actor).await?;
        self.indexes.apply(guild.id(), &entry);
        Ok(entry)
    }

    /// Removes entry `id` (kept as deleted for the change feed).
    pub async fn remove(&self, guild: &GuildStore, id: u64, actor: u64) -> Result<FaqEntry, FaqError> {
        let entry = self.repo.remove(guild, id, actor).await?;
        self.indexes.apply(guild.id(), &entry);
        Ok(entry)
    }

    /// Imports a CSV file (see [`crate::csvio`]); the guild's index is rebuilt afterwards.
    pub async fn import(&self, guild: &GuildStore, bytes: &[u8], actor: u64) -> Result<ImportReport, FaqError> {
        let report = crate::csvio::import_csv(&self.repo, guild, bytes, actor).await;
        // Rebuild rather than patch: an import may touch thousands of entries.
        self.indexes.invalidate(guild.id());
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, question: &str) -> FaqEntry {
        FaqEntry {
            guild_id: 1,
            id,
            question: question.into(),
            answer: "answer".into(),
            tags: Vec::new(),
            pinned: false,
            created_by: 1,
            updated_by: 1,
            created_at: 0,
            updated_at: 0,
            views: 0,
            deleted_at: None,
        }
    }

    #[test]
    fn changes_reach_loaded_indexes_and_bump_the_generation() {
        let indexes = Indexes::default();
        indexes.apply(1, &entry(1, "not loaded yet"));
        assert!(indexes.loaded(1).is_none());
        indexes.slots().get_mut(&1).expect("slot").index = Some(Arc::new(RwLock::new(FaqIndex::default())));
        indexes.apply(1, &entry(2, "refund policy"));
        let (index, _) = indexes.loaded(1).expect("loaded");
        assert_eq!(read(&index).search("refund", 5)[0].id, 2);
        assert_eq!(indexes.slots()[&1].generation, 2);
        indexes.invalidate(1);
        assert!(indexes.loaded(1).is_none());
    }
}
