//! Usage records, summaries, budgets and the persisted pricing table, over `beacon-store`.

use beacon_store::{GuildStore, Schema, Store};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::config::CostPolicy;
use crate::error::LlmError;
use crate::pricing::{Price, PricingTable};
use crate::types::Usage;

/// Tables of the LLM service: `llm_usage`, `llm_budgets` (the operator's per-guild budgets) and
/// `llm_guild_limits` (what a guild chose under them), all guild-owned, and `llm_pricing`.
pub const SCHEMA: Schema = Schema {
    name: "llm",
    migrations: &[
        beacon_store::migration!(1, "usage records, budgets, pricing", "0001_llm.sql"),
        beacon_store::migration!(2, "limits a guild sets for itself", "0002_guild_limits.sql"),
    ],
    guild_tables: &["llm_usage", "llm_budgets", "llm_guild_limits"],
};

const MS_PER_DAY: i64 = 86_400_000;

/// UTC day number (days since 1970-01-01) of a unix-ms timestamp.
pub fn day_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(MS_PER_DAY)
}

/// `YYYY-MM-DD` of a UTC day number (clamped to the years -9999..=9999).
pub fn format_day(day: i64) -> String {
    let start = jiff::Timestamp::from_second(day.saturating_mul(86_400));
    start.unwrap_or(if day < 0 { jiff::Timestamp::MIN } else { jiff::Timestamp::MAX }).strftime("%Y-%m-%d").to_string()
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The provider answered.
    Ok,
    /// Served from the response cache.
    CacheHit,
    /// The attempt failed (the error kind is recorded beside it).
    Error,
    /// The caller dropped a stream before it ended.
    Cancelled,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::CacheHit => "cache_hit",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One recorded provider call (or cache hit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Guild the call was made for.
    pub guild_id: u64,
    /// Calling module (`ask`, `tickets`, …).
    pub module: String,
    /// Member who triggered it, when there is one.
    pub user_id: Option<u64>,
    /// Provider name.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Tokens.
    pub usage: Usage,
    /// Cost in micro-dollars.
    pub cost_micros: u64,
    /// Wall time of the attempt.
    pub latency_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// [`LlmError::kind`] for failed attempts.
    pub error_kind: Option<String>,
    /// Unix ms.
    pub at: i64,
}

/// Grouping of [`UsageStore::summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Guild id.
    Guild,
    /// Module name.
    Module,
    /// `provider:model`.
    Model,
    /// UTC date `YYYY-MM-DD`.
    Day,
}

/// Totals of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Group key (guild id, module, `provider:model` or date).
    pub key: String,
    /// Records (provider attempts and cache hits).
    pub calls: u64,
    /// Failed attempts.
    pub errors: u64,
    /// Cache hits.
    pub cache_hits: u64,
    /// Token totals.
    pub usage: Usage,
    /// Cost total in micro-dollars.
    pub cost_micros: u64,
}

/// Per-guild limits, checked before each call. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Input + output tokens per UTC day for the whole guild.
    pub daily_tokens: Option<u64>,
    /// Micro-dollars per UTC day for the whole guild.
    pub daily_cost_micros: Option<u64>,
    /// Input + output tokens per member per UTC day.
    pub user_daily_tokens: Option<u64>,
    /// Calls per member per UTC day.
    pub user_daily_calls: Option<u64>,
}

impl Budget {
    /// Each limit of `self`, lowered to `other`'s where `other` has a lower one.
    fn lowered_by(mut self, daily_cost_micros: Option<u64>, member_daily_calls: Option<u64>) -> Budget {
        fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        self.daily_cost_micros = min(self.daily_cost_micros, daily_cost_micros);
        self.user_daily_calls = min(self.user_daily_calls, member_daily_calls);
        self
    }
}

/// Limits a guild sets for itself (`/usage limit`); they can only lower the operator's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildLimits {
    /// Micro-dollars per UTC day for the whole guild.
    pub daily_cost_micros: Option<u64>,
    /// AI calls per member per UTC day.
    pub member_daily_calls: Option<u64>,
}

