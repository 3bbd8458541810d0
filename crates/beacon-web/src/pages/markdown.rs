//! Discord markdown as safe HTML, for the playground's answer: pulldown-cmark parses it
//! (CommonMark plus strikethrough, as Discord writes), and the events are filtered before
//! rendering so that **nothing of the content becomes markup it did not ask for as
//! markdown** — raw HTML in the text is turned into text (escaped on output), images become
//! their link, and a link keeps its target only for `http(s)://` and `mailto:`.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, html};

/// The HTML of `text` (Discord markdown); safe to put in a page as it is.
pub fn to_html(text: &str) -> String {
    // Discord's small-print line (`-# …`) is plain text in CommonMark terms.
    let text: String = text.lines().map(|l| l.strip_prefix("-# ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let mut options = Options::empty();
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(&text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Image { dest_url, .. }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(dest_url),
            title: "".into(),
            id: "".into(),
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut out = String::with_capacity(text.len() * 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:") {
        url
    } else {
        "#".into()
    }
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_becomes_markup_and_html_stays_text() {
        assert_eq!(to_html("**Refunds** take _14 days_."), "<p><strong>Refunds</strong> take <em>14 days</em>.</p>\n");
        assert!(to_html("- one\n- two").contains("<li>one</li>"));
        assert!(to_html("~~old~~").contains("<del>old</del>"));
        let evil = to_html("<script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!evil.contains("<script") && !evil.contains("<img"), "{evil}");
        assert!(evil.contains("&lt;script&gt;"), "{evil}");
        let link = to_html("[docs](javascript:alert(1)) and [site](https://example.com)");
        assert!(link.contains("href=\"#\"") && link.contains("href=\"https://example.com\""), "{link}");
        assert!(!to_html("![x](https://example.com/a.png)").contains("<img"));
        assert_eq!(to_html("-# Sources: refunds.md"), "<p>Sources: refunds.md</p>\n");
    }
}
