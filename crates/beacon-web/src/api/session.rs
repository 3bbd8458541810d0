//! Server-side sessions and pending logins in the database (table `api_sessions`,
//! `api_logins`). The browser holds a random id in an HttpOnly cookie; the table keeps only its
//! SHA-256, so a copy of the database does not log anyone in. Discord's tokens are sealed with
//! the keyring for that session.

use std::time::Duration;

use base64::Engine;
use beacon_crypto::Keyring;
use beacon_store::{Store, now_ms};
use ring::rand::SecureRandom;
use sqlx::Row;

use super::discord::{Tokens, UserGuild};

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(24 * 3600);
/// A session ends this long after login, whatever its use.
pub const ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A login must come back from Discord within this long.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: i64 = 60_000;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The database failed.
    #[error("session store: {0}")]
    Db(#[from] sqlx::Error),
    /// Sealing or opening the tokens failed.
    #[error("session tokens: {0}")]
    Crypto(#[from] beacon_crypto::CryptoError),
    /// A stored value is not what was written.
    #[error("session data: {0}")]
    Data(#[from] serde_json::Error),
    /// The system's random generator failed.
    #[error("no randomness available")]
    Random,
}

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> Result<String, SessionError> {
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| SessionError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256, URL-safe base64 without padding (the PKCE S256 transform, and how ids are stored).
pub fn sha256(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// Equal without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's id.
    pub id_hash: String,
    /// The Discord user.
    pub user_id: u64,
    /// Their username.
    pub username: String,
    /// Must come back in `X-CSRF-Token` on every state-changing request.
    pub csrf: String,
    /// Discord's tokens (opened from the sealed column).
    pub tokens: Tokens,
    /// The user's guilds as Discord listed them.
    pub guilds: Vec<UserGuild>,
    /// When [`Session::guilds`] was read from Discord (unix ms).
    pub guilds_fetched_at: i64,
    /// When the session ends at the latest (unix ms).
    pub expires_at: i64,
}

fn aad(id_hash: &str) -> String {
    format!("api-session:{id_hash}")
}

fn seal_tokens(keyring: &Keyring, id_hash: &str, tokens: &Tokens) -> Result<String, SessionError> {
    Ok(keyring.seal(&serde_json::to_string(tokens)?, &aad(id_hash))?)
}

/// Creates a session; returns the cookie's value (the only place the id exists in clear).
pub async fn create(
    store: &Store,
    keyring: &Keyring,
    user_id: u64,
    username: &str,
    tokens: &Tokens,
    guilds: &[UserGuild],
) -> Result<String, SessionError> {
    let id = random_token(32)?;
    let id_hash = sha256(&id);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO api_sessions (id_hash, user_id, username, csrf_token, tokens, token_expires_at, guilds, \
         guilds_fetched_at, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id_hash)
    .bind(user_id as i64)
    .bind(username)
    .bind(random_token(32)?)
    .bind(seal_tokens(keyring, &id_hash, tokens)?)
    .bind(tokens.expires_at)
    .bind(serde_json::to_string(guilds)?)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now + ABSOLUTE.as_millis() as i64)
    .execute(store.pool())
    .await?;
    Ok(id)
}

/// The live session behind a cookie value (neither idle nor past its absolute expiry); a
/// request keeps it alive.
pub async fn load(store: &Store, keyring: &Keyring, cookie: &str) -> Result<Option<Session>, SessionError> {
    let id_hash = sha256(cookie);
    let now = now_ms();
    let row = sqlx::query(
        "SELECT user_id, username, csrf_token, tokens, token_expires_at, guilds, guilds_fetched_at, last_seen_at, \
         expires_at FROM api_sessions WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(&id_hash)
    .bind(now)
    .bind(now - IDLE.as_millis() as i64)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let sealed: String = row.try_get("tokens")?;
    let mut tokens: Tokens = serde_json::from_str(&keyring.open(&sealed, &aad(&id_hash))?)?;
    tokens.expires_at = row.try_get("token_expires_at")?;
    let last_seen: i64 = row.try_get("last_seen_at")?;
    if now - last_seen > TOUCH_EVERY {
        sqlx::query("UPDATE api_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(&id_hash)
            .execute(store.pool())
            .await?;
    }
    let guilds: String = row.try_get("guilds")?;
    Ok(Some(Session {
        user_id: row.try_get::<i64, _>("user_id")? as u64,
        username: row.try_get("username")?,
        csrf: row.try_get("csrf_token")?,
        tokens,
        guilds: serde_json::from_str(&guilds)?,
        guilds_fetched_at: row.try_get("guilds_fetched_at")?,
        expires_at: row.try_get("expires_at")?,
        id_hash,
    }))
}

/// Stores renewed tokens.
pub async fn save_tokens(store: &Store, keyring: &Keyring, session: &Session) -> Result<(), SessionError> {
    sqlx::query("UPDATE api_sessions SET tokens = $1, token_expires_at = $2 WHERE id_hash = $3")
        .bind(seal_tokens(keyring, &session.id_hash, &session.tokens)?)
        .bind(session.tokens.expires_at)
        .bind(&session.id_hash)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Stores a fresh guild list.
pub async fn save_guilds(store: &Store, session: &Session) -> Result<(), SessionError> {
    sqlx::query("UPDATE api_sessions SET guilds = $1, guilds_fetched_at = $2 WHERE id_hash = $3")
        .bind(serde_json::to_string(&session.guilds)?)
        .bind(session.guilds_fetched_at)
        .bind(&session.id_hash)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn delete(store: &Store, id_hash: &str) -> Result<(), SessionError> {
    sqlx::query("DELETE FROM api_sessions WHERE id_hash = $1").bind(id_hash).execute(store.pool()).await?;
    Ok(())
}

/// Removes sessions and logins that can no longer be used.
pub async fn prune(store: &Store) -> Result<(), SessionError> {
    let now = now_ms();
    sqlx::query("DELETE FROM api_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now)
        .bind(now - IDLE.as_millis() as i64)
        .execute(store.pool())
        .await?;
    sqlx::query("DELETE FROM api_logins WHERE created_at <= $1")
        .bind(now - LOGIN_TTL.as_millis() as i64)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records a login under way: its `state` (hashed) and PKCE verifier (sealed).
pub async fn start_login(store: &Store, keyring: &Keyring, state: &str, verifier: &str) -> Result<(), SessionError> {
    let state_hash = sha256(state);
    sqlx::query("INSERT INTO api_logins (state_hash, verifier, created_at) VALUES ($1, $2, $3)")
        .bind(&state_hash)
        .bind(keyring.seal(verifier, &format!("api-login:{state_hash}"))?)
        .bind(now_ms())
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Takes a login's verifier, once: a second callback with the same `state` finds nothing.
pub async fn take_login(store: &Store, keyring: &Keyring, state: &str) -> Result<Option<String>, SessionError> {
    let state_hash = sha256(state);
    let row = sqlx::query("SELECT verifier, created_at FROM api_logins WHERE state_hash = $1")
        .bind(&state_hash)
        .fetch_optional(store.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    // Whoever deletes the row owns the login; a concurrent replay deletes nothing.
    let deleted =
        sqlx::query("DELETE FROM api_logins WHERE state_hash = $1").bind(&state_hash).execute(store.pool()).await?;
    let created: i64 = row.try_get("created_at")?;
    if deleted.rows_affected() != 1 || now_ms() - created > LOGIN_TTL.as_millis() as i64 {
        return Ok(None);
    }
    let sealed: String = row.try_get("verifier")?;
    Ok(Some(keyring.open(&sealed, &format!("api-login:{state_hash}"))?))
}
