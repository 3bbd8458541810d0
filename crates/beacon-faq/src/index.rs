//! The in-process search index of one guild's FAQ: BM25 over question, tags and answer, with
//! prefix expansion (for words still being typed) and trigram-verified typo tolerance.
//!
//! The index is derived data: it is built from the database and updated on every change, and can
//! be dropped and rebuilt at any time. One [`FaqIndex`] holds exactly one guild's entries.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::model::FaqEntry;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// A word in the question counts this many times as one in the answer.
const QUESTION_WEIGHT: f32 = 3.0;
/// A tag counts this many times as a word in the answer.
const TAG_WEIGHT: f32 = 2.0;
/// Most dictionary words a prefix may expand to (the most frequent are kept); short prefixes
/// match many words, and every expansion costs a walk over its postings.
const MAX_PREFIX_EXPANSIONS: usize = 16;
const MAX_SHORT_PREFIX_EXPANSIONS: usize = 6;
/// Dictionary words scanned to pick the prefix expansions.
const PREFIX_SCAN_LIMIT: usize = 512;
/// Most dictionary words a misspelt word may stand for.
const MAX_FUZZY_EXPANSIONS: usize = 8;
/// Longest token kept; longer runs are usually hashes or URLs.
const MAX_TOKEN_CHARS: usize = 40;

/// Words too common to say anything about which entry is meant.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "how", "i", "if", "in",
    "into", "is", "it", "its", "me", "my", "of", "on", "or", "so", "that", "the", "their", "then", "there", "this",
    "to", "was", "we", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

/// Splits text into lower-case alphanumeric words (stopwords and over-long runs dropped).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        if !current.is_empty() {
            let count = current.chars().count();
            if count <= MAX_TOKEN_CHARS && !STOPWORDS.contains(&current.as_str()) {
                out.push(std::mem::take(current));
            } else {
                current.clear();
            }
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    out
}

