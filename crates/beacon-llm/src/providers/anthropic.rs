//! Anthropic Messages: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
//!
//! Prompt caching: with [`CacheHint::StablePrefix`] the system prompt and the last tool carry
//! `cache_control: {"type": "ephemeral"}`. Structured output forces a tool whose input schema is
//! the response schema, and returns that tool's input as the reply text.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::error::LlmError;
use crate::http::{Api, SseEvent, SseHandler, sse_replay, sse_stream};
use crate::provider::Provider;
use crate::providers::parse_arguments;
use crate::types::{
    CacheHint, ChatRequest, ChatResponse, ChatStream, ContentPart, Embeddings, FinishReason, Role, StreamEvent,
    ToolCall, Usage,
};

/// API version sent in `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Name of the forced tool used for structured output.
const STRUCTURED_TOOL: &str = "structured_response";

/// Client for the Anthropic Messages API.
#[derive(Debug)]
pub struct Anthropic {
    api: Api,
    base_url: String,
    model: String,
}

impl Anthropic {
    /// A client for `config`.
    pub fn new(config: &ProviderConfig, timeout: Duration) -> Result<Anthropic, LlmError> {
        let auth = config.api_key.as_ref().map(|k| ("x-api-key", k.expose().to_owned()));
        Ok(Anthropic {
            api: Api::new(
                "anthropic",
                config.api_key.as_ref(),
                auth,
                &[("anthropic-version", ANTHROPIC_VERSION)],
                timeout,
            )?,
            base_url: config.base_url.clone(),
            model: config.model.clone(),
        })
    }

    fn url(&self) -> String {
        format!("{}/v1/messages", self.base_url)
    }
}

fn body(model: &str, request: &ChatRequest, stream: bool) -> Value {
    let cache = request.cache_hint == CacheHint::StablePrefix;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(request.max_tokens_or_default()));
    if let Some(system) = &request.system {
        let mut block = json!({"type": "text", "text": system});
        if cache {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
        body.insert("system".into(), json!([block]));
    }
    body.insert("messages".into(), Value::Array(messages(request)));
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
        .collect();
    if let Some(schema) = &request.response_schema {
        tools.push(json!({
            "name": STRUCTURED_TOOL,
            "description": "Give your final answer as this tool's input.",
            "input_schema": schema,
        }));
        body.insert("tool_choice".into(), json!({"type": "tool", "name": STRUCTURED_TOOL}));
    }
    if cache && let Some(last) = tools.last_mut() {
        last["cache_control"] = json!({"type": "ephemeral"});
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

fn messages(request: &ChatRequest) -> Vec<Value> {
    request
        .messages
        .iter()
        .map(|m| {
            let content: Vec<Value> = m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => json!({"type": "text", "text": text}),
                    ContentPart::ToolCall(c) => {
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                    }
                    ContentPart::ToolResult { call_id, content, is_error, .. } => {
                        json!({"type": "tool_result", "tool_use_id": call_id,
                        "content": content, "is_error": is_error})
                    }
                })
                .collect();
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

/// Anthropic's `input_tokens` excludes cache reads and writes; Beacon's input counts them all.
fn merge_usage(into: &mut Usage, v: &Value) {
    let uncached = v.get("input_tokens").and_then(Value::as_u64);
    let write = v.get("cache_creation_input_tokens").and_then(Value::as_u64);
    let read = v.get("cache_read_input_tokens").and_then(Value::as_u64);
    if let Some(w) = write {
        into.cache_write_tokens = w;
    }
    if let Some(r) = read {
        into.cached_input_tokens = r;
    }
    if let Some(u) = uncached {
        into.input_tokens = u + into.cache_write_tokens + into.cached_input_tokens;
    }
    if let Some(out) = v.get("output_tokens").and_then(Value::as_u64) {
        into.output_tokens = out;
    }
}

/// Applies the structured-output convention: the forced tool's input becomes the reply text.
fn take_structured(response: &mut ChatResponse, structured: bool) {
    if !structured {
        return;
    }
    if let Some(pos) = response.tool_calls.iter().position(|c| c.name == STRUCTURED_TOOL) {
        let call = response.tool_calls.remove(pos);
        response.text = call.arguments.to_string();
        if response.finish_reason == FinishReason::ToolCalls && response.tool_calls.is_empty() {
            response.finish_reason = FinishReason::Stop;
        }
    }
}

fn parse_response(api: &Api, model: &str, v: &Value, structured: bool) -> Result<ChatResponse, LlmError> {
    let blocks = v["content"].as_array().ok_or_else(|| api.invalid("no content[] in the message"))?;
    let mut response = ChatResponse::empty(v["model"].as_str().unwrap_or(model));
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => response.text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => response.tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].clone(),
            }),
            _ => {}
        }
    }
    response.finish_reason = finish_reason(v["stop_reason"].as_str());
    merge_usage(&mut response.usage, &v["usage"]);
    take_structured(&mut response, structured);
    Ok(response)
}

enum Block {
    Text,
    Tool { id: String, name: String, json: String },
}

/// Assembles the Messages event stream.
struct StreamHandler {
    api: Api,
    response: ChatResponse,
    blocks: BTreeMap<u64, Block>,
    structured: bool,
    stopped: bool,
}

impl StreamHandler {
    fn new(api: &Api, model: &str, structured: bool) -> StreamHandler {
        StreamHandler {
            api: api.clone(),
            response: ChatResponse::empty(model),
            blocks: BTreeMap::new(),
            structured,
            stopped: false,
        }
    }
}

