//! The typed error of the LLM service.

use std::sync::Arc;
use std::time::Duration;

/// Errors of the LLM service. No variant ever holds an API key: provider messages are scrubbed
/// of the key before they are stored here (see [`crate::http::Scrubber`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// `BEACON_LLM_PROVIDER=none` (or unset): modules should answer extractively.
    #[error("no LLM provider is configured")]
    NotConfigured,
    /// The configuration is invalid.
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    /// No HTTP client could be built (no TLS provider or no CA certificates).
    #[error("cannot build the HTTP client for LLM providers: {0}")]
    HttpClient(#[source] Arc<beacon_http::HttpError>),
    /// The provider answered 429.
    #[error("{provider} rate limited the request{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs_f32())).unwrap_or_default())]
    RateLimited {
        /// Provider name.
        provider: String,
        /// The provider's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// No answer within the request timeout.
    #[error("{provider} did not answer within {}s", timeout.as_secs_f32())]
    Timeout {
        /// Provider name.
        provider: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The provider answered with an error status.
    #[error("{provider} returned HTTP {status}: {message}")]
    Http {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The provider's error message (scrubbed, truncated).
        message: String,
    },
    /// The request could not be sent or the connection broke.
    #[error("could not reach {provider}: {message}")]
    Transport {
        /// Provider name.
        provider: String,
        /// What went wrong (scrubbed).
        message: String,
    },
    /// The provider's answer could not be understood.
    #[error("unexpected answer from {provider}: {message}")]
    InvalidResponse {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// The provider does not offer this feature (e.g. embeddings on Anthropic).
    #[error("{provider} does not support {feature}")]
    Unsupported {
        /// Provider name.
        provider: String,
        /// The feature.
        feature: &'static str,
    },
    /// The provider failed repeatedly and is skipped until its cool-down ends.
    #[error("{provider} is temporarily disabled after repeated failures")]
    CircuitOpen {
        /// Provider name.
        provider: String,
    },
    /// The reply did not match the response schema, even after one repair attempt.
    #[error("the model's reply did not match the response schema: {0}")]
    InvalidStructuredOutput(String),
    /// The guild's daily budget is spent.
    #[error("the server's daily AI budget is used up ({0})")]
    BudgetExceeded(String),
    /// The member's daily limit is reached.
    #[error("your daily AI limit is reached ({0})")]
    UserLimitExceeded(String),
    /// Every provider of the chain failed; `last` is the final provider's error.
    #[error("all LLM providers failed ({}); last error: {last}", tried.join(", "))]
    AllProvidersFailed {
        /// Providers tried, in order.
        tried: Vec<String>,
        /// The error of the last one.
        last: Box<LlmError>,
    },
    /// Usage or pricing storage failed.
    #[error("LLM usage storage error: {0}")]
    Store(#[source] Arc<beacon_store::StoreError>),
}

impl LlmError {
    /// Whether retrying the same provider may succeed (429, 5xx, timeouts, broken connections).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } | LlmError::Timeout { .. } => true,
            LlmError::Transport { .. } => true,
            LlmError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 409,
            _ => false,
        }
    }

    /// Whether the next provider of the fallback chain should be tried. Errors about the caller
    /// (budgets, configuration) are final; any provider failure falls through.
    pub fn should_fall_back(&self) -> bool {
        !matches!(
            self,
            LlmError::NotConfigured
                | LlmError::Config(_)
                | LlmError::HttpClient(_)
                | LlmError::BudgetExceeded(_)
                | LlmError::UserLimitExceeded(_)
                | LlmError::Store(_)
        )
    }

    /// Whether this failure counts against the provider's circuit breaker (the provider is
    /// unhealthy, as opposed to having rejected this particular request).
    pub fn counts_as_provider_failure(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => *status >= 500 || *status == 401 || *status == 403,
            other => other.is_retryable(),
        }
    }

    /// A short, member-safe sentence for Discord replies.
    pub fn user_message(&self) -> &'static str {
        match self {
            LlmError::NotConfigured => "AI answers are not enabled on this server.",
            LlmError::BudgetExceeded(_) => {
                "This server's AI budget for today is used up; here is what the knowledge base says."
            }
            LlmError::UserLimitExceeded(_) => {
                "You have reached your AI limit for today; here is what the knowledge base says."
            }
            _ => "The AI service is unavailable right now; here is what the knowledge base says.",
        }
    }

    /// Stable short name of the variant, stored as the outcome of a failed call.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::NotConfigured => "not_configured",
            LlmError::Config(_) => "config",
            LlmError::HttpClient(_) => "http_client",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Http { .. } => "http",
            LlmError::Transport { .. } => "transport",
            LlmError::InvalidResponse { .. } => "invalid_response",
            LlmError::Unsupported { .. } => "unsupported",
            LlmError::CircuitOpen { .. } => "circuit_open",
            LlmError::InvalidStructuredOutput(_) => "invalid_structured_output",
            LlmError::BudgetExceeded(_) => "budget_exceeded",
            LlmError::UserLimitExceeded(_) => "user_limit",
            LlmError::AllProvidersFailed { .. } => "all_failed",
            LlmError::Store(_) => "store",
        }
    }
}

impl From<beacon_store::StoreError> for LlmError {
    fn from(e: beacon_store::StoreError) -> Self {
        LlmError::Store(Arc::new(e))
    }
}

impl From<sqlx::Error> for LlmError {
    fn from(e: sqlx::Error) -> Self {
        LlmError::Store(Arc::new(beacon_store::StoreError::Database(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let http = |status| LlmError::Http { provider: "p".into(), status, message: String::new() };
        assert!(http(503).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(401).is_retryable());
        assert!(http(401).counts_as_provider_failure());
        assert!(!http(400).counts_as_provider_failure());
        assert!(http(400).should_fall_back());
        assert!(!LlmError::BudgetExceeded("x".into()).should_fall_back());
        let rl = LlmError::RateLimited { provider: "p".into(), retry_after: Some(Duration::from_secs(2)) };
        assert!(rl.is_retryable());
        assert_eq!(rl.to_string(), "p rate limited the request (retry after 2s)");
    }
}
