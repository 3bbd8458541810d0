//! Splitting long text into Discord-sized messages.
//!
//! # Contract
//!
//! For `chunks = split_message(text, limit)` with `limit >= 16`:
//!
//! * every chunk has at most `limit` chars (Unicode scalar values) and
//!   contains a non-whitespace char; whitespace-only text gives no chunks and
//!   text that fits is returned unchanged as a single chunk;
//! * each chunk is `reopen + body + close`, where the bodies are consecutive
//!   slices of `text` separated only by whitespace: `text == g0 + body0 + g1 +
//!   body1 + … + bodyN + gN+1` with every `g` whitespace-only (the whitespace
//!   at a split point is dropped, except the indentation of the line that
//!   starts the next chunk, which is kept unless it alone would force a
//!   glyph to be cut; trailing whitespace of the last chunk may be dropped);
//! * `close` is `"\n```"` when the body ends inside a code block, and the next
//!   chunk's `reopen` is `` "```lang\n" `` with the block's language tag, so
//!   every chunk except the last has an even number of ```` ``` ```` fences;
//!   the last has an even number exactly when `text` does (an unclosed block
//!   in the input stays unclosed);
//! * splits never fall inside a char, nor inside a run of backticks in a way
//!   that changes how it reads as fences; and, unless a single glyph is too
//!   long for a chunk, never between a char and a following combining mark /
//!   variation selector / emoji modifier, around a zero-width joiner, inside
//!   a regional-indicator pair or a `\r\n`;
//! * a code block is never left empty on either side of a split (the opening
//!   fence moves to the next chunk instead), when any other split fits.
//!
//! Split points are chosen, in order of preference, at paragraph breaks, line
//! breaks, and spaces (outside code blocks first), then anywhere allowed.
//! Fences are recognised the way Discord does: every ```` ``` ```` toggles,
//! wherever it appears, and a language tag is `[A-Za-z0-9_+\-.#]+` directly
//! followed by a newline.
//!
//! Limits below 16 chars leave no room to repair fences; fences are then
//! treated as plain text (all other guarantees hold). A `limit` of 0 is
//! treated as 1.

use std::ops::Range;

/// Discord's maximum message length, in chars.
pub const MESSAGE_LIMIT: usize = 2000;

/// Smallest limit at which code fences are closed and reopened.
pub const MIN_FENCE_LIMIT: usize = 16;

/// Appended to a chunk that ends inside a code block.
const CLOSE: &str = "\n```";
const CLOSE_LEN: usize = 4;

/// Splits text into Discord messages of at most `limit` chars; see the
/// [module docs](self) for the exact guarantees.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    split_spans(text, limit).iter().map(|span| span.render(text)).collect()
}

/// One output chunk described relative to the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span<'a> {
    /// Language tag of a code block reopened at the start of the chunk.
    pub(crate) reopen: Option<&'a str>,
    /// Byte range of the input that forms the chunk's body.
    pub(crate) body: Range<usize>,
    /// Whether a closing fence is appended.
    pub(crate) close: bool,
}

impl Span<'_> {
    pub(crate) fn render(&self, text: &str) -> String {
        let body = &text[self.body.clone()];
        let mut out = String::with_capacity(body.len() + 16);
        if let Some(lang) = self.reopen {
            out.push_str("```");
            out.push_str(lang);
            out.push('\n');
        }
        out.push_str(body);
        if self.close {
            out.push_str(CLOSE);
        }
        out
    }
}

/// The splitting algorithm, returning spans instead of strings so tests can
/// check them against the input.
pub(crate) fn split_spans(text: &str, limit: usize) -> Vec<Span<'_>> {
    let limit = limit.max(1);
    let doc = Doc::new(text, limit >= MIN_FENCE_LIMIT);
    let n = doc.chars.len();
    let mut spans = Vec::new();
    let mut s = 0;
    while let Some(first_text) = doc.next_non_ws(s) {
        let reopen = doc.inside[s].map(|r| doc.reopen_lang(r, limit));
        let prefix_len = reopen.map_or(0, |lang| lang.chars().count() + 4);
        let room = limit - prefix_len;
        // Absurdly long indentation would leave no room for text: drop it.
        if first_text - s > room / 2 {
            s = first_text;
            continue;
        }
        if n - s <= room {
            spans.push(doc.span(reopen, s, n, false));
            break;
        }
        // The rest fits once its trailing whitespace is dropped.
        if doc.text_end - s <= room {
            spans.push(doc.span(reopen, s, doc.text_end, false));
            break;
        }
        let cut = Cutter { doc: &doc, start: s, first_text, max_end: s + room };
        let (end, next) = match cut.choose() {
            Some(cut) => cut,
            // Nothing fits without breaking a glyph: first try without the
            // line's indentation, and only then break it.
            None if first_text > s => {
                s = first_text;
                continue;
            }
            None => cut.last_resort(),
        };
        spans.push(doc.span(reopen, s, end, doc.inside[end].is_some()));
        s = next;
    }
    spans
}

