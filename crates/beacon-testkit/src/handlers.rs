//! Operation handlers: what the fake does for each REST operation it implements.

use crate::json;
use crate::rest::Query;
use crate::server::Shared;
use crate::snowflake::{iso8601, now_ms};
use crate::state::{Channel, Member, Role, State};
use crate::validate::Matched;
use serde_json::{Value, json};

/// Gateway intents used to route dispatches.
pub mod intents {
    pub const GUILDS: u64 = 1;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_MODERATION: u64 = 1 << 2;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const DIRECT_MESSAGE_REACTIONS: u64 = 1 << 13;
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    /// Recorded as a violation (the client did something Discord rejects).
    pub violation: Option<String>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, body: Some(body), violation: None }
    }

    /// 200 with a body.
    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    /// 204.
    pub fn empty() -> Self {
        Self { status: 204, body: None, violation: None }
    }

    /// A Discord error (`{"message", "code"}`).
    pub fn error(status: u16, code: u32, message: &str) -> Self {
        Self::json(status, json!({"message": message, "code": code}))
    }

    /// A Discord error that is also a violation.
    pub fn violation(status: u16, code: u32, message: &str, reason: String) -> Self {
        let mut r = Self::error(status, code, message);
        r.violation = Some(reason);
        r
    }
}

fn unknown(code: u32, what: &str) -> Reply {
    Reply::error(404, code, &format!("Unknown {what}"))
}

/// Run the operation.
pub fn dispatch(sh: &Shared, m: &Matched, q: &Query, body: &Value, reason: Option<&str>) -> Reply {
    let mut st = sh.lock();
    let st = &mut *st;
    route(sh, st, m, q, body, reason)
}

