//! How sure an extractive answer is: a scale-free score in `[0, 1]` for one retrieved passage.
//!
//! Fused retrieval scores rank passages within one query but say nothing across queries, so the
//! decision to answer uses two absolute signals instead: how many of the question's content words
//! the passage (with its title and headings) contains, and, when dense retrieval ran, the cosine
//! similarity of the passage to the question.

use std::collections::HashSet;

use beacon_kb::Hit;

use crate::i18n::Lang;

/// Answer at or above this confidence; below it, abstain and offer a human. Calibrated with
/// `beacon eval DIR --negatives` on the zaragoza FAQ (503 in-corpus questions) and 138 unrelated
/// support questions: with all-MiniLM-L6-v2, 0.45 answers 95.6% and abstains on 96.4% (see
/// BENCHMARKS.md).
pub const DEFAULT_THRESHOLD: f32 = 0.45;

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "do", "does", "did", "for", "from", "get", "got",
    "have", "has", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "please",
    "should", "so", "that", "the", "their", "them", "there", "this", "to", "us", "was", "we", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your", "any", "there", "about", "need", "want", "know",
    "tell", "help", "hi", "hello", "hey", "thanks", "thank",
];

/// Lower-cased content words, with a light plural strip so "refunds" meets "refund". The function
/// words of the text's language are dropped too, so a question in German is judged by its German
/// content words (English questions are judged exactly as the threshold was calibrated).
pub fn content_terms(text: &str) -> Vec<String> {
    content_terms_in(text, Lang::detect(text).unwrap_or_default())
}

fn content_terms_in(text: &str, lang: Lang) -> Vec<String> {
    let extra = lang.function_words();
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()) && !extra.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
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
    let q: HashSet<String> = content_terms_in(question, lang).into_iter().collect();
    if q.is_empty() {
        return 0.0;
    }
    let p: HashSet<String> = content_terms_in(passage, lang).into_iter().collect();
    q.iter().filter(|t| p.contains(*t)).count() as f32 / q.len() as f32
}

/// Confidence that `hit` answers `question`.
pub fn confidence(question: &str, hit: &Hit) -> f32 {
    let passage = format!("{} {} {}", hit.title, hit.heading_path.join(" "), hit.text);
    let cov = coverage(question, &passage);
    match hit.dense_score {
        // all-MiniLM-L6-v2 cosines: unrelated text sits near 0.1, paraphrases above 0.6.
        Some(d) => 0.5 * ((d - 0.15) / 0.45).clamp(0.0, 1.0) + 0.5 * cov,
        None => cov,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
