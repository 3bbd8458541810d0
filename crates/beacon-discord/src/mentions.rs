//! Keeping generated text from pinging anyone.
//!
//! Two layers: [`none`] is sent as `allowed_mentions` with every message (so
//! Discord never notifies), and [`defuse`] rewrites the text itself so that a
//! mention copied elsewhere, or sent through a path that forgot the first
//! layer, still cannot ping.

use twilight_model::channel::message::AllowedMentions;

/// Zero-width joiner inserted after `@` to break mention syntax invisibly.
const ZWJ: char = '\u{200D}';

/// AllowedMentions that pings no one — the default for all generated text.
pub fn none() -> AllowedMentions {
    AllowedMentions { parse: Vec::new(), replied_user: false, roles: Vec::new(), users: Vec::new() }
}

/// Neutralises `@everyone`, `@here`, and user/role mentions (`<@id>`,
/// `<@!id>`, `<@&id>`) by inserting a zero-width joiner after the `@`.
///
/// Other `@`s (e-mail addresses, plain "@name" text, which Discord does not
/// resolve) are left alone. The function is idempotent.
pub fn defuse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        out.push(c);
        if c == '@' {
            let rest = &text[i + 1..];
            let mass = starts_with_ignore_ascii_case(rest, "everyone") || starts_with_ignore_ascii_case(rest, "here");
            let already = rest.starts_with(ZWJ);
            if !already && (mass || prev == Some('<')) {
                out.push(ZWJ);
            }
        }
        prev = Some(c);
    }
    out
}

fn starts_with_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack.get(..needle.len()).is_some_and(|head| head.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_allows_nothing() {
        let m = none();
        assert!(m.parse.is_empty() && m.roles.is_empty() && m.users.is_empty());
        assert!(!m.replied_user);
        // Serialised form must carry an explicit empty `parse`, otherwise
        // Discord falls back to its default (ping everything in the content).
        let json = serde_json::to_value(&m).expect("serialise");
        assert_eq!(json, serde_json::json!({ "parse": [] }));
    }

    #[test]
    fn defuses_mass_mentions() {
        assert_eq!(defuse("hi @everyone!"), "hi @\u{200D}everyone!");
        assert_eq!(defuse("@here"), "@\u{200D}here");
        assert_eq!(defuse("@EveryOne"), "@\u{200D}EveryOne");
    }

    #[test]
    fn defuses_user_and_role_mentions() {
        assert_eq!(defuse("<@123>"), "<@\u{200D}123>");
        assert_eq!(defuse("<@!123>"), "<@\u{200D}!123>");
        assert_eq!(defuse("ping <@&456> now"), "ping <@\u{200D}&456> now");
    }

    #[test]
    fn leaves_other_text_alone() {
        for s in ["mail me at a@b.com", "@someone", "<#123> channel", "</help:1>", "héllo @", ""] {
            assert_eq!(defuse(s), s);
        }
    }

    #[test]
    fn is_idempotent() {
        let once = defuse("@everyone <@1> <@&2> @here");
        assert_eq!(defuse(&once), once);
        assert!(!once.contains("@everyone") && !once.contains("<@1>"));
    }
}
