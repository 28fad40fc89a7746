//! Where the library's `tracing` events go when the host is not a Rust program.
//!
//! The crate emits `tracing` events on slow paths only, never per event: the adapter failing
//! and recovering (connection loss), retries, drops by cause, scaling, shutdown. A Rust program
//! reads them with its own subscriber. A C, Go, Node or Python host has no subscriber and, the
//! C ABI being callback-free, cannot be called back with records; so, as librdkafka's `debug`
//! setting does, the library writes them to stderr at the level named by the environment
//! variable `PURPLE_RAIN_LOG` (`error`, `warn`, `info`, `debug`, `trace`; unset or `off`:
//! nothing). Only the library's own events (target `purple_rain...`) are written.
//!
//! [`init_from_env`] runs when the first bus is created. It installs the stderr subscriber as
//! the process's global default only if `PURPLE_RAIN_LOG` names a level and no global
//! subscriber exists yet; a Rust program that sets its subscriber first keeps it.

use std::sync::Once;
use tracing::level_filters::LevelFilter;

/// The environment variable read by [`init_from_env`].
pub const LOG_ENV: &str = "PURPLE_RAIN_LOG";

/// Installs the stderr subscriber once per process when `PURPLE_RAIN_LOG` asks for it.
pub fn init_from_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(level) = std::env::var(LOG_ENV).ok().and_then(|v| parse_level(&v)) else { return };
        let filter = tracing_subscriber::filter::Targets::new().with_target("purple_rain", level);
        let subscriber =
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(true).finish();
        use tracing_subscriber::layer::SubscriberExt as _;
        // Fails only when the host already installed a global subscriber: it keeps its own.
        let _ = tracing::subscriber::set_global_default(subscriber.with(filter));
    });
}

/// `PURPLE_RAIN_LOG`'s value as a level; `None` for unset-like and unknown values.
fn parse_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "error" => Some(LevelFilter::ERROR),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_off_or_unknown_mean_nothing() {
        assert_eq!(parse_level("INFO"), Some(LevelFilter::INFO));
        assert_eq!(parse_level(" warn "), Some(LevelFilter::WARN));
        assert_eq!(parse_level("trace"), Some(LevelFilter::TRACE));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level(""), None);
        assert_eq!(parse_level("verbose"), None);
    }
}