/// A code block found in the input.
#[derive(Debug)]
struct Region<'a> {
    lang: &'a str,
    /// Char index of the first non-whitespace char of the block's content.
    first_text: Option<usize>,
    /// Char index just after the last non-whitespace char of the content.
    text_end: Option<usize>,
}

/// The input, indexed by char, with its fence structure.
struct Doc<'a> {
    text: &'a str,
    chars: Vec<char>,
    /// Byte offset of each char index (plus the end).
    offsets: Vec<usize>,
    /// For each char boundary, the code block it lies in.
    inside: Vec<Option<usize>>,
    regions: Vec<Region<'a>>,
    /// For each backtick, the index where its run of backticks starts.
    run_start: Vec<usize>,
    /// Char index just after the last non-whitespace char.
    text_end: usize,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str, fences: bool) -> Self {
        let (mut offsets, chars): (Vec<usize>, Vec<char>) = text.char_indices().unzip();
        offsets.push(text.len());
        let n = chars.len();
        let mut doc = Doc {
            text,
            chars,
            offsets,
            inside: vec![None; n + 1],
            regions: Vec::new(),
            run_start: vec![0; n],
            text_end: 0,
        };
        doc.text_end = (0..n).rev().find(|&x| !doc.chars[x].is_whitespace()).map_or(0, |x| x + 1);
        // (content start, close start) per region, in char indices.
        let mut bounds: Vec<(usize, usize)> = Vec::new();
        let mut current: Option<usize> = None;
        let mut filled = 0;
        let mut i = 0;
        while i < n {
            if doc.chars[i] != '`' {
                i += 1;
                continue;
            }
            let run = i;
            while i < n && doc.chars[i] == '`' {
                doc.run_start[i] = run;
                i += 1;
            }
            if !fences {
                continue;
            }
            // Discord reads a run left to right, three backticks at a time.
            for t in 0..(i - run) / 3 {
                let token_start = run + 3 * t;
                let token_end = token_start + 3;
                doc.inside[filled..token_end].fill(current);
                filled = token_end;
                current = match current {
                    None => {
                        let (lang, content_start) = doc.lang_after(token_end);
                        doc.regions.push(Region { lang, first_text: None, text_end: None });
                        bounds.push((content_start, n));
                        Some(doc.regions.len() - 1)
                    }
                    Some(r) => {
                        bounds[r].1 = token_start;
                        None
                    }
                };
            }
        }
        doc.inside[filled..].fill(current);
        for (region, (from, to)) in doc.regions.iter_mut().zip(bounds) {
            let is_text = |&x: &usize| !doc.chars[x].is_whitespace();
            region.first_text = (from..to).find(is_text);
            region.text_end = (from..to).rev().find(is_text).map(|x| x + 1);
        }
        doc
    }

    /// Language tag right after an opening fence ending at `at`, and where the
    /// block's content starts.
    fn lang_after(&self, at: usize) -> (&'a str, usize) {
        let end = (at..self.chars.len()).find(|&x| !is_lang_char(self.chars[x])).unwrap_or(self.chars.len());
        if end > at && self.chars.get(end) == Some(&'\n') {
            (&self.text[self.offsets[at]..self.offsets[end]], end + 1)
        } else {
            ("", at)
        }
    }

    /// Language tag used when reopening block `r`; dropped if it would leave
    /// less than half the chunk for text.
    fn reopen_lang(&self, r: usize, limit: usize) -> &'a str {
        let lang = self.regions[r].lang;
        if lang.chars().count() + 4 + CLOSE_LEN > limit / 2 { "" } else { lang }
    }

    fn next_non_ws(&self, from: usize) -> Option<usize> {
        (from..self.chars.len()).find(|&x| !self.chars[x].is_whitespace())
    }

    fn span(&self, reopen: Option<&'a str>, start: usize, end: usize, close: bool) -> Span<'a> {
        Span { reopen, body: self.offsets[start]..self.offsets[end], close }
    }

    /// Whether cutting at boundary `b` keeps every run of backticks reading as
    /// the same fences (cuts inside a run only at multiples of three).
    fn run_ok(&self, b: usize) -> bool {
        if b == 0 || b >= self.chars.len() || self.chars[b - 1] != '`' || self.chars[b] != '`' {
            return true;
        }
        (b - self.run_start[b - 1]).is_multiple_of(3)
    }

    /// Whether boundary `b` separates chars that render as one glyph.
    fn glued(&self, b: usize) -> bool {
        let (Some(&prev), Some(&next)) = (b.checked_sub(1).and_then(|p| self.chars.get(p)), self.chars.get(b)) else {
            return false;
        };
        if prev == '\r' && next == '\n' || prev == ZWJ || extends_previous(next) {
            return true;
        }
        if is_regional_indicator(prev) && is_regional_indicator(next) {
            // Flags are pairs: glued when `prev` starts a pair.
            let run = self.chars[..b].iter().rev().take_while(|&&c| is_regional_indicator(c)).count();
            return run % 2 == 1;
        }
        false
    }
}

