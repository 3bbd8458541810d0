//! [`GuildStore`]: everything owned by one guild, with the guild id bound into every query.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::error::StoreError;
use crate::now_ms;
use crate::store::{Store, json_column};

/// Longest accepted setting key; keys are `module.name` style identifiers, not user text.
const MAX_SETTING_KEY_LEN: usize = 128;

/// A guild the bot knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildRecord {
    /// Guild snowflake.
    pub id: u64,
    /// Last known guild name.
    pub name: String,
    /// Last known owner.
    pub owner_id: Option<u64>,
    /// When the bot (last) joined, unix ms.
    pub joined_at: i64,
    /// When the bot left, unix ms; `None` while it is in the guild.
    pub left_at: Option<i64>,
}

/// Result of [`GuildStore::upsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildUpsert {
    /// The record after the upsert.
    pub record: GuildRecord,
    /// The guild had never been seen before.
    pub created: bool,
    /// The guild was marked left and is now back (its `joined_at` is reset).
    pub rejoined: bool,
    /// The owner became the first authorized user ([`GuildStore::register`] of a new guild).
    pub owner_granted: bool,
}

/// A user granted delegated access in a guild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedUser {
    /// The authorized user.
    pub user_id: u64,
    /// Who granted it, if known (`None` for the automatic owner grant).
    pub granted_by: Option<u64>,
    /// When, unix ms.
    pub granted_at: i64,
}

/// Outcome of a setting write ([`GuildStore::set_setting`], [`GuildStore::revert_setting`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChange {
    /// Id of the audit row recording the change.
    pub audit_id: i64,
    /// Setting key.
    pub key: String,
    /// Override before the change (`None` = default was in effect).
    pub old: Option<Value>,
    /// Override after the change (`None` = reset to default).
    pub new: Option<Value>,
}

/// One entry of a guild's setting audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingAudit {
    /// Audit row id (increasing).
    pub id: i64,
    /// Setting key.
    pub key: String,
    /// Override before (`None` = default).
    pub old: Option<Value>,
    /// Override after (`None` = default).
    pub new: Option<Value>,
    /// Who made the change.
    pub actor_id: u64,
    /// When, unix ms.
    pub at: i64,
    /// Set when this change reverted an earlier audit entry.
    pub reverted_audit_id: Option<i64>,
}

/// One guild's view of the store. Every query binds this guild's id, so data of other guilds
/// cannot be read or changed through it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GuildStore {
    store: Store,
    guild_id: u64,
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.map(|x| x as u64)
}

fn audit_from_row(row: &AnyRow) -> Result<SettingAudit, StoreError> {
    Ok(SettingAudit {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        old: json_column(row, "old_value")?,
        new: json_column(row, "new_value")?,
        actor_id: row.try_get::<i64, _>("actor_id")? as u64,
        at: row.try_get("at")?,
        reverted_audit_id: row.try_get("reverted_audit_id")?,
    })
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_SETTING_KEY_LEN {
        return Err(StoreError::Invalid(format!("setting key must be 1..={MAX_SETTING_KEY_LEN} bytes")));
    }
    Ok(())
}

impl GuildStore {
    pub(crate) fn new(store: Store, guild_id: u64) -> GuildStore {
        GuildStore { store, guild_id }
    }

    /// The guild id every query of this scope is bound to.
    pub fn id(&self) -> u64 {
        self.guild_id
    }

    /// The guild id as stored in SQL (`BIGINT`), for binding in module repositories.
    pub fn sql_id(&self) -> i64 {
        self.guild_id as i64
    }

    /// The store this scope belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records that the bot is in this guild (join, or a GUILD_CREATE after restart): creates the
    /// record, or updates name/owner and clears `left_at`. Registrations waiting at the same
    /// time share one transaction (see [`crate::registrar`]).
    pub async fn upsert(&self, name: &str, owner_id: Option<u64>) -> Result<GuildUpsert, StoreError> {
        self.write_registration(name, owner_id, false).await
    }

    /// [`GuildStore::upsert`], and when the guild is new, its owner becomes the first authorized
    /// user in the same transaction ([`GuildUpsert::owner_granted`]).
    pub async fn register(&self, name: &str, owner_id: Option<u64>) -> Result<GuildUpsert, StoreError> {
        self.write_registration(name, owner_id, true).await
    }

    async fn write_registration(
        &self,
        name: &str,
        owner_id: Option<u64>,
        grant_owner: bool,
    ) -> Result<GuildUpsert, StoreError> {
        let registration =
            crate::registrar::Registration { guild_id: self.guild_id, name: name.to_owned(), owner_id, grant_owner };
        self.store.register_guild(registration).await
    }

