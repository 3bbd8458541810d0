//! Group-committed claims and cross-process change notices, each checked with two `Store`s on one
//! database (as two Beacon processes would be), on SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use beacon_store::{POLL_EVERY, Store};
use serde_json::json;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = crate::common::sqlite().await;
                    let other = beacon_store::Store::connect(&fx.url).await.expect("second process");
                    super::$name(fx.store.clone(), other.clone()).await;
                    other.close().await;
                    fx.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fx) = crate::common::postgres().await {
                        let other = beacon_store::Store::connect(&fx.url).await.expect("second process");
                        super::$name(fx.store.clone(), other.clone()).await;
                        other.close().await;
                        fx.finish().await;
                    }
                }
            )*
        }
    };
}

both!(
    many_concurrent_claims_have_one_winner_each,
    local_writes_move_the_generation_at_once,
    other_processes_see_changes_within_the_poll_interval,
    setting_changes_are_read_by_the_other_processes_only,
);

/// 600 claims of 300 ids from two stores at once: batches larger than one statement takes, and
/// duplicates inside one batch and across the two writers.
async fn many_concurrent_claims_have_one_winner_each(a: Store, b: Store) {
    let mut tasks = Vec::new();
    for id in 0..300u64 {
        for store in [&a, &b] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { (id, store.claim_once("interaction", 10_000 + id).await) }));
        }
    }
    let mut winners = HashSet::new();
    for t in tasks {
        let (id, claimed) = t.await.expect("join");
        if claimed.expect("claim") {
            assert!(winners.insert(id), "id {id} claimed twice");
        }
    }
    assert_eq!(winners.len(), 300, "every id is claimed exactly once");
    // Same id, two kinds: independent.
    assert!(a.claim_once("message", 10_000).await.expect("other kind"));
    assert!(!b.claim_once("message", 10_000).await.expect("claimed by a"));
}

async fn local_writes_move_the_generation_at_once(a: Store, _b: Store) {
    let g = a.guild(7);
    let before = g.generation();
    let created = g.upsert("seven", Some(1)).await.expect("upsert");
    assert!(created.created);
    let after_create = g.generation();
    assert_ne!(before, after_create, "a new guild is a change");
    g.upsert("seven", Some(1)).await.expect("same again");
    assert_eq!(g.generation(), after_create, "a GUILD_CREATE that changes nothing is not a change");
    g.upsert("seven", Some(2)).await.expect("new owner");
    let after_owner = g.generation();
    assert_ne!(after_owner, after_create, "a new owner is a change");
    assert!(g.grant(5, Some(2)).await.expect("grant"));
    let after_grant = g.generation();
    assert_ne!(after_grant, after_owner);
    assert!(!g.grant(5, Some(2)).await.expect("grant again"));
    assert_eq!(g.generation(), after_grant, "a grant that changes nothing is not a change");
    g.set_setting("support.enabled", Some(&json!(false)), 2).await.expect("set");
    let after_setting = g.generation();
    assert_ne!(after_setting, after_grant);
    let eight = a.guild(8).generation();
    g.mark_changed().await.expect("mark");
    assert_ne!(g.generation(), after_setting);
    assert_eq!(a.guild(8).generation(), eight, "other guilds are untouched");
}

async fn other_processes_see_changes_within_the_poll_interval(a: Store, b: Store) {
    // `b` follows notices from its `migrate` on (the fixture migrated `a`).
    b.migrate().await.expect("migrate b");
    let seen_by_b = b.guild(9).generation();
    let untouched = b.guild(10).generation();
    a.guild(9).set_setting("faq.enabled", Some(&json!(true)), 3).await.expect("write in a");
    let started = Instant::now();
    while b.guild(9).generation() == seen_by_b {
        assert!(started.elapsed() < POLL_EVERY * 5, "b never noticed a's change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.guild(10).generation(), untouched, "only the changed guild moves");
    // A process does not re-apply its own notices: `a`'s generation moved once, at the write.
    let a_now = a.guild(9).generation();
    tokio::time::sleep(POLL_EVERY * 2).await;
    assert_eq!(a.guild(9).generation(), a_now);
}

async fn setting_changes_are_read_by_the_other_processes_only(a: Store, b: Store) {
    b.migrate().await.expect("migrate b");
    let since = 0;
    a.guild(9).set_setting("faq.enabled", Some(&json!(true)), 3).await.expect("write in a");
    let reverted = a.guild(9).set_setting("faq.enabled", None, 4).await.expect("reset in a");
    b.guild(10).set_setting("support.history_turns", Some(&json!(2)), 5).await.expect("write in b");
    let seen_by_b = b.setting_changes_elsewhere(since).await.expect("read in b");
    let summary: Vec<_> = seen_by_b.iter().map(|c| (c.guild_id, c.key.as_str(), c.new.clone(), c.actor_id)).collect();
    assert_eq!(summary, vec![(9, "faq.enabled", Some(json!(true)), 3), (9, "faq.enabled", None, 4)]);
    assert_eq!(seen_by_b[1].audit_id, reverted.audit_id);
    assert_eq!(seen_by_b[1].old, Some(json!(true)));
    let seen_by_a = a.setting_changes_elsewhere(since).await.expect("read in a");
    assert_eq!(seen_by_a.len(), 1, "{seen_by_a:?}");
    assert_eq!((seen_by_a[0].guild_id, seen_by_a[0].key.as_str()), (10, "support.history_turns"));
    // Only changes at or after `since`.
    let later = seen_by_b.iter().map(|c| c.at).max().unwrap_or(0) + 60_000;
    assert!(b.setting_changes_elsewhere(later).await.expect("read in b").is_empty());
}
