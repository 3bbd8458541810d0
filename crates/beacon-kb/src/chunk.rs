//! Markdown-aware chunking.
//!
//! A document is cut into sections at its ATX (`# Title`) and setext headings, each section into
//! blocks (paragraphs, lists, tables; a fenced code block is never split at its blank lines), and
//! the blocks are packed into chunks of at most `max_chars` characters. A block that is too big
//! falls back to sentences, then words, then characters. Consecutive chunks of one section share up
//! to `overlap_chars` characters of whole units. Chunks never cross a heading, and each chunk keeps
//! the path of headings above it.

/// Chunk size settings, in characters (Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkerConfig {
    /// Largest chunk, in characters.
    pub max_chars: usize,
    /// Largest overlap between consecutive chunks of one section, in characters.
    pub overlap_chars: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        ChunkerConfig { max_chars: 400, overlap_chars: 80 }
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDraft {
    /// Position of the chunk in its document, from 0.
    pub ordinal: usize,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// The chunk's text (headings are not repeated in it).
    pub text: String,
}

/// A piece of text and the separator that joins it to the previous piece.
#[derive(Debug, Clone)]
struct Unit<'a> {
    sep: &'static str,
    text: &'a str,
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Recognises an ATX heading (`## Title ##`) and returns its level and text.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    // More than three spaces of indentation makes it a code block.
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.bytes().take_while(|b| *b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level, text.to_string()))
}

fn fence_marker(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None;
    }
    if t.starts_with("```") {
        Some("```")
    } else if t.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

fn setext_level(line: &str) -> Option<usize> {
    let t = line.trim();
    if t.is_empty() {
        return None;
    }
    if t.chars().all(|c| c == '=') {
        Some(1)
    } else if t.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

/// A section: the heading path in force and its blocks.
struct Section<'a> {
    path: Vec<String>,
    blocks: Vec<&'a str>,
}

/// Splits markdown into sections of blocks.
fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut cur = Section { path: Vec::new(), blocks: Vec::new() };
    // Byte range of the block being collected.
    let mut block: Option<(usize, usize)> = None;
    let mut block_lines = 0usize;
    let mut fence: Option<&'static str> = None;
    let mut offset = 0usize;

    fn flush<'a>(cur: &mut Section<'a>, block: &mut Option<(usize, usize)>, text: &'a str) {
        if let Some((s, e)) = block.take() {
            let b = text[s..e].trim_end();
            if !b.trim().is_empty() {
                cur.blocks.push(b);
            }
        }
    }

    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let line_end = start + line.len();

        if let Some(marker) = fence {
            if line.trim_start().starts_with(marker) {
                fence = None;
            }
            block = Some((block.map_or(start, |b| b.0), line_end));
            block_lines += 1;
            continue;
        }
        if let Some(marker) = fence_marker(line) {
            fence = Some(marker);
            block = Some((block.map_or(start, |b| b.0), line_end));
            block_lines += 1;
            continue;
        }
        let heading = atx_heading(line).or_else(|| {
            // A setext underline turns a one-line paragraph into a heading.
            let level = setext_level(line)?;
            let (s, e) = block?;
            (block_lines == 1).then(|| (level, text[s..e].trim().to_string()))
        });
        if let Some((level, title)) = heading {
            if atx_heading(line).is_none() {
                // The underlined line was collected as a block: it is the heading, not content.
                block = None;
            }
            flush(&mut cur, &mut block, text);
            block_lines = 0;
            if !cur.blocks.is_empty() {
                out.push(cur);
            }
            while stack.last().is_some_and(|(l, _)| *l >= level) {
                stack.pop();
            }
            if !title.is_empty() {
                stack.push((level, title));
            }
            cur = Section { path: stack.iter().map(|(_, t)| t.clone()).collect(), blocks: Vec::new() };
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut cur, &mut block, text);
            block_lines = 0;
            continue;
        }
        block = Some((block.map_or(start, |b| b.0), line_end));
        block_lines += 1;
    }
    flush(&mut cur, &mut block, text);
    if !cur.blocks.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `text` into sentences (ending in `.`, `!`, `?` before whitespace, or at a line break).
