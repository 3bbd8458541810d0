//! The last check before generated text is posted: no mass or role pings, no secrets, a length
//! limit. What was changed is reported (for the audit log), never the text itself.

use std::sync::LazyLock;

use regex::Regex;

/// Text after the guard, and what the guard did to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// The text to post.
    pub text: String,
    /// Whether `@everyone`, `@here` or mentions were defused.
    pub defused_mentions: bool,
    /// How many secrets (tokens, keys) were replaced.
    pub redacted_secrets: usize,
    /// Whether the text was cut to the length limit.
    pub truncated: bool,
}

static SECRETS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // Discord bot tokens: base64 user id . timestamp . hmac.
        r"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}",
        // OpenAI / Anthropic / xAI style keys.
        r"\bsk-(ant-)?[A-Za-z0-9_-]{20,}",
        r"\bxai-[A-Za-z0-9]{20,}",
        // Google API keys.
        r"\bAIza[0-9A-Za-z_-]{35}",
        // AWS access key ids.
        r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
        // GitHub and Slack tokens.
        r"\bgh[pousr]_[A-Za-z0-9]{36,}",
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        // PEM private keys.
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        // `password: hunter2`-style assignments: the value goes.
        r"(?i)\b(api[_-]?key|secret|password|passwd|token|bearer)\b\s*[:=]\s*[^\s,;]{8,}",
    ]
    .iter()
    .map(|re| Regex::new(re).unwrap_or_else(|e| panic!("secret pattern {re}: {e}")))
    .collect()
});

/// Redacts secrets, defuses mentions and caps the length at `max_chars`.
pub fn output(text: &str, max_chars: usize) -> Guarded {
    let mut redacted = 0;
    let mut t = text.to_owned();
    for re in SECRETS.iter() {
        let n = re.find_iter(&t).count();
        if n > 0 {
            redacted += n;
            t = re.replace_all(&t, "[redacted]").into_owned();
        }
    }
    let defused = beacon_discord::mentions::defuse(&t);
    let defused_mentions = defused != t;
    let truncated = defused.chars().count() > max_chars;
    let text = if truncated {
        let mut s: String = defused.chars().take(max_chars.saturating_sub(1)).collect();
        s.push('…');
        s
    } else {
        defused
    };
    Guarded { text, defused_mentions, redacted_secrets: redacted, truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let g = output(
            "token MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123 and sk-ant-abcdefghijklmnopqrstuv and password: hunter22!",
            2000,
        );
        assert_eq!(g.redacted_secrets, 3, "{g:?}");
        assert!(!g.text.contains("hunter22") && !g.text.contains("sk-ant"), "{}", g.text);
    }

    #[test]
    fn mass_and_role_pings_are_defused() {
        let g = output("hello @everyone and @here and <@&123>", 2000);
        assert!(g.defused_mentions);
        assert!(!g.text.contains("@everyone") && !g.text.contains("<@&123>"), "{}", g.text);
    }

    #[test]
    fn long_text_is_cut() {
        let g = output(&"a".repeat(50), 10);
        assert!(g.truncated);
        assert_eq!(g.text.chars().count(), 10);
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let t = "Open Settings > Account, then press Reset password.";
        assert_eq!(output(t, 2000).text, t);
    }
}
