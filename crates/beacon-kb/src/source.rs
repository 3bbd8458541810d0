//! Document sources behind one trait, and the folder source.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use beacon_config::KbCredentials;

use crate::error::{KbError, Result};

/// A boxed, sendable future (sources are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One document as a source delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDocument {
    /// Stable key within the source (relative path, page id, row id, …).
    pub key: String,
    /// Title shown with answers and used for scoring.
    pub title: String,
    /// Markdown or plain text.
    pub text: String,
    /// Link to the original, if any.
    pub url: Option<String>,
}

/// Where documents come from. A sync lists every document the source currently has; documents
/// stored for the source but no longer listed are deleted.
pub trait Source: Send + Sync {
    /// Stable identity of the source within a guild, e.g. `folder:docs`; stored on each document.
    fn id(&self) -> &str;
    /// Every document the source currently holds.
    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>>;
}

/// Markdown and text files under a folder (recursively; hidden entries skipped).
#[derive(Debug, Clone)]
pub struct FolderSource {
    id: String,
    root: PathBuf,
}

/// File extensions the folder source reads.
pub const FOLDER_EXTENSIONS: &[&str] = &["md", "markdown", "mdx", "txt", "text"];

impl FolderSource {
    /// A source reading `root`, identified as `folder:<root as given>`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        FolderSource { id: format!("folder:{}", root.display()), root }
    }

    /// The same with an explicit source id (e.g. a configured source's name).
    pub fn with_id(root: impl Into<PathBuf>, id: impl Into<String>) -> Self {
        FolderSource { id: id.into(), root: root.into() }
    }

    fn collect(&self) -> Result<Vec<SourceDocument>> {
        let mut files = Vec::new();
        if self.root.is_file() {
            files.push(self.root.clone());
        } else {
            walk(&self.root, &mut files)?;
        }
        files.sort();
        let base = if self.root.is_file() {
            self.root.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            self.root.clone()
        };
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| KbError::io(&f, e))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let rel = f.strip_prefix(&base).unwrap_or(&f);
            let key = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| key.clone());
            out.push(SourceDocument { title: first_h1(&text).unwrap_or(stem), key, text, url: None });
        }
        Ok(out)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| KbError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| KbError::io(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry.file_type().map_err(|e| KbError::io(&path, e))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| FOLDER_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The text of the first level-1 ATX heading, outside code fences.
pub(crate) fn first_h1(text: &str) -> Option<String> {
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced && let Some(rest) = t.strip_prefix("# ") {
            let title = rest.trim().trim_end_matches('#').trim();
            if !title.is_empty() {
                return Some(title.to_string());
            }
        }
    }
    None
}

impl Source for FolderSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.collect())
                .await
                .map_err(|source| KbError::Task { what: "folder listing", source })?
        })
    }
}

/// An in-memory source (tests, imports, the FAQ module handing its entries over).
#[derive(Debug, Clone)]
pub struct StaticSource {
    id: String,
    docs: Vec<SourceDocument>,
}

impl StaticSource {
    /// A source that always lists `docs`.
    pub fn new(id: impl Into<String>, docs: Vec<SourceDocument>) -> Self {
        StaticSource { id: id.into(), docs }
    }
}

impl Source for StaticSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        let docs = self.docs.clone();
        Box::pin(async move { Ok(docs) })
    }
}

/// What a source may authenticate with when it is built for one guild.
pub struct Credentials<'a> {
    /// The guild the source belongs to.
    pub guild_id: u64,
    /// The deployment's credentials (used only for guilds in their `shared_with`).
    pub deployment: &'a KbCredentials,
    /// Opens the guild's own sealed credentials.
    pub keyring: Option<&'a beacon_crypto::Keyring>,
}

impl Credentials<'_> {
    /// The place a guild's credential for source `name` is sealed for.
    pub fn aad(guild_id: u64, name: &str) -> String {
        format!("kb-source:{guild_id}:{name}")
    }

    /// The source's own credential when it has one; else the deployment's, only for a guild the
    /// operator shares it with; else an error saying what to do.
    fn resolve(
        &self,
        name: &str,
        sealed: Option<&str>,
        what: &str,
        deployment: impl Fn(&KbCredentials) -> Option<&beacon_config::Secret>,
    ) -> Result<String> {
        let fail = |message: String| KbError::Source { source_name: name.into(), message };
        if let Some(sealed) = sealed {
            let keyring = self.keyring.ok_or_else(|| fail("no secret key to open its stored credential".into()))?;
            return keyring
                .open(sealed, &Self::aad(self.guild_id, name))
                .map_err(|e| fail(format!("its stored {what} cannot be opened: {e}")));
        }
        if self.deployment.shared_with.contains(&self.guild_id)
            && let Some(secret) = deployment(self.deployment)
        {
            return Ok(secret.expose().to_owned());
        }
        Err(fail(format!("no {what}: add the source again with this server's own {what}")))
    }
}

