//! Notion pages and databases as a knowledge source.
//!
//! Each page (a configured page, every row of a configured database, or — with nothing
//! configured — every page shared with the integration, found through `POST /v1/search`) becomes
//! one markdown document: its blocks (`GET /v1/blocks/{id}/children`, paginated, recursively) as
//! headings, paragraphs, lists, code, quotes and toggles' text. Requests are paced client-side
//! below Notion's limit of 3 per second; a `429` is retried after its `Retry-After` (bounded).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{KbError, Result};
use crate::source::{BoxFuture, Source, SourceDocument};

/// Notion's API.
pub const NOTION_BASE_URL: &str = "https://api.notion.com";
/// The API version requested (`Notion-Version`).
pub const NOTION_VERSION: &str = "2022-06-28";
/// Largest page size Notion serves.
const PAGE_SIZE: u32 = 100;
/// Deepest block nesting followed (Notion pages rarely nest deeper; guards against cycles).
const MAX_DEPTH: usize = 16;

/// What to read from Notion.
#[derive(Debug, Clone, PartialEq)]
pub struct NotionConfig {
    /// API base URL (default [`NOTION_BASE_URL`]; tests point it at a fake).
    pub base_url: String,
    /// Page ids read on their own.
    pub pages: Vec<String>,
    /// Database ids whose rows are read as pages.
    pub databases: Vec<String>,
    /// Requests per second, client-side (default 3, Notion's average limit; 0 disables pacing).
    pub requests_per_second: f64,
    /// How often one request is retried after `429` or a 5xx.
    pub max_retries: u32,
    /// Longest wait honoured from `Retry-After`.
    pub max_retry_wait: Duration,
}

impl Default for NotionConfig {
    fn default() -> Self {
        NotionConfig {
            base_url: NOTION_BASE_URL.into(),
            pages: Vec::new(),
            databases: Vec::new(),
            requests_per_second: 3.0,
            max_retries: 5,
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

fn source_err(message: impl Into<String>) -> KbError {
    KbError::Source { source_name: "notion".into(), message: message.into() }
}

/// Spaces requests at least `interval` apart.
struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    async fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if let Some(at) = *next
            && at > now
        {
            tokio::time::sleep_until(at).await;
        }
        *next = Some(Instant::now() + self.interval);
    }
}

/// Notion pages and databases (see the module docs).
pub struct NotionSource {
    id: String,
    config: NotionConfig,
    token: String,
    http: reqwest::Client,
    pacer: Pacer,
}

impl std::fmt::Debug for NotionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("NotionSource").field("id", &self.id).field("config", &self.config).finish_non_exhaustive()
    }
}

struct Page {
    id: String,
    title: String,
    url: Option<String>,
}

impl NotionSource {
    /// A source reading with `token`, identified as `id`.
    pub fn new(id: impl Into<String>, config: NotionConfig, token: impl Into<String>) -> Result<Self> {
        let (id, token) = (id.into(), token.into());
        let http = beacon_http::client(&beacon_http::ClientOptions::with_timeout(Duration::from_secs(30)))?;
        let interval = if config.requests_per_second > 0.0 {
            // A little slower than the limit, so server-side jitter never tips it over.
            Duration::from_secs_f64(1.05 / config.requests_per_second)
        } else {
            Duration::ZERO
        };
        Ok(NotionSource { id, config, token, http, pacer: Pacer { interval, next: Mutex::new(None) } })
    }

