//! The text of a PDF, page by page, for uploads. Parsing is `lopdf`'s; reading the text out of
//! each page's content stream is here, because lopdf 0.32's own `extract_text` glues lines
//! together (it ignores the text-positioning operators) and cannot read fonts that map their
//! codes through a `ToUnicode` CMap (every `Identity-H` font, which is what word processors
//! write). Fonts are decoded through their `ToUnicode` map when they have one and through their
//! simple encoding (`WinAnsiEncoding`, `MacRomanEncoding`, standard) otherwise.
//!
//! A PDF with a user password is refused (an empty user password, the "owner password only"
//! kind, is opened); so is one whose pages hold no text (scanned images) and one that does not
//! parse. Parent chains are walked with a depth limit and the parser's panics are caught, so a
//! hostile file ends as [`PdfError::Corrupt`] rather than a crash or a loop.

use lopdf::{Dictionary, Document, Object, ObjectId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

/// How far up a page's `Parent` chain resources are looked for.
const MAX_TREE_DEPTH: usize = 32;

/// Why a PDF gave no text.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The file needs a password to open.
    #[error("the PDF is encrypted with a password")]
    Encrypted,
    /// No page holds any text: a scan or a file of images.
    #[error("the PDF has no text on any page")]
    NoText,
    /// The file is not a PDF lopdf can read.
    #[error("the PDF cannot be read")]
    Corrupt(#[source] lopdf::Error),
    /// The parser gave up on the file (it panicked; the panic was caught).
    #[error("the PDF cannot be read (the parser gave up on it)")]
    Unreadable,
}

/// A PDF's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfText {
    /// The document information's `/Title`, when it has a non-empty one.
    pub title: Option<String>,
    /// Each page's text, in page order (page 1 first); a page without text is an empty string.
    pub pages: Vec<String>,
}

/// Reads the text of every page of `bytes`.
pub fn extract(bytes: &[u8]) -> Result<PdfText, PdfError> {
    // lopdf is not written for hostile input: a panic in it is a file we cannot read.
    std::panic::catch_unwind(|| extract_unguarded(bytes)).unwrap_or(Err(PdfError::Unreadable))
}

fn extract_unguarded(bytes: &[u8]) -> Result<PdfText, PdfError> {
    let mut doc = Document::load_mem(bytes).map_err(PdfError::Corrupt)?;
    if doc.is_encrypted() {
        // Owner-password-only files open with the empty user password; anything else is locked.
        doc.decrypt("").map_err(|_| PdfError::Encrypted)?;
    }
    let title = info_title(&doc);
    let mut pages = Vec::new();
    let mut decoders = Decoders::new();
    for page_id in doc.page_iter() {
        // A page whose content does not parse reads as empty; the others still count.
        pages.push(page_text(&doc, page_id, &mut decoders).unwrap_or_default());
    }
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(PdfError::NoText);
    }
    Ok(PdfText { title, pages })
}

fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let (_, title) = doc.dereference(title).ok()?;
    let Object::String(bytes, _) = title else { return None };
    let title = text_string(bytes);
    let title = title.trim();
    (!title.is_empty()).then(|| title.to_owned())
}

/// A PDF text string: UTF-16BE with a byte-order mark, or PDFDocEncoding (read as Latin-1,
/// which it equals for the printable characters titles use).
fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = utf16.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// The fonts a page may use: its own resources, then its ancestors' (inherited).
fn page_fonts(doc: &Document, page_id: ObjectId) -> BTreeMap<Vec<u8>, &Dictionary> {
    let mut fonts = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut node = doc.get_dictionary(page_id).ok();
    let mut id = page_id;
    for _ in 0..MAX_TREE_DEPTH {
        let Some(dict) = node else { break };
        if !seen.insert(id) {
            break;
        }
        let resources =
            dict.get(b"Resources").ok().and_then(|r| doc.dereference(r).ok()).and_then(|(_, r)| r.as_dict().ok());
        let font_dict = resources
            .and_then(|r| r.get(b"Font").ok())
            .and_then(|f| doc.dereference(f).ok())
            .and_then(|(_, f)| f.as_dict().ok());
        if let Some(font_dict) = font_dict {
            for (name, value) in font_dict.iter() {
                if let Ok((_, Object::Dictionary(font))) = doc.dereference(value) {
                    fonts.entry(name.clone()).or_insert(font);
                }
            }
        }
        match dict.get(b"Parent").and_then(Object::as_reference) {
            Ok(parent) => {
                id = parent;
                node = doc.get_dictionary(parent).ok();
            }
            Err(_) => break,
        }
    }
    fonts
}