const ZWJ: char = '\u{200D}';

fn is_lang_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.' | '#')
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Chars that attach to the char before them.
fn extends_previous(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'         // combining diacritics
        | '\u{0483}'..='\u{0489}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0900}'..='\u{0903}'
        | '\u{093A}'..='\u{094F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}'..='\u{200D}'       // ZWNJ, ZWJ
        | '\u{20D0}'..='\u{20FF}'       // combining marks for symbols (keycaps)
        | '\u{FE00}'..='\u{FE0F}'       // variation selectors
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}'     // emoji skin tones
        | '\u{E0020}'..='\u{E007F}'     // emoji tag sequences
        | '\u{E0100}'..='\u{E01EF}')
}

/// Chooses where one chunk ends.
struct Cutter<'d, 'a> {
    doc: &'d Doc<'a>,
    /// Char index where the chunk's body starts.
    start: usize,
    /// First non-whitespace char at or after `start`.
    first_text: usize,
    /// Largest body end that fits, before reserving room for a closing fence.
    max_end: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    Space,
    Line,
    Paragraph,
}

impl Cutter<'_, '_> {
    /// Returns `(end of this body, start of the next)`, char indices.
    fn choose(&self) -> Option<(usize, usize)> {
        self.at_whitespace().or_else(|| self.anywhere(Strictness::Full)).or_else(|| self.anywhere(Strictness::Glyphs))
    }

    /// A cut that at least fits and keeps fences intact, when [`Self::choose`]
    /// finds nothing.
    fn last_resort(&self) -> (usize, usize) {
        self.anywhere(Strictness::Fences).unwrap_or_else(|| {
            let reserve = if self.doc.regions.is_empty() { 0 } else { CLOSE_LEN };
            let end = (self.max_end - reserve).max(self.start + 1);
            (end, end)
        })
    }

    /// Whether ending the body at `end` and resuming at `next` fits and keeps
    /// code blocks sensible (never an empty block on either side of the cut).
    fn fits(&self, end: usize, next: usize) -> bool {
        if end <= self.first_text || end > self.max_end {
            return false;
        }
        match self.doc.inside[end] {
            None => true,
            Some(r) => {
                let region = &self.doc.regions[r];
                end + CLOSE_LEN <= self.max_end
                    && region.first_text.is_some_and(|f| end > f)
                    && region.text_end.is_some_and(|t| next < t)
            }
        }
    }

