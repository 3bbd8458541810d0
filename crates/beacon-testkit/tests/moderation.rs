//! Moderation routes as Discord enforces them, driven by twilight-http's real requests: bans,
//! kicks, timeouts and bulk bans with their permissions, role hierarchy and audit log (reason
//! header included), DMs refused with 50007, and actions taken in Discord's own UI.

mod common;

use beacon_testkit::{FakeDiscord, FakeOptions, GuildInfo, GuildSpec, MemberSpec, RoleSpec, UiAction};
use std::sync::Arc;
use twilight_http::Client;
use twilight_http::request::AuditLogReason;
use twilight_model::id::Id;
use twilight_model::util::Timestamp;

const BAN_MEMBERS: u64 = 1 << 2;
const MODERATE_MEMBERS: u64 = 1 << 40;

fn client(fake: &FakeDiscord) -> Arc<Client> {
    Arc::new(Client::builder().token(fake.bot_token()).proxy(fake.base_url().replace("http://", ""), true).build())
}

fn guild(fake: &FakeDiscord) -> GuildInfo {
    fake.create_guild(GuildSpec {
        name: "Moderated".into(),
        owner_id: None,
        text_channels: vec!["general".into()],
        roles: vec![
            RoleSpec { name: "mods".into(), permissions: BAN_MEMBERS | MODERATE_MEMBERS },
            RoleSpec { name: "admins".into(), permissions: 1 << 3 },
        ],
        members: vec![
            MemberSpec { user_id: None, username: "owner".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "mod".into(), roles: vec!["mods".into()] },
            MemberSpec { user_id: None, username: "bob".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "carol".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "admin".into(), roles: vec!["admins".into()] },
        ],
    })
}

fn status(e: &twilight_http::Error) -> (u16, String) {
    match e.kind() {
        twilight_http::error::ErrorType::Response { status, body, .. } => {
            (status.get(), String::from_utf8_lossy(body).into_owned())
        }
        other => (0, format!("{other:?}")),
    }
}

fn ts_in(ms: i64) -> Timestamp {
    Timestamp::from_micros((jiff::Timestamp::now().as_millisecond() + ms) * 1000).expect("timestamp")
}

#[tokio::test]
async fn bans_kicks_and_timeouts_follow_discords_rules() {
    let fake = common::start(FakeOptions::default()).await;
    let g = guild(&fake);
    let http = client(&fake);
    let gid = Id::new(g.id);
    let (bob, carol, admin, owner) =
        (common::member(&g, "bob"), common::member(&g, "carol"), common::member(&g, "admin"), g.owner_id);

    // A ban with its reason: the member leaves, Discord keeps the ban and the audit entry.
    http.create_ban(gid, Id::new(bob)).delete_message_seconds(3600).reason("Case #1: spam, links").await.unwrap();
    assert!(!fake.is_member(g.id, bob));
    assert_eq!(fake.bans(g.id), vec![(bob, Some("Case #1: spam, links".to_owned()))]);
    let request = fake.requests().into_iter().find(|r| r.operation_id.as_deref() == Some("ban_user_from_guild"));
    assert_eq!(request.and_then(|r| r.audit_log_reason).as_deref(), Some("Case #1: spam, links"));
    let log = fake.audit_log(g.id);
    assert_eq!(log.last().unwrap()["action_type"], 22);
    assert_eq!(log.last().unwrap()["user_id"], fake.application_id().to_string());
    assert_eq!(log.last().unwrap()["reason"], "Case #1: spam, links");

    // The owner and anyone at or above the bot's highest role are out of reach: 403 50013.
    let err = http.create_ban(gid, Id::new(owner)).await.unwrap_err();
    assert_eq!(status(&err).0, 403);
    assert!(status(&err).1.contains("50013"));
    let bot_role = fake.bot_role(g.id).unwrap();
    let admins = g.roles.iter().find(|r| r.name == "admins").unwrap().id;
    fake.set_role_position(g.id, admins, 99).unwrap();
    assert_eq!(status(&http.remove_guild_member(gid, Id::new(admin)).await.unwrap_err()).0, 403);
    assert!(fake.is_member(g.id, admin));
    // Moving the bot's role above it again makes the kick possible (but no timeout: admin).
    fake.set_role_position(g.id, bot_role, 100).unwrap();
    let until = ts_in(3_600_000);
    let err = http.update_guild_member(gid, Id::new(admin)).communication_disabled_until(Some(until));
    assert_eq!(status(&err.await.unwrap_err()).0, 403, "administrators cannot be timed out");
    http.remove_guild_member(gid, Id::new(admin)).reason("Case #2").await.unwrap();
    assert!(!fake.is_member(g.id, admin));
    assert_eq!(fake.audit_log(g.id).last().unwrap()["action_type"], 20);
    let violations = fake.violations();
    assert_eq!(violations.len(), 3, "each refused action is a violation: {violations:?}");
    assert!(
        violations
            .iter()
            .all(|v| v.reason.contains("owns") || v.reason.contains("not below") || v.reason.contains("administrator"))
    );

    // Timeouts: at most 28 days ahead; the audit entry carries the change.
    http.update_guild_member(gid, Id::new(carol))
        .communication_disabled_until(Some(until))
        .reason("Case #3")
        .await
        .unwrap();
    assert!(fake.member_timeout(g.id, carol).is_some());
    let entry = fake.audit_log(g.id).last().unwrap().clone();
    assert_eq!(entry["action_type"], 24);
    assert_eq!(entry["changes"][0]["key"], "communication_disabled_until");
    assert!(entry["changes"][0]["new_value"].is_string());
    // Lifting it early.
    http.update_guild_member(gid, Id::new(carol)).communication_disabled_until(None).await.unwrap();
    assert_eq!(fake.member_timeout(g.id, carol), None);

    // Unban: 404 Unknown Ban when there is none.
    http.delete_ban(gid, Id::new(bob)).reason("appeal accepted").await.unwrap();
    assert!(fake.bans(g.id).is_empty());
    let (code, body) = status(&http.delete_ban(gid, Id::new(bob)).await.unwrap_err());
    assert_eq!(code, 404);
    assert!(body.contains("10026"), "{body}");
    assert_eq!(fake.audit_log(g.id).iter().filter(|e| e["action_type"] == 23).count(), 1);

    // The audit log route filters like Discord's.
    let entries = http
        .audit_log(gid)
        .action_type(twilight_model::guild::audit_log::AuditLogEventType::MemberBanAdd)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(entries.entries.len(), 1);
    assert_eq!(entries.entries[0].target_id.map(|t| t.get()), Some(bob));
}

