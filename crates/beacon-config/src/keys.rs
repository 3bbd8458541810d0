//! Every configuration key, with its TOML path and environment variable. `.env.example` mirrors
//! this list; a test keeps the two in step.

/// How a key may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// TOML or environment.
    Plain,
    /// TOML, environment or `<VAR>_FILE`; redacted in logs (URLs with credentials).
    Sensitive,
    /// Environment or `<VAR>_FILE` only.
    Secret,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Environment variable name.
    pub name: &'static str,
    /// Dotted path in `beacon.toml`.
    pub toml: &'static str,
    /// Where the value may come from.
    pub kind: KeyKind,
    /// One line for `.env.example` and error messages.
    pub help: &'static str,
}

const fn key(name: &'static str, toml: &'static str, kind: KeyKind, help: &'static str) -> Key {
    Key { name, toml, kind, help }
}

pub const DATA_DIR: Key = key(
    "BEACON_DATA_DIR",
    "data_dir",
    KeyKind::Plain,
    "Folder for the SQLite database, indexes and transcripts (default `data`).",
);
pub const HTTP_ADDR: Key = key(
    "BEACON_HTTP_ADDR",
    "http_addr",
    KeyKind::Plain,
    "Address of the HTTP server: interactions endpoint, health, API (default `127.0.0.1:8080`).",
);
pub const PUBLIC_URL: Key = key(
    "BEACON_PUBLIC_URL",
    "public_url",
    KeyKind::Plain,
    "Base of every link Beacon posts (transcripts), e.g. `https://beacon.example.com` (default `http://<http addr>`).",
);
pub const OAUTH_CLIENT_ID: Key = key(
    "BEACON_OAUTH_CLIENT_ID",
    "oauth.client_id",
    KeyKind::Plain,
    "OAuth2 client id for the dashboard's Discord login (default: the application id).",
);
pub const OAUTH_CLIENT_SECRET: Key = key(
    "BEACON_OAUTH_CLIENT_SECRET",
    "oauth.client_secret",
    KeyKind::Secret,
    "OAuth2 client secret (developer portal → OAuth2); enables /api/v1 login. Register <public url>/api/v1/auth/callback as a redirect.",
);
pub const API_CORS_ORIGINS: Key = key(
    "BEACON_API_CORS_ORIGINS",
    "api.cors_origins",
    KeyKind::Plain,
    "Origins (comma-separated, e.g. `https://admin.example.com`) allowed to call /api/v1 from a browser; none by default (same origin only).",
);
pub const API_RATE_LIMIT: Key = key(
    "BEACON_API_RATE_LIMIT",
    "api.rate_limit",
    KeyKind::Plain,
    "Web API requests per minute per session, and 4× that per IP (default 300).",
);
pub const API_CSV_LIMIT_MB: Key = key(
    "BEACON_API_CSV_LIMIT_MB",
    "api.csv_limit_mb",
    KeyKind::Plain,
    "Largest CSV body the web API takes (FAQ import), in MiB (default 4, 1–64); JSON bodies stay at 256 KiB.",
);
pub const TRUSTED_PROXIES: Key = key(
    "BEACON_TRUSTED_PROXIES",
    "api.trusted_proxies",
    KeyKind::Plain,
    "Reverse proxies (comma-separated IPs or CIDRs, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` names the client for the web API's per-IP rate limit; none by default (the header is ignored).",
);
pub const DATABASE_URL: Key = key(
    "BEACON_DATABASE_URL",
    "database_url",
    KeyKind::Sensitive,
    "`sqlite://<data dir>/beacon.db` by default; `postgres://…` selects PostgreSQL.",
);
pub const REDIS_URL: Key = key(
    "BEACON_REDIS_URL",
    "redis_url",
    KeyKind::Sensitive,
    "Optional; absent means in-process cache and rate limits.",
);
pub const SCALE_KEY_PREFIX: Key = key(
    "BEACON_SCALE_KEY_PREFIX",
    "scale.key_prefix",
    KeyKind::Plain,
    "Prefix of the Redis keys the gateway, worker and web roles share (default `beacon`).",
);
pub const SCALE_PARTITIONS: Key = key(
    "BEACON_SCALE_PARTITIONS",
    "scale.partitions",
    KeyKind::Plain,
    "Event streams, partitioned by guild; the same in every process (default 16).",
);
pub const SCALE_MAX_DELIVERIES: Key = key(
    "BEACON_SCALE_MAX_DELIVERIES",
    "scale.max_deliveries",
    KeyKind::Plain,
    "Deliveries of an event before it goes to the dead-letter stream (default 5).",
);
pub const SCALE_CLAIM_IDLE: Key = key(
    "BEACON_SCALE_CLAIM_IDLE",
    "scale.claim_idle",
    KeyKind::Plain,
    "How long a stopped worker's event waits before another worker takes it over (default `15s`).",
);
pub const DISCORD_TOKEN: Key = key(
    "BEACON_DISCORD_TOKEN",
    "discord.token",
    KeyKind::Secret,
    "Bot token. Without it Beacon runs without the gateway (HTTP interactions still work).",
);
pub const DISCORD_APPLICATION_ID: Key = key(
    "BEACON_DISCORD_APPLICATION_ID",
    "discord.application_id",
    KeyKind::Plain,
    "Application id (fetched from Discord with the token when absent).",
);
pub const DISCORD_PUBLIC_KEY: Key = key(
    "BEACON_DISCORD_PUBLIC_KEY",
    "discord.public_key",
    KeyKind::Plain,
    "Application public key, 64 hex chars; enables POST /interactions.",
);
pub const DISCORD_API_URL: Key = key(
    "BEACON_DISCORD_API_URL",
    "discord.api_url",
    KeyKind::Plain,
    "REST root (default `https://discord.com`); REST goes to `{url}/api/v10/…`.",
);
pub const DISCORD_GATEWAY_URL: Key = key(
    "BEACON_DISCORD_GATEWAY_URL",
    "discord.gateway_url",
    KeyKind::Plain,
    "Optional override of the gateway URL (`ws://` or `wss://`).",
);
pub const DISCORD_GATEWAY_ENABLED: Key = key(
    "BEACON_DISCORD_GATEWAY_ENABLED",
    "discord.gateway_enabled",
    KeyKind::Plain,
    "`true` (default) connects the gateway when a token is set; `false` runs HTTP interactions only, using the token for REST.",
);
pub const DISCORD_SHARD_COUNT: Key = key(
    "BEACON_DISCORD_SHARD_COUNT",
    "discord.shard_count",
    KeyKind::Plain,
    "Optional fixed shard count (default: Discord's recommendation).",
);
pub const DEVELOPERS_GUILD_ID: Key = key(
    "BEACON_DEVELOPERS_GUILD_ID",
    "developers.guild_id",
    KeyKind::Plain,
    "Main guild of the developer team (operator access everywhere).",
);
pub const DEVELOPERS_ROLE_ID: Key = key(
    "BEACON_DEVELOPERS_ROLE_ID",
    "developers.role_id",
    KeyKind::Plain,
    "Role in the main guild that marks the developer team.",
);
pub const EMBED_MODEL_DIR: Key = key(
    "BEACON_EMBED_MODEL_DIR",
    "kb.embed_model_dir",
    KeyKind::Plain,
    "Folder with the sentence-embedding model (config.json, tokenizer.json, model.safetensors); absent means BM25 retrieval only.",
);
pub const RERANK_MODEL_DIR: Key = key(
    "BEACON_RERANK_MODEL_DIR",
    "kb.rerank_model_dir",
    KeyKind::Plain,
    "Folder with a cross-encoder (e.g. ms-marco-MiniLM-L-6-v2: config.json, tokenizer.json, model.safetensors) that reorders the best 20 passages; absent means no reranking.",
);
pub const EMBED_PROVIDER: Key = key(
    "BEACON_EMBED_PROVIDER",
    "kb.embed_provider",
    KeyKind::Plain,
    "`local` (default: the model folder or a one-time download) or `llm` (the LLM provider's embedding model, BEACON_LLM_EMBEDDING_MODEL).",
);
pub const EMBED_POOLING: Key = key(
    "BEACON_EMBED_POOLING",
    "kb.embed_pooling",
    KeyKind::Plain,
    "`mean` or `cls`: overrides the pooling the local model's files (or name) call for.",
);
pub const EMBED_PRECISION: Key = key(
    "BEACON_EMBED_PRECISION",
    "kb.embed_precision",
    KeyKind::Plain,
    "`f32`, `bf16` or `int8`: the local model's arithmetic (default: bf16 where the CPU has AVX-512 BF16, else f32; int8 is faster and a little less accurate).",
);
pub const EMBED_QUERY_PREFIX: Key = key(
    "BEACON_EMBED_QUERY_PREFIX",
    "kb.embed_query_prefix",
    KeyKind::Plain,
    "Instruction put before every query, overriding the local model's (bge: `Represent this sentence for searching relevant passages:`); `none` for no instruction.",
);
pub const EMBED_HUB_URL: Key = key(
    "BEACON_EMBED_HUB_URL",
    "kb.embed_hub_url",
    KeyKind::Plain,
    "Model hub for the one-time download when BEACON_EMBED_MODEL_DIR is unset (default `https://huggingface.co`; `off` disables it).",
);
pub const EMBED_MODEL_REPO: Key = key(
    "BEACON_EMBED_MODEL_REPO",
    "kb.embed_model_repo",
    KeyKind::Plain,
    "Hub repository downloaded into <data dir>/models (default `sentence-transformers/all-MiniLM-L6-v2`).",
);
pub const SECRET_KEY: Key = key(
    "BEACON_SECRET_KEY",
    "secret_key",
    KeyKind::Secret,
    "32-byte key (base64 or hex) that seals stored credentials; unset: generated once into <data dir>/secret.key — back it up.",
);
pub const SECRET_KEY_PREVIOUS: Key = key(
    "BEACON_SECRET_KEY_PREVIOUS",
    "secret_key_previous",
    KeyKind::Secret,
    "Keys used before a rotation, comma-separated: values they sealed still open.",
);
pub const KB_SHARED_CREDENTIALS_GUILDS: Key = key(
    "BEACON_KB_SHARED_CREDENTIALS_GUILDS",
    "kb.shared_credentials_guilds",
    KeyKind::Plain,
    "Guild ids (comma-separated) whose /kb sources may use the deployment's Notion and Google credentials; other guilds give their own.",
);
pub const NOTION_API_URL: Key = key(
    "BEACON_NOTION_API_URL",
    "kb.notion_api_url",
    KeyKind::Plain,
    "Notion's API root (default `https://api.notion.com`; tests point it at a fake).",
);
pub const SHEETS_API_URL: Key = key(
    "BEACON_SHEETS_API_URL",
    "kb.sheets_api_url",
    KeyKind::Plain,
    "Google Sheets' API root (default `https://sheets.googleapis.com`; tests point it at a fake).",
);
pub const NOTION_TOKEN: Key = key(
    "BEACON_NOTION_TOKEN",
    "kb.notion_token",
    KeyKind::Secret,
    "Notion integration token for Notion knowledge sources (secret).",
);
pub const GOOGLE_SA_BASE64: Key = key(
    "BEACON_GOOGLE_SA_BASE64",
    "kb.google_sa_base64",
    KeyKind::Secret,
    "Base64 of the Google service-account key file (JSON) for Google Sheets knowledge sources (secret).",
);
pub const KB_UPLOAD_MAX_FILE_MB: Key = key(
    "BEACON_KB_UPLOAD_MAX_FILE_MB",
    "kb.upload_max_file_mb",
    KeyKind::Plain,
    "Largest file `/kb upload` accepts, in MB (default 10).",
);
pub const KB_UPLOAD_MAX_GUILD_MB: Key = key(
    "BEACON_KB_UPLOAD_MAX_GUILD_MB",
    "kb.upload_max_guild_mb",
    KeyKind::Plain,
    "Largest total of one server's uploaded files, in MB (default 50).",
);
pub const KB_CRAWL_DELAY: Key = key(
    "BEACON_KB_CRAWL_DELAY",
    "kb.crawl_delay",
    KeyKind::Plain,
    "Wait between two requests of a website source (default `1s`; a longer robots.txt Crawl-delay wins).",
);
pub const KB_CRAWL_MAX_PAGES: Key = key(
    "BEACON_KB_CRAWL_MAX_PAGES",
    "kb.crawl_max_pages",
    KeyKind::Plain,
    "Most pages a website source reads per sync (default 200).",
);
pub const KB_CRAWL_ALLOW_PRIVATE: Key = key(
    "BEACON_KB_CRAWL_ALLOW_PRIVATE",
    "kb.crawl_allow_private",
    KeyKind::Plain,
    "Let website sources read hosts on private, loopback or link-local addresses (default false: public sites only).",
);
pub const LOG_FORMAT: Key = key(
    "BEACON_LOG_FORMAT",
    "log.format",
    KeyKind::Plain,
    "`auto` (default: readable text on a terminal, JSON lines otherwise), `json` or `pretty`.",
);
pub const LOG_LEVEL: Key = key(
    "BEACON_LOG_LEVEL",
    "log.level",
    KeyKind::Plain,
    "tracing filter, e.g. `info` or `beacon=debug,info` (default `info`).",
);
pub const GUILD_RETENTION: Key = key(
    "BEACON_GUILD_RETENTION",
    "retention.guild",
    KeyKind::Plain,
    "How long a guild's data is kept after the bot leaves it (default `30d`).",
);
pub const SHUTDOWN_GRACE: Key = key(
    "BEACON_SHUTDOWN_GRACE",
    "shutdown_grace",
    KeyKind::Plain,
    "How long shutdown waits for in-flight handlers (default `8s`).",
);
pub const ALERT_WEBHOOK_URL: Key = key(
    "BEACON_ALERT_WEBHOOK_URL",
    "alerts.webhook_url",
    KeyKind::Secret,
    "Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN) told of repeated handler failures and a gateway that cannot connect.",
);
pub const ALERT_HANDLER_FAILURES: Key = key(
    "BEACON_ALERT_HANDLER_FAILURES",
    "alerts.handler_failures",
    KeyKind::Plain,
    "Handler failures within 5 minutes that make an alert (default `5`).",
);
pub const ALERT_GATEWAY_AFTER: Key = key(
    "BEACON_ALERT_GATEWAY_AFTER",
    "alerts.gateway_after",
    KeyKind::Plain,
    "How long the gateway may be without a session before an alert (default `2m`).",
);
pub const ALERT_MIN_INTERVAL: Key = key(
    "BEACON_ALERT_MIN_INTERVAL",
    "alerts.min_interval",
    KeyKind::Plain,
    "At most one alert of each kind this often (default `15m`).",
);
pub const JOB_LEASE: Key = key(
    "BEACON_JOB_LEASE",
    "jobs.lease",
    KeyKind::Plain,
    "How long a worker holds a durable job without renewing it; a crashed worker's job is run by another after this (default `60s`).",
);

