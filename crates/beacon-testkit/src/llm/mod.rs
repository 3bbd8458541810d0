//! A fake LLM server speaking the providers' real wire formats, for tests of `beacon-llm`.
//!
//! One axum server on `127.0.0.1:0` serves:
//! - OpenAI-style chat completions and embeddings (`POST /v1/chat/completions`,
//!   `POST /v1/embeddings`) — what OpenAI, xAI and OpenAI-compatible servers speak;
//! - Anthropic Messages (`POST /v1/messages`);
//! - Gemini (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
//!   `:batchEmbedContents`).
//!
//! Replies are scripted per dialect ([`FakeLlm::push`]) and rendered in that dialect: JSON or
//! SSE (when the request asks to stream) with text, tool calls and usage blocks; or an error
//! status (429 with `Retry-After`, 5xx) in the provider's error shape, optionally after a delay.
//! Every request is recorded with its headers and body. With an empty script the server answers
//! `"fake reply"`.
//!
//! ```no_run
//! use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let fake = FakeLlm::start().await?;
//! fake.push(Dialect::Anthropic, FakeReply::text("Hello!").usage(FakeUsage::new(12, 3)));
//! fake.push(Dialect::OpenAi, FakeReply::rate_limited("2"));
//! // Point a client at fake.base_url() (Anthropic, Gemini) or fake.openai_base_url().
//! # Ok(())
//! # }
//! ```

mod render;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Which provider API a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI chat completions (also xAI and OpenAI-compatible servers).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini.
    Gemini,
}

/// Token counts a scripted reply reports, rendered in each dialect's usage block.
/// `input` counts all prompt tokens, including `cached_input` and `cache_write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FakeUsage {
    /// All prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Prompt tokens read from cache.
    pub cached_input: u64,
    /// Prompt tokens written to cache (Anthropic only reports these).
    pub cache_write: u64,
}

impl FakeUsage {
    /// `input` prompt tokens and `output` generated tokens, nothing cached.
    pub fn new(input: u64, output: u64) -> FakeUsage {
        FakeUsage { input, output, ..FakeUsage::default() }
    }

    /// With cache reads and writes (both counted inside `input`).
    pub fn cached(mut self, cached_input: u64, cache_write: u64) -> FakeUsage {
        self.cached_input = cached_input;
        self.cache_write = cache_write;
        self
    }
}

/// A tool call in a scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    /// Call id (Gemini renders it as `functionCall.id`).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments object.
    pub arguments: Value,
}

/// What the fake answers to the next request of a dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// Assistant text (for Anthropic requests that force a tool, JSON text is returned as that
    /// tool's input, as the real API does).
    Text {
        /// The text.
        text: String,
        /// Usage block.
        usage: FakeUsage,
    },
    /// Tool calls, optionally after some text.
    ToolCalls {
        /// Text before the calls.
        text: Option<String>,
        /// The calls.
        calls: Vec<FakeToolCall>,
        /// Usage block.
        usage: FakeUsage,
    },
    /// An error status in the dialect's error shape.
    Error {
        /// HTTP status.
        status: u16,
        /// `Retry-After` header value.
        retry_after: Option<String>,
        /// Error message.
        message: String,
        /// Append the API key the request carried to the message, like a careless provider
        /// (tests assert it never reaches Beacon's errors).
        echo_key: bool,
    },
    /// A stream that stops mid-way without its completion events (or a JSON body cut short).
    Truncated {
        /// Text sent before the cut.
        text: String,
    },
    /// Stream the reply in `pieces` chunks with `gap` between SSE frames (a slow model writing
    /// a long answer); no effect on JSON replies.
    Paced {
        /// How many chunks the text is cut into.
        pieces: usize,
        /// Wait between two frames.
        gap: Duration,
        /// The answer.
        then: Box<FakeReply>,
    },
    /// Wait, then answer.
    Delay {
        /// How long.
        delay: Duration,
        /// The answer.
        then: Box<FakeReply>,
    },
}

impl FakeReply {
    /// Text with a default usage of 10 in / 5 out.
    pub fn text(text: &str) -> FakeReply {
        FakeReply::Text { text: text.to_owned(), usage: FakeUsage::new(10, 5) }
    }

    /// One tool call (usage 20 in / 8 out).
    pub fn tool_call(id: &str, name: &str, arguments: Value) -> FakeReply {
        FakeReply::ToolCalls {
            text: None,
            calls: vec![FakeToolCall { id: id.to_owned(), name: name.to_owned(), arguments }],
            usage: FakeUsage::new(20, 8),
        }
    }

    /// An error status with a generic message.
    pub fn status(status: u16) -> FakeReply {
        FakeReply::Error {
            status,
            retry_after: None,
            message: format!("fake upstream error {status}"),
            echo_key: false,
        }
    }

    /// 429 with `Retry-After: {retry_after}`.
    pub fn rate_limited(retry_after: &str) -> FakeReply {
        FakeReply::Error {
            status: 429,
            retry_after: Some(retry_after.to_owned()),
            message: "rate limit reached".to_owned(),
            echo_key: false,
        }
    }

    /// An error whose message repeats the caller's API key.
    pub fn leaking_error(status: u16) -> FakeReply {
        FakeReply::Error { status, retry_after: None, message: "invalid request for key".to_owned(), echo_key: true }
    }

