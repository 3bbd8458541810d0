//! One-time download of the embedding model from a Hugging Face-style hub, into a cache folder.
//!
//! Files are fetched from `{hub}/{repo}/resolve/{revision}/{file}`: the three a model needs
//! ([`MODEL_FILES`](crate::embed::MODEL_FILES)) and, when the repository has them, the
//! sentence-transformers files that describe pooling and prompts. Everything goes into a staging
//! folder that is renamed into place only when complete, so a crash or a failed download never
//! leaves a half model that looks whole. Each file's length is checked against `Content-Length`
//! and `X-Linked-Size`, and its SHA-256 against the hub's `X-Linked-Etag` (the LFS object id the
//! hub sends with the redirect for large files) when present.
//!
//! ```no_run
//! # async fn demo() -> Result<(), beacon_kb::KbError> {
//! use beacon_kb::ModelDownload;
//!
//! let download = ModelDownload::new("https://huggingface.co", "sentence-transformers/all-MiniLM-L6-v2", "data/models");
//! let dir = download.ensure().await?; // no network when the model is already cached
//! let model = beacon_kb::BertEmbedder::load(&dir)?;
//! # let _ = model;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, HeaderMap, LOCATION};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::embed::MODEL_FILES;
use crate::error::{KbError, Result};

/// The public hub.
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";
/// The model downloaded when none is configured.
pub const DEFAULT_MODEL_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Files fetched when the repository has them (a 404 is fine): pooling, prompts, input length.
pub const OPTIONAL_FILES: [&str; 3] =
    ["1_Pooling/config.json", "config_sentence_transformers.json", "sentence_bert_config.json"];

/// Where a model comes from and where it is kept.
#[derive(Debug, Clone)]
pub struct ModelDownload {
    /// Hub root, e.g. `https://huggingface.co`.
    pub hub_url: String,
    /// Repository, `owner/name`.
    pub repo: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// Folder holding downloaded models, one sub-folder per repository.
    pub cache_dir: PathBuf,
    /// Time allowed for connecting to the hub.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer (a stalled transfer fails instead of hanging).
    pub read_timeout: Duration,
}

fn download_error(what: impl std::fmt::Display) -> KbError {
    KbError::Model(format!("model download: {what}"))
}

fn request_error(file: &str, source: reqwest::Error) -> KbError {
    KbError::Request { what: format!("model download: {file}"), source }
}

