//! Shared HTTP plumbing of the provider clients: sending with a timeout, mapping error answers,
//! reading Retry-After, scrubbing keys from messages, and decoding server-sent events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use beacon_config::Secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::error::LlmError;
use crate::types::{ChatStream, StreamEvent};

/// Longest provider error message kept in an [`LlmError`].
const MAX_MESSAGE: usize = 300;

/// Builds the HTTP client shared by a provider's calls (request timeouts are set per call).
pub(crate) fn client() -> Result<reqwest::Client, LlmError> {
    beacon_http::client(&beacon_http::ClientOptions::default()).map_err(|e| LlmError::HttpClient(Arc::new(e)))
}

/// Removes an API key from any text before it is stored in an error or logged.
#[derive(Debug, Clone)]
pub struct Scrubber {
    key: Option<Secret>,
}

impl Scrubber {
    /// A scrubber for `key`.
    pub fn new(key: Option<Secret>) -> Scrubber {
        Scrubber {
            // Very short keys would scrub ordinary words; real keys are long.
            key: key.filter(|k| k.expose().len() >= 4),
        }
    }

    /// `text` with every occurrence of the key replaced by `***`, truncated.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = match &self.key {
            Some(key) => text.replace(key.expose(), "***"),
            None => text.to_owned(),
        };
        if out.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
        }
        out
    }
}

/// One provider's HTTP endpoint set: client, auth headers, timeout and scrubber.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub client: reqwest::Client,
    pub provider: &'static str,
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub scrubber: Scrubber,
}

impl Api {
    /// An endpoint set whose requests carry `auth` (the key header, marked sensitive so it is
    /// never printed) plus `extra` headers.
    pub fn new(
        provider: &'static str,
        key: Option<&Secret>,
        auth: Option<(&'static str, String)>,
        extra: &[(&'static str, &'static str)],
        timeout: Duration,
    ) -> Result<Api, LlmError> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = auth {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| LlmError::Config(format!("{provider}: the API key contains invalid characters")))?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), value);
        }
        for (name, value) in extra {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        Ok(Api { client: client()?, provider, headers, timeout, scrubber: Scrubber::new(key.cloned()) })
    }

    fn transport(&self, e: &reqwest::Error) -> LlmError {
        if e.is_timeout() {
            return LlmError::Timeout { provider: self.provider.to_owned(), timeout: self.timeout };
        }
        // The URL never carries a key (keys travel in headers), but scrub anyway.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        LlmError::Transport { provider: self.provider.to_owned(), message: self.scrubber.scrub(&text) }
    }

    fn timeout_error(&self) -> LlmError {
        LlmError::Timeout { provider: self.provider.to_owned(), timeout: self.timeout }
    }

    /// Sends `body` and returns the response once its headers arrived with a success status.
    async fn send(&self, url: &str, body: &Value) -> Result<reqwest::Response, LlmError> {
        let request = self.client.post(url).headers(self.headers.clone()).json(body).send();
        let response = tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| self.timeout_error())?
            .map_err(|e| self.transport(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_response(response).await)
    }

    /// POSTs JSON and parses the JSON answer, all within the timeout.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Value, LlmError> {
        let work = async {
            let response = self.send(url, body).await?;
            let bytes = beacon_http::read_body(response, MAX_REPLY).await.map_err(|e| self.body_error(e))?;
            self.decode_json(&bytes)
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| self.timeout_error())?
    }

    /// A reply body as JSON (the nesting bounded by serde_json's recursion limit of 128).
    pub fn decode_json(&self, bytes: &[u8]) -> Result<Value, LlmError> {
        serde_json::from_slice::<Value>(bytes).map_err(|e| self.invalid(&format!("not JSON: {e}")))
    }

    /// POSTs JSON and returns the streaming response; the timeout applies to the headers and
    /// then to each gap between chunks.
    pub async fn post_stream(&self, url: &str, body: &Value) -> Result<reqwest::Response, LlmError> {
        self.send(url, body).await
    }

    fn body_error(&self, e: beacon_http::BodyError) -> LlmError {
        match e {
            beacon_http::BodyError::Read(e) => self.transport(&e),
            too_large @ beacon_http::BodyError::TooLarge { .. } => self.invalid(&too_large.to_string()),
        }
    }

    /// An [`LlmError::InvalidResponse`] with a scrubbed message.
    pub fn invalid(&self, message: &str) -> LlmError {
        LlmError::InvalidResponse { provider: self.provider.to_owned(), message: self.scrubber.scrub(message) }
    }

    async fn error_response(&self, response: reqwest::Response) -> LlmError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        // The message is what matters; a huge or broken error body is dropped, not read.
        let body = beacon_http::read_text(response, beacon_http::ERROR_BODY_LIMIT).await.unwrap_or_default();
        if status == 429 {
            return LlmError::RateLimited { provider: self.provider.to_owned(), retry_after };
        }
        LlmError::Http {
            provider: self.provider.to_owned(),
            status,
            message: self.scrubber.scrub(&error_message(&body)),
        }
    }
}

