//! The store contract: every check is written once as an async function over a migrated `Store`
//! and instantiated for SQLite (a temp file) and PostgreSQL (a fresh database per test).
//!
//! PostgreSQL runs when `BEACON_TEST_POSTGRES_URL` is set; with `BEACON_TEST_REQUIRE_SERVICES=1`
//! a missing URL fails those tests instead of skipping them.

mod common;

use std::collections::HashSet;

use beacon_store::{Backend, Migration, Schema, Store, StoreError, now_ms};
use serde_json::json;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = crate::common::sqlite().await;
                    assert_eq!(fx.store.backend(), beacon_store::Backend::Sqlite);
                    super::$name(fx.store.clone()).await;
                    fx.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fx) = crate::common::postgres().await {
                        assert_eq!(fx.store.backend(), beacon_store::Backend::Postgres);
                        super::$name(fx.store.clone()).await;
                        fx.finish().await;
                    }
                }
            )*
        }
    };
}

contract!(
    migrate_twice_is_noop,
    ping_answers,
    guild_upsert_created_and_rejoined,
    guild_registrations_in_one_burst,
    snowflakes_roundtrip_losslessly,
    grant_revoke_list,
    settings_set_reset_and_audit,
    settings_hold_arbitrary_json,
    revert_restores_old_value,
    revert_across_guilds_is_refused,
    module_enable_per_guild,
    claim_once_true_then_false,
    claim_once_concurrent_single_winner,
    schema_migrations_apply_once_in_order,
    schema_checksum_change_is_refused,
    failed_migration_is_not_recorded,
    declared_tables_match_the_catalogue,
    purge_removes_only_left_guilds_rows,
);

const OWNER: u64 = 80_351_110_224_678_912;
const ADMIN: u64 = 80_351_110_224_678_913;

async fn migrate_twice_is_noop(store: Store) {
    // The fixture already migrated once.
    store.guild(1).upsert("one", None).await.expect("upsert");
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert_eq!(store.guild_count().await.expect("count"), 1);
    let tables: HashSet<&str> = store.declared_guild_tables().into_iter().collect();
    for core in [
        "authorized_users",
        "guild_settings",
        "setting_audit",
        "guild_modules",
        "guild_changes",
        "command_usage",
        "handler_errors",
        "guilds",
    ] {
        assert!(tables.contains(core), "{core} must be purged with its guild");
    }
    assert_eq!(tables.len(), 8);
}

async fn ping_answers(store: Store) {
    store.ping().await.expect("ping");
}

async fn guild_upsert_created_and_rejoined(store: Store) {
    let g = store.guild(81_384_788_765_712_384);
    assert_eq!(g.id(), 81_384_788_765_712_384);
    assert_eq!(g.get().await.expect("get"), None);

    let first = g.upsert("Beacon HQ", Some(OWNER)).await.expect("upsert");
    assert!(first.created);
    assert!(!first.rejoined);
    assert_eq!(first.record.id, g.id());
    assert_eq!(first.record.name, "Beacon HQ");
    assert_eq!(first.record.owner_id, Some(OWNER));
    assert_eq!(first.record.left_at, None);

    let again = g.upsert("Beacon HQ renamed", None).await.expect("upsert");
    assert!(!again.created);
    assert!(!again.rejoined);
    assert_eq!(again.record.name, "Beacon HQ renamed");
    assert_eq!(again.record.owner_id, None);
    assert_eq!(again.record.joined_at, first.record.joined_at);
    assert_eq!(store.guild_count().await.expect("count"), 1);
    assert_eq!(store.active_guild_ids().await.expect("ids"), vec![g.id()]);
    let named = store.active_guild_names().await.expect("names");
    assert_eq!(named, vec![(g.id(), "Beacon HQ renamed".to_owned())]);

    g.mark_left().await.expect("mark left");
    let left = g.get().await.expect("get").expect("record kept after leaving");
    assert!(left.left_at.is_some());
    assert_eq!(store.guild_count().await.expect("count"), 0);
    assert!(store.active_guild_ids().await.expect("ids").is_empty());
    assert!(store.active_guild_names().await.expect("names").is_empty());

    let back = g.upsert("Beacon HQ", Some(OWNER)).await.expect("upsert");
    assert!(!back.created);
    assert!(back.rejoined);
    assert_eq!(back.record.left_at, None);
    assert_eq!(store.guild_count().await.expect("count"), 1);

    let unknown = store.guild(42).mark_left().await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
}

