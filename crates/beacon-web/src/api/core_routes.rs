//! The per-guild endpoints the framework's own data backs: `settings` (schema, values,
//! validated PATCH, audit history, revert), `modules` (on/off) and `authorized-users`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use beacon_framework::settings::{SettingKind, SettingSpec, SettingView};
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute};
use serde::Deserialize;
use serde_json::{Value, json};

/// The routes, relative to `/api/v1/guilds/{guild_id}`.
pub fn routes() -> Vec<ApiRoute> {
    let a = Access::Authorized;
    vec![
        ApiRoute::new(
            Method::GET,
            "/settings",
            "Every setting: schema (type, bounds, choices, help) and value",
            a,
            get(settings),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/settings",
            "Changes settings: an object of key → value (null resets to the default); all or nothing",
            a,
            patch(patch_settings),
        )
        .body("{\"<setting key>\": <value or null>, …}"),
        ApiRoute::new(Method::GET, "/settings/audit", "The settings' change history, newest first", a, get(audit))
            .query(&[("key", "Only this setting"), ("limit", "At most this many (1–200, default 50)")]),
        ApiRoute::new(
            Method::POST,
            "/settings/audit/{audit_id}/revert",
            "Puts a setting back to what it was before this change",
            a,
            post(revert),
        ),
        ApiRoute::new(Method::GET, "/modules", "The modules and whether each is on", a, get(modules)),
        ApiRoute::new(Method::PUT, "/modules/{module}", "Switches a module on or off", a, put(set_module))
            .body("{\"enabled\": true|false}"),
        ApiRoute::new(
            Method::GET,
            "/directory",
            "The server's text channels and roles (for pickers), and members found by name",
            a,
            get(directory),
        )
        .query(&[("members", "Members whose name starts with this (up to 10)")]),
        ApiRoute::new(Method::GET, "/authorized-users", "Users with delegated Beacon access", a, get(authorized)),
        ApiRoute::new(
            Method::PUT,
            "/authorized-users/{user_id}",
            "Grants Beacon access to a user (201; 200 if they had it)",
            a,
            put(grant),
        )
        .success(201),
        ApiRoute::new(
            Method::DELETE,
            "/authorized-users/{user_id}",
            "Takes a user's Beacon access away",
            a,
            delete(revoke),
        ),
    ]
}

/// A setting's type as JSON Schema-like fields.
fn schema_of(kind: &SettingKind) -> Value {
    match kind {
        SettingKind::Bool => json!({"type": "bool"}),
        SettingKind::Int { min, max } => json!({"type": "int", "min": min, "max": max}),
        SettingKind::Duration { min, max } => {
            json!({"type": "duration", "unit": "seconds", "min": min.as_secs(), "max": max.as_secs()})
        }
        SettingKind::String { max_len } => json!({"type": "string", "max_length": max_len}),
        SettingKind::Enum(choices) => json!({"type": "enum", "choices": choices}),
        SettingKind::OneOf(choices) => json!({"type": "enum", "choices": choices, "empty_means_default": true}),
        SettingKind::Channel => json!({"type": "channel"}),
        SettingKind::Role => json!({"type": "role"}),
        SettingKind::List { of, max_items } => json!({"type": "list", "items": schema_of(of), "max_items": max_items}),
    }
}

fn describe(spec: &SettingSpec) -> Value {
    json!({
        "key": spec.key,
        "module": spec.key.split('.').next().unwrap_or_default(),
        "schema": schema_of(&spec.kind),
        "default": spec.default,
        "help": spec.description,
    })
}

fn view(v: &SettingView) -> Value {
    let mut out = describe(&v.spec);
    out["value"] = v.value.clone();
    out["overridden"] = json!(v.overridden);
    out
}

async fn settings(ctx: ApiGuild) -> Result<Response, ApiError> {
    let all = ctx.app.settings.all(&ctx.guild).await?;
    Ok(Json(json!({ "settings": all.iter().map(view).collect::<Vec<_>>() })).into_response())
}

