//! The part of a passage an extractive answer quotes: the run of sentences that answers the
//! question best, rather than the whole chunk.

use std::collections::HashSet;

use crate::confidence::content_terms;

/// Passages up to this many characters are quoted whole.
pub const SHORT_PASSAGE: usize = 320;

/// Longest span quoted from a longer passage, in characters.
pub const MAX_SPAN: usize = 420;

/// Sentences in a span at most.
const MAX_SENTENCES: usize = 3;

/// A quoted span of a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The quoted text, as written in the passage.
    pub text: String,
    /// Text of the passage comes before the span.
    pub cut_before: bool,
    /// Text of the passage comes after the span.
    pub cut_after: bool,
}

/// Sentence pieces of `text` with their byte ranges: split after `.`, `?` or `!` followed by
/// white space, and at line breaks (list items and headings are pieces of their own).
fn pieces(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        let end = match c {
            '\n' => Some(i),
            '.' | '?' | '!' if next_is_space => Some(i + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            if !text[start..end].trim().is_empty() {
                out.push((start, end));
            }
            start = i + c.len_utf8();
        }
    }
    if !text[start..].trim().is_empty() {
        out.push((start, text.len()));
    }
    out
}

/// The best span of `passage` for `question`: the passage itself when it is short or holds code;
/// otherwise the run of at most three consecutive sentences (within [`MAX_SPAN`] characters) that
/// contains the most of the question's content words, the earliest of equals.
pub fn best_span(question: &str, passage: &str) -> Span {
    let passage = passage.trim();
    let whole = || Span { text: passage.to_owned(), cut_before: false, cut_after: false };
    if passage.chars().count() <= SHORT_PASSAGE || passage.contains("```") {
        return whole();
    }
    let wanted: HashSet<String> = content_terms(question).into_iter().collect();
    let pieces = pieces(passage);
    let terms: Vec<HashSet<String>> =
        pieces.iter().map(|(a, b)| content_terms(&passage[*a..*b]).into_iter().collect()).collect();
    let mut best: Option<(usize, usize, usize)> = None; // (matched, first, last)
    for first in 0..pieces.len() {
        let mut found: HashSet<&String> = HashSet::new();
        for last in first..pieces.len().min(first + MAX_SENTENCES) {
            let len = passage[pieces[first].0..pieces[last].1].chars().count();
            if len > MAX_SPAN && last > first {
                break;
            }
            found.extend(terms[last].iter().filter(|t| wanted.contains(*t)));
            let matched = found.len();
            // More matched words win; among equals, the span of fewer sentences, then the
            // earlier one (the loops run from the start, so a tie keeps the first found).
            if best.is_none_or(|(m, f, l)| matched > m || (matched == m && last - first < l - f)) {
                best = Some((matched, first, last));
            }
        }
    }
    match best {
        Some((matched, first, last)) if matched > 0 => {
            let (from, to) = (pieces[first].0, pieces[last].1);
            let mut text = passage[from..to].trim().to_owned();
            if text.chars().count() > MAX_SPAN {
                text = text.chars().take(MAX_SPAN).collect::<String>().trim_end().to_owned();
                return Span { text, cut_before: first > 0, cut_after: true };
            }
            Span { text, cut_before: first > 0, cut_after: to < passage.len() && !passage[to..].trim().is_empty() }
        }
        // Nothing matched word for word (a dense match): the passage's opening.
        _ => {
            let (from, mut to) = (0, 0);
            for (_, b) in &pieces {
                if passage[from..*b].chars().count() > MAX_SPAN && to > 0 {
                    break;
                }
                to = *b;
            }
            let mut text = passage[from..to].trim().to_owned();
            if text.chars().count() > MAX_SPAN {
                text = text.chars().take(MAX_SPAN).collect::<String>().trim_end().to_owned();
            }
            Span { text, cut_before: false, cut_after: true }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "Our shop ships worldwide from the warehouse in Lyon. Orders placed before noon leave the same day. \
        Tracking numbers arrive by e-mail once the parcel is handed to the carrier. \
        Refunds are issued within 14 days of receiving the returned item. \
        Returned items must be unused and in their original packaging. \
        Gift cards cannot be exchanged for cash. Customs fees outside the EU are paid by the recipient.";

    #[test]
    fn a_short_passage_is_quoted_whole() {
        let s = best_span("How long do refunds take?", "Refunds are issued within 14 days.");
        assert_eq!(s, Span { text: "Refunds are issued within 14 days.".into(), cut_before: false, cut_after: false });
    }

    #[test]
    fn a_long_passage_is_quoted_at_the_sentences_that_answer() {
        let s = best_span("How long do refunds take?", LONG);
        assert!(s.text.starts_with("Refunds are issued within 14 days"), "{s:?}");
        assert!(!s.text.contains("warehouse") && !s.text.contains("Customs"), "{s:?}");
        assert!(s.cut_before && s.cut_after);
        assert!(s.text.chars().count() <= MAX_SPAN);
        let s = best_span("Do you ship to Lyon, and when do orders leave?", LONG);
        assert!(s.text.starts_with("Our shop ships worldwide"), "{s:?}");
        assert!(!s.cut_before && s.cut_after);
    }

    #[test]
    fn code_and_unmatched_questions_keep_the_opening() {
        let code = format!("{LONG}\n```sh\nbeacon ingest docs\n```");
        assert_eq!(best_span("refunds", &code).text, code.trim());
        let s = best_span("zzz qqq", LONG);
        assert!(s.text.starts_with("Our shop ships") && s.cut_after && !s.cut_before, "{s:?}");
        assert!(s.text.chars().count() <= MAX_SPAN);
    }

    #[test]
    fn pieces_split_sentences_and_lines_not_decimals() {
        let t = "Version 2.5 is out. Really?\n- item one\n- item two";
        let got: Vec<&str> = pieces(t).iter().map(|(a, b)| t[*a..*b].trim()).collect();
        assert_eq!(got, ["Version 2.5 is out.", "Really?", "- item one", "- item two"]);
    }
}
