//! Renders scripted replies in each provider's wire format (JSON bodies, SSE streams, errors).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use std::time::Duration;

use futures_util::StreamExt;

use super::{FakeReply, FakeToolCall, FakeUsage, Pacing, Shared};

/// Splits text into up to `count` chunks on char boundaries, as streams deliver it in pieces.
fn pieces(text: &str, count: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(count.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A 200 whose JSON body stops half-way.
fn truncated_json() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"id\":\"cut\",\"choi").into_response()
}

fn sse_response(frames: Vec<String>, gap: Duration) -> Response {
    // With a gap, each frame after the first waits for it, like a model writing.
    let stream = futures_util::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        Ok::<_, Infallible>(frame)
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn with_retry_after(mut response: Response, retry_after: Option<&str>) -> Response {
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn message(text: &str, echo_key: bool, key: &str) -> String {
    if echo_key { format!("{text} {key}") } else { text.to_owned() }
}

/// Deterministic small embedding of `text`.
fn embedding(text: &str) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..8).map(|i| (((h >> (i * 8)) & 0xff) as f32) / 255.0).collect()
}

// ---------------------------------------------------------------- OpenAI chat completions

fn openai_usage(u: &FakeUsage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached_input},
    })
}

fn openai_calls(calls: &[FakeToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments.to_string()}})
            })
            .collect(),
    )
}

pub(super) fn openai(
    shared: &Shared,
    request: &Value,
    reply: FakeReply,
    stream: bool,
    key: &str,
    pacing: Pacing,
) -> Response {
    let model = request["model"].as_str().unwrap_or("fake-model").to_owned();
    let id = format!("chatcmpl-{}", shared.next_id());
    let (text, calls, usage) = match reply {
        FakeReply::Error { status, retry_after, message: m, echo_key } => {
            let kind = if status == 429 { "rate_limit_exceeded" } else { "server_error" };
            let body = json!({"error": {"message": message(&m, echo_key, key), "type": kind, "code": kind}});
            return with_retry_after(json_response(status, &body), retry_after.as_deref());
        }
        FakeReply::Truncated { text } => {
            if !stream {
                return truncated_json();
            }
            let frames = pieces(&text, pacing.pieces)
                .into_iter()
                .map(|p| {
                    let chunk = json!({"id": id, "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
                    format!("data: {chunk}\n\n")
                })
                .collect();
            return sse_response(frames, pacing.gap);
        }
        FakeReply::Text { text, usage } => (Some(text), Vec::new(), usage),
        FakeReply::ToolCalls { text, calls, usage } => (text, calls, usage),
        FakeReply::Delay { then, .. } | FakeReply::Paced { then, .. } => {
            return openai(shared, request, *then, stream, key, pacing);
        }
    };
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    if !stream {
        let mut message = json!({"role": "assistant", "content": text});
        if !calls.is_empty() {
            message["tool_calls"] = openai_calls(&calls);
        }
        return json_response(
            200,
            &json!({
                "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": openai_usage(&usage),
            }),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": null});
        format!("data: {c}\n\n")
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for p in pieces(text.as_deref().unwrap_or_default(), pacing.pieces) {
        frames.push(chunk(json!({"content": p}), Value::Null));
    }
    for (i, c) in calls.iter().enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{"index": i, "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for p in pieces(&c.arguments.to_string(), pacing.pieces) {
            frames.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}), Value::Null));
        }
    }
    frames.push(chunk(json!({}), json!(finish)));
    if request.pointer("/stream_options/include_usage") == Some(&json!(true)) {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [], "usage": openai_usage(&usage)});
        frames.push(format!("data: {c}\n\n"));
    }
    frames.push("data: [DONE]\n\n".to_owned());
    sse_response(frames, pacing.gap)
}