/// Each font's decoder, built once per document (keyed by the font dictionary's address, stable
/// while the document is borrowed).
type Decoders = HashMap<*const Dictionary, Rc<FontDecoder>>;

/// How a font's string bytes become text.
enum FontDecoder {
    /// A `ToUnicode` CMap: codes of `width` bytes to text.
    CMap { width: usize, map: BTreeMap<u32, String> },
    /// A simple font's named encoding, decoded by lopdf.
    Simple(String),
    /// A composite font with no `ToUnicode` map: its codes mean nothing without the font program.
    Unknown,
}

impl FontDecoder {
    fn of(doc: &Document, font: &Dictionary) -> FontDecoder {
        let composite = font.get(b"Subtype").and_then(Object::as_name).is_ok_and(|s| s == b"Type0");
        let cmap = font
            .get(b"ToUnicode")
            .ok()
            .and_then(|o| doc.dereference(o).ok())
            .and_then(|(_, o)| o.as_stream().ok())
            .map(|s| s.decompressed_content().unwrap_or_else(|_| s.content.clone()));
        if let Some(cmap) = cmap {
            let map = parse_cmap(&cmap);
            if !map.is_empty() {
                return FontDecoder::CMap { width: if composite { 2 } else { 1 }, map };
            }
        }
        if composite { FontDecoder::Unknown } else { FontDecoder::Simple(font.get_font_encoding().to_owned()) }
    }

    fn decode(&self, bytes: &[u8], out: &mut String) {
        match self {
            FontDecoder::CMap { width, map } => {
                for code in bytes.chunks(*width) {
                    let code = code.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                    if let Some(text) = map.get(&code) {
                        out.push_str(text);
                    }
                }
            }
            FontDecoder::Simple(encoding) => out.push_str(&Document::decode_text(Some(encoding), bytes)),
            FontDecoder::Unknown => {}
        }
    }
}

