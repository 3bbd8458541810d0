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
    /// The embedding model's weights do not fit its configuration, or a sequence does not fit
    /// the model.
    #[error("embedding model: {0}")]
    Encoder(#[from] beacon_encoder::EncoderError),
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
    Store(#[from] beacon_store::StoreError),
    /// tantivy (the BM25 index) failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A tantivy index file could not be read.
    #[error("search index: {0}")]
    IndexRead(#[from] tantivy::directory::error::OpenReadError),
    /// candle failed to load or run the embedding model.
    #[error("embedding model: {0}")]
    Candle(#[from] candle_core::Error),
    /// The model's tokenizer failed (`what` says at which step).
    #[error("embedding model: {what}: {source}")]
    Tokenizer {
        /// The step: loading `tokenizer.json`, setting truncation, tokenizing.
        what: &'static str,
        /// The tokenizer's error.
        source: tokenizers::Error,
    },
    /// JSON could not be read or written (`what` names the file or column).
    #[error("invalid data: {what}: {source}")]
    Json {
        /// The file or column.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The LLM service failed (provider embeddings).
    #[error("{what}: {source}")]
    Llm {
        /// What was being done.
        what: &'static str,
        /// The service's error.
        source: beacon_llm::LlmError,
    },
    /// A blocking task (embedding, index build) panicked or was cancelled.
    #[error("{what} task: {source}")]
    Task {
        /// The task.
        what: &'static str,
        /// Why it did not finish.
        source: tokio::task::JoinError,
    },
    /// A source another crate registers ([`crate::GuildSource`], e.g. the FAQ) could not be read.
    #[error("source {source_name}: {source}")]
    Feed {
        /// The source's id.
        source_name: String,
        /// The providing crate's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An HTTP request of a download or a remote source failed.
    #[error("{what}: {source}")]
    Request {
        /// What was being fetched.
        what: String,
        /// The client's error.
        source: reqwest::Error,
    },
    /// A document source failed.
    #[error("source {source_name}: {message}")]
    Source {
        /// Which source.
        source_name: String,
        /// What happened.
        message: String,
    },
    /// Input the knowledge base refuses (an upload too big, of the wrong type, empty, over the
    /// guild's quota; a website address it may not crawl); the message says why, for the member.
    #[error("{0}")]
    Rejected(String),
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

/// Result alias for the knowledge base.
pub type Result<T, E = KbError> = std::result::Result<T, E>;