/// The normalised form of a search term, as stored in the search log: its words joined by one
/// space (stopwords kept, so "how to pay" and "pay" stay different terms).
pub fn normalize_term(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One result of [`FaqIndex::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The entry's per-guild number.
    pub id: u64,
    /// The entry's question.
    pub question: String,
    /// Relevance; higher is better (only comparable within one search).
    pub score: f32,
}

/// A short listing of an entry kept in the index, for suggestions without a database query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The entry's per-guild number.
    pub id: u64,
    /// The entry's question.
    pub question: String,
    /// Whether it is pinned (listed first).
    pub pinned: bool,
    /// Last change, unix ms (newer first among equals).
    pub updated_at: i64,
}

struct Doc {
    id: u64,
    question: String,
    pinned: bool,
    updated_at: i64,
    /// Weighted length (question and tags count more).
    len: f32,
    /// Distinct term ids, to remove the doc from their postings.
    terms: Vec<u32>,
}

/// One guild's search index.
#[derive(Default)]
pub struct FaqIndex {
    docs: Vec<Option<Doc>>,
    /// Weighted length per slot (0 for free slots), dense for the scoring loop.
    lens: Vec<f32>,
    free_slots: Vec<u32>,
    by_id: HashMap<u64, u32>,
    dictionary: BTreeMap<String, u32>,
    term_text: Vec<String>,
    /// Per term: (doc slot, weighted term frequency), in no particular order.
    postings: Vec<Vec<(u32, f32)>>,
    /// Character trigram → term ids containing it (terms of 3+ characters).
    trigrams: HashMap<u64, Vec<u32>>,
    total_len: f64,
    live: usize,
}

/// Packs three characters into one key (21 bits each covers all of Unicode).
fn trigram_key(a: char, b: char, c: char) -> u64 {
    (u64::from(a as u32) << 42) | (u64::from(b as u32) << 21) | u64::from(c as u32)
}

/// Trigrams of a word padded with a boundary marker at both ends.
fn trigrams_of(word: &str) -> Vec<u64> {
    let mut chars = vec!['\u{1}'];
    chars.extend(word.chars());
    chars.push('\u{1}');
    let mut keys: Vec<u64> = chars.windows(3).map(|w| trigram_key(w[0], w[1], w[2])).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Optimal-string-alignment distance, giving up (returning `max + 1`) once it exceeds `max`.
fn edit_distance(a: &[char], b: &[char], max: usize) -> usize {
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let n = b.len();
    let mut prev2: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n]
}

/// How many typos a word of this length may contain and still match.
fn allowed_typos(chars: usize) -> usize {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

impl FaqIndex {
    /// An index of these entries (removed entries are skipped).
    pub fn build<'a>(entries: impl IntoIterator<Item = &'a FaqEntry>) -> FaqIndex {
        let mut index = FaqIndex::default();
        for entry in entries {
            index.upsert(entry);
        }
        index
    }

    /// Number of entries indexed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether entry `id` is in the index.
    pub fn contains(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Adds or replaces an entry; a removed entry (`deleted_at` set) is taken out.
    pub fn upsert(&mut self, entry: &FaqEntry) {
        self.remove(entry.id);
        if entry.deleted_at.is_some() {
            return;
        }
        let mut tf: HashMap<u32, f32> = HashMap::new();
        let mut len = 0.0f32;
        let fields: [(&str, f32); 3] =
            [(&entry.question, QUESTION_WEIGHT), (&entry.answer, 1.0), (&entry.tags.join(" "), TAG_WEIGHT)];
        for (text, weight) in fields {
            for token in tokenize(text) {
                let term = self.term_id(token);
                *tf.entry(term).or_insert(0.0) += weight;
                len += weight;
            }
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.docs.push(None);
                self.lens.push(0.0);
                (self.docs.len() - 1) as u32
            }
        };
        let mut terms: Vec<u32> = tf.keys().copied().collect();
        terms.sort_unstable();
        for (&term, &f) in &tf {
            self.postings[term as usize].push((slot, f));
        }
        self.docs[slot as usize] = Some(Doc {
            id: entry.id,
            question: entry.question.clone(),
            pinned: entry.pinned,
            updated_at: entry.updated_at,
            len,
            terms,
        });
        self.lens[slot as usize] = len;
        self.by_id.insert(entry.id, slot);
        self.total_len += f64::from(len);
        self.live += 1;
    }

    /// Takes an entry out; `false` if it was not indexed.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        if let Some(doc) = self.docs[slot as usize].take() {
            for term in doc.terms {
                self.postings[term as usize].retain(|(s, _)| *s != slot);
            }
            self.total_len -= f64::from(doc.len);
            self.lens[slot as usize] = 0.0;
            self.live -= 1;
        }
        self.free_slots.push(slot);
        true
    }

    fn term_id(&mut self, token: String) -> u32 {
        if let Some(&id) = self.dictionary.get(&token) {
            return id;
        }
        let id = self.term_text.len() as u32;
        if token.chars().count() >= 3 {
            for key in trigrams_of(&token) {
                self.trigrams.entry(key).or_default().push(id);
            }
        }
        self.dictionary.insert(token.clone(), id);
        self.term_text.push(token);
        self.postings.push(Vec::new());
        id
    }

    fn df(&self, term: u32) -> usize {
        self.postings[term as usize].len()
    }

    /// Dictionary words that `token` may stand for, with how much a match counts (exact 1.0).
    fn expand(&self, token: &str, is_prefix: bool) -> Vec<(u32, f32)> {
        let mut out = Vec::new();
        let chars: Vec<char> = token.chars().collect();
        let exact = self.dictionary.get(token).copied().filter(|&t| self.df(t) > 0);
        if let Some(t) = exact {
            out.push((t, 1.0));
        }
        // Prefixes: always for the word being typed, and for any longer word ("reset" finds
        // "resetting").
        if is_prefix || chars.len() >= 4 {
            let mut candidates: Vec<(u32, usize)> = self
                .dictionary
                .range::<str, _>((Bound::Excluded(token), Bound::Unbounded))
                .take_while(|(term, _)| term.starts_with(token))
                .take(PREFIX_SCAN_LIMIT)
                .filter(|(_, id)| self.df(**id) > 0)
                .map(|(_, &id)| (id, self.df(id)))
                .collect();
            candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let cap = if chars.len() <= 3 { MAX_SHORT_PREFIX_EXPANSIONS } else { MAX_PREFIX_EXPANSIONS };
            for (id, _) in candidates.into_iter().take(cap) {
                let full = self.term_text[id as usize].chars().count() as f32;
                // Closer to complete words count more.
                let weight = 0.5 + 0.4 * (chars.len() as f32 / full);
                out.push((id, weight));
            }
        }
        let typos = allowed_typos(chars.len());
        // While a word is typed, its completions are what is meant; fuzz only when there are none.
        if exact.is_none() && typos > 0 && out.is_empty() {
            out.extend(self.fuzzy(&chars, typos));
        }
        out
    }

    /// Words within `typos` edits of `chars`, found through shared trigrams.
    fn fuzzy(&self, chars: &[char], typos: usize) -> Vec<(u32, f32)> {
        let word: String = chars.iter().collect();
        let grams = trigrams_of(&word);
        // Dense counters: far cheaper than a map when common trigrams list thousands of words.
        let mut shared = vec![0u16; self.term_text.len()];
        let mut touched: Vec<u32> = Vec::new();
        for key in &grams {
            if let Some(terms) = self.trigrams.get(key) {
                for &t in terms {
                    let c = &mut shared[t as usize];
                    if *c == 0 {
                        touched.push(t);
                    }
                    *c += 1;
                }
            }
        }
        // Each edit destroys at most three trigrams.
        let needed = grams.len().saturating_sub(3 * typos).max(1) as u16;
        let mut found: Vec<(u32, usize)> = touched
            .into_iter()
            .map(|t| (t, shared[t as usize]))
            .filter(|&(t, n)| n >= needed && self.df(t) > 0)
            .filter_map(|(t, _)| {
                let other: Vec<char> = self.term_text[t as usize].chars().collect();
                let d = edit_distance(chars, &other, typos);
                (d <= typos && d > 0).then_some((t, d))
            })
            .collect();
        found.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(self.df(b.0).cmp(&self.df(a.0))));
        found.into_iter().take(MAX_FUZZY_EXPANSIONS).map(|(t, d)| (t, if d == 1 { 0.6 } else { 0.4 })).collect()
    }

    /// The best `limit` entries for a query, best first. The last word counts as a prefix when
    /// the query does not end in a space (the member is still typing it).
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let tokens = tokenize(query);
        if tokens.is_empty() || self.live == 0 || limit == 0 {
            return Vec::new();
        }
        let typing = query.chars().last().is_some_and(char::is_alphanumeric);
        let n = self.live as f32;
        let avg_len = (self.total_len / self.live as f64).max(1.0) as f32;
        let mut total = vec![0.0f32; self.docs.len()];
        let mut matched = vec![0u16; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut per_token = vec![0.0f32; self.docs.len()];
        let mut token_touched: Vec<u32> = Vec::new();
        let last = tokens.len() - 1;
        for (i, token) in tokens.iter().enumerate() {
            for (term, weight) in self.expand(token, typing && i == last) {
                let postings = &self.postings[term as usize];
                let df = postings.len() as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let scale = weight * idf * (K1 + 1.0);
                let base = K1 * (1.0 - B);
                let per_len = K1 * B / avg_len;
                // Postings only hold live slots (removal takes them out).
                for &(slot, tf) in postings {
                    let norm = base + per_len * self.lens[slot as usize];
                    let score = scale * tf / (tf + norm);
                    let s = &mut per_token[slot as usize];
                    if *s == 0.0 {
                        token_touched.push(slot);
                    }
                    // A word counts once per entry, through its best-matching expansion.
                    if score > *s {
                        *s = score;
                    }
                }
            }
            for slot in token_touched.drain(..) {
                let idx = slot as usize;
                if total[idx] == 0.0 {
                    touched.push(slot);
                }
                total[idx] += per_token[idx];
                matched[idx] += 1;
                per_token[idx] = 0.0;
            }
        }
        let words = tokens.len() as f32;
        let mut hits: Vec<(f32, u64, u32)> = touched
            .into_iter()
            .filter_map(|slot| {
                let doc = self.docs[slot as usize].as_ref()?;
                // Entries matching more of the query's words rank above partial matches.
                let coverage = f32::from(matched[slot as usize]) / words;
                Some((total[slot as usize] * (0.4 + 0.6 * coverage), doc.id, slot))
            })
            .collect();
        let order = |a: &(f32, u64, u32), b: &(f32, u64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        hits.into_iter()
            .filter_map(|(score, id, slot)| {
                let doc = self.docs[slot as usize].as_ref()?;
                Some(Hit { id, question: doc.question.clone(), score })
            })
            .collect()
    }

    /// Entries to suggest before anything is typed: pinned first, then the most recently updated.
    pub fn featured(&self, limit: usize) -> Vec<Listed> {
        let mut docs: Vec<&Doc> = self.docs.iter().flatten().collect();
        docs.sort_unstable_by(|a, b| {
            b.pinned.cmp(&a.pinned).then(b.updated_at.cmp(&a.updated_at)).then(a.id.cmp(&b.id))
        });
        docs.into_iter()
            .take(limit)
            .map(|d| Listed { id: d.id, question: d.question.clone(), pinned: d.pinned, updated_at: d.updated_at })
            .collect()
    }

    /// The listing of one entry, if indexed.
    pub fn get(&self, id: u64) -> Option<Listed> {
        let slot = *self.by_id.get(&id)?;
        let d = self.docs[slot as usize].as_ref()?;
        Some(Listed { id: d.id, question: d.question.clone(), pinned: d.pinned, updated_at: d.updated_at })
    }

    /// The newest `updated_at` among indexed entries.
    pub fn newest_update(&self) -> Option<i64> {
        self.docs.iter().flatten().map(|d| d.updated_at).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, question: &str, answer: &str, tags: &[&str]) -> FaqEntry {
        FaqEntry {
            guild_id: 1,
            id,
            question: question.into(),
            answer: answer.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            pinned: false,
            created_by: 1,
            updated_by: 1,
            created_at: id as i64,
            updated_at: id as i64,
            views: 0,
            deleted_at: None,
        }
    }

    fn sample() -> FaqIndex {
        FaqIndex::build(&[
            entry(
                1,
                "How do I reset my password?",
                "Open Settings, then Account, then click Reset password.",
                &["account", "login"],
            ),
            entry(2, "Where can I download the app?", "From the download page on our website.", &["install"]),
            entry(
                3,
                "How do refunds work?",
                "Refunds are paid within 5 days to the original payment method.",
                &["billing"],
            ),
            entry(
                4,
                "Can I change my username?",
                "Yes, once a month, in Account settings. Your password stays the same.",
                &["account"],
            ),
        ])
    }

    fn ids(hits: &[Hit]) -> Vec<u64> {
        hits.iter().map(|h| h.id).collect()
    }

    #[test]
    fn tokenizer_lowercases_and_drops_stopwords() {
        assert_eq!(tokenize("How do I reset MY Password?!"), vec!["reset", "password"]);
        assert_eq!(tokenize("2FA & e-mail"), vec!["2fa", "e", "mail"]);
        assert_eq!(normalize_term("  How  to PAY? "), "how to pay");
    }

    #[test]
    fn question_matches_outrank_answer_mentions() {
        let index = sample();
        let hits = index.search("password ", 5);
        assert_eq!(ids(&hits), vec![1, 4], "{hits:?}");
        assert!(hits[0].score > hits[1].score);
    }

    #[test]
    fn all_words_beat_some_words() {
        let index = sample();
        let hits = index.search("change username password ", 5);
        assert_eq!(hits.first().map(|h| h.id), Some(4), "{hits:?}");
    }

    #[test]
    fn typos_still_find_the_entry() {
        let index = sample();
        assert_eq!(ids(&index.search("pasword ", 5)).first(), Some(&1));
        assert_eq!(ids(&index.search("refnds", 5)).first(), Some(&3));
        assert_eq!(ids(&index.search("dowload app", 5)).first(), Some(&2));
        // Short words are not fuzzed: "app" must not match "pay" or the like.
        assert!(index.search("zzz", 5).is_empty());
    }

    #[test]
    fn the_word_being_typed_is_a_prefix() {
        let index = sample();
        assert_eq!(ids(&index.search("refu", 5)), vec![3]);
        assert_eq!(ids(&index.search("downl", 5)), vec![2]);
        // A finished short word is neither expanded nor fuzzed.
        assert!(index.search("ref ", 5).is_empty());
    }

    #[test]
    fn edits_and_removals_are_searchable_at_once() {
        let mut index = sample();
        let mut edited = entry(2, "Where can I get the mobile client?", "App store.", &[]);
        edited.updated_at = 99;
        index.upsert(&edited);
        assert!(index.search("download ", 5).is_empty());
        assert_eq!(ids(&index.search("mobile", 5)), vec![2]);
        assert!(index.remove(3));
        assert!(!index.remove(3));
        assert!(index.search("refunds", 5).is_empty());
        assert_eq!(index.len(), 3);
        let mut gone = entry(1, "x", "y", &[]);
        gone.deleted_at = Some(5);
        index.upsert(&gone);
        assert!(!index.contains(1));
        assert_eq!(index.featured(1)[0].id, 2, "most recently updated first");
    }

    #[test]
    fn pinned_entries_are_featured_first() {
        let mut entries = vec![entry(1, "a one", "x", &[]), entry(2, "b two", "y", &[])];
        entries[0].pinned = true;
        let index = FaqIndex::build(&entries);
        let featured: Vec<u64> = index.featured(5).iter().map(|l| l.id).collect();
        assert_eq!(featured, vec![1, 2]);
    }

    #[test]
    fn one_index_knows_only_its_entries() {
        let a = FaqIndex::build(&[entry(1, "Guild A secret handshake", "wave", &[])]);
        let b = FaqIndex::build(&[entry(1, "Guild B opening hours", "9 to 5", &[])]);
        assert!(b.search("handshake", 5).is_empty());
        assert!(a.search("hours", 5).is_empty());
        assert_eq!(ids(&a.search("handshake", 5)), vec![1]);
    }

    #[test]
    fn edit_distance_is_bounded() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&c("pasword"), &c("password"), 2), 1);
        assert_eq!(edit_distance(&c("pasword"), &c("psaword"), 2), 1);
        assert_eq!(edit_distance(&c("abc"), &c("xyz"), 1), 2);
        assert_eq!(edit_distance(&c("kitten"), &c("sitting"), 3), 3);
    }
}