/// A GUILD_CREATE burst: many registrations at once (more than one batch, some guilds twice,
/// one that had left, one already current) each get the outcome they would get alone.
async fn guild_registrations_in_one_burst(store: Store) {
    let (current, left) = (5_000_001u64, 5_000_002u64);
    store.guild(current).register("current", Some(OWNER)).await.expect("register");
    store.guild(left).register("left", Some(OWNER)).await.expect("register");
    store.guild(left).mark_left().await.expect("mark left");
    let unchanged_generation = store.guild(current).generation();
    let left_generation = store.guild(left).generation();
    // 600 new guilds, the first 50 of them registered twice at the same time.
    let ids: Vec<u64> = (0..600u64).map(|i| 6_000_000 + i).chain((0..50).map(|i| 6_000_000 + i)).collect();
    let mut tasks = Vec::new();
    for id in ids.iter().copied().chain([current, left]) {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (name, owner) =
                if id == current { ("current".to_owned(), OWNER) } else { (format!("guild {id}"), OWNER + id) };
            (id, store.guild(id).register(&name, Some(owner)).await)
        }));
    }
    let mut created = std::collections::HashMap::<u64, u32>::new();
    for task in tasks {
        let (id, outcome) = task.await.expect("join");
        let upsert = outcome.expect("registered");
        assert_eq!(upsert.record.id, id);
        assert_eq!(upsert.record.left_at, None);
        assert_eq!(upsert.owner_granted, upsert.created, "the owner is granted exactly when the guild is new");
        if upsert.created {
            *created.entry(id).or_default() += 1;
        }
        if id == current {
            assert!(!upsert.created && !upsert.rejoined);
        }
        if id == left {
            assert!(!upsert.created && upsert.rejoined);
            assert_eq!(upsert.record.owner_id, Some(OWNER + left));
        }
    }
    assert_eq!(created.len(), 600, "every new guild created once");
    assert!(created.values().all(|n| *n == 1), "a guild registered twice is created once");
    assert_eq!(store.guild_count().await.expect("count"), 602);
    let owners = count(&store, "SELECT COUNT(*) FROM authorized_users").await;
    assert_eq!(owners, 602, "one owner per guild, none twice");
    let granted = store.guild(6_000_007).is_authorized(OWNER + 6_000_007).await.expect("authorized");
    assert!(granted);
    let record = store.guild(6_000_007).get().await.expect("get").expect("record");
    assert_eq!(record.name, "guild 6000007");
    assert_eq!(store.guild(current).generation(), unchanged_generation, "nothing changed: caches stay");
    assert_ne!(store.guild(left).generation(), left_generation, "a rejoin moves the generation");
    let notices = count(&store, "SELECT COUNT(DISTINCT guild_id) FROM guild_changes WHERE guild_id >= 6000000").await;
    assert_eq!(notices, 600, "every new guild noticed by the other processes");
}

async fn snowflakes_roundtrip_losslessly(store: Store) {
    // Values above i64::MAX are stored as negative BIGINTs and must come back unchanged.
    let big_guild = u64::MAX - 7;
    let big_user = (1u64 << 63) + 12_345;
    let g = store.guild(big_guild);
    let up = g.upsert("big", Some(big_user)).await.expect("upsert");
    assert_eq!(up.record.id, big_guild);
    assert_eq!(up.record.owner_id, Some(big_user));
    assert!(g.grant(big_user, Some(big_user)).await.expect("grant"));
    assert!(g.is_authorized(big_user).await.expect("authorized"));
    let users = g.authorized_users().await.expect("list");
    assert_eq!(users[0].user_id, big_user);
    assert_eq!(users[0].granted_by, Some(big_user));
    assert_eq!(store.active_guild_ids().await.expect("ids"), vec![big_guild]);
    assert!(store.claim_once("interaction", u64::MAX).await.expect("claim"));
    assert!(!store.claim_once("interaction", u64::MAX).await.expect("claim"));
}