fn route(sh: &Shared, st: &mut State, m: &Matched, q: &Query, body: &Value, reason: Option<&str>) -> Reply {
    let bot = sh.bot_id();
    match m.op.id.as_str() {
        "get_gateway" => Reply::ok(json!({"url": gateway_url(sh)})),
        "get_bot_gateway" => Reply::ok(json!({
            "url": gateway_url(sh),
            "shards": sh.opts.shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000u32.saturating_sub(st.identify_count),
                "reset_after": 86_400_000,
                "max_concurrency": sh.opts.max_concurrency,
            },
        })),
        "get_my_user" => {
            let mut me = json::user_by_id(st, bot);
            me["mfa_enabled"] = json!(false);
            me["verified"] = json!(true);
            me["locale"] = json!("en-US");
            Reply::ok(me)
        }
        "get_user" => match st.users.get(&m.id("user_id")) {
            Some(u) => Reply::ok(json::user(u)),
            None => unknown(10013, "User"),
        },
        // discord.py reads its application through the OAuth2 route at login.
        "get_my_application" | "get_my_oauth2_application" => Reply::ok(application(sh, st)),
        "list_my_guilds" => crate::oauth::list_guilds(st, bot, q),
        "create_dm" => create_dm(sh, st, body),
        "get_guild" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => Reply::ok(json::guild(st, g, false)),
            None => unknown(10004, "Guild"),
        },
        "list_guild_channels" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => Reply::ok(Value::Array(
                g.channels
                    .iter()
                    .filter_map(|c| st.channels.get(c))
                    .filter(|c| !matches!(c.kind, 10..=12))
                    .map(|c| json::channel(st, c))
                    .collect(),
            )),
            None => unknown(10004, "Guild"),
        },
        "get_active_guild_threads" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => {
                let threads: Vec<Value> = g
                    .channels
                    .iter()
                    .filter_map(|c| st.channels.get(c))
                    .filter(|c| matches!(c.kind, 10..=12) && !c.archived)
                    .map(|c| json::channel(st, c))
                    .collect();
                Reply::ok(json!({"threads": threads, "members": []}))
            }
            None => unknown(10004, "Guild"),
        },
        "create_guild_channel" => create_guild_channel(sh, st, m.id("guild_id"), body),
        "list_guild_roles" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => Reply::ok(Value::Array(g.roles.iter().map(json::role).collect())),
            None => unknown(10004, "Guild"),
        },
        "create_guild_role" => create_role(sh, st, m.id("guild_id"), body),
        "delete_guild_role" => {
            let (gid, rid) = (m.id("guild_id"), m.id("role_id"));
            let Some(g) = st.guilds.get_mut(&gid) else { return unknown(10004, "Guild") };
            let before = g.roles.len();
            g.roles.retain(|r| r.id != rid || r.id == gid);
            if g.roles.len() == before {
                return unknown(10011, "Role");
            }
            for member in g.members.values_mut() {
                member.roles.retain(|r| *r != rid);
            }
            let ev = json!({"guild_id": gid.to_string(), "role_id": rid.to_string()});
            st.dispatch(bot, Some(gid), "GUILD_ROLE_DELETE", &ev, intents::GUILDS);
            Reply::empty()
        }
        "list_guild_members" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => {
                let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(1usize);
                let after: u64 = q.get("after").and_then(|l| l.parse().ok()).unwrap_or(0);
                Reply::ok(Value::Array(
                    g.members
                        .values()
                        .filter(|mem| mem.user_id > after)
                        .take(limit)
                        .map(|mem| json::member(st, mem))
                        .collect(),
                ))
            }
            None => unknown(10004, "Guild"),
        },
        // Discord: members whose username or nickname starts with `query` (1–1000, default 1).
        "search_guild_members" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => {
                let Some(query) = q.get("query").map(|s| s.to_lowercase()) else {
                    return Reply::error(400, 50035, "Invalid Form Body: query is required");
                };
                let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
                    None => 1,
                    Some(Ok(l)) if (1..=1000).contains(&l) => l,
                    Some(_) => return Reply::error(400, 50035, "Invalid Form Body: limit must be 1 to 1000"),
                };
                Reply::ok(Value::Array(
                    g.members
                        .values()
                        .filter(|mem| {
                            let name = st.users.get(&mem.user_id).map(|u| u.username.to_lowercase());
                            let nick = mem.nick.as_ref().map(|n| n.to_lowercase());
                            [name, nick].into_iter().flatten().any(|n| n.starts_with(&query))
                        })
                        .take(limit)
                        .map(|mem| json::member(st, mem))
                        .collect(),
                ))
            }
            None => unknown(10004, "Guild"),
        },
        "get_guild_member" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => match g.members.get(&m.id("user_id")) {
                Some(mem) => Reply::ok(json::member(st, mem)),
                None => unknown(10007, "Member"),
            },
            None => unknown(10004, "Guild"),
        },
        "update_guild_member" => update_member(sh, st, m.id("guild_id"), m.id("user_id"), body, reason),
        "delete_guild_member" => crate::moderation::kick(sh, st, m.id("guild_id"), m.id("user_id"), bot, reason),
        "bulk_ban_users_from_guild" => crate::moderation::bulk_ban(sh, st, m.id("guild_id"), body, reason),
        "list_guild_audit_log_entries" => crate::moderation::audit_log(sh, st, m.id("guild_id"), q),
        "add_guild_member_role" | "delete_guild_member_role" => {
            let add = m.op.id == "add_guild_member_role";
            let (gid, uid, rid) = (m.id("guild_id"), m.id("user_id"), m.id("role_id"));
            let Some(g) = st.guilds.get_mut(&gid) else { return unknown(10004, "Guild") };
            if !g.roles.iter().any(|r| r.id == rid) {
                return unknown(10011, "Role");
            }
            let Some(mem) = g.members.get_mut(&uid) else { return unknown(10007, "Member") };
            mem.roles.retain(|r| *r != rid);
            if add {
                mem.roles.push(rid);
            }
            let mem = mem.clone();
            member_update(sh, st, gid, &mem);
            Reply::empty()
        }
        "list_guild_bans" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => Reply::ok(Value::Array(
                g.bans
                    .iter()
                    .map(|(u, reason)| json!({"user": json::user_by_id(st, *u), "reason": reason}))
                    .collect(),
            )),
            None => unknown(10004, "Guild"),
        },
        "get_guild_ban" => match st.guilds.get(&m.id("guild_id")) {
            Some(g) => match g.bans.get(&m.id("user_id")) {
                Some(reason) => Reply::ok(json!({"user": json::user_by_id(st, m.id("user_id")), "reason": reason})),
                None => unknown(10026, "Ban"),
            },
            None => unknown(10004, "Guild"),
        },
        "ban_user_from_guild" => crate::moderation::ban(sh, st, m.id("guild_id"), m.id("user_id"), reason),
        "unban_user_from_guild" => crate::moderation::unban(sh, st, m.id("guild_id"), m.id("user_id"), bot, reason),
        "get_channel" => match st.channels.get(&m.id("channel_id")) {
            Some(c) => Reply::ok(json::channel(st, c)),
            None => unknown(10003, "Channel"),
        },
        "update_channel" => update_channel(sh, st, m.id("channel_id"), body),
        "delete_channel" => match delete_channel(st, bot, m.id("channel_id")) {
            Some(v) => Reply::ok(v),
            None => unknown(10003, "Channel"),
        },
        "list_messages" => {
            let cid = m.id("channel_id");
            if !st.channels.contains_key(&cid) {
                return unknown(10003, "Channel");
            }
            let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50usize);
            let mut msgs: Vec<Value> = st.messages.get(&cid).cloned().unwrap_or_default();
            msgs.reverse();
            let before: Option<u64> = q.get("before").and_then(|v| v.parse().ok());
            let after: Option<u64> = q.get("after").and_then(|v| v.parse().ok());
            let id_of = |v: &Value| v["id"].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            msgs.retain(|v| before.is_none_or(|b| id_of(v) < b) && after.is_none_or(|a| id_of(v) > a));
            msgs.truncate(limit);
            Reply::ok(Value::Array(msgs))
        }
        "create_message" => {
            let cid = m.id("channel_id");
            let Some(channel) = st.channels.get(&cid) else {
                return unknown(10003, "Channel");
            };
            // A DM reaches a user who shares a server with the bot and accepts DMs from it;
            // otherwise Discord refuses with 50007 (not a client error: the bot cannot know).
            if channel.kind == 1 && channel.recipients.iter().any(|u| !st.dm_allowed(bot, *u)) {
                return Reply::error(403, 50007, "Cannot send messages to this user");
            }
            // `enforce_nonce` with a nonce: the same author's message with that nonce from the
            // past few minutes is returned and nothing new is created. Without `enforce_nonce` a
            // nonce deduplicates nothing (API v10).
            let enforced = match body.get("nonce") {
                Some(Value::String(n)) => Some(n.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
            .filter(|_| body["enforce_nonce"].as_bool() == Some(true));
            let now = now_ms();
            if let Some(nonce) = &enforced
                && let Some(&(channel, message, at)) = st.nonces.get(&(bot, nonce.clone()))
                && now.saturating_sub(at) <= crate::state::NONCE_WINDOW_MS
                && let Some(existing) = st.message(channel, message)
            {
                return Reply::ok(existing.clone());
            }
            let created = post_message(sh, st, cid, bot, body, None);
            if let Some(nonce) = enforced {
                let id = created["id"].as_str().and_then(|i| i.parse().ok()).unwrap_or_default();
                st.nonces.insert((bot, nonce), (cid, id, now));
            }
            Reply::ok(created)
        }
        "get_message" => match st.message(m.id("channel_id"), m.id("message_id")) {
            Some(v) => Reply::ok(v.clone()),
            None => unknown(10008, "Message"),
        },
        "update_message" => {
            let (cid, mid) = (m.id("channel_id"), m.id("message_id"));
            edit_message(sh, st, cid, mid, body)
        }
        "delete_message" => {
            let (cid, mid) = (m.id("channel_id"), m.id("message_id"));
            if delete_message(sh, st, cid, mid) { Reply::empty() } else { unknown(10008, "Message") }
        }
        "bulk_delete_messages" => {
            let cid = m.id("channel_id");
            let ids: Vec<u64> = body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect();
            if !(2..=100).contains(&ids.len()) {
                return Reply::violation(400, 50016, "You must provide between 2 and 100 messages", format!("bulk delete of {} messages (2-100 allowed)", ids.len()));
            }
            for id in ids {
                delete_message(sh, st, cid, id);
            }
            Reply::empty()
        }
        "add_my_message_reaction" | "delete_my_message_reaction" | "delete_user_message_reaction" => {
            let (cid, mid) = (m.id("channel_id"), m.id("message_id"));
            let emoji = percent_decode(m.params.get("emoji_name").map(String::as_str).unwrap_or_default());
            let user = if m.op.id == "delete_user_message_reaction" { m.id("user_id") } else { bot };
            if st.message(cid, mid).is_none() {
                return unknown(10008, "Message");
            }
            react(sh, st, cid, mid, user, &emoji, m.op.id == "add_my_message_reaction");
            Reply::empty()
        }
        "list_message_reactions_by_emoji" => {
            let emoji = percent_decode(m.params.get("emoji_name").map(String::as_str).unwrap_or_default());
            let users: Vec<Value> = st
                .reactions
                .get(&m.id("message_id"))
                .and_then(|r| r.get(&emoji))
                .into_iter()
                .flatten()
                .map(|u| json::user_by_id(st, *u))
                .collect();
            Reply::ok(Value::Array(users))
        }
        "delete_all_message_reactions" => {
            st.reactions.remove(&m.id("message_id"));
            Reply::empty()
        }
        "create_thread" | "create_thread_from_message" => create_thread(sh, st, m, body),
        "join_thread" | "add_thread_member" | "delete_thread_member" => {
            let cid = m.id("channel_id");
            let uid = if m.op.id == "join_thread" { bot } else { m.id("user_id") };
            let Some(c) = st.channels.get_mut(&cid) else { return unknown(10003, "Channel") };
            c.thread_members.retain(|u| *u != uid);
            if m.op.id != "delete_thread_member" {
                c.thread_members.push(uid);
            }
            Reply::empty()
        }
        "list_thread_members" => match st.channels.get(&m.id("channel_id")) {
            Some(c) => Reply::ok(Value::Array(
                c.thread_members
                    .iter()
                    .map(|u| json!({"id": c.id.to_string(), "user_id": u.to_string(), "join_timestamp": iso8601(now_ms()), "flags": 0}))
                    .collect(),
            )),
            None => unknown(10003, "Channel"),
        },
        "trigger_typing_indicator" => Reply::empty(),
        "set_channel_permission_overwrite" => {
            let (cid, oid) = (m.id("channel_id"), m.id("overwrite_id"));
            let Some(c) = st.channels.get_mut(&cid) else { return unknown(10003, "Channel") };
            let mut ow = body.clone();
            ow["id"] = json!(oid.to_string());
            if let Some(list) = c.permission_overwrites.as_array_mut() {
                list.retain(|o| o["id"] != ow["id"]);
                list.push(ow);
            }
            Reply::empty()
        }
        id if id.contains("application_command") => crate::commands::handle(sh, st, m, body),
        "create_interaction_response"
        | "execute_webhook"
        | "get_original_webhook_message"
        | "update_original_webhook_message"
        | "delete_original_webhook_message"
        | "get_webhook_message"
        | "update_webhook_message"
        | "delete_webhook_message" => crate::interactions::handle_rest(sh, st, m, q, body),
        other => {
            // Real Discord operation the fake does not model: accept it without effect.
            tracing::debug!(operation = other, "fake discord: operation not modelled");
            if m.op.method == "GET" {
                Reply::error(404, 0, "404: Not Found (not modelled by fake-discord)")
            } else {
                Reply::empty()
            }
        }
    }
}

