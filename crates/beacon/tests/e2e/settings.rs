use beacon_testkit::Delivery;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn config_set_is_validated_audited_announced_and_revertible() {
    let t = TestApp::spawn().await;
    let owner = t.owner();
    let mut changes = t.app().settings.subscribe();
    let staff = t.role("staff");

    // A bad value is refused with a message naming the key.
    let out = t
        .command(
            owner,
            "config",
            sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", "#nope")])),
            Delivery::Gateway,
        )
        .await;
    assert!(text_of(&out).contains("`core.staff_roles`"), "{}", text_of(&out));
    assert!(text_of(&out).contains("not a role"), "{}", text_of(&out));

    // A good one is stored, announced to listeners and reported with its change number.
    let out = t
        .command(
            owner,
            "config",
            sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &format!("<@&{staff}>"))])),
            Delivery::Gateway,
        )
        .await;
    let text = text_of(&out);
    assert!(text.contains(&format!("<@&{staff}>")), "{text}");
    let guild = t.app().store.guild(t.guild.id);
    assert_eq!(guild.setting("core.staff_roles").await.unwrap(), Some(json!([staff.to_string()])));
    let event = tokio::time::timeout(WAIT, changes.recv()).await.expect("change announced").unwrap();
    assert_eq!(event.key, "core.staff_roles");
    assert_eq!(event.guild_id, t.guild.id);
    assert_eq!(event.new, json!([staff.to_string()]));
    assert_eq!(event.actor_id, owner);

    // The audit trail has who, old and new.
    let audit = guild.setting_audit(Some("core.staff_roles"), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_id, owner);
    assert_eq!(audit[0].old, None);
    assert_eq!(audit[0].new, Some(json!([staff.to_string()])));
    let out = t.command(owner, "config", sub("history", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains(&format!("#{}", audit[0].id)), "{}", text_of(&out));

    // Revert puts the old value back and is itself audited.
    let out = t
        .command(
            owner,
            "config",
            sub("revert", json!([{ "name": "change", "type": 4, "value": audit[0].id }])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("reverted"), "{}", text_of(&out));
    assert_eq!(guild.setting("core.staff_roles").await.unwrap(), None);
    let audit = guild.setting_audit(Some("core.staff_roles"), 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].reverted_audit_id, Some(audit[1].id));

    // Reverting a change number that does not exist in this guild is a clear error.
    let out = t
        .command(
            owner,
            "config",
            sub("revert", json!([{ "name": "change", "type": 4, "value": 999_999 }])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("no change #999999"), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test]
async fn staff_role_grants_staff_access_once_set() {
    let t = TestApp::spawn().await;
    let staff = t.role("staff");
    let sam = t.fake.add_member(t.guild.id, None, "sam-staff", vec![staff]).unwrap();
    // Before: a member with the staff role is not staff yet (a staff-only export is refused).
    let before = t.command(sam, "export", sub("faq", json!([])), Delivery::Http).await;
    assert!(!text_of(&before).contains("FAQ entr"), "{}", text_of(&before));
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &staff.to_string())])),
        Delivery::Http,
    )
    .await;
    let guild = t.app().store.guild(t.guild.id);
    let roles = t.app().settings.get_ids(&guild, "core.staff_roles").await.unwrap();
    assert_eq!(roles, vec![staff]);
    // After: the role gives staff access at once.
    let after = t.command(sam, "export", sub("faq", json!([])), Delivery::Http).await;
    assert!(text_of(&after).contains("0 FAQ entries."), "{}", text_of(&after));
    t.stop().await;
}

#[tokio::test]
async fn config_show_paginates_with_buttons() {
    let t = TestApp::spawn().await;
    let out = t.command(t.owner(), "config", sub("show", json!([])), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("core.staff_roles"), "{text}");
    let footer = out.data["embeds"][0]["footer"]["text"].as_str().unwrap_or_default();
    assert!(footer.starts_with("Page 1/"), "{out:?}");
    let buttons = out.data["components"][0]["components"].as_array().expect("button row");
    assert_eq!(buttons[0]["custom_id"], "config:page:0");
    assert_eq!(buttons[0]["disabled"], true, "no previous page on page 1");

    // Reset of a setting that was never set is harmless and audited.
    let out = t
        .command(t.owner(), "config", sub("reset", json!([opt_str("key", "core.log_channel")])), Delivery::Gateway)
        .await;
    assert!(text_of(&out).contains("reset to its default"), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test]
async fn log_channel_receives_setting_changes() {
    let t = TestApp::spawn().await;
    let log = t.channel("mod-log");
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "core.log_channel"), opt_str("value", &format!("<#{log}>"))])),
        Delivery::Http,
    )
    .await;
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &t.role("staff").to_string())])),
        Delivery::Http,
    )
    .await;
    let path = format!("/channels/{log}/messages");
    let deadline = tokio::time::Instant::now() + WAIT;
    let req = loop {
        let found = t.fake.requests().into_iter().find(|r| {
            r.method == "POST"
                && r.path.contains(&path)
                && r.body["content"].as_str().unwrap_or("").contains("core.staff_roles")
        });
        if let Some(r) = found {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "no log post for core.staff_roles");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(req.body["allowed_mentions"], json!({ "parse": [] }), "log posts must not ping: {req:?}");
    t.stop().await;
}

