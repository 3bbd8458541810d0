//! OpenAI chat completions, also spoken by xAI and OpenAI-compatible servers (Ollama, vLLM,
//! llama.cpp): `POST {base}/chat/completions` and `POST {base}/embeddings`, `Authorization: Bearer`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::error::LlmError;
use crate::http::{Api, SseEvent, SseHandler, sse_replay, sse_stream};
use crate::provider::Provider;
use crate::providers::{parse_arguments, u64_at};
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, ContentPart, Embeddings, FinishReason, Role, StreamEvent, ToolCall, Usage,
};

/// Client for OpenAI-style APIs.
#[derive(Debug)]
pub struct OpenAi {
    api: Api,
    kind: ProviderKind,
    base_url: String,
    model: String,
    embedding_model: Option<String>,
}

impl OpenAi {
    /// A client for `config` (kind `openai`, `xai` or `openai-compatible`).
    pub fn new(config: &ProviderConfig, timeout: Duration) -> Result<OpenAi, LlmError> {
        let auth = config.api_key.as_ref().map(|k| ("authorization", format!("Bearer {}", k.expose())));
        Ok(OpenAi {
            api: Api::new(config.kind.as_str(), config.api_key.as_ref(), auth, &[], timeout)?,
            kind: config.kind,
            base_url: config.base_url.clone(),
            model: config.model.clone(),
            embedding_model: config.embedding_model.clone(),
        })
    }

    fn body(&self, model: &str, request: &ChatRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("messages".into(), Value::Array(messages(request)));
        // OpenAI deprecated `max_tokens` (reasoning models reject it); xAI and local servers
        // still expect it.
        let limit_field = if self.kind == ProviderKind::OpenAi { "max_completion_tokens" } else { "max_tokens" };
        body.insert(limit_field.into(), json!(request.max_tokens_or_default()));
        if let Some(t) = request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(schema) = &request.response_schema {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
            );
        }
        if stream {
            body.insert("stream".into(), json!(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }
}

/// The request's conversation in chat-completions form (tool results become `tool` messages).
fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(system) = &request.system {
        out.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        match message.role {
            Role::Assistant => {
                let text = message.text();
                let calls: Vec<Value> = message
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::ToolCall(c) => Some(json!({
                            "id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments.to_string()}})),
                        _ => None,
                    })
                    .collect();
                let mut m = json!({"role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                out.push(m);
            }
            Role::User => {
                let mut text = String::new();
                for part in &message.content {
                    match part {
                        ContentPart::Text { text: t } => text.push_str(t),
                        ContentPart::ToolResult { call_id, content, .. } => {
                            out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}))
                        }
                        ContentPart::ToolCall(_) => {}
                    }
                }
                if !text.is_empty() {
                    out.push(json!({"role": "user", "content": text}));
                }
            }
        }
    }
    out
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") | None => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: u64_at(v, "/prompt_tokens"),
        output_tokens: u64_at(v, "/completion_tokens"),
        cached_input_tokens: u64_at(v, "/prompt_tokens_details/cached_tokens"),
        cache_write_tokens: 0,
    }
}

fn parse_response(api: &Api, model: &str, v: &Value) -> Result<ChatResponse, LlmError> {
    let message = v.pointer("/choices/0/message").ok_or_else(|| api.invalid("no choices[0].message"))?;
    let mut response = ChatResponse::empty(v["model"].as_str().unwrap_or(model));
    response.text = message["content"].as_str().unwrap_or_default().to_owned();
    if let Some(calls) = message["tool_calls"].as_array() {
        for call in calls {
            response.tool_calls.push(ToolCall {
                id: call["id"].as_str().unwrap_or_default().to_owned(),
                name: call
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| api.invalid("tool call without a function name"))?
                    .to_owned(),
                arguments: parse_arguments(call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}")),
            });
        }
    }
    response.finish_reason = finish_reason(v.pointer("/choices/0/finish_reason").and_then(Value::as_str));
    if !response.tool_calls.is_empty() {
        response.finish_reason = FinishReason::ToolCalls;
    }
    response.usage = usage(&v["usage"]);
    Ok(response)
}

/// A whole reply body read as [`OpenAi::chat`] reads it (for the fuzz harness).
pub(crate) fn read_reply(api: &Api, model: &str, body: &[u8]) -> Result<ChatResponse, LlmError> {
    parse_response(api, model, &api.decode_json(body)?)
}

