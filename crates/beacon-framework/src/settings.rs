//! Typed per-guild settings: declared by modules, stored as JSON overrides in the database,
//! validated with messages a server admin can act on, audited and revertible, and announced to
//! listeners when they change so modules react without a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beacon_store::{GuildStore, SettingAudit, SettingChange, SettingChangeElsewhere, StoreError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::command::parse_mention;
use crate::guild_cache::GuildCache;

/// The type of a setting, with its bounds. Values are JSON: ids as strings (like Discord),
/// durations as whole seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingKind {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A duration in `min..=max` (stored as whole seconds, typed as `15m`).
    Duration {
        /// Shortest duration.
        min: Duration,
        /// Longest duration.
        max: Duration,
    },
    /// Free text of at most `max_len` characters.
    String {
        /// Longest text.
        max_len: usize,
    },
    /// One of these words.
    Enum(&'static [&'static str]),
    /// One of these values, decided when the process starts (e.g. the models the operator
    /// allows), or empty for the setting's default. Case is kept.
    OneOf(Vec<String>),
    /// A channel id.
    Channel,
    /// A role id.
    Role,
    /// A list of values of one kind.
    List {
        /// The kind of each item.
        of: Box<SettingKind>,
        /// Most items.
        max_items: usize,
    },
}

impl SettingKind {
    /// A list of up to `max_items` values of kind `of`.
    pub fn list(of: SettingKind, max_items: usize) -> SettingKind {
        SettingKind::List { of: Box::new(of), max_items }
    }

    /// A short name for help texts and the dashboard schema.
    pub fn type_name(&self) -> String {
        match self {
            SettingKind::Bool => "bool".into(),
            SettingKind::Int { .. } => "int".into(),
            SettingKind::Duration { .. } => "duration".into(),
            SettingKind::String { .. } => "string".into(),
            SettingKind::Enum(_) | SettingKind::OneOf(_) => "enum".into(),
            SettingKind::Channel => "channel".into(),
            SettingKind::Role => "role".into(),
            SettingKind::List { of, .. } => format!("list of {}", of.type_name()),
        }
    }

