//! Discord transport for Beacon: gateway shards, REST client construction,
//! interaction signature verification, and the text hygiene every outgoing
//! message goes through (splitting to 2,000 chars, defusing mentions).
//!
//! ```no_run
//! use beacon_discord::{mentions, rest, split, verify::InteractionVerifier};
//!
//! # async fn demo(body: &[u8], sig: &str, ts: &str, now: u64) -> Result<(), Box<dyn std::error::Error>> {
//! // HTTP interactions endpoint: reject anything Discord did not sign.
//! let verifier = InteractionVerifier::from_hex(&"0".repeat(64))?;
//! verifier.verify(sig, ts, body, now)?;
//!
//! // Outgoing text: never ping, never exceed the message limit.
//! let http = rest::client(Some("bot-token"), "https://discord.com")?;
//! let answer = mentions::defuse("a long @everyone answer …");
//! for chunk in split::split_message(&answer, split::MESSAGE_LIMIT) {
//!     // http.create_message(channel_id).content(&chunk).await?;
//!     # let _ = (&http, chunk);
//! }
//! # Ok(()) }
//! ```
//!
//! The gateway side is [`gateway::run`], which drives this process's shards
//! and forwards every dispatch event into a channel while keeping a
//! [`gateway::ShardBoard`] of per-shard status for `/status`.

pub mod gateway;
pub mod mentions;
pub mod ratelimits;
pub mod rest;
pub mod shared;
pub mod split;
pub mod verify;

pub use gateway::{
    EventSink, EventTypeFlags, GatewayConfig, GatewayError, GatewayEvent, SHARD_EVENTS, ShardBoard, ShardRangeError,
    ShardState, ShardStatus, SinkClosed, unwanted_dispatch,
};
pub use mentions::{defuse, none as no_mentions};
pub use rest::RestConfigError;
pub use split::{MESSAGE_LIMIT, split_message};
pub use verify::{InteractionVerifier, KeyError, VerifyError};
