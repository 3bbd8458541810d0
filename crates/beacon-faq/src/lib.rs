//! Beacon's FAQ: per-guild question/answer entries that members search (with suggestions while
//! they type) and staff maintain, with CSV import/export, a search log that shows which questions
//! the FAQ does not answer yet, and a change feed for the knowledge base.
//!
//! - [`FaqModule`]: `/faq search|view|list` for everyone, `/faq add|edit|remove|import|export|gaps`
//!   for staff (`core.staff_roles`) and above. Add and edit open a form; remove asks to confirm.
//! - [`FaqRepo`]: the tables (`faq_entries`, `faq_counters`, `faq_search_log`; every row carries
//!   `guild_id`) and the change channel. The knowledge base reads entries with
//!   [`FaqRepo::entries_since`] and re-indexes on [`FaqChanged`].
//! - [`FaqIndex`]: the in-process search index of one guild (BM25 over question, tags and answer,
//!   prefix matching for the word being typed, typo tolerance). Derived from the database and
//!   rebuilt from it at will.
//! - [`csvio`]: CSV export and import.
//!
//! ```no_run
//! # async fn demo(store: beacon_store::Store) -> Result<(), beacon_faq::FaqError> {
//! let faq = beacon_faq::FaqModule::new();
//! let mut changes = faq.subscribe(); // every add, edit, removal and import
//! // … the app builder takes `faq`; the knowledge base follows it through its `GuildSource` port.
//!
//! let repo = beacon_faq::FaqRepo::new(store.clone());
//! let mut last_seen_ms = 0;
//! while let Ok(change) = changes.recv().await {
//!     let guild = store.guild(change.guild_id);
//!     for entry in repo.entries_since(&guild, last_seen_ms).await? {
//!         // re-index entry (or drop it when entry.deleted_at is set)
//!         last_seen_ms = last_seen_ms.max(entry.updated_at);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod api;
pub mod csvio;
mod download;
mod error;
pub mod index;
mod model;
mod module;
mod privacy;
mod repo;
mod service;
mod source;

pub use csvio::{CsvRow, export_csv, import_csv, parse_csv, write_csv};
pub use download::{MAX_IMPORT_BYTES, download};
pub use error::FaqError;
pub use index::{FaqIndex, Hit, Listed, normalize_term, tokenize};
pub use model::{
    ChangeKind, EntryInput, FaqChanged, FaqEntry, Gap, ImportReport, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS,
    MAX_TAG_CHARS, MAX_TAGS, split_tags,
};
pub use module::{FaqModule, parse_entry_ref};
pub use repo::{FaqRepo, Feeds, SCHEMA};
pub use service::FaqService;
pub use source::{FAQ_SOURCE_ID, FaqSource, faq_document};