    /// Parses what an admin typed in `/config set` into the stored JSON value.
    pub fn parse_input(&self, input: &str) -> Result<Value, String> {
        let t = input.trim();
        let value = match self {
            SettingKind::Bool => match t.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "enabled" | "1" => json!(true),
                "false" | "off" | "no" | "disabled" | "0" => json!(false),
                _ => return Err("expected true or false (also on/off, yes/no)".into()),
            },
            SettingKind::Int { .. } => {
                json!(t.parse::<i64>().map_err(|_| format!("`{t}` is not a whole number"))?)
            }
            SettingKind::Duration { .. } => {
                let d = humantime::parse_duration(t)
                    .map_err(|_| format!("`{t}` is not a duration; write e.g. 30s, 15m, 2h, 1d"))?;
                json!(d.as_secs())
            }
            SettingKind::String { .. } | SettingKind::OneOf(_) => json!(t),
            SettingKind::Enum(_) => json!(t.to_ascii_lowercase()),
            SettingKind::Channel => json!(
                parse_mention(t, "#")
                    .ok_or_else(|| format!("`{t}` is not a channel; pick one or write #channel"))?
                    .to_string()
            ),
            SettingKind::Role => json!(
                parse_mention(t, "@&")
                    .ok_or_else(|| format!("`{t}` is not a role; pick one or write @role"))?
                    .to_string()
            ),
            SettingKind::List { of, .. } => {
                let items: Result<Vec<Value>, String> =
                    t.split([',', ' ']).filter(|s| !s.trim().is_empty()).map(|s| of.parse_input(s)).collect();
                Value::Array(items?)
            }
        };
        self.validate(&value)?;
        Ok(value)
    }

    /// Checks a JSON value (from `/config set` or the dashboard) against the type and bounds.
    pub fn validate(&self, value: &Value) -> Result<(), String> {
        match (self, value) {
            (SettingKind::Bool, Value::Bool(_)) => Ok(()),
            (SettingKind::Int { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(v) if (*min..=*max).contains(&v) => Ok(()),
                _ => Err(format!("must be a whole number from {min} to {max}")),
            },
            (SettingKind::Duration { min, max }, Value::Number(n)) => match n.as_u64() {
                Some(v) if (min.as_secs()..=max.as_secs()).contains(&v) => Ok(()),
                _ => Err(format!(
                    "must be between {} and {}",
                    humantime::format_duration(*min),
                    humantime::format_duration(*max)
                )),
            },
            (SettingKind::String { max_len }, Value::String(s)) => {
                if s.chars().count() <= *max_len {
                    Ok(())
                } else {
                    Err(format!("must be at most {max_len} characters"))
                }
            }
            (SettingKind::Enum(options), Value::String(s)) => {
                if options.contains(&s.as_str()) {
                    Ok(())
                } else {
                    Err(format!("must be one of: {}", options.join(", ")))
                }
            }
            (SettingKind::OneOf(options), Value::String(s)) => {
                if s.is_empty() || options.contains(s) {
                    Ok(())
                } else if options.is_empty() {
                    Err("cannot be changed on this deployment (the operator allows no other value)".into())
                } else {
                    Err(format!("must be one of: {}", options.join(", ")))
                }
            }
            (SettingKind::Channel | SettingKind::Role, Value::String(s)) => match s.parse::<u64>() {
                Ok(id) if id > 0 => Ok(()),
                _ => Err("must be a Discord id".into()),
            },
            (SettingKind::List { of, max_items }, Value::Array(items)) => {
                if items.len() > *max_items {
                    return Err(format!("can hold at most {max_items} items"));
                }
                items.iter().try_for_each(|v| of.validate(v))
            }
            _ => Err(format!("must be a {}", self.type_name())),
        }
    }

    /// Shows a value the way Discord renders it (channels and roles as mentions).
    pub fn display(&self, value: &Value) -> String {
        match (self, value) {
            (SettingKind::Channel, Value::String(id)) => format!("<#{id}>"),
            (SettingKind::Role, Value::String(id)) => format!("<@&{id}>"),
            (SettingKind::Duration { .. }, Value::Number(n)) => {
                humantime::format_duration(Duration::from_secs(n.as_u64().unwrap_or(0))).to_string()
            }
            (SettingKind::List { of, .. }, Value::Array(items)) => {
                if items.is_empty() {
                    "(none)".into()
                } else {
                    items.iter().map(|v| of.display(v)).collect::<Vec<_>>().join(", ")
                }
            }
            (_, Value::String(s)) if s.is_empty() => "(empty)".into(),
            (_, Value::String(s)) => s.clone(),
            (_, Value::Null) => "(not set)".into(),
            (_, v) => v.to_string(),
        }
    }
}

/// One setting a module declares. Keys are `module.name`.
#[derive(Debug, Clone)]
pub struct SettingSpec {
    /// `module.name`, unique across modules.
    pub key: &'static str,
    /// Type and bounds.
    pub kind: SettingKind,
    /// Value when the guild has no override (must validate).
    pub default: Value,
    /// What it does, shown by `/config show`.
    pub description: &'static str,
}

impl SettingSpec {
    /// A setting declaration.
    pub fn new(key: &'static str, kind: SettingKind, default: Value, description: &'static str) -> SettingSpec {
        SettingSpec { key, kind, default, description }
    }
}

/// A change, announced to listeners after it is stored.
#[derive(Debug, Clone)]
pub struct SettingChanged {
    /// The guild whose setting changed.
    pub guild_id: u64,
    /// The setting's key.
    pub key: String,
    /// The value before (the default when there was no override).
    pub old: Value,
    /// The value now.
    pub new: Value,
    /// Who changed it (user id).
    pub actor_id: u64,
}

