//! Discord-shaped JSON for the fake's objects (what twilight, discord.js and discord.py parse).

use crate::snowflake::{iso8601, timestamp_ms};
use crate::state::{Channel, Guild, Member, Role, State, User};
use serde_json::{Value, json};

/// A user object.
pub fn user(u: &User) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "public_flags": 0,
        "flags": 0,
    });
    if u.bot {
        v["bot"] = json!(true);
    }
    v
}

/// A user by id (a placeholder name for unknown users).
pub fn user_by_id(state: &State, id: u64) -> Value {
    match state.users.get(&id) {
        Some(u) => user(u),
        None => user(&User { id, username: format!("user{id}"), bot: false }),
    }
}

/// A role object.
pub fn role(r: &Role) -> Value {
    let mut v = json!({
        "id": r.id.to_string(),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": null, "tertiary_color": null},
        "hoist": r.hoist,
        "icon": null,
        "unicode_emoji": null,
        "position": r.position,
        "permissions": r.permissions.to_string(),
        "managed": r.bot_id.is_some(),
        "mentionable": r.mentionable,
        "flags": 0,
    });
    if let Some(bot) = r.bot_id {
        v["tags"] = json!({"bot_id": bot.to_string()});
    }
    v
}

/// A guild member object without its `user` (as in MESSAGE_CREATE).
pub fn member_partial(m: &Member) -> Value {
    json!({
        "nick": m.nick,
        "avatar": null,
        "banner": null,
        "roles": m.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": iso8601(m.joined_at_ms),
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": m.communication_disabled_until,
    })
}

/// A guild member object with `user`.
pub fn member(state: &State, m: &Member) -> Value {
    let mut v = member_partial(m);
    v["user"] = user_by_id(state, m.user_id);
    v
}

/// A channel object (text channel, category, thread or DM).
pub fn channel(state: &State, c: &Channel) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": c.kind,
        "last_message_id": c.last_message_id.map(|id| id.to_string()),
        "flags": 0,
    });
    if c.kind == 1 {
        v["recipients"] = Value::Array(c.recipients.iter().map(|u| user_by_id(state, *u)).collect());
        return v;
    }
    v["guild_id"] = json!(c.guild_id.map(|id| id.to_string()));
    v["name"] = json!(c.name);
    v["parent_id"] = json!(c.parent_id.map(|id| id.to_string()));
    v["rate_limit_per_user"] = json!(c.rate_limit_per_user);
    if matches!(c.kind, 10..=12) {
        v["owner_id"] = json!(c.owner_id.map(|id| id.to_string()));
        v["message_count"] = json!(state.messages.get(&c.id).map_or(0, Vec::len));
        v["member_count"] = json!(c.thread_members.len());
        v["total_message_sent"] = v["message_count"].clone();
        v["thread_metadata"] = json!({
            "archived": c.archived,
            "auto_archive_duration": c.auto_archive_duration,
            "archive_timestamp": iso8601(timestamp_ms(c.id)),
            "locked": c.locked,
            "invitable": c.kind == 12,
            "create_timestamp": iso8601(timestamp_ms(c.id)),
        });
    } else {
        v["position"] = json!(c.position);
        v["permission_overwrites"] = c.permission_overwrites.clone();
        v["nsfw"] = json!(c.nsfw);
        v["topic"] = json!(c.topic);
    }
    v
}

/// A full guild object as in GET /guilds/{id} (`create` adds the GUILD_CREATE extras).
pub fn guild(state: &State, g: &Guild, create: bool) -> Value {
    let mut v = json!({
        "id": g.id.to_string(),
        "name": g.name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "banner": null,
        "owner_id": g.owner_id.to_string(),
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": g.roles.iter().map(role).collect::<Vec<_>>(),
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": g.channels.first().map(|id| id.to_string()),
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "safety_alerts_channel_id": null,
        "nsfw": false,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": false,
        "region": "deprecated",
    });
    if create {
        let (channels, threads): (Vec<_>, Vec<_>) =
            g.channels.iter().filter_map(|id| state.channels.get(id)).partition(|c| !matches!(c.kind, 10..=12));
        v["joined_at"] = json!(iso8601(g.created_ms));
        v["large"] = json!(false);
        v["unavailable"] = json!(false);
        v["member_count"] = json!(g.members.len());
        v["voice_states"] = json!([]);
        v["members"] = Value::Array(g.members.values().map(|m| member(state, m)).collect());
        v["channels"] = Value::Array(channels.into_iter().map(|c| channel(state, c)).collect());
        v["threads"] = Value::Array(threads.into_iter().map(|c| channel(state, c)).collect());
        v["presences"] = json!([]);
        v["stage_instances"] = json!([]);
        v["guild_scheduled_events"] = json!([]);
        v["soundboard_sounds"] = json!([]);
    }
    v
}

