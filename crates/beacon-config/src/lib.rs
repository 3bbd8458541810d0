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
    #[error("invalid value for {key} (from {origin}): {reason}")]
    Invalid { key: String, origin: String, reason: String },
    #[error("{key} is a secret and cannot be set in {file}; set the environment variable {env} or {env}_FILE instead")]
    SecretInFile { key: String, env: String, file: String },
    #[error("unknown key `{key}` in {file}")]
    UnknownKey { key: String, file: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
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
    Json,
    Pretty,
}

/// Discord connection settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: Option<Secret>,
    pub application_id: Option<u64>,
    /// Hex-encoded Ed25519 public key of the application (verifies HTTP interactions).
    pub public_key: Option<String>,
    /// Root of the REST API; requests go to `{api_url}/api/v10/…`.
    pub api_url: String,
    pub gateway_url: Option<String>,
    /// Connect the gateway when a token is set (off: HTTP interactions only, token used for REST).
    pub gateway_enabled: bool,
    pub shard_count: Option<u32>,
}

/// The developer team: members of `role_id` in the main guild get operator access everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevelopersConfig {
    pub guild_id: Option<u64>,
    pub role_id: Option<u64>,
}

/// The whole configuration of one Beacon process.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub database_url: Secret,
    pub redis_url: Option<Secret>,
    pub discord: DiscordConfig,
    pub developers: DevelopersConfig,
    pub log_format: LogFormat,
    pub log_level: String,
    /// How long a guild's data is kept after the bot leaves it.
    pub guild_retention: Duration,
    /// How long shutdown waits for in-flight handlers.
    pub shutdown_grace: Duration,
    /// Sentence-embedding model folder; `None` means BM25 retrieval only.
    pub embed_model_dir: Option<PathBuf>,
    /// Where embeddings come from and how the local model is found and used (`BEACON_EMBED_*`).
    pub embed: EmbedSettings,
    /// LLM provider chain and tuning (`BEACON_LLM_*`); provider `none` by default.
    pub llm: LlmSettings,
    /// Ticket transcripts in an S3-compatible bucket; `None` keeps them in the data folder.
    pub transcripts_s3: Option<S3Config>,
    /// Base URL under which stored transcripts are readable.
    pub transcripts_public_url: Option<String>,
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
    /// Query instruction overriding the model's (kept as written, surrounding spaces aside).
    pub query_prefix: Option<String>,
    /// Hub for the one-time download; `None` when downloading is switched off.
    pub hub_url: Option<String>,
    /// Repository to download.
    pub model_repo: String,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
}

/// The `BEACON_LLM_*` values, as `beacon_llm::LlmConfig::from_env` reads them: the keys of
/// [`LLM_KEYS`] (from the file, the environment or, for the API key, `_FILE`) and the per-fallback
/// `BEACON_LLM_FALLBACK_<N>_{API_KEY,BASE_URL,EMBEDDING_MODEL}` (environment; keys also `_FILE`).
/// `Debug` hides every API key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LlmSettings {
    vars: BTreeMap<String, String>,
}

impl LlmSettings {
    /// The variables by name, API keys included (hand them only to the LLM service).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The provider name; `none` when unset.
    pub fn provider(&self) -> &str {
        self.vars.get(keys::LLM_PROVIDER.name).map(|p| p.trim()).filter(|p| !p.is_empty()).unwrap_or("none")
    }

    /// Whether a provider other than `none` is configured.
    pub fn is_enabled(&self) -> bool {
        !self.provider().eq_ignore_ascii_case("none")
    }
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), if k.ends_with("_API_KEY") { "***" } else { v.as_str() }))
            .collect();
        f.debug_tuple("LlmSettings").field(&shown).finish()
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
        let log_format = match text(&values, &keys::LOG_FORMAT).unwrap_or("json") {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            _ => {
                return Err(invalid(&values, &keys::LOG_FORMAT, "must be `json` or `pretty`"));
            }
        };
        let config = Config {
            http_addr: parse(&values, &keys::HTTP_ADDR)?.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url: Secret::new(database_url),
            redis_url: redis_url.map(Secret::new),
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
            embed_model_dir: text(&values, &keys::EMBED_MODEL_DIR).map(PathBuf::from),
            embed: embed_settings(&values)?,
            llm: llm_settings(&values, source)?,
            transcripts_s3: s3_config(&values)?,
            transcripts_public_url: text(&values, &keys::TRANSCRIPTS_PUBLIC_URL)
                .map(|u| u.trim_end_matches('/').to_owned()),
        };
        Ok(config)
    }

    /// The path of the SQLite database when the embedded default is used.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.database_url.expose().strip_prefix("sqlite://").map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
    }
}

/// Suffixes of the per-fallback variables, and whether each is a secret.
const FALLBACK_SUFFIXES: &[(&str, bool)] = &[("_API_KEY", true), ("_BASE_URL", false), ("_EMBEDDING_MODEL", false)];

fn llm_settings(values: &Values, source: &Source) -> Result<LlmSettings, ConfigError> {
    let mut vars = BTreeMap::new();
    for key in LLM_KEYS {
        if let Some(v) = text(values, key) {
            vars.insert(key.name.to_owned(), v.to_owned());
        }
    }
    for (name, value) in &source.env {
        let Some(rest) = name.strip_prefix("BEACON_LLM_FALLBACK_") else { continue };
        let (rest, from_file) = match rest.strip_suffix("_FILE") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let Some((n, suffix)) = rest.split_once('_') else { continue };
        let secret = match FALLBACK_SUFFIXES.iter().find(|(s, _)| s[1..] == *suffix) {
            Some((_, secret)) => *secret,
            None => continue,
        };
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) || value.trim().is_empty() {
            continue;
        }
        let var = format!("BEACON_LLM_FALLBACK_{n}_{suffix}");
        if from_file {
            // A file is only for secrets, and the plain variable wins when both are set.
            if !secret || source.get(&var).is_some() {
                continue;
            }
            let body = std::fs::read_to_string(value.trim()).map_err(|e| ConfigError::Invalid {
                key: name.clone(),
                origin: "environment".to_owned(),
                reason: format!("cannot read {}: {e}", value.trim()),
            })?;
            vars.insert(var, body.trim().to_owned());
        } else {
            vars.insert(var, value.trim().to_owned());
        }
    }
    Ok(LlmSettings { vars })
}

fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| (path.display().to_string(), s))
        .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })
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
        // `none` asks for no instruction at all (an empty value means "unset", like everywhere).
        query_prefix: text(values, &keys::EMBED_QUERY_PREFIX)
            .map(|v| if v.eq_ignore_ascii_case("none") { String::new() } else { v.to_owned() }),
        hub_url,
        model_repo: model_repo.to_owned(),
    })
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

fn parse_bool(values: &Values, key: &Key) -> Result<Option<bool>, ConfigError> {
    match text(values, key).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(_) => Err(invalid(values, key, "must be true or false")),
    }
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
