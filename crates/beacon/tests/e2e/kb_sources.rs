//! A guild reaches only the content it was given: a `/kb` Notion source names its pages or
//! databases by id and reads them with the guild's own integration token, entered in a modal,
//! sealed at rest and never shown again. The deployment's token is not used for a guild the
//! operator has not shared it with.

use beacon_testkit::Delivery;
use beacon_testkit::notion::{FakeNotion, NotionBlock};
use serde_json::json;

use crate::harness::*;

async fn add_notion(t: &TestApp, name: &str, pages: &str, token: Option<&str>) -> String {
    let owner = t.owner();
    let out = t
        .command(
            owner,
            "kb",
            sub("add-notion", json!([opt_str("name", name), opt_str("pages", pages)])),
            Delivery::Http,
        )
        .await;
    let Some(token) = token else { return text_of(&out) };
    assert_eq!(out.kind, 9, "a modal asks for the token: {out:?}");
    assert_eq!(out.data["custom_id"], "kb:credential");
    let h = t
        .fake
        .submit_modal(
            t.guild.id,
            t.channel("general"),
            owner,
            "kb:credential",
            &[("credential", token)],
            Delivery::Gateway,
        )
        .await
        .unwrap();
    text_of(&t.fake.wait_response(&h, WAIT).await.unwrap())
}

#[tokio::test]
async fn a_guild_reads_only_what_it_was_given_with_its_own_token() {
    beacon_http::install_crypto_provider();
    let notion = FakeNotion::start().await.unwrap();
    let page = notion
        .add_page("Refund policy", vec![NotionBlock::paragraph("Refunds are issued within 14 days of the request.")]);
    notion.add_page("Another community's secrets", vec![NotionBlock::paragraph("The launch date is March 3.")]);
    // The deployment has a Notion integration, shared with no guild.
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_NOTION_API_URL".into(), notion.base_url()), ("BEACON_NOTION_TOKEN".into(), notion.token())],
        ..Options::default()
    })
    .await;
    let owner = t.owner();

    // "Every page the integration can see" is not a source.
    let out = t.command(owner, "kb", sub("add-notion", json!([opt_str("name", "all")])), Delivery::Http).await;
    assert!(text_of(&out).contains("Name the Notion pages or databases"), "{}", text_of(&out));

    // With a token that is not this server's, the sync fails: the deployment's token is not used.
    let saved = add_notion(&t, "wiki", &page, Some("secret_not_the_right_one")).await;
    assert!(saved.contains("Source **wiki** saved"), "{saved}");
    let out = t.command(owner, "kb", sub("sync", json!([opt_str("name", "wiki")])), Delivery::Http).await;
    assert!(!text_of(&out).contains("1 new or changed"), "{}", text_of(&out));

    // With the server's own token it reads the page it named, and nothing else.
    let token = notion.token();
    let saved = add_notion(&t, "wiki", &page, Some(&token)).await;
    assert!(saved.contains("Source **wiki** saved"), "{saved}");
    let out = t.command(owner, "kb", sub("sync", json!([opt_str("name", "wiki")])), Delivery::Http).await;
    assert!(text_of(&out).contains("1 documents: 1 new or changed"), "{}", text_of(&out));
    let asked = t
        .command(t.member("bob"), "ask", json!([opt_str("question", "When are refunds issued?")]), Delivery::Http)
        .await;
    assert!(text_of(&asked).contains("14 days"), "{}", text_of(&asked));
    let leaked = t
        .command(t.member("bob"), "ask", json!([opt_str("question", "When is the launch date?")]), Delivery::Http)
        .await;
    assert!(!text_of(&leaked).contains("March 3"), "{}", text_of(&leaked));

    // The token is sealed at rest and never reaches Discord.
    let stored: String = sqlx::query_scalar("SELECT config FROM kb_sources WHERE guild_id = $1 AND name = 'wiki'")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&token) && stored.contains("bk1."), "{stored}");
    for request in t.fake.requests() {
        assert!(!request.body.to_string().contains(&token), "the token went to Discord: {}", request.path);
    }
    assert!(t.app().config.data_dir.join("secret.key").exists(), "the embedded key was generated");
    t.stop().await;
}

/// The same for Google Sheets: the server's own service-account key, pasted as the JSON file
/// into the modal, is sealed at rest and reads the sheet; without it there is nothing to read
/// with (the deployment's account is not shared with this server).
#[tokio::test]
async fn a_sheet_is_read_with_the_servers_own_service_account() {
    beacon_http::install_crypto_provider();
    let sheets = beacon_testkit::sheets::FakeSheets::start().await.unwrap();
    sheets.set_values(
        "sheet-1",
        vec![
            vec!["Question".into(), "Answer".into()],
            vec!["When is support open?".into(), "Support is open on weekdays from nine to five.".into()],
        ],
    );
    let t = TestApp::spawn_with(Options {
        env: vec![
            ("BEACON_SHEETS_API_URL".into(), sheets.base_url()),
            ("BEACON_GOOGLE_SA_BASE64".into(), sheets.service_account_base64()),
        ],
        ..Options::default()
    })
    .await;
    let owner = t.owner();
    let add = sub(
        "add-sheet",
        json!([
            opt_str("name", "hours"),
            opt_str("spreadsheet", "sheet-1"),
            opt_str("range", "A1:B10"),
            opt_str("title_column", "Question")
        ]),
    );
    let out = t.command(owner, "kb", add, Delivery::Http).await;
    assert_eq!(out.kind, 9, "a modal asks for the service account: {out:?}");
    let key_json = sheets.service_account_json();
    let h = t
        .fake
        .submit_modal(
            t.guild.id,
            t.channel("general"),
            owner,
            "kb:credential",
            &[("credential", &key_json)],
            Delivery::Http,
        )
        .await
        .unwrap();
    let saved = text_of(&t.fake.wait_response(&h, WAIT).await.unwrap());
    assert!(saved.contains("Source **hours** saved"), "{saved}");
    let out = t.command(owner, "kb", sub("sync", json!([opt_str("name", "hours")])), Delivery::Http).await;
    assert!(text_of(&out).contains("1 documents: 1 new or changed"), "{}", text_of(&out));
    let stored: String = sqlx::query_scalar("SELECT config FROM kb_sources WHERE guild_id = $1 AND name = 'hours'")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert!(!stored.contains("private_key") && stored.contains("bk1."), "{stored}");
    t.stop().await;
}
