//! The one list of failure kinds that every language shares.
//!
//! Each kind has a status number, fixed forever, and a C name. From the table below come
//! [`ErrorKind`] here, the C ABI's `pr_status` enum with its `ALL` list, names and number
//! conversions (`ffi/error.rs`), the Node `code` strings ([`ErrorKind::code`], the C name
//! without `PR_ERR_`), and, through the C header, the Go sentinels (`bindings/go/errors.go`,
//! checked against the library's list by its tests).
//!
//! A new kind is appended with the next unused number. A number is never reused, not even the
//! number of a kind that was removed: old callers would read it as the old kind.

/// Calls `$callback!` with the table of error kinds, after any `$prefix` tokens (such as the
/// docs of the type the callback defines). Each row is the kind's docs, its Rust name, its
/// status number and its C name.
///
/// Retired numbers, never to be reused: 6 (`PR_ERR_SAMPLED`: no sampling policy ever existed
/// to produce it).
macro_rules! error_kinds {
    ($callback:ident! $($prefix:tt)*) => {
        $callback! {
            $($prefix)*
            ;
            /// A required pointer argument was NULL (the message names it).
            NullArgument = 1 => PR_ERR_NULL_ARGUMENT,
            /// A string or payload is not valid UTF-8 (the message gives the byte offset).
            InvalidUtf8 = 2 => PR_ERR_INVALID_UTF8,
            /// Config, event, poll request or filter is not well-formed JSON (the message gives
            /// the byte offset, line and column), or a value has no JSON form.
            InvalidJson = 3 => PR_ERR_INVALID_JSON,
            /// The config is well-formed JSON but not a valid config: unknown key, wrong type,
            /// value out of range, adapter not built in (the message names the key).
            Config = 4 => PR_ERR_CONFIG,
            /// The shard's ring is full and the back-pressure mode is `drop_newest`: the event
            /// was not accepted.
            Backpressure = 5 => PR_ERR_BACKPRESSURE,
            /// No live shard could take the event (not accepted).
            Unrouted = 7 => PR_ERR_UNROUTED,
            /// The bus is shutting down or was shut down.
            ShuttingDown = 8 => PR_ERR_SHUTTING_DOWN,
            /// The poll request's `from` cursor is not one this library produced, or is damaged.
            InvalidCursor = 9 => PR_ERR_INVALID_CURSOR,
            /// The poll request's filter is not a valid filter (unknown operator, empty `$and`,
            /// ...).
            InvalidFilter = 10 => PR_ERR_INVALID_FILTER,
            /// The poll request is invalid: unknown key, wrong type, a shard that never existed.
            InvalidRequest = 11 => PR_ERR_INVALID_REQUEST,
            /// The adapter failed (serialisation or an unclassified failure).
            Adapter = 12 => PR_ERR_ADAPTER,
            /// The adapter failed temporarily; retrying may succeed.
            AdapterTransient = 13 => PR_ERR_ADAPTER_TRANSIENT,
            /// The connection to the adapter's backend failed.
            AdapterConnection = 14 => PR_ERR_ADAPTER_CONNECTION,
            /// The adapter failed permanently; retrying cannot succeed.
            AdapterFatal = 15 => PR_ERR_ADAPTER_FATAL,
            /// The adapter's backend is full; retry later.
            AdapterBackpressure = 16 => PR_ERR_ADAPTER_BACKPRESSURE,
            /// A scaling call failed (unknown shard, out of bounds, partial); nothing is reported
            /// as done that was not.
            Scaling = 17 => PR_ERR_SCALING,
            /// The library panicked inside the call. The panic was caught; the bus may still be
            /// usable.
            Panic = 18 => PR_ERR_PANIC,
            /// An argument has an invalid value: an index out of range, `ends` not ascending or
            /// past `data_len`, a length whose byte size overflows.
            InvalidArgument = 19 => PR_ERR_INVALID_ARGUMENT,
            /// The caller's output buffer is too small; nothing was done (the message gives the
            /// size needed).
            BufferTooSmall = 20 => PR_ERR_BUFFER_TOO_SMALL,
            /// A wait with a caller-set deadline ran out (a flush with a timeout): nothing was
            /// given up; the events not yet delivered stay queued and keep being delivered.
            Timeout = 21 => PR_ERR_TIMEOUT,
            /// The disk log holds a record that fails its checksum or is malformed, in the middle
            /// of the log (the message gives the file and offset): nothing past it is returned.
            /// Reopen with `repair` to truncate there.
            DiskCorrupt = 24 => PR_ERR_DISK_CORRUPT,
            /// The disk log's directory is locked by another process (the message names its pid),
            /// or by another bus of this process.
            DiskLocked = 25 => PR_ERR_DISK_LOCKED,
        }
    };
}
pub(crate) use error_kinds;

