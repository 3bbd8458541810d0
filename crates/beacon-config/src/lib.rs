//! Beacon's configuration: a `beacon.toml` file overlaid by `BEACON_…` environment variables.
//!
//! Precedence, lowest to highest: built-in defaults, the TOML file, the environment (after a
//! `.env` file, if present, has been loaded into it without overriding what is already set).
//! Every secret is read from the environment or from a file named by `<VAR>_FILE`; secrets in the
//! TOML file are refused so they cannot end up in a repository by accident.
//!
//! ```
//! use beacon_config::{Config, Source};
//!
//! let env = [("BEACON_HTTP_ADDR", "127.0.0.1:9090"), ("BEACON_DATA_DIR", "/tmp/beacon")];
//! let config = Config::from_sources(None, &Source::from_pairs(env)).unwrap();
//! assert_eq!(config.http_addr.port(), 9090);
//! assert_eq!(config.database_url.expose(), "sqlite:///tmp/beacon/beacon.db");
//! ```

mod keys;
mod secret;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use keys::{KEYS, Key, KeyKind, LLM_KEYS};
pub use secret::Secret;

/// A configuration value that could not be used. The message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value was present but unusable.
    #[error("invalid value for {key} (from {origin}): {reason}")]
    Invalid {
        /// The environment variable of the key (or the `_FILE` variable that failed).
        key: String,
        /// Where the value came from: `environment`, a TOML key, a file, `default`.
        origin: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A secret was written in the TOML file, where it could be committed by accident.
    #[error("{key} is a secret and cannot be set in {file}; set the environment variable {env} or {env}_FILE instead")]
    SecretInFile {
        /// The TOML key.
        key: String,
        /// The environment variable to use instead.
        env: String,
        /// The TOML file.
        file: String,
    },
    /// The TOML file holds a key Beacon does not know (usually a typo).
    #[error("unknown key `{key}` in {file}")]
    UnknownKey {
        /// The dotted TOML key.
        key: String,
        /// The TOML file.
        file: String,
    },
    /// The TOML file is not valid TOML.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// The TOML file could not be read from disk.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// The i/o error.
        source: std::io::Error,
    },
}

/// Where the values come from: environment variables (already merged with `.env`).
#[derive(Debug, Clone, Default)]
pub struct Source {
    env: BTreeMap<String, String>,
}

impl Source {
    /// The process environment, after loading `.env` from the working directory when present.
    pub fn process() -> Source {
        // A missing .env is the normal case; a malformed one is reported by the caller's logs later.
        let _ = dotenvy::dotenv();
        Source { env: std::env::vars().filter(|(k, _)| k.starts_with("BEACON_")).collect() }
    }

    /// A fixed set of variables, for tests and embedding.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Source {
        Source { env: pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect() }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise (the default).
    Auto,
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

/// Discord connection settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// Bot token; without it there is no gateway and REST calls are unauthenticated.
    pub token: Option<Secret>,
    /// Application id (fetched from Discord with the token when absent).
    pub application_id: Option<u64>,
    /// Hex-encoded Ed25519 public key of the application (verifies HTTP interactions).
    pub public_key: Option<String>,
    /// Root of the REST API; requests go to `{api_url}/api/v10/…`.
    pub api_url: String,
    /// Gateway URL overriding the one `GET /gateway/bot` returns (`ws://` or `wss://`).
    pub gateway_url: Option<String>,
    /// Connect the gateway when a token is set (off: HTTP interactions only, token used for REST).
    pub gateway_enabled: bool,
    /// Fixed shard count; `None` uses Discord's recommendation.
    pub shard_count: Option<u32>,
}

/// The scale-out roles' shared state in Redis (`beacon gateway`, `worker`, `web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleConfig {
    /// Prefix of every shared Redis key.
    pub key_prefix: String,
    /// Number of event streams (partitions by guild).
    pub partitions: u32,
    /// Deliveries before an event is dead-lettered.
    pub max_deliveries: u32,
    /// Idle time after which a stopped worker's event is taken over.
    pub claim_idle: Duration,
}

/// The developer team: members of `role_id` in the main guild get operator access everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevelopersConfig {
    /// The developer team's main guild.
    pub guild_id: Option<u64>,
    /// The role in that guild that marks a developer.
    pub role_id: Option<u64>,
}

