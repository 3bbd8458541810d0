//! Application commands (global and per guild).

use crate::handlers::Reply;
use crate::server::Shared;
use crate::state::State;
use crate::validate::Matched;
use serde_json::{Value, json};

/// Fill in the fields Discord adds to a command definition.
fn complete(sh: &Shared, mut cmd: Value, id: u64, guild_id: Option<u64>) -> Value {
    cmd["id"] = json!(id.to_string());
    cmd["application_id"] = json!(sh.app_id.to_string());
    cmd["version"] = json!(sh.ids.next().to_string());
    if cmd.get("type").is_none_or(Value::is_null) {
        cmd["type"] = json!(1);
    }
    if cmd.get("description").is_none_or(Value::is_null) {
        cmd["description"] = json!("");
    }
    if cmd.get("default_member_permissions").is_none() {
        cmd["default_member_permissions"] = Value::Null;
    }
    if cmd.get("nsfw").is_none() {
        cmd["nsfw"] = json!(false);
    }
    if let Some(g) = guild_id {
        cmd["guild_id"] = json!(g.to_string());
    } else {
        if cmd.get("contexts").is_none() {
            cmd["contexts"] = json!([0, 1, 2]);
        }
        if cmd.get("integration_types").is_none() {
            cmd["integration_types"] = json!([0]);
        }
    }
    cmd
}

fn same(a: &Value, b: &Value) -> bool {
    a["name"] == b["name"] && a["type"].as_u64().unwrap_or(1) == b["type"].as_u64().unwrap_or(1)
}

fn list_mut(st: &mut State, guild: Option<u64>) -> &mut Vec<Value> {
    match guild {
        Some(g) => st.guild_commands.entry(g).or_default(),
        None => &mut st.global_commands,
    }
}