fn gateway_url(sh: &Shared) -> String {
    format!("ws://{}", sh.addr)
}

fn application(sh: &Shared, st: &State) -> Value {
    json!({
        "id": sh.app_id.to_string(),
        "name": "Beacon Test",
        "icon": null,
        "description": "",
        "summary": "",
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": hex::encode(sh.signing.verifying_key().to_bytes()),
        "flags": (1 << 19) | (1 << 15) | (1 << 13),
        "owner": json::user_by_id(st, 1),
        "team": null,
        "bot": json::user_by_id(st, sh.app_id),
        "interactions_endpoint_url": st.endpoint,
        "approximate_guild_count": st.guilds.len(),
    })
}

/// Decode `%XX` escapes (reaction emoji in paths).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn create_dm(sh: &Shared, st: &mut State, body: &Value) -> Reply {
    let Some(uid) = body["recipient_id"].as_str().and_then(|s| s.parse::<u64>().ok()) else {
        return Reply::error(400, 50035, "Invalid Form Body");
    };
    if let Some(c) = st.channels.values().find(|c| c.kind == 1 && c.recipients == vec![uid]) {
        return Reply::ok(json::channel(st, c));
    }
    let id = sh.ids.next();
    let c = new_channel(id, 1, None, String::new());
    let c = Channel { recipients: vec![uid], ..c };
    let v = json::channel(st, &c);
    st.channels.insert(id, c);
    Reply::ok(v)
}