pub(super) fn openai_embeddings(request: &Value) -> Response {
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let tokens: usize = inputs.iter().map(|s| s.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"object": "embedding", "index": i, "embedding": embedding(s)}))
        .collect();
    json_response(
        200,
        &json!({"object": "list", "data": data, "model": request["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

// ---------------------------------------------------------------- Anthropic Messages

fn anthropic_usage(u: &FakeUsage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached_input).saturating_sub(u.cache_write),
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached_input,
        "output_tokens": u.output,
    })
}

fn sse_event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub(super) fn anthropic(
    shared: &Shared,
    request: &Value,
    reply: FakeReply,
    stream: bool,
    key: &str,
    pacing: Pacing,
) -> Response {
    let model = request["model"].as_str().unwrap_or("fake-model").to_owned();
    let id = format!("msg_{}", shared.next_id());
    let forced_tool = request
        .pointer("/tool_choice/name")
        .filter(|_| request.pointer("/tool_choice/type") == Some(&json!("tool")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (text, mut calls, usage) = match reply {
        FakeReply::Error { status, retry_after, message: m, echo_key } => {
            let kind = match status {
                429 => "rate_limit_error",
                401 => "authentication_error",
                529 => "overloaded_error",
                400 => "invalid_request_error",
                _ => "api_error",
            };
            let body = json!({"type": "error", "error": {"type": kind, "message": message(&m, echo_key, key)}});
            return with_retry_after(json_response(status, &body), retry_after.as_deref());
        }
        FakeReply::Truncated { text } => {
            if !stream {
                return truncated_json();
            }
            let start = json!({"type": "message_start", "message": {"id": id, "type": "message",
                "role": "assistant", "model": model, "content": [], "stop_reason": null,
                "usage": anthropic_usage(&FakeUsage::new(1, 1))}});
            let mut frames = vec![
                sse_event("message_start", &start),
                sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ),
            ];
            for p in pieces(&text, pacing.pieces) {
                frames.push(sse_event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta",
                    "index": 0, "delta": {"type": "text_delta", "text": p}}),
                ));
            }
            return sse_response(frames, pacing.gap);
        }
        FakeReply::Text { text, usage } => (Some(text), Vec::new(), usage),
        FakeReply::ToolCalls { text, calls, usage } => (text, calls, usage),
        FakeReply::Delay { then, .. } | FakeReply::Paced { then, .. } => {
            return anthropic(shared, request, *then, stream, key, pacing);
        }
    };
    // A forced tool answers with the JSON as the tool's input, like the real API.
    let mut text = text;
    if let Some(tool) = &forced_tool
        && let Some(parsed) = text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        calls.insert(
            0,
            FakeToolCall { id: format!("toolu_{}", shared.next_id()), name: tool.clone(), arguments: parsed },
        );
        text = None;
    }
    let stop_reason = if calls.is_empty() { "end_turn" } else { "tool_use" };
    let mut blocks: Vec<Value> = Vec::new();
    if let Some(t) = text.as_deref().filter(|t| !t.is_empty()) {
        blocks.push(json!({"type": "text", "text": t}));
    }
    for c in &calls {
        blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
    }
    if !stream {
        return json_response(
            200,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop_reason, "stop_sequence": null,
                "usage": anthropic_usage(&usage)}),
        );
    }
    let mut start_usage = anthropic_usage(&usage);
    start_usage["output_tokens"] = json!(1);
    let mut frames = vec![
        sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {"id": id,
            "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        ),
        sse_event("ping", &json!({"type": "ping"})),
    ];
    for (index, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => {
                frames.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start",
                    "index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                for p in pieces(block["text"].as_str().unwrap_or_default(), pacing.pieces) {
                    frames.push(sse_event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta",
                        "index": index, "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
            }
            _ => {
                frames.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start",
                    "index": index, "content_block": {"type": "tool_use", "id": block["id"],
                    "name": block["name"], "input": {}}}),
                ));
                for p in pieces(&block["input"].to_string(), pacing.pieces) {
                    frames.push(sse_event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta",
                        "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}),
                    ));
                }
            }
        }
        frames.push(sse_event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
    }
    frames.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": usage.output}}),
    ));
    frames.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    sse_response(frames, pacing.gap)
}

// ---------------------------------------------------------------- Gemini

fn gemini_usage(u: &FakeUsage) -> Value {
    json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output,
        "totalTokenCount": u.input + u.output,
        "cachedContentTokenCount": u.cached_input,
    })
}

pub(super) fn gemini_error(status: u16, message: &str, retry_after: Option<&str>) -> Response {
    let kind = match status {
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        400 => "INVALID_ARGUMENT",
        401 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        _ => "INTERNAL",
    };
    let body = json!({"error": {"code": status, "message": message, "status": kind}});
    with_retry_after(json_response(status, &body), retry_after)
}

pub(super) fn gemini(model: &str, reply: FakeReply, stream: bool, key: &str, pacing: Pacing) -> Response {
    let (text, calls, usage) = match reply {
        FakeReply::Error { status, retry_after, message: m, echo_key } => {
            return gemini_error(status, &message(&m, echo_key, key), retry_after.as_deref());
        }
        FakeReply::Truncated { text } => {
            if !stream {
                return truncated_json();
            }
            let frames = pieces(&text, pacing.pieces)
                .into_iter()
                .map(|p| {
                    let c = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}]});
                    format!("data: {c}\n\n")
                })
                .collect();
            return sse_response(frames, pacing.gap);
        }
        FakeReply::Text { text, usage } => (Some(text), Vec::new(), usage),
        FakeReply::ToolCalls { text, calls, usage } => (text, calls, usage),
        FakeReply::Delay { then, .. } | FakeReply::Paced { then, .. } => {
            return gemini(model, *then, stream, key, pacing);
        }
    };
    let call_parts: Vec<Value> =
        calls.iter().map(|c| json!({"functionCall": {"id": c.id, "name": c.name, "args": c.arguments}})).collect();
    if !stream {
        let mut parts: Vec<Value> = text.iter().filter(|t| !t.is_empty()).map(|t| json!({"text": t})).collect();
        parts.extend(call_parts);
        return json_response(
            200,
            &json!({
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": gemini_usage(&usage),
                "modelVersion": model,
            }),
        );
    }
    let mut chunks: Vec<Vec<Value>> = pieces(text.as_deref().unwrap_or_default(), pacing.pieces)
        .into_iter()
        .map(|p| vec![json!({"text": p})])
        .collect();
    if !call_parts.is_empty() {
        chunks.push(call_parts);
    }
    if chunks.is_empty() {
        chunks.push(vec![json!({"text": ""})]);
    }
    let last = chunks.len() - 1;
    let frames = chunks
        .into_iter()
        .enumerate()
        .map(|(i, parts)| {
            let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
            let mut c = json!({"modelVersion": model});
            if i == last {
                candidate["finishReason"] = json!("STOP");
                c["usageMetadata"] = gemini_usage(&usage);
            } else {
                c["usageMetadata"] = json!({"promptTokenCount": usage.input});
            }
            c["candidates"] = json!([candidate]);
            format!("data: {c}\r\n\r\n")
        })
        .collect();
    sse_response(frames, pacing.gap)
}

pub(super) fn gemini_embeddings(request: &Value) -> Response {
    let embeddings: Vec<Value> = request["requests"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let text = r.pointer("/content/parts/0/text").and_then(Value::as_str).unwrap_or_default();
                    json!({"values": embedding(text)})
                })
                .collect()
        })
        .unwrap_or_default();
    json_response(200, &json!({"embeddings": embeddings}))
}