/// Handle a command operation.
pub fn handle(sh: &Shared, st: &mut State, m: &Matched, body: &Value) -> Reply {
    if m.id("application_id") != sh.app_id {
        return Reply::violation(
            403,
            50001,
            "Missing Access",
            format!("application id {} is not this bot's ({})", m.id("application_id"), sh.app_id),
        );
    }
    let guild = m.params.contains_key("guild_id").then(|| m.id("guild_id"));
    if let Some(g) = guild
        && !st.guilds.contains_key(&g)
    {
        return Reply::error(404, 10004, "Unknown Guild");
    }
    let cmd_id = m.id("command_id");
    let op = m.op.id.replace("_guild", "");
    match op.as_str() {
        "list_application_commands" => Reply::ok(Value::Array(list_mut(st, guild).clone())),
        "bulk_set_application_commands" => {
            let old = list_mut(st, guild).clone();
            let new: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let id = old
                        .iter()
                        .find(|o| same(o, &c))
                        .and_then(|o| o["id"].as_str()?.parse().ok())
                        .unwrap_or_else(|| sh.ids.next());
                    complete(sh, c, id, guild)
                })
                .collect();
            *list_mut(st, guild) = new.clone();
            Reply::ok(Value::Array(new))
        }
        "create_application_command" => {
            let list = list_mut(st, guild);
            match list.iter_mut().find(|o| same(o, body)) {
                Some(existing) => {
                    let id = existing["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                    *existing = complete(sh, body.clone(), id, guild);
                    Reply::ok(existing.clone())
                }
                None => {
                    let cmd = complete(sh, body.clone(), sh.ids.next(), guild);
                    list.push(cmd.clone());
                    Reply::json(201, cmd)
                }
            }
        }
        "get_application_command" => {
            let id = cmd_id.to_string();
            match list_mut(st, guild).iter().find(|c| c["id"].as_str() == Some(id.as_str())) {
                Some(c) => Reply::ok(c.clone()),
                None => Reply::error(404, 10063, "Unknown application command"),
            }
        }
        "update_application_command" => {
            let id = cmd_id.to_string();
            match list_mut(st, guild).iter_mut().find(|c| c["id"].as_str() == Some(id.as_str())) {
                Some(c) => {
                    if let (Some(obj), Some(patch)) = (c.as_object_mut(), body.as_object()) {
                        for (k, v) in patch {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                    Reply::ok(c.clone())
                }
                None => Reply::error(404, 10063, "Unknown application command"),
            }
        }
        "delete_application_command" => {
            let id = cmd_id.to_string();
            let list = list_mut(st, guild);
            let before = list.len();
            list.retain(|c| c["id"].as_str() != Some(id.as_str()));
            if list.len() == before { Reply::error(404, 10063, "Unknown application command") } else { Reply::empty() }
        }
        _ => Reply::error(404, 0, "404: Not Found (not modelled by fake-discord)"),
    }
}

/// Find a registered command by name (guild commands first).
pub fn find(st: &State, guild: u64, name: &str, kind: u64) -> Option<Value> {
    let matches = |c: &&Value| c["name"].as_str() == Some(name) && c["type"].as_u64().unwrap_or(1) == kind;
    st.guild_commands
        .get(&guild)
        .and_then(|l| l.iter().find(matches))
        .or_else(|| st.global_commands.iter().find(matches))
        .cloned()
}

/// Whether Discord offers `name` where it is used (`guild` 0: the member's DM with the bot), by
/// the command's `contexts` (0 guild, 1 bot DM, 2 private channel): a DM shows only global
/// commands whose contexts include 1; a guild shows a registered command only when they include
/// 0. A command that is not registered at all is let through in a guild (tests that never sync
/// commands), never in a DM.
pub fn check_context(guild: u64, name: &str, cmd: Option<&Value>) -> Result<(), String> {
    let allows = |cmd: &Value, context: u64| {
        cmd["contexts"].as_array().is_none_or(|c| c.iter().any(|v| v.as_u64() == Some(context)))
    };
    match cmd {
        None if guild == 0 => Err(format!("/{name} is not a global command, and a DM shows only global commands")),
        None => Ok(()),
        Some(cmd) if guild == 0 && cmd.get("guild_id").is_some_and(|g| !g.is_null()) => {
            Err(format!("/{name} is a guild command, and a DM shows only global commands"))
        }
        Some(cmd) if guild == 0 && !allows(cmd, 1) => {
            Err(format!("/{name} is not offered in DMs: its contexts are {}", cmd["contexts"]))
        }
        Some(cmd) if guild != 0 && !allows(cmd, 0) => {
            Err(format!("/{name} is not offered in servers: its contexts are {}", cmd["contexts"]))
        }
        Some(_) => Ok(()),
    }
}

/// `MANAGE_GUILD`, named in refusals.
const MANAGE_GUILD: u64 = 1 << 5;

/// Whether Discord shows (and lets `user` run) the registered command `cmd` in `channel`, as
/// Discord decides it: the guild's permission overrides for the command first (a user's own
/// override, then the member's roles and `@everyone` — allowed if any of them allows — and a
/// channel override), else `default_member_permissions` against the member's permissions
/// (administrators and the owner always pass; `"0"` means administrators only).
pub fn check_visible(st: &State, guild: u64, channel: u64, user: u64, cmd: &Value) -> Result<(), String> {
    let name = cmd["name"].as_str().unwrap_or("?");
    let id = cmd["id"].as_str().unwrap_or_default().to_owned();
    let perms = st.member_permissions(guild, user);
    let admin = perms & crate::state::ADMINISTRATOR != 0;
    if let Some(overrides) = st.command_permissions.get(&(guild, id)) {
        let find = |kind: u64, target: u64| {
            overrides.iter().find(|o| {
                o["type"].as_u64() == Some(kind) && o["id"].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(target)
            })
        };
        let allowed = |o: &Value| o["permission"].as_bool().unwrap_or(false);
        // Channel overrides: the channel's own, else "all channels" (guild id - 1).
        if let Some(c) = find(3, channel).or_else(|| find(3, guild.wrapping_sub(1)))
            && !allowed(c)
        {
            return Err(format!("/{name} is switched off in this channel by the server's command permissions"));
        }
        if let Some(u) = find(2, user) {
            return if allowed(u) {
                Ok(())
            } else {
                Err(format!("/{name} is denied to this member by the server's command permissions"))
            };
        }
        let roles: Vec<u64> =
            st.guilds.get(&guild).and_then(|g| g.members.get(&user)).map(|m| m.roles.clone()).unwrap_or_default();
        let role_overrides: Vec<&Value> =
            roles.iter().chain(std::iter::once(&guild)).filter_map(|r| find(1, *r)).collect();
        if !role_overrides.is_empty() {
            return if role_overrides.iter().any(|o| allowed(o)) {
                Ok(())
            } else {
                Err(format!("/{name} is denied to this member's roles by the server's command permissions"))
            };
        }
    }
    let Some(required) = cmd["default_member_permissions"].as_str().and_then(|p| p.parse::<u64>().ok()) else {
        return Ok(());
    };
    if admin || (required != 0 && perms & required == required) {
        return Ok(());
    }
    let what = if required == 0 {
        "administrators".to_owned()
    } else if required == MANAGE_GUILD {
        "members with Manage Server".to_owned()
    } else {
        format!("members with permissions {required}")
    };
    Err(format!("Discord shows /{name} only to {what} (default_member_permissions)"))
}
