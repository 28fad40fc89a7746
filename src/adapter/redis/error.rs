//! Classifying Redis failures for the dispatcher: retryable (`Transient`) or not (`Fatal`).
//!
//! The bus retries `Transient` errors within its jittered backoff budget and counts a batch
//! that exhausts it as dropped, so everything a retry can cure must land there: timeouts,
//! dropped or refused connections, a server that is loading, out of memory, busy with a script,
//! or a read-only replica mid-failover, and our own `PRGAP` guard. Everything else (a key of the
//! wrong type, a syntax error, a script the server refuses) is `Fatal`: retrying cannot help.

use crate::error::AdapterError;
use ::redis::{ErrorKind, RedisError, ServerError};
use std::time::Duration;

/// Server error codes a retry can cure.
const RETRYABLE_CODES: &[&str] =
    &["LOADING", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "OOM", "BUSY", "NOSCRIPT", "PRGAP"];

/// Maps a client-side error of `what` against `addr`.
pub(super) fn classify(error: &RedisError, what: &str, addr: &str) -> AdapterError {
    let message = format!("redis {what} on {addr}: {error}");
    let retryable = error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_io_error()
        || matches!(error.kind(), ErrorKind::Parse)
        || error.code().is_some_and(|code| RETRYABLE_CODES.contains(&code));
    if retryable {
        AdapterError::Transient(message)
    } else {
        AdapterError::Fatal(message)
    }
}

/// Maps one failed reply inside a pipeline.
pub(super) fn classify_server(error: &ServerError, what: &str, addr: &str) -> AdapterError {
    let message = format!("redis {what} on {addr}: {error}");
    if RETRYABLE_CODES.contains(&error.code()) {
        AdapterError::Transient(message)
    } else {
        AdapterError::Fatal(message)
    }
}

/// The error for a command that got no reply in time.
pub(super) fn timed_out(what: &str, addr: &str, after: Duration) -> AdapterError {
    AdapterError::Transient(format!("redis {what} on {addr}: no reply within {} ms", after.as_millis()))
}

/// A reply that does not have the shape the command promises (not retryable: it would not
/// change on a retry).
pub(super) fn unexpected(what: &str, addr: &str, detail: impl std::fmt::Display) -> AdapterError {
    AdapterError::Fatal(format!("redis {what} on {addr}: unexpected reply: {detail}"))
}
