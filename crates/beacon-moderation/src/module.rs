//! The `moderation` module: its declarations and the Discord adapter.

use beacon_framework::{Module, SettingKind, SettingSpec, async_trait};
use beacon_store::Schema;
use serde_json::json;
use twilight_model::gateway::Intents;
use twilight_model::guild::Permissions;

use crate::{ModerationModule, keys};

const DAY: u64 = 86_400;

fn dur(min: u64, max: u64) -> SettingKind {
    SettingKind::Duration { min: std::time::Duration::from_secs(min), max: std::time::Duration::from_secs(max) }
}

pub(crate) fn settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            keys::LOG_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "The mod-log channel: one message per case, kept up to date (default: core.log_channel).",
        ),
        SettingSpec::new(
            keys::MODERATOR_ROLES,
            SettingKind::list(SettingKind::Role, 10),
            json!([]),
            "Roles whose members may moderate, besides staff (Discord's own permissions still apply).",
        ),
        SettingSpec::new(
            keys::DM_MEMBERS,
            SettingKind::Bool,
            json!(true),
            "Tell members by DM what was done and why (before a kick or ban).",
        ),
        SettingSpec::new(
            keys::APPEALS_CHANNEL,
            SettingKind::list(SettingKind::Channel, 1),
            json!([]),
            "Where ban appeals go, with Accept and Deny (empty: bans carry no Appeal button).",
        ),
        SettingSpec::new(
            keys::APPEAL_COOLDOWN,
            dur(0, 365 * DAY),
            json!(7 * DAY),
            "How long after a denied appeal the member may appeal the same ban again.",
        ),
        SettingSpec::new(
            keys::ESCALATION_WARNINGS,
            SettingKind::Int { min: 0, max: 50 },
            json!(0),
            "Warnings within moderation.escalation_window that trigger the escalation (0 = off).",
        ),
        SettingSpec::new(
            keys::ESCALATION_WINDOW,
            dur(60, 3650 * DAY),
            json!(30 * DAY),
            "The period in which warnings count towards the escalation.",
        ),
        SettingSpec::new(
            keys::ESCALATION_ACTION,
            SettingKind::Enum(&["timeout", "kick", "ban"]),
            json!("timeout"),
            "What the escalation does, as its own case.",
        ),
        SettingSpec::new(
            keys::ESCALATION_DURATION,
            dur(0, 3650 * DAY),
            json!(3600),
            "How long an escalation's timeout or ban lasts (0 = a permanent ban).",
        ),
    ]
}

#[async_trait]
impl Module for ModerationModule {
    fn name(&self) -> &'static str {
        "moderation"
    }

    fn description(&self) -> &'static str {
        "Cases, timed bans and timeouts, appeals and the mod log"
    }

    fn settings(&self) -> Vec<SettingSpec> {
        settings()
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![crate::model::SCHEMA]
    }

    fn intents(&self) -> Intents {
        // GUILD_AUDIT_LOG_ENTRY_CREATE: actions made in Discord's own UI become cases.
        Intents::GUILD_MODERATION
    }

    fn permissions(&self) -> Permissions {
        Permissions::BAN_MEMBERS
            | Permissions::KICK_MEMBERS
            | Permissions::MODERATE_MEMBERS
            | Permissions::VIEW_AUDIT_LOG
            | Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::EMBED_LINKS
    }
}
