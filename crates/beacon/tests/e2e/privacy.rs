//! `/privacy`: a member who used several modules exports their data (one JSON file with a
//! manifest naming each part, what was withheld and why), erases it after a confirmation (a
//! receipt of what was erased and kept), and an export afterwards holds only what the modules
//! declare they keep. The owner purges the server after two confirmations: no row of it is left
//! in any guild table of the database's own catalogue, and no file. On SQLite and PostgreSQL.
//! Also: a module whose guild table does not say what it holds about members is refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use beacon_framework::{Module, async_trait};
use beacon_store::{Migration, Schema};
use beacon_testkit::Delivery;
use beacon_testkit::services::ScratchDatabase;
use serde_json::{Value, json};

use crate::harness::*;

/// `user`'s `/privacy export` of this server: the one file, parsed.
async fn export(t: &TestApp, user: u64) -> Value {
    let before = t.fake.uploads().len();
    let out = t.command(user, "privacy", sub("export", json!([])), Delivery::Http).await;
    assert!(is_ephemeral(&out), "the export is shown only to the member");
    assert!(text_of(&out).contains("in 1 file(s)"), "{}", text_of(&out));
    let uploads = t.fake.uploads();
    let files: Vec<_> = uploads[before..].iter().filter(|u| u.filename.starts_with("beacon-data-")).collect();
    assert_eq!(files.len(), 1, "one file: {:?}", files.iter().map(|f| &f.filename).collect::<Vec<_>>());
    assert_eq!(files[0].filename, format!("beacon-data-{user}-1-of-1.json"));
    serde_json::from_slice(&files[0].bytes).expect("the export is JSON")
}

