//! Logging: JSON lines by default (one object per event, with span fields such as
//! `interaction_id` and `request_id`), or human-readable with `BEACON_LOG_FORMAT=pretty`.

use beacon_config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber for `config`'s log format and level.
pub fn init(config: &Config) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(&config.log_level).map_err(|e| format!("invalid value for BEACON_LOG_LEVEL: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // Already initialised (tests running several apps in one process): keep the first.
    let _ = result;
    Ok(())
}