/// What a guild gives when it adds a source: its fields by name (`/kb add-…` command options, or
/// an API body's string fields).
pub type SourceInput = std::collections::BTreeMap<String, String>;

/// What a [`SourceKind`] gets to build one guild's source.
pub struct BuildContext<'a> {
    /// The guild's rows (a kind keeping its own, like uploads, reads them here).
    pub guild: beacon_store::GuildStore,
    /// The credentials the source may authenticate with.
    pub credentials: Credentials<'a>,
}

/// The secret a kind asks a guild for before its source is saved (shown in a modal, sealed into
/// the config's `credential` field, never displayed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialPrompt {
    /// The modal's title.
    pub title: &'static str,
    /// The text field's label.
    pub label: &'static str,
}

/// A kind of configured source (folder, Notion, Sheets, upload, website, or one another crate
/// registers with [`crate::KnowledgeBase::with_source_kind`]).
///
/// A configured source is a `kb_sources` row: the kind's [`SourceKind::name`] and a JSON config
/// the kind wrote with [`SourceKind::parse`]. Invariant: a kind reads back every config it ever
/// wrote (its name and config shape are stored data), and [`SourceKind::build`] does no I/O —
/// listing happens in [`Source::documents`] during a sync.
pub trait SourceKind: Send + Sync {
    /// The kind name stored with each source (`kb_sources.kind`); stable.
    fn name(&self) -> &'static str;
    /// Whether a guild's admins may add it alone; otherwise only the developer team may (it
    /// reads the bot's host, say).
    fn guild_may_add(&self) -> bool;
    /// The config to store for a guild's input, validated; an error names the field to fix.
    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value>;
    /// The source a stored config describes; its id is the configured `name`, so documents stay
    /// attached to it. A source that cannot work (say, no credential) fails here, so its sync
    /// records why.
    fn build(&self, name: &str, config: &serde_json::Value, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>>;
    /// The guild's own secret this kind reads with, if any (see [`CredentialPrompt`]).
    fn credential(&self) -> Option<CredentialPrompt> {
        None
    }
}

/// The source kinds a knowledge base builds configured sources with, by name.
#[derive(Clone)]
pub struct SourceKinds {
    kinds: std::collections::BTreeMap<&'static str, std::sync::Arc<dyn SourceKind>>,
}

impl SourceKinds {
    /// Beacon's own kinds: `folder`, `notion`, `sheets`, `upload` and `website` (the website kind
    /// with [`crate::web::CrawlOptions::default`]: private addresses refused).
    pub fn builtin() -> Self {
        SourceKinds { kinds: Default::default() }
            .with(std::sync::Arc::new(FolderKind))
            .with(std::sync::Arc::new(NotionKind))
            .with(std::sync::Arc::new(SheetsKind))
            .with(std::sync::Arc::new(crate::upload::UploadKind))
            .with(std::sync::Arc::new(crate::web::WebsiteKind::new(crate::web::CrawlOptions::default())))
    }