pub const TRANSCRIPTS_S3_BUCKET: Key = key(
    "BEACON_TRANSCRIPTS_S3_BUCKET",
    "transcripts.s3_bucket",
    KeyKind::Plain,
    "Store ticket transcripts in this S3-compatible bucket (default: the local folder `<data dir>/transcripts`).",
);
pub const TRANSCRIPTS_S3_REGION: Key = key(
    "BEACON_TRANSCRIPTS_S3_REGION",
    "transcripts.s3_region",
    KeyKind::Plain,
    "Region of the bucket (default `us-east-1`).",
);
pub const TRANSCRIPTS_S3_ENDPOINT: Key = key(
    "BEACON_TRANSCRIPTS_S3_ENDPOINT",
    "transcripts.s3_endpoint",
    KeyKind::Plain,
    "Endpoint of an S3-compatible server (MinIO, R2, moto…); unset for AWS.",
);
pub const TRANSCRIPTS_S3_ACCESS_KEY_ID: Key = key(
    "BEACON_TRANSCRIPTS_S3_ACCESS_KEY_ID",
    "transcripts.s3_access_key_id",
    KeyKind::Secret,
    "Access key id for the bucket.",
);
pub const TRANSCRIPTS_S3_SECRET_ACCESS_KEY: Key = key(
    "BEACON_TRANSCRIPTS_S3_SECRET_ACCESS_KEY",
    "transcripts.s3_secret_access_key",
    KeyKind::Secret,
    "Secret access key for the bucket.",
);
pub const TRANSCRIPTS_PUBLIC_URL: Key = key(
    "BEACON_TRANSCRIPTS_PUBLIC_URL",
    "transcripts.public_url",
    KeyKind::Plain,
    "Base URL under which stored transcripts are readable (used in log-channel links).",
);

