//! In-memory Discord state shared by the REST server, the gateway and the scenario API.

use crate::types::{Fault, RecordedRequest, Violation};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// `ADMINISTRATOR`.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// `KICK_MEMBERS`.
pub const KICK_MEMBERS: u64 = 1 << 1;
/// `BAN_MEMBERS`.
pub const BAN_MEMBERS: u64 = 1 << 2;
/// `MANAGE_GUILD`.
pub const MANAGE_GUILD: u64 = 1 << 5;
/// `VIEW_AUDIT_LOG`.
pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
/// `MODERATE_MEMBERS` (timeouts).
pub const MODERATE_MEMBERS: u64 = 1 << 40;
/// Every permission bit Discord defines today (and a few spare).
pub const ALL_PERMISSIONS: u64 = (1 << 53) - 1;
/// What `@everyone` may do in a seeded guild.
pub const EVERYONE_PERMISSIONS: u64 = (1 << 6) // ADD_REACTIONS
    | (1 << 10) // VIEW_CHANNEL
    | (1 << 11) // SEND_MESSAGES
    | (1 << 14) // EMBED_LINKS
    | (1 << 15) // ATTACH_FILES
    | (1 << 16) // READ_MESSAGE_HISTORY
    | (1 << 31) // USE_APPLICATION_COMMANDS
    | (1 << 35) // CREATE_PUBLIC_THREADS
    | (1 << 38); // SEND_MESSAGES_IN_THREADS

/// A user known to the fake.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub bot: bool,
}

/// A role.
#[derive(Debug, Clone)]
pub struct Role {
    pub id: u64,
    pub name: String,
    pub permissions: u64,
    pub position: i64,
    pub color: u32,
    pub hoist: bool,
    pub mentionable: bool,
    /// The bot's own integration role.
    pub bot_id: Option<u64>,
}

/// A guild member.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: u64,
    pub roles: Vec<u64>,
    pub nick: Option<String>,
    pub joined_at_ms: u64,
    pub communication_disabled_until: Option<String>,
}

/// A guild.
#[derive(Debug, Clone)]
pub struct Guild {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub channels: Vec<u64>,
    pub roles: Vec<Role>,
    pub members: BTreeMap<u64, Member>,
    pub bans: BTreeMap<u64, Option<String>>,
    pub created_ms: u64,
    /// Audit log entries, oldest first (Discord's `AuditLogEntry` objects).
    pub audit_log: Vec<Value>,
}

/// A channel, thread or DM.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: u64,
    pub kind: u8,
    pub guild_id: Option<u64>,
    pub name: String,
    pub position: i64,
    pub parent_id: Option<u64>,
    pub topic: Option<String>,
    pub owner_id: Option<u64>,
    pub last_message_id: Option<u64>,
    pub archived: bool,
    pub locked: bool,
    pub auto_archive_duration: u32,
    pub thread_members: Vec<u64>,
    pub recipients: Vec<u64>,
    pub permission_overwrites: Value,
    pub rate_limit_per_user: u64,
    pub nsfw: bool,
}

/// An interaction's lifecycle.
#[derive(Debug, Clone)]
pub struct InteractionRec {
    pub id: u64,
    pub token: String,
    /// Interaction type.
    pub kind: u8,
    pub created: Instant,
    pub channel_id: u64,
    /// Message a component was attached to.
    pub message_id: Option<u64>,
    /// Initial response type and data.
    pub initial: Option<(u8, Value)>,
    /// Message id of the `@original` response message.
    pub original_id: Option<u64>,
    /// Body of the latest `PATCH @original`.
    pub edit: Option<Value>,
    pub followups: Vec<Value>,
    pub delivery_error: Option<String>,
}

/// What a gateway connection task is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this JSON payload.
    Frame(String),
    /// Close with this code and reason; `None` drops the TCP connection without a close frame.
    Close(Option<(u16, String)>),
    /// Stream `count` synthetic MESSAGE_CREATEs (sequence numbers from `first_seq`) as fast as
    /// the socket accepts them.
    Flood { templates: std::sync::Arc<Vec<(String, String)>>, first_seq: u64, count: u64 },
}