/// A channel with defaults.
pub fn new_channel(id: u64, kind: u8, guild_id: Option<u64>, name: String) -> Channel {
    Channel {
        id,
        kind,
        guild_id,
        name,
        position: 0,
        parent_id: None,
        topic: None,
        owner_id: None,
        last_message_id: None,
        archived: false,
        locked: false,
        auto_archive_duration: 1440,
        thread_members: Vec::new(),
        recipients: Vec::new(),
        permission_overwrites: json!([]),
        rate_limit_per_user: 0,
        nsfw: false,
    }
}

fn create_guild_channel(sh: &Shared, st: &mut State, gid: u64, body: &Value) -> Reply {
    let Some(g) = st.guilds.get(&gid) else {
        return unknown(10004, "Guild");
    };
    let id = sh.ids.next();
    let mut c = new_channel(
        id,
        body["type"].as_u64().unwrap_or(0) as u8,
        Some(gid),
        body["name"].as_str().unwrap_or("channel").to_owned(),
    );
    c.position = g.channels.len() as i64;
    c.topic = body["topic"].as_str().map(str::to_owned);
    c.parent_id = body["parent_id"].as_str().and_then(|s| s.parse().ok());
    if body["permission_overwrites"].is_array() {
        c.permission_overwrites = body["permission_overwrites"].clone();
    }
    let v = json::channel(st, &c);
    st.channels.insert(id, c);
    if let Some(g) = st.guilds.get_mut(&gid) {
        g.channels.push(id);
    }
    st.dispatch(sh.bot_id(), Some(gid), "CHANNEL_CREATE", &v, intents::GUILDS);
    Reply::json(201, v)
}