pub const LLM_PROVIDER: Key = key(
    "BEACON_LLM_PROVIDER",
    "llm.provider",
    KeyKind::Plain,
    "`none` (default: extractive answers only), `openai`, `anthropic`, `gemini`, `xai` or `openai-compatible`.",
);
pub const LLM_MODEL: Key = key(
    "BEACON_LLM_MODEL",
    "llm.model",
    KeyKind::Plain,
    "Chat model (provider default when empty; required for `openai-compatible`).",
);
pub const LLM_API_KEY: Key =
    key("BEACON_LLM_API_KEY", "llm.api_key", KeyKind::Secret, "API key of the primary provider (secret).");
pub const LLM_BASE_URL: Key = key(
    "BEACON_LLM_BASE_URL",
    "llm.base_url",
    KeyKind::Plain,
    "API root (`…/v1` for OpenAI-style APIs); required for `openai-compatible`.",
);
pub const LLM_EMBEDDING_MODEL: Key =
    key("BEACON_LLM_EMBEDDING_MODEL", "llm.embedding_model", KeyKind::Plain, "Embedding model of the provider.");
pub const LLM_FALLBACKS: Key = key(
    "BEACON_LLM_FALLBACKS",
    "llm.fallbacks",
    KeyKind::Plain,
    "Comma-separated `provider[:model]` tried after the primary; the N-th takes BEACON_LLM_FALLBACK_<N>_API_KEY (secret), _BASE_URL, _EMBEDDING_MODEL.",
);
pub const LLM_TIMEOUT: Key =
    key("BEACON_LLM_TIMEOUT", "llm.timeout", KeyKind::Plain, "Per-request timeout of LLM calls (default `60s`).");
