//! Who may do what. Every command declares an [`Access`] level and the router checks it before
//! the handler runs; modules call [`PermissionService::level`] for finer checks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use beacon_cache::{Cache, CacheKey};
use beacon_config::DevelopersConfig;
use beacon_store::{GuildRecord, GuildStore, StoreError};
use twilight_model::guild::Permissions;
use twilight_model::id::Id;

use crate::error::HandlerError;
use crate::guild_cache::GuildCache;

/// Access levels, lowest first. A caller holds every level up to their highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Any member of the guild.
    Everyone,
    /// Members with one of the guild's staff roles (`core.staff_roles`), and everyone above.
    Staff,
    /// The owner, members with Administrator or Manage Server, and delegated authorized users.
    Authorized,
    /// The developer team (a role in the configured main guild): operator access everywhere.
    Developer,
}

impl Access {
    /// What to tell a member who lacks this level.
    pub fn refusal(self) -> &'static str {
        match self {
            Access::Everyone => "You can't use this here.",
            Access::Staff => "Only staff can use this. Ask an admin to give you a staff role.",
            Access::Authorized => {
                "Only the server owner, admins and authorized users can use this. An admin can grant access with /access grant."
            }
            Access::Developer => "Only Beacon's developer team can use this.",
        }
    }
}

/// The member invoking something, as Discord describes them in the interaction.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The member's user id.
    pub user_id: u64,
    /// The member's role ids in the guild.
    pub roles: Vec<u64>,
    /// Resolved permissions in the channel (from the interaction's member object).
    pub permissions: Option<Permissions>,
}

/// What access checks need to know of a guild: its record (owner, whether the bot left) and
/// its delegated users. Kept in memory per guild while unchanged (see [`GuildCache`]).
#[derive(Debug, Clone, Default)]
pub struct GuildFacts {
    /// `None` when the guild was never recorded (or was purged).
    pub record: Option<GuildRecord>,
    /// Users holding delegated access (`/access grant`).
    pub authorized: HashSet<u64>,
}

impl GuildFacts {
    /// The bot is in the guild according to the database.
    pub fn is_active(&self) -> bool {
        self.record.as_ref().is_some_and(|g| g.left_at.is_none())
    }
}

/// Decides access levels.
pub struct PermissionService {
    cache: Cache,
    http: Arc<twilight_http::Client>,
    developers: DevelopersConfig,
    facts: GuildCache<GuildFacts>,
}

/// How long a developer-team membership lookup is trusted.
const DEV_CACHE_TTL: Duration = Duration::from_secs(300);

impl PermissionService {
    /// A permission service reading guild facts through `cache` and asking Discord (`http`) about the developer team.
    pub fn new(cache: Cache, http: Arc<twilight_http::Client>, developers: DevelopersConfig) -> PermissionService {
        PermissionService { cache, http, developers, facts: GuildCache::default() }
    }

    /// The guild's record and delegated users, from memory while the guild is unchanged.
    pub async fn facts(&self, guild: &GuildStore) -> Result<Arc<GuildFacts>, StoreError> {
        self.facts
            .get_or_load(guild, || async {
                let record = guild.get().await?;
                let authorized = guild.authorized_users().await?.into_iter().map(|u| u.user_id).collect();
                Ok(GuildFacts { record, authorized })
            })
            .await
    }

    /// The highest level `caller` holds in `guild`.
    pub async fn level(
        &self,
        guild: &GuildStore,
        caller: &Caller,
        staff_roles: &[u64],
    ) -> Result<Access, HandlerError> {
        if self.is_developer(guild.id(), caller).await {
            return Ok(Access::Developer);
        }
        self.member_level(guild, caller, staff_roles).await
    }

    /// The level `caller` holds in `guild` as a member of it (owner, Administrator or Manage
    /// Server, delegated access, staff roles), leaving the developer team aside: the web API
    /// asks this and [`PermissionService::is_developer_user`] separately, since the team's
    /// access to other guilds is read-only there.
    pub async fn member_level(
        &self,
        guild: &GuildStore,
        caller: &Caller,
        staff_roles: &[u64],
    ) -> Result<Access, HandlerError> {
        let admin = caller
            .permissions
            .is_some_and(|p| p.contains(Permissions::ADMINISTRATOR) || p.contains(Permissions::MANAGE_GUILD));
        let facts = self.facts(guild).await?;
        let owner = facts.record.as_ref().and_then(|g| g.owner_id) == Some(caller.user_id);
        if admin || owner || facts.authorized.contains(&caller.user_id) {
            return Ok(Access::Authorized);
        }
        if caller.roles.iter().any(|r| staff_roles.contains(r)) {
            return Ok(Access::Staff);
        }
        Ok(Access::Everyone)
    }

    /// Whether the caller is on the developer team. A failed lookup counts as "no" (and is logged):
    /// elevated access is never granted on an error.
    pub async fn is_developer(&self, guild_id: u64, caller: &Caller) -> bool {
        let (Some(dev_guild), Some(dev_role)) = (self.developers.guild_id, self.developers.role_id) else {
            return false;
        };
        if guild_id == dev_guild {
            return caller.roles.contains(&dev_role);
        }
        self.is_developer_user(caller.user_id).await
    }

    /// Whether `user_id` holds the developer role in the developer team's guild (asked of
    /// Discord, cached for 5 minutes; a failed lookup is "no").
    pub async fn is_developer_user(&self, user_id: u64) -> bool {
        let (Some(dev_guild), Some(dev_role)) = (self.developers.guild_id, self.developers.role_id) else {
            return false;
        };
        let caller = Caller { user_id, ..Caller::default() };
        let key = CacheKey::global("access", &format!("dev:{}", caller.user_id));
        if let Ok(Some(v)) = self.cache.get(&key).await {
            return v == b"1";
        }
        let lookup = self.http.guild_member(Id::new(dev_guild), Id::new(caller.user_id.max(1))).await;
        let is_dev = match lookup {
            Ok(resp) => match resp.model().await {
                Ok(member) => member.roles.iter().any(|r| r.get() == dev_role),
                Err(e) => {
                    tracing::warn!(error = %e, "developer team lookup: bad member body");
                    return false;
                }
            },
            // 404 Unknown Member: not on the team; cache that answer too.
            Err(e) if matches!(e.kind(), twilight_http::error::ErrorType::Response { status, .. } if status.get() == 404) => {
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "developer team lookup failed");
                return false;
            }
        };
        let value: &[u8] = if is_dev { b"1" } else { b"0" };
        if let Err(e) = self.cache.set(&key, value, DEV_CACHE_TTL).await {
            tracing::warn!(error = %e, "caching developer team lookup failed");
        }
        is_dev
    }
}
