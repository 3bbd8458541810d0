//! Plain-text helpers: UTC times, CSV, HTML escaping, durations.

/// `2024-05-01T13:45:00Z` for unix ms (out-of-range times are clamped to the representable range).
pub fn iso(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, and defused
/// ([`beacon_framework::export::defuse_cell`]) so spreadsheets do not run it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = beacon_framework::export::defuse_cell(s);
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// A CSV line (CRLF-terminated, as RFC 4180 says).
pub fn csv_line<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = fields.into_iter().map(|f| csv_field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Escapes text for HTML element content and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1h 5m` style, for stats.
pub fn duration(ms: i64) -> String {
    let secs = (ms / 1000).max(0) as u64;
    if secs == 0 {
        return "under 1s".into();
    }
    // Drop sub-minute precision once the value is above an hour: nobody reads it.
    let rounded = if secs >= 3600 { secs / 60 * 60 } else { secs };
    humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_709_208_000_000), "2024-02-29T12:00:00Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_line(["1", "x\ny"]), "1,\"x\ny\"\r\n");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(90_000), "1m 30s");
        assert_eq!(duration(3_661_000), "1h 1m");
        assert_eq!(duration(0), "under 1s");
    }
}
