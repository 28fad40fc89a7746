//! A JSON document (a config, a poll request) that could not be read into its Rust shape.

use std::fmt;
use std::sync::Arc;

/// Why a JSON config or poll request could not be parsed: syntax, an unknown key, a wrong type.
///
/// It keeps serde_json's error whole (its line, column and category, as
/// [`source`](std::error::Error::source)) rather than its text, so that a front end can point
/// at the offending place without parsing a message back. Cloning shares the error.
///
/// It has no `kind()` of its own: the error that holds it classifies it
/// ([`ConfigError::Json`](super::ConfigError::Json) is [`ErrorKind::Config`](super::ErrorKind::Config),
/// [`ConsumerError::Json`](super::ConsumerError::Json) is
/// [`ErrorKind::InvalidRequest`](super::ErrorKind::InvalidRequest)).
#[derive(Debug, Clone)]
pub struct JsonError {
    error: Arc<serde_json::Error>,
    /// The key path of the offending value, as the parser tracked it.
    path: Option<String>,
}

impl JsonError {
    /// The error at the value whose key path is `path` (`adapter.max_events_per_shard`,
    /// `shards[1]`), as [`serde_path_to_error`] tracks it while parsing.
    pub(crate) fn at(error: serde_json::Error, path: String) -> Self {
        // A syntax error is about the text, not a value; `.` is the document, `?` a place the
        // tracker could not name.
        let named = !(error.is_syntax() || error.is_eof());
        let path = Some(path).filter(|p| named && !p.is_empty() && p != "." && p != "?");
        Self { error: Arc::new(error), path }
    }

    /// The full key path of the offending value (`adapter.max_events_per_shard`, `shards[1]`),
    /// when the error is about one; `None` for syntax errors and the document as a whole.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// 1-based line of the offending place; 0 when serde_json gave no position.
    pub fn line(&self) -> usize {
        self.error.line()
    }

    /// 1-based column (in bytes) of the offending place; 0 when serde_json gave no position.
    pub fn column(&self) -> usize {
        self.error.column()
    }

    /// Whether the text was not JSON at all (syntax, early end) rather than JSON of the wrong
    /// shape.
    pub fn is_syntax(&self) -> bool {
        self.error.is_syntax() || self.error.is_eof()
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(error: serde_json::Error) -> Self {
        Self { error: Arc::new(error), path: None }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "`{path}`: {}", self.error),
            None => self.error.fmt(f),
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}