fn sentences(text: &str) -> Vec<Unit<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut sep = "";
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let end_here = match b {
            b'\n' => Some((i, i + 1, "\n")),
            b'.' | b'!' | b'?' if bytes.get(i + 1).is_some_and(|n| *n == b' ') => Some((i + 1, i + 2, " ")),
            _ => None,
        };
        if let Some((end, next, next_sep)) = end_here {
            let piece = text[start..end].trim();
            if !piece.is_empty() {
                out.push(Unit { sep, text: piece });
                sep = next_sep;
            }
            start = next;
            i = next;
            continue;
        }
        i += 1;
    }
    let piece = text[start..].trim();
    if !piece.is_empty() {
        out.push(Unit { sep, text: piece });
    }
    out
}

/// Cuts `text` into pieces of at most `max` characters at character boundaries.
fn hard_split(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in text.char_indices() {
        if count == max {
            out.push(&text[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Breaks a block into units no longer than `max` characters.
fn units_of_block<'a>(block: &'a str, first_sep: &'static str, max: usize, out: &mut Vec<Unit<'a>>) {
    if char_len(block) <= max {
        out.push(Unit { sep: first_sep, text: block });
        return;
    }
    let mut first = true;
    for s in sentences(block) {
        let sep = if first { first_sep } else { s.sep };
        first = false;
        if char_len(s.text) <= max {
            out.push(Unit { sep, text: s.text });
            continue;
        }
        let mut word_first = true;
        for w in s.text.split_whitespace() {
            let wsep = if word_first { sep } else { " " };
            word_first = false;
            if char_len(w) <= max {
                out.push(Unit { sep: wsep, text: w });
            } else {
                for (j, piece) in hard_split(w, max).into_iter().enumerate() {
                    out.push(Unit { sep: if j == 0 { wsep } else { "" }, text: piece });
                }
            }
        }
    }
}

fn joined_len(units: &[Unit<'_>]) -> usize {
    units.iter().enumerate().map(|(i, u)| char_len(u.text) + if i == 0 { 0 } else { char_len(u.sep) }).sum()
}

fn join(units: &[Unit<'_>]) -> String {
    let mut s = String::new();
    for (i, u) in units.iter().enumerate() {
        if i > 0 {
            s.push_str(u.sep);
        }
        s.push_str(u.text);
    }
    s
}

/// Packs units into chunks of at most `max` characters, overlapping by whole units.
fn pack(units: &[Unit<'_>], max: usize, overlap: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let mut end = start + 1;
        while end < units.len() && joined_len(&units[start..=end]) <= max {
            end += 1;
        }
        out.push(join(&units[start..end]));
        if end >= units.len() {
            break;
        }
        // Step back over whole units that fit in the overlap, always moving forward.
        let mut next = end;
        while next - 1 > start && joined_len(&units[next - 1..end]) <= overlap {
            next -= 1;
        }
        start = next;
    }
    out
}

/// Cuts a markdown (or plain text) document into chunks.
///
/// ```
/// use beacon_kb::chunk::{chunk_markdown, ChunkerConfig};
/// let chunks = chunk_markdown("# Guide\n\n## Install\n\nRun the installer.", &ChunkerConfig::default());
/// assert_eq!(chunks[0].heading_path, vec!["Guide", "Install"]);
/// assert_eq!(chunks[0].text, "Run the installer.");
/// ```
pub fn chunk_markdown(text: &str, config: &ChunkerConfig) -> Vec<ChunkDraft> {
    let max = config.max_chars.max(1);
    let overlap = config.overlap_chars.min(max / 2);
    let mut out = Vec::new();
    for section in sections(text) {
        let mut units = Vec::new();
        for (i, block) in section.blocks.iter().enumerate() {
            units_of_block(block, if i == 0 { "" } else { "\n\n" }, max, &mut units);
        }
        for text in pack(&units, max, overlap) {
            out.push(ChunkDraft { ordinal: out.len(), heading_path: section.path.clone(), text });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: usize, overlap: usize) -> ChunkerConfig {
        ChunkerConfig { max_chars: max, overlap_chars: overlap }
    }

    #[test]
    fn heading_paths_follow_levels() {
        let md = "intro text\n\n# A\n\na1\n\n## B\n\nb1\n\n### C\n\nc1\n\n## D\n\nd1\n\n# E\ne1";
        let chunks = chunk_markdown(md, &cfg(400, 0));
        let got: Vec<(Vec<String>, String)> = chunks.into_iter().map(|c| (c.heading_path, c.text)).collect();
        let want: Vec<(Vec<&str>, &str)> = vec![
            (vec![], "intro text"),
            (vec!["A"], "a1"),
            (vec!["A", "B"], "b1"),
            (vec!["A", "B", "C"], "c1"),
            (vec!["A", "D"], "d1"),
            (vec!["E"], "e1"),
        ];
        assert_eq!(got.len(), want.len());
        for ((gp, gt), (wp, wt)) in got.iter().zip(want) {
            assert_eq!(gp, &wp);
            assert_eq!(gt, wt);
        }
    }

    #[test]
    fn setext_headings_and_hash_in_code() {
        let md = "Title\n=====\n\n```sh\n# not a heading\n\necho hi\n```\n\nSub\n---\n\ntext";
        let chunks = chunk_markdown(md, &cfg(400, 0));
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].heading_path, vec!["Title"]);
        assert_eq!(chunks[0].text, "```sh\n# not a heading\n\necho hi\n```");
        assert_eq!(chunks[1].heading_path, vec!["Title", "Sub"]);
        assert_eq!(chunks[1].text, "text");
    }

    #[test]
    fn chunks_respect_max_and_overlap() {
        let sentence = |i: usize| format!("Sentence number {i} is here.");
        let para: Vec<String> = (0..40).map(sentence).collect();
        let md = para.join(" ");
        let chunks = chunk_markdown(&md, &cfg(100, 30));
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(c.text.chars().count() <= 100, "{}", c.text);
        }
        // Each next chunk starts with the last sentence of the previous one (overlap).
        for w in chunks.windows(2) {
            let last = w[0].text.rsplit(". ").next().unwrap_or_default();
            assert!(w[1].text.starts_with(last.trim_end_matches('.')), "{w:?}");
        }
        // Every sentence is somewhere.
        for i in 0..40 {
            assert!(chunks.iter().any(|c| c.text.contains(&sentence(i))));
        }
    }

    #[test]
    fn paragraphs_are_kept_together_when_they_fit() {
        let md = "aaa aaa\n\nbbb bbb\n\nccc ccc";
        let chunks = chunk_markdown(md, &cfg(16, 0));
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["aaa aaa\n\nbbb bbb", "ccc ccc"]);
    }

    #[test]
    fn long_words_are_hard_split_on_char_boundaries() {
        let word = "é".repeat(25);
        let chunks = chunk_markdown(&word, &cfg(10, 0));
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.text.chars().count() <= 10));
        assert_eq!(chunks.iter().map(|c| c.text.clone()).collect::<String>(), word);
    }

    #[test]
    fn empty_documents_have_no_chunks() {
        assert!(chunk_markdown("", &ChunkerConfig::default()).is_empty());
        assert!(chunk_markdown("# Only a heading\n\n   \n", &ChunkerConfig::default()).is_empty());
    }

    #[test]
    fn ordinals_are_sequential() {
        let md = "# A\n\none\n\n# B\n\ntwo";
        let chunks = chunk_markdown(md, &ChunkerConfig::default());
        assert_eq!(chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(), vec![0, 1]);
    }
}