    /// One API call, paced and retried on 429/5xx.
    async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), path);
        let mut attempt = 0u32;
        loop {
            self.pacer.wait().await;
            let mut req =
                self.http.request(method.clone(), &url).bearer_auth(token).header("Notion-Version", NOTION_VERSION);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|source| KbError::Request { what: format!("notion: {method} {path}"), source })?;
            let status = resp.status();
            if status.is_success() {
                return crate::source::service_json(resp, "notion", &format!("{method} {path}")).await;
            }
            let retryable = status.as_u16() == 429 || status.is_server_error();
            if retryable && attempt < self.config.max_retries {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .unwrap_or_else(|| Duration::from_millis(500 << attempt.min(6)))
                    .min(self.config.max_retry_wait);
                tracing::debug!(status = status.as_u16(), ?wait, path, "notion asked to retry");
                attempt += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            // The message is what matters; a huge or broken error body is dropped, not read.
            let text = beacon_http::read_text(resp, beacon_http::ERROR_BODY_LIMIT).await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            return Err(source_err(format!("{method} {path}: {status}: {message}")));
        }
    }

    /// Every result of a paginated list endpoint.
    async fn list_all(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let v = if method == reqwest::Method::GET {
                let mut p = format!("{path}?page_size={PAGE_SIZE}");
                if let Some(c) = &cursor {
                    p.push_str("&start_cursor=");
                    p.push_str(&encode_query(c));
                }
                self.call(token, method.clone(), &p, None).await?
            } else {
                let mut b = body.clone().unwrap_or_else(|| json!({}));
                b["page_size"] = json!(PAGE_SIZE);
                if let Some(c) = &cursor {
                    b["start_cursor"] = json!(c);
                }
                self.call(token, method.clone(), path, Some(&b)).await?
            };
            if let Some(results) = v.get("results").and_then(Value::as_array) {
                out.extend(results.iter().cloned());
            }
            let more = v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
            cursor = v.get("next_cursor").and_then(Value::as_str).map(str::to_owned);
            if !more || cursor.is_none() {
                return Ok(out);
            }
        }
    }

    async fn pages(&self, token: &str) -> Result<Vec<Page>> {
        let mut pages = Vec::new();
        if self.config.pages.is_empty() && self.config.databases.is_empty() {
            let found = self
                .list_all(
                    token,
                    reqwest::Method::POST,
                    "/v1/search",
                    Some(json!({"filter": {"property": "object", "value": "page"}})),
                )
                .await?;
            pages.extend(found.iter().filter(|p| !is_archived(p)).filter_map(page_info));
        }
        for id in &self.config.pages {
            let v = self.call(token, reqwest::Method::GET, &format!("/v1/pages/{}", encode_path(id)), None).await?;
            pages.extend(page_info(&v));
        }
        for db in &self.config.databases {
            let rows = self
                .list_all(token, reqwest::Method::POST, &format!("/v1/databases/{}/query", encode_path(db)), None)
                .await?;
            pages.extend(rows.iter().filter(|p| !is_archived(p)).filter_map(page_info));
        }
        let mut seen = std::collections::HashSet::new();
        pages.retain(|p| seen.insert(p.id.clone()));
        Ok(pages)
    }

    /// Renders a block's children into `out` (recursively).
    async fn render_children(&self, token: &str, block_id: &str, depth: usize, out: &mut String) -> Result<()> {
        let blocks = self
            .list_all(token, reqwest::Method::GET, &format!("/v1/blocks/{}/children", encode_path(block_id)), None)
            .await?;
        let mut number = 0usize;
        for b in &blocks {
            if let Some((id, child_depth)) = render_listed_block(b, depth, &mut number, out) {
                Box::pin(self.render_children(token, &id, child_depth, out)).await?;
            }
        }
        Ok(())
    }

    async fn collect(&self) -> Result<Vec<SourceDocument>> {
        let token = &self.token;
        let mut docs = Vec::new();
        for page in self.pages(token).await? {
            let mut body = String::new();
            self.render_children(token, &page.id, 0, &mut body).await?;
            docs.push(page_document(page, &body));
        }
        Ok(docs)
    }
}

impl Source for NotionSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        Box::pin(self.collect())
    }
}

/// Renders one block of a list of children into `out` (`number` counts a run of numbered
/// items) and returns the block whose own children come next (its id and their depth), at most
/// [`MAX_DEPTH`] levels down.
fn render_listed_block(b: &Value, depth: usize, number: &mut usize, out: &mut String) -> Option<(String, usize)> {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
    *number = if kind == "numbered_list_item" { *number + 1 } else { 0 };
    render_block(b, depth, *number, out);
    let nested = b.get("has_children").and_then(Value::as_bool).unwrap_or(false)
        && !matches!(kind, "child_page" | "child_database")
        && depth < MAX_DEPTH;
    let id = b.get("id").and_then(Value::as_str).filter(|_| nested)?;
    let list = matches!(kind, "bulleted_list_item" | "numbered_list_item" | "to_do");
    Some((id.to_owned(), if list { depth + 1 } else { depth }))
}

fn page_document(page: Page, body: &str) -> SourceDocument {
    let text = format!("# {}\n\n{}", page.title, body.trim_end());
    SourceDocument { key: format!("notion:{}", page.id), title: page.title, text, url: page.url }
}

/// The document one page makes, from the API's page object and its blocks' `results` (a
/// block's children are given in its `children`, where the source asks the API for them): what [`NotionSource`] builds from
/// the same answers. `None` for an object that is not a live page. For the fuzz harness.
pub fn document_of(page: &Value, blocks: &[Value]) -> Option<SourceDocument> {
    if is_archived(page) {
        return None;
    }
    let page = page_info(page)?;
    let mut body = String::new();
    render_tree(blocks, 0, &mut body);
    Some(page_document(page, &body))
}

/// [`NotionSource`]'s walk over blocks whose children are given inline (`children`).
fn render_tree(blocks: &[Value], depth: usize, out: &mut String) {
    let mut number = 0usize;
    for b in blocks {
        if let Some((_, child_depth)) = render_listed_block(b, depth, &mut number, out) {
            let children = b.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            render_tree(children, child_depth, out);
        }
    }
}

fn is_archived(v: &Value) -> bool {
    v.get("archived").and_then(Value::as_bool).unwrap_or(false)
        || v.get("in_trash").and_then(Value::as_bool).unwrap_or(false)
}

