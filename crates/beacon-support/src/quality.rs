//! The knowledge base's quality over a period, for `/support-stats`: how many questions were
//! answered and how many abstained on, the 👍/👎 of the answers each source's documents backed,
//! the documents no answer drew on and those retrieval never returned — and the gaps: the questions Beacon abstained on or that
//! got 👎, near-identical ones grouped, ranked by how often they come.

use std::collections::{BTreeMap, HashMap, HashSet};

use beacon_kb::store::DocumentChunks;

/// One recorded answer, as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerOutcome {
    /// `answered`, `abstained`, or a refusal (`rate_limited`, `refused`, `empty`).
    pub outcome: String,
    /// +1 for 👍, -1 for 👎, 0 for none.
    pub feedback: i64,
    /// The chunk ids the answer drew on.
    pub sources: Vec<i64>,
    /// The chunk ids retrieval returned for its question.
    pub retrieved: Vec<i64>,
}

/// Figures of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFigures {
    /// Answers that drew on the source's documents.
    pub answers: u64,
    /// 👍 on those answers.
    pub up: u64,
    /// 👎 on those answers.
    pub down: u64,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quality {
    /// Questions answered.
    pub answered: u64,
    /// Questions abstained on (handed to humans).
    pub abstained: u64,
    /// Per source, by name.
    pub sources: BTreeMap<String, SourceFigures>,
    /// Answers whose passages have been re-synced away since (their source is unknown now).
    pub unknown_source: u64,
    /// Documents (source, title) no answer drew on, in document order.
    pub never_used: Vec<(String, String)>,
    /// Documents (source, title) retrieval never returned for any question, in document order
    /// (a document re-synced with new text counts from its new passages).
    pub never_retrieved: Vec<(String, String)>,
}

impl Quality {
    /// Share of the questions Beacon took on (answered or abstained) that it answered, in percent.
    pub fn answered_rate(&self) -> Option<u64> {
        let asked = self.answered + self.abstained;
        (asked > 0).then(|| (self.answered * 100 + asked / 2) / asked)
    }

    /// Share of those questions it abstained on, in percent.
    pub fn abstention_rate(&self) -> Option<u64> {
        self.answered_rate().map(|r| 100 - r)
    }
}

/// The report of `answers` over the guild's current `documents`.
pub fn report(answers: &[AnswerOutcome], documents: &[DocumentChunks]) -> Quality {
    let mut by_chunk: HashMap<i64, usize> = HashMap::new();
    for (i, d) in documents.iter().enumerate() {
        for c in &d.chunk_ids {
            by_chunk.insert(*c, i);
        }
    }
    let mut q = Quality::default();
    let mut used: HashSet<usize> = HashSet::new();
    let retrieved: HashSet<usize> =
        answers.iter().flat_map(|a| a.retrieved.iter().filter_map(|c| by_chunk.get(c).copied())).collect();
    for a in answers {
        match a.outcome.as_str() {
            "answered" => q.answered += 1,
            "abstained" => q.abstained += 1,
            _ => continue,
        }
        let docs: HashSet<usize> = a.sources.iter().filter_map(|c| by_chunk.get(c).copied()).collect();
        if docs.is_empty() && !a.sources.is_empty() {
            q.unknown_source += 1;
        }
        let sources: HashSet<&str> = docs.iter().map(|i| documents[*i].source.as_str()).collect();
        for source in sources {
            let f = q.sources.entry(source.to_owned()).or_default();
            f.answers += 1;
            f.up += u64::from(a.feedback > 0);
            f.down += u64::from(a.feedback < 0);
        }
        used.extend(docs);
    }
    q.never_used = documents
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, d)| (d.source.clone(), d.title.clone()))
        .collect();
    q.never_retrieved = documents
        .iter()
        .enumerate()
        .filter(|(i, _)| !retrieved.contains(i))
        .map(|(_, d)| (d.source.clone(), d.title.clone()))
        .collect();
    q
}

/// A question as the gaps report groups it: lower-cased, punctuation and whitespace folded
/// ("How do I get a REFUND??" and "how do i get a refund" are one question).
pub fn normalize(question: &str) -> String {
    question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One recorded gap, as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapEvent {
    /// A 👎 (else an abstention).
    pub down: bool,
    /// The question, normalised (see [`normalize`]).
    pub normalized: String,
    /// The question as asked, PII-redacted.
    pub question: String,
}

/// One question of the gaps report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The question as most recently asked (PII-redacted).
    pub question: String,
    /// Times Beacon abstained on it.
    pub abstained: u64,
    /// Times its answer got 👎.
    pub down: u64,
}