impl ModelDownload {
    /// A download of `repo`'s `main` revision from `hub_url` into `cache_dir`.
    pub fn new(hub_url: &str, repo: &str, cache_dir: impl Into<PathBuf>) -> Self {
        ModelDownload {
            hub_url: hub_url.trim_end_matches('/').to_owned(),
            repo: repo.trim_matches('/').to_owned(),
            revision: "main".to_owned(),
            cache_dir: cache_dir.into(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// The folder the model lives in once downloaded: `{cache_dir}/{owner}--{name}` (the last
    /// part keeps the repository's name, which the model profile recognises families by).
    pub fn model_dir(&self) -> PathBuf {
        self.cache_dir.join(self.repo.replace('/', "--"))
    }

    /// Whether the cache already holds a complete model.
    pub fn is_cached(&self) -> bool {
        is_complete(&self.model_dir())
    }

    /// The model folder, downloading the model first unless it is already cached.
    pub async fn ensure(&self) -> Result<PathBuf> {
        let dir = self.model_dir();
        if is_complete(&dir) {
            return Ok(dir);
        }
        if self.repo.split('/').any(|p| p.is_empty() || p == ".." || p == ".") {
            return Err(download_error(format!("invalid repository name {:?}", self.repo)));
        }
        tokio::fs::create_dir_all(&self.cache_dir).await.map_err(|e| KbError::io(&self.cache_dir, e))?;
        let staging = self.cache_dir.join(format!(".{}.download-{}", self.repo.replace('/', "--"), std::process::id()));
        let _ = tokio::fs::remove_dir_all(&staging).await;
        let result = self.fetch_all(&staging).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
        match tokio::fs::rename(&staging, &dir).await {
            Ok(()) => Ok(dir),
            // Another process finished first: keep its copy.
            Err(_) if is_complete(&dir) => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Ok(dir)
            }
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Err(KbError::io(&dir, e))
            }
        }
    }

    async fn fetch_all(&self, staging: &Path) -> Result<()> {
        let http = beacon_http::client(&beacon_http::ClientOptions {
            connect_timeout: self.connect_timeout,
            timeout: None,
            read_timeout: Some(self.read_timeout),
            // Redirects are followed by hand: the hub puts the LFS hash on the redirect itself.
            follow_redirects: false,
        })?;
        for file in MODEL_FILES {
            self.fetch(&http, file, staging, true).await?;
        }
        for file in OPTIONAL_FILES {
            self.fetch(&http, file, staging, false).await?;
        }
        Ok(())
    }

    /// Downloads one file into `staging`; `Ok` without a file when an optional one is absent.
    async fn fetch(&self, http: &reqwest::Client, file: &str, staging: &Path, required: bool) -> Result<()> {
        let mut url = reqwest::Url::parse(&format!("{}/{}/resolve/{}/{file}", self.hub_url, self.repo, self.revision))
            .map_err(|e| download_error(format!("bad hub URL {:?}: {e}", self.hub_url)))?;
        let mut expected_sha: Option<String> = None;
        let mut expected_len: Option<u64> = None;
        let mut response = None;
        for _ in 0..8 {
            let r = http.get(url.clone()).send().await.map_err(|source| request_error(file, source))?;
            linked_metadata(r.headers(), &mut expected_sha, &mut expected_len);
            if r.status().is_redirection() {
                let location = r
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| download_error(format!("{file}: redirect without a location")))?;
                url = url.join(location).map_err(|e| download_error(format!("{file}: bad redirect: {e}")))?;
                continue;
            }
            response = Some(r);
            break;
        }
        let mut response = response.ok_or_else(|| download_error(format!("{file}: too many redirects")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && !required {
            return Ok(());
        }
        if !status.is_success() {
            return Err(download_error(format!("{file}: HTTP {status}")));
        }
        if let Some(len) = header_u64(response.headers(), CONTENT_LENGTH.as_str()) {
            match expected_len {
                Some(want) if want != len => {
                    return Err(download_error(format!("{file}: {len} bytes offered, {want} expected")));
                }
                _ => expected_len = Some(len),
            }
        }
        let target = staging.join(file);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| KbError::io(parent, e))?;
        }
        let mut out = tokio::fs::File::create(&target).await.map_err(|e| KbError::io(&target, e))?;
        let mut hash = Sha256::new();
        let mut written: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(|source| request_error(file, source))? {
            hash.update(&chunk);
            written += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| KbError::io(&target, e))?;
        }
        out.flush().await.map_err(|e| KbError::io(&target, e))?;
        out.sync_all().await.map_err(|e| KbError::io(&target, e))?;
        if let Some(want) = expected_len
            && want != written
        {
            return Err(download_error(format!("{file}: got {written} bytes, expected {want}")));
        }
        if let Some(want) = expected_sha {
            let got = hex::encode(hash.finalize());
            if got != want {
                return Err(download_error(format!("{file}: SHA-256 {got} does not match the hub's {want}")));
            }
        }
        Ok(())
    }
}

/// Whether `dir` holds every file a model needs.
fn is_complete(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The hub's `X-Linked-Etag` (an LFS object's SHA-256, quoted) and `X-Linked-Size`.
fn linked_metadata(headers: &HeaderMap, sha: &mut Option<String>, len: &mut Option<u64>) {
    if let Some(tag) = headers.get("x-linked-etag").and_then(|v| v.to_str().ok()) {
        let tag = tag.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase();
        if tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            *sha = Some(tag);
        }
    }
    if let Some(n) = header_u64(headers, "x-linked-size") {
        *len = Some(n);
    }
}
