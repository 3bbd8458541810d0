//! A fake Notion API for tests of the knowledge base's Notion source.
//!
//! One axum server on `127.0.0.1:0` serves the endpoints the source uses, in Notion's wire shapes:
//! `POST /v1/search`, `GET /v1/pages/{id}`, `GET /v1/blocks/{id}/children` and
//! `POST /v1/databases/{id}/query` (both paginated with `start_cursor`/`page_size`, answering
//! `has_more`/`next_cursor`). Every request must carry `Authorization: Bearer <token>` and a
//! `Notion-Version` header. A token bucket (3 requests/s on average, bursts of 3) answers `429`
//! with `Retry-After` like Notion does; faults can be injected; every request is recorded.
//!
//! ```no_run
//! use beacon_testkit::notion::{FakeNotion, NotionBlock};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let fake = FakeNotion::start().await?;
//! let page = fake.add_page("Refunds", vec![NotionBlock::heading(1, "Policy"), NotionBlock::paragraph("30 days.")]);
//! // Point a client at fake.base_url() with fake.token(), then:
//! assert_eq!(fake.count_status(429), 0);
//! # let _ = page;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The largest `page_size` Notion accepts.
const NOTION_MAX_PAGE_SIZE: usize = 100;

/// One block of page content, with its nested children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotionBlock {
    /// Notion's block type (`paragraph`, `heading_1`, `bulleted_list_item`, `code`, `toggle`, …).
    pub kind: String,
    /// The block's plain text.
    pub text: String,
    /// Language of a `code` block.
    pub language: Option<String>,
    /// Nested blocks (served through their own `blocks/{id}/children` endpoint).
    pub children: Vec<NotionBlock>,
}

impl NotionBlock {
    /// A block of any type with plain text.
    pub fn new(kind: &str, text: &str) -> Self {
        NotionBlock { kind: kind.into(), text: text.into(), language: None, children: Vec::new() }
    }
    /// A paragraph.
    pub fn paragraph(text: &str) -> Self {
        Self::new("paragraph", text)
    }
    /// `heading_1`..`heading_3`.
    pub fn heading(level: u8, text: &str) -> Self {
        Self::new(&format!("heading_{}", level.clamp(1, 3)), text)
    }
    /// A bulleted list item.
    pub fn bullet(text: &str) -> Self {
        Self::new("bulleted_list_item", text)
    }
    /// A numbered list item.
    pub fn numbered(text: &str) -> Self {
        Self::new("numbered_list_item", text)
    }
    /// A code block.
    pub fn code(language: &str, text: &str) -> Self {
        NotionBlock { language: Some(language.into()), ..Self::new("code", text) }
    }
    /// A toggle with hidden children.
    pub fn toggle(text: &str, children: Vec<NotionBlock>) -> Self {
        NotionBlock { children, ..Self::new("toggle", text) }
    }
    /// The same block with children.
    pub fn with_children(mut self, children: Vec<NotionBlock>) -> Self {
        self.children = children;
        self
    }
}

/// Options of the fake.
#[derive(Debug, Clone)]
pub struct FakeNotionOptions {
    /// Largest page of results served, whatever `page_size` asks (forces pagination in tests).
    pub max_page_size: usize,
    /// Average requests per second allowed (Notion: 3); also the burst size.
    pub requests_per_second: u32,
}