/// Who set a guild's budget, and what applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetView {
    /// The operator's budget for the guild: set for it (`beacon llm budget set`), else the
    /// deployment's default.
    pub operator: Budget,
    /// Whether `operator` was set for this guild rather than the default.
    pub operator_set: bool,
    /// What the guild chose for itself.
    pub own: GuildLimits,
    /// What is enforced: the lower of the two on each limit.
    pub effective: Budget,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn opt_u64(row: &AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(to_u64))
}

/// One provider's health as recorded in `llm_usage`, across guilds (for `/status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderHealth {
    /// Provider calls on the day asked for (cache hits are not calls).
    pub calls: u64,
    /// Failed calls that day.
    pub errors: u64,
    /// Kind and time (unix ms) of the provider's latest failure, any day.
    pub last_error: Option<(String, i64)>,
    /// Consecutive failures that count against the breaker, ending with the latest call.
    pub failure_streak: u32,
}

impl ProviderHealth {
    /// The breaker state these records imply for a breaker opening after `threshold`
    /// consecutive failures for `cooldown`, at `now_ms`: the view across every worker sharing
    /// the database (each worker's own breaker follows the same rule on its own calls).
    pub fn breaker_state(&self, threshold: u32, cooldown: std::time::Duration, now_ms: i64) -> crate::BreakerState {
        let failed_at = match &self.last_error {
            Some((_, at)) if self.failure_streak >= threshold.max(1) => *at,
            _ => return crate::BreakerState::Closed,
        };
        let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
        if now_ms < failed_at.saturating_add(cooldown_ms) {
            crate::BreakerState::Open
        } else {
            crate::BreakerState::HalfOpen
        }
    }
}

/// Error kinds that count as a provider failure for the breaker (the others — budgets, bad
/// requests the caller made — say nothing about the provider's health).
const FAILURE_KINDS: &[&str] = &["rate_limited", "timeout", "http", "transport", "invalid_response"];

/// Usage, budget and pricing repository.
#[derive(Debug, Clone)]
pub struct UsageStore {
    store: Store,
}

const SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS calls, \
    CAST(COALESCE(SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
    CAST(COALESCE(SUM(CASE WHEN outcome = 'cache_hit' THEN 1 ELSE 0 END), 0) AS BIGINT) AS cache_hits, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_input_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
    CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros";

fn summary_from_row(row: &AnyRow, key: String) -> Result<SummaryRow, sqlx::Error> {
    Ok(SummaryRow {
        key,
        calls: to_u64(row.try_get("calls")?),
        errors: to_u64(row.try_get("errors")?),
        cache_hits: to_u64(row.try_get("cache_hits")?),
        usage: Usage {
            input_tokens: to_u64(row.try_get("input_tokens")?),
            output_tokens: to_u64(row.try_get("output_tokens")?),
            cached_input_tokens: to_u64(row.try_get("cached_input_tokens")?),
            cache_write_tokens: to_u64(row.try_get("cache_write_tokens")?),
        },
        cost_micros: to_u64(row.try_get("cost_micros")?),
    })
}

impl UsageStore {
    /// Applies the schema and seeds missing
    /// prices (edited prices are kept).
    pub async fn open(store: Store) -> Result<UsageStore, LlmError> {
        store.migrate_schema(&SCHEMA).await?;
        let repo = UsageStore { store };
        let now = beacon_store::now_ms();
        for price in PricingTable::seeded().all() {
            sqlx::query(
                "INSERT INTO llm_pricing (provider, model, input, cached_input, cache_write, output, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, model) DO NOTHING",
            )
            .bind(price.provider)
            .bind(price.model)
            .bind(to_i64(price.input))
            .bind(to_i64(price.cached_input))
            .bind(to_i64(price.cache_write))
            .bind(to_i64(price.output))
            .bind(now)
            .execute(repo.store.pool())
            .await?;
        }
        Ok(repo)
    }

    /// A repository over tables already set up by [`UsageStore::open`] (e.g. in the process
    /// running the LLM service), for readers such as `/status`.
    pub fn attach(store: Store) -> UsageStore {
        UsageStore { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends a usage record.
    pub async fn record(&self, r: &UsageRecord) -> Result<(), LlmError> {
        let guild = self.store.guild(r.guild_id);
        sqlx::query(
            "INSERT INTO llm_usage (guild_id, module, user_id, provider, model, input_tokens, \
             output_tokens, cached_input_tokens, cache_write_tokens, cost_micros, latency_ms, \
             outcome, error_kind, day, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(guild.sql_id())
        .bind(r.module.as_str())
        .bind(r.user_id.map(|u| u as i64))
        .bind(r.provider.as_str())
        .bind(r.model.as_str())
        .bind(to_i64(r.usage.input_tokens))
        .bind(to_i64(r.usage.output_tokens))
        .bind(to_i64(r.usage.cached_input_tokens))
        .bind(to_i64(r.usage.cache_write_tokens))
        .bind(to_i64(r.cost_micros))
        .bind(to_i64(r.latency_ms))
        .bind(r.outcome.as_str())
        .bind(r.error_kind.as_deref())
        .bind(day_of(r.at))
        .bind(r.at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Totals grouped by `group`, for one guild (`Some`) or all guilds, over UTC days
    /// `from_day..=to_day` (see [`day_of`]). Sorted by key.
    pub async fn summary(
        &self,
        guild_id: Option<u64>,
        group: GroupBy,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<SummaryRow>, LlmError> {
        let key = match group {
            GroupBy::Guild => "CAST(guild_id AS TEXT)",
            GroupBy::Module => "module",
            GroupBy::Model => "provider || ':' || model",
            GroupBy::Day => "CAST(day AS TEXT)",
        };
        let sql = format!(
            "SELECT {key} AS k, {SUMS} FROM llm_usage \
             WHERE day >= $1 AND day <= $2 AND ($3 = 0 OR guild_id = $4) GROUP BY {key}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from_day)
            .bind(to_day)
            .bind(i64::from(guild_id.is_some()))
            .bind(guild_id.map_or(0, |g| self.store.guild(g).sql_id()))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = rows
            .iter()
            .map(|row| {
                let raw: String = row.try_get("k")?;
                let key = match group {
                    GroupBy::Day => raw.parse::<i64>().map(format_day).unwrap_or(raw),
                    _ => raw,
                };
                summary_from_row(row, key)
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Totals of one guild (optionally one member) on one UTC day.
    pub async fn day_totals(&self, guild: &GuildStore, user_id: Option<u64>, day: i64) -> Result<SummaryRow, LlmError> {
        let sql = format!("SELECT {SUMS} FROM llm_usage WHERE guild_id = $1 AND day = $2 AND ($3 = 0 OR user_id = $4)");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild.sql_id())
            .bind(day)
            .bind(i64::from(user_id.is_some()))
            .bind(user_id.map_or(0, |u| u as i64))
            .fetch_one(self.store.pool())
            .await?;
        Ok(summary_from_row(&row, String::new())?)
    }

    /// `provider`'s calls and errors on UTC `day`, its latest failure, and its current run of
    /// consecutive failures (looking back at most `streak_limit` calls).
    pub async fn provider_health(
        &self,
        provider: &str,
        day: i64,
        streak_limit: u32,
    ) -> Result<ProviderHealth, LlmError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS calls, \
             CAST(COALESCE(SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors \
             FROM llm_usage WHERE provider = $1 AND day = $2 AND outcome <> 'cache_hit'",
        )
        .bind(provider)
        .bind(day)
        .fetch_one(self.store.pool())
        .await?;
        let mut health = ProviderHealth {
            calls: to_u64(row.try_get("calls")?),
            errors: to_u64(row.try_get("errors")?),
            ..ProviderHealth::default()
        };
        let last = sqlx::query(
            "SELECT error_kind, at FROM llm_usage WHERE provider = $1 AND outcome = 'error' ORDER BY id DESC LIMIT 1",
        )
        .bind(provider)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = last {
            let kind: Option<String> = row.try_get("error_kind")?;
            health.last_error = Some((kind.unwrap_or_else(|| "unknown".to_owned()), row.try_get("at")?));
        }
        let recent = sqlx::query(
            "SELECT outcome, error_kind FROM llm_usage WHERE provider = $1 AND outcome IN ('ok', 'error') \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(provider)
        .bind(i64::from(streak_limit.max(1)))
        .fetch_all(self.store.pool())
        .await?;
        for row in &recent {
            let outcome: String = row.try_get("outcome")?;
            let kind: Option<String> = row.try_get("error_kind")?;
            if outcome != "error" {
                break;
            }
            // Neutral errors neither count nor reset, like the breaker's own rule.
            if kind.as_deref().is_some_and(|k| FAILURE_KINDS.contains(&k)) {
                health.failure_streak += 1;
            }
        }
        Ok(health)
    }

    /// The budget that applies to `guild` under `policy`, and where each part comes from.
    pub async fn budget_view(&self, guild: &GuildStore, policy: &CostPolicy) -> Result<BudgetView, LlmError> {
        let (operator, operator_set) = match self.operator_budget(guild).await? {
            Some(set) => (set, true),
            None => (Budget { daily_cost_micros: policy.guild_daily_cost_micros, ..Budget::default() }, false),
        };
        let own = self.guild_limits(guild).await?;
        let effective = operator.clone().lowered_by(own.daily_cost_micros, own.member_daily_calls);
        Ok(BudgetView { operator, operator_set, own, effective })
    }

    /// The budget the operator set for the guild, if any.
    async fn operator_budget(&self, guild: &GuildStore) -> Result<Option<Budget>, LlmError> {
        let row = sqlx::query(
            "SELECT daily_tokens, daily_cost_micros, user_daily_tokens, user_daily_calls \
             FROM llm_budgets WHERE guild_id = $1",
        )
        .bind(guild.sql_id())
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(Budget {
                daily_tokens: opt_u64(&r, "daily_tokens")?,
                daily_cost_micros: opt_u64(&r, "daily_cost_micros")?,
                user_daily_tokens: opt_u64(&r, "user_daily_tokens")?,
                user_daily_calls: opt_u64(&r, "user_daily_calls")?,
            }),
            None => None,
        })
    }

    /// Removes the operator's budget for the guild (the deployment's default applies again);
    /// `true` if there was one.
    pub async fn clear_budget(&self, guild: &GuildStore) -> Result<bool, LlmError> {
        let n = sqlx::query("DELETE FROM llm_budgets WHERE guild_id = $1")
            .bind(guild.sql_id())
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// What the guild chose for itself (all `None` when never set).
    pub async fn guild_limits(&self, guild: &GuildStore) -> Result<GuildLimits, LlmError> {
        let row = sqlx::query("SELECT daily_cost_micros, member_daily_calls FROM llm_guild_limits WHERE guild_id = $1")
            .bind(guild.sql_id())
            .fetch_optional(self.store.pool())
            .await?;
        Ok(match row {
            Some(r) => GuildLimits {
                daily_cost_micros: opt_u64(&r, "daily_cost_micros")?,
                member_daily_calls: opt_u64(&r, "member_daily_calls")?,
            },
            None => GuildLimits::default(),
        })
    }

    /// Stores what the guild chose for itself. The caller checks it against the operator's
    /// budget first (it is also only ever applied as a lowering).
    pub async fn set_guild_limits(&self, guild: &GuildStore, limits: &GuildLimits) -> Result<(), LlmError> {
        sqlx::query(
            "INSERT INTO llm_guild_limits (guild_id, daily_cost_micros, member_daily_calls, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id) DO UPDATE SET \
             daily_cost_micros = excluded.daily_cost_micros, member_daily_calls = excluded.member_daily_calls, \
             updated_at = excluded.updated_at",
        )
        .bind(guild.sql_id())
        .bind(limits.daily_cost_micros.map(to_i64))
        .bind(limits.member_daily_calls.map(to_i64))
        .bind(beacon_store::now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Sets the operator's budget for the guild (`beacon llm budget set`).
    pub async fn set_budget(&self, guild: &GuildStore, budget: &Budget) -> Result<(), LlmError> {
        sqlx::query(
            "INSERT INTO llm_budgets (guild_id, daily_tokens, daily_cost_micros, user_daily_tokens, \
             user_daily_calls, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (guild_id) DO UPDATE SET daily_tokens = excluded.daily_tokens, \
             daily_cost_micros = excluded.daily_cost_micros, \
             user_daily_tokens = excluded.user_daily_tokens, \
             user_daily_calls = excluded.user_daily_calls, updated_at = excluded.updated_at",
        )
        .bind(guild.sql_id())
        .bind(budget.daily_tokens.map(to_i64))
        .bind(budget.daily_cost_micros.map(to_i64))
        .bind(budget.user_daily_tokens.map(to_i64))
        .bind(budget.user_daily_calls.map(to_i64))
        .bind(beacon_store::now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Errors with [`LlmError::BudgetExceeded`] / [`LlmError::UserLimitExceeded`] when today's
    /// usage already reached a limit. (A call that starts under the limit may end over it.)
    pub async fn check_budget(
        &self,
        guild_id: u64,
        user_id: Option<u64>,
        now_ms: i64,
        policy: &CostPolicy,
    ) -> Result<(), LlmError> {
        let guild = self.store.guild(guild_id);
        let budget = self.budget_view(&guild, policy).await?.effective;
        let day = day_of(now_ms);
        if budget.daily_tokens.is_some() || budget.daily_cost_micros.is_some() {
            let t = self.day_totals(&guild, None, day).await?;
            if let Some(limit) = budget.daily_tokens
                && t.usage.total() >= limit
            {
                return Err(LlmError::BudgetExceeded(format!("{} of {limit} tokens used today", t.usage.total())));
            }
            if let Some(limit) = budget.daily_cost_micros
                && t.cost_micros >= limit
            {
                return Err(LlmError::BudgetExceeded(format!(
                    "{} of {} spent today",
                    crate::pricing::format_usd(t.cost_micros),
                    crate::pricing::format_usd(limit)
                )));
            }
        }
        if let Some(user) = user_id
            && (budget.user_daily_tokens.is_some() || budget.user_daily_calls.is_some())
        {
            let t = self.day_totals(&guild, Some(user), day).await?;
            if let Some(limit) = budget.user_daily_tokens
                && t.usage.total() >= limit
            {
                return Err(LlmError::UserLimitExceeded(format!("{limit} tokens per day")));
            }
            if let Some(limit) = budget.user_daily_calls
                && t.calls - t.cache_hits >= limit
            {
                return Err(LlmError::UserLimitExceeded(format!("{limit} AI calls per day")));
            }
        }
        Ok(())
    }

    /// A fingerprint of the stored pricing table that changes whenever a price is set or
    /// removed, so running processes notice `beacon llm pricing set` cheaply.
    pub async fn pricing_version(&self) -> Result<(i64, i64), LlmError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) AS at FROM llm_pricing",
        )
        .fetch_one(self.store.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("at")?))
    }

    /// The stored pricing table.
    pub async fn pricing(&self) -> Result<PricingTable, LlmError> {
        let rows = sqlx::query("SELECT provider, model, input, cached_input, cache_write, output FROM llm_pricing")
            .fetch_all(self.store.pool())
            .await?;
        let mut table = PricingTable::default();
        for r in rows {
            table.set(Price {
                provider: r.try_get("provider")?,
                model: r.try_get("model")?,
                input: to_u64(r.try_get("input")?),
                cached_input: to_u64(r.try_get("cached_input")?),
                cache_write: to_u64(r.try_get("cache_write")?),
                output: to_u64(r.try_get("output")?),
            });
        }
        Ok(table)
    }

    /// Adds or replaces a price (`beacon llm pricing set`).
    pub async fn set_price(&self, price: &Price) -> Result<(), LlmError> {
        sqlx::query(
            "INSERT INTO llm_pricing (provider, model, input, cached_input, cache_write, output, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, model) DO UPDATE SET \
             input = excluded.input, cached_input = excluded.cached_input, \
             cache_write = excluded.cache_write, output = excluded.output, updated_at = excluded.updated_at",
        )
        .bind(price.provider.as_str())
        .bind(price.model.as_str())
        .bind(to_i64(price.input))
        .bind(to_i64(price.cached_input))
        .bind(to_i64(price.cache_write))
        .bind(to_i64(price.output))
        .bind(beacon_store::now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Removes a price; `true` if it existed. (Seeded prices come back on the next start.)
    pub async fn remove_price(&self, provider: &str, model: &str) -> Result<bool, LlmError> {
        let n = sqlx::query("DELETE FROM llm_pricing WHERE provider = $1 AND model = $2")
            .bind(provider)
            .bind(model)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_format_as_dates() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(day_of(1_709_251_200_000)), "2024-03-01");
        assert_eq!(format_day(day_of(-1)), "1969-12-31");
        assert_eq!(format_day(day_of(951_782_400_000)), "2000-02-29");
    }
}
