//! A Google Sheets range as a knowledge source.
//!
//! Authenticates as a service account (the key file, base64-encoded, in
//! `BEACON_GOOGLE_SA_BASE64` in the configuration): an RS256-signed JWT (`iss`, `scope`, `aud`, `iat`, `exp`) is
//! exchanged at the key's `token_uri` with the JWT bearer grant, and the access token is cached
//! until shortly before it expires (or until the API refuses it). The values API
//! (`GET /v4/spreadsheets/{id}/values/{range}`) returns the cells; the first row names the
//! columns and every further row becomes one document (`Column: value` lines), titled by a
//! configured column or the row's first cell.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{KbError, Result};
use crate::source::{BoxFuture, Source, SourceDocument};

/// Google's Sheets API.
pub const SHEETS_BASE_URL: &str = "https://sheets.googleapis.com";
/// Read-only access to spreadsheets.
pub const SHEETS_SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN_SECS: u64 = 60;
/// Lifetime requested for the signed assertion (Google allows at most an hour).
const ASSERTION_LIFETIME_SECS: u64 = 3600;

fn source_err(message: impl Into<String>) -> KbError {
    KbError::Source { source_name: "sheets".into(), message: message.into() }
}

/// The parts of a service-account key file the source needs.
#[derive(Clone, serde::Deserialize)]
pub struct ServiceAccountKey {
    /// The account's e-mail (`iss` of the assertion).
    pub client_email: String,
    /// PKCS#8 private key, PEM.
    pub private_key: String,
    /// Where assertions are exchanged for access tokens.
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Parses a key file (JSON).
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|source| KbError::Json { what: "sheets: service-account key".into(), source })
    }

    /// Parses the base64 of a key file.
    pub fn from_base64(b64: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(b64.trim().as_bytes())
            .map_err(|e| source_err(format!("the service-account key is not base64: {e}")))?;
        Self::from_json(&String::from_utf8_lossy(&bytes))
    }

    fn key_pair(&self) -> Result<RsaKeyPair> {
        let body: String =
            self.private_key.lines().filter(|l| !l.starts_with("-----") && !l.trim().is_empty()).collect();
        let der = STANDARD.decode(body.trim()).map_err(|_| source_err("private_key is not PEM"))?;
        RsaKeyPair::from_pkcs8(&der).map_err(|e| source_err(format!("private_key: {e}")))
    }

    /// The signed JWT bearer assertion for `scope`, issued at `iat` (unix seconds).
    pub fn assertion(&self, scope: &str, iat: u64) -> Result<String> {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(
            json!({
                "iss": self.client_email,
                "scope": scope,
                "aud": self.token_uri,
                "iat": iat,
                "exp": iat + ASSERTION_LIFETIME_SECS,
            })
            .to_string(),
        );
        let message = format!("{header}.{claims}");
        let pair = self.key_pair()?;
        let mut sig = vec![0u8; pair.public().modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), message.as_bytes(), &mut sig)
            .map_err(|_| source_err("signing the assertion failed"))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// Which cells to read and how rows become documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetsConfig {
    /// API base URL (default [`SHEETS_BASE_URL`]; tests point it at a fake).
    pub base_url: String,
    /// The spreadsheet id (from its URL).
    pub spreadsheet_id: String,
    /// A1 range, e.g. `FAQ!A1:D`.
    pub range: String,
    /// Header of the column titling each row (default: the row's first cell).
    pub title_column: Option<String>,
}

impl SheetsConfig {
    /// Reads `range` of `spreadsheet_id` from Google.
    pub fn new(spreadsheet_id: impl Into<String>, range: impl Into<String>) -> Self {
        SheetsConfig {
            base_url: SHEETS_BASE_URL.into(),
            spreadsheet_id: spreadsheet_id.into(),
            range: range.into(),
            title_column: None,
        }
    }
}

struct CachedToken {
    token: String,
    renew_at: Instant,
}

/// Rows of a Google Sheets range (see the module docs).
pub struct SheetsSource {
    id: String,
    config: SheetsConfig,
    key: ServiceAccountKey,
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for SheetsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SheetsSource").field("id", &self.id).field("config", &self.config).finish_non_exhaustive()
    }
}

impl SheetsSource {
    /// A source authenticating with `key`, identified as `id`.
    pub fn new(id: impl Into<String>, config: SheetsConfig, key: ServiceAccountKey) -> Result<Self> {
        let id = id.into();
        let http = beacon_http::client(&beacon_http::ClientOptions::with_timeout(Duration::from_secs(30)))?;
        Ok(SheetsSource { id, config, key, http, token: Mutex::new(None) })
    }

