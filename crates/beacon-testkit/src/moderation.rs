//! Moderation as Discord enforces it: bans, kicks, member timeouts, bulk bans and the audit log.
//!
//! Each action needs its permission (BAN_MEMBERS, KICK_MEMBERS, MODERATE_MEMBERS; a bulk ban
//! also MANAGE_GUILD), never touches the owner, and only reaches members whose highest role is
//! below the actor's; administrators cannot be timed out, and a timeout ends at most 28 days
//! ahead. A refusal is Discord's `403 Missing Permissions` (50013), and a violation: a bot is
//! expected to check before it acts. Every action is an audit log entry carrying the request's
//! `X-Audit-Log-Reason`, dispatched as GUILD_AUDIT_LOG_ENTRY_CREATE.

use serde_json::{Value, json};

use crate::handlers::{Reply, intents};
use crate::json;
use crate::rest::Query;
use crate::server::Shared;
use crate::snowflake::now_ms;
use crate::state::{ADMINISTRATOR, BAN_MEMBERS, KICK_MEMBERS, MANAGE_GUILD, MODERATE_MEMBERS, State, VIEW_AUDIT_LOG};

/// Discord's longest timeout: 28 days.
pub const MAX_TIMEOUT_MS: u64 = 28 * 86_400_000;

/// Audit log action types.
pub mod action {
    /// MEMBER_KICK.
    pub const KICK: u64 = 20;
    /// MEMBER_BAN_ADD.
    pub const BAN: u64 = 22;
    /// MEMBER_BAN_REMOVE.
    pub const UNBAN: u64 = 23;
    /// MEMBER_UPDATE (timeouts).
    pub const MEMBER_UPDATE: u64 = 24;
}

fn query_param<T: std::str::FromStr>(q: &Query, key: &str) -> Option<T> {
    q.get(key).and_then(|v| v.parse().ok())
}

fn missing(what: &str, why: String) -> Reply {
    Reply::violation(403, 50013, "Missing Permissions", format!("{what}: {why}"))
}

fn unknown(code: u32, what: &str) -> Reply {
    Reply::error(404, code, &format!("Unknown {what}"))
}

/// `PUT /guilds/{guild}/bans/{user}` by the bot.
pub fn ban(sh: &Shared, st: &mut State, gid: u64, uid: u64, reason: Option<&str>) -> Reply {
    if !st.guilds.contains_key(&gid) {
        return unknown(10004, "Guild");
    }
    if !st.users.contains_key(&uid) {
        return unknown(10013, "User");
    }
    if let Some(why) = st.moderation_refusal(gid, sh.bot_id(), uid, BAN_MEMBERS) {
        return missing("ban", why);
    }
    apply_ban(sh, st, gid, uid, sh.bot_id(), reason);
    Reply::empty()
}

/// The effect of a ban by `actor` (already allowed): the member leaves, the ban is kept with its
/// reason, GUILD_BAN_ADD and the audit entry are dispatched. Banning a banned user changes nothing.
pub fn apply_ban(sh: &Shared, st: &mut State, gid: u64, uid: u64, actor: u64, reason: Option<&str>) {
    if st.guilds.get(&gid).is_some_and(|g| g.bans.contains_key(&uid)) {
        return;
    }
    remove(sh, st, gid, uid);
    if let Some(g) = st.guilds.get_mut(&gid) {
        g.bans.insert(uid, reason.map(str::to_owned));
    }
    let ev = json!({"guild_id": gid.to_string(), "user": json::user_by_id(st, uid)});
    st.dispatch(sh.bot_id(), Some(gid), "GUILD_BAN_ADD", &ev, intents::GUILD_MODERATION);
    st.audit(sh.ids.next(), sh.bot_id(), gid, actor, action::BAN, uid, reason, None);
}