/// A gateway session (survives disconnects so it can be resumed).
#[derive(Debug)]
pub struct Session {
    pub shard: (u32, u32),
    pub intents: u64,
    pub seq: u64,
    pub buffer: VecDeque<(u64, String)>,
    pub conn: Option<(u64, UnboundedSender<Outbound>)>,
    pub resumable: bool,
}

/// A rate-limit window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub count: u32,
}

/// All mutable state.
#[derive(Debug, Default)]
pub struct State {
    pub users: HashMap<u64, User>,
    /// Client locales set with `FakeDiscord::set_locale` (others are `en-US`).
    pub locales: HashMap<u64, String>,
    pub guilds: BTreeMap<u64, Guild>,
    pub channels: HashMap<u64, Channel>,
    pub messages: HashMap<u64, Vec<Value>>,
    pub reactions: HashMap<u64, BTreeMap<String, Vec<u64>>>,
    pub global_commands: Vec<Value>,
    pub guild_commands: HashMap<u64, Vec<Value>>,
    /// Command permission overrides a server admin set in Discord's UI (a bot token cannot):
    /// by guild and command id, Discord's `ApplicationCommandPermission` objects.
    pub command_permissions: HashMap<(u64, String), Vec<Value>>,
    pub interactions: HashMap<u64, InteractionRec>,
    pub tokens: HashMap<String, u64>,
    pub requests: Vec<RecordedRequest>,
    pub violations: Vec<Violation>,
    pub faults: Vec<Fault>,
    pub sessions: HashMap<String, Session>,
    pub identify_count: u32,
    pub resume_count: u32,
    pub identify_buckets: HashMap<u32, Instant>,
    pub endpoint: Option<String>,
    pub endpoint_verified: Option<String>,
    pub buckets: HashMap<String, Window>,
    pub global_window: Option<Window>,
    /// Users whose privacy settings refuse DMs from the bot (`create_message` answers 50007).
    pub closed_dms: std::collections::HashSet<u64>,
    /// OAuth2 user login: redirect URIs, consent screens, codes and grants.
    pub oauth: crate::oauth::OAuthState,
    /// Files members attached to command invocations, by attachment id, served from the fake's
    /// CDN path (`FakeDiscord::attach_file`).
    pub files: HashMap<u64, AttachedFile>,
    /// Files uploaded with multipart requests (messages, interaction responses and edits).
    pub uploads: Vec<crate::types::Upload>,
    /// Messages created with `enforce_nonce`, by author and nonce: the channel, the message id
    /// and when it was created (unix ms), so the same nonce within [`NONCE_WINDOW_MS`] returns
    /// that message instead of creating another.
    pub nonces: HashMap<(u64, String), (u64, u64, u64)>,
    /// Channel webhooks a server admin created in Discord's UI (`FakeDiscord::create_webhook`):
    /// id → (token, channel).
    pub webhooks: HashMap<u64, (String, u64)>,
}

/// How long Discord remembers an enforced nonce: "the past few minutes". The fake keeps it two
/// minutes, the short end, so a client that counts on a longer window is caught.
pub const NONCE_WINDOW_MS: u64 = 2 * 60_000;

/// A file a member attached to a slash command (an `ATTACHMENT` option).
#[derive(Debug, Clone)]
pub struct AttachedFile {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// The signed CDN address Discord gives out (`ex`, `is`, `hm` parameters).
    pub url: String,
}

/// Events kept per session for Resume.
const MAX_BUFFERED: usize = 10_000;
/// `MESSAGE_CONTENT` intent bit.
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

impl State {
    /// Record a violation.
    pub fn violation(&mut self, op: Option<&str>, method: &str, path: &str, reason: String) {
        tracing::warn!(operation = op, method, path, %reason, "fake discord: violation");
        self.violations.push(Violation {
            operation_id: op.map(str::to_owned),
            method: method.to_owned(),
            path: path.to_owned(),
            reason,
        });
    }