async fn grant_revoke_list(store: Store) {
    let g = store.guild(10);
    let other = store.guild(11);
    g.upsert("ten", Some(OWNER)).await.expect("upsert");

    assert!(g.grant(OWNER, None).await.expect("grant"));
    assert!(g.grant(ADMIN, Some(OWNER)).await.expect("grant"));
    assert!(!g.grant(ADMIN, Some(OWNER)).await.expect("grant again"));
    assert!(g.is_authorized(ADMIN).await.expect("check"));
    assert!(!other.is_authorized(ADMIN).await.expect("other guild"));
    assert!(other.authorized_users().await.expect("list").is_empty());

    let users = g.authorized_users().await.expect("list");
    let by_user: Vec<(u64, Option<u64>)> = users.iter().map(|u| (u.user_id, u.granted_by)).collect();
    assert_eq!(by_user.len(), 2);
    assert!(by_user.contains(&(OWNER, None)));
    assert!(by_user.contains(&(ADMIN, Some(OWNER))));
    assert!(users.iter().all(|u| u.granted_at > 0));

    assert!(g.revoke(ADMIN).await.expect("revoke"));
    assert!(!g.revoke(ADMIN).await.expect("revoke again"));
    assert!(!g.is_authorized(ADMIN).await.expect("check"));
    assert!(g.is_authorized(OWNER).await.expect("check"));
    assert!(!other.revoke(OWNER).await.expect("revoke in other guild"));
    assert!(g.is_authorized(OWNER).await.expect("unaffected by other guild"));
}

async fn settings_set_reset_and_audit(store: Store) {
    let g = store.guild(20);
    assert_eq!(g.setting("tickets.channel").await.expect("get"), None);

    let c1 = g.set_setting("tickets.channel", Some(&json!("123")), OWNER).await.expect("set");
    assert_eq!(c1.key, "tickets.channel");
    assert_eq!(c1.old, None);
    assert_eq!(c1.new, Some(json!("123")));
    let c2 = g.set_setting("tickets.channel", Some(&json!("456")), ADMIN).await.expect("set");
    assert_eq!(c2.old, Some(json!("123")));
    assert!(c2.audit_id > c1.audit_id);
    g.set_setting("ask.enabled", Some(&json!(true)), OWNER).await.expect("set");
    assert_eq!(
        g.settings().await.expect("all"),
        vec![("ask.enabled".to_owned(), json!(true)), ("tickets.channel".to_owned(), json!("456")),]
    );

    let reset = g.set_setting("tickets.channel", None, OWNER).await.expect("reset");
    assert_eq!(reset.old, Some(json!("456")));
    assert_eq!(reset.new, None);
    assert_eq!(g.setting("tickets.channel").await.expect("get"), None);

    let audit = g.setting_audit(None, 100).await.expect("audit");
    assert_eq!(audit.len(), 4);
    assert!(audit.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(audit[0].id, reset.audit_id);
    assert_eq!(audit[0].old, Some(json!("456")));
    assert_eq!(audit[0].new, None);
    assert_eq!(audit[0].actor_id, OWNER);
    assert_eq!(audit[0].reverted_audit_id, None);

    let channel_audit = g.setting_audit(Some("tickets.channel"), 100).await.expect("audit");
    let ids: Vec<i64> = channel_audit.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![reset.audit_id, c2.audit_id, c1.audit_id]);
    assert_eq!(channel_audit[1].actor_id, ADMIN);
    assert_eq!(g.setting_audit(None, 2).await.expect("limited").len(), 2);
    assert!(store.guild(21).setting_audit(None, 100).await.expect("other").is_empty());

    let bad = g.set_setting("", Some(&json!(1)), OWNER).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}