/// The human part of a provider's error body: `error.message` in all three dialects.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}

/// Retry delay the server asked for: OpenAI's `retry-after-ms`, then `Retry-After` in seconds.
/// (The HTTP-date form is not used by these providers and is ignored.)
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Largest JSON reply accepted from a provider, in bytes (a chat completion is a few KB; an
/// embeddings batch of 64 texts × 3,072 dimensions is about 4 MB of JSON).
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

/// Largest event stream accepted, in bytes all told: far beyond any `max_tokens` Beacon asks
/// for, so only a provider that never stops is cut off.
pub const MAX_STREAM: usize = 32 * 1024 * 1024;

/// Longest line of an event stream, in bytes. Providers send one JSON chunk per `data:` line
/// (a few KB); a line longer than this — a stream that never sends a newline — is refused
/// instead of buffered without end.
pub const MAX_SSE_LINE: usize = 1024 * 1024;

/// Largest event (all its `data:` lines together), in bytes.
pub const MAX_SSE_EVENT: usize = 4 * 1024 * 1024;

/// An event stream broke a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line without its end passed [`MAX_SSE_LINE`].
    #[error("an event-stream line is longer than {MAX_SSE_LINE} bytes")]
    LineTooLong,
    /// One event's data passed [`MAX_SSE_EVENT`].
    #[error("an event-stream event is larger than {MAX_SSE_EVENT} bytes")]
    EventTooLarge,
}

/// Incremental `text/event-stream` decoder (handles `\n`, `\r\n` and chunks split anywhere),
/// within [`MAX_SSE_LINE`] and [`MAX_SSE_EVENT`].
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline (so each byte is scanned once).
    scanned: usize,
    event: Option<String>,
    data: Vec<String>,
    data_len: usize,
}

impl SseDecoder {
    /// Feeds bytes, returning the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start + self.scanned..].iter().position(|b| *b == b'\n') {
            let end = start + self.scanned + pos;
            let raw = &self.buf[start..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_SSE_LINE {
                return Err(SseError::LineTooLong);
            }
            let line = String::from_utf8_lossy(raw).into_owned();
            self.scanned = 0;
            start = end + 1;
            self.line(&line, &mut out)?;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_SSE_LINE {
            return Err(SseError::LineTooLong);
        }
        Ok(out)
    }

    /// Ends the stream: a final event without its blank line is still delivered.
    pub fn finish(&mut self) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.scanned = 0;
            self.line(rest.trim_end_matches('\r'), &mut out)?;
        }
        self.line("", &mut out)?;
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if !self.data.is_empty() {
                out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data).join("\n") });
            }
            self.data_len = 0;
            self.event = None;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data_len += value.len() + 1;
                if self.data_len > MAX_SSE_EVENT {
                    return Err(SseError::EventTooLarge);
                }
                self.data.push(value.to_owned());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Turns a provider's SSE events into [`StreamEvent`]s.
pub(crate) trait SseHandler: Send + 'static {
    /// Handles one event.
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError>;
    /// Called when the body ends; must return the final [`StreamEvent::Done`] or an error if the
    /// stream ended before the provider said it was complete.
    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError>;
}

struct SseState<H> {
    response: Option<reqwest::Response>,
    decoder: SseDecoder,
    handler: H,
    queue: VecDeque<StreamEvent>,
    api: Api,
    finished: bool,
    /// Bytes of the body so far, bounded by [`MAX_STREAM`].
    received: usize,
}

impl<H: SseHandler> SseState<H> {
    fn feed(&mut self, events: Vec<SseEvent>) -> Result<(), LlmError> {
        for event in events {
            let out = self.handler.on_event(event)?;
            self.queue.extend(out);
        }
        Ok(())
    }

    /// One chunk of the body as it arrived.
    fn on_chunk(&mut self, bytes: &[u8]) -> Result<(), LlmError> {
        self.received += bytes.len();
        if self.received > MAX_STREAM {
            return Err(self.api.invalid(&format!("the event stream is larger than {MAX_STREAM} bytes")));
        }
        let events = self.decoder.push(bytes).map_err(|e| self.api.invalid(&e.to_string()))?;
        self.feed(events)
    }

    /// The end of the body.
    fn on_end(&mut self) -> Result<(), LlmError> {
        self.finished = true;
        self.response = None;
        let events = self.decoder.finish().map_err(|e| self.api.invalid(&e.to_string()))?;
        self.feed(events)?;
        let done = self.handler.finish()?;
        self.queue.extend(done);
        Ok(())
    }
}

fn sse_state<H: SseHandler>(api: &Api, response: Option<reqwest::Response>, handler: H) -> SseState<H> {
    SseState {
        response,
        decoder: SseDecoder::default(),
        handler,
        queue: VecDeque::new(),
        api: api.clone(),
        finished: false,
        received: 0,
    }
}