/// Parse `<@id>` / `<@!id>` user mentions and `<@&id>` role mentions out of message content.
pub fn mentions(content: &str) -> (Vec<u64>, Vec<u64>) {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (is_role, body) = match rest.strip_prefix('&') {
            Some(b) => (true, b),
            None => (false, rest.strip_prefix('!').unwrap_or(rest)),
        };
        if let Some(end) = body.find('>')
            && let Ok(id) = body[..end].parse::<u64>()
        {
            if is_role {
                roles.push(id);
            } else if !users.contains(&id) {
                users.push(id);
            }
        }
    }
    (users, roles)
}

/// A message object.
pub fn message(
    state: &State,
    id: u64,
    channel_id: u64,
    author_id: u64,
    body: &Value,
    webhook_or_app: Option<u64>,
) -> Value {
    let content = body["content"].as_str().unwrap_or_default();
    let guild_id = state.channel_guild(channel_id);
    let (user_mentions, role_mentions) = mentions(content);
    let mentions: Vec<Value> = user_mentions
        .iter()
        .map(|u| {
            let mut v = user_by_id(state, *u);
            if let Some(m) = guild_id.and_then(|g| state.guilds.get(&g)?.members.get(u)) {
                v["member"] = member_partial(m);
            }
            v
        })
        .collect();
    let mut v = json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": user_by_id(state, author_id),
        "content": content,
        "timestamp": iso8601(timestamp_ms(id)),
        "edited_timestamp": null,
        "tts": body["tts"].as_bool().unwrap_or(false),
        "mention_everyone": false,
        "mentions": mentions,
        "mention_roles": role_mentions.iter().map(u64::to_string).collect::<Vec<_>>(),
        "attachments": uploaded_attachments(id, channel_id, body),
        "embeds": body.get("embeds").filter(|a| a.is_array()).cloned().unwrap_or(json!([])),
        "components": body.get("components").filter(|a| a.is_array()).cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
        "flags": body["flags"].as_u64().unwrap_or(0),
    });
    if let Some(g) = guild_id {
        v["guild_id"] = json!(g.to_string());
        if let Some(m) = state.guilds.get(&g).and_then(|g| g.members.get(&author_id)) {
            v["member"] = member_partial(m);
        }
    }
    if let Some(app) = webhook_or_app {
        v["webhook_id"] = json!(app.to_string());
        v["application_id"] = json!(app.to_string());
    }
    if let Some(reference) = body.get("message_reference").filter(|r| r.is_object()) {
        let mut r = reference.clone();
        r["channel_id"] = r.get("channel_id").cloned().unwrap_or(json!(channel_id.to_string()));
        v["message_reference"] = r;
        v["type"] = json!(19);
    }
    if let Some(nonce) = body.get("nonce") {
        v["nonce"] = nonce.clone();
    }
    v
}

/// Apply a message edit body to a stored message.
pub fn apply_edit(msg: &mut Value, body: &Value, now_ms: u64) {
    if let Some(obj) = body.as_object() {
        for key in ["content", "embeds", "components", "flags", "attachments"] {
            if let Some(v) = obj.get(key) {
                msg[key] = match (v.is_null(), key) {
                    (false, _) => v.clone(),
                    (true, "content") => json!(""),
                    (true, "flags") => json!(0),
                    (true, _) => json!([]),
                };
            }
        }
    }
    msg["edited_timestamp"] = json!(iso8601(now_ms));
}

/// What Discord stores for the `attachments` of a message it creates: the upload placeholders
/// (`{"id": 0, "filename": …}`) become full attachment objects with their own ids and URLs.
fn uploaded_attachments(message_id: u64, channel_id: u64, body: &Value) -> Value {
    let Some(items) = body.get("attachments").and_then(Value::as_array) else {
        return json!([]);
    };
    let list: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let id = message_id + 1 + i as u64;
            let filename = a["filename"].as_str().unwrap_or("file").to_owned();
            let url = format!("https://cdn.discordapp.com/attachments/{channel_id}/{id}/{filename}");
            let mut out = json!({
                "id": id.to_string(),
                "filename": filename,
                "size": 0,
                "url": url,
                "proxy_url": url,
            });
            if let Some(d) = a.get("description").filter(|d| d.is_string()) {
                out["description"] = d.clone();
            }
            out
        })
        .collect();
    Value::Array(list)
}