/// A whole reply body read as [`Anthropic::chat`] reads it (for the fuzz harness).
pub(crate) fn read_reply(api: &Api, model: &str, body: &[u8], structured: bool) -> Result<ChatResponse, LlmError> {
    parse_response(api, model, &api.decode_json(body)?, structured)
}

/// A streamed reply read as [`Anthropic::chat_stream`] reads it (for the fuzz harness).
pub(crate) fn read_stream(
    api: &Api,
    model: &str,
    chunks: &[&[u8]],
    structured: bool,
) -> Result<Vec<StreamEvent>, LlmError> {
    sse_replay(api, chunks, StreamHandler::new(api, model, structured))
}

impl SseHandler for StreamHandler {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let v: Value =
            serde_json::from_str(&event.data).map_err(|e| self.api.invalid(&format!("bad stream event: {e}")))?;
        let kind = event.event.as_deref().or(v["type"].as_str()).unwrap_or_default();
        let index = v["index"].as_u64().unwrap_or(0);
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                if let Some(model) = v.pointer("/message/model").and_then(Value::as_str) {
                    self.response.model = model.to_owned();
                }
                merge_usage(&mut self.response.usage, &v["message"]["usage"]);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                let entry = match block["type"].as_str() {
                    Some("tool_use") => Block::Tool {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        json: String::new(),
                    },
                    _ => Block::Text,
                };
                self.blocks.insert(index, entry);
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match (delta["type"].as_str(), self.blocks.get_mut(&index)) {
                    (Some("text_delta"), _) => {
                        let text = delta["text"].as_str().unwrap_or_default();
                        if !text.is_empty() {
                            self.response.text.push_str(text);
                            out.push(StreamEvent::TextDelta(text.to_owned()));
                        }
                    }
                    (Some("input_json_delta"), Some(Block::Tool { json, .. })) => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(Block::Tool { id, name, json }) = self.blocks.remove(&index) {
                    let call =
                        ToolCall { id, name, arguments: parse_arguments(if json.is_empty() { "{}" } else { &json }) };
                    self.response.tool_calls.push(call.clone());
                    if !(self.structured && call.name == STRUCTURED_TOOL) {
                        out.push(StreamEvent::ToolCall(call));
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.response.finish_reason = finish_reason(Some(reason));
                }
                merge_usage(&mut self.response.usage, &v["usage"]);
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let message = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("stream error");
                let overloaded = v.pointer("/error/type").and_then(Value::as_str) == Some("overloaded_error");
                return Err(if overloaded {
                    LlmError::Http {
                        provider: "anthropic".into(),
                        status: 529,
                        message: self.api.scrubber.scrub(message),
                    }
                } else {
                    self.api.invalid(message)
                });
            }
            _ => {}
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if !self.stopped {
            return Err(self.api.invalid("stream ended before message_stop"));
        }
        let mut response = self.response.clone();
        take_structured(&mut response, self.structured);
        if self.structured && !response.text.is_empty() {
            // The structured answer arrived as tool input, not as text deltas.
            return Ok(vec![StreamEvent::TextDelta(response.text.clone()), StreamEvent::Done(response)]);
        }
        Ok(vec![StreamEvent::Done(response)])
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let v = self.api.post_json(&self.url(), &body(model, request, false)).await?;
        parse_response(&self.api, model, &v, request.response_schema.is_some())
    }

    async fn chat_stream(&self, model: &str, request: &ChatRequest) -> Result<ChatStream, LlmError> {
        let response = self.api.post_stream(&self.url(), &body(model, request, true)).await?;
        Ok(sse_stream(&self.api, response, StreamHandler::new(&self.api, model, request.response_schema.is_some())))
    }

    async fn embed(&self, _inputs: &[String]) -> Result<Embeddings, LlmError> {
        Err(LlmError::Unsupported { provider: "anthropic".into(), feature: "embeddings" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Message, Tool};

    #[test]
    fn caching_and_structured_output_mapping() {
        let request = ChatRequest {
            system: Some("policy".into()),
            messages: vec![Message::user("q")],
            tools: vec![Tool { name: "t".into(), description: "d".into(), parameters: json!({"type": "object"}) }],
            response_schema: Some(json!({"type": "object"})),
            cache_hint: CacheHint::StablePrefix,
            ..ChatRequest::default()
        };
        let b = body("claude-haiku-4-5", &request, false);
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["tools"][1]["name"], STRUCTURED_TOOL);
        assert_eq!(b["tools"][1]["cache_control"]["type"], "ephemeral");
        assert!(b["tools"][0].get("cache_control").is_none());
        assert_eq!(b["tool_choice"]["name"], STRUCTURED_TOOL);
        assert_eq!(b["max_tokens"], 1024);
    }

    #[test]
    fn usage_counts_cache_tokens_as_input() {
        let mut u = Usage::default();
        merge_usage(
            &mut u,
            &json!({"input_tokens": 10, "cache_creation_input_tokens": 100,
                    "cache_read_input_tokens": 1000, "output_tokens": 1}),
        );
        merge_usage(&mut u, &json!({"output_tokens": 42}));
        assert_eq!(
            u,
            Usage { input_tokens: 1110, output_tokens: 42, cached_input_tokens: 1000, cache_write_tokens: 100 }
        );
    }
}
