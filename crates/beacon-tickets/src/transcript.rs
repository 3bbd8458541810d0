//! Transcripts: a self-contained HTML page of a ticket's messages, kept in object storage (a
//! local folder by default, any S3-compatible store by configuration).

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::model::Ticket;
use crate::text::{html, iso};

/// Why a transcript could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object store failed.
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("transcript folder {path}: {source}")]
    /// The local transcript folder could not be created.
    Folder {
        /// The folder.
        path: String,
        /// The i/o error.
        source: std::io::Error,
    },
    /// TLS is not usable for the S3 client (no crypto provider installed).
    #[error("S3 client: {0}")]
    Tls(#[from] beacon_http::HttpError),
}

/// Settings of an S3-compatible store (AWS, MinIO, moto, R2…).
#[derive(Clone)]
pub struct S3Options {
    /// Bucket name.
    pub bucket: String,
    /// Region of the bucket.
    pub region: String,
    /// e.g. `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Base URL under which stored objects are publicly readable, if any (used in links).
    pub public_base_url: Option<String>,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Where transcripts live.
#[derive(Clone)]
pub struct TranscriptStore {
    inner: Arc<dyn ObjectStore>,
    /// Human description for logs and links (`local folder …`, `s3://bucket`).
    location: String,
    public_base_url: Option<String>,
}

impl std::fmt::Debug for TranscriptStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptStore").field("location", &self.location).finish_non_exhaustive()
    }
}