impl Gap {
    /// How often it came.
    pub fn count(&self) -> u64 {
        self.abstained + self.down
    }
}

/// The gaps of `events` (newest first), most frequent first; ties keep the most recent first.
pub fn gaps(events: &[GapEvent]) -> Vec<Gap> {
    let mut order: Vec<&str> = Vec::new();
    let mut by: HashMap<&str, Gap> = HashMap::new();
    for e in events.iter().filter(|e| !e.normalized.is_empty()) {
        let gap = by.entry(&e.normalized).or_insert_with(|| {
            order.push(&e.normalized);
            Gap { question: e.question.clone(), abstained: 0, down: 0 }
        });
        if e.down {
            gap.down += 1;
        } else {
            gap.abstained += 1;
        }
    }
    let mut out: Vec<Gap> = order.iter().filter_map(|n| by.remove(n)).collect();
    // A stable sort keeps first-seen (most recent) order among equal counts.
    out.sort_by_key(|g| std::cmp::Reverse(g.count()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(down: bool, question: &str) -> GapEvent {
        GapEvent { down, normalized: normalize(question), question: question.into() }
    }

    #[test]
    fn gaps_group_near_identical_questions_and_rank_by_frequency() {
        assert_eq!(normalize("  How do I get a REFUND?? "), "how do i get a refund");
        assert_eq!(normalize("how-do i\tget a refund"), "how do i get a refund");
        // Newest first, as the repository returns them.
        let events = vec![
            gap(false, "What about Mars?"),
            gap(true, "How do I get a REFUND??"),
            gap(false, "how do i get a refund"),
            gap(false, "Can I pay in gold?"),
            gap(false, "How do I get a refund"),
            gap(false, "!!!"),
        ];
        let ranked = gaps(&events);
        assert_eq!(
            ranked,
            vec![
                Gap { question: "How do I get a REFUND??".into(), abstained: 2, down: 1 },
                Gap { question: "What about Mars?".into(), abstained: 1, down: 0 },
                Gap { question: "Can I pay in gold?".into(), abstained: 1, down: 0 },
            ]
        );
        assert_eq!(ranked[0].count(), 3);
    }

    fn doc(id: i64, source: &str, title: &str, chunks: &[i64]) -> DocumentChunks {
        DocumentChunks { id, source: source.into(), key: title.into(), title: title.into(), chunk_ids: chunks.to_vec() }
    }

    fn answer(outcome: &str, feedback: i64, sources: &[i64]) -> AnswerOutcome {
        AnswerOutcome { outcome: outcome.into(), feedback, sources: sources.to_vec(), retrieved: sources.to_vec() }
    }

    #[test]
    fn rates_feedback_per_source_and_unused_documents() {
        let docs = vec![
            doc(1, "docs", "Refunds", &[10, 11]),
            doc(2, "docs", "Account", &[20]),
            doc(3, "faq", "Opening hours", &[30]),
            doc(4, "faq", "Webhooks", &[]),
        ];
        let answers = vec![
            answer("answered", 1, &[10]),
            answer("answered", -1, &[11, 30]),
            answer("answered", 0, &[99]),
            answer("abstained", -1, &[]),
            answer("rate_limited", 0, &[]),
        ];
        let q = report(&answers, &docs);
        assert_eq!((q.answered, q.abstained, q.unknown_source), (3, 1, 1));
        assert_eq!((q.answered_rate(), q.abstention_rate()), (Some(75), Some(25)));
        assert_eq!(q.sources["docs"], SourceFigures { answers: 2, up: 1, down: 1 });
        assert_eq!(q.sources["faq"], SourceFigures { answers: 1, up: 0, down: 1 });
        assert_eq!(
            q.never_used,
            vec![("docs".to_owned(), "Account".to_owned()), ("faq".to_owned(), "Webhooks".to_owned())]
        );
        assert_eq!(report(&[], &[]).answered_rate(), None);
        // Retrieved but not drawn on is not "never retrieved"; an abstention retrieves too.
        let mut answers = answers;
        answers[0].retrieved = vec![10, 20];
        answers[3].retrieved = vec![30];
        let q = report(&answers, &docs);
        assert_eq!(
            q.never_used,
            vec![("docs".to_owned(), "Account".to_owned()), ("faq".to_owned(), "Webhooks".to_owned())]
        );
        assert_eq!(q.never_retrieved, vec![("faq".to_owned(), "Webhooks".to_owned())]);
    }
}