/// A setting's effective value in one guild.
#[derive(Debug, Clone)]
pub struct SettingView {
    /// The declaration.
    pub spec: SettingSpec,
    /// The value in effect.
    pub value: Value,
    /// Whether the guild overrides the default.
    pub overridden: bool,
}

/// Why a setting could not be read or changed; all but `Store` are meant for the member.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// No module declares this key.
    #[error("There is no setting called `{0}`. Use /config show to see them all.")]
    UnknownKey(String),
    /// The value breaks the setting's rules.
    #[error("`{key}` {reason}.")]
    Invalid {
        /// The setting.
        key: String,
        /// The rule the value breaks.
        reason: String,
    },
    /// The audit entry to revert does not exist in this guild.
    #[error("There is no change #{0} in this server's settings history.")]
    UnknownAudit(i64),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SettingError {
    fn from(e: StoreError) -> Self {
        SettingError::Store(e)
    }
}

/// How long a guild's overrides may be served from memory at most. Changes are seen sooner:
/// at once when made in this process, within [`beacon_store::POLL_EVERY`] when made in another
/// process sharing the database (see [`GuildCache`]).
pub const SNAPSHOT_TTL: Duration = crate::guild_cache::MAX_AGE;

/// A guild's overrides. One query loads all of them, so a support answer that reads a dozen
/// settings costs no database round-trip while the guild's settings are unchanged.
type Overrides = BTreeMap<String, Value>;

/// The registry of every declared setting and the entry point for reading and changing them.
pub struct SettingsService {
    specs: BTreeMap<&'static str, SettingSpec>,
    changes: broadcast::Sender<SettingChanged>,
    snapshots: GuildCache<Overrides>,
}

impl SettingsService {
    /// The settings service over every module's declarations.
    pub fn new(specs: impl IntoIterator<Item = SettingSpec>) -> SettingsService {
        SettingsService::with_ttl(specs, SNAPSHOT_TTL)
    }

    /// A service whose snapshots live for `ttl` (zero: every read goes to the database).
    pub fn with_ttl(specs: impl IntoIterator<Item = SettingSpec>, ttl: Duration) -> SettingsService {
        let (changes, _) = broadcast::channel(256);
        SettingsService {
            specs: specs.into_iter().map(|s| (s.key, s)).collect(),
            changes,
            snapshots: GuildCache::new(ttl),
        }
    }

    /// Drops the in-memory snapshot of a guild's settings (e.g. after its data was purged).
    pub fn invalidate(&self, guild_id: u64) {
        self.snapshots.invalidate(guild_id);
    }

    /// The guild's overrides, from the snapshot when it is fresh.
    async fn overrides(&self, guild: &GuildStore) -> Result<Arc<Overrides>, SettingError> {
        self.snapshots.get_or_load(guild, || async { Ok(guild.settings().await?.into_iter().collect()) }).await
    }

    /// The declaration of `key`.
    pub fn spec(&self, key: &str) -> Option<&SettingSpec> {
        self.specs.get(key)
    }

    /// Every declaration.
    pub fn specs(&self) -> impl Iterator<Item = &SettingSpec> {
        self.specs.values()
    }

    /// Listens for changes in every guild.
    pub fn subscribe(&self) -> broadcast::Receiver<SettingChanged> {
        self.changes.subscribe()
    }

    fn known(&self, key: &str) -> Result<&SettingSpec, SettingError> {
        self.specs.get(key).ok_or_else(|| SettingError::UnknownKey(key.to_owned()))
    }

    /// The effective value: the guild's override when it is still valid, else the default.
    pub async fn get(&self, guild: &GuildStore, key: &str) -> Result<Value, SettingError> {
        let spec = self.known(key)?;
        let overrides = self.overrides(guild).await?;
        Ok(match overrides.get(key) {
            // An override that no longer validates (bounds changed in an upgrade) falls back.
            Some(v) if spec.kind.validate(v).is_ok() => v.clone(),
            _ => spec.default.clone(),
        })
    }

