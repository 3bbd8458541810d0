//! The repository and the index service against a real (SQLite) database.

use std::sync::Arc;

use beacon_faq::{
    ChangeKind, EntryInput, FaqChanged, FaqError, FaqRepo, FaqService, SCHEMA, export_csv, import_csv, split_tags,
};
use beacon_store::Store;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("faq.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("core migrations");
    store.migrate_schema(&SCHEMA).await.expect("faq migrations");
    (store, dir)
}

fn input(q: &str, a: &str, tags: &str) -> EntryInput {
    EntryInput::new(q, a, &split_tags(tags), false).expect("valid input")
}

#[tokio::test]
async fn entries_get_small_per_guild_numbers_that_are_never_reused() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let a = store.guild(111);
    let b = store.guild(222);
    let first = repo.add(&a, &input("How to pay?", "By card.", "billing"), 5).await.unwrap();
    let second = repo.add(&a, &input("Refunds?", "Within 5 days.", ""), 5).await.unwrap();
    let other = repo.add(&b, &input("How to pay?", "Cash only.", ""), 6).await.unwrap();
    assert_eq!((first.id, second.id, other.id), (1, 2, 1));
    assert_eq!(first.tags, vec!["billing"]);
    repo.remove(&a, 2, 5).await.unwrap();
    let third = repo.add(&a, &input("Hours?", "9 to 5.", ""), 5).await.unwrap();
    assert_eq!(third.id, 3, "a removed number is not handed out again");
    // Guild isolation: b's #1 is not a's #1, and a's entries are invisible from b.
    assert_eq!(repo.get(&b, 1).await.unwrap().unwrap().answer, "Cash only.");
    assert!(repo.get(&b, 3).await.unwrap().is_none());
    assert_eq!(repo.all(&b).await.unwrap().len(), 1);
    assert_eq!(repo.count(&a).await.unwrap(), (2, 0));
    // The tables are purged with the guild.
    let tables = store.declared_guild_tables();
    for t in ["faq_entries", "faq_counters", "faq_search_log"] {
        assert!(tables.contains(&t), "{t} not declared: {tables:?}");
    }
    assert!(store.undeclared_guild_tables().await.unwrap().is_empty());
    store.purge_guild(111).await.unwrap();
    assert!(repo.all(&a).await.unwrap().is_empty(), "the purge removed guild 111's entries");
    assert_eq!(repo.all(&b).await.unwrap().len(), 1, "and nothing of guild 222");
}

#[tokio::test]
async fn duplicates_missing_entries_and_edits() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let g = store.guild(1);
    repo.add(&g, &input("How to pay?", "By card.", ""), 5).await.unwrap();
    let err = repo.add(&g, &input("how to PAY?", "x", ""), 5).await.unwrap_err();
    assert!(err.to_string().contains("#1 already asks"), "{err}");
    let err = repo.update(&g, 9, &input("q", "a", ""), 5).await.unwrap_err();
    assert!(matches!(err, FaqError::NotFound(9)));
    let mut edited = input("How do I pay?", "By card or PayPal.", "billing, paypal");
    edited.pinned = true;
    let e = repo.update(&g, 1, &edited, 7).await.unwrap();
    assert_eq!(e.updated_by, 7);
    assert_eq!(e.created_by, 5);
    assert!(e.pinned);
    assert_eq!(repo.list_pinned(&g, 10, 0).await.unwrap().len(), 1);
    repo.record_view(&g, 1).await.unwrap();
    repo.record_view(&g, 1).await.unwrap();
    assert_eq!(repo.get(&g, 1).await.unwrap().unwrap().views, 2);
    assert!(repo.remove(&g, 1, 5).await.is_ok());
    assert!(matches!(repo.remove(&g, 1, 5).await, Err(FaqError::NotFound(1))));
}

