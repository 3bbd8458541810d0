//! How sure an extractive answer is: a score in `[0, 1]` for one retrieved passage, on one scale
//! whatever signals retrieval had.
//!
//! Fused retrieval scores rank passages within one query but say nothing across queries, so the
//! decision to answer uses absolute signals instead: how many of the question's content words the
//! passage (with its title and headings) contains and, when dense retrieval ran, the cosine
//! similarity of the passage to the question. Which signals exist depends on the retrieval
//! [`Mode`]; each mode's raw score has its own cut-off, chosen on evaluation data, and
//! [`confidence`] maps every mode's cut-off onto [`DEFAULT_THRESHOLD`], so one guild setting
//! means the same in every mode (an offline first start without the model included).

use std::collections::HashSet;

use beacon_kb::Hit;

use crate::i18n::Lang;

/// Answer at or above this confidence; below it, abstain and offer a human. Every mode's raw
/// score is calibrated so that its cut-off, chosen with `beacon eval DIR --negatives` on the
/// tuning half of the zaragoza FAQ and of the negatives, lands here (see BENCHMARKS.md).
pub const DEFAULT_THRESHOLD: f32 = 0.45;

/// Which signals a passage's confidence rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Dense similarity and query-term coverage (an embedding model is loaded).
    Hybrid,
    /// Query-term coverage alone (BM25 only: no model, e.g. an offline first start).
    Bm25,
}

impl Mode {
    /// The mode a retrieved passage was scored in.
    pub fn of(hit: &Hit) -> Mode {
        if hit.dense_score.is_some() { Mode::Hybrid } else { Mode::Bm25 }
    }

    /// The mode's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Bm25 => "bm25",
        }
    }

    /// The raw score at which this mode starts answering, chosen on the tuning split.
    pub fn cutoff(self) -> f32 {
        match self {
            Mode::Hybrid => HYBRID_CUTOFF,
            Mode::Bm25 => BM25_CUTOFF,
        }
    }
}

/// Raw cut-offs per mode, chosen by `beacon eval --negatives` on the tuning halves.
const HYBRID_CUTOFF: f32 = 0.45;
const BM25_CUTOFF: f32 = 0.5;

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "do", "does", "did", "for", "from", "get", "got",
    "have", "has", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "please",
    "should", "so", "that", "the", "their", "them", "there", "this", "to", "us", "was", "we", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your", "any", "there", "about", "need", "want", "know",
    "tell", "help", "hi", "hello", "hey", "thanks", "thank", "take", "takes",
];

/// Words that, after "how", ask for a quantity rather than name a topic ("how long", "how much").
const HOW_WORDS: &[&str] = &["long", "much", "many", "often", "soon", "far", "old", "big"];

/// Lower-cased content words, with a light plural strip so "refunds" meets "refund". The function
/// words of the text's language are dropped too, so a question in German is judged by its German
/// content words. Addresses (e-mail, links, mentions) are not content: "Mail me at
/// bob@example.com" says nothing about what the member asks.
pub fn content_terms(text: &str) -> Vec<String> {
    content_terms_in(text, Lang::detect(text).unwrap_or_default())
}

fn is_address(token: &str) -> bool {
    token.contains('@') || token.contains("://") || token.starts_with("www.") || token.starts_with('<')
}

fn content_terms_in(text: &str, lang: Lang) -> Vec<String> {
    let extra = lang.function_words();
    let mut out = Vec::new();
    let mut previous = String::new();
    for token in text.split_whitespace().filter(|t| !is_address(t)) {
        for w in token.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let w = w.to_lowercase();
            let after_how = previous == "how";
            previous.clone_from(&w);
            if w.chars().count() < 2
                || STOPWORDS.contains(&w.as_str())
                || extra.contains(&w.as_str())
                || (after_how && HOW_WORDS.contains(&w.as_str()))
            {
                continue;
            }
            out.push(stem(&w));
        }
    }
    out
}

fn stem(w: &str) -> String {
    for suffix in ["ing", "ies", "es", "s", "ed"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return base.to_owned();
        }
    }
    w.to_owned()
}

/// Share of the question's content words found in the passage.
pub fn coverage(question: &str, passage: &str) -> f32 {
    let lang = Lang::detect(question).unwrap_or_default();
    let p: HashSet<String> = content_terms_in(passage, lang).into_iter().collect();
    coverage_of(&content_terms_in(question, lang).into_iter().collect(), &p)
}

fn coverage_of(q: &HashSet<String>, p: &HashSet<String>) -> f32 {
    if q.is_empty() {
        return 0.0;
    }
    q.iter().filter(|t| p.contains(*t)).count() as f32 / q.len() as f32
}

/// Coverage for a message that may hold more than the question: the mean of the whole message's
/// coverage and its best sentence's, so a greeting, a signature or a second remark dilutes the
/// score less than it would the whole message's alone.
fn message_coverage(question: &str, passage: &str) -> f32 {
    let lang = Lang::detect(question).unwrap_or_default();
    let p: HashSet<String> = content_terms_in(passage, lang).into_iter().collect();
    let whole = coverage_of(&content_terms_in(question, lang).into_iter().collect(), &p);
    let best = sentences(question)
        .map(|s| content_terms_in(s, lang).into_iter().collect::<HashSet<_>>())
        .filter(|terms| !terms.is_empty())
        .map(|terms| coverage_of(&terms, &p))
        .fold(whole, f32::max);
    0.5 * (whole + best)
}