/// `/access grant` says the member "can now configure Beacon": Discord must show them `/config`,
/// `/access` and `/kb` (registered without a default permission; Beacon checks access itself),
/// and Beacon must let them use them. Members without a grant are refused by Beacon.
#[tokio::test]
async fn a_granted_member_can_use_what_the_grant_promises() {
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    let set = |user: u64| {
        t.command(
            user,
            "config",
            sub("set", json!([opt_str("key", "support.user_per_minute"), opt_str("value", "9")])),
            Delivery::Http,
        )
    };
    let before = set(bob).await;
    assert!(!text_of(&before).contains("set to"), "bob has no grant yet: {}", text_of(&before));
    let grant = t
        .command(
            t.owner(),
            "access",
            sub("grant", json!([{"name": "user", "type": 6, "value": bob.to_string()}])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&grant).contains("can now configure Beacon"), "{}", text_of(&grant));
    let after = set(bob).await;
    assert!(text_of(&after).contains("support.user_per_minute"), "{}", text_of(&after));
    assert_eq!(t.app().store.guild(t.guild.id).setting("support.user_per_minute").await.unwrap(), Some(json!(9)));
    let list = t.command(bob, "access", sub("list", json!([])), Delivery::Gateway).await;
    assert!(text_of(&list).contains(&bob.to_string()), "{}", text_of(&list));
    let sources = t.command(bob, "kb", sub("sources", json!([])), Delivery::Http).await;
    assert!(text_of(&sources).contains("No sources yet"), "{}", text_of(&sources));
    t.stop().await;
}

/// The fake hides what Discord hides: a command registered for Manage Server is not usable by a
/// plain member, and a server admin's command permission override lets a role use it.
#[tokio::test]
async fn the_fake_enforces_default_member_permissions_and_overrides() {
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    let app_id = t.fake.application_id();
    let client = reqwest::Client::new();
    let restricted =
        json!([{"name": "secret", "description": "Admins only", "type": 1, "default_member_permissions": "32"}]);
    let put = client
        .put(format!("{}/api/v10/applications/{app_id}/guilds/{}/commands", t.fake.base_url(), t.guild.id))
        .header("Authorization", format!("Bot {}", t.fake.bot_token()))
        .json(&restricted)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let invocation = t.invocation(bob, "secret", json!([]));
    let hidden = t.fake.invoke_command(invocation.clone(), Delivery::Http).await.unwrap_err();
    assert!(hidden.to_string().contains("Manage Server"), "{hidden}");
    let by_owner = t.fake.invoke_command(t.invocation(t.owner(), "secret", json!([])), Delivery::Http).await.unwrap();
    t.fake.wait_response(&by_owner, WAIT).await.unwrap();
    // An admin allows the staff role in Server Settings → Integrations.
    let staff = t.role("staff");
    let sam = t.fake.add_member(t.guild.id, None, "sam-staff", vec![staff]).unwrap();
    assert!(t.fake.invoke_command(t.invocation(sam, "secret", json!([])), Delivery::Http).await.is_err());
    t.fake.set_command_permissions(t.guild.id, "secret", &[(staff, 1, true)]).unwrap();
    assert!(t.fake.invoke_command(invocation.clone(), Delivery::Http).await.is_err(), "bob is not staff");
    let by_staff = t.fake.invoke_command(t.invocation(sam, "secret", json!([])), Delivery::Http).await;
    let by_staff = by_staff.expect("the override lets staff use it");
    t.fake.wait_response(&by_staff, WAIT).await.unwrap();
    // A member-level deny beats the role's allow.
    t.fake.set_command_permissions(t.guild.id, "secret", &[(staff, 1, true), (sam, 2, false)]).unwrap();
    assert!(t.fake.invoke_command(t.invocation(sam, "secret", json!([])), Delivery::Http).await.is_err());
    t.stop().await;
}

/// `/setup` sets the essentials in one command and checks that the bot can work where it is
/// told to, naming each missing permission.
#[tokio::test]
async fn setup_sets_the_essentials_and_names_missing_permissions() {
    let t = TestApp::spawn().await;
    let (support, staff) = (t.channel("support"), t.role("staff"));
    let options = json!([
        {"name": "support_channel", "type": 7, "value": support.to_string()},
        {"name": "ticket_channel", "type": 7, "value": support.to_string()},
        {"name": "staff_role", "type": 8, "value": staff.to_string()},
    ]);
    let out = t.command(t.owner(), "setup", options, Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("`support.channels` set") && text.contains("`core.staff_roles` set"), "{text}");
    assert!(text.contains("✅") && !text.contains("❌"), "{text}");
    let guild = t.app().guild(t.guild.id);
    assert_eq!(guild.setting("support.channels").await.unwrap(), Some(json!([support.to_string()])));
    assert_eq!(guild.setting("tickets.channel").await.unwrap(), Some(json!([support.to_string()])));
    assert_eq!(guild.setting("core.staff_roles").await.unwrap(), Some(json!([staff.to_string()])));

    // The server takes the bot's administrator away and denies it Send Messages in #support.
    const VIEW: u64 = 1 << 10;
    const SEND: u64 = 1 << 11;
    const HISTORY: u64 = 1 << 16;
    let bot_role = t.fake.bot_role(t.guild.id).unwrap();
    t.fake.set_role_permissions(t.guild.id, bot_role, VIEW | SEND | HISTORY).unwrap();
    t.fake
        .set_permission_overwrites(
            support,
            json!([{"id": bot_role.to_string(), "type": 0, "allow": "0", "deny": SEND.to_string()}]),
        )
        .unwrap();
    let out = t.command(t.owner(), "setup", json!([]), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("❌"), "{text}");
    assert!(text.contains("Send Messages") && text.contains("Embed Links"), "{text}");
    assert!(text.contains("Create Private Threads"), "the ticket check names what threads need: {text}");
    assert!(!text.contains("Read Message History"), "what it has is not listed: {text}");
    // A member without access cannot change the setup.
    let out = t.command(t.member("bob"), "setup", json!([]), Delivery::Http).await;
    assert!(!text_of(&out).contains("Checks"), "{}", text_of(&out));
    t.stop().await;
}