    /// Best cut at a whitespace run.
    fn at_whitespace(&self) -> Option<(usize, usize)> {
        let chars = &self.doc.chars;
        let n = chars.len();
        let window = self.max_end - self.start;
        // Rightmost candidate per (break kind, outside a code block).
        let mut best: [[Option<(usize, usize)>; 2]; 3] = [[None; 2]; 3];
        for a in self.start + 1..=self.max_end.min(n - 1) {
            if !chars[a].is_whitespace() || chars[a - 1].is_whitespace() {
                continue;
            }
            let mut b = a;
            let mut last_newline = None;
            let mut newlines = 0;
            while b < n && chars[b].is_whitespace() {
                if chars[b] == '\n' {
                    newlines += 1;
                    last_newline = Some(b);
                }
                b += 1;
            }
            // Keep the indentation of the line the next chunk starts with.
            let next = last_newline.map_or(b, |nl| nl + 1);
            if !self.fits(a, next) || self.doc.glued(a) || self.doc.glued(next) {
                continue;
            }
            let kind = match newlines {
                0 => Break::Space,
                1 => Break::Line,
                _ => Break::Paragraph,
            };
            let outside = usize::from(self.doc.inside[a].is_none());
            best[kind as usize][outside] = Some((a, next));
        }
        let long_enough = |c: &(usize, usize), num: usize, den: usize| (c.0 - self.start) * den >= window * num;
        let [space, line, paragraph] = best;
        let preferences = [
            (paragraph[1], 1, 2),
            (line[1], 1, 2),
            (paragraph[0], 1, 2),
            (line[0], 1, 2),
            (paragraph[1].max(paragraph[0]), 1, 3),
            (line[1].max(line[0]), 1, 3),
            (space[1].max(space[0]), 1, 3),
        ];
        preferences
            .into_iter()
            .find_map(|(c, num, den)| c.filter(|c| long_enough(c, num, den)))
            .or_else(|| best.iter().flatten().flatten().copied().max())
    }

    /// Rightmost cut between two chars that fits and respects `level`.
    fn anywhere(&self, level: Strictness) -> Option<(usize, usize)> {
        let doc = self.doc;
        (self.first_text + 1..=self.max_end)
            .rev()
            .find(|&e| {
                let reserve = if doc.inside[e].is_some() { CLOSE_LEN } else { 0 };
                doc.run_ok(e)
                    && e + reserve <= self.max_end
                    && match level {
                        Strictness::Full => !doc.chars[e - 1].is_whitespace() && !doc.glued(e) && self.fits(e, e),
                        Strictness::Glyphs => !doc.glued(e),
                        Strictness::Fences => true,
                    }
            })
            .map(|e| (e, e))
    }
}

/// How much a cut between two chars must respect, loosened step by step when
/// nothing fits.
#[derive(Clone, Copy)]
enum Strictness {
    /// Glyphs, runs of backticks, non-empty code blocks on both sides, no
    /// trailing whitespace.
    Full,
    /// Glyphs and runs of backticks.
    Glyphs,
    /// Runs of backticks only.
    Fences,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fence_count(s: &str) -> usize {
        s.matches("```").count()
    }

