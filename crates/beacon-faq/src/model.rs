//! The FAQ's data: entries, what staff type into the form, and change notifications.

use crate::error::FaqError;

/// Longest question (Discord shows questions as choice names and embed titles).
pub const MAX_QUESTION_CHARS: usize = 200;
/// Longest answer (fits one embed description).
pub const MAX_ANSWER_CHARS: usize = 4000;
/// Most tags per entry.
pub const MAX_TAGS: usize = 10;
/// Longest tag.
pub const MAX_TAG_CHARS: usize = 32;

/// One FAQ entry of one guild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaqEntry {
    /// The guild that owns the entry.
    pub guild_id: u64,
    /// Small per-guild number shown to members (`#12`); never reused within a guild.
    pub id: u64,
    /// The question, as members search for it.
    pub question: String,
    /// The answer (markdown).
    pub answer: String,
    /// Lower-case tags, in the order given.
    pub tags: Vec<String>,
    /// Pinned entries are listed and suggested first.
    pub pinned: bool,
    /// Who created the entry (user id).
    pub created_by: u64,
    /// Who changed it last (user id).
    pub updated_by: u64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; also set when the entry is removed.
    pub updated_at: i64,
    /// How often it was viewed.
    pub views: u64,
    /// Set (unix ms) when removed. Only [`crate::FaqRepo::entries_since`] returns removed entries,
    /// so consumers such as the knowledge base can drop them.
    pub deleted_at: Option<i64>,
}

/// The editable part of an entry, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInput {
    /// The question.
    pub question: String,
    /// The answer (markdown).
    pub answer: String,
    /// Lower-case tags, without duplicates.
    pub tags: Vec<String>,
    /// Whether the entry is listed and suggested first.
    pub pinned: bool,
}

impl EntryInput {
    /// Trims the texts, normalises the tags and checks the limits; errors say what to fix.
    pub fn new(question: &str, answer: &str, tags: &[String], pinned: bool) -> Result<EntryInput, FaqError> {
        let question = question.trim().to_owned();
        let answer = answer.trim().to_owned();
        if question.is_empty() {
            return Err(FaqError::Invalid("The question is empty.".into()));
        }
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(FaqError::Invalid(format!("The question is longer than {MAX_QUESTION_CHARS} characters.")));
        }
        if answer.is_empty() {
            return Err(FaqError::Invalid("The answer is empty.".into()));
        }
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Err(FaqError::Invalid(format!("The answer is longer than {MAX_ANSWER_CHARS} characters.")));
        }
        let mut clean: Vec<String> = Vec::new();
        for tag in tags {
            let tag = normalize_tag(tag);
            if tag.is_empty() || clean.contains(&tag) {
                continue;
            }
            if tag.chars().count() > MAX_TAG_CHARS {
                return Err(FaqError::Invalid(format!("The tag `{tag}` is longer than {MAX_TAG_CHARS} characters.")));
            }
            clean.push(tag);
        }
        if clean.len() > MAX_TAGS {
            return Err(FaqError::Invalid(format!("An entry can have at most {MAX_TAGS} tags.")));
        }
        Ok(EntryInput { question, answer, tags: clean, pinned })
    }
}

/// Lower-case, trimmed, inner whitespace collapsed; commas (the separator) removed.
fn normalize_tag(tag: &str) -> String {
    tag.replace(',', " ").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Splits a comma-separated tag list as typed in the form or stored in CSV.
pub fn split_tags(text: &str) -> Vec<String> {
    text.split(',').map(normalize_tag).filter(|t| !t.is_empty()).collect()
}

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new entry.
    Added,
    /// An entry's question, answer, tags or pin changed.
    Updated,
    /// An entry was removed.
    Removed,
}

/// Announced on [`crate::FaqRepo::subscribe`] after a change is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaqChanged {
    /// The guild of the entry.
    pub guild_id: u64,
    /// The entry's per-guild number.
    pub entry_id: u64,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// A search term that found nothing, from `/faq gaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Normalised term (lower-case words).
    pub term: String,
    /// How many searches for it found nothing.
    pub searches: u64,
    /// Unix ms of the latest such search.
    pub last_at: i64,
}

/// One logged search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedSearch {
    /// Normalised term, personal data redacted.
    pub term: String,
    /// How many entries it found (0: a gap).
    pub hits: u64,
    /// Unix ms.
    pub at: i64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries created.
    pub added: usize,
    /// Entries replaced.
    pub updated: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_trimmed_and_tags_normalised() {
        let input = EntryInput::new("  Q?  ", " A ", &split_tags(" Billing , billing,  Two   Words ,,"), true).unwrap();
        assert_eq!(input.question, "Q?");
        assert_eq!(input.answer, "A");
        assert_eq!(input.tags, vec!["billing", "two words"]);
    }

    #[test]
    fn limits_are_explained() {
        let err = EntryInput::new(" ", "a", &[], false).unwrap_err();
        assert!(err.to_string().contains("question is empty"));
        let long = "x".repeat(MAX_ANSWER_CHARS + 1);
        let err = EntryInput::new("q", &long, &[], false).unwrap_err();
        assert!(err.to_string().contains("longer than 4000"));
        let tags: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert!(EntryInput::new("q", "a", &tags, false).is_err());
    }
}
