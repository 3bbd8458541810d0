//! Public data types of the scenario API (also the JSON of the `/_fake/` control endpoints).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Snowflakes travel as strings in JSON (as Discord sends them; safe for JavaScript clients) and
/// are accepted as strings or numbers.
pub mod id_str {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize a snowflake as a decimal string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Deserialize a snowflake from a string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.parse().map_err(D::Error::custom),
            serde_json::Value::Number(n) => {
                n.as_u64().ok_or_else(|| D::Error::custom("snowflake must be a positive integer"))
            }
            other => Err(D::Error::custom(format!("expected a snowflake, got {other}"))),
        }
    }

    /// The same for lists of snowflakes.
    pub mod vec {
        use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};

        /// Serialize snowflakes as decimal strings.
        pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for id in v {
                seq.serialize_element(&id.to_string())?;
            }
            seq.end()
        }

        /// Deserialize snowflakes from strings or numbers.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
            let raw = Vec::<serde_json::Value>::deserialize(d)?;
            raw.into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.parse().map_err(D::Error::custom),
                    serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| D::Error::custom("bad snowflake")),
                    other => Err(D::Error::custom(format!("expected a snowflake, got {other}"))),
                })
                .collect()
        }
    }

    /// The same for optional snowflakes.
    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

        /// Serialize an optional snowflake as a decimal string or null.
        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(id) => s.serialize_str(&id.to_string()),
                None => s.serialize_none(),
            }
        }

        /// Deserialize an optional snowflake from a string, a number or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            match Option::<serde_json::Value>::deserialize(d)? {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => s.parse().map(Some).map_err(D::Error::custom),
                Some(serde_json::Value::Number(n)) => {
                    n.as_u64().map(Some).ok_or_else(|| D::Error::custom("bad snowflake"))
                }
                Some(other) => Err(D::Error::custom(format!("expected a snowflake, got {other}"))),
            }
        }
    }
}

/// Options for [`crate::FakeDiscord::start`].
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Port on 127.0.0.1; 0 picks an ephemeral port.
    pub port: u16,
    /// Discord's OpenAPI description; `None` reads `BEACON_DISCORD_OPENAPI` (unset: no schema checks).
    pub openapi_path: Option<PathBuf>,
    /// `session_start_limit.max_concurrency`: identifies allowed per 5 s (one per bucket).
    pub max_concurrency: u32,
    /// Recommended shard count returned by `GET /gateway/bot`.
    pub shards: u32,
    /// Gateway heartbeat interval sent in Hello.
    pub heartbeat_interval: Duration,
    /// Privileged intents the application has NOT been granted (Identify with them closes 4014).
    pub denied_intents: u64,
    /// Requests allowed per route bucket per window.
    pub route_limit: u32,
    /// Length of a route bucket's window.
    pub route_window: Duration,
    /// Requests per second allowed across all bot-token routes (Discord: 50).
    pub global_limit: u32,
    /// Time a bot has for the initial interaction response (Discord: 3 s).
    pub interaction_deadline: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            port: 0,
            openapi_path: None,
            max_concurrency: 1,
            shards: 1,
            heartbeat_interval: Duration::from_millis(41_250),
            denied_intents: 0,
            route_limit: 50,
            route_window: Duration::from_secs(1),
            global_limit: 50,
            interaction_deadline: Duration::from_secs(3),
        }
    }
}

/// A role to create in a guild.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Permission bit set.
    #[serde(default)]
    pub permissions: u64,
}

/// A member to add to a guild.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemberSpec {
    /// User id; `None` generates one.
    #[serde(default, with = "id_str::opt")]
    pub user_id: Option<u64>,
    /// Username.
    pub username: String,
    /// Names of the roles (from the guild's [`GuildSpec::roles`]) the member has.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A guild to create.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuildSpec {
    /// Guild name.
    pub name: String,
    /// Owner; defaults to the first member.
    #[serde(default, with = "id_str::opt")]
    pub owner_id: Option<u64>,
    /// Names of text channels to create (none: one channel named `general`).
    #[serde(default)]
    pub text_channels: Vec<String>,
    /// Roles besides `@everyone`.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// Members (the bot is always a member too).
    #[serde(default)]
    pub members: Vec<MemberSpec>,
}

/// A channel as listed by [`crate::FakeDiscord::guilds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Channel id.
    #[serde(with = "id_str")]
    pub id: u64,
    /// Channel name.
    pub name: String,
    /// Discord channel type (0 text, 4 category, 11 public thread, 12 private thread, ...).
    #[serde(rename = "type")]
    pub kind: u8,
}

