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
fn first_h1(text: &str) -> Option<String> {
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

/// How a configured source is built from its database row (`kind` + JSON `config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A folder of markdown/text files on the bot's host.
    Folder {
        /// The folder (or single file).
        path: PathBuf,
    },
    /// Notion pages and databases, named by id (at least one): a guild reads only what it was
    /// given. The token is the guild's own (`credential`), or the deployment's for the guilds
    /// the operator allows.
    Notion {
        /// Page ids.
        pages: Vec<String>,
        /// Database ids (each row is a page).
        databases: Vec<String>,
        /// The guild's own integration token, sealed (see [`crate::KnowledgeBase::seal_credential`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        /// API base URL, when not Notion's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
    },
    /// A Google Sheets range, read with the guild's own service account (`credential`), or the
    /// deployment's for the guilds the operator allows.
    Sheets {
        /// The spreadsheet id.
        spreadsheet_id: String,
        /// The guild's own service-account key (base64 of the JSON file), sealed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        /// A1 range, header row first.
        range: String,
        /// Header of the column titling each row (default: the first cell).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title_column: Option<String>,
        /// API base URL, when not Google's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
    },
}

impl SourceConfig {
    /// The kind name stored in `kb_sources.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Folder { .. } => "folder",
            SourceConfig::Notion { .. } => "notion",
            SourceConfig::Sheets { .. } => "sheets",
        }
    }

    /// Parses a stored row's kind and config.
    pub fn from_row(kind: &str, config: &serde_json::Value) -> Result<Self> {
        let mut v = config.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kind".into(), serde_json::Value::String(kind.to_string()));
        }
        serde_json::from_value(v)
            .map_err(|e| KbError::Source { source_name: kind.to_string(), message: format!("bad config: {e}") })
    }

    /// The config as stored (without the kind).
    pub fn to_config_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("kind");
        }
        v
    }

    /// Builds the source; its id is the configured name, so documents stay attached to it. A
    /// remote source whose credential is missing fails here, so its sync records why.
    pub fn build(&self, name: &str, credentials: &Credentials<'_>) -> Result<Box<dyn Source>> {
        Ok(match self {
            SourceConfig::Folder { path } => Box::new(FolderSource::with_id(path, name)),
            SourceConfig::Notion { pages, databases, base_url, credential } => {
                if pages.is_empty() && databases.is_empty() {
                    return Err(KbError::Source {
                        source_name: name.into(),
                        message: "name at least one Notion page or database id".into(),
                    });
                }
                let mut config = crate::notion::NotionConfig {
                    pages: pages.clone(),
                    databases: databases.clone(),
                    ..Default::default()
                };
                if let Some(url) = base_url.as_ref().or(credentials.deployment.notion_api_url.as_ref()) {
                    config.base_url = url.clone();
                }
                let token = credentials
                    .resolve(name, credential.as_deref(), "Notion integration token", |c| c.notion_token.as_ref())?;
                Box::new(crate::notion::NotionSource::new(name, config, &token)?)
            }
            SourceConfig::Sheets { spreadsheet_id, range, title_column, base_url, credential } => {
                let mut config = crate::sheets::SheetsConfig::new(spreadsheet_id.clone(), range.clone());
                config.title_column = title_column.clone();
                if let Some(url) = base_url.as_ref().or(credentials.deployment.sheets_api_url.as_ref()) {
                    config.base_url = url.clone();
                }
                let key = credentials.resolve(name, credential.as_deref(), "Google service account", |c| {
                    c.google_service_account.as_ref()
                })?;
                let key = crate::sheets::ServiceAccountKey::from_base64(&key)?;
                Box::new(crate::sheets::SheetsSource::new(name, config, key)?)
            }
        })
    }
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

    #[test]
    fn source_config_round_trips_through_kind_and_json() {
        let c = SourceConfig::Folder { path: "docs".into() };
        let json = c.to_config_json();
        assert_eq!(json, serde_json::json!({"path": "docs"}));
        assert_eq!(SourceConfig::from_row(c.kind(), &json).unwrap(), c);
        assert!(SourceConfig::from_row("notion", &json).is_err());
        beacon_http::install_crypto_provider();
        let none = KbCredentials::default();
        let guild = |deployment| Credentials { guild_id: 42, deployment, keyring: None };
        assert_eq!(c.build("handbook", &guild(&none)).unwrap().id(), "handbook");
        let n = SourceConfig::Notion { pages: vec!["p1".into()], databases: vec![], base_url: None, credential: None };
        assert_eq!(n.to_config_json(), serde_json::json!({"pages": ["p1"], "databases": []}));
        assert_eq!(SourceConfig::from_row("notion", &n.to_config_json()).unwrap(), n);
        let g = SourceConfig::Sheets {
            spreadsheet_id: "abc".into(),
            credential: None,
            range: "FAQ!A1:C".into(),
            title_column: Some("Question".into()),
            base_url: None,
        };
        assert_eq!(SourceConfig::from_row("sheets", &g.to_config_json()).unwrap(), g);
        let err = g.build("sheet", &guild(&none)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("this server's own Google service account"), "{err}");
        let err = n.build("notion", &guild(&none)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("this server's own Notion integration token"), "{err}");
    }

    /// A guild reads only what it was given: its own sealed token (which opens for no other
    /// guild or source), or the deployment's only where the operator shares it.
    #[test]
    fn credentials_belong_to_one_guild() {
        beacon_http::install_crypto_provider();
        let deployment = KbCredentials {
            shared_with: vec![7],
            notion_token: Some(Secret::new("secret_deployment".into())),
            ..KbCredentials::default()
        };
        let keyring = beacon_crypto::Keyring::new([5; 32], Vec::new()).unwrap();
        let notion = |credential| SourceConfig::Notion {
            pages: vec!["p1".into()],
            databases: vec![],
            base_url: None,
            credential,
        };
        let as_guild = |guild_id| Credentials { guild_id, deployment: &deployment, keyring: Some(&keyring) };
        // Shared with guild 7 only.
        assert!(notion(None).build("wiki", &as_guild(7)).is_ok());
        let err = notion(None).build("wiki", &as_guild(8)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("own Notion integration token"), "{err}");
        // Guild 8's own token opens for guild 8's source `wiki`, and nowhere else.
        let sealed = keyring.seal("secret_guild8", &Credentials::aad(8, "wiki")).unwrap();
        assert!(notion(Some(sealed.clone())).build("wiki", &as_guild(8)).is_ok());
        assert!(notion(Some(sealed.clone())).build("wiki", &as_guild(9)).is_err(), "copied to another guild");
        assert!(notion(Some(sealed)).build("other", &as_guild(8)).is_err(), "copied to another source");
        // Ids are required: "every page the integration can see" is not a source.
        let everything = SourceConfig::Notion { pages: vec![], databases: vec![], base_url: None, credential: None };
        assert!(everything.build("all", &as_guild(7)).is_err());
    }

    #[test]
    fn first_h1_skips_code_and_deeper_headings() {
        assert_eq!(first_h1("## Sub\n```\n# code\n```\n# Real #"), Some("Real".into()));
        assert_eq!(first_h1("no heading"), None);
    }
}