/// `DELETE /guilds/{guild}/bans/{user}` by `actor`.
pub fn unban(sh: &Shared, st: &mut State, gid: u64, uid: u64, actor: u64, reason: Option<&str>) -> Reply {
    if !st.guilds.contains_key(&gid) {
        return unknown(10004, "Guild");
    }
    if st.member_permissions(gid, actor) & BAN_MEMBERS == 0 {
        return missing("unban", format!("user {actor} lacks BAN_MEMBERS"));
    }
    let Some(g) = st.guilds.get_mut(&gid) else { return unknown(10004, "Guild") };
    if g.bans.remove(&uid).is_none() {
        return unknown(10026, "Ban");
    }
    let ev = json!({"guild_id": gid.to_string(), "user": json::user_by_id(st, uid)});
    st.dispatch(sh.bot_id(), Some(gid), "GUILD_BAN_REMOVE", &ev, intents::GUILD_MODERATION);
    st.audit(sh.ids.next(), sh.bot_id(), gid, actor, action::UNBAN, uid, reason, None);
    Reply::empty()
}

/// `DELETE /guilds/{guild}/members/{user}` (a kick) by `actor`.
pub fn kick(sh: &Shared, st: &mut State, gid: u64, uid: u64, actor: u64, reason: Option<&str>) -> Reply {
    let Some(g) = st.guilds.get(&gid) else { return unknown(10004, "Guild") };
    if !g.members.contains_key(&uid) {
        return unknown(10007, "Member");
    }
    if let Some(why) = st.moderation_refusal(gid, actor, uid, KICK_MEMBERS) {
        return missing("kick", why);
    }
    remove(sh, st, gid, uid);
    st.audit(sh.ids.next(), sh.bot_id(), gid, actor, action::KICK, uid, reason, None);
    Reply::empty()
}

fn remove(sh: &Shared, st: &mut State, gid: u64, uid: u64) {
    let removed = st.guilds.get_mut(&gid).and_then(|g| g.members.remove(&uid)).is_some();
    if removed {
        let ev = json!({"guild_id": gid.to_string(), "user": json::user_by_id(st, uid)});
        st.dispatch(sh.bot_id(), Some(gid), "GUILD_MEMBER_REMOVE", &ev, intents::GUILD_MEMBERS);
    }
}

/// Checks a change of `communication_disabled_until` by `actor`; `Err` is Discord's answer.
pub fn check_timeout(st: &State, gid: u64, uid: u64, actor: u64, value: &Value) -> Result<(), Reply> {
    if let Some(why) = st.moderation_refusal(gid, actor, uid, MODERATE_MEMBERS) {
        return Err(missing("timeout", why));
    }
    if st.member_permissions(gid, uid) & ADMINISTRATOR != 0 {
        return Err(missing("timeout", format!("user {uid} is an administrator and cannot be timed out")));
    }
    let Some(text) = value.as_str() else {
        return if value.is_null() { Ok(()) } else { Err(bad_timeout("not an ISO8601 timestamp".into())) };
    };
    let until: jiff::Timestamp = text.parse().map_err(|e| bad_timeout(format!("{text:?} is not ISO8601: {e}")))?;
    let ahead = until.as_millisecond() - now_ms() as i64;
    if ahead > MAX_TIMEOUT_MS as i64 {
        return Err(bad_timeout(format!("{text} is {ahead} ms ahead; a timeout lasts at most 28 days")));
    }
    Ok(())
}

fn bad_timeout(why: String) -> Reply {
    let mut r = Reply::json(
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": {"communication_disabled_until": {"_errors": [{"code": "BASE_TYPE_BAD_TIME", "message": why}]}}}),
    );
    r.violation = Some(format!("communication_disabled_until: {why}"));
    r
}

/// The audit entry of a timeout change made by `actor`.
#[allow(clippy::too_many_arguments)] // the entry's fields: who, on whom, before, after, why
pub fn audit_timeout(
    sh: &Shared,
    st: &mut State,
    gid: u64,
    uid: u64,
    actor: u64,
    old: Option<String>,
    new: Option<String>,
    reason: Option<&str>,
) {
    let changes = json!([{"key": "communication_disabled_until", "old_value": old, "new_value": new}]);
    st.audit(sh.ids.next(), sh.bot_id(), gid, actor, action::MEMBER_UPDATE, uid, reason, Some(changes));
}