/// The whole configuration of one Beacon process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder of the SQLite database, index files, models and transcripts.
    pub data_dir: PathBuf,
    /// Address the HTTP server (interactions, health, metrics) listens on.
    pub http_addr: SocketAddr,
    /// `sqlite://…` or `postgres://…` (a secret: it may hold a password).
    pub database_url: Secret,
    /// Redis for the cache and rate limits; `None` keeps them in the process.
    pub redis_url: Option<Secret>,
    /// The scale-out roles' streams and shared keys (used with `redis_url`).
    pub scale: ScaleConfig,
    /// Discord connection settings.
    pub discord: DiscordConfig,
    /// The developer team (operator access in every guild).
    pub developers: DevelopersConfig,
    /// Log line format.
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `beacon=debug,info`.
    pub log_level: String,
    /// How long a guild's data is kept after the bot leaves it.
    pub guild_retention: Duration,
    /// How long shutdown waits for in-flight handlers.
    pub shutdown_grace: Duration,
    /// Beacon's own alerts (`BEACON_ALERT_*`), for installs without Prometheus.
    pub alerts: AlertConfig,
    /// How long a worker holds a durable job without renewing its lease (a crashed worker's
    /// jobs are run by another after this).
    pub job_lease: Duration,
    /// Sentence-embedding model folder; `None` means BM25 retrieval only.
    pub embed_model_dir: Option<PathBuf>,
    /// Cross-encoder folder (`BEACON_RERANK_MODEL_DIR`); `None` means no second stage.
    pub rerank_model_dir: Option<PathBuf>,
    /// Where embeddings come from and how the local model is found and used (`BEACON_EMBED_*`).
    pub embed: EmbedSettings,
    /// LLM provider chain and tuning (`BEACON_LLM_*`); provider `none` by default.
    pub llm: LlmSettings,
    /// Credentials of the knowledge base's remote sources (Notion, Google Sheets).
    pub kb_credentials: KbCredentials,
    /// Limits of the sources a guild adds alone (uploads, websites).
    pub kb_sources: KbSourceLimits,
    /// `BEACON_PUBLIC_URL`: the base of every link Beacon posts (no trailing slash).
    pub public_url: Option<String>,
    /// `BEACON_SECRET_KEY`: the key stored credentials are sealed with (none: the embedded
    /// default generates `<data dir>/secret.key` once).
    pub secret_key: Option<Secret>,
    /// `BEACON_SECRET_KEY_PREVIOUS`: keys from before a rotation.
    pub secret_key_previous: Vec<Secret>,
    /// Ticket transcripts in an S3-compatible bucket; `None` keeps them in the data folder.
    pub transcripts_s3: Option<S3Config>,
    /// Base URL under which stored transcripts are readable.
    pub transcripts_public_url: Option<String>,
    /// `BEACON_AGENT_*`: the external AI coding-agent service, when configured.
    pub agent: Option<AgentSettings>,
    /// `BEACON_OAUTH_*` and `BEACON_API_*`: the web API's Discord login and browser access.
    pub api: ApiSettings,
}

/// The web API's Discord login and which other origins may call it.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `BEACON_OAUTH_CLIENT_ID`; `None` uses the application id.
    pub oauth_client_id: Option<u64>,
    /// `BEACON_OAUTH_CLIENT_SECRET`(`_FILE`); without it login is off.
    pub oauth_client_secret: Option<Secret>,
    /// `BEACON_API_CORS_ORIGINS`: origins allowed cross-origin (none: same origin only).
    pub cors_origins: Vec<String>,
    /// `BEACON_API_RATE_LIMIT`: requests per minute per session (4× per IP).
    pub rate_limit: u64,
    /// `BEACON_API_CSV_LIMIT_MB`: the largest CSV body (an import), in bytes.
    pub csv_limit: usize,
    /// `BEACON_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Where the external AI coding-agent service is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// `BEACON_AGENT_API_URL`, without a trailing `/`.
    pub api_url: String,
    /// `BEACON_AGENT_TIMEOUT` (default 150 s): a message's answer, or a project's activation.
    pub timeout: Duration,
}

/// Which embedder the knowledge base uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedProvider {
    /// A local model: `BEACON_EMBED_MODEL_DIR`, or one downloaded once into the data folder.
    #[default]
    Local,
    /// The LLM provider's embedding model (`BEACON_LLM_EMBEDDING_MODEL`).
    Llm,
}

/// The `BEACON_EMBED_*` settings besides the model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedSettings {
    /// Local model or LLM provider.
    pub provider: EmbedProvider,
    /// `mean` or `cls`, overriding the model's pooling.
    pub pooling: Option<String>,
    /// `f32`, `bf16` or `int8`, overriding the default arithmetic of the local model.
    pub precision: Option<String>,
    /// Query instruction overriding the model's (kept as written, surrounding spaces aside).
    pub query_prefix: Option<String>,
    /// Hub for the one-time download; `None` when downloading is switched off.
    pub hub_url: Option<String>,
    /// Repository to download.
    pub model_repo: String,
}

/// What the knowledge base's remote sources sync with: the deployment's credentials (secrets:
/// environment or `_FILE`), which guilds may use them, and the services' API roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbCredentials {
    /// `BEACON_KB_SHARED_CREDENTIALS_GUILDS`: the only guilds whose sources may use the two
    /// deployment credentials below (every other guild gives its own).
    pub shared_with: Vec<u64>,
    /// `BEACON_NOTION_API_URL`: Notion's API root, when not Notion's own.
    pub notion_api_url: Option<String>,
    /// `BEACON_SHEETS_API_URL`: the Google Sheets API root, when not Google's own.
    pub sheets_api_url: Option<String>,
    /// `BEACON_NOTION_TOKEN`: the Notion integration token.
    pub notion_token: Option<Secret>,
    /// `BEACON_GOOGLE_SA_BASE64`: the base64 of a Google service-account key file (JSON).
    pub google_service_account: Option<Secret>,
}