/// `(module, part)` of every part in an export's manifest.
fn parts(export: &Value) -> BTreeSet<(String, String)> {
    export["manifest"]["contents"]
        .as_array()
        .expect("manifest contents")
        .iter()
        .map(|p| (p["module"].as_str().unwrap_or("").to_owned(), p["part"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn records<'a>(export: &'a Value, module: &str, part: &str) -> Vec<&'a Value> {
    export["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|d| d["module"] == module && d["part"] == part)
        .flat_map(|d| d["records"].as_array().expect("records"))
        .collect()
}

/// Clicks the button whose custom id starts with `prefix` on the last message that has one.
async fn click(t: &TestApp, user: u64, prefix: &str) -> String {
    let message = t
        .fake
        .messages(t.channel("general"))
        .into_iter()
        .rev()
        .find(|m| m.to_string().contains(prefix))
        .unwrap_or_else(|| panic!("a message with a {prefix} button"));
    let id = message["id"].as_str().unwrap().parse::<u64>().unwrap();
    let custom = format!("{prefix}{}", message.to_string().split(prefix).nth(1).unwrap().split('"').next().unwrap());
    let h = t.fake.click_button(t.guild.id, t.channel("general"), user, id, &custom, Delivery::Http).await.unwrap();
    text_of(&t.fake.wait_response(&h, WAIT).await.unwrap())
}

async fn export_erase_and_purge(t: TestApp) {
    let (guild, bob, alice) = (t.guild.id, t.member("bob"), t.member("alice-admin"));
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    set(&t, "support.audit_content", "true").await;
    t.command(
        t.owner(),
        "access",
        sub("grant", json!([{"name": "user", "type": 6, "value": bob.to_string()}])),
        Delivery::Http,
    )
    .await;
    // Bob uses support, the ticket desk and the FAQ; he is warned; Alice asks too.
    t.command(bob, "ask", json!([opt_str("question", "When are refunds issued?")]), Delivery::Gateway).await;
    t.command(alice, "ask", json!([opt_str("question", "Where is my invoice?")]), Delivery::Gateway).await;
    let opened =
        t.command(bob, "ticket", sub("open", json!([opt_str("topic", "Refund please")])), Delivery::Http).await;
    assert!(text_of(&opened).contains("is open"), "{}", text_of(&opened));
    let warned = t
        .command(
            t.owner(),
            "warn",
            json!([{"name": "user", "type": 6, "value": bob.to_string()}, opt_str("reason", "spamming links")]),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&warned).contains("Case #1"), "{}", text_of(&warned));
    beacon_faq::FaqRepo::new(t.app().store.clone())
        .add(&t.app().guild(guild), &beacon_faq::EntryInput::new("Hours?", "Nine to five.", &[], false).unwrap(), bob)
        .await
        .expect("faq entry");
    let audit = t.app().config.data_dir.join(format!("audit/support/guild-{guild}.jsonl"));
    let transcripts = t.app().config.data_dir.join(format!("transcripts/guilds/{guild}/tickets"));
    std::fs::create_dir_all(&transcripts).unwrap();
    std::fs::write(transcripts.join("000001-1.html"), "<html>transcript</html>").unwrap();

    // The export: every module's part, each described, Bob's rows only.
    let first = export(&t, bob).await;
    assert_eq!(first["manifest"]["user_id"], bob.to_string());
    assert_eq!(first["manifest"]["guilds"], json!([guild.to_string()]));
    let found = parts(&first);
    for (module, part) in [
        ("core", "authorized_users"),
        ("support", "support_answers"),
        ("support", "audit_log"),
        ("tickets", "tickets"),
        ("tickets", "ticket_events"),
        ("moderation", "mod_cases"),
        ("faq", "faq_entries"),
    ] {
        assert!(found.contains(&(module.into(), part.into())), "{module}/{part} is in the export: {found:?}");
    }
    for entry in first["manifest"]["contents"].as_array().unwrap() {
        assert!(!entry["about"].as_str().unwrap_or("").is_empty(), "every part says what it is: {entry}");
    }
    let answers = records(&first, "support", "support_answers");
    assert!(answers.iter().all(|a| a["user_id"] == json!(bob as i64)), "only Bob's answers: {answers:?}");
    assert!(answers.iter().any(|a| a["question"] == "When are refunds issued?"), "{answers:?}");
    assert!(!first.to_string().contains("Where is my invoice?"), "Alice's question is not in Bob's export");
    assert_eq!(records(&first, "tickets", "tickets")[0]["topic"], "Refund please");
    let withheld = first["manifest"]["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "agent_accounts" || p["part"] == "guild_settings" || p["part"] == "setting_audit");
    assert!(withheld.is_none_or(|p| p["withheld"].is_string()), "a part that leaves something out says why");
    assert_eq!(records(&first, "moderation", "mod_cases")[0]["reason"], "spamming links");

    // The dashboard's cached name of bob (ApiGuild::member_names) goes with the erasure.
    let name_key = beacon_cache::CacheKey::guild(t.guild.id, "names", &bob.to_string());
    t.app().cache.set(&name_key, b"bob", std::time::Duration::from_secs(300)).await.expect("cache");

    // The erasure, after a confirmation, with a receipt.
    let asked = t.command(bob, "privacy", sub("delete", json!([])), Delivery::Http).await;
    assert!(text_of(&asked).contains("cannot be undone"), "{}", text_of(&asked));
    let receipt = click(&t, bob, "privacy:delete:").await;
    assert!(receipt.contains("Your data in this server was erased."), "{receipt}");
    assert!(receipt.contains("support — support answers: 1 record(s)"), "{receipt}");
    assert!(receipt.contains("Kept, and why:"), "{receipt}");
    assert!(receipt.contains("moderation — mod cases: a case keeps the action"), "{receipt}");
    assert_eq!(t.app().cache.get(&name_key).await.expect("cache"), None, "the cached name is gone");

    // What is left is only what the modules declare they keep.
    let after = export(&t, bob).await;
    let kept: BTreeSet<(String, String)> = [("moderation", "mod_cases"), ("moderation", "mod_case_events")]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(parts(&after), kept, "after the erasure only the moderation record is left");
    assert_eq!(records(&after, "moderation", "mod_cases")[0]["target_id"], json!(bob as i64));
    assert!(!std::fs::read_to_string(&audit).unwrap_or_default().contains(&bob.to_string()), "no audit line of Bob");
    let alice_left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM support_answers WHERE guild_id = $1 AND user_id = $2")
            .bind(guild as i64)
            .bind(alice as i64)
            .fetch_one(t.app().store.pool())
            .await
            .unwrap();
    assert_eq!(alice_left, 1, "Alice's data is untouched");

    // Only the owner purges the server, after two confirmations.
    let refused = t.command(bob, "privacy", sub("purge-guild", json!([])), Delivery::Http).await;
    assert!(text_of(&refused).contains("Only the server owner"), "{}", text_of(&refused));
    let step1 = t.command(t.owner(), "privacy", sub("purge-guild", json!([])), Delivery::Http).await;
    assert!(text_of(&step1).contains("Step 1 of 2"), "{}", text_of(&step1));
    assert!(click(&t, t.owner(), "privacy:purge1:").await.contains("Last step"));
    assert!(rows_of(&t, guild).await.len() > 3, "nothing is purged before the second confirmation");
    let done = click(&t, t.owner(), "privacy:purge2:").await;
    assert!(done.contains("This server's data was purged."), "{done}");
    assert!(done.contains("transcript(s) removed"), "{done}");
    assert_eq!(rows_of(&t, guild).await, vec![("guild_changes".to_owned(), 1)], "rows of the purged guild are left");
    assert!(!audit.exists(), "the audit log is gone");
    assert_eq!(std::fs::read_dir(&transcripts).map(|d| d.count()).unwrap_or(0), 0, "the transcripts are gone");
    t.stop().await;
}

#[tokio::test]
async fn members_export_and_erase_their_data_and_the_owner_purges_on_sqlite() {
    beacon_http::install_crypto_provider();
    export_erase_and_purge(TestApp::spawn().await).await;
}

#[tokio::test]
async fn members_export_and_erase_their_data_and_the_owner_purges_on_postgres() {
    beacon_http::install_crypto_provider();
    let Some(db) = ScratchDatabase::create().await else { return };
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_DATABASE_URL".into(), db.url.clone())],
        ..Options::default()
    })
    .await;
    export_erase_and_purge(t).await;
    db.drop_database().await;
}

const SILENT: Schema = Schema {
    name: "silent",
    migrations: &[Migration::new(
        1,
        "silent",
        "CREATE TABLE silent_notes (guild_id BIGINT NOT NULL, author_id BIGINT NOT NULL, body TEXT NOT NULL)",
    )],
    guild_tables: &["silent_notes"],
};

/// A module that keeps member data and does not say so.
struct Silent;

#[async_trait]
impl Module for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn description(&self) -> &'static str {
        "keeps notes"
    }
    fn schemas(&self) -> Vec<Schema> {
        vec![SILENT]
    }
}