    /// Adds `kind`, replacing a kind of the same name.
    pub fn with(mut self, kind: std::sync::Arc<dyn SourceKind>) -> Self {
        self.kinds.insert(kind.name(), kind);
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<dyn SourceKind>> {
        self.kinds.get(name)
    }

    /// The kind called `name`, or an error naming the known ones.
    pub fn require(&self, name: &str) -> Result<&std::sync::Arc<dyn SourceKind>> {
        self.get(name).ok_or_else(|| KbError::Source {
            source_name: name.to_owned(),
            message: format!(
                "no source kind `{name}` in this deployment (known: {})",
                self.kinds.keys().copied().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// The registered kind names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}

impl std::fmt::Debug for SourceKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

/// An input field's trimmed text, if given and not blank.
pub fn field<'a>(input: &'a SourceInput, name: &str) -> Option<&'a str> {
    input.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A required input field, or an error naming it.
pub fn required_field<'a>(input: &'a SourceInput, name: &str) -> Result<&'a str> {
    field(input, name).ok_or_else(|| KbError::Rejected(format!("`{name}` is required.")))
}

/// A comma- or space-separated list field.
fn list_field(input: &SourceInput, name: &str) -> Vec<String> {
    field(input, name)
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a stored config as `T`, naming the kind on failure.
pub fn config_as<T: serde::de::DeserializeOwned>(kind: &str, config: &serde_json::Value) -> Result<T> {
    serde_json::from_value(config.clone())
        .map_err(|e| KbError::Source { source_name: kind.to_owned(), message: format!("bad config: {e}") })
}

fn to_json(kind: &str, config: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(config).map_err(|source| KbError::Json { what: format!("{kind} source config"), source })
}

/// Stored config of a `folder` source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderConfig {
    /// The folder (or single file) on the bot's host.
    pub path: PathBuf,
}

/// A folder of markdown/text files on the bot's host: the developer team's kind.
pub struct FolderKind;

impl SourceKind for FolderKind {
    fn name(&self) -> &'static str {
        "folder"
    }

    fn guild_may_add(&self) -> bool {
        false
    }

    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value> {
        let path = PathBuf::from(required_field(input, "path")?);
        if !path.is_dir() {
            return Err(KbError::Rejected(format!("{} is not a folder on the bot's host.", path.display())));
        }
        to_json(self.name(), &FolderConfig { path })
    }

    fn build(&self, name: &str, config: &serde_json::Value, _: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let c: FolderConfig = config_as(self.name(), config)?;
        Ok(Box::new(FolderSource::with_id(c.path, name)))
    }
}

/// Stored config of a `notion` source: pages and databases named by id (at least one), so a
/// guild reads only what it was given. The token is the guild's own (`credential`), or the
/// deployment's for the guilds the operator allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotionSourceConfig {
    /// Page ids.
    pub pages: Vec<String>,
    /// Database ids (each row is a page).
    pub databases: Vec<String>,
    /// The guild's own integration token, sealed (see [`crate::KnowledgeBase::seal_credential`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// API base URL, when not Notion's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// Notion pages and databases.
pub struct NotionKind;

impl SourceKind for NotionKind {
    fn name(&self) -> &'static str {
        "notion"
    }

    fn guild_may_add(&self) -> bool {
        true
    }

    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value> {
        let (pages, databases) = (list_field(input, "pages"), list_field(input, "databases"));
        if pages.is_empty() && databases.is_empty() {
            return Err(KbError::Rejected(
                "Name the Notion pages or databases to read (`pages`, `databases`: their ids, \
                 comma-separated). Beacon reads only what it is given."
                    .into(),
            ));
        }
        to_json(self.name(), &NotionSourceConfig { pages, databases, credential: None, base_url: None })
    }

    fn build(&self, name: &str, config: &serde_json::Value, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let c: NotionSourceConfig = config_as(self.name(), config)?;
        if c.pages.is_empty() && c.databases.is_empty() {
            return Err(KbError::Source {
                source_name: name.into(),
                message: "name at least one Notion page or database id".into(),
            });
        }
        let credentials = &ctx.credentials;
        let mut notion = crate::notion::NotionConfig { pages: c.pages, databases: c.databases, ..Default::default() };
        if let Some(url) = c.base_url.as_ref().or(credentials.deployment.notion_api_url.as_ref()) {
            notion.base_url = url.clone();
        }
        let token = credentials
            .resolve(name, c.credential.as_deref(), "Notion integration token", |d| d.notion_token.as_ref())?;
        Ok(Box::new(crate::notion::NotionSource::new(name, notion, &token)?))
    }

    fn credential(&self) -> Option<CredentialPrompt> {
        Some(CredentialPrompt {
            title: "Notion integration token",
            label: "The integration's secret (secret_… or ntn_…)",
        })
    }
}

/// Stored config of a `sheets` source: a Google Sheets range, read with the guild's own service
/// account (`credential`), or the deployment's for the guilds the operator allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SheetsSourceConfig {
    /// The spreadsheet id.
    pub spreadsheet_id: String,
    /// The guild's own service-account key (the JSON file or its base64), sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// A1 range, header row first.
    pub range: String,
    /// Header of the column titling each row (default: the first cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_column: Option<String>,
    /// API base URL, when not Google's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A Google Sheets range, one document per row.
pub struct SheetsKind;

impl SourceKind for SheetsKind {
    fn name(&self) -> &'static str {
        "sheets"
    }

