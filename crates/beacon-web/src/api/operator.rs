//! Developer-team-only views of the deployment: `shards` (status, latency, guild → shard) and
//! a `metrics` summary.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use beacon_framework::{Access, ApiError, App};
use serde_json::json;

use super::{ApiState, Authed};

async fn require_developer(state: &ApiState, user_id: u64) -> Result<(), ApiError> {
    if state.app.permissions.is_developer_user(user_id).await {
        Ok(())
    } else {
        Err(ApiError::forbidden(Access::Developer.refusal()))
    }
}

/// `GET /api/v1/shards`: this process's shards and which shard serves each guild Beacon is in,
/// with its name (Discord's rule: `(guild_id >> 22) % shard_count`).
pub async fn shards(State(state): State<ApiState>, Authed(session): Authed) -> Result<Response, ApiError> {
    require_developer(&state, session.user_id).await?;
    let snapshot = state.app.shards.snapshot();
    let total = snapshot.first().map(|s| s.total).or(state.app.config.discord.shard_count).unwrap_or(1).max(1);
    let shards: Vec<_> = snapshot
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "total": s.total,
                "state": format!("{:?}", s.state).to_lowercase(),
                "latency_ms": s.latency_ms,
                "guilds": s.guilds,
                "reconnects": s.reconnects,
                "last_event_at": s.last_event_at.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64),
            })
        })
        .collect();
    let guilds: Vec<_> = state
        .app
        .store
        .active_guild_names()
        .await?
        .into_iter()
        .map(|(id, name)| {
            json!({
                "guild_id": id.to_string(),
                "name": Some(name).filter(|n| !n.is_empty()),
                "shard": (id >> 22) % u64::from(total),
            })
        })
        .collect();
    Ok(axum::Json(json!({"shard_count": total, "shards": shards, "guilds": guilds})).into_response())
}

/// `GET /api/v1/metrics`: uptime, guilds, shards and the dependency checks.
pub async fn metrics(State(state): State<ApiState>, Authed(session): Authed) -> Result<Response, ApiError> {
    require_developer(&state, session.user_id).await?;
    let app = &state.app;
    let checks: Vec<_> = app
        .recent_checks()
        .await
        .iter()
        .map(
            |c| json!({"name": c.name, "ok": c.ok, "latency_ms": c.latency.as_secs_f64() * 1000.0, "detail": c.detail}),
        )
        .collect();
    Ok(axum::Json(json!({
        "version": App::version(),
        "uptime_secs": app.uptime().as_secs(),
        "guilds": app.guild_count().await?,
        "shards_connected": app.shards.connected(),
        "shards": app.shards.snapshot().len(),
        "checks": checks,
    }))
    .into_response())
}

fn price_json(p: &beacon_llm::Price) -> serde_json::Value {
    json!({
        "provider": p.provider,
        "model": p.model,
        "input": p.input,
        "cached_input": p.cached_input,
        "cache_write": p.cache_write,
        "output": p.output,
    })
}

/// `GET /api/v1/llm/models`: the provider chain, the models guilds may choose, and the pricing
/// table (micro-dollars per million tokens).
pub async fn llm_models(State(state): State<ApiState>, Authed(session): Authed) -> Result<Response, ApiError> {
    require_developer(&state, session.user_id).await?;
    let config = beacon_llm::LlmConfig::from_settings(&state.app.config.llm).map_err(ApiError::internal)?;
    let pricing =
        beacon_llm::UsageStore::attach(state.app.store.clone()).pricing().await.map_err(ApiError::internal)?;
    Ok(axum::Json(json!({
        "chain": config.chain.iter().map(|p| json!({"provider": p.kind.as_str(), "model": p.model})).collect::<Vec<_>>(),
        "guild_models": config.policy.guild_models,
        "pricing": pricing.all().iter().map(price_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// The body of a price change: micro-dollars per million tokens.
#[derive(serde::Deserialize)]
pub struct PriceBody {
    input: u64,
    #[serde(default)]
    cached_input: Option<u64>,
    #[serde(default)]
    cache_write: Option<u64>,
    output: u64,
}

/// `PUT /api/v1/llm/models/{provider}/{model}/pricing`: sets a model's price; running processes
/// use it from their next AI call.
pub async fn set_pricing(
    State(state): State<ApiState>,
    Authed(session): Authed,
    axum::extract::Path((provider, model)): axum::extract::Path<(String, String)>,
    body: Result<axum::Json<PriceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_developer(&state, session.user_id).await?;
    let provider = provider.trim().to_ascii_lowercase();
    if provider.parse::<beacon_llm::ProviderKind>().is_err() {
        return Err(ApiError::invalid(
            "provider",
            "provider must be openai, anthropic, gemini, xai or openai-compatible.",
        ));
    }
    let model = model.trim().to_owned();
    if model.is_empty() || model.len() > 200 {
        return Err(ApiError::invalid("model", "model must be a model id (at most 200 characters)."));
    }
    let axum::Json(b) = body.map_err(|e| {
        ApiError::invalid("body", format!("Send {{\"input\", \"output\", \"cached_input\"?, \"cache_write\"?}} in micro-dollars per million tokens: {e}"))
    })?;
    let price = beacon_llm::Price {
        provider,
        model,
        input: b.input,
        cached_input: b.cached_input.unwrap_or(b.input),
        cache_write: b.cache_write.unwrap_or(b.input),
        output: b.output,
    };
    beacon_llm::UsageStore::attach(state.app.store.clone()).set_price(&price).await.map_err(ApiError::internal)?;
    tracing::info!(provider = %price.provider, model = %price.model, user_id = session.user_id, "LLM price set through the API");
    Ok(axum::Json(price_json(&price)).into_response())
}
