//! Redaction of personal data (e-mail addresses, phone numbers, card numbers, IP addresses) from
//! anything Beacon echoes into logs, audit records or stored search terms, or hands to an LLM.
//! A library, so every feature redacts the same way without depending on another feature.
//!
//! ```
//! assert_eq!(beacon_pii::redact("write to jane@example.com"), "write to [email]");
//! ```

use std::sync::LazyLock;

use regex::Regex;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"));
static CARD: LazyLock<Regex> = LazyLock::new(|| compile(r"\b(?:\d[ -]?){12,18}\d\b"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?"));
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"));

fn compile(re: &str) -> Regex {
    Regex::new(re).unwrap_or_else(|e| panic!("pii pattern {re}: {e}"))
}

fn luhn(digits: &str) -> bool {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 1 { (d * 2).div_euclid(10) + (d * 2) % 10 } else { *d })
        .sum();
    sum.is_multiple_of(10)
}

/// Replaces personal data with placeholders (`[email]`, `[card]`, `[phone]`, `[ip]`).
pub fn redact(text: &str) -> String {
    let t = EMAIL.replace_all(text, "[email]");
    let t =
        CARD.replace_all(&t, |c: &regex::Captures<'_>| if luhn(&c[0]) { "[card]".to_owned() } else { c[0].to_owned() });
    let t = IPV4.replace_all(&t, "[ip]");
    PHONE.replace_all(&t, "[phone]").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_replaced() {
        let r =
            redact("mail me at jane.doe@example.com or call +1 415-555-0134, card 4111 1111 1111 1111 from 10.0.0.12");
        assert_eq!(r, "mail me at [email] or call [phone], card [card] from [ip]");
    }

    #[test]
    fn ordinary_numbers_stay() {
        assert_eq!(
            redact("version 2.1 released in 2024 with 300 fixes"),
            "version 2.1 released in 2024 with 300 fixes"
        );
        assert_eq!(redact("order 1234567890123"), "order 1234567890123", "not a Luhn number");
    }
}
