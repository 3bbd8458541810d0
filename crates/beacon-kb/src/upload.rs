//! Files a guild uploads (`/kb upload`): checked by extension *and* content, turned into text
//! (markdown and plain text as they are, HTML through [`crate::html`], PDF through
//! [`crate::pdf`] with one `# Page N` section per page, so every chunk of a PDF carries its page
//! in its heading path and an answer cites "› Page 4"), stored per guild in the
//! database (`kb_uploads`, so every process syncs the same content) and listed by the `upload`
//! source of the same name. Sizes are limited per file and per guild.

use crate::error::{KbError, Result};
use crate::ingest::{KnowledgeBase, SyncReport};
use crate::source::{BoxFuture, BuildContext, Source, SourceDocument, SourceInput, SourceKind, config_as};
use beacon_store::GuildStore;
use sqlx::Row;

/// How large uploads may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Largest total of one guild's uploaded files, in bytes.
    pub max_guild_bytes: u64,
}

impl Default for UploadLimits {
    /// 10 MB per file, 50 MB per guild.
    fn default() -> Self {
        UploadLimits { max_file_bytes: 10 * 1024 * 1024, max_guild_bytes: 50 * 1024 * 1024 }
    }
}

/// File extensions uploads accept, as the member is told.
pub const UPLOAD_EXTENSIONS: &str = ".md, .markdown, .txt, .html, .htm, .pdf";

/// An uploaded file turned into text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// `markdown`, `text`, `html` or `pdf`.
    pub format: &'static str,
    /// Its title: the HTML `<title>`, the PDF's `/Title`, the first `# ` heading, or the file
    /// name's stem.
    pub title: String,
    /// The text to index.
    pub text: String,
}

fn rejected(message: impl Into<String>) -> KbError {
    KbError::Rejected(message.into())
}

/// Megabytes, for messages.
pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if mb >= 10.0 { format!("{mb:.0} MB") } else { format!("{mb:.1} MB") }
}

/// Checks `bytes` is the kind of file its name says and extracts its text. Refused: another
/// extension, content that is not what the extension says (binary data in a `.md`, a PDF named
/// `.txt`), and a file with no text left.
pub fn extract(file_name: &str, bytes: &[u8]) -> Result<Extracted> {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let format = match ext.as_str() {
        "md" | "markdown" | "mdx" => "markdown",
        "txt" | "text" => "text",
        "html" | "htm" => "html",
        "pdf" => return extract_pdf(file_name, bytes),
        _ => {
            return Err(rejected(format!("**{file_name}** is not a file Beacon reads; upload {UPLOAD_EXTENSIONS}.")));
        }
    };
    let wrong =
        || rejected(format!("**{file_name}** does not hold {format} text (its content is another kind of file)."));
    // Text: valid UTF-8 (a byte-order mark aside) with no NUL or other binary control bytes.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|_| wrong())?;
    if text.starts_with("%PDF-") || text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c')) {
        return Err(wrong());
    }
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s).to_owned();
    let (title, text) = if format == "html" {
        let lower = text.trim_start().get(..512).unwrap_or(text.trim_start()).to_ascii_lowercase();
        if !lower.contains('<') {
            return Err(wrong());
        }
        let page = crate::html::html_to_text(text);
        let title = page.title.or_else(|| crate::source::first_h1(&page.text));
        (title, page.text)
    } else {
        (crate::source::first_h1(text), text.replace("\r\n", "\n"))
    };
    if text.trim().is_empty() {
        return Err(rejected(format!("**{file_name}** has no text to learn from (it is empty once read).")));
    }
    Ok(Extracted { format, title: title.unwrap_or(stem), text })
}

/// A PDF as markdown: each page with text is a `# Page N` section (N counted from 1, pages
/// without text skipped), its lines escaped so that none of them reads as a heading or a code
/// fence and moves a chunk to another page.
fn extract_pdf(file_name: &str, bytes: &[u8]) -> Result<Extracted> {
    let head = bytes.get(..1024).unwrap_or(bytes);
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(rejected(format!("**{file_name}** does not hold a PDF (its content is another kind of file).")));
    }
    let pdf = crate::pdf::extract(bytes).map_err(|e| {
        tracing::debug!(file = file_name, error = %e, source = ?std::error::Error::source(&e), "PDF upload refused");
        match e {
            crate::pdf::PdfError::Encrypted => {
                rejected(format!("**{file_name}** is protected by a password; upload a copy saved without one."))
            }
            crate::pdf::PdfError::NoText => rejected(format!(
                "**{file_name}** has no text to learn from: its pages are images (a scan?). Upload a PDF with \
                 selectable text, or its text as a .txt or .md file."
            )),
            crate::pdf::PdfError::Corrupt(_) | crate::pdf::PdfError::Unreadable => {
                rejected(format!("**{file_name}** cannot be read as a PDF: the file is damaged or incomplete."))
            }
        }
    })?;
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s).to_owned();
    Ok(Extracted { format: "pdf", title: pdf.title.unwrap_or(stem), text: pages_markdown(&pdf.pages) })
}