/// Hex string `<0041>` of a CMap as bytes.
fn hex_bytes(token: &str) -> Option<Vec<u8>> {
    let hex = token.strip_prefix('<')?.strip_suffix('>')?;
    let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

fn code_of(bytes: &[u8]) -> u32 {
    bytes.iter().take(4).fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

fn utf16be(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

/// Most codes one `bfrange` may map, and most entries of one CMap (a hostile map cannot fill
/// memory or time).
const MAX_RANGE: u32 = 65_536;
const MAX_ENTRIES: usize = 2 * MAX_RANGE as usize;

/// The `bfchar` and `bfrange` entries of a `ToUnicode` CMap.
fn parse_cmap(data: &[u8]) -> BTreeMap<u32, String> {
    let text = String::from_utf8_lossy(data);
    // Tokens: hex strings, array brackets and words.
    let mut tokens = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        let end = if rest.starts_with('<') {
            rest.find('>').map_or(rest.len(), |e| e + 1)
        } else if rest.starts_with('[') || rest.starts_with(']') {
            1
        } else {
            rest.find(|c: char| c.is_whitespace() || matches!(c, '<' | '[' | ']')).unwrap_or(rest.len())
        };
        tokens.push(&rest[..end]);
        rest = &rest[end..];
    }
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            "beginbfchar" => {
                i += 1;
                while i + 1 < tokens.len() && tokens[i] != "endbfchar" && map.len() < MAX_ENTRIES {
                    if let (Some(src), Some(dst)) = (hex_bytes(tokens[i]), hex_bytes(tokens[i + 1])) {
                        map.insert(code_of(&src), utf16be(&dst));
                    }
                    i += 2;
                }
            }
            "beginbfrange" => {
                i += 1;
                while i + 2 < tokens.len() && tokens[i] != "endbfrange" && map.len() < MAX_ENTRIES {
                    let (lo, hi) = match (hex_bytes(tokens[i]), hex_bytes(tokens[i + 1])) {
                        (Some(lo), Some(hi)) => (code_of(&lo), code_of(&hi)),
                        _ => {
                            i += 1;
                            continue;
                        }
                    };
                    let hi = hi.min(lo.saturating_add(MAX_RANGE));
                    if tokens[i + 2] == "[" {
                        // <lo> <hi> [<dst> <dst> …]: one destination per code.
                        let mut j = i + 3;
                        let mut code = lo;
                        while j < tokens.len() && tokens[j] != "]" {
                            if let Some(dst) = hex_bytes(tokens[j]) {
                                if code <= hi {
                                    map.insert(code, utf16be(&dst));
                                }
                                code = code.saturating_add(1);
                            }
                            j += 1;
                        }
                        i = j + 1;
                    } else {
                        // <lo> <hi> <dst>: consecutive codes, the last UTF-16 unit counting up.
                        if let Some(dst) = hex_bytes(tokens[i + 2]) {
                            let mut units: Vec<u16> =
                                dst.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                            for code in lo..=hi {
                                if map.len() >= MAX_ENTRIES {
                                    break;
                                }
                                map.insert(code, String::from_utf16_lossy(&units));
                                if let Some(last) = units.last_mut() {
                                    *last = last.wrapping_add(1);
                                }
                            }
                        }
                        i += 3;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    map
}

/// The text of one page: the strings its text operators show, with a line break where the
/// text moves to another line and a space where it jumps along the line.
fn page_text(doc: &Document, page_id: ObjectId, decoders: &mut Decoders) -> Result<String, lopdf::Error> {
    let fonts = page_fonts(doc, page_id);
    let content = lopdf::content::Content::decode(&doc.get_page_content(page_id)?)?;
    let mut out = String::new();
    let mut current: Option<Rc<FontDecoder>> = None;
    let newline = |out: &mut String| {
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    let space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
    };
    for op in &content.operations {
        match op.operator.as_str() {
            "Tf" => {
                let font = op.operands.first().and_then(|o| o.as_name().ok()).and_then(|name| fonts.get(name));
                current = font.map(|&font| {
                    Rc::clone(
                        decoders.entry(std::ptr::from_ref(font)).or_insert_with(|| Rc::new(FontDecoder::of(doc, font))),
                    )
                });
            }
            "Tj" | "'" | "\"" | "TJ" => {
                if matches!(op.operator.as_str(), "'" | "\"") {
                    newline(&mut out);
                }
                let decoder = current.as_deref();
                for operand in &op.operands {
                    show(operand, decoder, &mut out, &space);
                }
            }
            "T*" => newline(&mut out),
            "Td" | "TD" => {
                // A move down starts a line; a move along the same line separates words.
                let dy = op.operands.get(1).and_then(|o| o.as_float().ok()).unwrap_or(0.0);
                if dy.abs() > f32::EPSILON { newline(&mut out) } else { space(&mut out) }
            }
            "Tm" | "ET" => newline(&mut out),
            _ => {}
        }
    }
    Ok(out.trim().to_owned())
}

/// Appends a shown string (or a `TJ` array of strings and kerning numbers) to `out`.
fn show(operand: &Object, decoder: Option<&FontDecoder>, out: &mut String, space: &impl Fn(&mut String)) {
    match operand {
        Object::String(bytes, _) => match decoder {
            Some(d) => d.decode(bytes, out),
            None => out.push_str(&Document::decode_text(None, bytes)),
        },
        Object::Array(items) => {
            for item in items {
                match item {
                    // A large negative adjustment (in thousandths of an em) is a word gap.
                    Object::Integer(n) if *n < -200 => space(out),
                    Object::Real(n) if *n < -200.0 => space(out),
                    Object::String(..) => show(item, decoder, out, space),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmaps_map_chars_and_ranges() {
        let cmap = b"/CIDInit /ProcSet findresource begin\n2 beginbfchar\n<0003> <0020>\n<0011> <00e9>\nendbfchar\n\
                     1 beginbfrange\n<0024> <0026> <0041>\nendbfrange\n1 beginbfrange\n<0030> <0031> [<0066006C> <0078>]\nendbfrange\nend";
        let map = parse_cmap(cmap);
        assert_eq!(map.get(&0x03).map(String::as_str), Some(" "));
        assert_eq!(map.get(&0x11).map(String::as_str), Some("é"));
        assert_eq!(map.get(&0x26).map(String::as_str), Some("C"));
        assert_eq!(map.get(&0x30).map(String::as_str), Some("fl"));
        assert_eq!(map.get(&0x31).map(String::as_str), Some("x"));
    }

    #[test]
    fn a_hostile_range_is_bounded() {
        let map = parse_cmap(b"beginbfrange <00000000> <FFFFFFFF> <0041> endbfrange");
        assert_eq!(map.len(), MAX_RANGE as usize + 1);
    }

    #[test]
    fn titles_read_utf16_and_latin1() {
        assert_eq!(text_string(b"\xFE\xFF\x00M\x00a\x00n"), "Man");
        assert_eq!(text_string(b"Caf\xe9"), "Café");
    }

    #[test]
    fn what_is_not_a_pdf_is_corrupt() {
        assert!(matches!(extract(b"%PDF-1.4\n garbage"), Err(PdfError::Corrupt(_) | PdfError::Unreadable)));
        assert!(matches!(extract(b""), Err(PdfError::Corrupt(_) | PdfError::Unreadable)));
    }
}