    /// The guild's record, if the bot has ever been in it (and it was not purged).
    pub async fn get(&self) -> Result<Option<GuildRecord>, StoreError> {
        let row = sqlx::query("SELECT guild_id, name, owner_id, joined_at, left_at FROM guilds WHERE guild_id = $1")
            .bind(self.sql_id())
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    /// Marks the guild as left (data is kept until [`Store::purge_left_guilds`]). Keeps the first
    /// `left_at` if called twice. `NotFound` if the guild was never recorded.
    pub async fn mark_left(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let updated =
            sqlx::query("UPDATE guilds SET left_at = COALESCE(left_at, $2), updated_at = $2 WHERE guild_id = $1")
                .bind(self.sql_id())
                .bind(now)
                .execute(self.store.pool())
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("guild {}", self.guild_id)));
        }
        self.store.notify_changed(self.guild_id).await;
        Ok(())
    }

    /// Grants delegated access; `true` if the user was not authorized before.
    pub async fn grant(&self, user_id: u64, granted_by: Option<u64>) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO authorized_users (guild_id, user_id, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id, user_id) DO NOTHING",
        )
        .bind(self.sql_id())
        .bind(user_id as i64)
        .bind(granted_by.map(|g| g as i64))
        .bind(now_ms())
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if inserted == 1 {
            self.store.notify_changed(self.guild_id).await;
        }
        Ok(inserted == 1)
    }

    /// Revokes delegated access; `true` if the user was authorized.
    pub async fn revoke(&self, user_id: u64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM authorized_users WHERE guild_id = $1 AND user_id = $2")
            .bind(self.sql_id())
            .bind(user_id as i64)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        if deleted > 0 {
            self.store.notify_changed(self.guild_id).await;
        }
        Ok(deleted > 0)
    }

    /// Whether the user holds delegated access in this guild.
    pub async fn is_authorized(&self, user_id: u64) -> Result<bool, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM authorized_users WHERE guild_id = $1 AND user_id = $2")
                .bind(self.sql_id())
                .bind(user_id as i64)
                .fetch_one(self.store.pool())
                .await?;
        Ok(count > 0)
    }

    /// All delegated users, oldest grant first.
    pub async fn authorized_users(&self) -> Result<Vec<AuthorizedUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, granted_by, granted_at FROM authorized_users \
             WHERE guild_id = $1 ORDER BY granted_at, user_id",
        )
        .bind(self.sql_id())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuthorizedUser {
                    user_id: r.try_get::<i64, _>("user_id")? as u64,
                    granted_by: opt_u64(r.try_get("granted_by")?),
                    granted_at: r.try_get("granted_at")?,
                })
            })
            .collect()
    }

    /// The guild's override for `key` (`None` = default applies).
    pub async fn setting(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT value FROM guild_settings WHERE guild_id = $1 AND key = $2")
            .bind(self.sql_id())
            .bind(key)
            .fetch_optional(self.store.pool())
            .await?;
        match row {
            Some(r) => json_column(&r, "value"),
            None => Ok(None),
        }
    }

    /// All overrides of this guild, sorted by key.
    pub async fn settings(&self) -> Result<Vec<(String, Value)>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM guild_settings WHERE guild_id = $1 ORDER BY key")
            .bind(self.sql_id())
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("key")?;
                let value =
                    json_column(r, "value")?.ok_or_else(|| StoreError::Corrupt(format!("setting {key} is NULL")))?;
                Ok((key, value))
            })
            .collect()
    }

    /// Sets (`Some`) or resets to default (`None`) a setting override. Reading the old value,
    /// writing and recording the audit row happen in one transaction.
    pub async fn set_setting(
        &self,
        key: &str,
        value: Option<&Value>,
        actor_id: u64,
    ) -> Result<SettingChange, StoreError> {
        check_key(key)?;
        let mut tx = self.store.begin_write().await?;
        let change = self.write_setting(&mut tx, key, value.cloned(), actor_id, None).await?;
        crate::changes::insert_notice(&mut *tx, self.guild_id, self.store.origin()).await?;
        tx.commit().await?;
        self.store.bump_generation(self.guild_id);
        Ok(change)
    }

    async fn write_setting(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: &str,
        new: Option<Value>,
        actor_id: u64,
        reverts: Option<i64>,
    ) -> Result<SettingChange, StoreError> {
        let now = now_ms();
        let old_row = sqlx::query("SELECT value FROM guild_settings WHERE guild_id = $1 AND key = $2")
            .bind(self.sql_id())
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        let old = match &old_row {
            Some(r) => json_column(r, "value")?,
            None => None,
        };
        let new_text = new.as_ref().map(Value::to_string);
        match &new_text {
            Some(text) => {
                sqlx::query(
                    "INSERT INTO guild_settings (guild_id, key, value, updated_by, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, key) DO UPDATE SET \
                     value = excluded.value, updated_by = excluded.updated_by, \
                     updated_at = excluded.updated_at",
                )
                .bind(self.sql_id())
                .bind(key)
                .bind(text.as_str())
                .bind(actor_id as i64)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM guild_settings WHERE guild_id = $1 AND key = $2")
                    .bind(self.sql_id())
                    .bind(key)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        let old_text = old.as_ref().map(Value::to_string);
        let audit_id: i64 = sqlx::query_scalar(
            "INSERT INTO setting_audit (guild_id, key, old_value, new_value, actor_id, at, reverted_audit_id, origin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(self.sql_id())
        .bind(key)
        .bind(old_text)
        .bind(new_text)
        .bind(actor_id as i64)
        .bind(now)
        .bind(reverts)
        .bind(self.store.origin())
        .fetch_one(&mut **tx)
        .await?;
        Ok(SettingChange { audit_id, key: key.to_owned(), old, new })
    }

    /// Audit trail of this guild, newest first, optionally for one key; at most `limit` entries.
    pub async fn setting_audit(&self, key: Option<&str>, limit: i64) -> Result<Vec<SettingAudit>, StoreError> {
        let limit = limit.max(0);
        let rows = match key {
            Some(key) => {
                sqlx::query(
                    "SELECT id, key, old_value, new_value, actor_id, at, reverted_audit_id \
                     FROM setting_audit WHERE guild_id = $1 AND key = $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(self.sql_id())
                .bind(key)
                .bind(limit)
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, key, old_value, new_value, actor_id, at, reverted_audit_id \
                     FROM setting_audit WHERE guild_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(self.sql_id())
                .bind(limit)
                .fetch_all(self.store.pool())
                .await?
            }
        };
        rows.iter().map(audit_from_row).collect()
    }

    /// Sets the key of audit entry `audit_id` back to that entry's `old` value, recorded as a new
    /// audit row pointing at the reverted one. An id from another guild is `NotFound`.
    pub async fn revert_setting(&self, audit_id: i64, actor_id: u64) -> Result<SettingChange, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "SELECT id, key, old_value, new_value, actor_id, at, reverted_audit_id \
             FROM setting_audit WHERE guild_id = $1 AND id = $2",
        )
        .bind(self.sql_id())
        .bind(audit_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("setting audit entry {audit_id}")))?;
        let entry = audit_from_row(&row)?;
        let change = self.write_setting(&mut tx, &entry.key, entry.old, actor_id, Some(audit_id)).await?;
        crate::changes::insert_notice(&mut *tx, self.guild_id, self.store.origin()).await?;
        tx.commit().await?;
        self.store.bump_generation(self.guild_id);
        Ok(change)
    }

    /// Per-guild module switch; `None` when never set (the module's default applies).
    pub async fn module_enabled(&self, module: &str) -> Result<Option<bool>, StoreError> {
        let enabled: Option<i64> =
            sqlx::query_scalar("SELECT enabled FROM guild_modules WHERE guild_id = $1 AND module = $2")
                .bind(self.sql_id())
                .bind(module)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(enabled.map(|e| e != 0))
    }

    /// Enables or disables a module for this guild.
    pub async fn set_module_enabled(&self, module: &str, enabled: bool, actor_id: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO guild_modules (guild_id, module, enabled, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, module) DO UPDATE SET \
             enabled = excluded.enabled, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(self.sql_id())
        .bind(module)
        .bind(i64::from(enabled))
        .bind(actor_id as i64)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        self.store.notify_changed(self.guild_id).await;
        Ok(())
    }

    /// All explicit module switches of this guild, sorted by module name.
    pub async fn module_states(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let rows = sqlx::query("SELECT module, enabled FROM guild_modules WHERE guild_id = $1 ORDER BY module")
            .bind(self.sql_id())
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("module")?, r.try_get::<i64, _>("enabled")? != 0))).collect()
    }
}

pub(crate) fn record_from_row(row: &AnyRow) -> Result<GuildRecord, StoreError> {
    Ok(GuildRecord {
        id: row.try_get::<i64, _>("guild_id")? as u64,
        name: row.try_get("name")?,
        owner_id: opt_u64(row.try_get("owner_id")?),
        joined_at: row.try_get("joined_at")?,
        left_at: row.try_get("left_at")?,
    })
}