#[tokio::test]
async fn a_timeout_beyond_28_days_is_refused() {
    let fake = common::start(FakeOptions::default()).await;
    let g = guild(&fake);
    let carol = common::member(&g, "carol");
    // twilight refuses it locally too; the fake must refuse what gets past a client.
    let reqwest = reqwest::Client::new();
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(29 * 24);
    let resp = reqwest
        .patch(format!("{}/api/v10/guilds/{}/members/{carol}", fake.base_url(), g.id))
        .header("authorization", format!("Bot {}", fake.bot_token()))
        .json(&serde_json::json!({"communication_disabled_until": until.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"]["communication_disabled_until"]["_errors"][0]["code"], "BASE_TYPE_BAD_TIME");
    assert_eq!(fake.member_timeout(g.id, carol), None);
    assert_eq!(fake.violations().len(), 1);
}

#[tokio::test]
async fn bulk_bans_report_who_could_not_be_banned() {
    let fake = common::start(FakeOptions::default()).await;
    let g = guild(&fake);
    let http = client(&fake);
    let (bob, carol) = (common::member(&g, "bob"), common::member(&g, "carol"));
    let ids = [Id::new(bob), Id::new(carol), Id::new(g.owner_id)];
    let result = http.bulk_guild_ban(Id::new(g.id), &ids).reason("raid").await.unwrap().model().await.unwrap();
    let banned: Vec<u64> = result.banned_users.iter().map(|u| u.get()).collect();
    let failed: Vec<u64> = result.failed_users.iter().map(|u| u.get()).collect();
    assert_eq!(banned, vec![bob, carol]);
    assert_eq!(failed, vec![g.owner_id]);
    assert_eq!(fake.audit_log(g.id).iter().filter(|e| e["action_type"] == 22 && e["reason"] == "raid").count(), 2);
    fake.assert_no_violations();
}

#[tokio::test]
async fn dms_fail_with_50007_when_closed_or_after_leaving() {
    let fake = common::start(FakeOptions::default()).await;
    let g = guild(&fake);
    let http = client(&fake);
    let (bob, carol) = (common::member(&g, "bob"), common::member(&g, "carol"));
    let dm = http.create_private_channel(Id::new(bob)).await.unwrap().model().await.unwrap();
    http.create_message(dm.id).content("You were warned in Moderated.").await.unwrap();
    assert_eq!(fake.dm_channel(bob), Some(dm.id.get()));
    fake.set_dms_closed(bob, true);
    let err = http.create_message(dm.id).content("again").await.unwrap_err();
    assert_eq!(status(&err).0, 403);
    assert!(status(&err).1.contains("50007"), "{}", status(&err).1);
    // After a kick, carol shares no server with the bot: a DM then fails the same way.
    let dm = http.create_private_channel(Id::new(carol)).await.unwrap().model().await.unwrap();
    http.remove_guild_member(Id::new(g.id), Id::new(carol)).await.unwrap();
    assert!(status(&http.create_message(dm.id).content("bye").await.unwrap_err()).1.contains("50007"));
    fake.assert_no_violations();
}

#[tokio::test]
async fn actions_in_discords_ui_are_audited_under_the_moderator() {
    let fake = common::start(FakeOptions::default()).await;
    let g = guild(&fake);
    let (moderator, bob, owner) = (common::member(&g, "mod"), common::member(&g, "bob"), g.owner_id);
    fake.moderate_in_ui(g.id, moderator, UiAction::Ban, bob, Some("raiding")).unwrap();
    let entry = fake.audit_log(g.id).last().unwrap().clone();
    assert_eq!(
        (entry["action_type"].as_u64(), entry["user_id"].as_str()),
        (Some(22), Some(moderator.to_string().as_str()))
    );
    assert_eq!(entry["reason"], "raiding");
    assert!(fake.moderate_in_ui(g.id, moderator, UiAction::Ban, owner, None).is_err(), "nobody bans the owner");
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let carol = common::member(&g, "carol");
    fake.moderate_in_ui(g.id, moderator, UiAction::Timeout(until.clone()), carol, None).unwrap();
    assert_eq!(fake.member_timeout(g.id, carol), Some(until));
    assert!(
        fake.moderate_in_ui(g.id, moderator, UiAction::Kick, carol, None).is_err(),
        "the mods role has no KICK_MEMBERS"
    );
    fake.moderate_in_ui(g.id, moderator, UiAction::Unban, bob, Some("appeal")).unwrap();
    assert!(fake.bans(g.id).is_empty());
}
