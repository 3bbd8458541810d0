//! Errors a handler can return, and how each is shown to the member.

/// Any error, kept whole as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in a handler. `User` and `Forbidden` are shown as they are (ephemeral);
/// everything else is logged with an error id and shown as a short apology with that id.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The member asked for something that cannot be done; the message says why and what to do.
    #[error("{0}")]
    User(String),
    /// The member may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] beacon_store::StoreError),
    /// The cache failed.
    #[error("cache: {0}")]
    Cache(#[from] beacon_cache::CacheError),
    /// A Discord request failed or its answer could not be read.
    #[error("discord: {0}")]
    Discord(#[source] BoxError),
    /// Anything else; only operators see it.
    #[error("{0}")]
    Internal(#[source] BoxError),
}

impl HandlerError {
    /// A refusal the member sees as it is.
    pub fn user(msg: impl Into<String>) -> HandlerError {
        HandlerError::User(msg.into())
    }

    /// An operator-only failure: an error (kept as the source) or a message.
    pub fn internal(error: impl Into<BoxError>) -> HandlerError {
        HandlerError::Internal(error.into())
    }

    /// Whether the text is meant for the member (as opposed to operators only).
    pub fn is_for_member(&self) -> bool {
        matches!(self, HandlerError::User(_) | HandlerError::Forbidden(_))
    }
}

impl From<twilight_http::Error> for HandlerError {
    fn from(e: twilight_http::Error) -> Self {
        HandlerError::Discord(Box::new(e))
    }
}

impl From<twilight_http::response::DeserializeBodyError> for HandlerError {
    fn from(e: twilight_http::response::DeserializeBodyError) -> Self {
        HandlerError::Discord(Box::new(e))
    }
}

impl From<crate::settings::SettingError> for HandlerError {
    fn from(e: crate::settings::SettingError) -> Self {
        match e {
            crate::settings::SettingError::Store(s) => HandlerError::Store(s),
            other => HandlerError::User(other.to_string()),
        }
    }
}

/// What handlers return.
pub type HandlerResult<T = ()> = Result<T, HandlerError>;
