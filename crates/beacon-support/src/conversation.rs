//! A member's conversation with Beacon in one place (a thread Beacon opened, a channel, `/ask`'s
//! channel): the last turns of both sides, the context for retrieval and for the LLM.
//!
//! A conversation is keyed by where it continues: the first question of a support channel is
//! answered in the thread Beacon opens for it, so it is remembered under that thread, where the
//! follow-ups come.

use beacon_kb::Hit;
use serde::{Deserialize, Serialize};

use crate::confidence::{confidence, content_terms, coverage};

/// Longest text of one remembered turn, in characters (an answer is cut, a question is already
/// shorter than this).
pub const MAX_TURN: usize = 800;

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The member who asks.
    Member,
    /// Beacon's answer (or its abstention).
    Beacon,
    /// Staff (in a ticket a draft is asked for).
    Staff,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// Who spoke.
    pub who: Speaker,
    /// What was said (a remembered answer is cut at [`MAX_TURN`]).
    pub text: String,
}

impl Turn {
    /// A member's question.
    pub fn member(text: &str) -> Turn {
        Turn { who: Speaker::Member, text: cut(text) }
    }

    /// Beacon's answer.
    pub fn beacon(text: &str) -> Turn {
        Turn { who: Speaker::Beacon, text: cut(text) }
    }

    /// A staff member's message.
    pub fn staff(text: &str) -> Turn {
        Turn { who: Speaker::Staff, text: cut(text) }
    }
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TURN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The conversation after one more exchange, keeping the last `exchanges` question–answer pairs
/// (both sides).
pub fn remember(mut history: Vec<Turn>, question: &str, answer: &str, exchanges: usize) -> Vec<Turn> {
    history.push(Turn::member(question));
    history.push(Turn::beacon(answer));
    let keep = exchanges.saturating_mul(2);
    let skip = history.len().saturating_sub(keep);
    history.into_iter().skip(skip).collect()
}

/// The query a short follow-up ("and for Windows?") is searched with: the member's previous
/// question and this one. `None` when the question stands on its own (three content words or
/// more) or there is no earlier question.
pub fn follow_up_query(history: &[Turn], question: &str) -> Option<String> {
    if content_terms(question).len() >= 3 {
        return None;
    }
    let previous = history.iter().rev().find(|t| t.who == Speaker::Member)?;
    Some(format!("{} {question}", previous.text))
}

/// The passage, among `hits` retrieved for the follow-up query `combined`, that answers the
/// conversation, with its confidence: the most confident for `combined` (at least `threshold`) of
/// those holding every content word of the follow-up `question` itself (so "and for Windows?"
/// after a macOS question finds the Windows passage, and a new short question is never answered
/// with the previous topic's passage). Returns its position in `hits`.
pub fn in_context(hits: &[Hit], combined: &str, question: &str, threshold: f32) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, hit) in hits.iter().enumerate() {
        let passage = format!("{} {} {}", hit.title, hit.heading_path.join(" "), hit.text);
        let conf = confidence(combined, hit);
        if conf >= threshold && coverage(question, &passage) >= 1.0 && best.is_none_or(|(_, b)| conf > b) {
            best = Some((i, conf));
        }
    }
    best
}

/// The position of the first hit whose title is `question` itself (the same words, whatever the
/// case and punctuation): an FAQ entry or a staff correction written for it.
pub fn titled_with(hits: &[Hit], question: &str) -> Option<usize> {
    let words = |text: &str| -> String {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let asked = words(question);
    if content_terms(question).is_empty() {
        return None;
    }
    hits.iter().position(|h| words(&h.title) == asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(title: &str, heading: &str, text: &str) -> Hit {
        Hit {
            chunk_id: 1,
            document_id: 1,
            document_key: "app.md".into(),
            title: title.into(),
            heading_path: vec![title.into(), heading.into()],
            text: text.into(),
            score: 1.0,
            bm25_score: Some(1.0),
            dense_score: None,
            rerank_score: None,
        }
    }

    #[test]
    fn both_sides_are_remembered_and_the_oldest_exchanges_forgotten() {
        let mut h = Vec::new();
        for i in 0..4 {
            h = remember(h, &format!("q{i}"), &format!("a{i}"), 2);
        }
        assert_eq!(h, vec![Turn::member("q2"), Turn::beacon("a2"), Turn::member("q3"), Turn::beacon("a3")]);
        assert!(remember(Vec::new(), "q", "a", 0).is_empty());
        let long = "x".repeat(MAX_TURN + 10);
        assert_eq!(Turn::beacon(&long).text.chars().count(), MAX_TURN + 1);
    }

    #[test]
    fn a_short_follow_up_is_searched_with_the_previous_question() {
        let h = vec![Turn::member("How do I uninstall the app on macOS?"), Turn::beacon("Drag it to the bin.")];
        assert_eq!(
            follow_up_query(&h, "and for Windows?").as_deref(),
            Some("How do I uninstall the app on macOS? and for Windows?")
        );
        assert_eq!(follow_up_query(&h, "How do I install the desktop app on Linux?"), None);
        assert_eq!(follow_up_query(&[], "and for Windows?"), None);
    }

    #[test]
    fn a_passage_titled_with_the_question_is_found() {
        let hits = vec![
            hit("Refunds", "Refunds", "You can get a refund within 14 days."),
            hit("How do I get a refund?", "How do I get a refund?", "Write to billing."),
        ];
        assert_eq!(titled_with(&hits, "how do I get a refund"), Some(1));
        assert_eq!(titled_with(&hits, "refunds?"), Some(0));
        assert_eq!(titled_with(&hits, "How do I get a refund for my order?"), None);
        assert_eq!(titled_with(&hits, "how?"), None);
    }

    #[test]
    fn the_passage_in_context_holds_the_follow_ups_own_words() {
        let hits = vec![
            hit("Desktop app", "Uninstalling on macOS", "Uninstall by dragging the app to the bin."),
            hit("Desktop app", "Installing on Windows", "Run the installer."),
            hit("Desktop app", "Uninstalling on Windows", "Uninstall it under Apps and features."),
        ];
        let combined = "How do I uninstall the app on macOS? and for Windows?";
        assert_eq!(in_context(&hits, combined, "and for Windows?", 0.45).map(|(i, _)| i), Some(2));
        // A new short question that the conversation does not help: no passage in context.
        assert_eq!(in_context(&hits, "How do I uninstall the app on macOS? refunds?", "refunds?", 0.45), None);
    }
}
