//! The [`Provider`] trait every API client implements, and construction from configuration.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ProviderConfig, ProviderKind};
use crate::error::LlmError;
use crate::providers::{anthropic::Anthropic, gemini::Gemini, openai::OpenAi};
use crate::types::{ChatRequest, ChatResponse, ChatStream, Embeddings};

/// One LLM API. Object-safe so the service can hold a chain of `Arc<dyn Provider>`; tests can
/// implement it directly.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which API this is.
    fn kind(&self) -> ProviderKind;

    /// The configured chat model.
    fn model(&self) -> &str;

    /// One chat completion with `model`.
    async fn chat(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError>;

    /// A streamed chat completion with `model`; the stream ends with [`crate::StreamEvent::Done`].
    async fn chat_stream(&self, model: &str, request: &ChatRequest) -> Result<ChatStream, LlmError>;

    /// Embeddings of `inputs`, in order, with the configured embedding model.
    async fn embed(&self, inputs: &[String]) -> Result<Embeddings, LlmError>;
}

/// Builds the client for `config`; `timeout` bounds each request (see [`crate::Reliability`]).
pub fn build_provider(config: &ProviderConfig, timeout: Duration) -> Result<Arc<dyn Provider>, LlmError> {
    Ok(match config.kind {
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::OpenAiCompatible => {
            Arc::new(OpenAi::new(config, timeout)?)
        }
        ProviderKind::Anthropic => Arc::new(Anthropic::new(config, timeout)?),
        ProviderKind::Gemini => Arc::new(Gemini::new(config, timeout)?),
    })
}
