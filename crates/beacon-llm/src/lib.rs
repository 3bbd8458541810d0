//! beacon-llm
