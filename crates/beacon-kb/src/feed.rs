//! Sources that other crates register for every guild (the FAQ is one): the knowledge base
//! syncs a guild's documents from such a source whenever the source says that guild changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use beacon_store::GuildStore;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::ingest::KnowledgeBase;
use crate::source::{BoxFuture, Source, SourceDocument};

/// A source present in every guild, fed by another part of the application. Its documents
/// are stored under [`GuildSource::id`], which `/kb` source names may not take.
pub trait GuildSource: Send + Sync {
    /// Stable id, stored on each document (e.g. `faq`).
    fn id(&self) -> &'static str;
    /// Every document the source holds for `guild` now.
    fn documents(&self, guild: GuildStore) -> BoxFuture<'_, Result<Vec<SourceDocument>>>;
    /// Guild ids whose documents changed, announced after each change (subscribe before the
    /// first change that must be seen).
    fn changes(&self) -> broadcast::Receiver<u64>;
}

/// One guild's view of a [`GuildSource`], as the sync takes it.
struct OneGuild<'a> {
    source: &'a dyn GuildSource,
    guild: GuildStore,
}

impl Source for OneGuild<'_> {
    fn id(&self) -> &str {
        self.source.id()
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        self.source.documents(self.guild.clone())
    }
}

impl KnowledgeBase {
    /// Syncs `guild_id`'s documents of `source` now.
    pub async fn sync_guild_source(&self, guild_id: u64, source: &dyn GuildSource) -> Result<crate::SyncReport> {
        let one = OneGuild { source, guild: self.store().guild(guild_id) };
        self.sync(guild_id, &one, &mut |_| {}).await
    }

    /// Re-syncs a guild's documents of `source` after each change it announces, until the
    /// channel closes (or the future is dropped). After falling behind it re-syncs every guild
    /// it has seen change. Failures are logged; the next change retries.
    pub async fn follow(&self, source: Arc<dyn GuildSource>) {
        let mut changes = source.changes();
        let mut seen = BTreeSet::new();
        loop {
            let guilds: Vec<u64> = match changes.recv().await {
                Ok(guild_id) => {
                    seen.insert(guild_id);
                    vec![guild_id]
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, source = source.id(), "change feed lagged; re-syncing known guilds");
                    seen.iter().copied().collect()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            for guild_id in guilds {
                if let Err(e) = self.sync_guild_source(guild_id, source.as_ref()).await {
                    tracing::warn!(guild_id, source = source.id(), error = %e, "syncing into the knowledge base failed");
                }
            }
        }
    }
}