/// Id, title (the `title` property) and URL of a page object.
fn page_info(v: &Value) -> Option<Page> {
    if v.get("object").and_then(Value::as_str) != Some("page") {
        return None;
    }
    let id = v.get("id").and_then(Value::as_str)?.to_string();
    let title = v
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|props| props.values().find(|p| p.get("type").and_then(Value::as_str) == Some("title")))
        .and_then(|p| p.get("title"))
        .map(plain_text)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "Untitled".to_string());
    let url = v.get("url").and_then(Value::as_str).map(str::to_owned);
    Some(Page { id, title, url })
}

/// The concatenated `plain_text` of a rich-text array.
pub fn plain_text(rich: &Value) -> String {
    rich.as_array()
        .map(|parts| parts.iter().filter_map(|p| p.get("plain_text").and_then(Value::as_str)).collect())
        .unwrap_or_default()
}

/// Appends one block as markdown. `depth` indents list items; `number` numbers ordered items.
fn render_block(b: &Value, depth: usize, number: usize, out: &mut String) {
    let Some(kind) = b.get("type").and_then(Value::as_str) else { return };
    let body = b.get(kind).unwrap_or(&Value::Null);
    let text = plain_text(body.get("rich_text").unwrap_or(&Value::Null));
    let indent = "  ".repeat(depth);
    match kind {
        "heading_1" | "heading_2" | "heading_3" => {
            let level = kind.trim_start_matches("heading_").parse::<usize>().unwrap_or(1);
            // The page title is the level-1 heading; page headings sit one level below it.
            out.push_str(&format!("{} {}\n\n", "#".repeat((level + 1).min(6)), text.trim()));
        }
        "paragraph" | "callout" | "toggle" => {
            if !text.trim().is_empty() {
                out.push_str(&format!("{indent}{text}\n\n"));
            }
        }
        "quote" => out.push_str(&format!("{indent}> {}\n\n", text.replace('\n', "\n> "))),
        "bulleted_list_item" => out.push_str(&format!("{indent}- {text}\n")),
        "numbered_list_item" => out.push_str(&format!("{indent}{}. {text}\n", number.max(1))),
        "to_do" => {
            let done = body.get("checked").and_then(Value::as_bool).unwrap_or(false);
            out.push_str(&format!("{indent}- [{}] {text}\n", if done { "x" } else { " " }));
        }
        "code" => {
            let lang = body.get("language").and_then(Value::as_str).unwrap_or_default();
            let lang = if lang == "plain text" { "" } else { lang };
            out.push_str(&format!("```{lang}\n{}\n```\n\n", text.trim_end()));
        }
        "divider" => out.push_str("---\n\n"),
        "child_page" | "child_database" => {
            if let Some(t) = body.get("title").and_then(Value::as_str) {
                out.push_str(&format!("{indent}{t}\n\n"));
            }
        }
        _ => {
            if !text.trim().is_empty() {
                out.push_str(&format!("{indent}{text}\n\n"));
            }
        }
    }
}

/// Percent-encodes an id for a path segment (Notion ids are hex and dashes; anything else is
/// escaped so a configured id cannot change the path).
fn encode_path(s: &str) -> String {
    encode_query(s)
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
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

    #[test]
    fn blocks_render_as_markdown() {
        let rt = |t: &str| json!([{"plain_text": t}]);
        let mut out = String::new();
        render_block(&json!({"type": "heading_1", "heading_1": {"rich_text": rt("Setup")}}), 0, 0, &mut out);
        render_block(
            &json!({"type": "bulleted_list_item", "bulleted_list_item": {"rich_text": rt("one")}}),
            1,
            0,
            &mut out,
        );
        render_block(
            &json!({"type": "numbered_list_item", "numbered_list_item": {"rich_text": rt("two")}}),
            0,
            2,
            &mut out,
        );
        render_block(
            &json!({"type": "code", "code": {"rich_text": rt("cargo run"), "language": "shell"}}),
            0,
            0,
            &mut out,
        );
        render_block(&json!({"type": "to_do", "to_do": {"rich_text": rt("done"), "checked": true}}), 0, 0, &mut out);
        assert_eq!(out, "## Setup\n\n  - one\n2. two\n```shell\ncargo run\n```\n\n- [x] done\n");
    }

    #[test]
    fn page_title_comes_from_the_title_property() {
        let page = json!({"object": "page", "id": "p1", "url": "https://notion.so/p1",
            "properties": {"Tags": {"type": "multi_select"}, "Name": {"type": "title", "title": [{"plain_text": "Re"}, {"plain_text": "funds"}]}}});
        let p = page_info(&page).unwrap();
        assert_eq!(
            (p.id.as_str(), p.title.as_str(), p.url.as_deref()),
            ("p1", "Refunds", Some("https://notion.so/p1"))
        );
        assert!(page_info(&json!({"object": "database", "id": "d"})).is_none());
        assert_eq!(encode_query("a b/c"), "a%20b%2Fc");
    }
}