    /// [`SettingsService::get`] of a bool setting (`false` if the value is not a bool).
    pub async fn get_bool(&self, guild: &GuildStore, key: &str) -> Result<bool, SettingError> {
        Ok(self.get(guild, key).await?.as_bool().unwrap_or(false))
    }

    /// [`SettingsService::get`] of an int setting (0 if the value is not an integer).
    pub async fn get_i64(&self, guild: &GuildStore, key: &str) -> Result<i64, SettingError> {
        Ok(self.get(guild, key).await?.as_i64().unwrap_or(0))
    }

    /// [`SettingsService::get`] of a duration setting (zero if the value is not seconds).
    pub async fn get_duration(&self, guild: &GuildStore, key: &str) -> Result<Duration, SettingError> {
        Ok(Duration::from_secs(self.get(guild, key).await?.as_u64().unwrap_or(0)))
    }

    /// [`SettingsService::get`] of a string, enum, channel or role setting (empty if not a string).
    pub async fn get_string(&self, guild: &GuildStore, key: &str) -> Result<String, SettingError> {
        Ok(self.get(guild, key).await?.as_str().unwrap_or_default().to_owned())
    }

    /// Ids of a channel, role, or list of them.
    pub async fn get_ids(&self, guild: &GuildStore, key: &str) -> Result<Vec<u64>, SettingError> {
        let v = self.get(guild, key).await?;
        let ids = match &v {
            Value::Array(items) => items.iter().filter_map(|i| i.as_str()?.parse().ok()).collect(),
            Value::String(s) => s.parse().ok().into_iter().collect(),
            _ => Vec::new(),
        };
        Ok(ids)
    }

    /// Every setting with its effective value, in key order.
    pub async fn all(&self, guild: &GuildStore) -> Result<Vec<SettingView>, SettingError> {
        let overrides = self.overrides(guild).await?;
        Ok(self
            .specs
            .values()
            .map(|spec| {
                let over = overrides.get(spec.key).filter(|v| spec.kind.validate(v).is_ok());
                SettingView {
                    spec: spec.clone(),
                    value: over.cloned().unwrap_or_else(|| spec.default.clone()),
                    overridden: over.is_some(),
                }
            })
            .collect())
    }

    /// Sets a value from what an admin typed.
    pub async fn set_from_input(
        &self,
        guild: &GuildStore,
        key: &str,
        input: &str,
        actor_id: u64,
    ) -> Result<SettingChange, SettingError> {
        let spec = self.known(key)?;
        let value =
            spec.kind.parse_input(input).map_err(|reason| SettingError::Invalid { key: key.to_owned(), reason })?;
        self.store_change(guild, spec, Some(&value), actor_id).await
    }

    /// Sets a JSON value (the dashboard's path).
    pub async fn set_value(
        &self,
        guild: &GuildStore,
        key: &str,
        value: &Value,
        actor_id: u64,
    ) -> Result<SettingChange, SettingError> {
        let spec = self.known(key)?;
        spec.kind.validate(value).map_err(|reason| SettingError::Invalid { key: key.to_owned(), reason })?;
        self.store_change(guild, spec, Some(value), actor_id).await
    }

    /// Removes the guild's override so the default applies again.
    pub async fn reset(&self, guild: &GuildStore, key: &str, actor_id: u64) -> Result<SettingChange, SettingError> {
        let spec = self.known(key)?;
        self.store_change(guild, spec, None, actor_id).await
    }