    /// A valid access token: the cached one, or a fresh one from the token URI.
    async fn access_token(&self, force: bool) -> Result<String> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some(c) = cached.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let key = &self.key;
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let assertion = key.assertion(SHEETS_SCOPE, iat)?;
        let resp = self
            .http
            .post(&key.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            // The assertion is base64url and dots: nothing in it needs escaping.
            .body(format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"))
            .send()
            .await
            .map_err(|source| KbError::Request { what: "sheets: token exchange".into(), source })?;
        let status = resp.status();
        let body = match crate::source::service_json(resp, "sheets", "token exchange").await {
            Ok(body) => body,
            Err(e) if status.is_success() => return Err(e),
            Err(_) => Value::Null,
        };
        if !status.is_success() {
            let why = body.get("error_description").or_else(|| body.get("error")).and_then(Value::as_str).unwrap_or("");
            return Err(source_err(format!("token exchange: {status}: {why}")));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| source_err("token exchange: no access_token"))?
            .to_string();
        let lifetime = body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let renew_at = Instant::now() + Duration::from_secs(lifetime.saturating_sub(EXPIRY_MARGIN_SECS));
        *cached = Some(CachedToken { token: token.clone(), renew_at });
        Ok(token)
    }

    async fn fetch_rows(&self) -> Result<Vec<Vec<String>>> {
        let url = format!(
            "{}/v4/spreadsheets/{}/values/{}",
            self.config.base_url.trim_end_matches('/'),
            encode(&self.config.spreadsheet_id),
            encode(&self.config.range)
        );
        let mut refreshed = false;
        loop {
            let token = self.access_token(refreshed).await?;
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|source| KbError::Request { what: "sheets: values".into(), source })?;
            let status = resp.status();
            // A token revoked or expired early: renew once.
            if status.as_u16() == 401 && !refreshed {
                refreshed = true;
                continue;
            }
            let body = crate::source::service_json(resp, "sheets", "values").await?;
            if !status.is_success() {
                let why = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
                return Err(source_err(format!("values: {status}: {why}")));
            }
            return Ok(values_rows(&body));
        }
    }

    async fn collect(&self) -> Result<Vec<SourceDocument>> {
        let rows = self.fetch_rows().await?;
        Ok(rows_to_documents(&self.config, &rows))
    }
}

impl Source for SheetsSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        Box::pin(self.collect())
    }
}

/// The rows of a `values.get` answer (`values`: rows of cells; a cell that is not a string is
/// its JSON text). For the fuzz harness too.
pub fn values_rows(body: &Value) -> Vec<Vec<String>> {
    body.get("values")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().map(|cells| cells.iter().map(cell_text).collect()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows after the header row as documents; empty rows are skipped. Keys are `row:{n}` with the
/// sheet's 1-based row number within the range.
pub fn rows_to_documents(config: &SheetsConfig, rows: &[Vec<String>]) -> Vec<SourceDocument> {
    let Some((header, body)) = rows.split_first() else { return Vec::new() };
    let title_idx =
        config.title_column.as_ref().and_then(|c| header.iter().position(|h| h.trim().eq_ignore_ascii_case(c.trim())));
    let url = (config.base_url == SHEETS_BASE_URL)
        .then(|| format!("https://docs.google.com/spreadsheets/d/{}", config.spreadsheet_id));
    let mut out = Vec::new();
    for (i, row) in body.iter().enumerate() {
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |j: usize| row.get(j).map(|t| t.trim()).filter(|t| !t.is_empty());
        let title =
            title_idx.and_then(cell).or_else(|| cell(0)).map_or_else(|| format!("Row {}", i + 2), str::to_owned);
        let mut text = String::new();
        for (j, cell) in row.iter().enumerate() {
            if cell.trim().is_empty() {
                continue;
            }
            let name = header.get(j).map(|h| h.trim()).filter(|h| !h.is_empty());
            match name {
                Some(h) => text.push_str(&format!("{h}: {}\n", cell.trim())),
                None => text.push_str(&format!("{}\n", cell.trim())),
            }
        }
        out.push(SourceDocument { key: format!("row:{}", i + 2), title, text, url: url.clone() });
    }
    out
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'!' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter().map(|row| row.iter().map(|c| c.to_string()).collect()).collect()
    }

    #[test]
    fn rows_become_documents_titled_by_column() {
        let mut cfg = SheetsConfig::new("sheet", "A1:C");
        cfg.title_column = Some("question".into());
        let docs = rows_to_documents(
            &cfg,
            &rows(&[&["Id", "Question", "Answer"], &["1", "Refunds?", "Within 30 days"], &[], &["2", "", "No title"]]),
        );
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].key, "row:2");
        assert_eq!(docs[0].title, "Refunds?");
        assert_eq!(docs[0].text, "Id: 1\nQuestion: Refunds?\nAnswer: Within 30 days\n");
        assert_eq!(docs[1].key, "row:4");
        assert_eq!(docs[1].title, "2", "an empty title cell falls back to the first cell");
        assert!(rows_to_documents(&cfg, &[]).is_empty());
    }

    #[test]
    fn key_parses_from_base64_and_hides_the_private_key() {
        let json = r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n","token_uri":"https://oauth2.googleapis.com/token"}"#;
        let key = ServiceAccountKey::from_base64(&STANDARD.encode(json)).unwrap();
        assert_eq!(key.client_email, "a@b");
        assert!(!format!("{key:?}").contains("PRIVATE"));
        assert!(key.assertion(SHEETS_SCOPE, 0).is_err(), "not a real key");
        assert!(ServiceAccountKey::from_base64("%%%").is_err());
        assert_eq!(encode("FAQ!A1:B 2"), "FAQ!A1:B%202");
    }
}