/// What guild-added knowledge sources may take: upload sizes and how websites are crawled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbSourceLimits {
    /// `BEACON_KB_UPLOAD_MAX_FILE_MB`: largest uploaded file, in bytes.
    pub upload_max_file_bytes: u64,
    /// `BEACON_KB_UPLOAD_MAX_GUILD_MB`: largest total of a guild's uploads, in bytes.
    pub upload_max_guild_bytes: u64,
    /// `BEACON_KB_CRAWL_DELAY`: wait between two requests of a website source.
    pub crawl_delay: Duration,
    /// `BEACON_KB_CRAWL_MAX_PAGES`: most pages read per sync of a website source.
    pub crawl_max_pages: usize,
    /// `BEACON_KB_CRAWL_ALLOW_PRIVATE`: whether website sources may read non-public addresses.
    pub crawl_allow_private: bool,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region of the bucket (`us-east-1` by default).
    pub region: String,
    /// Endpoint of an S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: Secret,
    /// Secret access key.
    pub secret_access_key: Secret,
}

/// The `BEACON_LLM_*` settings, typed: the keys of [`LLM_KEYS`] (from the file, the environment
/// or, for the API key, `_FILE`) and the per-fallback
/// `BEACON_LLM_FALLBACK_<N>_{API_KEY,BASE_URL,EMBEDDING_MODEL}` (environment; keys also `_FILE`).
/// `beacon_llm::LlmConfig::from_settings` checks provider names and fills in provider defaults.
/// `Debug` hides every API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// `BEACON_LLM_PROVIDER` as written; `None` when unset (same as `none`).
    pub provider: Option<String>,
    /// `BEACON_LLM_MODEL`: chat model of the primary provider.
    pub model: Option<String>,
    /// `BEACON_LLM_API_KEY`: key of the primary provider.
    pub api_key: Option<Secret>,
    /// `BEACON_LLM_BASE_URL`: API root of the primary provider.
    pub base_url: Option<String>,
    /// `BEACON_LLM_EMBEDDING_MODEL`: embedding model of the primary provider.
    pub embedding_model: Option<String>,
    /// `BEACON_LLM_FALLBACKS` with each entry's `BEACON_LLM_FALLBACK_<N>_*` settings, in order.
    pub fallbacks: Vec<LlmFallback>,
    /// `BEACON_LLM_TIMEOUT` (default 60 s).
    pub timeout: Duration,
    /// `BEACON_LLM_MAX_RETRIES` (default 2).
    pub max_retries: u32,
    /// `BEACON_LLM_RETRY_AFTER_MAX` (default 30 s).
    pub retry_after_max: Duration,
    /// `BEACON_LLM_BREAKER_FAILURES` (default 5, at least 1).
    pub breaker_failures: u32,
    /// `BEACON_LLM_BREAKER_COOLDOWN` (default 30 s).
    pub breaker_cooldown: Duration,
    /// `BEACON_LLM_CACHE_TTL` (default 1 h).
    pub cache_ttl: Duration,
    /// `BEACON_LLM_GUILD_MODELS`: chat models a guild may choose besides the deployment's own.
    pub guild_models: Vec<String>,
    /// `BEACON_LLM_GUILD_DAILY_BUDGET` in micro-dollars: a guild's default daily spend (default
    /// $1.00; `None` for no limit).
    pub guild_daily_budget_micros: Option<u64>,
}

/// One entry of `BEACON_LLM_FALLBACKS` (`provider[:model]`) with its `BEACON_LLM_FALLBACK_<N>_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmFallback {
    /// The provider name as written.
    pub provider: String,
    /// The model after the first `:`, if any.
    pub model: Option<String>,
    /// `BEACON_LLM_FALLBACK_<N>_API_KEY`.
    pub api_key: Option<Secret>,
    /// `BEACON_LLM_FALLBACK_<N>_BASE_URL`.
    pub base_url: Option<String>,
    /// `BEACON_LLM_FALLBACK_<N>_EMBEDDING_MODEL`.
    pub embedding_model: Option<String>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            provider: None,
            model: None,
            api_key: None,
            base_url: None,
            embedding_model: None,
            fallbacks: Vec::new(),
            timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_after_max: Duration::from_secs(30),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(3600),
            guild_models: Vec::new(),
            guild_daily_budget_micros: Some(1_000_000),
        }
    }
}

impl LlmSettings {
    /// Only the LLM settings of `source` (no file): for tools and tests that configure an LLM alone.
    pub fn from_source(source: &Source) -> Result<LlmSettings, ConfigError> {
        llm_settings(&collect(None, source)?, source)
    }

    /// The provider name; `none` when unset.
    pub fn provider(&self) -> &str {
        self.provider.as_deref().unwrap_or("none")
    }

