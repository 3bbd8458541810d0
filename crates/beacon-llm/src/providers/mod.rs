//! The API clients: OpenAI-style (OpenAI, xAI, OpenAI-compatible), Anthropic and Gemini.

pub mod anthropic;
pub mod gemini;
pub mod openai;

use serde_json::Value;

/// Tool arguments from the JSON text a model produced; text that is not JSON is kept as a string
/// so the caller can still see (and report) what the model sent.
pub(crate) fn parse_arguments(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A non-negative integer at `pointer`, 0 when absent.
pub(crate) fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}