/// The sentences of a text: split after `.`, `?`, `!` and at line breaks.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '?', '!', '\n']).map(str::trim).filter(|s| !s.is_empty())
}

/// The uncalibrated score of `hit` in its [`Mode`]: query-term coverage, averaged with the dense
/// similarity (rescaled) when there is one.
pub fn raw_confidence(question: &str, hit: &Hit) -> (Mode, f32) {
    let passage = format!("{} {} {}", hit.title, hit.heading_path.join(" "), hit.text);
    let cov = message_coverage(question, &passage);
    match hit.dense_score {
        // all-MiniLM-L6-v2 cosines: unrelated text sits near 0.1, paraphrases above 0.6.
        Some(d) => (Mode::Hybrid, 0.5 * ((d - 0.15) / 0.45).clamp(0.0, 1.0) + 0.5 * cov),
        None => (Mode::Bm25, cov),
    }
}

/// Maps a raw score of `mode` onto the common scale: the mode's cut-off becomes
/// [`DEFAULT_THRESHOLD`], 0 and 1 stay where they are, linear in between.
pub fn calibrate(mode: Mode, raw: f32) -> f32 {
    let cut = mode.cutoff();
    let t = DEFAULT_THRESHOLD;
    let raw = raw.clamp(0.0, 1.0);
    if raw < cut { raw / cut * t } else { t + (raw - cut) / (1.0 - cut) * (1.0 - t) }
}

/// Confidence that `hit` answers `question`, calibrated for its retrieval mode.
pub fn confidence(question: &str, hit: &Hit) -> f32 {
    let (mode, raw) = raw_confidence(question, hit);
    calibrate(mode, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(title: &str, text: &str, dense: Option<f32>) -> Hit {
        Hit {
            chunk_id: 1,
            document_id: 1,
            document_key: "refunds.md".into(),
            title: title.into(),
            heading_path: vec![title.into()],
            text: text.into(),
            score: 1.0,
            bm25_score: Some(1.0),
            dense_score: dense,
            rerank_score: None,
        }
    }

    #[test]
    fn coverage_counts_content_words_only() {
        assert_eq!(coverage("How do I get a refund?", "Refunds are issued within 14 days."), 1.0);
        assert_eq!(coverage("What is the weather on Mars?", "Refunds are issued within 14 days."), 0.0);
        let half = coverage("reset password email", "To reset your password, open settings.");
        assert!((half - 2.0 / 3.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn questions_in_other_languages_are_judged_by_their_own_content_words() {
        let passage = "Du bekommst eine Rückerstattung innerhalb von 14 Tagen über die Bestellung.";
        assert_eq!(coverage("Wie bekomme ich eine Rückerstattung für meine Bestellung?", passage), 1.0);
        let es =
            coverage("¿Cómo puedo cambiar la contraseña de mi cuenta?", "Para cambiar la contraseña, abre Ajustes.");
        assert!((es - 2.0 / 3.0).abs() < 1e-6, "{es}");
    }

    #[test]
    fn a_question_of_stopwords_has_no_confidence() {
        assert_eq!(coverage("how do I?", "anything at all"), 0.0);
    }

    #[test]
    fn how_long_and_addresses_are_not_content() {
        assert_eq!(content_terms("How long do refunds take?"), ["refund"]);
        assert_eq!(content_terms("Mail me at bob@example.com or see https://x.io/a"), ["mail", "see"]);
        // "long" is content where it is not asked with "how".
        assert_eq!(content_terms("a long cable"), ["long", "cable"]);
    }

    #[test]
    fn obvious_matches_are_answered_in_every_mode() {
        let refunds = "Refunds are issued within 14 days.";
        for question in [
            "How long do refunds take?",
            "How do I get a refund?",
            "How do I get a refund? Mail me at bob@example.com",
            "When are refunds issued?",
        ] {
            for dense in [None, Some(0.55)] {
                let c = confidence(question, &hit("Refunds", refunds, dense));
                assert!(c >= DEFAULT_THRESHOLD, "{question} ({dense:?}): {c}");
            }
        }
    }

    #[test]
    fn out_of_scope_questions_abstain_in_every_mode() {
        let refunds = "Refunds are issued within 14 days.";
        for question in
            ["What is the weather on Mars?", "How do I reset my password?", "Can I bring my dog to the office?"]
        {
            for dense in [None, Some(0.12)] {
                let c = confidence(question, &hit("Refunds", refunds, dense));
                assert!(c < DEFAULT_THRESHOLD, "{question} ({dense:?}): {c}");
            }
        }
    }

    #[test]
    fn calibration_maps_each_cutoff_onto_the_threshold() {
        for mode in [Mode::Hybrid, Mode::Bm25] {
            assert!((calibrate(mode, mode.cutoff()) - DEFAULT_THRESHOLD).abs() < 1e-6);
            assert_eq!(calibrate(mode, 0.0), 0.0);
            assert!((calibrate(mode, 1.0) - 1.0).abs() < 1e-6);
            let steps: Vec<f32> = (0..=20).map(|i| calibrate(mode, i as f32 / 20.0)).collect();
            assert!(steps.windows(2).all(|w| w[0] < w[1]), "{mode:?} is increasing: {steps:?}");
        }
        assert_eq!(Mode::of(&hit("t", "x", None)), Mode::Bm25);
        assert_eq!(Mode::of(&hit("t", "x", Some(0.3))), Mode::Hybrid);
    }
}