#[tokio::test]
async fn the_knowledge_base_feed_reports_changes_and_removals() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let mut changes = repo.subscribe();
    let g = store.guild(1);
    let before = beacon_store::now_ms() - 1;
    let e = repo.add(&g, &input("Q one", "A one", ""), 5).await.unwrap();
    repo.update(&g, e.id, &input("Q one!", "A one!", ""), 5).await.unwrap();
    repo.remove(&g, e.id, 5).await.unwrap();
    let kinds: Vec<ChangeKind> = (0..3).map(|_| changes.try_recv().unwrap().kind).collect();
    assert_eq!(kinds, [ChangeKind::Added, ChangeKind::Updated, ChangeKind::Removed]);
    let since = repo.entries_since(&g, before).await.unwrap();
    assert_eq!(since.len(), 1);
    assert!(since[0].deleted_at.is_some(), "removals are reported as tombstones");
    assert_eq!(since[0].question, "Q one!");
    assert!(repo.entries_since(&g, since[0].updated_at).await.unwrap().is_empty());
    assert!(repo.all(&g).await.unwrap().is_empty());
    // Another guild's changes are not in this guild's feed.
    repo.add(&store.guild(2), &input("Other", "guild", ""), 5).await.unwrap();
    assert!(repo.entries_since(&g, since[0].updated_at).await.unwrap().is_empty());
    assert_eq!(changes.try_recv().unwrap(), FaqChanged { guild_id: 2, entry_id: 1, kind: ChangeKind::Added });
}

#[tokio::test]
async fn export_then_import_restores_a_guild() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let a = store.guild(1);
    let b = store.guild(2);
    repo.add(&a, &input("How to pay?", "By card, \"quickly\".\nOr cash.", "billing"), 5).await.unwrap();
    repo.add(&a, &input("=cmd|' /C calc'!A0", "- not a formula", "x, y"), 5).await.unwrap();
    repo.add(&a, &input("Gone", "removed", ""), 5).await.unwrap();
    repo.remove(&a, 3, 5).await.unwrap();
    let mut pinned = input("Hours?", "9 to 5.", "");
    pinned.pinned = true;
    repo.add(&a, &pinned, 5).await.unwrap();
    let csv = export_csv(&repo.all(&a).await.unwrap()).unwrap();
    let report = import_csv(&repo, &b, csv.as_slice(), 9).await.unwrap();
    assert_eq!((report.added, report.updated), (3, 0));
    let strip = |v: Vec<beacon_faq::FaqEntry>| {
        v.into_iter().map(|e| (e.id, e.question, e.answer, e.tags, e.pinned)).collect::<Vec<_>>()
    };
    assert_eq!(strip(repo.all(&a).await.unwrap()), strip(repo.all(&b).await.unwrap()));
    // New numbers continue above imported ones.
    assert_eq!(repo.add(&b, &input("Next", "one", ""), 5).await.unwrap().id, 5);
    // Importing again updates instead of duplicating; rows without id match by question.
    let report = import_csv(&repo, &b, csv.as_slice(), 9).await.unwrap();
    assert_eq!((report.added, report.updated), (0, 3));
    let report =
        import_csv(&repo, &b, "question,answer\nHOURS?,10 to 6.\nNew one?,Yes.\n".as_bytes(), 9).await.unwrap();
    assert_eq!((report.added, report.updated), (1, 1));
    assert_eq!(repo.get(&b, 4).await.unwrap().unwrap().answer, "10 to 6.");
    // A bad file writes nothing.
    let before = repo.all(&b).await.unwrap().len();
    let err = import_csv(&repo, &b, "question,answer\nfine,ok\nbad,\n".as_bytes(), 9).await;
    assert!(err.is_err());
    assert_eq!(repo.all(&b).await.unwrap().len(), before);
}

