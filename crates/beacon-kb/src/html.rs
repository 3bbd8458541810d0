//! HTML → markdown-ish text for the knowledge base (uploads and crawled pages): a small, careful
//! scanner rather than a browser engine. Scripts, styles and other non-content elements are
//! dropped with their content; headings become `#` lines (so chunks keep their heading path),
//! list items `- ` lines, blocks paragraphs; entities are decoded; the `<title>` and every
//! `<a href>` are collected.

/// What a page holds for the knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// The `<title>`, if any.
    pub title: Option<String>,
    /// The visible text, with headings as markdown.
    pub text: String,
    /// Every `href` of an `<a>` (or `<link>`/`<area>`), as written.
    pub links: Vec<String>,
}

/// Elements whose content is never text a reader sees.
const SKIPPED: &[&str] = &["script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"];

/// Elements that end a line or paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "hr",
    "dl",
    "dd",
    "dt",
    "figure",
    "figcaption",
    "form",
    "address",
    "details",
    "summary",
    "body",
    "html",
    "td",
    "th",
];

/// Extracts a page's title, text and links.
pub fn html_to_text(html: &str) -> HtmlText {
    let mut out = HtmlText::default();
    let mut text = String::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let end = html[i..].find('<').map_or(html.len(), |n| i + n);
            push_text(&mut text, &decode_entities(&html[i..end]));
            i = end;
            continue;
        }
        let rest = &html[i..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = comment.find("-->").map_or(html.len(), |n| i + 4 + n + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = rest.find('>').map_or(html.len(), |n| i + n + 1);
            continue;
        }
        let Some(tag) = parse_tag(rest) else {
            // A lone `<` in text.
            push_text(&mut text, "<");
            i += 1;
            continue;
        };
        i += tag.len;
        let name = tag.name.as_str();
        if !tag.closing && SKIPPED.contains(&name) && !tag.self_closing {
            i = skip_to_close(html, i, name);
            continue;
        }
        if !tag.closing && name == "title" {
            let end = find_close(html, i, "title");
            let title = collapse(&decode_entities(&html[i..end.0]));
            if out.title.is_none() && !title.is_empty() {
                out.title = Some(title);
            }
            i = end.1;
            continue;
        }
        if !tag.closing
            && matches!(name, "a" | "link" | "area")
            && let Some(href) = tag.href
        {
            out.links.push(href);
        }
        let heading = name.len() == 2 && name.starts_with('h') && name.as_bytes()[1].is_ascii_digit();
        if heading {
            let level = usize::from(name.as_bytes()[1] - b'0').clamp(1, 6);
            text.push_str("\n\n");
            if !tag.closing {
                text.push_str(&"#".repeat(level));
                text.push(' ');
            }
        } else if name == "li" {
            // The next item or the list's end breaks the line.
            if !tag.closing {
                text.push_str("\n- ");
            }
        } else if name == "p" || name == "br" || name == "tr" {
            text.push('\n');
            if name == "p" {
                text.push('\n');
            }
        } else if name == "td" || name == "th" {
            text.push(' ');
        } else if BLOCKS.contains(&name) {
            text.push('\n');
        }
    }
    out.text = tidy(&text);
    out
}

/// A parsed tag: its lowercase name, whether it closes, its length in the input, its `href`.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    len: usize,
    href: Option<String>,
}

/// Parses the tag at the start of `s` (which starts with `<`); `None` when it is not one.
fn parse_tag(s: &str) -> Option<Tag> {
    let b = s.as_bytes();
    let mut i = 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
        i += 1;
    }
    if i == start || !b[start].is_ascii_alphabetic() {
        return None;
    }
    let name = s[start..i].to_ascii_lowercase();
    let mut href = None;
    let mut self_closing = false;
    // Attributes, until the `>` outside quotes.
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i) {
            None => return Some(Tag { name, closing, self_closing, len: b.len(), href }),
            Some(b'>') => return Some(Tag { name, closing, self_closing, len: i + 1, href }),
            Some(b'/') => {
                self_closing = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        let attr_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let attr = s[attr_start..i].to_ascii_lowercase();
        if attr.is_empty() {
            i += 1;
            continue;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = s[i + 1..].find(q as char).map_or(b.len(), |n| i + 1 + n);
                let v = &s[(i + 1).min(end)..end];
                i = (end + 1).min(b.len());
                v
            }
            _ => {
                let st = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                &s[st..i]
            }
        };
        if attr == "href" {
            href = Some(decode_entities(value.trim()));
        }
    }
}