impl Default for FakeNotionOptions {
    fn default() -> Self {
        FakeNotionOptions { max_page_size: NOTION_MAX_PAGE_SIZE, requests_per_second: 3 }
    }
}

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotionRequest {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct StoredBlock {
    id: String,
    block: NotionBlock,
    children: Vec<String>,
}

#[derive(Debug, Clone)]
struct Page {
    id: String,
    title: String,
    database: Option<String>,
    children: Vec<String>,
}

#[derive(Debug, Default)]
struct Data {
    pages: Vec<Page>,
    blocks: HashMap<String, StoredBlock>,
    databases: Vec<(String, String, Vec<String>)>,
    faults: VecDeque<u16>,
    requests: Vec<NotionRequest>,
    next_id: u64,
    /// Token bucket: tokens left and when it was last refilled.
    tokens: f64,
    refilled: Option<Instant>,
}

struct Shared {
    opts: FakeNotionOptions,
    token: String,
    data: Mutex<Data>,
    base_url: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Notion; stops when dropped.
pub struct FakeNotion {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for FakeNotion {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::fmt::Debug for FakeNotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNotion").field("base_url", &self.shared.base_url).finish()
    }
}

impl FakeNotion {
    /// Starts with default options (pages of up to 100, 3 requests/s).
    pub async fn start() -> std::io::Result<FakeNotion> {
        Self::start_with(FakeNotionOptions::default()).await
    }

    /// Starts with `opts`.
    pub async fn start_with(opts: FakeNotionOptions) -> std::io::Result<FakeNotion> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let rps = f64::from(opts.requests_per_second.max(1));
        let shared = Arc::new(Shared {
            opts,
            token: format!("secret_fake_{:016x}", fastrand::u64(..)),
            data: Mutex::new(Data { tokens: rps, ..Data::default() }),
            base_url: format!("http://{addr}"),
        });
        let app = Router::new()
            .route("/v1/search", post(search))
            .route("/v1/pages/{id}", get(page))
            .route("/v1/blocks/{id}/children", get(children))
            .route("/v1/databases/{id}/query", post(query_database))
            .with_state(shared.clone());
        let cancel = CancellationToken::new();
        crate::serve_until_cancelled(listener, app, cancel.clone(), "notion");
        Ok(FakeNotion { shared, cancel })
    }

    /// `http://127.0.0.1:PORT` (the API is under `/v1`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The only integration token accepted.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// The public URL the fake reports for a page.
    pub fn page_url(&self, id: &str) -> String {
        page_url(id)
    }

    /// Adds a top-level page (found by search) and returns its id.
    pub fn add_page(&self, title: &str, blocks: Vec<NotionBlock>) -> String {
        let mut d = self.shared.lock();
        insert_page(&mut d, title, None, blocks)
    }

    /// Adds a database whose rows are pages titled `rows[i].0` with content `rows[i].1`; returns
    /// the database id and the row page ids.
    pub fn add_database(&self, title: &str, rows: Vec<(String, Vec<NotionBlock>)>) -> (String, Vec<String>) {
        let mut d = self.shared.lock();
        let db = new_id(&mut d);
        let ids: Vec<String> =
            rows.into_iter().map(|(t, blocks)| insert_page(&mut d, &t, Some(db.clone()), blocks)).collect();
        d.databases.push((db.clone(), title.to_string(), ids.clone()));
        (db, ids)
    }

    /// The next `times` requests are answered with `status` (429 with `Retry-After: 1`).
    pub fn inject_fault(&self, status: u16, times: usize) {
        let mut d = self.shared.lock();
        d.faults.extend(std::iter::repeat_n(status, times));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<NotionRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests were answered with `status`.
    pub fn count_status(&self, status: u16) -> usize {
        self.shared.lock().requests.iter().filter(|r| r.status == status).count()
    }
}

fn page_url(id: &str) -> String {
    format!("https://www.notion.so/{}", id.replace('-', ""))
}

fn new_id(d: &mut Data) -> String {
    d.next_id += 1;
    format!("{:08x}-0000-4000-8000-{:012x}", fastrand::u32(..), d.next_id)
}

fn insert_blocks(d: &mut Data, blocks: Vec<NotionBlock>) -> Vec<String> {
    blocks
        .into_iter()
        .map(|mut b| {
            let id = new_id(d);
            let kids = std::mem::take(&mut b.children);
            let children = insert_blocks(d, kids);
            d.blocks.insert(id.clone(), StoredBlock { id: id.clone(), block: b, children });
            id
        })
        .collect()
}

fn insert_page(d: &mut Data, title: &str, database: Option<String>, blocks: Vec<NotionBlock>) -> String {
    let id = new_id(d);
    let children = insert_blocks(d, blocks);
    d.pages.push(Page { id: id.clone(), title: title.into(), database, children });
    id
}

fn rich_text(text: &str) -> Value {
    json!([{
        "type": "text",
        "text": {"content": text, "link": null},
        "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
        "plain_text": text,
        "href": null
    }])
}

fn page_json(p: &Page) -> Value {
    let parent = match &p.database {
        Some(db) => json!({"type": "database_id", "database_id": db}),
        None => json!({"type": "workspace", "workspace": true}),
    };
    let title_prop = if p.database.is_some() { "Name" } else { "title" };
    json!({
        "object": "page",
        "id": p.id,
        "created_time": "2026-01-01T00:00:00.000Z",
        "last_edited_time": "2026-01-01T00:00:00.000Z",
        "archived": false,
        "in_trash": false,
        "parent": parent,
        "url": page_url(&p.id),
        "properties": {
            title_prop: {"id": "title", "type": "title", "title": rich_text(&p.title)},
            "Tags": {"id": "tg", "type": "multi_select", "multi_select": []}
        }
    })
}

fn block_json(b: &StoredBlock) -> Value {
    let mut body = json!({"rich_text": rich_text(&b.block.text), "color": "default"});
    if b.block.kind == "code" {
        body = json!({"rich_text": rich_text(&b.block.text), "caption": [], "language": b.block.language.clone().unwrap_or_else(|| "plain text".into())});
    }
    if b.block.kind == "to_do" {
        body["checked"] = json!(false);
    }
    json!({
        "object": "block",
        "id": b.id,
        "type": b.block.kind,
        "has_children": !b.children.is_empty(),
        "archived": false,
        "in_trash": false,
        b.block.kind.clone(): body
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"object": "error", "status": status.as_u16(), "code": code, "message": message})))
        .into_response()
}

