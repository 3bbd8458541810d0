//! The testkit's error type.

/// Everything that can go wrong while driving the fake Discord.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the listener or another socket operation failed.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The OpenAPI document could not be read or compiled.
    #[error("openapi spec: {0}")]
    Spec(String),
    /// Waiting for something timed out.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A guild, channel, member, message or interaction does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Delivering an interaction to the bot's HTTP endpoint failed.
    #[error("interaction endpoint: {0}")]
    Endpoint(String),
    /// Discord would not let this member use the command (it does not even show it to them):
    /// `default_member_permissions` or the server's command permission overrides.
    #[error("hidden: {0}")]
    Hidden(String),
    /// The request made through the scenario API is not something Discord would send.
    #[error("invalid: {0}")]
    Invalid(String),
}