pub const LLM_MAX_RETRIES: Key =
    key("BEACON_LLM_MAX_RETRIES", "llm.max_retries", KeyKind::Plain, "Retries per provider (default `2`).");
pub const LLM_RETRY_AFTER_MAX: Key = key(
    "BEACON_LLM_RETRY_AFTER_MAX",
    "llm.retry_after_max",
    KeyKind::Plain,
    "Longest Retry-After honoured before moving to the next provider (default `30s`).",
);
pub const LLM_BREAKER_FAILURES: Key = key(
    "BEACON_LLM_BREAKER_FAILURES",
    "llm.breaker_failures",
    KeyKind::Plain,
    "Consecutive failures that open a provider's circuit breaker (default `5`).",
);
pub const LLM_BREAKER_COOLDOWN: Key = key(
    "BEACON_LLM_BREAKER_COOLDOWN",
    "llm.breaker_cooldown",
    KeyKind::Plain,
    "How long an open circuit stays open (default `30s`).",
);
pub const LLM_CACHE_TTL: Key =
    key("BEACON_LLM_CACHE_TTL", "llm.cache_ttl", KeyKind::Plain, "Lifetime of cached LLM responses (default `1h`).");
pub const LLM_GUILD_MODELS: Key = key(
    "BEACON_LLM_GUILD_MODELS",
    "llm.guild_models",
    KeyKind::Plain,
    "Comma-separated chat models a server may choose in its `llm.model` setting, besides the deployment's own model (default: none, every server uses BEACON_LLM_MODEL).",
);
pub const LLM_GUILD_DAILY_BUDGET: Key = key(
    "BEACON_LLM_GUILD_DAILY_BUDGET",
    "llm.guild_daily_budget",
    KeyKind::Plain,
    "Default LLM spend per server per UTC day in US dollars (default `1.00`; `none` for no limit). A server may lower its own budget with `/usage limit`; `beacon llm budget set` overrides it per server.",
);

