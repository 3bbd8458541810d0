//! Server-side sessions ([`SessionStore`]: the table `api_sessions`, or Redis when configured)
//! and pending logins (table `api_logins`). The browser holds a random id in an HttpOnly
//! cookie; the store keeps only its SHA-256, so a copy of the database or of Redis does not log
//! anyone in. Discord's tokens are sealed with the keyring for that session.

use std::time::Duration;

use base64::Engine;
use beacon_cache::{Cache, CacheKey};
use beacon_crypto::Keyring;
use beacon_store::{Store, now_ms};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
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
    /// Redis failed.
    #[error("session store: {0}")]
    Cache(#[from] beacon_cache::CacheError),
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

/// Where sessions live: the `api_sessions` table (SQLite or PostgreSQL), or Redis when the
/// deployment has it (`BEACON_REDIS_URL`), so web processes behind a load balancer share them
/// without a database write per login check. Either way the key is the SHA-256 of the cookie's
/// id, Discord's tokens are sealed for that session, and a session ends after [`IDLE`] without
/// a request or [`ABSOLUTE`] after login (in Redis, also the key's TTL); logout deletes it.
#[derive(Clone)]
pub enum SessionStore {
    /// The `api_sessions` table.
    Table(Store),
    /// One Redis key per session, `api:session:{hash}`, holding a JSON record.
    Redis(Cache),
}

/// A session as Redis holds it (and as the table's row is read).
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    user_id: u64,
    username: String,
    csrf: String,
    /// Sealed for this session.
    tokens: String,
    token_expires_at: i64,
    guilds: Vec<UserGuild>,
    guilds_fetched_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

fn redis_key(id_hash: &str) -> CacheKey {
    CacheKey::global("api", &format!("session:{id_hash}"))
}

/// How long a Redis record lives from `now`: until it would go idle, or its absolute end.
fn ttl(now: i64, expires_at: i64) -> Duration {
    let idle = IDLE.as_millis() as i64;
    Duration::from_millis(idle.min(expires_at - now).max(1) as u64)
}

impl SessionStore {
    /// Redis when the app's cache is Redis, else the database's table.
    pub fn for_app(app: &beacon_framework::App) -> SessionStore {
        match app.cache.kind() {
            "redis" => SessionStore::Redis(app.cache.clone()),
            _ => SessionStore::Table(app.store.clone()),
        }
    }

    /// `"table"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionStore::Table(_) => "table",
            SessionStore::Redis(_) => "redis",
        }
    }

    /// Creates a session; returns the cookie's value (the only place the id exists in clear).
    pub async fn create(
        &self,
        keyring: &Keyring,
        user_id: u64,
        username: &str,
        tokens: &Tokens,
        guilds: &[UserGuild],
    ) -> Result<String, SessionError> {
        self.create_at(keyring, user_id, username, tokens, guilds, now_ms()).await
    }

    async fn create_at(
        &self,
        keyring: &Keyring,
        user_id: u64,
        username: &str,
        tokens: &Tokens,
        guilds: &[UserGuild],
        now: i64,
    ) -> Result<String, SessionError> {
        let id = random_token(32)?;
        let id_hash = sha256(&id);
        let expires_at = now + ABSOLUTE.as_millis() as i64;
        let sealed = seal_tokens(keyring, &id_hash, tokens)?;
        match self {
            SessionStore::Table(store) => {
                sqlx::query(
                    "INSERT INTO api_sessions (id_hash, user_id, username, csrf_token, tokens, token_expires_at, guilds, \
                     guilds_fetched_at, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&id_hash)
                .bind(user_id as i64)
                .bind(username)
                .bind(random_token(32)?)
                .bind(sealed)
                .bind(tokens.expires_at)
                .bind(serde_json::to_string(guilds)?)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(expires_at)
                .execute(store.pool())
                .await?;
            }
            SessionStore::Redis(cache) => {
                let record = Record {
                    user_id,
                    username: username.to_owned(),
                    csrf: random_token(32)?,
                    tokens: sealed,
                    token_expires_at: tokens.expires_at,
                    guilds: guilds.to_vec(),
                    guilds_fetched_at: now,
                    last_seen_at: now,
                    expires_at,
                };
                cache.set(&redis_key(&id_hash), &serde_json::to_vec(&record)?, ttl(now, expires_at)).await?;
            }
        }
        Ok(id)
    }

    /// The live session behind a cookie value (neither idle nor past its absolute expiry); a
    /// request keeps it alive.
    pub async fn load(&self, keyring: &Keyring, cookie: &str) -> Result<Option<Session>, SessionError> {
        self.load_at(keyring, cookie, now_ms()).await
    }

    async fn load_at(&self, keyring: &Keyring, cookie: &str, now: i64) -> Result<Option<Session>, SessionError> {
        let id_hash = sha256(cookie);
        let idle_cutoff = now - IDLE.as_millis() as i64;
        let record = match self {
            SessionStore::Table(store) => {
                let row = sqlx::query(
                    "SELECT user_id, username, csrf_token, tokens, token_expires_at, guilds, guilds_fetched_at, \
                     last_seen_at, expires_at FROM api_sessions WHERE id_hash = $1",
                )
                .bind(&id_hash)
                .fetch_optional(store.pool())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let guilds: String = row.try_get("guilds")?;
                Record {
                    user_id: row.try_get::<i64, _>("user_id")? as u64,
                    username: row.try_get("username")?,
                    csrf: row.try_get("csrf_token")?,
                    tokens: row.try_get("tokens")?,
                    token_expires_at: row.try_get("token_expires_at")?,
                    guilds: serde_json::from_str(&guilds)?,
                    guilds_fetched_at: row.try_get("guilds_fetched_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    expires_at: row.try_get("expires_at")?,
                }
            }
            SessionStore::Redis(cache) => {
                let Some(bytes) = cache.get(&redis_key(&id_hash)).await? else { return Ok(None) };
                serde_json::from_slice::<Record>(&bytes)?
            }
        };
        if record.expires_at <= now || record.last_seen_at <= idle_cutoff {
            return Ok(None);
        }
        let mut tokens: Tokens = serde_json::from_str(&keyring.open(&record.tokens, &aad(&id_hash))?)?;
        tokens.expires_at = record.token_expires_at;
        if now - record.last_seen_at > TOUCH_EVERY {
            match self {
                SessionStore::Table(store) => {
                    sqlx::query("UPDATE api_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                        .bind(now)
                        .bind(&id_hash)
                        .execute(store.pool())
                        .await?;
                }
                SessionStore::Redis(cache) => {
                    let touched = Record { last_seen_at: now, ..record.clone() };
                    cache
                        .set(&redis_key(&id_hash), &serde_json::to_vec(&touched)?, ttl(now, record.expires_at))
                        .await?;
                }
            }
        }
        Ok(Some(Session {
            user_id: record.user_id,
            username: record.username,
            csrf: record.csrf,
            tokens,
            guilds: record.guilds,
            guilds_fetched_at: record.guilds_fetched_at,
            expires_at: record.expires_at,
            id_hash,
        }))
    }

    /// Stores the session's (renewed) tokens and (fresh) guild list.
    pub async fn save(&self, keyring: &Keyring, session: &Session) -> Result<(), SessionError> {
        let sealed = seal_tokens(keyring, &session.id_hash, &session.tokens)?;
        match self {
            SessionStore::Table(store) => {
                sqlx::query(
                    "UPDATE api_sessions SET tokens = $1, token_expires_at = $2, guilds = $3, guilds_fetched_at = $4 \
                     WHERE id_hash = $5",
                )
                .bind(sealed)
                .bind(session.tokens.expires_at)
                .bind(serde_json::to_string(&session.guilds)?)
                .bind(session.guilds_fetched_at)
                .bind(&session.id_hash)
                .execute(store.pool())
                .await?;
            }
            SessionStore::Redis(cache) => {
                let now = now_ms();
                let record = Record {
                    user_id: session.user_id,
                    username: session.username.clone(),
                    csrf: session.csrf.clone(),
                    tokens: sealed,
                    token_expires_at: session.tokens.expires_at,
                    guilds: session.guilds.clone(),
                    guilds_fetched_at: session.guilds_fetched_at,
                    last_seen_at: now,
                    expires_at: session.expires_at,
                };
                if session.expires_at > now {
                    let key = redis_key(&session.id_hash);
                    cache.set(&key, &serde_json::to_vec(&record)?, ttl(now, session.expires_at)).await?;
                }
            }
        }
        Ok(())
    }

    /// Ends a session.
    pub async fn delete(&self, id_hash: &str) -> Result<(), SessionError> {
        match self {
            SessionStore::Table(store) => {
                sqlx::query("DELETE FROM api_sessions WHERE id_hash = $1").bind(id_hash).execute(store.pool()).await?;
            }
            SessionStore::Redis(cache) => cache.delete(&redis_key(id_hash)).await?,
        }
        Ok(())
    }

    /// Removes sessions that can no longer be used (Redis drops them itself, by TTL).
    pub async fn prune(&self) -> Result<(), SessionError> {
        if let SessionStore::Table(store) = self {
            let now = now_ms();
            sqlx::query("DELETE FROM api_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(now - IDLE.as_millis() as i64)
                .execute(store.pool())
                .await?;
        }
        Ok(())
    }
}

/// Removes logins that were never completed.
pub async fn prune_logins(store: &Store) -> Result<(), SessionError> {
    sqlx::query("DELETE FROM api_logins WHERE created_at <= $1")
        .bind(now_ms() - LOGIN_TTL.as_millis() as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new([7u8; 32], Vec::new()).expect("keyring")
    }

    fn tokens(access: &str) -> Tokens {
        Tokens { access: access.into(), refresh: format!("{access}-refresh"), expires_at: 1_000 }
    }

    fn guild(id: u64) -> UserGuild {
        UserGuild { id, name: format!("guild {id}"), icon: None, owner: false, permissions: "32".into() }
    }

    /// What the store holds under a key, as text (`None`: nothing).
    async fn raw(store: &SessionStore, key: &str) -> Option<String> {
        match store {
            SessionStore::Table(db) => {
                let row = sqlx::query("SELECT tokens, csrf_token, username FROM api_sessions WHERE id_hash = $1")
                    .bind(key)
                    .fetch_optional(db.pool())
                    .await
                    .expect("select")?;
                let cols: Vec<String> = ["tokens", "csrf_token", "username"]
                    .iter()
                    .map(|c| row.try_get::<String, _>(*c).expect("column"))
                    .collect();
                Some(cols.join(" "))
            }
            SessionStore::Redis(cache) => {
                cache.get(&redis_key(key)).await.expect("get").map(|b| String::from_utf8_lossy(&b).into_owned())
            }
        }
    }

    /// The session contract, the same for every store.
    async fn contract(store: &SessionStore) {
        let keyring = keyring();
        let now = now_ms();
        let id = store.create_at(&keyring, 42, "ada", &tokens("secret-a"), &[guild(1)], now).await.expect("create");
        let hash = sha256(&id);
        // Stored under the id's hash only, with the tokens sealed.
        let stored = raw(store, &hash).await.expect("stored under the hash");
        assert!(!stored.contains("secret-a"), "{}: tokens sealed: {stored}", store.kind());
        assert!(raw(store, &id).await.is_none(), "{}: never under the id itself", store.kind());

        let s = store.load_at(&keyring, &id, now + 1).await.expect("load").expect("live");
        assert_eq!((s.user_id, s.username.as_str(), s.tokens.access.as_str()), (42, "ada", "secret-a"));
        assert_eq!(
            (s.guilds.clone(), s.tokens.expires_at, s.expires_at),
            (vec![guild(1)], 1_000, now + ABSOLUTE.as_millis() as i64)
        );
        assert_eq!(s.csrf.len(), 43);
        assert!(store.load_at(&keyring, "not-a-session", now + 1).await.expect("load").is_none());

        // Renewed tokens and a fresh guild list are kept, sealed.
        let mut renewed = s.clone();
        renewed.tokens = Tokens { expires_at: 2_000, ..tokens("secret-b") };
        renewed.guilds = vec![guild(1), guild(2)];
        renewed.guilds_fetched_at = now + 2;
        store.save(&keyring, &renewed).await.expect("save");
        let s = store.load_at(&keyring, &id, now + 3).await.expect("load").expect("live");
        assert_eq!((s.tokens.access.as_str(), s.tokens.expires_at, s.guilds.len()), ("secret-b", 2_000, 2));
        assert_eq!((s.csrf, s.guilds_fetched_at), (renewed.csrf.clone(), now + 2));
        assert!(!raw(store, &hash).await.expect("stored").contains("secret-b"));

        // Used every half idle period it lives on, until its absolute end.
        let step = IDLE.as_millis() as i64 / 2;
        let end = now + ABSOLUTE.as_millis() as i64;
        let mut t = now;
        while t + step < end {
            t += step;
            assert!(
                store.load_at(&keyring, &id, t).await.expect("load").is_some(),
                "{}: alive at +{}",
                store.kind(),
                t - now
            );
        }
        assert!(store.load_at(&keyring, &id, end).await.expect("load").is_none(), "{}: absolute expiry", store.kind());

        // Left alone for the idle period, it ends.
        let idle = store.create_at(&keyring, 43, "bob", &tokens("secret-c"), &[], now).await.expect("create");
        assert!(store.load_at(&keyring, &idle, now + step).await.expect("load").is_some());
        let later = now + step + IDLE.as_millis() as i64 + 1;
        assert!(store.load_at(&keyring, &idle, later).await.expect("load").is_none(), "{}: idle expiry", store.kind());

        // Logout deletes it.
        let other = store.create_at(&keyring, 44, "cy", &tokens("secret-d"), &[], now).await.expect("create");
        store.delete(&sha256(&other)).await.expect("delete");
        assert!(store.load_at(&keyring, &other, now + 1).await.expect("load").is_none());
        assert!(raw(store, &sha256(&other)).await.is_none(), "{}: deleted", store.kind());
    }

    async fn table_on(url: &str) -> SessionStore {
        let store = Store::connect(url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store.migrate_schema(&crate::api::SCHEMA).await.expect("web schema");
        SessionStore::Table(store)
    }

    #[tokio::test]
    async fn sessions_in_the_sqlite_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = table_on(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
        contract(&store).await;
    }

    #[tokio::test]
    async fn sessions_in_the_postgres_table() {
        let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else { return };
        contract(&table_on(&db.url).await).await;
        db.drop_database().await;
    }

    #[tokio::test]
    async fn sessions_in_redis_expire_by_ttl() {
        let Some(url) = beacon_testkit::services::redis_url() else { return };
        let cache = Cache::redis(&url).await.expect("redis");
        let store = SessionStore::Redis(cache);
        contract(&store).await;
        // The key itself expires: at most the idle period from the last use.
        let id = store.create(&keyring(), 45, "di", &tokens("secret-e"), &[]).await.expect("create");
        let client = redis::Client::open(url.as_str()).expect("client");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let pttl: i64 =
            redis::cmd("PTTL").arg(redis_key(&sha256(&id)).as_str()).query_async(&mut conn).await.expect("pttl");
        assert!(pttl > 0 && pttl <= IDLE.as_millis() as i64, "{pttl}");
    }
}