    /// Whether a provider other than `none` is configured.
    pub fn is_enabled(&self) -> bool {
        !self.provider().eq_ignore_ascii_case("none")
    }
}

/// Raw string values per key, with where each came from.
struct Values {
    map: BTreeMap<&'static str, (String, String)>,
}

impl Values {
    fn get(&self, key: &Key) -> Option<(&str, &str)> {
        self.map.get(key.name).map(|(v, origin)| (v.as_str(), origin.as_str()))
    }
}

impl Config {
    /// Loads `beacon.toml` (or `path`, when given) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let source = Source::process();
        let default_path = Path::new("beacon.toml");
        let file = match path {
            Some(p) => Some(read_file(p)?),
            None if default_path.exists() => Some(read_file(default_path)?),
            None => None,
        };
        Config::from_sources(file.as_ref().map(|(p, s)| (p.as_str(), s.as_str())), &source)
    }

    /// Builds the configuration from TOML text (`(path for messages, text)`) and an environment.
    pub fn from_sources(toml_file: Option<(&str, &str)>, source: &Source) -> Result<Config, ConfigError> {
        let values = collect(toml_file, source)?;
        let data_dir = PathBuf::from(text(&values, &keys::DATA_DIR).unwrap_or("data"));
        let default_db = format!("sqlite://{}", data_dir.join("beacon.db").display());
        let database_url = text(&values, &keys::DATABASE_URL).map(str::to_owned).unwrap_or(default_db);
        check_database_url(&values, &database_url)?;
        let redis_url = text(&values, &keys::REDIS_URL).map(str::to_owned);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid(&values, &keys::REDIS_URL, "must start with redis:// or rediss://"));
        }
        let public_key = text(&values, &keys::DISCORD_PUBLIC_KEY).map(str::to_owned);
        if let Some(key) = &public_key
            && (key.len() != 64 || hex_decode_ok(key).is_none())
        {
            return Err(invalid(
                &values,
                &keys::DISCORD_PUBLIC_KEY,
                "must be the application's public key: 64 hexadecimal characters",
            ));
        }
        let api_url =
            text(&values, &keys::DISCORD_API_URL).unwrap_or("https://discord.com").trim_end_matches('/').to_owned();
        check_url(&values, &keys::DISCORD_API_URL, &api_url, &["http://", "https://"])?;
        let gateway_url = text(&values, &keys::DISCORD_GATEWAY_URL).map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &gateway_url {
            check_url(&values, &keys::DISCORD_GATEWAY_URL, url, &["ws://", "wss://"])?;
        }
        let log_format = match text(&values, &keys::LOG_FORMAT).unwrap_or("auto") {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            _ => {
                return Err(invalid(&values, &keys::LOG_FORMAT, "must be `auto`, `json` or `pretty`"));
            }
        };
        let config = Config {
            http_addr: parse(&values, &keys::HTTP_ADDR)?.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url: Secret::new(database_url),
            redis_url: redis_url.map(Secret::new),
            scale: ScaleConfig {
                key_prefix: match text(&values, &keys::SCALE_KEY_PREFIX) {
                    None => "beacon".to_owned(),
                    Some(p) if p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => p.to_owned(),
                    Some(_) => {
                        return Err(invalid(&values, &keys::SCALE_KEY_PREFIX, "may hold only letters, digits, - _ ."));
                    }
                },
                partitions: parse_bounded(&values, &keys::SCALE_PARTITIONS, 1, 1024)?.map_or(16, |n| n as u32),
                max_deliveries: parse_bounded(&values, &keys::SCALE_MAX_DELIVERIES, 1, 100)?.map_or(5, |n| n as u32),
                claim_idle: parse_duration(&values, &keys::SCALE_CLAIM_IDLE)?
                    .filter(|d| *d >= Duration::from_secs(1))
                    .unwrap_or(Duration::from_secs(15)),
            },
            discord: DiscordConfig {
                token: text(&values, &keys::DISCORD_TOKEN).map(|t| Secret::new(t.to_owned())),
                application_id: parse_id(&values, &keys::DISCORD_APPLICATION_ID)?,
                public_key,
                api_url,
                gateway_url,
                gateway_enabled: parse_bool(&values, &keys::DISCORD_GATEWAY_ENABLED)?.unwrap_or(true),
                shard_count: parse_bounded(&values, &keys::DISCORD_SHARD_COUNT, 1, 65_535)?.map(|n| n as u32),
            },
            developers: DevelopersConfig {
                guild_id: parse_id(&values, &keys::DEVELOPERS_GUILD_ID)?,
                role_id: parse_id(&values, &keys::DEVELOPERS_ROLE_ID)?,
            },
            log_format,
            log_level: text(&values, &keys::LOG_LEVEL).unwrap_or("info").to_owned(),
            guild_retention: parse_duration(&values, &keys::GUILD_RETENTION)?
                .unwrap_or(Duration::from_secs(30 * 86_400)),
            shutdown_grace: parse_duration(&values, &keys::SHUTDOWN_GRACE)?.unwrap_or(Duration::from_secs(8)),
            alerts: AlertConfig {
                webhook_url: alert_webhook(&values)?,
                handler_failures: parse_bounded(&values, &keys::ALERT_HANDLER_FAILURES, 1, 10_000)?
                    .map_or(5, |n| n as usize),
                gateway_after: parse_duration(&values, &keys::ALERT_GATEWAY_AFTER)?.unwrap_or(Duration::from_secs(120)),
                min_interval: parse_duration(&values, &keys::ALERT_MIN_INTERVAL)?
                    .unwrap_or(Duration::from_secs(15 * 60)),
            },
            job_lease: parse_duration(&values, &keys::JOB_LEASE)?
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(60)),
            embed_model_dir: text(&values, &keys::EMBED_MODEL_DIR).map(PathBuf::from),
            rerank_model_dir: text(&values, &keys::RERANK_MODEL_DIR).map(PathBuf::from),
            embed: embed_settings(&values)?,
            llm: llm_settings(&values, source)?,
            public_url: text(&values, &keys::PUBLIC_URL).map(|u| u.trim_end_matches('/').to_owned()),
            secret_key: text(&values, &keys::SECRET_KEY).map(|t| Secret::new(t.to_owned())),
            secret_key_previous: text(&values, &keys::SECRET_KEY_PREVIOUS)
                .map(|t| {
                    t.split(',').map(|k| Secret::new(k.trim().to_owned())).filter(|k| !k.expose().is_empty()).collect()
                })
                .unwrap_or_default(),
            kb_credentials: KbCredentials {
                shared_with: parse_id_list(&values, &keys::KB_SHARED_CREDENTIALS_GUILDS)?,
                notion_api_url: text(&values, &keys::NOTION_API_URL).map(|u| u.trim_end_matches('/').to_owned()),
                sheets_api_url: text(&values, &keys::SHEETS_API_URL).map(|u| u.trim_end_matches('/').to_owned()),
                notion_token: text(&values, &keys::NOTION_TOKEN).map(|t| Secret::new(t.to_owned())),
                google_service_account: text(&values, &keys::GOOGLE_SA_BASE64).map(|t| Secret::new(t.to_owned())),
            },
            kb_sources: KbSourceLimits {
                upload_max_file_bytes: parse_bounded(&values, &keys::KB_UPLOAD_MAX_FILE_MB, 1, 1024)?.unwrap_or(10)
                    as u64
                    * 1024
                    * 1024,
                upload_max_guild_bytes: parse_bounded(&values, &keys::KB_UPLOAD_MAX_GUILD_MB, 1, 1_048_576)?
                    .unwrap_or(50) as u64
                    * 1024
                    * 1024,
                crawl_delay: parse_duration(&values, &keys::KB_CRAWL_DELAY)?.unwrap_or(Duration::from_secs(1)),
                crawl_max_pages: parse_bounded(&values, &keys::KB_CRAWL_MAX_PAGES, 1, 100_000)?.unwrap_or(200) as usize,
                crawl_allow_private: parse_bool(&values, &keys::KB_CRAWL_ALLOW_PRIVATE)?.unwrap_or(false),
            },
            transcripts_s3: s3_config(&values)?,
            transcripts_public_url: text(&values, &keys::TRANSCRIPTS_PUBLIC_URL)
                .map(|u| u.trim_end_matches('/').to_owned()),
            agent: agent_settings(&values)?,
            api: ApiSettings {
                oauth_client_id: parse_id(&values, &keys::OAUTH_CLIENT_ID)?,
                oauth_client_secret: text(&values, &keys::OAUTH_CLIENT_SECRET).map(|t| Secret::new(t.to_owned())),
                cors_origins: api_origins(&values)?,
                rate_limit: parse_bounded(&values, &keys::API_RATE_LIMIT, 1, 1_000_000)?.map_or(300, |n| n as u64),
                csv_limit: parse_bounded(&values, &keys::API_CSV_LIMIT_MB, 1, 64)?.map_or(4, |n| n as usize)
                    * 1024
                    * 1024,
                trusted_proxies: trusted_proxies(&values)?,
            },
        };
        Ok(config)
    }

    /// The path of the SQLite database when the embedded default is used.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.database_url.expose().strip_prefix("sqlite://").map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
    }
}