/// Where the content of `name` ends (the start of its closing tag) and where the closing tag ends.
fn find_close(html: &str, from: usize, name: &str) -> (usize, usize) {
    let needle = format!("</{name}");
    let found = html.as_bytes()[from..].windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    match found {
        Some(n) => {
            let start = from + n;
            let end = html[start..].find('>').map_or(html.len(), |m| start + m + 1);
            (start, end)
        }
        None => (html.len(), html.len()),
    }
}

fn skip_to_close(html: &str, from: usize, name: &str) -> usize {
    find_close(html, from, name).1
}

/// Appends a text run with its whitespace collapsed to single spaces.
fn push_text(out: &mut String, run: &str) {
    let mut last_space = out.ends_with([' ', '\n']) || out.is_empty();
    for c in run.chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Trims every line and keeps at most one blank line between blocks.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line == "-" || line.trim_start_matches('#').trim().is_empty() {
            if !blank {
                out.push('\n');
                blank = true;
            }
            continue;
        }
        // A heading follows a blank line, so the chunker sees it as one.
        if line.starts_with('#') && !blank {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        blank = false;
    }
    out.trim().to_owned()
}

/// Decodes character references: numeric ones and the named ones pages commonly use.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..].find(';').map(|n| n + 1).filter(|&n| n <= 12);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = if let Some(num) = name.strip_prefix('#') {
                let n = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                n.and_then(char::from_u32)
            } else {
                Some(match name {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    "nbsp" => ' ',
                    "ndash" => '–',
                    "mdash" => '—',
                    "hellip" => '…',
                    "laquo" => '«',
                    "raquo" => '»',
                    "lsquo" => '‘',
                    "rsquo" => '’',
                    "ldquo" => '“',
                    "rdquo" => '”',
                    "copy" => '©',
                    "reg" => '®',
                    "euro" => '€',
                    _ => return None,
                })
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_headings_and_links_without_scripts_or_styles() {
        let page = r#"<!DOCTYPE html><html><head><title>Refunds &amp; returns</title>
            <style>body { color: red }</style><script>var secret = "<p>not text</p>";</script></head>
            <body><nav><a href="/">Home</a> <a href='/pricing?x=1&amp;y=2'>Pricing</a></nav>
            <h1>Refund   policy</h1><p>Refunds are issued<br>within <b>14&nbsp;days</b>.</p>
            <!-- <p>a comment</p> --><ul><li>Card</li><li>PayPal</li></ul>
            <h2 class="x">Exceptions</h2><p>Gift cards &#8212; never &#x2764;.</p>
            <noscript>Enable JavaScript</noscript><p>3 < 4 and a &unknown; entity</p></body></html>"#;
        let got = html_to_text(page);
        assert_eq!(got.title.as_deref(), Some("Refunds & returns"));
        assert_eq!(got.links, vec!["/".to_owned(), "/pricing?x=1&y=2".to_owned()]);
        assert!(!got.text.contains("secret") && !got.text.contains("color") && !got.text.contains("comment"));
        assert!(!got.text.contains("JavaScript"), "{}", got.text);
        assert!(got.text.contains("\n\n# Refund policy\n"), "{}", got.text);
        assert!(got.text.contains("Refunds are issued\nwithin 14 days."), "{}", got.text);
        assert!(got.text.contains("- Card\n- PayPal"), "{}", got.text);
        assert!(got.text.contains("## Exceptions\n\nGift cards — never ❤."), "{}", got.text);
        assert!(got.text.contains("3 < 4 and a &unknown; entity"), "{}", got.text);
    }

    #[test]
    fn broken_markup_ends_cleanly() {
        assert_eq!(html_to_text("<p>open <b").text, "open");
        assert_eq!(html_to_text("<script>never closed").text, "");
        assert_eq!(html_to_text("a <!-- unterminated").text, "a");
        assert_eq!(html_to_text("<a href=\"x").links, vec!["x".to_owned()]);
    }
}