    /// Checks the module-level contract; returns the rendered chunks.
    fn check(text: &str, limit: usize) -> Vec<String> {
        let spans = split_spans(text, limit);
        let chunks: Vec<String> = spans.iter().map(|s| s.render(text)).collect();
        assert_eq!(chunks, split_message(text, limit));

        // Bodies are in order, separated (and surrounded) only by whitespace.
        let mut pos = 0;
        for span in &spans {
            assert!(span.body.start >= pos, "overlap");
            let gap = &text[pos..span.body.start];
            assert!(gap.chars().all(char::is_whitespace), "dropped text {gap:?}");
            pos = span.body.end;
        }
        assert!(text[pos..].chars().all(char::is_whitespace), "lost tail");
        if spans.is_empty() {
            assert!(text.trim().is_empty());
        }
        if text.chars().count() <= limit.max(1) && !text.trim().is_empty() {
            assert_eq!(chunks, vec![text.to_owned()]);
        }

        for (i, (span, chunk)) in spans.iter().zip(&chunks).enumerate() {
            assert!(chunk.chars().count() <= limit.max(1), "chunk {i} too long");
            let body = &text[span.body.clone()];
            assert!(!body.trim().is_empty(), "chunk {i} has no text");
            if limit >= MIN_FENCE_LIMIT {
                let last = i + 1 == spans.len();
                if !last || fence_count(text).is_multiple_of(2) {
                    assert_eq!(fence_count(chunk) % 2, 0, "unbalanced chunk {i}: {chunk:?}");
                }
                // A reopened block continues exactly the one closed before.
                assert_eq!(span.reopen.is_some(), i > 0 && spans[i - 1].close);
            } else {
                assert!(span.reopen.is_none() && !span.close);
            }
        }
        // Never split a glyph: none of these may start a chunk body or end
        // one (independent of the splitter's own tables). Only promised when
        // a glyph is small next to the limit.
        if limit < MIN_FENCE_LIMIT {
            return chunks;
        }
        for span in spans.iter().skip(1) {
            let next = text[span.body.start..].chars().next();
            assert!(!matches!(next, Some('\u{301}' | '\u{200D}' | '\u{1F3FD}' | '\u{FE0F}')), "split before {next:?}");
        }
        for span in &spans {
            let prev = text[..span.body.end].chars().next_back();
            assert_ne!(prev, Some('\u{200D}'), "split after ZWJ");
        }
        chunks
    }

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(check("hello  world\n", 2000), vec!["hello  world\n"]);
        assert!(check("", 2000).is_empty());
        assert!(check(" \n\t ", 2000).is_empty());
    }

    #[test]
    fn prefers_paragraphs_then_lines_then_words() {
        let para = format!("{}\n\n{}", "a ".repeat(20).trim_end(), "b c d e f");
        assert_eq!(check(&para, 45), vec!["a ".repeat(20).trim_end(), "b c d e f"]);
        let lines = "aaaa bbbb\ncccc dddd eeee";
        assert_eq!(check(lines, 14), vec!["aaaa bbbb", "cccc dddd eeee"]);
        assert_eq!(check("aaaa bbbb cccc", 10), vec!["aaaa bbbb", "cccc"]);
    }

    #[test]
    fn hard_cuts_count_chars_not_bytes() {
        let text = "é".repeat(25);
        let chunks = check(&text, 10);
        assert_eq!(chunks, vec!["é".repeat(10), "é".repeat(10), "é".repeat(5)]);
    }

    #[test]
    fn keeps_emoji_sequences_together() {
        let family = "👨\u{200D}👩\u{200D}👧"; // 5 chars
        let text = family.repeat(4);
        for chunk in check(&text, 12) {
            assert_eq!(chunk.chars().count() % 5, 0, "{chunk:?}");
        }
        let flags = "🇫🇷".repeat(9); // 18 chars, pairs
        for chunk in check(&flags, 7) {
            assert_eq!(chunk.chars().count() % 2, 0);
        }
    }

    #[test]
    fn reopens_code_blocks_with_language() {
        let code: String = (0..12).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n```rust\n{code}```\nDone.");
        let chunks = check(&text, 80);
        assert!(chunks.len() >= 3, "{chunks:?}");
        assert!(chunks[0].ends_with("\n```"));
        for chunk in &chunks[1..chunks.len() - 1] {
            assert!(chunk.starts_with("```rust\nlet x"), "{chunk:?}");
        }
        assert!(chunks.last().is_some_and(|c| c.ends_with("```\nDone.")));
    }

    #[test]
    fn moves_a_whole_block_to_the_next_chunk_when_it_fits() {
        let text = format!("{}\n\n```\n{}\n```", "intro ".repeat(6), "x ".repeat(20));
        let chunks = check(&text, 60);
        assert_eq!(chunks[0], "intro ".repeat(6).trim_end());
        assert!(chunks[1].starts_with("```\nx x"));
    }

    #[test]
    fn keeps_indentation_inside_code() {
        let text = format!("```py\n{}", "def f():\n    return 1\n".repeat(4));
        let chunks = check(&text, 40);
        assert!(chunks.iter().skip(1).any(|c| c.contains("\n    return")));
        for chunk in &chunks {
            assert!(!chunk.contains("\nreturn"), "lost indentation: {chunk:?}");
        }
    }

    #[test]
    fn tiny_limits_still_bound_chunks() {
        for limit in [0, 1, 2, 5, 15] {
            check("```rust\nfn main() {}\n``` and some more words", limit);
        }
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "word",
            "longerword",
            " ",
            "  ",
            "\n",
            "\n\n",
            "\t",
            "\r\n",
            "```",
            "```rust\n",
            "```\n",
            "`",
            "``",
            "é",
            "e\u{301}",
            "👍\u{1F3FD}",
            "👨\u{200D}👩\u{200D}👧",
            "🇫🇷",
            "❤\u{FE0F}",
            "    ",
            "@everyone",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn contract_holds_for_markdownish_text(
            pieces in prop::collection::vec(piece(), 0..300),
            limit in 16usize..120,
        ) {
            check(&pieces.concat(), limit);
        }

        #[test]
        fn contract_holds_for_arbitrary_text(text in "\\PC{0,400}", limit in 1usize..100) {
            check(&text, limit);
        }

        #[test]
        fn discord_limit_on_long_text(pieces in prop::collection::vec(piece(), 500..1500)) {
            check(&pieces.concat(), MESSAGE_LIMIT);
        }
    }
}
