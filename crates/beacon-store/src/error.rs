//! Store error type.

/// Errors returned by the store. Messages never contain a connection URL's password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested row does not exist (or belongs to another guild).
    #[error("not found: {0}")]
    NotFound(String),
    /// Applying core or module migrations failed, or an applied migration was modified.
    #[error("migration error: {0}")]
    Migration(String),
    /// The database driver reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data could not be decoded (bad JSON, out-of-range value, …).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The connection URL is unsupported or malformed (shown with its password redacted).
    #[error("invalid database URL {0}")]
    InvalidUrl(String),
    /// An argument was rejected before reaching the database (e.g. a bad table name).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The batched claim write failed (the message is the database's).
    #[error("claim not recorded: {0}")]
    Claim(String),
    /// The batched guild registration failed (shared by every guild of its batch).
    #[error("guild registration not recorded: {0}")]
    Registration(#[source] std::sync::Arc<StoreError>),
    /// Filesystem error while preparing an SQLite database file.
    #[error("io error preparing database file: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when the error is a [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!("{}{}:***{}", &url[..rest_start], &userinfo[..colon], &url[rest_start + at..])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_password() {
        assert_eq!(redact_url("postgres://beacon:s3cret@db:5432/beacon"), "postgres://beacon:***@db:5432/beacon");
        assert_eq!(redact_url("postgres://a:b:c@h/d?x=@"), "postgres://a:***@h/d?x=@");
    }

    #[test]
    fn leaves_urls_without_password() {
        assert_eq!(redact_url("postgres://beacon@db/beacon"), "postgres://beacon@db/beacon");
        assert_eq!(redact_url("sqlite://data/beacon.db"), "sqlite://data/beacon.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