/// Pages as `# Page N` sections; a line that markdown would read as a heading, a setext
/// underline or a code fence is escaped with a backslash.
fn pages_markdown(pages: &[String]) -> String {
    let mut text = String::new();
    for (i, page) in pages.iter().enumerate() {
        if page.trim().is_empty() {
            continue;
        }
        text.push_str(&format!("# Page {}\n\n", i + 1));
        for line in page.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.starts_with(['#', '`', '~']) || line.trim_start_matches(['=', '-']).is_empty() {
                text.push('\\');
            }
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    text.trim_end().to_owned()
}

/// Stored config of an `upload` source: which file it holds (the text is in `kb_uploads`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadConfig {
    /// The file's name as uploaded.
    pub file: String,
    /// `markdown`, `text`, `html` or `pdf`.
    pub format: String,
    /// The uploaded file's size in bytes.
    pub bytes: u64,
}

/// Files uploaded with `/kb upload` (a guild's admins may add them).
pub struct UploadKind;

impl SourceKind for UploadKind {
    fn name(&self) -> &'static str {
        "upload"
    }

    fn guild_may_add(&self) -> bool {
        true
    }

    fn parse(&self, _input: &SourceInput) -> Result<serde_json::Value> {
        Err(rejected("Files are added with `/kb upload` (attach the file)."))
    }

    fn build(&self, name: &str, config: &serde_json::Value, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let _: UploadConfig = config_as(self.name(), config)?;
        Ok(Box::new(UploadSource { name: name.to_owned(), guild: ctx.guild.clone() }))
    }
}

/// One uploaded file, listed from `kb_uploads`; none once the upload is gone.
struct UploadSource {
    name: String,
    guild: GuildStore,
}

impl Source for UploadSource {
    fn id(&self) -> &str {
        &self.name
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT file_name, title, text FROM kb_uploads WHERE guild_id = $1 AND source = $2")
                .bind(self.guild.sql_id())
                .bind(&self.name)
                .fetch_optional(self.guild.store().pool())
                .await?;
            let Some(row) = row else { return Ok(Vec::new()) };
            Ok(vec![SourceDocument {
                key: row.try_get("file_name")?,
                title: row.try_get("title")?,
                text: row.try_get("text")?,
                url: None,
            }])
        })
    }
}

/// Downloads a file a member attached (from Discord's CDN), refusing one larger than
/// `max_bytes` before it is all read.
pub async fn download(url: &str, file_name: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let client = beacon_http::client(&beacon_http::ClientOptions::with_timeout(std::time::Duration::from_secs(60)))?;
    let what = || format!("downloading {file_name}");
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|source| KbError::Request { what: what(), source })?;
    let too_big =
        || rejected(format!("**{file_name}** is larger than {}, the most a file may be.", megabytes(max_bytes)));
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| KbError::Request { what: what(), source })? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(too_big());
        }
    }
    Ok(body)
}

