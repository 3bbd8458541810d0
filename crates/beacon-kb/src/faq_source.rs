//! A guild's FAQ entries as a knowledge source.
//!
//! Each live entry is one document: the question as title and heading, the answer as text, keyed
//! `faq:{number}`. Removed entries are no longer listed, so a sync deletes them. Sync again after
//! each [`beacon_faq::FaqChanged`] to keep the knowledge base current — [`follow_faq_changes`]
//! does that.

use std::collections::BTreeSet;

use beacon_faq::{FaqChanged, FaqEntry, FaqRepo};
use beacon_store::{GuildStore, Store};
use tokio::sync::broadcast;

use crate::ingest::KnowledgeBase;

use crate::error::{KbError, Result};
use crate::source::{BoxFuture, Source, SourceDocument};

/// The source id FAQ documents are stored under unless another is given.
pub const FAQ_SOURCE_ID: &str = "faq";

/// The live FAQ entries of one guild.
#[derive(Clone)]
pub struct FaqSource {
    id: String,
    repo: FaqRepo,
    guild: GuildStore,
}

impl std::fmt::Debug for FaqSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaqSource").field("id", &self.id).field("guild_id", &self.guild.id()).finish()
    }
}

impl FaqSource {
    /// The FAQ of `guild`, identified as [`FAQ_SOURCE_ID`].
    pub fn new(repo: FaqRepo, guild: GuildStore) -> Self {
        Self::with_id(repo, guild, FAQ_SOURCE_ID)
    }

    /// The same with an explicit source id.
    pub fn with_id(repo: FaqRepo, guild: GuildStore, id: impl Into<String>) -> Self {
        FaqSource { id: id.into(), repo, guild }
    }
}

/// One entry as a document.
pub fn faq_document(entry: &FaqEntry) -> SourceDocument {
    let mut text = format!("# {}\n\n{}\n", entry.question.trim(), entry.answer.trim());
    if !entry.tags.is_empty() {
        text.push_str(&format!("\nTags: {}\n", entry.tags.join(", ")));
    }
    SourceDocument { key: format!("faq:{}", entry.id), title: entry.question.clone(), text, url: None }
}

impl Source for FaqSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        Box::pin(async move {
            let entries = self
                .repo
                .all(&self.guild)
                .await
                .map_err(|source| KbError::Faq { source_name: self.id.clone(), source })?;
            Ok(entries.iter().filter(|e| e.deleted_at.is_none()).map(faq_document).collect())
        })
    }
}

/// Re-syncs a guild's FAQ source (id [`FAQ_SOURCE_ID`]) after each change announced on
/// `changes` (subscribe before the first change that must be seen), until `shutdown` resolves or
/// the channel closes. After falling behind it re-syncs every guild it has seen change. Failures
/// are logged; the next change retries.
pub async fn follow_faq_changes(
    kb: &KnowledgeBase,
    repo: &FaqRepo,
    store: &Store,
    mut changes: broadcast::Receiver<FaqChanged>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut seen = BTreeSet::new();
    loop {
        let guilds: Vec<u64> = tokio::select! {
            _ = &mut shutdown => return,
            msg = changes.recv() => match msg {
                Ok(change) => {
                    seen.insert(change.guild_id);
                    vec![change.guild_id]
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "FAQ change feed lagged; re-syncing known guilds");
                    seen.iter().copied().collect()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        for guild_id in guilds {
            let source = FaqSource::new(repo.clone(), store.guild(guild_id));
            if let Err(e) = kb.sync(guild_id, &source, &mut |_| {}).await {
                tracing::warn!(guild_id, error = %e, "syncing the FAQ into the knowledge base failed");
            }
        }
    }
}