/// `BEACON_TRUSTED_PROXIES`: IPs (a single address) or CIDRs.
fn trusted_proxies(values: &Values) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(list) = text(values, &keys::TRUSTED_PROXIES) else { return Ok(Vec::new()) };
    let mut nets = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = match item.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => match item.parse::<std::net::IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => {
                    return Err(invalid(
                        values,
                        &keys::TRUSTED_PROXIES,
                        &format!("`{item}` is neither an IP address nor a CIDR such as 10.0.0.0/8"),
                    ));
                }
            },
        };
        nets.push(net);
    }
    Ok(nets)
}

/// Where Beacon posts its own alerts and when (`BEACON_ALERT_*`).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The Discord webhook: its id and token, parsed from the URL.
    pub webhook_url: Option<AlertWebhook>,
    /// Handler failures within five minutes that make an alert.
    pub handler_failures: usize,
    /// How long the gateway may be without a session before an alert.
    pub gateway_after: Duration,
    /// At most one alert of each kind this often.
    pub min_interval: Duration,
}

/// A Discord webhook, from `https://discord.com/api/webhooks/{id}/{token}` (also with `/v10`).
#[derive(Clone)]
pub struct AlertWebhook {
    /// The webhook's id.
    pub id: u64,
    /// The webhook's token (a secret: never printed).
    pub token: Secret,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook").field("id", &self.id).field("token", &"***").finish()
    }
}

