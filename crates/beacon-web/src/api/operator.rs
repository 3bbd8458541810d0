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

/// `GET /api/v1/shards`: this process's shards and which shard serves each guild Beacon is in
/// (Discord's rule: `(guild_id >> 22) % shard_count`).
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
        .active_guild_ids()
        .await?
        .into_iter()
        .map(|id| json!({"guild_id": id.to_string(), "shard": (id >> 22) % u64::from(total)}))
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