fn update_channel(sh: &Shared, st: &mut State, cid: u64, body: &Value) -> Reply {
    let Some(c) = st.channels.get_mut(&cid) else {
        return unknown(10003, "Channel");
    };
    if let Some(n) = body["name"].as_str() {
        c.name = n.to_owned();
    }
    if body.get("topic").is_some() {
        c.topic = body["topic"].as_str().map(str::to_owned);
    }
    if let Some(a) = body["archived"].as_bool() {
        c.archived = a;
    }
    if let Some(l) = body["locked"].as_bool() {
        c.locked = l;
    }
    if let Some(r) = body["rate_limit_per_user"].as_u64() {
        c.rate_limit_per_user = r;
    }
    if body["permission_overwrites"].is_array() {
        c.permission_overwrites = body["permission_overwrites"].clone();
    }
    let c = c.clone();
    let v = json::channel(st, &c);
    let event = if matches!(c.kind, 10..=12) { "THREAD_UPDATE" } else { "CHANNEL_UPDATE" };
    st.dispatch(sh.bot_id(), c.guild_id, event, &v, intents::GUILDS);
    Reply::ok(v)
}

fn create_role(sh: &Shared, st: &mut State, gid: u64, body: &Value) -> Reply {
    let Some(g) = st.guilds.get_mut(&gid) else {
        return unknown(10004, "Guild");
    };
    let role = Role {
        id: sh.ids.next(),
        name: body["name"].as_str().unwrap_or("new role").to_owned(),
        permissions: body["permissions"].as_str().and_then(|p| p.parse().ok()).unwrap_or(0),
        position: g.roles.len() as i64,
        color: body["color"].as_u64().unwrap_or(0) as u32,
        hoist: body["hoist"].as_bool().unwrap_or(false),
        mentionable: body["mentionable"].as_bool().unwrap_or(false),
        bot_id: None,
    };
    let v = json::role(&role);
    g.roles.push(role);
    let ev = json!({"guild_id": gid.to_string(), "role": v});
    st.dispatch(sh.bot_id(), Some(gid), "GUILD_ROLE_CREATE", &ev, intents::GUILDS);
    Reply::ok(v)
}

fn member_update(sh: &Shared, st: &mut State, gid: u64, mem: &Member) {
    let mut ev = json::member(st, mem);
    ev["guild_id"] = json!(gid.to_string());
    st.dispatch(sh.bot_id(), Some(gid), "GUILD_MEMBER_UPDATE", &ev, intents::GUILD_MEMBERS);
}

