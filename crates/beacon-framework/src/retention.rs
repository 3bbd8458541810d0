//! Retention per kind of data: a module declares how long a kind is kept
//! ([`Module::retention`](crate::Module::retention)) — a per-guild duration setting, shown and
//! changed with `/config` like any other, bounded by the longest the kind may be kept — and the
//! statements that expire what is older; hourly housekeeping runs them
//! ([`App::enforce_retention`]), with the time passed in so a test can move the clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::app::App;
use crate::error::HandlerError;
use crate::settings::{SettingKind, SettingSpec};

/// How long one kind of data is kept, and how it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The kind, for people: `audit records`, `answer content`.
    pub kind: &'static str,
    /// Its per-guild setting (a duration; the key starts with the module's name).
    pub setting: &'static str,
    /// How long it is kept unless the guild says otherwise.
    pub default: Duration,
    /// The longest a guild may keep it.
    pub max: Duration,
    /// Statements that delete or blank what is older: `$1` the guild id, `$2` the cut-off
    /// (unix milliseconds).
    pub expire: &'static [&'static str],
}

impl Retention {
    /// The setting `/config` shows and changes.
    pub fn setting_spec(&self) -> SettingSpec {
        SettingSpec::new(
            self.setting,
            SettingKind::Duration { min: Duration::from_secs(86_400), max: self.max },
            json!(self.default.as_secs()),
            leak(format!("How long {} are kept (at most {}).", self.kind, humantime::format_duration(self.max))),
        )
    }
}

// Specs hold `&'static str`; one description per declared kind, made once at start-up.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

const DAY: u64 = 86_400;

/// Audit records (the setting changes `/config` keeps): two years at most.
pub const AUDIT: Retention = Retention {
    kind: "audit records",
    setting: "core.audit_retention",
    default: Duration::from_secs(730 * DAY),
    max: Duration::from_secs(730 * DAY),
    expire: &["DELETE FROM setting_audit WHERE guild_id = $1 AND at < $2"],
};

/// Command usage (one row per command run, `command_usage`): 90 days at most.
pub const USAGE: Retention = Retention {
    kind: "command usage records",
    setting: "core.usage_retention",
    default: Duration::from_secs(90 * DAY),
    max: Duration::from_secs(90 * DAY),
    expire: &["DELETE FROM command_usage WHERE guild_id = $1 AND at < $2"],
};

/// Handler errors (`handler_errors`): 30 days at most.
pub const ERRORS: Retention = Retention {
    kind: "error records",
    setting: "core.errors_retention",
    default: Duration::from_secs(30 * DAY),
    max: Duration::from_secs(30 * DAY),
    expire: &["DELETE FROM handler_errors WHERE guild_id = $1 AND at < $2"],
};

/// The kinds the framework's own tables keep.
pub fn core_retention() -> Vec<Retention> {
    vec![AUDIT, USAGE, ERRORS]
}

/// What one pass expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The guild.
    pub guild_id: u64,
    /// The module (`core` for the framework's own tables).
    pub module: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// Rows deleted or blanked.
    pub rows: u64,
}

impl App {
    /// Expires, in every active guild, what each declared kind keeps beyond the guild's
    /// retention at `now_ms`. Returns what went.
    pub async fn enforce_retention(self: &Arc<Self>, now_ms: i64) -> Result<Vec<Expired>, HandlerError> {
        let mut expired = Vec::new();
        for guild_id in self.store.active_guild_ids().await? {
            let guild = self.guild(guild_id);
            for rule in core_retention() {
                let Some(cutoff) = self.cutoff(&guild, &rule, now_ms).await? else { continue };
                let rows: u64 = guild.expire_rows(rule.expire, cutoff).await?.iter().sum();
                if rows > 0 {
                    expired.push(Expired { guild_id, module: crate::privacy::CORE, kind: rule.kind, rows });
                }
            }
            for module in &self.modules {
                for rule in module.retention() {
                    let Some(cutoff) = self.cutoff(&guild, &rule, now_ms).await? else { continue };
                    let rows = module.expire(self, &guild, &rule, cutoff).await?;
                    if rows > 0 {
                        expired.push(Expired { guild_id, module: module.name(), kind: rule.kind, rows });
                    }
                }
            }
        }
        Ok(expired)
    }

    /// What is older than this (unix ms) expires under `rule` in `guild` at `now_ms`; `None`
    /// for a stored period of 0 (older releases' "keep forever", which a guild keeps until it
    /// sets a period).
    async fn cutoff(
        &self,
        guild: &beacon_store::GuildStore,
        rule: &Retention,
        now_ms: i64,
    ) -> Result<Option<i64>, HandlerError> {
        let keep_ms = self.settings.get_i64(guild, rule.setting).await?.saturating_mul(1000);
        Ok((keep_ms > 0).then(|| now_ms.saturating_sub(keep_ms)))
    }
}