/// A role as listed by [`crate::FakeDiscord::guilds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// Role id (`@everyone` has the guild's id).
    #[serde(with = "id_str")]
    pub id: u64,
    /// Role name.
    pub name: String,
    /// Permission bit set.
    pub permissions: u64,
}

/// A member as listed by [`crate::FakeDiscord::guilds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// User id.
    #[serde(with = "id_str")]
    pub user_id: u64,
    /// Username.
    pub username: String,
    /// Role ids (without `@everyone`).
    #[serde(with = "id_str::vec")]
    pub roles: Vec<u64>,
}

/// A guild with its channels, roles and members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuildInfo {
    /// Guild id.
    #[serde(with = "id_str")]
    pub id: u64,
    /// Guild name.
    pub name: String,
    /// Owner's user id.
    #[serde(with = "id_str")]
    pub owner_id: u64,
    /// Channels (text channels, threads, ...).
    pub channels: Vec<ChannelInfo>,
    /// Roles, `@everyone` first.
    pub roles: Vec<RoleInfo>,
    /// Members, the bot included.
    pub members: Vec<MemberInfo>,
}

/// How an interaction reaches the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// As an `INTERACTION_CREATE` gateway dispatch; the bot answers with `POST .../callback`.
    Gateway,
    /// As a signed HTTP POST to the interactions endpoint; the HTTP response is the answer.
    Http,
}

/// A member invoking a slash command (or typing into an autocompleted option).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommandInvocation {
    /// Guild the command is used in.
    #[serde(with = "id_str")]
    pub guild_id: u64,
    /// Channel the command is used in.
    #[serde(with = "id_str")]
    pub channel_id: u64,
    /// Invoking user.
    #[serde(with = "id_str")]
    pub user_id: u64,
    /// Command name.
    pub name: String,
    /// The `options` array exactly as in Discord's interaction data (`null` for none).
    #[serde(default)]
    pub options: serde_json::Value,
    /// Overrides the member's computed permissions.
    #[serde(default)]
    pub member_permissions: Option<u64>,
}

/// A moderation action a moderator takes in Discord's own UI (not through the bot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UiAction {
    /// Ban the user.
    Ban,
    /// Lift the user's ban.
    Unban,
    /// Kick the member.
    Kick,
    /// Time the member out until this ISO8601 time (at most 28 days ahead).
    Timeout(String),
    /// Remove the member's timeout.
    RemoveTimeout,
}

/// Identifies an interaction created by the scenario API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionHandle {
    /// Interaction id.
    #[serde(with = "id_str")]
    pub id: u64,
    /// Interaction token (also the follow-up webhook token).
    pub token: String,
    /// Interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit).
    pub kind: u8,
}

/// What the bot answered to an interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionOutcome {
    /// Initial response type (4 message, 5 deferred, 6 deferred update, 7 update, 8 choices, 9 modal).
    pub kind: u8,
    /// Final data: the response data, with the `@original` edit applied for deferred responses.
    pub data: serde_json::Value,
    /// Follow-up message bodies received so far.
    pub followups: Vec<serde_json::Value>,
}

/// A file the bot uploaded (a `files[n]` part of a multipart request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Path below `/api/v10` it was sent to.
    pub path: String,
    /// The part's file name.
    pub filename: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A REST request the fake received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path below `/api/v10`, with query.
    pub path: String,
    /// Matched OpenAPI operation.
    pub operation_id: Option<String>,
    /// JSON body (`payload_json` for multipart; null when empty).
    pub body: serde_json::Value,
    /// Status the fake answered with.
    pub status: u16,
    /// The `X-Audit-Log-Reason` header, decoded (Discord's audit log shows it).
    #[serde(default)]
    pub audit_log_reason: Option<String>,
}

/// Something a client did that Discord would reject or that breaks its documented rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Matched OpenAPI operation, if any.
    pub operation_id: Option<String>,
    /// HTTP method (or `GATEWAY` / `INTERACTION`).
    pub method: String,
    /// Path (or gateway/interaction detail).
    pub path: String,
    /// Why it is wrong.
    pub reason: String,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status (429 comes with `retry_after` and rate-limit headers).
    Status(u16),
    /// Delay the answer (before Discord acts: a client that gives up changed nothing).
    #[serde(with = "duration_ms")]
    Delay(Duration),
    /// Act, then delay the answer: the request took effect although the client has not heard
    /// so yet (a client killed meanwhile must not do it twice when it tries again).
    #[serde(with = "duration_ms")]
    DelayAfter(Duration),
}

/// A fault injected into matching REST requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Only this method (any when `None`).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths containing this.
    pub path_contains: String,
    /// What to do.
    pub kind: FaultKind,
    /// How many requests it applies to.
    pub times: u32,
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