pub const AGENT_API_URL: Key = key(
    "BEACON_AGENT_API_URL",
    "agent.api_url",
    KeyKind::Plain,
    "API root of the external AI coding-agent service; the agent bridge (`/agent`, `/projects`, `/sessions`) is offered only when set.",
);
pub const AGENT_TIMEOUT: Key = key(
    "BEACON_AGENT_TIMEOUT",
    "agent.timeout",
    KeyKind::Plain,
    "Longest wait for the agent service's answer to a message (default `150s`; project activation waits as long).",
);

/// The LLM keys (typed into [`crate::LlmSettings`]).
pub const LLM_KEYS: &[Key] = &[
    LLM_PROVIDER,
    LLM_MODEL,
    LLM_API_KEY,
    LLM_BASE_URL,
    LLM_EMBEDDING_MODEL,
    LLM_FALLBACKS,
    LLM_TIMEOUT,
    LLM_MAX_RETRIES,
    LLM_RETRY_AFTER_MAX,
    LLM_BREAKER_FAILURES,
    LLM_BREAKER_COOLDOWN,
    LLM_CACHE_TTL,
    LLM_GUILD_MODELS,
    LLM_GUILD_DAILY_BUDGET,
];

/// All keys, in documentation order.
pub const KEYS: &[Key] = &[
    DISCORD_TOKEN,
    DISCORD_APPLICATION_ID,
    DISCORD_PUBLIC_KEY,
    DISCORD_API_URL,
    DISCORD_GATEWAY_URL,
    DISCORD_GATEWAY_ENABLED,
    DISCORD_SHARD_COUNT,
    DATABASE_URL,
    REDIS_URL,
    SCALE_KEY_PREFIX,
    SCALE_PARTITIONS,
    SCALE_MAX_DELIVERIES,
    SCALE_CLAIM_IDLE,
    HTTP_ADDR,
    PUBLIC_URL,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    API_CORS_ORIGINS,
    API_RATE_LIMIT,
    API_CSV_LIMIT_MB,
    TRUSTED_PROXIES,
    DATA_DIR,
    DEVELOPERS_GUILD_ID,
    DEVELOPERS_ROLE_ID,
    EMBED_MODEL_DIR,
    RERANK_MODEL_DIR,
    EMBED_PROVIDER,
    EMBED_POOLING,
    EMBED_PRECISION,
    EMBED_QUERY_PREFIX,
    EMBED_HUB_URL,
    EMBED_MODEL_REPO,
    SECRET_KEY,
    SECRET_KEY_PREVIOUS,
    KB_SHARED_CREDENTIALS_GUILDS,
    NOTION_API_URL,
    SHEETS_API_URL,
    NOTION_TOKEN,
    GOOGLE_SA_BASE64,
    KB_UPLOAD_MAX_FILE_MB,
    KB_UPLOAD_MAX_GUILD_MB,
    KB_CRAWL_DELAY,
    KB_CRAWL_MAX_PAGES,
    KB_CRAWL_ALLOW_PRIVATE,
    LOG_FORMAT,
    LOG_LEVEL,
    GUILD_RETENTION,
    SHUTDOWN_GRACE,
    ALERT_WEBHOOK_URL,
    ALERT_HANDLER_FAILURES,
    ALERT_GATEWAY_AFTER,
    ALERT_MIN_INTERVAL,
    JOB_LEASE,
    TRANSCRIPTS_S3_BUCKET,
    TRANSCRIPTS_S3_REGION,
    TRANSCRIPTS_S3_ENDPOINT,
    TRANSCRIPTS_S3_ACCESS_KEY_ID,
    TRANSCRIPTS_S3_SECRET_ACCESS_KEY,
    TRANSCRIPTS_PUBLIC_URL,
    AGENT_API_URL,
    AGENT_TIMEOUT,
    LLM_PROVIDER,
    LLM_MODEL,
    LLM_API_KEY,
    LLM_BASE_URL,
    LLM_EMBEDDING_MODEL,
    LLM_FALLBACKS,
    LLM_TIMEOUT,
    LLM_MAX_RETRIES,
    LLM_RETRY_AFTER_MAX,
    LLM_BREAKER_FAILURES,
    LLM_BREAKER_COOLDOWN,
    LLM_CACHE_TTL,
    LLM_GUILD_MODELS,
    LLM_GUILD_DAILY_BUDGET,
];
