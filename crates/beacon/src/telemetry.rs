//! Logging: readable text on a terminal, JSON lines otherwise (one object per event, with span
//! fields such as `interaction_id` and `request_id`, for log collectors); `BEACON_LOG_FORMAT`
//! (`json`, `pretty`) overrides.

use beacon_config::{Config, LogFormat};
use beacon_discord::ratelimits::RateLimitCounter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global tracing subscriber for `config`'s log format and level.
pub fn init(config: &Config) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(&config.log_level).map_err(|e| format!("invalid value for BEACON_LOG_LEVEL: {e}"))?;
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let format = match config.log_format {
        LogFormat::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Pretty,
        LogFormat::Auto => LogFormat::Json,
        chosen => chosen,
    };
    let output = match format {
        LogFormat::Pretty => output.with_filter(filter).boxed(),
        _ => output.json().with_current_span(true).with_span_list(false).with_filter(filter).boxed(),
    };
    // Discord's 429s are counted for `/metrics` whatever the log level (twilight retries them
    // itself and only logs them).
    let result = tracing_subscriber::registry()
        .with(output)
        .with(RateLimitCounter.with_filter(RateLimitCounter::filter()))
        .try_init();
    // Already initialised (tests running several apps in one process): keep the first.
    let _ = result;
    Ok(())
}
