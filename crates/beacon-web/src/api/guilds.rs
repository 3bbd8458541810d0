//! Who may manage which guild, and `GET /api/v1/guilds`.
//!
//! One rule with the slash commands: the caller's level in a guild is
//! [`PermissionService::member_level`](beacon_framework::access::PermissionService::member_level)
//! given the permissions Discord reports for them there (`GET /users/@me/guilds`, every page) —
//! owner, Administrator or Manage Server, or a Beacon-authorized user is `Authorized`. The
//! developer team reads every guild (and changes only what a route marks developer-only).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beacon_framework::{Access, ApiError, Caller};
use beacon_store::now_ms;
use serde_json::json;
use sqlx::Row;
use twilight_model::guild::Permissions;

use super::discord::OAuthError;
use super::session::Session;
use super::{ApiState, Authed};

/// How long Discord's guild list of a session is trusted before it is read again (a member
/// who lost Manage Server loses the dashboard within this).
const GUILDS_TTL_MS: i64 = 60_000;
/// An access token this close to expiry is renewed before use.
const REFRESH_MARGIN_MS: i64 = 30_000;

/// A caller's standing in one guild.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// Their level (the developer team's is `Developer`).
    pub level: Access,
    /// Only the developer team's reading access (not a manager of this guild themselves).
    pub read_only: bool,
}

fn session_gone() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Your Discord login has ended; log in again.")
}

/// The session with a usable access token and a guild list at most a minute old. A token Discord
/// no longer accepts ends the session.
pub async fn fresh(state: &ApiState, mut session: Session) -> Result<Session, ApiError> {
    let now = now_ms();
    if now - session.guilds_fetched_at < GUILDS_TTL_MS {
        return Ok(session);
    }
    let Some(oauth) = &state.oauth else { return Ok(session) };
    let keyring = state.keyring()?;
    let store = &state.sessions;
    if session.tokens.expires_at - REFRESH_MARGIN_MS <= now {
        match oauth.refresh(&session.tokens.refresh).await {
            Ok(tokens) => {
                session.tokens = tokens;
                store.save(keyring, &session).await.map_err(ApiError::internal)?;
            }
            Err(OAuthError::Refused(_)) => {
                store.delete(&session.id_hash).await.map_err(ApiError::internal)?;
                return Err(session_gone());
            }
            Err(e @ OAuthError::Unavailable(_)) => {
                tracing::warn!(error = %e, "refreshing a session's Discord token failed; using its guild list");
                return Ok(session);
            }
        }
    }
    match oauth.guilds(&session.tokens.access).await {
        Ok(guilds) => {
            session.guilds = guilds;
            session.guilds_fetched_at = now;
            store.save(keyring, &session).await.map_err(ApiError::internal)?;
        }
        Err(OAuthError::Refused(_)) => {
            store.delete(&session.id_hash).await.map_err(ApiError::internal)?;
            return Err(session_gone());
        }
        Err(e) => tracing::warn!(error = %e, "reading a session's guilds from Discord failed; using the last list"),
    }
    Ok(session)
}

/// The caller's standing in `guild_id`, `None` when they may not see it at all.
pub async fn access(state: &ApiState, session: &Session, guild_id: u64) -> Result<Option<Grant>, ApiError> {
    let app = &state.app;
    let discord = session.guilds.iter().find(|g| g.id == guild_id);
    let permissions = discord.map(|g| {
        if g.owner {
            Permissions::ADMINISTRATOR
        } else {
            Permissions::from_bits_truncate(g.permissions.parse().unwrap_or(0))
        }
    });
    let caller = Caller { user_id: session.user_id, roles: Vec::new(), permissions };
    let guild = app.guild(guild_id);
    let level = app.permissions.member_level(&guild, &caller, &[]).await.map_err(ApiError::internal)?;
    let developer = app.permissions.is_developer_user(session.user_id).await;
    Ok(match (level >= Access::Authorized, developer) {
        (true, true) => Some(Grant { level: Access::Developer, read_only: false }),
        (true, false) => Some(Grant { level: Access::Authorized, read_only: false }),
        (false, true) => Some(Grant { level: Access::Developer, read_only: true }),
        (false, false) => None,
    })
}

/// `GET /api/v1/guilds`: every guild the caller may manage (from Discord's list, every page,
/// and Beacon's delegated access) or, for the developer team, read; with Beacon's presence.
pub async fn list(State(state): State<ApiState>, Authed(session): Authed) -> Result<Response, ApiError> {
    let session = fresh(&state, session).await?;
    let app = &state.app;
    let pool = app.store.pool();
    // Candidates: Discord's guilds, the ones where Beacon granted access, and every guild
    // Beacon knows for the developer team; each is then judged by the one rule.
    let mut names: BTreeMap<u64, (String, Option<String>)> =
        session.guilds.iter().map(|g| (g.id, (g.name.clone(), g.icon.clone()))).collect();
    let granted = sqlx::query("SELECT guild_id FROM authorized_users WHERE user_id = $1")
        .bind(session.user_id as i64)
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?;
    let mut candidates: Vec<u64> = names.keys().copied().collect();
    for row in granted {
        candidates.push(row.try_get::<i64, _>("guild_id").map_err(ApiError::internal)? as u64);
    }
    if app.permissions.is_developer_user(session.user_id).await {
        for id in app.store.active_guild_ids().await? {
            candidates.push(id);
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut out = Vec::new();
    for id in candidates {
        let Some(grant) = access(&state, &session, id).await? else { continue };
        let record = app.guild(id).get().await?;
        let present = record.as_ref().is_some_and(|r| r.left_at.is_none());
        let (name, icon) =
            names.remove(&id).unwrap_or_else(|| (record.as_ref().map(|r| r.name.clone()).unwrap_or_default(), None));
        out.push(json!({
            "id": id.to_string(),
            "name": name,
            "icon": icon,
            "beacon_present": present,
            "access": if grant.read_only { "read_only" } else { "manage" },
        }));
    }
    Ok(axum::Json(json!({ "guilds": out })).into_response())
}
