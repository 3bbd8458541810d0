use beacon_testkit::Delivery;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn status_answers_over_both_transports() {
    let t = TestApp::spawn().await;
    for via in [Delivery::Gateway, Delivery::Http] {
        let out = t.command(t.member("bob"), "status", json!([]), via).await;
        assert_eq!(out.kind, 4, "{via:?}: {out:?}");
        assert!(is_ephemeral(&out), "{via:?}: status must be ephemeral");
        let text = text_of(&out);
        assert!(text.contains("Beacon status"), "{text}");
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains("database"), "{text}");
        assert!(text.contains("Guilds: 1"), "{text}");
    }
    t.stop().await;
}

#[tokio::test]
async fn guild_create_registers_guild_and_owner_as_first_authorized_user() {
    let t = TestApp::spawn().await;
    let guild = t.app().store.guild(t.guild.id);
    let record = guild.get().await.unwrap().expect("guild row");
    assert_eq!(record.name, "Test Guild");
    assert_eq!(record.owner_id, Some(t.owner()));
    let users = guild.authorized_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user_id, t.owner());
    // The owner may run /access list; it shows them.
    let out = t.command(t.owner(), "access", sub("list", json!([])), Delivery::Gateway).await;
    assert!(text_of(&out).contains(&format!("<@{}>", t.owner())));
    t.stop().await;
}

#[tokio::test]
async fn unauthorized_member_is_refused_with_an_ephemeral_message() {
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    let out = t
        .command(
            bob,
            "config",
            sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", "1")])),
            Delivery::Http,
        )
        .await;
    assert!(is_ephemeral(&out));
    assert!(text_of(&out).contains("Only the server owner, admins and authorized users"), "{}", text_of(&out));
    let value = t.app().store.guild(t.guild.id).setting("core.staff_roles").await.unwrap();
    assert_eq!(value, None, "a refused command must not change anything");
    // Granting access makes the same command work.
    let out = t
        .command(
            t.owner(),
            "access",
            sub("grant", json!([{ "name": "user", "type": 6, "value": bob.to_string() }])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("can now configure"), "{}", text_of(&out));
    let staff = t.role("staff").to_string();
    let out = t
        .command(
            bob,
            "config",
            sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &staff)])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("changed"), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test]
async fn admins_are_always_authorized() {
    let t = TestApp::spawn().await;
    let out = t.command(t.member("alice-admin"), "access", sub("list", json!([])), Delivery::Gateway).await;
    assert!(text_of(&out).contains("Beacon access"), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test]
async fn autocomplete_offers_setting_keys_and_values() {
    let t = TestApp::spawn().await;
    let focused = json!([{ "name": "set", "type": 1, "options": [
        { "name": "key", "type": 3, "value": "core.", "focused": true }
    ]}]);
    for via in [Delivery::Gateway, Delivery::Http] {
        let out = t.autocomplete(t.owner(), "config", focused.clone(), via).await;
        assert_eq!(out.kind, 8, "{out:?}");
        let values: Vec<&str> =
            out.data["choices"].as_array().unwrap().iter().filter_map(|c| c["value"].as_str()).collect();
        assert!(values.contains(&"core.staff_roles"), "{values:?}");
        assert!(values.iter().all(|v| v.contains("core.")), "{values:?}");
    }
    // Value suggestions follow the key's type: roles come from the guild.
    let focused = json!([{ "name": "set", "type": 1, "options": [
        { "name": "key", "type": 3, "value": "core.staff_roles" },
        { "name": "value", "type": 3, "value": "sta", "focused": true }
    ]}]);
    let out = t.autocomplete(t.owner(), "config", focused, Delivery::Http).await;
    let choices = out.data["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1, "{choices:?}");
    assert_eq!(choices[0]["value"], t.role("staff").to_string());
    // Members without access get no suggestions.
    let focused = json!([{ "name": "set", "type": 1, "options": [
        { "name": "key", "type": 3, "value": "", "focused": true }
    ]}]);
    let out = t.autocomplete(t.member("bob"), "config", focused, Delivery::Http).await;
    assert_eq!(out.data["choices"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn commands_sync_registers_valid_commands() {
    let t = TestApp::spawn().await;
    let n = t.app().sync_commands(Some(t.guild.id)).await.expect("guild sync");
    assert_eq!(n, t.app().command_specs().len());
    let guild_path = format!("/guilds/{}/commands", t.guild.id);
    let req = t
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.contains(&guild_path))
        .expect("bulk overwrite seen");
    assert_eq!(req.status, 200, "{req:?}");
    let names: Vec<&str> = req.body.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    for name in ["config", "access", "status"] {
        assert!(names.contains(&name), "{names:?}");
    }
    t.app().sync_commands(None).await.expect("global sync");
    t.stop().await;
}

#[tokio::test]
async fn the_developer_team_has_access_in_every_guild() {
    let t = TestApp::spawn_with(Options { dev_team: true, ..Options::default() }).await;
    // bob has no permissions in the test guild, but holds the developers role in HQ.
    let out = t.command(t.member("bob"), "access", sub("list", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("Beacon access"), "{}", text_of(&out));
    // The lookup went to the main guild's member endpoint.
    t.fake.wait_for_request("GET", &format!("/members/{}", t.member("bob")), WAIT).await.expect("member lookup");
    t.stop().await;
}
