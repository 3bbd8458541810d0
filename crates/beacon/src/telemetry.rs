//! Logging: readable text on a terminal, JSON lines otherwise (one object per event, with span
//! fields such as `interaction_id` and `request_id`, for log collectors); `BEACON_LOG_FORMAT`
//! (`json`, `pretty`) overrides.

use beacon_config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber for `config`'s log format and level.
pub fn init(config: &Config) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(&config.log_level).map_err(|e| format!("invalid value for BEACON_LOG_LEVEL: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let format = match config.log_format {
        LogFormat::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Pretty,
        LogFormat::Auto => LogFormat::Json,
        chosen => chosen,
    };
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        _ => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    // Already initialised (tests running several apps in one process): keep the first.
    let _ = result;
    Ok(())
}