async fn settings_hold_arbitrary_json(store: Store) {
    let g = store.guild(22);
    let values = [
        json!({"roles": ["1", "2"], "nested": {"quote": "it's \"fine\"", "n": null}}),
        json!(i64::MAX),
        json!(-1.5),
        json!("emoji 🚀 and ünïcode"),
        json!([]),
        json!(null),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        g.set_setting(&key, Some(v), OWNER).await.expect("set");
        assert_eq!(g.setting(&key).await.expect("get").as_ref(), Some(v));
    }
}

async fn revert_restores_old_value(store: Store) {
    let g = store.guild(30);
    let first = g.set_setting("faq.limit", Some(&json!(5)), OWNER).await.expect("set");
    let second = g.set_setting("faq.limit", Some(&json!(9)), ADMIN).await.expect("set");

    let revert = g.revert_setting(second.audit_id, OWNER).await.expect("revert");
    assert_eq!(revert.key, "faq.limit");
    assert_eq!(revert.old, Some(json!(9)));
    assert_eq!(revert.new, Some(json!(5)));
    assert_eq!(g.setting("faq.limit").await.expect("get"), Some(json!(5)));
    let newest = &g.setting_audit(Some("faq.limit"), 1).await.expect("audit")[0];
    assert_eq!(newest.id, revert.audit_id);
    assert_eq!(newest.reverted_audit_id, Some(second.audit_id));
    assert_eq!(newest.actor_id, OWNER);

    // Reverting the first change goes back to "no override".
    let to_default = g.revert_setting(first.audit_id, OWNER).await.expect("revert");
    assert_eq!(to_default.new, None);
    assert_eq!(g.setting("faq.limit").await.expect("get"), None);

    let missing = g.revert_setting(i64::MAX, OWNER).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

async fn revert_across_guilds_is_refused(store: Store) {
    let a = store.guild(40);
    let b = store.guild(41);
    a.set_setting("mod.log", Some(&json!("a1")), OWNER).await.expect("set");
    let change = a.set_setting("mod.log", Some(&json!("a2")), OWNER).await.expect("set");
    b.set_setting("mod.log", Some(&json!("b1")), ADMIN).await.expect("set");

    let refused = b.revert_setting(change.audit_id, ADMIN).await;
    assert!(matches!(refused, Err(StoreError::NotFound(_))), "{refused:?}");
    assert!(refused.is_err_and(|e| e.is_not_found()));
    assert_eq!(a.setting("mod.log").await.expect("a"), Some(json!("a2")));
    assert_eq!(b.setting("mod.log").await.expect("b"), Some(json!("b1")));
    assert_eq!(b.setting_audit(None, 10).await.expect("audit").len(), 1);
}

async fn module_enable_per_guild(store: Store) {
    let g = store.guild(50);
    let other = store.guild(51);
    assert_eq!(g.module_enabled("tickets").await.expect("get"), None);
    g.set_module_enabled("tickets", false, OWNER).await.expect("set");
    assert_eq!(g.module_enabled("tickets").await.expect("get"), Some(false));
    g.set_module_enabled("tickets", true, OWNER).await.expect("set");
    g.set_module_enabled("faq", false, ADMIN).await.expect("set");
    assert_eq!(g.module_enabled("tickets").await.expect("get"), Some(true));
    assert_eq!(g.module_states().await.expect("states"), vec![("faq".to_owned(), false), ("tickets".to_owned(), true)]);
    assert_eq!(other.module_enabled("tickets").await.expect("other"), None);
    assert!(other.module_states().await.expect("other").is_empty());
}

async fn claim_once_true_then_false(store: Store) {
    assert!(store.claim_once("interaction", 1).await.expect("claim"));
    assert!(!store.claim_once("interaction", 1).await.expect("claim"));
    assert!(store.claim_once("event", 1).await.expect("other kind"));
    assert!(store.claim_once("interaction", 2).await.expect("other id"));

    // Nothing is older than a cutoff in the past; everything is older than one in the future.
    assert_eq!(store.prune_claims(0).await.expect("prune"), 0);
    assert!(!store.claim_once("interaction", 1).await.expect("still claimed"));
    assert_eq!(store.prune_claims(now_ms() + 60_000).await.expect("prune"), 3);
    assert!(store.claim_once("interaction", 1).await.expect("claim after prune"));
}

async fn claim_once_concurrent_single_winner(store: Store) {
    for id in 0..5u64 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_once("message", 1_000 + id).await })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            if t.await.expect("join").expect("claim") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "exactly one task may claim id {id}");
    }
}