    fn guild_may_add(&self) -> bool {
        true
    }

    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value> {
        let c = SheetsSourceConfig {
            spreadsheet_id: required_field(input, "spreadsheet")?.to_owned(),
            range: required_field(input, "range")?.to_owned(),
            title_column: field(input, "title_column").map(str::to_owned),
            credential: None,
            base_url: None,
        };
        to_json(self.name(), &c)
    }

    fn build(&self, name: &str, config: &serde_json::Value, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let c: SheetsSourceConfig = config_as(self.name(), config)?;
        let credentials = &ctx.credentials;
        let mut sheets = crate::sheets::SheetsConfig::new(c.spreadsheet_id, c.range);
        sheets.title_column = c.title_column;
        if let Some(url) = c.base_url.as_ref().or(credentials.deployment.sheets_api_url.as_ref()) {
            sheets.base_url = url.clone();
        }
        let key = credentials
            .resolve(name, c.credential.as_deref(), "Google service account", |d| d.google_service_account.as_ref())?;
        // The key file as pasted, or its base64 (as the deployment's is given).
        let key = if key.trim_start().starts_with('{') {
            crate::sheets::ServiceAccountKey::from_json(&key)?
        } else {
            crate::sheets::ServiceAccountKey::from_base64(&key)?
        };
        Ok(Box::new(crate::sheets::SheetsSource::new(name, sheets, key)?))
    }

    fn credential(&self) -> Option<CredentialPrompt> {
        Some(CredentialPrompt {
            title: "Google service account",
            label: "The service-account key file (JSON, or its base64)",
        })
    }
}

/// Largest JSON answer read from a knowledge service (a Notion page of blocks, a Google Sheets
/// range), in bytes; a larger one fails the sync with this reason instead of being held.
pub const MAX_SERVICE_BODY: usize = 32 << 20;

/// A service's JSON answer, read within [`MAX_SERVICE_BODY`]. `service` names the source in the
/// error (`notion`, `sheets`), `what` the call.
pub(crate) async fn service_json(response: reqwest::Response, service: &str, what: &str) -> Result<serde_json::Value> {
    let bytes = beacon_http::read_body(response, MAX_SERVICE_BODY).await.map_err(|e| match e {
        beacon_http::BodyError::Read(source) => KbError::Request { what: format!("{service}: {what}"), source },
        too_large => KbError::Source { source_name: service.into(), message: format!("{what}: {too_large}") },
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| KbError::Source { source_name: service.into(), message: format!("{what}: bad JSON: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_config::Secret;

    #[test]
    fn folder_reads_markdown_and_text_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guides/.hidden")).unwrap();
        std::fs::write(dir.path().join("a.md"), "# Alpha\n\nbody").unwrap();
        std::fs::write(dir.path().join("guides/b.txt"), "plain").unwrap();
        std::fs::write(dir.path().join("guides/.hidden/c.md"), "secret").unwrap();
        std::fs::write(dir.path().join("image.png"), [0u8, 1, 2]).unwrap();
        let docs = FolderSource::new(dir.path()).collect().unwrap();
        let got: Vec<(&str, &str)> = docs.iter().map(|d| (d.key.as_str(), d.title.as_str())).collect();
        assert_eq!(got, vec![("a.md", "Alpha"), ("guides/b.txt", "b")]);
    }

    fn input(pairs: &[(&str, &str)]) -> SourceInput {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    async fn store() -> beacon_store::Store {
        beacon_store::Store::connect("sqlite::memory:").await.unwrap()
    }

    fn ctx<'a>(
        store: &beacon_store::Store,
        guild_id: u64,
        deployment: &'a KbCredentials,
        keyring: Option<&'a beacon_crypto::Keyring>,
    ) -> BuildContext<'a> {
        BuildContext { guild: store.guild(guild_id), credentials: Credentials { guild_id, deployment, keyring } }
    }

    /// Rows stored before source kinds were a trait (the `SourceConfig` enum's JSON, kind
    /// apart) still build: the kinds read the same names and shapes.
    #[tokio::test]
    async fn stored_configs_of_every_builtin_kind_still_build() {
        beacon_http::install_crypto_provider();
        let store = store().await;
        let kinds = SourceKinds::builtin();
        let dir = tempfile::tempdir().unwrap();
        let none = KbCredentials::default();
        let folder = serde_json::json!({"path": dir.path()});
        let built = kinds.require("folder").unwrap().build("handbook", &folder, &ctx(&store, 42, &none, None)).unwrap();
        assert_eq!(built.id(), "handbook");
        let shared = KbCredentials {
            shared_with: vec![42],
            notion_token: Some(Secret::new("secret_deployment".into())),
            ..KbCredentials::default()
        };
        let notion = serde_json::json!({"pages": ["p1"], "databases": []});
        assert!(kinds.require("notion").unwrap().build("wiki", &notion, &ctx(&store, 42, &shared, None)).is_ok());
        let sheets = serde_json::json!({"spreadsheet_id": "abc", "range": "FAQ!A1:C", "title_column": "Question"});
        let err = kinds.require("sheets").unwrap().build("sheet", &sheets, &ctx(&store, 42, &none, None)).err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("this server's own Google service account"), "{err}");
        let err = kinds.require("notion").unwrap().build("notion", &notion, &ctx(&store, 43, &shared, None)).err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("this server's own Notion integration token"), "{err}");
        assert!(kinds.require("folder").unwrap().build("x", &notion, &ctx(&store, 42, &none, None)).is_err());
        let err = kinds.require("gopher").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("known: folder, notion, sheets, upload, website"), "{err}");
    }