/// Checks every change first (an error names the key); only then stores them, each audited
/// and announced to the modules' listeners, which see it without a restart.
async fn patch_settings(
    ctx: ApiGuild,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::invalid("body", format!("The body must be a JSON object: {e}")))?;
    let Value::Object(changes) = body else {
        return Err(ApiError::invalid("body", "The body must be a JSON object of setting key → value."));
    };
    if changes.is_empty() {
        return Err(ApiError::invalid("body", "No setting to change."));
    }
    let settings = &ctx.app.settings;
    for (key, value) in &changes {
        let spec = settings.spec(key).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "unknown_setting", format!("There is no setting called `{key}`."))
                .with_field(key.clone())
        })?;
        if !value.is_null() {
            spec.kind.validate(value).map_err(|reason| ApiError::invalid(key.clone(), format!("`{key}` {reason}.")))?;
        }
        if is_core_switch(&ctx, key) {
            return Err(ApiError::invalid(key.clone(), format!("`{key}` cannot be changed: the module is always on.")));
        }
    }
    let mut audit = Vec::new();
    for (key, value) in &changes {
        let change = if value.is_null() {
            settings.reset(&ctx.guild, key, ctx.user_id).await?
        } else {
            settings.set_value(&ctx.guild, key, value, ctx.user_id).await?
        };
        audit.push(json!({"key": key, "audit_id": change.audit_id}));
    }
    let all = settings.all(&ctx.guild).await?;
    let changed: Vec<Value> = all.iter().filter(|v| changes.contains_key(v.spec.key)).map(view).collect();
    Ok(Json(json!({ "settings": changed, "audit": audit })).into_response())
}

fn is_core_switch(ctx: &ApiGuild, key: &str) -> bool {
    key.strip_suffix(".enabled").and_then(|m| ctx.app.module_named(m)).is_some_and(|m| !m.can_disable())
}

#[derive(Deserialize)]
struct AuditQuery {
    key: Option<String>,
    limit: Option<String>,
}

async fn audit(ctx: ApiGuild, Query(q): Query<AuditQuery>) -> Result<Response, ApiError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return Err(ApiError::invalid("limit", "limit must be a whole number from 1 to 200.")),
        },
    };
    if let Some(key) = &q.key
        && ctx.app.settings.spec(key).is_none()
    {
        return Err(ApiError::invalid("key", format!("There is no setting called `{key}`.")));
    }
    let rows = ctx.app.settings.history(&ctx.guild, q.key.as_deref(), limit).await?;
    // Who made each change, by name (0: no member — Beacon itself); null when Discord does not
    // know them here.
    let names = ctx.member_names(rows.iter().map(|a| a.actor_id)).await;
    let entries: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "key": a.key,
                "old": a.old,
                "new": a.new,
                "actor_id": a.actor_id.to_string(),
                "actor_name": names.get(&a.actor_id),
                "at": a.at,
                "reverted_audit_id": a.reverted_audit_id,
            })
        })
        .collect();
    Ok(Json(json!({ "audit": entries })).into_response())
}

async fn revert(ctx: ApiGuild, Path(params): Path<BTreeMap<String, String>>) -> Result<Response, ApiError> {
    let id = params
        .get("audit_id")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| ApiError::invalid("audit_id", "audit_id must be a whole number."))?;
    let change = ctx.app.settings.revert(&ctx.guild, id, ctx.user_id).await?;
    Ok(Json(json!({"key": change.key, "audit_id": change.audit_id, "value": change.new})).into_response())
}

async fn modules(ctx: ApiGuild) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for m in &ctx.app.modules {
        let enabled = ctx.app.module_enabled(&ctx.guild, m.as_ref()).await?;
        out.push(json!({
            "name": m.name(),
            "description": m.description(),
            "can_disable": m.can_disable(),
            "enabled": enabled,
        }));
    }
    Ok(Json(json!({ "modules": out })).into_response())
}

#[derive(Deserialize)]
struct Switch {
    enabled: bool,
}

async fn set_module(
    ctx: ApiGuild,
    Path(params): Path<BTreeMap<String, String>>,
    body: Result<Json<Switch>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let name = params.get("module").cloned().unwrap_or_default();
    let module =
        ctx.app.module_named(&name).ok_or_else(|| ApiError::not_found(format!("There is no module `{name}`.")))?;
    let Json(switch) =
        body.map_err(|e| ApiError::invalid("enabled", format!("Send {{\"enabled\": true|false}}: {e}")))?;
    if !module.can_disable() {
        return Err(ApiError::invalid("enabled", format!("The {name} module is always on.")));
    }
    let key = format!("{name}.enabled");
    ctx.app.settings.set_value(&ctx.guild, &key, &json!(switch.enabled), ctx.user_id).await?;
    Ok(Json(json!({"name": name, "enabled": switch.enabled})).into_response())
}