/// A streamed reply read as [`OpenAi::chat_stream`] reads it (for the fuzz harness).
pub(crate) fn read_stream(api: &Api, model: &str, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, LlmError> {
    sse_replay(api, chunks, StreamHandler::new(api, model))
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Assembles `chat.completion.chunk`s.
struct StreamHandler {
    api: Api,
    response: ChatResponse,
    calls: BTreeMap<u64, PartialCall>,
    saw_finish: bool,
    saw_done: bool,
}

impl StreamHandler {
    fn new(api: &Api, model: &str) -> StreamHandler {
        StreamHandler {
            api: api.clone(),
            response: ChatResponse::empty(model),
            calls: BTreeMap::new(),
            saw_finish: false,
            saw_done: false,
        }
    }

    fn flush_calls(&mut self) -> Vec<StreamEvent> {
        std::mem::take(&mut self.calls)
            .into_values()
            .map(|c| {
                let call = ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: parse_arguments(if c.arguments.is_empty() { "{}" } else { &c.arguments }),
                };
                self.response.tool_calls.push(call.clone());
                StreamEvent::ToolCall(call)
            })
            .collect()
    }
}

impl SseHandler for StreamHandler {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        if event.data.trim() == "[DONE]" {
            self.saw_done = true;
            return Ok(self.flush_calls());
        }
        let v: Value =
            serde_json::from_str(&event.data).map_err(|e| self.api.invalid(&format!("bad stream chunk: {e}")))?;
        if let Some(message) = v.pointer("/error/message").and_then(Value::as_str) {
            return Err(self.api.invalid(message));
        }
        if let Some(model) = v["model"].as_str() {
            self.response.model = model.to_owned();
        }
        if v["usage"].is_object() {
            self.response.usage = usage(&v["usage"]);
        }
        let mut out = Vec::new();
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(out);
        };
        if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
            && !text.is_empty()
        {
            self.response.text.push_str(text);
            out.push(StreamEvent::TextDelta(text.to_owned()));
        }
        if let Some(calls) = choice.pointer("/delta/tool_calls").and_then(Value::as_array) {
            for c in calls {
                let slot = self.calls.entry(c["index"].as_u64().unwrap_or(0)).or_default();
                if let Some(id) = c["id"].as_str() {
                    slot.id = id.to_owned();
                }
                if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                    slot.name.push_str(name);
                }
                if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                    slot.arguments.push_str(args);
                }
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.saw_finish = true;
            self.response.finish_reason = finish_reason(Some(reason));
            out.extend(self.flush_calls());
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if !self.saw_finish && !self.saw_done {
            return Err(self.api.invalid("stream ended before the reply was complete"));
        }
        let mut out = self.flush_calls();
        if !self.response.tool_calls.is_empty() {
            self.response.finish_reason = FinishReason::ToolCalls;
        }
        out.push(StreamEvent::Done(self.response.clone()));
        Ok(out)
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let url = format!("{}/chat/completions", self.base_url);
        let v = self.api.post_json(&url, &self.body(model, request, false)).await?;
        parse_response(&self.api, model, &v)
    }

    async fn chat_stream(&self, model: &str, request: &ChatRequest) -> Result<ChatStream, LlmError> {
        let url = format!("{}/chat/completions", self.base_url);
        let response = self.api.post_stream(&url, &self.body(model, request, true)).await?;
        Ok(sse_stream(&self.api, response, StreamHandler::new(&self.api, model)))
    }

    async fn embed(&self, inputs: &[String]) -> Result<Embeddings, LlmError> {
        let model = self.embedding_model.as_deref().ok_or(LlmError::Unsupported {
            provider: self.kind.as_str().to_owned(),
            feature: "embeddings (no embedding model configured)",
        })?;
        let url = format!("{}/embeddings", self.base_url);
        let v = self.api.post_json(&url, &json!({"model": model, "input": inputs})).await?;
        let data = v["data"].as_array().ok_or_else(|| self.api.invalid("no data[] in embeddings answer"))?;
        let mut indexed: Vec<(u64, Vec<f32>)> = data
            .iter()
            .map(|d| {
                let vector = d["embedding"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
                    .unwrap_or_default();
                (d["index"].as_u64().unwrap_or(0), vector)
            })
            .collect();
        indexed.sort_by_key(|(i, _)| *i);
        if indexed.len() != inputs.len() {
            return Err(self.api.invalid(&format!("{} embeddings for {} inputs", indexed.len(), inputs.len())));
        }
        Ok(Embeddings {
            vectors: indexed.into_iter().map(|(_, v)| v).collect(),
            model: v["model"].as_str().unwrap_or(model).to_owned(),
            input_tokens: u64_at(&v, "/usage/prompt_tokens"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Message, Tool};

    #[test]
    fn request_mapping() {
        beacon_http::install_crypto_provider();
        let config = ProviderConfig::new(ProviderKind::OpenAi, Some("sk-test")).unwrap();
        let client = OpenAi::new(&config, Duration::from_secs(5)).unwrap();
        let call = ToolCall { id: "call_1".into(), name: "lookup".into(), arguments: json!({"q": "x"}) };
        let request = ChatRequest {
            system: Some("be brief".into()),
            messages: vec![
                Message::user("hi"),
                Message::assistant_tool_calls(None, vec![call.clone()]),
                Message::tool_result(&call, "{\"found\":true}", false),
            ],
            tools: vec![Tool {
                name: "lookup".into(),
                description: "search".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: Some(50),
            ..ChatRequest::default()
        };
        let body = client.body("gpt-4.1-mini", &request, true);
        assert_eq!(body["max_completion_tokens"], 50);
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"q\":\"x\"}");
        assert_eq!(body["messages"][3]["role"], "tool");
        assert_eq!(body["messages"][3]["tool_call_id"], "call_1");
        assert_eq!(body["tools"][0]["function"]["name"], "lookup");
        assert_eq!(body["stream_options"]["include_usage"], true);
    }
}
