//! The case store on SQLite and PostgreSQL: numbers without gaps or duplicates when many
//! writers (two connection pools, as two workers would have) create cases at once, an
//! append-only history, one open appeal per case, timed actions ended once.

// The store's own fixtures: one copy of the SQLite/PostgreSQL setup for every store-backed crate.
#[path = "../../beacon-store/tests/common/mod.rs"]
mod common;

use beacon_moderation::{AppealState, CaseKind, DmStatus, Filter, NewCase, Repo, SCHEMA};
use beacon_store::Store;
use common::Fixture;

const GUILD: u64 = 4242;

async fn setup(f: &Fixture) {
    f.store.migrate_schema(&SCHEMA).await.expect("migrate moderation");
}

async fn numbers_have_no_gaps_or_duplicates_under_concurrency(f: Fixture) {
    setup(&f).await;
    // A second pool on the same database: another worker process.
    let second = Store::connect(&f.url).await.expect("second pool");
    second.migrate_schema(&SCHEMA).await.expect("already migrated");
    const PER_WORKER: usize = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for (w, store) in [f.store.clone(), second.clone()].into_iter().enumerate() {
        for i in 0..PER_WORKER {
            let repo = Repo::new(store.guild(GUILD));
            tasks.spawn(async move {
                let reason = format!("worker {w} case {i}");
                let new = NewCase::new(CaseKind::Warn, 100 + i as u64, 7, &reason);
                repo.create(&new, beacon_store::now_ms()).await.expect("case created").number
            });
        }
    }
    let mut numbers = Vec::new();
    while let Some(n) = tasks.join_next().await {
        numbers.push(n.expect("task"));
    }
    numbers.sort_unstable();
    let expected: Vec<i64> = (1..=(2 * PER_WORKER) as i64).collect();
    assert_eq!(numbers, expected, "every number once, none skipped");
    let repo = Repo::new(f.store.guild(GUILD));
    let listed = repo.list(Filter::default(), 100).await.unwrap();
    assert_eq!(listed.len(), 2 * PER_WORKER);
    assert_eq!(listed[0].number, (2 * PER_WORKER) as i64, "newest first");
    // Another guild counts on its own.
    let other = Repo::new(f.store.guild(GUILD + 1));
    let first = other.create(&NewCase::new(CaseKind::Note, 1, 7, "first here"), 0).await.unwrap();
    assert_eq!(first.number, 1);
    second.close().await;
    f.finish().await;
}

async fn history_is_append_only(f: Fixture) {
    setup(&f).await;
    let repo = Repo::new(f.store.guild(GUILD));
    let case = repo.create(&NewCase::new(CaseKind::Ban, 55, 7, "spam"), 1_000).await.unwrap();
    assert_eq!((case.number, case.reason.as_str(), case.dm_status), (1, "spam", DmStatus::Pending));
    let edited = repo.edit_reason(1, 8, "spam links in #general", 2_000).await.unwrap().expect("case 1");
    assert_eq!(edited.reason, "spam links in #general");
    assert_eq!(edited.updated_at, 2_000);
    assert!(repo.edit_reason(99, 8, "nope", 2_000).await.unwrap().is_none());
    repo.set_dm(1, DmStatus::Failed, Some("50007: the member does not accept DMs"), 2_500).await.unwrap();
    let events = repo.events(1).await.unwrap();
    let lines: Vec<(&str, &str)> = events.iter().map(|e| (e.kind.as_str(), e.detail.as_str())).collect();
    assert_eq!(
        lines,
        vec![
            ("created", "spam"),
            ("reason", "spam links in #general"),
            ("dm", "failed: 50007: the member does not accept DMs")
        ]
    );
    let rewrite = sqlx::query("UPDATE mod_case_events SET detail = 'forged' WHERE guild_id = $1")
        .bind(GUILD as i64)
        .execute(f.store.pool())
        .await;
    assert!(rewrite.is_err(), "the database refuses to rewrite a case's history");
    // A purge still removes everything of the guild.
    f.store.purge_guild(GUILD).await.unwrap();
    assert!(repo.events(1).await.unwrap().is_empty());
    assert!(repo.get(1).await.unwrap().is_none());
    let next = repo.create(&NewCase::new(CaseKind::Warn, 55, 7, "after purge"), 3_000).await.unwrap();
    assert_eq!(next.number, 1, "the purged guild's counter went with it");
    f.finish().await;
}

async fn timed_actions_end_once_and_appeals_open_once(f: Fixture) {
    setup(&f).await;
    let repo = Repo::new(f.store.guild(GUILD));
    let ban = NewCase { duration_ms: Some(5_000), ..NewCase::new(CaseKind::Ban, 55, 7, "cool off") };
    let case = repo.create(&ban, 10_000).await.unwrap();
    assert_eq!(case.ends_at, Some(15_000));
    assert!(case.is_running());
    assert_eq!(repo.running(55, &[CaseKind::Ban]).await.unwrap().len(), 1);
    assert!(repo.end(case.number, 1, "ban lifted", 15_010).await.unwrap());
    assert!(!repo.end(case.number, 1, "ban lifted", 15_020).await.unwrap(), "a second end is refused");
    let ended = repo.get(case.number).await.unwrap().unwrap();
    assert_eq!((ended.ended_at, ended.end_note.as_deref()), (Some(15_010), Some("ban lifted")));
    assert!(repo.running(55, &[CaseKind::Ban]).await.unwrap().is_empty());

    let appeal = repo.open_appeal(case.number, 55, "I am sorry", 20_000).await.unwrap().expect("first appeal");
    assert_eq!(appeal.state, AppealState::Open);
    assert!(repo.open_appeal(case.number, 55, "again", 20_001).await.unwrap().is_none(), "one open appeal per case");
    assert!(repo.decide_appeal(appeal.id, AppealState::Denied, 7, 21_000).await.unwrap());
    assert!(!repo.decide_appeal(appeal.id, AppealState::Accepted, 8, 21_001).await.unwrap(), "decided once");
    let again = repo.open_appeal(case.number, 55, "please", 30_000).await.unwrap().expect("a new one after a decision");
    assert_eq!(repo.latest_appeal(case.number).await.unwrap().map(|a| a.id), Some(again.id));
    f.finish().await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(f) = super::common::postgres().await {
                        super::$name(f).await;
                    }
                }
            )*
        }
    };
}

on_both!(
    numbers_have_no_gaps_or_duplicates_under_concurrency,
    history_is_append_only,
    timed_actions_end_once_and_appeals_open_once,
);