/// Auth, version header, injected faults and the rate limit; records the request. `Err` is the
/// response to send instead of serving.
fn gate(
    shared: &Shared,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    query: Option<String>,
) -> Result<(), Box<Response>> {
    let mut d = shared.lock();
    let outcome = (|| -> Result<(), Box<Response>> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {}", shared.token)) {
            return Err(Box::new(error(StatusCode::UNAUTHORIZED, "unauthorized", "API token is invalid.")));
        }
        if headers.get("notion-version").is_none() {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "missing_version",
                "Notion-Version header failed validation.",
            )));
        }
        if let Some(status) = d.faults.pop_front() {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = error(code, "injected", "injected fault");
            if status == 429 {
                resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            }
            return Err(Box::new(resp));
        }
        let rate = f64::from(shared.opts.requests_per_second.max(1));
        let now = Instant::now();
        let elapsed = d.refilled.map_or(Duration::ZERO, |t| now.duration_since(t));
        d.tokens = (d.tokens + elapsed.as_secs_f64() * rate).min(rate);
        d.refilled = Some(now);
        if d.tokens < 1.0 {
            let wait = ((1.0 - d.tokens) / rate).ceil().max(1.0) as u64;
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "You have been rate limited.");
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
            return Err(Box::new(resp));
        }
        d.tokens -= 1.0;
        Ok(())
    })();
    let status = match &outcome {
        Ok(()) => 200,
        Err(r) => r.status().as_u16(),
    };
    d.requests.push(NotionRequest { method: method.into(), path: path.into(), query, status });
    outcome
}