impl KnowledgeBase {
    /// Stores an uploaded file as the `upload` source `name` of `guild_id` (replacing the file a
    /// source of that name held) and syncs it. Refused with a [`KbError::Rejected`] saying why:
    /// too big, not a file Beacon reads, no text, or over the guild's total.
    pub async fn upload(&self, guild_id: u64, name: &str, file_name: &str, bytes: &[u8]) -> Result<SyncReport> {
        let limits = self.upload_limits();
        let size = bytes.len() as u64;
        if size > limits.max_file_bytes {
            return Err(rejected(format!(
                "**{file_name}** is {}; files may be at most {}.",
                megabytes(size),
                megabytes(limits.max_file_bytes)
            )));
        }
        let guild = self.store().guild(guild_id);
        let existing = crate::store::KbRepo::new(guild.clone()).sources().await?;
        if let Some(other) = existing.iter().find(|s| s.name == name && s.kind != "upload") {
            return Err(rejected(format!(
                "**{name}** is already a {} source; choose another name for the file.",
                other.kind
            )));
        }
        let file = file_name.to_owned();
        let owned = bytes.to_vec();
        let extracted = tokio::task::spawn_blocking(move || extract(&file, &owned))
            .await
            .map_err(|source| KbError::Task { what: "text extraction", source })??;
        let now = beacon_store::now_ms();
        // The quota is checked and the file stored in one write transaction that first writes
        // the guild's `kb_upload_quota` row: a second upload of the guild waits for that row (on
        // PostgreSQL; SQLite runs one write transaction at a time) and then sums what the first
        // stored, so two uploads at once cannot both fit in the same room.
        let mut tx = self.store().begin_write().await?;
        sqlx::query(
            "INSERT INTO kb_upload_quota (guild_id, updated_at) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(guild.sql_id())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for both backends.
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM kb_uploads WHERE guild_id = $1 AND source <> $2",
        )
        .bind(guild.sql_id())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let used = used.max(0) as u64;
        if used + size > limits.max_guild_bytes {
            tx.rollback().await?;
            return Err(rejected(format!(
                "This server's uploads would take {} of its {}: remove a file (`/kb remove`) first.",
                megabytes(used + size),
                megabytes(limits.max_guild_bytes)
            )));
        }
        sqlx::query(
            "INSERT INTO kb_uploads (guild_id, source, file_name, format, title, size_bytes, text, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (guild_id, source) DO UPDATE SET file_name = excluded.file_name, \
             format = excluded.format, title = excluded.title, size_bytes = excluded.size_bytes, \
             text = excluded.text, created_at = excluded.created_at",
        )
        .bind(guild.sql_id())
        .bind(name)
        .bind(file_name)
        .bind(extracted.format)
        .bind(&extracted.title)
        .bind(size as i64)
        .bind(&extracted.text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let config = UploadConfig { file: file_name.to_owned(), format: extracted.format.to_owned(), bytes: size };
        let config = serde_json::to_value(&config)
            .map_err(|source| KbError::Json { what: "upload source config".into(), source })?;
        self.add_source(guild_id, name, "upload", &config, None).await?;
        self.sync_configured(guild_id, name, &mut |_| {}).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, bytes: &[u8]) -> String {
        match extract(name, bytes) {
            Err(KbError::Rejected(m)) => m,
            other => panic!("{name} was not refused: {other:?}"),
        }
    }

    #[test]
    fn files_are_checked_by_extension_and_content() {
        let md = extract("Guide.md", "\u{feff}# Install\r\n\r\nRun the installer.".as_bytes()).unwrap();
        assert_eq!((md.format, md.title.as_str()), ("markdown", "Install"));
        assert_eq!(md.text, "# Install\n\nRun the installer.");
        let txt = extract("notes.TXT", b"plain words").unwrap();
        assert_eq!((txt.format, txt.title.as_str(), txt.text.as_str()), ("text", "notes", "plain words"));
        let html = extract("faq.html", b"<html><title>FAQ</title><script>x()</script><p>Hello</p></html>").unwrap();
        assert_eq!((html.format, html.title.as_str(), html.text.as_str()), ("html", "FAQ", "Hello"));

        assert!(refused("logo.png", b"\x89PNG").contains("not a file Beacon reads"));
        assert!(refused("image.md", b"\x89PNG\r\n\x1a\n\0\0").contains("does not hold markdown"));
        assert!(refused("disguised.txt", b"%PDF-1.7\n").contains("does not hold text"));
        assert!(refused("latin1.txt", b"caf\xe9").contains("does not hold text"));
        assert!(refused("page.html", b"just words, no markup").contains("does not hold html"));
        assert!(refused("blank.md", b" \n\n ").contains("no text"));
        assert!(refused("scripts.html", b"<script>only()</script>").contains("no text"));
        assert!(refused("manual.pdf", b"%PDF-1.7").contains("cannot be read as a PDF"));
        assert!(refused("manual.pdf", b"# not a pdf").contains("does not hold a PDF"));
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pdf");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn a_pdf_is_one_section_per_page() {
        let pdf = extract("Lamp manual.pdf", &fixture("manual.pdf")).unwrap();
        assert_eq!((pdf.format, pdf.title.as_str()), ("pdf", "Lamp manual"));
        assert!(pdf.text.starts_with("# Page 1\n\nLumen desk lamp\nThank you for choosing"), "{}", pdf.text);
        assert!(
            pdf.text.contains("# Page 4\n\nWarranty\nThe Lumen lamp is covered by a warranty of five years"),
            "{}",
            pdf.text
        );
        let chunks = crate::chunk::chunk_markdown(&pdf.text, &crate::chunk::ChunkerConfig::default());
        let pages: Vec<String> = chunks.iter().map(|c| c.heading_path.join("/")).collect();
        assert_eq!(pages, ["Page 1", "Page 2", "Page 3", "Page 4"]);
        assert!(chunks[3].text.contains("five years"));
    }

    #[test]
    fn pdf_page_text_cannot_fake_a_page() {
        let text = pages_markdown(&["# Page 9\n```\nTitle\n---\n===\nplain".into(), " \n".into(), "last".into()]);
        let chunks = crate::chunk::chunk_markdown(&text, &crate::chunk::ChunkerConfig::default());
        let paths: Vec<String> = chunks.iter().map(|c| c.heading_path.join("/")).collect();
        assert_eq!(paths, ["Page 1", "Page 3"], "{text}");
        assert!(chunks[0].text.contains("\\# Page 9") && chunks[0].text.contains("plain"), "{text}");
    }

    #[test]
    fn encrypted_scanned_and_broken_pdfs_are_refused_with_their_reason() {
        assert!(refused("locked.pdf", &fixture("encrypted.pdf")).contains("protected by a password"));
        assert!(refused("scan.pdf", &fixture("scanned.pdf")).contains("pages are images"));
        let manual = fixture("manual.pdf");
        assert!(refused("cut.pdf", &manual[..manual.len() / 2]).contains("cannot be read as a PDF"));
    }
}