const NOTES_V1: Migration = Migration::new(
    1,
    "notes table",
    "CREATE TABLE notes (guild_id BIGINT NOT NULL, id BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (guild_id, id));
     INSERT INTO notes (guild_id, id, body) VALUES (0, 0, 'seed');",
);

const NOTES_V2: Migration = Migration::new(2, "note authors", "ALTER TABLE notes ADD COLUMN author_id BIGINT;");

/// A module's schema as a test declares it: versions given out of order on purpose.
const NOTES: Schema = Schema { name: "notes", migrations: &[NOTES_V2, NOTES_V1], guild_tables: &["notes"] };

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.expect("count query")
}

async fn schema_migrations_apply_once_in_order(store: Store) {
    // v2 only works after v1.
    store.migrate_schema(&NOTES).await.expect("apply");
    store.migrate_schema(&NOTES).await.expect("apply again is a no-op");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM notes").await, 1, "v1 ran once");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM beacon_schema_migrations WHERE schema_name = 'notes'").await, 2);
    const V3: Migration = Migration::new(
        3,
        "index and a log with an id",
        "CREATE INDEX notes_author ON notes (guild_id, author_id);
        CREATE TABLE notes_log (id {{auto_id}}, guild_id BIGINT NOT NULL, line TEXT NOT NULL);",
    );
    const WITH_V3: Schema =
        Schema { migrations: &[NOTES_V1, NOTES_V2, V3], guild_tables: &["notes_log", "notes"], ..NOTES };
    store.migrate_schema(&WITH_V3).await.expect_err("one process declares one schema one way");
    let fresh = Store::connect_with(&store_url(&store).await, Default::default()).await;
    // The same store object remembers the first declaration; a new version is applied by the
    // next process, which declares the schema with it.
    if let Ok(next) = fresh {
        next.migrate().await.expect("migrate");
        next.migrate_schema(&WITH_V3).await.expect("apply new version");
        assert_eq!(count(&next, "SELECT COUNT(*) FROM beacon_schema_migrations WHERE schema_name = 'notes'").await, 3);
        sqlx::query("INSERT INTO notes_log (guild_id, line) VALUES (1, 'a'), (1, 'b')")
            .execute(next.pool())
            .await
            .expect("identity column fills itself");
        assert_eq!(count(&next, "SELECT MAX(id) FROM notes_log").await, 2);
        next.close().await;
    }
    const DUPLICATE: Schema = Schema { migrations: &[NOTES_V1, NOTES_V1], ..NOTES };
    let err = store.migrate_schema(&DUPLICATE).await;
    assert!(matches!(err, Err(StoreError::Migration(_))), "{err:?}");
}

/// The URL of the database behind `store`, for a second connection (SQLite file or PostgreSQL).
async fn store_url(store: &Store) -> String {
    match store.backend() {
        Backend::Sqlite => {
            let file: String = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(store.pool())
                .await
                .expect("database file");
            format!("sqlite://{file}")
        }
        Backend::Postgres => {
            let db: String = sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)")
                .fetch_one(store.pool())
                .await
                .expect("database name");
            let base = std::env::var("BEACON_TEST_POSTGRES_URL").expect("postgres url");
            let (server, _) = base.rsplit_once('/').expect("url with a database");
            format!("{server}/{db}")
        }
    }
}

async fn schema_checksum_change_is_refused(store: Store) {
    store.migrate_schema(&NOTES).await.expect("apply");
    let next = Store::connect_with(&store_url(&store).await, Default::default()).await.expect("second store");
    const EDITED: Schema = Schema {
        migrations: &[Migration::new(1, "notes table", "CREATE TABLE notes (guild_id BIGINT NOT NULL);"), NOTES_V2],
        ..NOTES
    };
    let err = next.migrate_schema(&EDITED).await.expect_err("an edited applied migration must be refused");
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    assert!(err.to_string().contains("notes"), "{err}");
    next.close().await;
}