fn update_member(sh: &Shared, st: &mut State, gid: u64, uid: u64, body: &Value, reason: Option<&str>) -> Reply {
    let Some(g) = st.guilds.get(&gid) else {
        return unknown(10004, "Guild");
    };
    let Some(before) = g.members.get(&uid).map(|m| m.communication_disabled_until.clone()) else {
        return unknown(10007, "Member");
    };
    let timeout = body.get("communication_disabled_until");
    if let Some(value) = timeout
        && let Err(refusal) = crate::moderation::check_timeout(st, gid, uid, sh.bot_id(), value)
    {
        return refusal;
    }
    let Some(mem) = st.guilds.get_mut(&gid).and_then(|g| g.members.get_mut(&uid)) else {
        return unknown(10007, "Member");
    };
    if body.get("nick").is_some() {
        mem.nick = body["nick"].as_str().map(str::to_owned);
    }
    if let Some(roles) = body["roles"].as_array() {
        mem.roles = roles.iter().filter_map(|r| r.as_str()?.parse().ok()).collect();
    }
    if let Some(value) = timeout {
        mem.communication_disabled_until = value.as_str().map(str::to_owned);
    }
    let mem = mem.clone();
    member_update(sh, st, gid, &mem);
    if timeout.is_some() && before != mem.communication_disabled_until {
        let after = mem.communication_disabled_until.clone();
        crate::moderation::audit_timeout(sh, st, gid, uid, sh.bot_id(), before, after, reason);
    }
    Reply::ok(json::member(st, &mem))
}

/// Store a new message and dispatch MESSAGE_CREATE.
pub fn post_message(sh: &Shared, st: &mut State, cid: u64, author: u64, body: &Value, app: Option<u64>) -> Value {
    let id = sh.ids.next();
    let v = json::message(st, id, cid, author, body, app);
    let guild = st.channel_guild(cid);
    st.messages.entry(cid).or_default().push(v.clone());
    if let Some(c) = st.channels.get_mut(&cid) {
        c.last_message_id = Some(id);
    }
    let ephemeral = body["flags"].as_u64().unwrap_or(0) & 64 != 0;
    if !ephemeral {
        let intent = if guild.is_some() { intents::GUILD_MESSAGES } else { intents::DIRECT_MESSAGES };
        st.dispatch(sh.bot_id(), guild, "MESSAGE_CREATE", &v, intent);
    }
    v
}

/// Apply an edit and dispatch MESSAGE_UPDATE.
pub fn edit_message(sh: &Shared, st: &mut State, cid: u64, mid: u64, body: &Value) -> Reply {
    let Some(msg) = st.message_mut(cid, mid) else {
        return unknown(10008, "Message");
    };
    json::apply_edit(msg, body, now_ms());
    let v = msg.clone();
    let guild = st.channel_guild(cid);
    let intent = if guild.is_some() { intents::GUILD_MESSAGES } else { intents::DIRECT_MESSAGES };
    if v["flags"].as_u64().unwrap_or(0) & 64 == 0 {
        st.dispatch(sh.bot_id(), guild, "MESSAGE_UPDATE", &v, intent);
    }
    Reply::ok(v)
}

/// Delete a stored message and dispatch MESSAGE_DELETE.
pub fn delete_message(sh: &Shared, st: &mut State, cid: u64, mid: u64) -> bool {
    let id = mid.to_string();
    let Some(list) = st.messages.get_mut(&cid) else {
        return false;
    };
    let before = list.len();
    list.retain(|m| m["id"].as_str() != Some(id.as_str()));
    if list.len() == before {
        return false;
    }
    let guild = st.channel_guild(cid);
    let mut ev = json!({"id": id, "channel_id": cid.to_string()});
    if let Some(g) = guild {
        ev["guild_id"] = json!(g.to_string());
    }
    let intent = if guild.is_some() { intents::GUILD_MESSAGES } else { intents::DIRECT_MESSAGES };
    st.dispatch(sh.bot_id(), guild, "MESSAGE_DELETE", &ev, intent);
    true
}

