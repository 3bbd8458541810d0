//! The scenario API: build guilds, act as members, inspect and await what the bot did.

use crate::error::Error;
use crate::handlers::{self, new_channel};
use crate::interactions::{self, NewInteraction};
use crate::json;
use crate::snowflake::now_ms;
use crate::state::{EVERYONE_PERMISSIONS, Guild, Member, Role, User};
use crate::types::{
    ChannelInfo, CommandInvocation, Delivery, Fault, GuildInfo, GuildSpec, InteractionHandle, InteractionOutcome,
    MemberInfo, RecordedRequest, RoleInfo, UiAction, Violation,
};
use crate::{FakeDiscord, gateway};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

impl FakeDiscord {
    /// Create a guild (the bot is added as a member with an administrator role). A connected
    /// bot receives GUILD_CREATE.
    pub fn create_guild(&self, spec: GuildSpec) -> GuildInfo {
        let sh = &self.shared;
        let mut st = sh.lock();
        let gid = sh.ids.next();
        let now = now_ms();
        let mut roles = vec![Role {
            id: gid,
            name: "@everyone".into(),
            permissions: EVERYONE_PERMISSIONS,
            position: 0,
            color: 0,
            hoist: false,
            mentionable: false,
            bot_id: None,
        }];
        for (i, r) in spec.roles.iter().enumerate() {
            roles.push(Role {
                id: sh.ids.next(),
                name: r.name.clone(),
                permissions: r.permissions,
                position: i as i64 + 1,
                color: 0,
                hoist: false,
                mentionable: true,
                bot_id: None,
            });
        }
        let bot_role = sh.ids.next();
        roles.push(Role {
            id: bot_role,
            name: "Beacon".into(),
            permissions: crate::state::ADMINISTRATOR,
            position: roles.len() as i64,
            color: 0,
            hoist: false,
            mentionable: false,
            bot_id: Some(sh.bot_id()),
        });
        let mut members = BTreeMap::new();
        let mut first_member = None;
        for m in &spec.members {
            let uid = m.user_id.unwrap_or_else(|| sh.ids.next());
            first_member.get_or_insert(uid);
            st.users.entry(uid).or_insert_with(|| User { id: uid, username: m.username.clone(), bot: false });
            let role_ids =
                m.roles.iter().filter_map(|name| roles.iter().find(|r| &r.name == name).map(|r| r.id)).collect();
            members.insert(
                uid,
                Member {
                    user_id: uid,
                    roles: role_ids,
                    nick: None,
                    joined_at_ms: now,
                    communication_disabled_until: None,
                },
            );
        }
        members.insert(
            sh.bot_id(),
            Member {
                user_id: sh.bot_id(),
                roles: vec![bot_role],
                nick: None,
                joined_at_ms: now,
                communication_disabled_until: None,
            },
        );
        let owner_id = spec.owner_id.or(first_member).unwrap_or_else(|| {
            let uid = sh.ids.next();
            st.users.insert(uid, User { id: uid, username: "owner".into(), bot: false });
            members.insert(
                uid,
                Member {
                    user_id: uid,
                    roles: vec![],
                    nick: None,
                    joined_at_ms: now,
                    communication_disabled_until: None,
                },
            );
            uid
        });
        if let std::collections::btree_map::Entry::Vacant(slot) = members.entry(owner_id) {
            st.users.entry(owner_id).or_insert_with(|| User {
                id: owner_id,
                username: format!("owner{owner_id}"),
                bot: false,
            });
            slot.insert(Member {
                user_id: owner_id,
                roles: vec![],
                nick: None,
                joined_at_ms: now,
                communication_disabled_until: None,
            });
        }
        let names = if spec.text_channels.is_empty() { vec!["general".to_owned()] } else { spec.text_channels.clone() };
        let mut channels = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let id = sh.ids.next();
            let mut c = new_channel(id, 0, Some(gid), name);
            c.position = i as i64;
            st.channels.insert(id, c);
            channels.push(id);
        }
        let guild = Guild {
            id: gid,
            name: spec.name,
            owner_id,
            channels,
            roles,
            members,
            bans: BTreeMap::new(),
            created_ms: now,
            audit_log: Vec::new(),
        };
        let create = json::guild(&st, &guild, true);
        st.guilds.insert(gid, guild);
        st.dispatch(sh.bot_id(), Some(gid), "GUILD_CREATE", &create, 0);
        let info = guild_info(&st, gid);
        drop(st);
        sh.notify();
        info.unwrap_or_else(|| unreachable_guild(gid))
    }

    /// The ids of all guilds, in id order (cheap beside [`FakeDiscord::guilds`] when there are
    /// many: no channels, roles or members are copied).
    pub fn guild_ids(&self) -> Vec<u64> {
        self.shared.lock().guilds.keys().copied().collect()
    }

    /// One guild with its channels, roles and members.
    pub fn guild(&self, id: u64) -> Option<GuildInfo> {
        guild_info(&self.shared.lock(), id)
    }

    /// All guilds with their channels, roles and members.
    pub fn guilds(&self) -> Vec<GuildInfo> {
        let st = self.shared.lock();
        st.guilds.keys().filter_map(|id| guild_info(&st, *id)).collect()
    }

    /// Sets the Discord client locale (`de`, `pt-BR`, …) that `user_id`'s interactions carry;
    /// without one they carry `en-US`.
    pub fn set_locale(&self, user_id: u64, locale: &str) {
        self.shared.lock().locales.insert(user_id, locale.to_owned());
    }

    /// The role Discord created for the bot when it joined `guild_id` (it starts as administrator).
    pub fn bot_role(&self, guild_id: u64) -> Option<u64> {
        let st = self.shared.lock();
        let bot = self.shared.bot_id();
        st.guilds.get(&guild_id)?.roles.iter().find(|r| r.bot_id == Some(bot)).map(|r| r.id)
    }

    /// A server admin changes a role's permissions in Discord's UI.
    pub fn set_role_permissions(&self, guild_id: u64, role_id: u64, permissions: u64) -> Result<(), Error> {
        let mut st = self.shared.lock();
        let role = st
            .guilds
            .get_mut(&guild_id)
            .and_then(|g| g.roles.iter_mut().find(|r| r.id == role_id))
            .ok_or_else(|| Error::NotFound(format!("role {role_id} in guild {guild_id}")))?;
        role.permissions = permissions;
        Ok(())
    }

    /// A server admin sets a channel's permission overwrites (`[{id, type, allow, deny}]`,
    /// type 0 role, 1 member; `allow`/`deny` as strings of permission bits).
    pub fn set_permission_overwrites(&self, channel_id: u64, overwrites: Value) -> Result<(), Error> {
        let mut st = self.shared.lock();
        let channel =
            st.channels.get_mut(&channel_id).ok_or_else(|| Error::NotFound(format!("channel {channel_id}")))?;
        channel.permission_overwrites = overwrites;
        Ok(())
    }

    /// A server admin drags a role to `position` in Discord's UI (higher is above).
    pub fn set_role_position(&self, guild_id: u64, role_id: u64, position: i64) -> Result<(), Error> {
        let mut st = self.shared.lock();
        let role = st
            .guilds
            .get_mut(&guild_id)
            .and_then(|g| g.roles.iter_mut().find(|r| r.id == role_id))
            .ok_or_else(|| Error::NotFound(format!("role {role_id} in guild {guild_id}")))?;
        role.position = position;
        Ok(())
    }

    /// A user closes (or opens) their DMs to the bot: its messages then fail with 50007.
    pub fn set_dms_closed(&self, user_id: u64, closed: bool) {
        let mut st = self.shared.lock();
        if closed {
            st.closed_dms.insert(user_id);
        } else {
            st.closed_dms.remove(&user_id);
        }
    }

    /// The member's DM channel with the bot, opened as Discord does when the member opens it
    /// (the same channel the bot gets from `POST /users/@me/channels`).
    pub fn open_dm(&self, user_id: u64) -> u64 {
        let mut st = self.shared.lock();
        if let Some(c) = st.channels.values().find(|c| c.kind == 1 && c.recipients == vec![user_id]) {
            return c.id;
        }
        let id = self.shared.ids.next();
        let channel = crate::state::Channel { recipients: vec![user_id], ..new_channel(id, 1, None, String::new()) };
        st.channels.insert(id, channel);
        id
    }

    /// The DM channel the bot opened with `user_id`, if any.
    pub fn dm_channel(&self, user_id: u64) -> Option<u64> {
        let st = self.shared.lock();
        st.channels.values().find(|c| c.kind == 1 && c.recipients == vec![user_id]).map(|c| c.id)
    }

    /// Users banned from `guild_id`, with the reason Discord keeps.
    pub fn bans(&self, guild_id: u64) -> Vec<(u64, Option<String>)> {
        let st = self.shared.lock();
        st.guilds.get(&guild_id).map(|g| g.bans.iter().map(|(u, r)| (*u, r.clone())).collect()).unwrap_or_default()
    }

    /// Whether `user_id` is a member of `guild_id`.
    pub fn is_member(&self, guild_id: u64, user_id: u64) -> bool {
        self.shared.lock().guilds.get(&guild_id).is_some_and(|g| g.members.contains_key(&user_id))
    }

    /// The member's timeout end (`communication_disabled_until`), if set.
    pub fn member_timeout(&self, guild_id: u64, user_id: u64) -> Option<String> {
        let st = self.shared.lock();
        st.guilds.get(&guild_id)?.members.get(&user_id)?.communication_disabled_until.clone()
    }

    /// Sets a member's timeout end directly, as time passing would leave it (no audit entry):
    /// e.g. a long timeout nearly over, before Beacon renews it.
    pub fn set_member_timeout(&self, guild_id: u64, user_id: u64, until: Option<&str>) -> Result<(), Error> {
        let mut st = self.shared.lock();
        let member = st
            .guilds
            .get_mut(&guild_id)
            .and_then(|g| g.members.get_mut(&user_id))
            .ok_or_else(|| Error::NotFound(format!("member {user_id} of guild {guild_id}")))?;
        member.communication_disabled_until = until.map(str::to_owned);
        Ok(())
    }

    /// The guild's audit log, oldest first.
    pub fn audit_log(&self, guild_id: u64) -> Vec<Value> {
        self.shared.lock().guilds.get(&guild_id).map(|g| g.audit_log.clone()).unwrap_or_default()
    }

    /// A moderator acts in Discord's own UI: the same permission and role-hierarchy rules as
    /// for the bot, the same events, and an audit log entry naming the moderator.
    pub fn moderate_in_ui(
        &self,
        guild_id: u64,
        moderator: u64,
        action: UiAction,
        target: u64,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        use crate::state::{BAN_MEMBERS, MODERATE_MEMBERS};
        let sh = &self.shared;
        let mut st = sh.lock();
        if !st.guilds.contains_key(&guild_id) {
            return Err(Error::NotFound(format!("guild {guild_id}")));
        }
        let refused = |r: crate::handlers::Reply| {
            Error::Invalid(format!("Discord refuses: {}", r.body.map(|b| b.to_string()).unwrap_or_default()))
        };
        match action {
            UiAction::Ban => {
                if let Some(why) = st.moderation_refusal(guild_id, moderator, target, BAN_MEMBERS) {
                    return Err(Error::Invalid(format!("Discord refuses the ban: {why}")));
                }
                crate::moderation::apply_ban(sh, &mut st, guild_id, target, moderator, reason);
            }
            UiAction::Unban => {
                let r = crate::moderation::unban(sh, &mut st, guild_id, target, moderator, reason);
                if r.status != 204 {
                    return Err(refused(r));
                }
            }
            UiAction::Kick => {
                let r = crate::moderation::kick(sh, &mut st, guild_id, target, moderator, reason);
                if r.status != 204 {
                    return Err(refused(r));
                }
            }
            UiAction::Timeout(_) | UiAction::RemoveTimeout => {
                let value = match &action {
                    UiAction::Timeout(until) => json!(until),
                    _ => Value::Null,
                };
                if let Some(why) = st.moderation_refusal(guild_id, moderator, target, MODERATE_MEMBERS) {
                    return Err(Error::Invalid(format!("Discord refuses the timeout: {why}")));
                }
                crate::moderation::check_timeout(&st, guild_id, target, moderator, &value).map_err(refused)?;
                let member = st
                    .guilds
                    .get_mut(&guild_id)
                    .and_then(|g| g.members.get_mut(&target))
                    .ok_or_else(|| Error::NotFound(format!("member {target}")))?;
                let before = member.communication_disabled_until.clone();
                member.communication_disabled_until = value.as_str().map(str::to_owned);
                let after = member.communication_disabled_until.clone();
                crate::moderation::audit_timeout(sh, &mut st, guild_id, target, moderator, before, after, reason);
            }
        }
        drop(st);
        sh.notify();
        Ok(())
    }

    /// The user clicks a button on a message the bot sent them by DM.
    pub async fn click_dm_button(
        &self,
        user_id: u64,
        channel_id: u64,
        message_id: u64,
        custom_id: &str,
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        let data = json!({"custom_id": custom_id, "component_type": 2, "id": 1});
        self.interact(
            NewInteraction {
                kind: 3,
                guild_id: 0,
                channel_id,
                user_id,
                data,
                message_id: Some(message_id),
                permissions: None,
            },
            via,
        )
        .await
    }

    /// The user submits, in their DM with the bot, a modal with text inputs `(custom_id, value)`.
    pub async fn submit_dm_modal(
        &self,
        user_id: u64,
        channel_id: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        self.submit_modal(0, channel_id, user_id, custom_id, fields, via).await
    }

    /// A member runs a user context-menu command (right click → Apps → `name`) on `target`.
    pub async fn invoke_user_command(
        &self,
        inv: CommandInvocation,
        target: u64,
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        let data = {
            let st = self.shared.lock();
            let cmd = crate::commands::find(&st, inv.guild_id, &inv.name, 2)
                .ok_or_else(|| Error::NotFound(format!("user command {:?} is not registered", inv.name)))?;
            crate::commands::check_visible(&st, inv.guild_id, inv.channel_id, inv.user_id, &cmd)
                .map_err(Error::Hidden)?;
            let options = json!([{"name": "user", "type": 6, "value": target.to_string()}]);
            let mut data = json!({
                "id": cmd["id"].clone(),
                "name": inv.name,
                "type": 2,
                "target_id": target.to_string(),
            });
            if let Some(r) = interactions::resolved(&st, inv.guild_id, &options) {
                data["resolved"] = r;
            }
            if let Some(g) = cmd.get("guild_id").filter(|g| !g.is_null()) {
                data["guild_id"] = g.clone();
            }
            data
        };
        self.run_command(&inv, data, via).await
    }

    /// Add a member to an existing guild (dispatches GUILD_MEMBER_ADD).
    pub fn add_member(
        &self,
        guild_id: u64,
        user_id: Option<u64>,
        username: &str,
        role_ids: Vec<u64>,
    ) -> Result<u64, Error> {
        let sh = &self.shared;
        let mut st = sh.lock();
        if !st.guilds.contains_key(&guild_id) {
            return Err(Error::NotFound(format!("guild {guild_id}")));
        }
        let uid = user_id.unwrap_or_else(|| sh.ids.next());
        st.users.entry(uid).or_insert_with(|| User { id: uid, username: username.to_owned(), bot: false });
        let member = Member {
            user_id: uid,
            roles: role_ids,
            nick: None,
            joined_at_ms: now_ms(),
            communication_disabled_until: None,
        };
        let mut ev = json::member(&st, &member);
        ev["guild_id"] = json!(guild_id.to_string());
        if let Some(g) = st.guilds.get_mut(&guild_id) {
            g.members.insert(uid, member);
        }
        st.dispatch(sh.bot_id(), Some(guild_id), "GUILD_MEMBER_ADD", &ev, crate::handlers::intents::GUILD_MEMBERS);
        drop(st);
        sh.notify();
        Ok(uid)
    }

    fn check_member_channel(&self, guild_id: u64, channel_id: u64, user_id: u64) -> Result<(), Error> {
        let st = self.shared.lock();
        let g = st.guilds.get(&guild_id).ok_or_else(|| Error::NotFound(format!("guild {guild_id}")))?;
        if !g.members.contains_key(&user_id) {
            return Err(Error::NotFound(format!("member {user_id} of guild {guild_id}")));
        }
        if st.channel_guild(channel_id) != Some(guild_id) {
            return Err(Error::NotFound(format!("channel {channel_id} in guild {guild_id}")));
        }
        Ok(())
    }

    /// A member sends a message (dispatches MESSAGE_CREATE).
    pub async fn send_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        content: &str,
    ) -> Result<u64, Error> {
        self.check_member_channel(guild_id, channel_id, user_id)?;
        let sh = &self.shared;
        let mut st = sh.lock();
        let msg = handlers::post_message(sh, &mut st, channel_id, user_id, &json!({"content": content}), None);
        drop(st);
        sh.notify();
        msg["id"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Invalid("message id".into()))
    }

    /// A member attaches a file to a command they are about to run: returns the attachment id to
    /// give as the value of an `ATTACHMENT` option (type 11). Its signed CDN address is served by
    /// the fake until the test ends.
    pub fn attach_file(&self, filename: &str, content_type: Option<&str>, bytes: Vec<u8>) -> u64 {
        let sh = &self.shared;
        let id = sh.ids.next();
        let now = now_ms() / 1000;
        let sig: String = (0..32).map(|_| format!("{:x}", fastrand::u8(..16))).collect();
        let url = format!(
            "{}/ephemeral-attachments/{}/{id}/{filename}?ex={:x}&is={now:x}&hm={sig}&",
            sh.base_url(),
            sh.app_id,
            now + 86_400
        );
        let file = crate::state::AttachedFile {
            filename: filename.to_owned(),
            content_type: content_type.map(str::to_owned),
            bytes,
            url,
        };
        sh.lock().files.insert(id, file);
        id
    }

    /// A member reacts to a message (dispatches MESSAGE_REACTION_ADD).
    pub async fn add_reaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        emoji: &str,
    ) -> Result<(), Error> {
        self.check_member_channel(guild_id, channel_id, user_id)?;
        let sh = &self.shared;
        let mut st = sh.lock();
        if st.message(channel_id, message_id).is_none() {
            return Err(Error::NotFound(format!("message {message_id} in channel {channel_id}")));
        }
        handlers::react(sh, &mut st, channel_id, message_id, user_id, emoji, true);
        drop(st);
        sh.notify();
        Ok(())
    }

    /// Someone deletes a channel or thread in Discord's UI (dispatches CHANNEL_DELETE or
    /// THREAD_DELETE).
    pub fn delete_channel_in_ui(&self, channel_id: u64) -> Result<(), Error> {
        let sh = &self.shared;
        let mut st = sh.lock();
        handlers::delete_channel(&mut st, sh.bot_id(), channel_id)
            .ok_or_else(|| Error::NotFound(format!("channel {channel_id}")))?;
        drop(st);
        sh.notify();
        Ok(())
    }

    /// A webhook on `channel_id`, as a server admin makes one in Discord's UI; returns its URL
    /// (`{base_url}/api/v10/webhooks/{id}/{token}`). Messages executed on it land in the channel.
    pub fn create_webhook(&self, channel_id: u64) -> String {
        let id = self.shared.ids.next();
        let token = crate::interactions::random_token();
        self.shared.lock().webhooks.insert(id, (token.clone(), channel_id));
        format!("{}/api/v10/webhooks/{id}/{token}", self.base_url())
    }

    /// Messages stored in a channel, oldest first (the bot's included).
    pub fn messages(&self, channel_id: u64) -> Vec<Value> {
        self.shared.lock().messages.get(&channel_id).cloned().unwrap_or_default()
    }

    async fn interact(&self, ni: NewInteraction, via: Delivery) -> Result<InteractionHandle, Error> {
        let (handle, payload) = {
            let mut st = self.shared.lock();
            interactions::create(&self.shared, &mut st, &ni)?
        };
        interactions::deliver(self.shared.clone(), &handle, payload, via).await?;
        Ok(handle)
    }

    /// Delivers an application-command interaction (slash or context menu) with `data`.
    async fn run_command(
        &self,
        inv: &CommandInvocation,
        data: Value,
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        self.interact(
            NewInteraction {
                kind: 2,
                guild_id: inv.guild_id,
                channel_id: inv.channel_id,
                user_id: inv.user_id,
                data,
                message_id: None,
                permissions: inv.member_permissions,
            },
            via,
        )
        .await
    }

    fn command_data(&self, inv: &CommandInvocation) -> Result<Value, Error> {
        let st = self.shared.lock();
        let registered = crate::commands::find(&st, inv.guild_id, &inv.name, 1);
        crate::commands::check_context(inv.guild_id, &inv.name, registered.as_ref()).map_err(Error::Hidden)?;
        if let Some(cmd) = &registered
            && inv.guild_id != 0
        {
            crate::commands::check_visible(&st, inv.guild_id, inv.channel_id, inv.user_id, cmd)
                .map_err(Error::Hidden)?;
        }
        let id = registered
            .as_ref()
            .and_then(|c| c["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| self.shared.ids.next().to_string());
        let mut data = json!({"id": id, "name": inv.name, "type": 1});
        if let Some(g) = registered.as_ref().and_then(|c| c.get("guild_id")).filter(|g| !g.is_null()) {
            data["guild_id"] = g.clone();
        }
        if inv.options.as_array().is_some_and(|o| !o.is_empty()) {
            data["options"] = inv.options.clone();
            if let Some(r) = interactions::resolved(&st, inv.guild_id, &inv.options) {
                data["resolved"] = r;
            }
        }
        Ok(data)
    }

    /// A server admin sets the permissions of `/name` in `guild` in Discord's UI (Server
    /// Settings → Integrations); a bot token cannot. `overrides` are `(id, type, allowed)` with
    /// type 1 role (the guild id is `@everyone`), 2 user, 3 channel.
    pub fn set_command_permissions(
        &self,
        guild_id: u64,
        name: &str,
        overrides: &[(u64, u8, bool)],
    ) -> Result<(), Error> {
        let mut st = self.shared.lock();
        let cmd = crate::commands::find(&st, guild_id, name, 1)
            .ok_or_else(|| Error::NotFound(format!("command /{name} is not registered")))?;
        let id = cmd["id"].as_str().unwrap_or_default().to_owned();
        let list = overrides
            .iter()
            .map(|(target, kind, allowed)| json!({"id": target.to_string(), "type": kind, "permission": allowed}))
            .collect();
        st.command_permissions.insert((guild_id, id), list);
        Ok(())
    }

    /// A member invokes a slash command.
    pub async fn invoke_command(&self, inv: CommandInvocation, via: Delivery) -> Result<InteractionHandle, Error> {
        let data = self.command_data(&inv)?;
        self.run_command(&inv, data, via).await
    }

    /// A member types into an autocompleted option (one option has `"focused": true`).
    pub async fn autocomplete(&self, inv: CommandInvocation, via: Delivery) -> Result<InteractionHandle, Error> {
        fn has_focus(v: &Value) -> bool {
            v.as_array().is_some_and(|opts| {
                opts.iter().any(|o| o["focused"].as_bool() == Some(true) || has_focus(&o["options"]))
            })
        }
        if !has_focus(&inv.options) {
            return Err(Error::Invalid("autocomplete needs one option with \"focused\": true".into()));
        }
        let mut data = self.command_data(&inv)?;
        if let Some(obj) = data.as_object_mut() {
            obj.remove("resolved");
        }
        self.interact(
            NewInteraction {
                kind: 4,
                guild_id: inv.guild_id,
                channel_id: inv.channel_id,
                user_id: inv.user_id,
                data,
                message_id: None,
                permissions: inv.member_permissions,
            },
            via,
        )
        .await
    }

    /// A member clicks a button on a message.
    pub async fn click_button(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        let data = json!({"custom_id": custom_id, "component_type": 2, "id": 1});
        self.interact(
            NewInteraction {
                kind: 3,
                guild_id,
                channel_id,
                user_id,
                data,
                message_id: Some(message_id),
                permissions: None,
            },
            via,
        )
        .await
    }

    /// A member picks values in a string select menu on a message.
    #[allow(clippy::too_many_arguments)] // mirrors click_button plus the chosen values
    pub async fn select_menu(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
        values: &[&str],
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        let data = json!({"custom_id": custom_id, "component_type": 3, "values": values, "id": 1});
        self.interact(
            NewInteraction {
                kind: 3,
                guild_id,
                channel_id,
                user_id,
                data,
                message_id: Some(message_id),
                permissions: None,
            },
            via,
        )
        .await
    }

    /// A member submits a modal with text inputs `(custom_id, value)`.
    pub async fn submit_modal(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
        via: Delivery,
    ) -> Result<InteractionHandle, Error> {
        let rows: Vec<Value> = fields
            .iter()
            .enumerate()
            .map(|(i, (id, value))| json!({"type": 1, "id": i * 2 + 1, "components": [{"type": 4, "id": i * 2 + 2, "custom_id": id, "value": value}]}))
            .collect();
        let data = json!({"custom_id": custom_id, "components": rows});
        self.interact(
            NewInteraction { kind: 5, guild_id, channel_id, user_id, data, message_id: None, permissions: None },
            via,
        )
        .await
    }

    /// Wait for the bot's answer (for deferred responses, until `@original` was edited).
    pub async fn wait_response(&self, h: &InteractionHandle, timeout: Duration) -> Result<InteractionOutcome, Error> {
        let id = h.id;
        self.shared
            .wait_until(timeout, &format!("the response to interaction {id}"), |st| {
                interactions::outcome(st.interactions.get(&id)?)
            })
            .await?
    }

    /// Wait until the interaction has at least `n` follow-ups; returns them.
    pub async fn wait_followups(
        &self,
        h: &InteractionHandle,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let id = h.id;
        self.shared
            .wait_until(timeout, &format!("{n} follow-ups to interaction {id}"), |st| {
                let rec = st.interactions.get(&id)?;
                (rec.followups.len() >= n).then(|| rec.followups.clone())
            })
            .await
    }

    /// Wait for a REST request (received after or before this call) with this method whose path
    /// contains `path_contains`.
    pub async fn wait_for_request(
        &self,
        method: &str,
        path_contains: &str,
        timeout: Duration,
    ) -> Result<RecordedRequest, Error> {
        self.shared
            .wait_until(timeout, &format!("{method} {path_contains}"), |st| {
                st.requests
                    .iter()
                    .find(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
                    .cloned()
            })
            .await
    }

    /// Wait for a message in a channel matching `pred`.
    pub async fn wait_for_message(
        &self,
        channel_id: u64,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value, Error> {
        self.shared
            .wait_until(timeout, &format!("a message in channel {channel_id}"), |st| {
                st.messages.get(&channel_id)?.iter().find(|m| pred(m)).cloned()
            })
            .await
    }

    /// Every REST request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every file uploaded so far (by multipart requests), in order.
    pub fn uploads(&self) -> Vec<crate::types::Upload> {
        self.shared.lock().uploads.clone()
    }

    /// Every violation recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// Panic listing every violation with its operation and reason.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        if !v.is_empty() {
            let list: Vec<String> = v
                .iter()
                .map(|v| {
                    format!("  - {} {} [{}]: {}", v.method, v.path, v.operation_id.as_deref().unwrap_or("-"), v.reason)
                })
                .collect();
            panic!("fake Discord recorded {} violation(s):\n{}", v.len(), list.join("\n"));
        }
    }

    /// Inject a fault into matching REST requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// The injected faults, each with the uses it has left: a fault at `times: 0` has met all
    /// its requests (a delayed one may still be holding its answer back).
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Close every bot websocket with this code (`None`: drop the TCP connection abruptly).
    pub async fn gateway_disconnect_all(&self, close_code: Option<u16>) {
        gateway::disconnect_all(&self.shared, close_code);
        let _ = self
            .shared
            .wait_until(Duration::from_secs(5), "connections to close", |st| {
                st.sessions.values().all(|s| s.conn.is_none()).then_some(())
            })
            .await;
    }

    /// Dispatches the MESSAGE_CREATE of `message_id` again on every connected session that
    /// received it, same payload, next sequence number: the duplicate a bot sees when Discord
    /// replays events it already delivered (a resume from an older point, a shard handed to
    /// another process). Returns how many sessions got it.
    pub fn redeliver_message(&self, message_id: u64) -> usize {
        let mut st = self.shared.lock();
        let mut sent = 0;
        for session in st.sessions.values_mut() {
            let original = session.buffer.iter().rev().find_map(|(_, frame)| {
                let v: Value = serde_json::from_str(frame).ok()?;
                (v["t"] == "MESSAGE_CREATE" && v["d"]["id"].as_str() == Some(message_id.to_string().as_str()))
                    .then(|| v["d"].clone())
            });
            if let (Some(data), true) = (original, session.conn.is_some()) {
                session.push("MESSAGE_CREATE", data);
                sent += 1;
            }
        }
        sent
    }

    /// Send op 7 Reconnect.
    pub async fn gateway_send_reconnect(&self) {
        gateway::send_reconnect(&self.shared);
    }

    /// Send op 9 Invalid Session.
    pub async fn gateway_invalidate_session(&self, resumable: bool) {
        gateway::invalidate_sessions(&self.shared, resumable);
    }

    /// `(shard id, shard total)` of every connected, identified session.
    pub fn connected_shards(&self) -> Vec<(u32, u32)> {
        let st = self.shared.lock();
        let mut v: Vec<_> = st.sessions.values().filter(|s| s.conn.is_some() && s.resumable).map(|s| s.shard).collect();
        v.sort_unstable();
        v
    }

    /// Wait until `n` shards are connected.
    pub async fn wait_for_shards(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        self.shared
            .wait_until(timeout, &format!("{n} connected shards"), |st| {
                (st.sessions.values().filter(|s| s.conn.is_some() && s.resumable).count() >= n).then_some(())
            })
            .await
    }

    /// Identify commands accepted so far.
    pub fn identify_count(&self) -> u32 {
        self.shared.lock().identify_count
    }

    /// Resume commands accepted so far.
    pub fn resume_count(&self) -> u32 {
        self.shared.lock().resume_count
    }

    /// Registered application commands: global, or of one guild.
    pub fn commands(&self, guild_id: Option<u64>) -> Vec<Value> {
        let st = self.shared.lock();
        match guild_id {
            Some(g) => st.guild_commands.get(&g).cloned().unwrap_or_default(),
            None => st.global_commands.clone(),
        }
    }
}

fn unreachable_guild(gid: u64) -> GuildInfo {
    GuildInfo { id: gid, name: String::new(), owner_id: 0, channels: vec![], roles: vec![], members: vec![] }
}

fn guild_info(st: &crate::state::State, gid: u64) -> Option<GuildInfo> {
    let g = st.guilds.get(&gid)?;
    Some(GuildInfo {
        id: g.id,
        name: g.name.clone(),
        owner_id: g.owner_id,
        channels: g
            .channels
            .iter()
            .filter_map(|c| st.channels.get(c))
            .map(|c| ChannelInfo { id: c.id, name: c.name.clone(), kind: c.kind })
            .collect(),
        roles: g
            .roles
            .iter()
            .map(|r| RoleInfo { id: r.id, name: r.name.clone(), permissions: r.permissions })
            .collect(),
        members: g
            .members
            .values()
            .map(|m| MemberInfo {
                user_id: m.user_id,
                username: st.users.get(&m.user_id).map(|u| u.username.clone()).unwrap_or_default(),
                roles: m.roles.clone(),
            })
            .collect(),
    })
}
