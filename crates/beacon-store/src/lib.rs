//! Beacon's storage layer: one query path over `sqlx::AnyPool` for SQLite (embedded default,
//! WAL) and PostgreSQL (scale-out).
//!
//! Guild-owned data is only reachable through [`Store::guild`], which returns a [`GuildStore`]
//! that binds the guild id into every query, so a query cannot mix guilds by accident.
//!
//! ```no_run
//! # async fn demo() -> Result<(), beacon_store::StoreError> {
//! use beacon_store::Store;
//!
//! let store = Store::connect("sqlite://data/beacon.db").await?;
//! store.migrate().await?;
//!
//! let guild = store.guild(81384788765712384);
//! // Records the guild, and on its first sight makes the owner its first authorized user.
//! let joined = guild.register("Beacon HQ", Some(80351110224678912)).await?;
//! assert_eq!(joined.owner_granted, joined.created);
//! let change = guild
//!     .set_setting("tickets.channel", Some(&serde_json::json!("123")), 80351110224678912)
//!     .await?;
//! guild.revert_setting(change.audit_id, 80351110224678912).await?;
//!
//! // Idempotency across processes sharing the database.
//! if store.claim_once("interaction", 1234567890).await? {
//!     // handle it exactly once
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Feature tables: declare a [`Schema`] (migrations as SQL files read with [`migration!`], and
//! every table with a `guild_id` column), apply it with [`Store::migrate_schema`] (the framework
//! does this for each module), and query through [`Store::pool`] binding [`GuildStore::sql_id`].
//! [`Store::purge_guild`] then removes a guild's rows from every declared table.

mod activity;
mod changes;
mod claims;
mod error;
mod guild;
mod member;
mod registrar;
mod schema;
mod store;

pub use activity::{CommandCount, ErrorRecord, Outcome};
pub use changes::{Generation, OVERLAP_MS, POLL_EVERY, SettingChangeElsewhere};
pub use error::{StoreError, redact_url};
pub use guild::{AuthorizedUser, GuildRecord, GuildStore, GuildUpsert, SettingAudit, SettingChange};
pub use schema::{Migration, Schema};
pub use store::{Backend, CORE, Store, StoreOptions};

/// Current time as unix milliseconds (the store's timestamp unit).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