impl TranscriptStore {
    /// A folder on this machine (created when missing).
    pub fn local(dir: &Path) -> Result<TranscriptStore, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StorageError::Folder { path: dir.display().to_string(), source })?;
        let fs = LocalFileSystem::new_with_prefix(dir)?;
        Ok(TranscriptStore {
            inner: Arc::new(fs),
            location: format!("file://{}", dir.display()),
            public_base_url: None,
        })
    }

    /// An S3-compatible bucket.
    pub fn s3(opts: &S3Options) -> Result<TranscriptStore, StorageError> {
        // object_store builds its own reqwest client, which panics without a TLS provider.
        beacon_http::require_crypto_provider()?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&opts.bucket)
            .with_region(&opts.region)
            .with_access_key_id(&opts.access_key_id)
            .with_secret_access_key(&opts.secret_access_key);
        if let Some(endpoint) = &opts.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        Ok(TranscriptStore {
            inner: Arc::new(builder.build()?),
            location: format!("s3://{}", opts.bucket),
            public_base_url: opts.public_base_url.clone(),
        })
    }

    /// `file:///…` or `s3://bucket`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A link to a stored transcript: the public URL when one is configured, else its location.
    pub fn link(&self, key: &str) -> String {
        match &self.public_base_url {
            Some(base) => format!("{}/{key}", base.trim_end_matches('/')),
            None => format!("{}/{key}", self.location.trim_end_matches('/')),
        }
    }

    /// Stores `body` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, body: String) -> Result<(), StorageError> {
        self.inner.put(&ObjectPath::from(key), PutPayload::from(body.into_bytes())).await?;
        Ok(())
    }

    /// The object stored under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let bytes = self.inner.get(&ObjectPath::from(key)).await?.bytes().await?;
        Ok(bytes.to_vec())
    }

    /// Checks that the store answers and lets Beacon list its transcripts (a missing bucket,
    /// wrong credentials or an unreachable endpoint fail).
    pub async fn probe(&self) -> Result<(), StorageError> {
        match self.inner.list_with_delimiter(Some(&ObjectPath::from("guilds"))).await {
            // A local folder with no transcript yet has no `guilds` folder either.
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) if self.location.starts_with("file://") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every transcript of `guild_id` (its folder); returns how many.
    pub async fn purge_guild(&self, guild_id: u64) -> Result<usize, StorageError> {
        use futures_util::StreamExt;
        let prefix = ObjectPath::from(format!("guilds/{guild_id}/"));
        let keys: Vec<ObjectPath> = self
            .inner
            .list(Some(&prefix))
            .map(|meta| meta.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for key in &keys {
            match self.inner.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(keys.len())
    }

    /// Deletes a transcript (retention); a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// How long a transcript link Beacon posts stays valid (staff get a fresh one with
/// `/ticket transcript`).
pub const LINK_TTL_SECS: i64 = 7 * 86_400;

/// What a transcript link's signature covers: the transcript and the link's end.
fn link_message(key: &str, expires: i64) -> String {
    format!("transcript:{key}:{expires}")
}

/// The link Beacon posts for a stored transcript: the bucket's own public URL when one is
/// configured (`BEACON_TRANSCRIPTS_PUBLIC_URL`); otherwise a link to Beacon's own web server
/// (`BEACON_PUBLIC_URL`), signed and valid for [`LINK_TTL_SECS`].
pub fn link_for(app: &beacon_framework::App, storage: &TranscriptStore, key: &str) -> String {
    if storage.public_base_url.is_some() {
        return storage.link(key);
    }
    match &app.keyring {
        Some(keyring) => {
            let expires = beacon_store::now_ms() / 1000 + LINK_TTL_SECS;
            let sig = keyring.sign(&link_message(key, expires));
            format!("{}/transcripts/{key}?expires={expires}&sig={sig}", app.public_url())
        }
        None => storage.link(key),
    }
}

/// Whether a signed link to `key` is valid at `now_secs`; `Err` says why not, for the person
/// holding the link.
pub fn check_link(
    keyring: &beacon_crypto::Keyring,
    key: &str,
    expires: i64,
    sig: &str,
    now_secs: i64,
) -> Result<(), &'static str> {
    if !keyring.verify(&link_message(key, expires), sig) {
        return Err("This link is not valid. Ask staff for the transcript with /ticket transcript.");
    }
    if expires < now_secs {
        return Err("This link has expired. Ask staff for a fresh one with /ticket transcript.");
    }
    Ok(())
}

/// Whether `key` is a transcript key this module writes (`guilds/{id}/tickets/{file}.html`):
/// nothing else of the store is served.
pub fn valid_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    matches!(parts.as_slice(), ["guilds", guild, "tickets", file]
        if guild.parse::<u64>().is_ok()
            && file.ends_with(".html")
            && file.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !file.starts_with('.'))
}

/// The storage key of a ticket's transcript: one folder per guild.
pub fn key_for(ticket: &Ticket, closed_at: i64) -> String {
    format!("guilds/{}/tickets/{:06}-{closed_at}.html", ticket.guild_id, ticket.number)
}

/// One message as it appears in a transcript.
#[derive(Debug, Clone)]
pub struct Line {
    /// The author's user id.
    pub author_id: u64,
    /// The author's display name.
    pub author: String,
    /// Whether the author is a bot.
    pub bot: bool,
    /// When it was sent, unix ms.
    pub at_ms: i64,
    /// The message text.
    pub content: String,
    /// `(file name, url)`.
    pub attachments: Vec<(String, String)>,
    /// Titles and descriptions of embeds, flattened.
    pub embeds: Vec<String>,
}

/// Renders the page. Everything is inline (no scripts, no external resources) so it can be read
/// anywhere, offline, years later.
pub fn render(guild_name: &str, ticket: &Ticket, lines: &[Line]) -> String {
    let mut out = String::with_capacity(4096 + lines.len() * 256);
    let title = format!("Ticket {} — {}", ticket.label(), ticket.topic);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str(&format!("<title>{}</title>", html(&title)));
    out.push_str(
        "<style>body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;\
         background:#f8fafc;color:#0f172a}header{background:#1e293b;color:#f8fafc;padding:16px 20px}\
         header h1{font-size:1.2rem;margin:0 0 6px}header dl{display:grid;grid-template-columns:\
         max-content 1fr;gap:2px 12px;margin:0;font-size:.9rem}header dt{opacity:.7}\
         main{max-width:860px;margin:0 auto;padding:12px}article{background:#fff;border:1px solid \
         #e2e8f0;border-radius:8px;padding:10px 12px;margin:8px 0}article.bot{background:#eff6ff}\
         .meta{font-size:.8rem;color:#475569;margin-bottom:4px}.author{font-weight:600;color:#0f172a}\
         .content{white-space:pre-wrap;word-wrap:break-word}.embed{border-left:3px solid #3b82f6;\
         padding-left:8px;margin-top:6px;white-space:pre-wrap}ul.files{margin:6px 0 0;padding-left:18px}\
         footer{text-align:center;font-size:.8rem;color:#64748b;padding:16px}</style></head><body>",
    );
    out.push_str(&format!("<header><h1>{}</h1><dl>", html(&title)));
    let mut meta = |k: &str, v: String| {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", html(k), html(&v)));
    };
    meta("Server", guild_name.to_owned());
    meta("Opened by", format!("user {}", ticket.opener_id));
    meta("Opened", iso(ticket.created_at));
    if let Some(c) = ticket.closed_at {
        meta("Closed", iso(c));
    }
    if let Some(by) = ticket.claimed_by {
        meta("Claimed by", format!("user {by}"));
    }
    meta("Messages", lines.len().to_string());
    out.push_str("</dl></header><main>");
    if lines.is_empty() {
        out.push_str("<p>No messages were posted in this ticket.</p>");
    }
    for line in lines {
        out.push_str(&format!(
            "<article class=\"{}\" id=\"m{}\"><div class=\"meta\"><span class=\"author\">{}</span> \
             <span class=\"uid\">({})</span> · <time datetime=\"{t}\">{t}</time></div>",
            if line.bot { "bot" } else { "member" },
            line.at_ms,
            html(&line.author),
            line.author_id,
            t = iso(line.at_ms),
        ));
        if !line.content.is_empty() {
            out.push_str(&format!("<div class=\"content\">{}</div>", html(&line.content)));
        }
        for e in &line.embeds {
            out.push_str(&format!("<div class=\"embed\">{}</div>", html(e)));
        }
        if !line.attachments.is_empty() {
            out.push_str("<ul class=\"files\">");
            for (name, url) in &line.attachments {
                out.push_str(&format!(
                    "<li><a href=\"{}\" rel=\"noopener noreferrer\">{}</a></li>",
                    html(url),
                    html(name)
                ));
            }
            out.push_str("</ul>");
        }
        out.push_str("</article>");
    }
    out.push_str(&format!(
        "</main><footer>Transcript generated by Beacon at {}</footer></body></html>\n",
        iso(beacon_store::now_ms())
    ));
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn links_are_signed_expire_and_name_only_transcripts() {
        let keyring = beacon_crypto::Keyring::new([8; 32], Vec::new()).unwrap();
        let key = "guilds/42/tickets/000001-1700000000000.html";
        let sig = keyring.sign(&link_message(key, 1_000));
        assert_eq!(check_link(&keyring, key, 1_000, &sig, 999), Ok(()));
        assert!(check_link(&keyring, key, 1_000, &sig, 1_001).unwrap_err().contains("expired"));
        assert!(
            check_link(&keyring, key, 2_000, &sig, 999).unwrap_err().contains("not valid"),
            "a later end is not signed"
        );
        let other = "guilds/43/tickets/000001-1700000000000.html";
        assert!(check_link(&keyring, other, 1_000, &sig, 999).is_err(), "another guild's transcript");
        assert!(valid_key(key));
        for bad in [
            "guilds/42/tickets/../../secret.key",
            "guilds/x/tickets/a.html",
            "secret.key",
            "guilds/42/tickets/.html",
            "guilds/42/other/a.html",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    use super::*;
    use crate::model::Status;

    fn ticket() -> Ticket {
        Ticket {
            guild_id: 7,
            number: 3,
            opener_id: 42,
            channel_id: Some(9),
            message_id: None,
            topic: "Login <broken>".into(),
            status: Status::Closed,
            claimed_by: Some(5),
            created_at: 0,
            updated_at: 0,
            updated_by: 0,
            last_activity_at: 0,
            first_response_at: None,
            first_responder_id: None,
            closed_at: Some(60_000),
            closed_by: Some(5),
            paused_ms: 0,
            paused_since: None,
            first_response_breached: false,
            resolution_breached: false,
            transcript_key: None,
            rating: None,
            feedback: None,
            reopened_count: 0,
            panel_id: None,
            answers: Vec::new(),
        }
    }

    #[test]
    fn page_holds_messages_escaped_with_links() {
        let lines = vec![Line {
            author_id: 42,
            author: "bob".into(),
            bot: false,
            at_ms: 1_000,
            content: "<script>x</script> help".into(),
            attachments: vec![("log.txt".into(), "https://cdn.example/log.txt".into())],
            embeds: vec![],
        }];
        let page = render("Guild", &ticket(), &lines);
        assert!(page.contains("Ticket #0003 — Login &lt;broken&gt;"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt; help"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("href=\"https://cdn.example/log.txt\""));
        assert!(page.contains("1970-01-01T00:00:01Z"));
        assert_eq!(key_for(&ticket(), 60_000), "guilds/7/tickets/000003-60000.html");
    }

    #[tokio::test]
    async fn local_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = TranscriptStore::local(&dir.path().join("t")).unwrap();
        store.put("guilds/1/a.html", "<p>hi</p>".into()).await.unwrap();
        assert_eq!(store.get("guilds/1/a.html").await.unwrap(), b"<p>hi</p>");
        assert!(dir.path().join("t/guilds/1/a.html").is_file());
        store.delete("guilds/1/a.html").await.unwrap();
        store.delete("guilds/1/a.html").await.unwrap();
        assert!(store.get("guilds/1/a.html").await.is_err());
    }
}