async fn authorized(ctx: ApiGuild) -> Result<Response, ApiError> {
    let users = ctx.guild.authorized_users().await?;
    // Names as the server shows them; a member who left (or Discord out of reach) keeps only the id.
    let names =
        ctx.member_names(users.iter().map(|u| u.user_id).chain(users.iter().filter_map(|u| u.granted_by))).await;
    let name = |id: Option<u64>| id.and_then(|i| names.get(&i).cloned()).map_or(Value::Null, Value::String);
    let out: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "user_id": u.user_id.to_string(),
                "name": name(Some(u.user_id)),
                "granted_by": u.granted_by.map(|g| g.to_string()),
                "granted_by_name": name(u.granted_by),
                "granted_at": u.granted_at,
            })
        })
        .collect();
    Ok(Json(json!({ "authorized_users": out })).into_response())
}

fn user_param(params: &BTreeMap<String, String>) -> Result<u64, ApiError> {
    params
        .get("user_id")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("user_id", "user_id must be a Discord user id."))
}

async fn grant(ctx: ApiGuild, Path(params): Path<BTreeMap<String, String>>) -> Result<Response, ApiError> {
    let user = user_param(&params)?;
    let created = ctx.guild.grant(user, Some(ctx.user_id)).await?;
    tracing::info!(guild_id = ctx.guild_id(), target_user = user, "access granted through the API");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"user_id": user.to_string(), "granted": true}))).into_response())
}

async fn revoke(ctx: ApiGuild, Path(params): Path<BTreeMap<String, String>>) -> Result<Response, ApiError> {
    let user = user_param(&params)?;
    let owner = ctx.guild.get().await?.and_then(|g| g.owner_id);
    if owner == Some(user) {
        return Err(ApiError::invalid("user_id", "The server owner always has access; it cannot be revoked."));
    }
    if !ctx.guild.revoke(user).await? {
        return Err(ApiError::not_found("This user has no delegated access here."));
    }
    tracing::info!(guild_id = ctx.guild_id(), target_user = user, "access revoked through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Text-like channels (text, announcement, forum) a setting may name.
const PICKABLE_CHANNELS: &[u8] = &[0, 5, 15];

fn discord_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "reading the server's channels, roles or members from Discord failed");
    ApiError::new(StatusCode::BAD_GATEWAY, "discord_unavailable", "Discord could not be reached; try again.")
}

async fn directory(ctx: ApiGuild, Query(q): Query<BTreeMap<String, String>>) -> Result<Response, ApiError> {
    use twilight_model::id::Id;
    let guild = Id::new(ctx.guild_id());
    let http = &ctx.app.http;
    let channels = http.guild_channels(guild).await.map_err(discord_failed)?.models().await.map_err(discord_failed)?;
    let mut channels: Vec<_> = channels.iter().filter(|c| PICKABLE_CHANNELS.contains(&u8::from(c.kind))).collect();
    channels.sort_by_key(|c| (c.position.unwrap_or(0), c.id));
    let roles = http.roles(guild).await.map_err(discord_failed)?.models().await.map_err(discord_failed)?;
    let mut roles: Vec<_> = roles.iter().filter(|r| r.id.get() != ctx.guild_id() && !r.managed).collect();
    roles.sort_by_key(|r| std::cmp::Reverse(r.position));
    let members = match q.get("members").map(|m| m.trim()).filter(|m| !m.is_empty()) {
        None => Vec::new(),
        Some(name) if name.chars().count() > 100 => {
            return Err(ApiError::invalid("members", "members must be at most 100 characters."));
        }
        Some(name) => {
            let found = http.search_guild_members(guild, name).limit(10).await.map_err(discord_failed)?;
            let found = found.models().await.map_err(discord_failed)?;
            found
                .iter()
                .filter(|m| !m.user.bot)
                .map(|m| {
                    json!({
                        "id": m.user.id.to_string(),
                        "username": m.user.name,
                        "display_name": m.nick.clone().or_else(|| m.user.global_name.clone()).unwrap_or_else(|| m.user.name.clone()),
                    })
                })
                .collect()
        }
    };
    Ok(Json(json!({
        "channels": channels.iter().map(|c| json!({"id": c.id.to_string(), "name": c.name})).collect::<Vec<_>>(),
        "roles": roles.iter().map(|r| json!({"id": r.id.to_string(), "name": r.name})).collect::<Vec<_>>(),
        "members": members,
    }))
    .into_response())
}