/// One page of a list, Notion-style.
fn paginate(shared: &Shared, items: Vec<Value>, cursor: Option<&str>, page_size: Option<usize>) -> Response {
    let start = match cursor {
        None => 0,
        Some(c) => match c.strip_prefix("cursor-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return error(StatusCode::BAD_REQUEST, "validation_error", "start_cursor is invalid."),
        },
    };
    let size = page_size.unwrap_or(NOTION_MAX_PAGE_SIZE);
    if size == 0 || size > NOTION_MAX_PAGE_SIZE {
        return error(StatusCode::BAD_REQUEST, "validation_error", "page_size should be ≤ 100.");
    }
    let size = size.min(shared.opts.max_page_size.max(1));
    let end = (start + size).min(items.len());
    let has_more = end < items.len();
    let results: Vec<Value> = items[start..end].to_vec();
    axum::Json(json!({
        "object": "list",
        "results": results,
        "next_cursor": if has_more { Value::String(format!("cursor-{end}")) } else { Value::Null },
        "has_more": has_more,
        "type": "page_or_database",
    }))
    .into_response()
}

fn body_json(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "invalid_json", "Body is not valid JSON.")))
}

fn cursor_and_size(v: &Value) -> (Option<String>, Option<usize>) {
    (
        v.get("start_cursor").and_then(Value::as_str).map(str::to_owned),
        v.get("page_size").and_then(Value::as_u64).map(|n| n as usize),
    )
}

async fn search(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&shared, &headers, "POST", "/v1/search", None) {
        return *r;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let filter = v.pointer("/filter/value").and_then(Value::as_str).map(str::to_owned);
    let query = v.get("query").and_then(Value::as_str).unwrap_or("").to_lowercase();
    let items: Vec<Value> = {
        let d = shared.lock();
        let mut items = Vec::new();
        if filter.as_deref() != Some("database") {
            items.extend(d.pages.iter().filter(|p| p.title.to_lowercase().contains(&query)).map(page_json));
        }
        if filter.as_deref() != Some("page") {
            items.extend(d.databases.iter().filter(|db| db.1.to_lowercase().contains(&query)).map(|db| {
                json!({"object": "database", "id": db.0, "title": rich_text(&db.1), "url": page_url(&db.0), "properties": {}})
            }));
        }
        items
    };
    let (cursor, size) = cursor_and_size(&v);
    paginate(&shared, items, cursor.as_deref(), size)
}

async fn page(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&shared, &headers, "GET", &format!("/v1/pages/{id}"), None) {
        return *r;
    }
    let d = shared.lock();
    match d.pages.iter().find(|p| p.id == id) {
        Some(p) => axum::Json(page_json(p)).into_response(),
        None => error(StatusCode::NOT_FOUND, "object_not_found", "Could not find page."),
    }
}

async fn children(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = (!q.is_empty()).then(|| q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    if let Err(r) = gate(&shared, &headers, "GET", &format!("/v1/blocks/{id}/children"), query) {
        return *r;
    }
    let size = match q.get("page_size").map(|s| s.parse::<usize>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "validation_error", "page_size is not a number."),
    };
    let items: Option<Vec<Value>> = {
        let d = shared.lock();
        let ids = d
            .pages
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.children.clone())
            .or_else(|| d.blocks.get(&id).map(|b| b.children.clone()));
        ids.map(|ids| ids.iter().filter_map(|c| d.blocks.get(c)).map(block_json).collect())
    };
    match items {
        Some(items) => paginate(&shared, items, q.get("start_cursor").map(String::as_str), size),
        None => error(StatusCode::NOT_FOUND, "object_not_found", "Could not find block."),
    }
}

async fn query_database(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = gate(&shared, &headers, "POST", &format!("/v1/databases/{id}/query"), None) {
        return *r;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let items: Option<Vec<Value>> = {
        let d = shared.lock();
        d.databases
            .iter()
            .find(|db| db.0 == id)
            .map(|db| db.2.iter().filter_map(|pid| d.pages.iter().find(|p| &p.id == pid)).map(page_json).collect())
    };
    let (cursor, size) = cursor_and_size(&v);
    match items {
        Some(items) => paginate(&shared, items, cursor.as_deref(), size),
        None => error(StatusCode::NOT_FOUND, "object_not_found", "Could not find database."),
    }
}