/// Add or remove a reaction and dispatch MESSAGE_REACTION_ADD/REMOVE.
pub fn react(sh: &Shared, st: &mut State, cid: u64, mid: u64, user: u64, emoji: &str, add: bool) {
    let users = st.reactions.entry(mid).or_default().entry(emoji.to_owned()).or_default();
    users.retain(|u| *u != user);
    if add {
        users.push(user);
    }
    let guild = st.channel_guild(cid);
    let (emoji_id, emoji_name) = parse_emoji(emoji);
    let mut ev = json!({
        "user_id": user.to_string(),
        "channel_id": cid.to_string(),
        "message_id": mid.to_string(),
        "emoji": {"id": emoji_id, "name": emoji_name},
        "burst": false,
        "type": 0,
    });
    if let Some(g) = guild {
        ev["guild_id"] = json!(g.to_string());
        if add && let Some(mem) = st.guilds.get(&g).and_then(|g| g.members.get(&user)) {
            ev["member"] = json::member(st, mem);
        }
    }
    if add {
        ev["burst_colors"] = json!([]);
        if let Some(author) = st.message(cid, mid).and_then(|m| m["author"]["id"].as_str()) {
            ev["message_author_id"] = json!(author);
        }
    }
    let intent = if guild.is_some() { intents::GUILD_MESSAGE_REACTIONS } else { intents::DIRECT_MESSAGE_REACTIONS };
    let event = if add { "MESSAGE_REACTION_ADD" } else { "MESSAGE_REACTION_REMOVE" };
    st.dispatch(sh.bot_id(), guild, event, &ev, intent);
}

/// `name:id` custom emoji or a unicode emoji.
fn parse_emoji(emoji: &str) -> (Value, Value) {
    match emoji.rsplit_once(':') {
        Some((name, id)) if id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() => {
            (json!(id), json!(name.trim_start_matches('<').trim_start_matches("a:").trim_start_matches(':')))
        }
        _ => (Value::Null, json!(emoji)),
    }
}

fn create_thread(sh: &Shared, st: &mut State, m: &Matched, body: &Value) -> Reply {
    let parent = m.id("channel_id");
    let Some(p) = st.channels.get(&parent) else {
        return unknown(10003, "Channel");
    };
    let gid = p.guild_id;
    let id = if m.op.id == "create_thread_from_message" { m.id("message_id") } else { sh.ids.next() };
    if m.op.id == "create_thread_from_message" && st.channels.contains_key(&id) {
        return Reply::error(400, 160004, "A thread has already been created for this message");
    }
    let kind = if m.op.id == "create_thread_from_message" { 11 } else { body["type"].as_u64().unwrap_or(12) as u8 };
    let mut c = new_channel(id, kind, gid, body["name"].as_str().unwrap_or("thread").to_owned());
    c.parent_id = Some(parent);
    c.owner_id = Some(sh.bot_id());
    c.thread_members = vec![sh.bot_id()];
    c.auto_archive_duration = body["auto_archive_duration"].as_u64().unwrap_or(1440) as u32;
    let v = json::channel(st, &c);
    st.channels.insert(id, c);
    if let Some(g) = gid.and_then(|g| st.guilds.get_mut(&g)) {
        g.channels.push(id);
    }
    let mut ev = v.clone();
    ev["newly_created"] = json!(true);
    st.dispatch(sh.bot_id(), gid, "THREAD_CREATE", &ev, intents::GUILDS);
    Reply::json(201, v)
}

/// Deletes a channel or thread (by the bot, or by someone in Discord's UI) and dispatches
/// CHANNEL_DELETE or THREAD_DELETE; the deleted channel, or `None` when there is none.
pub(crate) fn delete_channel(st: &mut State, bot: u64, cid: u64) -> Option<Value> {
    let c = st.channels.remove(&cid)?;
    let v = json::channel(st, &c);
    if let Some(g) = c.guild_id.and_then(|g| st.guilds.get_mut(&g)) {
        g.channels.retain(|x| *x != cid);
    }
    let event = if matches!(c.kind, 10..=12) { "THREAD_DELETE" } else { "CHANNEL_DELETE" };
    st.dispatch(bot, c.guild_id, event, &v, intents::GUILDS);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_paths_decode() {
        assert_eq!(percent_decode("%F0%9F%91%8D"), "👍");
        assert_eq!(parse_emoji("blob:123").0, json!("123"));
        assert_eq!(parse_emoji("👍").1, json!("👍"));
    }
}
