//! Errors of the FAQ module.

use beacon_framework::HandlerError;
use beacon_store::StoreError;

/// What can go wrong in the FAQ. `Invalid`, `NotFound`, `Csv` and `Download` are meant for the
/// member (they say what to fix); the others are operators' business.
#[derive(Debug, thiserror::Error)]
pub enum FaqError {
    /// Input rejected; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// No entry with this number in the guild.
    #[error("There is no FAQ entry #{0} in this server.")]
    NotFound(u64),
    /// A CSV file could not be read; `line` is 1-based, counting the header.
    #[error("CSV line {line}: {message}")]
    Csv {
        /// 1-based line number, counting the header.
        line: u64,
        /// What is wrong on that line.
        message: String,
    },
    /// An attached file could not be downloaded.
    #[error("Could not download the file: {0}")]
    Download(String),
    /// No HTTP client could be built to download it (no TLS provider or CA certificates).
    #[error("HTTP client: {0}")]
    HttpClient(#[from] beacon_http::HttpError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading or writing a file failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<FaqError> for HandlerError {
    fn from(e: FaqError) -> Self {
        match e {
            FaqError::Invalid(_) | FaqError::NotFound(_) | FaqError::Csv { .. } | FaqError::Download(_) => {
                HandlerError::User(e.to_string())
            }
            FaqError::Store(s) => HandlerError::Store(s),
            other => HandlerError::internal(other),
        }
    }
}