async fn failed_migration_is_not_recorded(store: Store) {
    const BROKEN: Schema = Schema {
        name: "broken",
        migrations: &[Migration::new(
            1,
            "half applied",
            "CREATE TABLE broken_t (guild_id BIGINT NOT NULL); THIS IS NOT SQL;",
        )],
        guild_tables: &["broken_t"],
    };
    let err = store.migrate_schema(&BROKEN).await.expect_err("bad SQL fails");
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM beacon_schema_migrations WHERE schema_name = 'broken'").await, 0);
    assert!(!store.declared_guild_tables().contains(&"broken_t"), "a schema that failed is not declared");
    // The transaction rolled back the CREATE TABLE too, so a fixed migration applies cleanly.
    const FIXED: Schema = Schema {
        migrations: &[Migration::new(1, "half applied", "CREATE TABLE broken_t (guild_id BIGINT NOT NULL);")],
        ..BROKEN
    };
    store.migrate_schema(&FIXED).await.expect("fixed applies");
}

async fn declared_tables_match_the_catalogue(store: Store) {
    // The core declares every table of its own that has a guild column.
    assert_eq!(store.undeclared_guild_tables().await.expect("catalogue"), Vec::<String>::new());
    // A module table with a guild column that its schema forgets is found in the catalogue.
    const FORGETFUL: Schema = Schema {
        name: "forgetful",
        migrations: &[Migration::new(1, "t", "CREATE TABLE forgotten (guild_id BIGINT NOT NULL, x TEXT)")],
        guild_tables: &[],
    };
    store.migrate_schema(&FORGETFUL).await.expect("apply");
    assert_eq!(store.undeclared_guild_tables().await.expect("catalogue"), vec!["forgotten".to_owned()]);
    store.migrate_schema(&NOTES).await.expect("apply");
    let tables = store.declared_guild_tables();
    assert_eq!(tables.first(), Some(&"notes"), "module tables purge first");
    assert_eq!(tables.last(), Some(&"guilds"), "the guild record goes last");
}

async fn guild_row_counts(store: &Store, guild_id: u64) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in store.declared_guild_tables() {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE guild_id = $1")))
                .bind(guild_id as i64)
                .fetch_one(store.pool())
                .await
                .expect("count");
        counts.push((table.to_owned(), n));
    }
    counts
}

async fn seed_guild(store: &Store, guild_id: u64) {
    let g = store.guild(guild_id);
    g.upsert("seeded", Some(OWNER)).await.expect("upsert");
    g.grant(OWNER, None).await.expect("grant");
    g.set_setting("a", Some(&json!(1)), OWNER).await.expect("set");
    g.set_module_enabled("notes", true, OWNER).await.expect("module");
    g.record_command("notes", beacon_store::Outcome::Ok, now_ms()).await.expect("usage");
    g.record_error("notes", 1, "failed", now_ms()).await.expect("error");
    sqlx::query("INSERT INTO notes (guild_id, id, body) VALUES ($1, 1, 'hello')")
        .bind(g.sql_id())
        .execute(store.pool())
        .await
        .expect("module row");
}