    /// Puts a setting back to what it was before the audited change `audit_id`.
    pub async fn revert(
        &self,
        guild: &GuildStore,
        audit_id: i64,
        actor_id: u64,
    ) -> Result<SettingChange, SettingError> {
        let result = guild.revert_setting(audit_id, actor_id).await;
        self.snapshots.invalidate(guild.id());
        let change = match result {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Err(SettingError::UnknownAudit(audit_id)),
            Err(e) => return Err(e.into()),
        };
        if let Some(spec) = self.specs.get(change.key.as_str()) {
            self.announce(guild.id(), spec, &change, actor_id);
        }
        Ok(change)
    }

    /// The guild's audited changes, newest first, of `key` or of every setting; at most `limit`.
    pub async fn history(
        &self,
        guild: &GuildStore,
        key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SettingAudit>, SettingError> {
        Ok(guild.setting_audit(key, limit).await?)
    }

    async fn store_change(
        &self,
        guild: &GuildStore,
        spec: &SettingSpec,
        value: Option<&Value>,
        actor_id: u64,
    ) -> Result<SettingChange, SettingError> {
        let result = guild.set_setting(spec.key, value, actor_id).await;
        // Dropped whatever the outcome: a failed write may still have committed.
        self.snapshots.invalidate(guild.id());
        let change = result?;
        self.announce(guild.id(), spec, &change, actor_id);
        Ok(change)
    }

    /// Announces a change another process made (read from the audit trail by the app's setting
    /// listener) to this process's listeners, after dropping the guild's snapshot so they read
    /// the new value. A key no module here declares is ignored.
    pub fn announce_elsewhere(&self, change: &SettingChangeElsewhere) {
        self.snapshots.invalidate(change.guild_id);
        let Some(spec) = self.specs.get(change.key.as_str()) else { return };
        let local = SettingChange {
            audit_id: change.audit_id,
            key: change.key.clone(),
            old: change.old.clone(),
            new: change.new.clone(),
        };
        self.announce(change.guild_id, spec, &local, change.actor_id);
    }

    fn announce(&self, guild_id: u64, spec: &SettingSpec, change: &SettingChange, actor_id: u64) {
        let event = SettingChanged {
            guild_id,
            key: change.key.clone(),
            old: change.old.clone().unwrap_or_else(|| spec.default.clone()),
            new: change.new.clone().unwrap_or_else(|| spec.default.clone()),
            actor_id,
        };
        // No subscribers is fine: nobody needs to react.
        let _ = self.changes.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates_each_kind() {
        assert_eq!(SettingKind::Bool.parse_input("On"), Ok(json!(true)));
        assert!(SettingKind::Bool.parse_input("maybe").is_err());
        let int = SettingKind::Int { min: 1, max: 10 };
        assert_eq!(int.parse_input("5"), Ok(json!(5)));
        assert!(int.parse_input("11").unwrap_err().contains("1 to 10"));
        let dur = SettingKind::Duration { min: Duration::from_secs(60), max: Duration::from_secs(86_400) };
        assert_eq!(dur.parse_input("15m"), Ok(json!(900)));
        assert!(dur.parse_input("5s").is_err());
        assert_eq!(SettingKind::Channel.parse_input("<#123>"), Ok(json!("123")));
        assert_eq!(SettingKind::Role.parse_input("<@&9>"), Ok(json!("9")));
        let e = SettingKind::Enum(&["thread", "channel"]);
        assert_eq!(e.parse_input("Thread"), Ok(json!("thread")));
        assert!(e.parse_input("dm").unwrap_err().contains("thread, channel"));
        let models = SettingKind::OneOf(vec!["gpt-4.1-mini".into(), "Llama-3".into()]);
        assert_eq!(models.parse_input(" Llama-3 "), Ok(json!("Llama-3")), "case is kept");
        assert!(models.parse_input("gpt-5.5").unwrap_err().contains("gpt-4.1-mini, Llama-3"));
        assert_eq!(models.validate(&json!("")), Ok(()), "empty is the default");
        assert!(SettingKind::OneOf(Vec::new()).parse_input("x").unwrap_err().contains("operator"));
        let list = SettingKind::list(SettingKind::Channel, 2);
        assert_eq!(list.parse_input("<#1>, <#2>"), Ok(json!(["1", "2"])));
        assert!(list.parse_input("<#1> <#2> <#3>").is_err());
        assert_eq!(list.parse_input(""), Ok(json!([])));
        let s = SettingKind::String { max_len: 3 };
        assert!(s.parse_input("abcd").is_err());
    }

    #[test]
    fn displays_mentions_and_durations() {
        assert_eq!(SettingKind::Channel.display(&json!("5")), "<#5>");
        assert_eq!(SettingKind::list(SettingKind::Role, 5).display(&json!(["1", "2"])), "<@&1>, <@&2>");
        let dur = SettingKind::Duration { min: Duration::ZERO, max: Duration::from_secs(10_000) };
        assert_eq!(dur.display(&json!(3600)), "1h");
    }

    async fn store() -> beacon_store::Store {
        let store = beacon_store::Store::connect("sqlite::memory:").await.expect("sqlite");
        store.migrate().await.expect("migrate");
        store
    }

    fn specs() -> Vec<SettingSpec> {
        vec![
            SettingSpec::new("ask.enabled", SettingKind::Bool, json!(true), "on/off"),
            SettingSpec::new("ask.limit", SettingKind::Int { min: 1, max: 10 }, json!(5), "limit"),
        ]
    }

    #[tokio::test]
    async fn changes_through_the_service_are_seen_at_once() {
        let store = store().await;
        let service = SettingsService::new(specs());
        let guild = store.guild(1);
        assert_eq!(service.get_i64(&guild, "ask.limit").await.expect("get"), 5);
        service.set_from_input(&guild, "ask.limit", "7", 9).await.expect("set");
        assert_eq!(service.get_i64(&guild, "ask.limit").await.expect("get"), 7);
        let audit = service.history(&guild, Some("ask.limit"), 1).await.expect("history");
        service.revert(&guild, audit[0].id, 9).await.expect("revert");
        assert_eq!(service.get_i64(&guild, "ask.limit").await.expect("get"), 5);
        service.set_from_input(&guild, "ask.enabled", "off", 9).await.expect("set");
        assert!(!service.get_bool(&guild, "ask.enabled").await.expect("get"));
        service.reset(&guild, "ask.enabled", 9).await.expect("reset");
        assert!(service.get_bool(&guild, "ask.enabled").await.expect("get"));
    }

    #[tokio::test]
    async fn a_snapshot_serves_reads_until_the_guild_changes() {
        let store = store().await;
        let service = SettingsService::with_ttl(specs(), Duration::from_secs(3600));
        let guild = store.guild(2);
        assert_eq!(service.get_i64(&guild, "ask.limit").await.expect("get"), 5);
        // Any write through this process's store moves the guild's generation: seen at once.
        guild.set_setting("ask.limit", Some(&json!(8)), 9).await.expect("write");
        assert_eq!(service.get_i64(&guild, "ask.limit").await.expect("get"), 8);
        // Other guilds are unaffected by this guild's snapshot.
        assert_eq!(service.get_i64(&store.guild(3), "ask.limit").await.expect("get"), 5);

        // With no TTL every read goes to the database.
        let uncached = SettingsService::with_ttl(specs(), Duration::ZERO);
        assert_eq!(uncached.get_i64(&guild, "ask.limit").await.expect("get"), 8);
        guild.set_setting("ask.limit", Some(&json!(3)), 9).await.expect("write");
        assert_eq!(uncached.get_i64(&guild, "ask.limit").await.expect("get"), 3);
    }

    #[test]
    fn wrong_json_types_are_rejected() {
        assert!(SettingKind::Bool.validate(&json!("true")).is_err());
        assert!(SettingKind::Channel.validate(&json!(5)).is_err());
        assert!(SettingKind::Int { min: 0, max: 1 }.validate(&json!(1.5)).is_err());
    }
}