    /// Replaces the usage block (text and tool-call replies).
    pub fn usage(self, new: FakeUsage) -> FakeReply {
        match self {
            FakeReply::Text { text, .. } => FakeReply::Text { text, usage: new },
            FakeReply::ToolCalls { text, calls, .. } => FakeReply::ToolCalls { text, calls, usage: new },
            FakeReply::Delay { delay, then } => FakeReply::Delay { delay, then: Box::new(then.usage(new)) },
            FakeReply::Paced { pieces, gap, then } => FakeReply::Paced { pieces, gap, then: Box::new(then.usage(new)) },
            other => other,
        }
    }

    /// The same reply streamed in `pieces` chunks, `gap` apart (JSON replies are unchanged).
    pub fn paced(self, pieces: usize, gap: Duration) -> FakeReply {
        FakeReply::Paced { pieces, gap, then: Box::new(self) }
    }

    /// The same reply after `delay`.
    pub fn delayed(self, delay: Duration) -> FakeReply {
        FakeReply::Delay { delay, then: Box::new(self) }
    }
}

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    /// API used.
    pub dialect: Dialect,
    /// Path, e.g. `/v1/messages`.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// JSON body (`Null` when not JSON).
    pub body: Value,
    /// Whether it asked for a stream.
    pub stream: bool,
}

impl FakeRequest {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

pub(crate) struct Shared {
    replies: Mutex<HashMap<Dialect, VecDeque<FakeReply>>>,
    requests: Mutex<Vec<FakeRequest>>,
    ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running fake LLM server; stops when dropped.
#[derive(Debug)]
pub struct FakeLlm {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl FakeLlm {
    /// Starts serving on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<FakeLlm> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            replies: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            ids: AtomicU64::new(1),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/v1/messages", post(anthropic_messages))
            .route("/v1beta/models/{call}", post(gemini))
            .with_state(shared.clone());
        let cancel = CancellationToken::new();
        crate::serve_until_cancelled(listener, app, cancel.clone(), "llm");
        Ok(FakeLlm { shared, addr, cancel })
    }

    /// `http://127.0.0.1:PORT`: the base URL for Anthropic and Gemini clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL for OpenAI-style clients.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the answer to a later request of `dialect` (first in, first out).
    pub fn push(&self, dialect: Dialect, reply: FakeReply) {
        lock(&self.shared.replies).entry(dialect).or_default().push_back(reply);
    }

    /// Replies still queued for `dialect`.
    pub fn pending(&self, dialect: Dialect) -> usize {
        lock(&self.shared.replies).get(&dialect).map_or(0, VecDeque::len)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<FakeRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

fn record(shared: &Shared, dialect: Dialect, uri: &Uri, headers: &HeaderMap, body: &Bytes, stream: bool) -> Value {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    lock(&shared.requests).push(FakeRequest {
        dialect,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: json.clone(),
        stream,
    });
    json
}

fn next_reply(shared: &Shared, dialect: Dialect) -> FakeReply {
    lock(&shared.replies)
        .get_mut(&dialect)
        .and_then(VecDeque::pop_front)
        .unwrap_or_else(|| FakeReply::text("fake reply"))
}

/// How a streamed reply is cut and paced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    pub(crate) pieces: usize,
    pub(crate) gap: Duration,
}

/// Resolves delays and pacing, returning the reply to render and how to stream it.
async fn settle(mut reply: FakeReply) -> (FakeReply, Pacing) {
    let mut pacing = Pacing { pieces: 3, gap: Duration::ZERO };
    loop {
        reply = match reply {
            FakeReply::Delay { delay, then } => {
                tokio::time::sleep(delay).await;
                *then
            }
            FakeReply::Paced { pieces, gap, then } => {
                pacing = Pacing { pieces, gap };
                *then
            }
            other => return (other, pacing),
        };
    }
}

fn key_of(dialect: Dialect, headers: &HeaderMap) -> String {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    match dialect {
        Dialect::OpenAi => get("authorization").trim_start_matches("Bearer ").to_owned(),
        Dialect::Anthropic => get("x-api-key"),
        Dialect::Gemini => get("x-goog-api-key"),
    }
}

async fn openai_chat(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let stream = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["stream"].as_bool()).unwrap_or(false);
    let request = record(&shared, Dialect::OpenAi, &uri, &headers, &body, stream);
    let (reply, pacing) = settle(next_reply(&shared, Dialect::OpenAi)).await;
    render::openai(&shared, &request, reply, stream, &key_of(Dialect::OpenAi, &headers), pacing)
}

async fn openai_embeddings(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = record(&shared, Dialect::OpenAi, &uri, &headers, &body, false);
    render::openai_embeddings(&request)
}

async fn anthropic_messages(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let stream = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["stream"].as_bool()).unwrap_or(false);
    let request = record(&shared, Dialect::Anthropic, &uri, &headers, &body, stream);
    let (reply, pacing) = settle(next_reply(&shared, Dialect::Anthropic)).await;
    render::anthropic(&shared, &request, reply, stream, &key_of(Dialect::Anthropic, &headers), pacing)
}

async fn gemini(
    State(shared): State<Arc<Shared>>,
    Path(call): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (model, method) = call.split_once(':').unwrap_or((call.as_str(), ""));
    let stream = method == "streamGenerateContent";
    let request = record(&shared, Dialect::Gemini, &uri, &headers, &body, stream);
    match method {
        "generateContent" | "streamGenerateContent" => {
            let (reply, pacing) = settle(next_reply(&shared, Dialect::Gemini)).await;
            render::gemini(model, reply, stream, &key_of(Dialect::Gemini, &headers), pacing)
        }
        "batchEmbedContents" => render::gemini_embeddings(&request),
        _ => render::gemini_error(404, &format!("unknown method {method:?}"), None),
    }
}
