//! A purge leaves nothing: a guild filled through the app (settings and their audit, a grant, a
//! question answered, a ticket with its timers, FAQ entries, a knowledge base with its index
//! file, a transcript) is purged, and then no table of the database's own catalogue holds a row
//! of it, and its files are gone. Every table with a guild column is declared by some module.
//! On SQLite and PostgreSQL. Also: a database made by the previous release opens with today's
//! modules and keeps its data.

use beacon_kb::{SourceDocument, StaticSource};
use beacon_testkit::Delivery;
use beacon_testkit::services::ScratchDatabase;
use serde_json::json;

use crate::harness::*;

async fn fill_and_purge(t: TestApp) {
    let (guild, bob) = (t.guild.id, t.member("bob"));
    // Every table with a guild column belongs to a module's declaration.
    assert_eq!(t.app().store.undeclared_guild_tables().await.expect("catalogue"), Vec::<String>::new());

    set(&t, "core.staff_roles", &format!("<@&{}>", t.role("staff"))).await;
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    t.command(
        t.owner(),
        "access",
        sub("grant", json!([{"name": "user", "type": 6, "value": bob.to_string()}])),
        Delivery::Http,
    )
    .await;
    // A knowledge base with its index file, as `beacon ingest` makes it.
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.expect("kb");
    let doc = SourceDocument {
        key: "refunds".into(),
        title: "Refunds".into(),
        text: "# Refunds\n\nRefunds are issued within 14 days of the request.\n".into(),
        url: None,
    };
    kb.sync(guild, &StaticSource::new("docs", vec![doc]), &mut |_| {}).await.expect("sync");
    let index_file = t.app().config.data_dir.join(format!("kb-index/guild-{guild}.kbi"));
    assert!(index_file.exists(), "the index file was written");
    // Answered or not (the running app notices the ingest within a second), the question leaves
    // an answer row and an audit line.
    t.command(bob, "ask", json!([opt_str("question", "When are refunds issued?")]), Delivery::Gateway).await;
    let audit = t.app().config.data_dir.join(format!("audit/support/guild-{guild}.jsonl"));
    assert!(audit.exists(), "the support audit log has the guild's lines");
    let opened =
        t.command(bob, "ticket", sub("open", json!([opt_str("topic", "Refund please")])), Delivery::Http).await;
    assert!(text_of(&opened).contains("is open"), "{}", text_of(&opened));
    beacon_faq::FaqRepo::new(t.app().store.clone())
        .add(&t.app().guild(guild), &beacon_faq::EntryInput::new("Hours?", "Nine to five.", &[], false).unwrap(), bob)
        .await
        .expect("faq entry");
    // A closed ticket's transcript, where the desk keeps them.
    let transcripts = t.app().config.data_dir.join(format!("transcripts/guilds/{guild}/tickets"));
    std::fs::create_dir_all(&transcripts).unwrap();
    std::fs::write(transcripts.join("000001-1.html"), "<html>transcript</html>").unwrap();

    let before: Vec<String> = rows_of(&t, guild).await.into_iter().map(|(table, _)| table).collect();
    for table in [
        "guilds",
        "guild_settings",
        "setting_audit",
        "authorized_users",
        "kb_documents",
        "kb_chunks",
        "support_answers",
        "tickets",
        "ticket_events",
        "beacon_jobs",
        "faq_entries",
    ] {
        assert!(before.iter().any(|t| t == table), "the guild has rows in {table} before the purge: {before:?}");
    }

    let report = t.app().purge_guild(guild).await.expect("purge");
    assert!(report.iter().any(|l| l.starts_with("tickets: 1 transcript(s) removed")), "{report:?}");
    assert!(report.iter().any(|l| l.starts_with("kb: search index file removed")), "{report:?}");
    assert!(report.iter().any(|l| l.starts_with("support: audit log")), "{report:?}");

    let left = rows_of(&t, guild).await;
    // One notice (the id alone) tells other processes to drop what they cached.
    assert_eq!(left, vec![("guild_changes".to_owned(), 1)], "rows of the purged guild are left");
    assert!(!index_file.exists(), "the index file is gone");
    assert!(!audit.exists(), "the audit lines are gone");
    assert_eq!(std::fs::read_dir(&transcripts).map(|d| d.count()).unwrap_or(0), 0, "the transcripts are gone");
    t.stop().await;
}

#[tokio::test]
async fn a_purge_leaves_nothing_on_sqlite() {
    beacon_http::install_crypto_provider();
    fill_and_purge(TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_purge_leaves_nothing_on_postgres() {
    beacon_http::install_crypto_provider();
    let Some(db) = ScratchDatabase::create().await else { return };
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_DATABASE_URL".into(), db.url.clone())],
        ..Options::default()
    })
    .await;
    fill_and_purge(t).await;
    db.drop_database().await;
}

/// The previous release's SQLite database, opened by today's binary with every module.
#[tokio::test]
async fn a_database_of_the_previous_release_opens_with_every_module() {
    beacon_http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("beacon.db").display());
    let dump = include_str!("../../../beacon-store/tests/fixtures/release-0.1.0-sqlite.sql");
    opens_with_every_module(url, dump).await;
}

/// The same with the previous release's PostgreSQL database.
#[tokio::test]
async fn a_postgres_database_of_the_previous_release_opens_with_every_module() {
    beacon_http::install_crypto_provider();
    let Some(db) = ScratchDatabase::create().await else { return };
    let dump = include_str!("../../../beacon-store/tests/fixtures/release-0.1.0-postgres.sql");
    opens_with_every_module(db.url.clone(), dump).await;
    db.drop_database().await;
}

async fn opens_with_every_module(url: String, dump: &'static str) {
    {
        let store = beacon_store::Store::connect(&url).await.unwrap();
        sqlx::raw_sql(dump).execute(store.pool()).await.unwrap();
        store.close().await;
    }
    let t = TestApp::spawn_with(Options { env: vec![("BEACON_DATABASE_URL".into(), url)], ..Options::default() }).await;
    let store = &t.app().store;
    assert_eq!(store.undeclared_guild_tables().await.unwrap(), Vec::<String>::new());
    let adopted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM beacon_schema_migrations WHERE checksum = 'adopted'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(adopted, 0, "every version of the old release is checked by today's schemas");
    let kb = beacon::backends::open_knowledge_base(&t.app().config, store).await.unwrap();
    let hits = kb.search(42, "How long do refunds take?", 3).await.unwrap();
    assert!(hits.first().is_some_and(|h| h.text.contains("14 days")), "{hits:?}");
    assert!(store.guild(42).is_authorized(7).await.unwrap());
    t.stop().await;
}
