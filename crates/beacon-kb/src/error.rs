//! Error type of the knowledge base.

/// Everything that can go wrong in the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The embedding model could not be loaded or run.
    #[error("embedding model: {0}")]
    Model(String),
    /// The BM25 index failed.
    #[error("search index: {0}")]
    Index(String),
    /// An evaluation folder or data file is malformed.
    #[error("invalid data: {0}")]
    Data(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The store (migrations, connection) failed.
    #[error("store: {0}")]
    Store(String),
    /// A document source failed.
    #[error("source {source_name}: {message}")]
    Source {
        /// Which source.
        source_name: String,
        /// What happened.
        message: String,
    },
    /// No HTTP client could be built (no TLS provider or CA certificates).
    #[error("HTTP client: {0}")]
    Http(#[from] beacon_http::HttpError),
    /// Embeddings of different dimensions were mixed in one index.
    #[error("embedding dimension mismatch: expected {expected}, got {got}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The offending vector's dimension.
        got: usize,
    },
}

impl KbError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        KbError::Io { path: path.as_ref().display().to_string(), source }
    }
}

impl From<tantivy::TantivyError> for KbError {
    fn from(e: tantivy::TantivyError) -> Self {
        KbError::Index(e.to_string())
    }
}

impl From<candle_core::Error> for KbError {
    fn from(e: candle_core::Error) -> Self {
        KbError::Model(e.to_string())
    }
}

/// Result alias for the knowledge base.
pub type Result<T, E = KbError> = std::result::Result<T, E>;
