-- What a guild chose for itself under the operator's budget: a lower daily spend and a cap on
-- each member's AI answers per day (guild-owned). The operator's ceilings stay in llm_budgets.
CREATE TABLE llm_guild_limits (
    guild_id           BIGINT PRIMARY KEY,
    daily_cost_micros  BIGINT,
    member_daily_calls BIGINT,
    updated_at         BIGINT NOT NULL
);