/// Streams `response` through `handler`. Each gap between chunks is bounded by the API timeout.
pub(crate) fn sse_stream<H: SseHandler>(api: &Api, response: reqwest::Response, handler: H) -> ChatStream {
    let state = sse_state(api, Some(response), handler);
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.queue.pop_front() {
                return Some((Ok(event), st));
            }
            if st.finished {
                return None;
            }
            let response = st.response.as_mut()?;
            let chunk = tokio::time::timeout(st.api.timeout, response.chunk()).await;
            let step = match chunk {
                Err(_) => Err(st.api.timeout_error()),
                Ok(Err(e)) => Err(st.api.transport(&e)),
                Ok(Ok(Some(bytes))) => st.on_chunk(&bytes),
                Ok(Ok(None)) => st.on_end(),
            };
            if let Err(e) = step {
                st.finished = true;
                st.queue.clear();
                return Some((Err(e), st));
            }
        }
    }))
}

/// The events `handler` makes of a body received as `chunks`, exactly as [`sse_stream`] makes
/// them (the same decoder and steps, without the network).
pub(crate) fn sse_replay<H: SseHandler>(api: &Api, chunks: &[&[u8]], handler: H) -> Result<Vec<StreamEvent>, LlmError> {
    let mut st = sse_state(api, None, handler);
    for chunk in chunks {
        st.on_chunk(chunk)?;
    }
    st.on_end()?;
    Ok(st.queue.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_decoding_handles_split_chunks_and_crlf() {
        let mut d = SseDecoder::default();
        let mut events = d.push(b"event: message_start\r\ndata: {\"a\":").unwrap();
        assert!(events.is_empty());
        events.extend(d.push(b"1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\ndata: [DONE]").unwrap());
        events.extend(d.finish().unwrap());
        assert_eq!(
            events,
            vec![
                SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() },
                SseEvent { event: None, data: "x\ny".into() },
                SseEvent { event: None, data: "[DONE]".into() },
            ]
        );
    }

    #[test]
    fn a_line_or_an_event_over_its_limit_is_refused() {
        // A stream that never ends its line, in small chunks.
        let mut d = SseDecoder::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut outcome = Ok(Vec::new());
        for _ in 0..=(MAX_SSE_LINE / chunk.len()) {
            outcome = d.push(&chunk);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(SseError::LineTooLong));
        // A line just under the limit passes.
        let mut d = SseDecoder::default();
        let mut line = b"data: ".to_vec();
        line.resize(MAX_SSE_LINE, b'y');
        line.extend_from_slice(b"\n\n");
        assert_eq!(d.push(&line).map(|e| e.len()), Ok(1));
        // Many short data lines that add up to too much.
        let mut d = SseDecoder::default();
        let many = "data: ".to_owned() + &"z".repeat(1000) + "\n";
        let outcome = (0..=(MAX_SSE_EVENT / 1000)).try_for_each(|_| d.push(many.as_bytes()).map(drop));
        assert_eq!(outcome, Err(SseError::EventTooLarge));
    }

    /// Takes every event, produces nothing: only the stream's own limits are under test.
    struct Drain;

    impl SseHandler for Drain {
        fn on_event(&mut self, _event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
            Ok(Vec::new())
        }

        fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_stream_past_its_size_is_cut_off() {
        // Events each well within their limits, but more of them than a stream may carry.
        beacon_http::install_crypto_provider();
        let api = Api::new("test", None, None, &[], Duration::from_secs(5)).expect("api");
        let event = format!("data: {}\n\n", "z".repeat(MAX_SSE_LINE / 2));
        let chunks: Vec<&[u8]> = (0..=(MAX_STREAM / event.len())).map(|_| event.as_bytes()).collect();
        match sse_replay(&api, &chunks, Drain) {
            Err(LlmError::InvalidResponse { message, .. }) => assert!(message.contains("larger than"), "{message}"),
            other => panic!("expected the stream cut off, got {other:?}"),
        }
        // One event fewer than the limit is read to its end.
        let within: Vec<&[u8]> = (0..(MAX_STREAM / event.len())).map(|_| event.as_bytes()).collect();
        assert!(sse_replay(&api, &within, Drain).is_ok());
    }

    #[test]
    fn scrubber_removes_key_and_truncates() {
        let s = Scrubber::new(Some(Secret::new("sk-live-123456".into())));
        assert_eq!(s.scrub("bad key sk-live-123456!"), "bad key ***!");
        let long = "é".repeat(400);
        let scrubbed = s.scrub(&long);
        assert!(scrubbed.len() <= MAX_MESSAGE + '…'.len_utf8());
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_message_extraction() {
        assert_eq!(error_message(r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#), "slow down");
        assert_eq!(error_message(" upstream broke "), "upstream broke");
    }
}
