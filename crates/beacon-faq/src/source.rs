//! The FAQ as a knowledge-base source: the module provides it as a port
//! (`dyn beacon_kb::GuildSource`), so support answers see FAQ entries without the two features
//! knowing each other.
//!
//! Each live entry is one document: the question as title and heading, the answer as text, keyed
//! `faq:{number}`. Removed entries are no longer listed, so a sync deletes them.

use beacon_kb::source::{BoxFuture, SourceDocument};
use beacon_kb::{GuildSource, KbError};
use beacon_store::GuildStore;
use tokio::sync::broadcast;

use crate::model::FaqEntry;
use crate::repo::{FaqRepo, Feeds};

/// The source id FAQ documents are stored under (a `/kb` source may not take it).
pub const FAQ_SOURCE_ID: &str = "faq";

/// Every guild's live FAQ entries, following the FAQ's changes.
pub struct FaqSource {
    feeds: Feeds,
}

impl FaqSource {
    /// The source over the entries of the repositories announcing on `feeds`.
    pub fn new(feeds: Feeds) -> FaqSource {
        FaqSource { feeds }
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

impl GuildSource for FaqSource {
    fn id(&self) -> &'static str {
        FAQ_SOURCE_ID
    }

    fn documents(&self, guild: GuildStore) -> BoxFuture<'_, beacon_kb::Result<Vec<SourceDocument>>> {
        Box::pin(async move {
            let repo = FaqRepo::with_feeds(guild.store().clone(), self.feeds.clone());
            let entries = repo
                .all(&guild)
                .await
                .map_err(|e| KbError::Feed { source_name: FAQ_SOURCE_ID.to_owned(), source: Box::new(e) })?;
            Ok(entries.iter().filter(|e| e.deleted_at.is_none()).map(faq_document).collect())
        })
    }

    fn changes(&self) -> broadcast::Receiver<u64> {
        self.feeds.subscribe_guilds()
    }
}
