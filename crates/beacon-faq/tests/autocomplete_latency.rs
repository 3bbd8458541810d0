//! Benchmark-style test: autocomplete latency at 10,000 entries. Prints p50/p99 (run with
//! `--nocapture` to see them); asserts only on results, never on timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_faq::{EntryInput, FaqEntry, FaqIndex, FaqRepo, FaqService};
use beacon_store::Store;

const ENTRIES: usize = 10_000;

/// Small deterministic generator (xorshift), so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn vocabulary(rng: &mut Rng, size: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ter", "pas", "word", "set", "ac", "count", "bil", "ling", "in", "voice", "serv", "er", "ro",
        "le", "chan", "nel", "tick", "et", "mod", "ban", "app", "sync", "key", "lin", "ux", "win", "dows", "mac",
        "net", "work", "ra", "ne", "sto", "re",
    ];
    let mut words: Vec<String> = (0..size)
        .map(|_| {
            let n = 2 + rng.below(3);
            (0..n).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect()
        })
        .collect();
    words.sort();
    words.dedup();
    // Shuffle so that word frequency (by position, below) is not tied to alphabetical order.
    for i in (1..words.len()).rev() {
        let j = rng.below(i + 1);
        words.swap(i, j);
    }
    words
}

fn sentence(rng: &mut Rng, words: &[String], n: usize) -> String {
    // Zipf-like: low indexes are much more common, like real text.
    (0..n)
        .map(|_| {
            let r = rng.below(words.len()) as f64 / words.len() as f64;
            words[((r * r * r) * words.len() as f64) as usize].as_str()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn corpus() -> Vec<FaqEntry> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let words = vocabulary(&mut rng, 6_000);
    (0..ENTRIES)
        .map(|i| {
            let q_words = 4 + rng.below(6);
            let a_words = 30 + rng.below(60);
            (i, q_words, a_words)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(i, q_words, a_words)| FaqEntry {
            guild_id: 1,
            id: i as u64 + 1,
            question: format!("How do I {}?", sentence(&mut rng, &words, q_words)),
            answer: sentence(&mut rng, &words, a_words),
            tags: (0..rng.below(3)).map(|_| words[rng.below(words.len())].clone()).collect(),
            pinned: i % 100 == 0,
            created_by: 1,
            updated_by: 1,
            created_at: i as i64,
            updated_at: i as i64,
            views: 0,
            deleted_at: None,
        })
        .collect()
}

/// What a member types: prefixes of a real question's words, some with a typo.
fn queries(entries: &[FaqEntry], n: usize) -> Vec<String> {
    let mut rng = Rng(0x0dd_ba11);
    (0..n)
        .map(|_| {
            let e = &entries[rng.below(entries.len())];
            let words: Vec<&str> = e.question.split_whitespace().skip(3).collect();
            let take = 1 + rng.below(words.len().clamp(1, 3));
            let mut q = words.iter().take(take).copied().collect::<Vec<_>>().join(" ");
            q = q.trim_end_matches('?').to_owned();
            match rng.below(4) {
                // Still typing: cut the last word.
                0 => {
                    let keep = q.chars().count().saturating_sub(rng.below(4)).max(1);
                    q.chars().take(keep).collect()
                }
                // A typo: drop one letter of a long query.
                1 if q.len() > 6 => {
                    let at = 1 + rng.below(q.len() - 2);
                    if q.is_char_boundary(at) && q.is_char_boundary(at + 1) {
                        q.remove(at);
                    }
                    q
                }
                _ => q,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label}: n={} p50={:?} p99={:?} max={:?} (profile: {})",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}

#[test]
fn index_search_at_10k_entries() {
    let entries = corpus();
    let started = Instant::now();
    let index = FaqIndex::build(&entries);
    println!("built index of {} entries in {:?}", index.len(), started.elapsed());
    let qs = queries(&entries, 2_000);
    let mut times = Vec::with_capacity(qs.len());
    let mut found = 0;
    for q in &qs {
        let t = Instant::now();
        let hits = index.search(q, 10);
        times.push(t.elapsed());
        found += usize::from(!hits.is_empty());
    }
    if std::env::var_os("FAQ_BENCH_SLOWEST").is_some() {
        let mut by_time: Vec<(Duration, &String)> = times.iter().copied().zip(&qs).collect();
        by_time.sort();
        for (t, q) in by_time.iter().rev().take(15) {
            println!("  slow: {t:?} {q:?}");
        }
    }
    report("FaqIndex::search(10) at 10k entries", times);
    // Queries are made from real questions: nearly all must find something.
    assert!(found * 100 >= qs.len() * 95, "only {found} of {} found anything", qs.len());
}

#[tokio::test]
async fn autocomplete_path_at_10k_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("faq.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.migrate_schema(&beacon_faq::SCHEMA).await.expect("faq migrations");
    let repo = FaqRepo::new(store.clone());
    let guild = store.guild(1);
    let entries = corpus();
    let rows: Vec<(Option<u64>, EntryInput)> = entries
        .iter()
        .map(|e| (Some(e.id), EntryInput::new(&e.question, &e.answer, &e.tags, e.pinned).expect("valid")))
        .collect();
    repo.import(&guild, &rows, 1).await.expect("import");
    let service = Arc::new(FaqService::new(repo));
    let started = Instant::now();
    assert!(service.search(&guild, "warm up", 1).await.is_ok());
    println!("loaded the index of 10k entries from SQLite in {:?}", started.elapsed());
    let qs = queries(&entries, 2_000);
    let mut times = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        let hits = service.search(&guild, q, 10).await.expect("search");
        std::hint::black_box(hits);
        times.push(t.elapsed());
    }
    report("FaqService::search(10) at 10k entries (autocomplete path)", times);
    let first = &entries[0];
    let hits = service.search(&guild, &first.question, 5).await.expect("search");
    assert_eq!(hits.first().map(|h| h.id), Some(first.id), "an exact question ranks first");
}