/// `POST /guilds/{guild}/bulk-ban`: bans up to 200 users at once; those the bot may not ban are
/// listed as failed.
pub fn bulk_ban(sh: &Shared, st: &mut State, gid: u64, body: &Value, reason: Option<&str>) -> Reply {
    if !st.guilds.contains_key(&gid) {
        return unknown(10004, "Guild");
    }
    let bot = sh.bot_id();
    let perms = st.member_permissions(gid, bot);
    if perms & BAN_MEMBERS == 0 || perms & MANAGE_GUILD == 0 {
        return missing("bulk ban", "the bot needs BAN_MEMBERS and MANAGE_GUILD".into());
    }
    let ids: Vec<u64> =
        body["user_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str()?.parse().ok()).collect();
    let (mut banned, mut failed) = (Vec::new(), Vec::new());
    for uid in ids {
        let allowed = st.users.contains_key(&uid)
            && !st.guilds.get(&gid).is_some_and(|g| g.bans.contains_key(&uid))
            && st.moderation_refusal(gid, bot, uid, BAN_MEMBERS).is_none();
        if allowed {
            apply_ban(sh, st, gid, uid, bot, reason);
            banned.push(uid.to_string());
        } else {
            failed.push(uid.to_string());
        }
    }
    if banned.is_empty() {
        return Reply::error(403, 500_000, "Failed to ban users");
    }
    Reply::ok(json!({"banned_users": banned, "failed_users": failed}))
}

/// `GET /guilds/{guild}/audit-logs`, newest first, filtered as Discord filters.
pub fn audit_log(sh: &Shared, st: &State, gid: u64, q: &Query) -> Reply {
    let Some(g) = st.guilds.get(&gid) else { return unknown(10004, "Guild") };
    if st.member_permissions(gid, sh.bot_id()) & VIEW_AUDIT_LOG == 0 {
        return missing("audit log", "the bot lacks VIEW_AUDIT_LOG".into());
    }
    let limit = query_param::<usize>(q, "limit").unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Reply::violation(400, 50035, "Invalid Form Body", format!("limit {limit} (1-100 allowed)"));
    }
    let id_of = |e: &Value, k: &str| e[k].as_str().and_then(|s| s.parse::<u64>().ok());
    let user = query_param::<u64>(q, "user_id");
    let target = query_param::<u64>(q, "target_id");
    let kind = query_param::<u64>(q, "action_type");
    let before = query_param::<u64>(q, "before");
    let after = query_param::<u64>(q, "after");
    let entries: Vec<Value> = g
        .audit_log
        .iter()
        .rev()
        .filter(|e| user.is_none_or(|u| id_of(e, "user_id") == Some(u)))
        .filter(|e| target.is_none_or(|t| id_of(e, "target_id") == Some(t)))
        .filter(|e| kind.is_none_or(|k| e["action_type"].as_u64() == Some(k)))
        .filter(|e| before.is_none_or(|b| id_of(e, "id").is_some_and(|id| id < b)))
        .filter(|e| after.is_none_or(|a| id_of(e, "id").is_some_and(|id| id > a)))
        .take(limit)
        .cloned()
        .collect();
    let mut users: Vec<u64> =
        entries.iter().flat_map(|e| [id_of(e, "user_id"), id_of(e, "target_id")]).flatten().collect();
    users.sort_unstable();
    users.dedup();
    Reply::ok(json!({
        "audit_log_entries": entries,
        "users": users.iter().map(|u| json::user_by_id(st, *u)).collect::<Vec<_>>(),
        "integrations": [],
        "webhooks": [],
        "guild_scheduled_events": [],
        "threads": [],
        "application_commands": [],
        "auto_moderation_rules": [],
    }))
}