#[tokio::test]
async fn a_module_whose_guild_table_says_nothing_about_members_is_refused() {
    beacon_http::install_crypto_provider();
    let fake = beacon_testkit::FakeDiscord::start(beacon_testkit::FakeOptions::default()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = test_config(&fake, &data, false, false);
    let started = beacon::run::start_with(Arc::new(config), vec![Arc::new(Silent)]).await;
    let error = started.err().expect("the app is not built").to_string();
    assert!(error.contains("silent_notes") && error.contains("personal_data"), "{error}");
}

/// `/privacy export` in the member's DM with Beacon: Discord offers it there because its
/// `contexts` include the bot's DM (the fake refuses a command whose contexts do not, as Discord
/// does), there is no server, and the export holds the member's records of every server.
#[tokio::test]
async fn a_member_exports_every_servers_data_from_a_dm() {
    let t = TestApp::spawn().await;
    let (guild, bob, alice) = (t.guild.id, t.member("bob"), t.member("alice-admin"));
    let other = guild + 1_000;
    t.app().guild(other).upsert("Another server", None).await.expect("second guild");
    let faq = beacon_faq::FaqRepo::new(t.app().store.clone());
    let entry = |q: &str| beacon_faq::EntryInput::new(q, "An answer.", &[], false).unwrap();
    faq.add(&t.app().guild(guild), &entry("Opening hours?"), bob).await.expect("faq entry here");
    faq.add(&t.app().guild(other), &entry("Parking?"), bob).await.expect("faq entry there");
    faq.add(&t.app().guild(other), &entry("Alice's question?"), alice).await.expect("alice's entry");

    // The registration says where each command works.
    let global = t.fake.commands(None);
    let contexts = |name: &str| global.iter().find(|c| c["name"] == name).map(|c| c["contexts"].clone());
    assert_eq!(contexts("privacy"), Some(json!([0, 1])));
    assert_eq!(contexts("ask"), Some(json!([0])));

    let before = t.fake.uploads().len();
    let out = t.dm_command(bob, "privacy", sub("export", json!([])), Delivery::Http).await.expect("offered in DMs");
    assert!(text_of(&out).contains("in 2 server(s), in 1 file(s)"), "{}", text_of(&out));
    let uploads = t.fake.uploads();
    let files: Vec<_> = uploads[before..].iter().filter(|u| u.filename.starts_with("beacon-data-")).collect();
    assert_eq!(files.len(), 1, "{:?}", files.iter().map(|f| &f.filename).collect::<Vec<_>>());
    let export: Value = serde_json::from_slice(&files[0].bytes).expect("JSON");
    let guilds: BTreeSet<&str> =
        export["manifest"]["guilds"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(guilds, BTreeSet::from([guild.to_string().as_str(), other.to_string().as_str()]));
    let questions: Vec<&str> =
        records(&export, "faq", "faq_entries").iter().filter_map(|r| r["question"].as_str()).collect();
    assert!(questions.contains(&"Opening hours?") && questions.contains(&"Parking?"), "{questions:?}");
    assert!(!export.to_string().contains("Alice's question?"), "only Bob's records");

    // The other subcommands need a server, and are refused with a reason, not run.
    let out = t.dm_command(bob, "privacy", sub("delete", json!([])), Delivery::Http).await.expect("offered");
    assert!(text_of(&out).contains("In a DM only `/privacy export` works"), "{}", text_of(&out));
    // A server-only command is not offered in a DM at all.
    let refused = t.dm_command(bob, "ask", json!([opt_str("question", "Hi?")]), Delivery::Http).await;
    match refused {
        Err(beacon_testkit::Error::Hidden(why)) => assert!(why.contains("not offered in DMs"), "{why}"),
        other => panic!("/ask in a DM was not refused: {other:?}"),
    }
    t.stop().await;
}