    /// Guild id a channel belongs to.
    pub fn channel_guild(&self, channel_id: u64) -> Option<u64> {
        self.channels.get(&channel_id).and_then(|c| c.guild_id)
    }

    /// Find a stored message.
    pub fn message(&self, channel_id: u64, message_id: u64) -> Option<&Value> {
        self.messages.get(&channel_id)?.iter().find(|m| m["id"].as_str() == Some(message_id.to_string().as_str()))
    }

    /// Find a stored message for editing.
    pub fn message_mut(&mut self, channel_id: u64, message_id: u64) -> Option<&mut Value> {
        let id = message_id.to_string();
        self.messages.get_mut(&channel_id)?.iter_mut().find(|m| m["id"].as_str() == Some(id.as_str()))
    }

    /// Effective permissions of a member from its roles (owner and administrators get all).
    pub fn member_permissions(&self, guild_id: u64, user_id: u64) -> u64 {
        let Some(guild) = self.guilds.get(&guild_id) else {
            return 0;
        };
        if guild.owner_id == user_id {
            return ALL_PERMISSIONS;
        }
        let mut perms = guild.roles.iter().find(|r| r.id == guild_id).map_or(0, |r| r.permissions);
        if let Some(member) = guild.members.get(&user_id) {
            for role in &guild.roles {
                if member.roles.contains(&role.id) {
                    perms |= role.permissions;
                }
            }
        }
        if perms & ADMINISTRATOR != 0 { ALL_PERMISSIONS } else { perms }
    }

    /// The rank of a member's highest role: `(position, -id)` as Discord orders roles (a lower
    /// id wins a tie); `@everyone` ranks lowest.
    pub fn top_role(&self, guild_id: u64, user_id: u64) -> (i64, i64) {
        let Some(guild) = self.guilds.get(&guild_id) else {
            return (i64::MIN, 0);
        };
        let Some(member) = guild.members.get(&user_id) else {
            return (i64::MIN, 0);
        };
        guild
            .roles
            .iter()
            .filter(|r| member.roles.contains(&r.id))
            .map(|r| (r.position, -(r.id as i64)))
            .max()
            .unwrap_or((0, -(guild_id as i64)))
    }

    /// Why `actor` may not act on `target` in `guild` with `permission`, as Discord decides: the
    /// permission is missing, the target owns the guild, or the target's highest role is not
    /// below the actor's (owners may act on anyone but themselves). `None` when allowed.
    pub fn moderation_refusal(&self, guild_id: u64, actor: u64, target: u64, permission: u64) -> Option<String> {
        let guild = self.guilds.get(&guild_id)?;
        if self.member_permissions(guild_id, actor) & permission == 0 {
            return Some(format!("user {actor} lacks permission bit {permission:#x}"));
        }
        if target == guild.owner_id {
            return Some(format!("user {target} owns guild {guild_id}"));
        }
        if actor != guild.owner_id
            && guild.members.contains_key(&target)
            && self.top_role(guild_id, target) >= self.top_role(guild_id, actor)
        {
            return Some(format!("the highest role of user {target} is not below that of user {actor}"));
        }
        None
    }

    /// Records an audit log entry and dispatches GUILD_AUDIT_LOG_ENTRY_CREATE.
    #[allow(clippy::too_many_arguments)] // mirrors Discord's AuditLogEntry fields
    pub fn audit(
        &mut self,
        id: u64,
        bot_id: u64,
        guild_id: u64,
        actor: u64,
        action_type: u64,
        target: u64,
        reason: Option<&str>,
        changes: Option<Value>,
    ) {
        let mut entry = serde_json::json!({
            "id": id.to_string(),
            "action_type": action_type,
            "user_id": actor.to_string(),
            "target_id": target.to_string(),
        });
        if let Some(reason) = reason {
            entry["reason"] = Value::String(reason.to_owned());
        }
        if let Some(changes) = changes {
            entry["changes"] = changes;
        }
        if let Some(g) = self.guilds.get_mut(&guild_id) {
            g.audit_log.push(entry.clone());
        }
        entry["guild_id"] = Value::String(guild_id.to_string());
        self.dispatch(bot_id, Some(guild_id), "GUILD_AUDIT_LOG_ENTRY_CREATE", &entry, 1 << 2);
    }

