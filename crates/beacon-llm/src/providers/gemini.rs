//! Google Gemini: `POST {base}/v1beta/models/{model}:generateContent`, streaming via
//! `:streamGenerateContent?alt=sse`, embeddings via `:batchEmbedContents`; key in `x-goog-api-key`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::error::LlmError;
use crate::http::{Api, SseEvent, SseHandler, sse_replay, sse_stream};
use crate::provider::Provider;
use crate::providers::u64_at;
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, ContentPart, Embeddings, FinishReason, Role, StreamEvent, ToolCall, Usage,
};

/// Client for the Gemini API.
#[derive(Debug)]
pub struct Gemini {
    api: Api,
    base_url: String,
    model: String,
    embedding_model: Option<String>,
}

impl Gemini {
    /// A client for `config`.
    pub fn new(config: &ProviderConfig, timeout: Duration) -> Result<Gemini, LlmError> {
        let auth = config.api_key.as_ref().map(|k| ("x-goog-api-key", k.expose().to_owned()));
        Ok(Gemini {
            api: Api::new("gemini", config.api_key.as_ref(), auth, &[], timeout)?,
            base_url: config.base_url.clone(),
            model: config.model.clone(),
            embedding_model: config.embedding_model.clone(),
        })
    }

    fn url(&self, model: &str, method: &str) -> String {
        format!("{}/v1beta/models/{model}:{method}", self.base_url)
    }
}

fn body(request: &ChatRequest) -> Value {
    let mut body = Map::new();
    if let Some(system) = &request.system {
        body.insert("systemInstruction".into(), json!({"parts": [{"text": system}]}));
    }
    body.insert("contents".into(), Value::Array(contents(request)));
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters}))
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
    }
    let mut generation = Map::new();
    generation.insert("maxOutputTokens".into(), json!(request.max_tokens_or_default()));
    if let Some(t) = request.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    if let Some(schema) = &request.response_schema {
        generation.insert("responseMimeType".into(), json!("application/json"));
        generation.insert("responseJsonSchema".into(), schema.clone());
    }
    body.insert("generationConfig".into(), Value::Object(generation));
    Value::Object(body)
}

fn contents(request: &ChatRequest) -> Vec<Value> {
    request
        .messages
        .iter()
        .map(|m| {
            let parts: Vec<Value> = m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => json!({"text": text}),
                    ContentPart::ToolCall(c) => {
                        json!({"functionCall": {"id": c.id, "name": c.name, "args": c.arguments}})
                    }
                    ContentPart::ToolResult { call_id, name, content, is_error } => {
                        // `response` must be an object: JSON objects pass through, anything else
                        // is wrapped.
                        let parsed = serde_json::from_str::<Value>(content).ok().filter(Value::is_object);
                        let response = match (parsed, is_error) {
                            (_, true) => json!({"error": content}),
                            (Some(obj), false) => obj,
                            (None, false) => json!({"result": content}),
                        };
                        json!({"functionResponse": {"id": call_id, "name": name, "response": response}})
                    }
                })
                .collect();
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": parts})
        })
        .collect()
}

fn finish_reason(reason: Option<&str>) -> Option<FinishReason> {
    reason.map(|r| match r {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    })
}

/// Gemini's prompt count includes cached tokens; thinking tokens are billed as output.
fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: u64_at(v, "/promptTokenCount"),
        output_tokens: u64_at(v, "/candidatesTokenCount") + u64_at(v, "/thoughtsTokenCount"),
        cached_input_tokens: u64_at(v, "/cachedContentTokenCount"),
        cache_write_tokens: 0,
    }
}

/// Folds one `GenerateContentResponse` (whole or a stream chunk) into `response`; returns the
/// new text and tool calls.
fn absorb(
    response: &mut ChatResponse,
    v: &Value,
    next_call: &mut usize,
) -> (String, Vec<ToolCall>, Option<FinishReason>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    if let Some(parts) = v.pointer("/candidates/0/content/parts").and_then(Value::as_array) {
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = part["text"].as_str() {
                text.push_str(t);
            }
            if let Some(fc) = part.get("functionCall") {
                *next_call += 1;
                calls.push(ToolCall {
                    // Gemini ids are optional; synthesise one so results can be matched.
                    id: fc["id"].as_str().map_or_else(|| format!("call_{next_call}"), str::to_owned),
                    name: fc["name"].as_str().unwrap_or_default().to_owned(),
                    arguments: fc.get("args").cloned().unwrap_or_else(|| json!({})),
                });
            }
        }
    }
    if let Some(model) = v["modelVersion"].as_str() {
        response.model = model.to_owned();
    }
    if v["usageMetadata"].is_object() {
        response.usage = usage(&v["usageMetadata"]);
    }
    response.text.push_str(&text);
    response.tool_calls.extend(calls.iter().cloned());
    let reason = finish_reason(v.pointer("/candidates/0/finishReason").and_then(Value::as_str));
    if let Some(r) = reason {
        response.finish_reason = r;
    }
    if !response.tool_calls.is_empty() && response.finish_reason == FinishReason::Stop {
        response.finish_reason = FinishReason::ToolCalls;
    }
    (text, calls, reason)
}

