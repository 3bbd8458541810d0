//! Provider-neutral request, response and streaming types.

use std::pin::Pin;

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::LlmError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The member or the module speaking for them.
    User,
    /// The model.
    Assistant,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id (synthesised for Gemini, which has none), echoed in the result.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON object.
    pub arguments: Value,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call made by the assistant.
    ToolCall(ToolCall),
    /// The result of a tool call, sent back by the user side.
    ToolResult {
        /// Id of the [`ToolCall`] this answers.
        call_id: String,
        /// Name of the tool (Gemini matches results by name).
        name: String,
        /// Result content (usually JSON text).
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// A message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content parts, in order.
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A user message with one text part.
    pub fn user(text: impl Into<String>) -> Message {
        Message { role: Role::User, content: vec![ContentPart::Text { text: text.into() }] }
    }

    /// An assistant message with one text part.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message { role: Role::Assistant, content: vec![ContentPart::Text { text: text.into() }] }
    }

    /// The assistant's turn that made `calls` (with optional text before them).
    pub fn assistant_tool_calls(text: Option<String>, calls: Vec<ToolCall>) -> Message {
        let mut content = Vec::new();
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            content.push(ContentPart::Text { text });
        }
        content.extend(calls.into_iter().map(ContentPart::ToolCall));
        Message { role: Role::Assistant, content }
    }

    /// A user-side message carrying one tool result.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>, is_error: bool) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentPart::ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: content.into(),
                is_error,
            }],
        }
    }

    /// All text parts joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A tool (function) the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Name (letters, digits, `_`, `-`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
}

/// Prompt-caching hint. Providers without explicit caching (OpenAI, Gemini implicit caching)
/// cache on their own and ignore it; Anthropic marks the system prompt and tools with
/// `cache_control: {"type": "ephemeral"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheHint {
    /// No explicit caching.
    #[default]
    None,
    /// Cache the stable prefix (system prompt and tools).
    StablePrefix,
}

/// A provider-neutral chat request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// System prompt.
    pub system: Option<String>,
    /// Conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// When set, the reply must be JSON valid against this schema (validated, one repair retry).
    pub response_schema: Option<Value>,
    /// Output token limit; `None` uses [`DEFAULT_MAX_TOKENS`].
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Prompt caching hint.
    pub cache_hint: CacheHint,
}

/// Output limit used when a request sets none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

impl ChatRequest {
    /// A one-turn request.
    pub fn new(system: Option<&str>, user: &str) -> ChatRequest {
        ChatRequest { system: system.map(str::to_owned), messages: vec![Message::user(user)], ..ChatRequest::default() }
    }

    /// The output limit to send.
    pub fn max_tokens_or_default(&self) -> u32 {
        self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end.
    Stop,
    /// Hit the output limit.
    Length,
    /// Wants tool results.
    ToolCalls,
    /// Blocked by the provider's safety filter.
    ContentFilter,
    /// Anything else the provider reported.
    Other,
}

/// Token counts of one call. `input_tokens` counts every prompt token, including those read from
/// or written to the prompt cache (so the uncached part is
/// `input_tokens - cached_input_tokens - cache_write_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// All prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic).
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Field-wise sum.
    pub fn add(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cached_input_tokens: self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens: self.cache_write_tokens + other.cache_write_tokens,
        }
    }

    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A completed chat call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text of the reply (for structured output, the JSON text).
    pub text: String,
    /// Tool calls requested by the model.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage as reported by the provider.
    pub usage: Usage,
    /// Model that answered (as reported by the provider when it says).
    pub model: String,
    /// Provider name (`openai`, `anthropic`, …); set by the service.
    pub provider: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Parsed and validated JSON, for requests with a `response_schema`.
    pub json: Option<Value>,
    /// Cost in micro-dollars (set by the service from the pricing table).
    pub cost_micros: u64,
    /// Served from Beacon's response cache (no provider call, no cost).
    pub from_cache: bool,
}

impl ChatResponse {
    /// An empty response of `model`, filled in by the provider clients.
    pub fn empty(model: &str) -> ChatResponse {
        ChatResponse {
            text: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            model: model.to_owned(),
            provider: String::new(),
            finish_reason: FinishReason::Stop,
            json: None,
            cost_micros: 0,
            from_cache: false,
        }
    }
}

/// One event of a streamed reply. A stream ends with exactly one [`StreamEvent::Done`] carrying
/// the whole reply (text, tool calls, usage), or with an error.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More text.
    TextDelta(String),
    /// A complete tool call (arguments assembled from the provider's fragments).
    ToolCall(ToolCall),
    /// The end: the accumulated response.
    Done(ChatResponse),
}

/// A stream of reply events.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// Embedding vectors, one per input, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    /// The vectors.
    pub vectors: Vec<Vec<f32>>,
    /// Model used.
    pub model: String,
    /// Tokens billed (0 when the provider does not say).
    pub input_tokens: u64,
}