    #[test]
    fn kinds_parse_what_a_guild_gives() {
        let kinds = SourceKinds::builtin();
        let notion = kinds.require("notion").unwrap();
        let config = notion.parse(&input(&[("pages", "p1, p2"), ("databases", "")])).unwrap();
        assert_eq!(config, serde_json::json!({"pages": ["p1", "p2"], "databases": []}));
        assert!(notion.parse(&input(&[("pages", " ")])).is_err(), "every page the integration sees is no source");
        let sheets = kinds.require("sheets").unwrap();
        let err = sheets.parse(&input(&[("spreadsheet", "abc")])).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`range` is required"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let folder = kinds.require("folder").unwrap();
        assert!(!folder.guild_may_add() && notion.guild_may_add());
        let path = dir.path().display().to_string();
        assert_eq!(folder.parse(&input(&[("path", &path)])).unwrap(), serde_json::json!({"path": path}));
        assert!(folder.parse(&input(&[("path", "/no/such/folder")])).is_err());
    }

    /// A guild reads only what it was given: its own sealed token (which opens for no other
    /// guild or source), or the deployment's only where the operator shares it.
    #[tokio::test]
    async fn credentials_belong_to_one_guild() {
        beacon_http::install_crypto_provider();
        let store = store().await;
        let deployment = KbCredentials {
            shared_with: vec![7],
            notion_token: Some(Secret::new("secret_deployment".into())),
            ..KbCredentials::default()
        };
        let keyring = beacon_crypto::Keyring::new([5; 32], Vec::new()).unwrap();
        let notion = |credential: Option<String>| {
            serde_json::to_value(NotionSourceConfig {
                pages: vec!["p1".into()],
                databases: vec![],
                base_url: None,
                credential,
            })
            .unwrap()
        };
        let build = |config: serde_json::Value, name: &str, guild_id| {
            NotionKind.build(name, &config, &ctx(&store, guild_id, &deployment, Some(&keyring)))
        };
        // Shared with guild 7 only.
        assert!(build(notion(None), "wiki", 7).is_ok());
        let err = build(notion(None), "wiki", 8).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("own Notion integration token"), "{err}");
        // Guild 8's own token opens for guild 8's source `wiki`, and nowhere else.
        let sealed = keyring.seal("secret_guild8", &Credentials::aad(8, "wiki")).unwrap();
        assert!(build(notion(Some(sealed.clone())), "wiki", 8).is_ok());
        assert!(build(notion(Some(sealed.clone())), "wiki", 9).is_err(), "copied to another guild");
        assert!(build(notion(Some(sealed)), "other", 8).is_err(), "copied to another source");
        // Ids are required: "every page the integration can see" is not a source.
        assert!(build(serde_json::json!({"pages": [], "databases": []}), "all", 7).is_err());
    }

    #[test]
    fn first_h1_skips_code_and_deeper_headings() {
        assert_eq!(first_h1("## Sub\n```\n# code\n```\n# Real #"), Some("Real".into()));
        assert_eq!(first_h1("no heading"), None);
    }
}