fn alert_webhook(values: &Values) -> Result<Option<AlertWebhook>, ConfigError> {
    let Some(url) = text(values, &keys::ALERT_WEBHOOK_URL) else { return Ok(None) };
    let bad = || {
        invalid(
            values,
            &keys::ALERT_WEBHOOK_URL,
            "must be a Discord webhook URL, https://discord.com/api/webhooks/ID/TOKEN (Server Settings → Integrations → Webhooks → Copy Webhook URL)",
        )
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(bad());
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let (Some(token), Some(id), Some("webhooks")) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let id: u64 = id.parse().map_err(|_| bad())?;
    if token.is_empty() || id == 0 {
        return Err(bad());
    }
    Ok(Some(AlertWebhook { id, token: Secret::new(token.to_owned()) }))
}

fn api_origins(values: &Values) -> Result<Vec<String>, ConfigError> {
    let Some(list) = text(values, &keys::API_CORS_ORIGINS) else { return Ok(Vec::new()) };
    let mut origins = Vec::new();
    for origin in list.split(',').map(|o| o.trim().trim_end_matches('/')).filter(|o| !o.is_empty()) {
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        let host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
        if !scheme_ok || host.is_empty() || host.contains('/') {
            return Err(invalid(
                values,
                &keys::API_CORS_ORIGINS,
                &format!("`{origin}` is not an origin; write scheme://host[:port], e.g. https://admin.example.com"),
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

fn llm_settings(values: &Values, source: &Source) -> Result<LlmSettings, ConfigError> {
    let defaults = LlmSettings::default();
    let owned = |key: &Key| text(values, key).map(str::to_owned);
    let mut fallbacks = Vec::new();
    if let Some(list) = text(values, &keys::LLM_FALLBACKS) {
        for (i, item) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            // Split at the first ':' only: Ollama model names contain ':' themselves.
            let (provider, model) = match item.split_once(':') {
                Some((p, m)) => (p.trim(), Some(m.trim()).filter(|m| !m.is_empty())),
                None => (item, None),
            };
            let prefix = format!("BEACON_LLM_FALLBACK_{}", i + 1);
            fallbacks.push(LlmFallback {
                provider: provider.to_owned(),
                model: model.map(str::to_owned),
                api_key: fallback_var(source, &prefix, "_API_KEY", true)?.map(Secret::new),
                base_url: fallback_var(source, &prefix, "_BASE_URL", false)?,
                embedding_model: fallback_var(source, &prefix, "_EMBEDDING_MODEL", false)?,
            });
        }
    }
    Ok(LlmSettings {
        provider: owned(&keys::LLM_PROVIDER),
        model: owned(&keys::LLM_MODEL),
        api_key: owned(&keys::LLM_API_KEY).map(Secret::new),
        base_url: owned(&keys::LLM_BASE_URL),
        embedding_model: owned(&keys::LLM_EMBEDDING_MODEL),
        fallbacks,
        timeout: parse_duration(values, &keys::LLM_TIMEOUT)?.unwrap_or(defaults.timeout),
        max_retries: parse_count(values, &keys::LLM_MAX_RETRIES)?.unwrap_or(defaults.max_retries),
        retry_after_max: parse_duration(values, &keys::LLM_RETRY_AFTER_MAX)?.unwrap_or(defaults.retry_after_max),
        breaker_failures: parse_count(values, &keys::LLM_BREAKER_FAILURES)?.unwrap_or(defaults.breaker_failures).max(1),
        breaker_cooldown: parse_duration(values, &keys::LLM_BREAKER_COOLDOWN)?.unwrap_or(defaults.breaker_cooldown),
        cache_ttl: parse_duration(values, &keys::LLM_CACHE_TTL)?.unwrap_or(defaults.cache_ttl),
        guild_models: text(values, &keys::LLM_GUILD_MODELS)
            .map(|list| list.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        guild_daily_budget_micros: match text(values, &keys::LLM_GUILD_DAILY_BUDGET) {
            None => defaults.guild_daily_budget_micros,
            Some(v) if v.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(parse_usd(v).map_err(|e| invalid(values, &keys::LLM_GUILD_DAILY_BUDGET, &e))?),
        },
    })
}

/// Parses an amount of US dollars (`1`, `0.5`, `$2.25`, up to six decimals) into micro-dollars.
///
/// ```
/// assert_eq!(beacon_config::parse_usd("$1.50"), Ok(1_500_000));
/// assert_eq!(beacon_config::parse_usd("0.000001"), Ok(1));
/// assert!(beacon_config::parse_usd("-1").is_err());
/// ```
pub fn parse_usd(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_prefix('$').unwrap_or(t).trim();
    let bad = || format!("`{text}` is not an amount of US dollars; write e.g. 0.50 or 2");
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!("`{text}` has more than six decimals"));
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let frac_micros: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().map_err(|_| bad())? };
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac_micros))
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `<prefix><suffix>` from the environment, or for a secret from the file its `_FILE` names (the
/// plain variable wins when both are set).
fn fallback_var(source: &Source, prefix: &str, suffix: &str, secret: bool) -> Result<Option<String>, ConfigError> {
    let var = format!("{prefix}{suffix}");
    if let Some(v) = source.get(&var).map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(Some(v.to_owned()));
    }
    if !secret {
        return Ok(None);
    }
    let file_var = format!("{var}_FILE");
    let Some(path) = source.get(&file_var).map(str::trim).filter(|p| !p.is_empty()) else { return Ok(None) };
    let body = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        key: file_var.clone(),
        origin: "environment".to_owned(),
        reason: format!("cannot read {path}: {e}"),
    })?;
    Ok(Some(body.trim().to_owned()).filter(|b| !b.is_empty()))
}

fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| (path.display().to_string(), s))
        .map_err(|source| ConfigError::ReadFile { path: path.display().to_string(), source })
}

