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

fn ask_opts(question: &str) -> serde_json::Value {
    json!([opt_str("question", question)])
}

fn upload(file: u64, name: Option<&str>) -> serde_json::Value {
    let mut options = vec![json!({"name": "file", "type": 11, "value": file.to_string()})];
    if let Some(name) = name {
        options.push(opt_str("name", name));
    }
    sub("upload", serde_json::Value::Array(options))
}

/// A guild admin adds a file with `/kb upload`: Beacon reads it from Discord's CDN, refuses
/// what it cannot use with a clear ephemeral message, answers from it, and forgets it when the
/// source is removed.
#[tokio::test]
async fn an_uploaded_file_answers_questions_until_it_is_removed() {
    let t = TestApp::spawn_with(Options {
        env: vec![
            ("BEACON_KB_UPLOAD_MAX_FILE_MB".into(), "1".into()),
            ("BEACON_KB_UPLOAD_MAX_GUILD_MB".into(), "1".into()),
        ],
        ..Options::default()
    })
    .await;
    let admin = t.member("alice-admin");
    let bob = t.member("bob");
    let page = b"<html><head><title>Warranty</title><style>p{}</style></head><body><h1>Warranty</h1>\
                 <p>Every device has a warranty of three years from the purchase date.</p></body></html>";
    let file = t.fake.attach_file("warranty.html", Some("text/html"), page.to_vec());
    let out = t.command(admin, "kb", upload(file, None), Delivery::Http).await;
    assert!(text_of(&out).contains("**warranty.html** is the source **warranty**"), "{}", text_of(&out));
    assert!(is_ephemeral(&out));
    let asked = t.command(bob, "ask", ask_opts("How long is the warranty on a device?"), Delivery::Http).await;
    assert!(text_of(&asked).contains("three years"), "{}", text_of(&asked));
    let out = t.command(admin, "kb", sub("sources", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("**warranty** (upload) — synced"), "{}", text_of(&out));

    // What cannot be used is refused, each with its reason, only to the admin.
    let refusals = [
        ("photo.png", vec![0x89, b'P', b'N', b'G', 0, 0], "not a file Beacon reads"),
        ("notes.md", vec![0x89, b'P', b'N', b'G', 0, 0], "does not hold markdown"),
        ("empty.txt", b"   \n ".to_vec(), "no text to learn from"),
        ("big.txt", vec![b'a'; 1024 * 1024 + 1], "files may be at most 1.0 MB"),
        ("filler.txt", vec![b'a'; 1024 * 1024 - 10], "remove a file"),
    ];
    for (name, bytes, reason) in refusals {
        let file = t.fake.attach_file(name, None, bytes);
        let out = t.command(admin, "kb", upload(file, None), Delivery::Http).await;
        assert!(text_of(&out).contains(reason), "{name}: {}", text_of(&out));
        assert!(is_ephemeral(&out), "{name}");
    }
    // Members do not manage sources.
    let file = t.fake.attach_file("mine.md", None, b"# Mine\n\nmember text".to_vec());
    let out = t.command(bob, "kb", upload(file, Some("mine")), Delivery::Http).await;
    assert!(text_of(&out).contains("Only the server owner, admins"), "{}", text_of(&out));

    let out = t.command(admin, "kb", sub("remove", json!([opt_str("name", "warranty")])), Delivery::Http).await;
    assert!(text_of(&out).contains("removed"), "{}", text_of(&out));
    let asked = t.command(bob, "ask", ask_opts("How long is the warranty on a device?"), Delivery::Http).await;
    assert!(!text_of(&asked).contains("three years"), "{}", text_of(&asked));
    t.stop().await;
}

/// A PDF upload: each page's text is indexed under its page, so the answer cites the page it
/// came from; an encrypted, a scanned (image-only) and a damaged PDF are refused, each with its
/// reason, only to the admin. The fixtures are made by `tests/fixtures/pdf/make_fixtures.py` of
/// beacon-kb.
#[tokio::test]
async fn an_uploaded_pdf_answers_with_its_page() {
    let t = TestApp::spawn().await;
    let admin = t.member("alice-admin");
    let bob = t.member("bob");
    let fixture = |name: &str| {
        std::fs::read(format!("{}/../beacon-kb/tests/fixtures/pdf/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let manual = fixture("manual.pdf");
    let file = t.fake.attach_file("Lamp manual.pdf", Some("application/pdf"), manual.clone());
    let out = t.command(admin, "kb", upload(file, Some("lamp")), Delivery::Http).await;
    assert!(text_of(&out).contains("**Lamp manual.pdf** is the source **lamp**"), "{}", text_of(&out));
    assert!(is_ephemeral(&out));
    let asked =
        t.command(bob, "ask", ask_opts("How many years of warranty does the Lumen lamp have?"), Delivery::Http).await;
    let answer = text_of(&asked);
    assert!(answer.contains("five years"), "{answer}");
    assert!(answer.contains("Page 4"), "the answer cites the page: {answer}");
    assert!(!answer.contains("Page 1") && !answer.contains("Page 2"), "only the page it quotes: {answer}");

    let refusals = [
        ("locked.pdf", fixture("encrypted.pdf"), "protected by a password"),
        ("scan.pdf", fixture("scanned.pdf"), "pages are images"),
        ("cut.pdf", manual[..manual.len() / 2].to_vec(), "cannot be read as a PDF"),
        ("fake.pdf", b"# a markdown file".to_vec(), "does not hold a PDF"),
    ];
    for (name, bytes, reason) in refusals {
        let file = t.fake.attach_file(name, Some("application/pdf"), bytes);
        let out = t.command(admin, "kb", upload(file, None), Delivery::Http).await;
        assert!(text_of(&out).contains(reason), "{name}: {}", text_of(&out));
        assert!(is_ephemeral(&out), "{name}");
    }
    let out = t.command(admin, "kb", sub("sources", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("**lamp** (upload) — synced"), "{}", text_of(&out));
    assert!(!text_of(&out).contains("locked"), "a refused file adds no source: {}", text_of(&out));
    t.stop().await;
}

/// A local site for the website source: a start page linking a page, a page robots.txt
/// disallows and another site.
async fn serve_site() -> String {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let html = |body: &str| ([(axum::http::header::CONTENT_TYPE, "text/html")], body.to_owned()).into_response();
        match uri.path() {
            "/robots.txt" => "User-agent: *\nDisallow: /internal/\n".into_response(),
            "/" => html(
                "<html><head><title>Shop help</title></head><body><a href=\"/shipping\">Shipping</a> \
                 <a href=\"/internal/notes\">Notes</a> <a href=\"https://elsewhere.invalid/\">Other</a>\
                 <h1>Shop help</h1><p>Find answers about orders.</p></body></html>",
            ),
            "/shipping" => html(
                "<html><head><title>Shipping</title></head><body><h1>Shipping times</h1>\
                 <p>Parcels arrive within five working days.</p></body></html>",
            ),
            "/internal/notes" => html("<p>The staff discount code is ORANGE42.</p>"),
            _ => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A guild admin adds a website: its pages on the same site, within robots.txt, answer
/// questions; removing the source removes them.
#[tokio::test]
async fn a_website_answers_questions_until_it_is_removed() {
    beacon_http::install_crypto_provider();
    let base = serve_site().await;
    // Tests crawl a local server: the operator allows private addresses here (default: denied).
    let t = TestApp::spawn_with(Options {
        env: vec![
            ("BEACON_KB_CRAWL_ALLOW_PRIVATE".into(), "true".into()),
            ("BEACON_KB_CRAWL_DELAY".into(), "0s".into()),
        ],
        ..Options::default()
    })
    .await;
    let admin = t.member("alice-admin");
    let bob = t.member("bob");
    let add = |url: &str| sub("add-website", json!([opt_str("name", "shop"), opt_str("url", url)]));
    let out = t.command(admin, "kb", add("ftp://example.com/"), Delivery::Http).await;
    assert!(text_of(&out).contains("only http:// and https://"), "{}", text_of(&out));
    let out = t.command(admin, "kb", add(&format!("{base}/")), Delivery::Http).await;
    assert!(text_of(&out).contains("Source **shop** saved"), "{}", text_of(&out));
    let out = t.command(admin, "kb", sub("sync", json!([opt_str("name", "shop")])), Delivery::Http).await;
    assert!(text_of(&out).contains("**shop**: 2 documents: 2 new or changed"), "{}", text_of(&out));

    let asked = t.command(bob, "ask", ask_opts("How long does shipping take?"), Delivery::Http).await;
    assert!(text_of(&asked).contains("five working days"), "{}", text_of(&asked));
    let asked = t.command(bob, "ask", ask_opts("What is the staff discount code?"), Delivery::Http).await;
    assert!(!text_of(&asked).contains("ORANGE42"), "robots.txt was not obeyed: {}", text_of(&asked));

    let out = t.command(admin, "kb", sub("remove", json!([opt_str("name", "shop")])), Delivery::Http).await;
    assert!(text_of(&out).contains("removed"), "{}", text_of(&out));
    let asked = t.command(bob, "ask", ask_opts("How long does shipping take?"), Delivery::Http).await;
    assert!(!text_of(&asked).contains("five working days"), "{}", text_of(&asked));
    t.stop().await;
}

/// Key rotation as the README describes it: the new key in `BEACON_SECRET_KEY`, the old one in
/// `BEACON_SECRET_KEY_PREVIOUS`. A credential sealed under the old key still reads the source;
/// with the old key dropped too early, the sync fails and says which setting is missing, and the
/// credential is not lost (putting the old key back reads it again).
#[tokio::test]
async fn a_rotated_secret_key_still_opens_what_the_old_key_sealed() {
    beacon_http::install_crypto_provider();
    let notion = FakeNotion::start().await.unwrap();
    let page = notion.add_page("Refund policy", vec![NotionBlock::paragraph("Refunds are issued within 14 days.")]);
    let old_key = "11".repeat(32);
    let new_key = "22".repeat(32);
    let notion_env = vec![("BEACON_NOTION_API_URL".to_owned(), notion.base_url())];
    let mut env = notion_env.clone();
    env.push(("BEACON_SECRET_KEY".into(), old_key.clone()));
    let mut t = TestApp::spawn_with(Options { env, ..Options::default() }).await;
    let saved = add_notion(&t, "wiki", &page, Some(&notion.token())).await;
    assert!(saved.contains("Source **wiki** saved"), "{saved}");

    let sync = async |t: &TestApp| {
        let out = t.command(t.owner(), "kb", sub("sync", json!([opt_str("name", "wiki")])), Delivery::Http).await;
        text_of(&out)
    };
    // Rotated too far: only the new key. The sealed token does not open, and the reply says why.
    let mut env = notion_env.clone();
    env.push(("BEACON_SECRET_KEY".into(), new_key.clone()));
    restart(&mut t, &env).await;
    let out = sync(&t).await;
    assert!(out.contains("failed") && out.contains("BEACON_SECRET_KEY_PREVIOUS"), "{out}");

    // The documented rotation: new key current, old key previous.
    env.push(("BEACON_SECRET_KEY_PREVIOUS".into(), old_key.clone()));
    restart(&mut t, &env).await;
    let out = sync(&t).await;
    assert!(out.contains("1 documents: 1 new or changed"), "{out}");
    t.stop().await;
}

/// Stops the app and starts it again on the same data folder with `env` (HTTP interactions only).
async fn restart(t: &mut TestApp, env: &[(String, String)]) {
    if let Some(running) = t.running.take() {
        running.shutdown().await;
    }
    let config = test_config_with(&t.fake, &t._data, true, false, env);
    let running = beacon::run::start_with(std::sync::Arc::new(config), Vec::new()).await.expect("beacon restarts");
    t.fake.set_interactions_endpoint(&format!("http://{}/interactions", running.addr));
    t.running = Some(running);
}
