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

/// A provider's replies read without the network, through the very code the clients run on
/// what they receive: [`crate::http::Api::decode_json`] and each dialect's response parser for a
/// whole body, [`crate::http::SseDecoder`] and each dialect's stream handler for a streamed one.
/// The fuzz harness (`crates/beacon-fuzz`) drives it.
pub mod replay {
    use std::time::Duration;

    use crate::error::LlmError;
    use crate::http::Api;
    use crate::types::{ChatResponse, StreamEvent};

    /// A reply's wire dialect (xAI and OpenAI-compatible servers speak OpenAI's).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Dialect {
        /// OpenAI chat completions.
        OpenAi,
        /// Anthropic Messages (`structured`: the request asked for a schema).
        Anthropic {
            /// Whether the reply's forced tool carries the structured answer.
            structured: bool,
        },
        /// Gemini generateContent.
        Gemini,
    }

    /// Reads replies of one dialect.
    pub struct ReplyReader {
        dialect: Dialect,
        api: Api,
    }

    const MODEL: &str = "replay-model";

    impl ReplyReader {
        /// A reader for `dialect` (builds the HTTP client the errors are scrubbed with; no call is made).
        pub fn new(dialect: Dialect) -> Result<ReplyReader, LlmError> {
            let name = match dialect {
                Dialect::OpenAi => "openai",
                Dialect::Anthropic { .. } => "anthropic",
                Dialect::Gemini => "gemini",
            };
            Ok(ReplyReader { dialect, api: Api::new(name, None, None, &[], Duration::from_secs(30))? })
        }

        /// A whole (non-streamed) reply body.
        pub fn read_body(&self, body: &[u8]) -> Result<ChatResponse, LlmError> {
            match self.dialect {
                Dialect::OpenAi => super::openai::read_reply(&self.api, MODEL, body),
                Dialect::Anthropic { structured } => super::anthropic::read_reply(&self.api, MODEL, body, structured),
                Dialect::Gemini => super::gemini::read_reply(&self.api, MODEL, body),
            }
        }

        /// A streamed reply, received as `chunks`; ends with [`StreamEvent::Done`] when complete.
        pub fn read_stream(&self, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, LlmError> {
            match self.dialect {
                Dialect::OpenAi => super::openai::read_stream(&self.api, MODEL, chunks),
                Dialect::Anthropic { structured } => {
                    super::anthropic::read_stream(&self.api, MODEL, chunks, structured)
                }
                Dialect::Gemini => super::gemini::read_stream(&self.api, MODEL, chunks),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn documented_streams_replay_to_done_and_a_cut_stream_is_an_error() {
            beacon_http::install_crypto_provider();
            let openai = ReplyReader::new(Dialect::OpenAi).unwrap();
            let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
            let events = openai.read_stream(&[&body[..10], &body[10..]]).unwrap();
            assert!(matches!(events.last(), Some(StreamEvent::Done(r)) if r.text == "Hello"), "{events:?}");
            assert!(openai.read_stream(&[&body[..40]]).is_err());
            let reply = openai.read_body(br#"{"choices":[{"message":{"content":"hi"}}]}"#).unwrap();
            assert_eq!(reply.text, "hi");
            assert!(openai.read_body(b"[[[").is_err());
        }
    }
}