    /// Whether a DM from the bot reaches `user`: they share a guild with it and accept DMs.
    pub fn dm_allowed(&self, bot_id: u64, user: u64) -> bool {
        !self.closed_dms.contains(&user)
            && self.users.get(&user).is_none_or(|u| !u.bot)
            && self.guilds.values().any(|g| g.members.contains_key(&user) && g.members.contains_key(&bot_id))
    }

    /// Send a dispatch event to every session that should see it (by shard and intent).
    ///
    /// `guild_id` `None` means a DM / application event: it goes to shard 0 sessions.
    pub fn dispatch(&mut self, bot_id: u64, guild_id: Option<u64>, event: &str, data: &Value, intent: u64) {
        for session in self.sessions.values_mut() {
            if !session.resumable {
                continue;
            }
            let (shard_id, total) = session.shard;
            let target = guild_id.map_or(0, |g| ((g >> 22) % u64::from(total.max(1))) as u32);
            if target != shard_id {
                continue;
            }
            if intent != 0 && session.intents & intent == 0 {
                continue;
            }
            let mut data = data.clone();
            if matches!(event, "MESSAGE_CREATE" | "MESSAGE_UPDATE")
                && session.intents & INTENT_MESSAGE_CONTENT == 0
                && guild_id.is_some()
            {
                strip_message_content(&mut data, bot_id);
            }
            session.push(event, data);
        }
    }
}

impl Session {
    /// Assign the next sequence number, buffer the event and send it if connected.
    pub fn push(&mut self, event: &str, data: Value) {
        self.seq += 1;
        let frame = serde_json::json!({"op": 0, "s": self.seq, "t": event, "d": data}).to_string();
        if self.buffer.len() >= MAX_BUFFERED {
            self.buffer.pop_front();
        }
        self.buffer.push_back((self.seq, frame.clone()));
        if let Some((_, tx)) = &self.conn {
            // A closed receiver means the connection is going away; the event stays buffered.
            let _ = tx.send(Outbound::Frame(frame));
        }
    }
}

/// Without `MESSAGE_CONTENT`, Discord empties content, embeds, attachments, components and
/// polls, except for messages that mention the bot and the bot's own messages.
fn strip_message_content(data: &mut Value, bot_id: u64) {
    let bot = bot_id.to_string();
    if data["author"]["id"].as_str() == Some(bot.as_str()) {
        return;
    }
    let mentioned =
        data["mentions"].as_array().is_some_and(|m| m.iter().any(|u| u["id"].as_str() == Some(bot.as_str())));
    if mentioned {
        return;
    }
    if let Some(obj) = data.as_object_mut() {
        if obj.contains_key("content") {
            obj.insert("content".into(), Value::String(String::new()));
        }
        for key in ["embeds", "attachments", "components"] {
            if obj.contains_key(key) {
                obj.insert(key.into(), Value::Array(Vec::new()));
            }
        }
        obj.remove("poll");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_is_stripped_unless_mentioned() {
        let mut msg = json!({"author": {"id": "5"}, "content": "hi", "embeds": [{}], "mentions": []});
        strip_message_content(&mut msg, 9);
        assert_eq!(msg["content"], "");
        assert_eq!(msg["embeds"], json!([]));
        let mut msg = json!({"author": {"id": "5"}, "content": "hi <@9>", "mentions": [{"id": "9"}]});
        strip_message_content(&mut msg, 9);
        assert_eq!(msg["content"], "hi <@9>");
    }
}