fn collect(toml_file: Option<(&str, &str)>, source: &Source) -> Result<Values, ConfigError> {
    let mut map = BTreeMap::new();
    if let Some((path, body)) = toml_file {
        let table: toml::Table = body.parse().map_err(|e: toml::de::Error| ConfigError::Read {
            path: path.to_owned(),
            reason: e.message().to_owned(),
        })?;
        for (dotted, value) in flatten(&table) {
            let key = KEYS
                .iter()
                .find(|k| k.toml == dotted)
                .ok_or_else(|| ConfigError::UnknownKey { key: dotted.clone(), file: path.to_owned() })?;
            if key.kind == KeyKind::Secret {
                return Err(ConfigError::SecretInFile { key: dotted, env: key.name.to_owned(), file: path.to_owned() });
            }
            map.insert(key.name, (value, format!("{path} key `{}`", key.toml)));
        }
    }
    for key in KEYS {
        if let Some(v) = source.get(key.name) {
            map.insert(key.name, (v.to_owned(), "environment".to_owned()));
            continue;
        }
        if key.kind != KeyKind::Plain {
            let file_var = format!("{}_FILE", key.name);
            if let Some(path) = source.get(&file_var) {
                let body = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                    key: file_var.clone(),
                    origin: "environment".to_owned(),
                    reason: format!("cannot read {path}: {e}"),
                })?;
                map.insert(key.name, (body.trim().to_owned(), format!("file named by {file_var}")));
            }
        }
    }
    Ok(Values { map })
}

fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(inner) => {
                for (ik, iv) in flatten(inner) {
                    out.push((format!("{k}.{ik}"), iv));
                }
            }
            toml::Value::String(s) => out.push((k.clone(), s.clone())),
            other => out.push((k.clone(), other.to_string())),
        }
    }
    out
}

fn text<'a>(values: &'a Values, key: &Key) -> Option<&'a str> {
    values.get(key).map(|(v, _)| v.trim()).filter(|v| !v.is_empty())
}

fn invalid(values: &Values, key: &Key, reason: &str) -> ConfigError {
    let origin = values.get(key).map(|(_, o)| o.to_owned()).unwrap_or_else(|| "default".to_owned());
    ConfigError::Invalid { key: key.name.to_owned(), origin, reason: reason.to_owned() }
}

fn parse<T: std::str::FromStr>(values: &Values, key: &Key) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match text(values, key) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|e| invalid(values, key, &e.to_string())),
    }
}

fn embed_settings(values: &Values) -> Result<EmbedSettings, ConfigError> {
    let provider = match text(values, &keys::EMBED_PROVIDER).map(str::to_ascii_lowercase).as_deref() {
        None | Some("local") => EmbedProvider::Local,
        Some("llm") => EmbedProvider::Llm,
        Some(_) => return Err(invalid(values, &keys::EMBED_PROVIDER, "must be local or llm")),
    };
    let pooling = text(values, &keys::EMBED_POOLING).map(str::to_ascii_lowercase);
    if let Some(p) = &pooling
        && p != "mean"
        && p != "cls"
    {
        return Err(invalid(values, &keys::EMBED_POOLING, "must be mean or cls"));
    }
    let precision = text(values, &keys::EMBED_PRECISION).map(str::to_ascii_lowercase);
    if let Some(p) = &precision
        && !["f32", "bf16", "int8"].contains(&p.as_str())
    {
        return Err(invalid(values, &keys::EMBED_PRECISION, "must be f32, bf16 or int8"));
    }
    let hub_url = match text(values, &keys::EMBED_HUB_URL) {
        Some(off) if off.eq_ignore_ascii_case("off") => None,
        Some(url) => {
            check_url(values, &keys::EMBED_HUB_URL, url, &["http://", "https://"])?;
            Some(url.trim_end_matches('/').to_owned())
        }
        None => Some("https://huggingface.co".to_owned()),
    };
    let model_repo = text(values, &keys::EMBED_MODEL_REPO).unwrap_or("sentence-transformers/all-MiniLM-L6-v2");
    if model_repo.split('/').count() != 2 || model_repo.split('/').any(|p| p.is_empty() || p == "..") {
        return Err(invalid(values, &keys::EMBED_MODEL_REPO, "must be owner/name"));
    }
    Ok(EmbedSettings {
        provider,
        pooling,
        precision,
        // `none` asks for no instruction at all (an empty value means "unset", like everywhere).
        query_prefix: text(values, &keys::EMBED_QUERY_PREFIX)
            .map(|v| if v.eq_ignore_ascii_case("none") { String::new() } else { v.to_owned() }),
        hub_url,
        model_repo: model_repo.to_owned(),
    })
}

