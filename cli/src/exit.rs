//! Exit codes, and the one-line error a failed command prints before it exits.
//!
//! Scripts branch on the code, so each cause has its own and the numbers never change. The
//! table is printed at the end of `--help` ([`HELP`]).

use purple_rain::{ConfigError, ConsumerError};
use std::fmt;

/// Everything worked.
pub const OK: u8 = 0;
/// Reading input or writing output failed (a file could not be opened, a raw record is cut).
pub const IO: u8 = 1;
/// The command line is wrong (clap's own code for usage errors).
pub const USAGE: u8 = 2;
/// The bus config is wrong: unreadable file, not JSON, unknown key, value out of range.
pub const CONFIG: u8 = 3;
/// A filter, cursor or other consume argument is wrong.
pub const REQUEST: u8 = 4;
/// The broker could not be reached or failed while the command ran.
pub const ADAPTER: u8 = 5;
/// `produce` did not get every input event stored (rejected, dropped or not flushed).
pub const LOST: u8 = 6;
/// Stopped by Ctrl-C (SIGINT) after a clean shutdown: 128 + 2, as shells report it.
pub const INTERRUPTED: u8 = 130;

/// The exit-code table of `--help`.
pub const HELP: &str = "\
Exit codes:
  0    success
  1    input or output failed (unreadable file, truncated raw record, closed output)
  2    bad command line
  3    bad config (--config, --config-json or a flag such as --redis or --shards)
  4    bad filter, cursor or consume argument
  5    broker unreachable or failing (adapter error)
  6    produce: events lost (not JSON, refused, dropped or not flushed); the summary names the cause
  130  interrupted by Ctrl-C; output was flushed, the summary or cursor printed";

/// A failed command: its exit code and a one-line message (printed as `error: {message}`).
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong, naming the flag, key or file.
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `EventBus::new` failed: a broker that cannot be reached is not a config mistake.
    pub fn start(error: ConfigError) -> Self {
        match error {
            ConfigError::Adapter(e) => Self::new(ADAPTER, format!("cannot start the adapter: {e}")),
            other => Self::new(CONFIG, format!("invalid config: {other}")),
        }
    }

    /// A poll failed.
    pub fn poll(error: ConsumerError) -> Self {
        match error {
            ConsumerError::Adapter(e) => Self::new(ADAPTER, format!("poll failed: {e}")),
            other => Self::new(REQUEST, other.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the underlying error printed.
        f.write_str(&self.message.replace('\n', " "))
    }
}
