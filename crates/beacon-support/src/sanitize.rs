//! Normalising member text before anything else looks at it.

/// Characters that change nothing a reader sees but can hide text from filters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{00ad}'
    )
}

/// Removes invisible and control characters (keeping newlines and tabs), collapses runs of
/// spaces, trims, and caps the length at `max_chars` characters.
pub fn question(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut last_space = false;
    for c in text.chars() {
        if invisible(c) || (c.is_control() && c != '\n' && c != '\t') {
            continue;
        }
        let c = if c == '\t' { ' ' } else { c };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
    let trimmed = out.trim();
    trimmed.chars().take(max_chars).collect::<String>().trim_end().to_owned()
}

/// Removes a leading mention of the bot (`<@id>` or `<@!id>`) from a message that mentions it.
pub fn strip_bot_mention(text: &str, bot_id: u64) -> &str {
    let t = text.trim_start();
    for form in [format!("<@{bot_id}>"), format!("<@!{bot_id}>")] {
        if let Some(rest) = t.strip_prefix(form.as_str()) {
            return rest.trim_start_matches([',', ':', ' ']).trim_start();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_invisible_and_collapses_spaces() {
        assert_eq!(question("a\u{200b}b  \t c\u{0007}", 100), "ab c");
        assert_eq!(question("line one\nline two", 100), "line one\nline two");
    }

    #[test]
    fn caps_length_in_characters() {
        assert_eq!(question("ééééé", 3), "ééé");
    }

    #[test]
    fn strips_a_leading_bot_mention() {
        assert_eq!(strip_bot_mention("<@42> how?", 42), "how?");
        assert_eq!(strip_bot_mention("<@!42>: how?", 42), "how?");
        assert_eq!(strip_bot_mention("hey <@42>", 42), "hey <@42>");
    }

    proptest::proptest! {
        #[test]
        fn output_is_bounded_and_clean(s in "\\PC{0,300}", max in 1usize..200) {
            let q = question(&s, max);
            proptest::prop_assert!(q.chars().count() <= max);
            proptest::prop_assert!(!q.chars().any(invisible));
            proptest::prop_assert_eq!(question(&q, max), q.clone());
        }
    }
}