fn agent_settings(values: &Values) -> Result<Option<AgentSettings>, ConfigError> {
    let timeout = parse_duration(values, &keys::AGENT_TIMEOUT)?.unwrap_or(Duration::from_secs(150));
    let Some(url) = text(values, &keys::AGENT_API_URL) else {
        return Ok(None);
    };
    check_url(values, &keys::AGENT_API_URL, url, &["http://", "https://"])?;
    Ok(Some(AgentSettings { api_url: url.trim_end_matches('/').to_owned(), timeout }))
}

fn s3_config(values: &Values) -> Result<Option<S3Config>, ConfigError> {
    let Some(bucket) = text(values, &keys::TRANSCRIPTS_S3_BUCKET) else {
        return Ok(None);
    };
    let required = |key: &Key| {
        text(values, key)
            .map(|v| Secret::new(v.to_owned()))
            .ok_or_else(|| invalid(values, key, "is required when BEACON_TRANSCRIPTS_S3_BUCKET is set"))
    };
    let endpoint = text(values, &keys::TRANSCRIPTS_S3_ENDPOINT).map(str::to_owned);
    if let Some(url) = &endpoint {
        check_url(values, &keys::TRANSCRIPTS_S3_ENDPOINT, url, &["http://", "https://"])?;
    }
    Ok(Some(S3Config {
        bucket: bucket.to_owned(),
        region: text(values, &keys::TRANSCRIPTS_S3_REGION).unwrap_or("us-east-1").to_owned(),
        endpoint,
        access_key_id: required(&keys::TRANSCRIPTS_S3_ACCESS_KEY_ID)?,
        secret_access_key: required(&keys::TRANSCRIPTS_S3_SECRET_ACCESS_KEY)?,
    }))
}

fn parse_count(values: &Values, key: &Key) -> Result<Option<u32>, ConfigError> {
    match text(values, key) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| invalid(values, key, "must be a whole number")),
    }
}

fn parse_bool(values: &Values, key: &Key) -> Result<Option<bool>, ConfigError> {
    match text(values, key).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(_) => Err(invalid(values, key, "must be true or false")),
    }
}

fn parse_id_list(values: &Values, key: &Key) -> Result<Vec<u64>, ConfigError> {
    let Some(list) = text(values, key) else { return Ok(Vec::new()) };
    list.split([',', ' '])
        .filter(|v| !v.is_empty())
        .map(|v| match v.parse::<u64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(invalid(values, key, "must be Discord ids (positive integers) separated by commas")),
        })
        .collect()
}

fn parse_id(values: &Values, key: &Key) -> Result<Option<u64>, ConfigError> {
    match text(values, key) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(id) if id > 0 => Ok(Some(id)),
            _ => Err(invalid(values, key, "must be a Discord id (a positive integer)")),
        },
    }
}

fn parse_bounded(values: &Values, key: &Key, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
    match text(values, key) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(values, key, &format!("must be an integer from {min} to {max}"))),
        },
    }
}

fn parse_duration(values: &Values, key: &Key) -> Result<Option<Duration>, ConfigError> {
    match text(values, key) {
        None => Ok(None),
        Some(v) => humantime::parse_duration(v)
            .map(Some)
            .map_err(|e| invalid(values, key, &format!("{e} (write e.g. `30s`, `15m`, `30d`)"))),
    }
}

fn check_url(values: &Values, key: &Key, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let Some(rest) = schemes.iter().find_map(|s| url.strip_prefix(s)) else {
        return Err(invalid(values, key, &format!("must start with {}", schemes.join(" or "))));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(values, key, "has no host"));
    }
    Ok(())
}

fn check_database_url(values: &Values, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(invalid(values, &keys::DATABASE_URL, "must start with sqlite: or postgres://"))
    }
}

fn hex_decode_ok(s: &str) -> Option<()> {
    s.chars().all(|c| c.is_ascii_hexdigit()).then_some(())
}

#[cfg(test)]
mod tests;