async fn purge_removes_only_left_guilds_rows(store: Store) {
    store.migrate_schema(&NOTES).await.expect("apply");
    let (gone, stays, left_late) = (60u64, 61u64, 62u64);
    for id in [gone, stays, left_late] {
        seed_guild(&store, id).await;
    }
    store.guild(gone).mark_left().await.expect("leave");
    let cutoff = store.guild(gone).get().await.expect("get").and_then(|r| r.left_at).expect("left_at") + 1;
    // `left_late` leaves after the cutoff: kept.
    while now_ms() < cutoff {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store.guild(left_late).mark_left().await.expect("leave");

    let purged = store.purge_left_guilds(cutoff).await.expect("purge");
    assert_eq!(purged, vec![gone]);
    assert_eq!(store.guild(gone).get().await.expect("get"), None);
    for (table, n) in guild_row_counts(&store, gone).await {
        // The purge leaves one notice (the id alone) so other processes drop their caches.
        let left = if table == "guild_changes" { 1 } else { 0 };
        assert_eq!(n, left, "{table} still holds rows of the purged guild");
    }
    for id in [stays, left_late] {
        for (table, n) in guild_row_counts(&store, id).await {
            assert!(n >= 1, "{table} lost rows of guild {id}");
        }
        assert!(store.guild(id).get().await.expect("get").is_some());
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM notes WHERE guild_id = 0").await, 1);
    assert!(store.purge_left_guilds(cutoff).await.expect("again").is_empty());

    // A guild that came back is never purged by retention; the operator's purge takes it.
    store.guild(left_late).upsert("back", None).await.expect("rejoin");
    assert!(store.purge_left_guilds(now_ms() + 60_000).await.expect("purge").is_empty());
    let deleted = store.purge_guild(left_late).await.expect("operator purge");
    assert!(deleted.iter().any(|(t, n)| *t == "notes" && *n == 1), "{deleted:?}");
    assert_eq!(deleted.last().map(|(t, _)| *t), Some("guilds"));
    assert_eq!(store.guild(left_late).get().await.expect("get"), None);
}

#[tokio::test]
async fn memory_store_works_with_one_connection() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.expect("migrate");
    let g = store.guild(1);
    g.upsert("mem", None).await.expect("upsert");
    g.set_setting("x", Some(&json!(1)), 2).await.expect("set");
    assert_eq!(g.setting("x").await.expect("get"), Some(json!(1)));
    assert!(store.claim_once("k", 1).await.expect("claim"));
    assert_eq!(store.guild_count().await.expect("count"), 1);
}

#[tokio::test]
async fn unsupported_url_is_rejected_without_password() {
    let err = Store::connect("mysql://root:hunter2@db/beacon").await.expect_err("mysql is not supported");
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn postgres_auth_failure_hides_password() {
    let Some(url) = beacon_testkit::services::postgres_url() else {
        return;
    };
    let scheme_end = url.find("://").expect("scheme") + 3;
    let at = url.rfind('@').expect("credentials in BEACON_TEST_POSTGRES_URL");
    let bad = format!("{}beacon:wrong-s3cret-pw{}", &url[..scheme_end], &url[at..]);
    let err = Store::connect(&bad).await.expect_err("wrong password");
    assert!(!err.to_string().contains("wrong-s3cret-pw"), "{err}");
    assert!(!format!("{err:?}").contains("wrong-s3cret-pw"), "{err:?}");
}

#[tokio::test]
async fn sqlite_file_uses_wal_foreign_keys_and_busy_timeout() {
    let fx = common::sqlite().await;
    let pool = fx.store.pool();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.expect("journal_mode");
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(pool).await.expect("foreign_keys");
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.expect("busy_timeout");
    assert!(busy > 0, "busy_timeout {busy}");
    fx.finish().await;
}

#[tokio::test]
async fn sqlite_data_survives_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/nested/beacon.db", dir.path().display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.guild(5).upsert("five", None).await.expect("upsert");
    store.close().await;
    assert!(dir.path().join("nested/beacon.db").is_file());
    let again = Store::connect(&url).await.expect("reconnect");
    again.migrate().await.expect("migrate again");
    assert_eq!(again.active_guild_ids().await.expect("ids"), vec![5]);
}

/// With automatic checkpoints off, only the background checkpointer moves committed pages from
/// the WAL into the database file: the file growing proves it runs.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let fx = common::sqlite().await;
    let pool = fx.store.pool();
    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(pool).await.expect("pragma");
    assert_eq!(auto, 0, "commits must not checkpoint inline");
    let path = fx.url.trim_start_matches("sqlite://").to_owned();
    let before = std::fs::metadata(&path).expect("db file").len();
    sqlx::query("CREATE TABLE bulk (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").execute(pool).await.expect("create");
    let body = "x".repeat(1000);
    for _ in 0..2000 {
        sqlx::query("INSERT INTO bulk (body) VALUES ($1)").bind(&body).execute(pool).await.expect("insert");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = std::fs::metadata(&path).expect("db file").len();
        if now >= before + 1_000_000 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "database file stayed at {now} bytes (was {before})");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    fx.finish().await;
}