/// Status numbers that belonged to removed kinds: never given to a new kind (the tests check).
#[cfg(test)]
pub(crate) const RETIRED_STATUSES: [u32; 1] = [6];

macro_rules! define_error_kind {
    ($(#[doc = $type_doc:literal])* ; $( $(#[doc = $doc:literal])* $kind:ident = $status:literal => $c_name:ident, )*) => {
        $(#[doc = $type_doc])*
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[doc = $doc])* $kind, )*
        }

        impl ErrorKind {
            /// Every kind, in status-number order.
            pub const ALL: &'static [ErrorKind] = &[$(Self::$kind),*];

            /// The status number of the kind: C `pr_status`, Go `Status`. Fixed forever.
            pub const fn status(self) -> u32 {
                match self {
                    $(Self::$kind => $status,)*
                }
            }

            /// The kind with status number `status`, if there is one.
            pub const fn from_status(status: u32) -> Option<Self> {
                match status {
                    $($status => Some(Self::$kind),)*
                    _ => None,
                }
            }

            /// The C name, e.g. `"PR_ERR_BACKPRESSURE"`.
            pub const fn c_name(self) -> &'static str {
                match self {
                    $(Self::$kind => stringify!($c_name),)*
                }
            }

            /// The stable code string: the C name without `PR_ERR_` (`"BACKPRESSURE"`). It is
            /// the Node binding's `error.code`.
            pub fn code(self) -> &'static str {
                &self.c_name()["PR_ERR_".len()..]
            }
        }
    };
}

error_kinds! {
    define_error_kind!
    /// What kind of failure an error is: the classification that every language shares (C
    /// status, Node `code`, Go sentinel). Every public error type has a `kind()`.
    ///
    /// # Examples
    /// ```
    /// use purple_rain::error::ErrorKind;
    /// use purple_rain::IngestionError;
    /// let kind = IngestionError::Backpressure.kind();
    /// assert_eq!(kind, ErrorKind::Backpressure);
    /// assert_eq!((kind.status(), kind.c_name(), kind.code()), (5, "PR_ERR_BACKPRESSURE", "BACKPRESSURE"));
    /// ```
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ascend_are_unique_and_never_retired_ones() {
        let numbers: Vec<u32> = ErrorKind::ALL.iter().map(|k| k.status()).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        assert!(!numbers.contains(&0), "0 is success");
        for retired in RETIRED_STATUSES {
            assert!(!numbers.contains(&retired), "status {retired} is retired");
            assert_eq!(ErrorKind::from_status(retired), None);
        }
    }

    #[test]
    fn names_and_numbers_convert_both_ways() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_status(kind.status()), Some(kind));
            assert_eq!(kind.c_name(), format!("PR_ERR_{}", kind.code()));
            let snake: String = format!("{kind:?}")
                .chars()
                .flat_map(|c| if c.is_uppercase() { vec!['_', c] } else { vec![c.to_ascii_uppercase()] })
                .collect();
            assert_eq!(snake.trim_start_matches('_'), kind.code(), "the Rust and C names of {kind:?} differ");
        }
        assert_eq!(ErrorKind::from_status(0), None);
        assert_eq!(ErrorKind::from_status(u32::MAX), None);
    }
}