fn parse_response(api: &Api, model: &str, v: &Value) -> Result<ChatResponse, LlmError> {
    if v.pointer("/candidates/0").is_none() {
        let reason = v.pointer("/promptFeedback/blockReason").and_then(Value::as_str).unwrap_or("no candidates");
        return Err(api.invalid(&format!("no answer: {reason}")));
    }
    let mut response = ChatResponse::empty(model);
    let mut n = 0;
    absorb(&mut response, v, &mut n);
    Ok(response)
}

struct StreamHandler {
    api: Api,
    response: ChatResponse,
    next_call: usize,
    finished: bool,
}

impl StreamHandler {
    fn new(api: &Api, model: &str) -> StreamHandler {
        StreamHandler { api: api.clone(), response: ChatResponse::empty(model), next_call: 0, finished: false }
    }
}

/// A whole reply body read as [`Gemini::chat`] reads it (for the fuzz harness).
pub(crate) fn read_reply(api: &Api, model: &str, body: &[u8]) -> Result<ChatResponse, LlmError> {
    parse_response(api, model, &api.decode_json(body)?)
}

/// A streamed reply read as [`Gemini::chat_stream`] reads it (for the fuzz harness).
pub(crate) fn read_stream(api: &Api, model: &str, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, LlmError> {
    sse_replay(api, chunks, StreamHandler::new(api, model))
}

impl SseHandler for StreamHandler {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let v: Value =
            serde_json::from_str(&event.data).map_err(|e| self.api.invalid(&format!("bad stream chunk: {e}")))?;
        if let Some(message) = v.pointer("/error/message").and_then(Value::as_str) {
            return Err(self.api.invalid(message));
        }
        let (text, calls, reason) = absorb(&mut self.response, &v, &mut self.next_call);
        if reason.is_some() {
            self.finished = true;
        }
        let mut out = Vec::new();
        if !text.is_empty() {
            out.push(StreamEvent::TextDelta(text));
        }
        out.extend(calls.into_iter().map(StreamEvent::ToolCall));
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if !self.finished {
            return Err(self.api.invalid("stream ended without a finishReason"));
        }
        Ok(vec![StreamEvent::Done(self.response.clone())])
    }
}

#[async_trait]
impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let v = self.api.post_json(&self.url(model, "generateContent"), &body(request)).await?;
        parse_response(&self.api, model, &v)
    }

    async fn chat_stream(&self, model: &str, request: &ChatRequest) -> Result<ChatStream, LlmError> {
        let url = format!("{}?alt=sse", self.url(model, "streamGenerateContent"));
        let response = self.api.post_stream(&url, &body(request)).await?;
        Ok(sse_stream(&self.api, response, StreamHandler::new(&self.api, model)))
    }

    async fn embed(&self, inputs: &[String]) -> Result<Embeddings, LlmError> {
        let model = self.embedding_model.as_deref().ok_or(LlmError::Unsupported {
            provider: "gemini".into(),
            feature: "embeddings (no embedding model configured)",
        })?;
        let requests: Vec<Value> = inputs
            .iter()
            .map(|t| json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}}))
            .collect();
        let v = self.api.post_json(&self.url(model, "batchEmbedContents"), &json!({"requests": requests})).await?;
        let vectors: Vec<Vec<f32>> = v["embeddings"]
            .as_array()
            .ok_or_else(|| self.api.invalid("no embeddings[] in the answer"))?
            .iter()
            .map(|e| {
                e["values"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
                    .unwrap_or_default()
            })
            .collect();
        if vectors.len() != inputs.len() {
            return Err(self.api.invalid(&format!("{} embeddings for {} inputs", vectors.len(), inputs.len())));
        }
        Ok(Embeddings { vectors, model: model.to_owned(), input_tokens: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn tool_results_become_function_responses() {
        let call = ToolCall { id: "call_1".into(), name: "lookup".into(), arguments: json!({}) };
        let request = ChatRequest {
            system: Some("s".into()),
            messages: vec![
                Message::assistant_tool_calls(None, vec![call.clone()]),
                Message::tool_result(&call, "plain text", false),
            ],
            response_schema: Some(json!({"type": "object"})),
            ..ChatRequest::default()
        };
        let b = body(&request);
        assert_eq!(b["contents"][0]["role"], "model");
        assert_eq!(b["contents"][1]["parts"][0]["functionResponse"]["response"], json!({"result": "plain text"}));
        assert_eq!(b["generationConfig"]["responseMimeType"], "application/json");
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "s");
    }
}