#[tokio::test]
async fn an_import_over_a_limit_names_its_line_and_changes_nothing() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let g = store.guild(3);
    repo.add(&g, &input("How to pay?", "By card.", "billing"), 5).await.unwrap();
    let before = repo.all(&g).await.unwrap();
    let snapshot = |v: &[beacon_faq::FaqEntry]| {
        v.iter().map(|e| (e.id, e.question.clone(), e.answer.clone(), e.updated_at)).collect::<Vec<_>>()
    };
    // A field over its size on line 3, after a good row that would update entry 1.
    let long = "a".repeat(beacon_faq::MAX_ANSWER_CHARS + 1);
    let csv = format!("id,question,answer\n1,How to pay?,Cash only.\n,Long?,{long}\n");
    match import_csv(&repo, &g, csv.as_bytes(), 9).await {
        Err(FaqError::Csv { line, message }) => {
            assert_eq!(line, 3, "{message}");
            assert!(message.contains("longer than"), "{message}");
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    // One row more than an import may hold: refused at the first row past the limit.
    let mut rows = String::from("question,answer\n");
    for i in 0..=beacon_faq::csvio::MAX_IMPORT_ROWS {
        rows.push_str(&format!("Q{i}?,A{i}.\n"));
    }
    match import_csv(&repo, &g, rows.as_bytes(), 9).await {
        Err(FaqError::Csv { line, message }) => {
            assert_eq!(line as usize, beacon_faq::csvio::MAX_IMPORT_ROWS + 2, "{message}");
            assert!(message.contains("at most"), "{message}");
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    assert_eq!(snapshot(&repo.all(&g).await.unwrap()), snapshot(&before));
}

#[tokio::test]
async fn gaps_are_the_top_terms_without_hits() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let g = store.guild(1);
    for (term, hits) in [("dark mode", 0), ("dark mode", 0), ("api key", 0), ("pay", 3), ("dark mode", 1)] {
        repo.log_search(&g, term, hits).await.unwrap();
    }
    repo.log_search(&store.guild(2), "other guild", 0).await.unwrap();
    let gaps = repo.gaps(&g, 0, 10).await.unwrap();
    let terms: Vec<(&str, u64)> = gaps.iter().map(|g| (g.term.as_str(), g.searches)).collect();
    assert_eq!(terms, [("dark mode", 2), ("api key", 1)]);
    assert!(repo.gaps(&g, beacon_store::now_ms() + 1000, 10).await.unwrap().is_empty());
}

/// A member searching for their own address or number leaves no personal data in the log, and a
/// term logged before redaction is redacted when `/faq gaps` reads it.
#[tokio::test]
async fn search_terms_are_stored_and_shown_redacted() {
    let (store, _dir) = store().await;
    let repo = FaqRepo::new(store.clone());
    let g = store.guild(1);
    repo.log_search(&g, "refund jane.doe@example.com", 0).await.unwrap();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT term FROM faq_search_log WHERE guild_id = 1").fetch_all(store.pool()).await.unwrap();
    assert_eq!(stored, ["refund [email]"]);
    sqlx::query("INSERT INTO faq_search_log (guild_id, term, hits, at) VALUES (1, 'call +1 415-555-0134', 0, $1)")
        .bind(beacon_store::now_ms())
        .execute(store.pool())
        .await
        .unwrap();
    let mut shown: Vec<String> = repo.gaps(&g, 0, 10).await.unwrap().into_iter().map(|g| g.term).collect();
    shown.sort();
    assert_eq!(shown, ["call [phone]", "refund [email]"]);
}

#[tokio::test]
async fn the_index_follows_every_change_at_once() {
    let (store, _dir) = store().await;
    let service = Arc::new(FaqService::new(FaqRepo::new(store.clone())));
    let g = store.guild(1);
    service.add(&g, &input("How do I reset my password?", "Settings.", "account"), 5).await.unwrap();
    // First search loads the index from the database.
    assert_eq!(service.search(&g, "pasword", 5).await.unwrap()[0].id, 1);
    let e = service.add(&g, &input("Where is the invoice?", "Billing page.", ""), 5).await.unwrap();
    assert_eq!(service.search(&g, "invoi", 5).await.unwrap()[0].id, e.id);
    service.update(&g, e.id, &input("Where are receipts?", "Billing page.", ""), 5).await.unwrap();
    assert!(service.search(&g, "invoice ", 5).await.unwrap().is_empty());
    service.remove(&g, 1, 5).await.unwrap();
    assert!(service.search(&g, "password", 5).await.unwrap().is_empty());
    service.import(&g, b"question,answer\nDark mode?,Toggle in settings.\n", 5).await.unwrap();
    assert_eq!(service.search(&g, "dark", 5).await.unwrap().len(), 1);
    // Another guild's index knows none of it.
    assert!(service.search(&store.guild(2), "dark", 5).await.unwrap().is_empty());
}
